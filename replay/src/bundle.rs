//! The audit bundle: a self-contained, verifiable copy of a journal prefix
//! (format in replay/README.md, pinned by `tests/fixtures/golden-v1.ccaudit`).
//!
//! ```text
//! header      "CCNAUDIT" | version u32 (=1) | identity_len u32 | identity (UTF-8)
//!             | genesis [32] | record_count u64
//! checkpoints count u32 | count × ( seq u64 | hash [32] )   (increasing seqs)
//! records     record_count × ( seq u64 | recorded_at_us u64 | prev_hash [32]
//!                              | hash [32] | payload_len u32 | payload )
//! trailer     "CCNAEND1" | head_seq u64 | head_hash [32]
//! ```
//!
//! Integers are little endian. Every field is cross-checked by the auditor:
//! genesis = `journal::genesis_hash(identity)`; records are dense from seq 1,
//! each `prev_hash` is the previous record's hash (the genesis for seq 1),
//! times never decrease, each hash is recomputed with `journal::record_hash`;
//! each checkpoint names a record in the bundle and carries its hash; the
//! trailer repeats the last record's seq and hash, and nothing follows it.
//! The bundle proves the history up to `head_hash`; comparing that hash with
//! one obtained out of band (the node's event feed, a published checkpoint)
//! is what ties it to the node.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use journal::{genesis_hash, record_hash, Checkpoint, Hash, Store, MAX_PAYLOAD_BYTES};
use ledger::{decode_event, Balances, Event, State};

use projections::{Finding, Projections};

use crate::signatures::Signatures;
use crate::{Progress, PROGRESS_EVERY_RECORDS};

/// First bytes of a bundle.
pub const MAGIC: &[u8; 8] = b"CCNAUDIT";
/// First bytes of the trailer.
pub const TRAILER_MAGIC: &[u8; 8] = b"CCNAEND1";
/// The only format version so far.
pub const BUNDLE_VERSION: u32 = 1;
/// Bytes of a record before its payload.
pub const RECORD_FIXED_BYTES: usize = 8 + 8 + 32 + 32 + 4;
/// Longest identity accepted.
pub const IDENTITY_BYTES_MAX: usize = journal::IDENTITY_BYTES_MAX;

const IO_BUFFER_BYTES: usize = 1 << 20;

