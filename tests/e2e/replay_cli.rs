//! Issue 6 through the real binary: the event feed of a running node
//! (verified from its records alone), then `verify`, `replay --until`
//! against `balance --at`, `export` and `audit`, and tampering found by both.

use std::path::Path;

use rand::{Rng, SeedableRng};
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::node::Server;
use crate::{arg, ccnode, stdout};

/// Seed from REPLAY_SEED (else random), printed if the test fails.
struct Seed(u64);

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("randomized test failed with REPLAY_SEED={}", self.0);
        }
    }
}

fn seed() -> Seed {
    Seed(std::env::var("REPLAY_SEED").ok().map_or_else(rand::random, |s| s.parse().expect("REPLAY_SEED is a u64")))
}

fn hash(text: &str) -> journal::Hash {
    journal::Hash::from_hex(text).unwrap_or_else(|| panic!("{text:?} is not a hash"))
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

/// Every record of the feed, paged by `limit`, checked as an outside auditor
/// would: dense seqs, each hash recomputed from the record's own fields, each
/// prev_hash the previous hash, the first one the identity's genesis.
fn fetch_and_verify_feed(server: &Server, limit: u64) -> (Vec<Value>, Value) {
    let mut records: Vec<Value> = Vec::new();
    let mut meta;
    loop {
        let after = records.len();
        let path = format!("/replay/events?after={after}&limit={limit}");
        let (status, page) = server.call(Method::GET, &path, "admin", None);
        assert_eq!(status, StatusCode::OK, "{page}");
        meta = page["meta"].clone();
        let items = page["data"].as_array().expect("data").clone();
        assert!(items.len() <= usize::try_from(limit).expect("fits"));
        if items.is_empty() {
            break;
        }
        records.extend(items);
    }
    let identity = meta["identity"].as_str().expect("identity");
    let genesis = journal::genesis_hash(identity);
    assert_eq!(hash(meta["genesis"].as_str().expect("genesis")), genesis);
    let mut prev = genesis;
    for (i, r) in records.iter().enumerate() {
        let seq = r["seq"].as_u64().expect("seq");
        assert_eq!(seq, u64::try_from(i).expect("fits") + 1, "dense seqs");
        assert_eq!(hash(r["prev_hash"].as_str().expect("prev_hash")), prev, "link at seq {seq}");
        let at = r["recorded_at_us"].as_u64().expect("recorded_at_us");
        let payload = unhex(r["payload"].as_str().expect("payload"));
        let recomputed = journal::record_hash(&prev, seq, at, &payload);
        assert_eq!(hash(r["hash"].as_str().expect("hash")), recomputed, "hash at seq {seq}");
        assert_eq!(api::wire::parse_rfc3339(r["recorded_at"].as_str().expect("recorded_at")), Some(at));
        assert!(r["event"]["type"].is_string(), "{r}");
        prev = recomputed;
    }
    assert_eq!(meta["head"]["seq"].as_u64(), Some(u64::try_from(records.len()).expect("fits")));
    assert_eq!(hash(meta["head"]["hash"].as_str().expect("head hash")), prev);
    (records, meta)
}

fn trade(server: &Server, rng: &mut impl Rng, members: &[&str]) {
    for _ in 0..40 {
        let payer = members[rng.gen_range(0..members.len())];
        let payee = loop {
            let p = members[rng.gen_range(0..members.len())];
            if p != payer {
                break p;
            }
        };
        let quant = format!("{}.{:02}", rng.gen_range(1..30), rng.gen_range(0..100));
        let kind = ["pay", "bill", "credit"][rng.gen_range(0..3)];
        let author = if kind == "bill" { payee } else { payer };
        let body = json!({"payer": payer, "payee": payee, "quant": quant, "description": "e2e", "type": kind});
        let (status, created) = server.call(Method::POST, "/transaction", author, Some(body));
        if status == StatusCode::OK {
            // `credit` waits in validated: confirm most of them.
            let uuid = created["data"]["uuid"].as_str().expect("uuid").to_owned();
            if rng.gen_bool(0.7) {
                server.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), author, None);
            }
        }
    }
}

