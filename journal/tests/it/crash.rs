//! Crash simulation on the files: cut them anywhere in the last batch and
//! recovery keeps exactly the completed batches; flip any byte of a complete
//! record and verification names that record.

use std::fs;
use std::path::Path;

use journal::{verify_dir, CorruptionKind, Journal, OpenError, Options, VerifyOptions};
use rand::Rng;

use crate::{copy_dir, payloads, seeded_rng, segment_files};

/// Three batches in one segment; returns the payloads of each batch.
fn build(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    let batches: Vec<Vec<Vec<u8>>> = vec![
        vec![b"first".to_vec(), b"second record".to_vec()],
        vec![vec![7u8; 90]],
        vec![b"x".to_vec(), vec![], vec![0xAB; 150], b"last of the last batch".to_vec()],
    ];
    let mut journal = Journal::create(dir, "crash-node", Options::default()).unwrap();
    for (idx, batch) in batches.iter().enumerate() {
        journal.append_batch_at(1_000 + idx as u64, batch).unwrap();
    }
    batches
}

#[test]
fn cutting_the_last_batch_anywhere_keeps_exactly_the_completed_batches() {
    let original = tempfile::tempdir().unwrap();
    let batches = build(original.path());
    let segment = segment_files(original.path()).pop().unwrap();
    let full = fs::read(&segment).unwrap();
    let last_batch_bytes: usize = batches[2].iter().map(|p| journal::frame_bytes(p.len())).sum();
    let last_batch_start = full.len() - last_batch_bytes;
    let completed: Vec<Vec<u8>> = batches[..2].concat();

    // Every byte offset inside the last batch (which includes its last frame).
    for cut in last_batch_start..full.len() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let seg = dir.path().join(segment.file_name().unwrap());
        fs::write(&seg, &full[..cut]).unwrap();

        let report = verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap();
        assert!(report.is_ok(), "cut at {cut}: verify called a torn tail corruption: {:?}", report.problem);
        assert_eq!(report.last_seq, 3, "cut at {cut}");

        let journal = Journal::open(dir.path(), Options::default()).unwrap();
        assert_eq!(payloads(&journal), completed, "cut at {cut}");
        drop(journal);
        assert_eq!(fs::metadata(&seg).unwrap().len(), last_batch_start as u64, "tail truncated");
        // The recovered journal takes new writes after the truncation point.
        let mut journal = Journal::open(dir.path(), Options::default()).unwrap();
        journal.append_batch(&[b"after recovery"]).unwrap();
        assert_eq!(journal.read(4).unwrap().payload, b"after recovery");
    }
}

#[test]
fn cutting_at_random_offsets_keeps_a_prefix_of_whole_batches() {
    let (mut rng, _seed) = seeded_rng("JOURNAL_CRASH_SEED");
    let original = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(original.path(), "crash-node", crate::small_options()).unwrap();
    let mut batches = Vec::new();
    for b in 0..40u32 {
        let batch: Vec<Vec<u8>> = (0..rng.gen_range(1..6))
            .map(|i| vec![u8::try_from((b + i) % 251).unwrap(); rng.gen_range(0..200)])
            .collect();
        journal.append_batch(&batch).unwrap();
        batches.push(batch);
    }
    drop(journal);
    let segments = segment_files(original.path());
    for _ in 0..40 {
        // Cutting the last segment simulates a crash during the last writes.
        let last = segments.last().unwrap();
        let bytes = fs::read(last).unwrap();
        let cut = rng.gen_range(journal::SEGMENT_HEADER_BYTES..=bytes.len());
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        fs::write(dir.path().join(last.file_name().unwrap()), &bytes[..cut]).unwrap();
        // Checkpoints past the cut would rightly be reported as lost records: a
        // crash can never lose acknowledged records, so drop the derived file.
        let _ = fs::remove_file(dir.path().join("checkpoints"));
        let journal = Journal::open(dir.path(), crate::small_options()).unwrap();
        let got = payloads(&journal);
        let all: Vec<Vec<u8>> = batches.concat();
        let boundaries: Vec<usize> = std::iter::once(0)
            .chain(batches.iter().scan(0, |n, b| {
                *n += b.len();
                Some(*n)
            }))
            .collect();
        assert!(boundaries.contains(&got.len()), "recovered {} records, not a whole number of batches", got.len());
        assert_eq!(got, all[..got.len()].to_vec());
    }
}

#[test]
fn flipping_any_byte_of_a_complete_record_is_reported_with_its_seq() {
    let original = tempfile::tempdir().unwrap();
    let batches = build(original.path());
    let segment = segment_files(original.path()).pop().unwrap();
    let full = fs::read(&segment).unwrap();
    let mut frames = Vec::new(); // (seq, start, end)
    let mut at = journal::SEGMENT_HEADER_BYTES;
    for (idx, payload) in batches.concat().iter().enumerate() {
        let len = journal::frame_bytes(payload.len());
        frames.push((idx as u64 + 1, at, at + len));
        at += len;
    }
    assert_eq!(at, full.len());
    for &(seq, start, end) in &frames {
        for offset in start..end {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(original.path(), dir.path());
            let mut damaged = full.clone();
            damaged[offset] ^= 0x40;
            let seg = dir.path().join(segment.file_name().unwrap());
            fs::write(&seg, &damaged).unwrap();

            let report = verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap();
            let problem = report.problem.unwrap_or_else(|| panic!("flip at {offset} (seq {seq}) went unnoticed"));
            assert_eq!(problem.seq, seq, "flip at {offset}: {problem}");
            assert_eq!(problem.offset, start as u64, "flip at {offset}");
            match Journal::open(dir.path(), Options::default()) {
                Err(OpenError::Corrupt(c)) => assert_eq!(c.seq, seq, "open names the seq"),
                other => panic!("flip at {offset}: open should refuse, got {other:?}"),
            }
        }
    }
}

#[test]
fn a_rehashed_forgery_is_caught_by_the_chain() {
    // Someone rewrites record 2 with a valid checksum: the chain still breaks.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let journal = Journal::open(dir.path(), Options::default()).unwrap();
    let records = crate::read_all(&journal);
    drop(journal);
    let segment = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let start = journal::SEGMENT_HEADER_BYTES + journal::frame_bytes(records[0].payload.len());
    let payload_at = start + journal::FRAME_HEADER_BYTES + journal::BODY_FIXED_BYTES;
    bytes[payload_at] ^= 1; // Change the payload...
    let body = &bytes[start + journal::FRAME_HEADER_BYTES..start + journal::frame_bytes(records[1].payload.len())];
    let crc = crc32c(body);
    bytes[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes()); // ...and fix the checksum.
    fs::write(&segment, &bytes).unwrap();
    let report = verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap();
    let problem = report.problem.expect("forgery detected");
    assert_eq!(problem.seq, 2);
    assert_eq!(problem.kind, CorruptionKind::Hash);
}

/// CRC-32C (Castagnoli), bitwise; the tests' own copy so they do not trust the crate's.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
