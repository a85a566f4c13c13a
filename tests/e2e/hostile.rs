//! Hostile callers of the node-to-node routes (issue 16, item 1): the link
//! hash is a neighbour's credential, so no answer may reveal it to a caller
//! that did not prove it, guessing is slowed down, and even a real neighbour
//! may only make the moves the workflow gives its side.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::federation::graft;
use crate::node::Server;

fn head(node: &Server, peer: &str) -> String {
    let (_, value) = node.call(Method::GET, "/admin/nodes", "admin", None);
    value["data"][peer]["last_hash"].as_str().expect("a head").to_owned()
}

struct Pair {
    trunk: Server,
    branch: Server,
    _dirs: [tempfile::TempDir; 2],
}

/// `trunk` with alice, `branch` under it with bob, nothing exchanged yet.
fn grafted() -> Pair {
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let trunk = Server::start(dirs[0].path(), "trunk");
    let branch = Server::start(dirs[1].path(), "branch");
    graft(&trunk, "trunk", &branch, "branch", "1", -1000);
    trunk.open("alice", -100, 100);
    branch.open("bob", -100, 100);
    Pair { trunk, branch, _dirs: dirs }
}

/// `grafted`, then one payment so the link has moved past its initial hash.
fn pair() -> Pair {
    let Pair { trunk, branch, _dirs: dirs } = grafted();
    let pay = json!({"payer": "bob", "payee": "trunk/alice", "quant": 5, "description": "first", "type": "pay"});
    let (status, body) = branch.call(Method::POST, "/transaction", "bob", Some(pay));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(head(&trunk, "branch"), head(&branch, "trunk"));
    Pair { trunk, branch, _dirs: dirs }
}

#[test]
fn no_answer_to_a_wrong_link_hash_reveals_the_link_hash() {
    let Pair { trunk, branch, _dirs } = pair();
    let secret = head(&trunk, "branch");
    let initial = "graft-trunk-branch";
    let uuid = "3d8ebb9f-6a29-42cb-9d39-9ee0a6bf7f1c";
    let relay = json!({"uuid": uuid, "state": "V", "workflow": "_C-", "entries": [
        {"payer": "branch/bob", "payee": "alice", "quant": 1, "description": "forged"}]});
    let node_headers = [("cc-node", "branch"), ("last-hash", "x")];
    let old_headers = [("cc-user", "branch"), ("cc-auth", "anything")];
    let mut answers: Vec<(String, StatusCode, Value)> = Vec::new();
    for headers in [&node_headers[..], &old_headers[..]] {
        for path in ["/workflows", "/account/summary", "/handshake", "/absolutepath"] {
            let (status, value) = trunk.request_with(Method::GET, path, headers);
            answers.push((format!("GET {path}"), status, value));
        }
        let (status, value) = trunk.request_json(Method::POST, "/transaction/relay", headers, &relay);
        answers.push(("POST relay".into(), status, value));
        let (status, value) = trunk.request_with(Method::PATCH, &format!("/transaction/{uuid}/C"), headers);
        answers.push(("PATCH".into(), status, value));
    }
    // The link feed, at every position a caller might try, with a wrong hash.
    for after in ["0", "1", "2", "999"] {
        let path = format!("/replay/link/branch?after={after}");
        let (status, value) = trunk.request_with(Method::GET, &path, &node_headers);
        answers.push((format!("feed after={after}"), status, value));
    }
    for (what, status, value) in &answers {
        assert!(!status.is_success(), "{what}: {status} {value}");
        let text = value.to_string();
        assert!(!text.contains(&secret), "{what} revealed the link head: {text}");
        assert!(!text.contains(initial), "{what} revealed the initial hash: {text}");
        if value["errors"][0]["class"] == "HashMismatchFailure" {
            assert!(value["errors"][0].get("localHash").is_none(), "{what}: {text}");
        }
    }
    // Nothing was written by any of them.
    let (_, alice) = trunk.call(Method::GET, "/account/balance?acc_path=alice", "admin", None);
    assert_eq!(alice["data"]["balance"], json!(5));
    // The real neighbour, with the real hash, still gets its feed.
    let (status, feed) = trunk.request_with(
        Method::GET,
        "/replay/link/branch?after=1",
        &[("cc-node", "branch"), ("last-hash", &secret)],
    );
    assert_eq!(status, StatusCode::OK, "{feed}");
    assert_eq!(head(&branch, "trunk"), secret);
}

