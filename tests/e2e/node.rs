//! The real `ccnode serve` process over HTTP on loopback: the way a platform
//! uses it, concurrency against one limit, SIGKILL durability and restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::{arg, ccnode, stdout};

pub const ADMIN_KEY: &str = "e2e-admin-key";

/// A running `ccnode serve` on a free loopback port.
pub struct Server {
    child: Child,
    /// Base URL.
    pub url: String,
    client: Client,
}

impl Server {
    /// Starts `ccnode serve` on `data` and waits for its "listening" line.
    pub fn start(data: &Path, name: &str) -> Server {
        Server::spawn(&["serve", "--data", arg(data), "--listen", "127.0.0.1:0", "--name", name])
    }

    /// Starts `ccnode ARGS…` (a command that serves) and waits for its "listening" line.
    pub fn spawn(args: &[&str]) -> Server {
        Server::spawn_env(args, &[])
    }

    /// Same, with extra environment variables.
    pub fn spawn_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn_to(args, envs, Stdio::inherit())
    }

    /// Same, with its log (warnings and errors) written to `log`.
    pub fn spawn_logging(args: &[&str], log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("log file");
        Server::spawn_to(args, &[], Stdio::from(file))
    }

    fn spawn_to(args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ccnode"));
        if !envs.iter().any(|(k, _)| *k == "CCNODE_STORE") {
            if let Some(url) = crate::test_store(args, true) {
                command.env("CCNODE_STORE", url);
            }
        }
        let mut child = command
            .args(args)
            .envs(envs.iter().copied())
            .env("CCNODE_ADMIN_KEY", ADMIN_KEY)
            .env("CCNODE_LOG", "warn")
            .env("CCNODE_PEER_TIMEOUT", "3")
            .env_remove("CCNODE_DATA")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn ccnode serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let url = line.split_whitespace().last().unwrap_or_else(|| panic!("no address in {line:?}")).to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected line {line:?}");
        let client = Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Server { child, url, client }
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some((user, key)) = user {
            request = request.header("cc-user", user).header("cc-auth", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request)
    }

    /// With arbitrary headers (a neighbour node's, for instance).
    pub fn request_with(&self, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        send(request)
    }

    /// A JSON body with arbitrary headers.
    pub fn request_json(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url)).json(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        send(request)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// As `user` (whose key is `<user>-key`; `admin` uses the admin key).
    pub fn call(&self, method: reqwest::Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        let key = if user == "admin" { ADMIN_KEY.to_owned() } else { format!("{user}-key") };
        self.request(method, path, Some((user, &key)), body)
    }

    /// Opens an account through the admin API.
    pub fn open(&self, id: &str, min: i64, max: i64) {
        let body = json!({"id": id, "key": format!("{id}-key"), "min": min, "max": max});
        let (status, value) = self.call(reqwest::Method::POST, "/admin/accounts", "admin", Some(body));
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }

    /// Completed balances of every account on the node (`acc_path` = the node's name), exactly.
    pub fn balances(&self, node: &str) -> Vec<(String, Decimal)> {
        self.balances_as(node, ("admin", ADMIN_KEY))
    }

    /// Same, with other credentials.
    pub fn balances_as(&self, node: &str, auth: (&str, &str)) -> Vec<(String, Decimal)> {
        let path = format!("/account/summary?acc_path={node}");
        let (status, value) = self.request(reqwest::Method::GET, &path, Some(auth), None);
        assert_eq!(status, StatusCode::OK, "{value}");
        value["data"]
            .as_object()
            .expect("map")
            .iter()
            .map(|(id, s)| (id.clone(), exact(&s["completed"]["balance"])))
            .collect()
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "ccnode serve exited with {exit:?} after SIGTERM");
    }

    /// Waits for the process to exit on its own (a failpoint abort, for instance).
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait")
    }

    /// SIGKILL: the crash path.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

