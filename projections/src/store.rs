//! Snapshots of [`Projections`] in a file of their own: derived data, never
//! the source of truth.
//!
//! A snapshot holds the projections as they are in memory, table by table,
//! so that loading one is reading and copying rather than decoding and
//! re-indexing: the accounts with their stats and balance timelines, the
//! transactions as fixed-size records, the side table of descriptions, the
//! uuid index, the pair table and the per-account listing index. It is
//! tagged with the journal's genesis hash and the seq and record hash it
//! reflects, so a snapshot from another journal, or ahead of or diverging
//! from this one, is detected and rebuilt; each section is checksummed, and
//! the loaded projections are checked against their invariants.
//!
//! File format (version [`SNAPSHOT_FORMAT_VERSION`]), all integers little
//! endian: the 8 bytes [`MAGIC`], the version as a `u32`, then ten sections,
//! each `[length u64][bytes][crc32c(bytes) u32]`, then the end of the file:
//!
//! 1. head: bincode 2.0.1 ([`bincode_config`]) of the genesis and head
//!    hashes, seq, last record time, node config, accounts (opening order;
//!    with each one's timeline and listing lengths), workflow table, links,
//!    dialects, closed links, link logs, node facts, the rare parts of
//!    transactions (with their extra), where the description ends' high
//!    half grows, the validated transactions, the timeline balances beyond
//!    `i64` micro-units, the wide parts of transactions (by uuid), and the
//!    sizes of the sections below;
//! 2. account stats, 112 bytes per account: per class (completed, pending)
//!    gross in and out (`i128` micro-units), trades, entries, partners (`u64`);
//! 3. timeline points, 16 bytes each, accounts one after the other: seq
//!    (`u64`), completed balance in micro-units (`i64`; `i64::MIN` when it is
//!    one of the head's large balances);
//! 4. the record times of the points, 16 bytes each: seq, time (`u64`), at
//!    each seq where a point's time differs from the previous point's;
//! 5. extras, 4 bytes each: where its description ends in the text, modulo
//!    2^32 (`u32`; the head lists where the high half grows, and the extra
//!    of each of the rare parts);
//! 6. the text of the descriptions (UTF-8);
//! 7. transactions, 48 bytes each: uuid (16), primary quant (`i64`
//!    micro-units, `i64::MIN` when in the head's wide parts), written time
//!    (`u32`, `u32::MAX` when in the wide parts), payer and payee slots,
//!    version, extra index (`u32`), workflow index (`u16`), state (`u8`),
//!    author kind (`u8`: the payer, the payee, an account in the wide parts,
//!    an id in the rare parts);
//! 8. uuid index buckets (`u64`, see `TxIndex`);
//! 9. pair table buckets, 16 bytes: key (`u64`), counts (`u32`, `u32`);
//! 10. listing index: transaction slots (`u32`), accounts one after the other.
//!
//! The file is `snapshot` in the store's directory, replaced atomically (a
//! temporary file written and fsynced, renamed over it, the directory
//! fsynced). Snapshots of format 5 and older lived in a sled database in the
//! same directory: they are not read (the projections are rebuilt from the
//! journal, then saved in this format) and
//! [`SnapshotStore::remove_legacy`] deletes them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bincode::config::{Configuration, LittleEndian, NoLimit, Varint};
use bincode::{Decode, Encode};
use ledger::federation::{Link, Ratchet};
use ledger::ratchet::LinkVersion;
use ledger::{decode_event, Account, AccountId, DecodeError, Dialect, KeyHash, NodeConfig, Peer, State, TxId};

use crate::fold::{
    ix, AccountSlot, ClassStats, Extras, Point, Projections, TxCache, TxLists, TxRare, TxRec, Wide, AUTHOR_EXTRA,
    AUTHOR_WIDE, BIG_QUANT, BIG_WRITTEN, NO_EXTRA, NO_SLOT, WIDE_WORKFLOW,
};
use crate::tables::{PairTable, TxIndex};

/// The snapshot format (2 added link dialects, 3 closed links, 4 the node's
/// facts, 5 transactions as the projections hold them, 6 a file of fixed-size
/// tables instead of a sled blob, 7 compact timelines, transactions and
/// extras; older snapshots are rebuilt from the journal).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 7;
/// The first bytes of a snapshot file.
pub const MAGIC: [u8; 8] = *b"ccnsnap\n";
/// The snapshot's file name in the store's directory.
pub const FILE_NAME: &str = "snapshot";
/// The file a snapshot is written to before it is renamed to [`FILE_NAME`].
pub const TEMP_NAME: &str = "snapshot.tmp";
/// What sled kept in the directory (snapshot formats up to 5).
const LEGACY_NAMES: [&str; 3] = ["conf", "db", "blobs"];

const STATS_BYTES: usize = 112;
const POINT_BYTES: usize = 16;
const TIME_BYTES: usize = 16;
const EXTRA_BYTES: usize = 4;
const TX_BYTES: usize = 48;
const BUCKET_BYTES: usize = 8;
const PAIR_BYTES: usize = 16;
const LIST_BYTES: usize = 4;
/// Bytes read or written at a time.
const IO_CHUNK: usize = 4 << 20;

/// The pinned bincode configuration of the head section, written out. No
/// decode limit: the section's checksum is verified before decoding.
pub fn bincode_config() -> Configuration<LittleEndian, Varint, NoLimit> {
    bincode::config::standard().with_little_endian().with_variable_int_encoding().with_no_limit()
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the file failed.
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
    /// The snapshot was written by a format this build does not read.
    #[error("unknown snapshot format version {0}")]
    UnknownVersion(u32),
    /// The stored bytes are damaged or inconsistent.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// The snapshot belongs to another journal.
    #[error("snapshot belongs to another journal (genesis differs)")]
    Foreign,
}

/// Why projections could not be loaded or rebuilt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The journal could not be read (from whichever store keeps it).
    #[error("journal: {0}")]
    Journal(Box<dyn std::error::Error + Send + Sync>),
    /// A journal record is not an event.
    #[error("journal record {seq} is not an event: {source}")]
    Decode {
        /// The record's seq.
        seq: u64,
        /// Why.
        source: DecodeError,
    },
}

/// What [`load_or_rebuild`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The seq of the snapshot used, `None` when rebuilt from the journal.
    pub from_snapshot_seq: Option<u64>,
    /// Journal records folded after the snapshot (or from seq 1).
    pub folded: u64,
    /// Why the snapshot was not used, `None` when it was.
    pub rebuilt_because: Option<String>,
    /// The first record the projections could not fold (an event an older
    /// version journaled that no projection can hold, see
    /// [`Projections::try_apply`]): the fold stopped there, so the
    /// projections are those of the records before it. `None` when the whole
    /// journal was folded.
    pub unfoldable: Option<crate::Unfoldable>,
    /// Milliseconds spent reading and decoding the snapshot (0 without one).
    pub snapshot_ms: u64,
    /// Milliseconds spent folding the journal after it.
    pub fold_ms: u64,
}

/// An account in the head section.
#[derive(Encode, Decode)]
struct AccountHead {
    account: Account,
    opened_seq: u64,
    opened_at_us: u64,
    key_hash: Option<KeyHash>,
    peer: Option<Peer>,
    ratchet: Option<(String, [u8; 32], u64)>,
    /// Its timeline points in section 3.
    timeline: u64,
    /// Its listed transactions in section 9.
    listed: u64,
}

