//! Issue 16, items 5 and 6, through the real binary: slow clients are cut
//! off at the header and body timeouts, connections beyond the maximum wait,
//! the data directory is owner-only, and the admin key never needs to be on
//! the command line.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::arg;

const KEY: &str = "hardening-admin-key";

/// A `ccnode serve` whose stderr is kept, started without `CCNODE_ADMIN_KEY`.
struct Node {
    child: Child,
    url: String,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    fn start(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ccnode"));
        if let Some(url) = crate::test_store(args, true) {
            command.env("CCNODE_STORE", url);
        }
        let mut child = command
            .args(args)
            .env_remove("CCNODE_ADMIN_KEY")
            .env_remove("CCNODE_ADMIN_KEY_FILE")
            .env_remove("CCNODE_DATA")
            .envs(envs.iter().copied())
            .env("CCNODE_LOG", "warn")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ccnode serve");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(text.as_bytes()).expect("write stdin");
            // Dropped: standard input ends.
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                eprint!("{text}");
                sink.lock().expect("lock").push_str(&text);
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("listening line");
        let url = line.split_whitespace().last().unwrap_or_else(|| panic!("no address in {line:?}")).to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "ccnode did not start: {line:?}");
        let addr = url.trim_start_matches("http://").to_owned();
        Node { child, url, addr, stderr }
    }

    fn serve(data: &Path, extra: &[&str]) -> Node {
        let mut args = vec!["serve", "--data", arg(data), "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Node::start(&args, &[("CCNODE_ADMIN_KEY", KEY)], None)
    }

    /// `GET /admin/nodes` as the admin with `key`: a request that must work.
    fn admin_get(&self, key: &str) -> StatusCode {
        let client = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
        let response = client
            .get(format!("{}/admin/nodes", self.url))
            .header("cc-user", "admin")
            .header("cc-auth", key)
            .send()
            .expect("the node answers");
        response.status()
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "exit after SIGTERM: {exit:?}");
        std::thread::sleep(Duration::from_millis(100));
        self.stderr.lock().expect("lock").clone()
    }

    fn cmdline(&self) -> String {
        let raw = std::fs::read(format!("/proc/{}/cmdline", self.child.id())).expect("cmdline");
        String::from_utf8_lossy(&raw).replace('\0', " ")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until the peer closes; `Ok(bytes)` when it did before `deadline`.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(got),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("still open, {} bytes received", got.len()))
            }
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// Reads one response's head (up to the blank line), or `None` if nothing
/// came within `wait`.
fn read_head(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// Finding 5: 200 connections that send half a request line and stall are
/// closed after `--header-timeout`, while a normal request is served.
#[test]
fn hardening_slow_headers_are_cut_off_at_the_header_timeout() {
    let started = Instant::now();
    let data = tempfile::tempdir().expect("tempdir");
    let node = Node::serve(data.path(), &["--header-timeout", "1"]);
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(&node.addr).expect("connect");
            stream.write_all(b"GET /abo").expect("half a request line");
            stream
        })
        .collect();
    assert_eq!(node.admin_get(KEY), StatusCode::OK, "a normal request is served meanwhile");
    let deadline = started + Duration::from_secs(12);
    for (i, stream) in slow.iter_mut().enumerate() {
        if let Err(state) = read_until_closed(stream, deadline) {
            panic!("slow connection {i} not closed by the header timeout: {state}");
        }
    }
    assert_eq!(node.admin_get(KEY), StatusCode::OK, "and after");
    node.stop();
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}

/// Finding 5: a body that does not arrive within `--body-timeout` gets 408
/// `CCFailure` and the connection closes.
#[test]
fn hardening_a_stalled_body_gets_408_at_the_body_timeout() {
    let data = tempfile::tempdir().expect("tempdir");
    let node = Node::serve(data.path(), &["--body-timeout", "1"]);
    let mut stream = TcpStream::connect(&node.addr).expect("connect");
    let head = format!(
        "POST /admin/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncc-user: admin\r\n\
         cc-auth: {KEY}\r\ncontent-length: 100\r\n\r\n{{\"id\":"
    );
    stream.write_all(head.as_bytes()).expect("headers and part of the body");
    let sent = Instant::now();
    let answer = read_until_closed(&mut stream, sent + Duration::from_secs(8)).expect("closed after the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(sent.elapsed() >= Duration::from_millis(900), "answered before the timeout: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("a body")).expect("JSON");
    assert_eq!(body["errors"][0]["class"], "CCFailure", "{body}");
    assert_eq!(node.admin_get(KEY), StatusCode::OK);
    node.stop();
}

