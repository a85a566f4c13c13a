//! Snapshots of [`Projections`] in sled: derived data, never the source of
//! truth.
//!
//! A snapshot holds what cannot be recomputed from current transactions (the
//! accounts with their opening seq, keys, peers and balance timelines) plus
//! the transactions themselves; balances, trade stats and per-account lists
//! are recomputed on load, and the result is checked against the
//! projection invariants. It is tagged with the journal's genesis hash and
//! the seq and record hash it reflects, so a snapshot from another journal,
//! or ahead of or diverging from this one, is detected and rebuilt.
//!
//! Blob format (version [`SNAPSHOT_FORMAT_VERSION`]): key `meta` holds
//! `[version u8][crc32c(body) u32 LE][body length u64 LE][chunk count u32 LE]`;
//! keys `chunk` ++ `u32 BE` hold the body in chunks of at most
//! [`CHUNK_BYTES`]. The body is bincode 2.0.1 with the configuration of
//! [`bincode_config`]. Everything is written in one atomic sled batch.

use std::path::Path;

use bincode::config::{Configuration, LittleEndian, NoLimit, Varint};
use bincode::{Decode, Encode};
use ledger::federation::{Link, Ratchet};
use ledger::{
    decode_event, Account, AccountId, Amount, DecodeError, Dialect, KeyHash, LedgerView, NodeConfig, Peer, TxId,
};

use crate::fold::{AccountSlot, Projections, TimelinePoint};

/// The snapshot format (2 added link dialects, 3 closed links, 4 the node's
/// facts, 5 transactions as the projections hold them: workflows once, parties
/// as account slots; older snapshots are rebuilt from the journal).
pub const SNAPSHOT_FORMAT_VERSION: u8 = 5;
/// Largest sled value a snapshot body is cut into, in bytes.
pub const CHUNK_BYTES: usize = 8 << 20;

const META_KEY: &[u8] = b"meta";
const CHUNK_PREFIX: &[u8] = b"chunk";
const META_BYTES: usize = 1 + 4 + 8 + 4;

