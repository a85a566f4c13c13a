//! The journal's contract as a caller meets it: limits, locking, identity,
//! read-only mode, segments and indexes, checkpoints.

use std::fs;

use journal::{
    verify_dir, AppendError, Checkpoint, CorruptionKind, Journal, OpenError, Options, ReadError, VerifyOptions,
    MAX_BATCH_RECORDS, MAX_PAYLOAD_BYTES,
};

use crate::{payloads, small_options};

#[test]
fn bad_batches_are_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", Options::default()).unwrap();
    journal.append_batch(&[b"ok"]).unwrap();
    let empty: [&[u8]; 0] = [];
    assert!(matches!(journal.append_batch(&empty), Err(AppendError::EmptyBatch)));
    let big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(
        journal.append_batch(&[b"fine".to_vec(), big]),
        Err(AppendError::PayloadTooLarge { index: 1, .. })
    ));
    let many = vec![Vec::<u8>::new(); MAX_BATCH_RECORDS + 1];
    assert!(matches!(journal.append_batch(&many), Err(AppendError::TooManyRecords { .. })));
    let too_many_bytes = vec![vec![1u8; MAX_PAYLOAD_BYTES]; 70];
    assert!(matches!(journal.append_batch(&too_many_bytes), Err(AppendError::BatchTooLarge { .. })));
    assert_eq!(journal.head().seq, 1);
    let max = vec![9u8; MAX_PAYLOAD_BYTES];
    journal.append_batch(std::slice::from_ref(&max)).unwrap();
    drop(journal);
    let journal = Journal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(payloads(&journal), vec![b"ok".to_vec(), max]);
}

#[test]
fn one_writer_at_a_time_and_identity_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(dir.path(), "node-a", Options::default()).unwrap();
    assert!(matches!(Journal::open(dir.path(), Options::default()), Err(OpenError::Locked(_))));
    assert!(matches!(Journal::create(dir.path(), "node-a", Options::default()), Err(OpenError::AlreadyExists(_))));
    // Readers do not need the lock.
    let reader = Journal::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.identity(), "node-a");
    drop(journal);
    assert!(matches!(
        Journal::open_or_create(dir.path(), "node-b", Options::default()),
        Err(OpenError::IdentityMismatch { .. })
    ));
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(Journal::open(other.path(), Options::default()), Err(OpenError::NotFound(_))));
    assert!(matches!(Journal::create(other.path(), "", Options::default()), Err(OpenError::BadIdentity { .. })));
}

#[test]
fn genesis_differs_per_identity() {
    assert_ne!(journal::genesis_hash("trunk"), journal::genesis_hash("branch"));
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut ja = Journal::create(a.path(), "trunk", Options::default()).unwrap();
    let mut jb = Journal::create(b.path(), "branch", Options::default()).unwrap();
    let ha = ja.append_batch_at(5, &[b"same"]).unwrap().head.hash;
    let hb = jb.append_batch_at(5, &[b"same"]).unwrap().head.hash;
    assert_ne!(ha, hb);
}

#[test]
fn read_only_refuses_writes_and_reads_out_of_range_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", Options::default()).unwrap();
    journal.append_batch(&[b"a", b"b"]).unwrap();
    let mut reader = Journal::open_read_only(dir.path()).unwrap();
    assert!(matches!(reader.append_batch(&[b"c"]), Err(AppendError::ReadOnly)));
    assert_eq!(reader.read(2).unwrap().payload, b"b");
    assert!(matches!(reader.read(0), Err(ReadError::OutOfRange { seq: 0, head: 2 })));
    assert!(matches!(reader.read(3), Err(ReadError::OutOfRange { seq: 3, head: 2 })));
    assert_eq!(journal.iter_from(3).unwrap().count(), 0, "iterating from head + 1 is empty");
}

#[test]
fn segments_rotate_and_indexes_are_rebuilt_when_missing_or_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", small_options()).unwrap();
    let mut model = Vec::new();
    for i in 0..200u32 {
        let batch: Vec<Vec<u8>> = (0..3).map(|j| format!("record {i}/{j}").into_bytes()).collect();
        journal.append_batch(&batch).unwrap();
        model.extend(batch);
    }
    assert!(journal.segment_count() > 5, "small segments rotate");
    drop(journal);
    let indexes = index_files(dir.path());
    assert!(!indexes.is_empty());
    // Lose one index and damage another: open rescans those segments.
    fs::remove_file(&indexes[0]).unwrap();
    if let Some(second) = indexes.get(1) {
        let mut bytes = fs::read(second).unwrap();
        bytes[20] ^= 1;
        fs::write(second, bytes).unwrap();
    }
    let journal = Journal::open(dir.path(), small_options()).unwrap();
    assert_eq!(payloads(&journal), model);
    assert_eq!(journal.range(100, 110).unwrap().count(), 11);
}

