//! Five real `ccnode` processes on loopback forming a tree:
//!
//! ```text
//!                 trunk
//!          ×2 /         \ ×0.5
//!        branch1       branch2 (carol)
//!    ×1 /      \ ×3
//!   twig1      twig2
//!  (alice)     (bob)
//! ```
//!
//! (`×r` is the child's conversion rate: trunkward amount = local amount × r.)

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::Server;

struct Tree {
    trunk: Server,
    branch1: Server,
    branch2: Server,
    twig1: Server,
    twig2: Server,
    _dirs: Vec<tempfile::TempDir>,
}

fn start(name: &str, dirs: &mut Vec<tempfile::TempDir>) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), name);
    dirs.push(dir);
    server
}

/// Grafts `child` under `parent`: the parent opens the child's node account,
/// the child sets its trunkward node; both agree on the initial hash.
pub fn graft(parent: &Server, parent_name: &str, child: &Server, child_name: &str, rate: &str, parent_min: i64) {
    let hash = format!("graft-{parent_name}-{child_name}");
    let body = json!({"id": child_name, "url": child.url, "min": parent_min, "max": 1000, "last_hash": hash,
                      "dialect": "ccnode"});
    let (status, value) = parent.call(Method::POST, "/admin/nodes", "admin", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let body = json!({"name": parent_name, "url": parent.url, "rate": rate, "min": -1000, "max": 1000, "last_hash": hash,
               "dialect": "ccnode"});
    let (status, value) = child.call(Method::PUT, "/admin/trunkward", "admin", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{value}");
}

impl Tree {
    fn start() -> Tree {
        let mut dirs = Vec::new();
        let trunk = start("trunk", &mut dirs);
        let branch1 = start("branch1", &mut dirs);
        let branch2 = start("branch2", &mut dirs);
        let twig1 = start("twig1", &mut dirs);
        let twig2 = start("twig2", &mut dirs);
        graft(&trunk, "trunk", &branch1, "branch1", "2", -100);
        graft(&trunk, "trunk", &branch2, "branch2", "0.5", -1000);
        graft(&branch1, "branch1", &twig1, "twig1", "1", -1000);
        graft(&branch1, "branch1", &twig2, "twig2", "3", -1000);
        twig1.open("alice", -1000, 1000);
        twig2.open("bob", -1000, 1000);
        branch2.open("carol", -1000, 1000);
        branch1.open("dave", -1000, 1000);
        Tree { trunk, branch1, branch2, twig1, twig2, _dirs: dirs }
    }

    fn nodes(&self) -> [(&str, &Server); 5] {
        [
            ("trunk", &self.trunk),
            ("branch1", &self.branch1),
            ("branch2", &self.branch2),
            ("twig1", &self.twig1),
            ("twig2", &self.twig2),
        ]
    }

    fn links(&self) -> [(&str, &Server, &str, &Server); 4] {
        [
            ("trunk", &self.trunk, "branch1", &self.branch1),
            ("trunk", &self.trunk, "branch2", &self.branch2),
            ("branch1", &self.branch1, "twig1", &self.twig1),
            ("branch1", &self.branch1, "twig2", &self.twig2),
        ]
    }

    /// Every ledger sums to zero; both sides of every link hold the same ratchet.
    fn check_consistent(&self) {
        for (name, node) in self.nodes() {
            let sum: rust_decimal::Decimal = node.balances(name).iter().map(|(_, b)| b).sum();
            assert!(sum.is_zero(), "{name} does not sum to zero: {:?}", node.balances(name));
        }
        for (parent_name, parent, child_name, child) in self.links() {
            let (_, up) = parent.call(Method::GET, "/admin/nodes", "admin", None);
            let (_, down) = child.call(Method::GET, "/admin/nodes", "admin", None);
            let (a, b) = (&up["data"][child_name], &down["data"][parent_name]);
            assert_eq!(a["last_hash"], b["last_hash"], "ratchet {parent_name}-{child_name}: {a} vs {b}");
            assert_eq!(a["blake3"], b["blake3"], "blake3 {parent_name}-{child_name}");
            assert_eq!(a["versions"], b["versions"], "versions {parent_name}-{child_name}");
        }
    }

    fn balance(&self, node: &Server, account: &str) -> Value {
        let (status, value) = node.call(Method::GET, &format!("/account/balance?acc_path={account}"), "admin", None);
        assert_eq!(status, StatusCode::OK, "{value}");
        value["data"]["balance"].clone()
    }

    fn state_everywhere(&self, uuid: &str, nodes: &[&Server]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| {
                let (status, value) = n.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
                assert_eq!(status, StatusCode::OK, "{value}");
                value["data"]["state"].as_str().expect("state").to_owned()
            })
            .collect()
    }

    fn transaction_count(&self, node: &Server) -> u64 {
        let (_, value) = node.call(Method::GET, "/transactions?limit=1", "admin", None);
        value["meta"]["number_of_results"].as_u64().expect("count")
    }
}

fn pay(payer: &str, payee: &str, quant: Value, workflow: &str) -> Value {
    json!({"payer": payer, "payee": payee, "quant": quant, "description": "across the tree", "type": workflow})
}

#[test]
fn payments_cross_the_tree_with_rates_limits_erase_and_matching_ratchets() {
    let tree = Tree::start();
    let (_, path) = tree.twig1.call(Method::GET, "/absolutepath", "alice", None);
    assert_eq!(path["data"], json!(["trunk", "branch1", "twig1"]));
    let (_, names) = tree.twig1.call(Method::GET, "/account/names?acc_path=branch2/ca", "alice", None);
    assert_eq!(names["data"], json!(["branch2/carol"]), "names complete across the trunk: {names}");
    let (_, names) = tree.trunk.call(Method::GET, "/account/names?acc_path=branch1/twig", "admin", None);
    assert_eq!(names["data"], json!(["branch1/twig1/", "branch1/twig2/"]), "{names}");
    let (_, about) = tree.twig1.call(Method::GET, "/about?node_path=branch2", "alice", None);
    assert_eq!(about["data"]["name"], "branch2", "{about}");
    let (_, about) = tree.branch2.call(Method::GET, "/about?node_path=trunk/branch1/twig2", "carol", None);
    assert_eq!(about["data"]["name"], "twig2", "{about}");

    // Leaf to leaf across the trunk: 10 at twig1 is 10 at branch1, 20 at the trunk, 40 at branch2.
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "branch2/carol", json!(10), "pay")));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["state"], "completed");
    let first = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(tree.balance(&tree.twig1, "alice"), json!(-10));
    assert_eq!(tree.balance(&tree.branch1, "trunk"), json!(10));
    assert_eq!(tree.balance(&tree.trunk, "branch1"), json!(-20));
    assert_eq!(tree.balance(&tree.trunk, "branch2"), json!(20));
    assert_eq!(tree.balance(&tree.branch2, "carol"), json!(40));
    let all = [&tree.twig1, &tree.branch1, &tree.trunk, &tree.branch2];
    assert_eq!(tree.state_everywhere(&first, &all), vec!["completed"; 4]);
    let (_, seen) = tree.branch2.call(Method::GET, &format!("/transaction/{first}"), "carol", None);
    // A path relative to branch2: it travels trunkward until a node knows `branch1`.
    assert_eq!(seen["data"]["entries"][0]["payer"], "branch1/twig1/alice", "{seen}");
    tree.check_consistent();

    // Within a branch: 5 at twig1 and branch1 is 5/3 = 1.666667 (half-even) at twig2.
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "twig2/bob", json!(5), "pay")));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.balance(&tree.twig2, "bob"), json!(1.666667));
    assert_eq!(tree.balance(&tree.branch1, "twig2"), json!(5));
    tree.check_consistent();

    // Credit with confirmation: validated (200), the author confirms, the far payee signs.
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "branch2/carol", json!(3), "credit")));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["state"], "validated");
    let credit = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, body) = tree.twig1.call(Method::PATCH, &format!("/transaction/{credit}/pending"), "alice", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.state_everywhere(&credit, &all), vec!["pending"; 4]);
    let (status, body) = tree.branch2.call(Method::PATCH, &format!("/transaction/{credit}/completed"), "carol", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.state_everywhere(&credit, &all), vec!["completed"; 4]);
    assert_eq!(tree.balance(&tree.branch2, "carol"), json!(52));
    tree.check_consistent();

    // A bill from a far payee (the reference's bill): validated everywhere, the
    // payee confirms it to pending, then the payer signs at its own node.
    let (status, body) =
        tree.twig2.call(Method::POST, "/transaction", "bob", Some(pay("branch2/carol", "bob", json!(1), "bill")));
    assert_eq!(status, StatusCode::OK, "{body}");
    let bill = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let bill_nodes = [&tree.twig2, &tree.branch1, &tree.trunk, &tree.branch2];
    assert_eq!(tree.state_everywhere(&bill, &bill_nodes), vec!["validated"; 4]);
    let (status, body) = tree.twig2.call(Method::PATCH, &format!("/transaction/{bill}/pending"), "bob", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.state_everywhere(&bill, &bill_nodes), vec!["pending"; 4]);
    let (status, body) = tree.branch2.call(Method::PATCH, &format!("/transaction/{bill}/completed"), "carol", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.state_everywhere(&bill, &bill_nodes), vec!["completed"; 4]);
    tree.check_consistent();

    // A bill within a branch: bob (twig2) bills alice (twig1) through branch1 only; alice signs.
    let (status, body) =
        tree.twig2.call(Method::POST, "/transaction", "bob", Some(pay("twig1/alice", "bob", json!(2), "bill")));
    assert_eq!(status, StatusCode::OK, "{body}");
    let local_bill = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, body) = tree.twig2.call(Method::PATCH, &format!("/transaction/{local_bill}/pending"), "bob", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = tree.twig1.call(Method::PATCH, &format!("/transaction/{local_bill}/completed"), "alice", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let branch_nodes = [&tree.twig2, &tree.branch1, &tree.twig1];
    assert_eq!(tree.state_everywhere(&local_bill, &branch_nodes), vec!["completed"; 3]);
    // 2 at twig2 is 6 at branch1 (rate 3) and 6 at twig1 (rate 1).
    assert_eq!(tree.balance(&tree.branch1, "twig1"), json!(-10 - 5 - 3 - 6), "alice's side of branch1");
    assert_eq!(tree.balance(&tree.twig1, "alice"), json!(-10 - 5 - 3 - 6));
    tree.check_consistent();

    // A credit within a branch: alice proposes to bob, confirms, bob signs at twig2.
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "twig2/bob", json!(1), "credit")));
    assert_eq!(status, StatusCode::OK, "{body}");
    let local_credit = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(
        tree.twig1.call(Method::PATCH, &format!("/transaction/{local_credit}/pending"), "alice", None).0,
        StatusCode::CREATED
    );
    assert_eq!(
        tree.twig2.call(Method::PATCH, &format!("/transaction/{local_credit}/completed"), "bob", None).0,
        StatusCode::CREATED
    );
    assert_eq!(tree.state_everywhere(&local_credit, &branch_nodes), vec!["completed"; 3]);
    tree.check_consistent();

    // Refused at an intermediate balance-of-trade account: nothing is written anywhere.
    let counts: Vec<u64> = tree.nodes().iter().map(|(_, n)| tree.transaction_count(n)).collect();
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "branch2/carol", json!(100), "pay")));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["class"], "MinLimitViolation", "{body}");
    assert_eq!(body["errors"][0]["accId"], "branch1", "{body}");
    let after: Vec<u64> = tree.nodes().iter().map(|(_, n)| tree.transaction_count(n)).collect();
    assert_eq!(counts, after, "a refused transaction left something behind");
    tree.check_consistent();

    // An admin erases the first (completed) payment at its origin; every ledger reverts it.
    let (status, body) = tree.twig1.call(Method::PATCH, &format!("/transaction/{first}/erased"), "admin", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.state_everywhere(&first, &all), vec!["erased"; 4]);
    assert_eq!(tree.balance(&tree.trunk, "branch1"), json!(0), "credit -6 and bill +6 remain");
    tree.check_consistent();
}

