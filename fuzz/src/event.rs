//! The ledger's event codec (`ledger::decode_event`), formats 1 and 2.
//!
//! Contract: no panic; a decoded event re-encodes, in the format it was read
//! in, to bytes that decode to the same event and re-encode to themselves;
//! and when the input was in canonical form (it re-encodes to itself), that
//! is checked too. bincode's decode limit (`EVENT_SIZE_MAX_BYTES`) bounds
//! what a length field can make it allocate.

use ledger::{decode_event, encode_event, encode_event_v1, EVENT_FORMAT_V1};

pub fn run(data: &[u8]) {
    let Ok(event) = decode_event(data) else { return };
    let encode = if data[0] == EVENT_FORMAT_V1 { encode_event_v1 } else { encode_event };
    let again = encode(&event);
    let decoded = decode_event(&again).expect("a re-encoded event decodes");
    assert_eq!(decoded, event, "decode(encode(event)) changed the event");
    assert_eq!(encode(&decoded), again, "encoding is not deterministic");
    // bincode's varints accept non-minimal forms; the payload's hash covers
    // the bytes as written, so a non-canonical record reads back the same
    // event. Only the canonical form must round-trip byte for byte.
    if again.len() == data.len() {
        assert_eq!(again, data, "an event of canonical length re-encodes to other bytes");
    }
}