#[test]
fn iteration_crosses_read_chunks_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal =
        Journal::create(dir.path(), "n", Options { segment_bytes: 3 << 20, ..Options::default() }).unwrap();
    let mut model = Vec::new();
    for i in 0..12u8 {
        let batch = vec![vec![i; 300_000], vec![i.wrapping_add(100); 10]];
        journal.append_batch(&batch).unwrap();
        model.extend(batch);
    }
    assert!(journal.segment_count() >= 2);
    assert_eq!(payloads(&journal), model);
    let tail: Vec<_> = journal.iter_from(7).unwrap().map(|r| r.unwrap().payload).collect();
    assert_eq!(tail, model[6..].to_vec());
}

#[test]
fn checkpoints_are_recorded_checked_and_usable_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", small_options()).unwrap();
    for i in 0..30u32 {
        journal.append_batch(&[i.to_le_bytes()]).unwrap();
    }
    let checkpoints = journal.checkpoints().to_vec();
    assert!(checkpoints.len() >= 9, "one checkpoint every 3 records: {}", checkpoints.len());
    for cp in &checkpoints {
        assert_eq!(journal.read(cp.seq).unwrap().hash, cp.hash);
    }
    drop(journal);

    let from = checkpoints[5];
    let report = verify_dir(
        dir.path(),
        VerifyOptions { from: Some(from), until_seq: None, ..VerifyOptions::default() },
        &mut |_| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records_verified, 30 - from.seq);
    let ranged = verify_dir(
        dir.path(),
        VerifyOptions { from: Some(from), until_seq: Some(25), ..VerifyOptions::default() },
        &mut |_| {},
    )
    .unwrap();
    assert!(ranged.is_ok());
    assert_eq!(ranged.last_seq, 25);
    assert_eq!(ranged.records_verified, 25 - from.seq);

    // A checkpoint that disagrees with the chain is reported.
    let forged = Checkpoint { seq: from.seq, hash: journal::genesis_hash("not this") };
    let report = verify_dir(
        dir.path(),
        VerifyOptions { from: Some(forged), until_seq: None, ..VerifyOptions::default() },
        &mut |_| {},
    )
    .unwrap();
    let problem = report.problem.expect("forged checkpoint detected");
    assert_eq!(problem.seq, from.seq);
    assert!(matches!(problem.kind, CorruptionKind::Checkpoint { .. }));
}

#[test]
fn losing_acknowledged_records_is_detected_through_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal =
        Journal::create(dir.path(), "n", Options { checkpoint_interval_records: 4, ..Options::default() }).unwrap();
    for i in 0..10u32 {
        journal.append_batch(&[i.to_le_bytes()]).unwrap();
    }
    drop(journal);
    // Cut the segment back to 2 whole records: checkpoints at 4 and 8 prove more existed.
    let seg = crate::segment_files(dir.path()).pop().unwrap();
    let keep = journal::SEGMENT_HEADER_BYTES + 2 * journal::frame_bytes(4);
    let bytes = fs::read(&seg).unwrap();
    fs::write(&seg, &bytes[..keep]).unwrap();
    match Journal::open(dir.path(), Options::default()) {
        Err(OpenError::Corrupt(c)) => assert!(matches!(c.kind, CorruptionKind::MissingRecords { head: 2 }), "{c}"),
        other => panic!("expected lost records to be detected, got {other:?}"),
    }
    let report = verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(matches!(report.problem.map(|p| p.kind), Some(CorruptionKind::MissingRecords { head: 2 })));
}

#[test]
fn corruption_in_a_sealed_segment_is_found_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", small_options()).unwrap();
    for i in 0..100u32 {
        journal.append_batch(&[format!("payload number {i}").into_bytes()]).unwrap();
    }
    drop(journal);
    let first = crate::segment_files(dir.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    let second_frame = journal::SEGMENT_HEADER_BYTES + journal::frame_bytes("payload number 0".len());
    bytes[second_frame + 40] ^= 0xff;
    fs::write(&first, bytes).unwrap();
    let mut seen_progress = false;
    let report = verify_dir(dir.path(), VerifyOptions::default(), &mut |_| seen_progress = true).unwrap();
    let problem = report.problem.expect("damage found");
    assert_eq!(problem.seq, 2);
    assert_eq!(problem.segment, first);
    assert!(seen_progress);
}

