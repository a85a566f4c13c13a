//! ccnode federated with the real PHP reference node (cc-server with cc-node
//! 0.8.5, PHP and MariaDB) started from `../shared/refnode/refnode.py`, in
//! both positions of a link: after every write the reference's
//! `hash_history` for the link equals ccnode's ratchet for it, and every
//! ledger sums to zero (docs/PROTOCOL.md, "Dialects").
//!
//! `refnode.py up` installs PHP and MariaDB with apt when they are missing
//! (its `deps` command), so these tests never skip.

use std::path::PathBuf;
use std::process::Command;

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::node::{exact, Server};

fn refnode_py() -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/refnode/refnode.py"));
    assert!(
        path.exists(),
        "the reference node package is missing: {} (CI puts ../shared beside the repository)",
        path.display()
    );
    path
}

/// Reference nodes (and their MariaDB) of one test, stopped on drop.
struct RefWork {
    dir: tempfile::TempDir,
}

/// One running reference node.
struct RefNode {
    name: String,
    url: String,
}

impl RefWork {
    fn new() -> RefWork {
        RefWork { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn run(&self, args: &[&str]) -> String {
        let output =
            Command::new("python3").arg(refnode_py()).args(["-q"]).args(args).output().expect("run refnode.py");
        assert!(
            output.status.success(),
            "refnode.py {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn workdir(&self) -> &str {
        crate::arg(self.dir.path())
    }

    /// Starts a reference node with `args` (accounts, links) on `port`. One
    /// start at a time across the tests: `mariadb-install-db` runs of several
    /// workdirs at once were seen to fail.
    fn up(&self, name: &str, port: u16, args: &[&str]) -> RefNode {
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let port = port.to_string();
        let mut all = vec!["up", "--workdir", self.workdir(), "--name", name, "--port", &port];
        all.extend_from_slice(args);
        let line = self.run(&all);
        let info: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("refnode up said {line:?}: {e}"));
        RefNode { name: name.to_owned(), url: info["url"].as_str().expect("url").to_owned() }
    }

    /// Rows of a query on a node's database.
    fn sql(&self, node: &RefNode, query: &str) -> Vec<Value> {
        let out = self.run(&["sql", "--workdir", self.workdir(), "--name", &node.name, query]);
        out.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a JSON row")).collect()
    }

    /// The link's hash chain on the reference side, oldest first (the seeded row included).
    fn hashes(&self, node: &RefNode, account: &str) -> Vec<String> {
        self.sql(node, &format!("SELECT hash FROM hash_history WHERE acc_id = '{account}' ORDER BY txid"))
            .iter()
            .map(|r| r["hash"].as_str().expect("hash").to_owned())
            .collect()
    }
}

impl Drop for RefWork {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(refnode_py())
            .args(["-q", "down", "--workdir", crate::arg(self.dir.path())])
            .output();
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let output =
        Command::new("python3").arg(refnode_py()).args(["freeport", &n.to_string()]).output().expect("freeport");
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(|p| p.parse().expect("a port")).collect()
}

impl RefNode {
    fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        let client = Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("client");
        let mut request =
            client.request(method, format!("{}{path}", self.url)).header("cc-user", user).header("cc-auth", "123");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().expect("the reference node answers");
        let status = response.status();
        let text = response.text().expect("body");
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
}

impl RefWork {
    /// Every account's completed balance on a reference node, exactly, from its
    /// `transaction_index` (millionths). Its `/account/summary` cannot say:
    /// cc-node 0.8.5's TradeStats fails on a fractional balance ("Implicit
    /// conversion from float -4.5 to int loses precision").
    fn balances(&self, node: &RefNode) -> std::collections::BTreeMap<String, Decimal> {
        self.sql(node, "SELECT uid1, CAST(SUM(diff) AS CHAR) AS micros FROM transaction_index WHERE state = 'completed' GROUP BY uid1")
            .iter()
            .map(|r| {
                let micros: Decimal = exact(&r["micros"]);
                (r["uid1"].as_str().expect("account").to_owned(), micros / Decimal::from(1_000_000))
            })
            .collect()
    }
}

/// Sum of every completed balance on a ccnode (its summary of every account), exactly.
fn ccnode_sum(node: &Server, name: &str) -> Decimal {
    let (status, value) = node.call(Method::GET, &format!("/account/summary?acc_path={name}"), "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    value["data"].as_object().expect("summaries").values().map(|s| exact(&s["completed"]["balance"])).sum()
}

/// ccnode's ratchet for the link with `peer`: head and versions written.
fn ccnode_link(node: &Server, peer: &str) -> (String, u64) {
    let (status, value) = node.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    let link = &value["data"][peer];
    (link["last_hash"].as_str().expect("head").to_owned(), link["versions"].as_u64().expect("versions"))
}

/// Both sides hold the same chain head, and as many versions.
fn assert_link_agrees(work: &RefWork, reference: &RefNode, account: &str, node: &Server, peer: &str, written: u64) {
    let theirs = work.hashes(reference, account);
    let (head, versions) = ccnode_link(node, peer);
    assert_eq!(versions, written, "ccnode's link with {peer} wrote {versions} versions, expected {written}");
    assert_eq!(theirs.len() as u64, written, "the reference's hash_history for {account}: {theirs:?}");
    assert_eq!(theirs.last().cloned().unwrap_or_default(), head, "the heads of the {account}/{peer} link differ");
}

/// A node the tests call as a user: a ccnode or a reference node.
trait Calls {
    fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value);
}

impl Calls for Server {
    fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        Server::call(self, method, path, user, body)
    }
}

impl Calls for RefNode {
    fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        RefNode::call(self, method, path, user, body)
    }
}