/// The head section, as decoded. [`encode_head`] writes the same fields in
/// this order.
#[derive(Decode)]
struct Head {
    genesis: [u8; 32],
    head_hash: [u8; 32],
    seq: u64,
    last_at_us: u64,
    config: Option<NodeConfig>,
    accounts: Vec<AccountHead>,
    workflows: Vec<ledger::Workflow>,
    links: Vec<(TxId, Link)>,
    dialects: Vec<(AccountId, Dialect)>,
    closed: Vec<(AccountId, String)>,
    link_logs: Vec<(AccountId, Vec<LinkVersion>)>,
    facts: crate::facts::NodeFacts,
    rares: Vec<(u32, TxRare)>,
    highs: Vec<(u32, u32)>,
    validated: Vec<u32>,
    big_balances: Vec<(u32, u64, i128)>,
    wide: Vec<(TxId, Wide)>,
    times: u64,
    txs: u64,
    extras: u64,
    text: u64,
    index_key: (u64, u64),
    index_buckets: u64,
    pair_buckets: u64,
}

/// Appends the bincode encoding of `value` to `out`.
fn put(out: &mut Vec<u8>, value: impl Encode) -> Result<(), StoreError> {
    bincode::encode_into_std_write(value, out, bincode_config())
        .map(drop)
        .map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64")
}

/// The head section of `p`, field by field as [`Head`] decodes it.
fn encode_head(
    p: &Projections,
    lists: &TxLists,
    genesis: [u8; 32],
    head_hash: [u8; 32],
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    put(&mut out, genesis)?;
    put(&mut out, head_hash)?;
    put(&mut out, p.seq)?;
    put(&mut out, p.last_at_us)?;
    put(&mut out, &p.config)?;
    put(&mut out, len64(p.slots.len()))?;
    for (i, slot) in (0u32..).zip(&p.slots) {
        put(&mut out, &slot.account)?;
        put(&mut out, slot.opened_seq)?;
        put(&mut out, slot.opened_at_us)?;
        put(&mut out, &slot.key_hash)?;
        put(&mut out, &slot.peer)?;
        put(&mut out, slot.ratchet.as_ref().map(|r| (r.md5.as_str(), r.blake3, r.count)))?;
        put(&mut out, len64(slot.timeline.len()))?;
        put(&mut out, len64(lists.of(i).len()))?;
    }
    put(&mut out, &p.workflows)?;
    let mut links: Vec<(&TxId, &Link)> = p.links.iter().collect();
    links.sort_unstable_by_key(|(uuid, _)| **uuid);
    put(&mut out, links)?;
    put(&mut out, p.dialects.iter().collect::<Vec<_>>())?;
    put(&mut out, p.closed.iter().collect::<Vec<_>>())?;
    put(&mut out, p.link_logs.iter().collect::<Vec<_>>())?;
    put(&mut out, &p.facts)?;
    put(&mut out, p.extras.rare_of.iter().zip(&p.extras.rares).collect::<Vec<_>>())?;
    put(&mut out, &p.extras.highs)?;
    let mut validated: Vec<u32> = p.validated.iter().copied().collect();
    validated.sort_unstable();
    put(&mut out, validated)?;
    put(&mut out, p.big_balances.iter().map(|(&(slot, seq), &b)| (slot, seq, b)).collect::<Vec<_>>())?;
    let mut wide: Vec<(&TxId, &Wide)> = p.wide.iter().collect();
    wide.sort_unstable_by_key(|(uuid, _)| **uuid);
    put(&mut out, wide)?;
    put(&mut out, len64(p.times.len()))?;
    put(&mut out, len64(p.txs.len()))?;
    put(&mut out, len64(p.extras.len()))?;
    put(&mut out, len64(p.extras.text.len()))?;
    let (key, buckets, _) = p.tx_index.raw();
    put(&mut out, key)?;
    put(&mut out, len64(buckets.len()))?;
    put(&mut out, len64(p.pairs.raw().0.len()))?;
    Ok(out)
}

/// Writes sections: length, bytes, checksum.
struct Sections<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: u32,
    left: u64,
}

impl<W: Write> Sections<W> {
    fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(&MAGIC)?;
        out.write_all(&SNAPSHOT_FORMAT_VERSION.to_le_bytes())?;
        Ok(Self { out, buf: Vec::with_capacity(IO_CHUNK), crc: 0, left: 0 })
    }

    fn begin(&mut self, len: u64) -> std::io::Result<()> {
        self.out.write_all(&len.to_le_bytes())?;
        (self.crc, self.left) = (0, len);
        Ok(())
    }

    fn bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.buf.len() + bytes.len() > IO_CHUNK {
            self.drain()?;
        }
        if bytes.len() > IO_CHUNK {
            self.crc = crc32c::crc32c_append(self.crc, bytes);
            self.left -= len64(bytes.len());
            return self.out.write_all(bytes);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn drain(&mut self) -> std::io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.left -= len64(self.buf.len());
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn end(&mut self) -> std::io::Result<()> {
        self.drain()?;
        assert_eq!(self.left, 0, "a section is as long as announced");
        self.out.write_all(&self.crc.to_le_bytes())
    }

    fn section(&mut self, len: u64, body: impl FnOnce(&mut Self) -> std::io::Result<()>) -> std::io::Result<()> {
        self.begin(len)?;
        body(self)?;
        self.end()
    }
}

fn state_code(state: State) -> u8 {
    let i = State::ALL.iter().position(|&s| s == state).expect("every state is in ALL");
    u8::try_from(i).expect("five states")
}