/// Damage found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}at byte {offset}: {what}", seq.map(|s| format!("seq {s}: ")).unwrap_or_default())]
pub struct BundleDamage {
    /// The record concerned, if the damage is in (or right after) a record.
    pub seq: Option<u64>,
    /// Byte offset in the file where the bad field starts.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

/// Why an audit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bundle is damaged or was tampered with.
    #[error("bundle damaged: {0}")]
    Damage(#[from] BundleDamage),
    /// A record's payload is not an event.
    #[error("seq {seq}: undecodable event: {detail}")]
    Decode {
        /// Which record.
        seq: u64,
        /// Why.
        detail: String,
    },
    /// The events break the ledger's rules.
    #[error("ledger inconsistent at {0}")]
    Ledger(#[from] Finding),
}

impl AuditError {
    /// The seq the failure is about, if any.
    pub fn seq(&self) -> Option<u64> {
        match self {
            AuditError::Io { .. } => None,
            AuditError::Damage(d) => d.seq,
            AuditError::Decode { seq, .. } => Some(*seq),
            AuditError::Ledger(f) => Some(f.seq),
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading the journal failed (from whichever store keeps it).
    #[error("reading the journal: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
    /// A record's hash does not match its contents: the journal is damaged.
    #[error("seq {seq}: the journal record's hash does not match its contents; run `ccnode verify`")]
    Tampered {
        /// Which record.
        seq: u64,
    },
    /// `--until` beyond the head.
    #[error("seq {seq} is beyond the journal head {head}")]
    BeyondHead {
        /// Asked for.
        seq: u64,
        /// Head.
        head: u64,
    },
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records written.
    pub records: u64,
    /// Checkpoints written.
    pub checkpoints: usize,
    /// Hash of the last record (the genesis if none).
    pub head_hash: Hash,
    /// Bytes written.
    pub bytes: u64,
}

/// What an audit established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    /// Node identity.
    pub identity: String,
    /// Genesis hash.
    pub genesis: Hash,
    /// Records verified.
    pub records: u64,
    /// Last seq and hash.
    pub head_seq: u64,
    /// Hash of the last record.
    pub head_hash: Hash,
    /// Time of the first and last record (unix µs).
    pub first_at_us: u64,
    /// Time of the last record (unix µs).
    pub last_at_us: u64,
    /// Checkpoints verified.
    pub checkpoints: usize,
    /// Signed checkpoints (issue 11) whose root and signature were verified.
    pub signed_checkpoints: u64,
    /// Accounts at the end.
    pub accounts: usize,
    /// Transactions per state at the end.
    pub transactions: [(State, u64); 5],
    /// Events that changed balances (each checked for zero sum and limits).
    pub bookings: u64,
    /// Sums of all balances at the end (zero).
    pub sums: Balances,
    /// Bytes read.
    pub bytes: u64,
}

/// Writes records `1..=until` (default: the head) of `journal`, with its
/// identity, genesis and checkpoints, to `out` (via `out.tmp`, renamed when
/// complete and synced). Every record's hash is recomputed on the way: a
/// damaged journal is refused, never exported.
pub fn export_to_file<S: Store>(
    journal: &S,
    until: Option<u64>,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportSummary, ExportError> {
    let head = journal.head().seq;
    let last = until.unwrap_or(head);
    if last > head {
        return Err(ExportError::BeyondHead { seq: last, head });
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    // The bundle holds every account's key hash: owner-only, like the journal.
    let file = private_file(&tmp).map_err(io(&tmp))?;
    let mut w = BufWriter::with_capacity(IO_BUFFER_BYTES, file);
    let checkpoints: Vec<Checkpoint> =
        journal.checkpoints().iter().copied().filter(|c| c.seq >= 1 && c.seq <= last).collect();
    let summary = write_bundle(&mut w, journal, last, &checkpoints, progress).map_err(|e| match e {
        WriteError::Io(source) => ExportError::Io { path: tmp.clone(), source },
        WriteError::Export(e) => e,
    })?;
    let file = w.into_inner().map_err(|e| ExportError::Io { path: tmp.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io(out))?;
    Ok(summary)
}

enum WriteError {
    Io(std::io::Error),
    Export(ExportError),
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

fn write_bundle<S: Store>(
    w: &mut impl Write,
    journal: &S,
    last: u64,
    checkpoints: &[Checkpoint],
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportSummary, WriteError> {
    let identity = journal.identity().as_bytes();
    let identity_len = u32::try_from(identity.len()).map_err(|_| std::io::Error::other("identity too long"))?;
    let mut bytes = 0u64;
    let mut put = |w: &mut dyn Write, data: &[u8]| -> std::io::Result<()> {
        bytes += u64::try_from(data.len()).unwrap_or(u64::MAX);
        w.write_all(data)
    };
    put(w, MAGIC)?;
    put(w, &BUNDLE_VERSION.to_le_bytes())?;
    put(w, &identity_len.to_le_bytes())?;
    put(w, identity)?;
    put(w, &journal.genesis().0)?;
    put(w, &last.to_le_bytes())?;
    let count = u32::try_from(checkpoints.len()).map_err(|_| std::io::Error::other("too many checkpoints"))?;
    put(w, &count.to_le_bytes())?;
    for c in checkpoints {
        put(w, &c.seq.to_le_bytes())?;
        put(w, &c.hash.0)?;
    }
    let mut head_hash = journal.genesis();
    if last > 0 {
        let read = |e: S::ReadError| WriteError::Export(ExportError::Read(Box::new(e)));
        for record in journal.range(1, last).map_err(read)? {
            let r = record.map_err(read)?;
            if record_hash(&r.prev_hash, r.seq, r.recorded_at_us, &r.payload) != r.hash {
                return Err(WriteError::Export(ExportError::Tampered { seq: r.seq }));
            }
            let len = u32::try_from(r.payload.len()).map_err(|_| std::io::Error::other("payload too long"))?;
            put(w, &r.seq.to_le_bytes())?;
            put(w, &r.recorded_at_us.to_le_bytes())?;
            put(w, &r.prev_hash.0)?;
            put(w, &r.hash.0)?;
            put(w, &len.to_le_bytes())?;
            put(w, &r.payload)?;
            head_hash = r.hash;
            if r.seq.is_multiple_of(PROGRESS_EVERY_RECORDS) {
                progress(Progress { phase: "exporting", done: r.seq, total: last, bytes: false });
            }
        }
    }
    put(w, TRAILER_MAGIC)?;
    put(w, &last.to_le_bytes())?;
    put(w, &head_hash.0)?;
    progress(Progress { phase: "exporting", done: last, total: last, bytes: false });
    Ok(ExportSummary { records: last, checkpoints: checkpoints.len(), head_hash, bytes })
}

/// A reader that knows its offset and turns short reads into damage.
struct Input<R> {
    inner: R,
    offset: u64,
}

impl<R: BufRead> Input<R> {
    /// The next `N` bytes if the buffer already holds them (the common case,
    /// read without a copy per field); `None` leaves everything unread, for
    /// the field-by-field path that names what is missing.
    fn buffered<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes: [u8; N] = self.inner.fill_buf().ok()?.get(..N)?.try_into().ok()?;
        self.inner.consume(N);
        self.offset += u64::try_from(N).unwrap_or(u64::MAX);
        Some(bytes)
    }

    /// Appends the next `len` bytes to `out`, straight from the buffer when
    /// it holds them.
    fn append(&mut self, out: &mut Vec<u8>, len: usize, seq: Option<u64>, field: &str) -> Result<(), AuditError> {
        if let Some(bytes) = self.inner.fill_buf().ok().and_then(|buffer| buffer.get(..len)) {
            out.extend_from_slice(bytes);
            self.inner.consume(len);
            self.offset += u64::try_from(len).unwrap_or(u64::MAX);
            return Ok(());
        }
        let start = out.len();
        out.resize(start + len, 0);
        self.fill(&mut out[start..], seq, field)
    }

    fn bytes<const N: usize>(&mut self, seq: Option<u64>, field: &str) -> Result<[u8; N], AuditError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, seq, field)?;
        Ok(buf)
    }

    fn fill(&mut self, buf: &mut [u8], seq: Option<u64>, field: &str) -> Result<(), AuditError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += u64::try_from(buf.len()).unwrap_or(u64::MAX);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.damage(seq, format!("file ends inside the {field}")))
            }
            Err(e) => Err(self.damage(seq, format!("reading the {field}: {e}"))),
        }
    }

    fn u32(&mut self, seq: Option<u64>, field: &str) -> Result<u32, AuditError> {
        self.bytes::<4>(seq, field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, seq: Option<u64>, field: &str) -> Result<u64, AuditError> {
        self.bytes::<8>(seq, field).map(u64::from_le_bytes)
    }

    fn damage(&self, seq: Option<u64>, what: impl Into<String>) -> AuditError {
        AuditError::Damage(BundleDamage { seq, offset: self.offset, what: what.into() })
    }
}

/// Audits the bundle at `path` offline (see the module docs for the checks),
/// then decodes every event and refolds every balance, checking zero-sum and
/// limits at every event.
pub fn audit_file(path: &Path, progress: &mut dyn FnMut(Progress)) -> Result<AuditSummary, AuditError> {
    let io = |source| AuditError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    audit_reader(BufReader::with_capacity(IO_BUFFER_BYTES, file), total, progress)
}

/// As [`audit_file`], from any reader of `total` bytes (0 if unknown).
pub fn audit_reader(
    reader: impl BufRead,
    total: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<AuditSummary, AuditError> {
    let mut input = Input { inner: reader, offset: 0 };
    if &input.bytes::<8>(None, "magic")? != MAGIC {
        return Err(input.damage(None, "not a ccnode audit bundle (bad magic)"));
    }
    let version = input.u32(None, "version")?;
    if version != BUNDLE_VERSION {
        return Err(input.damage(None, format!("unknown bundle version {version}")));
    }
    let identity_len = input.u32(None, "identity length")?;
    let identity_len = usize::try_from(identity_len).unwrap_or(usize::MAX);
    if identity_len == 0 || identity_len > IDENTITY_BYTES_MAX {
        return Err(input.damage(None, format!("identity length {identity_len} out of range")));
    }
    let mut identity = vec![0u8; identity_len];
    input.fill(&mut identity, None, "identity")?;
    let identity = String::from_utf8(identity).map_err(|_| input.damage(None, "identity is not UTF-8"))?;
    let genesis = Hash(input.bytes::<32>(None, "genesis")?);
    if genesis != genesis_hash(&identity) {
        return Err(input.damage(None, format!("genesis hash is not that of identity {identity:?}")));
    }
    let count = input.u64(None, "record count")?;

    let checkpoint_count = input.u32(None, "checkpoint count")?;
    let mut checkpoints: Vec<(u64, Hash, u64)> = Vec::new();
    for _ in 0..checkpoint_count {
        let at_field = input.offset;
        let seq = input.u64(None, "checkpoint seq")?;
        let hash = Hash(input.bytes::<32>(None, "checkpoint hash")?);
        if seq == 0 || seq > count || checkpoints.last().is_some_and(|&(last, _, _)| seq <= last) {
            return Err(AuditError::Damage(BundleDamage {
                seq: Some(seq),
                offset: at_field,
                what: format!("checkpoint at seq {seq} is out of order or outside the bundle's {count} records"),
            }));
        }
        checkpoints.push((seq, hash, at_field));
    }
    let (folded, signatures, chain) = std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(WORKERS);
        let mut from_workers = Vec::with_capacity(WORKERS);
        let mut trash = Vec::with_capacity(WORKERS);
        // Emptied batches go back to the reader, so their buffers are reused.
        let (free_tx, free_rx) = sync_channel::<Batch>(4 * WORKERS);
        for _ in 0..WORKERS {
            let (batch_tx, batch_rx) = sync_channel::<Batch>(2);
            let (done_tx, done_rx) = sync_channel::<Decoded>(2);
            // Folded events come back to be freed here, off the fold's thread.
            let (trash_tx, trash_rx) = sync_channel::<Vec<DecodedRecord>>(2);
            let free_tx = free_tx.clone();
            scope.spawn(move || {
                for mut batch in batch_rx {
                    while let Ok(folded) = trash_rx.try_recv() {
                        drop(folded);
                    }
                    let decoded = hash_and_decode(&batch);
                    batch.data.clear();
                    batch.records.clear();
                    let _ = free_tx.try_send(batch);
                    if done_tx.send(decoded).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(batch_tx);
            from_workers.push(done_rx);
            trash.push(trash_tx);
        }
        // Room for a transaction per record, at most what the file's size allows.
        let most = if total == 0 { 0 } else { total / u64::try_from(RECORD_FIXED_BYTES + 1).unwrap_or(1) };
        let expected = usize::try_from(count.min(most).min(u64::from(u32::MAX))).unwrap_or(0);
        let folder = scope.spawn(move || fold(&from_workers, &trash, expected));
        drop(free_tx);
        let mut reader = Reader { to_workers, free: free_rx, sent: 0, batch: Batch::default() };
        let read = reader.read_records(&mut input, count, genesis, &checkpoints, total, progress);
        reader.flush();
        drop(reader);
        let (folded, signatures, fold_error) = folder.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (fold_error, read) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(chain)) => Ok((folded, signatures, chain)),
        }
    })?;
    let Chain { prev, prev_at, first_at_us } = chain;
    let after = Some(count);
    if &input.bytes::<8>(after, "trailer magic")? != TRAILER_MAGIC {
        return Err(input.damage(after, "bad trailer magic (records or checkpoints miscounted?)"));
    }
    let head_seq = input.u64(after, "trailer head seq")?;
    let head_hash = Hash(input.bytes::<32>(after, "trailer head hash")?);
    if head_seq != count || head_hash != prev {
        return Err(
            input.damage(after, format!("trailer names head {head_seq} {head_hash}, records end at {count} {prev}"))
        );
    }
    let mut extra = [0u8; 1];
    match input.inner.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => return Err(input.damage(after, "bytes after the trailer")),
        Err(e) => return Err(input.damage(after, format!("reading after the trailer: {e}"))),
    }
    progress(Progress { phase: "auditing", done: input.offset, total, bytes: true });
    Ok(AuditSummary {
        identity,
        genesis,
        records: count,
        head_seq,
        head_hash,
        first_at_us,
        last_at_us: prev_at,
        checkpoints: checkpoints.len(),
        signed_checkpoints: signatures.checkpoints(),
        accounts: folded.projections.account_count(),
        transactions: folded.projections.transactions_by_state(),
        bookings: folded.bookings,
        sums: folded.projections.balance_sums(),
        bytes: input.offset,
    })
}

/// Threads that recompute hashes and decode events (the fold is one more).
const WORKERS: usize = 2;
/// Records per batch handed to a worker.
const BATCH_RECORDS: usize = 4096;

/// One record as read, its payload in the batch's buffer.
#[derive(Debug, Clone, Copy)]
struct RawRecord {
    seq: u64,
    recorded_at_us: u64,
    prev_hash: Hash,
    hash: Hash,
    start: usize,
    end: usize,
    offset: u64,
}

#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    records: Vec<RawRecord>,
}

