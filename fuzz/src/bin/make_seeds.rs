//! Writes the seed corpus, `fuzz/corpus/<target>/`, from the golden fixtures
//! (journal/tests/fixtures/golden-v1, ledger/tests/fixtures/*.bin,
//! replay/tests/fixtures/golden-v1.ccaudit), a small journal written here,
//! and the Credit Commons reference's wire captures
//! (../shared/reference/wire-0.8/). Run from the repository root:
//! `cargo run -p fuzz --bin make-seeds`. The output is committed; run it
//! again only when a format changes.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use fuzz::join_parts;
use journal::{Journal, Options};
use ledger::workflow::default_workflows;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("repository root")?.to_path_buf();
    let corpus = root.join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<()> {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes).with_context(|| format!("{target}/{name}"))
    };

    // Events: every event of the golden fixtures (u32 length, then the event).
    let mut events: Vec<Vec<u8>> = Vec::new();
    let mut fixtures: Vec<_> = fs::read_dir(root.join("ledger/tests/fixtures"))?.collect::<Result<_, _>>()?;
    fixtures.sort_by_key(fs::DirEntry::file_name);
    for entry in fixtures {
        let name = entry.file_name().to_string_lossy().trim_end_matches(".bin").to_owned();
        let blob = fs::read(entry.path())?;
        let mut rest = blob.as_slice();
        let mut n = 0;
        while rest.len() >= 4 {
            let len = usize::try_from(u32::from_le_bytes(rest[..4].try_into()?))?;
            let event = &rest[4..4 + len];
            write("event", &format!("{name}-{n:02}"), event)?;
            events.push(event.to_vec());
            rest = &rest[4 + len..];
            n += 1;
        }
    }

    // The golden journal's records: a real, coherent sequence of events.
    let golden = root.join("journal/tests/fixtures/golden-v1");
    let segment = fs::read(golden.join("00000000000000000001.seg"))?;
    write("journal", "golden-v1", &[&[0u8][..], &join_parts(&[&segment])].concat())?;
    write("journal", "golden-v1-repaired", &[&[7u8][..], &join_parts(&[&segment])].concat())?;

    // A journal of two segments, the first sealed with its index.
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path().join("journal");
    let mut small =
        Journal::create(&dir, "fuzz", Options { segment_bytes: 4096, checkpoint_interval_records: 1 << 20 })?;
    let body = vec![b'x'; 600];
    for _ in 0..8 {
        small.append_batch(&[body.as_slice(), b"second of the batch"])?;
    }
    drop(small);
    let mut names: Vec<_> = fs::read_dir(&dir)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    let segs: Vec<_> = names.iter().filter(|n| n.to_string_lossy().ends_with(".seg")).collect();
    let seg1 = fs::read(dir.join(segs[0]))?;
    let seg2 = fs::read(dir.join(segs[1]))?;
    let idx1 = fs::read(dir.join(segs[0]).with_extension("idx"))?;
    write("journal", "two-segments-indexed", &[&[0u8][..], &join_parts(&[&seg1, &idx1, &seg2])].concat())?;
    write("journal", "two-segments-no-index", &[&[0u8][..], &join_parts(&[&seg1, b"", &seg2])].concat())?;
    write("journal", "two-segments-repaired", &[&[7u8][..], &join_parts(&[&seg1, &idx1, &seg2])].concat())?;

    // Snapshots: the golden bundle's events folded, and an empty ledger.
    let golden_bundle = fs::read(root.join("replay/tests/fixtures/golden-v1.ccaudit"))?;
    let (genesis, head, payloads) = bundle_records(&golden_bundle)?;
    let mut p = projections::Projections::new();
    write("snapshot", "empty", &projections::store::encode_snapshot(&p, genesis, [0; 32])?[12..])?;
    for (seq, payload) in (1u64..).zip(&payloads) {
        p.try_apply(seq, seq * 1_000_000, &ledger::decode_event(payload)?)?;
    }
    write("snapshot", "golden-v1", &projections::store::encode_snapshot(&p, genesis, head)?[12..])?;

    // Bundles: the golden bundle as it is, and well-framed ones from payloads.
    write("bundle", "golden-v1", &[&[0u8][..], &golden_bundle].concat())?;
    let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    write("bundle", "golden-v1-events", &[&[1u8][..], &join_parts(&slices)].concat())?;
    let fixture_events: Vec<&[u8]> = events.iter().take(40).map(Vec::as_slice).collect();
    write("bundle", "fixture-events", &[&[1u8][..], &join_parts(&fixture_events)].concat())?;

    // Workflow codes, files, paths, amounts, names.
    for (n, workflow) in default_workflows().iter().enumerate() {
        if let Ok(code) = workflow.to_code() {
            write("workflow", &format!("code-{n}"), &[&[0u8][..], code.as_bytes()].concat())?;
        }
    }
    let file: Vec<_> = default_workflows().iter().map(api::wire::workflow::WorkflowJson::from).collect();
    write("workflow", "file-defaults", &[&[1u8][..], serde_json::to_string(&file)?.as_bytes()].concat())?;
    for (n, path) in
        ["alice", "twig/alice", "leaf/bob", "trunk/other/carol", "leaf", "/alice", "x/twig/leaf/a/"].iter().enumerate()
    {
        write("workflow", &format!("path-{n}"), &[&[2u8][..], path.as_bytes()].concat())?;
    }
    for (n, amount) in ["10", "-0.5", "0.000001", "999999999.999999", "1e3"].iter().enumerate() {
        write("workflow", &format!("amount-{n}"), &[&[3u8][..], amount.as_bytes()].concat())?;
    }
    write("workflow", "name", b"\x04alice-1")?;

    // HTTP: the reference's captured requests, then every route of ours.
    let wire = root.join("../shared/reference/wire-0.8");
    let mut n = 0;
    if let Ok(dir) = fs::read_dir(&wire) {
        let mut files: Vec<_> = dir.collect::<Result<_, _>>()?;
        files.sort_by_key(fs::DirEntry::file_name);
        for entry in files {
            let text = fs::read_to_string(entry.path())?;
            for request in captured_requests(&text) {
                write("http", &format!("wire-0.8-{n:02}"), &request)?;
                n += 1;
            }
        }
    }
    let uuid = "3f74716e-b7c5-4623-b969-1bc9653a6c5e";
    let ours: &[(&str, &str, &str)] = &[
        ("GET /about", "", ""),
        ("GET /workflows", "alice:alice-key", ""),
        ("GET /absolutepath", "alice:alice-key", ""),
        ("GET /handshake", "alice:alice-key", ""),
        ("OPTIONS /", "", ""),
        ("GET /account/names?fragment=a&limit=5", "alice:alice-key", ""),
        ("GET /account/summary?acc_path=bob", "alice:alice-key", ""),
        ("GET /account/limits?acc_path=alice", "alice:alice-key", ""),
        ("GET /account/history?acc_path=alice&samples=3", "alice:alice-key", ""),
        ("GET /account/balance?acc_path=alice", "alice:alice-key", ""),
        ("GET /account/warnings", "alice:alice-key", ""),
        ("GET /account/statement?from=2020-01-01", "alice:alice-key", ""),
        (
            "POST /transaction",
            "alice:alice-key",
            r#"{"payee":"bob","payer":"alice","quant":"1.5","description":"seed","type":"credit","metadata":{"k":"v"}}"#,
        ),
        (
            "POST /transaction",
            "alice:alice-key",
            r#"{"payee":"leaf/carol","payer":"alice","quant":2,"description":"to a child","type":"pay"}"#,
        ),
        ("GET /transactions?state=pending&sort=written&dir=desc", "alice:alice-key", ""),
        ("GET /entries?acc_path=alice&limit=2&offset=1", "alice:alice-key", ""),
        (&format!("GET /transaction/{uuid}"), "alice:alice-key", ""),
        (&format!("PATCH /transaction/{uuid}/completed"), "bob:bob-key", ""),
        (&format!("GET /entries/{uuid}"), "alice:alice-key", ""),
        ("GET /replay/events?from=1&limit=10", "admin:admin-secret", ""),
        ("POST /admin/accounts", "admin:admin-secret", r#"{"id":"carol","key":"carol-key","min":-5,"max":5.5}"#),
        ("PATCH /admin/accounts/alice", "admin:admin-secret", r#"{"min":-50,"max":50,"active":true}"#),
        ("GET /admin/accounts", "admin:admin-secret", ""),
        ("GET /admin/health", "admin:admin-secret", ""),
        ("GET /admin/warnings", "admin:admin-secret", ""),
        ("GET /admin/export/accounts", "admin:admin-secret", ""),
        ("GET /admin/export/transactions?format=csv", "admin:admin-secret", ""),
        ("GET /admin/nodes", "admin:admin-secret", ""),
        ("POST /admin/nodes", "admin:admin-secret", r#"{"id":"leaf2","url":"http://127.0.0.1:9","min":-1,"max":1}"#),
        (
            "PUT /admin/trunkward",
            "admin:admin-secret",
            r#"{"name":"trunk","url":"http://127.0.0.1:9","rate":"2","min":-10,"max":10}"#,
        ),
        ("PUT /admin/fees", "admin:admin-secret", r#"{"rate":"0.01","account":"admin"}"#),
        ("POST /admin/nodes/leaf/reopen", "admin:admin-secret", ""),
        ("POST /admin/nodes/leaf/rotate", "admin:admin-secret", r#"{"last_hash":"00"}"#),
        ("PUT /admin/nodes/leaf/key", "admin:admin-secret", r#"{"name":"leaf","key":"ed25519:AAAA"}"#),
        ("POST /admin/checkpoint", "admin:admin-secret", ""),
        ("POST /admin/node/key", "admin:admin-secret", ""),
        ("GET /node/key", "", ""),
        ("GET /checkpoint", "", ""),
        ("GET /proof/inclusion?seq=1&size=1", "", ""),
        ("GET /proof/consistency?from=1&to=1", "", ""),
        ("GET /proof/balance?account=alice", "alice:alice-key", ""),
        ("GET /statement?account=alice", "alice:alice-key", ""),
        (
            "POST /transaction/relay",
            "leaf:fuzz-link-secret",
            r#"{"uuid":"ad686d82-e309-4c44-b27a-8b57bb91a2cc","written":"","type":"pay","entries":[{"payee":"bob","payer":"leaf/alice","quant":7,"description":"relayed","metadata":{}}]}"#,
        ),
        ("GET /replay/link/leaf?from=1", "leaf:fuzz-link-secret", ""),
        (
            "POST /replay/reconcile/leaf",
            "leaf:fuzz-link-secret",
            r#"{"versions":[{"uuid":"ad686d82-e309-4c44-b27a-8b57bb91a2cc","version":1,"state":"completed"}]}"#,
        ),
        ("POST /witness/add-checkpoint", "leaf:fuzz-link-secret", r#"{"seq":1,"root":"00","signature":"00"}"#),
        ("GET /openapi.json", "", ""),
        ("GET /metrics", "", ""),
        ("GET /ui/index.html", "", ""),
    ];
    for (i, (line, caller, body)) in ours.iter().enumerate() {
        write("http", &format!("route-{i:02}"), &join_parts(&[line.as_bytes(), caller.as_bytes(), body.as_bytes()]))?;
    }
    Ok(())
}

/// A bundle's genesis, head hash and record payloads (format in replay/src/bundle.rs).
/// A bundle's genesis, head hash and payloads.
type BundleRecords = ([u8; 32], [u8; 32], Vec<Vec<u8>>);

fn bundle_records(bundle: &[u8]) -> Result<BundleRecords> {
    let u32_at =
        |at: usize| -> Result<usize> { Ok(usize::try_from(u32::from_le_bytes(bundle[at..at + 4].try_into()?))?) };
    let u64_at = |at: usize| -> Result<u64> { Ok(u64::from_le_bytes(bundle[at..at + 8].try_into()?)) };
    let identity_len = u32_at(12)?;
    let mut at = 16 + identity_len;
    let genesis: [u8; 32] = bundle[at..at + 32].try_into()?;
    let count = u64_at(at + 32)?;
    at += 40;
    let checkpoints = u32_at(at)?;
    at += 4 + checkpoints * 40;
    let mut payloads = Vec::new();
    let mut head = genesis;
    for _ in 0..count {
        head = bundle[at + 48..at + 80].try_into()?;
        let len = u32_at(at + 80)?;
        payloads.push(bundle[at + 84..at + 84 + len].to_vec());
        at += 84 + len;
    }
    Ok((genesis, head, payloads))
}

/// The requests of one capture (`REQ  METHOD /path`, `cc-user`/`cc-auth`
/// or `HTTP_CC_USER`/`HTTP_CC_AUTH` headers, then a body) as seeds, the
/// reference's users mapped to ours.
fn captured_requests(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current: Option<(String, String, String)> = None;
    let finish = |current: &mut Option<(String, String, String)>, out: &mut Vec<Vec<u8>>| {
        if let Some((line, user, body)) = current.take() {
            let caller = match user.as_str() {
                "" => String::new(),
                "branch" => "leaf:fuzz-link-secret".to_owned(),
                "bob" => "bob:bob-key".to_owned(),
                _ => "alice:alice-key".to_owned(),
            };
            out.push(join_parts(&[line.as_bytes(), caller.as_bytes(), body.as_bytes()]));
        }
    };
    let mut in_body = false;
    for raw in text.lines() {
        if let Some(rest) = raw.strip_prefix("REQ  ") {
            let first = rest.split(' ').next().unwrap_or_default();
            if ["GET", "POST", "PATCH", "PUT", "DELETE"].contains(&first) {
                finish(&mut current, &mut out);
                let line = rest.trim_end_matches(" HTTP/1.1").replace("trunk/", "").to_owned();
                current = Some((line, String::new(), String::new()));
                in_body = false;
            } else if let Some((name, value)) = rest.split_once(": ") {
                if name.eq_ignore_ascii_case("cc-user") || name == "HTTP_CC_USER" {
                    if let Some(c) = current.as_mut() {
                        c.1 = value.trim().to_owned();
                    }
                }
            } else if rest.trim().is_empty() {
                in_body = true;
            }
        } else if let Some(body) = raw.strip_prefix("REQUEST BODY: ") {
            if let Some(c) = current.as_mut() {
                c.2 = body.to_owned();
            }
        } else if raw.starts_with('{') && current.is_some() && (in_body || raw.contains("\"entries\"")) {
            if let Some(c) = current.as_mut() {
                if c.2.is_empty() {
                    c.2 = raw.to_owned();
                }
            }
        } else if raw.starts_with("RESP") {
            in_body = false;
        }
    }
    finish(&mut current, &mut out);
    out
}
