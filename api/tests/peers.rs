//! Federation over the `PeerClient` seam, in one process: two real nodes
//! whose neighbour calls go through an in-process network to each other's
//! router (no sockets). A payment crosses and both heads agree; a cut link
//! refuses the next payment with `UnavailableNodeFailure` and writes nothing.
//! This is the seam a deterministic simulation drives (issue 13).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use api::metrics::Metrics;
use api::node::{Node, StartOptions};
use api::peer_client::{PeerAnswer, PeerClient, PeerRequest, Unreachable};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

use common::{call, ADMIN_KEY};

/// Routers by host name (`http://<host>/…`), and a switch that cuts every link.
#[derive(Debug, Default)]
struct Net {
    routers: Mutex<BTreeMap<String, Router>>,
    cut: AtomicBool,
    sent: Mutex<Vec<String>>,
}

impl PeerClient for Net {
    fn send(&self, request: PeerRequest) -> BoxFuture<'_, Result<PeerAnswer, Unreachable>> {
        Box::pin(async move {
            self.sent.lock().expect("log").push(format!("{} {}", request.method, request.url));
            if self.cut.load(Ordering::SeqCst) {
                return Err(Unreachable::not_sent("the link is cut"));
            }
            common::deliver(&self.routers, request).await
        })
    }
}

struct Started {
    _node: Node,
    router: Router,
    _dir: tempfile::TempDir,
}

async fn start(name: &str, net: &Arc<Net>) -> Started {
    let dir = tempfile::tempdir().expect("tempdir");
    let options =
        StartOptions { peer_client: Some(Arc::clone(net) as Arc<dyn PeerClient>), ..common::options(dir.path(), name) };
    let node = Node::start(options, Arc::new(Metrics::new())).await.expect("node starts");
    let router = api::server::router(node.state(), Arc::new(Metrics::new()));
    net.routers.lock().expect("routers").insert(name.to_owned(), router.clone());
    Started { _node: node, router, _dir: dir }
}

const ADMIN: (&str, &str) = ("admin", ADMIN_KEY);

