//! Issue 11, item 4: two nodes on loopback witness each other's checkpoints
//! (C2SP tlog-witness `add-checkpoint`, `cosignature/v1`). The child's
//! checkpoint gets the parent's cosignature; forks, smaller trees, wrong
//! keys, unknown origins, bad proofs and a lying link line are refused with
//! the spec's statuses, and a fork closes the link.

use std::sync::Arc;

use api::app::AppState;
use api::metrics::Metrics;
use api::node::{Node, StartOptions, TrunkwardOptions};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use ledger::{Amount, Limits};
use serde_json::{json, Value};
use tlog::{Checkpoint, KeyType, Note, NoteSigner, SignedCheckpoint, VerifierKey};
use tower::ServiceExt;

mod common;

use common::ADMIN_KEY;

struct TestNode {
    _node: Node,
    router: Router,
    state: AppState,
    url: String,
    dir: tempfile::TempDir,
}

async fn start(name: &str, trunkward: Option<TrunkwardOptions>, listener: tokio::net::TcpListener) -> TestNode {
    let dir = tempfile::tempdir().expect("dir");
    let options = StartOptions { trunkward, ..common::options(dir.path(), name) };
    let metrics = Arc::new(Metrics::new());
    let node = Node::start(options, Arc::clone(&metrics)).await.expect("node starts");
    let state = node.state();
    let router = api::server::router(node.state(), metrics);
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served = router.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });
    TestNode { _node: node, router, state, url, dir }
}

