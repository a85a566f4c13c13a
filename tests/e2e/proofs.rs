//! Issue 11 with the real binary: a node signs checkpoints on its schedule;
//! its checkpoints, inclusion and consistency proofs and a member's
//! statement verify offline with `ccnode proof check` and with an
//! independent verifier (Python, sharing no code with ccnode); every
//! flipped byte and a wrong key are refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::node::Server;
use crate::{arg, ccnode, stdout};

fn text(server: &Server, path: &str) -> (StatusCode, String) {
    let response = reqwest::blocking::get(format!("{}{path}", server.url)).expect("GET");
    let status = response.status();
    (status, response.text().expect("text"))
}

fn get_json(server: &Server, path: &str, user: &str) -> Value {
    let (status, v) = server.call(Method::GET, path, user, None);
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// Makes the node produce every kind of document, written to files.
fn documents(server: &Server, dir: &Path) -> (String, Vec<PathBuf>) {
    server.open("alice", -100, 100);
    server.open("bob", -100, 100);
    for quant in ["1.5", "2", "0.000001"] {
        let body = json!({"payer": "alice", "payee": "bob", "quant": quant, "description": "bread", "type": "pay"});
        let (status, v) = server.call(Method::POST, "/transaction", "alice", Some(body));
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    // The schedule (every second) signs a checkpoint without being asked.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let (status, note) = text(server, "/checkpoint");
        if status == StatusCode::OK {
            break note;
        }
        assert!(Instant::now() < deadline, "no scheduled checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    };
    let first_size: u64 = first.lines().nth(1).expect("size line").parse().expect("size");
    let body = json!({"payer": "bob", "payee": "alice", "quant": "3", "description": "eggs", "type": "pay"});
    server.call(Method::POST, "/transaction", "bob", Some(body));
    let made = server.call(Method::POST, "/admin/checkpoint", "admin", Some(json!({}))).1;
    let second_size = made["data"]["size"].as_u64().expect("size");
    assert!(second_size > first_size);
    let (_, vkey) = text(server, "/node/key");
    let (_, latest) = text(server, "/checkpoint");
    let inclusion = get_json(server, &format!("/proof/inclusion?seq=2&size={second_size}"), "alice");
    let consistency = get_json(server, &format!("/proof/consistency?from={first_size}&to={second_size}"), "alice");
    let statement = get_json(server, "/statement", "alice");
    assert_eq!(statement["balance"], "-0.500001");
    let files = vec![
        write(dir, "first.checkpoint", &first),
        write(dir, "latest.checkpoint", &latest),
        write(dir, "inclusion.json", &inclusion.to_string()),
        write(dir, "consistency.json", &consistency.to_string()),
        write(dir, "statement.json", &statement.to_string()),
    ];
    (vkey.trim().to_owned(), files)
}

fn start(dir: &Path) -> Server {
    Server::spawn(&[
        "serve",
        "--data",
        arg(&dir.join("data")),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "village",
        "--checkpoint-interval",
        "1",
    ])
}

/// Flipped copies of a file: one per position in a spread of positions.
fn flips(file: &Path, dir: &Path) -> Vec<PathBuf> {
    let bytes = std::fs::read(file).expect("read");
    let step = (bytes.len() / 40).max(1);
    let mut out = Vec::new();
    for i in (0..bytes.len()).step_by(step) {
        let mut bad = bytes.clone();
        // Keep the text UTF-8 where it is ASCII; elsewhere a flip makes it invalid, also a refusal.
        bad[i] ^= if bad[i].is_ascii_alphanumeric() { 0x01 } else { 0x02 };
        if bad == bytes || std::str::from_utf8(&bad).is_err_and(|_| bytes[i].is_ascii()) {
            continue;
        }
        let name = format!("{}.flip{i}", file.file_name().and_then(|n| n.to_str()).expect("name"));
        let path = dir.join(name);
        std::fs::write(&path, bad).expect("write");
        out.push(path);
    }
    out
}

/// Whether flipping this byte changes what a verifier reads (JSON
/// whitespace or an escape's case may not): those are verified below one by one.
fn check(key: &str, files: &[PathBuf]) -> std::process::Output {
    let mut args = vec!["proof", "check", "--key", key];
    args.extend(files.iter().map(|f| arg(f)));
    ccnode(&args)
}

#[test]
fn checkpoints_proofs_and_statements_verify_offline_and_refuse_any_change() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path());
    let (vkey, files) = documents(&server, dir.path());
    assert!(vkey.starts_with("village+"), "{vkey}");

    let out = check(&vkey, &files);
    let printed = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert_eq!(printed.lines().filter(|l| l.contains(": OK: ")).count(), files.len(), "{printed}");
    assert!(printed.contains("record 2 is in the signed tree"), "{printed}");
    assert!(printed.contains("alice had a completed balance of -0.500001"), "{printed}");

    // The key from a file works too; another node's key is refused for every file.
    let key_file = write(dir.path(), "village.vkey", &format!("{vkey}\n"));
    assert_eq!(check(arg(&key_file), &files).status.code(), Some(0));
    let other = Server::spawn(&[
        "serve",
        "--data",
        arg(&dir.path().join("other")),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "village",
    ]);
    let (_, other_key) = text(&other, "/node/key");
    other.stop();
    let out = check(other_key.trim(), &files);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().filter(|l| l.contains(": FAILED: ")).count(), files.len(), "{}", stdout(&out));

    // A flipped byte anywhere is refused with the reason.
    let mut refused = 0;
    for file in &files {
        for bad in flips(file, dir.path()) {
            let out = check(&vkey, std::slice::from_ref(&bad));
            let printed = stdout(&out);
            if out.status.code() == Some(0) {
                // Only a change a JSON reader cannot see may pass (e.g. inside insignificant syntax): none exist here,
                // as the documents are compact JSON, so any pass is a failure of the verifier.
                panic!("{} verified: {printed}", bad.display());
            }
            assert_eq!(out.status.code(), Some(1), "{printed}");
            assert!(printed.contains("FAILED: "), "{printed}");
            refused += 1;
        }
    }
    assert!(refused > 100, "only {refused} flips tried");
    assert_eq!(ccnode(&["proof", "check", "--key", "not-a-key", arg(&files[0])]).status.code(), Some(2));
    server.stop();

    // Offline, `verify` and `audit` check every journaled checkpoint's root and signature too.
    let data = dir.path().join("data");
    let out = ccnode(&["verify", "--data", arg(&data), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let bundle = dir.path().join("village.ccaudit");
    let out = ccnode(&["export", "--data", arg(&data), "--out", arg(&bundle), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ccnode(&["audit", arg(&bundle), "--json", "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&stdout(&out)).expect("JSON summary");
    assert!(summary["signed_checkpoints"].as_u64() >= Some(2), "{summary}");
}

/// The Python verifier: needs python3 with `cryptography`, installed from
/// Debian (`python3-cryptography`) when absent. Never skipped.
#[test]
fn an_independent_verifier_checks_a_live_node() {
    let has_cryptography =
        || Command::new("python3").args(["-c", "import cryptography"]).status().is_ok_and(|s| s.success());
    if !has_cryptography() {
        crate::apt_install(&["python3-cryptography"]);
        assert!(has_cryptography(), "python3-cryptography installed, but python3 cannot import cryptography");
    }
    let dir = tempfile::tempdir().expect("dir");
    let server = start(dir.path());
    let (vkey, files) = documents(&server, dir.path());
    server.stop();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/verifier/independent_verifier.py");
    let run = |files: &[PathBuf]| {
        Command::new("python3")
            .arg(&script)
            .arg(&vkey)
            .args(files)
            .output()
            .expect("python3 runs (install python3 and python3-cryptography)")
    };
    let out = run(&files);
    let printed = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(printed.lines().filter(|l| l.contains(": OK: ")).count(), files.len(), "{printed}");
    for file in &files {
        for bad in flips(file, dir.path()).into_iter().take(12) {
            let out = run(std::slice::from_ref(&bad));
            assert_eq!(
                out.status.code(),
                Some(1),
                "{} passed the independent verifier: {}",
                bad.display(),
                stdout(&out)
            );
        }
    }
}

/// Three real nodes in a tree under payments: once keys are exchanged, every
/// node's latest checkpoint carries its neighbours' cosignatures within a few
/// reconciliation intervals, and verifies offline with `--witness`.
#[test]
fn a_tree_of_nodes_cosign_each_others_checkpoints() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let serve = |dir: &Path, name: &str| {
        Server::spawn_env(
            &["serve", "--data", arg(dir), "--listen", "127.0.0.1:0", "--name", name, "--checkpoint-interval", "1"],
            &[("CCNODE_RECONCILE_INTERVAL", "1")],
        )
    };
    let trunk = serve(dirs[0].path(), "trunk");
    let twig1 = serve(dirs[1].path(), "twig1");
    let twig2 = serve(dirs[2].path(), "twig2");
    crate::federation::graft(&trunk, "trunk", &twig1, "twig1", "1", -1000);
    crate::federation::graft(&trunk, "trunk", &twig2, "twig2", "1", -1000);
    let vkey = |s: &Server| text(s, "/node/key").1.trim().to_owned();
    let keys = [vkey(&trunk), vkey(&twig1), vkey(&twig2)];
    for (node, neighbour, key) in [
        (&trunk, "twig1", &keys[1]),
        (&trunk, "twig2", &keys[2]),
        (&twig1, "trunk", &keys[0]),
        (&twig2, "trunk", &keys[0]),
    ] {
        let (status, v) =
            node.call(Method::PUT, &format!("/admin/nodes/{neighbour}/key"), "admin", Some(json!({"public_key": key})));
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    twig1.open("alice", -1000, 1000);
    twig2.open("bob", -1000, 1000);
    for quant in [3, 4] {
        let body = json!({"payer": "alice", "payee": "twig2/bob", "quant": quant, "description": "x", "type": "pay"});
        let (status, v) = twig1.call(Method::POST, "/transaction", "alice", Some(body));
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let dir = tempfile::tempdir().expect("dir");
    for (i, (node, witnesses)) in [(&trunk, vec![1, 2]), (&twig1, vec![0]), (&twig2, vec![0])].into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, note) = text(node, "/checkpoint");
            let file = write(dir.path(), &format!("node{i}.checkpoint"), &note);
            let mut args = vec!["proof", "check", "--key", keys[i].as_str()];
            for w in &witnesses {
                args.extend(["--witness", keys[*w].as_str()]);
            }
            args.push(arg(&file));
            let out = ccnode(&args);
            if out.status.code() == Some(0) {
                assert!(stdout(&out).contains("cosigned by"), "{}", stdout(&out));
                break;
            }
            assert!(Instant::now() < deadline, "node {i} not cosigned in time: {}", stdout(&out));
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    for node in [trunk, twig1, twig2] {
        node.stop();
    }
}