async fn head(node: &Started, peer: &str) -> Value {
    let (status, value) = call(&node.router, Method::GET, "/admin/nodes", ADMIN, None).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    json!([value["data"][peer]["last_hash"], value["data"][peer]["versions"]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ccnodes_federate_through_an_in_process_peer_client() {
    federate("ccnode", "PATCH http://trunk/transaction/").await;
}

/// The reference dialect over the same seam: the relay is the write, no PATCH crosses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_dialect_federates_through_an_in_process_peer_client() {
    federate("reference", "POST http://trunk/transaction/relay").await;
}

async fn federate(dialect: &str, write: &str) {
    let net = Arc::new(Net::default());
    let trunk = start("trunk", &net).await;
    let branch = start("branch", &net).await;
    let body = json!({"id": "branch", "url": "http://branch", "min": -100, "max": 100, "last_hash": "t-b", "dialect": dialect});
    assert_eq!(call(&trunk.router, Method::POST, "/admin/nodes", ADMIN, Some(body)).await.0, StatusCode::CREATED);
    let body = json!({"name": "trunk", "url": "http://trunk", "rate": 1, "min": -100, "max": 100, "last_hash": "t-b", "dialect": dialect});
    assert_eq!(call(&branch.router, Method::PUT, "/admin/trunkward", ADMIN, Some(body)).await.0, StatusCode::CREATED);
    let account = json!({"id": "alice", "key": "alice-key", "min": -100, "max": 100});
    assert_eq!(
        call(&branch.router, Method::POST, "/admin/accounts", ADMIN, Some(account)).await.0,
        StatusCode::CREATED
    );
    let account = json!({"id": "bob", "key": "bob-key", "min": -100, "max": 100});
    assert_eq!(call(&trunk.router, Method::POST, "/admin/accounts", ADMIN, Some(account)).await.0, StatusCode::CREATED);

    let pay = json!({"payee": "trunk/bob", "quant": 7, "description": "in process", "type": "pay"});
    let (status, value) =
        call(&branch.router, Method::POST, "/transaction", ("alice", "alice-key"), Some(pay.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let (up, down) = (head(&trunk, "branch").await, head(&branch, "trunk").await);
    assert_eq!(up, down, "both sides of the link agree");
    assert_eq!(up[1], 1, "one version written");
    let sent = net.sent.lock().expect("log").clone();
    assert!(sent.iter().any(|r| r.starts_with(write)), "{sent:?}");
    let patched = sent.iter().any(|r| r.starts_with("PATCH "));
    assert_eq!(patched, dialect == "ccnode", "a PATCH crosses only a ccnode link for an immediate payment: {sent:?}");

    // The link is cut: the next payment is refused and nothing moves on either side.
    net.cut.store(true, Ordering::SeqCst);
    let (status, value) = call(&branch.router, Method::POST, "/transaction", ("alice", "alice-key"), Some(pay)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{value}");
    assert_eq!(value["errors"][0]["class"], "UnavailableNodeFailure", "{value}");
    net.cut.store(false, Ordering::SeqCst);
    assert_eq!(head(&trunk, "branch").await, up);
    assert_eq!(head(&branch, "trunk").await, up);
    let (_, balance) = call(&branch.router, Method::GET, "/account/balance?acc_path=alice", ADMIN, None).await;
    assert_eq!(balance["data"]["balance"], json!(-7), "{balance}");
}

/// A neighbour grafted with its key (`public_key`, its `GET /node/key`) is
/// another ccnode: the link's dialect defaults to `ccnode` and the key is
/// recorded (`PeerKeySet`) for witnessing. A key that is not a verifier key
/// is refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafting_with_a_public_key_makes_a_ccnode_link_and_records_the_key() {
    let net = Arc::new(Net::default());
    let trunk = start("trunk", &net).await;
    let branch = start("branch", &net).await;
    let key_of = |node: &Started| {
        let router = node.router.clone();
        async move {
            let request = Request::builder().uri("/node/key").body(Body::empty()).expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
            String::from_utf8(bytes.to_vec()).expect("text").trim().to_owned()
        }
    };
    let (trunk_key, branch_key) = (key_of(&trunk).await, key_of(&branch).await);
    assert!(branch_key.starts_with("branch+"), "{branch_key}");

    let bad = json!({"id": "branch", "url": "http://branch", "min": -100, "max": 100, "last_hash": "t-b", "public_key": "branch+00+AAAA"});
    let (status, value) = call(&trunk.router, Method::POST, "/admin/nodes", ADMIN, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["errors"][0]["class"], "InvalidFieldsViolation", "{value}");
    let (_, nodes) = call(&trunk.router, Method::GET, "/admin/nodes", ADMIN, None).await;
    assert_eq!(nodes["data"], json!({}), "nothing was written: {nodes}");

    let body = json!({"id": "branch", "url": "http://branch", "min": -100, "max": 100, "last_hash": "t-b", "public_key": branch_key});
    let (status, value) = call(&trunk.router, Method::POST, "/admin/nodes", ADMIN, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["dialect"], "ccnode", "{value}");
    assert_eq!(value["data"]["public_key"], json!(branch_key), "{value}");
    let body = json!({"name": "trunk", "url": "http://trunk", "rate": 1, "min": -100, "max": 100, "last_hash": "t-b", "public_key": trunk_key});
    let (status, value) = call(&branch.router, Method::PUT, "/admin/trunkward", ADMIN, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["dialect"], "ccnode", "{value}");
    let (_, events) = call(&trunk.router, Method::GET, "/replay/events?limit=1000", ADMIN, None).await;
    let keyed = events["data"].as_array().expect("records").iter().any(|r| {
        r["event"]["type"] == "PeerKeySet" && r["event"]["peer"] == "branch" && r["event"]["origin"] == "branch"
    });
    assert!(keyed, "the branch's key is journaled on the trunk: {events}");
}
