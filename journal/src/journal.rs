//! The journal: open, append with group commit, read.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{AppendError, Corruption, CorruptionKind, OpenError, ReadError};
use crate::format::{self, Checkpoint, FrameRead, Hash, Meta, Record, SegmentIndex, SEGMENT_HEADER_BYTES};
use crate::private::{create_private_dir_all, private_options};
use crate::scan::{self, to_u64, ChainPoint, ScanPolicy};
use crate::{
    CHECKPOINT_INTERVAL_RECORDS, IDENTITY_BYTES_MAX, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_PAYLOAD_BYTES,
    SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN,
};

pub(crate) const META_FILE: &str = "JOURNAL";
pub(crate) const LOCK_FILE: &str = "LOCK";
pub(crate) const CHECKPOINT_FILE: &str = "checkpoints";
const SEGMENT_EXTENSION: &str = "seg";
const INDEX_EXTENSION: &str = "idx";

/// Bytes read at once when iterating.
const READ_CHUNK_BYTES: u64 = 1 << 20;

/// Tunables that do not change the format.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A segment is sealed and a new one started when a batch would take it past this size.
    pub segment_bytes: u64,
    /// A checkpoint is recorded when the head is this many records past the last one.
    pub checkpoint_interval_records: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options { segment_bytes: SEGMENT_BYTES_DEFAULT, checkpoint_interval_records: CHECKPOINT_INTERVAL_RECORDS }
    }
}

impl Options {
    fn checked(self) -> Options {
        Options {
            segment_bytes: self.segment_bytes.clamp(SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX),
            checkpoint_interval_records: self.checkpoint_interval_records.max(1),
        }
    }
}

/// The last record of the journal (seq 0 and the genesis hash when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Seq of the last record.
    pub seq: u64,
    /// Its hash.
    pub hash: Hash,
    /// Its time, unix microseconds.
    pub recorded_at_us: u64,
}

/// What an acknowledged batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    /// Seq of the first record of the batch.
    pub first_seq: u64,
    /// The new head: the batch's last record.
    pub head: Head,
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    file: File,
    /// Offset of each record's frame, indexed by `seq - first_seq`.
    offsets: Vec<u32>,
    /// Bytes of header and committed frames.
    len: u64,
}

impl Segment {
    fn last_seq(&self) -> u64 {
        self.first_seq + to_u64(self.offsets.len()) - 1
    }

    fn contains(&self, seq: u64) -> bool {
        seq >= self.first_seq && seq < self.first_seq + to_u64(self.offsets.len())
    }

    /// Byte range of the frames for seqs `from..=to`, both in this segment.
    fn byte_range(&self, from: u64, to: u64) -> (u64, u64) {
        let start = u64::from(self.offsets[self.position(from)]);
        let end_idx = self.position(to) + 1;
        let end = self.offsets.get(end_idx).map_or(self.len, |&o| u64::from(o));
        (start, end)
    }

    fn position(&self, seq: u64) -> usize {
        usize::try_from(seq - self.first_seq).expect("segment record count fits in usize")
    }
}

/// An append-only, hash-chained, fdatasync'd log of opaque payloads.
///
/// One writer at a time (a lock file enforces it across processes). Reads
/// take `&self`; appends take `&mut self`.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    meta: Meta,
    options: Options,
    read_only: bool,
    poisoned: bool,
    segments: Vec<Segment>,
    head: Head,
    checkpoints: Vec<Checkpoint>,
    checkpoint_len: u64,
    /// Held for the journal's lifetime: the exclusive lock on `LOCK`.
    _lock: Option<File>,
    scratch: Vec<u8>,
}

impl Journal {
    /// Creates a new, empty journal in `dir` (created if missing) for `identity`.
    pub fn create(dir: &Path, identity: &str, options: Options) -> Result<Journal, OpenError> {
        if identity.is_empty() || identity.len() > IDENTITY_BYTES_MAX {
            return Err(OpenError::BadIdentity { len: identity.len(), max: IDENTITY_BYTES_MAX });
        }
        create_private_dir_all(dir).map_err(io_at(dir))?;
        let meta_path = dir.join(META_FILE);
        if meta_path.exists() {
            return Err(OpenError::AlreadyExists(dir.to_owned()));
        }
        let lock = lock(dir)?;
        let meta = Meta { identity: identity.to_owned(), genesis: format::genesis_hash(identity) };
        let tmp = dir.join("JOURNAL.tmp");
        write_synced(&tmp, &format::encode_meta(&meta)).map_err(io_at(&tmp))?;
        fs::rename(&tmp, &meta_path).map_err(io_at(&meta_path))?;
        sync_dir(dir)?;
        drop(lock);
        Journal::open(dir, options)
    }