#[test]
fn a_segment_swapped_in_from_another_journal_breaks_the_chain() {
    // Two journals with the same identity and payloads but different times:
    // every segment is internally sound, but the second one does not link.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, t0) in [(a.path(), 1_000u64), (b.path(), 2_000)] {
        let mut journal = Journal::create(dir, "same", small_options()).unwrap();
        for i in 0..150u64 {
            journal.append_batch_at(t0 + i, &[format!("payload {i:04}").into_bytes()]).unwrap();
        }
    }
    let segments_a = crate::segment_files(a.path());
    let segments_b = crate::segment_files(b.path());
    assert!(segments_a.len() >= 3);
    fs::copy(&segments_b[1], &segments_a[1]).unwrap();
    for threads in [1, 2] {
        let report = verify_dir(a.path(), VerifyOptions { threads, ..VerifyOptions::default() }, &mut |_| {}).unwrap();
        let problem = report.problem.expect("swap detected");
        assert!(matches!(problem.kind, CorruptionKind::ChainLink { .. }), "{problem}");
        assert_eq!(problem.segment, segments_a[1]);
        assert_eq!(report.last_seq + 1, problem.seq);
    }
}

/// One thread (which reads the next segment while it checks one) and
/// several threads report the same: over damage anywhere, in any segment,
/// the same first problem, last sound record and count.
#[test]
fn one_thread_reading_ahead_and_several_threads_report_the_same_damage() {
    use rand::Rng;
    let (mut rng, _) = crate::seeded_rng("JOURNAL_VERIFY_SEED");
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", small_options()).unwrap();
    for i in 0..120u64 {
        let batch: Vec<Vec<u8>> = (0..1 + i % 3).map(|j| format!("payload {i} {j}").into_bytes()).collect();
        journal.append_batch_at(1_000 + i, &batch).unwrap();
    }
    drop(journal);
    let segments = crate::segment_files(dir.path());
    assert!(segments.len() >= 3);
    let report = |threads| verify_dir(dir.path(), VerifyOptions { threads, ..VerifyOptions::default() }, &mut |_| {});
    for round in 0..40 {
        let segment = &segments[rng.gen_range(0..segments.len())];
        let original = fs::read(segment).unwrap();
        let mut damaged = original.clone();
        let at = rng.gen_range(0..damaged.len());
        if (28..32).contains(&at) {
            continue; // The segment header's padding, which nothing reads.
        }
        damaged[at] ^= 1 << rng.gen_range(0..8);
        fs::write(segment, &damaged).unwrap();
        let (one, two) = (report(1).unwrap(), report(2).unwrap());
        assert!(one.problem.is_some(), "round {round}: a flip at byte {at} of {} went unnoticed", segment.display());
        assert_eq!(format!("{:?}", one.problem), format!("{:?}", two.problem), "round {round}");
        assert_eq!((one.last_seq, one.records_verified), (two.last_seq, two.records_verified), "round {round}");
        fs::write(segment, &original).unwrap();
    }
    assert!(report(1).unwrap().is_ok());
}

/// The segment index files in `dir`, in name order (the order of their segments).
fn index_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut indexes: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    indexes.sort();
    indexes
}

/// The fuzzer's finding (issue 13): a sealed segment's index was trusted
/// once its checksum matched, so an index with a valid checksum but wrong
/// contents (offsets out of order or past the end, a wrong count, a wrong
/// last hash) made open refuse a sound journal or reads panic. The index is
/// derived data: one that does not fit its segment is ignored and rebuilt.
#[test]
fn a_bad_index_with_a_valid_checksum_is_not_trusted() {
    fn rewrite(index: &[u8], edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = index[..index.len() - 4].to_vec();
        edit(&mut bytes);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }
    const COUNT_AT: usize = 24;
    const OFFSETS_AT: usize = 80;
    type Edit = (&'static str, fn(&mut Vec<u8>));
    let edits: [Edit; 5] = [
        ("offsets reversed", |b: &mut Vec<u8>| {
            let mut offsets: Vec<[u8; 4]> = b[OFFSETS_AT..].chunks(4).map(|c| c.try_into().unwrap()).collect();
            offsets.reverse();
            b.truncate(OFFSETS_AT);
            b.extend(offsets.concat());
        }),
        ("an offset past the end", |b: &mut Vec<u8>| {
            let last = b.len() - 4;
            b[last..].copy_from_slice(&u32::MAX.to_le_bytes());
        }),
        ("the last record left out", |b: &mut Vec<u8>| {
            let count = u64::from_le_bytes(b[COUNT_AT..COUNT_AT + 8].try_into().unwrap()) - 1;
            b[COUNT_AT..COUNT_AT + 8].copy_from_slice(&count.to_le_bytes());
            b.truncate(b.len() - 4);
        }),
        ("a wrong last hash", |b: &mut Vec<u8>| b[40] ^= 1),
        ("a wrong last time", |b: &mut Vec<u8>| b[72] ^= 1),
    ];
    for (what, edit) in edits {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), "n", small_options()).unwrap();
        let mut model = Vec::new();
        for i in 0..60u32 {
            let batch: Vec<Vec<u8>> = (0..3).map(|j| format!("record {i}/{j}").into_bytes()).collect();
            journal.append_batch(&batch).unwrap();
            model.extend(batch);
        }
        assert!(journal.segment_count() >= 3);
        drop(journal);
        let indexes = index_files(dir.path());
        let index = fs::read(&indexes[0]).unwrap();
        fs::write(&indexes[0], rewrite(&index, edit)).unwrap();
        let read_only = Journal::open_read_only(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(payloads(&read_only), model, "{what}");
        drop(read_only);
        let journal = Journal::open(dir.path(), small_options()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(payloads(&journal), model, "{what}");
        assert_eq!(journal.range(2, 40).unwrap().count(), 39, "{what}");
        drop(journal);
        // Open wrote a sound index again.
        assert_eq!(fs::read(&indexes[0]).unwrap(), index, "{what}: the index is rebuilt");
    }
}

/// The fuzzer's finding (issue 13): an empty last segment file whose name
/// is not the seq after the head was sound to `verify_dir` (a segment being
/// started when the node stopped) while open refused it (segments out of
/// order). Both now accept it only under the name the chain expects.
#[test]
fn an_empty_last_segment_with_a_wrong_name_is_refused_by_verify_as_by_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", Options::default()).unwrap();
    for i in 0..10u32 {
        journal.append_batch(&[format!("record {i}").into_bytes()]).unwrap();
    }
    drop(journal);
    let verify = || verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap();
    let wrong = dir.path().join(format!("{:020}.seg", 2));
    fs::write(&wrong, b"").unwrap();
    let report = verify();
    assert!(report.problem.is_some() && !report.is_ok(), "{report:?}");
    assert!(Journal::open_read_only(dir.path()).is_err());
    fs::remove_file(&wrong).unwrap();
    // Under the expected name it is a segment whose start was cut short.
    fs::write(dir.path().join(format!("{:020}.seg", 11)), b"CCNJ").unwrap();
    assert!(verify().is_ok());
    assert_eq!(Journal::open_read_only(dir.path()).unwrap().head().seq, 10);
    assert_eq!(Journal::open(dir.path(), Options::default()).unwrap().head().seq, 10);
}