fn balance_at(data: &Path, account: &str, at: &str) -> String {
    let out = ccnode(&["balance", "--data", arg(data), account, "--at", at, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).expect("json");
    value["balance"].as_str().expect("balance").to_owned()
}

fn replay_json(data: &Path, until: &str) -> Value {
    let out = ccnode(&["replay", "--data", arg(data), "--until", until, "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("replay json")
}

/// Bundle offset of a payload byte of record `seq`.
fn bundle_payload_offset(bytes: &[u8], seq: u64) -> usize {
    let u32_at =
        |at: usize| usize::try_from(u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"))).expect("fits");
    let mut pos = 16 + u32_at(12) + 32 + 8;
    pos += 4 + u32_at(pos) * 40;
    for s in 1.. {
        let len = u32_at(pos + 80);
        if s == seq {
            return pos + 84 + len / 2;
        }
        pos += 84 + len;
    }
    unreachable!()
}

/// Journal segment offset of a payload byte of record `seq` (one segment).
fn journal_payload_offset(segment: &[u8], seq: u64) -> usize {
    let mut pos = journal::SEGMENT_HEADER_BYTES;
    loop {
        let body_len = usize::try_from(u32::from_le_bytes(segment[pos..pos + 4].try_into().expect("4"))).expect("fits");
        let body = pos + journal::FRAME_HEADER_BYTES;
        if u64::from_le_bytes(segment[body + 1..body + 9].try_into().expect("8")) == seq {
            return body + journal::BODY_FIXED_BYTES + 1;
        }
        pos = body + body_len;
    }
}

#[test]
fn the_event_feed_replay_export_and_audit_agree_and_find_tampering() {
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.0);
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "village");
    let members = ["alice", "bob", "carol", "dave"];
    for m in members {
        server.open(m, -60, 60);
    }
    trade(&server, &mut rng, &members);

    // The feed: admins only.
    let anonymous = reqwest::blocking::get(format!("{}/replay/events", server.url)).expect("request");
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
    let (status, _) = server.call(Method::GET, "/replay/events", "alice", None);
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.call(Method::GET, "/replay/events?limit=0", "admin", None);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (records, meta) = fetch_and_verify_feed(&server, 7);
    let head = meta["head"]["seq"].as_u64().expect("head");
    assert!(head > 20, "the trade wrote records: {head}");

    // Random past seqs and instants; replay (which reads the journal while the
    // node runs) agrees with `/account/balance?at=` for every account.
    let mut points: Vec<String> = (0..6).map(|_| rng.gen_range(0..=head).to_string()).collect();
    for _ in 0..4 {
        let r = &records[rng.gen_range(0..records.len())];
        points.push(r["recorded_at"].as_str().expect("time").to_owned());
    }
    points.push("2001-01-01T00:00:00Z".to_owned());
    for point in &points {
        let state = replay_json(data.path(), point);
        for account in members {
            let replayed = state["accounts"]
                .as_array()
                .expect("accounts")
                .iter()
                .find(|a| a["id"] == account)
                .map_or(0.0, |a| a["completed"].as_str().expect("completed").parse::<f64>().expect("number"));
            let path = format!("/account/balance?acc_path={account}&at={point}");
            let (status, body) = server.call(Method::GET, &path, "admin", None);
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["data"]["balance"].as_f64(), Some(replayed), "{account} at {point}");
        }
    }
    server.stop();

    // verify: sound, and the snapshot saved at shutdown matches.
    let out = ccnode(&["verify", "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains(&format!("matches the journal at seq {head}")), "{}", stdout(&out));

    // Offline: replay --until agrees with balance --at at the same points.
    for point in &points {
        let state = replay_json(data.path(), point);
        let listed: Vec<(String, String)> = state["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .map(|a| (a["id"].as_str().expect("id").to_owned(), a["completed"].as_str().expect("c").to_owned()))
            .collect();
        for account in members.iter().chain(["admin"].iter()) {
            let expected = listed.iter().find(|(id, _)| id == account).map_or("0", |(_, b)| b.as_str());
            assert_eq!(balance_at(data.path(), account, point), expected, "{account} at {point}");
        }
        let sum = listed
            .iter()
            .map(|(_, b)| b.parse::<rust_decimal::Decimal>().expect("a decimal"))
            .sum::<rust_decimal::Decimal>();
        assert!(sum.is_zero(), "zero-sum at {point}: {sum}");
    }

    // export + audit; then a tampered byte is named by its seq.
    let bundle = data.path().join("village.ccaudit");
    let out = ccnode(&["export", "--data", arg(data.path()), "--out", arg(&bundle), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    {
        // The bundle holds every key hash: owner-only, like the journal.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bundle).expect("bundle").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "bundle mode {mode:o}");
    }
    let out = ccnode(&["audit", arg(&bundle), "--no-progress", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["head"], meta["head"]);
    assert_eq!(summary["identity"], "village");
    let mut bytes = std::fs::read(&bundle).expect("bundle");
    let victim = rng.gen_range(1..=head);
    let offset = bundle_payload_offset(&bytes, victim);
    bytes[offset] ^= 0x20;
    std::fs::write(&bundle, &bytes).expect("write");
    let out = ccnode(&["audit", arg(&bundle), "--no-progress"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains(&format!("AUDIT FAILED at seq {victim}")), "{}", stdout(&out));

    // A tampered journal record (a flipped byte in its segment file, or its
    // row changed with SQL in the PostgreSQL run): verify names it.
    match crate::test_store(&["--data", arg(data.path())], false) {
        Some(url) => crate::postgres::alter_with_sql(&url, victim),
        None => {
            let journal_dir = data.path().join("journal");
            let segment = std::fs::read_dir(&journal_dir)
                .expect("dir")
                .map(|e| e.expect("entry").path())
                .find(|p| p.extension().is_some_and(|e| e == "seg"))
                .expect("a segment");
            let mut seg = std::fs::read(&segment).expect("segment");
            let offset = journal_payload_offset(&seg, victim);
            seg[offset] ^= 0x20;
            std::fs::write(&segment, seg).expect("write");
        }
    }
    let out = ccnode(&["verify", "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains(&format!("seq {victim}")), "{}", stdout(&out));
    let out = ccnode(&["export", "--data", arg(data.path()), "--out", arg(&bundle), "--no-progress"]);
    assert_ne!(out.status.code(), Some(0), "a damaged journal is not exported: {out:?}");
}

#[test]
fn verify_replay_and_audit_refuse_what_they_cannot_read() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = ccnode(&["verify", "--data", arg(empty.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = ccnode(&["replay", "--data", arg(empty.path()), "--until", "3"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = ccnode(&["audit", arg(&empty.path().join("missing.ccaudit"))]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let junk = empty.path().join("junk.ccaudit");
    std::fs::write(&junk, b"not a bundle at all").expect("write");
    let out = ccnode(&["audit", arg(&junk)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains("bad magic"), "{}", stdout(&out));
}
