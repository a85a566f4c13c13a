//! A journal kept in memory, for the deterministic simulator (issue 13).
//!
//! [`MemDisk`] is a simulated disk: the same frames a segment file holds,
//! split into the bytes that are durable and the bytes still in the page
//! cache. [`MemJournal`] appends through it exactly as the segment files
//! do (frames, then a sync that makes them durable, and only then an
//! acknowledgement), so a simulated crash ([`MemDisk::crash`]) keeps what
//! was synced, may keep part of what was not (tearing the last frame), and
//! a sync can be made to fail ([`MemDisk::fail_syncs`]). Opening scans the
//! frames with the same reader as a segment file and drops a torn tail or an
//! unfinished batch.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::format::{self, encode_frame, genesis_hash, record_hash, FrameRead, Hash, Record};
use crate::journal::{check_batch, max_body_bytes, BatchAck, Head};

/// The disk of a simulated node: it outlives the node's journal, so a node
/// restarted after a crash reopens what the disk kept. Cheap to clone (one disk).
#[derive(Clone, Default)]
pub struct MemDisk(Arc<Mutex<DiskState>>);

#[derive(Default)]
struct DiskState {
    /// Set when the journal is created (kept durably at once).
    identity: Option<String>,
    /// Bytes that survive a crash.
    durable: Vec<u8>,
    /// Bytes written but not synced: readable, lost (or partly kept) on a crash.
    cached: Vec<u8>,
    /// Syncs still to fail.
    fail_syncs: u32,
    /// Syncs that succeeded.
    syncs: u64,
    /// Crashes so far: a journal opened before the last one writes nothing more.
    epoch: u64,
    /// A broken disk (the simulator's planted bug): a sync reports success
    /// but makes nothing durable.
    lies: bool,
}

impl std::fmt::Debug for MemDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let disk = self.lock();
        f.debug_struct("MemDisk")
            .field("identity", &disk.identity)
            .field("durable_bytes", &disk.durable.len())
            .field("cached_bytes", &disk.cached.len())
            .finish()
    }
}

/// One disk is equal only to itself.
impl PartialEq for MemDisk {
    fn eq(&self, other: &MemDisk) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for MemDisk {}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next `count` syncs fail (the bytes they should have made durable stay in the cache).
    pub fn fail_syncs(&self, count: u32) {
        self.lock().fail_syncs = count;
    }

    /// Bytes written but not synced.
    pub fn unsynced_bytes(&self) -> usize {
        self.lock().cached.len()
    }

    /// Bytes that survive a crash.
    pub fn durable_bytes(&self) -> usize {
        self.lock().durable.len()
    }

    /// Makes every sync from now on report success without making anything
    /// durable: a planted bug for the simulator's self-test (`sim`'s
    /// `lying_disk`), which its crash checker must catch.
    pub fn lie_about_syncs(&self) {
        self.lock().lies = true;
    }

    /// Syncs that succeeded so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// The machine loses power: the first `keep_unsynced` bytes of the
    /// unsynced ones reach the disk (more than there are keeps them all; a
    /// cut inside a frame is a torn write), the rest is lost.
    pub fn crash(&self, keep_unsynced: usize) {
        let mut disk = self.lock();
        let keep = keep_unsynced.min(disk.cached.len());
        let kept: Vec<u8> = disk.cached[..keep].to_vec();
        disk.durable.extend_from_slice(&kept);
        disk.cached.clear();
        disk.epoch += 1;
    }
}

/// Why the memory journal could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// The batch breaks the journal's limits (the same as the segment files').
    #[error(transparent)]
    Batch(#[from] crate::AppendError),
    /// The simulated sync failed; the journal is poisoned until reopened.
    #[error("simulated fdatasync failure")]
    SyncFailed,
    /// An earlier sync failed.
    #[error("an earlier write failed; reopen the journal to recover")]
    Poisoned,
    /// The process that opened the journal crashed since: it writes nothing more.
    #[error("the simulated process crashed")]
    Crashed,
    /// Opened read-only.
    #[error("journal is open read-only")]
    ReadOnly,
    /// The disk holds another node's journal, or none for a read-only open.
    #[error("{0}")]
    Identity(String),
    /// A frame on the disk is damaged (not a torn tail).
    #[error("journal corruption at byte {offset}: {defect}")]
    Corrupt {
        /// Where.
        offset: usize,
        /// What.
        defect: format::FrameDefect,
    },
    /// A record outside the journal was asked for.
    #[error("seq {seq} is not in the journal (head is {head})")]
    OutOfRange {
        /// The seq asked for.
        seq: u64,
        /// The head.
        head: u64,
    },
}

