//! Where the node's journal lives: the segment files in its data directory
//! (the default) or a PostgreSQL database (issue 15).
//!
//! `NodeStore` is the one type the writer and start-up hold; it implements
//! `journal::Store` by handing each call to its backend (an enum, not a
//! trait object, so the writer's append stays a direct call). Nothing above
//! it knows which backend it runs on.

use std::path::{Path, PathBuf};

use journal::{BatchAck, Hash, Head, Journal, Record, Store};
use pgjournal::PgJournal;

/// Which store a node's journal is in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// Segment files in the data directory's `journal/`.
    #[default]
    File,
    /// A PostgreSQL database, `postgres://USER@HOST:PORT/DB`.
    Postgres {
        /// The connection URL.
        url: String,
        /// Wait as a standby while another node holds the writer lock,
        /// instead of refusing to start.
        standby: bool,
    },
    /// A simulated disk in memory (the deterministic simulator, `sim/`).
    Memory(journal::MemDisk),
}

impl StoreLocation {
    /// Parses `--store`: `file`, or a `postgres://` (`postgresql://`) URL.
    pub fn parse(text: &str) -> Result<StoreLocation, String> {
        if text == "file" {
            return Ok(StoreLocation::File);
        }
        if pgjournal::is_postgres_url(text) {
            return Ok(StoreLocation::Postgres { url: text.to_owned(), standby: false });
        }
        Err(format!("{text:?} is neither `file` nor a postgres://USER@HOST:PORT/DB URL"))
    }

    /// For logs: `file` or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::File => "file".to_owned(),
            StoreLocation::Postgres { url, .. } => pgjournal::redacted(url),
            StoreLocation::Memory(_) => "memory".to_owned(),
        }
    }
}

/// Why the node's store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The segment files.
    #[error("opening the journal in {dir}: {source}")]
    File {
        /// The journal directory.
        dir: PathBuf,
        /// Why.
        source: Box<journal::OpenError>,
    },
    /// The database.
    #[error("opening the journal in PostgreSQL: {0}")]
    Postgres(Box<pgjournal::OpenError>),
    /// The simulated disk.
    #[error("opening the journal in memory: {0}")]
    Memory(journal::MemError),
}

impl OpenStoreError {
    /// The seq of the damaged record that kept the store from opening, if that is why.
    pub fn corrupt_seq(&self) -> Option<u64> {
        match self {
            OpenStoreError::File { source, .. } => match source.as_ref() {
                journal::OpenError::Corrupt(c) => Some(c.seq),
                _ => None,
            },
            OpenStoreError::Postgres(e) => match e.as_ref() {
                pgjournal::OpenError::Corrupt { seq, .. } | pgjournal::OpenError::BadRow { seq, .. } => Some(*seq),
                _ => None,
            },
            OpenStoreError::Memory(_) => None,
        }
    }
}

/// The node's journal, in whichever store it lives.
#[derive(Debug)]
pub enum NodeStore {
    /// Segment files.
    File(Journal),
    /// A PostgreSQL database.
    Postgres(PgJournal),
    /// A simulated disk.
    Memory(journal::MemJournal),
}

/// A failed append, from either backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreAppendError {
    /// Segment files.
    #[error(transparent)]
    File(#[from] journal::AppendError),
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] pgjournal::AppendError),
    /// The simulated disk.
    #[error(transparent)]
    Memory(#[from] journal::MemError),
}

/// A failed read, from either backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreReadError {
    /// Segment files.
    #[error(transparent)]
    File(#[from] journal::ReadError),
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] pgjournal::ReadError),
    /// The simulated disk.
    #[error(transparent)]
    Memory(journal::MemError),
}

impl StoreReadError {
    /// The seq of the damaged record, if that is what this is.
    pub fn corrupt_seq(&self) -> Option<u64> {
        match self {
            StoreReadError::File(journal::ReadError::Corrupt(c)) => Some(c.seq),
            StoreReadError::File(_) => None,
            StoreReadError::Postgres(e) => e.corrupt_seq(),
            StoreReadError::Memory(_) => None,
        }
    }
}

/// Records from either backend.
#[derive(Debug)]
pub enum StoreRecords<'a> {
    /// Segment files.
    File(journal::RecordIter<'a>),
    /// PostgreSQL.
    Postgres(pgjournal::Records<'a>),
    /// The simulated disk.
    Memory(<journal::MemJournal as Store>::Records<'a>),
}

impl Iterator for StoreRecords<'_> {
    type Item = Result<Record, StoreReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            StoreRecords::File(records) => records.next().map(|r| r.map_err(StoreReadError::from)),
            StoreRecords::Postgres(records) => records.next().map(|r| r.map_err(StoreReadError::from)),
            StoreRecords::Memory(records) => records.next().map(|r| r.map_err(StoreReadError::Memory)),
        }
    }
}