#[test]
fn a_wrong_last_hash_or_an_unreachable_node_changes_nothing() {
    let tree = Tree::start();
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "twig2/bob", json!(2), "pay")));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let uuid = body["data"]["uuid"].as_str().expect("uuid").to_owned();

    // A neighbour with the wrong last hash is refused before anything happens.
    let (status, body) = tree.branch1.request_with(
        Method::PATCH,
        &format!("/transaction/{uuid}/erased"),
        &[("cc-node", "twig1"), ("last-hash", "0123456789abcdef0123456789abcdef")],
    );
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["errors"][0]["class"], "HashMismatchFailure");
    assert_eq!(body["errors"][0]["remoteNode"], "twig1");
    assert_eq!(tree.state_everywhere(&uuid, &[&tree.branch1]), vec!["completed"]);

    // The 0.8.x pair works for a neighbour too: cc-user is the node, cc-auth the link's last hash.
    let (_, nodes) = tree.branch1.call(Method::GET, "/admin/nodes", "admin", None);
    let hash = nodes["data"]["twig1"]["last_hash"].as_str().expect("hash").to_owned();
    let (status, body) = tree.branch1.request_with(
        Method::PATCH,
        &format!("/transaction/{uuid}/completed"),
        &[("cc-user", "twig1"), ("cc-auth", &hash)],
    );
    assert_eq!(status, StatusCode::CREATED, "0.8.x node headers: {body}");

    // A duplicated state change from the right neighbour is answered and changes nothing twice.
    let (_, nodes) = tree.branch1.call(Method::GET, "/admin/nodes", "admin", None);
    let hash = nodes["data"]["twig1"]["last_hash"].as_str().expect("hash").to_owned();
    let (status, body) = tree.branch1.request_with(
        Method::PATCH,
        &format!("/transaction/{uuid}/completed"),
        &[("cc-node", "twig1"), ("last-hash", &hash)],
    );
    assert_eq!(status, StatusCode::CREATED, "a retried PATCH is idempotent: {body}");
    let (_, again) = tree.branch1.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(again["data"]["twig1"]["versions"], nodes["data"]["twig1"]["versions"]);

    // twig2 goes away: a payment to it is refused with UnavailableNodeFailure and nothing is written.
    let counts = (tree.transaction_count(&tree.twig1), tree.transaction_count(&tree.branch1));
    let pid = tree.twig2.pid();
    std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status().expect("kill -STOP");
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "twig2/bob", json!(1), "pay")));
    std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status().expect("kill -CONT");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["class"], "UnavailableNodeFailure", "{body}");
    assert_eq!((tree.transaction_count(&tree.twig1), tree.transaction_count(&tree.branch1)), counts);
    let (_, handshake) = tree.branch1.call(Method::GET, "/handshake", "dave", None);
    assert_eq!(handshake["data"], json!({"trunk": "ok", "twig1": "ok", "twig2": "ok"}));
    tree.check_consistent();

    // A duplicated relay is answered as the first one was and records nothing twice.
    let relay = json!({"uuid": uuid::Uuid::new_v4().to_string(), "state": "V", "workflow": "_C-CE0", "type": "pay",
                       "entries": [{"payer": "twig1/alice", "payee": "dave", "quant": 1, "description": "twice"}]});
    let before = tree.transaction_count(&tree.branch1);
    for _ in 0..2 {
        let (_, nodes) = tree.branch1.call(Method::GET, "/admin/nodes", "admin", None);
        let hash = nodes["data"]["twig1"]["last_hash"].as_str().expect("hash").to_owned();
        let headers = [("cc-node", "twig1"), ("last-hash", hash.as_str())];
        let (status, body) = tree.branch1.request_json(Method::POST, "/transaction/relay", &headers, &relay);
        assert_eq!((status, &body["data"]), (StatusCode::CREATED, &json!([])), "{body}");
    }
    assert_eq!(tree.transaction_count(&tree.branch1), before + 1);

    // The far node dies between validation and confirmation: the PATCH is
    // refused with UnavailableNodeFailure and neither near node moves.
    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "twig2/bob", json!(1), "credit")));
    assert_eq!(status, StatusCode::OK, "{body}");
    let credit = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill -KILL");
    let (status, body) = tree.twig1.call(Method::PATCH, &format!("/transaction/{credit}/pending"), "alice", None);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["class"], "UnavailableNodeFailure");
    assert_eq!(tree.state_everywhere(&credit, &[&tree.twig1, &tree.branch1]), vec!["validated"; 2]);
    let (_, up) = tree.branch1.call(Method::GET, "/admin/nodes", "admin", None);
    let (_, down) = tree.twig1.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(up["data"]["twig1"]["last_hash"], down["data"]["branch1"]["last_hash"]);
}

