//! Issue 11 through the in-process router: the node's key, signed
//! checkpoints, inclusion / consistency / balance proofs and statements,
//! key rotation and restarts, and the refusals.

use std::sync::Arc;

use api::metrics::Metrics;
use api::node::{AppState, Node, StartOptions};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tlog::{SignedCheckpoint, VerifierKey};
use tower::ServiceExt;

mod common;

use common::ADMIN_KEY;

struct TestNode {
    node: Option<Node>,
    router: Router,
    state: AppState,
}

fn options(dir: &std::path::Path) -> StartOptions {
    StartOptions { origin: Some("village.example/twig".to_owned()), ..common::options(dir, "twig") }
}

impl TestNode {
    async fn start(dir: &std::path::Path) -> TestNode {
        let metrics = Arc::new(Metrics::new());
        let node = Node::start(options(dir), Arc::clone(&metrics)).await.expect("node starts");
        let state = node.state();
        let router = api::server::router(node.state(), metrics);
        TestNode { node: Some(node), router, state }
    }

    async fn raw(&self, method: Method, path: &str, user: Option<&str>) -> (StatusCode, String, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            let key = if user == "admin" { ADMIN_KEY.to_owned() } else { format!("{user}-key") };
            request = request.header("cc-user", user).header("cc-auth", key);
        }
        let response = self.router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("ok");
        let status = response.status();
        let ctype =
            response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
        (status, ctype, String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    async fn json(&self, method: Method, path: &str, user: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self.raw(method, path, user).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, user: &str, body: Value) -> (StatusCode, Value) {
        let key = if user == "admin" { ADMIN_KEY.to_owned() } else { format!("{user}-key") };
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("cc-user", user)
            .header("cc-auth", key)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("ok");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn vkey(&self) -> VerifierKey {
        let (status, ctype, body) = self.raw(Method::GET, "/node/key", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        VerifierKey::parse(body.trim_end()).expect("a C2SP verifier key")
    }

    async fn checkpoint(&self) -> (u64, String) {
        let (status, v) = self.post("/admin/checkpoint", "admin", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        (v["data"]["size"].as_u64().expect("size"), v["data"]["checkpoint"].as_str().expect("note").to_owned())
    }

    async fn pay(&self, payer: &str, payee: &str, quant: &str) {
        let body = json!({"payer": payer, "payee": payee, "quant": quant, "description": "x", "type": "pay"});
        let (status, v) = self.post("/transaction", payer, body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }

    async fn stop(mut self) {
        let node = self.node.take().expect("running");
        drop(self.router);
        drop(self.state);
        tokio::task::spawn_blocking(move || node.shutdown()).await.expect("shutdown");
    }
}

fn hashes(v: &Value) -> Vec<tlog::Hash> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|h| tlog::unb64(h.as_str().expect("s")).expect("b64").try_into().expect("32"))
        .collect()
}

fn hash(v: &Value) -> tlog::Hash {
    tlog::unb64(v.as_str().expect("s")).expect("b64").try_into().expect("32")
}

async fn community(node: &TestNode) {
    for id in ["alice", "bob", "carol"] {
        let (status, v) = node.post("/admin/accounts", "admin", json!({"id": id, "key": format!("{id}-key")})).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    node.pay("alice", "bob", "12.5").await;
    node.pay("bob", "carol", "2.000001").await;
}

#[tokio::test]
async fn key_checkpoints_and_proofs_verify_with_public_keys_only() {
    let dir = tempfile::tempdir().expect("dir");
    let node = TestNode::start(dir.path()).await;
    let vkey = node.vkey().await;
    assert_eq!(vkey.name, "village.example/twig");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("node.key")).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is owner-only");
    }
    // No checkpoint yet.
    let (status, v) = node.json(Method::GET, "/checkpoint", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["errors"][0]["class"], "DoesNotExistViolation");

    community(&node).await;
    let (first, note1) = node.checkpoint().await;
    assert_eq!(first, node.state.read().projections.seq() - 1, "the checkpoint is the record after its size");
    let cp1 = SignedCheckpoint::verify(note1.as_bytes(), &vkey).expect("signed by the node's key");
    assert_eq!(cp1.checkpoint.size, first);
    assert!(cp1.checkpoint.extensions[0].starts_with("balances "));
    let (status, ctype, served) = node.raw(Method::GET, "/checkpoint", None).await;
    assert_eq!((status, served.as_str()), (StatusCode::OK, note1.as_str()));
    assert!(ctype.starts_with("text/plain"));
    // Nothing new: the same checkpoint again, no record written.
    let head = node.state.read().projections.seq();
    assert_eq!(node.checkpoint().await.0, first);
    assert_eq!(node.state.read().projections.seq(), head);

    node.pay("carol", "alice", "1").await;
    let (second, note2) = node.checkpoint().await;
    assert!(second > first);
    let cp2 = SignedCheckpoint::verify(note2.as_bytes(), &vkey).expect("signed");
    let (_, _, old) = node.raw(Method::GET, &format!("/checkpoint?size={first}"), None).await;
    assert_eq!(old, note1);

    // Every record is in both trees; the chain hash is the leaf.
    for seq in 1..=second {
        let (status, p) = node.json(Method::GET, &format!("/proof/inclusion?seq={seq}&size={second}"), None).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["checkpoint"].as_str(), Some(note2.as_str()));
        tlog::verify_inclusion(seq - 1, second, &hash(&p["leaf_hash"]), &hashes(&p["proof"]), &cp2.checkpoint.root)
            .expect("inclusion verifies against the signed root");
    }
    let (_, p) = node.json(Method::GET, "/proof/inclusion?seq=1", None).await;
    assert_eq!(p["size"], second, "default: the latest checkpoint");
    // The leaf is the record's chain hash, as the replay feed shows it.
    let (_, feed) = node.json(Method::GET, "/replay/events?after=0&limit=1", Some("admin")).await;
    let chain = feed["data"][0]["hash"].as_str().expect("hash");
    let chain: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&chain[i..i + 2], 16).expect("hex")).collect();
    assert_eq!(hash(&p["leaf_hash"]), tlog::leaf_hash(&chain));

    let (status, c) = node.json(Method::GET, &format!("/proof/consistency?from={first}&to={second}"), None).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    tlog::verify_consistency(first, second, &cp1.checkpoint.root, &cp2.checkpoint.root, &hashes(&c["proof"]))
        .expect("consistency verifies");

    // Balance proofs: each member's own leaf under the signed balances root, summing to zero.
    let balances_root = cp2.checkpoint.balances_root().expect("balances line");
    for (id, micros) in [("alice", -11_500_000i128), ("bob", 10_499_999), ("carol", 1_000_001), ("admin", 0)] {
        let (status, b) = node.json(Method::GET, &format!("/proof/balance?acc_path={id}"), Some(id)).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let leaf = &b["leaf"];
        assert_eq!(leaf["balance_micros"], micros.to_string());
        let proof = tlog::BalanceProof {
            index: b["index"].as_u64().expect("i"),
            count: b["count"].as_u64().expect("n"),
            leaf: tlog::BalanceLeaf {
                account: leaf["account"].as_str().expect("a").to_owned(),
                balance: leaf["balance_micros"].as_str().expect("b").parse().expect("i128"),
                min: leaf["min_micros"].as_str().expect("b").parse().expect("i128"),
                max: leaf["max_micros"].as_str().expect("b").parse().expect("i128"),
            },
            path: b["path"]
                .as_array()
                .expect("path")
                .iter()
                .map(|n| tlog::SumNode {
                    hash: hash(&n["hash"]),
                    sum: n["sum_micros"].as_str().expect("s").parse().expect("i"),
                })
                .collect(),
        };
        proof.verify(&balances_root).expect("the balance proof verifies and sums to zero");
    }
    let (status, s) = node.json(Method::GET, "/statement", Some("bob")).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!((s["account"].as_str(), s["balance"].as_str()), (Some("bob"), Some("10.499999")));
    assert_eq!(s["checkpoint"].as_str(), Some(note2.as_str()));
    let (status, s) = node.json(Method::GET, "/statement?acc_path=carol", Some("admin")).await;
    assert_eq!((status, s["balance"].as_str()), (StatusCode::OK, Some("1.000001")));
    node.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_error_json_and_change_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let node = TestNode::start(dir.path()).await;
    community(&node).await;
    let (size, _) = node.checkpoint().await;
    let head = node.state.read().projections.seq();
    let cases: Vec<(Method, String, Option<&str>, StatusCode, &str)> = vec![
        (Method::GET, "/proof/inclusion".into(), None, StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        (Method::GET, "/proof/inclusion?seq=0".into(), None, StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        (
            Method::GET,
            format!("/proof/inclusion?seq={}", size + 1),
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (Method::GET, "/proof/inclusion?seq=01".into(), None, StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        (Method::GET, "/proof/inclusion?seq=1&size=2".into(), None, StatusCode::NOT_FOUND, "DoesNotExistViolation"),
        (
            Method::GET,
            "/proof/inclusion?seq=1&nonsense=1".into(),
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (Method::GET, "/proof/consistency?to=1".into(), None, StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        (
            Method::GET,
            format!("/proof/consistency?from={}&to=1", size),
            None,
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (Method::GET, "/proof/consistency?from=3".into(), None, StatusCode::NOT_FOUND, "DoesNotExistViolation"),
        (Method::GET, "/checkpoint?size=-1".into(), None, StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        (Method::GET, "/checkpoint?size=99999".into(), None, StatusCode::NOT_FOUND, "DoesNotExistViolation"),
        (
            Method::GET,
            "/proof/balance?acc_path=bob".into(),
            Some("alice"),
            StatusCode::FORBIDDEN,
            "PermissionViolation",
        ),
        (Method::GET, "/statement?acc_path=bob".into(), Some("alice"), StatusCode::FORBIDDEN, "PermissionViolation"),
        (Method::GET, "/statement".into(), None, StatusCode::FORBIDDEN, "PermissionViolation"),
        (
            Method::GET,
            "/statement?acc_path=nobody".into(),
            Some("admin"),
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (
            Method::GET,
            "/statement?acc_path=a/b/c".into(),
            Some("admin"),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (Method::GET, "/proof/balance?size=1".into(), Some("alice"), StatusCode::NOT_FOUND, "DoesNotExistViolation"),
        (Method::POST, "/admin/checkpoint".into(), Some("alice"), StatusCode::FORBIDDEN, "PermissionViolation"),
        (Method::POST, "/admin/node/key".into(), Some("alice"), StatusCode::FORBIDDEN, "PermissionViolation"),
        (Method::POST, "/admin/node/key".into(), None, StatusCode::FORBIDDEN, "PermissionViolation"),
    ];
    for (method, path, user, status, class) in cases {
        let (got, v) = node.json(method.clone(), &path, user).await;
        assert_eq!(got, status, "{method} {path}: {v}");
        assert_eq!(v["errors"][0]["class"], class, "{method} {path}: {v}");
    }
    assert_eq!(node.state.read().projections.seq(), head, "refusals wrote nothing");
    node.stop().await;
}

#[tokio::test]
async fn rotation_is_signed_by_the_old_key_and_survives_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let node = TestNode::start(dir.path()).await;
    community(&node).await;
    let old = node.vkey().await;
    let (first, note1) = node.checkpoint().await;
    let (status, r) = node.post("/admin/node/key", "admin", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["data"]["old"].as_str(), Some(old.to_string().as_str()));
    let new = node.vkey().await;
    assert_ne!(new, old);
    assert_eq!(r["data"]["new"].as_str(), Some(new.to_string().as_str()));
    assert!(!dir.path().join("node.key.next").exists());
    // The journaled rotation is signed by the old key over the old and new keys.
    let (_, feed) = node.json(Method::GET, "/replay/events?after=0&limit=1000", Some("admin")).await;
    let rotation = feed["data"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["event"]["type"] == "NodeKeyRotated")
        .expect("rotated");
    let unhex = |v: &Value| -> Vec<u8> {
        let s = v.as_str().expect("hex");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    };
    let (o, n, sig) =
        (unhex(&rotation["event"]["old"]), unhex(&rotation["event"]["new"]), unhex(&rotation["event"]["signature"]));
    assert_eq!(o, old.key.as_bytes());
    assert_eq!(n, new.key.as_bytes());
    let message =
        ledger::node_key_rotation_message(&o.clone().try_into().expect("32"), &n.clone().try_into().expect("32"));
    let signature = ed25519_dalek::Signature::from_slice(&sig).expect("64 bytes");
    old.key.verify_strict(&message, &signature).expect("the old key signed the rotation");
    assert!(new.key.verify_strict(&message, &signature).is_err());

    node.pay("alice", "carol", "3").await;
    let (second, note2) = node.checkpoint().await;
    assert!(SignedCheckpoint::verify(note2.as_bytes(), &new).is_ok());
    assert!(SignedCheckpoint::verify(note2.as_bytes(), &old).is_err(), "another key's checkpoint is refused");
    assert!(SignedCheckpoint::verify(note1.as_bytes(), &old).is_ok());
    node.stop().await;

    // A restart keeps the key, the checkpoints and their proofs.
    let node = TestNode::start(dir.path()).await;
    assert_eq!(node.vkey().await, new);
    let (_, _, latest) = node.raw(Method::GET, "/checkpoint", None).await;
    assert_eq!(latest, note2);
    let (status, c) = node.json(Method::GET, &format!("/proof/consistency?from={first}&to={second}"), None).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let r1 = SignedCheckpoint::parse(note1.as_bytes()).expect("p").checkpoint.root;
    let r2 = SignedCheckpoint::parse(note2.as_bytes()).expect("p").checkpoint.root;
    tlog::verify_consistency(first, second, &r1, &r2, &hashes(&c["proof"])).expect("consistent after restart");
    let (status, b) = node.json(Method::GET, "/statement", Some("carol")).await;
    assert_eq!((status, b["balance"].as_str()), (StatusCode::OK, Some("5.000001")), "{b}");
    // Records written after a restart still predict the journal's hashes: a new checkpoint verifies.
    node.pay("carol", "bob", "1").await;
    let (third, note3) = node.checkpoint().await;
    let cp3 = SignedCheckpoint::verify(note3.as_bytes(), &new).expect("verifies");
    let (_, p) = node.json(Method::GET, &format!("/proof/inclusion?seq={third}&size={third}"), None).await;
    tlog::verify_inclusion(third - 1, third, &hash(&p["leaf_hash"]), &hashes(&p["proof"]), &cp3.checkpoint.root)
        .expect("ok");
    node.stop().await;

    // A key file that is not the journal's key stops the start, with a clear error.
    std::fs::remove_file(dir.path().join("node.key")).expect("rm");
    let error = Node::start(options(dir.path()), Arc::new(Metrics::new())).await.expect_err("refused");
    assert!(error.to_string().contains("node.key"), "{error}");
    api::checkpoint::write_key(&dir.path().join("node.key"), &api::checkpoint::new_seed()).expect("write");
    let error = Node::start(options(dir.path()), Arc::new(Metrics::new())).await.expect_err("refused");
    assert!(error.to_string().contains("journal says the node's key is"), "{error}");
}

/// A rotation interrupted after its event was journaled is finished at the
/// next start; one interrupted before is forgotten.
#[test]
fn interrupted_rotations_are_settled() {
    use api::checkpoint::{new_seed, public_key, settle_key, write_key, KEY_FILE, NEXT_KEY_FILE};
    let dir = tempfile::tempdir().expect("dir");
    let fresh = settle_key(dir.path(), None).expect("made");
    assert!(fresh.journal_it);
    let current = public_key(&fresh.seed);
    let next = new_seed();
    write_key(&dir.path().join(NEXT_KEY_FILE), &next).expect("write");
    // The journal still names the current key: the next key is forgotten.
    let settled = settle_key(dir.path(), Some(&current)).expect("settled");
    assert_eq!(public_key(&settled.seed), current);
    assert!(!dir.path().join(NEXT_KEY_FILE).exists());
    // The journal names the next key: the rotation is finished.
    write_key(&dir.path().join(NEXT_KEY_FILE), &next).expect("write");
    let settled = settle_key(dir.path(), Some(&public_key(&next))).expect("settled");
    assert_eq!(public_key(&settled.seed), public_key(&next));
    assert!(!settled.journal_it);
    assert!(!dir.path().join(NEXT_KEY_FILE).exists());
    assert_eq!(
        public_key(&api::checkpoint::read_key(&dir.path().join(KEY_FILE)).expect("r").expect("some")),
        public_key(&next)
    );
    std::fs::write(dir.path().join(KEY_FILE), "garbage\n").expect("write");
    assert!(settle_key(dir.path(), Some(&public_key(&next))).is_err());
}

/// A large journal's Merkle tree is rebuilt in the background after start
/// (here forced for any size): until it is, checkpoints and proofs answer
/// 503 and nothing is signed; once it is, the tree holds every record,
/// those written meanwhile included, and proofs verify against the signed root.
#[tokio::test]
async fn the_tree_rebuilt_in_the_background_holds_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = TestNode::start(dir.path()).await;
    community(&node).await;
    let (first, _) = node.checkpoint().await;
    node.stop().await;

    let metrics = Arc::new(Metrics::new());
    let options = StartOptions { merkle_background_from: 0, ..options(dir.path()) };
    let started = Node::start(options, Arc::clone(&metrics)).await.expect("node starts");
    let node =
        TestNode { state: started.state(), router: api::server::router(started.state(), metrics), node: Some(started) };
    // Written while the tree may still be rebuilding: their leaves wait in the backlog.
    node.pay("alice", "carol", "1").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (size, note) = loop {
        let (status, v) = node.post("/admin/checkpoint", "admin", json!({})).await;
        if status == StatusCode::OK {
            break (
                v["data"]["size"].as_u64().expect("size"),
                v["data"]["checkpoint"].as_str().expect("note").to_owned(),
            );
        }
        // Before the tree is back: a clear refusal, not a wrong checkpoint.
        assert!(v.to_string().contains("being rebuilt"), "{status} {v}");
        assert!(std::time::Instant::now() < deadline, "the tree was never rebuilt");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert!(size > first + 1, "the new checkpoint covers the payment made after the restart");
    let key = node.vkey().await;
    let signed = SignedCheckpoint::verify(note.as_bytes(), &key).expect("signed by the node");
    let (status, p) = node.json(Method::GET, &format!("/proof/inclusion?seq={size}&size={size}"), None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    tlog::verify_inclusion(size - 1, size, &hash(&p["leaf_hash"]), &hashes(&p["proof"]), &signed.checkpoint.root)
        .expect("the last record before the checkpoint is in the signed tree");
    let (status, p) = node.json(Method::GET, &format!("/proof/consistency?from={first}&to={size}"), None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    node.stop().await;
}