impl Store for NodeStore {
    type AppendError = StoreAppendError;
    type ReadError = StoreReadError;
    type Records<'a> = StoreRecords<'a>;

    fn identity(&self) -> &str {
        match self {
            NodeStore::File(j) => j.identity(),
            NodeStore::Postgres(j) => j.identity(),
            NodeStore::Memory(j) => j.identity(),
        }
    }

    fn genesis(&self) -> Hash {
        match self {
            NodeStore::File(j) => j.genesis(),
            NodeStore::Postgres(j) => j.genesis(),
            NodeStore::Memory(j) => j.genesis(),
        }
    }

    fn head(&self) -> Head {
        match self {
            NodeStore::File(j) => j.head(),
            NodeStore::Postgres(j) => j.head(),
            NodeStore::Memory(j) => j.head(),
        }
    }

    fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        recorded_at_us: u64,
        payloads: &[P],
    ) -> Result<BatchAck, StoreAppendError> {
        match self {
            NodeStore::File(j) => Ok(j.append_batch_at(recorded_at_us, payloads)?),
            NodeStore::Postgres(j) => Ok(j.append_batch_at(recorded_at_us, payloads)?),
            NodeStore::Memory(j) => Ok(j.append_batch_at(recorded_at_us, payloads)?),
        }
    }

    fn range(&self, from: u64, to: u64) -> Result<StoreRecords<'_>, StoreReadError> {
        match self {
            NodeStore::File(j) => Ok(StoreRecords::File(j.range(from, to)?)),
            NodeStore::Postgres(j) => Ok(StoreRecords::Postgres(j.range(from, to)?)),
            NodeStore::Memory(j) => Ok(StoreRecords::Memory(j.range(from, to).map_err(StoreReadError::Memory)?)),
        }
    }

    fn iter_from(&self, from: u64) -> Result<StoreRecords<'_>, StoreReadError> {
        match self {
            NodeStore::File(j) => Ok(StoreRecords::File(j.iter_from(from)?)),
            NodeStore::Postgres(j) => Ok(StoreRecords::Postgres(j.iter_from(from)?)),
            NodeStore::Memory(j) => Ok(StoreRecords::Memory(j.iter_from(from).map_err(StoreReadError::Memory)?)),
        }
    }

    fn checkpoints(&self) -> &[journal::Checkpoint] {
        match self {
            NodeStore::File(j) => j.checkpoints(),
            NodeStore::Postgres(_) | NodeStore::Memory(_) => &[],
        }
    }
}

/// A store the writer can stop writing and take back without a restart
/// (`runtime`'s following): a database another node writes, whose lock a
/// standby takes once it is free, or one that went away and came back.
/// Segment files keep the defaults: always the writer, and a failed append
/// stops the writer until restart.
pub trait Follow: Store {
    /// Whether this process writes the store now (a standby's does not yet).
    fn is_writer(&self) -> bool {
        true
    }

    /// Whether a failed append may be followed by [`Follow::follow`] rather
    /// than stopping the writer until restart.
    fn can_follow(&self) -> bool {
        false
    }

    /// One step while not writing: connects again if need be, tries to
    /// become the writer, and reads at most `max` records after `after` (the
    /// last record the node holds), each checked against the chain from it.
    fn follow(&mut self, _after: Head, _max: usize) -> Result<FollowStep, FollowError> {
        Err(FollowError::Diverged("this store has one writer, which cannot stand by".to_owned()))
    }
}

/// What one [`Follow::follow`] step read.
#[derive(Debug)]
pub struct FollowStep {
    /// Records after the ones the node holds, in order.
    pub records: Vec<Record>,
    /// Whether this process is the writer now (so the store's head is final).
    pub writer: bool,
    /// Whether more records follow `records` (ask again at once).
    pub more: bool,
}

/// Why a [`Follow::follow`] step read nothing.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The store cannot be reached now; the next step tries again.
    #[error("{0}")]
    Unreachable(String),
    /// The store no longer holds what the node folded (fewer records,
    /// another hash), or holds damage: the node must not write to it.
    #[error("{0}")]
    Diverged(String),
}

impl Follow for Journal {}

impl Follow for NodeStore {
    fn is_writer(&self) -> bool {
        match self {
            NodeStore::File(_) | NodeStore::Memory(_) => true,
            NodeStore::Postgres(j) => j.is_writer(),
        }
    }

    fn can_follow(&self) -> bool {
        matches!(self, NodeStore::Postgres(_))
    }