/// Writes the snapshot of `p` to `out` (see the module docs).
pub fn write_snapshot<W: Write>(
    p: &Projections,
    genesis: [u8; 32],
    head_hash: [u8; 32],
    out: W,
) -> Result<W, StoreError> {
    // Projections that keep only what the checks read lack the read models a
    // node serves; saving them would be a bug, not a failure.
    assert!(!p.is_checks_only(), "an audit's checks-only projections are never saved as a snapshot");
    let lists = p.lists();
    let head = encode_head(p, &lists, genesis, head_hash)?;
    let mut w = Sections::new(out)?;
    w.section(len64(head.len()), |w| w.bytes(&head))?;
    w.section(len64(p.slots.len() * STATS_BYTES), |w| {
        for slot in &p.slots {
            let mut rec = [0u8; STATS_BYTES];
            for (class, c) in slot.classes.iter().enumerate() {
                let at = &mut rec[class * 56..(class + 1) * 56];
                at[0..16].copy_from_slice(&c.gross_in.to_le_bytes());
                at[16..32].copy_from_slice(&c.gross_out.to_le_bytes());
                at[32..40].copy_from_slice(&c.trades.to_le_bytes());
                at[40..48].copy_from_slice(&c.entries.to_le_bytes());
                at[48..56].copy_from_slice(&c.partners.to_le_bytes());
            }
            w.bytes(&rec)?;
        }
        Ok(())
    })?;
    let points: usize = p.slots.iter().map(|s| s.timeline.len()).sum();
    w.section(len64(points * POINT_BYTES), |w| {
        for point in p.slots.iter().flat_map(|s| &s.timeline) {
            let mut rec = [0u8; POINT_BYTES];
            rec[0..8].copy_from_slice(&point.seq.to_le_bytes());
            rec[8..16].copy_from_slice(&point.balance.to_le_bytes());
            w.bytes(&rec)?;
        }
        Ok(())
    })?;
    w.section(len64(p.times.len() * TIME_BYTES), |w| {
        for (seq, at_us) in &p.times {
            let mut rec = [0u8; TIME_BYTES];
            rec[0..8].copy_from_slice(&seq.to_le_bytes());
            rec[8..16].copy_from_slice(&at_us.to_le_bytes());
            w.bytes(&rec)?;
        }
        Ok(())
    })?;
    let extras = &p.extras;
    w.section(len64(extras.len() * EXTRA_BYTES), |w| {
        for chunk in extras.ends.chunks(IO_CHUNK / EXTRA_BYTES) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|e| e.to_le_bytes()).collect();
            w.bytes(&bytes)?;
        }
        Ok(())
    })?;
    w.section(len64(extras.text.len()), |w| w.bytes(extras.text.as_bytes()))?;
    w.section(len64(p.txs.len() * TX_BYTES), |w| {
        for tx in &p.txs {
            let mut rec = [0u8; TX_BYTES];
            rec[0..16].copy_from_slice(tx.uuid.0.as_bytes());
            rec[16..24].copy_from_slice(&tx.quant.to_le_bytes());
            rec[24..28].copy_from_slice(&tx.written.to_le_bytes());
            rec[28..32].copy_from_slice(&tx.payer.to_le_bytes());
            rec[32..36].copy_from_slice(&tx.payee.to_le_bytes());
            rec[36..40].copy_from_slice(&tx.version.to_le_bytes());
            rec[40..44].copy_from_slice(&tx.extra.to_le_bytes());
            rec[44..46].copy_from_slice(&tx.workflow.to_le_bytes());
            rec[46] = state_code(tx.state);
            rec[47] = tx.author;
            w.bytes(&rec)?;
        }
        Ok(())
    })?;
    let (_, buckets, _) = p.tx_index.raw();
    w.section(len64(buckets.len() * BUCKET_BYTES), |w| {
        for chunk in buckets.chunks(IO_CHUNK / BUCKET_BYTES) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|b| b.to_le_bytes()).collect();
            w.bytes(&bytes)?;
        }
        Ok(())
    })?;
    let (pairs, _) = p.pairs.raw();
    w.section(len64(pairs.len() * PAIR_BYTES), |w| {
        for (key, [a, b]) in pairs {
            let mut rec = [0u8; PAIR_BYTES];
            rec[0..8].copy_from_slice(&key.to_le_bytes());
            rec[8..12].copy_from_slice(&a.to_le_bytes());
            rec[12..16].copy_from_slice(&b.to_le_bytes());
            w.bytes(&rec)?;
        }
        Ok(())
    })?;
    let listed: usize = lists.lists.iter().map(Vec::len).sum();
    w.section(len64(listed * LIST_BYTES), |w| {
        for list in &lists.lists {
            for chunk in list.chunks(IO_CHUNK / LIST_BYTES) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                w.bytes(&bytes)?;
            }
        }
        Ok(())
    })?;
    Ok(w.out)
}

/// Encodes `p` as the bytes of a snapshot file.
pub fn encode_snapshot(p: &Projections, genesis: [u8; 32], head_hash: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    write_snapshot(p, genesis, head_hash, Vec::new())
}

/// Reads sections: each one's length is checked against what is left of
/// the file before anything is allocated, and its checksum at its end.
struct Input<R: Read> {
    input: R,
    left: u64,
    buf: Vec<u8>,
}

fn corrupt(why: impl Into<String>) -> StoreError {
    StoreError::Corrupt(why.into())
}

impl<R: Read> Input<R> {
    fn exact(&mut self, n: usize) -> Result<&[u8], StoreError> {
        if len64(n) > self.left {
            return Err(corrupt("truncated"));
        }
        self.buf.resize(n, 0);
        self.input.read_exact(&mut self.buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt("truncated"),
            _ => StoreError::Io(e),
        })?;
        self.left -= len64(n);
        Ok(&self.buf)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.exact(8)?.try_into().expect("8 bytes")))
    }

    /// Reads one section of records of `record` bytes, `count` of them
    /// when given, handing each to `each`; checks its checksum. Returns the
    /// number of records.
    fn records(
        &mut self,
        what: &str,
        record: usize,
        count: Option<u64>,
        mut each: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let len = self.u64()?;
        // The section and its checksum fit in what is left.
        if len > self.left.saturating_sub(4) || len % len64(record) != 0 {
            return Err(corrupt(format!("{what}: section length {len} does not fit the file")));
        }
        let n = len / len64(record);
        if count.is_some_and(|c| c != n) {
            return Err(corrupt(format!("{what}: {n} records, the head says {}", count.unwrap_or(0))));
        }
        let per_read = (IO_CHUNK / record).max(1) * record;
        let (mut crc, mut left) = (0u32, len);
        while left > 0 {
            let take = usize::try_from(left.min(len64(per_read))).expect("fits");
            let chunk = self.exact(take)?;
            crc = crc32c::crc32c_append(crc, chunk);
            let buf = std::mem::take(&mut self.buf);
            let result = buf.chunks_exact(record).try_for_each(&mut each);
            self.buf = buf;
            result?;
            left -= len64(take);
        }
        let stored = u32::from_le_bytes(self.exact(4)?.try_into().expect("4 bytes"));
        if stored != crc {
            return Err(corrupt(format!("{what}: checksum mismatch")));
        }
        Ok(n)
    }

    /// A whole section as bytes, `expected` of them when given.
    fn whole(&mut self, what: &str, expected: Option<u64>) -> Result<Vec<u8>, StoreError> {
        let len = self.u64()?;
        if len > self.left.saturating_sub(4) || expected.is_some_and(|e| e != len) {
            return Err(corrupt(format!("{what}: section length {len} does not fit the file or the head")));
        }
        let mut out = vec![0u8; usize::try_from(len).map_err(|_| corrupt("too large"))?];
        self.input.read_exact(&mut out).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt("truncated"),
            _ => StoreError::Io(e),
        })?;
        self.left -= len;
        let stored = u32::from_le_bytes(self.exact(4)?.try_into().expect("4 bytes"));
        if stored != crc32c::crc32c(&out) {
            return Err(corrupt(format!("{what}: checksum mismatch")));
        }
        Ok(out)
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}
fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}
fn le_i128(b: &[u8]) -> i128 {
    i128::from_le_bytes(b.try_into().expect("16 bytes"))
}

/// The most memory one decoded value may claim per byte of its input, as
/// bincode counts it: a primitive claims its in-memory size (at most 16
/// bytes for one byte of varint) and a container reserves `len ×
/// size_of::<T>()` before its first element. Legitimate values stay far below.
const DECODE_CLAIM_PER_BYTE: usize = 64;

