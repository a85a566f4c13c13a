//! The HTTP API through the in-process router: workflows, confirmation,
//! filters, paging, history, balance-at, admin routes and a table of bad
//! requests that must each get the right error and change nothing.

use api::app::AppState;
use api::node::Node;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

use common::ADMIN_KEY;

struct TestNode {
    node: Option<Node>,
    router: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

impl TestNode {
    async fn start() -> TestNode {
        let common::Started { node, router, state, dir } = common::start_twig().await;
        TestNode { node: Some(node), router, state, _dir: dir }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some((user, key)) = auth {
            request = request.header("cc-user", user).header("cc-auth", key);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).expect("request");
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        (status, value)
    }

    async fn open(&self, id: &str, min: i64, max: i64) {
        let body = json!({"id": id, "key": format!("{id}-key"), "min": min, "max": max}).to_string();
        let (status, value) = self.call(Method::POST, "/admin/accounts", Some(("admin", ADMIN_KEY)), Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }

    async fn as_user(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        let key = format!("{user}-key");
        let body = body.map(|b| b.to_string());
        self.call(method, path, Some((user, &key)), body.as_deref()).await
    }

    fn head(&self) -> u64 {
        self.state.read().projections.seq()
    }

    fn balance(&self, id: &str) -> (String, String) {
        let read = self.state.read();
        let b = read.projections.balances(&ledger::AccountId::new(id).expect("id")).expect("account");
        (b.completed.to_string(), b.pending.to_string())
    }

    async fn stop(mut self) {
        let node = self.node.take().expect("running");
        drop(self.router);
        drop(self.state);
        tokio::task::spawn_blocking(move || node.shutdown()).await.expect("shutdown");
    }
}

fn pay(payer: &str, payee: &str, quant: Value, workflow: &str) -> Value {
    json!({"payer": payer, "payee": payee, "quant": quant, "description": "test", "type": workflow, "metadata": {"ref": "x1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bill_credit_confirmation_and_erase_through_http() {
    let node = TestNode::start().await;
    node.open("alice", -100, 100).await;
    node.open("bob", -100, 100).await;

    // Credit: payer proposes, it waits validated (200), the author confirms to pending, the payee signs.
    let (status, body) =
        node.as_user(Method::POST, "/transaction", "alice", Some(pay("alice", "bob", json!(12.5), "credit"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["state"], "validated");
    assert_eq!(body["data"]["entries"][0]["quant"], json!(12.5));
    assert_eq!(body["data"]["entries"][0]["metadata"]["ref"], "x1");
    let uuid = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    // POST answers the transitions of this transaction unkeyed (the reference's shape).
    assert!(body["meta"]["transitions"]["pending"].is_string(), "{body}");
    assert!(body["meta"]["transitions"]["null"].is_string(), "{body}");
    assert_eq!(node.balance("alice"), ("0".into(), "0".into()));
    // Not yet confirmed, it exists only for its author and admins.
    let (status, body) = node.as_user(Method::GET, &format!("/transaction/{uuid}"), "bob", None).await;
    assert_eq!((status, body["errors"][0]["class"].as_str()), (StatusCode::FORBIDDEN, Some("PermissionViolation")));
    let (status, _) = node.as_user(Method::GET, &format!("/entries/{uuid}"), "bob", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = node.as_user(Method::GET, "/transactions", "bob", None).await;
    assert!(!list["data"].as_array().expect("list").iter().any(|t| t["uuid"] == uuid.as_str()), "{list}");
    let (_, list) = node.as_user(Method::GET, "/entries", "bob", None).await;
    assert!(!list["data"].as_array().expect("list").iter().any(|t| t["uuid"] == uuid.as_str()), "{list}");
    let (_, list) = node.as_user(Method::GET, "/transactions", "alice", None).await;
    assert!(list["data"].as_array().expect("list").iter().any(|t| t["uuid"] == uuid.as_str()), "{list}");
    let (status, _) = node.call(Method::GET, &format!("/transaction/{uuid}"), Some(("admin", ADMIN_KEY)), None).await;
    assert_eq!(status, StatusCode::OK);

    // The payee cannot confirm someone else's proposal.
    let (status, body) = node.as_user(Method::PATCH, &format!("/transaction/{uuid}/pending"), "bob", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errors"][0]["class"], "PermissionViolation");

    let (status, _) = node.as_user(Method::PATCH, &format!("/transaction/{uuid}/pending"), "alice", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(node.balance("alice"), ("0".into(), "-12.5".into()));
    let (_, body) = node.as_user(Method::GET, &format!("/transaction/{uuid}"), "bob", None).await;
    assert_eq!(body["data"]["state"], "pending");
    assert!(body["meta"]["transitions"][&uuid]["completed"].is_string(), "payee may sign: {body}");
    let (status, _) = node.as_user(Method::PATCH, &format!("/transaction/{uuid}/completed"), "bob", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(node.balance("alice"), ("-12.5".into(), "-12.5".into()));
    assert_eq!(node.balance("bob"), ("12.5".into(), "12.5".into()));

    // Bill (the reference's): the payee asks and confirms (200 then 201), the payer signs with a state letter.
    let (status, body) =
        node.as_user(Method::POST, "/transaction", "bob", Some(pay("alice", "bob", json!("3"), "bill"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["state"], "validated");
    let bill = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, _) = node.as_user(Method::PATCH, &format!("/transaction/{bill}/pending"), "bob", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = node.as_user(Method::PATCH, &format!("/transaction/{bill}/completed"), "bob", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "payee cannot sign its own bill: {body}");
    assert_eq!(body["errors"][0]["class"], "PermissionViolation");
    let (status, _) = node.as_user(Method::PATCH, &format!("/transaction/{bill}/C"), "alice", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(node.balance("alice").0, "-15.5");

    // A completed bill or credit may be erased by an admin only; a pending bill cannot be completed again.
    let (status, body) = node.as_user(Method::PATCH, &format!("/transaction/{bill}/erased"), "alice", None).await;
    assert_eq!((status, body["errors"][0]["class"].as_str()), (StatusCode::FORBIDDEN, Some("PermissionViolation")));
    let (status, body) = node.as_user(Method::PATCH, &format!("/transaction/{bill}/pending"), "bob", None).await;
    assert_eq!((status, body["errors"][0]["class"].as_str()), (StatusCode::BAD_REQUEST, Some("WorkflowViolation")));
    let (status, _) = node.as_user(Method::PATCH, &format!("/transaction/{uuid}/erased"), "alice", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        node.call(Method::PATCH, &format!("/transaction/{uuid}/erased"), Some(("admin", ADMIN_KEY)), None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(node.balance("alice"), ("-3".into(), "-3".into()));
    assert_eq!(node.balance("bob"), ("3".into(), "3".into()));

    // A validated proposal deleted by its author with `null` answers 200.
    let (_, body) =
        node.as_user(Method::POST, "/transaction", "alice", Some(pay("alice", "bob", json!(1), "credit"))).await;
    let third = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, _) = node.as_user(Method::PATCH, &format!("/transaction/{third}/null"), "alice", None).await;
    assert_eq!(status, StatusCode::OK);

    // Summary as the reference reports it.
    let (status, body) = node.as_user(Method::GET, "/account/summary?acc_path=alice", "bob", None).await;
    assert_eq!(status, StatusCode::OK);
    let completed = &body["data"]["alice"]["completed"];
    assert_eq!(completed["balance"], json!(-3));
    assert_eq!(completed["gross_out"], json!(3));
    assert_eq!(completed["partners"], json!(1));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_paging_history_and_balance_at() {
    let node = TestNode::start().await;
    for id in ["alice", "bob", "carol"] {
        node.open(id, -1000, 1000).await;
    }
    let mut seq_after_first = 0;
    for i in 1..=30 {
        let (payer, payee) = if i % 3 == 0 { ("bob", "carol") } else { ("alice", "bob") };
        let mut body = pay(payer, payee, json!(i), "pay");
        body["description"] = json!(format!("item {i}"));
        let (status, body) = node.as_user(Method::POST, "/transaction", payer, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if i == 1 {
            seq_after_first = node.head();
        }
    }
    let (_, page) =
        node.as_user(Method::GET, "/transactions?payer=alice&limit=7&offset=7&dir=asc", "alice", None).await;
    assert_eq!(page["meta"]["number_of_results"], json!(20));
    assert_eq!(page["meta"]["current_page"], json!(2));
    let items = page["data"].as_array().expect("array");
    assert_eq!(items.len(), 7);
    assert!(items.iter().all(|t| t["entries"][0]["payer"] == "alice"));
    assert!(page["links"]["next"].as_str().expect("next").contains("offset=14"));
    assert!(page["links"]["prev"].as_str().expect("prev").contains("offset=0"));

    let (_, page) =
        node.as_user(Method::GET, "/transactions?involving=carol&sort=quant&dir=desc&limit=3", "alice", None).await;
    let quants: Vec<Value> =
        page["data"].as_array().expect("array").iter().map(|t| t["entries"][0]["quant"].clone()).collect();
    assert_eq!(quants, vec![json!(30), json!(27), json!(24)]);

    let (_, page) = node.as_user(Method::GET, "/entries?description=ITEM%202&limit=100", "alice", None).await;
    let descriptions: Vec<&str> =
        page["data"].as_array().expect("array").iter().map(|e| e["description"].as_str().expect("text")).collect();
    assert_eq!(descriptions.len(), 11, "item 2 and item 20..29: {descriptions:?}");
    assert!(page["data"][0]["is_primary"].as_bool().expect("flag"));

    let (_, page) = node.as_user(Method::GET, "/transactions?states=pending", "alice", None).await;
    assert_eq!(page["meta"]["number_of_results"], json!(0));

    // History: raw points are the balance after each change.
    let (_, history) = node.as_user(Method::GET, "/account/history?acc_path=carol&samples=0", "alice", None).await;
    assert_eq!(history["meta"]["max"], json!(165)); // 3 + 6 + … + 30
    assert_eq!(history["meta"]["min"], json!(3));

    // Balance at a seq equals the balance when that seq was the head.
    let (_, at) =
        node.as_user(Method::GET, &format!("/account/balance?acc_path=alice&at={seq_after_first}"), "bob", None).await;
    assert_eq!(at["data"]["balance"], json!(-1));
    let (_, now) = node.as_user(Method::GET, "/account/balance?acc_path=alice", "bob", None).await;
    let paid_by_alice: i64 = (1..=30).filter(|i| i % 3 != 0).sum();
    assert_eq!(now["data"]["balance"], json!(-paid_by_alice));
    let (_, past) =
        node.as_user(Method::GET, "/account/balance?acc_path=alice&at=2000-01-01T00:00:00Z", "bob", None).await;
    assert_eq!(past["data"]["balance"], json!(0));
    node.stop().await;
}

/// Method, path, credentials, body, expected status and error class.
type BadCase<'a> = (Method, String, Option<(&'a str, &'a str)>, Option<String>, StatusCode, &'a str);

/// Each bad request gets its class and status, and the journal does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_error_and_change_nothing() {
    let node = TestNode::start().await;
    node.open("alice", -10, 10).await;
    node.open("bob", -10, 10).await;
    let (_, body) =
        node.as_user(Method::POST, "/transaction", "alice", Some(pay("alice", "bob", json!(1), "pay"))).await;
    let uuid = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    let alice = Some(("alice", "alice-key"));
    let admin = Some(("admin", ADMIN_KEY));
    let huge = format!(
        "{{\"payer\":\"alice\",\"payee\":\"bob\",\"quant\":1,\"type\":\"pay\",\"description\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let long_description =
        pay("alice", "bob", json!(1), "pay").to_string().replace("\"test\"", &format!("\"{}\"", "d".repeat(2000)));
    let cases: Vec<BadCase<'_>> = vec![
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some("{not json".into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":1,"type":"pay","color":"red"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":"ten","type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":1.0000001,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":-1,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":0,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":[1],"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":1}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":1,"type":"nope"}"#.into()),
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"alice","quant":1,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "SameAccountViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"zed","quant":1,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "PathViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":50,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "MinLimitViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"bob","payee":"alice","quant":1,"type":"pay"}"#.into()),
            StatusCode::BAD_REQUEST,
            "WorkflowViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(format!(r#"{{"payer":"alice","payee":"bob","quant":1,"type":"pay","uuid":"{uuid}"}}"#)),
            StatusCode::BAD_REQUEST,
            "DuplicateUuidViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":1,"type":"pay","uuid":"not-a-uuid"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(r#"{"payer":"alice","payee":"bob","quant":1,"type":"pay","metadata":{"a":{"b":1}}}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(long_description),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            alice,
            Some(huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            None,
            Some(pay("alice", "bob", json!(1), "pay").to_string()),
            StatusCode::FORBIDDEN,
            "PermissionViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            Some(("alice", "wrong")),
            Some(pay("alice", "bob", json!(1), "pay").to_string()),
            StatusCode::UNAUTHORIZED,
            "PasswordViolation",
        ),
        (
            Method::POST,
            "/transaction".into(),
            Some(("mallory", "x")),
            Some(pay("alice", "bob", json!(1), "pay").to_string()),
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (
            Method::PATCH,
            format!("/transaction/{uuid}/pending"),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "WorkflowViolation",
        ),
        (
            Method::PATCH,
            format!("/transaction/{uuid}/flying"),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::PATCH,
            "/transaction/not-a-uuid/completed".into(),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::PATCH,
            "/transaction/7d2c6d3c-8a2f-4b55-9e51-0d9f7e0b6a11/completed".into(),
            alice,
            None,
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (
            Method::GET,
            "/transaction/7d2c6d3c-8a2f-4b55-9e51-0d9f7e0b6a11".into(),
            alice,
            None,
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (Method::GET, "/transactions?limit=0".into(), alice, None, StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        (
            Method::GET,
            "/transactions?colour=red".into(),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::GET,
            "/account/balance?at=yesterday".into(),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::GET,
            "/account/balance?at=999999".into(),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::GET,
            "/account/summary?acc_path=zed".into(),
            alice,
            None,
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (
            Method::GET,
            "/account/summary?acc_path=other/zed".into(),
            alice,
            None,
            StatusCode::BAD_REQUEST,
            "PathViolation",
        ),
        (Method::GET, "/account/summary".into(), None, None, StatusCode::FORBIDDEN, "PermissionViolation"),
        (
            Method::POST,
            "/admin/accounts".into(),
            alice,
            Some(r#"{"id":"carol","key":"k"}"#.into()),
            StatusCode::FORBIDDEN,
            "PermissionViolation",
        ),
        (
            Method::POST,
            "/admin/accounts".into(),
            admin,
            Some(r#"{"id":"alice","key":"k"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/admin/accounts".into(),
            admin,
            Some(r#"{"id":"bad id!","key":"k"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/admin/accounts".into(),
            admin,
            Some(r#"{"id":"carol","key":"k","min":5}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/admin/accounts".into(),
            admin,
            Some(r#"{"id":"carol","key":""}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::POST,
            "/admin/accounts".into(),
            admin,
            Some(r#"{"id":"twig","key":"k"}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::PATCH,
            "/admin/accounts/zed".into(),
            admin,
            Some(r#"{"status":"blocked"}"#.into()),
            StatusCode::NOT_FOUND,
            "DoesNotExistViolation",
        ),
        (
            Method::PATCH,
            "/admin/accounts/alice".into(),
            admin,
            Some(r#"{"status":"sleeping","min":-5}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (
            Method::PATCH,
            "/admin/accounts/alice".into(),
            admin,
            Some(r#"{}"#.into()),
            StatusCode::BAD_REQUEST,
            "InvalidFieldsViolation",
        ),
        (Method::GET, "/no/such/route".into(), alice, None, StatusCode::NOT_FOUND, "DoesNotExistViolation"),
        (Method::DELETE, "/transaction".into(), alice, None, StatusCode::METHOD_NOT_ALLOWED, "CCOtherViolation"),
    ];
    let before = node.head();
    let balances = (node.balance("alice"), node.balance("bob"));
    for (method, path, auth, body, status, class) in cases {
        let (got, value) = node.call(method.clone(), &path, auth, body.as_deref()).await;
        assert_eq!((got, value["errors"][0]["class"].as_str()), (status, Some(class)), "{method} {path}: {value}");
        assert_eq!(node.head(), before, "{method} {path} wrote to the journal");
    }
    assert_eq!((node.balance("alice"), node.balance("bob")), balances);
    // An unknown state in a filter is no error: it matches nothing (the reference's SQL `IN`).
    let (status, page) = node.call(Method::GET, "/transactions?states=flying", alice, None).await;
    assert_eq!((status, page["meta"]["number_of_results"].as_u64()), (StatusCode::OK, Some(0)), "{page}");
    let (_, all) = node.call(Method::GET, "/transactions?states=completed", alice, None).await;
    let (_, mixed) = node.call(Method::GET, "/transactions?states=flying,completed", alice, None).await;
    assert!(all["meta"]["number_of_results"].as_u64() > Some(0), "{all}");
    assert_eq!(mixed["meta"]["number_of_results"], all["meta"]["number_of_results"]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_limits_status_and_key() {
    let node = TestNode::start().await;
    node.open("alice", -10, 10).await;
    node.open("bob", -10, 10).await;
    let admin = Some(("admin", ADMIN_KEY));
    let (status, body) = node
        .call(Method::PATCH, "/admin/accounts/alice", admin, Some(r#"{"min":-20,"status":"blocked","key":"new"}"#))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"id": "alice", "min": -20, "max": 10, "admin": false, "status": "blocked"}));
    // The old key no longer works; the new one does; a blocked account cannot pay.
    let (status, _) = node.as_user(Method::GET, "/account/limits", "alice", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = pay("alice", "bob", json!(15), "pay").to_string();
    let (status, value) = node.call(Method::POST, "/transaction", Some(("alice", "new")), Some(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{value}");
    node.call(Method::PATCH, "/admin/accounts/alice", admin, Some(r#"{"status":"active"}"#)).await;
    let (status, value) = node.call(Method::POST, "/transaction", Some(("alice", "new")), Some(&body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "bob's max is 10: {value}");
    assert_eq!(value["errors"][0]["class"], "MaxLimitViolation");
    assert_eq!(value["errors"][0]["accId"], "bob");
    let (_, limits) = node.call(Method::GET, "/account/limits?acc_path=twig", Some(("alice", "new")), None).await;
    assert_eq!(limits["data"]["alice"], json!({"min": -20, "max": 10}));
    assert_eq!(limits["data"]["bob"], json!({"min": -10, "max": 10}));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_routes_and_documents() {
    let node = TestNode::start().await;
    node.open("alice", -10, 10).await;
    let (status, about) = node.call(Method::GET, "/about", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(about["data"]["format"], "0");
    let (_, workflows) = node.as_user(Method::GET, "/workflows", "alice", None).await;
    let ids: Vec<&str> =
        workflows["data"].as_object().expect("map").values().map(|w| w["id"].as_str().expect("id")).collect();
    for id in ["pay", "bill", "credit", "payment", "3rdparty"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    // The reference's own hash of its `pay` workflow (captured from a reference node).
    assert_eq!(workflows["data"]["ea14497cdb4d7de18f00149a2b471b77"]["id"], "pay");
    let (_, path) = node.as_user(Method::GET, "/absolutepath", "alice", None).await;
    assert_eq!(path["data"], json!(["twig"]));
    let (_, names) = node.as_user(Method::GET, "/account/names?acc_path=ali", "alice", None).await;
    assert_eq!(names["data"], json!(["alice"]));
    // The entries of one transaction, flat, primary first.
    node.open("bob", -10, 10).await;
    let body = json!({"payer": "alice", "payee": "bob", "quant": 2, "description": "tea", "type": "pay"});
    let (_, created) = node.as_user(Method::POST, "/transaction", "alice", Some(body)).await;
    let uuid = created["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, entries) = node.as_user(Method::GET, &format!("/entries/{uuid}"), "bob", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entries["data"][0]["uuid"], json!(uuid));
    assert_eq!(entries["data"][0]["is_primary"], json!(true));
    assert_eq!(entries["data"][0]["quant"], json!(2));
    // Prometheus text with the journal head and the request counters.
    let request = Request::builder().uri("/metrics").body(Body::empty()).expect("request");
    let response = node.router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body").to_vec())
        .expect("utf-8");
    assert!(text.contains("ccnode_journal_head_seq"), "{text}");
    assert!(
        text.contains("ccnode_http_requests_total{route=\"/transaction\",method=\"POST\",status=\"201\"}"),
        "{text}"
    );
    assert!(text.contains("ccnode_writer_batch_commands"), "{text}");
    let (status, doc) = node.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for route in [
        "/transaction",
        "/transactions",
        "/admin/accounts",
        "/admin/accounts/{id}",
        "/account/balance",
        "/transaction/relay",
        "/admin/nodes",
        "/admin/trunkward",
        "/admin/fees",
        "/replay/events",
        "/replay/link/{node}",
        "/replay/reconcile/{node}",
    ] {
        assert!(doc["paths"][route].is_object(), "{route} not documented");
    }
    let (status, ops) = node.as_user(Method::OPTIONS, "/", "alice", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ops["data"]["newTransaction"], json!(["POST", "/transaction"]));
    node.stop().await;
}

/// Issue 9, 7a: on node `twig`, accounts whose names share a prefix with the
/// node's (`twiggy`, `tw`, `twigtwig`) are found by every read that takes an
/// `acc_path`, bare or under the node's name. The node's name was once
/// stripped as a string prefix, so `twiggy` became `gy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_paths_are_read_by_segment_not_by_string_prefix() {
    let node = TestNode::start().await;
    let names = ["twiggy", "tw", "twigtwig", "t"];
    for id in names {
        node.open(id, -100, 100).await;
    }
    for id in names {
        for path in [id.to_owned(), format!("twig/{id}")] {
            for route in ["/account/summary", "/account/limits"] {
                let (status, body) = node.as_user(Method::GET, &format!("{route}?acc_path={path}"), id, None).await;
                assert_eq!(status, StatusCode::OK, "{route} {path}: {body}");
                let keys: Vec<&String> = body["data"].as_object().expect("object").keys().collect();
                assert_eq!(keys, [id], "{route} {path}: {body}");
            }
            let (status, body) =
                node.as_user(Method::GET, &format!("/account/history?acc_path={path}"), id, None).await;
            assert_eq!(status, StatusCode::OK, "history {path}: {body}");
            let (status, body) =
                node.as_user(Method::GET, &format!("/account/balance?acc_path={path}"), id, None).await;
            assert_eq!((status, body["data"]["account"].as_str()), (StatusCode::OK, Some(id)), "{body}");
        }
    }
    // The node's own name, with or without a slash, names every account.
    for path in ["twig", "twig/"] {
        let (_, body) = node.as_user(Method::GET, &format!("/account/summary?acc_path={path}"), "tw", None).await;
        for id in names {
            assert!(body["data"].get(id).is_some(), "{path}: {body}");
        }
    }
    node.stop().await;
}
