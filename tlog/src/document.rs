//! Verifying the documents a ccnode serves, offline and with public keys
//! only: signed checkpoints (text), and the JSON of `/proof/inclusion`,
//! `/proof/consistency`, `/proof/balance` and `/statement`. Each check says
//! exactly what failed.

use serde_json::Value;

use crate::balances::{BalanceError, BalanceLeaf, BalanceProof, SumNode};
use crate::checkpoint::{parse_hash_b64, CheckpointError, SignedCheckpoint};
use crate::merkle::{verify_consistency, verify_inclusion, Hash, ProofError};
use crate::note::{KeyType, NoteError, VerifierKey};

/// Why a document does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// A checkpoint in it is malformed or not signed by the key.
    #[error("{what}: {source}")]
    Checkpoint {
        /// Which checkpoint.
        what: &'static str,
        /// Why.
        source: CheckpointError,
    },
    /// A witness's cosignature is missing or bad.
    #[error("checkpoint: no valid cosignature by witness {witness}: {source}")]
    Cosignature {
        /// The witness key's name.
        witness: String,
        /// Why.
        source: NoteError,
    },
    /// A field is missing or malformed.
    #[error("field {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The document's fields disagree with each other or with its checkpoint.
    #[error("{0}")]
    Mismatch(String),
    /// A Merkle proof does not verify.
    #[error("{what}: {source}")]
    Proof {
        /// Which proof.
        what: &'static str,
        /// Why.
        source: ProofError,
    },
    /// A balance proof does not verify.
    #[error("balance proof: {0}")]
    Balance(#[from] BalanceError),
    /// Not a document this verifier knows.
    #[error("not a ccnode checkpoint, proof or statement")]
    Unknown,
}

/// What a document proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A checkpoint signed by the key (and cosigned by every witness given).
    Checkpoint {
        /// Origin.
        origin: String,
        /// Size.
        size: u64,
        /// Witnesses whose cosignatures verified.
        witnesses: Vec<String>,
    },
    /// Record `seq` is in the signed tree of `size`.
    Inclusion {
        /// The record.
        seq: u64,
        /// The tree size.
        size: u64,
        /// The record's chain hash's leaf hash.
        leaf: Hash,
    },
    /// The signed tree of `to` extends the signed tree of `from`.
    Consistency {
        /// Older size.
        from: u64,
        /// Newer size.
        to: u64,
    },
    /// An account's balance and limits are in the signed balances tree, whose sum is zero.
    Balance {
        /// The account.
        account: String,
        /// Its completed balance, micro-units.
        balance: i128,
        /// The checkpoint size.
        size: u64,
    },
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verified::Checkpoint { origin, size, witnesses } if witnesses.is_empty() => {
                write!(f, "checkpoint of {origin} at size {size}, signed by its key")
            }
            Verified::Checkpoint { origin, size, witnesses } => write!(
                f,
                "checkpoint of {origin} at size {size}, signed by its key and cosigned by {}",
                witnesses.join(", ")
            ),
            Verified::Inclusion { seq, size, .. } => write!(f, "record {seq} is in the signed tree of size {size}"),
            Verified::Consistency { from, to } => {
                write!(f, "the signed tree of size {to} extends the signed tree of size {from}")
            }
            Verified::Balance { account, balance, size } => write!(
                f,
                "{account} had a completed balance of {} at checkpoint {size}, in a balances tree that sums to zero",
                micros_text(*balance)
            ),
        }
    }
}

