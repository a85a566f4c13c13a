//! What a browser wallet does, without a browser (issue 9, item 1): the calls
//! `CredComSoc/cc-wallet@f34bde1` makes, as Chromium sends them from another
//! origin: a CORS preflight before every call that carries `cc-user` and
//! `cc-auth`, then the call itself, with the POST body typed
//! `text/plain;charset=UTF-8` (the wallet posts `JSON.stringify(...)` without
//! setting a type), and errors read from `errors[0].class` and `.node`.

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::Server;

const ORIGIN: &str = "http://wallet.example:5173";

fn preflight(client: &Client, server: &Server, method: &str, path: &str) -> reqwest::blocking::Response {
    client
        .request(Method::OPTIONS, format!("{}{path}", server.url))
        .header("origin", ORIGIN)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "cc-auth,cc-user")
        .send()
        .expect("preflight")
}

fn assert_allows(response: &reqwest::blocking::Response, method: &str) {
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "preflight status");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(header("access-control-allow-origin"), "*");
    let methods = header("access-control-allow-methods");
    for m in ["GET", "POST", "PATCH", "OPTIONS", method] {
        assert!(methods.split(", ").any(|x| x == m), "{m} not in {methods:?}");
    }
    let headers = header("access-control-allow-headers");
    for h in ["cc-user", "cc-auth", "cc-node", "last-hash", "cc-node-trace", "content-type"] {
        assert!(headers.split(", ").any(|x| x == h), "{h} not in {headers:?}");
    }
}

fn as_wallet(
    client: &Client,
    server: &Server,
    method: Method,
    path: &str,
    user: &str,
    body: Option<&Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = client
        .request(method, format!("{}{path}", server.url))
        .header("origin", ORIGIN)
        .header("cc-user", user)
        .header("cc-auth", format!("{user}-key"));
    if let Some(body) = body {
        request = request.header("content-type", "text/plain;charset=UTF-8").body(body.to_string());
    }
    let response = request.send().expect("request");
    let status = response.status();
    let origin = response.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") };
    (status, value, origin)
}

#[test]
fn a_wallet_on_another_origin_signs_in_pays_and_signs_through_cors() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "branch");
    server.open("alice", -100, 100);
    server.open("bob", -100, 100);
    let client = Client::new();

    // Sign in: GET /absolutepath, preflighted.
    assert_allows(&preflight(&client, &server, "GET", "/absolutepath"), "GET");
    let (status, body, origin) = as_wallet(&client, &server, Method::GET, "/absolutepath", "alice", None);
    assert_eq!((status, origin.as_deref()), (StatusCode::OK, Some("*")), "{body}");
    assert_eq!(body["data"], json!(["branch"]));

    // A credit typed text/plain: accepted as JSON, waits validated (200).
    assert_allows(&preflight(&client, &server, "POST", "/transaction"), "POST");
    let credit = json!({"quant": 3, "payer": "alice", "payee": "bob", "description": "soup", "type": "credit"});
    let (status, body, origin) = as_wallet(&client, &server, Method::POST, "/transaction", "alice", Some(&credit));
    assert_eq!((status, origin.as_deref()), (StatusCode::OK, Some("*")), "{body}");
    let uuid = body["data"]["uuid"].as_str().expect("uuid").to_owned();

    // The transaction page, then the button's PATCH from meta.transitions[uuid].
    let (status, page, _) = as_wallet(&client, &server, Method::GET, &format!("/transaction/{uuid}"), "alice", None);
    assert_eq!(status, StatusCode::OK, "{page}");
    let send = page["meta"]["transitions"][&uuid]["pending"].as_str().expect("a pending transition").to_owned();
    assert_allows(&preflight(&client, &server, "PATCH", &send), "PATCH");
    let (status, _, origin) = as_wallet(&client, &server, Method::PATCH, &send, "alice", None);
    assert_eq!((status, origin.as_deref()), (StatusCode::CREATED, Some("*")));
    let (_, page, _) = as_wallet(&client, &server, Method::GET, &format!("/transaction/{uuid}"), "bob", None);
    assert_eq!(page["data"]["state"], "pending");

    // An error is readable across origins and names the node that raised it.
    let too_much = json!({"quant": 1000, "payer": "alice", "payee": "bob", "description": "car", "type": "pay"});
    let (status, body, origin) = as_wallet(&client, &server, Method::POST, "/transaction", "alice", Some(&too_much));
    assert_eq!((status, origin.as_deref()), (StatusCode::BAD_REQUEST, Some("*")), "{body}");
    assert_eq!(body["errors"][0]["class"], "MinLimitViolation");
    assert_eq!(body["errors"][0]["node"], "branch");

    // A body that is not JSON is still refused, whatever its type, and writes nothing.
    let before = server.call(Method::GET, "/account/balance?acc_path=alice", "alice", None).1["data"]["seq"].clone();
    for content_type in ["text/plain;charset=UTF-8", "application/json", "application/x-www-form-urlencoded"] {
        let response = client
            .post(format!("{}/transaction", server.url))
            .header("cc-user", "alice")
            .header("cc-auth", "alice-key")
            .header("content-type", content_type)
            .body("payer=alice&payee=bob&quant=1")
            .send()
            .expect("request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{content_type}");
        let body: Value = response.json().expect("json");
        assert_eq!(body["errors"][0]["class"], "InvalidFieldsViolation", "{content_type}: {body}");
    }
    let after = server.call(Method::GET, "/account/balance?acc_path=alice", "alice", None).1["data"]["seq"].clone();
    assert_eq!(before, after, "nothing written");

    // `OPTIONS /` without a preflight header is still the reference's permittedEndpoints.
    let (status, body) = server.request(Method::OPTIONS, "/", None, None);
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["permittedEndpoints"].is_array(), "{body}");
    server.stop();
}