/// Decodes one value from `bytes` with a bincode limit proportional to
/// `bytes.len()`, so that a damaged length field (behind a valid checksum)
/// is refused (`LimitExceeded`) instead of allocating what it says (a
/// fuzzer finding, issue 13). bincode's limit is a compile-time constant:
/// this picks the smallest power of two at least
/// [`DECODE_CLAIM_PER_BYTE`] × `bytes.len()`.
fn decode_bounded<T: bincode::Decode<()>>(bytes: &[u8]) -> Result<(T, usize), bincode::error::DecodeError> {
    let need = bytes.len().saturating_mul(DECODE_CLAIM_PER_BYTE);
    macro_rules! within {
        ($($bits:literal)*) => {
            $(
                if need <= 1usize << $bits {
                    return bincode::decode_from_slice::<T, _>(bytes, bincode_config().with_limit::<{ 1usize << $bits }>());
                }
            )*
        };
    }
    within!(12 14 16 18 20 22 24 26 28 30 32 34 36 38 40 42 44 46);
    Err(bincode::error::DecodeError::LimitExceeded)
}

/// Reads a snapshot of `len` bytes from `input` for the journal with
/// `genesis`; returns the projections and the seq and hash they reflect.
/// Damage of any kind is an error, never a panic.
pub fn read_snapshot<R: Read>(
    input: R,
    len: u64,
    genesis: [u8; 32],
) -> Result<(Projections, u64, [u8; 32]), StoreError> {
    read_snapshot_before(input, len, genesis, 0)
}

/// As [`read_snapshot`], for a journal whose head is `journal_head`: the
/// transaction tables are allocated with room for the records after the
/// snapshot, so folding them does not copy the tables (growing a table of
/// 10 M transactions would copy 640 MB and double its peak memory).
fn read_snapshot_before<R: Read>(
    input: R,
    len: u64,
    genesis: [u8; 32],
    journal_head: u64,
) -> Result<(Projections, u64, [u8; 32]), StoreError> {
    let mut r = Input { input, left: len, buf: Vec::new() };
    if r.exact(8)? != MAGIC {
        return Err(corrupt("not a snapshot file"));
    }
    let version = le_u32(r.exact(4)?);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(StoreError::UnknownVersion(version));
    }
    let head_bytes = r.whole("head", None)?;
    let (head, read) = decode_bounded::<Head>(&head_bytes).map_err(|e| corrupt(format!("head: {e}")))?;
    if read != head_bytes.len() {
        return Err(corrupt("head: trailing bytes"));
    }
    drop(head_bytes);
    if head.genesis != genesis {
        return Err(StoreError::Foreign);
    }
    let room = usize::try_from(journal_head.saturating_sub(head.seq)).unwrap_or(0);
    let (p, seq) = restore(&mut r, head, room)?;
    if r.left != 0 {
        return Err(corrupt(format!("{} trailing bytes", r.left)));
    }
    Ok((p, seq.0, seq.1))
}

/// Decodes a snapshot made by [`encode_snapshot`] (see [`read_snapshot`]).
pub fn decode_snapshot(bytes: &[u8], genesis: [u8; 32]) -> Result<(Projections, u64, [u8; 32]), StoreError> {
    read_snapshot(bytes, len64(bytes.len()), genesis)
}

/// Reads how many records of `record` bytes a section holds, for an exact
/// allocation, bounded by what is left of the file.
fn bounded(r_left: u64, count: u64, record: usize) -> Result<usize, StoreError> {
    if count.checked_mul(len64(record)).is_none_or(|bytes| bytes > r_left) {
        return Err(corrupt(format!("{count} records do not fit the file")));
    }
    usize::try_from(count).map_err(|_| corrupt("too large"))
}

/// The capacity of a per-account table of `n` entries as loaded: a little
/// room to grow, so that folding the journal's tail does not reallocate (and
/// copy) every account's timeline and listing at its first new entry, which
/// on a large journal would double the peak memory of the start.
fn with_room(n: usize) -> usize {
    n + n / 32 + 8
}

