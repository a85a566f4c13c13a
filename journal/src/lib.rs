//! ccnode's journal: an append-only, hash-chained, fdatasync'd log of opaque payloads.
//!
//! The journal is the source of truth of a ccnode ledger. It knows nothing of
//! accounts, HTTP or peers: it stores byte payloads as records, each chained
//! to its predecessor by a blake3 hash, in append-only segment files.
//!
//! Guarantees:
//! - `Journal::append_batch` returns only after one `fdatasync` has made the
//!   whole batch durable; a batch is all-or-nothing across crashes.
//! - On open, an unfinished last batch (torn write) is truncated and logged;
//!   a complete record that fails its checksum or chain is corruption, and
//!   the journal refuses to open for writing.
//! - `verify_dir` recomputes the whole chain (or a range from a checkpoint)
//!   and names the first bad seq.
//!
//! The on-disk format is described in the `format` module and pinned by
//! golden fixtures.

mod error;
mod format;
mod journal;
mod memory;
mod private;
mod scan;
mod store;
mod verify;

pub use error::{AppendError, Corruption, CorruptionKind, OpenError, ReadError};
pub use format::{
    frame_bytes, genesis_hash, record_hash, Checkpoint, FrameDefect, Hash, HeaderDefect, Meta, Record,
    BODY_FIXED_BYTES, CHECKPOINT_ENTRY_BYTES, FORMAT_VERSION, FRAME_HEADER_BYTES, GENESIS_CONTEXT,
    SEGMENT_HEADER_BYTES,
};
pub use journal::{check_batch, now_us, BatchAck, Head, Journal, Options, RecordIter, LOCK_WAIT};
pub use memory::{MemDisk, MemError, MemJournal};
pub use private::{create_private_dir_all, exposed_paths, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
pub use store::{ChainCheck, Store};
pub use verify::{verify_dir, VerifyError, VerifyOptions, VerifyProgress, VerifyReport};

/// Largest payload of one record, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 65_536;
/// Most encoded bytes in one batch.
pub const MAX_BATCH_BYTES: usize = 64 << 20;
/// Default size at which a segment is sealed, in bytes.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// Smallest configurable segment size, in bytes (tests use it to rotate often).
pub const SEGMENT_BYTES_MIN: u64 = 4 << 10;
/// Largest configurable segment size, in bytes.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;
/// Default distance between checkpoints, in records.
pub const CHECKPOINT_INTERVAL_RECORDS: u64 = 16_384;
/// Longest node identity, in bytes.
pub const IDENTITY_BYTES_MAX: usize = 255;

// Frame offsets are u32: a segment never grows past 4 GiB, even when one
// maximal batch lands on a segment just under its size limit.
const _: () = assert!(SEGMENT_BYTES_MAX + MAX_BATCH_BYTES as u64 <= u32::MAX as u64);
const _: () = assert!(MAX_PAYLOAD_BYTES + BODY_FIXED_BYTES <= MAX_BATCH_BYTES);
const _: () = assert!(SEGMENT_BYTES_MIN < SEGMENT_BYTES_DEFAULT && SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(IDENTITY_BYTES_MAX <= u32::MAX as usize);
