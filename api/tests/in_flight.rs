//! A change in flight across nodes (prepared here, the next node asked) is
//! protected until it is written: neither an expiry pass nor an admin's limit
//! change may make this node unable to write what the next node already
//! wrote. Both bugs were found by the simulator (issue 13, `sim/`); these are
//! their regression tests on two real nodes federated in one process, the
//! next node's answer held back by the test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::machine::NodeCommand;
use api::metrics::Metrics;
use api::node::{Node, StartOptions};
use api::peer_client::{PeerAnswer, PeerClient, PeerRequest, Unreachable};
use axum::http::{Method, StatusCode};
use axum::Router;
use futures_util::future::BoxFuture;
use serde_json::json;

mod common;

use common::{call, ADMIN_KEY};

/// Routers by host; every `PATCH` waits until the gate opens.
#[derive(Debug)]
struct Net {
    routers: Mutex<BTreeMap<String, Router>>,
    gate: tokio::sync::watch::Sender<bool>,
    held: tokio::sync::Notify,
}

impl PeerClient for Net {
    fn send(&self, request: PeerRequest) -> BoxFuture<'_, Result<PeerAnswer, Unreachable>> {
        Box::pin(async move {
            if request.method == Method::PATCH {
                self.held.notify_one();
                let mut open = self.gate.subscribe();
                let _ = open.wait_for(|open| *open).await;
            }
            common::deliver(&self.routers, request).await
        })
    }
}

struct Started {
    node: Node,
    router: Router,
    _dir: tempfile::TempDir,
}

async fn start(name: &str, net: &Arc<Net>, window_s: u64) -> Started {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StartOptions {
        peer_client: Some(Arc::clone(net) as Arc<dyn PeerClient>),
        validated_window_seconds: window_s,
        ..common::options(dir.path(), name)
    };
    let node = Node::start(options, Arc::new(Metrics::new())).await.expect("node starts");
    let router = api::server::router(node.state(), Arc::new(Metrics::new()));
    net.routers.lock().expect("routers").insert(name.to_owned(), router.clone());
    Started { node, router, _dir: dir }
}

const ADMIN: (&str, &str) = ("admin", ADMIN_KEY);
const ALICE: (&str, &str) = ("alice", "alice-key");

/// A branch with alice under a trunk with bob; PATCHes wait at the gate.
async fn federation(window_s: u64) -> (Arc<Net>, Started, Started) {
    let net = Arc::new(Net {
        routers: Mutex::new(BTreeMap::new()),
        gate: tokio::sync::watch::channel(true).0,
        held: tokio::sync::Notify::new(),
    });
    let trunk = start("trunk", &net, window_s).await;
    let branch = start("branch", &net, window_s).await;
    common::branch_under_trunk(&trunk.router, &branch.router).await;
    (net, trunk, branch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_change_waits_while_a_payment_of_the_account_is_in_flight() {
    let (net, trunk, branch) = federation(300).await;
    net.gate.send_replace(false);
    let pay = json!({"payee": "trunk/bob", "quant": 30, "description": "in flight", "type": "pay"});
    let router = branch.router.clone();
    let paying = tokio::spawn(async move { call(&router, Method::POST, "/transaction", ALICE, Some(pay)).await });
    tokio::time::timeout(Duration::from_secs(10), net.held.notified()).await.expect("the PATCH reached the gate");

    // The payment is prepared at the branch and asked of the trunk: alice's
    // limits do not change under it.
    let narrow = json!({"min": -10});
    let (status, value) =
        call(&branch.router, Method::PATCH, "/admin/accounts/alice", ADMIN, Some(narrow.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["errors"][0]["class"], "CCOtherViolation", "{value}");

    net.gate.send_replace(true);
    let (status, value) = paying.await.expect("the payment's task");
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["state"], "completed", "{value}");
    let (_, there) = call(&trunk.router, Method::GET, "/account/balance?acc_path=bob", ADMIN, None).await;
    assert_eq!(there["data"]["balance"], json!(30), "{there}");
    // Once written, the change is allowed (below the balance: admins may).
    let (status, value) = call(&branch.router, Method::PATCH, "/admin/accounts/alice", ADMIN, Some(narrow)).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    drop((trunk.node, branch.node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_pass_skips_a_transaction_whose_change_is_in_flight() {
    let (net, trunk, branch) = federation(1).await;
    let credit = json!({"payee": "trunk/bob", "quant": 5, "description": "slow", "type": "credit"});
    let (status, value) = call(&branch.router, Method::POST, "/transaction", ALICE, Some(credit)).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let uuid = value["data"]["uuid"].as_str().expect("uuid").to_owned();
    net.gate.send_replace(false);
    let (router, path) = (branch.router.clone(), format!("/transaction/{uuid}/pending"));
    let confirming = tokio::spawn(async move { call(&router, Method::PATCH, &path, ALICE, None).await });
    tokio::time::timeout(Duration::from_secs(10), net.held.notified()).await.expect("the PATCH reached the gate");

    // Past the one-second window while the confirmation is asked of the trunk.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    branch.node.state().submit(NodeCommand::ExpireDue { unsettled: Vec::new() }).await.expect("an expiry pass");
    let (_, value) = call(&branch.router, Method::GET, &format!("/transaction/{uuid}"), ADMIN, None).await;
    assert_eq!(value["data"]["state"], "validated", "not timed out under its confirmation: {value}");

    net.gate.send_replace(true);
    let (status, value) = confirming.await.expect("the confirmation's task");
    assert_eq!(status, StatusCode::CREATED, "{value}");
    for router in [&branch.router, &trunk.router] {
        let (_, value) = call(router, Method::GET, &format!("/transaction/{uuid}"), ADMIN, None).await;
        assert_eq!(value["data"]["state"], "pending", "{value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_runs_to_its_end_when_its_client_goes_away() {
    // hyper drops a handler whose client disconnects; a state change dropped
    // between the next node's write and ours leaked its reservation (and, at
    // an intermediate node, let the link diverge). The flow now runs
    // detached from its request (`AppState::spawn_flow`).
    let (net, trunk, branch) = federation(300).await;
    net.gate.send_replace(false);
    let pay = json!({"payee": "trunk/bob", "quant": 12, "description": "client leaves", "type": "pay"});
    let router = branch.router.clone();
    let paying = tokio::spawn(async move { call(&router, Method::POST, "/transaction", ALICE, Some(pay)).await });
    tokio::time::timeout(Duration::from_secs(10), net.held.notified()).await.expect("the PATCH reached the gate");
    // The client goes away while the trunk is asked: its request is dropped.
    paying.abort();
    assert!(paying.await.expect_err("aborted").is_cancelled());
    net.gate.send_replace(true);

    // The change is still written on both sides, and nothing stays held.
    let written = async {
        loop {
            let (_, value) = call(&branch.router, Method::GET, "/account/balance?acc_path=alice", ADMIN, None).await;
            if value["data"]["balance"] == json!(-12) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), written).await.expect("the branch wrote the payment");
    let (_, there) = call(&trunk.router, Method::GET, "/account/balance?acc_path=bob", ADMIN, None).await;
    assert_eq!(there["data"]["balance"], json!(12), "{there}");
    let narrow = json!({"min": -20});
    let (status, value) = call(&branch.router, Method::PATCH, "/admin/accounts/alice", ADMIN, Some(narrow)).await;
    assert_eq!(status, StatusCode::OK, "no reservation left behind: {value}");
    drop((trunk.node, branch.node));
}
