//! Coverage-guided fuzz targets for everything ccnode reads from bytes.
//!
//! Each module has one `run(&[u8])`: the AFL++ harnesses in `src/bin/` call
//! it under the fuzzer (`fuzz/run.sh`), and `tests/corpus.rs` replays the
//! committed seed corpus (`fuzz/corpus/<target>/`) and any saved crash
//! through it in the normal `cargo test`. A target panics only on a broken
//! contract (a decoder that panics, a round trip that changes a value, a
//! reader that accepts what the verifier refuses); everything else is an
//! expected error. See docs/TESTING.md.

pub mod bundle;
pub mod event;
pub mod http;
pub mod journal;
pub mod snapshot;
pub mod workflow;

/// A target: the name of its corpus directory and harness binary, and its function.
pub type Target = (&'static str, fn(&[u8]));

/// The targets.
pub const TARGETS: &[Target] = &[
    ("journal", journal::run),
    ("event", event::run),
    ("snapshot", snapshot::run),
    ("bundle", bundle::run),
    ("workflow", workflow::run),
    ("http", http::run),
];

/// Splits `data` into parts, each a u16 little-endian length then that many
/// bytes (the last part takes whatever is left when its length runs past
/// the end): how a target reads several inputs out of one fuzz input.
pub fn parts(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// The inverse of [`parts`], for making seeds.
///
/// # Panics
///
/// On a part longer than `u16::MAX` bytes.
pub fn join_parts(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        let len = u16::try_from(part.len()).expect("a seed part fits in u16");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// A scratch directory for this process and `target`, on a memory file
/// system when there is one (the journal and HTTP targets write real files,
/// and fsync there is cheap). It lives as long as the process: the fuzzer
/// ends its processes by a signal, so each start removes those of
/// processes that are gone.
pub fn process_dir(target: &str) -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let prefix = format!("ccnode-fuzz-{target}-");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(&prefix).and_then(|r| r.split('-').next()) else { continue };
            if !std::path::Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let prefix = format!("{prefix}{}-", std::process::id());
    tempfile::Builder::new().prefix(&prefix).tempdir_in(base).expect("scratch dir")
}
