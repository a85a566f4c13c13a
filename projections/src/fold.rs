//! The fold: events in, read models out.
//!
//! Accounts are interned: each gets a dense slot index (`u32`) on opening,
//! and everything per account (balances and trade stats in integer
//! micro-units, timeline, transaction list) lives in its slot.
//!
//! Transactions are stored compactly ([`TxRec`], 64 bytes) in a dense `Vec`
//! in proposal order: parties and author as account slots, the workflow as
//! an index into a table of distinct definitions, and only what is rare
//! (descriptions, metadata, additional entries, non-account authors) in a
//! side table. A `&Transaction` is built on demand and cached until the
//! transaction changes ([`TxCache`]). Partner counts live in one table keyed
//! by account pair ([`PairTable`]), uuids in an index of slots ([`TxIndex`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use ledger::federation::{Link, Ratchet};
use ledger::{
    Account, AccountId, AccountKind, Amount, AmountError, Balances, Dialect, Entry, Event, KeyHash, LedgerView,
    NodeConfig, Peer, State, Transaction, TxId, Workflow, WorkflowId,
};
use rust_decimal::Decimal;

use crate::finding::{Finding, FindingKind};
use crate::tables::{PairTable, TxIndex};

/// One change of an account's completed balance, as
/// [`Projections::timeline`] gives it (the projections hold it more
/// compactly, see [`Point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePoint {
    /// Journal seq of the event that changed it.
    pub seq: u64,
    /// That event's record time, unix µs.
    pub at_us: u64,
    /// The completed balance after the event.
    pub balance: Amount,
}

/// A timeline point as held (16 bytes): the seq and the completed balance
/// in micro-units. A balance beyond `i64` (over 9.2·10^12 units) is
/// [`BIG_BALANCE`] here and sits in `Projections::big_balances`; the record
/// time is the seq's in `Projections::times`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) seq: u64,
    pub(crate) balance: i64,
}

/// `Point::balance` value meaning "in `Projections::big_balances`".
pub(crate) const BIG_BALANCE: i64 = i64::MIN;

/// A running total (gross in, gross out, volume) in 128-bit micro-units.
///
/// Unlike an [`Amount`] (a 96-bit mantissa: about 7.9·10^22 units), a total
/// cannot overflow on any real journal: entries are at most
/// [`ledger::AMOUNT_MAX_UNITS`] = 10^15 units = 10^21 micro-units, so a
/// volume (gross in + gross out) reaches 2^127 only after
/// 2^127 / (2 · 10^21) ≈ 8.5·10^16 maximal entries of one account: more than
/// 3 EB of journal, or 2,700 years at a million entries a second. The fold
/// still checks the arithmetic and reports an overflow instead of wrapping.
/// Its text form is the canonical decimal one, as an [`Amount`]'s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Total(i128);

impl Total {
    /// The total of `micros` micro-units.
    pub fn from_micros(micros: i128) -> Self {
        Self(micros)
    }

    /// Micro-units.
    pub fn micros(&self) -> i128 {
        self.0
    }
}

impl From<Amount> for Total {
    fn from(a: Amount) -> Self {
        Self(micros(a))
    }
}

impl PartialEq<Amount> for Total {
    fn eq(&self, other: &Amount) -> bool {
        self.0 == micros(*other)
    }
}

impl std::fmt::Display for Total {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MICRO: u128 = 1_000_000;
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (whole, fraction) = (magnitude / MICRO, magnitude % MICRO);
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:06}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Trade statistics of one account over one class of transactions, as the
/// reference's `TradeStats` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TradeStats {
    /// `gross_in - gross_out`; equals the matching [`Balances`] field.
    pub balance: Amount,
    /// Transactions the account is party to (in any entry).
    pub trades: u64,
    /// Entries the account is payer or payee of.
    pub entries: u64,
    /// Sum received (as payee).
    pub gross_in: Total,
    /// Sum paid (as payer).
    pub gross_out: Total,
    /// Distinct counterparties.
    pub partners: u64,
    /// `gross_in + gross_out`.
    pub volume: Total,
}

/// Trade statistics for the two classes: `completed` counts completed
/// transactions; `pending` counts pending and completed ones, like
/// [`Balances::pending`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountStats {
    /// Completed transactions only.
    pub completed: TradeStats,
    /// Pending and completed transactions.
    pub pending: TradeStats,
}

/// A multiply-xorshift hasher for keys that clients cannot choose freely
/// (account slots, admin-created account ids). Transaction uuids, which
/// clients choose, keep the standard keyed hasher.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SlotHasher(u64);

impl SlotHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23);
    }
}

impl Hasher for SlotHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.mix(u64::from_le_bytes(tail));
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(u64::try_from(n).unwrap_or(u64::MAX));
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 31)
    }
}

pub(crate) type SlotMap<K, V> = HashMap<K, V, BuildHasherDefault<SlotHasher>>;

/// Bytes of an id kept inline in an [`IdKey`].
const ID_INLINE: usize = 23;

/// An account id as a hash-map key: ids of up to [`ID_INLINE`] bytes are
/// stored inline, so a lookup compares within the table instead of chasing
/// a pointer to the heap; longer ones are boxed. Hashes and compares as its
/// bytes, so maps keyed by it are queried with `id.as_str().as_bytes()`.
#[derive(Debug, Clone)]
pub(crate) enum IdKey {
    Inline(u8, [u8; ID_INLINE]),
    Boxed(Box<[u8]>),
}

impl IdKey {
    pub(crate) fn new(id: &AccountId) -> Self {
        let bytes = id.as_str().as_bytes();
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= ID_INLINE => {
                let mut inline = [0u8; ID_INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                IdKey::Inline(len, inline)
            }
            _ => IdKey::Boxed(bytes.into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            IdKey::Inline(len, inline) => &inline[..usize::from(*len)],
            IdKey::Boxed(bytes) => bytes,
        }
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for IdKey {}

impl std::hash::Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for IdKey {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

/// Index of the completed class in per-class arrays.
const COMPLETED: usize = 0;
/// Which states each class counts, by class index (completed, pending).
const CLASSES: [fn(State) -> bool; 2] = [State::counts_completed, State::counts_pending];
/// The classes' names, by class index.
const CLASS_NAMES: [&str; 2] = ["completed", "pending"];

/// Per class (completed, pending), how moving a transaction from `from`
/// (`None`: new) to `to` changes its membership: +1 joins, −1 leaves, 0
/// neither. Its entries move their quants times this (the booking rule of
/// `ledger::balance_deltas`).
fn class_factors(from: Option<State>, to: State) -> [i8; 2] {
    CLASSES.map(|counts| i8::from(counts(to)) - i8::from(from.is_some_and(counts)))
}

/// Whether `event` moves a balance: a transaction proposed into, or moved
/// into or out of, the completed or the pending class.
pub fn books_balances(event: &Event) -> bool {
    let (from, to) = match event {
        Event::TransactionProposed { transaction } => (None, transaction.state),
        Event::TransactionProposedRef { transaction } => (None, transaction.state),
        Event::TransactionTransitioned { from, to, .. } => (Some(*from), *to),
        Event::TransactionExpired { .. } => (Some(State::Validated), State::TimedOut),
        _ => return false,
    };
    class_factors(from, to) != [0, 0]
}

fn unknown_account(id: &AccountId) -> FindingKind {
    FindingKind::UnknownAccount { account: id.to_string() }
}

/// A quantity in micro-units (10^-6): every [`Amount`] is one exactly.
pub(crate) type Micros = i128;

const POW10: [Micros; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// Largest magnitude (exclusive) a micro-unit quantity may have to be an
/// [`Amount`]: a 96-bit decimal mantissa at scale 6.
const MICROS_BOUND: u128 = 1 << 96;

/// `a` in micro-units. Exact: amounts have at most six decimal places.
pub(crate) fn micros(a: Amount) -> Micros {
    let d = a.as_decimal();
    let shift = 6u32.checked_sub(d.scale()).expect("an amount has at most six decimal places");
    d.mantissa() * POW10[usize::try_from(shift).expect("small")]
}

/// `m` if it is an amount's worth of micro-units, else `Overflow`.
pub(crate) fn fits(m: Option<Micros>) -> Result<Micros, AmountError> {
    m.filter(|m| m.unsigned_abs() < MICROS_BOUND).ok_or(AmountError::Overflow)
}

/// The amount of `m` micro-units, zero if it is beyond what an amount holds
/// (for figures in a finding only).
fn amount_or_zero(m: Micros) -> Amount {
    fits(Some(m)).map_or(Amount::ZERO, amount)
}

/// The amount of `m` micro-units (canonical form). `m` passed [`fits`].
pub(crate) fn amount(m: Micros) -> Amount {
    if let Ok(small) = i64::try_from(m) {
        return Amount::from_micros(small);
    }
    let d = Decimal::try_from_i128_with_scale(m, 6).expect("checked to fit");
    Amount::from_decimal(d).expect("six decimal places at most")
}

/// Slot value meaning "not an account slot" (authors kept in the side table).
pub(crate) const NO_SLOT: u32 = u32::MAX;
/// `TxRec::extra` value meaning "no side-table record".
pub(crate) const NO_EXTRA: u32 = u32::MAX;
/// `TxRec::workflow` value meaning "workflow index in the side table".
pub(crate) const WIDE_WORKFLOW: u16 = u16::MAX;

/// Trade statistics of one class in micro-units; [`TradeStats`] on demand.
/// The class's balance is `gross_in - gross_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct ClassStats {
    pub(crate) gross_in: Micros,
    pub(crate) gross_out: Micros,
    pub(crate) trades: u64,
    pub(crate) entries: u64,
    pub(crate) partners: u64,
}

impl ClassStats {
    fn trade_stats(&self) -> TradeStats {
        TradeStats {
            balance: amount(self.gross_in - self.gross_out),
            trades: self.trades,
            entries: self.entries,
            gross_in: Total(self.gross_in),
            gross_out: Total(self.gross_out),
            partners: self.partners,
            // Checked when booked.
            volume: Total(self.gross_in + self.gross_out),
        }
    }
}

/// One account. `repr(C)` keeps what every booking touches (stats, the ends
/// of the timeline and transaction list) together in the first three cache
/// lines; the rest is read rarely.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct AccountSlot {
    /// Per class (completed, pending); their balances are the account's.
    pub(crate) classes: [ClassStats; 2],
    pub(crate) timeline: Vec<Point>,
    pub(crate) account: Account,
    pub(crate) opened_seq: u64,
    pub(crate) opened_at_us: u64,
    pub(crate) key_hash: Option<KeyHash>,
    pub(crate) peer: Option<Peer>,
    /// The link ratchet with this neighbour (node accounts with a peer).
    pub(crate) ratchet: Option<Ratchet>,
    /// `account.limits` (min, max) in micro-units, for the limit check.
    limit_micros: [Micros; 2],
    /// `classes` as [`AccountStats`], built on demand, reset by the next
    /// `apply` (see `Projections::stats_built`).
    stats: OnceLock<Box<AccountStats>>,
}

impl Clone for AccountSlot {
    fn clone(&self) -> Self {
        Self {
            account: self.account.clone(),
            opened_seq: self.opened_seq,
            opened_at_us: self.opened_at_us,
            key_hash: self.key_hash.clone(),
            peer: self.peer.clone(),
            ratchet: self.ratchet.clone(),
            classes: self.classes,
            timeline: self.timeline.clone(),
            limit_micros: self.limit_micros,
            stats: OnceLock::new(),
        }
    }
}

/// Equal when everything but the stats cache is.
impl PartialEq for AccountSlot {
    fn eq(&self, other: &Self) -> bool {
        self.account == other.account
            && self.opened_seq == other.opened_seq
            && self.opened_at_us == other.opened_at_us
            && self.key_hash == other.key_hash
            && self.peer == other.peer
            && self.ratchet == other.ratchet
            && self.classes == other.classes
            && self.timeline == other.timeline
    }
}

impl Eq for AccountSlot {}

impl AccountSlot {
    pub(crate) fn new(account: Account, opened_seq: u64, opened_at_us: u64) -> Self {
        Self {
            limit_micros: [micros(account.limits.min()), micros(account.limits.max())],
            account,
            opened_seq,
            opened_at_us,
            key_hash: None,
            peer: None,
            ratchet: None,
            classes: [ClassStats::default(); 2],
            timeline: Vec::new(),
            stats: OnceLock::new(),
        }
    }

    fn set_limits(&mut self, limits: ledger::Limits) {
        self.account.limits = limits;
        self.limit_micros = [micros(limits.min()), micros(limits.max())];
    }

    fn stats_value(&self) -> AccountStats {
        AccountStats {
            completed: self.classes[COMPLETED].trade_stats(),
            pending: self.classes[1 - COMPLETED].trade_stats(),
        }
    }

    /// Completed balance, micro-units.
    pub(crate) fn completed(&self) -> Micros {
        let c = &self.classes[COMPLETED];
        c.gross_in - c.gross_out
    }

    /// Pending balance (pending and completed), micro-units.
    pub(crate) fn pending(&self) -> Micros {
        let c = &self.classes[1 - COMPLETED];
        c.gross_in - c.gross_out
    }

    fn balances(&self) -> Balances {
        Balances { completed: amount(self.completed()), pending: amount(self.pending()) }
    }
}

/// A transaction, compactly (48 bytes): the primary entry inline, the rest
/// (rare) in [`Extras`]; a quant or written time too large for its field,
/// and an author who is an account but not a party of the primary entry,
/// in `Projections::wide` (by uuid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxRec {
    pub(crate) uuid: TxId,
    /// Primary entry's quant in micro-units, [`BIG_QUANT`] when in `wide`.
    pub(crate) quant: i64,
    /// `written_unix_s`, [`BIG_WRITTEN`] when in `wide`.
    pub(crate) written: u32,
    /// Primary entry's payer slot.
    pub(crate) payer: u32,
    /// Primary entry's payee slot.
    pub(crate) payee: u32,
    pub(crate) version: u32,
    /// Index in `Projections::extras`, or [`NO_EXTRA`].
    pub(crate) extra: u32,
    /// Index in `Projections::workflows`, or `WIDE_WORKFLOW`.
    pub(crate) workflow: u16,
    pub(crate) state: State,
    /// Who the author is: [`AUTHOR_PAYER`], [`AUTHOR_PAYEE`], [`AUTHOR_WIDE`]
    /// (an account slot in `wide`) or [`AUTHOR_EXTRA`] (not an open account:
    /// its id in the side table).
    pub(crate) author: u8,
}

const _: () = assert!(std::mem::size_of::<TxRec>() == 48 && std::mem::size_of::<Point>() == 16);

/// `TxRec::quant` value meaning "in `Projections::wide`".
pub(crate) const BIG_QUANT: i64 = i64::MIN;
/// `TxRec::written` value meaning "in `Projections::wide`".
pub(crate) const BIG_WRITTEN: u32 = u32::MAX;
/// `TxRec::author`: the primary entry's payer.
pub(crate) const AUTHOR_PAYER: u8 = 0;
/// `TxRec::author`: the primary entry's payee.
pub(crate) const AUTHOR_PAYEE: u8 = 1;
/// `TxRec::author`: an account slot in `Projections::wide`.
pub(crate) const AUTHOR_WIDE: u8 = 2;
/// `TxRec::author`: not an open account, its id in the side table.
pub(crate) const AUTHOR_EXTRA: u8 = 3;

/// The parts of a [`TxRec`] that do not fit it, rare: set only where the
/// record holds the matching sentinel.
#[derive(Debug, Clone, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) struct Wide {
    pub(crate) quant: Option<Amount>,
    pub(crate) written_unix_s: Option<u64>,
    pub(crate) author: Option<u32>,
}

/// The rarest parts of a transaction: everything but the primary entry's
/// description, which most transactions that have any extra carry alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) struct TxRare {
    /// The author when it is not an open account.
    pub(crate) author: Option<AccountId>,
    /// The workflow index when it does not fit `TxRec::workflow`.
    pub(crate) workflow: Option<u32>,
    /// Primary entry's metadata and remote paths, in one map as format v1 stores them.
    pub(crate) metadata: BTreeMap<String, String>,
    /// Additional entries.
    pub(crate) more: Vec<ExtraEntry>,
}

