//! Full verification of a journal directory, independent of `Journal::open`:
//! works on a damaged journal and never writes.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Corruption, CorruptionKind};
use crate::format::{self, Checkpoint, Hash};
use crate::journal::{list_segments, max_body_bytes, CHECKPOINT_FILE, META_FILE};
use crate::scan::{self, to_u64, ChainPoint, ScanPolicy};

/// How often (in records) the progress callback is called.
const PROGRESS_EVERY_RECORDS: u64 = 1 << 16;

/// What to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Start after this trusted point instead of at genesis: records up to
    /// and including `seq` are not rehashed, but the record at `seq` must
    /// carry this hash.
    pub from: Option<Checkpoint>,
    /// Stop after this seq.
    pub until_seq: Option<u64>,
}

/// Progress so far.
#[derive(Debug, Clone, Copy)]
pub struct VerifyProgress {
    /// Records checked.
    pub records: u64,
    /// Bytes of segment files read.
    pub bytes_read: u64,
    /// Bytes of all segment files.
    pub bytes_total: u64,
}

/// The outcome of a verification. `problem` is `None` when the chain is sound.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The journal's identity.
    pub identity: String,
    /// Records whose hash was recomputed and found right.
    pub records_verified: u64,
    /// The last sound record reached (seq 0 and genesis if none).
    pub last_seq: u64,
    /// Its hash.
    pub last_hash: Hash,
    /// Segment files read.
    pub segments: usize,
    /// Bytes of all segment files.
    pub bytes: u64,
    /// The first damage found.
    pub problem: Option<Corruption>,
    /// Records of an unfinished last batch (never acknowledged; removed at the next open).
    pub unfinished_records: usize,
    /// Bytes of a torn last frame (never acknowledged; removed at the next open).
    pub torn_bytes: u64,
}

impl VerifyReport {
    /// Whether no damage was found.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// A journal that cannot be verified at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No journal meta file.
    #[error("no journal in {0}")]
    NotFound(PathBuf),
    /// The meta file is unreadable.
    #[error("{path} is not a readable ccnode journal: {reason}")]
    BadMeta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Verifies the journal in `dir`: framing, checksums, dense seqs, chain
/// links, every record hash from the start point, time order, and the
/// recorded checkpoints. Reports the first bad seq.
pub fn verify_dir(
    dir: &Path,
    options: VerifyOptions,
    progress: &mut dyn FnMut(&VerifyProgress),
) -> Result<VerifyReport, VerifyError> {
    let meta_path = dir.join(META_FILE);
    let meta_bytes = fs::read(&meta_path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => VerifyError::NotFound(dir.to_owned()),
        _ => VerifyError::Io { path: meta_path.clone(), source },
    })?;
    let meta = format::decode_meta(&meta_bytes).map_err(|reason| VerifyError::BadMeta { path: meta_path, reason })?;
    let segments = list_segments(dir)
        .map_err(|e| VerifyError::Io { path: dir.to_owned(), source: std::io::Error::other(e.to_string()) })?;
    let mut bytes_total = 0;
    for (_, path) in &segments {
        bytes_total += fs::metadata(path).map_err(|source| VerifyError::Io { path: path.clone(), source })?.len();
    }
    let mut report = VerifyReport {
        identity: meta.identity.clone(),
        records_verified: 0,
        last_seq: 0,
        last_hash: meta.genesis,
        segments: 0,
        bytes: bytes_total,
        problem: None,
        unfinished_records: 0,
        torn_bytes: 0,
    };
    // The recorded checkpoints and the trusted starting point must all match the chain.
    let mut expected_hashes: HashMap<u64, Hash> =
        read_checkpoints(dir).into_iter().map(|cp| (cp.seq, cp.hash)).collect();
    if let Some(cp) = options.from.filter(|cp| cp.seq > 0) {
        expected_hashes.insert(cp.seq, cp.hash);
    }
    let mut walk = Walk {
        options,
        expected_hashes,
        cursor: ChainPoint { seq: 0, hash: meta.genesis, recorded_at_us: 0 },
        bytes_read: 0,
        bytes_total,
        progress,
    };
    let start_idx = walk.start_segment(&segments);
    for (position, (first_seq, path)) in segments.iter().enumerate().skip(start_idx) {
        report.segments += 1;
        let is_last = position + 1 == segments.len();
        let outcome = walk.segment(*first_seq, path, is_last, position == start_idx, &mut report)?;
        if outcome == Flow::Stop {
            break;
        }
    }
    walk.check_remaining_checkpoints(&segments, &mut report);
    report.last_seq = walk.cursor.seq;
    report.last_hash = walk.cursor.hash;
    Ok(report)
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

struct Walk<'p> {
    options: VerifyOptions,
    expected_hashes: HashMap<u64, Hash>,
    cursor: ChainPoint,
    bytes_read: u64,
    bytes_total: u64,
    progress: &'p mut dyn FnMut(&VerifyProgress),
}