/// An index can be checked when loaded only at its two ends: one whose last
/// offset names a well-formed frame nested in the payload of the segment's
/// real last record passes those checks and claims one record too many.
/// Open then finds that the next segment does not follow, and scans every
/// segment again instead of refusing a sound journal (issue 13).
#[test]
fn an_index_that_fits_its_ends_but_not_the_chain_is_ignored_on_a_second_pass() {
    const PAD: usize = 40;
    // A batch-end frame with no payload, as the format encodes it.
    fn frame(seq: u64, at_us: u64, hash: [u8; 32]) -> Vec<u8> {
        let mut body = vec![1u8];
        body.extend_from_slice(&seq.to_le_bytes());
        body.extend_from_slice(&at_us.to_le_bytes());
        body.extend_from_slice(&[0u8; 32]);
        body.extend_from_slice(&hash);
        let len = u32::try_from(body.len()).unwrap();
        let mut out = len.to_le_bytes().to_vec();
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), "n", small_options()).unwrap();
    let mut model = Vec::new();
    // Every record ends with a frame claiming the seq after its own.
    for _ in 0..80 {
        let next = journal.head().seq + 2;
        let payload = [vec![b'p'; PAD], frame(next, 7, [9; 32])].concat();
        journal.append_batch(std::slice::from_ref(&payload)).unwrap();
        model.push(payload);
    }
    assert!(journal.segment_count() >= 3);
    drop(journal);
    let indexes = index_files(dir.path());
    let index = fs::read(&indexes[0]).unwrap();
    let count = u64::from_le_bytes(index[24..32].try_into().unwrap());
    let last = u32::from_le_bytes(index[index.len() - 8..index.len() - 4].try_into().unwrap());
    let nested = last + u32::try_from(journal::FRAME_HEADER_BYTES + journal::BODY_FIXED_BYTES + PAD).unwrap();
    let mut lying = index[..index.len() - 4].to_vec();
    lying[24..32].copy_from_slice(&(count + 1).to_le_bytes());
    lying[40..72].copy_from_slice(&[9; 32]);
    lying[72..80].copy_from_slice(&7u64.to_le_bytes());
    lying.extend_from_slice(&nested.to_le_bytes());
    let crc = crc32c::crc32c(&lying);
    lying.extend_from_slice(&crc.to_le_bytes());
    fs::write(&indexes[0], &lying).unwrap();

    let read_only = Journal::open_read_only(dir.path()).expect("a sound journal opens");
    assert_eq!(payloads(&read_only), model);
    drop(read_only);
    let journal = Journal::open(dir.path(), small_options()).expect("a sound journal opens");
    assert_eq!(payloads(&journal), model);
    drop(journal);
    assert_eq!(fs::read(&indexes[0]).unwrap(), index, "the index is rebuilt");
}