/// `user` moves transaction `uuid` to `state` on `node`, which writes it (201).
fn patch(node: &impl Calls, uuid: &str, state: &str, user: &str) {
    let (status, value) = node.call(Method::PATCH, &format!("/transaction/{uuid}/{state}"), user, None);
    assert_eq!(status, StatusCode::CREATED, "{state}: {value}");
}

fn uuid_of(value: &Value) -> String {
    value["data"]["uuid"].as_str().unwrap_or_else(|| panic!("no uuid in {value}")).to_owned()
}

fn payment(payee: &str, quant: Value, description: &str, workflow: &str) -> Value {
    json!({"payee": payee, "quant": quant, "description": description, "type": workflow})
}

/// A ccnode `cc` (members carol and dave) under a reference trunk (alice, bob):
/// every shared workflow both ways, erase and delete, a limit refusal.
/// Amounts are whole: cc-node 0.8.5 fails every limit check once a balance
/// is fractional (TradeStats: "Implicit conversion from float … to int").
#[test]
fn a_ccnode_under_a_reference_trunk_agrees_after_every_write() {
    let work = RefWork::new();
    let ports = free_ports(2);
    let data = tempfile::tempdir().expect("tempdir");
    let trunk_url = format!("http://127.0.0.1:{}", ports[0]);
    let listen = format!("127.0.0.1:{}", ports[1]);
    let cc = Server::spawn(&[
        "serve",
        "--data",
        crate::arg(data.path()),
        "--listen",
        &listen,
        "--name",
        "cc",
        "--trunkward-name",
        "trunk",
        "--trunkward-url",
        &trunk_url,
        "--trunkward-min",
        "-100",
        "--trunkward-max",
        "100",
    ]);
    let child = format!("cc={}:-50:0", cc.url);
    let trunk = work.up(
        "trunk",
        ports[0],
        &["--account", "alice:123", "--account", "bob:123", "--admin", "admin:123", "--child", &child],
    );
    cc.open("carol", -1000, 1000);
    cc.open("dave", -1000, 1000);
    let (_, path) = cc.call(Method::GET, "/absolutepath", "carol", None);
    assert_eq!(path["data"], json!(["trunk", "cc"]), "{path}");
    let mut written = 0;
    let check = |written: u64| {
        assert_link_agrees(&work, &trunk, "cc", &cc, "trunk", written);
        assert_eq!(ccnode_sum(&cc, "cc"), Decimal::ZERO, "ccnode's ledger sums to zero");
        let theirs = work.balances(&trunk);
        assert_eq!(
            theirs.values().copied().sum::<Decimal>(),
            Decimal::ZERO,
            "the reference's ledger sums to zero: {theirs:?}"
        );
        let cc_there = theirs.get("cc").copied().unwrap_or_default();
        assert_eq!(cc_there, -ccnode_balance(&cc, "trunk"), "the link's two accounts mirror each other: {theirs:?}");
    };

    // Immediate, up and down: each relay is the write (version 1) on both sides.
    let (status, up) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(7), "up the tree", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(up["data"]["state"], "completed", "{up}");
    written += 1;
    check(written);
    let (status, down) =
        trunk.call(Method::POST, "/transaction", "bob", Some(payment("cc/carol", json!(2), "down the tree", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{down}");
    written += 1;
    check(written);
    let (_, mine) = cc.call(Method::GET, &format!("/transaction/{}", uuid_of(&down)), "carol", None);
    assert_eq!(mine["data"]["state"], "completed", "{mine}");
    assert_eq!(exact(&mine["data"]["entries"][0]["quant"]), Decimal::from(2));

    // Credit up: carol confirms at home (pending), bob signs on the trunk (completed).
    let (status, credit) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(3), "credit up", "credit")));
    assert_eq!(status, StatusCode::OK, "validated: {credit}");
    check(written); // a validated copy is hashed nowhere
    let uuid = uuid_of(&credit);
    patch(&cc, &uuid, "pending", "carol");
    written += 1;
    check(written);
    patch(&trunk, &uuid, "completed", "bob");
    written += 1;
    check(written);
    let (_, here) = cc.call(Method::GET, &format!("/transaction/{uuid}"), "carol", None);
    assert_eq!(
        (here["data"]["state"].clone(), here["data"]["version"].clone()),
        (json!("completed"), json!(2)),
        "{here}"
    );

    // Credit down: bob confirms on the trunk, carol signs here.
    let (status, credit) =
        trunk.call(Method::POST, "/transaction", "bob", Some(payment("cc/carol", json!(1), "credit down", "credit")));
    assert_eq!(status, StatusCode::OK, "{credit}");
    let uuid = uuid_of(&credit);
    patch(&trunk, &uuid, "pending", "bob");
    written += 1;
    check(written);
    patch(&cc, &uuid, "completed", "carol");
    written += 1;
    check(written);

    // Bill up: carol bills bob (she is the payee), bob signs on the trunk.
    let bill = json!({"payer": "trunk/bob", "payee": "carol", "quant": 4, "description": "bill up", "type": "bill"});
    let (status, bill) = cc.call(Method::POST, "/transaction", "carol", Some(bill));
    assert_eq!(status, StatusCode::OK, "{bill}");
    let uuid = uuid_of(&bill);
    patch(&cc, &uuid, "pending", "carol");
    written += 1;
    check(written);
    patch(&trunk, &uuid, "completed", "bob");
    written += 1;
    check(written);

    // Bill down: alice bills dave, who signs here.
    let bill = json!({"payer": "cc/dave", "payee": "alice", "quant": 1, "description": "bill down", "type": "bill"});
    let (status, bill) = trunk.call(Method::POST, "/transaction", "alice", Some(bill));
    assert_eq!(status, StatusCode::OK, "{bill}");
    let uuid = uuid_of(&bill);
    patch(&trunk, &uuid, "pending", "alice");
    written += 1;
    check(written);
    patch(&cc, &uuid, "completed", "dave");
    written += 1;
    check(written);

    // Erase: ccnode's admin erases the first payment; the reference writes version 2 first.
    let uuid = uuid_of(&up);
    patch(&cc, &uuid, "erased", "admin");
    written += 1;
    check(written);
    let (_, there) = trunk.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    assert_eq!(
        (there["data"]["state"].clone(), there["data"]["version"].clone()),
        (json!("erased"), json!(2)),
        "{there}"
    );

    // Delete a validated credit (`/null`): nothing is hashed on either side.
    let (status, credit) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(1), "never mind", "credit")));
    assert_eq!(status, StatusCode::OK, "{credit}");
    let uuid = uuid_of(&credit);
    let (status, value) = cc.call(Method::PATCH, &format!("/transaction/{uuid}/null"), "carol", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    check(written);
    let (status, _) = trunk.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    assert_ne!(status, StatusCode::OK, "the reference deleted its validated copy");

    // The trunk's minimum for cc is -50: a payment beyond it is refused there; no balance moves, no hash.
    let carol_before = ccnode_balance(&cc, "carol");
    let (status, value) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(80), "too much", "pay")));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert!(value["errors"][0]["class"].as_str().is_some_and(|c| c.ends_with("LimitViolation")), "{value}");
    check(written);
    assert_eq!(ccnode_balance(&cc, "carol"), carol_before);
    let (_, open) = cc.call(Method::GET, "/transactions?state=validated", "carol", None);
    assert_eq!(open["data"], json!([]), "no validated copy is left behind: {open}");
}

