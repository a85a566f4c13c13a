//! Snapshots and `load_or_rebuild` against real journals.

use std::path::Path;

use journal::{Journal, Options};
use ledger::*;
use projections::store::{decode_snapshot, encode_snapshot, SNAPSHOT_FORMAT_VERSION};
use projections::{load_or_rebuild, Projections, SnapshotStore, StoreError};

use crate::Node;

/// A node with a little of everything: payments, a bill, an erased credit.
fn busy_node() -> Node {
    let mut node = Node::twig();
    node.propose("alice", "alice", "bob", "3", "payment", 1);
    node.propose("bob", "carol", "bob", "2", "bill", 2);
    node.propose("alice", "alice", "carol", "4", "credit", 3);
    node.transition(3, State::Pending, "alice");
    node.transition(3, State::Completed, "carol");
    node.transition(2, State::Completed, "carol");
    node.transition(3, State::Erased, "admin");
    node.propose("carol", "carol", "branch2/zed", "1.25", "payment", 4);
    node
}

fn write_journal(dir: &Path, identity: &str, events: &[(u64, u64, Event)]) -> Journal {
    let mut journal = Journal::create(dir, identity, Options::default()).expect("create journal");
    for (seq, at_us, event) in events {
        let ack = journal.append_batch_at(*at_us, &[encode_event(event)]).expect("append");
        assert_eq!(ack.first_seq, *seq);
    }
    journal
}

fn fold_prefix(node: &Node, upto: u64) -> Projections {
    let mut p = Projections::new();
    for (seq, at_us, event) in node.events.iter().filter(|(seq, ..)| *seq <= upto) {
        p.apply(*seq, *at_us, event);
    }
    p
}

#[test]
fn missing_snapshot_rebuilds_from_the_journal() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
    let (p, report) = load_or_rebuild(&journal, &store).expect("load");
    assert_eq!(p, node.proj);
    assert_eq!(report.from_snapshot_seq, None);
    assert_eq!(report.folded, journal.head().seq);
    assert_eq!(report.rebuilt_because.as_deref(), Some("no snapshot"));
}

#[test]
fn snapshot_plus_tail_equals_the_full_fold() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
    let head = journal.head().seq;
    for at in [0, 1, head / 2, head - 1, head] {
        let prefix = fold_prefix(&node, at);
        let hash = if at == 0 { journal.genesis().0 } else { journal.read(at).expect("record").hash.0 };
        store.save(&prefix, journal.genesis().0, hash).expect("save");
        let (p, report) = load_or_rebuild(&journal, &store).expect("load");
        assert_eq!(p, node.proj, "snapshot at {at}");
        assert_eq!((report.from_snapshot_seq, report.folded, report.rebuilt_because), (Some(at), head - at, None));
    }
}

#[test]
fn snapshot_survives_reopening_the_store() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let head = journal.head();
    {
        let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
        store.save(&node.proj, journal.genesis().0, head.hash.0).expect("save");
    }
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("reopen");
    let (p, seq, hash) = store.load(journal.genesis().0).expect("load").expect("present");
    assert_eq!((p, seq, hash), (node.proj.clone(), head.seq, head.hash.0));
    assert!(matches!(store.load([9; 32]), Err(StoreError::Foreign)));
}

#[test]
fn snapshot_ahead_of_the_journal_rebuilds() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let full = write_journal(&dir.path().join("full"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
    store.save(&node.proj, full.genesis().0, full.head().hash.0).expect("save");
    // Same identity, hence same genesis, but shorter.
    let short = write_journal(&dir.path().join("short"), "twig", &node.events[..node.events.len() - 2]);
    let (p, report) = load_or_rebuild(&short, &store).expect("load");
    assert_eq!(p, fold_prefix(&node, short.head().seq));
    assert!(report.rebuilt_because.expect("rebuilt").contains("ahead"), "reason names the cause");
    assert_eq!(report.folded, short.head().seq);
}

#[test]
fn snapshot_of_a_diverging_journal_rebuilds() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("a"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
    store.save(&node.proj, journal.genesis().0, journal.head().hash.0).expect("save");
    // Same identity and length, one record stamped differently.
    let mut other = node.events.clone();
    other.last_mut().expect("events").1 += 1;
    let diverging = write_journal(&dir.path().join("b"), "twig", &other);
    let (p, report) = load_or_rebuild(&diverging, &store).expect("load");
    assert!(report.rebuilt_because.expect("rebuilt").contains("hash differs"));
    assert_eq!(p.last_at_us(), node.proj.last_at_us() + 1);
    p.assert_invariants();
}

#[test]
fn snapshot_of_another_journal_rebuilds() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("a"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
    store.save(&node.proj, journal.genesis().0, journal.head().hash.0).expect("save");
    let foreign = write_journal(&dir.path().join("b"), "elsewhere", &node.events);
    let (p, report) = load_or_rebuild(&foreign, &store).expect("load");
    assert_eq!(p, node.proj);
    assert!(report.rebuilt_because.expect("rebuilt").contains("another journal"));
    assert_eq!(report.from_snapshot_seq, None);
}

/// A named way to damage a stored snapshot.
type Damage = (&'static str, fn(&sled::Db));

#[test]
fn corrupt_snapshots_rebuild() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("sled")).expect("store");
    let (genesis, hash) = (journal.genesis().0, journal.head().hash.0);
    let damages: [Damage; 4] = [
        ("flipped body byte", |db| {
            let mut chunk = db.get(chunk0()).expect("get").expect("chunk").to_vec();
            chunk[10] ^= 0x40;
            db.insert(chunk0(), chunk).expect("insert");
        }),
        ("missing chunk", |db| {
            db.remove(chunk0()).expect("remove");
        }),
        ("short meta", |db| {
            db.insert(b"meta", &[SNAPSHOT_FORMAT_VERSION, 1][..]).expect("insert");
        }),
        ("unknown version", |db| {
            let mut meta = db.get(b"meta").expect("get").expect("meta").to_vec();
            meta[0] = 99;
            db.insert(b"meta", meta).expect("insert");
        }),
    ];
    for (what, damage) in damages {
        store.save(&node.proj, genesis, hash).expect("save");
        assert!(store.load(genesis).expect("readable").is_some());
        damage(store.raw());
        assert!(store.load(genesis).is_err(), "{what} is detected");
        let (p, report) = load_or_rebuild(&journal, &store).expect("load");
        assert_eq!(p, node.proj, "{what}");
        assert!(report.rebuilt_because.is_some() && report.from_snapshot_seq.is_none(), "{what}");
    }
}

fn chunk0() -> Vec<u8> {
    let mut key = b"chunk".to_vec();
    key.extend_from_slice(&0u32.to_be_bytes());
    key
}

#[test]
fn every_single_byte_flip_of_a_blob_is_refused_without_panic() {
    let node = busy_node();
    let blob = encode_snapshot(&node.proj, [1; 32], [2; 32]).expect("encode");
    assert_eq!(decode_snapshot(&blob, [1; 32]).expect("decodes").0, node.proj);
    for i in 0..blob.len() {
        let mut damaged = blob.clone();
        damaged[i] ^= 0x01;
        assert!(decode_snapshot(&damaged, [1; 32]).is_err(), "flip at byte {i} accepted");
    }
    for len in 0..blob.len() {
        assert!(decode_snapshot(&blob[..len], [1; 32]).is_err(), "truncation to {len} accepted");
    }
}
