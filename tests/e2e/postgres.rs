//! The journal in PostgreSQL (issue 15), with the real binary and a real
//! PostgreSQL (a throwaway cluster of the distribution's package, installed
//! when absent): `serve --store postgres://…` under load, SIGKILL and
//! restart losing nothing acknowledged; one writer; a standby that follows
//! the writer, answers reads, and takes over after the writer's SIGKILL
//! under load with every acknowledged payment; the database stopped and
//! restarted under load, the node writing again without a restart;
//! `migrate-store` both ways keeping every hash; a row altered with SQL
//! found by `journal verify` and at start, naming the seq.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pgcluster::Cluster;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::node::{assert_all_there, exact, no_refusal, test_seed, FirstAck, Load, Server};
use crate::{arg, ccnode, stdout};

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn database() -> String {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    Cluster::shared().create_database(&format!("e2e_{}_{n}", std::process::id()))
}

fn db_name(url: &str) -> &str {
    url.rsplit('/').next().expect("a database in the url")
}

/// Changes a byte of record `seq`'s payload in the database at `url` (of
/// the shared cluster) around the append-only trigger, as a superuser could.
pub fn alter_with_sql(url: &str, seq: u64) {
    let mut admin = Cluster::shared().connect(db_name(url));
    admin
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; \
             UPDATE ccnode_journal SET payload = overlay(payload placing '\\xff' from 3 for 1) WHERE seq = {seq}; COMMIT"
        ))
        .expect("alter a row around the append-only trigger");
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

/// Payments from 16 clients until `until` or until the node dies.
fn load(url: &str, accounts: u64, until: Instant, seed: u64) -> Vec<String> {
    Load { url, accounts, clients: 16, seed, until, refusal: no_refusal, may_die: true, first_ack: None }
        .run()
        .acknowledged
}