static NO_METADATA: BTreeMap<String, String> = BTreeMap::new();

/// The side table of the transactions whose record does not hold them
/// whole, by `TxRec::extra`: each one's primary description, as a span of
/// one text (no allocation per transaction), and its [`TxRare`] parts if any.
/// Four bytes per extra: where its description ends, modulo 2^32.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    /// Every description, one after the other.
    pub(crate) text: String,
    /// Per extra, where its description ends in `text` (it starts where the
    /// previous one ends), modulo 2^32: the high half is in `highs`.
    pub(crate) ends: Vec<u32>,
    /// `(extra, high)`: from this extra on, the ends' high half is `high`
    /// (until the next entry), in increasing order; none while the text is
    /// under 4 GiB.
    pub(crate) highs: Vec<(u32, u32)>,
    pub(crate) rares: Vec<TxRare>,
    /// The extra of each of `rares`, increasing.
    pub(crate) rare_of: Vec<u32>,
}

impl Extras {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Appends an extra; the caller checked that its index fits below [`NO_EXTRA`].
    fn push(&mut self, description: &str, rare: TxRare) -> u32 {
        let at = u32::try_from(self.ends.len()).expect("checked by the caller");
        self.text.push_str(description);
        let end = u64::try_from(self.text.len()).expect("usize fits in u64");
        let high = u32::try_from(end >> 32).expect("a text under 2^64 bytes");
        if high != self.highs.last().map_or(0, |h| h.1) {
            self.highs.push((at, high));
        }
        self.ends.push(u32::try_from(end & 0xFFFF_FFFF).expect("the low half"));
        if rare != TxRare::default() {
            self.rare_of.push(at);
            self.rares.push(rare);
        }
        at
    }

    /// Where extra `i`'s description ends in the text.
    pub(crate) fn end(&self, i: usize) -> u64 {
        let at = u32::try_from(i).expect("extras are u32");
        let high = match self.highs.partition_point(|h| h.0 <= at) {
            0 => 0,
            n => self.highs[n - 1].1,
        };
        u64::from(high) << 32 | u64::from(self.ends[i])
    }

    pub(crate) fn get(&self, i: u32) -> ExtraRef<'_> {
        let rare = self.rare_of.binary_search(&i).ok().map(|r| &self.rares[r]);
        let i = ix(i);
        let to = usize::try_from(self.end(i)).expect("within the text");
        let from = if i == 0 { 0 } else { usize::try_from(self.end(i - 1)).expect("within the text") };
        ExtraRef { description: &self.text[from..to], rare }
    }
}

/// One entry of [`Extras`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExtraRef<'a> {
    /// Primary entry's description.
    pub(crate) description: &'a str,
    rare: Option<&'a TxRare>,
}

impl<'a> ExtraRef<'a> {
    pub(crate) fn author(&self) -> Option<&'a AccountId> {
        self.rare.and_then(|r| r.author.as_ref())
    }
    pub(crate) fn workflow(&self) -> Option<u32> {
        self.rare.and_then(|r| r.workflow)
    }
    pub(crate) fn metadata(&self) -> &'a BTreeMap<String, String> {
        self.rare.map_or(&NO_METADATA, |r| &r.metadata)
    }
    pub(crate) fn more(&self) -> &'a [ExtraEntry] {
        self.rare.map_or(&[], |r| r.more.as_slice())
    }
    /// Equal, the workflow index aside (its numbering is not a fact).
    fn same(&self, other: &ExtraRef<'_>) -> bool {
        let strip = |r: Option<&TxRare>| r.map(|r| TxRare { workflow: None, ..r.clone() }).unwrap_or_default();
        self.description == other.description && strip(self.rare) == strip(other.rare)
    }
}

/// An additional entry with its parties as slots.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) struct ExtraEntry {
    pub(crate) payer: u32,
    pub(crate) payee: u32,
    pub(crate) quant: Amount,
    pub(crate) description: String,
    pub(crate) metadata: BTreeMap<String, String>,
}

/// Events warmed ahead of the one applied in a batch (see
/// `Projections::warm`): index buckets this far ahead, the rest `WARM_NEAR`
/// ahead.
const WARM_FAR: usize = 16;
const WARM_NEAR: usize = 6;

/// Transactions per cache chunk.
const CHUNK: usize = 64;
/// Built transactions kept before the cache is dropped (on the next `apply`).
const CACHE_MAX: usize = 1 << 16;

type Chunk = [OnceLock<Box<Transaction>>; CHUNK];

/// `&Transaction`s built on demand from [`TxRec`]s, by transaction slot, in
/// chunks of [`CHUNK`]. Filled through `&self`; reset per transaction when it
/// changes and dropped whole past [`CACHE_MAX`] entries, both under `&mut`.
#[derive(Debug, Default)]
pub(crate) struct TxCache {
    chunks: Vec<OnceLock<Box<Chunk>>>,
    filled: AtomicUsize,
}

impl TxCache {
    pub(crate) fn sized(txs: usize) -> Self {
        let mut cache = Self::default();
        cache.cover(txs);
        cache
    }

    fn get_or_build(&self, slot: usize, build: impl FnOnce() -> Transaction) -> &Transaction {
        let chunk = self.chunks[slot / CHUNK].get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        chunk[slot % CHUNK].get_or_init(|| {
            self.filled.fetch_add(1, Ordering::Relaxed);
            Box::new(build())
        })
    }

    /// Makes room for slots `0..txs`.
    fn cover(&mut self, txs: usize) {
        let need = txs.div_ceil(CHUNK);
        if self.chunks.len() < need {
            self.chunks.resize_with(need, OnceLock::new);
        }
    }

    fn invalidate(&mut self, slot: usize) {
        if let Some(chunk) = self.chunks.get_mut(slot / CHUNK).and_then(OnceLock::get_mut) {
            if chunk[slot % CHUNK].take().is_some() {
                *self.filled.get_mut() -= 1;
            }
        }
    }

    fn trim(&mut self) {
        if *self.filled.get_mut() > CACHE_MAX {
            let n = self.chunks.len();
            self.chunks.clear();
            self.chunks.resize_with(n, OnceLock::new);
            *self.filled.get_mut() = 0;
        }
    }
}

/// Why a set of parts (from a snapshot) is not a consistent projection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PartsError {
    #[error("{0}")]
    Inconsistent(String),
    #[error("amount arithmetic: {0}")]
    Amount(#[from] AmountError),
}

/// An event the projections cannot fold (see [`Projections::try_apply`]):
/// the [`Finding`] that refused it.
pub type Unfoldable = Finding;

/// What [`Projections::try_apply`] resolved while checking an event.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Nothing to carry over.
    Fold,
    /// A new transaction whose primary entry is between these slots, under
    /// this workflow (its index, known for a format-2 proposal).
    Propose { payer: u32, payee: u32, workflow: Option<u32> },
    /// A transition of the transaction in this slot.
    Move { slot: u32 },
}

/// One account's change of gross in and out per class (completed, pending)
/// in a booking being checked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Delta {
    slot: u32,
    gross_in: [Micros; 2],
    gross_out: [Micros; 2],
}

/// The read models, folded from events. Pure and in memory.
#[derive(Debug, Default)]
pub struct Projections {
    pub(crate) seq: u64,
    pub(crate) last_at_us: u64,
    pub(crate) config: Option<NodeConfig>,
    pub(crate) slots: Vec<AccountSlot>,
    pub(crate) by_id: SlotMap<IdKey, u32>,
    pub(crate) ordered: BTreeMap<AccountId, u32>,
    pub(crate) trunkward: Option<u32>,
    /// Link facts of transactions that cross nodes.
    pub(crate) links: HashMap<TxId, Link>,
    /// Neighbours declared with a dialect other than the reference's.
    pub(crate) dialects: BTreeMap<AccountId, Dialect>,
    /// Links closed after a divergence, with the evidence (JSON text).
    pub(crate) closed: BTreeMap<AccountId, String>,
    /// Each link's written versions, in order (what the link feed serves).
    pub(crate) link_logs: BTreeMap<AccountId, Vec<ledger::ratchet::LinkVersion>>,
    /// Fees, soft limits, keys, checkpoints, earlier limits.
    pub(crate) facts: crate::facts::NodeFacts,
    /// The record time of the timeline points: `(seq, at_us)` at each seq
    /// where a point was made at a time other than the previous point's, so
    /// a point's time is that of the last entry at or before its seq (record
    /// times never decrease). One entry per distinct record time.
    pub(crate) times: Vec<(u64, u64)>,
    /// The timeline balances that do not fit a [`Point`], by (account slot, seq).
    pub(crate) big_balances: BTreeMap<(u32, u64), Micros>,
    /// Slots of the transactions in state validated (the ones that may expire).
    pub(crate) validated: std::collections::HashSet<u32, BuildHasherDefault<SlotHasher>>,
    /// Transactions in proposal order.
    pub(crate) txs: Vec<TxRec>,
    /// What does not fit the records of `txs`, by uuid.
    pub(crate) wide: HashMap<TxId, Wide>,
    pub(crate) extras: Extras,
    /// Distinct workflow definitions of transactions, in order of first use.
    pub(crate) workflows: Vec<Workflow>,
    workflow_ids: SlotMap<WorkflowId, Vec<u32>>,
    /// The content hash of each of `workflows`.
    workflow_hash_of: Vec<[u8; 32]>,
    /// Index in `workflows` by content hash (what format-2 proposals name).
    /// Keys are blake3 outputs, so the cheap hasher spreads them.
    workflow_hashes: HashMap<[u8; 32], u32, BuildHasherDefault<SlotHasher>>,
    pub(crate) tx_index: TxIndex,
    /// Per account pair, entries between them per class.
    pub(crate) pairs: PairTable,
    pub(crate) cache: TxCache,
    /// Slots whose stats were built since the last `apply`, which resets them.
    stats_built: Mutex<Vec<u32>>,
    /// Per account, the transactions it is party to: an index for listings,
    /// caught up on use rather than on every `apply`.
    pub(crate) lists: Mutex<TxLists>,
    /// Scratch space of the booking check.
    scratch: Vec<Delta>,
    /// Keep only what the checks read ([`Projections::checks_only`]).
    checks_only: bool,
}