/// A batch's events, up to the first record that failed (then its error).
type Decoded = (Vec<DecodedRecord>, Option<AuditError>);
/// A record's seq, time, Merkle leaf hash (of its chain hash) and event.
type DecodedRecord = (u64, u64, [u8; 32], Event);

/// What the sequential part of the audit established about the chain.
struct Chain {
    prev: Hash,
    prev_at: u64,
    first_at_us: u64,
}

/// Recomputes each record's hash, its Merkle leaf hash (for the signature
/// checks) and decodes its event.
fn hash_and_decode(batch: &Batch) -> Decoded {
    let mut events = Vec::with_capacity(batch.records.len());
    for r in &batch.records {
        let payload = &batch.data[r.start..r.end];
        if record_hash(&r.prev_hash, r.seq, r.recorded_at_us, payload) != r.hash {
            let what = "record hash does not match its contents".to_owned();
            return (events, Some(AuditError::Damage(BundleDamage { seq: Some(r.seq), offset: r.offset, what })));
        }
        match decode_event(payload) {
            Ok(event) => events.push((r.seq, r.recorded_at_us, tlog::leaf_hash(&r.hash.0), event)),
            Err(e) => return (events, Some(AuditError::Decode { seq: r.seq, detail: e.to_string() })),
        }
    }
    (events, None)
}

