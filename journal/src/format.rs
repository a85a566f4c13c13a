//! The on-disk format, version 1: pure encoding and decoding, no I/O.
//!
//! Everything here is a compatibility promise. Golden fixtures under
//! `journal/tests/fixtures/` pin the bytes; changing any layout below needs a
//! new format version and a reader for the old one.
//!
//! All integers are little-endian.
//!
//! ```text
//! JOURNAL (meta file)
//!   magic "CCNJMETA" | version u32 | identity_len u32 | identity | genesis_hash [32] | crc32c u32
//!
//! <first_seq:020>.seg (segment)
//!   header: magic "CCNJSEG\0" | version u32 | reserved u32 (0) | first_seq u64 | crc32c u32 | pad u32 (0)
//!   frames, back to back:
//!     body_len u32 | !body_len u32 | crc32c(body) u32 | body
//!     body = flags u8 | seq u64 | recorded_at_us u64 | prev_hash [32] | hash [32] | payload
//!     flags bit 0 = last record of its batch (the batch's commit mark)
//!
//! <first_seq:020>.idx (index of a sealed segment, derived, rebuildable)
//!   magic "CCNJIDX\0" | version u32 | reserved u32 | first_seq u64 | count u64 | segment_len u64
//!   | last_hash [32] | count × offset u32 | crc32c u32
//!
//! checkpoints (derived, rebuildable)
//!   entries: seq u64 | hash [32] | crc32c u32
//! ```
//!
//! The record hash is `blake3(prev_hash ‖ seq ‖ recorded_at_us ‖ payload)`,
//! with `seq` and `recorded_at_us` as 8 little-endian bytes each. The genesis
//! `prev_hash` is `blake3::derive_key(GENESIS_CONTEXT, identity)`.

use std::fmt;

/// The format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Domain-separation context for the genesis hash. Part of format version 1.
pub const GENESIS_CONTEXT: &str = "ccnode journal v1 genesis";

pub(crate) const META_MAGIC: [u8; 8] = *b"CCNJMETA";
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CCNJSEG\0";
pub(crate) const INDEX_MAGIC: [u8; 8] = *b"CCNJIDX\0";

/// Bytes of a segment file header.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Bytes of a frame header: length, its complement, body checksum.
pub const FRAME_HEADER_BYTES: usize = 12;
/// Bytes of a frame body before the payload: flags, seq, recorded_at, prev_hash, hash.
pub const BODY_FIXED_BYTES: usize = 1 + 8 + 8 + 32 + 32;
/// Bytes of one checkpoint entry.
pub const CHECKPOINT_ENTRY_BYTES: usize = 8 + 32 + 4;
/// Bytes of an index file header (before the offsets).
pub(crate) const INDEX_HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 8 + 8 + 32;

const FLAG_BATCH_END: u8 = 0b0000_0001;
const FLAGS_KNOWN: u8 = FLAG_BATCH_END;

/// A blake3 digest identifying a record and, through `prev_hash`, its whole history.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(text: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The `prev_hash` of record 1 for a journal created with `identity`.
pub fn genesis_hash(identity: &str) -> Hash {
    Hash(blake3::derive_key(GENESIS_CONTEXT, identity.as_bytes()))
}