/// Per account slot, the transaction slots it is party to, in proposal
/// order, for transactions `0..upto`.
#[derive(Debug, Default)]
pub(crate) struct TxLists {
    pub(crate) upto: usize,
    pub(crate) lists: Vec<Vec<u32>>,
}

impl TxLists {
    pub(crate) fn of(&self, account: u32) -> &[u32] {
        self.lists.get(ix(account)).map_or(&[], Vec::as_slice)
    }
}

impl Clone for Projections {
    fn clone(&self) -> Self {
        Self {
            seq: self.seq,
            last_at_us: self.last_at_us,
            config: self.config.clone(),
            slots: self.slots.clone(),
            by_id: self.by_id.clone(),
            ordered: self.ordered.clone(),
            trunkward: self.trunkward,
            links: self.links.clone(),
            dialects: self.dialects.clone(),
            closed: self.closed.clone(),
            link_logs: self.link_logs.clone(),
            facts: self.facts.clone(),
            validated: self.validated.clone(),
            times: self.times.clone(),
            big_balances: self.big_balances.clone(),
            txs: self.txs.clone(),
            wide: self.wide.clone(),
            extras: self.extras.clone(),
            workflows: self.workflows.clone(),
            workflow_ids: self.workflow_ids.clone(),
            workflow_hash_of: self.workflow_hash_of.clone(),
            workflow_hashes: self.workflow_hashes.clone(),
            tx_index: self.tx_index.clone(),
            pairs: self.pairs.clone(),
            cache: TxCache::sized(self.txs.len()),
            stats_built: Mutex::default(),
            lists: Mutex::default(),
            scratch: Vec::new(),
            checks_only: self.checks_only,
        }
    }
}

/// Equal when they hold the same facts: indexes, caches and the numbering
/// of workflow definitions aside.
impl PartialEq for Projections {
    fn eq(&self, other: &Self) -> bool {
        let same_txs = self.txs.len() == other.txs.len()
            && self.txs.iter().zip(&other.txs).all(|(a, b)| {
                TxRec { workflow: 0, ..*a } == TxRec { workflow: 0, ..*b }
                    && self.workflow_of(a) == other.workflow_of(b)
            })
            && self.extras.len() == other.extras.len()
            && (0..u32::try_from(self.extras.len()).expect("extras are u32"))
                .all(|i| self.extras.get(i).same(&other.extras.get(i)));
        self.checks_only == other.checks_only
            && self.seq == other.seq
            && self.last_at_us == other.last_at_us
            && self.config == other.config
            && self.slots == other.slots
            && self.ordered == other.ordered
            && self.trunkward == other.trunkward
            && self.links == other.links
            && self.dialects == other.dialects
            && self.closed == other.closed
            && self.link_logs == other.link_logs
            && self.facts == other.facts
            && self.validated == other.validated
            && self.times == other.times
            && self.wide == other.wide
            && self.big_balances == other.big_balances
            && same_txs
    }
}

impl Eq for Projections {}

pub(crate) fn ix(slot: u32) -> usize {
    usize::try_from(slot).expect("u32 fits in usize")
}

/// Event arithmetic was checked by `decide`; failing here is a bug.
const CHECKED: &str = "decide checked the arithmetic";

/// `n + 1` or `n - 1`, `None` on under/overflow.
fn step<T: num_like::Checked>(n: T, adding: bool) -> Option<T> {
    if adding {
        n.add_one()
    } else {
        n.sub_one()
    }
}

mod num_like {
    /// Counters stepped by one.
    pub(crate) trait Checked: Sized {
        fn add_one(self) -> Option<Self>;
        fn sub_one(self) -> Option<Self>;
    }
    impl Checked for u64 {
        fn add_one(self) -> Option<Self> {
            self.checked_add(1)
        }
        fn sub_one(self) -> Option<Self> {
            self.checked_sub(1)
        }
    }
    impl Checked for u32 {
        fn add_one(self) -> Option<Self> {
            self.checked_add(1)
        }
        fn sub_one(self) -> Option<Self> {
            self.checked_sub(1)
        }
    }
}

impl Projections {
    /// Empty projections (seq 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty projections that keep only what [`Projections::try_apply`]'s
    /// checks read, for an audit (`ccnode audit`): the same fold, the same
    /// checks and the same findings, with the accounts, their balances and
    /// limits, and every transaction's parties, amounts, state and version,
    /// but none of the read models that only queries read: no trade stats
    /// (trades, entries, partners: [`Projections::stats`] gives zeros, and
    /// gross sums), no per-pair partner counts, no balance timelines
    /// ([`Projections::timeline`] is empty, the historical balances are
    /// zero), and no descriptions or metadata of entries. Never saved as a
    /// snapshot, never served, never equal to full projections.
    pub fn checks_only() -> Self {
        Self { checks_only: true, ..Self::default() }
    }

    /// Whether these projections were made with [`Projections::checks_only`].
    pub fn is_checks_only(&self) -> bool {
        self.checks_only
    }

    /// Makes room for `n` more accounts.
    pub(crate) fn reserve_accounts(&mut self, n: usize) {
        self.slots.reserve_exact(n);
        self.by_id.reserve(n);
    }

    /// Makes room for up to `n` more transactions (each of them with an
    /// extra, unless only the checks are kept), so that folding them never
    /// copies the tables as they grow: with an allocator that cannot remap,
    /// growing a table holds the old and the new one at once (an audit
    /// knows how many records it will fold; a snapshot load leaves room for
    /// the journal's tail).
    pub fn reserve_transactions(&mut self, n: usize) {
        self.txs.reserve_exact(n);
        self.tx_index.reserve(self.txs.len().saturating_add(n));
        if !self.checks_only {
            self.extras.ends.reserve_exact(n);
        }
    }

    /// Folds one durable event recorded at journal `seq` at `recorded_at_us`
    /// (unix µs).
    ///
    /// `seq` must be strictly greater than the last applied one. Record times
    /// are made monotonic (`max(recorded_at_us, previous)`); journal times
    /// never decrease, so on real journals this changes nothing.
    ///
    /// # Panics
    ///
    /// With the [`Finding`] on an event [`Projections::try_apply`] refuses,
    /// which `decide` could not have produced: a bug.
    pub fn apply(&mut self, seq: u64, recorded_at_us: u64, event: &Event) {
        if let Err(finding) = self.try_apply(seq, recorded_at_us, event) {
            panic!("{CHECKED}: {finding}");
        }
    }