/// The ledger as the audit refolded it.
struct Ledger {
    projections: Projections,
    /// Events that moved a balance.
    bookings: u64,
}

/// Folds decoded batches in order (round robin over the workers).
type Folded = (Ledger, Signatures, Option<AuditError>);

fn fold(from_workers: &[Receiver<Decoded>], trash: &[SyncSender<Vec<DecodedRecord>>], expected: usize) -> Folded {
    // The one fold, keeping only what its checks read (no trade stats, timelines or descriptions).
    let mut ledger = Ledger { projections: Projections::checks_only(), bookings: 0 };
    ledger.projections.reserve_transactions(expected);
    let mut signatures = Signatures::new();
    for n in 0.. {
        let Ok((events, error)) = from_workers[n % from_workers.len()].recv() else { break };
        let folded = ledger.projections.try_apply_batch(&events, |(seq, at_us, _, event)| (*seq, *at_us, event));
        // The signatures of the records folded; at one seq, the projections' finding comes first.
        let refused = folded.as_ref().err().map_or(u64::MAX, |finding| finding.seq);
        for (seq, _, leaf, event) in events.iter().take_while(|record| record.0 < refused) {
            ledger.bookings += u64::from(projections::books_balances(event));
            if let Err(kind) = signatures.apply_leaf(*seq, *leaf, event) {
                return (ledger, signatures, Some(Finding { seq: *seq, kind }.into()));
            }
        }
        if let Err(finding) = folded {
            return (ledger, signatures, Some(finding.into()));
        }
        // Freeing a batch of decoded events is the workers' job (if one has room).
        let _ = trash[n % trash.len()].try_send(events);
        if let Some(error) = error {
            return (ledger, signatures, Some(error));
        }
    }
    (ledger, signatures, None)
}