/// `blake3(prev_hash ‖ seq ‖ recorded_at_us ‖ payload)`.
pub fn record_hash(prev_hash: &Hash, seq: u64, recorded_at_us: u64, payload: &[u8]) -> Hash {
    // Most records fit one blake3 chunk: hashing one contiguous buffer is
    // measurably cheaper than feeding a `Hasher` four slices.
    const INLINE_BYTES: usize = 1024;
    if payload.len() <= INLINE_BYTES - 48 {
        let mut input = [0u8; INLINE_BYTES];
        input[0..32].copy_from_slice(&prev_hash.0);
        input[32..40].copy_from_slice(&seq.to_le_bytes());
        input[40..48].copy_from_slice(&recorded_at_us.to_le_bytes());
        input[48..48 + payload.len()].copy_from_slice(payload);
        return Hash(*blake3::hash(&input[..48 + payload.len()]).as_bytes());
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(&prev_hash.0);
    hasher.update(&seq.to_le_bytes());
    hasher.update(&recorded_at_us.to_le_bytes());
    hasher.update(payload);
    Hash(*hasher.finalize().as_bytes())
}

/// One journal record as stored and as read back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    /// Dense sequence number, from 1.
    pub seq: u64,
    /// When the record was appended, unix microseconds. Never decreases along the chain.
    pub recorded_at_us: u64,
    /// The hash of record `seq - 1`, or the genesis hash for seq 1.
    pub prev_hash: Hash,
    /// `blake3(prev_hash ‖ seq ‖ recorded_at_us ‖ payload)`.
    pub hash: Hash,
    /// The opaque bytes the caller appended.
    pub payload: Vec<u8>,
}

impl Record {
    /// Whether `hash` is what the other fields hash to.
    pub fn hash_is_valid(&self) -> bool {
        record_hash(&self.prev_hash, self.seq, self.recorded_at_us, &self.payload) == self.hash
    }
}

/// Appends one frame to `out`.
pub(crate) fn encode_frame(
    out: &mut Vec<u8>,
    batch_end: bool,
    seq: u64,
    recorded_at_us: u64,
    prev_hash: &Hash,
    hash: &Hash,
    payload: &[u8],
) {
    let body_len = u32::try_from(BODY_FIXED_BYTES + payload.len())
        .expect("payload length is checked against MAX_PAYLOAD_BYTES before encoding");
    let header_at = out.len();
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&(!body_len).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // Checksum, filled in below.
    let body_at = out.len();
    out.push(if batch_end { FLAG_BATCH_END } else { 0 });
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&recorded_at_us.to_le_bytes());
    out.extend_from_slice(&prev_hash.0);
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[body_at..]);
    out[header_at + 8..header_at + 12].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - header_at, FRAME_HEADER_BYTES + BODY_FIXED_BYTES + payload.len());
}

/// The bytes a frame for `payload_len` payload bytes takes.
pub const fn frame_bytes(payload_len: usize) -> usize {
    FRAME_HEADER_BYTES + BODY_FIXED_BYTES + payload_len
}

/// What was found at one offset of a segment's frame area.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameRead<'a> {
    /// A complete frame with a valid checksum.
    Frame(Frame<'a>),
    /// Nothing left: the offset is the end of the data.
    End,
    /// An incomplete frame at the end of the data (a torn write), or a zero-filled tail.
    Torn,
    /// Bytes that cannot be a frame written by this format.
    Bad(FrameDefect),
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDefect {
    /// The length field and its complement disagree, or the length is impossible.
    Length,
    /// The body does not match its checksum.
    Checksum,
    /// Flag bits this version does not define are set.
    Flags,
}

impl fmt::Display for FrameDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameDefect::Length => "frame length field is damaged",
            FrameDefect::Checksum => "frame checksum does not match its bytes",
            FrameDefect::Flags => "frame has unknown flag bits",
        })
    }
}

/// A decoded frame borrowing its payload from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub batch_end: bool,
    pub seq: u64,
    pub recorded_at_us: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub payload: &'a [u8],
    /// Bytes the whole frame occupies, header included.
    pub frame_len: usize,
}

impl Frame<'_> {
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            recorded_at_us: self.recorded_at_us,
            prev_hash: self.prev_hash,
            hash: self.hash,
            payload: self.payload.to_vec(),
        }
    }

    pub fn hash_is_valid(&self) -> bool {
        record_hash(&self.prev_hash, self.seq, self.recorded_at_us, self.payload) == self.hash
    }
}