impl TestNode {
    async fn call(
        &self,
        method: Method,
        path: &str,
        admin: bool,
        body: Option<String>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::builder().method(method).uri(path);
        if admin {
            request = request.header("cc-user", "admin").header("cc-auth", ADMIN_KEY);
        }
        if body.as_deref().is_some_and(|b| b.starts_with('{')) {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, Body::from)).expect("request");
        let response = self.router.clone().oneshot(request).await.expect("ok");
        let status = response.status();
        let ctype =
            response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
        (status, ctype, String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    async fn vkey(&self) -> VerifierKey {
        let (_, _, body) = self.call(Method::GET, "/node/key", false, None).await;
        VerifierKey::parse(body.trim()).expect("vkey")
    }

    async fn checkpoint(&self) -> (u64, String) {
        let (status, _, body) = self.call(Method::POST, "/admin/checkpoint", true, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        (v["data"]["size"].as_u64().expect("size"), v["data"]["checkpoint"].as_str().expect("note").to_owned())
    }

    async fn add_checkpoint(&self, old: u64, proof: &[tlog::Hash], note: &str) -> (StatusCode, String, String) {
        let mut body = format!("old {old}\n");
        for h in proof {
            body.push_str(&tlog::b64(h));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        self.call(Method::POST, "/witness/add-checkpoint", false, Some(body)).await
    }

    fn proof(&self, from: u64, to: u64) -> Vec<tlog::Hash> {
        api::merkle::read(&self.state.tree()).tree().expect("rebuilt").consistency_proof(from, to).expect("proof")
    }

    fn signer(&self) -> NoteSigner {
        let seed = api::checkpoint::read_key(&self.dir.path().join("node.key")).expect("read").expect("key");
        NoteSigner::new(self.state.origin(), &seed.0).expect("signer")
    }
}

/// A note with the same origin, signed by `signer`, changing the text.
fn forged(signer: &NoteSigner, note: &str, change: impl FnOnce(&mut Checkpoint)) -> String {
    let mut cp = SignedCheckpoint::parse(note.as_bytes()).expect("parses").checkpoint;
    change(&mut cp);
    let text = cp.text();
    Note { signatures: vec![signer.sign(&text)], text }.encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbours_cosign_each_other_and_refuse_forks() {
    let parent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let child_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let parent_url = format!("http://{}", parent_listener.local_addr().expect("addr"));
    let parent = start("branch", None, parent_listener).await;
    let trunkward = TrunkwardOptions {
        name: "branch".to_owned(),
        url: parent_url,
        rate: ledger::Rate::ONE,
        limits: Limits::new(Amount::from_units(-100), Amount::from_units(100)).expect("limits"),
        last_hash: "agreed".to_owned(),
        dialect: ledger::Dialect::Ccnode,
        public_key: None,
    };
    let child = start("twig", Some(trunkward), child_listener).await;
    let body =
        json!({"id": "twig", "url": child.url, "last_hash": "agreed", "min": -100, "max": 100, "dialect": "ccnode"})
            .to_string();
    let (status, _, answer) = parent.call(Method::POST, "/admin/nodes", true, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // Keys exchanged by the admins.
    let (child_key, parent_key) = (child.vkey().await, parent.vkey().await);
    let body = json!({"public_key": child_key.to_string()}).to_string();
    let (status, _, answer) = parent.call(Method::PUT, "/admin/nodes/twig/key", true, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let body = json!({"public_key": parent_key.to_string()}).to_string();
    assert_eq!(child.call(Method::PUT, "/admin/nodes/branch/key", true, Some(body)).await.0, StatusCode::OK);
    for (path, body, status) in [
        ("/admin/nodes/nobody/key", json!({"public_key": child_key.to_string()}), StatusCode::NOT_FOUND),
        ("/admin/nodes/twig/key", json!({"public_key": "nonsense"}), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(parent.call(Method::PUT, path, true, Some(body.to_string())).await.0, status, "{path}");
    }
    assert_eq!(
        parent.call(Method::PUT, "/admin/nodes/twig/key", false, Some(json!({"public_key": "x"}).to_string())).await.0,
        StatusCode::FORBIDDEN
    );

    // The child's checkpoint is cosigned by the parent, and published with it.
    let (first, note1) = child.checkpoint().await;
    api::witness::collect_once(&child.state).await;
    let (_, _, published) = child.call(Method::GET, "/checkpoint", false, None).await;
    let cosigner = VerifierKey::new(&parent_key.name, KeyType::CosignatureV1, parent_key.key).expect("cosigner key");
    let verified = tlog::document::verify_document(&published, &child_key, std::slice::from_ref(&cosigner))
        .expect("signed by the child and cosigned by the parent");
    assert!(verified[0].to_string().contains("cosigned by branch"), "{}", verified[0]);
    assert!(published.starts_with(&note1) && published.len() > note1.len());
    // A cosignature by another key would not do.
    let stranger = NoteSigner::new("branch", &[5; 32]).expect("s").cosigner_key();
    assert!(tlog::document::verify_document(&published, &child_key, &[stranger]).is_err());

    // A second checkpoint is cosigned from the first (consistency proof), the parent keeps the newest.
    let (status, _, _) =
        child.call(Method::POST, "/admin/accounts", true, Some(json!({"id": "alice", "key": "k"}).to_string())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (second, note2) = child.checkpoint().await;
    api::witness::collect_once(&child.state).await;
    let (_, _, published2) = child.call(Method::GET, "/checkpoint", false, None).await;
    tlog::document::verify_document(&published2, &child_key, std::slice::from_ref(&cosigner)).expect("cosigned");
    assert_eq!(
        parent
            .state
            .read()
            .projections
            .facts()
            .witnessed
            .get(&ledger::AccountId::new("twig").expect("id"))
            .map(|w| w.0),
        Some(second)
    );

    // The spec's refusals, each changing nothing.
    let head = parent.state.read().projections.seq();
    let (status, ctype, body) = parent.add_checkpoint(0, &[], &note2).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (StatusCode::CONFLICT, "text/x.tlog.size", format!("{second}\n").as_str())
    );
    let (status, _, _) = parent.add_checkpoint(second, &[], &note1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a smaller tree than the old size");
    let (status, _, _) = parent.add_checkpoint(first, &child.proof(first, second), &note2).await;
    assert_eq!(status, StatusCode::CONFLICT, "the old size is not the last cosigned");
    let other = NoteSigner::new("twig", &[8; 32]).expect("s");
    let (status, _, _) = parent.add_checkpoint(second, &[], &forged(&other, &note2, |_| {})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "signed by another key");
    let stranger_note =
        forged(&NoteSigner::new("elsewhere", &[8; 32]).expect("s"), &note2, |c| c.origin = "elsewhere".into());
    assert_eq!(parent.add_checkpoint(second, &[], &stranger_note).await.0, StatusCode::NOT_FOUND, "unknown origin");
    assert_eq!(parent.add_checkpoint(second, &[], "garbage").await.0, StatusCode::BAD_REQUEST);
    let not_text = Request::builder()
        .method(Method::POST)
        .uri("/witness/add-checkpoint")
        .body(Body::from(vec![b'o', b'l', b'd', 0xff, 0xfe]))
        .expect("request");
    let response = parent.router.clone().oneshot(not_text).await.expect("ok");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let v: Value = serde_json::from_slice(&bytes).expect("error JSON");
    assert_eq!(v["errors"][0]["class"], "InvalidFieldsViolation");
    // The same tree again: cosigned again (a retry), nothing recorded.
    let (status, _, again) = parent.add_checkpoint(second, &[], &note2).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.starts_with("\u{2014} branch "), "{again}");
    assert_eq!(parent.state.read().projections.seq(), head, "refusals and a retry write nothing");
    assert!(parent.state.read().closed(&ledger::AccountId::new("twig").expect("id")).is_none());

    // A consistent larger tree whose link line is not the parent's side of the ratchet: refused as diverged.
    let signer = child.signer();
    let (status, _, _) =
        child.call(Method::POST, "/admin/accounts", true, Some(json!({"id": "bob", "key": "k"}).to_string())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (third, note3) = child.checkpoint().await;
    let lying_link = forged(&signer, &note3, |c| {
        for e in &mut c.extensions {
            if e.starts_with("link branch ") {
                *e = format!("link branch 0 {}", "ab".repeat(32));
            }
        }
    });
    let (status, _, body) = parent.add_checkpoint(second, &child.proof(second, third), &lying_link).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("the link line disagrees"), "{body}");
    let no_link = forged(&signer, &note3, |c| c.extensions.retain(|e| !e.starts_with("link ")));
    let (status, _, body) = parent.add_checkpoint(second, &child.proof(second, third), &no_link).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("no link line"), "{body}");
    // Nothing cosigned; the one record written is the link's closure (`LinkClosed`, a journal event).
    assert_eq!(parent.state.read().projections.seq(), head + 1, "nothing cosigned");
    assert!(parent.state.read().closed(&ledger::AccountId::new("twig").expect("id")).is_some());
    assert!(parent.state.reopen_link(&ledger::AccountId::new("twig").expect("id")).await);

    // A fork: another tree for the size the parent cosigned. Refused, and the link is closed.
    let fork = forged(&signer, &note2, |c| c.root[0] ^= 1);
    let (status, _, body) = parent.add_checkpoint(second, &[], &fork).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("a second checkpoint for a size already cosigned"), "{body}");
    let closed = parent.state.read().closed(&ledger::AccountId::new("twig").expect("id"));
    assert!(closed.is_some_and(|e| e["fork"].is_string()), "the fork closes the link");
    // An inconsistent larger tree (a proof that does not verify) is a fork too.
    let bigger = forged(&signer, &note2, |c| c.size += 3);
    let (status, _, _) = parent.add_checkpoint(second, &child.proof(first, second), &bigger).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // The closure, the reopening and the second closure are the only records written.
    assert_eq!(parent.state.read().projections.seq(), head + 3, "nothing cosigned");
    // (The nodes are not shut down: their HTTP servers hold their state until the test process ends.)
    drop((child, parent));
}
