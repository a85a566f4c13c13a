use tlog::checkpoint::*;
use tlog::note::*;
use tlog::{BalanceLeaf, BalanceTree, Tree};

use crate::fixture;
use crate::note::every_flip_fails;

/// tlog-checkpoint's example parses and re-encodes byte for byte.
#[test]
fn c2sp_checkpoint_example() {
    let v = fixture("signed-note-vectors.json");
    let text = v["c2sp_cosigned_checkpoint"]["note"].as_str().expect("s");
    let signed = SignedCheckpoint::parse(text.as_bytes()).expect("parses");
    assert_eq!(signed.checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(signed.checkpoint.size, 20852163);
    assert_eq!(signed.checkpoint.text(), signed.note.text);
}

fn sample() -> (NoteSigner, String) {
    let signer = NoteSigner::new("village.example/ccnode", &[3; 32]).expect("signer");
    let mut tree = Tree::new();
    for i in 0u8..9 {
        tree.push_leaf_hash([i; 32]);
    }
    let balances = BalanceTree::build(vec![
        BalanceLeaf { account: "alice".into(), balance: -5_000_000, min: -100_000_000, max: 100_000_000 },
        BalanceLeaf { account: "bob".into(), balance: 5_000_000, min: -100_000_000, max: 100_000_000 },
    ])
    .expect("tree");
    let links = vec![
        LinkLine { neighbour: "trunk".into(), version: 4, head: [0xab; 32] },
        LinkLine { neighbour: "branch".into(), version: 0, head: [0; 32] },
    ];
    let cp = Checkpoint::ccnode(signer.name(), 9, tree.root(), balances.commitment().expect("root"), links);
    let text = cp.text();
    let note = Note { text: text.clone(), signatures: vec![signer.sign(&text)] };
    (signer, note.encode())
}

#[test]
fn ccnode_checkpoint_round_trips_and_verifies() {
    let (signer, encoded) = sample();
    let signed = SignedCheckpoint::verify(encoded.as_bytes(), &signer.verifier_key()).expect("verifies");
    let cp = &signed.checkpoint;
    assert_eq!(cp.size, 9);
    assert!(cp.extensions[0].starts_with("balances "));
    let links = cp.links().expect("links");
    assert_eq!(links.iter().map(|l| l.neighbour.as_str()).collect::<Vec<_>>(), ["branch", "trunk"]);
    assert_eq!(links[1].version, 4);
    assert_eq!(cp.balances_root().expect("balances").len(), 32);
    assert_eq!(Checkpoint::parse(&cp.text()).expect("parses"), *cp);
}

#[test]
fn a_flipped_byte_anywhere_or_another_key_is_refused() {
    let (signer, encoded) = sample();
    every_flip_fails(encoded.as_bytes(), &[signer.verifier_key()]);
    let other = NoteSigner::new("village.example/ccnode", &[4; 32]).expect("signer");
    assert!(SignedCheckpoint::verify(encoded.as_bytes(), &other.verifier_key()).is_err());
    // Signed by the right key under another name: the origin must be the key's name.
    let renamed = NoteSigner::new("elsewhere", &[3; 32]).expect("signer");
    let cp = SignedCheckpoint::parse(encoded.as_bytes()).expect("parses");
    let note = Note { text: cp.note.text.clone(), signatures: vec![renamed.sign(&cp.note.text)] };
    assert!(SignedCheckpoint::verify(note.encode().as_bytes(), &renamed.verifier_key()).is_err());
}

#[test]
fn malformed_checkpoints_are_refused() {
    let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    for text in [
        String::new(),
        "o\n1\n".into(),
        format!("\n1\n{root}\n"),
        format!("o\n01\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n1\n{root}"),
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n".into(),
        format!("o\n1\n{root}\n\nx\n"),
        format!("o\n99999999999999999999999\n{root}\n"),
    ] {
        assert!(Checkpoint::parse(&text).is_err(), "{text:?}");
    }
    let cp = Checkpoint::parse(&format!("o\n1\n{root}\nlink a 1 zz\n")).expect("opaque extensions parse");
    assert!(cp.links().is_err());
    // A link head must be 64 lower-case hex digits: one text per checkpoint.
    let lower = "ab".repeat(32);
    let cp = Checkpoint::parse(&format!("o\n1\n{root}\nlink a 1 {lower}\n")).expect("parses");
    assert_eq!(cp.links().expect("a link line")[0].head, [0xab; 32]);
    for head in ["AB".repeat(32), "ab".repeat(31), format!("{}g", "a".repeat(63)), "ab".repeat(33)] {
        let cp = Checkpoint::parse(&format!("o\n1\n{root}\nlink a 1 {head}\n")).expect("opaque extensions parse");
        assert!(cp.links().is_err(), "{head}");
    }
    assert_eq!(cp.balances_root(), Err(CheckpointError::NoBalances));
    let cp = Checkpoint::parse(&format!("o\n1\n{root}\nbalances AAAA\n")).expect("parses");
    assert!(cp.balances_root().is_err());
}
