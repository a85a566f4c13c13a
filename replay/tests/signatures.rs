//! The audit's checkpoint and key checks (issue 11): a checkpoint must be the
//! record right after its size, its root the Merkle root of the records
//! before it, signed by the node's journaled key; a rotation must be signed
//! by the key it replaces.

use ledger::Event;
use replay::signatures::Signatures;
use replay::FindingKind;
use tlog::{BalanceTree, Checkpoint, Note, NoteSigner, Tree};

fn hash(seq: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&seq.to_le_bytes());
    h
}

fn filler() -> Event {
    Event::FeesConfigured { policy: None }
}

/// A checkpoint of the first `size` records (leaf = `hash(seq)`) signed by `signer`.
fn checkpoint(signer: &NoteSigner, size: u64, leaves: u64) -> Event {
    let mut tree = Tree::new();
    for seq in 1..=leaves {
        tree.push_leaf_hash(tlog::leaf_hash(&hash(seq)));
    }
    let balances = BalanceTree::build(Vec::new()).expect("empty").commitment().expect("root");
    let text = Checkpoint::ccnode(signer.name(), size, tree.root(), balances, Vec::new()).text();
    Event::CheckpointSigned { size, note: Note { signatures: vec![signer.sign(&text)], text }.encode() }
}

fn run(events: &[Event]) -> Result<u64, (u64, FindingKind)> {
    let mut signatures = Signatures::new();
    for (i, event) in events.iter().enumerate() {
        let seq = i as u64 + 1;
        signatures.apply(seq, &hash(seq), event).map_err(|k| (seq, k))?;
    }
    Ok(signatures.checkpoints())
}

#[test]
fn good_checkpoints_and_rotations_pass_and_any_lie_is_named() {
    let old = NoteSigner::new("village", &[1; 32]).expect("signer");
    let new = NoteSigner::new("village", &[2; 32]).expect("signer");
    let set = Event::NodeKeySet { public_key: old.public_key() };
    let message = ledger::node_key_rotation_message(&old.public_key(), &new.public_key());
    let rotated =
        Event::NodeKeyRotated { old: old.public_key(), new: new.public_key(), signature: old.sign_bytes(&message) };
    let good = vec![set.clone(), filler(), filler(), checkpoint(&old, 3, 3), rotated.clone(), checkpoint(&new, 5, 5)];
    assert_eq!(run(&good), Ok(2));

    // A root over other records.
    let mut bad = good.clone();
    bad[3] = checkpoint(&old, 3, 2);
    assert!(matches!(run(&bad), Err((4, FindingKind::BadCheckpoint { .. }))));
    // Not right after its size.
    let mut bad = good.clone();
    bad.insert(3, filler());
    assert!(matches!(run(&bad), Err((5, FindingKind::BadCheckpoint { .. }))));
    // Signed by another key (the old one after the rotation; a stranger's before).
    let mut bad = good.clone();
    bad[5] = checkpoint(&old, 5, 5);
    assert!(matches!(run(&bad), Err((6, FindingKind::BadCheckpoint { .. }))));
    let mut bad = good.clone();
    bad[3] = checkpoint(&NoteSigner::new("village", &[9; 32]).expect("s"), 3, 3);
    assert!(matches!(run(&bad), Err((4, FindingKind::BadCheckpoint { .. }))));
    // A checkpoint before any key.
    assert!(matches!(run(&[filler(), checkpoint(&old, 1, 1)]), Err((2, FindingKind::BadCheckpoint { .. }))));
    // A rotation not signed by the old key, or from a key that is not the node's.
    let mut bad = good.clone();
    bad[4] =
        Event::NodeKeyRotated { old: old.public_key(), new: new.public_key(), signature: new.sign_bytes(&message) };
    assert_eq!(run(&bad), Err((5, FindingKind::KeyRotationFromWrongKey)));
    let mut bad = good.clone();
    bad[0] = Event::NodeKeySet { public_key: new.public_key() };
    assert!(matches!(run(&bad), Err((4, FindingKind::BadCheckpoint { .. }))));
    // A flipped byte in a signed note.
    let Event::CheckpointSigned { size, note } = &good[3] else { unreachable!() };
    for i in 0..note.len() {
        let mut bytes = note.clone().into_bytes();
        bytes[i] ^= 1;
        let Ok(flipped) = String::from_utf8(bytes) else { continue };
        let mut bad = good.clone();
        bad[3] = Event::CheckpointSigned { size: *size, note: flipped };
        assert!(run(&bad).is_err(), "flipped byte {i} passed");
    }
}