/// Sends a request and reads its answer: the status and the JSON body (null when empty).
fn send(request: reqwest::blocking::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().expect("request reaches the server");
    let status = response.status();
    let text = response.text().expect("body");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sum(balances: &[(String, Decimal)]) -> Decimal {
    balances.iter().map(|(_, b)| b).sum()
}

/// A JSON amount (number or string) as an exact decimal, never through a float.
pub fn exact(value: &Value) -> Decimal {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.parse().unwrap_or_else(|_| panic!("not a decimal amount: {value}"))
}

/// What a platform written for the reference node does: credit with metadata,
/// confirm to pending, erase; list by payer; read the summary. Then the bill,
/// history and balance-at, and the offline `ccnode balance` agreeing after a
/// graceful restart.
#[test]
fn a_platform_drives_the_real_node() {
    use reqwest::Method;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "village");
    server.open("alice", -100, 100);
    server.open("bob", -100, 100);

    let body = json!({"payer": "alice", "payee": "bob", "quant": 7, "description": "apples", "type": "credit",
                      "metadata": {"order": "A-17"}});
    let (status, created) = server.call(Method::POST, "/transaction", "alice", Some(body));
    assert_eq!(status, StatusCode::OK, "awaiting confirmation: {created}");
    let uuid = created["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), "alice", None);
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = server.call(Method::GET, "/transactions?payer=alice", "alice", None);
    assert_eq!(list["data"][0]["uuid"], json!(uuid));
    assert_eq!(list["data"][0]["state"], "pending");
    assert_eq!(list["data"][0]["entries"][0]["metadata"]["order"], "A-17");
    let (_, summary) = server.call(Method::GET, "/account/summary", "alice", None);
    assert_eq!(summary["data"]["alice"]["pending"]["balance"], json!(-7));
    assert_eq!(summary["data"]["alice"]["completed"]["balance"], json!(0));
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{uuid}/erased"), "alice", None);
    assert_eq!(status, StatusCode::CREATED);
    let (_, summary) = server.call(Method::GET, "/account/summary", "alice", None);
    assert_eq!(summary["data"]["alice"]["pending"]["balance"], json!(0));

    // A bill signed by the payer, then two immediate payments.
    let bill = json!({"payer": "alice", "payee": "bob", "quant": "2.5", "description": "eggs", "type": "bill"});
    // The reference's bill: the payee confirms it (200 validated, then PATCH pending 201).
    let (status, created) = server.call(Method::POST, "/transaction", "bob", Some(bill));
    assert_eq!(status, StatusCode::OK, "{created}");
    let bill_uuid = created["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{bill_uuid}/pending"), "bob", None);
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{bill_uuid}/completed"), "alice", None);
    assert_eq!(status, StatusCode::CREATED);
    let (_, head) = server.call(Method::GET, "/account/balance?acc_path=alice", "alice", None);
    let seq_after_bill = head["data"]["seq"].as_u64().expect("seq");
    for quant in [10, 20] {
        let pay = json!({"payer": "bob", "payee": "alice", "quant": quant, "description": "work", "type": "pay"});
        assert_eq!(server.call(Method::POST, "/transaction", "bob", Some(pay)).0, StatusCode::CREATED);
    }
    let (_, at) =
        server.call(Method::GET, &format!("/account/balance?acc_path=alice&at={seq_after_bill}"), "bob", None);
    assert_eq!(at["data"]["balance"], json!(-2.5));
    let (_, history) = server.call(Method::GET, "/account/history?acc_path=alice&samples=0", "alice", None);
    assert_eq!(history["meta"]["min"], json!(-2.5));
    assert_eq!(history["meta"]["max"], json!(27.5));
    assert_eq!(sum(&server.balances("village")), Decimal::ZERO);
    server.stop();

    // Offline, from the journal alone, and again after a restart.
    let out = ccnode(&["balance", "--data", arg(data.path()), "alice", "--at", &seq_after_bill.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).starts_with("alice -2.5 at seq"), "{}", stdout(&out));
    let out = ccnode(&["balance", "--data", arg(data.path()), "alice", "--json"]);
    let value: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value["balance"], "27.5");
    let server = Server::start(data.path(), "village");
    let (_, tx) = server.call(Method::GET, &format!("/transaction/{bill_uuid}"), "alice", None);
    assert_eq!(tx["data"]["state"], "completed");
    assert_eq!(sum(&server.balances("village")), Decimal::ZERO);
    server.stop();
    let out = ccnode(&["journal", "verify", "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// 64 clients paying out of one account at once: exactly as many succeed as
/// the limit allows, the rest get MinLimitViolation, and the ledger sums to zero.
#[test]
fn concurrent_clients_never_break_a_limit() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Arc::new(Server::start(data.path(), "busy"));
    server.open("payer", -100, 0);
    for i in 0..8 {
        server.open(&format!("shop{i}"), 0, 1000);
    }
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..64)
        .map(|client| {
            let server = Arc::clone(&server);
            let outcomes = Arc::clone(&outcomes);
            std::thread::spawn(move || {
                for round in 0..5 {
                    let body = json!({"payer": "payer", "payee": format!("shop{}", (client + round) % 8),
                                      "quant": 1, "description": "rush", "type": "pay"});
                    let (status, value) = server.call(reqwest::Method::POST, "/transaction", "payer", Some(body));
                    let class = value["errors"][0]["class"].as_str().map(str::to_owned);
                    outcomes.lock().expect("lock").push((status, class));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let outcomes = outcomes.lock().expect("lock");
    let written = outcomes.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let refused = outcomes
        .iter()
        .filter(|(s, c)| *s == StatusCode::BAD_REQUEST && c.as_deref() == Some("MinLimitViolation"))
        .count();
    assert_eq!(written, 100, "the limit allows exactly 100 payments of 1");
    assert_eq!(refused, 220, "every other attempt is refused for the limit: {outcomes:?}");
    let balances = server.balances("busy");
    assert_eq!(balances.iter().find(|(id, _)| id == "payer").map(|(_, b)| *b), Some(Decimal::from(-100)));
    assert_eq!(sum(&balances), Decimal::ZERO);
}

/// Payments of 1 between accounts `m0`…`m{accounts-1}` (keys `<id>-key`,
/// limits wide enough), each with a fresh uuid, from `clients` threads until
/// `until`: the load the durability tests put on a node before they kill
/// it, stop its database or fail it over.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    /// The node's base URL.
    pub url: &'a str,
    /// Accounts `m0`… to pay between (at least 2).
    pub accounts: u64,
    /// Client threads.
    pub clients: u64,
    /// Picks payers and payees (a test prints it).
    pub seed: u64,
    /// When the clients stop.
    pub until: Instant,
    /// Whether an answer other than 2xx is an expected refusal (counted)
    /// rather than a failure of the test.
    pub refusal: fn(StatusCode, &str) -> bool,
    /// Whether a client stops quietly when the node cannot be reached (it
    /// was killed) rather than failing the test.
    pub may_die: bool,
    /// Told of the first 2xx, so a kill can wait until the load is really
    /// under way (see [`FirstAck`]).
    pub first_ack: Option<&'a FirstAck>,
}

/// When a [`Load`] got its first acknowledgement. A kill test times its kill
/// from here, not from when it spawned the clients: building 16 HTTP clients
/// alone takes up to half a second on a busy machine, so a kill timed from
/// the spawn can land before any request was sent.
#[derive(Debug, Default)]
pub struct FirstAck {
    at: Mutex<Option<Instant>>,
    arrived: std::sync::Condvar,
}

impl FirstAck {
    fn acknowledged(&self) {
        let mut at = self.at.lock().expect("lock");
        if at.is_none() {
            *at = Some(Instant::now());
            self.arrived.notify_all();
        }
    }

    /// When the first 2xx arrived, waiting at most `timeout` for it.
    pub fn wait(&self, timeout: Duration) -> Option<Instant> {
        let at = self.at.lock().expect("lock");
        let (at, _) = self.arrived.wait_timeout_while(at, timeout, |at| at.is_none()).expect("lock");
        *at
    }
}

/// What a [`Load`] got.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The uuids of the payments answered 2xx, in no particular order.
    pub acknowledged: Vec<String>,
    /// Answers the load's `refusal` accepted.
    pub refused: u64,
}

/// No answer but 2xx is expected.
pub fn no_refusal(_status: StatusCode, _body: &str) -> bool {
    false
}

impl Load<'_> {
    /// Runs the clients and waits for them.
    pub fn run(&self) -> Loaded {
        let loaded = Mutex::new(Loaded::default());
        std::thread::scope(|scope| {
            for client in 0..self.clients {
                let loaded = &loaded;
                scope.spawn(move || {
                    let http = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
                    let mut n = client.wrapping_add(self.seed);
                    while Instant::now() < self.until {
                        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(self.seed | 1);
                        let from = (n >> 33) % self.accounts;
                        let payer = format!("m{from}");
                        let payee = format!("m{}", (from + 1 + (n >> 40) % (self.accounts - 1)) % self.accounts);
                        let uuid = uuid::Uuid::new_v4().to_string();
                        let body = json!({"payer": payer, "payee": payee, "quant": 1, "type": "pay", "uuid": uuid});
                        let sent = http
                            .post(format!("{}/transaction", self.url))
                            .header("cc-user", &payer)
                            .header("cc-auth", format!("{payer}-key"))
                            .json(&body)
                            .send();
                        match sent {
                            Ok(r) if r.status().is_success() => {
                                loaded.lock().expect("lock").acknowledged.push(uuid);
                                if let Some(first) = self.first_ack {
                                    first.acknowledged();
                                }
                            }
                            Ok(r) => {
                                let status = r.status();
                                let text = r.text().unwrap_or_default();
                                assert!((self.refusal)(status, &text), "unexpected answer {status}: {text}");
                                loaded.lock().expect("lock").refused += 1;
                            }
                            Err(_) if self.may_die => return,
                            Err(e) => panic!("the node did not answer: {e}"),
                        }
                    }
                });
            }
        });
        loaded.into_inner().expect("lock")
    }
}

/// Asserts that every uuid is a completed transaction on `server`.
pub fn assert_all_there(server: &Server, acknowledged: &[String], seed: u64) {
    for uuid in acknowledged {
        let (status, value) = server.call(reqwest::Method::GET, &format!("/transaction/{uuid}"), "m0", None);
        assert_eq!(status, StatusCode::OK, "acknowledged {uuid} lost (seed {seed}): {value}");
        assert_eq!(value["data"]["state"], "completed", "seed {seed}");
    }
}

/// `CCNODE_TEST_SEED`, or the clock; the caller prints it.
pub fn test_seed() -> u64 {
    std::env::var("CCNODE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs())
    })
}

/// Under load the process is SIGKILLed; after restart every transaction that
/// got a 2xx is there, the ledger sums to zero and the journal verifies.
#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let seed = test_seed();
    eprintln!("sigkill_under_load: CCNODE_TEST_SEED={seed}");
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "crashy");
    for i in 0..10 {
        server.open(&format!("m{i}"), -1_000_000, 1_000_000);
    }
    let url = server.url.clone();
    // The kill comes 0 to 700 ms (by the seed) after the first acknowledged
    // payment: timed from the clients' spawn instead, it could land before
    // the first request was even sent, and test nothing.
    let first_ack = FirstAck::default();
    let (load, killed) = std::thread::scope(|scope| {
        let first_ack = &first_ack;
        let killer = scope.spawn(move || {
            let first = first_ack.wait(Duration::from_secs(30));
            let first = first.unwrap_or_else(|| panic!("no payment acknowledged in 30 s (seed {seed})"));
            std::thread::sleep(Duration::from_millis(seed % 700));
            let killed = first.elapsed();
            server.kill();
            killed
        });
        let load = Load {
            url: &url,
            accounts: 10,
            clients: 16,
            seed,
            until: Instant::now() + Duration::from_secs(60),
            refusal: no_refusal,
            may_die: true,
            first_ack: Some(first_ack),
        }
        .run();
        (load, killer.join().expect("killer"))
    });
    let acknowledged = load.acknowledged;
    eprintln!("{} payments acknowledged, SIGKILL {killed:?} after the first", acknowledged.len());

    let server = Server::start(data.path(), "crashy");
    assert_all_there(&server, &acknowledged, seed);
    assert_eq!(sum(&server.balances("crashy")), Decimal::ZERO, "seed {seed}");
    server.stop();
    let out = ccnode(&["journal", "verify", "--data", arg(data.path()), "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "seed {seed}: {out:?}");
}

/// A node saves snapshots while it runs (`--snapshot-every`), so the start
/// after a SIGKILL loads the last one and folds only the journal behind it
/// (issue 10, item 3), and loses nothing acknowledged.
#[test]
fn a_start_after_sigkill_folds_only_the_tail_behind_the_last_snapshot() {
    let data = tempfile::tempdir().expect("tempdir");
    let args =
        ["serve", "--data", arg(data.path()), "--listen", "127.0.0.1:0", "--name", "snappy", "--snapshot-every", "40"];
    let server = Server::spawn(&args);
    let health = |server: &Server| {
        let (status, value) = server.call(reqwest::Method::GET, "/admin/health", "admin", None);
        assert_eq!(status, StatusCode::OK, "{value}");
        value["data"].clone()
    };
    let fresh = health(&server);
    assert_eq!(fresh["projections"]["snapshots"]["loaded_seq"], Value::Null, "a new node has no snapshot: {fresh}");
    for i in 0..3 {
        server.open(&format!("m{i}"), -1_000, 1_000);
    }
    let mut written = Vec::new();
    for i in 0..150u64 {
        let (payer, payee) = (format!("m{}", i % 3), format!("m{}", (i + 1) % 3));
        let uuid = uuid::Uuid::new_v4().to_string();
        let body = json!({"payer": payer, "payee": payee, "quant": 1 + i % 5, "type": "pay", "uuid": uuid});
        let (status, value) = server.call(reqwest::Method::POST, "/transaction", &payer, Some(body));
        assert_eq!(status, StatusCode::CREATED, "{value}");
        written.push(uuid);
    }
    // Snapshots are saved by a thread of their own: wait for one well past the start.
    let deadline = Instant::now() + Duration::from_secs(20);
    let saved = loop {
        let saved = health(&server)["projections"]["snapshots"]["saved_seq"].as_u64();
        if let Some(seq) = saved.filter(|&s| s >= 100) {
            break seq;
        }
        assert!(Instant::now() < deadline, "no snapshot saved past seq 100: {}", health(&server));
        std::thread::sleep(Duration::from_millis(50));
    };
    // A few more, most likely behind the last snapshot.
    for i in 0..10u64 {
        let body = json!({"payer": "m1", "payee": "m2", "quant": 1 + i, "type": "pay"});
        let (status, value) = server.call(reqwest::Method::POST, "/transaction", "m1", Some(body));
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }
    let head = health(&server)["journal"]["head_seq"].as_u64().expect("head");
    let before = server.balances("snappy");
    server.kill();

    let server = Server::spawn(&args);
    let after = health(&server);
    let loaded = after["projections"]["snapshots"]["loaded_seq"].as_u64().unwrap_or_else(|| panic!("{after}"));
    let folded = after["projections"]["snapshots"]["folded_at_start"].as_u64().expect("folded");
    assert!(loaded >= saved, "started from snapshot {loaded}, but {saved} was saved: {after}");
    assert!(loaded <= head, "a snapshot is never ahead of the journal: {after}");
    let new_head = after["journal"]["head_seq"].as_u64().expect("head");
    assert_eq!(loaded + folded, new_head, "folded exactly the tail: {after}");
    assert!(folded < 60, "only the tail behind a snapshot taken every 40 records is folded: {after}");
    assert_eq!(server.balances("snappy"), before, "the balances after the restart are the ones before the kill");
    assert_eq!(sum(&before), Decimal::ZERO);
    for uuid in &written {
        let (status, value) = server.call(reqwest::Method::GET, &format!("/transaction/{uuid}"), "m0", None);
        assert_eq!(status, StatusCode::OK, "{uuid} lost: {value}");
    }
    server.stop();
    // A clean stop saves a snapshot at the head: the next start folds nothing.
    let server = Server::spawn(&args);
    let clean = health(&server);
    assert_eq!(clean["projections"]["snapshots"]["folded_at_start"], 0, "{clean}");
    assert_eq!(clean["projections"]["snapshots"]["loaded_seq"], clean["journal"]["head_seq"], "{clean}");
    server.stop();
}

/// The snapshot is the file `DIR/projections/snapshot` (format 7): a clean
/// stop writes it (atomically: no temporary file is left); a damaged one is
/// not used, the node says why in its log and rebuilds from the journal,
/// losing nothing; a file of format 6 (the tables before they were made
/// compact) likewise; what versions up to format 5 kept there (a sled
/// database) is ignored, the projections rebuilt, and its files deleted.
#[test]
fn a_damaged_or_old_format_snapshot_file_is_rebuilt_from_the_journal_and_the_log_says_why() {
    let data = tempfile::tempdir().expect("tempdir");
    let args = ["serve", "--data", arg(data.path()), "--listen", "127.0.0.1:0", "--name", "filed"];
    let health = |server: &Server| {
        let (status, value) = server.call(reqwest::Method::GET, "/admin/health", "admin", None);
        assert_eq!(status, StatusCode::OK, "{value}");
        value["data"]["projections"]["snapshots"].clone()
    };
    let server = Server::spawn(&args);
    server.open("m0", -100, 100);
    server.open("m1", -100, 100);
    for i in 0..20u64 {
        let body =
            json!({"payer": "m0", "payee": "m1", "quant": 1 + i % 3, "type": "pay", "description": format!("n{i}")});
        let (status, value) = server.call(reqwest::Method::POST, "/transaction", "m0", Some(body));
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }
    let before = server.balances("filed");
    server.stop();
    let dir = data.path().join("projections");
    let file = dir.join("snapshot");
    assert!(file.is_file(), "a clean stop writes the snapshot file");
    assert!(!dir.join("snapshot.tmp").exists(), "and leaves no temporary file");

    // Loaded after a clean stop.
    let server = Server::spawn(&args);
    assert_ne!(health(&server)["loaded_seq"], Value::Null);
    server.stop();

    // One flipped byte: not used, rebuilt, and the log says why.
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&file, bytes).expect("write");
    let log = data.path().join("damaged.log");
    let server = Server::spawn_logging(&args, &log);
    let snapshots = health(&server);
    assert_eq!(snapshots["loaded_seq"], Value::Null, "{snapshots}");
    assert_eq!(server.balances("filed"), before, "rebuilt from the journal, nothing lost");
    server.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("the projections snapshot was not used") && text.contains("checksum mismatch"),
        "the log names the reason: {text}"
    );

    // A format-6 file (as the previous version wrote it): not read, rebuilt.
    let mut bytes = std::fs::read(&file).expect("read");
    assert_eq!(bytes[8..12], 7u32.to_le_bytes(), "this version writes format 7");
    bytes[8..12].copy_from_slice(&6u32.to_le_bytes());
    std::fs::write(&file, bytes).expect("write");
    let log = data.path().join("format6.log");
    let server = Server::spawn_logging(&args, &log);
    assert_eq!(health(&server)["loaded_seq"], Value::Null);
    assert_eq!(server.balances("filed"), before, "rebuilt from the journal, nothing lost");
    server.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("unknown snapshot format version 6"), "the log names the reason: {text}");
    let server = Server::spawn(&args);
    assert_ne!(health(&server)["loaded_seq"], Value::Null, "the clean stop saved format 7, which the next start uses");
    server.stop();

    // What versions up to format 5 left: sled's files instead of the file.
    std::fs::remove_file(&file).expect("remove");
    std::fs::write(dir.join("conf"), b"segment_size: 524288\n").expect("conf");
    std::fs::write(dir.join("db"), [5u8; 64]).expect("db");
    std::fs::create_dir(dir.join("blobs")).expect("blobs");
    std::fs::write(dir.join("snap.0000000000000040"), [0u8; 16]).expect("snap");
    let log = data.path().join("legacy.log");
    let server = Server::spawn_logging(&args, &log);
    assert_eq!(health(&server)["loaded_seq"], Value::Null);
    assert_eq!(server.balances("filed"), before);
    server.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("removed an old-format projections snapshot"), "{text}");
    let mut left: Vec<String> =
        std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").file_name().to_string_lossy().into()).collect();
    left.sort();
    assert_eq!(left, ["snapshot"], "sled's files are gone; the clean stop wrote the new snapshot");
    let server = Server::spawn(&args);
    assert_ne!(health(&server)["loaded_seq"], Value::Null, "and the next start uses it");
    server.stop();
}