    /// Opens `dir` if it holds a journal for `identity`, else creates one.
    pub fn open_or_create(dir: &Path, identity: &str, options: Options) -> Result<Journal, OpenError> {
        if !dir.join(META_FILE).exists() {
            return Journal::create(dir, identity, options);
        }
        let journal = Journal::open(dir, options)?;
        if journal.identity() != identity {
            return Err(OpenError::IdentityMismatch {
                expected: identity.to_owned(),
                found: journal.identity().to_owned(),
            });
        }
        Ok(journal)
    }

    /// Opens for writing, recovering from a crash: an unfinished last batch
    /// (torn frame, or complete frames without their batch's commit mark) is
    /// truncated and logged. Damage to complete records is refused.
    pub fn open(dir: &Path, options: Options) -> Result<Journal, OpenError> {
        Journal::open_mode(dir, options, false)
    }

    /// Opens for reading only: takes no lock, repairs nothing, ignores an
    /// unfinished tail. Appends fail with `AppendError::ReadOnly`.
    pub fn open_read_only(dir: &Path) -> Result<Journal, OpenError> {
        Journal::open_mode(dir, Options::default(), true)
    }

    fn open_mode(dir: &Path, options: Options, read_only: bool) -> Result<Journal, OpenError> {
        let meta_path = dir.join(META_FILE);
        let meta_bytes = match fs::read(&meta_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OpenError::NotFound(dir.to_owned())),
            Err(e) => return Err(OpenError::Io { path: meta_path, source: e }),
        };
        let meta = format::decode_meta(&meta_bytes)
            .map_err(|reason| OpenError::BadMeta { path: meta_path.clone(), reason })?;
        let lock = if read_only { None } else { Some(lock(dir)?) };
        let (checkpoints, checkpoint_len) = read_checkpoints(dir, read_only)?;
        let mut journal = Journal {
            dir: dir.to_owned(),
            head: Head { seq: 0, hash: meta.genesis, recorded_at_us: 0 },
            meta,
            options: options.checked(),
            read_only,
            poisoned: false,
            segments: Vec::new(),
            checkpoints,
            checkpoint_len,
            _lock: lock,
            scratch: Vec::new(),
        };
        let mut used_index = false;
        if let Err(error) = journal.load_segments(true, &mut used_index) {
            // An index is derived data, checked when loaded only at its two
            // ends (reading every frame is the scan it saves): when the chain
            // does not hold across the segments an index described, scan
            // every segment once more before calling the journal corrupt.
            if !used_index || !matches!(error, OpenError::Corrupt(_)) {
                return Err(error);
            }
            tracing::warn!(error = %error, "the journal does not hold together with its segment indexes; scanning every segment");
            journal.segments.clear();
            journal.head = Head { seq: 0, hash: journal.meta.genesis, recorded_at_us: 0 };
            journal.load_segments(false, &mut used_index)?;
        }
        journal.check_checkpoints()?;
        if journal.segments.is_empty() && !read_only {
            journal.start_segment(1).map_err(|e| match e {
                AppendError::Io { path, source } => OpenError::Io { path, source },
                other => unreachable!("start_segment fails only with i/o errors, got {other}"),
            })?;
        }
        Ok(journal)
    }

    /// Loads the segments in order, each sealed one through its index when
    /// `use_indexes` and the index fits (then sets `used_index`), else by
    /// scanning it.
    fn load_segments(&mut self, use_indexes: bool, used_index: &mut bool) -> Result<(), OpenError> {
        let paths = list_segments(&self.dir)?;
        let trusted_seq = self.checkpoints.last().map_or(0, |cp| cp.seq);
        let count = paths.len();
        for (position, (first_seq, path)) in paths.into_iter().enumerate() {
            let is_last = position + 1 == count;
            let corrupt = |offset: u64, seq: u64, kind: CorruptionKind| {
                OpenError::Corrupt(Corruption { segment: path.clone(), offset, seq, kind })
            };
            if first_seq != self.head.seq + 1 {
                return Err(corrupt(0, self.head.seq + 1, CorruptionKind::SegmentOrder));
            }
            let file = open_segment_file(&path, self.read_only)?;
            if !is_last && use_indexes {
                if let Some(segment) = self.load_indexed(&path, &file, first_seq)? {
                    *used_index = true;
                    self.segments.push(segment);
                    continue;
                }
            }
            let data = fs::read(&path).map_err(io_at(&path))?;
            match format::decode_segment_header(&data) {
                Ok(seq) if seq == first_seq => {}
                Ok(_) => return Err(corrupt(0, first_seq, CorruptionKind::SegmentOrder)),
                Err(format::HeaderDefect::Short) if is_last => {
                    // A crash while a new segment was being started: nothing in it was acknowledged.
                    if !self.read_only {
                        tracing::warn!(segment = %path.display(), "removing a segment whose header was never completed");
                        drop(file);
                        fs::remove_file(&path).map_err(io_at(&path))?;
                        sync_dir(&self.dir)?;
                    }
                    continue;
                }
                Err(defect) => return Err(corrupt(0, first_seq, CorruptionKind::SegmentHeader(defect))),
            }
            let start =
                ChainPoint { seq: self.head.seq, hash: self.head.hash, recorded_at_us: self.head.recorded_at_us };
            let policy = ScanPolicy {
                rehash_from_seq: trusted_seq.max(1),
                max_body_bytes: max_body_bytes(),
                until_seq: u64::MAX,
            };
            let scanned = scan::scan_segment(&data, start, policy, |_| {});
            if let Some(defect) = scanned.defect {
                return Err(corrupt(defect.offset, defect.seq, defect.kind));
            }
            let unfinished = scanned.uncommitted_records > 0 || scanned.torn_bytes > 0;
            if unfinished && !is_last {
                return Err(corrupt(
                    scanned.committed_len,
                    scanned.end.seq + 1,
                    CorruptionKind::UnfinishedSealedSegment,
                ));
            }
            if unfinished && !self.read_only {
                tracing::warn!(
                    segment = %path.display(),
                    offset = scanned.committed_len,
                    unfinished_records = scanned.uncommitted_records,
                    torn_bytes = scanned.torn_bytes,
                    "truncating an unfinished batch left by a crash (it was never acknowledged)"
                );
                file.set_len(scanned.committed_len).map_err(io_at(&path))?;
                file.sync_all().map_err(io_at(&path))?;
            }
            self.head =
                Head { seq: scanned.end.seq, hash: scanned.end.hash, recorded_at_us: scanned.end.recorded_at_us };
            let segment = Segment { first_seq, path, file, offsets: scanned.offsets, len: scanned.committed_len };
            if !is_last && !self.read_only {
                write_index(&segment, &self.head);
            }
            self.segments.push(segment);
        }
        Ok(())
    }

    /// Uses a sealed segment's index file when it matches the segment;
    /// `None` means it must be scanned.
    fn load_indexed(&mut self, path: &Path, file: &File, first_seq: u64) -> Result<Option<Segment>, OpenError> {
        let Ok(bytes) = fs::read(path.with_extension(INDEX_EXTENSION)) else { return Ok(None) };
        let Some(index) = format::decode_index(&bytes) else { return Ok(None) };
        let file_len = file.metadata().map_err(io_at(path))?.len();
        if index.first_seq != first_seq || index.segment_len != file_len || !format::index_offsets_fit(&index) {
            return Ok(None);
        }
        // The chain must link: the segment's first record names our head as its predecessor.
        let mut first = vec![0u8; 12 + format::BODY_FIXED_BYTES];
        let at = u64::from(index.offsets[0]);
        if file.read_exact_at(&mut first, at).is_err() || format::peek_seq(&first) != Some(first_seq) {
            return Ok(None);
        }
        let prev_hash = Hash(first[12 + 17..12 + 49].try_into().expect("32 bytes"));
        if prev_hash != self.head.hash {
            return Ok(None);
        }
        // And it must end where the index says: the last frame runs to the
        // end of the file, is a batch's last and carries the seq, hash and
        // time the index names (offsets in between are checked as they are
        // read, each frame's seq and link with it).
        let count = to_u64(index.offsets.len());
        let last_at = u64::from(*index.offsets.last().expect("offsets_fit checks there is one"));
        let Ok(last_len) = usize::try_from(file_len - last_at) else { return Ok(None) };
        if last_len > format::FRAME_HEADER_BYTES + max_body_bytes() {
            return Ok(None);
        }
        let mut last = vec![0u8; last_len];
        if file.read_exact_at(&mut last, last_at).is_err() {
            return Ok(None);
        }
        let FrameRead::Frame(frame) = format::read_frame(&last, max_body_bytes()) else { return Ok(None) };
        if frame.frame_len != last_len
            || !frame.batch_end
            || frame.seq != first_seq + count - 1
            || frame.hash != index.last_hash
            || frame.recorded_at_us != index.last_recorded_at_us
            || (count == 1 && frame.prev_hash != self.head.hash)
        {
            return Ok(None);
        }
        self.head =
            Head { seq: first_seq + count - 1, hash: index.last_hash, recorded_at_us: index.last_recorded_at_us };
        Ok(Some(Segment {
            first_seq,
            path: path.to_owned(),
            file: file.try_clone().map_err(io_at(path))?,
            offsets: index.offsets,
            len: file_len,
        }))
    }

    /// The newest checkpoint must match the record it names.
    fn check_checkpoints(&self) -> Result<(), OpenError> {
        let Some(checkpoint) = self.checkpoints.last().copied() else { return Ok(()) };
        let segment_path = self.segments.last().map_or_else(|| self.dir.clone(), |s| s.path.clone());
        if checkpoint.seq > self.head.seq {
            return Err(OpenError::Corrupt(Corruption {
                segment: segment_path,
                offset: 0,
                seq: checkpoint.seq,
                kind: CorruptionKind::MissingRecords { head: self.head.seq },
            }));
        }
        if checkpoint.seq == 0 {
            return Ok(());
        }
        let record = self.read(checkpoint.seq).map_err(|e| match e {
            ReadError::Io { path, source } => OpenError::Io { path, source },
            ReadError::Corrupt(c) => OpenError::Corrupt(c),
            ReadError::OutOfRange { .. } => unreachable!("checkpoint seq is within the head"),
        })?;
        if record.hash != checkpoint.hash {
            let segment = self.segment_for(checkpoint.seq).expect("seq is within the head");
            return Err(OpenError::Corrupt(Corruption {
                segment: segment.path.clone(),
                offset: u64::from(segment.offsets[segment.position(checkpoint.seq)]),
                seq: checkpoint.seq,
                kind: CorruptionKind::Checkpoint { expected: checkpoint.hash },
            }));
        }
        Ok(())
    }

    /// The node identity this journal was created for.
    pub fn identity(&self) -> &str {
        &self.meta.identity
    }

    /// The `prev_hash` of record 1.
    pub fn genesis(&self) -> Hash {
        self.meta.genesis
    }

    /// The last acknowledged record.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checkpoints recorded so far, oldest first.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of all segments.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Appends `payloads` as one batch stamped with the current time, and
    /// returns only once they are on disk (one `fdatasync`).
    pub fn append_batch<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<BatchAck, AppendError> {
        self.append_batch_at(now_us(), payloads)
    }

    /// As `append_batch`, stamped `recorded_at_us` (raised to the head's time
    /// if earlier, so time never goes back along the chain).
    pub fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        recorded_at_us: u64,
        payloads: &[P],
    ) -> Result<BatchAck, AppendError> {
        if self.read_only {
            return Err(AppendError::ReadOnly);
        }
        if self.poisoned {
            return Err(AppendError::Poisoned);
        }
        check_batch(payloads)?;
        let recorded_at_us = recorded_at_us.max(self.head.recorded_at_us);
        let mut buffer = std::mem::take(&mut self.scratch);
        buffer.clear();
        let first_seq = self.head.seq + 1;
        let mut offsets = Vec::with_capacity(payloads.len());
        let mut head = self.head;
        for (idx, payload) in payloads.iter().enumerate() {
            let payload = payload.as_ref();
            let seq = head.seq + 1;
            let hash = format::record_hash(&head.hash, seq, recorded_at_us, payload);
            offsets.push(buffer.len());
            format::encode_frame(
                &mut buffer,
                idx + 1 == payloads.len(),
                seq,
                recorded_at_us,
                &head.hash,
                &hash,
                payload,
            );
            head = Head { seq, hash, recorded_at_us };
        }
        let result = self.write_batch(&buffer, &offsets, head);
        self.scratch = buffer;
        result?;
        assert_eq!(self.head, head);
        assert_eq!(self.head.seq, first_seq + to_u64(payloads.len()) - 1);
        self.maybe_checkpoint();
        Ok(BatchAck { first_seq, head })
    }

    fn write_batch(&mut self, buffer: &[u8], offsets: &[usize], head: Head) -> Result<(), AppendError> {
        let batch_bytes = to_u64(buffer.len());
        let active = self.segments.last().expect("an open writable journal has a segment");
        if !active.offsets.is_empty() && active.len + batch_bytes > self.options.segment_bytes {
            self.seal_and_start(self.head.seq + 1)?;
        }
        let active = self.segments.last_mut().expect("an open writable journal has a segment");
        let base = active.len;
        let written = active.file.write_all_at(buffer, base).and_then(|()| active.file.sync_data());
        if let Err(source) = written {
            self.poisoned = true;
            return Err(AppendError::Io { path: active.path.clone(), source });
        }
        for &offset in offsets {
            let offset = base + to_u64(offset);
            active.offsets.push(u32::try_from(offset).expect("segment size stays under 4 GiB by SEGMENT_BYTES_MAX"));
        }
        active.len = base + batch_bytes;
        self.head = head;
        Ok(())
    }

    fn seal_and_start(&mut self, first_seq: u64) -> Result<(), AppendError> {
        let sealed = self.segments.last().expect("sealing needs a segment");
        write_index(sealed, &self.head);
        self.start_segment(first_seq)
    }

    fn start_segment(&mut self, first_seq: u64) -> Result<(), AppendError> {
        let path = self.dir.join(segment_file_name(first_seq));
        let started = (|| {
            let mut file = private_options().read(true).write(true).create_new(true).open(&path)?;
            file.write_all(&format::encode_segment_header(first_seq))?;
            file.sync_all()?;
            sync_dir_io(&self.dir)?;
            Ok::<File, std::io::Error>(file)
        })();
        match started {
            Ok(file) => {
                self.segments.push(Segment {
                    first_seq,
                    path,
                    file,
                    offsets: Vec::new(),
                    len: to_u64(SEGMENT_HEADER_BYTES),
                });
                Ok(())
            }
            Err(source) => {
                self.poisoned = true;
                Err(AppendError::Io { path, source })
            }
        }
    }

    /// Records a checkpoint when the head is far enough past the last one.
    /// Checkpoints are derived data: a lost one is harmless, so no fsync.
    fn maybe_checkpoint(&mut self) {
        let last = self.checkpoints.last().map_or(0, |cp| cp.seq);
        if self.head.seq - last < self.options.checkpoint_interval_records {
            return;
        }
        let checkpoint = Checkpoint { seq: self.head.seq, hash: self.head.hash };
        let path = self.dir.join(CHECKPOINT_FILE);
        let written = private_options()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .and_then(|file| file.write_all_at(&format::encode_checkpoint(&checkpoint), self.checkpoint_len));
        match written {
            Ok(()) => {
                self.checkpoints.push(checkpoint);
                self.checkpoint_len += to_u64(format::CHECKPOINT_ENTRY_BYTES);
            }
            Err(e) => tracing::warn!(error = %e, path = %path.display(), "could not record a checkpoint"),
        }
    }

    /// Reads record `seq`.
    pub fn read(&self, seq: u64) -> Result<Record, ReadError> {
        let mut records = self.range(seq, seq)?;
        records.next().expect("a range of one seq within the head yields one item")
    }

    /// Iterates records `from..=head`.
    pub fn iter_from(&self, from: u64) -> Result<RecordIter<'_>, ReadError> {
        if self.head.seq == 0 && from <= 1 {
            return Ok(RecordIter::empty(self));
        }
        if from == self.head.seq + 1 {
            return Ok(RecordIter::empty(self));
        }
        self.range(from, self.head.seq)
    }

    /// Iterates records `from..=to`. Each record's checksum, seq and link to
    /// its predecessor are checked; hashes are recomputed only by `verify`.
    pub fn range(&self, from: u64, to: u64) -> Result<RecordIter<'_>, ReadError> {
        for seq in [from, to] {
            if seq == 0 || seq > self.head.seq {
                return Err(ReadError::OutOfRange { seq, head: self.head.seq });
            }
        }
        if from > to {
            return Err(ReadError::OutOfRange { seq: from, head: to });
        }
        Ok(RecordIter { journal: self, next: from, end: to, buffer: Vec::new(), buffer_at: 0, prev_hash: None })
    }

    fn segment_for(&self, seq: u64) -> Option<&Segment> {
        let idx = self.segments.partition_point(|s| s.first_seq <= seq).checked_sub(1)?;
        let segment = &self.segments[idx];
        segment.contains(seq).then_some(segment)
    }
}

