//! Issue 16, item 7: `/openapi.json` proves something. Every documented 2xx
//! and error answer has a content schema, and real answers of every route
//! (successes and errors, through the router) conform to the schema the
//! document gives for their status.
//!
//! The checker is a small JSON Schema subset (the one `api/src/schema.rs`
//! and utoipa emit): `$ref`, `type` (also lists), `properties`, `required`,
//! `additionalProperties`, `items`, `oneOf`/`anyOf`/`allOf`, `enum`,
//! `minimum`/`maximum`, `minItems`/`minLength`, and amounts' places
//! (`multipleOf: 0.000001` and `format: decimal6` are checked on the number's
//! text). `pattern` is not checked here (schemathesis checks it, see
//! `.ci/schemathesis.sh`).

use api::app::AppState;
use api::node::Node;
use axum::body::Body;
use axum::http::{Method, Request};
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

    async fn call(&self, method: &Method, path: &str, auth: Option<(&str, &str)>, body: Option<&str>) -> (u16, Value) {
        let mut request = Request::builder().method(method.clone()).uri(path);
        if let Some((user, key)) = auth {
            request = request.header("cc-user", user).header("cc-auth", key);
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).expect("request");
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            // Text answers (the verifier key, checkpoints) are kept as a JSON string.
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8(bytes.to_vec()).expect("UTF-8 text")))
        };
        (status, value)
    }

    async fn stop(mut self) {
        let node = self.node.take().expect("running");
        drop(self.router);
        drop(self.state);
        tokio::task::spawn_blocking(move || node.shutdown()).await.expect("shutdown");
    }
}

/// Where a schema's `$ref` points.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("a component ref");
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "unresolved {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Decimal places of a JSON number as written (None with an exponent).
fn places(n: &serde_json::Number) -> Option<usize> {
    let text = n.to_string();
    if text.contains(['e', 'E']) {
        return None;
    }
    Some(text.split_once('.').map_or(0, |(_, f)| f.len()))
}

/// The errors of `value` against `schema`, each with its JSON pointer.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut errors = Vec::new();
    let mut fail = |why: String| errors.push(format!("{at}: {why} (value {value})"));
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = type_of(value);
        let ok = allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number"));
        if !ok {
            fail(format!("type {actual}, expected {allowed:?}"));
            return errors;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            fail(format!("not one of {options:?}"));
        }
    }
    if let Value::Number(n) = value {
        let x = n.as_f64().expect("finite");
        if schema.get("minimum").and_then(Value::as_f64).is_some_and(|m| x < m) {
            fail("below minimum".to_owned());
        }
        if schema.get("maximum").and_then(Value::as_f64).is_some_and(|m| x > m) {
            fail("above maximum".to_owned());
        }
        let six = schema.get("format").and_then(Value::as_str) == Some("decimal6")
            || schema.get("multipleOf").and_then(Value::as_f64) == Some(0.000_001);
        if six && places(n).is_none_or(|p| p > 6) {
            fail("not a decimal of at most 6 places".to_owned());
        }
    }
    if let (Value::String(s), Some(min)) = (value, schema.get("minLength").and_then(Value::as_u64)) {
        if (s.chars().count() as u64) < min {
            fail(format!("shorter than {min}"));
        }
    }
    if let Value::Array(items) = value {
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|m| (items.len() as u64) < m) {
            fail("too few items".to_owned());
        }
        if let Some(item) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                errors.extend(check(doc, item, v, &format!("{at}/{i}")));
            }
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().expect("required names");
            if !map.contains_key(name) {
                errors.push(format!("{at}: missing required {name} (value {value})"));
            }
        }
        for (key, v) in map {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => errors.extend(check(doc, s, v, &format!("{at}/{key}"))),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{at}: unexpected property {key}")),
                    Some(s @ Value::Object(_)) => errors.extend(check(doc, s, v, &format!("{at}/{key}"))),
                    _ => {}
                },
            }
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            errors.extend(check(doc, s, value, at));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any.iter().any(|s| check(doc, s, value, at).is_empty()) {
            errors.push(format!("{at}: matches none of anyOf (value {value})"));
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one.iter().filter(|s| check(doc, s, value, at).is_empty()).count();
        if matching != 1 {
            errors.push(format!("{at}: matches {matching} of oneOf, expected 1 (value {value})"));
        }
    }
    errors
}