/// Micro-units as decimal text, without a decimal crate.
pub fn micros_text(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let (units, frac) = (abs / 1_000_000, abs % 1_000_000);
    if frac == 0 {
        return format!("{sign}{units}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{units}.{}", frac.trim_end_matches('0'))
}

/// Checks a signed checkpoint against the node's key and, for each
/// witness key, requires a valid cosignature.
pub fn verify_checkpoint(
    what: &'static str,
    text: &str,
    key: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<SignedCheckpoint, DocumentError> {
    let signed =
        SignedCheckpoint::verify(text.as_bytes(), key).map_err(|source| DocumentError::Checkpoint { what, source })?;
    for witness in witnesses {
        if witness.kind != KeyType::CosignatureV1 {
            return Err(DocumentError::Mismatch(format!("witness key {} is not a cosignature/v1 key", witness.name)));
        }
        signed
            .note
            .verify(std::slice::from_ref(witness))
            .map_err(|source| DocumentError::Cosignature { witness: witness.name.clone(), source })?;
    }
    signed.checkpoint.balances_root().map_err(|source| DocumentError::Checkpoint { what, source })?;
    signed.checkpoint.links().map_err(|source| DocumentError::Checkpoint { what, source })?;
    Ok(signed)
}

/// Refuses objects with missing or unknown fields: every byte of a document is checked.
fn exact_keys(v: &Value, keys: &[&'static str]) -> Result<(), DocumentError> {
    let object = v.as_object().ok_or(DocumentError::Field { field: "document", reason: "not a JSON object" })?;
    for key in keys {
        if !object.contains_key(*key) {
            return Err(DocumentError::Field { field: key, reason: "missing" });
        }
    }
    if let Some(extra) = object.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(DocumentError::Mismatch(format!("unknown field {extra:?}")));
    }
    Ok(())
}

fn str_field<'a>(v: &'a Value, field: &'static str) -> Result<&'a str, DocumentError> {
    v[field].as_str().ok_or(DocumentError::Field { field, reason: "missing or not a string" })
}

fn u64_field(v: &Value, field: &'static str) -> Result<u64, DocumentError> {
    v[field].as_u64().ok_or(DocumentError::Field { field, reason: "missing or not a whole number" })
}

fn i128_field(v: &Value, field: &'static str) -> Result<i128, DocumentError> {
    str_field(v, field)?.parse().map_err(|_| DocumentError::Field { field, reason: "not an integer of micro-units" })
}

fn hash_field(v: &Value, field: &'static str) -> Result<Hash, DocumentError> {
    parse_hash_b64(str_field(v, field)?).ok_or(DocumentError::Field { field, reason: "not 32 bytes of base64" })
}

fn hashes_field(v: &Value, field: &'static str) -> Result<Vec<Hash>, DocumentError> {
    let bad = DocumentError::Field { field, reason: "not a list of 32-byte base64 hashes" };
    let list = v[field].as_array().ok_or(bad.clone())?;
    list.iter().map(|h| h.as_str().and_then(parse_hash_b64).ok_or(bad.clone())).collect()
}

fn same<T: PartialEq + std::fmt::Display>(what: &str, a: T, b: T) -> Result<(), DocumentError> {
    if a == b {
        Ok(())
    } else {
        Err(DocumentError::Mismatch(format!("{what}: {a} in the document, {b} in its checkpoint")))
    }
}

/// Verifies any document: a signed checkpoint (text) or a proof or statement (JSON).
pub fn verify_document(
    text: &str,
    key: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<Vec<Verified>, DocumentError> {
    if !text.trim_start().starts_with('{') {
        let signed = verify_checkpoint("checkpoint", text, key, witnesses)?;
        return Ok(vec![checkpoint_verified(&signed, witnesses)]);
    }
    let v: Value = serde_json::from_str(text).map_err(|_| DocumentError::Unknown)?;
    match v["type"].as_str() {
        Some("inclusion") => verify_inclusion_doc(&v, key, witnesses),
        Some("consistency") => verify_consistency_doc(&v, key, witnesses),
        Some("balance") => verify_balance_doc(&v, key, witnesses),
        Some("ccnode-statement/v1") => verify_statement(&v, key, witnesses),
        _ => Err(DocumentError::Unknown),
    }
}

fn checkpoint_verified(signed: &SignedCheckpoint, witnesses: &[VerifierKey]) -> Verified {
    Verified::Checkpoint {
        origin: signed.checkpoint.origin.clone(),
        size: signed.checkpoint.size,
        witnesses: witnesses.iter().map(|w| w.name.clone()).collect(),
    }
}

fn verify_inclusion_doc(
    v: &Value,
    key: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<Vec<Verified>, DocumentError> {
    exact_keys(v, &["type", "seq", "size", "leaf_index", "leaf_hash", "root", "proof", "checkpoint"])?;
    let signed = verify_checkpoint("checkpoint", str_field(v, "checkpoint")?, key, witnesses)?;
    let cp = &signed.checkpoint;
    let (seq, size) = (u64_field(v, "seq")?, u64_field(v, "size")?);
    same("size", size, cp.size)?;
    if seq == 0 || u64_field(v, "leaf_index")? != seq - 1 {
        return Err(DocumentError::Mismatch("leaf_index must be seq - 1".into()));
    }
    if hash_field(v, "root")? != cp.root {
        return Err(DocumentError::Mismatch("root: the document's root is not its checkpoint's".into()));
    }
    let leaf = hash_field(v, "leaf_hash")?;
    verify_inclusion(seq - 1, size, &leaf, &hashes_field(v, "proof")?, &cp.root)
        .map_err(|source| DocumentError::Proof { what: "inclusion proof", source })?;
    Ok(vec![checkpoint_verified(&signed, witnesses), Verified::Inclusion { seq, size, leaf }])
}

fn verify_consistency_doc(
    v: &Value,
    key: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<Vec<Verified>, DocumentError> {
    exact_keys(v, &["type", "from", "to", "proof", "from_checkpoint", "to_checkpoint"])?;
    let old = verify_checkpoint("from_checkpoint", str_field(v, "from_checkpoint")?, key, &[])?;
    let new = verify_checkpoint("to_checkpoint", str_field(v, "to_checkpoint")?, key, witnesses)?;
    let (from, to) = (u64_field(v, "from")?, u64_field(v, "to")?);
    same("from", from, old.checkpoint.size)?;
    same("to", to, new.checkpoint.size)?;
    verify_consistency(from, to, &old.checkpoint.root, &new.checkpoint.root, &hashes_field(v, "proof")?)
        .map_err(|source| DocumentError::Proof { what: "consistency proof", source })?;
    Ok(vec![checkpoint_verified(&old, &[]), checkpoint_verified(&new, witnesses), Verified::Consistency { from, to }])
}

fn verify_balance_doc(v: &Value, key: &VerifierKey, witnesses: &[VerifierKey]) -> Result<Vec<Verified>, DocumentError> {
    exact_keys(v, &["type", "size", "index", "count", "leaf", "path", "checkpoint"])?;
    if v["type"] != "balance" {
        return Err(DocumentError::Field { field: "type", reason: "not a balance proof" });
    }
    let signed = verify_checkpoint("checkpoint", str_field(v, "checkpoint")?, key, witnesses)?;
    let cp = &signed.checkpoint;
    let size = u64_field(v, "size")?;
    same("size", size, cp.size)?;
    let leaf = &v["leaf"];
    exact_keys(leaf, &["account", "balance_micros", "min_micros", "max_micros"])?;
    let proof = BalanceProof {
        index: u64_field(v, "index")?,
        count: u64_field(v, "count")?,
        leaf: BalanceLeaf {
            account: str_field(leaf, "account")?.to_owned(),
            balance: i128_field(leaf, "balance_micros")?,
            min: i128_field(leaf, "min_micros")?,
            max: i128_field(leaf, "max_micros")?,
        },
        path: v["path"]
            .as_array()
            .ok_or(DocumentError::Field { field: "path", reason: "missing or not a list" })?
            .iter()
            .map(|n| {
                exact_keys(n, &["hash", "sum_micros"])?;
                Ok(SumNode { hash: hash_field(n, "hash")?, sum: i128_field(n, "sum_micros")? })
            })
            .collect::<Result<_, DocumentError>>()?,
    };
    let root = cp.balances_root().map_err(|source| DocumentError::Checkpoint { what: "checkpoint", source })?;
    proof.verify(&root)?;
    let verified = Verified::Balance { account: proof.leaf.account.clone(), balance: proof.leaf.balance, size };
    Ok(vec![checkpoint_verified(&signed, witnesses), verified])
}

/// Decimal text (as the node writes amounts) to micro-units.
fn decimal_micros(text: &str) -> Option<i128> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if units.is_empty() || frac.len() > 6 || !units.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i128 = units.parse().ok()?;
    let frac: i128 = format!("{frac:0<6}").parse().ok()?;
    let value = units.checked_mul(1_000_000)?.checked_add(frac)?;
    Some(if neg { -value } else { value })
}

fn verify_statement(v: &Value, key: &VerifierKey, witnesses: &[VerifierKey]) -> Result<Vec<Verified>, DocumentError> {
    exact_keys(v, &["type", "origin", "account", "balance", "min", "max", "size", "checkpoint", "balance_proof"])?;
    let proof = &v["balance_proof"];
    let verified = verify_balance_doc(proof, key, witnesses)?;
    same("origin", str_field(v, "origin")?, key.name.as_str())?;
    if str_field(v, "checkpoint")? != str_field(proof, "checkpoint")? {
        return Err(DocumentError::Mismatch("the statement's checkpoint is not its proof's".into()));
    }
    same("size", u64_field(v, "size")?, u64_field(proof, "size")?)?;
    let leaf = &proof["leaf"];
    same("account", str_field(v, "account")?, str_field(leaf, "account")?)?;
    for (field, micros) in [("balance", "balance_micros"), ("min", "min_micros"), ("max", "max_micros")] {
        let stated =
            decimal_micros(str_field(v, field)?).ok_or(DocumentError::Field { field, reason: "not a decimal" })?;
        same(field, stated, i128_field(leaf, micros)?)?;
    }
    Ok(verified)
}
