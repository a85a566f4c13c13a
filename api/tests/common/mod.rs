#![allow(dead_code)] // each test binary uses part of this support module
//! The node the in-process router tests start: `twig`, admin key
//! [`ADMIN_KEY`], default limits -100..100, no neighbours.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use api::app::AppState;
use api::metrics::Metrics;
use api::node::{Node, StartOptions};
use api::peer_client::{PeerAnswer, PeerRequest, Unreachable};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use ledger::Amount;
use serde_json::Value;
use tower::ServiceExt;

/// The `admin` account's key.
pub const ADMIN_KEY: &str = "admin-secret";

/// A started node, its router and state, and the directory holding its data.
pub struct Started {
    pub node: Node,
    pub router: Router,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

/// The options every in-process test node starts with: admin key
/// [`ADMIN_KEY`], default limits -100..100, no neighbours, no scheduled
/// checkpoints, HTTP neighbours; a test overrides what it needs.
pub fn options(dir: &Path, name: &str) -> StartOptions {
    StartOptions {
        admin_key: Some(ADMIN_KEY.to_owned()),
        validated_window_seconds: 300,
        default_limits: (Amount::from_units(-100), Amount::from_units(100)),
        peer_timeout: std::time::Duration::from_secs(2),
        reconcile_interval: std::time::Duration::from_secs(3600),
        checkpoint_interval: std::time::Duration::ZERO,
        checkpoint_records: 0,
        snapshot_every: 0,
        store: store_for(dir),
        ..StartOptions::new(dir, name)
    }
}

/// The store of a test node in `dir`: segment files, or with
/// `CCNODE_TEST_STORE=postgres` (a second run in `.ci/run`) a database of
/// its own in a throwaway PostgreSQL cluster, the same one for the same
/// directory so that a restarted node finds its journal.
pub fn store_for(dir: &Path) -> api::store::StoreLocation {
    if std::env::var("CCNODE_TEST_STORE").as_deref() != Ok("postgres") {
        return api::store::StoreLocation::File;
    }
    let url = pgcluster::database_for(dir, true).expect("created when missing");
    api::store::StoreLocation::Postgres { url, standby: false }
}

/// Starts node `twig` in a fresh directory.
pub async fn start_twig() -> Started {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options(dir.path(), "twig");
    let metrics = Arc::new(Metrics::new());
    let node = Node::start(options, Arc::clone(&metrics)).await.expect("node starts");
    let state = node.state();
    let router = api::server::router(node.state(), metrics);
    Started { node, router, state, dir }
}

/// Carries a neighbour request to the router of the node it names
/// (`http://<host>/…`, `routers` by host), as an in-process network does.
pub async fn deliver(
    routers: &Mutex<BTreeMap<String, Router>>,
    request: PeerRequest,
) -> Result<PeerAnswer, Unreachable> {
    let rest = request.url.strip_prefix("http://").ok_or_else(|| Unreachable::not_sent("not http"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let router = routers.lock().expect("routers").get(host).cloned();
    let router = router.ok_or_else(|| Unreachable::not_sent(format!("no node at {host}")))?;
    let mut builder = Request::builder().method(request.method).uri(path);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    if request.body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let http = builder.body(request.body.map_or_else(Body::empty, Body::from)).expect("request");
    let response = router.oneshot(http).await.expect("infallible");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
    Ok(PeerAnswer { status, content_type, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// One request to `router` as `user` (`cc-user`, `cc-auth`), with a JSON body if any.
pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    user: (&str, &str),
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path).header("cc-user", user.0).header("cc-auth", user.1);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
    (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") })
}

/// Grafts node `branch` (at `http://branch`) under node `trunk` (at
/// `http://trunk`), ccnode to ccnode, limits -100..100 and rate 1, and
/// opens `alice` (key `alice-key`) on the branch and `bob` (key `bob-key`)
/// on the trunk, both -50..50.
pub async fn branch_under_trunk(trunk: &Router, branch: &Router) {
    let admin = ("admin", ADMIN_KEY);
    let body = serde_json::json!({"id": "branch", "url": "http://branch", "min": -100, "max": 100, "last_hash": "t-b", "dialect": "ccnode"});
    assert_eq!(call(trunk, Method::POST, "/admin/nodes", admin, Some(body)).await.0, StatusCode::CREATED);
    let body = serde_json::json!({"name": "trunk", "url": "http://trunk", "rate": 1, "min": -100, "max": 100, "last_hash": "t-b", "dialect": "ccnode"});
    assert_eq!(call(branch, Method::PUT, "/admin/trunkward", admin, Some(body)).await.0, StatusCode::CREATED);
    let account = serde_json::json!({"id": "alice", "key": "alice-key", "min": -50, "max": 50});
    assert_eq!(call(branch, Method::POST, "/admin/accounts", admin, Some(account)).await.0, StatusCode::CREATED);
    let account = serde_json::json!({"id": "bob", "key": "bob-key", "min": -50, "max": 50});
    assert_eq!(call(trunk, Method::POST, "/admin/accounts", admin, Some(account)).await.0, StatusCode::CREATED);
}
