//! The reference cc-server's `tests/SingleNodeTest.php`, ported as black-box
//! HTTP tests against the real `ccnode` binary.
//!
//! Source: `AdonayTeshome/cc_server@f7fb0952a70b7e5431d20213c7452efdd0cf41fd`
//! (`tests/SingleNodeTest.php`, harness `tests/TestBase.php`). Each test names
//! the method and line range it ports. The requests and assertions are the
//! reference's; only account and node setup is adapted (ccnode opens accounts
//! through `POST /admin/accounts` instead of reading `accountstore.json`).
//!
//! Documented differences that the tests assert on purpose:
//! - The reference answers every CC error with HTTP 500 (Slim's error
//!   handler; the tests never check it). ccnode answers violations with 4xx
//!   (401 PasswordViolation/AuthViolation, 403 PermissionViolation, 404
//!   DoesNotExistViolation, 400 the others) and failures with 5xx, so every
//!   error expectation here also checks that status.
//! - An empty transition map is `{}` in ccnode (the reference writes `[]`).
//!
//! The test bodies are `pub(crate)` functions taking a [`RefNode`] so that
//! `reference_multi` can run them on the leaf of a tree, as the reference's
//! `MultiNodeTest extends SingleNodeTest` does.

use std::collections::BTreeSet;

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::{Server, ADMIN_KEY};

/// The key of every account, as in the reference's example account store.
pub(crate) const KEY: &str = "123";

// ---------------------------------------------------------------------------
// Error classes (`tests/TestBase.php:96-107`: `assertInstanceOf` on the
// reconstructed `errors[0].class`, so a subclass satisfies the expectation).

/// The parent of a CC error class (cc-php-lib `Exceptions/*.php`).
fn parent_class(class: &str) -> Option<&'static str> {
    match class {
        "CCError" => None,
        "CCViolation" | "CCFailure" => Some("CCError"),
        "MaxLimitViolation" | "MinLimitViolation" => Some("TransactionLimitViolation"),
        "PermissionViolation"
        | "DoesNotExistViolation"
        | "PasswordViolation"
        | "PathViolation"
        | "SameAccountViolation"
        | "WorkflowViolation"
        | "DeprecatedWorkflowViolation"
        | "InvalidFieldsViolation"
        | "CCOtherViolation"
        | "TransactionLimitViolation"
        | "AuthViolation"
        | "IntermediateledgerViolation" => Some("CCViolation"),
        "HashMismatchFailure" | "UnavailableNodeFailure" => Some("CCFailure"),
        // Classes only ccnode has (e.g. LinkBusyFailure): by their suffix.
        other if other.ends_with("Violation") => Some("CCViolation"),
        other if other.ends_with("Failure") => Some("CCFailure"),
        _ => None,
    }
}

/// Whether `class` is `expected` or one of its subclasses.
fn is_a(class: &str, expected: &str) -> bool {
    let mut current = Some(class);
    while let Some(c) = current {
        if c == expected {
            return true;
        }
        current = parent_class(c);
    }
    false
}

/// TestBase's error check: `body.errors[0].class` is `expected` or a subclass.
/// Returns `errors[0]`.
pub(crate) fn assert_error_class<'b>(body: &'b Value, expected: &str) -> &'b Value {
    let Some(error) = body["errors"].as_array().and_then(|e| e.first()) else {
        panic!("Expected {expected} but got something else (no errors[0]): {body}");
    };
    let class = error["class"].as_str().unwrap_or_else(|| panic!("errors[0] has no class: {body}"));
    assert!(is_a(class, expected), "expected {expected} or a subclass, got {class}: {body}");
    error
}

/// ccnode's documented status for an error class (the reference: always 500).
fn ccnode_status_ok(class: &str, status: StatusCode) -> bool {
    if is_a(class, "PasswordViolation") || is_a(class, "AuthViolation") {
        status == StatusCode::UNAUTHORIZED
    } else if is_a(class, "PermissionViolation") {
        status == StatusCode::FORBIDDEN
    } else if is_a(class, "DoesNotExistViolation") {
        status == StatusCode::NOT_FOUND
    } else if is_a(class, "CCViolation") {
        status == StatusCode::BAD_REQUEST
    } else {
        status.is_server_error()
    }
}

