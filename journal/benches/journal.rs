//! Journal benchmarks: durable append throughput, verify throughput, open time.
//!
//! Run: `cargo bench -p journal --bench journal` (add `-- --records N` to change
//! the size of the verify/open journal, default 1,000,000; `-- --skip-append`
//! to measure only verify, open and read). The journal is
//! written under `$CCNODE_BENCH_DIR` or the system temp dir: put it on the disk
//! you want to measure (not tmpfs). Results and targets: docs/BENCHMARKS.md.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use benchkit::{process_cpu_ns, thread_cpu_ns};
use journal::{verify_dir, Journal, Options, VerifyOptions};

const PAYLOAD_BYTES: usize = 200;
const APPEND_SECONDS: Duration = Duration::from_secs(3);

fn main() {
    let args = benchkit::Args::from_env();
    let records: u64 = args.parsed("--records", 1_000_000);
    let base = std::env::var_os("CCNODE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let scratch = tempfile::tempdir_in(&base).expect("bench dir");
    println!("# journal benchmarks in {} ({} cores)", base.display(), cores());
    println!();

    let skip_append = args.has("--skip-append");
    if !skip_append {
        append_section(scratch.path());
    }
    read_section(scratch.path(), records);
}

const BENCH: benchkit::Bench = benchkit::Bench("journal");

fn append_section(scratch: &Path) {
    let raw_us = raw_fdatasync_us(scratch);
    println!("raw append+fdatasync of {PAYLOAD_BYTES} bytes: {raw_us:.1} µs mean");
    println!();
    println!("| batch | records/s | fsyncs/s | mean batch latency | latency / raw fdatasync |");
    println!("|---:|---:|---:|---:|---:|");
    for batch in [1usize, 64, 1024] {
        let dir = scratch.join(format!("append-{batch}"));
        let (records_per_s, fsyncs_per_s, latency_us) = append_throughput(&dir, batch);
        println!(
            "| {batch} | {records_per_s:.0} | {fsyncs_per_s:.0} | {latency_us:.1} µs | {:.2}× |",
            latency_us / raw_us
        );
        BENCH.figure(&format!("append_batch{batch}_records_per_s"), records_per_s, "1/s");
        BENCH.figure(&format!("append_batch{batch}_latency_us"), latency_us, "us");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
    println!();
}

fn read_section(scratch: &Path, records: u64) {
    let dir = scratch.join("big");
    let built = Instant::now();
    build_journal(&dir, records);
    println!("built a {records}-record journal in {:.2?}", built.elapsed());
    let bytes: u64 =
        std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").metadata().expect("meta").len()).sum();
    // Warm the page cache once, as a node restarted on the same machine would find it.
    let _ = verify_dir(&dir, VerifyOptions::default(), &mut |_| {});
    for threads in [1, cores()] {
        let mut best = Duration::MAX;
        let (mut cpu, mut caller_cpu) = (u64::MAX, u64::MAX);
        for _ in 0..3 {
            let started = Instant::now();
            let (process, caller) = (process_cpu_ns(), thread_cpu_ns());
            let options = VerifyOptions { threads, ..VerifyOptions::default() };
            let report = verify_dir(&dir, options, &mut |_| {}).expect("verify");
            best = best.min(started.elapsed());
            cpu = cpu.min(process_cpu_ns() - process);
            caller_cpu = caller_cpu.min(thread_cpu_ns() - caller);
            assert!(report.is_ok() && report.records_verified == records);
        }
        println!(
            "verify: {records} records ({:.0} MiB) in {best:.2?} = {:.0} records/s (best of 3, {threads} thread(s)); \
             CPU {:.0} ns/record in all, {:.0} ns/record on the calling thread",
            mib(bytes),
            per_second(records, best),
            cpu as f64 / records as f64,
            caller_cpu as f64 / records as f64,
        );
        BENCH.figure(&format!("verify_{threads}threads_records_per_s"), per_second(records, best), "1/s");
        BENCH.figure(&format!("verify_{threads}threads_cpu_ns_per_record"), cpu as f64 / records as f64, "ns");
        BENCH.figure(
            &format!("verify_{threads}threads_caller_cpu_ns_per_record"),
            caller_cpu as f64 / records as f64,
            "ns",
        );
    }
    let mut opens = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let journal = Journal::open(&dir, Options::default()).expect("open");
        opens.push(started.elapsed());
        assert_eq!(journal.head().seq, records);
    }
    opens.sort();
    println!("open: median {:.2?}, max {:.2?} over 5 opens of {records} records", opens[2], opens[4]);
    BENCH.figure("open_median_s", opens[2].as_secs_f64(), "s");
    let journal = Journal::open(&dir, Options::default()).expect("open");
    let started = Instant::now();
    let mut count = 0usize;
    for record in journal.iter_from(1).expect("iter") {
        record.expect("record");
        count += 1;
    }
    let elapsed = started.elapsed();
    println!("read: {count} records in {elapsed:.2?} = {:.0} records/s", per_second(to_u64(count), elapsed));
    BENCH.figure("read_records_per_s", per_second(to_u64(count), elapsed), "1/s");
}

fn raw_fdatasync_us(dir: &Path) -> f64 {
    let mut file = OpenOptions::new().create(true).append(true).open(dir.join("raw")).expect("raw file");
    let record = [7u8; PAYLOAD_BYTES];
    let rounds = 2000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        file.write_all(&record).expect("write");
        file.sync_data().expect("fdatasync");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

fn append_throughput(dir: &Path, batch: usize) -> (f64, f64, f64) {
    let mut journal = Journal::create(dir, "bench", Options::default()).expect("create");
    let payloads: Vec<Vec<u8>> =
        (0..batch).map(|i| vec![u8::try_from(i % 251).expect("small"); PAYLOAD_BYTES]).collect();
    let started = Instant::now();
    let mut batches = 0u64;
    while started.elapsed() < APPEND_SECONDS {
        journal.append_batch(&payloads).expect("append");
        batches += 1;
    }
    let elapsed = started.elapsed();
    let records = batches * to_u64(batch);
    (per_second(records, elapsed), per_second(batches, elapsed), elapsed.as_secs_f64() * 1e6 / batches as f64)
}

fn build_journal(dir: &Path, records: u64) {
    let mut journal = Journal::create(dir, "bench", Options::default()).expect("create");
    let batch: Vec<Vec<u8>> = (0..1024).map(|i| vec![u8::try_from(i % 251).expect("small"); PAYLOAD_BYTES]).collect();
    let mut left = records;
    while left > 0 {
        let n = usize::try_from(left.min(1024)).expect("small");
        journal.append_batch(&batch[..n]).expect("append");
        left -= to_u64(n);
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("fits")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