/// Builds the projections from the sections after the head, checking every
/// index against the tables it points into, then the projections' invariants.
fn restore<R: Read>(r: &mut Input<R>, head: Head, room: usize) -> Result<(Projections, (u64, [u8; 32])), StoreError> {
    let Head { head_hash, seq, last_at_us, config, accounts, .. } = head;
    let mut p = Projections::new();
    (p.seq, p.last_at_us, p.config) = (seq, last_at_us, config);
    p.reserve_accounts(accounts.len());
    let mut lengths = Vec::with_capacity(accounts.len());
    for a in accounts {
        if p.index_of(&a.account.id).is_some() {
            return Err(corrupt(format!("account {} twice", a.account.id)));
        }
        if a.account.kind == ledger::AccountKind::Trunkward && p.trunkward.is_some() {
            return Err(corrupt("a second trunkward account"));
        }
        if a.opened_seq > seq || a.opened_seq == 0 || a.opened_at_us > last_at_us {
            return Err(corrupt(format!("account {} opened after the snapshot", a.account.id)));
        }
        if p.slots.len() >= ix(NO_SLOT) {
            return Err(corrupt("too many accounts"));
        }
        let mut slot = AccountSlot::new(a.account, a.opened_seq, a.opened_at_us);
        slot.key_hash = a.key_hash;
        slot.peer = a.peer;
        slot.ratchet = a.ratchet.map(|(md5, blake3, count)| Ratchet { md5, blake3, count });
        slot.timeline = Vec::with_capacity(with_room(bounded(r.left, a.timeline, POINT_BYTES)?));
        lengths.push((a.timeline, a.listed));
        p.open(slot);
    }
    let accounts = p.slots.len();
    p.restore_workflows(head.workflows).map_err(|e| corrupt(e.to_string()))?;
    let known = |slot: u32| ix(slot) < accounts;
    for (_, rare) in &head.rares {
        if !rare.more.iter().all(|e| known(e.payer) && known(e.payee))
            || rare.workflow.is_some_and(|w| ix(w) >= p.workflows.len())
        {
            return Err(corrupt("an extra entry names an unknown account or workflow"));
        }
    }

    // 2. Stats.
    let mut slot = 0usize;
    r.records("stats", STATS_BYTES, Some(len64(accounts)), |b| {
        let s = &mut p.slots[slot];
        for (class, c) in s.classes.iter_mut().enumerate() {
            let at = &b[class * 56..(class + 1) * 56];
            *c = ClassStats {
                gross_in: le_i128(&at[0..16]),
                gross_out: le_i128(&at[16..32]),
                trades: le_u64(&at[32..40]),
                entries: le_u64(&at[40..48]),
                partners: le_u64(&at[48..56]),
            };
        }
        slot += 1;
        Ok(())
    })?;

    // 3, 4. Timelines, account after account, and their record times.
    let points: u64 =
        lengths.iter().map(|l| l.0).try_fold(0u64, u64::checked_add).ok_or_else(|| corrupt("too many points"))?;
    let mut at = (0usize, 0u64);
    r.records("timelines", POINT_BYTES, Some(points), |b| {
        while at.1 == lengths[at.0].0 {
            at = (at.0 + 1, 0);
        }
        let point = Point { seq: le_u64(&b[0..8]), balance: i64::from_le_bytes(b[8..16].try_into().expect("8 bytes")) };
        p.slots[at.0].timeline.push(point);
        at.1 += 1;
        Ok(())
    })?;
    p.times = Vec::with_capacity(bounded(r.left, head.times, TIME_BYTES)?);
    r.records("times", TIME_BYTES, Some(head.times), |b| {
        p.times.push((le_u64(&b[0..8]), le_u64(&b[8..16])));
        Ok(())
    })?;
    for (slot, seq, balance) in head.big_balances {
        let fits = crate::fold::fits(Some(balance)).is_ok();
        if !fits || ix(slot) >= accounts || p.big_balances.insert((slot, seq), balance).is_some() {
            return Err(corrupt("a large timeline balance out of range, of no account or twice"));
        }
    }

    // 5, 6. Extras and their text.
    let extras = bounded(r.left, head.extras, EXTRA_BYTES)?;
    let mut x = Extras { ends: Vec::with_capacity(extras.saturating_add(room)), ..Extras::default() };
    let increasing = |a: &[u32]| a.windows(2).all(|w| w[0] < w[1]);
    let (rare_of, rares): (Vec<u32>, Vec<TxRare>) = head.rares.into_iter().unzip();
    let highs: Vec<u32> = head.highs.iter().map(|h| h.1).collect();
    let high_at: Vec<u32> = head.highs.iter().map(|h| h.0).collect();
    if !increasing(&rare_of)
        || rare_of.last().is_some_and(|&e| ix(e) >= extras)
        || !increasing(&highs)
        || !increasing(&high_at)
        || highs.first() == Some(&0)
        || high_at.last().is_some_and(|&e| ix(e) >= extras)
    {
        return Err(corrupt("rare parts or text positions of unknown extras, or out of order"));
    }
    (x.rare_of, x.rares, x.highs) = (rare_of, rares, head.highs);
    let mut last_end = 0u64;
    let mut high = (0usize, 0u32);
    r.records("extras", EXTRA_BYTES, Some(head.extras), |b| {
        let at = x.ends.len();
        if x.highs.get(high.0).is_some_and(|h| ix(h.0) == at) {
            high = (high.0 + 1, x.highs[high.0].1);
        }
        let end = u64::from(high.1) << 32 | u64::from(le_u32(b));
        if end < last_end || end > head.text {
            return Err(corrupt("an extra's description is out of order"));
        }
        last_end = end;
        x.ends.push(le_u32(b));
        Ok(())
    })?;
    if last_end != head.text {
        return Err(corrupt("text not used by any extra"));
    }
    let text = r.whole("text", Some(head.text))?;
    x.text = String::from_utf8(text).map_err(|_| corrupt("descriptions are not UTF-8"))?;
    let mut from = 0u64;
    for i in 0..x.ends.len() {
        let end = x.end(i);
        let (a, b) = (usize::try_from(from).expect("within"), usize::try_from(end).expect("within"));
        if !x.text.is_char_boundary(a) || !x.text.is_char_boundary(b) {
            return Err(corrupt("a description splits a character"));
        }
        from = end;
    }
    p.extras = x;

    // 7. Transactions.
    let txs = bounded(r.left, head.txs, TX_BYTES)?;
    if txs >= ix(NO_EXTRA) {
        return Err(corrupt("too many transactions"));
    }
    p.txs = Vec::with_capacity(txs.saturating_add(room));
    let mut validated = 0usize;
    let workflows = p.workflows.len();
    let mut wide: std::collections::HashMap<TxId, (Wide, bool)> = std::collections::HashMap::new();
    for (uuid, parts) in head.wide {
        if parts == Wide::default() || wide.insert(uuid, (parts, false)).is_some() {
            return Err(corrupt("empty wide parts, or twice"));
        }
    }
    r.records("transactions", TX_BYTES, Some(head.txs), |b| {
        let state = *State::ALL.get(usize::from(b[46])).ok_or_else(|| corrupt("unknown state"))?;
        let rec = TxRec {
            uuid: TxId(uuid_from(&b[0..16])),
            quant: i64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            written: le_u32(&b[24..28]),
            payer: le_u32(&b[28..32]),
            payee: le_u32(&b[32..36]),
            version: le_u32(&b[36..40]),
            extra: le_u32(&b[40..44]),
            workflow: u16::from_le_bytes([b[44], b[45]]),
            state,
            author: b[47],
        };
        let parts = match wide.get_mut(&rec.uuid) {
            Some((_, true)) => return Err(corrupt(format!("transaction {} twice", rec.uuid))),
            Some((parts, used)) => {
                *used = true;
                Some(&*parts)
            }
            None => None,
        };
        let big_quant = parts.and_then(|w| w.quant);
        let quant_ok = match rec.quant {
            BIG_QUANT => big_quant.is_some(),
            q => big_quant.is_none() && q > 0 && crate::fold::fits(Some(i128::from(q))).is_ok(),
        };
        if !quant_ok {
            return Err(corrupt(format!("transaction {}: the quant is not an amount", rec.uuid)));
        }
        let written_ok = (rec.written == BIG_WRITTEN) == parts.is_some_and(|w| w.written_unix_s.is_some());
        let wide_author = parts.and_then(|w| w.author);
        if !written_ok || (rec.author == AUTHOR_WIDE) != wide_author.is_some() || rec.author > AUTHOR_EXTRA {
            return Err(corrupt(format!("transaction {}: its wide parts do not match its record", rec.uuid)));
        }
        let extra = (rec.extra != NO_EXTRA).then(|| ix(rec.extra));
        if extra.is_some_and(|e| e >= extras) {
            return Err(corrupt(format!("transaction {}: unknown extra", rec.uuid)));
        }
        let (rare_author, rare_workflow) = extra
            .map(|e| p.extras.get(u32::try_from(e).expect("checked")))
            .map_or((false, None), |x| (x.author().is_some(), x.workflow()));
        let author_known = match rec.author {
            AUTHOR_EXTRA => rare_author,
            AUTHOR_WIDE => wide_author.is_some_and(known) && !rare_author,
            _ => !rare_author,
        };
        let workflow_known = match rec.workflow {
            WIDE_WORKFLOW => rare_workflow.is_some(),
            w => usize::from(w) < workflows && rare_workflow.is_none(),
        };
        if !known(rec.payer) || !known(rec.payee) || !author_known || !workflow_known {
            return Err(corrupt(format!("transaction {} names an unknown account or workflow", rec.uuid)));
        }
        validated += usize::from(state == State::Validated);
        p.txs.push(rec);
        Ok(())
    })?;
    if wide.values().any(|(_, used)| !used) {
        return Err(corrupt("wide parts of no transaction"));
    }
    p.wide = wide.into_iter().map(|(uuid, (parts, _))| (uuid, parts)).collect();
    for &slot in &head.validated {
        if p.txs.get(ix(slot)).is_none_or(|t| t.state != State::Validated) || !p.validated.insert(slot) {
            return Err(corrupt("the validated transactions are not those in state validated"));
        }
    }
    if p.validated.len() != validated {
        return Err(corrupt("the validated transactions are not those in state validated"));
    }

    // 8. The uuid index.
    let buckets = bounded(r.left, head.index_buckets, BUCKET_BYTES)?;
    let mut index = Vec::with_capacity(buckets);
    r.records("uuid index", BUCKET_BYTES, Some(head.index_buckets), |b| {
        index.push(le_u64(b));
        Ok(())
    })?;
    p.tx_index = TxIndex::from_raw(head.index_key, index, txs).ok_or_else(|| corrupt("uuid index"))?;

    // 9. The pair table.
    let buckets = bounded(r.left, head.pair_buckets, PAIR_BYTES)?;
    let mut pairs = Vec::with_capacity(buckets);
    r.records("pairs", PAIR_BYTES, Some(head.pair_buckets), |b| {
        pairs.push((le_u64(&b[0..8]), [le_u32(&b[8..12]), le_u32(&b[12..16])]));
        Ok(())
    })?;
    p.pairs = PairTable::from_raw(pairs, accounts).ok_or_else(|| corrupt("pair table"))?;

    // 10. The listing index.
    let listed: u64 =
        lengths.iter().map(|l| l.1).try_fold(0u64, u64::checked_add).ok_or_else(|| corrupt("too many"))?;
    let mut lists = TxLists { upto: txs, lists: Vec::with_capacity(accounts) };
    for &(_, n) in &lengths {
        lists.lists.push(Vec::with_capacity(with_room(bounded(r.left, n, LIST_BYTES)?)));
    }
    let mut at = (0usize, 0u64);
    let tx_count = u32::try_from(txs).expect("checked");
    r.records("listing index", LIST_BYTES, Some(listed), |b| {
        while at.1 == lengths[at.0].1 {
            at = (at.0 + 1, 0);
        }
        let slot = le_u32(b);
        let list = &mut lists.lists[at.0];
        if slot >= tx_count || list.last().is_some_and(|&last| last >= slot) {
            return Err(corrupt("the listing index is out of order"));
        }
        list.push(slot);
        at.1 += 1;
        Ok(())
    })?;
    *p.lists.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner) = lists;
    p.cache = TxCache::sized(txs);

    for (uuid, link) in head.links {
        if p.tx_slot(&uuid).is_none() || p.links.insert(uuid, link).is_some() {
            return Err(corrupt(format!("link of unknown or twice-linked transaction {uuid}")));
        }
    }
    for (account, dialect) in head.dialects {
        if p.peer(&account).is_none() || dialect == Dialect::Ccnode || p.dialects.insert(account, dialect).is_some() {
            return Err(corrupt("a dialect of a peer not connected, or twice"));
        }
    }
    for (account, evidence) in head.closed {
        if p.peer(&account).is_none() || p.closed.insert(account, evidence).is_some() {
            return Err(corrupt("a closed link of a peer not connected, or twice"));
        }
    }
    for (account, log) in head.link_logs {
        let count = ledger::LedgerView::ratchet(&p, &account).map(|r| r.count);
        if count != Some(len64(log.len())) || p.link_logs.insert(account, log).is_some() {
            return Err(corrupt("a link log that is not its ratchet's, or twice"));
        }
    }
    let accounts: std::collections::HashSet<&AccountId> = p.ordered.keys().collect();
    head.facts.check_consistent(p.seq, &accounts).map_err(corrupt)?;
    p.facts = head.facts;
    p.check_invariants().map_err(corrupt)?;
    Ok((p, (seq, head_hash)))
}