    fn follow(&mut self, after: Head, max: usize) -> Result<FollowStep, FollowError> {
        let NodeStore::Postgres(journal) = self else {
            return Err(FollowError::Diverged("segment files have one writer, which cannot stand by".to_owned()));
        };
        let writer = journal.follow().map_err(|e| match e {
            pgjournal::OpenError::IdentityMismatch { .. }
            | pgjournal::OpenError::Corrupt { .. }
            | pgjournal::OpenError::BadMeta(_)
            | pgjournal::OpenError::BadRow { .. }
            | pgjournal::OpenError::SchemaTooNew { .. } => FollowError::Diverged(e.to_string()),
            other => FollowError::Unreachable(other.to_string()),
        })?;
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        let read = journal.records_after(after, max).and_then(Iterator::collect::<Result<Vec<Record>, _>>);
        let records = match read {
            Ok(records) => records,
            Err(e) => {
                let diverged = e.corrupt_seq().is_some();
                // Whatever the connection's state, the next step starts afresh
                // (and a node that must not write lets the lock go).
                journal.disconnect();
                return Err(if diverged {
                    FollowError::Diverged(e.to_string())
                } else {
                    FollowError::Unreachable(e.to_string())
                });
            }
        };
        let last = records.last().map_or(after.seq, |r| r.seq);
        Ok(FollowStep { more: last < journal.head().seq, writer, records })
    }
}

/// Where the journal's segment files live inside a data directory.
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

/// Opens (or creates) the journal `location` names for the node `name` on
/// `data_dir`, for writing; a standby's is the writer only when no other
/// node holds the lock, and otherwise follows the one that does.
pub fn open(location: &StoreLocation, data_dir: &Path, name: &str) -> Result<NodeStore, OpenStoreError> {
    match location {
        StoreLocation::File => {
            let dir = journal_dir(data_dir);
            Journal::open_or_create(&dir, name, journal::Options::default())
                .map(NodeStore::File)
                .map_err(|source| OpenStoreError::File { dir, source: Box::new(source) })
        }
        StoreLocation::Postgres { url, standby: false } => PgJournal::open_or_create(url, name)
            .map(NodeStore::Postgres)
            .map_err(|e| OpenStoreError::Postgres(Box::new(e))),
        StoreLocation::Postgres { url, standby: true } => PgJournal::open_standby(url, name)
            .map(NodeStore::Postgres)
            .map_err(|e| OpenStoreError::Postgres(Box::new(e))),
        StoreLocation::Memory(disk) => {
            journal::MemJournal::open(disk, name).map(NodeStore::Memory).map_err(OpenStoreError::Memory)
        }
    }
}

/// Opens a store for reading only (offline commands): the segment files of
/// a data directory, or the database.
pub fn open_read_only(location: &StoreLocation, data_dir: &Path) -> Result<NodeStore, OpenStoreError> {
    match location {
        StoreLocation::File => {
            let dir = journal_dir(data_dir);
            Journal::open_read_only(&dir)
                .map(NodeStore::File)
                .map_err(|source| OpenStoreError::File { dir, source: Box::new(source) })
        }
        StoreLocation::Postgres { url, .. } => {
            PgJournal::open_read_only(url).map(NodeStore::Postgres).map_err(|e| OpenStoreError::Postgres(Box::new(e)))
        }
        StoreLocation::Memory(disk) => {
            journal::MemJournal::open_read_only(disk).map(NodeStore::Memory).map_err(OpenStoreError::Memory)
        }
    }
}

/// What `verify_chain` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records that passed every check.
    pub records_verified: u64,
    /// The last sound record (seq 0 and the genesis when none).
    pub last: Head,
    /// The first damage, naming its seq, if any.
    pub problem: Option<(u64, String)>,
}

/// Reads the whole journal and checks every record with
/// `journal::ChainCheck` (dense seqs from 1, links, times, recomputed hashes):
/// what `ccnode journal verify` does on a store that has no segment files.
pub fn verify_chain<S: Store>(store: &S, progress: &mut dyn FnMut(u64)) -> ChainReport {
    let mut check = journal::ChainCheck::from_genesis(store.genesis());
    let mut problem = None;
    match store.iter_from(1) {
        Err(e) => problem = Some((1, e.to_string())),
        Ok(records) => {
            for record in records {
                let seq = check.last().seq + 1;
                match record {
                    Err(e) => {
                        problem = Some((seq, e.to_string()));
                        break;
                    }
                    Ok(record) => {
                        if let Err(kind) = check.check(&record) {
                            problem = Some((seq, format!("journal corruption at seq {seq}: {kind}")));
                            break;
                        }
                        if record.seq.is_multiple_of(100_000) {
                            progress(record.seq);
                        }
                    }
                }
            }
        }
    }
    if problem.is_none() && check.last().seq != store.head().seq {
        let seq = check.last().seq + 1;
        problem =
            Some((seq, format!("the journal's head is seq {} but reading ended at {}", store.head().seq, seq - 1)));
    }
    ChainReport { records_verified: check.last().seq, last: check.last(), problem }
}

