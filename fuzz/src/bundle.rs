//! The audit-bundle reader (`replay::bundle::audit_reader`), the code behind
//! `ccnode audit`.
//!
//! Input: a mode byte, then either (mode even) raw bundle bytes, or (mode
//! odd) [`crate::parts`], each a record's payload, from which the target
//! writes a well-framed bundle with a correct hash chain, so that the fuzzer
//! drives the event decoder and the ledger fold behind the framing.
//!
//! Contract: no panic, and no allocation driven by a length field beyond the
//! input; for a well-framed bundle, the audit either accepts every record
//! (each payload then decodes) or names a record whose event does not decode
//! or breaks the ledger's rules, never damage to the framing.

use journal::{genesis_hash, record_hash, Hash};
use replay::bundle::{audit_reader, AuditError, BUNDLE_VERSION, MAGIC, TRAILER_MAGIC};

const IDENTITY: &str = "fuzz";

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let total = u64::try_from(rest.len()).expect("fits");
        let _ = audit_reader(rest, total, &mut |_| {});
        return;
    }
    let payloads = crate::parts(rest);
    let (bundle, head) = build(&payloads);
    let total = u64::try_from(bundle.len()).expect("fits");
    match audit_reader(bundle.as_slice(), total, &mut |_| {}) {
        Ok(summary) => {
            assert_eq!(summary.records, u64::try_from(payloads.len()).expect("fits"));
            assert_eq!(summary.head_hash, head);
            for payload in &payloads {
                assert!(ledger::decode_event(payload).is_ok(), "the audit accepted an undecodable event");
            }
        }
        Err(AuditError::Decode { seq, .. }) => {
            let index = usize::try_from(seq - 1).expect("fits");
            assert!(ledger::decode_event(payloads[index]).is_err(), "the audit refused a decodable event");
        }
        Err(AuditError::Ledger(_)) => {}
        Err(other) => panic!("a well-framed bundle was refused as damaged: {other}"),
    }
}

/// A bundle of `payloads` as `ccnode export` frames it, one checkpoint on
/// the last record; and its head hash.
pub fn build(payloads: &[&[u8]]) -> (Vec<u8>, Hash) {
    let genesis = genesis_hash(IDENTITY);
    let count = u64::try_from(payloads.len()).expect("fits");
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&BUNDLE_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(IDENTITY.len()).expect("short").to_le_bytes());
    out.extend_from_slice(IDENTITY.as_bytes());
    out.extend_from_slice(&genesis.0);
    out.extend_from_slice(&count.to_le_bytes());
    let mut records = Vec::new();
    let mut prev = genesis;
    for (seq, payload) in (1u64..).zip(payloads) {
        let at = 1_700_000_000_000_000 + seq * 1_000_000;
        let hash = record_hash(&prev, seq, at, payload);
        records.extend_from_slice(&seq.to_le_bytes());
        records.extend_from_slice(&at.to_le_bytes());
        records.extend_from_slice(&prev.0);
        records.extend_from_slice(&hash.0);
        records.extend_from_slice(&u32::try_from(payload.len()).expect("short").to_le_bytes());
        records.extend_from_slice(payload);
        prev = hash;
    }
    if count > 0 {
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&prev.0);
    } else {
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(&records);
    out.extend_from_slice(TRAILER_MAGIC);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&prev.0);
    (out, prev)
}