// ---------------------------------------------------------------------------
// A node under test, with TestBase's account lists.

/// A running node plus what `TestBase::loadAccounts` (`tests/TestBase.php:131-162`)
/// would have read from its `accountstore.json`.
pub(crate) struct RefNode {
    pub(crate) server: Server,
    /// The node's name (`nodeName`).
    pub(crate) name: String,
    /// `adminAccIds`.
    pub(crate) admins: Vec<String>,
    /// `normalAccIds`, in store order.
    pub(crate) normals: Vec<String>,
    /// Acceptable values of `errors[0].node`: this node's name, plus (on a
    /// leaf) the nodes an error may be relayed from.
    pub(crate) error_nodes: Vec<String>,
    client: Client,
}

impl RefNode {
    /// Wraps a started server, opens `normals` with key `123` and limits
    /// ±100 and gives the built-in `admin` key `123` and limits ±500 (the
    /// reference's `examples/accountstore.json.example`). `graft` must have
    /// run before: it authenticates with the e2e admin key.
    pub(crate) fn new(server: Server, name: &str, normals: &[&str]) -> RefNode {
        for id in normals {
            let body = json!({"id": id, "key": KEY, "min": -100, "max": 100, "admin": false});
            let (status, value) = server.call(Method::POST, "/admin/accounts", "admin", Some(body));
            assert_eq!(status, StatusCode::CREATED, "open {id}: {value}");
        }
        let body = json!({"key": KEY, "min": -500, "max": 500});
        let (status, value) =
            server.request(Method::PATCH, "/admin/accounts/admin", Some(("admin", ADMIN_KEY)), Some(body));
        assert_eq!(status, StatusCode::OK, "admin key and limits: {value}");
        RefNode {
            server,
            name: name.to_owned(),
            admins: vec!["admin".to_owned()],
            normals: normals.iter().map(|s| (*s).to_owned()).collect(),
            error_nodes: vec![name.to_owned()],
            client: Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("client"),
        }
    }

    /// `reset($this->adminAccIds)`.
    pub(crate) fn admin(&self) -> &str {
        &self.admins[0]
    }

    /// `reset($this->normalAccIds)`.
    pub(crate) fn u0(&self) -> &str {
        &self.normals[0]
    }

    /// `next($this->normalAccIds)` after a reset.
    pub(crate) fn u1(&self) -> &str {
        &self.normals[1]
    }

    /// `end($this->normalAccIds)`.
    pub(crate) fn ulast(&self) -> &str {
        self.normals.last().expect("a normal account")
    }

    /// `TestBase::sendRequest` (`tests/TestBase.php:52-116`) without the
    /// assertion: `acc` empty = anonymous (no cc-* headers); a known account
    /// sends its key, an unknown one `---`; a non-empty body is sent raw as
    /// `application/json` (even with a GET, as the reference does).
    pub(crate) fn send(&self, method: Method, path: &str, acc: &str, body: &str) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}/{path}", self.server.url));
        if !acc.is_empty() {
            let known = self.admins.iter().chain(&self.normals).any(|a| a == acc);
            request = request.header("cc-user", acc).header("cc-auth", if known { KEY } else { "---" });
        }
        if !body.is_empty() {
            request = request.header("Content-Type", "application/json").body(body.to_owned());
        }
        let response = request.send().expect("request reaches the server");
        let status = response.status();
        let text = response.text().expect("body");
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    /// `sendRequest` with an integer expectation: the status must match.
    pub(crate) fn ok(&self, method: Method, path: &str, acc: &str, body: &str, expected: u16) -> Value {
        let (status, value) = self.send(method.clone(), path, acc, body);
        assert_eq!(status.as_u16(), expected, "{acc} got unexpected code on {method} /{path}: {value}");
        value
    }

    /// `sendRequest` with a class expectation: `errors[0].class` is `class`
    /// or a subclass. Also checks ccnode's documented status for the class
    /// the node actually answered, and `errors[0].node`. Returns `errors[0]`.
    pub(crate) fn err(&self, method: Method, path: &str, acc: &str, body: &str, class: &str) -> Value {
        let (status, value) = self.send(method.clone(), path, acc, body);
        let error = assert_error_class(&value, class).clone();
        let got = error["class"].as_str().unwrap_or_default();
        assert!(ccnode_status_ok(got, status), "{method} /{path}: {got} answered with HTTP {status}: {value}");
        let node = error["node"].as_str().unwrap_or_else(|| panic!("errors[0] has no node: {value}"));
        assert!(self.error_nodes.iter().any(|n| n == node), "errors[0].node {node} not in {:?}", self.error_nodes);
        error
    }

    /// `GET` as `acc`, expecting 200.
    pub(crate) fn get(&self, path: &str, acc: &str) -> Value {
        self.ok(Method::GET, path, acc, "", 200)
    }
}