#[test]
fn nodes_on_the_way_add_their_fees_and_everyone_records_them() {
    let tree = Tree::start();
    tree.trunk.open("fees", 0, 1000);
    let fees = |node: &Server, body: Value| {
        let (status, value) = node.call(Method::PUT, "/admin/fees", "admin", Some(body));
        assert_eq!(status, StatusCode::OK, "{value}");
    };
    fees(&tree.branch1, json!({"account": "dave", "fixed": 1}));
    fees(&tree.trunk, json!({"account": "fees", "percent": 1}));

    let (status, body) =
        tree.twig1.call(Method::POST, "/transaction", "alice", Some(pay("alice", "branch2/carol", json!(10), "pay")));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let entries = body["data"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 3, "primary, branch1's fee, the trunk's fee: {body}");
    assert_eq!(entries[1]["payee"], "branch1/dave");
    assert_eq!(entries[1]["quant"], json!(1));
    assert_eq!(entries[2]["payee"], "trunk/fees");
    assert_eq!(entries[2]["quant"], json!(0.1), "1% of 20 trunk units is 0.2 there, 0.1 here");
    assert_eq!(tree.balance(&tree.twig1, "alice"), json!(-11.1));
    assert_eq!(tree.balance(&tree.branch1, "dave"), json!(1));
    assert_eq!(tree.balance(&tree.trunk, "fees"), json!(0.2));
    assert_eq!(tree.balance(&tree.branch2, "carol"), json!(40), "the payee's node sees no fees");
    tree.check_consistent();

    // Erasing reverts the fees with the payment, on every node.
    let uuid = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, body) = tree.twig1.call(Method::PATCH, &format!("/transaction/{uuid}/erased"), "admin", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(tree.balance(&tree.trunk, "fees"), json!(0));
    assert_eq!(tree.balance(&tree.twig1, "alice"), json!(0));
    tree.check_consistent();
}

