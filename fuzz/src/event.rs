//! The ledger's event codec (`ledger::decode_event`), formats 1 and 2.
//!
//! Contract: no panic; a decoded event re-encodes, in the format it was read
//! in, to bytes that decode to the same event and re-encode to themselves. bincode's decode limit (`EVENT_SIZE_MAX_BYTES`) bounds
//! what a length field can make it allocate.

use ledger::{decode_event, encode_event, encode_event_v1, EVENT_FORMAT_V1};

pub fn run(data: &[u8]) {
    let Ok(event) = decode_event(data) else { return };
    let encode = if data[0] == EVENT_FORMAT_V1 { encode_event_v1 } else { encode_event };
    let again = encode(&event);
    let decoded = decode_event(&again).expect("a re-encoded event decodes");
    assert_eq!(decoded, event, "decode(encode(event)) changed the event");
    assert_eq!(encode(&decoded), again, "encoding is not deterministic");
    // bincode accepts non-canonical forms (a varint longer than it needs,
    // map keys out of order: the fuzzer found the second); the payload's
    // hash covers the bytes as written and every reader decodes them to the
    // same event, so such a record is not an ambiguity, only not the form
    // this build writes. The canonical form round-trips byte for byte:
    assert_eq!(encode(&decode_event(&again).expect("decodes")), again);
}
