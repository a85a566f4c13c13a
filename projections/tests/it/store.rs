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
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
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
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
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
        let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
        store.save(&node.proj, journal.genesis().0, head.hash.0).expect("save");
    }
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("reopen");
    let (p, seq, hash) = store.load(journal.genesis().0).expect("load").expect("present");
    assert_eq!((p, seq, hash), (node.proj.clone(), head.seq, head.hash.0));
    assert!(matches!(store.load([9; 32]), Err(StoreError::Foreign)));
}

#[test]
fn snapshot_ahead_of_the_journal_rebuilds() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let full = write_journal(&dir.path().join("full"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
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
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
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
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
    store.save(&node.proj, journal.genesis().0, journal.head().hash.0).expect("save");
    let foreign = write_journal(&dir.path().join("b"), "elsewhere", &node.events);
    let (p, report) = load_or_rebuild(&foreign, &store).expect("load");
    assert_eq!(p, node.proj);
    assert!(report.rebuilt_because.expect("rebuilt").contains("another journal"));
    assert_eq!(report.from_snapshot_seq, None);
}

/// A named way to damage a stored snapshot file.
type Damage = (&'static str, fn(&mut Vec<u8>), &'static str);

#[test]
fn corrupt_snapshot_files_rebuild_and_say_why() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
    let (genesis, hash) = (journal.genesis().0, journal.head().hash.0);
    let damages: [Damage; 6] = [
        (
            "flipped byte in the middle",
            |b| {
                let at = b.len() / 2;
                b[at] ^= 0x40;
            },
            "checksum mismatch",
        ),
        ("flipped last byte", |b| *b.last_mut().expect("bytes") ^= 1, "checksum mismatch"),
        ("truncated", |b| b.truncate(b.len() - 3), "corrupt snapshot"),
        ("empty", |b| b.clear(), "truncated"),
        ("unknown version", |b| b[8] = 99, "unknown snapshot format version 99"),
        ("not a snapshot", |b| b[0] = b'x', "not a snapshot file"),
    ];
    for (what, damage, reason) in damages {
        store.save(&node.proj, genesis, hash).expect("save");
        assert!(store.load(genesis).expect("readable").is_some());
        let mut bytes = std::fs::read(store.path()).expect("read");
        damage(&mut bytes);
        std::fs::write(store.path(), bytes).expect("write");
        assert!(store.load(genesis).is_err(), "{what} is detected");
        let (p, report) = load_or_rebuild(&journal, &store).expect("load");
        assert_eq!(p, node.proj, "{what}");
        let why = report.rebuilt_because.unwrap_or_default();
        assert!(why.contains(reason), "{what}: the reason {why:?} names {reason:?}");
        assert_eq!((report.from_snapshot_seq, report.folded), (None, journal.head().seq), "{what}");
    }
}

#[test]
fn saving_is_atomic_a_failed_or_interrupted_save_leaves_the_previous_snapshot() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let store = SnapshotStore::open(&dir.path().join("snap")).expect("store");
    let genesis = journal.genesis().0;
    let early = fold_prefix(&node, 3);
    store.save(&early, genesis, journal.read(3).expect("record").hash.0).expect("save");
    let temp = dir.path().join("snap").join(projections::store::TEMP_NAME);
    assert!(!temp.exists(), "no temporary file is left after a save");

    // A crash while writing the next one leaves a partial temporary file:
    // the snapshot read is still the previous one, and the next save
    // replaces the temporary file.
    let full = projections::store::encode_snapshot(&node.proj, genesis, journal.head().hash.0).expect("encode");
    std::fs::write(&temp, &full[..full.len() / 2]).expect("partial write");
    let (p, seq, _) = store.load(genesis).expect("load").expect("present");
    assert_eq!((p, seq), (early.clone(), 3));

    // A save that cannot write its temporary file fails and changes nothing.
    std::fs::remove_file(&temp).expect("remove");
    std::fs::create_dir(&temp).expect("a directory where the temporary file goes");
    assert!(store.save(&node.proj, genesis, journal.head().hash.0).is_err());
    assert_eq!(store.load(genesis).expect("load").expect("present").1, 3);
    std::fs::remove_dir(&temp).expect("remove");

    store.save_blob(&full).expect("save");
    assert!(!temp.exists());
    let (p, report) = load_or_rebuild(&journal, &store).expect("load");
    assert_eq!((p, report.from_snapshot_seq, report.folded), (node.proj.clone(), Some(journal.head().seq), 0));
    store.clear().expect("clear");
    assert!(store.load(genesis).expect("load").is_none());
}

#[test]
fn a_sled_snapshot_of_format_5_is_ignored_rebuilt_and_removed() {
    let node = busy_node();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = write_journal(&dir.path().join("journal"), "twig", &node.events);
    let snap = dir.path().join("projections");
    {
        // What versions up to format 5 left: a sled database holding a
        // `meta` key (version 5) and chunks.
        let db = sled::open(&snap).expect("sled");
        db.insert(b"meta", &[5u8, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0][..]).expect("insert");
        db.insert(b"chunk\0\0\0\0", &[0u8][..]).expect("insert");
        db.flush().expect("flush");
    }
    assert!(snap.join("db").exists() && snap.join("conf").exists(), "sled's files");
    let store = SnapshotStore::open(&snap).expect("store");
    assert!(store.load(journal.genesis().0).expect("no error").is_none(), "the old format is not read");
    let (p, report) = load_or_rebuild(&journal, &store).expect("load");
    assert_eq!(p, node.proj);
    assert_eq!(report.rebuilt_because.as_deref(), Some("no snapshot"));
    let removed = store.remove_legacy().expect("remove");
    assert!(removed.contains(&"conf".to_owned()) && removed.contains(&"db".to_owned()), "{removed:?}");
    let left: Vec<String> = std::fs::read_dir(&snap)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    assert!(left.is_empty(), "nothing of sled is left: {left:?}");
    store.save(&p, journal.genesis().0, journal.head().hash.0).expect("save");
    assert_eq!(store.remove_legacy().expect("remove"), Vec::<String>::new(), "the new snapshot is not legacy");
    assert_eq!(store.load(journal.genesis().0).expect("load").expect("present").0, node.proj);
}

#[test]
fn every_single_byte_flip_of_a_snapshot_is_refused_without_panic() {
    let node = busy_node();
    let blob = encode_snapshot(&node.proj, [1; 32], [2; 32]).expect("encode");
    assert_eq!(decode_snapshot(&blob, [1; 32]).expect("decodes").0, node.proj);
    assert_eq!(u32::from_le_bytes(blob[8..12].try_into().expect("4")), SNAPSHOT_FORMAT_VERSION);
    for i in 0..blob.len() {
        let mut damaged = blob.clone();
        damaged[i] ^= 0x01;
        assert!(decode_snapshot(&damaged, [1; 32]).is_err(), "flip at byte {i} accepted");
    }
    for len in 0..blob.len() {
        assert!(decode_snapshot(&blob[..len], [1; 32]).is_err(), "truncation to {len} accepted");
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert!(decode_snapshot(&longer, [1; 32]).is_err(), "a trailing byte accepted");
}
