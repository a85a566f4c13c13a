//! Links repair themselves: a middle node crashes between its downstream
//! neighbour's write and its own; a neighbour is cut off while payments are
//! attempted. Real processes on loopback, no operator.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::arg;
use crate::federation::graft;
use crate::node::Server;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn serve_args<'a>(data: &'a str, listen: &'a str, name: &'a str) -> Vec<&'a str> {
    vec!["serve", "--data", data, "--listen", listen, "--name", name, "--reconcile-interval", "1"]
}

fn state_of(node: &Server, uuid: &str) -> String {
    let (_, value) = node.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    value["data"]["state"].as_str().unwrap_or("missing").to_owned()
}

fn head(node: &Server, peer: &str) -> Value {
    let (_, value) = node.call(Method::GET, "/admin/nodes", "admin", None);
    value["data"][peer]["last_hash"].clone()
}

fn sums_to_zero(node: &Server, name: &str) -> bool {
    node.balances(name).iter().map(|(_, b)| b).sum::<rust_decimal::Decimal>().is_zero()
}

/// Polls `check` for up to 30 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_middle_node_that_crashed_mid_write_is_repaired_without_an_operator() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (d_branch, d_twig1, d_twig2) = (arg(dirs[0].path()), arg(dirs[1].path()), arg(dirs[2].path()));
    let listen = format!("127.0.0.1:{}", free_port());
    // branch1 aborts right after its downstream neighbour wrote a state change.
    let branch1 =
        Server::spawn_env(&serve_args(d_branch, &listen, "branch1"), &[("CCNODE_FAILPOINT", "after-next-node-wrote")]);
    let twig1 = Server::spawn(&serve_args(d_twig1, "127.0.0.1:0", "twig1"));
    let twig2 = Server::spawn(&serve_args(d_twig2, "127.0.0.1:0", "twig2"));
    graft(&branch1, "branch1", &twig1, "twig1", "1", -1000);
    graft(&branch1, "branch1", &twig2, "twig2", "1", -1000);
    twig1.open("alice", -100, 100);
    twig2.open("bob", -100, 100);

    let body = json!({"payer": "alice", "payee": "twig2/bob", "quant": 5, "description": "crash", "type": "credit"});
    let (status, created) = twig1.call(Method::POST, "/transaction", "alice", Some(body));
    assert_eq!(status, StatusCode::OK, "{created}");
    let uuid = created["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, answer) = twig1.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), "alice", None);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "branch1 died mid-write: {answer}");
    let exit = branch1.wait_exit();
    assert!(!exit.success(), "branch1 aborted at the failpoint");
    assert_eq!(state_of(&twig2, &uuid), "pending", "the far end wrote first");
    assert_eq!(state_of(&twig1, &uuid), "validated", "the origin wrote nothing");

    // Restart branch1 on the same data and address, without the failpoint.
    let branch1 = Server::spawn(&serve_args(d_branch, &listen, "branch1"));
    eventually("every node holds the pending version", || {
        [&twig1, &branch1, &twig2].iter().all(|n| state_of(n, &uuid) == "pending")
    });
    eventually("both links agree", || {
        head(&branch1, "twig1") == head(&twig1, "branch1") && head(&branch1, "twig2") == head(&twig2, "branch1")
    });
    for (node, name) in [(&twig1, "twig1"), (&branch1, "branch1"), (&twig2, "twig2")] {
        assert!(sums_to_zero(node, name), "{name} does not sum to zero");
    }
    // The repaired link carries on: the payee signs, and every ledger follows.
    let (status, answer) = twig2.call(Method::PATCH, &format!("/transaction/{uuid}/completed"), "bob", None);
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(state_of(&twig1, &uuid), "completed");
    let (_, events) = branch1.call(Method::GET, "/replay/events?after=0&limit=1000", "admin", None);
    let reconciled =
        events["data"].as_array().map_or(0, |a| a.iter().filter(|r| r["event"]["type"] == "LinkReconciled").count());
    assert_eq!(reconciled, 1, "branch1 records that it copied one version from twig2");
}

#[test]
fn a_cut_link_leaves_nothing_half_written_and_agrees_after_reconciliation() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let parent = Server::spawn(&serve_args(arg(dirs[0].path()), "127.0.0.1:0", "branch1"));
    let child = Server::spawn(&serve_args(arg(dirs[1].path()), "127.0.0.1:0", "twig1"));
    graft(&parent, "branch1", &child, "twig1", "1", -1000);
    parent.open("dave", -100, 100);
    child.open("alice", -100, 100);
    let pay = |quant: i64| json!({"payer": "alice", "payee": "branch1/dave", "quant": quant, "type": "pay"});
    assert_eq!(child.call(Method::POST, "/transaction", "alice", Some(pay(1))).0, StatusCode::CREATED);

    // The parent stops answering: every attempt fails cleanly and nothing is written on the child.
    std::process::Command::new("kill").args(["-STOP", &parent.pid().to_string()]).status().expect("kill -STOP");
    for quant in [2, 3] {
        let (status, body) = child.call(Method::POST, "/transaction", "alice", Some(pay(quant)));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let (_, listed) = child.call(Method::GET, "/transactions", "alice", None);
    assert_eq!(listed["meta"]["number_of_results"], json!(1));
    std::process::Command::new("kill").args(["-CONT", &parent.pid().to_string()]).status().expect("kill -CONT");

    // Restored: reconciliation on demand finds the link in sync, from either side.
    let (status, report) = parent.call(Method::POST, "/replay/reconcile/twig1", "admin", None);
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["data"]["verdict"], "in_sync", "{report}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(["reconcile", "--peer", "branch1", "--url", &child.url, "--admin-key", crate::node::ADMIN_KEY])
        .output()
        .expect("run ccnode reconcile");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("in_sync"));
    assert_eq!(head(&parent, "twig1"), head(&child, "branch1"));
    assert_eq!(child.call(Method::POST, "/transaction", "alice", Some(pay(4))).0, StatusCode::CREATED);
    assert!(sums_to_zero(&parent, "branch1") && sums_to_zero(&child, "twig1"));
}
