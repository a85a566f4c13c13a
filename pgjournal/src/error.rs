//! Error types, one per operation.

use journal::CorruptionKind;

/// Failure to open the journal in a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database could not be reached.
    #[error("connecting to {url}: {}", describe(source))]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        source: postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL: {}", describe(.0))]
    Db(#[from] postgres::Error),
    /// The connection's thread could not be started or stopped at once.
    #[error("the PostgreSQL connection's thread: {0}")]
    Thread(String),
    /// The database holds no ccnode journal.
    #[error("no ccnode journal in {url}")]
    NotFound {
        /// The URL, without its password.
        url: String,
    },
    /// A newer ccnode migrated this database.
    #[error("the database holds journal schema version {found}; this ccnode knows versions up to {known}")]
    SchemaTooNew {
        /// The database's version.
        found: i32,
        /// This build's.
        known: i32,
    },
    /// An older ccnode's schema, which only a writer migrates.
    #[error("the database holds journal schema version {found}; start the node once to migrate it to {known}")]
    SchemaTooOld {
        /// The database's version.
        found: i32,
        /// This build's.
        known: i32,
    },
    /// The identity given does not match the journal's.
    #[error("journal belongs to {found:?}, not {expected:?}")]
    IdentityMismatch {
        /// The identity the caller expected.
        expected: String,
        /// The identity stored in the database.
        found: String,
    },
    /// The identity string is empty or too long.
    #[error("journal identity must be 1 to {max} bytes, got {len}")]
    BadIdentity {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The journal's identity row is damaged.
    #[error("the journal's identity row is damaged: {0}")]
    BadMeta(String),
    /// Another ccnode holds the writer lock.
    #[error("another ccnode writes the journal in {url} (lease holder: {holder})")]
    Locked {
        /// The URL, without its password.
        url: String,
        /// Who holds the lease, as it recorded itself.
        holder: String,
    },
    /// A row cannot be a record.
    #[error("journal row {seq} is not a record: {what}")]
    BadRow {
        /// Its seq.
        seq: u64,
        /// What is wrong.
        what: String,
    },
    /// The last record fails its hash: writing is refused.
    #[error("journal corruption at seq {seq} (PostgreSQL): {kind}; refusing to open for writing (run `ccnode journal verify`)")]
    Corrupt {
        /// The record.
        seq: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
}

/// Failure to append a batch. Nothing of the batch is acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The batch breaks a limit of the journal (empty, too many records, too large).
    #[error(transparent)]
    Batch(journal::AppendError),
    /// The journal was opened read-only.
    #[error("journal is open read-only")]
    ReadOnly,
    /// An earlier write failed; the database's state is unknown until the journal is reopened.
    #[error("an earlier write failed; reopen the journal to recover")]
    Poisoned,
    /// Another writer took the lease: this one must not write again.
    #[error("this writer's lease (generation {generation}) was taken over by {holder}; it stops writing")]
    Fenced {
        /// The generation this writer held.
        generation: i64,
        /// Who holds the lease now.
        holder: String,
    },
    /// Records with these seqs already exist: another writer appended.
    #[error("seq {first_seq} was already written by another writer")]
    Conflict {
        /// The batch's first seq.
        first_seq: u64,
    },
    /// PostgreSQL inserted another number of rows than the batch holds.
    #[error("the database wrote {written} rows of a batch of {expected}")]
    Partial {
        /// Records in the batch.
        expected: usize,
        /// Rows written.
        written: u64,
    },
    /// A seq or time beyond PostgreSQL's bigint.
    #[error("{value} does not fit a PostgreSQL bigint")]
    OutOfRange {
        /// The value.
        value: u64,
    },
    /// The statement failed (the connection, the server, a constraint). The journal is now poisoned.
    #[error("PostgreSQL: {}", describe(.0))]
    Db(#[from] postgres::Error),
}

/// Failure to read records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The seq is 0 or beyond the head.
    #[error("seq {seq} is not in the journal (head is {head})")]
    OutOfRange {
        /// The seq asked for.
        seq: u64,
        /// The current head seq.
        head: u64,
    },
    /// A query failed.
    #[error("PostgreSQL: {}", describe(.0))]
    Db(#[from] postgres::Error),
    /// A row cannot be a record.
    #[error("journal row {seq} is not a record: {what}")]
    Row {
        /// Its seq.
        seq: u64,
        /// What is wrong.
        what: String,
    },
    /// A follower lost its connection and has not made a new one yet.
    #[error("not connected to the database")]
    Disconnected,
    /// A record fails the chain's checks.
    #[error("journal corruption at seq {seq} (PostgreSQL table ccnode_journal): {kind}")]
    Corrupt {
        /// The record concerned.
        seq: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
}

impl ReadError {
    /// The seq of the damaged record, if that is what this is.
    pub fn corrupt_seq(&self) -> Option<u64> {
        match self {
            ReadError::Corrupt { seq, .. } | ReadError::Row { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// A PostgreSQL error in one line: the server's message and SQLSTATE when it
/// sent one, else the client's error and its cause.
pub fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}
