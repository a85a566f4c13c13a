//! The fold: events in, read models out.
//!
//! Accounts are interned: each gets a dense slot index (`u32`) on opening,
//! and everything per account (balances, stats, timeline, transaction list)
//! lives in its slot. Transactions live in a dense `Vec` in proposal order,
//! indexed by uuid.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use ledger::federation::{Link, Ratchet};
use ledger::{
    balance_deltas, Account, AccountId, AccountKind, Amount, AmountError, Balances, Entry, Event, KeyHash, LedgerView,
    NodeConfig, Peer, State, Transaction, TxId,
};

/// One change of an account's completed balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePoint {
    /// Journal seq of the event that changed it.
    pub seq: u64,
    /// That event's record time, unix µs.
    pub at_us: u64,
    /// The completed balance after the event.
    pub balance: Amount,
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
    pub gross_in: Amount,
    /// Sum paid (as payer).
    pub gross_out: Amount,
    /// Distinct counterparties.
    pub partners: u64,
    /// `gross_in + gross_out`.
    pub volume: Amount,
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

/// Index of the completed class in per-class arrays.
const COMPLETED: usize = 0;
/// Which states each class counts, by class index (completed, pending).
const CLASSES: [fn(State) -> bool; 2] = [State::counts_completed, State::counts_pending];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountSlot {
    pub(crate) account: Account,
    pub(crate) opened_seq: u64,
    pub(crate) opened_at_us: u64,
    pub(crate) key_hash: Option<KeyHash>,
    pub(crate) peer: Option<Peer>,
    /// The link ratchet with this neighbour (node accounts with a peer).
    pub(crate) ratchet: Option<Ratchet>,
    pub(crate) balances: Balances,
    pub(crate) stats: AccountStats,
    /// Per class: counterparty slot → number of entries with it.
    pub(crate) partners: [SlotMap<u32, u32>; 2],
    pub(crate) timeline: Vec<TimelinePoint>,
    /// Transaction slots the account is party to, in proposal order.
    pub(crate) txs: Vec<u32>,
}

impl AccountSlot {
    pub(crate) fn new(account: Account, opened_seq: u64, opened_at_us: u64) -> Self {
        Self {
            account,
            opened_seq,
            opened_at_us,
            key_hash: None,
            peer: None,
            ratchet: None,
            balances: Balances::default(),
            stats: AccountStats::default(),
            partners: [SlotMap::default(), SlotMap::default()],
            timeline: Vec::new(),
            txs: Vec::new(),
        }
    }