/// `ccnode demo-tree` serves five federated nodes from one command.
#[test]
fn the_demo_tree_pays_across_the_trunk() {
    use std::io::{BufRead, BufReader};
    if crate::on_postgres() {
        // `demo-tree` keeps its five nodes' journals as segment files in one
        // data directory (a database holds one journal): nothing of it runs
        // on PostgreSQL, and the default run already tests it.
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(["demo-tree", "--data", crate::arg(data.path()), "--base-port", "0"])
        .env("CCNODE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo-tree");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut urls = std::collections::BTreeMap::new();
    for _ in 0..5 {
        let line = lines.next().expect("a node line").expect("utf-8");
        let mut words = line.split_whitespace();
        urls.insert(words.next().expect("name").to_owned(), words.next().expect("url").to_owned());
    }
    let client = reqwest::blocking::Client::new();
    let body = pay("alice", "branch2/carol", json!(10), "pay");
    // Right after start every node reconciles its links (holding each link's
    // lock a moment), so a first payment may meet `409 LinkBusyFailure`,
    // which is documented as retryable: nothing was written anywhere.
    let mut tries = 0;
    loop {
        let response = client
            .post(format!("{}/transaction", urls["twig1"]))
            .header("cc-user", "alice")
            .header("cc-auth", "alice")
            .json(&body)
            .send()
            .expect("twig1 answers");
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if status == StatusCode::CONFLICT && text.contains("LinkBusyFailure") && tries < 20 {
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        assert_eq!(status, StatusCode::CREATED, "{text}");
        break;
    }
    let summary: Value = client
        .get(format!("{}/account/summary", urls["branch2"]))
        .header("cc-user", "carol")
        .header("cc-auth", "carol")
        .send()
        .and_then(|r| r.json())
        .expect("branch2 answers");
    assert_eq!(summary["data"]["carol"]["completed"]["balance"], json!(40), "{summary}");
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(child.wait().expect("wait").success());
}

/// The trunkward side of a graft can come from `ccnode serve` flags at first start.
#[test]
fn a_child_can_be_grafted_from_the_command_line() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let parent = Server::start(dirs[0].path(), "hub");
    let child = Server::spawn(&[
        "serve",
        "--data",
        crate::arg(dirs[1].path()),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "spoke",
        "--trunkward-name",
        "hub",
        "--trunkward-url",
        &parent.url,
        "--trunkward-rate",
        "4",
        "--trunkward-min",
        "-50",
        "--trunkward-max",
        "50",
        "--trunkward-dialect",
        "ccnode",
        "--trunkward-last-hash",
        "hub-spoke",
    ]);
    let body = json!({"id": "spoke", "url": child.url, "min": -1000, "max": 1000, "last_hash": "hub-spoke",
                      "dialect": "ccnode"});
    assert_eq!(parent.call(Method::POST, "/admin/nodes", "admin", Some(body)).0, StatusCode::CREATED);
    parent.open("zoe", -100, 100);
    child.open("yan", -100, 100);
    let (status, body) =
        child.call(Method::POST, "/transaction", "yan", Some(pay("yan", "hub/zoe", json!(2.5), "pay")));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, zoe) = parent.call(Method::GET, "/account/balance?acc_path=zoe", "admin", None);
    assert_eq!(zoe["data"]["balance"], json!(10), "2.5 at the spoke is 10 at the hub");
    let (_, nodes) = child.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(nodes["data"]["hub"]["rate"], "4");
    assert_eq!(nodes["data"]["hub"]["kind"], "trunkward");
    let (_, path) = child.call(Method::GET, "/absolutepath", "yan", None);
    assert_eq!(path["data"], json!(["hub", "spoke"]));
}

