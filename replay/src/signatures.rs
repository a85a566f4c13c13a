//! Checks a journal's own proofs as it is folded (issue 11): every
//! `CheckpointSigned` is the record right after its size, its root is the
//! RFC 6962 root of the records before it (leaf = chain hash), and it is
//! signed by the node's key as journaled; every `NodeKeyRotated` is signed
//! by the key it replaces. O(log n) memory (the tree's right edge only).

use ledger::Event;
use tlog::{Frontier, KeyType, SignedCheckpoint, VerifierKey};

use projections::FindingKind;

/// The fold's state.
#[derive(Debug, Default)]
pub struct Signatures {
    frontier: Frontier,
    key: Option<[u8; 32]>,
    checkpoints: u64,
}

impl Signatures {
    /// Nothing folded.
    pub fn new() -> Signatures {
        Signatures::default()
    }

    /// Checkpoints checked so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// Folds record `seq` (its chain hash and event); records come in order from 1.
    pub fn apply(&mut self, seq: u64, hash: &[u8; 32], event: &Event) -> Result<(), FindingKind> {
        self.apply_leaf(seq, tlog::leaf_hash(hash), event)
    }

    /// As [`Signatures::apply`], given the record's Merkle leaf hash
    /// (`tlog::leaf_hash` of its chain hash), which can be computed elsewhere
    /// (the audit computes it on the threads that recompute the chain hashes).
    pub fn apply_leaf(&mut self, seq: u64, leaf: [u8; 32], event: &Event) -> Result<(), FindingKind> {
        let bad = |detail: String| FindingKind::BadCheckpoint { detail };
        match event {
            Event::NodeKeySet { public_key } => self.key = Some(*public_key),
            Event::NodeKeyRotated { old, new, signature } => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(old).map_err(|_| FindingKind::KeyRotationFromWrongKey)?;
                let signature = ed25519_dalek::Signature::from_bytes(signature);
                if self.key.as_ref() != Some(old)
                    || key.verify_strict(&ledger::node_key_rotation_message(old, new), &signature).is_err()
                {
                    return Err(FindingKind::KeyRotationFromWrongKey);
                }
                self.key = Some(*new);
            }
            Event::CheckpointSigned { size, note } => {
                if self.frontier.len() != *size || seq != size + 1 {
                    return Err(bad(format!("a checkpoint of size {size} must be record {}", size + 1)));
                }
                let key = self.key.ok_or_else(|| bad("a checkpoint before the node's key".into()))?;
                let signed = SignedCheckpoint::parse(note.as_bytes()).map_err(|e| bad(e.to_string()))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                    .map_err(|_| bad("the node's key is not a key".into()))?;
                let vkey = VerifierKey::new(&signed.checkpoint.origin, KeyType::Ed25519, key)
                    .map_err(|e| bad(e.to_string()))?;
                SignedCheckpoint::verify(note.as_bytes(), &vkey).map_err(|e| bad(e.to_string()))?;
                if signed.checkpoint.size != *size {
                    return Err(bad(format!("the note says size {}", signed.checkpoint.size)));
                }
                if signed.checkpoint.root != self.frontier.root() {
                    return Err(bad("its root is not the Merkle root of the records before it".into()));
                }
                self.checkpoints += 1;
            }
            _ => {}
        }
        self.frontier.push_leaf_hash(leaf);
        Ok(())
    }
}
