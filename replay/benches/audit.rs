//! Audit throughput (issue 6): builds a synthetic journal of payments, exports
//! it as an audit bundle, then audits the bundle (chain, every hash, every
//! event decoded, every balance recomputed with zero-sum and limit checks).
//!
//! `cargo bench -p replay --bench audit` runs a small default (200,000 events
//! in a temporary directory). For the figures in docs/BENCHMARKS.md:
//!
//! ```text
//! cargo bench -p replay --bench audit -- build 10000000 /path/dir   # journal + bundle
//! cargo bench -p replay --bench audit -- build 10000000 /path/dir 1 # the same in event format 1
//! cargo bench -p replay --bench audit -- audit /path/dir/bundle.ccaudit
//! ```
//!
//! Peak memory of the audit alone: `/usr/bin/time -v ccnode audit FILE`.

use std::path::Path;
use std::time::Instant;

use benchkit::{process_cpu_ns, thread_cpu_ns};

/// The allocator of the `ccnode` binary, so that the audit here costs what
/// `ccnode audit` costs (glibc's malloc cannot be told apart from it by
/// instruction counts, but it remaps a growing table where mimalloc copies
/// it, which changes the peak memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BENCH: benchkit::Bench = benchkit::Bench("audit");

fn build(events: u64, dir: &Path, event_format: u8) -> std::path::PathBuf {
    let journal_dir = dir.join("journal");
    let options = replay::synth::SynthOptions {
        events,
        accounts: 1_000,
        batch: 4_096,
        step_us: 1_000,
        limit_units: 1_000_000,
        seed: 6,
        event_format,
        ..Default::default()
    };
    let started = Instant::now();
    let (head, _) = replay::synth::write_payments_journal(&journal_dir, &options).expect("synthetic journal");
    println!("journal: {} events written in {:.2?}", head.seq, started.elapsed());
    let journal = journal::Journal::open_read_only(&journal_dir).expect("open journal");
    let bundle = dir.join("bundle.ccaudit");
    let started = Instant::now();
    let summary = replay::export_to_file(&journal, None, &bundle, &mut |_| {}).expect("export");
    println!("export: {} records, {} bytes in {:.2?}", summary.records, summary.bytes, started.elapsed());
    bundle
}

fn audit(bundle: &Path) {
    let started = Instant::now();
    let cpu = process_cpu_ns();
    let summary = replay::audit_file(bundle, &mut |_| {}).expect("audit");
    let elapsed = started.elapsed();
    let cpu = process_cpu_ns() - cpu;
    let rate = summary.records as f64 / elapsed.as_secs_f64();
    println!(
        "audit: {} events ({} bookings, {} bytes) in {:.2?}: {:.0} events/s, {:.1} MB/s; CPU {:.2} s ({:.0} ns/event); peak RSS {} KiB",
        summary.records,
        summary.bookings,
        summary.bytes,
        elapsed,
        rate,
        summary.bytes as f64 / elapsed.as_secs_f64() / 1e6,
        cpu as f64 / 1e9,
        cpu as f64 / summary.records as f64,
        benchkit::status_kb("self", "VmHWM").map_or("?".to_owned(), |k| k.to_string()),
    );
    BENCH.figure("audit_events_per_s", rate, "1/s");
    BENCH.figure("audit_cpu_ns_per_event", cpu as f64 / summary.records as f64, "ns");
    if let Some(kib) = benchkit::status_kb("self", "VmHWM") {
        BENCH.figure("audit_peak_rss_kib", kib as f64, "KiB");
    }
}

/// Where the time goes, one stage at a time on one thread.
fn profile(dir: &Path) {
    let journal = journal::Journal::open_read_only(&dir.join("journal")).expect("open journal");
    let records: Vec<journal::Record> = journal.iter_from(1).expect("iter").map(|r| r.expect("record")).collect();
    let n = records.len() as f64;
    let started = thread_cpu_ns();
    let ok = records.iter().filter(|r| r.hash_is_valid()).count();
    let hash = thread_cpu_ns() - started;
    assert_eq!(ok, records.len());
    let started = thread_cpu_ns();
    let events: Vec<ledger::Event> = records.iter().map(|r| ledger::decode_event(&r.payload).expect("event")).collect();
    let decode = thread_cpu_ns() - started;
    let started = thread_cpu_ns();
    // As the audit folds: the one fold, keeping only what its checks read.
    let mut projections = projections::Projections::checks_only();
    let folded: Vec<(u64, u64, &ledger::Event)> =
        records.iter().zip(&events).map(|(r, e)| (r.seq, r.recorded_at_us, e)).collect();
    for batch in folded.chunks(4096) {
        projections.try_apply_batch(batch, |&(seq, at_us, event)| (seq, at_us, event)).expect("consistent");
    }
    let check = thread_cpu_ns() - started;
    let per = |ns: u64| ns as f64 / n;
    println!(
        "profile over {} records (thread CPU time): hash {:.0} ns, decode {:.0} ns, fold (Projections::try_apply_batch, checks only) {:.0} ns per event",
        records.len(),
        per(hash),
        per(decode),
        per(check)
    );
    BENCH.figure("profile_hash_ns_per_event", per(hash), "ns");
    BENCH.figure("profile_decode_ns_per_event", per(decode), "ns");
    BENCH.figure("profile_fold_ns_per_event", per(check), "ns");
}

/// The pure reconciliation step when the peer is `ahead` versions ahead of
/// a shared history of `common` versions: verdict, repair, re-check.
fn reconcile_bench(common: usize, ahead: usize) {
    use replay::reconcile::{apply, reconcile, LinkVersion, Verdict};
    let version = |i: usize| {
        let n = u32::try_from(i).expect("fits");
        let h = *blake3::hash(&n.to_le_bytes()).as_bytes();
        LinkVersion {
            uuid: ledger::TxId(uuid::Uuid::from_u128(u128::from(n / 3))),
            version: n % 3 + 1,
            state: ledger::State::Completed,
            md5: h[..16].try_into().expect("16 bytes"),
            blake3: h,
        }
    };
    let theirs: Vec<LinkVersion> = (0..common + ahead).map(version).collect();
    let mut ours: Vec<LinkVersion> = theirs[..common].to_vec();
    let started = Instant::now();
    let Verdict::WeAreBehind { missing } = reconcile(&ours, &theirs) else { panic!("expected WeAreBehind") };
    let appended = apply(&mut ours, &missing);
    assert_eq!(reconcile(&ours, &theirs), Verdict::InSync);
    println!(
        "reconcile: peer {ahead} versions ahead of {common} shared: {appended} appended, in sync after {:.2?}",
        started.elapsed()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["build", n, dir] => {
            std::fs::create_dir_all(dir).expect("create dir");
            build(n.parse().expect("event count"), Path::new(dir), ledger::EVENT_FORMAT_VERSION);
        }
        ["build", n, dir, format] => {
            std::fs::create_dir_all(dir).expect("create dir");
            build(n.parse().expect("event count"), Path::new(dir), format.parse().expect("event format (1 or 2)"));
        }
        ["audit", file] => audit(Path::new(file)),
        ["profile", dir] => profile(Path::new(dir)),
        ["reconcile", common, ahead] => {
            reconcile_bench(common.parse().expect("count"), ahead.parse().expect("count"));
        }
        _ => {
            let dir = tempfile::tempdir().expect("tempdir");
            let bundle = build(200_000, dir.path(), ledger::EVENT_FORMAT_VERSION);
            audit(&bundle);
            reconcile_bench(100_000, 100_000);
        }
    }
}
