//! `ccnode verify`: is a data directory consistent?
//!
//! 1. The journal chain (framing, checksums, every blake3 hash, checkpoints)
//!    with `journal::verify_dir`.
//! 2. Every record decodes to an event that the projections fold
//!    (`Projections::try_apply` checks each against the state: zero sum,
//!    limits, known accounts and transactions, …) and whose checkpoint
//!    signatures and roots hold ([`crate::signatures`]).
//! 3. The projections rebuilt in memory equal the stored snapshot file, if
//!    there is one, at the snapshot's seq: accounts, limits, balances,
//!    timelines, stats, transaction states and versions.

use std::path::{Path, PathBuf};

use journal::{verify_dir, ChainCheck, Journal, Store, VerifyOptions};
use ledger::decode_event;
use projections::{Finding, Projections, Query, SnapshotStore, StoreError};

use crate::{Progress, PROGRESS_EVERY_RECORDS};

/// What `verify` found wrong: the data directory is damaged or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// The chain is broken.
    #[error("journal damaged at seq {seq}: {detail}")]
    Chain {
        /// First bad seq.
        seq: u64,
        /// What the journal reported.
        detail: String,
    },
    /// A record is not an event this build reads.
    #[error("seq {seq}: undecodable event: {detail}")]
    Decode {
        /// Which record.
        seq: u64,
        /// Why.
        detail: String,
    },
    /// An event breaks the ledger's rules.
    #[error("ledger inconsistent at {0}")]
    Ledger(Finding),
    /// The stored snapshot disagrees with the journal.
    #[error("projections snapshot at seq {seq} differs from the journal: {detail}")]
    Snapshot {
        /// The snapshot's seq.
        seq: u64,
        /// The first difference.
        detail: String,
    },
}

/// Why `verify` could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyRunError {
    /// No journal, unreadable directory, bad header.
    #[error("cannot read the journal in {dir}: {detail}")]
    Journal {
        /// Where.
        dir: PathBuf,
        /// Why.
        detail: String,
    },
}

/// A finished verification.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    /// Node identity.
    pub identity: String,
    /// Records whose hash was recomputed.
    pub records: u64,
    /// Head seq.
    pub head_seq: u64,
    /// Head hash, hex.
    pub head_hash: String,
    /// Accounts at the head.
    pub accounts: usize,
    /// Transactions at the head.
    pub transactions: usize,
    /// What happened with the snapshot (compared at seq N, absent, skipped because …).
    pub snapshot: String,
    /// Notes that are not failures (an unacknowledged torn tail, …).
    pub notes: Vec<String>,
    /// The first failure, if any.
    pub failure: Option<VerifyFailure>,
}

/// Verifies the data directory `data` (journal in `data/journal`, snapshot in
/// `data/projections`).
pub fn verify_data_dir(data: &Path, progress: &mut dyn FnMut(Progress)) -> Result<VerifyOutcome, VerifyRunError> {
    let journal_dir = data.join("journal");
    let run_error = |detail: String| VerifyRunError::Journal { dir: journal_dir.clone(), detail };
    let report = verify_dir(&journal_dir, VerifyOptions::default(), &mut |p| {
        progress(Progress { phase: "verifying chain", done: p.bytes_read, total: p.bytes_total, bytes: true })
    })
    .map_err(|e| run_error(e.to_string()))?;
    let mut outcome = VerifyOutcome {
        identity: report.identity.clone(),
        records: report.records_verified,
        head_seq: report.last_seq,
        head_hash: report.last_hash.to_hex(),
        accounts: 0,
        transactions: 0,
        snapshot: "not compared".to_owned(),
        notes: Vec::new(),
        failure: None,
    };
    if report.unfinished_records > 0 || report.torn_bytes > 0 {
        outcome.notes.push(format!(
            "an unfinished last batch ({} records, {} torn bytes) was never acknowledged",
            report.unfinished_records, report.torn_bytes
        ));
    }
    if let Some(problem) = &report.problem {
        outcome.failure = Some(VerifyFailure::Chain { seq: problem.seq, detail: problem.to_string() });
        return Ok(outcome);
    }
    let journal = Journal::open_read_only(&journal_dir).map_err(|e| run_error(e.to_string()))?;
    // The chain was verified up to `report.last_seq`; a writer may have
    // appended since, so fold exactly the verified records.
    let last = report.last_seq.min(journal.head().seq);
    fold_and_compare(&journal, data, last, outcome, None, progress).map_err(run_error)
}