/// Reads the frame at the start of `data`, which runs to the end of the
/// file's bytes (so that a short read can be told from a torn write).
pub(crate) fn read_frame(data: &[u8], max_body_bytes: usize) -> FrameRead<'_> {
    if data.is_empty() {
        return FrameRead::End;
    }
    if data.len() < FRAME_HEADER_BYTES {
        return FrameRead::Torn;
    }
    let body_len = read_u32(data, 0);
    let body_len_complement = read_u32(data, 4);
    if body_len != !body_len_complement {
        // A crash on a file system that extends the file before its data
        // lands leaves zeros: that is a torn write, not damage.
        if data.iter().all(|&b| b == 0) {
            return FrameRead::Torn;
        }
        return FrameRead::Bad(FrameDefect::Length);
    }
    let body_len = usize::try_from(body_len).expect("u32 fits in usize on supported targets");
    if body_len < BODY_FIXED_BYTES || body_len > max_body_bytes {
        return FrameRead::Bad(FrameDefect::Length);
    }
    let frame_len = FRAME_HEADER_BYTES + body_len;
    if data.len() < frame_len {
        return FrameRead::Torn;
    }
    let body = &data[FRAME_HEADER_BYTES..frame_len];
    if crc32c::crc32c(body) != read_u32(data, 8) {
        return FrameRead::Bad(FrameDefect::Checksum);
    }
    let flags = body[0];
    if flags & !FLAGS_KNOWN != 0 {
        return FrameRead::Bad(FrameDefect::Flags);
    }
    FrameRead::Frame(Frame {
        batch_end: flags & FLAG_BATCH_END != 0,
        seq: read_u64(body, 1),
        recorded_at_us: read_u64(body, 9),
        prev_hash: read_hash(body, 17),
        hash: read_hash(body, 49),
        payload: &body[BODY_FIXED_BYTES..],
        frame_len,
    })
}

/// The seq a damaged frame most likely carries, read without trusting the
/// checksum; used only to make corruption reports precise.
pub(crate) fn peek_seq(data: &[u8]) -> Option<u64> {
    (data.len() >= FRAME_HEADER_BYTES + 9).then(|| read_u64(data, FRAME_HEADER_BYTES + 1))
}

pub(crate) fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut out = [0u8; SEGMENT_HEADER_BYTES];
    out[0..8].copy_from_slice(&SEGMENT_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..24]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Why a segment header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderDefect {
    /// Fewer bytes than a header.
    Short,
    /// Not a segment file.
    Magic,
    /// A format version this build cannot read.
    Version(u32),
    /// The header does not match its checksum.
    Checksum,
}

impl fmt::Display for HeaderDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderDefect::Short => f.write_str("segment header is incomplete"),
            HeaderDefect::Magic => f.write_str("not a ccnode journal segment (bad magic)"),
            HeaderDefect::Version(v) => write!(f, "unsupported segment format version {v}"),
            HeaderDefect::Checksum => f.write_str("segment header checksum does not match"),
        }
    }
}

/// Returns the segment's first seq.
pub(crate) fn decode_segment_header(data: &[u8]) -> Result<u64, HeaderDefect> {
    if data.len() < SEGMENT_HEADER_BYTES {
        return Err(HeaderDefect::Short);
    }
    if data[0..8] != SEGMENT_MAGIC {
        return Err(HeaderDefect::Magic);
    }
    if crc32c::crc32c(&data[0..24]) != read_u32(data, 24) {
        return Err(HeaderDefect::Checksum);
    }
    let version = read_u32(data, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderDefect::Version(version));
    }
    Ok(read_u64(data, 16))
}

/// The journal's identity as stored in its meta file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The node identity string given at creation.
    pub identity: String,
    /// `genesis_hash(identity)`, stored so a reader can check it.
    pub genesis: Hash,
}

