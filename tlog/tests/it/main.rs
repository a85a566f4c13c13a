//! tlog's integration tests: public vectors reproduced byte for byte, a
//! reference implementation of RFC 6962's definitions, and negative space.

mod balances;
mod checkpoint;
mod merkle;
mod note;

use std::path::PathBuf;

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture exists")).expect("fixture is JSON")
}

pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

pub fn h32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("32 bytes")
}