/// A single node named `single` with accounts admin (admin), alice and bob.
pub(crate) fn single() -> (RefNode, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), "single");
    (RefNode::new(server, "single", &["alice", "bob"]), dir)
}

fn as_len(value: &Value) -> usize {
    value.as_array().map_or_else(|| value.as_object().map_or(0, serde_json::Map::len), Vec::len)
}

fn number_of_results(value: &Value) -> usize {
    let n = value["meta"]["number_of_results"].as_u64().unwrap_or_else(|| panic!("no number_of_results: {value}"));
    usize::try_from(n).expect("fits")
}

// ---------------------------------------------------------------------------
// The test bodies.

/// `SingleNodeTest::testEndpoints`, `tests/SingleNodeTest.php:30-39`.
pub(crate) fn test_endpoints(n: &RefNode) {
    let result = n.ok(Method::OPTIONS, "", "", "", 200);
    let data = result["data"].as_object().unwrap_or_else(|| panic!("data is an object: {result}"));
    assert!(data.contains_key("permittedEndpoints"), "{result}");
    assert!(!data.contains_key("accountSummary"), "{result}");
    assert!(!data.contains_key("filterTransactions"), "{result}");
    let result = n.ok(Method::OPTIONS, "", n.u0(), "", 200);
    let data = result["data"].as_object().unwrap_or_else(|| panic!("data is an object: {result}"));
    assert!(data.contains_key("filterTransactions"), "{result}");
    assert!(data.contains_key("accountSummary"), "{result}");
    n.get("handshake", n.u0());
}

/// `SingleNodeTest::testBadLogin`, `tests/SingleNodeTest.php:41-51`.
pub(crate) fn test_bad_login(n: &RefNode) {
    // Wrong login name (sent with key `---`, as TestBase does for unknown ids).
    let error = n.err(Method::GET, "absolutepath", "noname", "", "DoesNotExistViolation");
    assert_eq!(error["type"], "account", "{error}");
    // Wrong password.
    let mut request = n.client.get(format!("{}/absolutepath", n.server.url));
    request = request.header("cc-user", n.u0()).header("cc-auth", "blah");
    let response = request.send().expect("request");
    let status = response.status();
    let body: Value = response.json().expect("JSON");
    let error = assert_error_class(&body, "PasswordViolation");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "ccnode answers PasswordViolation with 401: {body}");
    assert_eq!(error["node"], json!(n.name), "{body}");
}

/// `SingleNodeTest::testAccountNames`, `tests/SingleNodeTest.php:53-64`.
pub(crate) fn test_account_names(n: &RefNode) {
    let chars: String = n.admin().chars().take(2).collect();
    let results = n.get(&format!("account/names?acc_path={chars}"), n.u0());
    let names = results["data"].as_array().unwrap_or_else(|| panic!("a list: {results}"));
    for name in names {
        let name = name.as_str().unwrap_or_else(|| panic!("a string: {results}"));
        assert!(name.contains(&chars), "{name} does not contain {chars}: {results}");
    }
    if names.len() > 1 {
        let second = n.get(&format!("account/names?acc_path={chars}&limit=1"), n.u0());
        assert_eq!(as_len(&second["data"]), 1, "{second}");
    }
}