    /// As [`Projections::apply`], but an event that does not fit the state
    /// is refused with a [`Finding`] naming `seq`, and the projections are
    /// left exactly as they were (at the previous seq). Everything is checked
    /// before anything changes:
    ///
    /// - the seq follows the last one; the node is initialised once, first,
    ///   and keeps its name;
    /// - accounts are opened once (one trunkward account) and known wherever
    ///   an event names them; peer facts are on node accounts, and link facts
    ///   (ratchets, keys, cosignatures, dialects, closing) on connected peers;
    /// - a transaction is proposed once, with entries; a transition starts
    ///   from its current state with the next version;
    /// - a booking (each entry moves its quant from payer to payee in each
    ///   class, completed and pending, whose membership changes: the rule of
    ///   `ledger::balance_deltas`) keeps every figure within what the
    ///   projections hold (an [`Amount`] for balances, 128 bits for totals),
    ///   sums to zero, and breaks no limit as `ledger::check_limits` applies
    ///   it (`ledger::limit_broken` on the completed balance, and the pending
    ///   one when the node config has `validate_pending`; the lowest account
    ///   id is named, pending before completed);
    /// - key rotations start from the node's key; signed checkpoints are the
    ///   record after their size and grow; cosigned neighbours' checkpoints
    ///   grow.
    ///
    /// Signatures and Merkle roots are not checked here (`replay` does, with
    /// the chain hashes).
    pub fn try_apply(&mut self, seq: u64, recorded_at_us: u64, event: &Event) -> Result<(), Finding> {
        if seq <= self.seq {
            return Err(Finding { seq, kind: FindingKind::SeqNotIncreasing { last: self.seq } });
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let plan = self.check(seq, event, &mut scratch);
        self.scratch = scratch;
        let plan = plan.map_err(|kind| Finding { seq, kind })?;
        let at_us = recorded_at_us.max(self.last_at_us);
        self.seq = seq;
        self.last_at_us = at_us;
        self.cache.trim();
        for slot in self.stats_built.get_mut().unwrap_or_else(PoisonError::into_inner).drain(..) {
            self.slots[ix(slot)].stats.take();
        }
        // Checked: nothing below can fail on this event.
        match (event, plan) {
            (Event::NodeInitialised { config } | Event::NodeConfigured { config }, _) => {
                self.config = Some(config.clone());
            }
            (Event::AccountOpened { account }, _) => self.open(AccountSlot::new(account.clone(), seq, at_us)),
            (Event::AccountLimitsChanged { id, limits }, _) => {
                let slot = self.slot_mut(id);
                let old = slot.account.limits;
                slot.set_limits(*limits);
                self.facts.apply(seq, at_us, event, Some(old));
                return Ok(());
            }
            (Event::AccountStatusChanged { id, status }, _) => self.slot_mut(id).account.status = *status,
            (Event::AccountKeyChanged { id, key_hash }, _) => self.slot_mut(id).key_hash = Some(key_hash.clone()),
            (Event::PeerConnected { peer }, _) => {
                let slot = self.slot_mut(&peer.account);
                slot.peer = Some(peer.clone());
                let blake3 = ledger::ratchet::blake3_genesis(&peer.initial_hash);
                slot.ratchet = Some(Ratchet { md5: peer.initial_hash.clone(), blake3, count: 0 });
            }
            (Event::LinkAttached { uuid, link }, _) => {
                self.links.insert(*uuid, link.clone());
            }
            (Event::RatchetAdvanced { peer, uuid, version, md5, blake3 }, _) => {
                let state = self.tx_slot(uuid).map_or(State::Validated, |slot| self.txs[ix(slot)].state);
                if let Some(ratchet) = self.slot_mut(peer).ratchet.as_mut() {
                    ratchet.md5.clone_from(md5);
                    ratchet.blake3 = *blake3;
                    ratchet.count += 1;
                }
                let v = ledger::ratchet::LinkVersion {
                    uuid: *uuid,
                    version: *version,
                    state,
                    md5: ledger::ratchet::unhex::<16>(md5).unwrap_or([0; 16]),
                    blake3: *blake3,
                };
                self.link_logs.entry(peer.clone()).or_default().push(v);
            }
            (Event::LinkReconciled { .. }, _) => {}
            (Event::LinkClosed { peer, evidence }, _) => {
                self.closed.insert(peer.clone(), evidence.clone());
            }
            (Event::LinkReopened { peer }, _) => {
                self.closed.remove(peer);
            }
            // Fees, soft limits, keys and checkpoints (`facts`, below).
            (
                Event::FeesConfigured { .. }
                | Event::WarnLimitsChanged { .. }
                | Event::WarnLimitCrossed { .. }
                | Event::NodeKeySet { .. }
                | Event::NodeKeyRotated { .. }
                | Event::CheckpointSigned { .. }
                | Event::PeerKeySet { .. }
                | Event::WitnessCosigned { .. }
                | Event::CheckpointCosigned { .. },
                _,
            ) => {}
            (Event::LinkDialectSet { account, dialect }, _) => {
                match dialect {
                    Dialect::Ccnode => self.dialects.remove(account),
                    other => self.dialects.insert(account.clone(), *other),
                };
            }
            (Event::TransactionProposed { transaction }, Plan::Propose { payer, payee, .. }) => {
                let workflow = self.intern_workflow(&transaction.workflow);
                let slot = self.insert_tx(transaction, workflow, payer, payee).expect(CHECKED);
                self.book(slot, None, transaction.state, Some((seq, at_us))).expect(CHECKED);
            }
            (
                Event::TransactionProposedRef { transaction },
                Plan::Propose { payer, payee, workflow: Some(workflow) },
            ) => {
                let slot = self.insert_tx(transaction, workflow, payer, payee).expect(CHECKED);
                self.book(slot, None, transaction.state, Some((seq, at_us))).expect(CHECKED);
            }
            (Event::WorkflowDefined { workflow }, _) => {
                self.intern_workflow(workflow);
            }
            (Event::TransactionTransitioned { from, to, version, .. }, Plan::Move { slot }) => {
                self.transition(slot, *from, *to, *version, seq, at_us);
            }
            (Event::TransactionExpired { version, .. }, Plan::Move { slot }) => {
                self.transition(slot, State::Validated, State::TimedOut, *version, seq, at_us);
            }
            (
                Event::TransactionProposed { .. }
                | Event::TransactionProposedRef { .. }
                | Event::TransactionTransitioned { .. },
                _,
            )
            | (Event::TransactionExpired { .. }, _) => unreachable!("check plans every transaction event"),
        }
        self.facts.apply(seq, at_us, event, None);
        Ok(())
    }

    /// Whether `event`, recorded at `seq`, fits the state, without changing
    /// anything; what it resolved, so that applying it does not look it up
    /// again. `deltas` is scratch space.
    fn check(&self, seq: u64, event: &Event, deltas: &mut Vec<Delta>) -> Result<Plan, FindingKind> {
        let Some(current) = &self.config else {
            return match event {
                Event::NodeInitialised { .. } => Ok(Plan::Fold),
                _ => Err(FindingKind::NotInitialised),
            };
        };
        let account = |id: &AccountId| self.index_of(id).ok_or_else(|| unknown_account(id));
        let peer = |id: &AccountId| match self.slot(id) {
            Some(slot) if slot.peer.is_some() => Ok(Plan::Fold),
            _ => Err(FindingKind::NotAPeer { account: id.to_string() }),
        };
        let transaction =
            |uuid: &TxId| self.tx_slot(uuid).ok_or_else(|| FindingKind::UnknownTransaction { uuid: uuid.to_string() });
        match event {
            Event::NodeInitialised { .. } => Err(FindingKind::InitialisedTwice),
            Event::NodeConfigured { config } if config.name != current.name => {
                Err(FindingKind::NameChanged { from: current.name.to_string(), to: config.name.to_string() })
            }
            Event::NodeConfigured { .. } | Event::NodeKeySet { .. } | Event::FeesConfigured { policy: None } => {
                Ok(Plan::Fold)
            }
            Event::AccountOpened { account } => {
                let id = &account.id;
                if self.index_of(id).is_some() {
                    return Err(FindingKind::AccountOpenedTwice { account: id.to_string() });
                }
                if account.kind == AccountKind::Trunkward && self.trunkward.is_some() {
                    return Err(FindingKind::SecondTrunkward { account: id.to_string() });
                }
                if self.slots.len() >= ix(NO_SLOT) {
                    return Err(FindingKind::TooMany { what: "accounts" });
                }
                Ok(Plan::Fold)
            }
            Event::AccountLimitsChanged { id, .. }
            | Event::AccountStatusChanged { id, .. }
            | Event::AccountKeyChanged { id, .. }
            | Event::WarnLimitsChanged { id, .. } => account(id).map(|_| Plan::Fold),
            Event::FeesConfigured { policy: Some(policy) } => account(&policy.account).map(|_| Plan::Fold),
            Event::PeerConnected { peer } => {
                let slot = &self.slots[ix(account(&peer.account)?)];
                if matches!(slot.account.kind, AccountKind::User { .. }) {
                    return Err(FindingKind::PeerOnUserAccount { account: peer.account.to_string() });
                }
                Ok(Plan::Fold)
            }
            Event::LinkAttached { uuid, .. } | Event::LinkReconciled { uuid, .. } => {
                transaction(uuid).map(|_| Plan::Fold)
            }
            Event::WarnLimitCrossed { id, uuid, .. } => {
                transaction(uuid)?;
                account(id).map(|_| Plan::Fold)
            }
            Event::PeerKeySet { peer: id, .. }
            | Event::CheckpointCosigned { peer: id, .. }
            | Event::LinkDialectSet { account: id, .. }
            | Event::LinkClosed { peer: id, .. }
            | Event::LinkReopened { peer: id }
            | Event::RatchetAdvanced { peer: id, .. } => peer(id),
            Event::WitnessCosigned { peer: id, .. } => {
                peer(id)?;
                self.facts.check(seq, event).map(|()| Plan::Fold)
            }
            Event::NodeKeyRotated { .. } | Event::CheckpointSigned { .. } => {
                self.facts.check(seq, event).map(|()| Plan::Fold)
            }
            Event::TransactionProposed { transaction: tx } => self.check_proposal(current, tx, None, deltas),
            Event::TransactionProposedRef { transaction: tx } => {
                let Some(&workflow) = self.workflow_hashes.get(&tx.workflow.hash) else {
                    return Err(FindingKind::UndefinedWorkflow {
                        uuid: tx.uuid.to_string(),
                        workflow: tx.workflow.id.to_string(),
                    });
                };
                self.check_proposal(current, tx, Some(workflow), deltas)
            }
            Event::WorkflowDefined { .. } => Ok(Plan::Fold),
            Event::TransactionTransitioned { uuid, from, to, version, .. } => {
                self.check_transition(current, uuid, *from, *to, *version, deltas)
            }
            Event::TransactionExpired { uuid, version, .. } => {
                self.check_transition(current, uuid, State::Validated, State::TimedOut, *version, deltas)
            }
        }
    }

    /// Whether `tx` may be proposed: new, with entries between known
    /// accounts, within their limits.
    fn check_proposal<W>(
        &self,
        config: &NodeConfig,
        tx: &Transaction<W>,
        workflow: Option<u32>,
        deltas: &mut Vec<Delta>,
    ) -> Result<Plan, FindingKind> {
        let account = |id: &AccountId| self.index_of(id).ok_or_else(|| unknown_account(id));
        let uuid = || tx.uuid.to_string();
        let Some((primary, more)) = tx.entries.split_first() else {
            return Err(FindingKind::NoEntries { uuid: uuid() });
        };
        if self.tx_slot(&tx.uuid).is_some() {
            return Err(FindingKind::DuplicateTransaction { uuid: uuid() });
        }
        if self.txs.len() >= ix(NO_EXTRA) {
            return Err(FindingKind::TooMany { what: "transactions" });
        }
        let (payer, payee) = (account(&primary.payer)?, account(&primary.payee)?);
        let more = more
            .iter()
            .map(|e| Ok((account(&e.payer)?, account(&e.payee)?, micros(e.quant))))
            .collect::<Result<Vec<_>, FindingKind>>()?;
        let legs = std::iter::once((payer, payee, micros(primary.quant))).chain(more);
        self.check_booking(config, legs, None, tx.state, deltas)?;
        Ok(Plan::Propose { payer, payee, workflow })
    }

    /// Whether the transaction `uuid` may move from `from` to `to` as `version`.
    fn check_transition(
        &self,
        config: &NodeConfig,
        uuid: &TxId,
        from: State,
        to: State,
        version: u32,
        deltas: &mut Vec<Delta>,
    ) -> Result<Plan, FindingKind> {
        let slot = self.tx_slot(uuid).ok_or_else(|| FindingKind::UnknownTransaction { uuid: uuid.to_string() })?;
        let rec = &self.txs[ix(slot)];
        if rec.state != from {
            return Err(FindingKind::StaleState { uuid: uuid.to_string(), claimed: from, actual: rec.state });
        }
        if rec.version.checked_add(1) != Some(version) {
            return Err(FindingKind::VersionSkip { uuid: uuid.to_string(), current: rec.version, claimed: version });
        }
        let more = self.extra_of(rec).map_or(&[][..], |x| x.more());
        let legs = std::iter::once((rec.payer, rec.payee, self.quant_micros(rec)))
            .chain(more.iter().map(|e| (e.payer, e.payee, micros(e.quant))));
        self.check_booking(config, legs, Some(from), to, deltas)?;
        Ok(Plan::Move { slot })
    }

    /// Whether booking `legs` (payer slot, payee slot, quant) from `from` to
    /// `to` keeps every touched account's figures in range and within its
    /// limits, and sums to zero (see [`Projections::try_apply`]).
    fn check_booking(
        &self,
        config: &NodeConfig,
        legs: impl Iterator<Item = (u32, u32, Micros)>,
        from: Option<State>,
        to: State,
        deltas: &mut Vec<Delta>,
    ) -> Result<(), FindingKind> {
        let factors = class_factors(from, to);
        if factors == [0, 0] {
            return Ok(());
        }
        let totals = |slot: u32, class: usize| FindingKind::TotalsOverflow {
            account: self.slots[ix(slot)].account.id.to_string(),
            which: CLASS_NAMES[class],
        };
        // Per account (payee, then payer, in entry order), the change of its
        // gross in and out per class.
        deltas.clear();
        for (payer, payee, quant) in legs {
            for (me, paying) in [(payee, false), (payer, true)] {
                let i = match deltas.iter().position(|d| d.slot == me) {
                    Some(i) => i,
                    None => {
                        deltas.push(Delta { slot: me, ..Delta::default() });
                        deltas.len() - 1
                    }
                };
                let d = &mut deltas[i];
                for (class, &factor) in factors.iter().enumerate() {
                    let gross = if paying { &mut d.gross_out[class] } else { &mut d.gross_in[class] };
                    *gross = match factor {
                        0 => continue,
                        1 => gross.checked_add(quant),
                        _ => gross.checked_sub(quant),
                    }
                    .ok_or_else(|| totals(me, class))?;
                }
            }
        }
        let mut sums = [0 as Micros; 2];
        // The limit decide would name: lowest account id, pending first.
        let mut broken: Option<FindingKind> = None;
        for d in deltas.iter() {
            let slot = &self.slots[ix(d.slot)];
            let id = &slot.account.id;
            let mut after = [(0 as Micros, 0 as Micros); 2];
            for (class, &factor) in factors.iter().enumerate() {
                if factor == 0 {
                    continue;
                }
                let c = &slot.classes[class];
                let (gross_in, gross_out) = c
                    .gross_in
                    .checked_add(d.gross_in[class])
                    .zip(c.gross_out.checked_add(d.gross_out[class]))
                    .filter(|(i, o)| i.checked_add(*o).is_some())
                    .ok_or_else(|| totals(d.slot, class))?;
                let change = d.gross_in[class].checked_sub(d.gross_out[class]).ok_or_else(|| totals(d.slot, class))?;
                let balance = fits(gross_in.checked_sub(gross_out))
                    .map_err(|_| FindingKind::Overflow { account: id.to_string() })?;
                sums[class] =
                    sums[class].checked_add(change).ok_or_else(|| FindingKind::Overflow { account: id.to_string() })?;
                after[class] = (change, balance);
            }
            let named_earlier = |b: &FindingKind| matches!(b, FindingKind::LimitBroken { account, .. } if account.as_str() < id.as_str());
            if broken.as_ref().is_some_and(named_earlier) {
                continue;
            }
            let [min, max] = slot.limit_micros;
            let checked = [(1 - COMPLETED, config.validate_pending), (COMPLETED, true)];
            for (class, limited) in checked {
                let (change, balance) = after[class];
                if limited && factors[class] != 0 && ledger::limit_broken(change, balance, balance, min, max).is_some()
                {
                    broken = Some(FindingKind::LimitBroken {
                        account: id.to_string(),
                        which: CLASS_NAMES[class],
                        change: amount_or_zero(change),
                        balance: amount(balance),
                        min: slot.account.limits.min(),
                        max: slot.account.limits.max(),
                    });
                    break;
                }
            }
        }
        if let Some(finding) = broken {
            return Err(finding);
        }
        if sums != [0, 0] {
            let [completed, pending] = sums.map(amount_or_zero);
            return Err(FindingKind::NotZeroSum { completed, pending });
        }
        Ok(())
    }

    pub(crate) fn open(&mut self, slot: AccountSlot) {
        let index =
            u32::try_from(self.slots.len()).ok().filter(|&i| i != NO_SLOT).expect("fewer than 2^32 - 1 accounts");
        self.by_id.insert(IdKey::new(&slot.account.id), index);
        self.ordered.insert(slot.account.id.clone(), index);
        if slot.account.kind == AccountKind::Trunkward {
            self.trunkward = Some(index);
        }
        self.slots.push(slot);
    }

    fn slot_mut(&mut self, id: &AccountId) -> &mut AccountSlot {
        let index =
            *self.by_id.get(id.as_str().as_bytes()).unwrap_or_else(|| panic!("event names unknown account {id}"));
        &mut self.slots[ix(index)]
    }

    fn slot(&self, id: &AccountId) -> Option<&AccountSlot> {
        self.by_id.get(id.as_str().as_bytes()).map(|&i| &self.slots[ix(i)])
    }

    pub(crate) fn index_of(&self, id: &AccountId) -> Option<u32> {
        self.by_id.get(id.as_str().as_bytes()).copied()
    }

    /// The transaction slot of `uuid`.
    pub(crate) fn tx_slot(&self, uuid: &TxId) -> Option<u32> {
        self.tx_index.get(uuid, |slot| self.txs[ix(slot)].uuid)
    }

    /// The index of `workflow` in the table of definitions, added if new.
    fn intern_workflow(&mut self, workflow: &Workflow) -> u32 {
        if let Some(i) = self.workflow_index(workflow) {
            return i;
        }
        let i = u32::try_from(self.workflows.len()).expect("fewer than 2^32 workflow definitions");
        self.index_workflow(i, workflow);
        self.workflows.push(workflow.clone());
        i
    }

    /// The index of `workflow` in the table of definitions, if it is there.
    fn workflow_index(&self, workflow: &Workflow) -> Option<u32> {
        // Newest first: transactions usually carry the current definition.
        let known = self.workflow_ids.get(&workflow.id)?;
        known.iter().rev().copied().find(|&i| self.workflows[ix(i)] == *workflow)
    }

    /// Indexes the definition at table index `i` by id and content hash.
    fn index_workflow(&mut self, i: u32, workflow: &Workflow) {
        self.workflow_ids.entry(workflow.id.clone()).or_default().push(i);
        let hash = workflow.content_hash();
        self.workflow_hash_of.push(hash);
        self.workflow_hashes.insert(hash, i);
    }

    /// The reference to `workflow`: its stored hash when it is in the table
    /// (no re-encoding), else computed.
    pub(crate) fn workflow_ref_of(&self, workflow: &Workflow) -> ledger::WorkflowRef {
        match self.workflow_index(workflow) {
            Some(i) => ledger::WorkflowRef { id: workflow.id.clone(), hash: self.workflow_hash_of[ix(i)] },
            None => ledger::WorkflowRef::of(workflow),
        }
    }

    pub(crate) fn workflow_of(&self, rec: &TxRec) -> &Workflow {
        let i = match rec.workflow {
            WIDE_WORKFLOW => {
                self.extra_of(rec).and_then(|x| x.workflow()).expect("wide workflow index in the side table")
            }
            narrow => u32::from(narrow),
        };
        &self.workflows[ix(i)]
    }

    /// The workflow id of a stored transaction.
    pub(crate) fn workflow_id_of(&self, rec: &TxRec) -> &str {
        self.workflow_of(rec).id.as_str()
    }

    pub(crate) fn extra_of(&self, rec: &TxRec) -> Option<ExtraRef<'_>> {
        (rec.extra != NO_EXTRA).then(|| self.extras.get(rec.extra))
    }

