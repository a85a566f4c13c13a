//! The journal's readers: segment frame scanning, the sealed-segment index
//! and the record iterator, through the public API on real files
//! (`Journal::open_read_only`, `RecordIter`, `verify_dir`).
//!
//! Input: a flags byte, then [`crate::parts`]: the first segment, the first
//! segment's index file (empty: none) and a second segment. The flags make
//! the target repair what checksums would otherwise catch, so the fuzzer
//! reaches the logic behind them: bit 0 recomputes every frame's checksum
//! and the segment headers', bit 1 rebuilds the hash chain (each frame's
//! `prev_hash` and `hash`), bit 2 the index checksum.
//!
//! Contract: no panic; whatever `open` accepts reads back consistently (every
//! record up to the head, each linking to the one before, or a read error);
//! and when `verify_dir` finds the journal sound, `open` must accept it and
//! read back exactly the records verify counted, ending at verify's hash.

use journal::{
    genesis_hash, record_hash, verify_dir, Hash, Journal, Options, VerifyOptions, BODY_FIXED_BYTES, FRAME_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};

const IDENTITY: &str = "fuzz";

pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let parts = crate::parts(rest);
    let mut seg1 = parts.first().map_or_else(Vec::new, |p| p.to_vec());
    let mut index = parts.get(1).map_or_else(Vec::new, |p| p.to_vec());
    let mut seg2 = parts.get(2).map(|p| p.to_vec());
    let mut prev = genesis_hash(IDENTITY);
    for seg in std::iter::once(&mut seg1).chain(seg2.as_mut()) {
        prev = repair(seg, flags, prev);
    }
    if flags & 4 != 0 && index.len() >= 4 {
        let body = index.len() - 4;
        let crc = crc32c::crc32c(&index[..body]);
        index[body..].copy_from_slice(&crc.to_le_bytes());
    }

    static SCRATCH: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = SCRATCH.get_or_init(|| crate::process_dir("journal")).path().join("journal");
    let _ = std::fs::remove_dir_all(&dir);
    drop(Journal::create(&dir, IDENTITY, Options::default()).expect("create"));
    std::fs::write(dir.join(segment_name(1, "seg")), &seg1).expect("write");
    if !index.is_empty() {
        std::fs::write(dir.join(segment_name(1, "idx")), &index).expect("write");
    }
    if let Some(seg2) = &seg2 {
        let first_seq = seg2.get(16..24).map_or(2, |b| u64::from_le_bytes(b.try_into().expect("8")));
        let first_seq = first_seq.clamp(2, 1 << 40);
        std::fs::write(dir.join(segment_name(first_seq, "seg")), seg2).expect("write");
    }

    let verified = verify_dir(&dir, VerifyOptions { threads: 1, ..VerifyOptions::default() }, &mut |_| {});
    let sound = verified.as_ref().is_ok_and(|r| r.is_ok() && r.unfinished_records == 0 && r.torn_bytes == 0);
    let opened = Journal::open_read_only(&dir);
    if sound {
        let report = verified.as_ref().expect("sound");
        let journal = opened.as_ref().unwrap_or_else(|e| panic!("verify finds the journal sound, open refuses: {e}"));
        let (count, last) = read_all(journal).unwrap_or_else(|e| panic!("verified journal fails to read: {e}"));
        assert_eq!(count, report.last_seq, "records read back differ from those verified");
        assert_eq!(journal.head().seq, report.last_seq, "open's head differs from verify's");
        if count > 0 {
            assert_eq!(last, report.last_hash, "the last record read is not the one verified");
        }
    } else if let Ok(journal) = &opened {
        // Open may accept a journal verify refuses (it trusts hashes below
        // its checkpoints, an index for sealed segments): reading must still
        // be safe, each record checked as it is read.
        let _ = read_all(journal);
    }
}

/// Reads every record, checking the chain; the count and the last hash.
fn read_all(journal: &Journal) -> Result<(u64, Hash), String> {
    let head = journal.head();
    let mut prev = journal.genesis();
    let mut count = 0u64;
    if head.seq == 0 {
        return Ok((0, prev));
    }
    for record in journal.iter_from(1).map_err(|e| e.to_string())? {
        let record = record.map_err(|e| e.to_string())?;
        count += 1;
        assert_eq!(record.seq, count, "records come back in seq order");
        assert_eq!(record.prev_hash, prev, "a record read back does not link to the one before");
        prev = record.hash;
    }
    assert_eq!(count, head.seq, "iteration ended before the head without an error");
    Ok((count, prev))
}

fn segment_name(first_seq: u64, extension: &str) -> String {
    format!("{first_seq:020}.{extension}")
}

/// Applies the flags' repairs to one segment; returns the last hash.
fn repair(seg: &mut [u8], flags: u8, mut prev: Hash) -> Hash {
    if seg.len() < SEGMENT_HEADER_BYTES {
        return prev;
    }
    if flags & 1 != 0 {
        let crc = crc32c::crc32c(&seg[..24]);
        seg[24..28].copy_from_slice(&crc.to_le_bytes());
    }
    let mut at = SEGMENT_HEADER_BYTES;
    while seg.len() >= at + FRAME_HEADER_BYTES + BODY_FIXED_BYTES {
        let body_len = u32::from_le_bytes(seg[at..at + 4].try_into().expect("4"));
        let Ok(len) = usize::try_from(body_len) else { break };
        if len < BODY_FIXED_BYTES || seg.len() < at + FRAME_HEADER_BYTES + len {
            break;
        }
        let body = at + FRAME_HEADER_BYTES;
        if flags & 2 != 0 {
            let seq = u64::from_le_bytes(seg[body + 1..body + 9].try_into().expect("8"));
            let time = u64::from_le_bytes(seg[body + 9..body + 17].try_into().expect("8"));
            seg[body + 17..body + 49].copy_from_slice(&prev.0);
            let hash = record_hash(&prev, seq, time, &seg[body + BODY_FIXED_BYTES..body + len]);
            seg[body + 49..body + 81].copy_from_slice(&hash.0);
        }
        prev = Hash(seg[body + 49..body + 81].try_into().expect("32"));
        if flags & 1 != 0 {
            seg[at + 4..at + 8].copy_from_slice(&(!body_len).to_le_bytes());
            let crc = crc32c::crc32c(&seg[body..body + len]);
            seg[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
        }
        at = body + len;
    }
    prev
}