/// The sequential part: framing, dense seqs, links, times, checkpoints.
struct Reader {
    to_workers: Vec<SyncSender<Batch>>,
    free: Receiver<Batch>,
    sent: usize,
    batch: Batch,
}

impl Reader {
    /// Hands the current batch to the next worker; false if the pipeline stopped.
    fn flush(&mut self) -> bool {
        if self.batch.records.is_empty() {
            return true;
        }
        let next = self.free.try_recv().unwrap_or_else(|_| Batch {
            data: Vec::with_capacity(BATCH_RECORDS * 256),
            records: Vec::with_capacity(BATCH_RECORDS),
        });
        let batch = std::mem::replace(&mut self.batch, next);
        let worker = &self.to_workers[self.sent % self.to_workers.len()];
        self.sent += 1;
        worker.send(batch).is_ok()
    }

    fn read_records<R: BufRead>(
        &mut self,
        input: &mut Input<R>,
        count: u64,
        genesis: Hash,
        checkpoints: &[(u64, Hash, u64)],
        total: u64,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Chain, AuditError> {
        let mut chain = Chain { prev: genesis, prev_at: 0, first_at_us: 0 };
        let mut next_checkpoint = 0usize;
        for seq in 1..=count {
            let at_field = input.offset;
            let s = Some(seq);
            let damage = |what: String| AuditError::Damage(BundleDamage { seq: s, offset: at_field, what });
            let (found, recorded_at_us, prev_hash, hash, len) = match input.buffered::<RECORD_FIXED_BYTES>() {
                Some(fixed) => {
                    let field = |at: usize, n: usize| &fixed[at..at + n];
                    let u64_at = |at| u64::from_le_bytes(field(at, 8).try_into().expect("8 bytes"));
                    let hash_at = |at| Hash(field(at, 32).try_into().expect("32 bytes"));
                    let len = u32::from_le_bytes(field(80, 4).try_into().expect("4 bytes"));
                    (u64_at(0), u64_at(8), hash_at(16), hash_at(48), usize::try_from(len).unwrap_or(usize::MAX))
                }
                None => {
                    // Near the end of the buffer (or of the file): field by field.
                    let found = input.u64(s, "record seq")?;
                    if found != seq {
                        return Err(damage(format!("expected seq {seq}, found {found}")));
                    }
                    let recorded_at_us = input.u64(s, "record time")?;
                    let prev_hash = Hash(input.bytes::<32>(s, "prev_hash")?);
                    let hash = Hash(input.bytes::<32>(s, "hash")?);
                    let len = usize::try_from(input.u32(s, "payload length")?).unwrap_or(usize::MAX);
                    (found, recorded_at_us, prev_hash, hash, len)
                }
            };
            if found != seq {
                return Err(damage(format!("expected seq {seq}, found {found}")));
            }
            if len > MAX_PAYLOAD_BYTES {
                return Err(input.damage(s, format!("payload length {len} exceeds {MAX_PAYLOAD_BYTES}")));
            }
            let start = self.batch.data.len();
            input.append(&mut self.batch.data, len, s, "payload")?;
            if prev_hash != chain.prev {
                return Err(damage(format!("prev_hash {prev_hash} does not link to the previous hash {}", chain.prev)));
            }
            if recorded_at_us < chain.prev_at {
                return Err(damage("recorded_at is earlier than the previous record's".to_owned()));
            }
            if let Some(&(cp_seq, cp_hash, cp_offset)) = checkpoints.get(next_checkpoint) {
                if cp_seq == seq {
                    if cp_hash != hash {
                        let what = format!("checkpoint hash {cp_hash} differs from the record's {hash}");
                        return Err(AuditError::Damage(BundleDamage { seq: s, offset: cp_offset, what }));
                    }
                    next_checkpoint += 1;
                }
            }
            let end = self.batch.data.len();
            self.batch.records.push(RawRecord { seq, recorded_at_us, prev_hash, hash, start, end, offset: at_field });
            if seq == 1 {
                chain.first_at_us = recorded_at_us;
            }
            chain.prev = hash;
            chain.prev_at = recorded_at_us;
            if self.batch.records.len() >= BATCH_RECORDS && !self.flush() {
                break; // the fold stopped at an earlier error
            }
            if seq.is_multiple_of(PROGRESS_EVERY_RECORDS) {
                progress(Progress { phase: "auditing", done: input.offset, total, bytes: true });
            }
        }
        Ok(chain)
    }
}

/// Creates (or truncates) `path` readable and writable by its owner only (0600 on Unix).
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        // A leftover file keeps its mode through `truncate`: set it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}