/// `SingleNodeTest::testWorkflows`, `tests/SingleNodeTest.php:66-70`.
pub(crate) fn test_workflows(n: &RefNode) {
    let wfs = n.get("workflows", n.u0());
    assert!(!wfs.is_null() && as_len(&wfs) > 0, "{wfs}");
}

/// The 3rd-party transaction `SingleNodeTest::test3rdParty` writes
/// (cc_server@f7fb095 `tests/SingleNodeTest.php:78-85`): payee U0, payer U1.
fn third_party_body(n: &RefNode) -> Value {
    json!({"payee": n.u0(), "payer": n.u1(), "description": "test 3rdparty", "quant": 1,
           "type": "3rdparty", "metadata": {"foo": "bar"}})
}

/// `SingleNodeTest::test3rdParty`, `tests/SingleNodeTest.php:72-108`.
pub(crate) fn test_3rd_party(n: &RefNode) {
    assert!(n.normals.len() > 1);
    let admin = n.admin();
    let obj = third_party_body(n).to_string();
    n.err(Method::POST, "transaction", "", &obj, "PermissionViolation");
    // Default 3rdParty workflow saves transactions immediately in completed state.
    let result = n.ok(Method::POST, "transaction", admin, &obj, 201);
    let transaction = &result["data"];
    assert!(!transaction["uuid"].is_null(), "{result}");
    assert_eq!(transaction["entries"][0]["payee"], json!(n.u0()), "{result}");
    assert_eq!(transaction["entries"][0]["payer"], json!(n.u1()), "{result}");
    assert_eq!(transaction["entries"][0]["description"], "test 3rdparty", "{result}");
    assert_eq!(transaction["type"], "3rdparty", "{result}");
    assert_eq!(transaction["state"], "completed", "{result}");
    // `assertEquals('1', version)` is loose: the number 1 passes.
    assert_eq!(transaction["version"].as_u64(), Some(1), "{result}");
    assert!(transaction["entries"][0]["metadata"].is_object(), "{result}");
    assert_eq!(transaction["entries"][0]["metadata"], json!({"foo": "bar"}), "{result}");

    // A transaction that doesn't exist.
    let error =
        n.err(Method::GET, "transaction/ada5b4f0-33a8-4807-90c7-3aa56ae1c741", admin, "", "DoesNotExistViolation");
    assert_eq!(error["type"], "transaction", "{error}");
    assert_eq!(error["id"], "ada5b4f0-33a8-4807-90c7-3aa56ae1c741", "{error}");
    // One that does.
    let uuid = transaction["uuid"].as_str().expect("uuid");
    n.get(&format!("transaction/{uuid}"), admin);
}

/// `SingleNodeTest::testBadTransactions`, `tests/SingleNodeTest.php:110-152`.
/// The body is mutated cumulatively, as in the reference.
pub(crate) fn test_bad_transactions(n: &RefNode) {
    let admin = n.admin();
    let mut obj = json!({"payee": n.u0(), "payer": n.u0(), "description": "test 3rdparty", "quant": 3,
                         "type": "3rdparty", "metadata": {"foo": "bar"}});
    obj["description"] = json!("Two accounts the same");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "SameAccountViolation");
    // Nonexisting account name (on a leaf it is routed trunkward and the trunk refuses it).
    obj["payee"] = json!("aaaaaaaaaaa");
    obj["description"] = json!("Invalid party");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "PathViolation");
    obj["payee"] = json!(admin);
    // Only admins can send 3rd party transactions (here: anonymous).
    n.err(Method::POST, "transaction", "", &obj.to_string(), "PermissionViolation");
    obj["description"] = json!("Too huge quantity");
    obj["quant"] = json!(9_999_999);
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "TransactionLimitViolation");
    // `if (!$cc_config->zeroPayments)`: the fixture nodes run with ccnode's
    // default, zero payments off, so the check always applies.
    obj["quant"] = json!(0);
    obj["description"] = json!("Zero quantity");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "CCViolation");
    obj["quant"] = json!(1);
    obj["description"] = json!("Unknown transaction type");
    obj["type"] = json!("zzzzzz");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "DoesNotExistViolation");
    obj["description"] = json!("Deprecated transaction type");
    obj["type"] = json!("disabled");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "DeprecatedWorkflowViolation");
    obj["type"] = json!("bill");
    obj["description"] = json!("A bill must be sent by the payee");
    n.err(Method::POST, "transaction", n.ulast(), &obj.to_string(), "WorkflowViolation");
    obj.as_object_mut().expect("object").remove("payer");
    obj["description"] = json!("Payer is missing");
    obj["type"] = json!("3rdparty");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "InvalidFieldsViolation");
}