/// Why a journal could not be copied between stores.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds records.
    #[error(
        "the target already holds a journal with {records} records; migrate-store copies only into an empty store"
    )]
    TargetNotEmpty {
        /// Its records.
        records: u64,
    },
    /// A source record could not be read or fails the chain's checks.
    #[error("source record {seq}: {detail}")]
    Source {
        /// The record.
        seq: u64,
        /// What went wrong.
        detail: String,
    },
    /// The target refused a batch.
    #[error("writing the target at seq {seq}: {detail}")]
    Target {
        /// The first seq of the batch.
        seq: u64,
        /// What went wrong.
        detail: String,
    },
    /// The target's record differs from the source's (it would be a bug in a store).
    #[error("record {seq} differs between source and target after the copy")]
    Mismatch {
        /// The record.
        seq: u64,
    },
}

/// What `copy` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Records copied and compared.
    pub records: u64,
    /// Batches appended to the target.
    pub batches: u64,
    /// The head, the same in both.
    pub head: Head,
}

/// Most encoded payload bytes in one batch of a copy.
const COPY_BATCH_BYTES: usize = 8 << 20;

/// Copies every record of `source` into the empty `target` (created for
/// the same identity), record for record: each source record is checked by
/// `journal::ChainCheck` (its hash recomputed), records of one time are
/// appended as one batch at that time, so the target computes the same
/// hashes, and after the copy both are read again and compared record by
/// record.
pub fn copy<S: Store, T: Store>(
    source: &S,
    target: &mut T,
    progress: &mut dyn FnMut(u64),
) -> Result<CopyReport, CopyError> {
    if target.head().seq != 0 {
        return Err(CopyError::TargetNotEmpty { records: target.head().seq });
    }
    let source_err = |seq: u64| move |e: S::ReadError| CopyError::Source { seq, detail: e.to_string() };
    let mut check = journal::ChainCheck::from_genesis(source.genesis());
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_at = 0u64;
    let mut batch_bytes = 0usize;
    let mut batches = 0u64;
    let flush = |target: &mut T, batch: &mut Vec<Vec<u8>>, at: u64, expected: Head, batches: &mut u64| {
        if batch.is_empty() {
            return Ok(());
        }
        let first = expected.seq + 1 - u64::try_from(batch.len()).expect("a batch fits u64");
        let ack =
            target.append_batch_at(at, batch).map_err(|e| CopyError::Target { seq: first, detail: e.to_string() })?;
        if ack.head != expected {
            return Err(CopyError::Mismatch { seq: ack.head.seq });
        }
        batch.clear();
        *batches += 1;
        Ok(())
    };
    for record in source.iter_from(1).map_err(source_err(1))? {
        let seq = check.last().seq + 1;
        let record = record.map_err(source_err(seq))?;
        let before = check.last();
        check.check(&record).map_err(|kind| CopyError::Source { seq, detail: kind.to_string() })?;
        let full = batch.len() == journal::MAX_BATCH_RECORDS || batch_bytes + record.payload.len() > COPY_BATCH_BYTES;
        if !batch.is_empty() && (record.recorded_at_us != batch_at || full) {
            flush(target, &mut batch, batch_at, before, &mut batches)?;
            batch_bytes = 0;
        }
        batch_at = record.recorded_at_us;
        batch_bytes += record.payload.len();
        batch.push(record.payload);
        if seq.is_multiple_of(100_000) {
            progress(seq);
        }
    }
    flush(target, &mut batch, batch_at, check.last(), &mut batches)?;
    if check.last() != source.head() {
        return Err(CopyError::Source { seq: check.last().seq + 1, detail: "the source ended before its head".into() });
    }
    // Both read back, compared field by field.
    let head = source.head();
    if head.seq > 0 {
        let theirs = target.iter_from(1).map_err(|e| CopyError::Target { seq: 1, detail: e.to_string() })?;
        for (ours, theirs) in source.iter_from(1).map_err(source_err(1))?.zip(theirs) {
            let ours = ours.map_err(|e| CopyError::Source { seq: 0, detail: e.to_string() })?;
            let theirs = theirs.map_err(|e| CopyError::Target { seq: ours.seq, detail: e.to_string() })?;
            if ours != theirs {
                return Err(CopyError::Mismatch { seq: ours.seq });
            }
        }
    }
    if target.head() != head {
        return Err(CopyError::Mismatch { seq: head.seq });
    }
    Ok(CopyReport { records: head.seq, batches, head })
}
