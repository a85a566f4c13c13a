//! The projections snapshot codec (`projections::store::decode_snapshot`).
//!
//! The input is a snapshot body: the target seals it with the version byte
//! and the checksum it needs (damage the checksum would catch is not what is
//! being fuzzed) and names the genesis the body starts with as the journal's.
//! Contract: no panic, no allocation driven by a length field beyond what
//! the input could hold; a decoded snapshot re-encodes to bytes that decode
//! to projections that re-encode to the same bytes.

use projections::store::{decode_snapshot, encode_snapshot, SNAPSHOT_FORMAT_VERSION};

pub fn run(data: &[u8]) {
    let mut blob = Vec::with_capacity(data.len() + 5);
    blob.push(SNAPSHOT_FORMAT_VERSION);
    blob.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    blob.extend_from_slice(data);
    let genesis: [u8; 32] = match data.get(..32) {
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