impl Walk<'_> {
    /// The segment to start from: the one holding the record after the
    /// trusted checkpoint, or the first.
    fn start_segment(&self, segments: &[(u64, PathBuf)]) -> usize {
        match self.options.from {
            None => 0,
            Some(cp) => segments.partition_point(|(first, _)| *first <= cp.seq.max(1)).saturating_sub(1),
        }
    }

    fn segment(
        &mut self,
        first_seq: u64,
        path: &Path,
        is_last: bool,
        is_start: bool,
        report: &mut VerifyReport,
    ) -> Result<Flow, VerifyError> {
        let corrupt = |offset, seq, kind| Some(Corruption { segment: path.to_owned(), offset, seq, kind });
        let data = fs::read(path).map_err(|source| VerifyError::Io { path: path.to_owned(), source })?;
        self.bytes_read += to_u64(data.len());
        match format::decode_segment_header(&data) {
            Ok(seq) if seq == first_seq => {}
            Ok(_) => {
                report.problem = corrupt(0, first_seq, CorruptionKind::SegmentOrder);
                return Ok(Flow::Stop);
            }
            Err(format::HeaderDefect::Short) if is_last => {
                report.torn_bytes = to_u64(data.len());
                return Ok(Flow::Stop);
            }
            Err(defect) => {
                report.problem = corrupt(0, first_seq, CorruptionKind::SegmentHeader(defect));
                return Ok(Flow::Stop);
            }
        }
        let rehash_from_seq = self.options.from.map_or(1, |cp| cp.seq + 1);
        if is_start && self.options.from.is_some() {
            // Start from the chain point the segment's first record names.
            let Some(prev_hash) = first_prev_hash(&data) else {
                report.problem = corrupt(
                    to_u64(format::SEGMENT_HEADER_BYTES),
                    first_seq,
                    CorruptionKind::Frame(format::FrameDefect::Length),
                );
                return Ok(Flow::Stop);
            };
            self.cursor = ChainPoint { seq: first_seq - 1, hash: prev_hash, recorded_at_us: 0 };
        } else if first_seq != self.cursor.seq + 1 {
            report.problem = corrupt(0, self.cursor.seq + 1, CorruptionKind::SegmentOrder);
            return Ok(Flow::Stop);
        }
        let policy = ScanPolicy {
            rehash_from_seq,
            max_body_bytes: max_body_bytes(),
            until_seq: self.options.until_seq.unwrap_or(u64::MAX),
        };
        let mut records = 0u64;
        let mut checkpoint_problem = None;
        let (bytes_read, bytes_total) = (self.bytes_read, self.bytes_total);
        let verified_before = report.records_verified;
        let expected_hashes = &self.expected_hashes;
        let progress = &mut self.progress;
        let scanned = scan::scan_segment(&data, self.cursor, policy, |frame| {
            if frame.seq >= rehash_from_seq {
                records += 1;
                if records.is_multiple_of(PROGRESS_EVERY_RECORDS) {
                    progress(&VerifyProgress { records: verified_before + records, bytes_read, bytes_total });
                }
            }
            if checkpoint_problem.is_none() {
                if let Some(expected) = expected_hashes.get(&frame.seq).filter(|h| **h != frame.hash) {
                    checkpoint_problem = Some((frame.seq, CorruptionKind::Checkpoint { expected: *expected }));
                }
            }
        });
        let reached_until = scanned.last_valid.seq == policy.until_seq;
        let end = if reached_until { scanned.last_valid } else { scanned.end };
        report.records_verified += end.seq.saturating_sub(self.cursor.seq.max(rehash_from_seq - 1));
        self.cursor = end;
        (self.progress)(&VerifyProgress { records: report.records_verified, bytes_read, bytes_total });
        if let Some(defect) = scanned.defect {
            report.problem = corrupt(defect.offset, defect.seq, defect.kind);
            return Ok(Flow::Stop);
        }
        if let Some((seq, kind)) = checkpoint_problem {
            report.problem = corrupt(0, seq, kind);
            return Ok(Flow::Stop);
        }
        if reached_until {
            return Ok(Flow::Stop);
        }
        if scanned.uncommitted_records > 0 || scanned.torn_bytes > 0 {
            if !is_last {
                report.problem = corrupt(scanned.committed_len, end.seq + 1, CorruptionKind::UnfinishedSealedSegment);
                return Ok(Flow::Stop);
            }
            report.unfinished_records = scanned.uncommitted_records;
            report.torn_bytes = scanned.torn_bytes;
        }
        Ok(Flow::Continue)
    }

    fn check_remaining_checkpoints(&self, segments: &[(u64, PathBuf)], report: &mut VerifyReport) {
        if report.problem.is_some() || self.options.until_seq.is_some() {
            return;
        }
        if let Some((&seq, _)) =
            self.expected_hashes.iter().filter(|(&seq, _)| seq > self.cursor.seq).min_by_key(|(&s, _)| s)
        {
            let segment = segments.last().map_or_else(PathBuf::new, |(_, p)| p.clone());
            report.problem = Some(Corruption {
                segment,
                offset: 0,
                seq,
                kind: CorruptionKind::MissingRecords { head: self.cursor.seq },
            });
        }
    }
}

fn first_prev_hash(data: &[u8]) -> Option<Hash> {
    let at = format::SEGMENT_HEADER_BYTES + format::FRAME_HEADER_BYTES + 17;
    data.get(at..at + 32).map(|bytes| Hash(bytes.try_into().expect("32 bytes")))
}

fn read_checkpoints(dir: &Path) -> Vec<Checkpoint> {
    fs::read(dir.join(CHECKPOINT_FILE)).map(|bytes| format::decode_checkpoints(&bytes).0).unwrap_or_default()
}
