//! Golden fixtures: the bytes and hashes of format version 1 must never change.
//! Regenerate only with a new format version: `UPDATE_GOLDEN=1 cargo test -p journal golden`.

use std::fs;
use std::path::PathBuf;

use journal::{verify_dir, Journal, Options, VerifyOptions};

use crate::{copy_dir, read_all};

const IDENTITY: &str = "golden-node";
const T0_US: u64 = 1_700_000_000_000_000;
/// The head hash of the fixture journal, pinned.
const HEAD_HASH: &str = "3d7339e1aeb1aea78cc646deba7d7bd3fbd785b9cf0c5757957a4300a9939d1d";

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v1")
}

fn batches() -> Vec<(u64, Vec<Vec<u8>>)> {
    vec![
        (T0_US, vec![b"alpha".to_vec(), Vec::new()]),
        (T0_US + 1, vec![b"gamma: a longer payload, with bytes \x00\xff".to_vec()]),
        // A clock that went back is clamped to the head's time.
        (T0_US - 5, vec![b"delta".to_vec()]),
    ]
}

#[test]
fn encoding_and_hashes_match_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::create(dir.path(), IDENTITY, Options::default()).unwrap();
    for (at, batch) in batches() {
        journal.append_batch_at(at, &batch).unwrap();
    }
    let head = journal.head();
    drop(journal);
    let files = ["JOURNAL", "00000000000000000001.seg"];
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(fixture_dir()).unwrap();
        for name in files {
            fs::copy(dir.path().join(name), fixture_dir().join(name)).unwrap();
        }
        eprintln!("new head hash: {}", head.hash);
        return;
    }
    for name in files {
        let want = fs::read(fixture_dir().join(name)).unwrap();
        let got = fs::read(dir.path().join(name)).unwrap();
        assert!(got == want, "{name} encodes differently from the golden fixture: the format changed");
    }
    assert_eq!(head.seq, 4);
    assert_eq!(head.hash.to_hex(), HEAD_HASH);
}

#[test]
fn the_fixture_reads_back_and_its_hashes_are_the_documented_formula() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), dir.path());
    let journal = Journal::open(dir.path(), Options::default()).unwrap();
    let records = read_all(&journal);
    let expected: Vec<Vec<u8>> = batches().into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(records.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(), expected);
    // Recompute the chain with blake3 directly, from the documented formula.
    let mut prev =
        *blake3::Hasher::new_derive_key("ccnode journal v1 genesis").update(IDENTITY.as_bytes()).finalize().as_bytes();
    for (idx, record) in records.iter().enumerate() {
        let seq = idx as u64 + 1;
        let mut hasher = blake3::Hasher::new();
        hasher
            .update(&prev)
            .update(&seq.to_le_bytes())
            .update(&record.recorded_at_us.to_le_bytes())
            .update(&record.payload);
        let hash = *hasher.finalize().as_bytes();
        assert_eq!(record.prev_hash.0, prev);
        assert_eq!(record.hash.0, hash, "seq {seq}");
        prev = hash;
    }
    assert_eq!(records[0].recorded_at_us, T0_US);
    assert_eq!(records[3].recorded_at_us, T0_US + 1, "time is clamped, never goes back");
    assert_eq!(journal::Hash(prev).to_hex(), HEAD_HASH);
    drop(journal);
    assert!(verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap().is_ok());
}