/// State changes crossing one link in both directions at once never make the
/// two sides hash versions in different orders: one side yields
/// (`LinkBusyFailure`, nothing written) and the client retries.
#[test]
fn opposite_changes_on_one_link_keep_both_sides_in_the_same_order() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let hub = std::sync::Arc::new(Server::start(dirs[0].path(), "hub"));
    let spoke = std::sync::Arc::new(Server::start(dirs[1].path(), "spoke"));
    graft(&hub, "hub", &spoke, "spoke", "1", -100_000);
    hub.open("hana", -100_000, 100_000);
    spoke.open("sami", -100_000, 100_000);
    let mut work = Vec::new();
    for i in 0..80 {
        let (server, author, payee) =
            if i % 2 == 0 { (&hub, "hana", "spoke/sami") } else { (&spoke, "sami", "hub/hana") };
        let (status, body) =
            server.call(Method::POST, "/transaction", author, Some(pay(author, payee, json!(1), "credit")));
        assert_eq!(status, StatusCode::OK, "{body}");
        work.push((i % 2 == 0, author, body["data"]["uuid"].as_str().expect("uuid").to_owned()));
    }
    let threads: Vec<_> = work
        .into_iter()
        .map(|(on_hub, author, uuid)| {
            let server = std::sync::Arc::clone(if on_hub { &hub } else { &spoke });
            std::thread::spawn(move || {
                for attempt in 0..50 {
                    let (status, body) =
                        server.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), author, None);
                    match status {
                        StatusCode::CREATED => return attempt,
                        StatusCode::CONFLICT => {
                            assert_eq!(body["errors"][0]["class"], "LinkBusyFailure", "{body}");
                            std::thread::sleep(std::time::Duration::from_millis(5 + attempt * 3));
                        }
                        other => panic!("{other}: {body}"),
                    }
                }
                panic!("{uuid} never got through");
            })
        })
        .collect();
    let retries: u64 = threads.into_iter().map(|t| t.join().expect("client")).sum();
    eprintln!("opposite changes: {retries} retries after LinkBusyFailure");
    let (_, up) = hub.call(Method::GET, "/admin/nodes", "admin", None);
    let (_, down) = spoke.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(up["data"]["spoke"]["versions"], json!(80));
    assert_eq!(up["data"]["spoke"]["last_hash"], down["data"]["hub"]["last_hash"]);
    assert_eq!(up["data"]["spoke"]["blake3"], down["data"]["hub"]["blake3"]);
    let (_, report) = hub.call(Method::POST, "/replay/reconcile/spoke", "admin", None);
    assert_eq!(report["data"]["verdict"], "in_sync", "{report}");
}