pub(crate) fn encode_meta(meta: &Meta) -> Vec<u8> {
    let identity_len = u32::try_from(meta.identity.len()).expect("identity length is checked at creation");
    let mut out = Vec::with_capacity(8 + 4 + 4 + meta.identity.len() + 32 + 4);
    out.extend_from_slice(&META_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&identity_len.to_le_bytes());
    out.extend_from_slice(meta.identity.as_bytes());
    out.extend_from_slice(&meta.genesis.0);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub(crate) fn decode_meta(data: &[u8]) -> Result<Meta, String> {
    if data.len() < 8 + 4 + 4 + 32 + 4 || data[0..8] != META_MAGIC {
        return Err("not a ccnode journal meta file".to_owned());
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32c::crc32c(body) != read_u32(crc, 0) {
        return Err("meta file checksum does not match".to_owned());
    }
    let version = read_u32(data, 8);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported journal format version {version}"));
    }
    let identity_len = usize::try_from(read_u32(data, 12)).expect("u32 fits in usize");
    if body.len() != 16 + identity_len + 32 {
        return Err("meta file length does not match its identity length".to_owned());
    }
    let identity = std::str::from_utf8(&body[16..16 + identity_len])
        .map_err(|_| "journal identity is not UTF-8".to_owned())?
        .to_owned();
    let genesis = read_hash(body, 16 + identity_len);
    if genesis != genesis_hash(&identity) {
        return Err("stored genesis hash does not match the identity".to_owned());
    }
    Ok(Meta { identity, genesis })
}

/// The contents of a sealed segment's index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub first_seq: u64,
    pub segment_len: u64,
    pub last_hash: Hash,
    pub last_recorded_at_us: u64,
    pub offsets: Vec<u32>,
}

pub(crate) fn encode_index(index: &SegmentIndex) -> Vec<u8> {
    let count = u64::try_from(index.offsets.len()).expect("usize fits in u64");
    let mut out = Vec::with_capacity(INDEX_HEADER_BYTES + 8 + index.offsets.len() * 4 + 4);
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&index.first_seq.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&index.segment_len.to_le_bytes());
    out.extend_from_slice(&index.last_hash.0);
    out.extend_from_slice(&index.last_recorded_at_us.to_le_bytes());
    for offset in &index.offsets {
        out.extend_from_slice(&offset.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub(crate) fn decode_index(data: &[u8]) -> Option<SegmentIndex> {
    let fixed = INDEX_HEADER_BYTES + 8;
    if data.len() < fixed + 4 || data[0..8] != INDEX_MAGIC {
        return None;
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32c::crc32c(body) != read_u32(crc, 0) || read_u32(data, 8) != FORMAT_VERSION {
        return None;
    }
    let count = usize::try_from(read_u64(data, 24)).ok()?;
    if body.len() != fixed + count.checked_mul(4)? {
        return None;
    }
    let offsets = body[fixed..].chunks_exact(4).map(|c| read_u32(c, 0)).collect();
    Some(SegmentIndex {
        first_seq: read_u64(data, 16),
        segment_len: read_u64(data, 32),
        last_hash: read_hash(data, 40),
        last_recorded_at_us: read_u64(data, 72),
        offsets,
    })
}

/// Whether an index's offsets can be those of its segment: the first frame
/// right after the header, each one at least a minimal frame after the one
/// before, the last one at least a minimal frame before the end. A decoded
/// index is only a claim (its checksum catches damage, not a wrong writer).
pub(crate) fn index_offsets_fit(index: &SegmentIndex) -> bool {
    let min_frame = to_u64(frame_bytes(0));
    let Some((&first, _)) = index.offsets.split_first() else { return false };
    if u64::from(first) != to_u64(SEGMENT_HEADER_BYTES) {
        return false;
    }
    let increasing = index.offsets.windows(2).all(|w| u64::from(w[1]) >= u64::from(w[0]) + min_frame);
    let last = u64::from(*index.offsets.last().expect("not empty"));
    increasing && last + min_frame <= index.segment_len
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).expect("usize fits in u64")
}

/// A trusted point of the chain: the hash of record `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The record's seq.
    pub seq: u64,
    /// The record's hash.
    pub hash: Hash,
}

pub(crate) fn encode_checkpoint(checkpoint: &Checkpoint) -> [u8; CHECKPOINT_ENTRY_BYTES] {
    let mut out = [0u8; CHECKPOINT_ENTRY_BYTES];
    out[0..8].copy_from_slice(&checkpoint.seq.to_le_bytes());
    out[8..40].copy_from_slice(&checkpoint.hash.0);
    let crc = crc32c::crc32c(&out[0..40]);
    out[40..44].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes entries until the first damaged or incomplete one; returns them
/// with the byte length of the valid prefix.
pub(crate) fn decode_checkpoints(data: &[u8]) -> (Vec<Checkpoint>, usize) {
    let mut out = Vec::new();
    for chunk in data.chunks_exact(CHECKPOINT_ENTRY_BYTES) {
        if crc32c::crc32c(&chunk[0..40]) != read_u32(chunk, 40) {
            break;
        }
        out.push(Checkpoint { seq: read_u64(chunk, 0), hash: read_hash(chunk, 8) });
    }
    let valid = out.len() * CHECKPOINT_ENTRY_BYTES;
    (out, valid)
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("slice of 4"))
}

fn read_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("slice of 8"))
}

