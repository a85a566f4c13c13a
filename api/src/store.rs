//! Where the node's journal lives: the segment files in its data directory
//! (the default) or a PostgreSQL database (issue 15).
//!
//! `NodeStore` is the one type the writer and start-up hold; it implements
//! `journal::Store` by handing each call to its backend (an enum, not a
//! trait object, so the writer's append stays a direct call). Nothing above
//! it knows which backend it runs on.

use std::path::{Path, PathBuf};

use journal::{BatchAck, Hash, Head, Journal, Record, Store};
use ledger::decode_event;
use pgjournal::PgJournal;
use projections::{LoadReport, Projections, SnapshotStore};

use crate::node::{journal_dir, StartError, StartOptions};

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
        source: journal::OpenError,
    },
    /// The database.
    #[error("opening the journal in PostgreSQL: {0}")]
    Postgres(pgjournal::OpenError),
}

/// The node's journal, in whichever store it lives.
#[derive(Debug)]
pub enum NodeStore {
    /// Segment files.
    File(Journal),
    /// A PostgreSQL database.
    Postgres(PgJournal),
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
}

/// Records from either backend.
#[derive(Debug)]
pub enum StoreRecords<'a> {
    /// Segment files.
    File(journal::RecordIter<'a>),
    /// PostgreSQL.
    Postgres(pgjournal::Records<'a>),
}

impl Iterator for StoreRecords<'_> {
    type Item = Result<Record, StoreReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            StoreRecords::File(records) => records.next().map(|r| r.map_err(StoreReadError::from)),
            StoreRecords::Postgres(records) => records.next().map(|r| r.map_err(StoreReadError::from)),
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
        }
    }

    fn genesis(&self) -> Hash {
        match self {
            NodeStore::File(j) => j.genesis(),
            NodeStore::Postgres(j) => j.genesis(),
        }
    }

    fn head(&self) -> Head {
        match self {
            NodeStore::File(j) => j.head(),
            NodeStore::Postgres(j) => j.head(),
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
        }
    }

    fn range(&self, from: u64, to: u64) -> Result<StoreRecords<'_>, StoreReadError> {
        match self {
            NodeStore::File(j) => Ok(StoreRecords::File(j.range(from, to)?)),
            NodeStore::Postgres(j) => Ok(StoreRecords::Postgres(j.range(from, to)?)),
        }
    }

    fn iter_from(&self, from: u64) -> Result<StoreRecords<'_>, StoreReadError> {
        match self {
            NodeStore::File(j) => Ok(StoreRecords::File(j.iter_from(from)?)),
            NodeStore::Postgres(j) => Ok(StoreRecords::Postgres(j.iter_from(from)?)),
        }
    }
}

/// Opens (or creates) the journal `options.store` names, for writing: the
/// segment files in the data directory, or the database (waiting for the
/// writer lock when `standby`).
pub fn open(options: &StartOptions) -> Result<NodeStore, StartError> {
    open_at(&options.store, &options.data_dir, &options.name).map_err(|e| StartError::Store(Box::new(e)))
}

/// As `open`, for a store, data directory and node name given apart.
pub fn open_at(location: &StoreLocation, data_dir: &Path, name: &str) -> Result<NodeStore, OpenStoreError> {
    match location {
        StoreLocation::File => {
            let dir = journal_dir(data_dir);
            Journal::open_or_create(&dir, name, journal::Options::default())
                .map(NodeStore::File)
                .map_err(|source| OpenStoreError::File { dir, source })
        }
        StoreLocation::Postgres { url, standby: false } => {
            PgJournal::open_or_create(url, name).map(NodeStore::Postgres).map_err(OpenStoreError::Postgres)
        }
        StoreLocation::Postgres { url, standby: true } => {
            let mut waiting = || {
                tracing::info!(store = %pgjournal::redacted(url), "another node writes this journal: standing by for its lock");
            };
            PgJournal::open_or_create_waiting(url, name, STANDBY_POLL, &mut waiting)
                .map(NodeStore::Postgres)
                .map_err(OpenStoreError::Postgres)
        }
    }
}

/// How often a standby asks for the writer lock.
pub const STANDBY_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Loads the projections snapshot and folds the rest of the journal, as
/// `projections::load_or_rebuild` does for segment files (which it is, for
/// them): the snapshot is used only when the journal's record at its seq
/// has its hash, and the fold stops at the first record it cannot fold.
pub fn load_or_rebuild(store: &NodeStore, snapshots: &SnapshotStore) -> Result<(Projections, LoadReport), String> {
    match store {
        NodeStore::File(journal) => projections::load_or_rebuild(journal, snapshots).map_err(|e| e.to_string()),
        NodeStore::Postgres(journal) => load_or_rebuild_any(journal, snapshots),
    }
}

fn load_or_rebuild_any<S: Store>(store: &S, snapshots: &SnapshotStore) -> Result<(Projections, LoadReport), String> {
    let head = store.head();
    let genesis = store.genesis().0;
    let fresh = |why: String| (Projections::new(), None, Some(why));
    let (mut p, from_snapshot_seq, rebuilt_because) = match snapshots.load(genesis) {
        Ok(Some((_, seq, _))) if seq > head.seq => {
            fresh(format!("snapshot at seq {seq} is ahead of the journal head {}", head.seq))
        }
        Ok(Some((p, seq, hash))) => {
            let expected = if seq == 0 { genesis } else { store.read(seq).map_err(|e| e.to_string())?.hash.0 };
            if expected == hash {
                (p, Some(seq), None)
            } else {
                fresh(format!("snapshot hash differs from the journal's at seq {seq}"))
            }
        }
        Ok(None) => fresh("no snapshot".to_owned()),
        Err(e) => fresh(e.to_string()),
    };
    let start = p.seq();
    let mut unfoldable = None;
    for record in store.iter_from(start + 1).map_err(|e| e.to_string())? {
        let record = record.map_err(|e| e.to_string())?;
        let event =
            decode_event(&record.payload).map_err(|e| format!("journal record {} is not an event: {e}", record.seq))?;
        if let Err(u) = p.try_apply(record.seq, record.recorded_at_us, &event) {
            unfoldable = Some(u);
            break;
        }
    }
    p.index_transactions();
    let folded = p.seq() - start;
    Ok((p, LoadReport { from_snapshot_seq, folded, rebuilt_because, unfoldable }))
}