/// A journal on a [`MemDisk`]; implements [`crate::Store`].
#[derive(Debug)]
pub struct MemJournal {
    disk: MemDisk,
    identity: String,
    genesis: Hash,
    records: Vec<Record>,
    head: Head,
    read_only: bool,
    poisoned: bool,
    /// The disk's crash count when opened.
    epoch: u64,
}

impl MemJournal {
    /// Opens the journal on `disk`, creating it for `identity` on an empty
    /// disk. A torn or unfinished tail (after a crash) is cut off the disk.
    pub fn open(disk: &MemDisk, identity: &str) -> Result<MemJournal, MemError> {
        {
            let mut state = disk.lock();
            match &state.identity {
                None => state.identity = Some(identity.to_owned()),
                Some(found) if found != identity => {
                    return Err(MemError::Identity(format!(
                        "the disk holds the journal of {found:?}, not {identity:?}"
                    )))
                }
                Some(_) => {}
            }
        }
        MemJournal::load(disk, false)
    }

    /// Opens the journal on `disk` without writing (a second reader).
    pub fn open_read_only(disk: &MemDisk) -> Result<MemJournal, MemError> {
        MemJournal::load(disk, true)
    }

    fn load(disk: &MemDisk, read_only: bool) -> Result<MemJournal, MemError> {
        let mut state = disk.lock();
        let identity = state.identity.clone().ok_or_else(|| MemError::Identity("the disk holds no journal".into()))?;
        let genesis = genesis_hash(&identity);
        // What a reader sees: the durable bytes, then the cached ones.
        let mut bytes = state.durable.clone();
        bytes.extend_from_slice(&state.cached);
        let mut records = Vec::new();
        let mut batch = Vec::new();
        let (mut offset, mut complete) = (0, 0);
        let mut prev = Head { seq: 0, hash: genesis, recorded_at_us: 0 };
        loop {
            match format::read_frame(&bytes[offset..], max_body_bytes()) {
                FrameRead::Frame(frame) => {
                    let record = frame.to_record();
                    let follows = record.seq == prev.seq + 1 && record.prev_hash == prev.hash && record.hash_is_valid();
                    if !follows {
                        return Err(MemError::Corrupt { offset, defect: format::FrameDefect::Checksum });
                    }
                    offset += frame.frame_len;
                    prev = Head { seq: record.seq, hash: record.hash, recorded_at_us: record.recorded_at_us };
                    batch.push(record);
                    if frame.batch_end {
                        records.append(&mut batch);
                        complete = offset;
                    }
                }
                FrameRead::End | FrameRead::Torn => break,
                FrameRead::Bad(defect) => return Err(MemError::Corrupt { offset, defect }),
            }
        }
        if !read_only {
            // Recovery cuts the tail, as the segment files' open does, and
            // what was read is now on the disk.
            bytes.truncate(complete);
            state.durable = bytes;
            state.cached.clear();
        }
        let head = records.last().map_or(Head { seq: 0, hash: genesis, recorded_at_us: 0 }, |r: &Record| Head {
            seq: r.seq,
            hash: r.hash,
            recorded_at_us: r.recorded_at_us,
        });
        let epoch = state.epoch;
        drop(state);
        Ok(MemJournal { disk: disk.clone(), identity, genesis, records, head, read_only, poisoned: false, epoch })
    }

    fn append(&mut self, recorded_at_us: u64, payloads: &[impl AsRef<[u8]>]) -> Result<BatchAck, MemError> {
        if self.read_only {
            return Err(MemError::ReadOnly);
        }
        if self.poisoned {
            return Err(MemError::Poisoned);
        }
        check_batch(payloads)?;
        let at = recorded_at_us.max(self.head.recorded_at_us);
        let mut bytes = Vec::new();
        let mut prev = self.head;
        let mut new = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.iter().enumerate() {
            let payload = payload.as_ref();
            let seq = prev.seq + 1;
            let hash = record_hash(&prev.hash, seq, at, payload);
            encode_frame(&mut bytes, i + 1 == payloads.len(), seq, at, &prev.hash, &hash, payload);
            new.push(Record { seq, recorded_at_us: at, prev_hash: prev.hash, hash, payload: payload.to_vec() });
            prev = Head { seq, hash, recorded_at_us: at };
        }
        let mut disk = self.disk.lock();
        if disk.epoch != self.epoch {
            return Err(MemError::Crashed);
        }
        disk.cached.extend_from_slice(&bytes);
        if disk.fail_syncs > 0 {
            disk.fail_syncs -= 1;
            self.poisoned = true;
            return Err(MemError::SyncFailed);
        }
        if !disk.lies {
            let cached = std::mem::take(&mut disk.cached);
            disk.durable.extend_from_slice(&cached);
        }
        disk.syncs += 1;
        drop(disk);
        let first_seq = self.head.seq + 1;
        self.records.extend(new);
        self.head = prev;
        Ok(BatchAck { first_seq, head: prev })
    }