#[test]
fn repeated_wrong_hashes_are_answered_ever_more_slowly() {
    let Pair { trunk, _dirs, .. } = pair();
    let headers = [("cc-node", "branch"), ("last-hash", "guess")];
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _) = trunk.request_with(Method::GET, "/workflows", &headers);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        took.push(started.elapsed());
    }
    // 100, 200, 400, 800, 1600 ms: five guesses cost at least three seconds.
    let total: Duration = took.iter().sum();
    assert!(total >= Duration::from_millis(3_000), "{took:?}");
    assert!(took[4] >= Duration::from_millis(1_600), "{took:?}");
}

#[test]
fn a_neighbour_may_make_only_the_moves_of_its_own_side() {
    let Pair { trunk, branch, _dirs } = pair();
    // bob (payee, on branch) bills alice (payer, on trunk) and confirms it.
    let bill = json!({"payer": "trunk/alice", "quant": 3, "description": "eggs", "type": "bill"});
    let (status, body) = branch.call(Method::POST, "/transaction", "bob", Some(bill));
    assert_eq!(status, StatusCode::OK, "{body}");
    let uuid = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, body) = branch.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), "bob", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Speaking as branch with the real link hash, sign for the payer: the
    // payer is on trunk's side, so branch may not.
    let hash = head(&trunk, "branch");
    let headers = [("cc-node", "branch"), ("last-hash", hash.as_str())];
    let (status, body) = trunk.request_with(Method::PATCH, &format!("/transaction/{uuid}/C"), &headers);
    assert_eq!(
        (status, body["errors"][0]["class"].as_str()),
        (StatusCode::FORBIDDEN, Some("PermissionViolation")),
        "{body}"
    );
    let (_, tx) = trunk.call(Method::GET, &format!("/transaction/{uuid}"), "admin", None);
    assert_eq!(tx["data"]["state"], "pending");
    assert_eq!(head(&trunk, "branch"), hash, "nothing advanced");
    // The payer signs it where she is; it completes on both ledgers.
    let (status, body) = trunk.call(Method::PATCH, &format!("/transaction/{uuid}/completed"), "alice", None);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, tx) = branch.call(Method::GET, &format!("/transaction/{uuid}"), "bob", None);
    assert_eq!(tx["data"]["state"], "completed");
    assert_eq!(head(&trunk, "branch"), head(&branch, "trunk"));
}

/// Issue 16, item 4: a metadata key naming a party would replace how that
/// party is shown (the key where ccnode keeps a remote party's path).
#[test]
fn metadata_cannot_change_how_a_party_is_shown() {
    let Pair { trunk, branch, _dirs } = pair();
    trunk.open("bob", -100, 100);
    let before = trunk.call(Method::GET, "/account/balance?acc_path=alice", "admin", None).1["data"]["seq"].clone();
    for (payer, payee, key) in [("alice", "bob", "bob"), ("alice", "bob", "alice"), ("alice", "branch/bob", "branch")] {
        let body = json!({"payer": payer, "payee": payee, "quant": 1, "description": "x", "type": "pay",
                          "metadata": {key: "evil/path"}});
        let (status, value) = trunk.call(Method::POST, "/transaction", "alice", Some(body));
        assert_eq!(
            (status, value["errors"][0]["class"].as_str()),
            (StatusCode::BAD_REQUEST, Some("InvalidFieldsViolation")),
            "{payee} with key {key}: {value}"
        );
    }
    let after = trunk.call(Method::GET, "/account/balance?acc_path=alice", "admin", None).1["data"]["seq"].clone();
    assert_eq!(before, after, "nothing written");
    // Keys that name no party stay the user's own, shown as given.
    let body = json!({"payer": "alice", "payee": "bob", "quant": 1, "type": "pay", "metadata": {"order": "A-1"}});
    let (status, value) = trunk.call(Method::POST, "/transaction", "alice", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["entries"][0]["payee"], "bob");
    assert_eq!(value["data"]["entries"][0]["metadata"], json!({"order": "A-1"}));
    drop(branch);
}

