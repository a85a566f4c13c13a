//! `ccnode journal verify` and `ccnode journal stat` on real journal directories.

use journal::{Journal, Options};

use crate::{arg, ccnode, stdout};

/// A data directory whose journal holds `records` records in small segments.
fn data_dir(records: u32) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let options = Options { segment_bytes: journal::SEGMENT_BYTES_MIN, checkpoint_interval_records: 50 };
    let mut journal = Journal::create(&data.path().join("journal"), "cli-node", options).unwrap();
    for i in 0..records {
        journal.append_batch(&[format!("event {i}").into_bytes()]).unwrap();
    }
    data
}

#[test]
fn stat_reports_records_segments_and_head() {
    let data = data_dir(120);
    let head = Journal::open_read_only(&data.path().join("journal")).unwrap().head();
    let out = ccnode(&["journal", "stat", "--data", arg(data.path())]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("records:     120"), "{text}");
    assert!(text.contains(&head.hash.to_hex()), "{text}");
    assert!(text.contains("identity:    cli-node"), "{text}");

    let out = ccnode(&["journal", "stat", "--data", arg(data.path()), "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["records"], 120);
    assert_eq!(value["head"]["hash"], head.hash.to_hex());
    assert!(value["segments"].as_u64().unwrap() > 1);
}

#[test]
fn verify_passes_a_sound_journal_and_names_the_first_bad_seq() {
    let data = data_dir(60);
    let out = ccnode(&["journal", "verify", "--data", arg(data.path())]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).starts_with("ok: 60 records verified"), "{}", stdout(&out));

    // Damage record 2's payload in the first segment.
    let journal_dir = data.path().join("journal");
    let mut segments: Vec<_> = std::fs::read_dir(&journal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    let at = journal::SEGMENT_HEADER_BYTES
        + journal::frame_bytes("event 0".len())
        + journal::FRAME_HEADER_BYTES
        + journal::BODY_FIXED_BYTES;
    bytes[at] ^= 0x20;
    std::fs::write(&segments[0], bytes).unwrap();

    let out = ccnode(&["journal", "verify", "--data", arg(data.path())]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("first bad seq 2"), "{text}");
    assert!(text.contains("00000000000000000001.seg"), "{text}");
}

#[test]
fn verify_from_a_checkpoint_and_until_a_seq() {
    let data = data_dir(200);
    let journal = Journal::open_read_only(&data.path().join("journal")).unwrap();
    let cp = journal.checkpoints()[1];
    let from = format!("{}:{}", cp.seq, cp.hash);
    let out = ccnode(&["journal", "verify", "--data", arg(data.path()), "--from", &from, "--until", "180"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains(&format!("ok: {} records verified", 180 - cp.seq)), "{}", stdout(&out));
    let out = ccnode(&["journal", "verify", "--data", arg(data.path()), "--from", "12:nothex"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_journal_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    for cmd in ["verify", "stat"] {
        let out = ccnode(&["journal", cmd, "--data", arg(empty.path())]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no journal in"), "{cmd}: {err}");
    }
}

#[test]
fn help_explains_the_commands() {
    let out = ccnode(&["journal", "--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("verify") && text.contains("stat"), "{text}");
}