/// `GET /admin/health`'s data.
fn health(server: &Server) -> Value {
    let (status, value) = server.call(Method::GET, "/admin/health", "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    value["data"].clone()
}

/// A write refused while the node does not write (its database is away, or
/// it is a standby): `503` `CCFailure` (`500` for the batch whose commit
/// failed), with a message.
fn not_writing(status: StatusCode, body: &str) -> bool {
    matches!(status, StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE)
        && serde_json::from_str::<Value>(body).is_ok_and(|v| {
            v["errors"][0]["class"] == "CCFailure" && v["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty())
        })
}

/// A payment `server` refuses with `503` `CCFailure`, its message saying `why`.
fn assert_write_refused(server: &Server, why: &str) {
    let body = json!({"payer": "m0", "payee": "m1", "quant": 1, "type": "pay"});
    let (status, refused) = server.call(Method::POST, "/transaction", "m0", Some(body));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert_eq!(refused["errors"][0]["class"], "CCFailure", "{refused}");
    assert!(refused["errors"][0]["message"].as_str().is_some_and(|m| m.contains(why)), "{why}: {refused}");
}

/// Posts a payment until one is acknowledged; the time it took from `since`.
fn first_write(server: &Server, since: Instant, limit: Duration) -> Duration {
    loop {
        let body = json!({"payer": "m0", "payee": "m1", "quant": 1, "type": "pay"});
        let (status, value) = server.call(Method::POST, "/transaction", "m0", Some(body));
        if status == StatusCode::CREATED {
            return since.elapsed();
        }
        assert!(not_writing(status, &value.to_string()), "refused with a CC error meanwhile: {status} {value}");
        assert!(since.elapsed() < limit, "no write within {limit:?}: {value}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serve_on_postgres_survives_sigkill_with_every_acknowledged_payment() {
    let seed = test_seed();
    eprintln!("serve_on_postgres: CCNODE_TEST_SEED={seed}");
    let url = database();
    let data = tempfile::tempdir().expect("tempdir");
    let server = serve_on(data.path(), "pgnode", &url);
    for i in 0..6 {
        server.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    let acknowledged = load(&server.url.clone(), 6, Instant::now() + Duration::from_millis(1500), seed);
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
    let during = load(&url_http, 6, Instant::now() + Duration::from_secs(20), seed + 1);
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
    assert_all_there(&server, &acknowledged, seed);
    assert_all_there(&server, &during, seed);
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
    let stat: Value = serde_json::from_slice(&stat.stdout).expect("stat JSON");
    assert_eq!(stat["identity"], "pgnode");
    assert!(head.starts_with(&format!("head seq {} ", stat["records"])), "{head} vs {stat}");
}

#[test]
fn migrate_store_both_ways_keeps_every_hash_and_the_audit_bundle() {
    let a = tempfile::tempdir().expect("tempdir");
    let server = serve_on(a.path(), "mover", "file");
    for i in 0..4 {
        server.open(&format!("m{i}"), -1_000, 1_000);
    }
    let acknowledged = load(&server.url.clone(), 4, Instant::now() + Duration::from_millis(700), 3);
    let balances = server.balances("mover");
    server.stop();
    let file_head =
        verified_head(&ccnode(&["journal", "verify", "--data", arg(a.path()), "--no-progress", "--store", "file"]));

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
    assert_eq!(
        verified_head(&ccnode(&["journal", "verify", "--data", arg(b.path()), "--no-progress", "--store", "file"])),
        file_head
    );
    // The audit bundle of the original, of the round trip and of the database
    // itself (`export --store`) are the same bytes.
    let bundle = |dir: &Path, store: &str| {
        let out_file = dir.join(if store == "file" { "files.ccaudit" } else { "database.ccaudit" });
        let out = ccnode(&["export", "--data", arg(dir), "--store", store, "--out", arg(&out_file), "--no-progress"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let audit = ccnode(&["audit", arg(&out_file), "--no-progress"]);
        assert_eq!(audit.status.code(), Some(0), "{audit:?}");
        std::fs::read(&out_file).expect("bundle")
    };
    let original = bundle(a.path(), "file");
    assert!(original == bundle(b.path(), "file"), "the audit bundles of the original and the round trip differ");
    assert!(original == bundle(b.path(), &url), "the audit bundles of the files and of the database differ");
    // `replay` and `balance` read the database too, and agree with the files.
    for (store, dir) in [("file", a.path()), (url.as_str(), b.path())] {
        let out = ccnode(&["balance", "--data", arg(dir), "--store", store, "m1", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let value: Value = serde_json::from_slice(&out.stdout).expect("balance JSON");
        let m1 = balances.iter().find(|(id, _)| id == "m1").map(|(_, b)| *b).expect("m1");
        assert_eq!(exact(&value["balance"]), m1, "{store}: {value}");
    }
    let replayed = |store: &str, dir: &Path| {
        let out = ccnode(&["replay", "--data", arg(dir), "--store", store, "--until", "9", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).expect("replay JSON")
    };
    assert_eq!(replayed("file", a.path()), replayed(&url, b.path()));

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
    assert_all_there(&server, &acknowledged, 3);
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
    alter_with_sql(&url, u64::try_from(seq).expect("a seq"));
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

/// The fail-over test: a `--standby` process follows the writer
/// (answering reads, refusing writes), the writer is SIGKILLed under load,
/// and the standby takes over within seconds, folding only the tail it had
/// not read, with every payment the writer acknowledged; the old writer,
/// started again with `--standby`, follows the new one.
#[test]
fn a_standby_takes_over_after_the_writer_is_killed_under_load_with_every_acknowledged_payment() {
    let seed = test_seed();
    eprintln!("standby take-over: CCNODE_TEST_SEED={seed}");
    let url = database();
    let first_dir = tempfile::tempdir().expect("tempdir");
    let writer = serve_on(first_dir.path(), "pair", &url);
    for i in 0..6 {
        writer.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    // The standby needs the node's key, as a second machine would be given it.
    let standby_dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(first_dir.path().join("node.key"), standby_dir.path().join("node.key")).expect("copy the key");
    let standby_args = |dir: &Path| {
        ["serve", "--data", arg(dir), "--listen", "127.0.0.1:0", "--name", "pair", "--store", &url, "--standby"]
            .map(str::to_owned)
    };
    let args = standby_args(standby_dir.path());
    let standby = Server::spawn(&args.each_ref().map(String::as_str));
    let state = health(&standby);
    assert_eq!(state["writer"]["state"], "following", "{state}");
    assert!(state["writer"]["reason"].as_str().is_some_and(|r| r.contains("standby")), "{state}");
    assert_eq!(state["writing"], false, "{state}");

    // It follows: a payment on the writer is soon readable on the standby;
    // a write on the standby is refused with a CC error that says why.
    let body = json!({"payer": "m0", "payee": "m1", "quant": 3, "type": "pay"});
    let (status, paid) = writer.call(Method::POST, "/transaction", "m0", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let uuid = paid["data"]["uuid"].as_str().expect("uuid").to_owned();
    pgcluster::wait_until(Duration::from_secs(10), "the standby to fold the writer's payment", || {
        standby.call(Method::GET, &format!("/transaction/{uuid}"), "m0", None).0 == StatusCode::OK
    });
    assert_eq!(standby.balances("pair"), writer.balances("pair"));
    assert_write_refused(&standby, "standby");

    // SIGKILL of the writer under load.
    let before_load = health(&standby)["projections"]["seq"].as_u64().expect("seq");
    let writer_url = writer.url.clone();
    // Timed from the first acknowledged payment, not from the clients'
    // spawn (which alone can take half a second on a busy machine).
    let kill_after = Duration::from_millis(800 + seed % 700);
    let standing_by = &standby;
    let first_ack = FirstAck::default();
    let (killed, followed, acknowledged) = std::thread::scope(|scope| {
        let first_ack = &first_ack;
        let killer = scope.spawn(move || {
            let first = first_ack.wait(Duration::from_secs(30));
            assert!(first.is_some(), "no payment acknowledged in 30 s (seed {seed})");
            std::thread::sleep(kill_after);
            let followed = health(standing_by)["projections"]["seq"].as_u64().expect("seq");
            let killed = Instant::now();
            writer.kill();
            (killed, followed)
        });
        let until = Instant::now() + Duration::from_secs(60);
        let first_ack = Some(first_ack);
        let load = Load {
            url: &writer_url,
            accounts: 6,
            clients: 16,
            seed,
            until,
            refusal: no_refusal,
            may_die: true,
            first_ack,
        };
        let acknowledged = load.run().acknowledged;
        let (killed, followed) = killer.join().expect("killer");
        (killed, followed, acknowledged)
    });
    assert!(!acknowledged.is_empty(), "no payment acknowledged before the kill");
    assert!(followed > before_load, "the standby folded the writer's records while it stood by");
    let took = first_write(&standby, killed, Duration::from_secs(15));
    let head = health(&standby)["journal"]["head_seq"].as_u64().expect("head");
    eprintln!(
        "fail-over: the standby acknowledged its first write {took:?} after the writer's SIGKILL \
         ({} payments acknowledged by the writer under load; the standby had folded to seq {followed} \
         a moment before the kill, and its first write is seq {head} or close to it)",
        acknowledged.len()
    );
    let state = health(&standby);
    assert_eq!(state["writer"]["state"], "writing", "{state}");
    assert_all_there(&standby, &acknowledged, seed);
    assert_eq!(total(&standby, "pair"), Decimal::ZERO);
    let more = load(&standby.url.clone(), 6, Instant::now() + Duration::from_millis(500), seed + 1);
    assert!(!more.is_empty(), "the new writer writes under load");

    // The old writer comes back as the standby and follows the new one.
    let args = standby_args(first_dir.path());
    let old = Server::spawn(&args.each_ref().map(String::as_str));
    assert_eq!(health(&old)["writer"]["state"], "following");
    let head = health(&standby)["journal"]["head_seq"].as_u64().expect("head");
    pgcluster::wait_until(Duration::from_secs(10), "the old writer to follow the new one", || {
        health(&old)["projections"]["seq"].as_u64() >= Some(head)
    });
    assert_all_there(&old, &more, seed);
    assert_eq!(old.balances("pair"), standby.balances("pair"));
    old.stop();
    standby.stop();
    verified_head(&ccnode(&["journal", "verify", "--store", &url]));
    let out = ccnode(&["verify", "--store", &url, "--data", arg(standby_dir.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// The database stopped under load: writes are refused with a CC error,
/// reads are answered from the read model; once the database is back the
/// node reconnects, takes its lease again and writes, without a restart,
/// and nothing acknowledged before, during or after is lost.
#[test]
fn the_database_stopped_under_load_refuses_writes_serves_reads_and_the_node_writes_again_when_it_is_back() {
    let seed = test_seed();
    eprintln!("database outage: CCNODE_TEST_SEED={seed}");
    let cluster = Cluster::start();
    let url = cluster.create_database("outage");
    let data = tempfile::tempdir().expect("tempdir");
    let server = serve_on(data.path(), "outage", &url);
    for i in 0..4 {
        server.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    let base = server.url.clone();
    let clients = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(4);
        Load { url: &base, accounts: 4, clients: 8, seed, until, refusal: not_writing, may_die: false, first_ack: None }
            .run()
    });
    std::thread::sleep(Duration::from_millis(800));
    cluster.stop();
    std::thread::sleep(Duration::from_millis(500));
    // Reads go on from the read model while writes are refused.
    let (status, summary) = server.call(Method::GET, "/account/summary", "m0", None);
    assert_eq!(status, StatusCode::OK, "{summary}");
    let state = health(&server);
    assert_eq!(state["writer"]["state"], "following", "{state}");
    assert!(state["writer"]["reason"].as_str().is_some_and(|r| r.contains("cannot be reached")), "{state}");
    assert_write_refused(&server, "refused until it is back");
    std::thread::sleep(Duration::from_millis(700));

    // Back, and the same process writes again.
    let back = Instant::now();
    cluster.start_server();
    let took = first_write(&server, back, Duration::from_secs(20));
    eprintln!("the node wrote again {took:?} after the database was started (pg_ctl start included)");
    let during = clients.join().expect("clients");
    assert!(during.refused > 0, "writes must be refused while the database is down");
    assert!(!during.acknowledged.is_empty(), "payments were acknowledged before the outage");
    let after = load(&server.url.clone(), 4, Instant::now() + Duration::from_millis(800), seed + 1);
    assert!(!after.is_empty(), "payments are acknowledged after the database is back");
    assert_eq!(health(&server)["writer"]["state"], "writing");
    assert_all_there(&server, &during.acknowledged, seed);
    assert_all_there(&server, &after, seed);
    assert_eq!(total(&server, "outage"), Decimal::ZERO);
    // And after a restart, from the database alone.
    server.kill();
    let server = serve_on(data.path(), "outage", &url);
    assert_all_there(&server, &during.acknowledged, seed);
    assert_all_there(&server, &after, seed);
    assert_eq!(total(&server, "outage"), Decimal::ZERO);
    server.stop();
    verified_head(&ccnode(&["journal", "verify", "--store", &url]));
    let out = ccnode(&["verify", "--store", &url, "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