fn read_hash(data: &[u8], at: usize) -> Hash {
    Hash(data[at..at + 32].try_into().expect("slice of 32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_frame(payload: &[u8], batch_end: bool) -> Vec<u8> {
        let prev = genesis_hash("test");
        let hash = record_hash(&prev, 1, 7, payload);
        let mut out = Vec::new();
        encode_frame(&mut out, batch_end, 1, 7, &prev, &hash, payload);
        out
    }

    #[test]
    fn frame_round_trips() {
        let bytes = one_frame(b"hello", true);
        match read_frame(&bytes, 1 << 20) {
            FrameRead::Frame(frame) => {
                assert!(frame.batch_end);
                assert_eq!(frame.seq, 1);
                assert_eq!(frame.recorded_at_us, 7);
                assert_eq!(frame.payload, b"hello");
                assert_eq!(frame.frame_len, bytes.len());
                assert!(frame.hash_is_valid());
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn every_prefix_of_a_frame_is_torn_and_every_flip_is_bad() {
        let bytes = one_frame(b"payload bytes", false);
        assert_eq!(read_frame(&bytes[..0], 1 << 20), FrameRead::End);
        for cut in 1..bytes.len() {
            assert_eq!(read_frame(&bytes[..cut], 1 << 20), FrameRead::Torn, "cut at {cut}");
        }
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(
                    matches!(read_frame(&damaged, 1 << 20), FrameRead::Bad(_)),
                    "flip of bit {bit} at byte {at} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn zero_tail_is_torn() {
        assert_eq!(read_frame(&[0u8; 100], 1 << 20), FrameRead::Torn);
    }

    #[test]
    fn meta_index_checkpoint_round_trip() {
        let meta = Meta { identity: "trunk/branch".to_owned(), genesis: genesis_hash("trunk/branch") };
        assert_eq!(decode_meta(&encode_meta(&meta)), Ok(meta));
        let index = SegmentIndex {
            first_seq: 5,
            segment_len: 999,
            last_hash: genesis_hash("x"),
            last_recorded_at_us: 42,
            offsets: vec![32, 100, 200],
        };
        assert_eq!(decode_index(&encode_index(&index)), Some(index));
        let cp = Checkpoint { seq: 9, hash: genesis_hash("y") };
        let mut bytes = encode_checkpoint(&cp).to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_checkpoints(&bytes), (vec![cp], CHECKPOINT_ENTRY_BYTES));
    }

    #[test]
    fn hex_round_trips() {
        let hash = genesis_hash("node");
        assert_eq!(Hash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(Hash::from_hex("zz"), None);
    }
}
