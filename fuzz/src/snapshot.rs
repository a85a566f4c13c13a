//! The projections snapshot codec (`projections::store::decode_snapshot`).
//!
//! The input is a snapshot file after its magic and format version (format
//! 6: checksummed sections), which the target puts in front; it names the
//! genesis the head section starts with as the journal's.
//! Contract: no panic, no allocation driven by a length field beyond what
//! the input could hold; a decoded snapshot re-encodes to bytes that decode
//! to projections that re-encode to the same bytes.

use projections::store::{decode_snapshot, encode_snapshot, MAGIC, SNAPSHOT_FORMAT_VERSION};

pub fn run(data: &[u8]) {
    let mut blob = Vec::with_capacity(data.len() + 12);
    blob.extend_from_slice(&MAGIC);
    blob.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    blob.extend_from_slice(data);
    // The head section: its length (8 bytes), then the genesis.
    let genesis: [u8; 32] = match data.get(8..40) {
        Some(first) => first.try_into().expect("32 bytes"),
        None => [0; 32],
    };
    let Ok((projections, seq, head_hash)) = decode_snapshot(&blob, genesis) else { return };
    assert_eq!(seq, projections.seq(), "the snapshot's seq is its projections'");
    let again = encode_snapshot(&projections, genesis, head_hash).expect("decoded projections encode");
    let (second, seq2, hash2) = decode_snapshot(&again, genesis).expect("a re-encoded snapshot decodes");
    assert_eq!((seq2, hash2), (seq, head_hash));
    let third = encode_snapshot(&second, genesis, head_hash).expect("encodes");
    assert_eq!(third, again, "encode(decode(encode(p))) differs from encode(p)");
}