/// `SingleNodeTest::makeValidTransaction`, `tests/SingleNodeTest.php:372-385`.
fn make_valid_transaction(n: &RefNode) {
    let (payee, payer) = (n.u0(), n.u1());
    let obj = json!({"payee": payee, "payer": payer, "description": "valid transaction", "quant": 10,
                     "type": "bill", "metadata": {"foo": "bar"}});
    let result = n.ok(Method::POST, "transaction", payee, &obj.to_string(), 200);
    let uuid = result["data"]["uuid"].as_str().unwrap_or_else(|| panic!("uuid: {result}")).to_owned();
    n.ok(Method::PATCH, &format!("transaction/{uuid}/pending"), payee, "", 201);
    n.ok(Method::PATCH, &format!("transaction/{uuid}/completed"), payer, "", 201);
}

/// What the tests before `testTransactionLifecycle` leave in the reference's
/// one shared database (PHPUnit runs the methods in order on it): the
/// completed 3rd-party transaction of `test3rdParty` (`:88`). The
/// lifecycle's pager checks (`limit=3`, `:269-270`) count on it.
pub(crate) fn seed_prior_tests(n: &RefNode) {
    n.ok(Method::POST, "transaction", n.admin(), &third_party_body(n).to_string(), 201);
}

/// `SingleNodeTest::testTransactionLifecycle`, `tests/SingleNodeTest.php:154-319`
/// (run after [`seed_prior_tests`]).
pub(crate) fn test_transaction_lifecycle(n: &RefNode) {
    let results = n.get("transactions", n.u0());
    assert_eq!(as_len(&results["data"]), number_of_results(&results), "{results}");
    if as_len(&results["data"]) < 2 {
        make_valid_transaction(n);
    }
    let admin = n.admin();
    let (payer, payee) = (n.u0(), n.u1());

    let init_summary = n.get(&format!("account/summary?acc_path={payee}"), payee)["data"][payee].clone();
    assert!(init_summary.is_object(), "summary keyed by the account id: {init_summary}");
    let description = "test bill";
    let obj = json!({"payer": payer, "description": description, "quant": 5, "type": "bill",
                     "metadata": {"foo": "bar"}});
    // 'bill' transactions must be approved, and enter pending state.
    let result = n.ok(Method::POST, "transaction", payee, &obj.to_string(), 200);
    let transaction = result["data"].clone();
    let transitions = &result["meta"]["transitions"];
    assert!(as_len(transitions) > 0, "meta.transitions not empty: {result}");
    // `assertNotEmpty('pending', ->pending)` only requires the property (notes §8.2).
    assert!(transitions.get("pending").is_some(), "meta.transitions.pending: {result}");
    assert_eq!(transaction["state"], "validated", "{result}");
    assert_eq!(transaction["version"].as_u64(), Some(0), "{result}");
    let uuid = transaction["uuid"].as_str().unwrap_or_else(|| panic!("uuid: {result}")).to_owned();
    // Only the creator (payee) can see this transaction at version 0 state 'validated'.
    // The reference sends these GETs with a (non-JSON) message as the body.
    n.err(
        Method::GET,
        &format!("transaction/{uuid}"),
        payer,
        "Payer should NOT be able to see unconfirmed credit transaction",
        "PermissionViolation",
    );
    n.err(
        Method::GET,
        &format!("transaction/{uuid}?entries=true"),
        payer,
        "Payer should NOT be able to see unconfirmed credit transaction entries",
        "PermissionViolation",
    );
    n.ok(Method::GET, &format!("transaction/{uuid}"), payee, "Payee cannot see own unvalidated transaction", 200);
    n.ok(
        Method::GET,
        &format!("transaction/{uuid}?entries=true"),
        payee,
        "Payee cannot see own unvalidated transaction entries",
        200,
    );
    n.get(&format!("transaction/{uuid}"), admin);
    n.get(&format!("transaction/{uuid}?entries=true"), admin);

    // Write the transaction.
    n.ok(Method::PATCH, &format!("transaction/{uuid}/pending"), payee, "", 201);
    let pending_summary = n.get(&format!("account/summary?acc_path={payee}"), payee)["data"][payee].clone();
    assert_eq!(
        pending_summary["pending"]["trades"].as_f64(),
        init_summary["pending"]["trades"].as_f64().map(|t| t + 1.0),
        "one more pending trade: {init_summary} then {pending_summary}"
    );
    assert_eq!(pending_summary["completed"]["balance"], init_summary["completed"]["balance"]);
    // (`if (0) { … }` at :206-250 never runs.)

    // Filtering.
    let norm_user = n.u0();
    let results = n.get("transactions", norm_user);
    let first_uuid = results["data"][0]["uuid"].as_str().unwrap_or_else(|| panic!("a first row: {results}"));
    n.get(&format!("transaction/{first_uuid}"), norm_user);
    n.get(&format!("entries/{first_uuid}"), norm_user);
    // No results.
    n.get("transactions?description=jdksksh", norm_user);
    n.get("entries?description=jdksksh", norm_user);

    let results = n.get("transactions?description=test%20bill", norm_user);
    for row in results["data"].as_array().unwrap_or_else(|| panic!("a list: {results}")) {
        let d = row["entries"][0]["description"].as_str().unwrap_or_default();
        assert!(d.contains(description), "Transaction did not filter by description: {results}");
    }

    let first_three = n.get("transactions?limit=3&offset=0", norm_user)["data"].clone();
    assert_eq!(as_len(&first_three), 3, "Pager failed to return 3 transactions: {first_three}");
    let second = n.get("transactions?limit=1&offset=1", norm_user)["data"].clone();
    assert_eq!(second, json!([first_three[1]]), "The offset/limit queryparams don't work");

    let all_entries = n.get("entries", norm_user);
    let entry_list = all_entries["data"].clone();
    assert_eq!(as_len(&entry_list), number_of_results(&all_entries), "{all_entries}");
    if as_len(&entry_list) < 3 {
        make_valid_transaction(n);
    }
    let limited = n.get("entries?limit=3&offset=0", norm_user)["data"].clone();
    assert_eq!(as_len(&limited), 3, "Pager failed to return 3 entries: {limited}");
    let limited = n.get("entries?limit=1&offset=1", norm_user)["data"].clone();
    assert_eq!(limited[0], entry_list[1], "The offset/limit queryparams didn't deliver 1,1");

    // Filter by two states (`complete` is the reference's typo: an unknown
    // state matches nothing; `check_state_filters` also tries `completed`).
    let results = n.get("transactions?states=erased,complete", norm_user);
    check_state_filter(&results, &["erased", "completed"]);

    // `involving`: the reference loops over the stale `$data` of the
    // previous request (`:306-313`, notes §8.3); port the intent: every row
    // has the payee as payee or payer.
    let results = n.get(&format!("transactions?involving={payee}"), norm_user);
    for row in results["data"].as_array().unwrap_or_else(|| panic!("a list: {results}")) {
        let e = &row["entries"][0];
        let involved = e["payee"].as_str().unwrap_or_default().contains(payee)
            || e["payer"].as_str().unwrap_or_default().contains(payee);
        assert!(involved, "Failed to filter by transactions involving {payee}: {results}");
    }
    // Erase the 'test bill' transaction and check that stats are updated. (The
    // reference erases the last row of the description filter, which on its
    // fresh database is this bill: `:264`, notes §8.3.)
    n.ok(Method::PATCH, &format!("transaction/{uuid}/erased"), admin, "", 201);
    let erased = n.get(&format!("account/summary?acc_path={payee}"), payee);
    assert_eq!(erased["data"][payee], init_summary, "{erased}");
}