    /// The author of a stored transaction.
    pub(crate) fn author_of<'a>(&'a self, rec: &TxRec) -> &'a AccountId {
        match self.author_slot(rec) {
            NO_SLOT => self.extra_of(rec).and_then(|x| x.author()).expect("author in the side table"),
            slot => &self.slots[ix(slot)].account.id,
        }
    }

    /// The author's account slot, [`NO_SLOT`] when it is not an open account.
    pub(crate) fn author_slot(&self, rec: &TxRec) -> u32 {
        match rec.author {
            AUTHOR_PAYER => rec.payer,
            AUTHOR_PAYEE => rec.payee,
            AUTHOR_WIDE => self.wide_of(rec).author.expect("wide author"),
            _ => NO_SLOT,
        }
    }

    fn wide_of(&self, rec: &TxRec) -> &Wide {
        self.wide.get(&rec.uuid).expect("a record's wide parts")
    }

    /// The primary entry's quant.
    pub(crate) fn quant_of(&self, rec: &TxRec) -> Amount {
        match rec.quant {
            BIG_QUANT => self.wide_of(rec).quant.expect("wide quant"),
            q => Amount::from_micros(q),
        }
    }

    /// The primary entry's quant, micro-units.
    pub(crate) fn quant_micros(&self, rec: &TxRec) -> Micros {
        match rec.quant {
            BIG_QUANT => micros(self.wide_of(rec).quant.expect("wide quant")),
            q => Micros::from(q),
        }
    }

    /// `written_unix_s` of a stored transaction.
    pub(crate) fn written_of(&self, rec: &TxRec) -> u64 {
        match rec.written {
            BIG_WRITTEN => self.wide_of(rec).written_unix_s.expect("wide written time"),
            w => u64::from(w),
        }
    }

    /// As [`Projections::register`], for a transaction not yet stored whose
    /// primary entry is from slot `payer` to slot `payee`.
    fn insert_tx<W>(&mut self, tx: &Transaction<W>, wide: u32, payer: u32, payee: u32) -> Result<u32, PartsError> {
        let slot = u32::try_from(self.txs.len())
            .ok()
            .filter(|&s| s != u32::MAX)
            .ok_or_else(|| PartsError::Inconsistent("too many transactions".into()))?;
        let unknown =
            |party: &AccountId| PartsError::Inconsistent(format!("{} names unknown account {party}", tx.uuid));
        let (primary, more) = tx
            .entries
            .split_first()
            .ok_or_else(|| PartsError::Inconsistent(format!("transaction {} without entries", tx.uuid)))?;
        let full = !self.checks_only;
        let mut extra = TxRare::default();
        for e in more {
            extra.more.push(ExtraEntry {
                payer: self.index_of(&e.payer).ok_or_else(|| unknown(&e.payer))?,
                payee: self.index_of(&e.payee).ok_or_else(|| unknown(&e.payee))?,
                quant: e.quant,
                description: if full { e.description.clone() } else { String::new() },
                metadata: if full { e.stored_map() } else { BTreeMap::new() },
            });
        }
        let mut parts = Wide::default();
        let author = if tx.author == primary.payer {
            AUTHOR_PAYER
        } else if tx.author == primary.payee {
            AUTHOR_PAYEE
        } else if let Some(slot) = self.index_of(&tx.author) {
            parts.author = Some(slot);
            AUTHOR_WIDE
        } else {
            extra.author = Some(tx.author.clone());
            AUTHOR_EXTRA
        };
        let quant = match i64::try_from(micros(primary.quant)) {
            Ok(q) if q != BIG_QUANT => q,
            _ => {
                parts.quant = Some(primary.quant);
                BIG_QUANT
            }
        };
        let written = match u32::try_from(tx.written_unix_s) {
            Ok(w) if w != BIG_WRITTEN => w,
            _ => {
                parts.written_unix_s = Some(tx.written_unix_s);
                BIG_WRITTEN
            }
        };
        let workflow = match u16::try_from(wide) {
            Ok(narrow) if narrow != WIDE_WORKFLOW => narrow,
            _ => {
                extra.workflow = Some(wide);
                WIDE_WORKFLOW
            }
        };
        if full {
            extra.metadata = primary.stored_map();
        }
        // An audit keeps no descriptions: only queries read them.
        let description = if full { primary.description.as_str() } else { "" };
        let extra = if extra == TxRare::default() && description.is_empty() {
            NO_EXTRA
        } else {
            u32::try_from(self.extras.len()).ok().filter(|&i| i != NO_EXTRA).expect("slot checked above");
            self.extras.push(description, extra)
        };
        let rec = TxRec {
            uuid: tx.uuid,
            quant,
            written,
            payer,
            payee,
            version: tx.version,
            extra,
            workflow,
            state: tx.state,
            author,
        };
        if parts != Wide::default() {
            self.wide.insert(tx.uuid, parts);
        }
        self.tx_index.insert(&tx.uuid, slot);
        self.txs.push(rec);
        self.cache.cover(self.txs.len());
        Ok(slot)
    }

    /// Sets the workflow table of projections that hold no transaction yet.
    pub(crate) fn restore_workflows(&mut self, workflows: Vec<Workflow>) -> Result<(), PartsError> {
        if !self.txs.is_empty() || !self.workflows.is_empty() {
            return Err(PartsError::Inconsistent("workflows restored twice".into()));
        }
        u32::try_from(workflows.len()).map_err(|_| PartsError::Inconsistent("too many workflows".into()))?;
        for (i, workflow) in (0u32..).zip(&workflows) {
            self.index_workflow(i, workflow);
        }
        self.workflows = workflows;
        Ok(())
    }

    /// The accounts party to `rec`'s entries, in entry order (payer then
    /// payee), without repeats.
    fn parties(&self, rec: &TxRec) -> Parties {
        let mut parties = Parties::Two([rec.payer, rec.payee], if rec.payer == rec.payee { 1 } else { 2 });
        if let Some(x) = self.extra_of(rec).filter(|x| !x.more().is_empty()) {
            let mut all = vec![rec.payer];
            for party in [rec.payee].into_iter().chain(x.more().iter().flat_map(|e| [e.payer, e.payee])) {
                if !all.contains(&party) {
                    all.push(party);
                }
            }
            parties = Parties::Many(all);
        }
        parties
    }

    /// A transaction as `ledger` models it, built from its record.
    pub(crate) fn build(&self, slot: u32) -> Transaction {
        let rec = &self.txs[ix(slot)];
        let extra = self.extra_of(rec);
        let id = |slot: u32| self.slots[ix(slot)].account.id.clone();
        let mut entries = Vec::with_capacity(1 + extra.map_or(0, |x| x.more().len()));
        let entry = |payer: AccountId, payee: AccountId, quant, description: String, map: BTreeMap<String, String>| {
            let (metadata, remote) = Entry::split_stored(&payer, &payee, map);
            Entry { payer, payee, quant, description, metadata, remote }
        };
        entries.push(entry(
            id(rec.payer),
            id(rec.payee),
            self.quant_of(rec),
            extra.map(|x| x.description.to_owned()).unwrap_or_default(),
            extra.map(|x| x.metadata().clone()).unwrap_or_default(),
        ));
        for e in extra.iter().flat_map(|x| x.more()) {
            entries.push(entry(id(e.payer), id(e.payee), e.quant, e.description.clone(), e.metadata.clone()));
        }
        Transaction {
            uuid: rec.uuid,
            version: rec.version,
            state: rec.state,
            workflow: self.workflow_of(rec).clone(),
            author: self.author_of(rec).clone(),
            written_unix_s: self.written_of(rec),
            entries,
        }
    }

    /// Folds `batch` in order, as [`Projections::try_apply`] each of its
    /// events (`record` gives an item's seq, record time and event), reading
    /// what each will touch a few events ahead of it (`warm`), which overlaps
    /// those cache misses. Stops at the first event refused, with its finding:
    /// the events before it are folded, it and those after are not.
    pub fn try_apply_batch<'e, T>(
        &mut self,
        batch: &'e [T],
        record: impl Fn(&'e T) -> (u64, u64, &'e Event),
    ) -> Result<(), Finding> {
        let mut sink = 0u64;
        for (i, item) in batch.iter().enumerate() {
            if let Some(ahead) = batch.get(i + WARM_FAR) {
                sink ^= self.warm(record(ahead).2, true);
            }
            if let Some(ahead) = batch.get(i + WARM_NEAR) {
                sink ^= self.warm(record(ahead).2, false);
            }
            let (seq, at_us, event) = record(item);
            self.try_apply(seq, at_us, event)?;
        }
        std::hint::black_box(sink);
        Ok(())
    }

    /// Reads what applying `event` will read first (index buckets, the
    /// parties' slots and timeline ends), so that applying it soon after
    /// finds them in the cache. Folding a batch, calling this a few events
    /// ahead overlaps those cache misses with other work instead of taking
    /// them one after another. Changes nothing; returns a value only to keep
    /// the reads.
    ///
    /// `far` warms only the first reads (index buckets), whose results the
    /// others need: call it further ahead.
    pub(crate) fn warm(&self, event: &Event, far: bool) -> u64 {
        let (parties, index) = match event {
            Event::TransactionProposed { transaction: Transaction { uuid, entries, .. } }
            | Event::TransactionProposedRef { transaction: Transaction { uuid, entries, .. } } => {
                let Some(primary) = entries.first() else { return 0 };
                let parties = (self.index_of(&primary.payer), self.index_of(&primary.payee));
                if far {
                    let found = parties.0.unwrap_or(0) ^ parties.1.unwrap_or(0);
                    return self.tx_index.warm(uuid) ^ u64::from(found);
                }
                (parties, 0)
            }
            Event::TransactionTransitioned { uuid, .. } if far => return self.tx_index.warm(uuid),
            Event::TransactionTransitioned { uuid, .. } => match self.tx_slot(uuid) {
                Some(slot) => {
                    let rec = &self.txs[ix(slot)];
                    ((Some(rec.payer), Some(rec.payee)), u64::from(rec.version))
                }
                None => return 0,
            },
            _ => return 0,
        };
        let (Some(payer), Some(payee)) = parties else { return index };
        let touch = |slot: u32| {
            let s = &self.slots[ix(slot)];
            s.classes[0].trades ^ s.classes[1].trades ^ s.timeline.last().map_or(0, |p| p.seq)
        };
        let pair = if self.checks_only { 0 } else { self.pairs.warm(payer, payee) };
        index ^ touch(payer) ^ touch(payee) ^ pair
    }

    /// The per-account transaction lists, caught up with every transaction.
    pub(crate) fn lists(&self) -> std::sync::MutexGuard<'_, TxLists> {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        self.catch_up(&mut lists);
        lists
    }

    /// Catches the per-account lists up now (they are otherwise caught up
    /// by the first listing that needs them).
    pub fn index_transactions(&mut self) {
        let mut lists = std::mem::take(self.lists.get_mut().unwrap_or_else(PoisonError::into_inner));
        self.catch_up(&mut lists);
        *self.lists.get_mut().unwrap_or_else(PoisonError::into_inner) = lists;
    }

    /// Appends transactions `lists.upto..` to their parties' lists: counts
    /// first, so each list grows once to its exact size.
    fn catch_up(&self, lists: &mut TxLists) {
        if lists.upto == self.txs.len() {
            return;
        }
        lists.lists.resize_with(self.slots.len(), Vec::new);
        let new = lists.upto..self.txs.len();
        if new.len() < self.slots.len() / 64 {
            // A few new transactions (a live node between two listings): no
            // counting pass over every account.
            for (slot, rec) in (u32::try_from(new.start).expect("slots are u32")..).zip(&self.txs[new]) {
                for &party in self.parties(rec).as_slice() {
                    lists.lists[ix(party)].push(slot);
                }
            }
            lists.upto = self.txs.len();
            return;
        }
        let mut counts = vec![0u32; self.slots.len()];
        for rec in &self.txs[new.clone()] {
            for &party in self.parties(rec).as_slice() {
                counts[ix(party)] += 1;
            }
        }
        for (list, &count) in lists.lists.iter_mut().zip(&counts) {
            if count > 0 {
                list.reserve_exact(ix(count));
            }
        }
        for (slot, rec) in (u32::try_from(new.start).expect("slots are u32")..).zip(&self.txs[new]) {
            for &party in self.parties(rec).as_slice() {
                lists.lists[ix(party)].push(slot);
            }
        }
        lists.upto = self.txs.len();
    }

    /// The transaction in slot `slot`, built on first use.
    pub(crate) fn tx_ref(&self, slot: u32) -> &Transaction {
        self.cache.get_or_build(ix(slot), || self.build(slot))
    }

    /// Moves the transaction in `slot` (checked: in state `from`, at the
    /// version before `version`) to `to`.
    fn transition(&mut self, slot: u32, from: State, to: State, version: u32, seq: u64, at_us: u64) {
        let rec = &mut self.txs[ix(slot)];
        rec.state = to;
        rec.version = version;
        self.cache.invalidate(ix(slot));
        self.book(slot, Some(from), to, Some((seq, at_us))).expect(CHECKED);
    }

    /// Books moving transaction `slot` from `from` (None = new) to `to`:
    /// balances, stats, and (when `at` is given) timeline points. Each entry
    /// moves `quant` from payer to payee, in each class (completed, pending)
    /// whose membership changes.
    pub(crate) fn book(
        &mut self,
        slot: u32,
        from: Option<State>,
        to: State,
        at: Option<(u64, u64)>,
    ) -> Result<(), PartsError> {
        if to == State::Validated {
            self.validated.insert(slot);
        } else if from == Some(State::Validated) {
            self.validated.remove(&slot);
        }
        let factors = class_factors(from, to);
        if factors == [0, 0] {
            return Ok(());
        }
        let rec = self.txs[ix(slot)];
        let primary = (rec.payer, rec.payee, self.quant_micros(&rec));
        let more: Vec<(u32, u32, Micros)> = match self.extra_of(&rec) {
            Some(x) if !x.more().is_empty() => x.more().iter().map(|e| (e.payer, e.payee, micros(e.quant))).collect(),
            _ => Vec::new(),
        };
        let parties = self.parties(&rec);
        let parties = parties.as_slice();
        // Checks only: the balances (gross in and out), no trade stats,
        // partner counts or timeline points.
        let full = !self.checks_only;

        // Trade stats of each class whose membership changes.
        let active: &[(usize, bool)] = match factors {
            [0, p] => &[(1, p > 0)][..],
            [c, 0] => &[(0, c > 0)][..],
            [c, p] => &[(0, c > 0), (1, p > 0)][..],
        };
        let inconsistent = |what: &str| PartsError::Inconsistent(format!("trade stats {what} would go negative"));
        for &(payer, payee, quant) in std::iter::once(&primary).chain(&more) {
            if payer == payee {
                // A self-entry: one entry, on both sides of the gross, no partner.
                let s = &mut self.slots[ix(payer)].classes;
                for &(class, adding) in active {
                    let c = &mut s[class];
                    if full {
                        c.entries = step(c.entries, adding).ok_or_else(|| inconsistent("entries"))?;
                    }
                    let signed = if adding { quant } else { -quant };
                    c.gross_in = c.gross_in.checked_add(signed).ok_or(AmountError::Overflow)?;
                    c.gross_out = c.gross_out.checked_add(signed).ok_or(AmountError::Overflow)?;
                }
                continue;
            }
            let mut partner = [0i8; 2];
            if full {
                let counts = self.pairs.counts_mut(payer, payee);
                for &(class, adding) in active {
                    let before = counts[class];
                    counts[class] = step(before, adding).ok_or_else(|| inconsistent("partners"))?;
                    partner[class] = match (before, counts[class]) {
                        (0, _) => 1,
                        (_, 0) => -1,
                        _ => 0,
                    };
                }
            }
            for (me, paying) in [(payer, true), (payee, false)] {
                let s = &mut self.slots[ix(me)].classes;
                for &(class, adding) in active {
                    let c = &mut s[class];
                    if full {
                        c.entries = step(c.entries, adding).ok_or_else(|| inconsistent("entries"))?;
                    }
                    let signed = if adding { quant } else { -quant };
                    let gross = if paying { &mut c.gross_out } else { &mut c.gross_in };
                    *gross = gross.checked_add(signed).ok_or(AmountError::Overflow)?;
                    if !full {
                        continue;
                    }
                    c.partners = match partner[class] {
                        1 => c.partners.checked_add(1),
                        -1 => c.partners.checked_sub(1),
                        _ => Some(c.partners),
                    }
                    .ok_or_else(|| inconsistent("partners"))?;
                }
            }
        }
        // Trades, and a timeline point where the completed balance moved
        // (a net change of the account over all entries).
        let timeline = at.filter(|_| full && factors[COMPLETED] != 0);
        let mut timed = false;
        for &party in parties {
            let s = &mut self.slots[ix(party)];
            for &(class, adding) in active {
                let c = &mut s.classes[class];
                if full {
                    c.trades = step(c.trades, adding).ok_or_else(|| inconsistent("trades"))?;
                }
                c.gross_in.checked_add(c.gross_out).ok_or(AmountError::Overflow)?;
                fits(c.gross_in.checked_sub(c.gross_out))?;
            }
            if let Some((seq, at_us)) = timeline {
                let moved =
                    std::iter::once(&primary).chain(&more).try_fold(0, |net: Micros, &(payer, payee, quant)| {
                        let net = if payee == party { net.checked_add(quant)? } else { net };
                        if payer == party {
                            net.checked_sub(quant)
                        } else {
                            Some(net)
                        }
                    });
                if moved.ok_or(AmountError::Overflow)? != 0 {
                    let balance = i64::try_from(s.completed()).ok().filter(|&b| b != BIG_BALANCE);
                    s.timeline.push(Point { seq, balance: balance.unwrap_or(BIG_BALANCE) });
                    if balance.is_none() {
                        self.big_balances.insert((party, seq), s.completed());
                    }
                    if !timed && self.times.last().is_none_or(|&(_, t)| t != at_us) {
                        self.times.push((seq, at_us));
                    }
                    timed = true;
                }
            }
        }
        Ok(())
    }
}

