//! Every route's request handling through the real router
//! (`api::server::router`) of a running node: client bodies, node-to-node
//! bodies (`/transaction/relay`, `/replay/reconcile/…`, the witness routes),
//! paths and query strings, as the HTTP server hands them over.
//!
//! The node (`twig`, users `alice` and `bob`, admin `admin`, child node
//! `leaf`) starts once per fuzzer process, its data on a memory file system.
//! Input: [`crate::parts`]: the request line (`METHOD /path?query`), the
//! caller (`user:key`, empty for none) and the body (sent as JSON when not
//! empty).
//!
//! Contract: never a 500 (a panic, an unexpected failure) but the protocol's
//! `HashMismatchFailure`; a refusal, and
//! any 502/503/504 (a neighbour that cannot be reached), carries the Credit
//! Commons error JSON `{"errors":[{"class":…}]}`.

use std::sync::{Arc, OnceLock};

use api::metrics::Metrics;
use api::node::{Node, StartOptions};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use ledger::Amount;
use serde_json::Value;
use tower::ServiceExt;

const ADMIN_KEY: &str = "admin-secret";

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    // Behind a mutex only to be `Sync` (a node is `Send`, not `Sync`); never locked.
    _node: std::sync::Mutex<Node>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(start)
}

fn start() -> Harness {
    let dir = crate::process_dir("http");
    // Paused time (it moves on whenever the node waits): the delays that
    // slow down guessing a link hash or a key cost the fuzzer nothing.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime");
    let options = StartOptions {
        admin_key: Some(ADMIN_KEY.to_owned()),
        validated_window_seconds: 300,
        default_limits: (Amount::from_units(-100), Amount::from_units(100)),
        peer_timeout: std::time::Duration::from_millis(200),
        reconcile_interval: std::time::Duration::from_secs(3600),
        checkpoint_interval: std::time::Duration::ZERO,
        checkpoint_records: 0,
        snapshot_every: 0,
        ..StartOptions::new(dir.path(), "twig")
    };
    let metrics = Arc::new(Metrics::new());
    let node = runtime.block_on(Node::start(options, Arc::clone(&metrics))).expect("node starts");
    let router = api::server::router(node.state(), metrics);
    let harness = Harness { runtime, router, _node: std::sync::Mutex::new(node), _dir: dir };
    let admin = format!("admin:{ADMIN_KEY}");
    for (line, body) in [
        ("POST /admin/accounts", r#"{"id":"alice","key":"alice-key","min":-100,"max":100}"#),
        ("POST /admin/accounts", r#"{"id":"bob","key":"bob-key","min":-100,"max":100}"#),
        (
            "POST /admin/nodes",
            r#"{"id":"leaf","url":"http://127.0.0.1:9","min":-100,"max":100,"last_hash":"fuzz-link-secret"}"#,
        ),
    ] {
        let (status, value) = harness.call(line, &admin, body.as_bytes()).expect("a request");
        assert!(status.is_success(), "{line} {body}: {status} {value}");
    }
    harness
}

impl Harness {
    /// One request; `None` when the input is not an HTTP request at all.
    fn call(&self, line: &str, caller: &str, body: &[u8]) -> Option<(StatusCode, Value)> {
        let (method, uri) = line.split_once(' ')?;
        let method = Method::from_bytes(method.as_bytes()).ok()?;
        let mut request = Request::builder().method(method).uri(uri);
        if let Some((user, key)) = caller.split_once(':') {
            request = request.header("cc-user", user).header("cc-auth", key);
        }
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Body::from(body.to_vec())).ok()?;
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 26).await.expect("body");
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Some((status, value))
        })
    }
}

pub fn run(data: &[u8]) {
    let parts = crate::parts(data);
    let (Some(line), Some(caller)) = (parts.first(), parts.get(1)) else { return };
    let (Ok(line), Ok(caller)) = (std::str::from_utf8(line), std::str::from_utf8(caller)) else { return };
    let body = parts.get(2).copied().unwrap_or_default();
    let Some((status, value)) = harness().call(line, caller, body) else { return };
    if status.is_client_error() || status.is_server_error() {
        let class = value.pointer("/errors/0/class").and_then(Value::as_str);
        let Some(class) = class else {
            panic!("{line} as {caller:?} with {body:?}: {status} without an error class: {value}")
        };
        // The protocol's one 500: a neighbour whose link hash differs (docs/PROTOCOL.md).
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            assert_eq!(class, "HashMismatchFailure", "{line} as {caller:?} with {body:?}: 500 {value}");
        }
    }
}