    fn slice(&self, from: u64, to: u64) -> Result<std::vec::IntoIter<Result<Record, MemError>>, MemError> {
        let head = self.head.seq;
        if from == 0 || from > to.saturating_add(1) || to > head {
            return Err(MemError::OutOfRange { seq: if to > head { to } else { from }, head });
        }
        let (from, to) = (usize::try_from(from - 1).unwrap_or(usize::MAX), usize::try_from(to).unwrap_or(usize::MAX));
        let records: Vec<Result<Record, MemError>> = self.records[from..to].iter().cloned().map(Ok).collect();
        Ok(records.into_iter())
    }
}

impl crate::Store for MemJournal {
    type AppendError = MemError;
    type ReadError = MemError;
    type Records<'a> = std::vec::IntoIter<Result<Record, MemError>>;

    fn identity(&self) -> &str {
        &self.identity
    }

    fn genesis(&self) -> Hash {
        self.genesis
    }

    fn head(&self) -> Head {
        self.head
    }

    fn append_batch_at<P: AsRef<[u8]>>(&mut self, recorded_at_us: u64, payloads: &[P]) -> Result<BatchAck, MemError> {
        self.append(recorded_at_us, payloads)
    }

    fn range(&self, from: u64, to: u64) -> Result<Self::Records<'_>, MemError> {
        self.slice(from, to)
    }

    fn iter_from(&self, from: u64) -> Result<Self::Records<'_>, MemError> {
        if from == self.head.seq + 1 {
            return Ok(Vec::new().into_iter());
        }
        self.slice(from, self.head.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store as _;

    #[test]
    fn synced_batches_survive_a_crash_and_unsynced_ones_do_not() {
        let disk = MemDisk::new();
        let mut journal = MemJournal::open(&disk, "n").expect("open");
        journal.append_batch_at(5, &[b"a".as_slice(), b"b"]).expect("append");
        disk.fail_syncs(1);
        assert!(matches!(journal.append_batch_at(6, &[b"c"]), Err(MemError::SyncFailed)));
        assert!(matches!(journal.append_batch_at(6, &[b"d"]), Err(MemError::Poisoned)));
        assert!(disk.unsynced_bytes() > 0);
        // Half the unsynced frame reaches the disk: a torn write, cut at open.
        disk.crash(disk.unsynced_bytes() / 2);
        let journal = MemJournal::open(&disk, "n").expect("reopen");
        assert_eq!(journal.head().seq, 2);
        let payloads: Vec<Vec<u8>> = journal.iter_from(1).expect("iter").map(|r| r.expect("record").payload).collect();
        assert_eq!(payloads, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(disk.unsynced_bytes(), 0);
    }

    #[test]
    fn an_unsynced_batch_that_reached_the_disk_whole_is_kept() {
        let disk = MemDisk::new();
        let mut journal = MemJournal::open(&disk, "n").expect("open");
        disk.fail_syncs(1);
        assert!(journal.append_batch_at(5, &[b"a".as_slice(), b"b"]).is_err());
        disk.crash(usize::MAX);
        let mut journal = MemJournal::open(&disk, "n").expect("reopen");
        assert_eq!(journal.head().seq, 2, "the write reached the disk although its sync failed");
        journal.append_batch_at(1, &[b"c"]).expect("append after recovery");
        assert_eq!(journal.head().recorded_at_us, 5, "time never goes back");
        assert!(MemJournal::open(&disk, "other").is_err(), "another node's disk");
    }

    #[test]
    fn a_journal_opened_before_a_crash_writes_nothing_after_it() {
        let disk = MemDisk::new();
        let mut old = MemJournal::open(&disk, "n").expect("open");
        old.append_batch_at(5, &[b"a"]).expect("append");
        disk.crash(0);
        let mut new = MemJournal::open(&disk, "n").expect("reopen");
        assert!(matches!(old.append_batch_at(6, &[b"zombie"]), Err(MemError::Crashed)));
        new.append_batch_at(6, &[b"b"]).expect("the restarted node writes");
        assert_eq!(MemJournal::open_read_only(&disk).expect("read").head().seq, 2);
    }
}
