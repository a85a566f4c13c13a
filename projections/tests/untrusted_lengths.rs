//! The fuzzer's findings in the snapshot codec (issue 13): length fields
//! were trusted before the bytes they describe were seen. A `Vec` length in
//! a snapshot made bincode reserve `len × size_of::<T>()` up front (it
//! decodes without a limit), and a section's stored length could ask for
//! more than the file holds. Both are measured here with a counting
//! allocator: damaged lengths are refused, and what is allocated stays
//! proportional to the bytes actually there.
//!
//! One test in its own binary: the allocator counts every thread's.

use std::alloc::System;

use projections::store::{decode_snapshot, encode_snapshot, MAGIC, SNAPSHOT_FORMAT_VERSION};
use projections::{Projections, StoreError};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    (out, region.change().bytes_allocated)
}

/// A head section whose account list claims `len` entries and holds none.
fn head_claiming_accounts(len: u64) -> Vec<u8> {
    let mut head = vec![1u8; 32]; // genesis
    head.extend_from_slice(&[2u8; 32]); // head hash
    head.extend_from_slice(&[0, 0, 0]); // seq, last_at_us, no config
    head.push(253); // bincode varint: a u64 follows
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&[0; 16]);
    head
}

/// A snapshot file holding `head` as its (well-checksummed) head section.
fn file_with_head(head: &[u8]) -> Vec<u8> {
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(head.len() as u64).to_le_bytes());
    file.extend_from_slice(head);
    file.extend_from_slice(&crc32c::crc32c(head).to_le_bytes());
    file
}

#[test]
fn snapshot_length_fields_cannot_force_large_allocations() {
    // A head of 92 bytes claiming 4 million accounts.
    let file = file_with_head(&head_claiming_accounts(1 << 22));
    let (decoded, bytes) = allocated_by(|| decode_snapshot(&file, [1; 32]));
    assert!(matches!(decoded, Err(StoreError::Corrupt(_))), "{decoded:?}");
    assert!(bytes < 1 << 20, "decoding {} bytes allocated {bytes} bytes", file.len());
    // A length whose reservation overflows: refused, not a panic.
    let file = file_with_head(&head_claiming_accounts(u64::MAX >> 4));
    assert!(matches!(decode_snapshot(&file, [1; 32]), Err(StoreError::Corrupt(_))));

    // A real snapshot whose head section claims 3 GiB.
    let mut file = encode_snapshot(&Projections::new(), [1; 32], [2; 32]).expect("encodes");
    assert!(decode_snapshot(&file, [1; 32]).is_ok());
    file[12..20].copy_from_slice(&(3u64 << 30).to_le_bytes());
    let (loaded, bytes) = allocated_by(|| decode_snapshot(&file, [1; 32]));
    assert!(matches!(loaded, Err(StoreError::Corrupt(_))), "{loaded:?}");
    assert!(bytes < 16 << 20, "decoding a small snapshot allocated {bytes} bytes");
}
