//! The journal in PostgreSQL (issue 15), with the real binary and a real
//! PostgreSQL (a throwaway cluster of the distribution's package, installed
//! when absent): `serve --store postgres://…` under load, SIGKILL and
//! restart losing nothing acknowledged; one writer; a standby taking over;
//! `migrate-store` both ways keeping every hash; a row altered with SQL
//! found by `journal verify` and at start, naming the seq.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgcluster::Cluster;
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::json;

use crate::node::{exact, Server};
use crate::{arg, ccnode, stdout};

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn database() -> String {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    Cluster::shared().create_database(&format!("e2e_{}_{n}", std::process::id()))
}

fn db_name(url: &str) -> &str {
    url.rsplit('/').next().expect("a database in the url")
}

fn serve_on(data: &Path, name: &str, store: &str) -> Server {
    Server::spawn(&["serve", "--data", arg(data), "--listen", "127.0.0.1:0", "--name", name, "--store", store])
}

/// Runs a `ccnode serve` that must refuse to start; a node that serves
/// instead is stopped after a minute and the test fails (rather than hangs).
fn refused_start(args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(args)
        .env_remove("CCNODE_DATA")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ccnode");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("ccnode serve started instead of refusing: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn total(server: &Server, node: &str) -> Decimal {
    server.balances(node).iter().map(|(_, b)| *b).sum()
}

/// The head hash `journal verify` prints (`… head seq N hash H`).
fn verified_head(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(out);
    let at = text.find("head seq ").unwrap_or_else(|| panic!("no head in {text}"));
    text[at..].lines().next().expect("a line").to_owned()
}

/// Payments from 16 clients until `stop_at`; returns the uuids answered 2xx.
fn load(url: &str, accounts: usize, stop_at: Instant, seed: u64) -> Vec<String> {
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..16u64)
        .map(|client| {
            let acknowledged = Arc::clone(&acknowledged);
            let url = url.to_owned();
            std::thread::spawn(move || {
                let http = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
                let mut n = client + seed;
                let count = u64::try_from(accounts).expect("small");
                while Instant::now() < stop_at {
                    n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(seed | 1);
                    let from = (n >> 33) % count;
                    let payer = format!("m{from}");
                    let payee = format!("m{}", (from + 1 + (n >> 40) % (count - 1)) % count);
                    let uuid = uuid::Uuid::new_v4().to_string();
                    let body = json!({"payer": payer, "payee": payee, "quant": 1, "type": "pay", "uuid": uuid});
                    let sent = http
                        .post(format!("{url}/transaction"))
                        .header("cc-user", &payer)
                        .header("cc-auth", format!("{payer}-key"))
                        .json(&body)
                        .send();
                    match sent {
                        Ok(r) if r.status().is_success() => acknowledged.lock().expect("lock").push(uuid),
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => return, // the server died
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    acknowledged
}

fn assert_all_there(server: &Server, acknowledged: &[String]) {
    for uuid in acknowledged {
        let (status, value) = server.call(Method::GET, &format!("/transaction/{uuid}"), "m0", None);
        assert_eq!(status, StatusCode::OK, "acknowledged {uuid} lost: {value}");
        assert_eq!(value["data"]["state"], "completed");
    }
}

#[test]
fn serve_on_postgres_survives_sigkill_with_every_acknowledged_payment() {
    let url = database();
    let data = tempfile::tempdir().expect("tempdir");
    let server = serve_on(data.path(), "pgnode", &url);
    for i in 0..6 {
        server.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    let acknowledged = load(&server.url.clone(), 6, Instant::now() + Duration::from_millis(1500), 7);
    assert!(!acknowledged.is_empty(), "no payment acknowledged");
    // A second writer on the same database is refused while the first runs.
    let other = tempfile::tempdir().expect("tempdir");
    let out = refused_start(&[
        "serve",
        "--data",
        arg(other.path()),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "pgnode",
        "--store",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("another ccnode writes the journal"), "{out:?}");

    // SIGKILL under load.
    let url_http = server.url.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        server.kill();
    });
    let during = load(&url_http, 6, Instant::now() + Duration::from_secs(20), 11);
    killer.join().expect("killer");
    eprintln!("{} + {} payments acknowledged before SIGKILL", acknowledged.len(), during.len());

    // Nothing of the journal is in the data directory's segment files.
    let segments = std::fs::read_dir(data.path().join("journal")).map_or(0, |d| d.count());
    assert_eq!(segments, 0, "a PostgreSQL node keeps no segment files");

    // The store from the environment this time.
    let server = Server::spawn_env(
        &["serve", "--data", arg(data.path()), "--listen", "127.0.0.1:0", "--name", "pgnode"],
        &[("CCNODE_STORE", &url)],
    );
    assert_all_there(&server, &acknowledged);
    assert_all_there(&server, &during);
    assert_eq!(total(&server, "pgnode"), Decimal::ZERO);
    server.stop();
    let out = ccnode(&["journal", "verify", "--store", &url]);
    let head = verified_head(&out);
    assert!(stdout(&out).contains("PostgreSQL"), "{out:?}");
    // The full check: every event, zero-sum and limits, and the snapshot the graceful stop saved.
    let out = ccnode(&["verify", "--store", &url, "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("snapshot: matches the journal at seq"), "{out:?}");
    assert!(stdout(&out).contains(&head), "verify and journal verify name the same head: {out:?}");
    let stat = ccnode(&["journal", "stat", "--store", &url, "--json"]);
    let stat: serde_json::Value = serde_json::from_slice(&stat.stdout).expect("stat JSON");
    assert_eq!(stat["identity"], "pgnode");
    assert!(head.starts_with(&format!("head seq {} ", stat["records"])), "{head} vs {stat}");
}

#[test]
fn migrate_store_both_ways_keeps_every_hash_and_the_audit_bundle() {
    let a = tempfile::tempdir().expect("tempdir");
    let server = Server::start(a.path(), "mover");
    for i in 0..4 {
        server.open(&format!("m{i}"), -1_000, 1_000);
    }
    let acknowledged = load(&server.url.clone(), 4, Instant::now() + Duration::from_millis(700), 3);
    let balances = server.balances("mover");
    server.stop();
    let file_head = verified_head(&ccnode(&["journal", "verify", "--data", arg(a.path()), "--no-progress"]));

    let url = database();
    let from_a = format!("file:{}", arg(a.path()));
    let out = ccnode(&["migrate-store", "--from", &from_a, "--to", &url]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("every hash verified"), "{out:?}");
    assert_eq!(verified_head(&ccnode(&["journal", "verify", "--store", &url])), file_head);

    // A target that holds records is refused, both kinds.
    let out = ccnode(&["migrate-store", "--from", &from_a, "--to", &url]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty store"), "{out:?}");
    let out = ccnode(&["migrate-store", "--from", &url, "--to", &from_a]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // And back into segment files.
    let b = tempfile::tempdir().expect("tempdir");
    let out = ccnode(&["migrate-store", "--from", &url, "--to", &format!("file:{}", arg(b.path()))]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(verified_head(&ccnode(&["journal", "verify", "--data", arg(b.path()), "--no-progress"])), file_head);
    let bundle = |dir: &Path| {
        let out_file = dir.join("audit.ccaudit");
        let out = ccnode(&["export", "--data", arg(dir), "--out", arg(&out_file), "--no-progress"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let audit = ccnode(&["audit", arg(&out_file), "--no-progress"]);
        assert_eq!(audit.status.code(), Some(0), "{audit:?}");
        std::fs::read(&out_file).expect("bundle")
    };
    assert!(bundle(a.path()) == bundle(b.path()), "the audit bundles of the original and the round trip differ");

    // The node runs on the migrated database with its key and all its history.
    let c = tempfile::tempdir().expect("tempdir");
    std::fs::copy(a.path().join("node.key"), c.path().join("node.key")).expect("copy the node's key");
    let config = c.path().join("ccnode.toml");
    std::fs::write(&config, format!("store = \"{url}\"\n")).expect("config");
    let server = Server::spawn(&[
        "serve",
        "--data",
        arg(c.path()),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "mover",
        "--config",
        arg(&config),
    ]);
    assert_eq!(server.balances("mover"), balances);
    assert_all_there(&server, &acknowledged);
    let (status, value) = server.call(
        Method::POST,
        "/transaction",
        "m1",
        Some(json!({"payer": "m1", "payee": "m2", "quant": 2, "type": "pay"})),
    );
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(exact(&value["data"]["entries"][0]["quant"]), Decimal::from(2));
    server.stop();
}

#[test]
fn a_row_altered_with_sql_is_found_by_verify_and_at_start() {
    let url = database();
    let data = tempfile::tempdir().expect("tempdir");
    let server = serve_on(data.path(), "tamper", &url);
    server.open("m0", -100, 100);
    server.open("m1", -100, 100);
    for _ in 0..5 {
        let body = json!({"payer": "m0", "payee": "m1", "quant": 1, "type": "pay"});
        let (status, value) = server.call(Method::POST, "/transaction", "m0", Some(body));
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }
    server.stop();
    verified_head(&ccnode(&["journal", "verify", "--store", &url]));
    let mut admin = Cluster::shared().connect(db_name(&url));
    let seq: i64 = admin.query_one("SELECT max(seq) - 2 FROM ccnode_journal", &[]).expect("a seq").get(0);
    admin
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; \
             UPDATE ccnode_journal SET payload = overlay(payload placing '\\xff' from 3 for 1) WHERE seq = {seq}; COMMIT"
        ))
        .expect("alter a row around the append-only trigger");
    let out = ccnode(&["journal", "verify", "--store", &url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains(&format!("first bad seq {seq}")), "{out:?}");
    let out = ccnode(&["verify", "--store", &url, "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains(&format!("journal damaged at seq {seq}")), "{out:?}");
    let out = refused_start(&[
        "serve",
        "--data",
        arg(data.path()),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "tamper",
        "--store",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("seq {seq}")), "{out:?}");

    // Deleting the tail instead (rows after the altered one): the lease remembers the last seq written.
    let last: i64 = admin.query_one("SELECT max(seq) FROM ccnode_journal", &[]).expect("the head").get(0);
    admin
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM ccnode_journal WHERE seq >= {seq}; COMMIT"
        ))
        .expect("delete the tail");
    let out = ccnode(&["journal", "verify", "--store", &url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains(&format!("first bad seq {seq}")) && last > seq, "{out:?}");
    let out = ccnode(&["verify", "--store", &url, "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn a_standby_takes_over_when_the_writer_dies() {
    let url = database();
    let first_dir = tempfile::tempdir().expect("tempdir");
    let writer = serve_on(first_dir.path(), "pair", &url);
    for i in 0..4 {
        writer.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    // The standby needs the node's key, as a second machine would be given it.
    let standby_dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(first_dir.path().join("node.key"), standby_dir.path().join("node.key")).expect("copy the key");
    let standby_data = standby_dir.path().to_owned();
    let standby_url = url.clone();
    let standby = std::thread::spawn(move || {
        let server = Server::spawn(&[
            "serve",
            "--data",
            arg(&standby_data),
            "--listen",
            "127.0.0.1:0",
            "--name",
            "pair",
            "--store",
            &standby_url,
            "--standby",
        ]);
        (server, Instant::now())
    });
    let acknowledged = load(&writer.url.clone(), 4, Instant::now() + Duration::from_millis(800), 5);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!standby.is_finished(), "the standby must wait while the writer lives");
    let killed = Instant::now();
    writer.kill();
    let (standby, serving) = standby.join().expect("the standby takes over");
    let took = serving.duration_since(killed);
    eprintln!("the standby served {took:?} after the writer's SIGKILL");
    assert!(took < Duration::from_secs(15), "took over after {took:?}");
    assert_all_there(&standby, &acknowledged);
    let (status, value) = standby.call(
        Method::POST,
        "/transaction",
        "m0",
        Some(json!({"payer": "m0", "payee": "m3", "quant": 1, "type": "pay"})),
    );
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(total(&standby, "pair"), Decimal::ZERO);
    standby.stop();
    verified_head(&ccnode(&["journal", "verify", "--store", &url]));
}

#[test]
fn the_database_stopped_under_load_refuses_writes_serves_reads_and_loses_nothing() {
    let cluster = Cluster::start();
    let url = cluster.create_database("outage");
    let data = tempfile::tempdir().expect("tempdir");
    let server = serve_on(data.path(), "outage", &url);
    for i in 0..4 {
        server.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    let base = server.url.clone();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(AtomicU32::new(0));
    let stop_at = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..8u64)
        .map(|client| {
            let (acknowledged, refused, base) = (Arc::clone(&acknowledged), Arc::clone(&refused), base.clone());
            std::thread::spawn(move || {
                let http = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
                let mut n = client;
                while Instant::now() < stop_at {
                    n += 1;
                    let (payer, payee) = (format!("m{}", n % 4), format!("m{}", (n + 1) % 4));
                    let uuid = uuid::Uuid::new_v4().to_string();
                    let body = json!({"payer": payer, "payee": payee, "quant": 1, "type": "pay", "uuid": uuid});
                    let answer = http
                        .post(format!("{base}/transaction"))
                        .header("cc-user", &payer)
                        .header("cc-auth", format!("{payer}-key"))
                        .json(&body)
                        .send()
                        .expect("the node answers while its database is down");
                    match answer.status() {
                        s if s.is_success() => acknowledged.lock().expect("lock").push(uuid),
                        StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE => {
                            let text = answer.text().expect("body");
                            assert!(text.contains("CCFailure"), "a refused write is a CC error: {text}");
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    cluster.stop();
    std::thread::sleep(Duration::from_millis(500));
    // Reads go on from the read model while writes are refused.
    let (status, summary) = server.call(Method::GET, "/account/summary", "m0", None);
    assert_eq!(status, StatusCode::OK, "{summary}");
    for c in clients {
        c.join().expect("client");
    }
    assert!(refused.load(Ordering::Relaxed) > 0, "writes must be refused while the database is down");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(!acknowledged.is_empty(), "payments were acknowledged before the outage");
    // Back: a restarted node has every acknowledged payment.
    cluster.start_server();
    server.kill();
    let server = serve_on(data.path(), "outage", &url);
    assert_all_there(&server, &acknowledged);
    assert_eq!(total(&server, "outage"), Decimal::ZERO);
    let body = json!({"payer": "m0", "payee": "m1", "quant": 1, "type": "pay"});
    assert_eq!(server.call(Method::POST, "/transaction", "m0", Some(body)).0, StatusCode::CREATED);
    server.stop();
    verified_head(&ccnode(&["journal", "verify", "--store", &url]));
}