/// Records in seq order, read in chunks.
#[derive(Debug)]
pub struct RecordIter<'a> {
    journal: &'a Journal,
    next: u64,
    end: u64,
    /// Frames starting with seq `next` at byte `buffer_at` of `buffer`.
    buffer: Vec<u8>,
    buffer_at: usize,
    prev_hash: Option<Hash>,
}

impl RecordIter<'_> {
    fn empty(journal: &Journal) -> RecordIter<'_> {
        RecordIter { journal, next: 1, end: 0, buffer: Vec::new(), buffer_at: 0, prev_hash: None }
    }

    fn fill(&mut self) -> Result<(), ReadError> {
        let segment = self.journal.segment_for(self.next).expect("iteration stays within the head");
        let mut last = self.end.min(segment.last_seq());
        let (start, mut stop) = segment.byte_range(self.next, last);
        if stop - start > READ_CHUNK_BYTES {
            // Read about one chunk: the frames that start within it, at least one.
            let limit = start + READ_CHUNK_BYTES;
            let first = segment.position(self.next);
            let within = segment.offsets[first + 1..=segment.position(last)].partition_point(|&o| u64::from(o) < limit);
            last = self.next + to_u64(within);
            stop = segment.byte_range(self.next, last).1;
        }
        let len = usize::try_from(stop - start).expect("chunk fits in memory");
        self.buffer.resize(len, 0);
        segment
            .file
            .read_exact_at(&mut self.buffer, start)
            .map_err(|source| ReadError::Io { path: segment.path.clone(), source })?;
        self.buffer_at = 0;
        Ok(())
    }

    fn next_record(&mut self) -> Result<Record, ReadError> {
        if self.buffer_at >= self.buffer.len() {
            self.fill()?;
        }
        let segment = self.journal.segment_for(self.next).expect("iteration stays within the head");
        let offset = u64::from(segment.offsets[segment.position(self.next)]);
        let corrupt =
            |kind| ReadError::Corrupt(Corruption { segment: segment.path.clone(), offset, seq: self.next, kind });
        let frame = match format::read_frame(&self.buffer[self.buffer_at..], max_body_bytes()) {
            FrameRead::Frame(frame) => frame,
            FrameRead::Bad(defect) => return Err(corrupt(CorruptionKind::Frame(defect))),
            FrameRead::Torn | FrameRead::End => {
                return Err(corrupt(CorruptionKind::Frame(format::FrameDefect::Length)))
            }
        };
        if frame.seq != self.next {
            return Err(corrupt(CorruptionKind::SeqGap { found: frame.seq }));
        }
        if let Some(expected) = self.prev_hash {
            if frame.prev_hash != expected {
                return Err(corrupt(CorruptionKind::ChainLink { expected, found: frame.prev_hash }));
            }
        }
        self.buffer_at += frame.frame_len;
        self.prev_hash = Some(frame.hash);
        Ok(frame.to_record())
    }
}

