//! Integration tests of the journal, one binary (see style.md §4.8).

mod crash;
mod golden;
mod kill;
mod lock;
mod model;
mod usage;

use std::path::Path;

use journal::{Journal, Options, Record};

/// Small segments and frequent checkpoints, so rotation and checkpoint paths run often.
pub fn small_options() -> Options {
    Options { segment_bytes: journal::SEGMENT_BYTES_MIN, checkpoint_interval_records: 3 }
}

/// Every record of the journal, read back in order.
pub fn read_all(journal: &Journal) -> Vec<Record> {
    journal.iter_from(1).expect("iterate").collect::<Result<Vec<_>, _>>().expect("read back")
}

/// The payloads of every record.
pub fn payloads(journal: &Journal) -> Vec<Vec<u8>> {
    read_all(journal).into_iter().map(|r| r.payload).collect()
}

/// Copies a journal directory's files (flat) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// The segment files of a journal directory, in order.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    out.sort();
    out
}

/// A seeded generator; the seed comes from `var` or the clock and is printed.
pub fn seeded_rng(var: &str) -> (rand::rngs::StdRng, u64) {
    use rand::SeedableRng;
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| journal::now_us() ^ u64::from(std::process::id()));
    eprintln!("{var}={seed} (set it to replay this run)");
    (rand::rngs::StdRng::seed_from_u64(seed), seed)
}
