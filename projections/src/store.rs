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
use ledger::{decode_event, Account, Amount, DecodeError, KeyHash, LedgerView, NodeConfig, Peer, Transaction, TxId};

use crate::fold::{AccountSlot, Projections, TimelinePoint};

/// The only snapshot format so far.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 1;
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
    /// The journal could not be read.
    #[error("journal: {0}")]
    Journal(#[from] journal::ReadError),
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

#[derive(Encode, Decode)]
struct SnapshotV1 {
    genesis: [u8; 32],
    head_hash: [u8; 32],
    seq: u64,
    last_at_us: u64,
    config: Option<NodeConfig>,
    /// In opening order.
    accounts: Vec<AccountV1>,
    /// In proposal order.
    transactions: Vec<Transaction>,
    /// Link facts, in proposal order of their transactions.
    links: Vec<(TxId, Link)>,
}

/// Encodes a snapshot body (no version byte, no checksum).
fn encode_body(p: &Projections, genesis: [u8; 32], head_hash: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    // Encoded field by field in `SnapshotV1`'s order, borrowing instead of
    // cloning the transactions.
    let config = bincode_config();
    let mut out = Vec::new();
    let mut put = |bytes: Result<Vec<u8>, bincode::error::EncodeError>| -> Result<(), StoreError> {
        out.extend_from_slice(&bytes.map_err(|e| StoreError::Corrupt(format!("encode: {e}")))?);
        Ok(())
    };
    put(bincode::encode_to_vec(genesis, config))?;
    put(bincode::encode_to_vec(head_hash, config))?;
    put(bincode::encode_to_vec(p.seq, config))?;
    put(bincode::encode_to_vec(p.last_at_us, config))?;
    put(bincode::encode_to_vec(&p.config, config))?;
    put(bincode::encode_to_vec(u64::try_from(p.slots.len()).expect("usize fits in u64"), config))?;
    for slot in &p.slots {
        put(bincode::encode_to_vec(&slot.account, config))?;
        put(bincode::encode_to_vec(slot.opened_seq, config))?;
        put(bincode::encode_to_vec(slot.opened_at_us, config))?;
        put(bincode::encode_to_vec(&slot.key_hash, config))?;
        put(bincode::encode_to_vec(&slot.peer, config))?;
        let ratchet = slot.ratchet.as_ref().map(|r| (r.md5.as_str(), r.blake3, r.count));
        put(bincode::encode_to_vec(ratchet, config))?;
        put(bincode::encode_to_vec(u64::try_from(slot.timeline.len()).expect("usize fits in u64"), config))?;
        for point in &slot.timeline {
            put(bincode::encode_to_vec(point.seq, config))?;
            put(bincode::encode_to_vec(point.at_us, config))?;
            put(bincode::encode_to_vec(point.balance, config))?;
        }
    }
    put(bincode::encode_to_vec(p.txs.as_slice(), config))?;
    let links: Vec<(TxId, &Link)> =
        p.txs.iter().filter_map(|tx| p.links.get(&tx.uuid).map(|link| (tx.uuid, link))).collect();
    put(bincode::encode_to_vec(links, config))?;
    Ok(out)
}

/// Encodes `p` as a snapshot blob: version byte, crc32c, body.
pub fn encode_snapshot(p: &Projections, genesis: [u8; 32], head_hash: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    let body = encode_body(p, genesis, head_hash)?;
    let mut blob = Vec::with_capacity(body.len() + 5);
    blob.push(SNAPSHOT_FORMAT_VERSION);
    blob.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    blob.extend_from_slice(&body);
    Ok(blob)
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
    let (snapshot, read) = bincode::decode_from_slice::<SnapshotV1, _>(body, bincode_config())
        .map_err(|e| StoreError::Corrupt(format!("decode: {e}")))?;
    if read != body.len() {
        return Err(StoreError::Corrupt(format!("{} trailing bytes", body.len() - read)));
    }
    if snapshot.genesis != genesis {
        return Err(StoreError::Foreign);
    }
    let (seq, hash) = (snapshot.seq, snapshot.head_hash);
    let p = restore(snapshot).map_err(StoreError::Corrupt)?;
    Ok((p, seq, hash))
}

/// Rebuilds the projections from a decoded snapshot, recomputing balances,
/// stats and lists, and checking every invariant.
fn restore(s: SnapshotV1) -> Result<Projections, String> {
    let mut p = Projections { seq: s.seq, last_at_us: s.last_at_us, config: s.config, ..Projections::default() };
    for a in s.accounts {
        if p.index_of(&a.account.id).is_some() {
            return Err(format!("account {} twice", a.account.id));
        }
        if a.account.kind == ledger::AccountKind::Trunkward && p.trunkward_account().is_some() {
            return Err("a second trunkward account".to_owned());
        }
        if a.opened_seq > s.seq || a.opened_seq == 0 || a.opened_at_us > s.last_at_us {
            return Err(format!("account {} opened after the snapshot", a.account.id));
        }
        let mut slot = AccountSlot::new(a.account, a.opened_seq, a.opened_at_us);
        slot.key_hash = a.key_hash;
        slot.peer = a.peer;
        slot.ratchet = a.ratchet.map(|r| Ratchet { md5: r.md5, blake3: r.blake3, count: r.count });
        slot.timeline =
            a.timeline.into_iter().map(|t| TimelinePoint { seq: t.seq, at_us: t.at_us, balance: t.balance }).collect();
        p.open(slot);
    }
    for tx in s.transactions {
        if tx.entries.is_empty() {
            return Err(format!("transaction {} without entries", tx.uuid));
        }
        p.register(tx).map_err(|e| e.to_string())?;
        let tx = p.txs.last().expect("just registered");
        let (entries, state) = (tx.entries.clone(), tx.state);
        p.book(&entries, None, state, None).map_err(|e| e.to_string())?;
    }
    for (uuid, link) in s.links {
        if p.transaction(&uuid).is_none() || p.links.insert(uuid, link).is_some() {
            return Err(format!("link of unknown or twice-linked transaction {uuid}"));
        }
    }
    p.check_invariants()?;
    Ok(p)
}

/// Snapshots in a sled database.
#[derive(Debug)]
pub struct SnapshotStore {
    db: sled::Db,
}

impl SnapshotStore {
    /// Opens (or creates) the sled database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: sled::open(dir)? })
    }

    /// Replaces the stored snapshot with `p`, tagged with the journal's
    /// genesis hash and the hash of record `p.seq()` (the genesis hash when
    /// seq is 0), then flushes. One atomic sled batch.
    pub fn save(&self, p: &Projections, journal_genesis: [u8; 32], head_hash: [u8; 32]) -> Result<(), StoreError> {
        let blob = encode_snapshot(p, journal_genesis, head_hash)?;
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
        let mut blob = Vec::with_capacity(capacity.saturating_add(5).min(1 << 32));
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
pub fn load_or_rebuild(
    journal: &journal::Journal,
    store: &SnapshotStore,
) -> Result<(Projections, LoadReport), LoadError> {
    let head = journal.head();
    let genesis = journal.genesis().0;
    let (mut p, from_snapshot_seq, rebuilt_because) = match store.load(genesis) {
        Ok(Some((p, seq, hash))) => match check_against(journal, seq, hash)? {
            None => (p, Some(seq), None),
            Some(why) => (Projections::new(), None, Some(why)),
        },
        Ok(None) => (Projections::new(), None, Some("no snapshot".to_owned())),
        Err(e) => (Projections::new(), None, Some(e.to_string())),
    };
    let mut folded = 0u64;
    if p.seq() < head.seq {
        for record in journal.iter_from(p.seq() + 1)? {
            let record = record?;
            let event =
                decode_event(&record.payload).map_err(|source| LoadError::Decode { seq: record.seq, source })?;
            p.apply(record.seq, record.recorded_at_us, &event);
            folded += 1;
        }
    }
    Ok((p, LoadReport { from_snapshot_seq, folded, rebuilt_because }))
}

/// `None` if a snapshot at (`seq`, `hash`) is a prefix of `journal`, else why not.
fn check_against(journal: &journal::Journal, seq: u64, hash: [u8; 32]) -> Result<Option<String>, LoadError> {
    let head = journal.head();
    if seq > head.seq {
        return Ok(Some(format!("snapshot at seq {seq} is ahead of the journal head {}", head.seq)));
    }
    let expected = if seq == 0 { journal.genesis().0 } else { journal.read(seq)?.hash.0 };
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
        };
        let transaction = Transaction {
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

    #[test]
    fn well_checksummed_but_inconsistent_snapshots_are_refused() {
        let good = tiny();
        assert_eq!(round_trip(&good).expect("consistent"), good);
        let corrupt = |p: Projections, what: &str| match round_trip(&p) {
            Err(StoreError::Corrupt(why)) => why,
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        };
        let mut p = good.clone();
        p.slots[0].timeline.pop();
        assert!(corrupt(p, "timeline short").contains("timeline ends at"));
        let mut p = good.clone();
        p.slots[0].timeline[0].seq = 99;
        assert!(corrupt(p, "timeline after head").contains("out of bounds"));
        let mut p = good.clone();
        p.txs[0].entries[0].payer = ledger::AccountId::new("ghost").expect("id");
        assert!(corrupt(p, "unknown party").contains("unknown account ghost"));
        let mut p = good.clone();
        let twin = p.txs[0].clone();
        p.txs.push(twin);
        assert!(corrupt(p, "duplicate uuid").contains("twice"));
        let mut p = good.clone();
        p.slots[1].opened_seq = 7;
        assert!(corrupt(p, "opened after").contains("opened after"));
        let mut p = good;
        p.txs[0].entries[0].quant = Amount::from_units(3);
        assert!(corrupt(p, "balance vs timeline").contains("timeline ends at"));
    }

    #[test]
    fn chunk_keys_sort_in_chunk_order() {
        assert!(chunk_key(1) < chunk_key(2) && chunk_key(255) < chunk_key(256));
        assert_eq!(ix(3), 3);
    }
}