/// The distinct parties of a transaction: inline for one entry.
#[derive(Debug)]
enum Parties {
    /// The first `n` of the array.
    Two([u32; 2], usize),
    Many(Vec<u32>),
}

impl Parties {
    fn as_slice(&self) -> &[u32] {
        match self {
            Parties::Two(two, n) => &two[..*n],
            Parties::Many(all) => all,
        }
    }
}

impl Projections {
    /// Last applied seq, 0 if none.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Record time of the last applied event (made monotonic), 0 if none.
    pub fn last_at_us(&self) -> u64 {
        self.last_at_us
    }

    /// Node settings, `None` before `NodeInitialised`.
    pub fn config(&self) -> Option<&NodeConfig> {
        self.config.as_ref()
    }

    /// An account's current configuration.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.slot(id).map(|s| &s.account)
    }

    /// All accounts, ordered by id.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.ordered.values().map(|&i| &self.slots[ix(i)].account)
    }

    /// Number of open accounts.
    pub fn account_count(&self) -> usize {
        self.slots.len()
    }

    /// An account's stored key hash.
    pub fn key_hash(&self, id: &AccountId) -> Option<&KeyHash> {
        self.slot(id).and_then(|s| s.key_hash.as_ref())
    }

    /// The versions written on the link with `peer`, in order.
    pub fn link_log(&self, peer: &AccountId) -> &[ledger::ratchet::LinkVersion] {
        self.link_logs.get(peer).map_or(&[], Vec::as_slice)
    }

    /// Fees, soft limits and their crossings, keys, checkpoints.
    pub fn facts(&self) -> &crate::facts::NodeFacts {
        &self.facts
    }

    /// Every neighbour's ratchet, by account.
    pub fn ratchets(&self) -> impl Iterator<Item = (&AccountId, &Ratchet)> {
        self.accounts().filter_map(|a| LedgerView::ratchet(self, &a.id).map(|r| (&a.id, r)))
    }

    /// Transactions crossing a link to one of `peers` that may still change
    /// (validated or pending), by uuid. O(transactions that cross nodes).
    pub fn open_crossing(&self, peers: &[AccountId]) -> Vec<TxId> {
        let mut open: Vec<TxId> = self
            .links
            .iter()
            .filter(|(_, link)| link.peers().any(|p| peers.contains(p)))
            .filter(|(uuid, _)| {
                LedgerView::transaction(self, uuid)
                    .is_some_and(|tx| matches!(tx.state, ledger::State::Validated | ledger::State::Pending))
            })
            .map(|(uuid, _)| *uuid)
            .collect();
        open.sort();
        open
    }

    /// Validated transactions whose window has passed at `now_unix_s`, by
    /// uuid (the writer times each out). O(validated transactions).
    pub fn due_expiries(&self, now_unix_s: ledger::UnixSeconds) -> Vec<TxId> {
        let Some(config) = &self.config else { return Vec::new() };
        let mut due: Vec<TxId> = self
            .validated
            .iter()
            .map(|&slot| &self.txs[ix(slot)])
            .filter(|rec| ledger::is_expired_at(rec.state, self.written_of(rec), config, now_unix_s))
            .map(|rec| rec.uuid)
            .collect();
        due.sort();
        due
    }

    /// Every account open at `seq` with its completed balance and its
    /// limits as of `seq`, by id: what a checkpoint of size `seq` commits to.
    pub fn balances_and_limits_at(&self, seq: u64) -> Vec<(&AccountId, Amount, ledger::Limits)> {
        self.ordered
            .iter()
            .filter_map(|(id, &i)| {
                let slot = &self.slots[ix(i)];
                (seq >= slot.opened_seq).then(|| {
                    let balance = self.balance_before(i, |p| p.seq <= seq);
                    (id, balance, self.facts.limits_at(id, seq, slot.account.limits))
                })
            })
            .collect()
    }

    /// The evidence a link was closed with, while it is closed.
    pub fn closed_link(&self, peer: &AccountId) -> Option<&str> {
        self.closed.get(peer).map(String::as_str)
    }

    /// An account's peer facts.
    pub fn peer(&self, id: &AccountId) -> Option<&Peer> {
        self.slot(id).and_then(|s| s.peer.as_ref())
    }

    /// The journal seq at which an account was opened.
    pub fn opened_seq(&self, id: &AccountId) -> Option<u64> {
        self.slot(id).map(|s| s.opened_seq)
    }

    /// Current balances; `None` for an unknown account.
    pub fn balances(&self, id: &AccountId) -> Option<Balances> {
        self.slot(id).map(AccountSlot::balances)
    }

    /// Current trade stats.
    pub fn stats(&self, id: &AccountId) -> Option<&AccountStats> {
        let index = self.index_of(id)?;
        let slot = &self.slots[ix(index)];
        Some(slot.stats.get_or_init(|| {
            self.stats_built.lock().unwrap_or_else(PoisonError::into_inner).push(index);
            Box::new(slot.stats_value())
        }))
    }

    /// A transaction's current version and state.
    pub fn transaction(&self, uuid: &TxId) -> Option<&Transaction> {
        self.tx_slot(uuid).map(|slot| self.tx_ref(slot))
    }

    /// Number of transactions (any state).
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// Transactions per state, in `State::ALL` order. O(transactions).
    pub fn transactions_by_state(&self) -> [(State, u64); 5] {
        let mut counts = State::ALL.map(|state| (state, 0u64));
        for rec in &self.txs {
            if let Some((_, n)) = counts.iter_mut().find(|(state, _)| *state == rec.state) {
                *n += 1;
            }
        }
        counts
    }

    /// The sums of all completed and of all pending balances: zero, since
    /// every booking sums to zero. O(accounts).
    pub fn balance_sums(&self) -> Balances {
        let sum = |balance: fn(&AccountSlot) -> Micros| {
            // Saturating: the balances sum to zero, so never near it.
            amount_or_zero(self.slots.iter().map(balance).fold(0, |a: Micros, b| a.saturating_add(b)))
        };
        Balances { completed: sum(AccountSlot::completed), pending: sum(AccountSlot::pending) }
    }

    /// Completed balance after applying every event with seq ≤ `seq`.
    /// `None` for an unknown account, and for an account not yet opened at
    /// `seq` (opened by a later event). O(log n) in the account's timeline.
    pub fn balance_at_seq(&self, id: &AccountId, seq: u64) -> Option<Amount> {
        let i = self.index_of(id)?;
        (seq >= self.slots[ix(i)].opened_seq).then(|| self.balance_before(i, |p| p.seq <= seq))
    }

    /// Completed balance after every event with `recorded_at_us ≤ at_us`.
    /// `None` for an unknown account, and for one opened after `at_us`.
    /// O(log n) in the account's timeline.
    pub fn balance_at_time(&self, id: &AccountId, at_us: u64) -> Option<Amount> {
        let i = self.index_of(id)?;
        // Points at seqs below `before` are the ones recorded at or before `at_us`.
        let later = self.times.partition_point(|&(_, t)| t <= at_us);
        let before = self.times.get(later).map_or(u64::MAX, |&(seq, _)| seq);
        (at_us >= self.slots[ix(i)].opened_at_us).then(|| self.balance_before(i, |p| p.seq < before))
    }

    /// Completed balances of every account open at `seq`, as of `seq`.
    /// O(accounts × log n).
    pub fn balances_at_seq(&self, seq: u64) -> BTreeMap<AccountId, Amount> {
        self.ordered
            .iter()
            .filter_map(|(id, &i)| {
                let slot = &self.slots[ix(i)];
                (seq >= slot.opened_seq).then(|| (id.clone(), self.balance_before(i, |p| p.seq <= seq)))
            })
            .collect()
    }

    /// Every change of an account's completed balance, in seq order.
    /// O(points) (built from the compact form held).
    pub fn timeline(&self, id: &AccountId) -> Option<Vec<TimelinePoint>> {
        let i = self.index_of(id)?;
        let points = &self.slots[ix(i)].timeline;
        let mut times = self.times.iter().peekable();
        let mut at_us = 0;
        Some(
            points
                .iter()
                .map(|p| {
                    while let Some(&&(seq, t)) = times.peek() {
                        if seq > p.seq {
                            break;
                        }
                        at_us = t;
                        times.next();
                    }
                    TimelinePoint { seq: p.seq, at_us, balance: amount(self.point_balance(i, p)) }
                })
                .collect(),
        )
    }

    /// The number of points in an account's timeline.
    pub fn timeline_len(&self, id: &AccountId) -> Option<usize> {
        self.slot(id).map(|s| s.timeline.len())
    }

    /// The record time of a timeline point's seq.
    pub(crate) fn time_of(&self, seq: u64) -> Option<u64> {
        let n = self.times.partition_point(|&(s, _)| s <= seq);
        n.checked_sub(1).map(|i| self.times[i].1)
    }

    /// The completed balance of point `p` of account `slot`, micro-units.
    fn point_balance(&self, slot: u32, p: &Point) -> Micros {
        match p.balance {
            BIG_BALANCE => self.big_balances.get(&(slot, p.seq)).copied().unwrap_or_default(),
            b => Micros::from(b),
        }
    }

    /// The balance of the last point of account `slot` satisfying `before`
    /// (a prefix predicate), zero if none.
    fn balance_before(&self, slot: u32, before: impl FnMut(&Point) -> bool) -> Amount {
        let timeline = &self.slots[ix(slot)].timeline;
        let n = timeline.partition_point(before);
        n.checked_sub(1).map_or(Amount::ZERO, |k| amount(self.point_balance(slot, &timeline[k])))
    }

    /// Checks the invariants; O(accounts).
    ///
    /// # Panics
    ///
    /// On a violation (a bug): completed or pending balances not summing to
    /// zero, completed-class stats exceeding pending-class ones or negative
    /// gross sums, a timeline out of order or not
    /// ending at the completed balance.
    pub fn assert_invariants(&self) {
        if let Err(why) = self.check_invariants() {
            panic!("projection invariant violated: {why}");
        }
    }

    /// As [`Projections::assert_invariants`], returning the first violation.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let (mut completed, mut pending): (Micros, Micros) = (0, 0);
        let times_ordered = self.times.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && self.times.last().is_none_or(|&(seq, at_us)| seq <= self.seq && at_us <= self.last_at_us);
        if !times_ordered {
            return Err("timeline times out of order or out of bounds".to_owned());
        }
        let mut bigs = 0usize;
        for (i, slot) in (0u32..).zip(&self.slots) {
            let id = &slot.account.id;
            let b = slot.balances();
            completed = completed.checked_add(slot.completed()).ok_or("balance sum overflows")?;
            pending = pending.checked_add(slot.pending()).ok_or("balance sum overflows")?;
            let [c, p] = slot.classes;
            // Completed transactions are a subset of the pending class's.
            let subset = c.entries <= p.entries && c.trades <= p.trades && c.partners <= p.partners;
            if !subset || [c.gross_in, c.gross_out, p.gross_in, p.gross_out].iter().any(|g| *g < 0) {
                return Err(format!("{id}: stats {:?} are not those of any transactions", slot.stats_value()));
            }
            let last = slot.timeline.last().map_or(0, |p| self.point_balance(i, p));
            if last != slot.completed() && !self.checks_only {
                return Err(format!("{id}: timeline ends at {}, completed balance is {}", amount(last), b.completed));
            }
            for p in slot.timeline.iter().filter(|p| p.balance == BIG_BALANCE) {
                match self.big_balances.get(&(i, p.seq)) {
                    Some(&big) if i64::try_from(big).is_err() || big == Micros::from(BIG_BALANCE) => bigs += 1,
                    _ => return Err(format!("{id}: a large timeline balance is missing or small")),
                }
            }
            let ordered = slot.timeline.windows(2).all(|w| w[0].seq < w[1].seq);
            let bounded =
                slot.timeline.first().is_none_or(|p| {
                    p.seq > slot.opened_seq && self.time_of(p.seq).is_some_and(|t| t >= slot.opened_at_us)
                }) && slot.timeline.last().is_none_or(|p| p.seq <= self.seq);
            if !ordered || !bounded {
                return Err(format!("{id}: timeline out of order or out of bounds"));
            }
        }
        if bigs != self.big_balances.len() {
            return Err("large timeline balances of no point".to_owned());
        }
        if completed != 0 || pending != 0 {
            let sum = Balances { completed: amount(completed), pending: amount(pending) };
            return Err(format!("balances do not sum to zero: {sum:?}"));
        }
        Ok(())
    }
}