fn uuid_from(b: &[u8]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(b.try_into().expect("16 bytes"))
}

/// Snapshots in a file of their own in a directory (see the module docs).
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// The store in `dir` (created if missing). Opening changes nothing
    /// else: an offline reader may open the store of a running node.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Deletes what older versions kept here (the sled database of snapshot
    /// formats up to 5, which this version does not read) and a temporary
    /// file a crash left; returns what was deleted. Only for the node that
    /// owns the directory (it holds the journal), at start.
    pub fn remove_legacy(&self) -> Result<Vec<String>, StoreError> {
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let legacy = LEGACY_NAMES.contains(&name.as_str()) || name.starts_with("snap.") || name == TEMP_NAME;
            if !legacy {
                continue;
            }
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
            removed.push(name);
        }
        if !removed.is_empty() {
            sync_dir(&self.dir)?;
        }
        removed.sort();
        Ok(removed)
    }

    /// Replaces the stored snapshot with `p`, tagged with the journal's
    /// genesis hash and the hash of record `p.seq()` (the genesis hash when
    /// seq is 0): written to a temporary file, fsynced, renamed over the
    /// snapshot, the directory fsynced. A crash at any point leaves the old
    /// snapshot or the new one.
    pub fn save(&self, p: &Projections, journal_genesis: [u8; 32], head_hash: [u8; 32]) -> Result<(), StoreError> {
        let temp = self.create_temp()?;
        let out = write_snapshot(p, journal_genesis, head_hash, std::io::BufWriter::with_capacity(IO_CHUNK, temp))?;
        let file = out.into_inner().map_err(|e| StoreError::Io(e.into_error()))?;
        self.commit(file)
    }

    /// As [`SnapshotStore::save`], for the bytes made by [`encode_snapshot`]
    /// (so the projections need not be borrowed while the file is written).
    pub fn save_blob(&self, blob: &[u8]) -> Result<(), StoreError> {
        if blob.len() < 12 || blob[..8] != MAGIC {
            return Err(corrupt("not a snapshot"));
        }
        let mut temp = self.create_temp()?;
        temp.write_all(blob)?;
        self.commit(temp)
    }

    fn create_temp(&self) -> Result<std::fs::File, StoreError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(options.open(self.dir.join(TEMP_NAME))?)
    }

    fn commit(&self, temp: std::fs::File) -> Result<(), StoreError> {
        temp.sync_all()?;
        drop(temp);
        std::fs::rename(self.dir.join(TEMP_NAME), self.path())?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Loads the stored snapshot for the journal with `journal_genesis`:
    /// `Ok(None)` if there is none, `Err(Foreign)` if it is another
    /// journal's, `Err(Corrupt)` / `Err(UnknownVersion)` if unreadable.
    pub fn load(&self, journal_genesis: [u8; 32]) -> Result<Option<(Projections, u64, [u8; 32])>, StoreError> {
        self.load_before(journal_genesis, 0)
    }

    /// As [`SnapshotStore::load`], with room in the transaction tables for
    /// the journal records up to `journal_head` (see [`load_or_rebuild`]).
    pub fn load_before(
        &self,
        journal_genesis: [u8; 32],
        journal_head: u64,
    ) -> Result<Option<(Projections, u64, [u8; 32])>, StoreError> {
        let file = match std::fs::File::open(self.path()) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        read_snapshot_before(file, len, journal_genesis, journal_head).map(Some)
    }

    /// Removes the stored snapshot.
    pub fn clear(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(self.path()) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Opens the snapshot in `store`, checks it against `journal` (same
/// genesis; its seq ≤ head and the journal's record at that seq has the
/// snapshot's hash) and folds the journal tail. If the snapshot is missing,
/// ahead, diverging, corrupt, unreadable or another journal's, rebuilds from
/// the journal and says why in the report. Never trusts the snapshot over the
/// journal. Does not save: call [`SnapshotStore::save`] when convenient.
pub fn load_or_rebuild<J: journal::Store + Sync>(
    journal: &J,
    store: &SnapshotStore,
) -> Result<(Projections, LoadReport), LoadError> {
    let head = journal.head();
    let genesis = journal.genesis().0;
    let started = std::time::Instant::now();
    let (mut p, from_snapshot_seq, rebuilt_because) = match store.load_before(genesis, head.seq) {
        Ok(Some((p, seq, hash))) => match check_against(journal, seq, hash)? {
            None => (p, Some(seq), None),
            Some(why) => (Projections::new(), None, Some(why)),
        },
        Ok(None) => (Projections::new(), None, Some("no snapshot".to_owned())),
        Err(e) => (Projections::new(), None, Some(e.to_string())),
    };
    let snapshot_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let started = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let pipelined = threads >= PIPELINE_MIN_THREADS && head.seq - p.seq() >= PIPELINE_MIN_RECORDS;
    let mut unfoldable = None;
    if from_snapshot_seq.is_none() {
        // Room for the whole journal at once (capacity is not memory until
        // it is written), rather than copying the tables as they grow; a
        // loaded snapshot made room for the tail already.
        p.reserve_transactions(usize::try_from(head.seq).unwrap_or(0));
    }
    let folded = fold_rest(journal, &mut p, pipelined, &mut unfoldable)?;
    let fold_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok((p, LoadReport { from_snapshot_seq, folded, rebuilt_because, unfoldable, snapshot_ms, fold_ms }))
}

/// Folds the journal after `p.seq()` into `p`, on two threads or one, then
/// catches the listing index up.
fn fold_rest<J: journal::Store + Sync>(
    journal: &J,
    p: &mut Projections,
    pipelined: bool,
    unfoldable: &mut Option<crate::Unfoldable>,
) -> Result<u64, LoadError> {
    let folded = if pipelined { fold_pipelined(journal, p, unfoldable)? } else { fold_tail(journal, p, unfoldable)? };
    p.index_transactions();
    Ok(folded)
}

/// Journal tails at least this long are read and decoded on a second thread
/// (given [`PIPELINE_MIN_THREADS`]).
pub const PIPELINE_MIN_RECORDS: u64 = 100_000;
/// Cores needed to read and decode on a second thread. On 2 cores shared
/// with other work the fold, which is bound by cache misses, lost more to
/// the decoding thread's memory traffic than it gained (docs/BENCHMARKS.md).
pub const PIPELINE_MIN_THREADS: usize = 3;
/// Records per batch handed from the decoding thread to the folding one.
const PIPELINE_BATCH: usize = 1024;

/// Folds the journal after `p.seq()` into `p` on this thread.
fn fold_tail<J: journal::Store>(
    journal: &J,
    p: &mut Projections,
    unfoldable: &mut Option<crate::Unfoldable>,
) -> Result<u64, LoadError> {
    let start = p.seq();
    if p.seq() < journal.head().seq {
        let mut batch = Batch::with_capacity(PIPELINE_BATCH);
        let flush = |p: &mut Projections, batch: &mut Batch, unfoldable: &mut Option<crate::Unfoldable>| {
            *unfoldable = fold_batch(p, batch).err();
            batch.clear();
            unfoldable.is_none()
        };
        for record in journal.iter_from(p.seq() + 1).map_err(journal_error)? {
            let decoded = record.map_err(journal_error).and_then(|r| {
                decode_event(&r.payload)
                    .map(|event| (r.seq, r.recorded_at_us, event))
                    .map_err(|source| LoadError::Decode { seq: r.seq, source })
            });
            match decoded {
                Ok(item) => batch.push(item),
                Err(e) => {
                    if !flush(p, &mut batch, unfoldable) {
                        return Ok(p.seq() - start);
                    }
                    return Err(e);
                }
            }
            if batch.len() == PIPELINE_BATCH && !flush(p, &mut batch, unfoldable) {
                return Ok(p.seq() - start);
            }
        }
        flush(p, &mut batch, unfoldable);
    }
    Ok(p.seq() - start)
}

type Batch = Vec<(u64, u64, ledger::Event)>;

/// Applies `batch`, warming the cache a few events ahead; stops at the
/// first event that cannot be folded.
fn fold_batch(p: &mut Projections, batch: &[(u64, u64, ledger::Event)]) -> Result<(), crate::Unfoldable> {
    p.try_apply_batch(batch, |(seq, at_us, event)| (*seq, *at_us, event))
}

/// As [`fold_tail`], with reading and decoding on a second thread, which
/// also frees the folded events (it allocated them), while this one folds.
/// Same result, same errors: the decoder stops at the first bad record and
/// everything before it is folded.
fn fold_pipelined<J: journal::Store + Sync>(
    journal: &J,
    p: &mut Projections,
    unfoldable: &mut Option<crate::Unfoldable>,
) -> Result<u64, LoadError> {
    use std::sync::mpsc;
    let from = p.seq() + 1;
    let start = p.seq();
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Batch, LoadError>>(8);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut batch = Batch::with_capacity(PIPELINE_BATCH);
            let send = |batch: Result<Batch, LoadError>| full_tx.send(batch).is_ok();
            let records = match journal.iter_from(from) {
                Ok(records) => records,
                Err(e) => {
                    send(Err(journal_error(e)));
                    return;
                }
            };
            for record in records {
                let decoded = record.map_err(journal_error).and_then(|r| {
                    decode_event(&r.payload)
                        .map(|event| (r.seq, r.recorded_at_us, event))
                        .map_err(|source| LoadError::Decode { seq: r.seq, source })
                });
                match decoded {
                    Ok(item) => batch.push(item),
                    Err(e) => {
                        if batch.is_empty() || send(Ok(std::mem::take(&mut batch))) {
                            send(Err(e));
                        }
                        return;
                    }
                }
                if batch.len() == PIPELINE_BATCH {
                    let next = empty_rx.try_recv().map_or_else(
                        |_| Batch::with_capacity(PIPELINE_BATCH),
                        |mut b| {
                            b.clear();
                            b
                        },
                    );
                    if !send(Ok(std::mem::replace(&mut batch, next))) {
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                send(Ok(batch));
            }
        });
        for batch in full_rx {
            let batch = batch?;
            if let Err(u) = fold_batch(p, &batch) {
                // Dropping the receiver stops the decoder at its next send.
                *unfoldable = Some(u);
                break;
            }
            // Freed by the decoder, which allocated it; if it is gone, here.
            let _ = empty_tx.send(batch);
        }
        Ok(p.seq() - start)
    })
}

fn journal_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> LoadError {
    LoadError::Journal(Box::new(error))
}

/// `None` if a snapshot at (`seq`, `hash`) is a prefix of `journal`, else why not.
fn check_against<J: journal::Store>(journal: &J, seq: u64, hash: [u8; 32]) -> Result<Option<String>, LoadError> {
    let head = journal.head();
    if seq > head.seq {
        return Ok(Some(format!("snapshot at seq {seq} is ahead of the journal head {}", head.seq)));
    }
    let expected = if seq == 0 { journal.genesis().0 } else { journal.read(seq).map_err(journal_error)?.hash.0 };
    if expected != hash {
        return Ok(Some(format!("snapshot hash differs from the journal's at seq {seq}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::Amount;

    fn tiny() -> Projections {
        let id = |s: &str| ledger::AccountId::new(s).expect("id");
        let mut p = Projections::new();
        let config = NodeConfig::new(ledger::NodeName::new("n").expect("name"));
        p.apply(1, 10, &ledger::Event::NodeInitialised { config });
        for (seq, name) in [(2, "a"), (3, "b")] {
            let limits = ledger::Limits::new(Amount::from_units(-9), Amount::from_units(9)).expect("limits");
            let kind = ledger::AccountKind::User { admin: false };
            let account = Account { id: id(name), kind, limits, status: ledger::AccountStatus::Active };
            p.apply(seq, 10, &ledger::Event::AccountOpened { account });
        }
        let entry = ledger::Entry {
            payer: id("a"),
            payee: id("b"),
            quant: Amount::from_units(2),
            description: String::new(),
            metadata: Default::default(),
            remote: Default::default(),
        };
        let transaction = ledger::Transaction {
            uuid: ledger::TxId(Default::default()),
            version: 1,
            state: ledger::State::Completed,
            workflow: ledger::Workflow::from_code("_C-").expect("code"),
            author: id("a"),
            written_unix_s: 0,
            entries: vec![entry],
        };
        p.apply(4, 11, &ledger::Event::TransactionProposed { transaction });
        p
    }

    /// `bytes` with `patch` applied to section `index` (0: the head) and
    /// that section's checksum recomputed, so only the record checks can
    /// refuse it.
    fn patched(bytes: &[u8], index: usize, patch: impl Fn(&mut [u8])) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let mut at = 12;
        for i in 0..=index {
            let len = usize::try_from(le_u64(&out[at..at + 8])).expect("fits");
            let body = at + 8..at + 8 + len;
            if i == index {
                patch(&mut out[body.clone()]);
                let crc = crc32c::crc32c(&out[body.clone()]).to_le_bytes();
                out[body.end..body.end + 4].copy_from_slice(&crc);
            }
            at = body.end + 4;
        }
        out
    }

    #[test]
    fn well_checksummed_but_inconsistent_records_are_refused() {
        let p = tiny();
        let bytes = encode_snapshot(&p, [1; 32], [2; 32]).expect("encode");
        let refused = |bytes: Vec<u8>, what: &str| match decode_snapshot(&bytes, [1; 32]) {
            Err(StoreError::Corrupt(why)) => why,
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        };
        // Section 6 is the transactions: quant at bytes 16..24, written time
        // at 24..28, payer slot at 28..32, state at 46, author kind at 47.
        let why = refused(patched(&bytes, 6, |t| t[28..32].copy_from_slice(&7u32.to_le_bytes())), "payer");
        assert!(why.contains("names an unknown account"), "{why}");
        assert!(refused(patched(&bytes, 6, |t| t[46] = 9), "state").contains("unknown state"));
        let why = refused(patched(&bytes, 6, |t| t[16..24].copy_from_slice(&0i64.to_le_bytes())), "zero quant");
        assert!(why.contains("not an amount"), "{why}");
        let why = refused(patched(&bytes, 6, |t| t[16..24].copy_from_slice(&i64::MIN.to_le_bytes())), "big quant");
        assert!(why.contains("not an amount"), "{why}");
        for (what, at, byte) in [("big written time", 24..28, 0xFF), ("wide author", 47..48, 2), ("author", 47..48, 4)]
        {
            let why = refused(patched(&bytes, 6, |t| t[at.clone()].fill(byte)), what);
            assert!(why.contains("wide parts do not match"), "{what}: {why}");
        }
        // Section 3 is the record times of the points: one after the head.
        let why = refused(patched(&bytes, 3, |t| t[8..16].copy_from_slice(&99u64.to_le_bytes())), "times");
        assert!(why.contains("times out of order or out of bounds"), "{why}");
        // Section 1 is the stats: a completed balance the timeline does not end at.
        let why = refused(patched(&bytes, 1, |s| s[0] ^= 1), "stats");
        assert!(why.contains("timeline ends at"), "{why}");
        // Section 2 is the timeline points: one after the snapshot's head.
        let why = refused(patched(&bytes, 2, |t| t[0..8].copy_from_slice(&99u64.to_le_bytes())), "timeline");
        assert!(why.contains("out of bounds"), "{why}");
        // Section 7 is the uuid index: a bucket naming a slot beyond the table.
        let why = refused(
            patched(&bytes, 7, |b| {
                let at = b.chunks(8).position(|c| c != [0; 8]).expect("one bucket") * 8;
                b[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
            }),
            "index",
        );
        assert_eq!(why, "uuid index");
    }

    #[test]
    fn a_snapshot_round_trips_exactly_and_names_its_seq_and_hash() {
        let p = tiny();
        let bytes = encode_snapshot(&p, [1; 32], [2; 32]).expect("encode");
        let (q, seq, hash) = decode_snapshot(&bytes, [1; 32]).expect("decode");
        assert_eq!((q, seq, hash), (p.clone(), 4, [2; 32]));
        assert!(matches!(decode_snapshot(&bytes, [3; 32]), Err(StoreError::Foreign)));
        let mut old = bytes.clone();
        old[8] = 5;
        assert!(matches!(decode_snapshot(&old, [1; 32]), Err(StoreError::UnknownVersion(5))));
    }

    #[test]
    fn pipelined_folding_equals_folding_on_one_thread_and_stops_at_the_same_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal =
            journal::Journal::create(&dir.path().join("j"), "n", journal::Options::default()).expect("create");
        let p = tiny();
        let mut events = vec![
            ledger::Event::NodeInitialised { config: p.config().expect("initialised").clone() },
            ledger::Event::AccountOpened { account: p.slots[0].account.clone() },
            ledger::Event::AccountOpened { account: p.slots[1].account.clone() },
            ledger::Event::WorkflowDefined { workflow: p.tx_ref(0).workflow.clone() },
        ];
        let template = p.tx_ref(0).to_ref();
        for n in 0..3_000u128 {
            let mut t = template.clone();
            t.uuid = ledger::TxId(uuid::Uuid::from_u128(n + 1));
            t.entries[0].quant = Amount::from_micros(i64::try_from(n).expect("small") + 1);
            if n % 2 == 1 {
                let e = &mut t.entries[0];
                std::mem::swap(&mut e.payer, &mut e.payee);
            }
            events.push(ledger::Event::TransactionProposedRef { transaction: t });
        }
        for chunk in events.chunks(500) {
            let payloads: Vec<Vec<u8>> = chunk.iter().map(ledger::encode_event).collect();
            journal.append_batch(&payloads).expect("append");
        }
        let (mut one, mut two) = (Projections::new(), Projections::new());
        assert_eq!(fold_rest(&journal, &mut one, false, &mut None).expect("fold"), 3_004);
        assert_eq!(fold_rest(&journal, &mut two, true, &mut None).expect("fold"), 3_004);
        assert_eq!(one, two);
        one.assert_invariants();
        let q = crate::Query { involving: Some(p.slots[1].account.id.clone()), ..crate::Query::default() };
        assert_eq!(two.transactions(&q).total, 3_000);
        // A record that is not an event: both stop there, with the same error.
        journal.append_batch(&[b"not an event".to_vec()]).expect("append");
        for pipelined in [false, true] {
            let mut p = Projections::new();
            match fold_rest(&journal, &mut p, pipelined, &mut None) {
                Err(LoadError::Decode { seq, .. }) => assert_eq!(seq, 3_005),
                other => panic!("expected a decode error, got {other:?}"),
            }
            assert_eq!(p.seq(), 3_004, "everything before the bad record is folded");
        }
    }
}
