//! Transparency-log primitives for ccnode, pure (no I/O, no clock):
//!
//! - [`merkle`]: RFC 6962 / RFC 9162 Merkle trees, inclusion and consistency proofs;
//! - [`note`]: C2SP signed notes, verifier keys, Ed25519 signatures and `cosignature/v1`;
//! - [`checkpoint`]: C2SP checkpoints with ccnode's `balances` and `link` extension lines;
//! - [`balances`]: the Merkle-sum tree of account balances whose root sum is zero.
//!
//! A journal record's leaf is its 32-byte chain hash: leaf n (0-based) of a
//! node's tree is `leaf_hash(hash of journal record n + 1)`.

pub mod balances;
pub mod checkpoint;
pub mod document;
pub mod merkle;
pub mod note;

pub use balances::{BalanceError, BalanceLeaf, BalanceProof, BalanceTree, SumNode};
pub use checkpoint::{Checkpoint, CheckpointError, LinkLine, SignedCheckpoint};
pub use merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Frontier, Hash, ProofError, Tree,
};
pub use note::{KeyType, Note, NoteError, NoteSignature, NoteSigner, VerifierKey};

/// Standard base64 (RFC 4648 §4) of bytes.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes canonical standard base64.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    note::decode_b64(text)
}
