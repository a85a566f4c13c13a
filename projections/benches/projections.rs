//! Projections benchmarks: fold rate, historical query latency, rebuild from
//! a real journal (time and peak memory).
//!
//! Run: `cargo bench -p projections --bench projections` (quick sizes), or
//! with the sizes:
//! `cargo bench -p projections --bench projections -- --fold-events 2000000
//! --timeline-points 1000000 --rebuild-events 10000000 --accounts 100000`.
//! `--skip-rebuild` skips the journal part, `--only-rebuild` everything
//! else; `--keep-journal DIR` builds the journal in DIR once and reuses it;
//! `--skip-snapshot` skips the snapshot save/load after the rebuild. The journal is written under
//! `$CCNODE_BENCH_DIR` or the system temp dir and deleted afterwards. The
//! rebuild runs in a child process (this binary with `--rebuild-child DIR`)
//! so its peak RSS (VmHWM) is the rebuild's own. Results: docs/BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use benchkit::Rng;
use journal::{Journal, Options};
use ledger::{
    encode_event, Account, AccountId, AccountKind, AccountStatus, Amount, Entry, Event, Limits, NodeConfig, NodeName,
    State, Transaction, TxId, WorkflowRef,
};
use projections::{load_or_rebuild, Projections, SnapshotStore};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    if let Some(i) = args.iter().position(|a| a == "--rebuild-child") {
        rebuild_child(Path::new(&args[i + 1]), Path::new(&args[i + 2]));
        return;
    }
    let keep = args.iter().position(|a| a == "--keep-journal").map(|i| Path::new(&args[i + 1]));
    let fold_events = flag("--fold-events", 1_000_000);
    let points = flag("--timeline-points", 1_000_000);
    let rebuild_events = flag("--rebuild-events", 1_000_000);
    let accounts = flag("--accounts", 100_000);
    println!("# projections benchmarks ({} cores)", std::thread::available_parallelism().map_or(1, usize::from));
    println!();
    if !args.iter().any(|a| a == "--only-rebuild") {
        fold_section(fold_events, accounts.min(10_000));
        query_section(points);
    }
    if !args.iter().any(|a| a == "--skip-rebuild") {
        rebuild_section(rebuild_events, accounts, keep);
    }
}

fn account_id(i: u64) -> AccountId {
    AccountId::new(&format!("acc{i:06}")).expect("valid id")
}

/// A payment-heavy stream: node initialisation, `accounts` openings, then
/// per 10 events 8 immediate payments, 1 bill (pending) and 1 signature of
/// an earlier bill (pending → completed). Calls `emit` with each event.
fn generate(accounts: u64, events: u64, seed: u64, mut emit: impl FnMut(Event)) {
    let config = NodeConfig::new(NodeName::new("bench").expect("name"));
    let payment = config.workflows.iter().find(|w| w.id.as_str() == "payment").expect("shipped").clone();
    let bill = config.workflows.iter().find(|w| w.id.as_str() == "bill").expect("shipped").clone();
    emit(Event::NodeInitialised { config });
    // Event format 2: each definition once, proposals name it.
    emit(Event::WorkflowDefined { workflow: payment.clone() });
    emit(Event::WorkflowDefined { workflow: bill.clone() });
    let (payment, bill) = (WorkflowRef::of(&payment), WorkflowRef::of(&bill));
    let limits = Limits::new(Amount::from_units(-1_000_000_000), Amount::from_units(1_000_000_000)).expect("limits");
    let ids: Vec<AccountId> = (0..accounts).map(account_id).collect();
    for id in &ids {
        let kind = AccountKind::User { admin: false };
        emit(Event::AccountOpened { account: Account { id: id.clone(), kind, limits, status: AccountStatus::Active } });
    }
    let mut rng = Rng::new(seed | 1);
    let mut open_bills: Vec<(TxId, AccountId)> = Vec::new();
    let mut n_tx: u128 = 0;
    let mut emitted = 3 + accounts;
    let pick = |rng: &mut Rng| usize::try_from(rng.below(accounts)).expect("fits");
    while emitted < events {
        let kind = emitted % 10;
        if kind == 9 && !open_bills.is_empty() {
            let at = usize::try_from(rng.below(u64::try_from(open_bills.len()).expect("fits"))).expect("fits");
            let (uuid, payer) = open_bills.swap_remove(at);
            emit(Event::TransactionTransitioned {
                uuid,
                from: State::Pending,
                to: State::Completed,
                actor: payer,
                version: 2,
                at_unix_s: emitted,
            });
        } else {
            let payer = pick(&mut rng);
            let mut payee = pick(&mut rng);
            if payee == payer {
                payee = (payee + 1) % ids.len();
            }
            n_tx += 1;
            let is_bill = kind == 8;
            let entry = Entry {
                payer: ids[payer].clone(),
                payee: ids[payee].clone(),
                quant: Amount::from_micros(i64::try_from(1 + rng.below(100_000_000)).expect("fits")),
                description: String::new(),
                metadata: Default::default(),
                remote: Default::default(),
            };
            let (workflow, state, author): (&WorkflowRef, State, usize) =
                if is_bill { (&bill, State::Pending, payee) } else { (&payment, State::Completed, payer) };
            let transaction = Transaction {
                uuid: TxId(uuid::Uuid::from_u128(n_tx)),
                version: 1,
                state,
                workflow: workflow.clone(),
                author: ids[author].clone(),
                written_unix_s: emitted,
                entries: vec![entry],
            };
            if is_bill {
                open_bills.push((transaction.uuid, ids[payer].clone()));
            }
            emit(Event::TransactionProposedRef { transaction });
        }
        emitted += 1;
    }
}

