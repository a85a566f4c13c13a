//! The fuzzer's findings in the snapshot codec (issue 13): length fields
//! were trusted before the bytes they describe were seen. A snapshot body's
//! `Vec` length made bincode reserve `len × size_of::<T>()` up front (the
//! body is decoded without a limit), and the stored meta's body length made
//! `SnapshotStore::load` reserve up to 4 GiB. Both are measured here with a
//! counting allocator: damaged lengths are refused, and what is allocated
//! stays proportional to the bytes actually there.
//!
//! One test in its own binary: the allocator counts every thread's.

use std::alloc::System;

use projections::store::{decode_snapshot, SNAPSHOT_FORMAT_VERSION};
use projections::{Projections, SnapshotStore, StoreError};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    (out, region.change().bytes_allocated)
}

/// A body whose workflow list claims `len` entries and holds none.
fn body_claiming_workflows(len: u64) -> Vec<u8> {
    let mut body = vec![1u8; 32]; // genesis
    body.extend_from_slice(&[2u8; 32]); // head hash
    body.extend_from_slice(&[0, 0, 0, 0]); // seq, last_at_us, no config, no accounts
    body.push(253); // bincode varint: a u64 follows
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&[0; 16]);
    body
}

fn seal(body: &[u8]) -> Vec<u8> {
    let mut blob = vec![SNAPSHOT_FORMAT_VERSION];
    blob.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    blob.extend_from_slice(body);
    blob
}

#[test]
fn snapshot_length_fields_cannot_force_large_allocations() {
    // A body of 93 bytes claiming 4 million workflows.
    let blob = seal(&body_claiming_workflows(1 << 22));
    let (decoded, bytes) = allocated_by(|| decode_snapshot(&blob, [1; 32]));
    assert!(matches!(decoded, Err(StoreError::Corrupt(_))), "{decoded:?}");
    assert!(bytes < 1 << 20, "decoding {} bytes allocated {bytes} bytes", blob.len());
    // A length whose reservation overflows: refused, not a panic.
    let blob = seal(&body_claiming_workflows(u64::MAX >> 4));
    assert!(matches!(decode_snapshot(&blob, [1; 32]), Err(StoreError::Corrupt(_))));

    // The stored meta claims a 3 GiB body in one chunk.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::open(dir.path()).expect("store");
    store.save(&Projections::new(), [1; 32], [2; 32]).expect("save");
    assert!(store.load([1; 32]).expect("loads").is_some());
    let mut meta = store.raw().get(b"meta").expect("get").expect("meta").to_vec();
    meta[5..13].copy_from_slice(&(3u64 << 30).to_le_bytes());
    store.raw().insert(b"meta", meta).expect("insert");
    let (loaded, bytes) = allocated_by(|| store.load([1; 32]));
    assert!(matches!(loaded, Err(StoreError::Corrupt(_))), "{loaded:?}");
    assert!(bytes < 16 << 20, "loading a small snapshot allocated {bytes} bytes");
}
