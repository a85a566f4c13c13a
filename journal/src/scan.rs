//! Walking the frames of one segment's bytes: pure, shared by open and verify.

use crate::error::CorruptionKind;
use crate::format::{self, FrameRead, Hash, SEGMENT_HEADER_BYTES};

/// The chain state just before a segment's first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainPoint {
    /// Seq of the last record before (0 at genesis).
    pub seq: u64,
    pub hash: Hash,
    pub recorded_at_us: u64,
}

/// What the caller wants checked beyond framing and checksums.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanPolicy {
    /// Recompute the blake3 hash of records with seq at or above this.
    pub rehash_from_seq: u64,
    /// Largest body a frame may have.
    pub max_body_bytes: usize,
    /// Stop after this seq as if the segment ended there.
    pub until_seq: u64,
}

/// A defect found while scanning, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanDefect {
    pub offset: u64,
    pub seq: u64,
    pub kind: CorruptionKind,
}

/// The result of scanning one segment.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    /// Offsets of the committed frames (those up to the last batch-end mark).
    pub offsets: Vec<u32>,
    /// Bytes of the segment that hold the header and committed frames.
    pub committed_len: u64,
    /// The chain state after the last committed record.
    pub end: ChainPoint,
    /// The chain state after the last valid record, committed or not.
    pub last_valid: ChainPoint,
    /// Complete, valid frames after the last batch-end mark (an unfinished batch).
    pub uncommitted_records: usize,
    /// Bytes after the last complete frame that do not form a frame (a torn write).
    pub torn_bytes: u64,
    /// The first defect, after which scanning stopped.
    pub defect: Option<ScanDefect>,
}

/// Scans `data`, the whole contents of a segment file whose header has
/// already been checked, calling `on_record` for every valid record in order.
/// Records of an unfinished batch are passed too: a caller that keeps records
/// must drop those past `end.seq`.
pub(crate) fn scan_segment(
    data: &[u8],
    start: ChainPoint,
    policy: ScanPolicy,
    mut on_record: impl FnMut(&format::Frame<'_>),
) -> SegmentScan {
    assert!(data.len() >= SEGMENT_HEADER_BYTES, "caller checks the header first");
    let mut scan = SegmentScan {
        offsets: Vec::new(),
        committed_len: to_u64(SEGMENT_HEADER_BYTES),
        end: start,
        last_valid: start,
        uncommitted_records: 0,
        torn_bytes: 0,
        defect: None,
    };
    // Offsets of frames seen since the last batch-end mark, and the chain
    // state they lead to; they become committed when a mark arrives.
    let mut pending: Vec<u32> = Vec::new();
    let mut cursor = start;
    let mut offset = SEGMENT_HEADER_BYTES;
    while cursor.seq < policy.until_seq {
        let expected_seq = cursor.seq + 1;
        match format::read_frame(&data[offset..], policy.max_body_bytes) {
            FrameRead::End => break,
            FrameRead::Torn => {
                scan.torn_bytes = to_u64(data.len() - offset);
                break;
            }
            FrameRead::Bad(defect) => {
                scan.defect =
                    Some(ScanDefect { offset: to_u64(offset), seq: expected_seq, kind: CorruptionKind::Frame(defect) });
                break;
            }
            FrameRead::Frame(frame) => {
                if let Some(kind) = check_link(&frame, &cursor, policy) {
                    scan.defect = Some(ScanDefect { offset: to_u64(offset), seq: expected_seq, kind });
                    break;
                }
                cursor = ChainPoint { seq: frame.seq, hash: frame.hash, recorded_at_us: frame.recorded_at_us };
                let frame_offset = u32::try_from(offset).expect("segment length fits in u32 (SEGMENT_BYTES_MAX)");
                pending.push(frame_offset);
                offset += frame.frame_len;
                if frame.batch_end {
                    scan.offsets.append(&mut pending);
                    scan.committed_len = to_u64(offset);
                    scan.end = cursor;
                }
                on_record(&frame);
            }
        }
    }
    scan.uncommitted_records = pending.len();
    scan.last_valid = cursor;
    scan
}

fn check_link(frame: &format::Frame<'_>, cursor: &ChainPoint, policy: ScanPolicy) -> Option<CorruptionKind> {
    if frame.seq != cursor.seq + 1 {
        return Some(CorruptionKind::SeqGap { found: frame.seq });
    }
    if frame.prev_hash != cursor.hash {
        return Some(CorruptionKind::ChainLink { expected: cursor.hash, found: frame.prev_hash });
    }
    if frame.recorded_at_us < cursor.recorded_at_us {
        return Some(CorruptionKind::TimeWentBack);
    }
    if frame.seq >= policy.rehash_from_seq && !frame.hash_is_valid() {
        return Some(CorruptionKind::Hash);
    }
    None
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64 on supported targets")
}
