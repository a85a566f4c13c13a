//! Replay and verification of a ccnode journal.
//!
//! Every fold here is `projections::Projections::try_apply`, which refuses an
//! event that does not fit the ledger (unknown account or transaction, stale
//! state, a booking beyond a limit, …) with a [`Finding`] naming its seq
//! instead of panicking; [`signatures`] checks the journal's own proofs
//! beside it.
//!
//! - [`verify`]: `ccnode verify`: the chain, every event, a rebuild of the
//!   projections compared with the stored snapshot.
//! - [`point`]: `ccnode replay --until`: the state as of a seq or an instant.
//! - [`bundle`]: the audit bundle format, its writer (`ccnode export`) and its
//!   offline auditor (`ccnode audit`).
//! - [`reconcile`]: the pure state machine comparing two sides of a
//!   federation link.
//! - [`synth`]: synthetic journals of payments for tests and benchmarks.

pub mod bundle;
pub mod point;
pub mod reconcile;
pub mod signatures;
pub mod synth;
pub mod verify;

pub use bundle::{audit_file, export_to_file, AuditError, AuditSummary, BundleDamage, ExportSummary};
pub use point::{state_at, PointInTime, ReplayError, Until};
pub use projections::{Finding, FindingKind};
pub use reconcile::{reconcile, LinkVersion, Verdict};
pub use verify::{verify_data_dir, verify_store, VerifyFailure, VerifyOutcome, VerifyRunError};

/// Progress of a long operation, reported every few thousand records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What is being done (`verifying chain`, `folding`, `exporting`, `auditing`).
    pub phase: &'static str,
    /// Units done so far (records or bytes, see `bytes`).
    pub done: u64,
    /// Units in all (0 if unknown).
    pub total: u64,
    /// Whether `done`/`total` count bytes (else records).
    pub bytes: bool,
}

/// Records between two progress reports.
pub const PROGRESS_EVERY_RECORDS: u64 = 65_536;
