//! Shared helpers of the replay integration tests.
#![allow(dead_code)]

use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;
use replay::synth::{write_payments_journal, SynthOptions};

/// A seeded RNG: the seed comes from `REPLAY_SEED` (else a fresh random one)
/// and is printed if the test fails (the guard must live as long as the test).
pub struct Seeded {
    pub seed: u64,
    pub rng: StdRng,
}

impl Seeded {
    pub fn new() -> Seeded {
        let seed = std::env::var("REPLAY_SEED")
            .ok()
            .map(|s| s.parse().expect("REPLAY_SEED must be a u64"))
            .unwrap_or_else(rand::random);
        Seeded { seed, rng: StdRng::seed_from_u64(seed) }
    }
}

impl Drop for Seeded {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("randomized test failed with REPLAY_SEED={}", self.seed);
        }
    }
}

/// A synthetic journal of `events` events in `dir/journal` (small
/// checkpoint interval so bundles carry checkpoints).
pub fn journal(dir: &Path, events: u64, seed: u64) -> journal::Head {
    let options = SynthOptions {
        events,
        seed,
        accounts: 6,
        batch: 3,
        limit_units: 300,
        journal: journal::Options { checkpoint_interval_records: 16, ..Default::default() },
        ..Default::default()
    };
    write_payments_journal(&dir.join("journal"), &options).expect("synthetic journal").0
}

/// Byte offset of record `seq`'s payload in the single segment of `dir/journal`.
pub fn payload_offset(journal_dir: &Path, seq: u64) -> (std::path::PathBuf, usize) {
    let mut segments: Vec<_> = std::fs::read_dir(journal_dir)
        .expect("journal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    for segment in segments {
        let bytes = std::fs::read(&segment).expect("segment");
        let mut pos = journal::SEGMENT_HEADER_BYTES;
        while pos + journal::FRAME_HEADER_BYTES <= bytes.len() {
            let body_len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
            let body = pos + journal::FRAME_HEADER_BYTES;
            let found = u64::from_le_bytes(bytes[body + 1..body + 9].try_into().expect("8 bytes"));
            if found == seq {
                return (segment, body + journal::BODY_FIXED_BYTES);
            }
            pos = body + usize::try_from(body_len).expect("fits");
        }
    }
    panic!("record {seq} not found");
}

/// Flips one bit of one byte of a file.
pub fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset] ^= 0x10;
    std::fs::write(path, bytes).expect("write");
}