/// `ccnode demo` serves a community with history and pending transactions.
#[test]
fn the_demo_is_a_living_community() {
    use reqwest::Method;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::spawn(&["demo", "--data", arg(data.path()), "--listen", "127.0.0.1:0"]);
    let (status, all) = server.request(Method::GET, "/transactions?limit=1", Some(("alice", "alice")), None);
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all["meta"]["number_of_results"].as_u64().expect("count") > 200, "{all}");
    let (_, pending) = server.request(Method::GET, "/transactions?states=pending&limit=1", Some(("bob", "bob")), None);
    assert!(pending["meta"]["number_of_results"].as_u64().expect("count") > 0, "{pending}");
    let (_, history) =
        server.request(Method::GET, "/account/history?acc_path=carol&samples=0", Some(("admin", ADMIN_KEY)), None);
    assert!(history["meta"]["points"].as_u64().expect("points") > 10, "{history}");
    assert_eq!(sum(&server.balances("demo")), Decimal::ZERO);
    server.stop();
}

/// `ccnode --help` names every command.
#[test]
fn help_explains_every_command() {
    let out = ccnode(&["--help"]);
    let text = stdout(&out);
    for command in ["serve", "demo", "balance", "journal"] {
        assert!(text.contains(command), "{command} missing from --help: {text}");
    }
    let out = ccnode(&["serve", "--help"]);
    let text = stdout(&out);
    for flag in ["--data", "--listen", "--name", "--admin-key", "--config"] {
        assert!(text.contains(flag), "{flag} missing from serve --help: {text}");
    }
}

