//! The state of a ledger as of a past seq or instant (`ccnode replay --until`).

use journal::{Hash, Store};
use ledger::{decode_event, DecodeError, State};
use projections::{Finding, Projections};

use crate::{Progress, PROGRESS_EVERY_RECORDS};

/// Where a replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After the record with this seq (0: before any record).
    Seq(u64),
    /// After the last record with `recorded_at_us ≤` this (unix µs).
    Time(u64),
    /// The journal head.
    Head,
}

/// Why a replay could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A seq past the head.
    #[error("seq {seq} is beyond the journal head {head}")]
    BeyondHead {
        /// Asked for.
        seq: u64,
        /// Head.
        head: u64,
    },
    /// The journal could not be read (from whichever store keeps it).
    #[error("reading the journal: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
    /// A record is not an event.
    #[error("seq {seq}: undecodable event: {source}")]
    Decode {
        /// Which record.
        seq: u64,
        /// Why.
        source: DecodeError,
    },
    /// An event breaks the ledger's rules (refused by `Projections::try_apply`).
    #[error("{0}")]
    Inconsistent(#[from] Finding),
}

/// The ledger as of one journal record.
#[derive(Debug, Clone)]
pub struct PointInTime {
    /// Last record folded (0: none).
    pub seq: u64,
    /// Its time, unix µs (0: none).
    pub recorded_at_us: u64,
    /// Its hash (the genesis hash at seq 0).
    pub hash: Hash,
    /// The read models as of that record.
    pub projections: Projections,
}

/// Folds `journal` up to `until`, checking every event. Record hashes are not
/// recomputed here (that is `verify`'s job); links and checksums are.
pub fn state_at<S: Store>(
    journal: &S,
    until: Until,
    progress: &mut dyn FnMut(Progress),
) -> Result<PointInTime, ReplayError> {
    let head = journal.head();
    let last = match until {
        Until::Seq(seq) if seq > head.seq => return Err(ReplayError::BeyondHead { seq, head: head.seq }),
        Until::Seq(seq) => seq,
        Until::Time(_) | Until::Head => head.seq,
    };
    let mut point = PointInTime { seq: 0, recorded_at_us: 0, hash: journal.genesis(), projections: Projections::new() };
    if last == 0 {
        return Ok(point);
    }
    for record in journal.range(1, last).map_err(|e| ReplayError::Read(Box::new(e)))? {
        let record = record.map_err(|e| ReplayError::Read(Box::new(e)))?;
        if let Until::Time(at) = until {
            if record.recorded_at_us > at {
                break;
            }
        }
        let event = decode_event(&record.payload).map_err(|source| ReplayError::Decode { seq: record.seq, source })?;
        point.projections.try_apply(record.seq, record.recorded_at_us, &event)?;
        point.seq = record.seq;
        point.recorded_at_us = record.recorded_at_us;
        point.hash = record.hash;
        if record.seq.is_multiple_of(PROGRESS_EVERY_RECORDS) {
            progress(Progress { phase: "replaying", done: record.seq, total: last, bytes: false });
        }
    }
    progress(Progress { phase: "replaying", done: point.seq, total: last, bytes: false });
    Ok(point)
}

/// Pending and validated transactions, oldest first (by written time, then uuid).
pub fn open_transactions(p: &Projections) -> Vec<&ledger::Transaction> {
    let query = projections::Query { states: vec![State::Pending, State::Validated], ..Default::default() };
    p.transactions(&query).items
}