/// `decide` can run against the projections as it does against
/// [`ledger::LedgerState`]: both fold the same events.
impl LedgerView for Projections {
    fn config(&self) -> Option<&NodeConfig> {
        self.config.as_ref()
    }
    fn account(&self, id: &AccountId) -> Option<&Account> {
        Projections::account(self, id)
    }
    fn balances(&self, id: &AccountId) -> Balances {
        Projections::balances(self, id).unwrap_or_default()
    }
    fn transaction(&self, uuid: &TxId) -> Option<&Transaction> {
        Projections::transaction(self, uuid)
    }
    fn trunkward_account(&self) -> Option<&AccountId> {
        self.trunkward.map(|i| &self.slots[ix(i)].account.id)
    }
    fn peer(&self, id: &AccountId) -> Option<&Peer> {
        Projections::peer(self, id)
    }
    fn link(&self, uuid: &TxId) -> Option<&Link> {
        self.links.get(uuid)
    }
    fn ratchet(&self, peer: &AccountId) -> Option<&Ratchet> {
        self.slot(peer).and_then(|s| s.ratchet.as_ref())
    }
    fn dialect(&self, peer: &AccountId) -> Dialect {
        self.dialects.get(peer).copied().unwrap_or_default()
    }
    fn link_closed(&self, peer: &AccountId) -> bool {
        self.closed.contains_key(peer)
    }
    fn fees(&self) -> Option<&ledger::federation::FeePolicy> {
        self.facts.fees.as_ref()
    }
    fn warn_limits(&self, id: &AccountId) -> Option<ledger::warn::WarnLimits> {
        self.facts.warn_limits(id)
    }
    fn any_warn_limits(&self) -> bool {
        self.facts.any_warn_limits()
    }
    fn workflow(&self, hash: &[u8; 32]) -> Option<&Workflow> {
        self.workflow_hashes.get(hash).map(|&i| &self.workflows[ix(i)])
    }
    fn workflow_ref(&self, workflow: &Workflow) -> ledger::WorkflowRef {
        self.workflow_ref_of(workflow)
    }
}

#[cfg(test)]
mod tests {
    use ledger::{AccountStatus, Limits, NodeName};

    use super::*;
    use crate::Query;

    fn id(s: &str) -> AccountId {
        AccountId::new(s).expect("id")
    }

    fn entry(payer: &str, payee: &str, quant: i64, description: &str) -> Entry {
        let (mut remote, mut metadata) = (BTreeMap::new(), BTreeMap::new());
        if !description.is_empty() {
            remote.insert(payee.to_owned(), format!("path/{description}"));
            metadata.insert("note".to_owned(), description.to_owned());
        }
        Entry {
            payer: id(payer),
            payee: id(payee),
            quant: Amount::from_micros(quant),
            description: description.into(),
            metadata,
            remote,
        }
    }

    fn tx(n: u128, author: &str, workflow: Workflow, state: State, entries: Vec<Entry>) -> Transaction {
        Transaction {
            uuid: TxId(uuid::Uuid::from_u128(n)),
            version: 1,
            state,
            workflow,
            author: id(author),
            written_unix_s: u64::try_from(n).expect("small"),
            entries,
        }
    }

    /// A node with accounts a, b, c and a long-named one.
    fn node(long: &str) -> Projections {
        let mut p = Projections::new();
        p.apply(1, 1, &Event::NodeInitialised { config: NodeConfig::new(NodeName::new("n").expect("name")) });
        for name in ["a", "b", "c", long] {
            let limits = Limits::new(Amount::from_units(-1_000), Amount::from_units(1_000)).expect("limits");
            let kind = AccountKind::User { admin: false };
            let account = Account { id: id(name), kind, limits, status: AccountStatus::Active };
            let seq = p.seq() + 1;
            p.apply(seq, seq, &Event::AccountOpened { account });
        }
        p
    }

    #[test]
    fn id_keys_inline_short_ids_box_long_ones_and_find_both() {
        let short = id("abcdefghijklmnopqrstuvw");
        let long = id("abcdefghijklmnopqrstuvwx");
        assert!(matches!(IdKey::new(&short), IdKey::Inline(23, _)));
        assert!(matches!(IdKey::new(&long), IdKey::Boxed(_)));
        let p = node(long.as_str());
        assert_eq!(p.index_of(&long), Some(3));
        assert_eq!(p.index_of(&id("a")), Some(0));
        assert_eq!(p.index_of(&short), None);
        assert_eq!(p.index_of(&id("abcdefghijklmnopqrstuvwxy")), None);
        assert_eq!(IdKey::new(&short), IdKey::new(&short.clone()));
        assert_ne!(IdKey::new(&short), IdKey::new(&long));
    }

    #[test]
    fn micro_units_round_trip_amounts_in_canonical_form() {
        for text in [
            "0",
            "1",
            "-1",
            "0.000001",
            "-2.5",
            "123456789.123456",
            "79228162514264337593543.950335",
            "-79228162514264337593543.950335",
        ] {
            let Ok(a) = text.parse::<Amount>() else { continue };
            assert_eq!(amount(micros(a)), a, "{text}");
            assert_eq!(amount(micros(a)).to_string(), a.to_string(), "{text}");
        }
        let big = i128::from(i64::MAX) * 1_000;
        assert_eq!(micros(amount(big)), big);
        assert!(fits(Some(1 << 96)).is_err() && fits(None).is_err());
        assert_eq!(fits(Some((1 << 96) - 1)).expect("fits"), (1 << 96) - 1);
    }