/// `GET /replay/events?follow=true` streams records as they become durable,
/// and ends when the node shuts down (which it then does promptly).
#[test]
fn the_live_event_feed_follows_new_records_and_ends_at_shutdown() {
    use std::io::BufRead as _;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "feed");
    server.open("alice", -100, 100);
    server.open("bob", -100, 100);
    let response = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .expect("client")
        .get(format!("{}/replay/events?after=0&follow=true", server.url))
        .header("cc-user", "admin")
        .header("cc-auth", ADMIN_KEY)
        .send()
        .expect("feed");
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = std::io::BufReader::new(response).lines();
    let mut next_record = move || loop {
        let line = lines.next().expect("the feed stays open").expect("utf-8");
        if !line.trim().is_empty() {
            return serde_json::from_str::<Value>(&line).expect("one JSON record per line");
        }
    };
    let first = next_record();
    assert_eq!(first["seq"], json!(1));
    assert_eq!(first["event"]["type"], "NodeInitialised");
    let mut last_seq = 1;
    // Initialisation, the node's public key (issue 11), then admin, alice and bob: each an opening and a key.
    while last_seq < 8 {
        last_seq = next_record()["seq"].as_u64().expect("seq");
    }
    // New records arrive on the open stream.
    let pay = json!({"payer": "alice", "payee": "bob", "quant": 3, "description": "live", "type": "pay"});
    assert_eq!(server.call(reqwest::Method::POST, "/transaction", "alice", Some(pay)).0, StatusCode::CREATED);
    // Event format 2: the first payment under `pay` journals its definition first.
    let defined = next_record();
    assert_eq!(defined["seq"], json!(last_seq + 1));
    assert_eq!(
        (defined["event"]["type"].as_str(), defined["event"]["workflow"]["id"].as_str()),
        (Some("WorkflowDefined"), Some("pay"))
    );
    let live = next_record();
    assert_eq!(live["seq"], json!(last_seq + 2));
    assert_eq!(live["event"]["type"], "TransactionProposed");
    assert_eq!(live["event"]["transaction"]["workflow"], "pay");
    assert_eq!(live["event"]["transaction"]["workflow_hash"], defined["event"]["workflow"]["hash"]);
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(10), "an open feed must not hold up shutdown");
}