/// The pinned bincode configuration of snapshot bodies, written out. No
/// decode limit: the body's checksum is verified before decoding.
pub fn bincode_config() -> Configuration<LittleEndian, Varint, NoLimit> {
    bincode::config::standard().with_little_endian().with_variable_int_encoding().with_no_limit()
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The snapshot was written by a format this build does not read.
    #[error("unknown snapshot format version {0}")]
    UnknownVersion(u8),
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

#[derive(Encode, Decode)]
struct PointV1 {
    seq: u64,
    at_us: u64,
    balance: Amount,
}

#[derive(Encode, Decode)]
struct AccountV1 {
    account: Account,
    opened_seq: u64,
    opened_at_us: u64,
    key_hash: Option<KeyHash>,
    peer: Option<Peer>,
    ratchet: Option<RatchetV1>,
    timeline: Vec<PointV1>,
}

#[derive(Encode, Decode)]
struct RatchetV1 {
    md5: String,
    blake3: [u8; 32],
    count: u64,
}

/// The body layout, as the fields of a bincode struct in this order
/// (encoded and decoded field by field, never built whole):
/// `genesis: [u8; 32], head_hash: [u8; 32], seq: u64, last_at_us: u64,
/// config: Option<NodeConfig>, accounts: Vec<AccountV1>` (opening order),
/// `workflows: Vec<Workflow>` (the distinct definitions, in order of first use),
/// `transactions: Vec<StoredTx>` (proposal order; parties as account slots in opening order),
/// `links: Vec<(TxId, Link)>` (proposal order of their transactions),
/// `dialects: Vec<(AccountId, Dialect)>` (by account id, non-ccnode only),
/// `closed: Vec<(AccountId, String)>` (closed links and their evidence, by account id),
/// `link_logs: Vec<(AccountId, Vec<LinkVersion>)>` (each link's written versions, by account id),
/// `facts: NodeFacts` (fees, soft limits and crossings, keys, checkpoints, earlier limits).
#[cfg(test)]
#[derive(Encode, Decode)]
struct SnapshotV1 {
    genesis: [u8; 32],
    head_hash: [u8; 32],
    seq: u64,
    last_at_us: u64,
    config: Option<NodeConfig>,
    accounts: Vec<AccountV1>,
    workflows: Vec<ledger::Workflow>,
    transactions: Vec<crate::fold::StoredTx>,
    links: Vec<(TxId, Link)>,
    dialects: Vec<(AccountId, Dialect)>,
    closed: Vec<(AccountId, String)>,
    link_logs: Vec<(AccountId, Vec<ledger::ratchet::LinkVersion>)>,
    facts: crate::facts::NodeFacts,
}

/// Encodes a snapshot body (no version byte, no checksum).
fn encode_body(p: &Projections, genesis: [u8; 32], head_hash: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    encode_head(p, genesis, head_hash, &mut out)?;
    put(&mut out, p.workflow_table())?;
    put(&mut out, u64::try_from(p.txs.len()).expect("usize fits in u64"))?;
    for slot in 0..p.txs.len() {
        put(&mut out, p.stored_tx(u32::try_from(slot).expect("slots are u32")))?;
    }
    encode_links(p, &mut out)?;
    let dialects: Vec<(&AccountId, &Dialect)> = p.dialects.iter().collect();
    put(&mut out, dialects)?;
    let closed: Vec<(&AccountId, &String)> = p.closed.iter().collect();
    put(&mut out, closed)?;
    let logs: Vec<(&AccountId, &Vec<ledger::ratchet::LinkVersion>)> = p.link_logs.iter().collect();
    put(&mut out, logs)?;
    put(&mut out, &p.facts)?;
    Ok(out)
}

/// Appends the bincode encoding of `value` to `out`.
fn put(out: &mut Vec<u8>, value: impl Encode) -> Result<(), StoreError> {
    bincode::encode_into_std_write(value, out, bincode_config())
        .map(drop)
        .map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

/// The fields of [`SnapshotV1`] before `transactions`, in its order,
/// borrowing instead of cloning.
fn encode_head(p: &Projections, genesis: [u8; 32], head_hash: [u8; 32], out: &mut Vec<u8>) -> Result<(), StoreError> {
    put(out, genesis)?;
    put(out, head_hash)?;
    put(out, p.seq)?;
    put(out, p.last_at_us)?;
    put(out, &p.config)?;
    put(out, u64::try_from(p.slots.len()).expect("usize fits in u64"))?;
    for slot in &p.slots {
        put(out, &slot.account)?;
        put(out, slot.opened_seq)?;
        put(out, slot.opened_at_us)?;
        put(out, &slot.key_hash)?;
        put(out, &slot.peer)?;
        put(out, slot.ratchet.as_ref().map(|r| (r.md5.as_str(), r.blake3, r.count)))?;
        put(out, u64::try_from(slot.timeline.len()).expect("usize fits in u64"))?;
        for point in &slot.timeline {
            put(out, (point.seq, point.at_us, point.balance))?;
        }
    }
    Ok(())
}

/// Link facts, in proposal order of their transactions.
fn encode_links(p: &Projections, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let links: Vec<(TxId, &Link)> =
        p.txs.iter().filter_map(|tx| p.links.get(&tx.uuid).map(|link| (tx.uuid, link))).collect();
    put(out, links)
}

/// Encodes `p` as a snapshot blob: version byte, crc32c, body.
pub fn encode_snapshot(p: &Projections, genesis: [u8; 32], head_hash: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    let body = encode_body(p, genesis, head_hash)?;
    Ok(seal(&body))
}

/// Version byte, crc32c of `body`, `body`.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(body.len() + 5);
    blob.push(SNAPSHOT_FORMAT_VERSION);
    blob.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    blob.extend_from_slice(body);
    blob
}

/// Reads a snapshot body value by value.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn next<T: Decode<()>>(&mut self) -> Result<T, StoreError> {
        let (value, read) =
            decode_bounded::<T>(&self.body[self.at..]).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))?;
        self.at += read;
        Ok(value)
    }
}

/// The most memory one decoded value may claim per byte of the body left,
/// as bincode counts it: a primitive claims its in-memory size (at most 16
/// bytes for one byte of varint) and a container reserves `len ×
/// size_of::<T>()` before its first element. Legitimate values stay far below.
const DECODE_CLAIM_PER_BYTE: usize = 64;