    #[test]
    fn amounts_from_micros_are_canonical_and_encode_as_before() {
        let config = bincode::config::standard().with_little_endian().with_variable_int_encoding();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut samples = vec![0, 1, -1, 10, -10, 1_000_000, -1_000_000, 120_000, 7_000_000_000, i64::MAX, i64::MIN];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = i64::from_ne_bytes(x.to_ne_bytes());
            samples.extend([m, m / 1_000 * 1_000, m % 1_000_000 * 100]);
        }
        for m in samples {
            let fast = Amount::from_micros(m);
            let reference = Amount::from_decimal(Decimal::new(m, 6)).expect("six places");
            assert_eq!(fast, reference, "{m}");
            assert_eq!(fast.as_decimal().scale(), reference.as_decimal().scale(), "{m}");
            assert_eq!(fast.to_string(), reference.to_string(), "{m}");
            let bytes = bincode::encode_to_vec(fast, config).expect("encode");
            assert_eq!(bytes, bincode::encode_to_vec(reference, config).expect("encode"), "{m}");
            let (back, _) = bincode::decode_from_slice::<Amount, _>(&bytes, config).expect("canonical");
            assert_eq!(back, fast);
        }
    }

    /// Rare shapes: several entries (one a self-entry), descriptions and
    /// metadata, an author that is not an account, then a transition.
    #[test]
    fn rare_transaction_shapes_are_stored_and_rebuilt_exactly() {
        let long = "a-rather-long-account-name-here";
        let mut p = node(long);
        let bill = Workflow::from_code("_P+PC-CX+").expect("code");
        let rich = tx(
            7,
            "ghost",
            bill.clone(),
            State::Pending,
            vec![entry("a", long, 1_500_000, "Apple pie"), entry("b", "a", 250_000, ""), entry("c", "c", 3, "self")],
        );
        let plain = tx(8, "b", bill, State::Completed, vec![entry("b", "c", 1, "")]);
        for (seq, t) in [(6, &rich), (7, &plain)] {
            p.apply(seq, seq, &Event::TransactionProposed { transaction: t.clone() });
        }
        assert_eq!(p.extras.len(), 1, "only the rich transaction needs the side table");
        assert_eq!(p.workflows.len(), 1, "one definition, interned once");
        assert_eq!(p.transaction(&rich.uuid), Some(&rich));
        assert_eq!(p.transaction(&plain.uuid), Some(&plain));
        let stats = p.stats(&id("c")).expect("open").clone();
        assert_eq!((stats.pending.entries, stats.pending.trades, stats.pending.partners), (2, 2, 1));
        assert_eq!(stats.pending.gross_in, Amount::from_micros(4));
        let event = Event::TransactionTransitioned {
            uuid: rich.uuid,
            from: State::Pending,
            to: State::Completed,
            actor: id("a"),
            version: 2,
            at_unix_s: 9,
        };
        p.apply(8, 8, &event);
        let done = Transaction { state: State::Completed, version: 2, ..rich.clone() };
        assert_eq!(p.transaction(&rich.uuid), Some(&done), "the cached copy was refreshed");
        assert_eq!(p.balances(&id("a")).map(|b| b.completed), Some(Amount::from_micros(-1_250_000)));
        assert_eq!(p.balances(&id(long)).map(|b| b.completed), Some(Amount::from_micros(1_500_000)));
        assert_eq!(p.timeline(&id("c")).expect("open").len(), 1, "c's self-entry nets to zero");
        let stats = p.stats(&id("a")).expect("open").clone();
        assert_eq!((stats.completed.entries, stats.completed.trades, stats.completed.partners), (2, 1, 2));
        p.assert_invariants();
        let copy = p.clone();
        assert_eq!(copy, p);
        assert_eq!(copy.transaction(&rich.uuid), Some(&done));
        let q = Query { author: Some(id("ghost")), ..Query::default() };
        assert_eq!(p.transactions(&q).items, [&done]);
        let q = Query { description: Some("PIE".into()), ..Query::default() };
        assert_eq!(
            p.entries(&q).items.iter().map(|r| (r.transaction.uuid, r.index)).collect::<Vec<_>>(),
            [(rich.uuid, 0)]
        );
        let q = Query { payer: Some(id("c")), ..Query::default() };
        assert_eq!(p.entries(&q).items.iter().map(|r| r.index).collect::<Vec<_>>(), [2]);
    }

    /// A quant and a balance beyond `i64` micro-units, a written time beyond
    /// `u32` and an author who is an account but not a party: kept aside
    /// (`wide`, `big_balances`), answered as given, and through a snapshot.
    #[test]
    fn values_beyond_the_compact_fields_are_kept_aside_and_round_trip() {
        let mut p = Projections::new();
        p.apply(1, 10, &Event::NodeInitialised { config: NodeConfig::new(NodeName::new("n").expect("name")) });
        let max = ledger::AMOUNT_MAX_UNITS;
        for name in ["a", "b", "c"] {
            let limits = Limits::new(Amount::from_units(-max), Amount::from_units(max)).expect("limits");
            let kind = AccountKind::User { admin: false };
            let account = Account { id: id(name), kind, limits, status: AccountStatus::Active };
            let seq = p.seq() + 1;
            p.apply(seq, 10, &Event::AccountOpened { account });
        }
        // 10^13 units = 10^19 micro-units, beyond i64 (9.2·10^18).
        let huge = Amount::from_units(10_000_000_000_000);
        let payment = Workflow::from_code("_C-").expect("code");
        let mut big = tx(1, "c", payment.clone(), State::Completed, vec![entry("a", "b", 1, "big")]);
        big.entries[0].quant = huge;
        big.written_unix_s = 1 << 33;
        let small = tx(2, "b", payment, State::Completed, vec![entry("b", "a", 2_000_000, "")]);
        p.apply(5, 20, &Event::TransactionProposed { transaction: big.clone() });
        p.apply(6, 30, &Event::TransactionProposed { transaction: small.clone() });
        let rec = p.txs[0];
        assert_eq!((rec.quant, rec.written, rec.author), (BIG_QUANT, BIG_WRITTEN, AUTHOR_WIDE));
        assert_eq!(p.txs[1].author, AUTHOR_PAYER);
        assert_eq!(p.wide.len(), 1, "only the large transaction has wide parts");
        assert_eq!(p.transaction(&big.uuid), Some(&big));
        assert_eq!(p.transaction(&small.uuid), Some(&small));
        let after = (huge.as_decimal() - Decimal::new(2, 0)).normalize();
        assert_eq!(p.balances(&id("b")).map(|b| b.completed.as_decimal().normalize()), Some(after));
        assert_eq!(p.big_balances.len(), 4, "both parties' balances, after each payment");
        assert_eq!(p.balance_at_seq(&id("b"), 5), Some(huge));
        assert_eq!(p.balance_at_time(&id("b"), 25), Some(huge));
        assert_eq!(p.balance_at_time(&id("b"), 19), Some(Amount::ZERO));
        let timeline = p.timeline(&id("a")).expect("open");
        assert_eq!(timeline.iter().map(|t| (t.seq, t.at_us)).collect::<Vec<_>>(), [(5, 20), (6, 30)]);
        assert_eq!(timeline[0].balance, Amount::from_decimal(-huge.as_decimal()).expect("negated"));
        let q = Query { author: Some(id("c")), ..Query::default() };
        assert_eq!(p.transactions(&q).items, [&big]);
        let q = Query { since_unix_s: Some(1 << 32), ..Query::default() };
        assert_eq!(p.transactions(&q).items, [&big]);
        let q = Query { sort: crate::Sort::Quant, descending: true, ..Query::default() };
        assert_eq!(p.transactions(&q).items, [&big, &small]);
        p.assert_invariants();
        let bytes = crate::store::encode_snapshot(&p, [1; 32], [2; 32]).expect("encode");
        let (q, _, _) = crate::store::decode_snapshot(&bytes, [1; 32]).expect("decode");
        assert_eq!(q, p);
        assert_eq!(q.transaction(&big.uuid), Some(&big));
        assert_eq!(q.timeline(&id("b")), p.timeline(&id("b")));
    }

    /// Past 4 GiB of descriptions, an extra's end keeps its high half aside.
    #[test]
    fn description_ends_past_four_gib_keep_their_high_half() {
        let x = Extras { ends: vec![10, 3, 7], highs: vec![(1, 1)], ..Extras::default() };
        assert_eq!([x.end(0), x.end(1), x.end(2)], [10, (1 << 32) + 3, (1 << 32) + 7]);
        let x = Extras { ends: vec![10, 3, 7], highs: vec![(1, 1), (2, 3)], ..Extras::default() };
        assert_eq!(x.end(2), (3 << 32) + 7);
    }

    #[test]
    fn more_workflow_definitions_than_fit_inline_still_round_trip() {
        let mut p = node("d");
        let base = Workflow::from_code("_C-").expect("code");
        let n = u128::from(WIDE_WORKFLOW) + 2;
        for i in 0..n {
            let id = WorkflowId::new(&format!("w{i}")).expect("id");
            let workflow = Workflow { id, label: format!("w{i}"), ..base.clone() };
            let seq = p.seq() + 1;
            let t = tx(i + 100, "a", workflow, State::Completed, vec![entry("a", "b", 1, "")]);
            p.apply(seq, seq, &Event::TransactionProposed { transaction: t });
        }
        assert_eq!(p.workflows.len(), usize::try_from(n).expect("small"));
        for i in [0, n - 3, n - 2, n - 1] {
            let t = p.transaction(&TxId(uuid::Uuid::from_u128(i + 100))).expect("stored");
            assert_eq!(t.workflow.label, format!("w{i}"));
        }
        assert_eq!(p.extras.len(), 2, "only the last two definitions are wide");
        let q = Query { workflows: vec![format!("w{}", n - 1), "w7".into()], ..Query::default() };
        assert_eq!(p.transactions(&q).total, 2);
        let copy = p.clone();
        assert_eq!(copy, p);
    }

    #[test]
    fn listing_index_catches_up_in_bulk_and_one_by_one() {
        let mut p = node("d");
        for i in 0..200 {
            let limits = Limits::new(Amount::from_units(-1_000), Amount::from_units(1_000)).expect("limits");
            let kind = AccountKind::User { admin: false };
            let account = Account { id: id(&format!("u{i}")), kind, limits, status: AccountStatus::Active };
            let seq = p.seq() + 1;
            p.apply(seq, seq, &Event::AccountOpened { account });
        }
        let workflow = Workflow::from_code("_C-").expect("code");
        let involving = |p: &Projections, who: &str| {
            let q = Query { involving: Some(id(who)), ..Query::default() };
            p.transactions(&q).items.iter().map(|t| t.uuid.0.as_u128()).collect::<Vec<_>>()
        };
        let mut expected: Vec<u128> = Vec::new();
        for n in 1..=20u128 {
            let (payer, payee) = if n % 2 == 0 { ("a", "u7") } else { ("u7", "b") };
            let seq = p.seq() + 1;
            let t = tx(n, payer, workflow.clone(), State::Completed, vec![entry(payer, payee, 1, "")]);
            p.apply(seq, seq, &Event::TransactionProposed { transaction: t });
            expected.push(n);
            if n > 10 {
                // One new transaction since the last listing: the direct path.
                assert_eq!(involving(&p, "u7"), expected, "after {n}");
            }
        }
        assert_eq!(involving(&p, "a").len(), 10);
        assert_eq!(involving(&p, "u8"), Vec::<u128>::new());
    }

    #[test]
    fn built_transactions_are_cached_then_dropped_in_bulk() {
        let mut p = node("d");
        let workflow = Workflow::from_code("_C-").expect("code");
        let n = u128::try_from(CACHE_MAX).expect("fits") + 10;
        for i in 0..n {
            let seq = p.seq() + 1;
            let t = tx(i, "a", workflow.clone(), State::Completed, vec![entry("a", "b", 1, "")]);
            p.apply(seq, seq, &Event::TransactionProposed { transaction: t });
        }
        for i in 0..n {
            assert!(p.transaction(&TxId(uuid::Uuid::from_u128(i))).is_some());
        }
        assert_eq!(*p.cache.filled.get_mut(), CACHE_MAX + 10);
        let stats = p.stats(&id("a")).expect("open").clone();
        assert_eq!(stats.completed.entries, u64::try_from(n).expect("fits"));
        assert_eq!(p.stats_built.get_mut().expect("lock").len(), 1);
        let seq = p.seq() + 1;
        p.apply(seq, seq, &Event::AccountStatusChanged { id: id("c"), status: AccountStatus::Blocked });
        assert_eq!(*p.cache.filled.get_mut(), 0, "dropped past the bound");
        assert!(p.stats_built.get_mut().expect("lock").is_empty());
        assert!(p.slots[0].stats.get().is_none());
        assert_eq!(p.transaction(&TxId(uuid::Uuid::from_u128(3))).map(|t| t.version), Some(1));
    }
}