/// `:289-303` of `testTransactionLifecycle`: every row in one of `states`,
/// `count == number_of_results`, `meta.transitions` present and (intent of
/// the buggy `:302`, notes §8.1) an entry in it for every row.
fn check_state_filter(results: &Value, states: &[&str]) {
    let data = results["data"].as_array().unwrap_or_else(|| panic!("a list: {results}"));
    for row in data {
        let state = row["state"].as_str().unwrap_or_default();
        assert!(states.contains(&state), "Failed to filter by 2 states: {results}");
    }
    assert_eq!(data.len(), number_of_results(results), "{results}");
    let transitions = &results["meta"]["transitions"];
    assert!(!transitions.is_null(), "no transitions on filter result: {results}");
    // ccnode writes an empty map as `{}`, the reference as `[]`: accept either.
    assert!(transitions.is_object() || transitions == &json!([]), "{results}");
    for row in data {
        let uuid = row["uuid"].as_str().expect("uuid");
        assert!(transitions.get(uuid).is_some(), "meta.transitions.{uuid} missing: {results}");
    }
}

/// `SingleNodeTest::testAccountSummaries`, `tests/SingleNodeTest.php:321-330`.
pub(crate) fn test_account_summaries(n: &RefNode) {
    let user1 = n.u0();
    n.get("account/limits", user1);
    let limits = n.get(&format!("account/limits?acc_path={user1}"), user1);
    let first = limits["data"].as_object().and_then(|m| m.values().next()).cloned();
    let first = first.unwrap_or_else(|| panic!("a limits map: {limits}"));
    assert!(first["min"].as_f64().is_some_and(|m| m < 0.0), "Minimum account limit was not less than zero: {limits}");
    assert!(
        first["max"].as_f64().is_some_and(|m| m > 0.0),
        "Maximum account limit was not greater than zero: {limits}"
    );
    n.get("account/summary", user1);
}