/// Decodes one value from `rest` with a bincode limit proportional to
/// `rest.len()`, so that a damaged length field is refused
/// (`LimitExceeded`) instead of allocating what it says. bincode's limit is a
/// compile-time constant: this picks the smallest power of two at least
/// [`DECODE_CLAIM_PER_BYTE`] × `rest.len()`.
fn decode_bounded<T: Decode<()>>(rest: &[u8]) -> Result<(T, usize), bincode::error::DecodeError> {
    let need = rest.len().saturating_mul(DECODE_CLAIM_PER_BYTE);
    macro_rules! within {
        ($($bits:literal)*) => {
            $(
                if need <= 1usize << $bits {
                    return bincode::decode_from_slice::<T, _>(rest, bincode_config().with_limit::<{ 1usize << $bits }>());
                }
            )*
        };
    }
    within!(12 14 16 18 20 22 24 26 28 30 32 34 36 38 40 42 44 46);
    Err(bincode::error::DecodeError::LimitExceeded)
}

/// Decodes a snapshot blob made by [`encode_snapshot`] for the journal with
/// `genesis`; returns the projections and the seq and hash they reflect.
/// Damage of any kind is an error, never a panic.
pub fn decode_snapshot(blob: &[u8], genesis: [u8; 32]) -> Result<(Projections, u64, [u8; 32]), StoreError> {
    let (&version, rest) = blob.split_first().ok_or_else(|| StoreError::Corrupt("empty".into()))?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(StoreError::UnknownVersion(version));
    }
    let (crc, body) = rest.split_at_checked(4).ok_or_else(|| StoreError::Corrupt("truncated header".into()))?;
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(StoreError::Corrupt("checksum mismatch".into()));
    }
    let mut r = Reader { body, at: 0 };
    let snapshot_genesis: [u8; 32] = r.next()?;
    if snapshot_genesis != genesis {
        return Err(StoreError::Foreign);
    }
    let head_hash: [u8; 32] = r.next()?;
    let p = restore(&mut r)?;
    if r.at != body.len() {
        return Err(StoreError::Corrupt(format!("{} trailing bytes", body.len() - r.at)));
    }
    let seq = p.seq;
    Ok((p, seq, head_hash))
}

/// Rebuilds the projections from a snapshot body (after genesis and head
/// hash), decoding one transaction at a time, recomputing balances, stats and
/// lists, and checking every invariant.
fn restore(r: &mut Reader<'_>) -> Result<Projections, StoreError> {
    let corrupt = StoreError::Corrupt;
    let seq: u64 = r.next()?;
    let last_at_us: u64 = r.next()?;
    let config: Option<NodeConfig> = r.next()?;
    let mut p = Projections::new();
    (p.seq, p.last_at_us, p.config) = (seq, last_at_us, config);
    let accounts: u64 = r.next()?;
    for _ in 0..accounts {
        let a: AccountV1 = r.next()?;
        if p.index_of(&a.account.id).is_some() {
            return Err(corrupt(format!("account {} twice", a.account.id)));
        }
        if a.account.kind == ledger::AccountKind::Trunkward && p.trunkward_account().is_some() {
            return Err(corrupt("a second trunkward account".to_owned()));
        }
        if a.opened_seq > seq || a.opened_seq == 0 || a.opened_at_us > last_at_us {
            return Err(corrupt(format!("account {} opened after the snapshot", a.account.id)));
        }
        let mut slot = AccountSlot::new(a.account, a.opened_seq, a.opened_at_us);
        slot.key_hash = a.key_hash;
        slot.peer = a.peer;
        slot.ratchet = a.ratchet.map(|r| Ratchet { md5: r.md5, blake3: r.blake3, count: r.count });
        slot.timeline =
            a.timeline.into_iter().map(|t| TimelinePoint { seq: t.seq, at_us: t.at_us, balance: t.balance }).collect();
        p.open(slot);
    }
    let workflows: Vec<ledger::Workflow> = r.next()?;
    p.restore_workflows(workflows).map_err(|e| corrupt(e.to_string()))?;
    let transactions: u64 = r.next()?;
    for _ in 0..transactions {
        let tx: crate::fold::StoredTx = r.next()?;
        let state = tx.state();
        let slot = p.push_stored(tx).map_err(|e| corrupt(e.to_string()))?;
        p.book(slot, None, state, None).map_err(|e| corrupt(e.to_string()))?;
    }
    let links: Vec<(TxId, Link)> = r.next()?;
    for (uuid, link) in links {
        if p.transaction(&uuid).is_none() || p.links.insert(uuid, link).is_some() {
            return Err(corrupt(format!("link of unknown or twice-linked transaction {uuid}")));
        }
    }
    let dialects: Vec<(AccountId, Dialect)> = r.next()?;
    for (account, dialect) in dialects {
        if p.peer(&account).is_none() || dialect == Dialect::Ccnode || p.dialects.insert(account, dialect).is_some() {
            return Err(corrupt("a dialect of a peer not connected, or twice".to_owned()));
        }
    }
    let closed: Vec<(AccountId, String)> = r.next()?;
    for (account, evidence) in closed {
        if p.peer(&account).is_none() || p.closed.insert(account, evidence).is_some() {
            return Err(corrupt("a closed link of a peer not connected, or twice".to_owned()));
        }
    }
    let logs: Vec<(AccountId, Vec<ledger::ratchet::LinkVersion>)> = r.next()?;
    for (account, log) in logs {
        let count = ledger::LedgerView::ratchet(&p, &account).map(|r| r.count);
        if count != Some(u64::try_from(log.len()).expect("usize fits u64"))
            || p.link_logs.insert(account, log).is_some()
        {
            return Err(corrupt("a link log that is not its ratchet's, or twice".to_owned()));
        }
    }
    let facts: crate::facts::NodeFacts = r.next()?;
    let accounts: std::collections::HashSet<&AccountId> = p.ordered.keys().collect();
    facts.check_consistent(p.seq, &accounts).map_err(corrupt)?;
    p.facts = facts;
    p.check_invariants().map_err(corrupt)?;
    Ok(p)
}