/// Issue 16, item 2: the agreed initial hash opens the link feed for the
/// first exchange only; after that only the current head (or the one before
/// it, for a neighbour one version apart) does.
#[test]
fn the_initial_hash_opens_the_link_feed_only_for_the_first_exchange() {
    let Pair { trunk, branch, _dirs } = pair();
    let initial = "graft-trunk-branch";
    let feed = |hash: &str| {
        trunk.request_with(Method::GET, "/replay/link/branch?after=0", &[("cc-node", "branch"), ("last-hash", hash)])
    };
    // One version on the link: the initial hash is the one before the head.
    let (status, body) = feed(initial);
    assert_eq!((status, body["meta"]["count"].as_u64()), (StatusCode::OK, Some(1)), "{body}");
    let pay = json!({"payer": "bob", "payee": "trunk/alice", "quant": 1, "description": "second", "type": "pay"});
    let (status, body) = branch.call(Method::POST, "/transaction", "bob", Some(pay));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = feed(initial);
    assert_eq!((status, body["errors"][0]["class"].as_str()), (StatusCode::CONFLICT, Some("HashMismatchFailure")));
    assert!(body.get("data").is_none(), "{body}");
    let (status, body) = feed(&head(&trunk, "branch"));
    assert_eq!((status, body["meta"]["count"].as_u64()), (StatusCode::OK, Some(2)), "{body}");
    // Reconciliation, which now proves the head, still agrees.
    let (status, body) = branch.call(Method::POST, "/replay/reconcile/trunk", "admin", None);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["verdict"], "in_sync", "{body}");
}

/// Issue 16, item 2: operators replace a guessable initial hash on both
/// sides before the first exchange; afterwards the link's head authenticates
/// it and rotation is refused.
#[test]
fn operators_rotate_a_guessable_initial_hash_before_the_first_exchange() {
    let Pair { trunk, branch, _dirs } = grafted();
    let guessable = "graft-trunk-branch";
    let secret = "k3J9-chosen-by-both-operators";
    for (node, peer) in [(&trunk, "branch"), (&branch, "trunk")] {
        let (status, body) = node.call(
            Method::POST,
            &format!("/admin/nodes/{peer}/rotate"),
            "admin",
            Some(json!({"last_hash": secret})),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(head(node, peer), secret);
    }
    // The old value no longer authenticates the neighbour.
    let (status, body) =
        trunk.request_with(Method::GET, "/workflows", &[("cc-node", "branch"), ("last-hash", guessable)]);
    assert_eq!(
        (status, body["errors"][0]["class"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("HashMismatchFailure"))
    );
    // Payments flow with the new one, and both heads agree.
    let pay =
        json!({"payer": "bob", "payee": "trunk/alice", "quant": 2, "description": "after rotation", "type": "pay"});
    let (status, body) = branch.call(Method::POST, "/transaction", "bob", Some(pay));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(head(&trunk, "branch"), head(&branch, "trunk"));
    assert_ne!(head(&trunk, "branch"), secret);
    // Too late now: the head authenticates the link.
    let (status, body) =
        trunk.call(Method::POST, "/admin/nodes/branch/rotate", "admin", Some(json!({"last_hash": "another"})));
    assert_eq!(
        (status, body["errors"][0]["class"].as_str()),
        (StatusCode::CONFLICT, Some("CCOtherViolation")),
        "{body}"
    );
    let (status, _) = trunk.call(Method::POST, "/admin/nodes/branch/rotate", "alice", Some(json!({"last_hash": "x"})));
    assert_eq!(status, StatusCode::FORBIDDEN);
}