impl Iterator for RecordIter<'_> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next > self.end {
            return None;
        }
        let item = self.next_record();
        match item {
            Ok(_) => self.next += 1,
            // Stop after an error: what follows cannot be trusted.
            Err(_) => self.end = 0,
        }
        Some(item)
    }
}

/// Checks a batch against the journal's limits (not empty, at most
/// `MAX_BATCH_RECORDS` records of at most `MAX_PAYLOAD_BYTES`, at most
/// `MAX_BATCH_BYTES` encoded): every store refuses the same batches.
pub fn check_batch<P: AsRef<[u8]>>(payloads: &[P]) -> Result<(), AppendError> {
    if payloads.is_empty() {
        return Err(AppendError::EmptyBatch);
    }
    if payloads.len() > MAX_BATCH_RECORDS {
        return Err(AppendError::TooManyRecords { records: payloads.len(), max: MAX_BATCH_RECORDS });
    }
    let mut bytes = 0usize;
    for (index, payload) in payloads.iter().enumerate() {
        let len = payload.as_ref().len();
        if len > MAX_PAYLOAD_BYTES {
            return Err(AppendError::PayloadTooLarge { index, bytes: len, max: MAX_PAYLOAD_BYTES });
        }
        bytes += format::frame_bytes(len);
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(AppendError::BatchTooLarge { bytes, max: MAX_BATCH_BYTES });
    }
    Ok(())
}