// ---------------------------------------------------------------------------
// The tests.

/// `SingleNodeTest::testEndpoints` (cc_server@f7fb095 `tests/SingleNodeTest.php:30-39`).
#[test]
fn options_lists_public_endpoints_to_anon_and_account_ones_to_users_and_handshake_answers() {
    let (n, _dir) = single();
    test_endpoints(&n);
}

/// `SingleNodeTest::testBadLogin` (cc_server@f7fb095 `tests/SingleNodeTest.php:41-51`).
#[test]
fn unknown_user_is_does_not_exist_account_and_wrong_key_is_password_violation() {
    let (n, _dir) = single();
    test_bad_login(&n);
}

/// `SingleNodeTest::testAccountNames` (cc_server@f7fb095 `tests/SingleNodeTest.php:53-64`).
#[test]
fn account_names_contain_the_fragment_and_honour_the_limit() {
    let (n, _dir) = single();
    test_account_names(&n);
}

/// `SingleNodeTest::testWorkflows` (cc_server@f7fb095 `tests/SingleNodeTest.php:66-70`).
#[test]
fn workflows_are_listed_to_an_account() {
    let (n, _dir) = single();
    test_workflows(&n);
}

/// `SingleNodeTest::test3rdParty` (cc_server@f7fb095 `tests/SingleNodeTest.php:72-108`).
#[test]
fn third_party_by_admin_is_completed_at_once_anon_is_refused_and_unknown_uuid_does_not_exist() {
    let (n, _dir) = single();
    test_3rd_party(&n);
}