/// Checks one real answer against the document; returns what did not conform.
fn conforms(doc: &Value, method: &Method, template: &str, status: u16, body: &Value) -> Vec<String> {
    let operation = &doc["paths"][template][method.as_str().to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {template} is not documented");
    let response = &operation["responses"][status.to_string()];
    if !response.is_object() {
        return vec![format!("{method} {template}: status {status} is not documented (body {body})")];
    }
    if response["content"]["text/plain"].is_object() && body.is_string() {
        return Vec::new();
    }
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        return if body.is_null() {
            Vec::new()
        } else {
            vec![format!("{method} {template} {status}: a body but no schema: {body}")]
        };
    };
    check(doc, schema, body, "").into_iter().map(|e| format!("{method} {template} {status}: {e}")).collect()
}

#[test]
fn every_documented_answer_has_a_content_schema() {
    let doc = serde_json::to_value(<api::server::ApiDoc as utoipa::OpenApi>::openapi()).expect("serialises");
    let mut missing = Vec::new();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                count += 1;
                let no_body = path == "/transaction/{uuid}/{dest_state}" && (status == "200" || status == "201");
                if response["content"].as_object().is_none_or(|c| c.is_empty()) && !no_body {
                    missing.push(format!("{method} {path} {status}"));
                }
                if status.starts_with(['4', '5']) {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
                }
            }
        }
    }
    assert!(missing.is_empty(), "answers without a content schema: {missing:?}");
    assert!(count > 100, "only {count} documented answers");
    // Amounts are exact decimals, never a plain double.
    let quant = &doc["components"]["schemas"]["NewTransaction"]["properties"]["quant"];
    assert_eq!(quant["$ref"], "#/components/schemas/AmountIn", "{quant}");
    let amount_in = &doc["components"]["schemas"]["AmountIn"]["oneOf"];
    assert_eq!(amount_in[0]["multipleOf"], json!(0.000001), "{amount_in}");
    assert_eq!(amount_in[1]["type"], "string", "{amount_in}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_conform_to_the_document() {
    let node = TestNode::start().await;
    let (status, doc) = node.call(&Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let admin = Some(("admin", ADMIN_KEY));
    let alice = Some(("alice", "alice-key"));
    let bob = Some(("bob", "bob-key"));
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    macro_rules! call {
        ($method:expr, $path:expr, $template:expr, $auth:expr, $body:expr) => {{
            let body: Option<Value> = $body;
            let text = body.map(|b| b.to_string());
            let (status, value) = node.call(&$method, $path, $auth, text.as_deref()).await;
            seen.insert(($template.to_owned(), $method.to_string(), status));
            problems.extend(conforms(&doc, &$method, $template, status, &value));
            (status, value)
        }};
    }
    let (s, _) = call!(
        Method::POST,
        "/admin/accounts",
        "/admin/accounts",
        admin,
        Some(json!({"id": "alice", "key": "alice-key", "min": -100, "max": "100"}))
    );
    assert_eq!(s, 201);
    call!(Method::POST, "/admin/accounts", "/admin/accounts", admin, Some(json!({"id": "bob", "key": "bob-key"})));
    // A large amount is written as a string (more than 15 significant digits).
    call!(
        Method::POST,
        "/admin/accounts",
        "/admin/accounts",
        admin,
        Some(json!({"id": "big", "key": "big-key", "min": "-12345678901234.123456", "max": 0.000001}))
    );
    // Errors of the admin routes: exists, bad limits, bad JSON, not admin, unknown user, wrong key, too large.
    call!(Method::POST, "/admin/accounts", "/admin/accounts", admin, Some(json!({"id": "bob", "key": "k"})));
    call!(Method::POST, "/admin/accounts", "/admin/accounts", admin, Some(json!({"id": "x", "key": "k", "min": 5})));
    call!(
        Method::POST,
        "/admin/accounts",
        "/admin/accounts",
        admin,
        Some(json!({"id": "x", "key": "k", "min": 1.0000001}))
    );
    call!(Method::POST, "/admin/accounts", "/admin/accounts", admin, Some(json!({"id": "x"})));
    call!(Method::POST, "/admin/accounts", "/admin/accounts", alice, Some(json!({"id": "x", "key": "k"})));
    call!(
        Method::POST,
        "/admin/accounts",
        "/admin/accounts",
        Some(("nobody", "k")),
        Some(json!({"id": "x", "key": "k"}))
    );
    call!(
        Method::POST,
        "/admin/accounts",
        "/admin/accounts",
        Some(("alice", "wrong")),
        Some(json!({"id": "x", "key": "k"}))
    );
    let huge = json!({"id": "x", "key": "k", "pad": "x".repeat(70_000)});
    call!(Method::POST, "/admin/accounts", "/admin/accounts", admin, Some(huge));
    call!(Method::PATCH, "/admin/accounts/alice", "/admin/accounts/{id}", admin, Some(json!({"max": 200.5})));
    call!(Method::PATCH, "/admin/accounts/nobody", "/admin/accounts/{id}", admin, Some(json!({"max": 1})));
    call!(Method::PATCH, "/admin/accounts/alice", "/admin/accounts/{id}", admin, Some(json!({})));
    call!(Method::PATCH, "/admin/accounts/alice", "/admin/accounts/{id}", alice, Some(json!({"max": 1})));

    // Node routes.
    call!(Method::OPTIONS, "/", "/", None, None);
    call!(Method::OPTIONS, "/", "/", alice, None);
    call!(Method::GET, "/about", "/about", None, None);
    call!(Method::GET, "/about?node_path=twig", "/about", None, None);
    call!(Method::GET, "/about?bogus=1", "/about", None, None);
    call!(Method::GET, "/workflows", "/workflows", alice, None);
    call!(Method::GET, "/workflows", "/workflows", None, None);
    call!(Method::GET, "/absolutepath", "/absolutepath", alice, None);
    call!(Method::GET, "/handshake", "/handshake", alice, None);

    // Transactions: written, validated (awaiting confirmation), refused.
    let pay = json!({"payer": "alice", "payee": "bob", "quant": 2.5, "description": "bread", "type": "pay", "metadata": {"ref": "x1"}});
    let (s, written) = call!(Method::POST, "/transaction", "/transaction", alice, Some(pay));
    assert_eq!(s, 201, "{written}");
    let credit = json!({"payer": "alice", "payee": "bob", "quant": "0.123456", "type": "credit"});
    let (s, validated) = call!(Method::POST, "/transaction", "/transaction", alice, Some(credit));
    assert_eq!(s, 200, "{validated}");
    let uuid = written["data"]["uuid"].as_str().expect("uuid").to_owned();
    let pending = validated["data"]["uuid"].as_str().expect("uuid").to_owned();
    for body in [
        json!({"payer": "alice", "payee": "bob", "quant": 1000, "type": "pay"}),
        json!({"payer": "alice", "payee": "nobody", "quant": 1, "type": "pay"}),
        json!({"payer": "alice", "payee": "bob", "quant": 1, "type": "nothing"}),
        json!({"payer": "alice", "payee": "bob", "quant": 1}),
        json!({"payer": "alice", "payee": "bob", "quant": 1e-7, "type": "pay"}),
        json!({"payer": "alice", "payee": "bob", "quant": 1, "type": "pay", "uuid": uuid}),
        json!({"payer": "alice", "payee": "bob", "quant": 1, "type": "pay", "metadata": {"a": []}}),
        json!({"quant": 1, "type": "pay"}),
    ] {
        call!(Method::POST, "/transaction", "/transaction", alice, Some(body));
    }
    call!(Method::POST, "/transaction", "/transaction", None, Some(json!({"quant": 1, "type": "pay"})));
    call!(Method::GET, &format!("/transaction/{uuid}"), "/transaction/{uuid}", alice, None);
    call!(Method::GET, &format!("/transaction/{pending}"), "/transaction/{uuid}", bob, None);
    call!(Method::GET, "/transaction/not-a-uuid", "/transaction/{uuid}", alice, None);
    call!(Method::GET, &format!("/transaction/{}", uuid::Uuid::nil()), "/transaction/{uuid}", alice, None);
    call!(Method::GET, &format!("/entries/{uuid}"), "/entries/{uuid}", bob, None);
    call!(Method::GET, &format!("/entries/{}", uuid::Uuid::nil()), "/entries/{uuid}", bob, None);
    call!(Method::PATCH, &format!("/transaction/{pending}/pending"), "/transaction/{uuid}/{dest_state}", alice, None);
    call!(Method::PATCH, &format!("/transaction/{pending}/pending"), "/transaction/{uuid}/{dest_state}", bob, None);
    call!(Method::PATCH, &format!("/transaction/{pending}/nowhere"), "/transaction/{uuid}/{dest_state}", bob, None);
    call!(Method::PATCH, &format!("/transaction/{uuid}/pending"), "/transaction/{uuid}/{dest_state}", bob, None);
    call!(Method::GET, "/transactions", "/transactions", alice, None);
    call!(Method::GET, "/transactions?limit=1&offset=1&sort=quant&dir=asc", "/transactions", admin, None);
    call!(Method::GET, "/transactions?limit=0", "/transactions", alice, None);
    call!(Method::GET, "/transactions?since=yesterday", "/transactions", alice, None);
    call!(Method::GET, "/entries?involving=bob&limit=1", "/entries", alice, None);
    call!(Method::GET, "/entries?sort=nothing", "/entries", alice, None);

    // Accounts.
    for path in ["", "?acc_path=twig", "?acc_path=nobody", "?acc_path=a%20b", "?other=1"] {
        call!(Method::GET, &format!("/account/summary{path}"), "/account/summary", alice, None);
        call!(Method::GET, &format!("/account/limits{path}"), "/account/limits", admin, None);
    }
    call!(Method::GET, "/account/limits?acc_path=big", "/account/limits", admin, None);
    call!(Method::GET, "/account/names?acc_path=a&limit=5", "/account/names", alice, None);
    call!(Method::GET, "/account/names?limit=x", "/account/names", alice, None);
    for query in ["", "?samples=0", "?samples=3", "?samples=-5", "?acc_path=twig"] {
        call!(Method::GET, &format!("/account/history{query}"), "/account/history", alice, None);
    }
    for query in ["", "?at=1", "?at=99999", "?at=2020-01-01T00:00:00Z", "?at=soon"] {
        call!(Method::GET, &format!("/account/balance{query}"), "/account/balance", bob, None);
    }

    // Federation and operations (no neighbours here).
    call!(Method::GET, "/admin/nodes", "/admin/nodes", admin, None);
    call!(Method::GET, "/admin/nodes", "/admin/nodes", alice, None);
    let child = json!({"id": "branch", "url": "http://127.0.0.1:9", "min": -10, "max": 10, "last_hash": "h0"});
    call!(Method::POST, "/admin/nodes", "/admin/nodes", admin, Some(child.clone()));
    call!(Method::POST, "/admin/nodes", "/admin/nodes", admin, Some(child));
    call!(Method::GET, "/admin/nodes", "/admin/nodes", admin, None);
    // The web app's operator routes (issue 12), with a neighbour on the node.
    let (s, accounts) = call!(Method::GET, "/admin/accounts", "/admin/accounts", admin, None);
    assert_eq!(s, 200);
    assert!(
        accounts["data"].as_array().is_some_and(|a| a.iter().any(|x| x["id"] == "branch" && x["kind"] == "node")),
        "{accounts}"
    );
    call!(Method::GET, "/admin/accounts", "/admin/accounts", alice, None);
    let (s, health) = call!(Method::GET, "/admin/health", "/admin/health", admin, None);
    assert_eq!(s, 200);
    assert!(health["data"]["journal"]["head_seq"].as_u64().is_some_and(|h| h > 0), "{health}");
    assert_eq!(health["data"]["neighbours"], json!(["branch"]), "{health}");
    call!(Method::GET, "/admin/health", "/admin/health", alice, None);
    // Soft limits: set, crossed (alice's balance is already below -5), listed.
    let (s, _) = call!(
        Method::PATCH,
        "/admin/accounts/alice",
        "/admin/accounts/{id}",
        admin,
        Some(json!({"warn_min": -5, "warn_max": "none"}))
    );
    assert_eq!(s, 200);
    call!(Method::PATCH, "/admin/accounts/alice", "/admin/accounts/{id}", admin, Some(json!({"warn_min": 5})));
    call!(Method::PATCH, "/admin/accounts/alice", "/admin/accounts/{id}", admin, Some(json!({"warn_max": "soon"})));
    call!(Method::PATCH, "/admin/accounts/branch", "/admin/accounts/{id}", admin, Some(json!({"warn_min": -1})));
    let (s, mine) = call!(Method::GET, "/account/warnings", "/account/warnings", alice, None);
    assert_eq!(s, 200);
    assert_eq!(mine["data"]["warn_min"], json!(-5), "{mine}");
    call!(Method::GET, "/account/warnings?acc_path=bob", "/account/warnings", alice, None);
    call!(Method::GET, "/account/warnings?acc_path=nobody", "/account/warnings", admin, None);
    call!(Method::GET, "/account/warnings?at=1", "/account/warnings", alice, None);
    call!(Method::GET, "/admin/warnings", "/admin/warnings", admin, None);
    call!(Method::GET, "/admin/warnings", "/admin/warnings", alice, None);
    call!(
        Method::PUT,
        "/admin/trunkward",
        "/admin/trunkward",
        admin,
        Some(json!({"name": "trunk", "url": "ftp://x", "rate": 1, "min": -1, "max": 1, "last_hash": "h"}))
    );
    call!(
        Method::PUT,
        "/admin/fees",
        "/admin/fees",
        admin,
        Some(json!({"account": "admin", "fixed": 0.5, "percent": "1.5"}))
    );
    call!(Method::PUT, "/admin/fees", "/admin/fees", admin, Some(json!({"account": null})));
    call!(Method::PUT, "/admin/fees", "/admin/fees", admin, Some(json!({"account": "admin", "fixed": "x"})));
    call!(Method::POST, "/transaction/relay", "/transaction/relay", alice, Some(json!({"uuid": uuid, "entries": []})));
    call!(Method::GET, "/replay/link/branch", "/replay/link/{node}", None, None);
    call!(Method::POST, "/replay/reconcile/nobody", "/replay/reconcile/{node}", admin, None);
    call!(Method::POST, "/admin/nodes/branch/reopen", "/admin/nodes/{node}/reopen", admin, None);
    let rotate = Some(json!({"last_hash": "h1"}));
    let (s, _) = call!(Method::POST, "/admin/nodes/branch/rotate", "/admin/nodes/{node}/rotate", admin, rotate.clone());
    assert_eq!(s, 200);
    call!(Method::POST, "/admin/nodes/branch/rotate", "/admin/nodes/{node}/rotate", alice, rotate.clone());
    call!(Method::POST, "/admin/nodes/nobody/rotate", "/admin/nodes/{node}/rotate", admin, rotate);
    call!(
        Method::POST,
        "/admin/nodes/branch/rotate",
        "/admin/nodes/{node}/rotate",
        admin,
        Some(json!({"last_hash": ""}))
    );
    call!(Method::GET, "/replay/events?limit=5", "/replay/events", admin, None);
    call!(Method::GET, "/replay/events?limit=0", "/replay/events", admin, None);
    call!(Method::GET, "/replay/events", "/replay/events", alice, None);

    // Issue 11: the node's key, checkpoints, proofs and statements.
    let (s, _) = call!(Method::GET, "/checkpoint", "/checkpoint", None, None);
    assert_eq!(s, 404, "no checkpoint yet");
    let (s, vkey) = call!(Method::GET, "/node/key", "/node/key", None, None);
    assert_eq!(s, 200);
    assert!(vkey.as_str().is_some_and(|k| k.starts_with("twig+")), "{vkey}");
    let peer_key = Some(json!({"public_key": vkey}));
    let (s, _) = call!(Method::PUT, "/admin/nodes/branch/key", "/admin/nodes/{node}/key", admin, peer_key);
    assert_eq!(s, 200);
    let bad_key = Some(json!({"public_key": "x"}));
    call!(Method::PUT, "/admin/nodes/branch/key", "/admin/nodes/{node}/key", admin, bad_key);
    let (s, _) = call!(Method::POST, "/witness/add-checkpoint", "/witness/add-checkpoint", None, Some(json!("old 0")));
    assert_eq!(s, 400);
    let (s, made) = call!(Method::POST, "/admin/checkpoint", "/admin/checkpoint", admin, None);
    assert_eq!(s, 200);
    call!(Method::POST, "/admin/checkpoint", "/admin/checkpoint", alice, None);
    let size = made["data"]["size"].as_u64().expect("size");
    let (s, _) = call!(Method::GET, "/checkpoint", "/checkpoint", None, None);
    assert_eq!(s, 200);
    call!(Method::GET, "/checkpoint?size=x", "/checkpoint", None, None);
    let (s, _) = call!(Method::GET, "/proof/inclusion?seq=1", "/proof/inclusion", None, None);
    assert_eq!(s, 200);
    call!(Method::GET, "/proof/inclusion?seq=0", "/proof/inclusion", None, None);
    let (s, _) = call!(Method::GET, &format!("/proof/consistency?from={size}"), "/proof/consistency", None, None);
    assert_eq!(s, 200);
    call!(Method::GET, "/proof/consistency?from=1", "/proof/consistency", None, None);
    let (s, _) = call!(Method::GET, "/proof/balance", "/proof/balance", alice, None);
    assert_eq!(s, 200);
    call!(Method::GET, "/proof/balance?acc_path=bob", "/proof/balance", alice, None);
    let (s, _) = call!(Method::GET, "/statement", "/statement", alice, None);
    assert_eq!(s, 200);
    call!(Method::GET, "/statement?acc_path=bob", "/statement", alice, None);
    call!(Method::GET, "/statement?acc_path=nobody", "/statement", admin, None);
    let (s, _) = call!(Method::POST, "/admin/node/key", "/admin/node/key", admin, None);
    assert_eq!(s, 200);
    call!(Method::POST, "/admin/node/key", "/admin/node/key", alice, None);

    // The checker is not blind: wrong shapes are caught.
    let account = &doc["paths"]["/admin/accounts"]["post"]["responses"]["201"]["content"]["application/json"]["schema"];
    assert!(!check(&doc, account, &json!({"data": {"id": 1}}), "").is_empty());
    let wrong = json!({"data": {"id": "a", "min": 1.0000001, "max": 1, "admin": false, "status": "active"}});
    assert!(!check(&doc, account, &wrong, "").is_empty());
    assert!(!check(&doc, &json!({"$ref": "#/components/schemas/ErrorBody"}), &json!({"errors": []}), "").is_empty());
    assert!(problems.is_empty(), "answers that do not conform:\n{}", problems.join("\n"));
    // Every documented operation was called at least once, with a success and an error.
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(p, item)| item.as_object().map_or(0, |i| i.len()) * usize::from(p != "/metrics" && p != "/openapi.json"))
        .sum();
    let called: std::collections::BTreeSet<(String, String)> =
        seen.iter().map(|(t, m, _)| (t.clone(), m.clone())).collect();
    assert_eq!(called.len(), operations, "operations called: {called:?}");
    node.stop().await;
}