/// Verifies a journal in any store (a PostgreSQL database, say) with the
/// derived data of node directory `data`: every record read is checked
/// against the chain (seq, link, time, recomputed hash) as it is folded,
/// then the same event, ledger and snapshot checks as `verify_data_dir`.
/// Damage is a `VerifyFailure::Chain` naming the seq.
pub fn verify_store<S: Store>(
    store: &S,
    data: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyOutcome, VerifyRunError> {
    let head = store.head();
    let outcome = VerifyOutcome {
        identity: store.identity().to_owned(),
        records: 0,
        head_seq: head.seq,
        head_hash: head.hash.to_hex(),
        accounts: 0,
        transactions: 0,
        snapshot: "not compared".to_owned(),
        notes: Vec::new(),
        failure: None,
    };
    let check = ChainCheck::from_genesis(store.genesis());
    fold_and_compare(store, data, head.seq, outcome, Some(check), progress)
        .map_err(|detail| VerifyRunError::Journal { dir: data.to_owned(), detail })
}

/// Steps 2 and 3 over records `1..=last`; with `chain`, each record is also
/// checked against the chain (and counted in `records`), a read error being
/// damage at that seq rather than a failure to run.
fn fold_and_compare<S: Store>(
    journal: &S,
    data: &Path,
    last: u64,
    mut outcome: VerifyOutcome,
    mut chain: Option<ChainCheck>,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyOutcome, String> {
    let snapshot = load_snapshot(data, journal, last);
    let (stored, snapshot_seq) = match snapshot {
        Snapshot::Loaded { projections, seq } => (Some(projections), Some(seq)),
        Snapshot::Skipped(why) => {
            outcome.snapshot = why;
            (None, None)
        }
        Snapshot::Failed(failure) => {
            outcome.failure = Some(failure);
            (None, None)
        }
    };

    let mut signatures = crate::signatures::Signatures::new();
    let mut rebuilt = Projections::new();
    let compare = |rebuilt: &Projections, outcome: &mut VerifyOutcome| {
        if let (Some(stored), Some(seq)) = (&stored, snapshot_seq) {
            if rebuilt.seq() == seq && outcome.failure.is_none() {
                match first_difference(rebuilt, stored) {
                    None => outcome.snapshot = format!("matches the journal at seq {seq}"),
                    Some(detail) => outcome.failure = Some(VerifyFailure::Snapshot { seq, detail }),
                }
            }
        }
    };
    compare(&rebuilt, &mut outcome);
    if last > 0 {
        let records = journal.range(1, last).map_err(|e| e.to_string())?;
        for record in records {
            let record = match (record, &mut chain) {
                (Ok(record), None) => record,
                (Err(e), None) => return Err(e.to_string()),
                (Err(e), Some(check)) => {
                    let seq = check.last().seq + 1;
                    outcome.failure = Some(VerifyFailure::Chain { seq, detail: e.to_string() });
                    return Ok(outcome);
                }
                (Ok(record), Some(check)) => {
                    let seq = check.last().seq + 1;
                    if let Err(kind) = check.check(&record) {
                        let detail = format!("journal corruption at seq {seq}: {kind}");
                        outcome.failure = Some(VerifyFailure::Chain { seq, detail });
                        return Ok(outcome);
                    }
                    outcome.records = seq;
                    record
                }
            };
            let seq = record.seq;
            let event = match decode_event(&record.payload) {
                Ok(event) => event,
                Err(e) => {
                    outcome.failure = Some(VerifyFailure::Decode { seq, detail: e.to_string() });
                    return Ok(outcome);
                }
            };
            if let Err(finding) = rebuilt.try_apply(seq, record.recorded_at_us, &event) {
                outcome.failure = Some(VerifyFailure::Ledger(finding));
                return Ok(outcome);
            }
            if let Err(kind) = signatures.apply(seq, &record.hash.0, &event) {
                outcome.failure = Some(VerifyFailure::Ledger(Finding { seq, kind }));
                return Ok(outcome);
            }
            compare(&rebuilt, &mut outcome);
            if seq.is_multiple_of(PROGRESS_EVERY_RECORDS) {
                progress(Progress { phase: "folding", done: seq, total: last, bytes: false });
            }
        }
    }
    progress(Progress { phase: "folding", done: last, total: last, bytes: false });
    outcome.accounts = rebuilt.account_count();
    outcome.transactions = rebuilt.transaction_count();
    Ok(outcome)
}

enum Snapshot {
    Loaded { projections: Box<Projections>, seq: u64 },
    Skipped(String),
    Failed(VerifyFailure),
}

fn load_snapshot<S: Store>(data: &Path, journal: &S, last: u64) -> Snapshot {
    let dir = data.join("projections");
    if !dir.is_dir() {
        return Snapshot::Skipped("no snapshot directory".to_owned());
    }
    let store = match SnapshotStore::open(&dir) {
        Ok(store) => store,
        Err(e) => {
            return Snapshot::Skipped(format!(
                "not compared: the snapshot store cannot be opened (is the node running?): {e}"
            ))
        }
    };
    let (projections, seq, hash) = match store.load(journal.genesis().0) {
        Ok(Some(found)) => found,
        Ok(None) => return Snapshot::Skipped("no snapshot stored".to_owned()),
        Err(StoreError::Io(e)) => return Snapshot::Skipped(format!("not compared: reading the snapshot: {e}")),
        Err(e) => return Snapshot::Failed(VerifyFailure::Snapshot { seq: 0, detail: format!("unreadable: {e}") }),
    };
    if seq > last {
        let detail = format!("the snapshot is ahead of the journal head {last}: acknowledged records are missing");
        return Snapshot::Failed(VerifyFailure::Snapshot { seq, detail });
    }
    let expected = if seq == 0 { Ok(journal.genesis()) } else { journal.read(seq).map(|r| r.hash) };
    match expected {
        Ok(h) if h.0 == hash => Snapshot::Loaded { projections: Box::new(projections), seq },
        Ok(h) => Snapshot::Failed(VerifyFailure::Snapshot {
            seq,
            detail: format!("it was taken at hash {}, the journal has {} there", ledger::ratchet::hex(&hash), h),
        }),
        Err(e) => Snapshot::Failed(VerifyFailure::Snapshot { seq, detail: format!("reading the journal: {e}") }),
    }
}

/// The first difference between projections rebuilt from the journal and
/// stored ones, or `None` if they agree.
pub fn first_difference(rebuilt: &Projections, stored: &Projections) -> Option<String> {
    if rebuilt.config() != stored.config() {
        return Some("node configuration differs".to_owned());
    }
    let mut ours = rebuilt.accounts();
    let mut theirs = stored.accounts();
    loop {
        let (a, b) = match (ours.next(), theirs.next()) {
            (None, None) => break,
            (Some(a), None) => return Some(format!("account {}: missing from the snapshot", a.id)),
            (None, Some(b)) => return Some(format!("account {}: in the snapshot only", b.id)),
            (Some(a), Some(b)) => (a, b),
        };
        if a.id != b.id {
            let first = a.id.clone().min(b.id.clone());
            let side = if first == a.id { "missing from the snapshot" } else { "in the snapshot only" };
            return Some(format!("account {first}: {side}"));
        }
        let id = &a.id;
        if a.limits != b.limits {
            let (l, s) = (a.limits, b.limits);
            return Some(format!(
                "account {id}: limits [{}, {}] in the journal, [{}, {}] in the snapshot",
                l.min(),
                l.max(),
                s.min(),
                s.max()
            ));
        }
        if a != b {
            return Some(format!("account {id}: configuration differs (kind or status)"));
        }
        let (x, y) = (rebuilt.balances(id).unwrap_or_default(), stored.balances(id).unwrap_or_default());
        if x.completed != y.completed {
            return Some(format!(
                "account {id}: completed balance {} in the journal, {} in the snapshot",
                x.completed, y.completed
            ));
        }
        if x.pending != y.pending {
            return Some(format!(
                "account {id}: pending balance {} in the journal, {} in the snapshot",
                x.pending, y.pending
            ));
        }
        if rebuilt.timeline(id) != stored.timeline(id) {
            return Some(format!("account {id}: balance timeline differs"));
        }
        if rebuilt.stats(id) != stored.stats(id) {
            return Some(format!("account {id}: trade stats differ"));
        }
        if rebuilt.key_hash(id) != stored.key_hash(id) || rebuilt.peer(id) != stored.peer(id) {
            return Some(format!("account {id}: key hash or peer facts differ"));
        }
        if rebuilt.opened_seq(id) != stored.opened_seq(id) {
            return Some(format!("account {id}: opening seq differs"));
        }
    }
    let all = Query::default();
    for tx in rebuilt.transactions(&all).items {
        match stored.transaction(&tx.uuid) {
            None => return Some(format!("transaction {}: missing from the snapshot", tx.uuid)),
            Some(s) if s.state != tx.state || s.version != tx.version => {
                return Some(format!(
                    "transaction {}: {} v{} in the journal, {} v{} in the snapshot",
                    tx.uuid, tx.state, tx.version, s.state, s.version
                ))
            }
            Some(s) if s != tx => return Some(format!("transaction {}: contents differ", tx.uuid)),
            Some(_) => {}
        }
    }
    if rebuilt.transaction_count() != stored.transaction_count() {
        return Some(format!(
            "{} transactions in the journal, {} in the snapshot",
            rebuilt.transaction_count(),
            stored.transaction_count()
        ));
    }
    if rebuilt != stored {
        return Some("internal indexes differ".to_owned());
    }
    None
}