/// Finding 5: with `--max-connections 4` and four connections open, a fifth
/// waits; it is served as soon as they close.
#[test]
fn hardening_connections_beyond_the_maximum_wait_for_a_slot() {
    let data = tempfile::tempdir().expect("tempdir");
    let node = Node::serve(data.path(), &["--max-connections", "4", "--header-timeout", "30"]);
    let request = b"GET /nothing-here HTTP/1.1\r\nhost: x\r\n\r\n";
    let held: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut stream = TcpStream::connect(&node.addr).expect("connect");
            stream.write_all(request).expect("request");
            let head = read_head(&mut stream, Duration::from_secs(5));
            assert!(head.is_some_and(|h| h.starts_with("HTTP/1.1 404")), "connection {i} is served");
            stream // kept alive: it holds a slot
        })
        .collect();
    let mut fifth = TcpStream::connect(&node.addr).expect("the listen queue takes it");
    fifth.write_all(request).expect("request");
    assert_eq!(read_head(&mut fifth, Duration::from_millis(1500)), None, "a fifth connection must wait");
    drop(held);
    let head = read_head(&mut fifth, Duration::from_secs(5)).expect("served once a slot is free");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    drop(fifth);
    assert_eq!(node.admin_get(KEY), StatusCode::OK);
    node.stop();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Finding 6: a new data directory is 0700 (with its journal and
/// projections directories) and every journal file 0600.
#[test]
fn hardening_a_new_data_directory_is_owner_only() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("node");
    let node = Node::serve(&data, &[]);
    let client = Client::new();
    let created = client
        .post(format!("{}/admin/accounts", node.url))
        .header("cc-user", "admin")
        .header("cc-auth", KEY)
        .json(&json!({"id": "alice", "key": "alice-key"}))
        .send()
        .expect("open an account");
    assert_eq!(created.status(), StatusCode::CREATED);
    let stderr = node.stop();
    assert!(!stderr.contains("readable by group or others"), "no warning for a fresh directory: {stderr}");
    for dir in [data.clone(), data.join("projections")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    assert_eq!(mode(&data.join("node.key")), 0o600, "the node's key");
    if crate::on_postgres() {
        // The rest is about the segment files, which a node whose journal is
        // in PostgreSQL does not write.
        return;
    }
    assert_eq!(mode(&data.join("journal")), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(data.join("journal")).expect("journal") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 3, "JOURNAL, LOCK, a segment");
}

/// Finding 6: a data directory others can read gets a warning at start.
#[test]
fn hardening_a_shared_data_directory_gets_a_warning() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("shared");
    std::fs::DirBuilder::new().mode(0o755).create(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let node = Node::serve(&data, &[]);
    let stderr = node.stop();
    assert!(stderr.contains("readable by group or others"), "a warning: {stderr}");
    assert!(stderr.contains(&format!("{} (755)", data.display())), "naming the directory: {stderr}");
}

/// Finding 6: the admin key from `--admin-key-file` and from standard input
/// (`--admin-key -`) gives a working admin, and never shows in the
/// process's command line; a key file others can read is refused.
#[test]
fn hardening_the_admin_key_comes_from_a_file_or_standard_input() {
    let root = tempfile::tempdir().expect("tempdir");
    let key_file = root.path().join("admin.key");
    std::fs::write(&key_file, "key-from-a-file\n").expect("key file");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let data = root.path().join("a");
    let node = Node::start(
        &["serve", "--data", arg(&data), "--listen", "127.0.0.1:0", "--admin-key-file", arg(&key_file)],
        &[],
        None,
    );
    assert_eq!(node.admin_get("key-from-a-file"), StatusCode::OK);
    assert!(!node.cmdline().contains("key-from-a-file"), "{}", node.cmdline());
    node.stop();

    let data = root.path().join("b");
    let node = Node::start(
        &["serve", "--data", arg(&data), "--listen", "127.0.0.1:0", "--admin-key", "-"],
        &[],
        Some("key-from-stdin\n"),
    );
    assert_eq!(node.admin_get("key-from-stdin"), StatusCode::OK);
    assert_eq!(node.admin_get("-"), StatusCode::UNAUTHORIZED, "the key is what stdin said, not `-`");
    assert!(!node.cmdline().contains("key-from-stdin"), "{}", node.cmdline());
    node.stop();

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(["serve", "--data", arg(&root.path().join("c")), "--listen", "127.0.0.1:0"])
        .args(["--admin-key-file", arg(&key_file)])
        .env_remove("CCNODE_ADMIN_KEY")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"), "{out:?}");
}

/// A panic in the fold (under the read model's write lock) stops the node at
/// once instead of leaving a server whose every later request panics on a
/// poisoned lock; the write it was folding was already durable, and a
/// restart folds it from the journal.
#[test]
fn a_bug_in_the_fold_stops_the_node_and_a_restart_keeps_every_write() {
    use crate::node::Server;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["serve", "--data", arg(dir.path()), "--listen", "127.0.0.1:0", "--name", "bug"];
    let node = Server::spawn_env(&args, &[("CCNODE_FAILPOINT", "panic-in-fold")]);
    node.open("alice", -100, 100);
    node.open("bob", -100, 100);
    let client = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let body = json!({"payer": "alice", "payee": "bob", "quant": 3, "description": "folded later", "type": "payment"});
    let answer = client
        .post(format!("{}/transaction", node.url))
        .header("cc-user", "alice")
        .header("cc-auth", "alice-key")
        .json(&body)
        .send();
    assert!(answer.is_err(), "the node stopped before answering: {answer:?}");
    let exit = node.wait_exit();
    assert_eq!(exit.signal(), Some(6), "it aborted (SIGABRT): {exit:?}");

    let node = Server::spawn(&args);
    let (status, value) = node.call(reqwest::Method::GET, "/account/balance?acc_path=bob", "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["data"]["balance"], json!(3), "the durable write is folded at restart: {value}");
    let (status, value) = node.call(reqwest::Method::POST, "/transaction", "alice", Some(body));
    assert_eq!(status, StatusCode::CREATED, "and the node serves again: {value}");
}