pub(crate) fn max_body_bytes() -> usize {
    format::BODY_FIXED_BYTES + MAX_PAYLOAD_BYTES
}

/// Writes the index of a sealed segment. It is derived data: on failure the
/// segment is scanned at the next open, so errors are only logged.
fn write_index(segment: &Segment, head: &Head) {
    assert!(!segment.offsets.is_empty(), "only segments with records are sealed");
    assert_eq!(segment.last_seq(), head.seq, "a segment is sealed at the head");
    let index = SegmentIndex {
        first_seq: segment.first_seq,
        segment_len: segment.len,
        last_hash: head.hash,
        last_recorded_at_us: head.recorded_at_us,
        offsets: segment.offsets.clone(),
    };
    let path = segment.path.with_extension(INDEX_EXTENSION);
    let tmp = segment.path.with_extension("idx.tmp");
    let written = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut file| file.write_all(&format::encode_index(&index)))
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(error = %e, path = %path.display(), "could not write a segment index");
    }
}

pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXTENSION}")
}

/// Segment files of `dir` by first seq.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OpenError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXTENSION) {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if let Ok(first_seq) = stem.parse::<u64>() {
            if stem.len() == 20 && first_seq > 0 {
                out.push((first_seq, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_checkpoints(dir: &Path, read_only: bool) -> Result<(Vec<Checkpoint>, u64), OpenError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(OpenError::Io { path, source: e }),
    };
    let (checkpoints, _) = format::decode_checkpoints(&bytes);
    // Entries must move forward; keep the prefix that does.
    let ordered = checkpoints.windows(2).position(|w| w[1].seq <= w[0].seq).map_or(checkpoints.len(), |i| i + 1);
    let checkpoints = checkpoints[..ordered].to_vec();
    let valid = ordered * format::CHECKPOINT_ENTRY_BYTES;
    if valid < bytes.len() && !read_only {
        tracing::warn!(path = %path.display(), "dropping a damaged checkpoint tail");
        let file = private_options().write(true).open(&path).map_err(io_at(&path))?;
        file.set_len(to_u64(valid)).map_err(io_at(&path))?;
    }
    Ok((checkpoints, to_u64(valid)))
}

fn open_segment_file(path: &Path, read_only: bool) -> Result<File, OpenError> {
    private_options().read(true).write(!read_only).open(path).map_err(io_at(path))
}

/// How long `open` keeps trying a lock that is held before it answers `Locked`.
///
/// The lock is an `flock` on an open file description. A process that forks
/// (to spawn any child) copies its descriptors, and the child holds them, and
/// so the lock, until it execs: descriptors are close-on-exec, but a journal
/// closed and reopened during that window would find its own lock still
/// taken. A real second writer holds the lock for its lifetime, so waiting a
/// little changes nothing for it but the delay before the error.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn lock(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let file = private_options().create(true).truncate(false).write(true).open(&path).map_err(io_at(&path))?;
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(source)) => return Err(OpenError::Io { path, source }),
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_options().write(true).create(true).truncate(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> Result<(), OpenError> {
    sync_dir_io(dir).map_err(io_at(dir))
}

fn sync_dir_io(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_owned(), source }
}

/// The wall clock in unix microseconds (0 before 1970, saturating far in the future).
pub fn now_us() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX)
}