fn ccnode_balance(node: &Server, account: &str) -> Decimal {
    let (status, value) = node.call(Method::GET, &format!("/account/balance?acc_path={account}"), "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    exact(&value["data"]["balance"])
}

/// A reference branch `refb` (alice, bob) under a ccnode trunk `cct` (carol):
/// the reference asks ccnode for its workflows on every request, relays up
/// as the write, and takes ccnode's relays and PATCHes.
#[test]
fn a_reference_branch_under_a_ccnode_trunk_agrees_after_every_write() {
    let work = RefWork::new();
    let ports = free_ports(1);
    let data = tempfile::tempdir().expect("tempdir");
    let trunk = Server::start(data.path(), "cct");
    trunk.open("carol", -1000, 1000);
    let branch_url = format!("http://127.0.0.1:{}", ports[0]);
    let graft = json!({"id": "refb", "url": branch_url, "min": -100, "max": 100});
    let (status, value) = trunk.call(Method::POST, "/admin/nodes", "admin", Some(graft));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["dialect"], "reference", "the default dialect: {value}");
    let branch = work.up(
        "refb",
        ports[0],
        &[
            "--account",
            "alice:123",
            "--account",
            "bob:123",
            "--admin",
            "admin:123",
            "--trunkward-name",
            "cct",
            "--trunkward-url",
            &trunk.url,
        ],
    );
    let (status, path) = branch.call(Method::GET, "/absolutepath", "alice", None);
    assert_eq!(status, StatusCode::OK, "{path}");
    assert_eq!(path["data"], json!(["cct", "refb"]), "{path}");
    let mut written = 0;
    let check = |written: u64| {
        assert_link_agrees(&work, &branch, "cct", &trunk, "refb", written);
        assert_eq!(ccnode_sum(&trunk, "cct"), Decimal::ZERO, "ccnode's ledger sums to zero");
        let theirs = work.balances(&branch);
        assert_eq!(
            theirs.values().copied().sum::<Decimal>(),
            Decimal::ZERO,
            "the reference's ledger sums to zero: {theirs:?}"
        );
        let trunk_there = theirs.get("cct").copied().unwrap_or_default();
        assert_eq!(
            trunk_there,
            -ccnode_balance(&trunk, "refb"),
            "the link's two accounts mirror each other: {theirs:?}"
        );
    };

    // Immediate both ways.
    let (status, up) =
        branch.call(Method::POST, "/transaction", "alice", Some(payment("cct/carol", json!(6), "up", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{up}");
    written += 1;
    check(written);
    let (status, down) =
        trunk.call(Method::POST, "/transaction", "carol", Some(payment("refb/bob", json!(4), "down", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{down}");
    assert_eq!(down["data"]["state"], "completed", "{down}");
    written += 1;
    check(written);
    let (_, there) = branch.call(Method::GET, &format!("/transaction/{}", uuid_of(&down)), "bob", None);
    assert_eq!(
        (there["data"]["state"].clone(), there["data"]["version"].clone()),
        (json!("completed"), json!(1)),
        "{there}"
    );

    // Credit from ccnode to the reference: carol confirms, bob signs there.
    let (status, credit) =
        trunk.call(Method::POST, "/transaction", "carol", Some(payment("refb/bob", json!(3), "credit down", "credit")));
    assert_eq!(status, StatusCode::OK, "{credit}");
    let uuid = uuid_of(&credit);
    patch(&trunk, &uuid, "pending", "carol");
    written += 1;
    check(written);
    patch(&branch, &uuid, "completed", "bob");
    written += 1;
    check(written);

    // Bill from the reference: alice bills carol, who signs here.
    let bill = json!({"payer": "cct/carol", "payee": "alice", "quant": 2, "description": "bill up", "type": "bill"});
    let (status, bill) = branch.call(Method::POST, "/transaction", "alice", Some(bill));
    assert_eq!(status, StatusCode::OK, "{bill}");
    let uuid = uuid_of(&bill);
    patch(&branch, &uuid, "pending", "alice");
    written += 1;
    check(written);
    patch(&trunk, &uuid, "completed", "carol");
    written += 1;
    check(written);

    // The reference deletes a validated credit (`/null`): ccnode erases its copy first, nothing is hashed.
    let (status, credit) =
        branch.call(Method::POST, "/transaction", "bob", Some(payment("cct/carol", json!(1), "never mind", "credit")));
    assert_eq!(status, StatusCode::OK, "{credit}");
    let uuid = uuid_of(&credit);
    let (_, here) = trunk.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    assert_eq!(here["data"]["state"], "validated", "{here}");
    let (status, value) = branch.call(Method::PATCH, &format!("/transaction/{uuid}/null"), "bob", None);
    assert!(status.is_success(), "{value}");
    check(written);
    let (_, here) = trunk.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    assert_eq!(here["data"]["state"], "erased", "{here}");

    // The reference's admin erases the first payment; ccnode writes version 2 first.
    let uuid = uuid_of(&up);
    patch(&branch, &uuid, "erased", "admin");
    written += 1;
    check(written);
    let (_, here) = trunk.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    assert_eq!((here["data"]["state"].clone(), here["data"]["version"].clone()), (json!("erased"), json!(2)), "{here}");

    // A request with a head ccnode does not hold is refused, and the reference can
    // rebuild the refusal (its `reconstructCCErr` needs `localHash`, sent empty,
    // `translated`, `method`, `path` and `user`). The reference raises it while
    // it fetches ccnode's workflows, before its JSON error handler is in place,
    // so its own answer is PHP's fatal error text naming the class (its README's quirk).
    work.sql(&branch, "INSERT INTO hash_history (txid, acc_id, hash) VALUES (100000, 'cct', 'not-the-head')");
    let (status, value) =
        branch.call(Method::POST, "/transaction", "alice", Some(payment("cct/carol", json!(1), "stale", "pay")));
    assert_ne!(status, StatusCode::CREATED, "{value}");
    let text = value.to_string();
    assert!(
        text.contains("Uncaught CreditCommons\\\\Exceptions\\\\HashMismatchFailure"),
        "the reference rebuilt ccnode's refusal: {text}"
    );
    assert!(!text.contains("Undefined property"), "{text}");
    work.sql(&branch, "DELETE FROM hash_history WHERE txid = 100000");
    check(written);
}

/// ccnode → reference → ccnode: two ccnodes under one reference trunk pay
/// each other through it, immediate and with confirmation; all three
/// ledgers and both links agree after every write.
#[test]
fn a_payment_crosses_a_reference_trunk_between_two_ccnodes() {
    let work = RefWork::new();
    let ports = free_ports(3);
    let trunk_url = format!("http://127.0.0.1:{}", ports[0]);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let start = |dir: &tempfile::TempDir, name: &str, port: u16| {
        let listen = format!("127.0.0.1:{port}");
        Server::spawn(&[
            "serve",
            "--data",
            crate::arg(dir.path()),
            "--listen",
            &listen,
            "--name",
            name,
            "--trunkward-name",
            "hub",
            "--trunkward-url",
            &trunk_url,
        ])
    };
    let east = start(&dirs[0], "east", ports[1]);
    let west = start(&dirs[1], "west", ports[2]);
    let (e, w) = (format!("east={}", east.url), format!("west={}", west.url));
    let hub =
        work.up("hub", ports[0], &["--account", "alice:123", "--admin", "admin:123", "--child", &e, "--child", &w]);
    east.open("carol", -1000, 1000);
    west.open("dave", -1000, 1000);
    let mut written = 0;
    let check = |written: u64| {
        assert_link_agrees(&work, &hub, "east", &east, "hub", written);
        assert_link_agrees(&work, &hub, "west", &west, "hub", written);
        let theirs = work.balances(&hub);
        assert_eq!(theirs.values().copied().sum::<Decimal>(), Decimal::ZERO, "the hub sums to zero: {theirs:?}");
        for (name, node) in [("east", &east), ("west", &west)] {
            assert_eq!(ccnode_sum(node, name), Decimal::ZERO, "{name} sums to zero");
            let there = theirs.get(name).copied().unwrap_or_default();
            assert_eq!(there, -ccnode_balance(node, "hub"), "the {name}/hub accounts mirror each other: {theirs:?}");
        }
    };
    let (status, paid) =
        east.call(Method::POST, "/transaction", "carol", Some(payment("hub/west/dave", json!(5), "across", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    written += 1;
    check(written);
    assert_eq!(ccnode_balance(&west, "dave"), Decimal::from(5));
    let (status, credit) =
        west.call(Method::POST, "/transaction", "dave", Some(payment("hub/east/carol", json!(2), "back", "credit")));
    assert_eq!(status, StatusCode::OK, "{credit}");
    let uuid = uuid_of(&credit);
    patch(&west, &uuid, "pending", "dave");
    written += 1;
    check(written);
    patch(&east, &uuid, "completed", "carol");
    written += 1;
    check(written);
    assert_eq!(ccnode_balance(&east, "carol"), Decimal::from(-3));
}

/// ccnode dies after the reference wrote a payment and before it did; at its
/// next start it finds the reference's head ahead, asks the reference for the
/// open transaction, and copies the version that reproduces that head.
/// Then a hash the reference invents is reported with evidence, new payments
/// on the link are refused, and the link opens again once the heads agree.
#[test]
fn a_crash_between_the_reference_write_and_ours_is_repaired_and_a_split_is_reported() {
    let work = RefWork::new();
    let ports = free_ports(2);
    let data = tempfile::tempdir().expect("tempdir");
    let trunk_url = format!("http://127.0.0.1:{}", ports[0]);
    let listen = format!("127.0.0.1:{}", ports[1]);
    let args = [
        "serve",
        "--data",
        crate::arg(data.path()),
        "--listen",
        &listen,
        "--name",
        "cc",
        "--trunkward-name",
        "trunk",
        "--trunkward-url",
        &trunk_url,
        "--reconcile-interval",
        "1",
    ];
    let cc = Server::spawn_env(&args, &[("CCNODE_FAILPOINT", "after-next-node-wrote")]);
    let child = format!("cc={}", cc.url);
    let trunk = work.up("trunk", ports[0], &["--account", "bob:123", "--admin", "admin:123", "--child", &child]);
    cc.open("carol", -1000, 1000);
    let client = Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("client");
    let answer = client
        .post(format!("{}/transaction", cc.url))
        .header("cc-user", "carol")
        .header("cc-auth", "carol-key")
        .json(&payment("trunk/bob", json!(9), "crash", "pay"))
        .send();
    assert!(answer.is_err(), "the node aborted before answering: {answer:?}");
    assert!(!cc.wait_exit().success(), "the failpoint aborts");
    assert_eq!(work.hashes(&trunk, "cc").len(), 1, "the reference wrote the payment");

    let cc = Server::spawn(&args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ccnode_link(&cc, "trunk").1 < 1 {
        assert!(std::time::Instant::now() < deadline, "the link was not repaired");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_link_agrees(&work, &trunk, "cc", &cc, "trunk", 1);
    assert_eq!(ccnode_balance(&cc, "carol"), Decimal::from(-9), "the payment is booked here too");
    let (status, value) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(1), "after", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_link_agrees(&work, &trunk, "cc", &cc, "trunk", 2);

    // The reference's head moves with no transaction behind it: ccnode cannot repair that.
    work.sql(
        &trunk,
        "INSERT INTO hash_history (txid, acc_id, hash) VALUES (100000, 'cc', 'ffffffffffffffffffffffffffffffff')",
    );
    let (status, report) = cc.call(Method::POST, "/replay/reconcile/trunk", "admin", None);
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["data"]["verdict"], "diverged", "{report}");
    assert_eq!(report["data"]["evidence"]["theirs"], "ffffffffffffffffffffffffffffffff", "{report}");
    let (status, value) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(1), "refused", "pay")));
    assert_eq!(status, StatusCode::CONFLICT, "a diverged link takes no new transaction: {value}");
    assert_eq!(value["errors"][0]["class"], "HashMismatchFailure", "{value}");
    let (_, nodes) = cc.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(nodes["data"]["trunk"]["closed"]["theirs"], "ffffffffffffffffffffffffffffffff", "{nodes}");

    // The closure is an event: a restart keeps the link closed.
    cc.stop();
    let cc = Server::spawn(&args);
    let (_, nodes) = cc.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(
        nodes["data"]["trunk"]["closed"]["theirs"], "ffffffffffffffffffffffffffffffff",
        "after a restart: {nodes}"
    );
    let (status, value) =
        cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(1), "refused", "pay")));
    assert_eq!(status, StatusCode::CONFLICT, "still closed after a restart: {value}");

    // The operator removes the stray row: the next pass finds the heads equal and opens the link.
    work.sql(&trunk, "DELETE FROM hash_history WHERE txid = 100000");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, value) =
            cc.call(Method::POST, "/transaction", "carol", Some(payment("trunk/bob", json!(1), "again", "pay")));
        if status == StatusCode::CREATED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the link did not open again: {value}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_link_agrees(&work, &trunk, "cc", &cc, "trunk", 3);
}

/// Three ccnodes, no PHP: `top` and `mid` grafted as `ccnode`, `leaf` under
/// `mid` grafted with no dialect, so `mid` and `leaf` speak the reference's
/// wire to each other. Payments cross both kinds of link in both directions
/// (at `mid` an immediate payment enters on one dialect and leaves on the
/// other) in every shipped workflow; both sides of each link agree after
/// every write.
#[test]
fn two_ccnodes_grafted_without_a_dialect_speak_the_reference_wire() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let top = Server::start(dirs[0].path(), "top");
    let mid = Server::start(dirs[1].path(), "mid");
    let leaf = Server::start(dirs[2].path(), "leaf");
    crate::federation::graft(&top, "top", &mid, "mid", "1", -1000);
    let (status, value) = mid.call(
        Method::POST,
        "/admin/nodes",
        "admin",
        Some(json!({"id": "leaf", "url": leaf.url, "min": -1000, "max": 1000})),
    );
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let body = json!({"name": "mid", "url": mid.url, "rate": 1, "min": -1000, "max": 1000});
    let (status, value) = leaf.call(Method::PUT, "/admin/trunkward", "admin", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["dialect"], "reference", "{value}");
    top.open("tina", -1000, 1000);
    leaf.open("lou", -1000, 1000);
    let links = [(&top, "top", &mid, "mid"), (&mid, "mid", &leaf, "leaf")];
    let check = || {
        for (parent, parent_name, child, child_name) in links {
            let (up, down) = (ccnode_link(parent, child_name), ccnode_link(child, parent_name));
            assert_eq!(up, down, "the {parent_name}–{child_name} link agrees");
        }
        for (name, node) in [("top", &top), ("mid", &mid), ("leaf", &leaf)] {
            assert_eq!(ccnode_sum(node, name), Decimal::ZERO, "{name} sums to zero");
        }
    };
    let (head, _) = ccnode_link(&leaf, "mid");
    assert_eq!(head, "", "a reference link starts at the empty hash");
    for (from, user, to) in [(&leaf, "lou", "mid/top/tina"), (&top, "tina", "mid/leaf/lou")] {
        let (status, value) = from.call(Method::POST, "/transaction", user, Some(payment(to, json!(5), "pay", "pay")));
        assert_eq!(status, StatusCode::CREATED, "{value}");
        check();
        let (status, credit) =
            from.call(Method::POST, "/transaction", user, Some(payment(to, json!(2), "credit", "credit")));
        assert_eq!(status, StatusCode::OK, "{credit}");
        let uuid = uuid_of(&credit);
        let (status, value) = from.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), user, None);
        assert_eq!(status, StatusCode::CREATED, "{value}");
        check();
        let (other, other_user) = if user == "lou" { (&top, "tina") } else { (&leaf, "lou") };
        let (status, value) = other.call(Method::PATCH, &format!("/transaction/{uuid}/completed"), other_user, None);
        assert_eq!(status, StatusCode::CREATED, "{value}");
        check();
    }
    assert_eq!(ccnode_balance(&leaf, "lou"), Decimal::ZERO, "lou paid 7 and got 7");
    assert_eq!(ccnode_link(&leaf, "mid").1, 6, "six versions crossed the reference link");
}