#[test]
fn an_operator_loads_workflows_in_the_reference_format() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = data.path().join("workflows.json");
    // The reference's format (cc-node workflows.json.example): an array, `disabled` flags.
    let workflows = json!([
        {"id": "gift", "label": "Gift", "summary": "Payer gives, at once", "direction": "credit",
         "creation": {"state": "completed", "label": "Give", "confirm": false},
         "states": {"completed": {"erased": {"label": "Erase", "actors": []}}}, "disabled": false},
        {"id": "old", "label": "Old", "summary": "No longer offered", "direction": "bill",
         "creation": {"state": "pending", "label": "Create", "confirm": false},
         "states": {"pending": {"completed": {"label": "Sign", "actors": ["payer"]}}}, "disabled": true}
    ]);
    std::fs::write(&file, workflows.to_string()).expect("write");
    let dir = data.path().join("node");
    let args = |file: &std::path::Path| {
        vec![
            "serve".to_owned(),
            "--data".to_owned(),
            crate::arg(&dir).to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--workflows".to_owned(),
            crate::arg(file).to_owned(),
        ]
    };
    // First the shipped set, to write a bill under it.
    let server = Server::start(&dir, "ccnode");
    server.open("alice", -100, 100);
    server.open("bob", -100, 100);
    let bill = json!({"payer": "alice", "payee": "bob", "quant": 2, "description": "old bill", "type": "bill"});
    let (status, body) = server.call(Method::POST, "/transaction", "bob", Some(bill));
    assert_eq!(status, StatusCode::OK, "{body}");
    let bill = body["data"]["uuid"].as_str().expect("uuid").to_owned();
    server.stop();

    let args = args(&file);
    let server = Server::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (_, listed) = server.call(Method::GET, "/workflows", "alice", None);
    let ids: Vec<&str> = listed["data"].as_object().expect("map").values().filter_map(|w| w["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&"gift") && ids.contains(&"old"), "{listed}");
    let gift = json!({"payer": "alice", "payee": "bob", "quant": 1, "description": "g", "type": "gift"});
    let (status, body) = server.call(Method::POST, "/transaction", "alice", Some(gift));
    assert_eq!((status, body["data"]["state"].as_str()), (StatusCode::CREATED, Some("completed")), "{body}");
    let old = json!({"payer": "alice", "payee": "bob", "quant": 1, "type": "old"});
    let (status, body) = server.call(Method::POST, "/transaction", "bob", Some(old));
    assert_eq!(
        (status, body["errors"][0]["class"].as_str(), body["errors"][0]["id"].as_str()),
        (StatusCode::BAD_REQUEST, Some("DeprecatedWorkflowViolation"), Some("old")),
        "{body}"
    );
    let bill_again = json!({"payer": "alice", "payee": "bob", "quant": 1, "type": "bill"});
    let (status, body) = server.call(Method::POST, "/transaction", "bob", Some(bill_again));
    assert_eq!((status, body["errors"][0]["type"].as_str()), (StatusCode::NOT_FOUND, Some("workflow")), "{body}");
    // The bill written before keeps the workflow it was written under.
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{bill}/pending"), "bob", None);
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{bill}/completed"), "alice", None);
    assert_eq!(status, StatusCode::CREATED);
    server.stop();

    // A broken file stops the node with a clear message, before anything is written.
    std::fs::write(&file, "[{\"id\": \"x\"}]").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(&args)
        .env("CCNODE_ADMIN_KEY", crate::node::ADMIN_KEY)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("workflows file"), "{stderr}");
}