    fn class_stats(&mut self, class: usize) -> &mut TradeStats {
        if class == COMPLETED {
            &mut self.stats.completed
        } else {
            &mut self.stats.pending
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

/// The read models, folded from events. Pure and in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projections {
    pub(crate) seq: u64,
    pub(crate) last_at_us: u64,
    pub(crate) config: Option<NodeConfig>,
    pub(crate) slots: Vec<AccountSlot>,
    pub(crate) by_id: SlotMap<AccountId, u32>,
    pub(crate) ordered: BTreeMap<AccountId, u32>,
    pub(crate) txs: Vec<Transaction>,
    pub(crate) tx_index: HashMap<TxId, u32>,
    pub(crate) trunkward: Option<u32>,
    /// Link facts of transactions that cross nodes.
    pub(crate) links: HashMap<TxId, Link>,
}

pub(crate) fn ix(slot: u32) -> usize {
    usize::try_from(slot).expect("u32 fits in usize")
}

fn add(a: Amount, b: Amount) -> Result<Amount, AmountError> {
    a.checked_add(b)
}

/// Event arithmetic was checked by `decide`; failing here is a bug.
const CHECKED: &str = "decide checked the arithmetic";

impl Projections {
    /// Empty projections (seq 0).
    pub fn new() -> Self {
        Self::default()
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
    /// On a bug: seq not increasing, or an event that does not fit the state
    /// (unknown account or transaction, stale state or version, overflow),
    /// which `decide` could not have produced.
    pub fn apply(&mut self, seq: u64, recorded_at_us: u64, event: &Event) {
        assert!(seq > self.seq, "seq {seq} does not follow the last applied seq {}", self.seq);
        let at_us = recorded_at_us.max(self.last_at_us);
        self.seq = seq;
        self.last_at_us = at_us;
        match event {
            Event::NodeInitialised { config } | Event::NodeConfigured { config } => {
                self.config = Some(config.clone());
            }
            Event::AccountOpened { account } => {
                assert!(!self.by_id.contains_key(&account.id), "account {} opened twice", account.id);
                self.open(AccountSlot::new(account.clone(), seq, at_us));
            }
            Event::AccountLimitsChanged { id, limits } => self.slot_mut(id).account.limits = *limits,
            Event::AccountStatusChanged { id, status } => self.slot_mut(id).account.status = *status,
            Event::AccountKeyChanged { id, key_hash } => self.slot_mut(id).key_hash = Some(key_hash.clone()),
            Event::PeerConnected { peer } => {
                let slot = self.slot_mut(&peer.account);
                slot.peer = Some(peer.clone());
                let blake3 = ledger::ratchet::blake3_genesis(&peer.initial_hash);
                slot.ratchet = Some(Ratchet { md5: peer.initial_hash.clone(), blake3, count: 0 });
            }
            Event::LinkAttached { uuid, link } => {
                assert!(self.tx_index.contains_key(uuid), "link of unknown transaction {uuid}");
                self.links.insert(*uuid, link.clone());
            }
            Event::RatchetAdvanced { peer, md5, blake3, .. } => {
                let ratchet = self.slot_mut(peer).ratchet.as_mut().expect("ratchet of a connected peer");
                ratchet.md5.clone_from(md5);
                ratchet.blake3 = *blake3;
                ratchet.count += 1;
            }
            Event::TransactionProposed { transaction } => {
                assert!(!transaction.entries.is_empty(), "transaction {} without entries", transaction.uuid);
                assert!(!self.tx_index.contains_key(&transaction.uuid), "transaction {} twice", transaction.uuid);
                self.book(&transaction.entries, None, transaction.state, Some((seq, at_us))).expect(CHECKED);
                self.register(transaction.clone()).expect("transaction parties are open accounts");
            }
            Event::TransactionTransitioned { uuid, from, to, version, .. } => {
                self.transition(uuid, *from, *to, *version, seq, at_us);
            }
            Event::TransactionExpired { uuid, version, .. } => {
                self.transition(uuid, State::Validated, State::TimedOut, *version, seq, at_us);
            }
        }
    }

    pub(crate) fn open(&mut self, slot: AccountSlot) {
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 accounts");
        self.by_id.insert(slot.account.id.clone(), index);
        self.ordered.insert(slot.account.id.clone(), index);
        if slot.account.kind == AccountKind::Trunkward {
            self.trunkward = Some(index);
        }
        self.slots.push(slot);
    }

    fn slot_mut(&mut self, id: &AccountId) -> &mut AccountSlot {
        let index = *self.by_id.get(id).unwrap_or_else(|| panic!("event names unknown account {id}"));
        &mut self.slots[ix(index)]
    }

    fn slot(&self, id: &AccountId) -> Option<&AccountSlot> {
        self.by_id.get(id).map(|&i| &self.slots[ix(i)])
    }

    pub(crate) fn index_of(&self, id: &AccountId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Stores a new transaction and lists it on its parties; no booking.
    pub(crate) fn register(&mut self, tx: Transaction) -> Result<(), PartsError> {
        let slot =
            u32::try_from(self.txs.len()).map_err(|_| PartsError::Inconsistent("too many transactions".into()))?;
        for entry in &tx.entries {
            for party in [&entry.payer, &entry.payee] {
                let index = self
                    .index_of(party)
                    .ok_or_else(|| PartsError::Inconsistent(format!("{} names unknown account {party}", tx.uuid)))?;
                let list = &mut self.slots[ix(index)].txs;
                if list.last() != Some(&slot) {
                    list.push(slot);
                }
            }
        }
        if self.tx_index.insert(tx.uuid, slot).is_some() {
            return Err(PartsError::Inconsistent(format!("transaction {} appears twice", tx.uuid)));
        }
        self.txs.push(tx);
        Ok(())
    }

    fn transition(&mut self, uuid: &TxId, from: State, to: State, version: u32, seq: u64, at_us: u64) {
        let slot = ix(*self.tx_index.get(uuid).unwrap_or_else(|| panic!("transition of unknown transaction {uuid}")));
        let tx = &mut self.txs[slot];
        assert_eq!(tx.state, from, "transition of {uuid} from a stale state");
        assert_eq!(tx.version.checked_add(1), Some(version), "versions of {uuid} advance by one");
        tx.state = to;
        tx.version = version;
        let entries = std::mem::take(&mut tx.entries);
        let booked = self.book(&entries, Some(from), to, Some((seq, at_us)));
        self.txs[slot].entries = entries;
        booked.expect(CHECKED);
    }

    /// Books moving `entries` from `from` (None = new) to `to`: balances,
    /// stats, and (when `at` is given) timeline points.
    pub(crate) fn book(
        &mut self,
        entries: &[Entry],
        from: Option<State>,
        to: State,
        at: Option<(u64, u64)>,
    ) -> Result<(), PartsError> {
        let deltas = balance_deltas(entries, from, to)?;
        for (id, d) in deltas {
            let index = self.index_of(&id).ok_or_else(|| PartsError::Inconsistent(format!("unknown account {id}")))?;
            let slot = &mut self.slots[ix(index)];
            slot.balances.completed = add(slot.balances.completed, d.completed)?;
            slot.balances.pending = add(slot.balances.pending, d.pending)?;
            if let (Some((seq, at_us)), false) = (at, d.completed.is_zero()) {
                slot.timeline.push(TimelinePoint { seq, at_us, balance: slot.balances.completed });
            }
        }
        let shifts: Vec<(usize, bool)> = CLASSES
            .iter()
            .enumerate()
            .filter(|(_, counts)| from.is_some_and(counts) != counts(to))
            .map(|(class, counts)| (class, counts(to)))
            .collect();
        if !shifts.is_empty() {
            let unknown = |id: &AccountId| PartsError::Inconsistent(format!("unknown account {id}"));
            let mut resolved = Vec::with_capacity(entries.len());
            for entry in entries {
                let payer = self.index_of(&entry.payer).ok_or_else(|| unknown(&entry.payer))?;
                let payee = self.index_of(&entry.payee).ok_or_else(|| unknown(&entry.payee))?;
                resolved.push((payer, payee, entry.quant));
            }
            for (class, adding) in shifts {
                self.shift_stats(&resolved, class, adding)?;
            }
        }
        Ok(())
    }

    /// Adds (or removes) `entries` to (from) the stats of class `class`.
    fn shift_stats(&mut self, entries: &[(u32, u32, Amount)], class: usize, adding: bool) -> Result<(), PartsError> {
        let inconsistent = |what: &str| PartsError::Inconsistent(format!("trade stats {what} would go negative"));
        let count = |n: u64, by: u64| if adding { n.checked_add(by) } else { n.checked_sub(by) };
        let amount = |a: Amount, by: Amount| if adding { a.checked_add(by) } else { a.checked_sub(by) };
        let mut parties: Vec<u32> = Vec::with_capacity(2 * entries.len());
        for &(payer, payee, quant) in entries {
            parties.extend([payer, payee]);
            if payer == payee {
                // A self-entry: one entry, on both sides of the gross, no partner.
                let s = self.slots[ix(payer)].class_stats(class);
                s.entries = count(s.entries, 1).ok_or_else(|| inconsistent("entries"))?;
                s.gross_in = amount(s.gross_in, quant)?;
                s.gross_out = amount(s.gross_out, quant)?;
                continue;
            }
            for (me, other, paying) in [(payer, payee, true), (payee, payer, false)] {
                let slot = &mut self.slots[ix(me)];
                let s = slot.class_stats(class);
                s.entries = count(s.entries, 1).ok_or_else(|| inconsistent("entries"))?;
                if paying {
                    s.gross_out = amount(s.gross_out, quant)?;
                } else {
                    s.gross_in = amount(s.gross_in, quant)?;
                }
                let partners = &mut slot.partners[class];
                if adding {
                    *partners.entry(other).or_insert(0) += 1;
                } else {
                    let n = partners.get_mut(&other).ok_or_else(|| inconsistent("partners"))?;
                    *n -= 1;
                    if *n == 0 {
                        partners.remove(&other);
                    }
                }
            }
        }
        parties.sort_unstable();
        parties.dedup();
        for index in parties {
            let slot = &mut self.slots[ix(index)];
            let partners = u64::try_from(slot.partners[class].len()).expect("usize fits in u64");
            let s = slot.class_stats(class);
            s.trades = count(s.trades, 1).ok_or_else(|| inconsistent("trades"))?;
            s.partners = partners;
            s.balance = s.gross_in.checked_sub(s.gross_out)?;
            s.volume = add(s.gross_in, s.gross_out)?;
        }
        Ok(())
    }

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
        self.slot(id).map(|s| s.balances)
    }

    /// Current trade stats.
    pub fn stats(&self, id: &AccountId) -> Option<&AccountStats> {
        self.slot(id).map(|s| &s.stats)
    }

    /// A transaction's current version and state.
    pub fn transaction(&self, uuid: &TxId) -> Option<&Transaction> {
        self.tx_index.get(uuid).map(|&i| &self.txs[ix(i)])
    }

    /// Number of transactions (any state).
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// Completed balance after applying every event with seq ≤ `seq`.
    /// `None` for an unknown account, and for an account not yet opened at
    /// `seq` (opened by a later event). O(log n) in the account's timeline.
    pub fn balance_at_seq(&self, id: &AccountId, seq: u64) -> Option<Amount> {
        let slot = self.slot(id)?;
        (seq >= slot.opened_seq).then(|| balance_before(&slot.timeline, |p| p.seq <= seq))
    }

    /// Completed balance after every event with `recorded_at_us ≤ at_us`.
    /// `None` for an unknown account, and for one opened after `at_us`.
    /// O(log n) in the account's timeline.
    pub fn balance_at_time(&self, id: &AccountId, at_us: u64) -> Option<Amount> {
        let slot = self.slot(id)?;
        (at_us >= slot.opened_at_us).then(|| balance_before(&slot.timeline, |p| p.at_us <= at_us))
    }

    /// Completed balances of every account open at `seq`, as of `seq`.
    /// O(accounts × log n).
    pub fn balances_at_seq(&self, seq: u64) -> BTreeMap<AccountId, Amount> {
        self.ordered
            .iter()
            .filter_map(|(id, &i)| {
                let slot = &self.slots[ix(i)];
                (seq >= slot.opened_seq).then(|| (id.clone(), balance_before(&slot.timeline, |p| p.seq <= seq)))
            })
            .collect()
    }

    /// Every change of an account's completed balance, in seq order.
    pub fn timeline(&self, id: &AccountId) -> Option<&[TimelinePoint]> {
        self.slot(id).map(|s| s.timeline.as_slice())
    }

    /// Checks the invariants; O(accounts).
    ///
    /// # Panics
    ///
    /// On a violation (a bug): completed or pending balances not summing to
    /// zero, stats disagreeing with balances, a timeline out of order or not
    /// ending at the completed balance.
    pub fn assert_invariants(&self) {
        if let Err(why) = self.check_invariants() {
            panic!("projection invariant violated: {why}");
        }
    }

    /// As [`Projections::assert_invariants`], returning the first violation.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut sum = Balances::default();
        for slot in &self.slots {
            let id = &slot.account.id;
            let b = slot.balances;
            sum.completed = add(sum.completed, b.completed).map_err(|e| e.to_string())?;
            sum.pending = add(sum.pending, b.pending).map_err(|e| e.to_string())?;
            if slot.stats.completed.balance != b.completed || slot.stats.pending.balance != b.pending {
                return Err(format!("{id}: stats {:?} disagree with balances {b:?}", slot.stats));
            }
            let last = slot.timeline.last().map_or(Amount::ZERO, |p| p.balance);
            if last != b.completed {
                return Err(format!("{id}: timeline ends at {last}, completed balance is {}", b.completed));
            }
            let ordered = slot.timeline.windows(2).all(|w| w[0].seq < w[1].seq && w[0].at_us <= w[1].at_us);
            let bounded = slot.timeline.first().is_none_or(|p| p.seq > slot.opened_seq && p.at_us >= slot.opened_at_us)
                && slot.timeline.last().is_none_or(|p| p.seq <= self.seq && p.at_us <= self.last_at_us);
            if !ordered || !bounded {
                return Err(format!("{id}: timeline out of order or out of bounds"));
            }
        }
        if !sum.completed.is_zero() || !sum.pending.is_zero() {
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
}

/// The balance of the last point satisfying `before` (a prefix predicate),
/// zero if none.
fn balance_before(timeline: &[TimelinePoint], before: impl FnMut(&TimelinePoint) -> bool) -> Amount {
    let n = timeline.partition_point(before);
    n.checked_sub(1).map_or(Amount::ZERO, |i| timeline[i].balance)
}