fn fold_section(events: u64, accounts: u64) {
    let mut stream = Vec::new();
    generate(accounts, events, 7, |e| stream.push(e));
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let mut p = Projections::new();
        let started = Instant::now();
        for (seq, event) in (1u64..).zip(&stream) {
            p.apply(seq, seq, event);
        }
        // The per-account listing index is caught up lazily: time it too.
        p.index_transactions();
        best = best.min(started.elapsed());
        p.assert_invariants();
    }
    println!(
        "fold: {} events ({accounts} accounts, 80% payments, 10% bills, 10% signatures) in {best:.2?} = {:.0} events/s (best of 3, one core)",
        stream.len(),
        per_second(to_u64(stream.len()), best)
    );
    BENCH.figure("fold_events_per_s", per_second(to_u64(stream.len()), best), "1/s");
}

const BENCH: benchkit::Bench = benchkit::Bench("projections");

fn query_section(points: u64) {
    // Two accounts paying each other: each payment adds a timeline point to
    // both. 80% of the generated stream are payments; signatures are dropped
    // (their bills stay pending and add no point).
    let mut stream = Vec::new();
    generate(2, points / 4 * 5 + 3, 11, |e| {
        if !matches!(e, Event::TransactionTransitioned { .. }) {
            stream.push(e);
        }
    });
    let mut p = Projections::new();
    for (seq, event) in (1u64..).zip(&stream) {
        p.apply(seq, seq * 10, event);
    }
    let id = account_id(0);
    let len = p.timeline_len(&id).expect("open");
    let head = p.seq();
    let mut rng = Rng::new(99);
    let mut seq_ns = Vec::new();
    let mut time_ns = Vec::new();
    let mut sink = Amount::ZERO;
    for _ in 0..1_000_000 {
        let seq = rng.below(head + 1);
        let started = Instant::now();
        let b = p.balance_at_seq(&id, seq);
        seq_ns.push(started.elapsed().as_nanos());
        let started = Instant::now();
        let c = p.balance_at_time(&id, seq * 10);
        time_ns.push(started.elapsed().as_nanos());
        assert_eq!(b, c);
        sink = b.unwrap_or(sink);
    }
    for (what, mut ns) in [("balance_at_seq", seq_ns), ("balance_at_time", time_ns)] {
        ns.sort_unstable();
        let q = |f: usize| ns[(ns.len() - 1) * f / 100];
        println!(
            "{what}: account with {len} timeline points, 1,000,000 random queries: p50 {} ns, p99 {} ns, max {} ns",
            q(50),
            q(99),
            ns[ns.len() - 1]
        );
        BENCH.figure(&format!("{what}_p99_ns"), q(99) as f64, "ns");
    }
    let started = Instant::now();
    let all = p.balances_at_seq(head / 2);
    println!("balances_at_seq over {} accounts: {:.2?} (sink {sink})", all.len(), started.elapsed());
}