/// `SingleNodeTest::testBadTransactions` (cc_server@f7fb095 `tests/SingleNodeTest.php:110-152`).
#[test]
fn bad_transactions_are_refused_with_the_reference_error_classes() {
    let (n, _dir) = single();
    test_bad_transactions(&n);
}

/// `SingleNodeTest::testTransactionLifecycle` (cc_server@f7fb095 `tests/SingleNodeTest.php:154-319`,
/// with `makeValidTransaction` `:372-385`).
#[test]
fn bill_is_validated_then_pending_hidden_from_the_payer_filtered_paged_and_erased() {
    let (n, _dir) = single();
    seed_prior_tests(&n);
    test_transaction_lifecycle(&n);
}

/// `SingleNodeTest::testAccountSummaries` (cc_server@f7fb095 `tests/SingleNodeTest.php:321-330`).
#[test]
fn account_limits_and_summaries_are_readable_and_limits_straddle_zero() {
    let (n, _dir) = single();
    test_account_summaries(&n);
}

/// Notes §8.4: the reference's `states=erased,complete` (`:289`) passes only
/// because the typo `complete` matches nothing. Keep that (unknown state:
/// 200, nothing) and run the same checks (`:290-303`) with `completed`, on
/// rows that exist.
#[test]
fn unknown_state_filter_matches_nothing_and_completed_filter_lists_completed_rows() {
    let (n, _dir) = single();
    seed_prior_tests(&n);
    make_valid_transaction(&n);
    let results = n.get("transactions?states=complete", n.u0());
    assert_eq!(as_len(&results["data"]), 0, "an unknown state matches nothing: {results}");
    check_state_filter(&results, &[]);
    let results = n.get("transactions?states=erased,completed", n.u0());
    assert_eq!(as_len(&results["data"]), 2, "the 3rd-party and the signed bill: {results}");
    check_state_filter(&results, &["erased", "completed"]);
    let states: BTreeSet<&str> =
        results["data"].as_array().expect("list").iter().filter_map(|r| r["state"].as_str()).collect();
    assert_eq!(states, BTreeSet::from(["completed"]));
}

/// The visibility rule behind `tests/SingleNodeTest.php:185-191` ("only the
/// creator can see this transaction at version 0 state 'validated'"), on the
/// routes that test does not request (reference `StorageTrait.php:51-54,
/// 374-378, 496-499`, notes §6b-§6c): `/entries/{uuid}` is refused to the
/// other party (the reference says DoesNotExistViolation, ccnode's issue
/// PermissionViolation: either passes), and neither list shows the row to
/// anyone but its author. `GET /transaction/{uuid}` keys `meta.transitions`
/// by uuid.
#[test]
fn a_validated_bill_is_hidden_from_the_other_party_in_entries_and_lists() {
    let (n, _dir) = single();
    let (payer, payee) = (n.u0(), n.u1());
    let obj = json!({"payer": payer, "description": "test bill", "quant": 5, "type": "bill"});
    let result = n.ok(Method::POST, "transaction", payee, &obj.to_string(), 200);
    let uuid = result["data"]["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(result["data"]["entries"][0]["payee"], json!(payee), "the author is filled in as payee: {result}");
    let (status, body) = n.send(Method::GET, &format!("entries/{uuid}"), payer, "");
    let error = assert_error_class(&body, "CCViolation");
    let class = error["class"].as_str().unwrap_or_default();
    assert!(
        ["PermissionViolation", "DoesNotExistViolation"].contains(&class) && ccnode_status_ok(class, status),
        "{status} {body}"
    );
    for list in ["transactions", "entries"] {
        let rows = n.get(list, payer);
        assert!(!rows["data"].to_string().contains(&uuid), "{list} shows {uuid} to {payer}: {rows}");
        let rows = n.get(list, payee);
        assert!(rows["data"].to_string().contains(&uuid), "{list} hides {uuid} from its author: {rows}");
    }
    let got = n.get(&format!("transaction/{uuid}"), payee);
    assert!(got["meta"]["transitions"][&uuid].get("pending").is_some(), "{got}");
}