/// reference → ccnode → reference: a ccnode `mid` between a reference trunk
/// `hub` (bob) and a reference leaf `leaf` (alice), both links in the
/// reference dialect. An immediate payment relayed by the hub is written at
/// `mid` only once `mid`'s own relay to the leaf (its write there) succeeded;
/// a credit's PATCHes cross both links. Both links agree after every write.
#[test]
fn a_ccnode_between_two_reference_nodes_relays_each_write_on() {
    let work = RefWork::new();
    let ports = free_ports(3);
    let (hub_url, mid_listen, leaf_url) = (
        format!("http://127.0.0.1:{}", ports[0]),
        format!("127.0.0.1:{}", ports[1]),
        format!("http://127.0.0.1:{}", ports[2]),
    );
    let data = tempfile::tempdir().expect("tempdir");
    let mid = Server::spawn(&[
        "serve",
        "--data",
        crate::arg(data.path()),
        "--listen",
        &mid_listen,
        "--name",
        "mid",
        "--trunkward-name",
        "hub",
        "--trunkward-url",
        &hub_url,
    ]);
    let (status, value) = mid.call(
        Method::POST,
        "/admin/nodes",
        "admin",
        Some(json!({"id": "leaf", "url": leaf_url, "min": -1000, "max": 1000})),
    );
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let child = format!("mid={}", mid.url);
    let hub = work.up("hub", ports[0], &["--account", "bob:123", "--admin", "admin:123", "--child", &child]);
    let leaf = work.up(
        "leaf",
        ports[2],
        &[
            "--account",
            "alice:123",
            "--admin",
            "admin:123",
            "--trunkward-name",
            "mid",
            "--trunkward-url",
            &mid.url,
            "--abs-path",
            "hub/mid/leaf",
        ],
    );
    let mut written = 0;
    let check = |written: u64| {
        assert_link_agrees(&work, &hub, "mid", &mid, "hub", written);
        assert_link_agrees(&work, &leaf, "mid", &mid, "leaf", written);
        assert_eq!(ccnode_sum(&mid, "mid"), Decimal::ZERO, "mid sums to zero");
        for node in [&hub, &leaf] {
            let theirs = work.balances(node);
            assert_eq!(
                theirs.values().copied().sum::<Decimal>(),
                Decimal::ZERO,
                "{} sums to zero: {theirs:?}",
                node.name
            );
        }
    };
    let (status, paid) =
        hub.call(Method::POST, "/transaction", "bob", Some(payment("mid/leaf/alice", json!(4), "through", "pay")));
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    written += 1;
    check(written);
    assert_eq!(work.balances(&leaf).get("alice").copied(), Some(Decimal::from(4)));
    let (status, credit) =
        leaf.call(Method::POST, "/transaction", "alice", Some(payment("hub/bob", json!(3), "back", "credit")));
    assert_eq!(status, StatusCode::OK, "{credit}");
    let uuid = uuid_of(&credit);
    patch(&leaf, &uuid, "pending", "alice");
    written += 1;
    check(written);
    patch(&hub, &uuid, "completed", "bob");
    written += 1;
    check(written);
    assert_eq!(work.balances(&leaf).get("alice").copied(), Some(Decimal::from(1)));
}
