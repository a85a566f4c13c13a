//! The per-link hash chain ("ratchet") two adjacent nodes both advance on
//! every written state change of a transaction they share (cc-protocol.md §4).
//!
//! The reference string is `lastHash|uuid|state|quant|description|…|version`:
//! one `quant|description` pair per entry shared on the link, amounts in the
//! trunkward node's unit written in canonical decimal (`14`, `0.5`), and the
//! MD5 of its UTF-8 bytes in lower-case hex is the new hash. ccnode also keeps
//! a blake3 chain over the same string (keyed by the previous blake3 hash), so
//! a link's history is provable without relying on MD5.

use bincode::{Decode, Encode};

use crate::amount::Amount;
use crate::ids::TxId;
use crate::model::State;

/// One written version of a transaction on a link: what each side of the
/// link lists in order (its link feed), and what reconciliation compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
pub struct LinkVersion {
    /// The transaction.
    pub uuid: TxId,
    /// Its version after this write.
    pub version: u32,
    /// Its state after this write.
    pub state: State,
    /// The ratchet hash as the reference protocol carries it.
    pub md5: [u8; 16],
    /// ccnode's blake3 ratchet hash.
    pub blake3: [u8; 32],
}

/// Bytes of lower-case (or upper-case) hex, exactly `N` of them.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// One entry as the link hash sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRow<'a> {
    /// The amount in the trunkward node's unit.
    pub quant: Amount,
    /// The entry's description.
    pub description: &'a str,
}

/// The string both sides hash.
pub fn link_string(last_hash: &str, uuid: &str, state: &str, rows: &[HashRow<'_>], version: &str) -> String {
    let mut text = String::with_capacity(64 + rows.len() * 32);
    for part in [last_hash, uuid, state] {
        text.push_str(part);
        text.push('|');
    }
    for row in rows {
        text.push_str(&row.quant.to_string());
        text.push('|');
        text.push_str(row.description);
        text.push('|');
    }
    text.push_str(version);
    text
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The reference's MD5 ratchet step, lower-case hex.
pub fn md5_next(last_hash: &str, uuid: &str, state: &str, rows: &[HashRow<'_>], version: &str) -> String {
    use md5::{Digest, Md5};
    hex(&Md5::digest(link_string(last_hash, uuid, state, rows, version).as_bytes()))
}

/// ccnode's blake3 chain over the same string: `blake3_keyed(previous, string)`.
pub fn blake3_next(previous: &[u8; 32], uuid: &str, state: &str, rows: &[HashRow<'_>], version: &str) -> [u8; 32] {
    // The MD5 chain's last hash is not part of the blake3 input: the key carries the history.
    *blake3::keyed_hash(previous, link_string("", uuid, state, rows, version).as_bytes()).as_bytes()
}

/// The blake3 chain's start for a link whose agreed initial hash is `initial`.
pub fn blake3_genesis(initial: &str) -> [u8; 32] {
    *blake3::Hasher::new_derive_key("ccnode 2026-11 link ratchet genesis v1")
        .update(initial.as_bytes())
        .finalize()
        .as_bytes()
}

/// Whether JavaScript's `Number#toString` of `quant`, read as a JSON number,
/// is `quant`'s canonical text, so a Komunitin neighbour hashes the amount as
/// we do (docs/PROTOCOL.md, "Komunitin links"). True below 1e21 with at most
/// 15 significant digits (a double keeps those exactly, and JS prints the
/// shortest text that reads back; ccnode amounts have at most 6 decimals,
/// above JS's 1e-7 switch to exponents).
pub fn js_number_text_agrees(quant: Amount) -> bool {
    let text = quant.to_string();
    let digits = text.trim_start_matches('-');
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.len() > 21 {
        return false;
    }
    let all = format!("{int}{frac}");
    let significant = all.trim_start_matches('0').trim_end_matches('0');
    significant.len() <= 15
}

/// Whether PHP's float-to-string (precision 14, as the reference node's
/// `makeHashString()` prints `quant`) of `quant` is `quant`'s canonical
/// text, so a reference neighbour hashes the amount as we do. True for zero
/// and for magnitudes from 0.0001 to below 1e14 with at most 14 significant
/// digits; PHP prints others with an exponent (`1.0E-5`, `1.0E+14`) or
/// rounded (docs/PROTOCOL.md, "Dialects").
pub fn php_float_text_agrees(quant: Amount) -> bool {
    let text = quant.to_string();
    let digits = text.trim_start_matches('-');
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    if int.len() > 14 {
        return false;
    }
    if int.is_empty() {
        let lead = frac.len() - frac.trim_start_matches('0').len();
        if frac.trim_start_matches('0').is_empty() {
            return true; // zero
        }
        if lead > 3 {
            return false; // below 0.0001
        }
    }
    let all = format!("{int}{frac}");
    let significant = all.trim_start_matches('0').trim_end_matches('0');
    significant.len() <= 14
}
