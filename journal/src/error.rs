//! Error types, one per operation.

use std::{fmt, io, path::PathBuf};

use crate::format::{FrameDefect, Hash, HeaderDefect};

/// Where and what: a complete record (or segment) that fails its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment file holding the bad bytes.
    pub segment: PathBuf,
    /// Byte offset of the bad frame (or header) in that file.
    pub offset: u64,
    /// The seq the bad record has, or would have in a dense chain.
    pub seq: u64,
    /// What is wrong.
    pub kind: CorruptionKind,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal corruption at seq {} ({}, offset {}): {}",
            self.seq,
            self.segment.display(),
            self.offset,
            self.kind
        )
    }
}

/// The kinds of damage the journal can detect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The frame's bytes fail the framing checks.
    Frame(FrameDefect),
    /// The segment header is unreadable.
    SegmentHeader(HeaderDefect),
    /// A record carries another seq than the dense chain expects.
    SeqGap {
        /// The seq found in the record.
        found: u64,
    },
    /// The record's `prev_hash` is not the previous record's hash.
    ChainLink {
        /// The previous record's hash.
        expected: Hash,
        /// The `prev_hash` stored in this record.
        found: Hash,
    },
    /// The record's hash is not `blake3(prev_hash ‖ seq ‖ recorded_at ‖ payload)`.
    Hash,
    /// The record's time is earlier than its predecessor's.
    TimeWentBack,
    /// A trusted checkpoint names another hash for this seq.
    Checkpoint {
        /// The checkpoint's hash.
        expected: Hash,
    },
    /// A checkpoint names a seq beyond the end of the journal: acknowledged records are missing.
    MissingRecords {
        /// The last seq present.
        head: u64,
    },
    /// A segment other than the last ends with records of an unfinished batch or a torn frame.
    UnfinishedSealedSegment,
    /// A segment file's name does not match its header, or segments do not follow each other.
    SegmentOrder,
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::Frame(defect) => write!(f, "{defect}"),
            CorruptionKind::SegmentHeader(defect) => write!(f, "{defect}"),
            CorruptionKind::SeqGap { found } => write!(f, "record carries seq {found}"),
            CorruptionKind::ChainLink { expected, found } => {
                write!(f, "prev_hash {found} does not match the previous record's hash {expected}")
            }
            CorruptionKind::Hash => f.write_str("record hash does not match its contents"),
            CorruptionKind::TimeWentBack => f.write_str("recorded_at is earlier than the previous record's"),
            CorruptionKind::Checkpoint { expected } => {
                write!(f, "record hash differs from checkpoint hash {expected}")
            }
            CorruptionKind::MissingRecords { head } => {
                write!(f, "a checkpoint names this seq but the journal ends at seq {head}")
            }
            CorruptionKind::UnfinishedSealedSegment => {
                f.write_str("a sealed segment ends inside a batch or with a torn frame")
            }
            CorruptionKind::SegmentOrder => {
                f.write_str("segment files are out of order or their names do not match their headers")
            }
        }
    }
}

/// Failure to create or open a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An I/O operation failed.
    #[error("journal i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The directory holds no journal.
    #[error("no journal in {0} (create one first)")]
    NotFound(PathBuf),
    /// The directory already holds a journal.
    #[error("a journal already exists in {0}")]
    AlreadyExists(PathBuf),
    /// The meta file is damaged or of another format.
    #[error("{path} is not a readable ccnode journal: {reason}")]
    BadMeta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity given does not match the journal's.
    #[error("journal belongs to {found:?}, not {expected:?}")]
    IdentityMismatch {
        /// The identity the caller expected.
        expected: String,
        /// The identity stored in the journal.
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
    /// Another process has the journal open for writing.
    #[error("journal {0} is locked by another process")]
    Locked(PathBuf),
    /// A complete record fails its checks: writing is refused until an operator intervenes.
    #[error("{0}; refusing to open for writing (run `ccnode journal verify`)")]
    Corrupt(Corruption),
}

/// Failure to append a batch. Nothing of the batch is acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The batch holds no payload.
    #[error("empty batch")]
    EmptyBatch,
    /// More records than `MAX_BATCH_RECORDS`.
    #[error("batch of {records} records exceeds the limit of {max}")]
    TooManyRecords {
        /// Records in the batch.
        records: usize,
        /// The limit.
        max: usize,
    },
    /// A payload larger than `MAX_PAYLOAD_BYTES`.
    #[error("payload {index} of the batch is {bytes} bytes, over the limit of {max}")]
    PayloadTooLarge {
        /// Its position in the batch.
        index: usize,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The batch encodes to more than `MAX_BATCH_BYTES`.
    #[error("batch encodes to {bytes} bytes, over the limit of {max}")]
    BatchTooLarge {
        /// Encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The journal was opened read-only.
    #[error("journal is open read-only")]
    ReadOnly,
    /// An earlier write failed; the on-disk state is unknown until the journal is reopened.
    #[error("an earlier write failed; reopen the journal to recover")]
    Poisoned,
    /// The write or the fdatasync failed. The journal is now poisoned.
    #[error("journal write failed on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
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
    /// A read failed.
    #[error("journal read failed on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The stored bytes fail their checks.
    #[error("{0}")]
    Corrupt(Corruption),
}