/// How long `SnapshotStore::open` waits for a lock a just-closed store still holds.
pub const OPEN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Snapshots in a sled database.
#[derive(Debug)]
pub struct SnapshotStore {
    db: sled::Db,
}

impl SnapshotStore {
    /// Opens (or creates) the sled database in `dir`.
    ///
    /// sled releases its file lock from a background thread after the last
    /// handle is dropped, so reopening right after closing (a node restarted
    /// in the same process) may briefly find it held: that is retried for up
    /// to [`OPEN_LOCK_WAIT`] before giving up.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match sled::open(dir) {
                Ok(db) => return Ok(Self { db }),
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::Other
                        && e.to_string().contains("could not acquire lock")
                        && started.elapsed() < OPEN_LOCK_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Replaces the stored snapshot with `p`, tagged with the journal's
    /// genesis hash and the hash of record `p.seq()` (the genesis hash when
    /// seq is 0), then flushes. One atomic sled batch.
    pub fn save(&self, p: &Projections, journal_genesis: [u8; 32], head_hash: [u8; 32]) -> Result<(), StoreError> {
        self.save_blob(&encode_snapshot(p, journal_genesis, head_hash)?)
    }

    /// Replaces the stored snapshot with a blob made by [`encode_snapshot`]
    /// (so the projections need not be borrowed while sled writes), then
    /// flushes. One atomic sled batch.
    pub fn save_blob(&self, blob: &[u8]) -> Result<(), StoreError> {
        if blob.len() < 5 || blob[0] != SNAPSHOT_FORMAT_VERSION {
            return Err(StoreError::Corrupt("not a snapshot blob".into()));
        }
        let (header, body) = blob.split_at(5);
        let chunks: Vec<&[u8]> = body.chunks(CHUNK_BYTES).collect();
        let count = u32::try_from(chunks.len()).map_err(|_| StoreError::Corrupt("snapshot too large".into()))?;
        let old_count = match self.db.get(META_KEY)? {
            Some(meta) => parse_meta(&meta).map_or(0, |m| m.chunks),
            None => 0,
        };
        let mut batch = sled::Batch::default();
        let mut meta = header.to_vec();
        meta.extend_from_slice(&u64::try_from(body.len()).expect("usize fits in u64").to_le_bytes());
        meta.extend_from_slice(&count.to_le_bytes());
        batch.insert(META_KEY, meta);
        for (i, chunk) in (0u32..).zip(&chunks) {
            batch.insert(chunk_key(i), *chunk);
        }
        for i in count..old_count {
            batch.remove(chunk_key(i));
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Loads the stored snapshot for the journal with `journal_genesis`:
    /// `Ok(None)` if there is none, `Err(Foreign)` if it is another
    /// journal's, `Err(Corrupt)` / `Err(UnknownVersion)` if unreadable.
    pub fn load(&self, journal_genesis: [u8; 32]) -> Result<Option<(Projections, u64, [u8; 32])>, StoreError> {
        let Some(meta) = self.db.get(META_KEY)? else { return Ok(None) };
        let meta = parse_meta(&meta)?;
        let capacity = usize::try_from(meta.body_len).map_err(|_| StoreError::Corrupt("body too large".into()))?;
        // The lengths in the meta are only claims (a damaged one made this
        // allocate up to 4 GiB): believe them once the last chunk they name
        // is there with the length they imply.
        let last_len = match meta.chunks.checked_sub(1) {
            None => 0,
            Some(last) => {
                self.db.get(chunk_key(last))?.ok_or_else(|| StoreError::Corrupt(format!("chunk {last} missing")))?.len()
            }
        };
        let full = usize::try_from(meta.chunks.saturating_sub(1)).ok().and_then(|n| n.checked_mul(CHUNK_BYTES));
        if last_len > CHUNK_BYTES || full.and_then(|f| f.checked_add(last_len)) != Some(capacity) {
            return Err(StoreError::Corrupt("body length mismatch".into()));
        }
        let mut blob = Vec::with_capacity(capacity.saturating_add(5));
        blob.push(meta.version);
        blob.extend_from_slice(&meta.crc);
        for i in 0..meta.chunks {
            let chunk = self.db.get(chunk_key(i))?.ok_or_else(|| StoreError::Corrupt(format!("chunk {i} missing")))?;
            blob.extend_from_slice(&chunk);
        }
        if u64::try_from(blob.len() - 5).ok() != Some(meta.body_len) {
            return Err(StoreError::Corrupt("body length mismatch".into()));
        }
        decode_snapshot(&blob, journal_genesis).map(Some)
    }

    /// Removes the stored snapshot.
    pub fn clear(&self) -> Result<(), StoreError> {
        self.db.clear()?;
        self.db.flush()?;
        Ok(())
    }

    /// The underlying sled tree, for tests that damage it on purpose.
    #[doc(hidden)]
    pub fn raw(&self) -> &sled::Db {
        &self.db
    }
}

struct Meta {
    version: u8,
    crc: [u8; 4],
    body_len: u64,
    chunks: u32,
}

fn parse_meta(bytes: &[u8]) -> Result<Meta, StoreError> {
    let version = *bytes.first().ok_or_else(|| StoreError::Corrupt("empty meta".into()))?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(StoreError::UnknownVersion(version));
    }
    let bytes: &[u8; META_BYTES] =
        bytes.try_into().map_err(|_| StoreError::Corrupt(format!("meta is {} bytes", bytes.len())))?;
    let field = |from: usize, to: usize| &bytes[from..to];
    Ok(Meta {
        version,
        crc: field(1, 5).try_into().expect("4 bytes"),
        body_len: u64::from_le_bytes(field(5, 13).try_into().expect("8 bytes")),
        chunks: u32::from_le_bytes(field(13, 17).try_into().expect("4 bytes")),
    })
}

fn chunk_key(i: u32) -> Vec<u8> {
    let mut key = CHUNK_PREFIX.to_vec();
    key.extend_from_slice(&i.to_be_bytes());
    key
}

/// Opens the snapshot in `store`, checks it against `journal` (same
/// genesis; its seq ≤ head and the journal's record at that seq has the
/// snapshot's hash) and folds the journal tail. If the snapshot is missing,
/// ahead, diverging, corrupt, unreadable or another journal's, rebuilds from
/// the journal and says why in the report. Never trusts sled over the
/// journal. Does not save: call [`SnapshotStore::save`] when convenient.
pub fn load_or_rebuild<J: journal::Store + Sync>(
    journal: &J,
    store: &SnapshotStore,
) -> Result<(Projections, LoadReport), LoadError> {
    let head = journal.head();
    let genesis = journal.genesis().0;
    let started = std::time::Instant::now();
    let (mut p, from_snapshot_seq, rebuilt_because) = match store.load(genesis) {
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
    use crate::fold::ix;

    #[test]
    fn meta_parse_rejects_wrong_lengths_and_versions() {
        assert!(matches!(parse_meta(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(parse_meta(&[SNAPSHOT_FORMAT_VERSION, 0]), Err(StoreError::Corrupt(_))));
        assert!(matches!(parse_meta(&[9; META_BYTES]), Err(StoreError::UnknownVersion(9))));
        let mut ok = vec![SNAPSHOT_FORMAT_VERSION, 1, 2, 3, 4];
        ok.extend_from_slice(&7u64.to_le_bytes());
        ok.extend_from_slice(&2u32.to_le_bytes());
        let meta = parse_meta(&ok).expect("valid meta");
        assert_eq!((meta.crc, meta.body_len, meta.chunks), ([1, 2, 3, 4], 7, 2));
    }

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

    fn round_trip(p: &Projections) -> Result<Projections, StoreError> {
        let blob = encode_snapshot(p, [1; 32], [2; 32])?;
        decode_snapshot(&blob, [1; 32]).map(|(p, seq, hash)| {
            assert_eq!((seq, hash), (p.seq(), [2; 32]));
            p
        })
    }

    /// The snapshot of `p` as the whole struct.
    fn parts(p: &Projections) -> SnapshotV1 {
        let blob = encode_snapshot(p, [1; 32], [2; 32]).expect("encode");
        let (s, read) = bincode::decode_from_slice::<SnapshotV1, _>(&blob[5..], bincode_config()).expect("whole");
        assert_eq!(read, blob.len() - 5);
        s
    }

    fn decode_parts(s: &SnapshotV1) -> Result<(Projections, u64, [u8; 32]), StoreError> {
        let body = bincode::encode_to_vec(s, bincode_config()).expect("encode");
        decode_snapshot(&seal(&body), [1; 32])
    }

    #[test]
    fn field_by_field_encoding_is_the_snapshot_struct() {
        let p = tiny();
        let s = parts(&p);
        assert_eq!(s.transactions, vec![p.stored_tx(0)]);
        assert_eq!(s.workflows, p.workflow_table());
        assert_eq!(
            bincode::encode_to_vec(&s, bincode_config()).expect("encode"),
            &encode_snapshot(&p, [1; 32], [2; 32]).expect("encode")[5..]
        );
        assert_eq!(decode_parts(&s).expect("decodes").0, p);
    }

    #[test]
    fn well_checksummed_but_inconsistent_snapshots_are_refused() {
        let good = tiny();
        assert_eq!(round_trip(&good).expect("consistent"), good);
        let corrupt = |s: SnapshotV1, what: &str| match decode_parts(&s) {
            Err(StoreError::Corrupt(why)) => why,
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        };
        let mut s = parts(&good);
        s.accounts[0].timeline.pop();
        assert!(corrupt(s, "timeline short").contains("timeline ends at"));
        let mut s = parts(&good);
        s.accounts[0].timeline[0].seq = 99;
        assert!(corrupt(s, "timeline after head").contains("out of bounds"));
        let mut s = parts(&good);
        s.transactions[0].payer = 7;
        assert!(corrupt(s, "unknown party").contains("names an unknown account"));
        let mut s = parts(&good);
        let twin = s.transactions[0].clone();
        s.transactions.push(twin);
        assert!(corrupt(s, "duplicate uuid").contains("twice"));
        let mut s = parts(&good);
        s.accounts[1].opened_seq = 7;
        assert!(corrupt(s, "opened after").contains("opened after"));
        let mut s = parts(&good);
        s.transactions[0].quant = Amount::from_units(3);
        assert!(corrupt(s, "balance vs timeline").contains("timeline ends at"));
        let mut s = parts(&good);
        s.transactions[0].workflow = 1;
        assert!(corrupt(s, "unknown workflow").contains("names an unknown workflow"));
        let mut s = parts(&good);
        s.transactions[0].author = u32::MAX;
        assert!(corrupt(s, "author nowhere").contains("names an unknown account"));
        let mut s = parts(&good);
        s.genesis = [3; 32];
        assert!(matches!(decode_parts(&s), Err(StoreError::Foreign)));
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

    #[test]
    fn chunk_keys_sort_in_chunk_order() {
        assert!(chunk_key(1) < chunk_key(2) && chunk_key(255) < chunk_key(256));
        assert_eq!(ix(3), 3);
    }
}