fn rebuild_section(events: u64, accounts: u64, keep: Option<&Path>) {
    let base = std::env::var_os("CCNODE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let scratch = tempfile::tempdir_in(&base).expect("bench dir");
    // `--keep-journal DIR`: build the journal in DIR once, reuse it later.
    let dir = keep.map_or_else(|| scratch.path().join("journal"), Path::to_path_buf);
    let started = Instant::now();
    if keep.is_some_and(|d| d.join("journal.meta").exists() || d.read_dir().is_ok_and(|mut e| e.next().is_some())) {
        println!("reusing the journal in {}", dir.display());
    } else {
        let mut journal = Journal::create(&dir, "bench", Options::default()).expect("create");
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(1024);
        let mut at_us = 1_700_000_000_000_000u64;
        generate(accounts, events, 23, |e| {
            batch.push(encode_event(&e));
            if batch.len() == 1024 {
                at_us += 1_000;
                journal.append_batch_at(at_us, &batch).expect("append");
                batch.clear();
            }
        });
        if !batch.is_empty() {
            journal.append_batch_at(at_us + 1_000, &batch).expect("append");
        }
    }
    let bytes: u64 =
        std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").metadata().expect("meta").len()).sum();
    println!(
        "built a {events}-event journal ({accounts} accounts, {:.0} MiB) in {:.2?}",
        bytes as f64 / f64::from(1u32 << 20),
        started.elapsed()
    );
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"));
    child.arg("--rebuild-child").arg(scratch.path()).arg(&dir);
    if std::env::args().any(|a| a == "--threaded") {
        child.arg("--threaded");
    }
    if std::env::args().any(|a| a == "--skip-snapshot") {
        child.arg("--skip-snapshot");
    }
    let status = child.status().expect("run child");
    assert!(status.success(), "rebuild child failed");
}

/// Runs in a fresh process: rebuild from the journal, report time and VmHWM,
/// then save a snapshot and load it back.
fn rebuild_child(scratch: &Path, journal_dir: &Path) {
    let journal = Journal::open_read_only(journal_dir).expect("open journal");
    let store = SnapshotStore::open(&scratch.join("snapshot")).expect("open store");
    let started = Instant::now();
    let (p, report) = load_or_rebuild(&journal, &store).expect("rebuild");
    let elapsed = started.elapsed();
    let hwm = benchkit::status_kb("self", "VmHWM").unwrap_or(0);
    println!(
        "rebuild: {} events, {} accounts, {} transactions in {elapsed:.2?} = {:.0} events/s; peak RSS (VmHWM) {:.2} GiB",
        report.folded,
        p.account_count(),
        p.transaction_count(),
        per_second(report.folded, elapsed),
        hwm as f64 / f64::from(1u32 << 20)
    );
    BENCH.figure("rebuild_events_per_s", per_second(report.folded, elapsed), "1/s");
    BENCH.figure("rebuild_peak_rss_kib", hwm as f64, "KiB");
    if std::env::args().any(|a| a == "--skip-snapshot") {
        return;
    }
    let started = Instant::now();
    let head = journal.head();
    store.save(&p, journal.genesis().0, head.hash.0).expect("save");
    println!("snapshot save: {:.2?}", started.elapsed());
    BENCH.figure("snapshot_save_s", started.elapsed().as_secs_f64(), "s");
    drop(p);
    let started = Instant::now();
    let (q, report) = load_or_rebuild(&journal, &store).expect("load");
    assert_eq!((report.from_snapshot_seq, report.folded), (Some(head.seq), 0));
    println!("snapshot load (decode, recompute, check invariants): {:.2?}", started.elapsed());
    BENCH.figure("snapshot_load_s", started.elapsed().as_secs_f64(), "s");
    drop(q);
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("fits")
}
