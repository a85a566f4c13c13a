//! The web app (issue 12) in a real headless Chromium, driven over the
//! DevTools protocol (`cdp.rs`), against a real `ccnode serve`: a member signs
//! in and pays, a bill between two people in their own browser contexts, a
//! refused payment in words, an operator's account screens, keyboard-only
//! use; plus the app's headers and the routes it must leave as they were.
//! A failing scenario saves a screenshot of each of its tabs (see
//! `cdp::screenshot_dir`).

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cdp::{Page, Scenario};
use crate::node::{Server, ADMIN_KEY};

fn node() -> (tempfile::TempDir, Server) {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "town");
    server.open("alice", -50, 100);
    server.open("bob", -100, 100);
    (data, server)
}

/// Opens the node's address as a browser would and signs in.
fn sign_in(s: &mut Scenario, page: &Page, server: &Server, user: &str, key: &str) {
    s.goto(page, &format!("{}/", server.url));
    s.wait(page, "document.querySelector('#signin')", "the sign-in form (GET / redirects to /ui/)");
    assert_eq!(s.eval(page, "location.pathname"), json!("/ui/"));
    s.fill(page, "#user", user);
    s.fill(page, "#key", key);
    s.click(page, "#signin-submit");
    s.wait(page, "document.querySelector('#balance')", "the home screen after signing in");
}

fn balance_of(server: &Server, user: &str) -> Value {
    let (status, value) = server.call(Method::GET, "/account/summary", user, None);
    assert_eq!(status, StatusCode::OK, "{value}");
    value["data"][user]["completed"]["balance"].clone()
}

fn no_csp_violations(s: &mut Scenario, page: &Page) {
    assert_eq!(s.eval(page, "window.__csp || []"), json!([]), "Content-Security-Policy violations");
    assert!(s.page_errors(page).is_empty(), "errors in the page: {:?}", s.page_errors(page));
}

/// Fills the pay form and sends it.
fn send(s: &mut Scenario, page: &Page, workflow: &str, partner: &str, quant: &str, description: &str) {
    s.goto_hash(page, "#/pay");
    s.wait(page, "document.querySelector('#pay-form')", "the pay form");
    s.click(page, &format!("#wf-{workflow}"));
    s.fill(page, "#partner", partner);
    s.fill(page, "#amount", quant);
    s.fill(page, "#description", description);
    s.click(page, "#pay-submit");
}

#[test]
fn a_member_signs_in_pays_and_sees_the_balance_and_the_chart_change() {
    let (_data, server) = node();
    let mut s = Scenario::new("member-pays");
    let alice = s.person("alice");
    sign_in(&mut s, &alice, &server, "alice", "alice-key");
    assert_eq!(s.text(&alice, "#balance"), "0");
    assert_eq!(s.eval(&alice, "document.querySelectorAll('#chart path.line').length"), json!(0));
    assert_eq!(s.eval(&alice, "sessionStorage.getItem('ccnode.key')"), json!("alice-key"));
    assert_eq!(
        s.eval(&alice, "localStorage.length + document.cookie.length"),
        json!(0),
        "the key is only in sessionStorage"
    );
    let mark_before = s.eval(&alice, "document.querySelector('#limit-mark').style.left");

    // Payee completion from /account/names.
    s.goto_hash(&alice, "#/pay");
    s.wait(&alice, "document.querySelector('#pay-form')", "the pay form");
    s.fill(&alice, "#partner", "bo");
    s.wait(&alice, "[...document.querySelectorAll('#names-list option')].some(o => o.value === 'bob')", "bob offered");

    send(&mut s, &alice, "pay", "bob", "30", "bread");
    s.wait(&alice, "location.hash.startsWith('#/tx/') && document.querySelector('#tx-state')", "the transaction page");
    assert!(s.text(&alice, "#tx-state").contains("completed"), "{}", s.text(&alice, "#tx-state"));
    assert_eq!(balance_of(&server, "alice"), json!(-30));

    s.goto_hash(&alice, "#/home");
    s.wait(
        &alice,
        "document.querySelector('#balance') && document.querySelector('#balance').innerText === '\u{2212}30'",
        "the new balance",
    );
    s.wait(&alice, "document.querySelectorAll('#chart path.line').length === 1", "a line in the chart");
    let points = s.eval(&alice, "Number(document.querySelector('#chart path.line').dataset.points)");
    assert!(points.as_u64().unwrap_or(0) >= 2, "chart points {points}");
    let mark_after = s.eval(&alice, "document.querySelector('#limit-mark').style.left");
    assert_ne!(mark_before, mark_after, "the bar's mark moved");
    assert!(s.text(&alice, "#headroom").contains("spend 20 more"), "{}", s.text(&alice, "#headroom"));

    // Refused: the limit in words, and nothing written.
    send(&mut s, &alice, "pay", "bob", "100", "too much");
    s.wait(&alice, "document.querySelector('#pay-result .error')", "the refusal");
    let words = s.text(&alice, "#pay-result .error");
    assert!(words.contains("below your limit of \u{2212}50"), "{words}");
    assert!(words.contains("\u{2212}130"), "{words}");
    assert_eq!(balance_of(&server, "alice"), json!(-30));

    // Transactions, filters, the statement as CSV.
    s.goto_hash(&alice, "#/transactions");
    s.wait(&alice, "document.querySelectorAll('#tx-table tbody tr').length === 1", "one transaction listed");
    s.fill(&alice, "#f-text", "nothing like this");
    s.click(&alice, "#f-apply");
    s.wait(&alice, "document.querySelector('#tx-count').innerText === '0 transactions'", "the filter applied");
    let csv = s.eval(
        &alice,
        "fetch('/account/statement', {headers: {'cc-user': sessionStorage.getItem('ccnode.user'), 'cc-auth': sessionStorage.getItem('ccnode.key')}}).then(r => r.text())",
    );
    let csv = csv.as_str().expect("text");
    assert!(csv.starts_with("written,uuid,state,type,payer,payee,description,amount,balance\r\n"), "{csv}");
    assert!(csv.contains(",completed,pay,alice,bob,bread,-30,-30\r\n"), "{csv}");
    s.click(&alice, "#statement-csv");
    s.wait(
        &alice,
        "document.querySelector('#notice').innerText.includes('Downloaded statement-alice.csv')",
        "the download",
    );

    no_csp_violations(&mut s, &alice);
    s.click(&alice, "#logout");
    s.wait(&alice, "document.querySelector('#signin')", "the sign-in form after signing out");
    assert_eq!(s.eval(&alice, "sessionStorage.length"), json!(0), "signing out forgets the key");
}

#[test]
fn a_bill_requested_by_one_member_is_signed_by_the_other_in_their_own_browser() {
    let (_data, server) = node();
    let mut s = Scenario::new("bill");
    let bob = s.person("bob");
    let alice = s.person("alice");
    sign_in(&mut s, &bob, &server, "bob", "bob-key");
    sign_in(&mut s, &alice, &server, "alice", "alice-key");
    assert_eq!(s.eval(&bob, "sessionStorage.getItem('ccnode.user')"), json!("bob"), "separate contexts");

    send(&mut s, &bob, "bill", "alice", "12", "eggs");
    s.wait(&bob, "document.querySelector('#to-pending')", "the confirm button of a new bill");
    // Exactly the transitions meta.transitions offers.
    let offered = s.eval(&bob, "[...document.querySelectorAll('#tx-actions button')].map(b => b.dataset.state).sort()");
    assert_eq!(offered, json!(["null", "pending"]));
    s.click(&bob, "#to-pending");
    s.wait(&bob, "document.querySelector('#tx-state').innerText.includes('pending')", "the bill pending");
    assert!(
        s.eval(&bob, "document.querySelector('#to-completed') === null") == json!(true),
        "bob cannot sign his own bill"
    );

    // Alice sees it first, waiting for her signature, and signs it.
    s.goto_hash(&alice, "#/home");
    s.wait(
        &alice,
        "document.querySelector('#waiting-list') && document.querySelector('#waiting-list').innerText.includes('eggs')",
        "the bill waiting for alice",
    );
    assert!(s.text(&alice, "#h-waiting").contains("(1)"));
    s.click(&alice, "#waiting-list a");
    s.wait(&alice, "document.querySelector('#to-completed')", "the sign button");
    let offered =
        s.eval(&alice, "[...document.querySelectorAll('#tx-actions button')].map(b => b.dataset.state).sort()");
    assert_eq!(offered, json!(["completed"]));
    assert_eq!(s.text(&alice, "#to-completed"), "Sign");
    s.click(&alice, "#to-completed");
    s.wait(&alice, "document.querySelector('#tx-state').innerText.includes('completed')", "the bill completed");
    assert_eq!(balance_of(&server, "alice"), json!(-12));
    assert_eq!(balance_of(&server, "bob"), json!(12));

    s.goto_hash(&bob, "#/home");
    s.wait(
        &bob,
        "document.querySelector('#balance') && document.querySelector('#balance').innerText === '12'",
        "bob's balance",
    );
    assert!(s.text(&bob, "#waiting").contains("Nothing waits for you"));
    no_csp_violations(&mut s, &alice);
    no_csp_violations(&mut s, &bob);
}

#[test]
fn an_operator_creates_an_account_changes_its_limits_blocks_it_and_resets_its_key() {
    let (_data, server) = node();
    let mut s = Scenario::new("operator");
    let admin = s.person("admin");
    sign_in(&mut s, &admin, &server, "admin", ADMIN_KEY);
    assert!(s.text(&admin, "#nav").contains("Accounts"), "operator screens offered");

    s.goto_hash(&admin, "#/admin/accounts");
    s.wait(&admin, "document.querySelector('#new-account')", "the accounts screen");
    s.fill(&admin, "#new-id", "carol");
    s.fill(&admin, "#new-key", "carol-key");
    s.fill(&admin, "#new-min", "-20");
    s.fill(&admin, "#new-max", "40");
    s.click(&admin, "#new-submit");
    s.wait(&admin, "document.querySelector('tr[data-account=carol]')", "carol listed");
    assert!(s.text(&admin, "tr[data-account=carol]").contains("\u{2212}20"));
    // A bad one is refused in words.
    s.fill(&admin, "#new-id", "dave");
    s.fill(&admin, "#new-key", "dave-key");
    s.fill(&admin, "#new-min", "5");
    s.click(&admin, "#new-submit");
    s.wait(&admin, "document.querySelector('#new-result .error')", "the refusal");
    assert!(s.text(&admin, "#new-result .error").contains("min (must be <= 0)"), "{}", s.text(&admin, "#new-result"));

    s.click(&admin, "tr[data-account=carol] a");
    s.wait(&admin, "document.querySelector('#edit-limits')", "carol's screen");
    s.fill(&admin, "#edit-min", "-30");
    s.fill(&admin, "#edit-max", "80");
    s.click(&admin, "#edit-limits-submit");
    s.wait(&admin, "document.querySelector('#edit-limits-now').innerText === '\u{2212}30 to 80'", "the new limits");
    let (status, limits) = server.call(Method::GET, "/account/limits", "carol", None);
    assert_eq!((status, &limits["data"]["carol"]), (StatusCode::OK, &json!({"min": -30, "max": 80})));

    s.click(&admin, "#edit-block");
    s.wait(&admin, "document.querySelector('#edit-status').innerText === 'blocked'", "carol blocked");
    s.click(&admin, "#edit-block");
    s.wait(&admin, "document.querySelector('#edit-status').innerText === 'active'", "carol active again");
    // The operator downloads carol's statement (the node answers it as CSV).
    s.click(&admin, "#edit-statement-csv");
    s.wait(
        &admin,
        "document.querySelector('#notice').innerText.includes('Downloaded statement-carol.csv')",
        "carol's statement",
    );
    s.fill(&admin, "#edit-key", "carol-new-key");
    s.click(&admin, "#edit-key-submit");
    s.wait(
        &admin,
        "document.querySelector('#notice').innerText.includes('key of carol was replaced')",
        "the key reset",
    );
    let (status, _) = server.request(Method::GET, "/account/summary", Some(("carol", "carol-new-key")), None);
    assert_eq!(status, StatusCode::OK);

    // Carol signs in with the new key in her own context.
    let carol = s.person("carol");
    sign_in(&mut s, &carol, &server, "carol", "carol-new-key");
    assert!(!s.text(&carol, "#nav").contains("Accounts"), "no operator screens for a member");

    for (hash, ready) in [
        ("#/admin/health", "document.querySelector('#health-head')"),
        ("#/admin/events", "document.querySelectorAll('#events tbody tr').length > 0"),
        ("#/admin/nodes", "document.querySelector('#nodes-none')"),
    ] {
        s.goto_hash(&admin, hash);
        s.wait(&admin, ready, hash);
    }
    s.goto_hash(&admin, "#/admin/health");
    s.wait(&admin, "document.querySelector('#health-head')", "health");
    assert_eq!(s.text(&admin, "#health-writing"), "yes");
    assert_eq!(s.text(&admin, "#health-accounts"), "4");
    no_csp_violations(&mut s, &admin);
    no_csp_violations(&mut s, &carol);
}

/// Marks every element that takes an action on the screen and returns how
/// many; radio buttons of one group count once (Tab reaches the group).
const MARK_ACTIONS: &str = "(() => {
  const all = [...document.querySelectorAll('a[href], button, input, select, textarea')]
    .filter(e => !e.disabled && e.getClientRects().length > 0);
  all.forEach((e, i) => { e.dataset.k = e.type === 'radio' ? 'radio:' + e.name : 'e' + i; });
  return [...new Set(all.map(e => e.dataset.k))];
})()";

/// Presses Tab until focus has been everywhere once; what was not reached.
fn unreachable_by_tab(s: &mut Scenario, page: &Page) -> Vec<String> {
    let wanted: Vec<String> = s
        .eval(page, MARK_ACTIONS)
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..wanted.len() + 8 {
        s.press(page, "Tab");
        if let Some(k) = s.eval(page, "document.activeElement && document.activeElement.dataset.k").as_str() {
            reached.insert(k.to_owned());
        }
    }
    let describe = |k: &String| -> String {
        let expr = format!("(document.querySelector('[data-k=\"{k}\"]') || {{}}).outerHTML");
        s.eval(page, &expr).as_str().unwrap_or("?").chars().take(120).collect()
    };
    wanted.iter().filter(|k| !reached.contains(*k)).map(describe).collect()
}

#[test]
fn keyboard_alone_reaches_every_action_and_can_sign_in_and_pay() {
    let (_data, server) = node();
    let mut s = Scenario::new("keyboard");
    let alice = s.person("alice");
    s.goto(&alice, &format!("{}/ui/", server.url));
    s.wait(&alice, "document.querySelector('#signin')", "the sign-in form");
    assert_eq!(unreachable_by_tab(&mut s, &alice), Vec::<String>::new(), "sign in");

    // Sign in with the keyboard only: focus moves by Tab, text is typed, Enter submits.
    s.eval(&alice, "document.activeElement.blur(); window.scrollTo(0, 0); true");
    s.wait(&alice, "document.querySelector('#signin')", "still the form");
    let mut guard = 0;
    while s.eval(&alice, "document.activeElement.id") != json!("user") {
        s.press(&alice, "Tab");
        guard += 1;
        assert!(guard < 20, "Tab never reached the account field");
    }
    s.type_text(&alice, "alice");
    s.press(&alice, "Tab");
    assert_eq!(s.eval(&alice, "document.activeElement.id"), json!("key"));
    s.type_text(&alice, "alice-key");
    s.press(&alice, "Enter");
    s.wait(&alice, "document.querySelector('#balance')", "home after a keyboard sign-in");
    // The skip link moves focus to the content and stays on the screen.
    let mut guard = 0;
    while s.eval(&alice, "document.activeElement.className") != json!("skip") {
        s.press(&alice, "Tab");
        guard += 1;
        assert!(guard < 60, "Tab never reached the skip link");
    }
    s.press(&alice, "Enter");
    s.wait(&alice, "document.activeElement.id === 'main'", "focus on the content");
    assert_eq!(s.eval(&alice, "location.hash"), json!("#/home"));
    assert!(s.eval(&alice, "!!document.querySelector('#balance')") == json!(true), "still home");

    // Something waiting for alice's signature, so that its link is on the screens too.
    let (status, bill) = server.call(
        Method::POST,
        "/transaction",
        "bob",
        Some(json!({"payer": "alice", "payee": "bob", "quant": 4, "description": "tea", "type": "bill"})),
    );
    assert_eq!(status, StatusCode::OK, "{bill}");
    let uuid = bill["data"]["uuid"].as_str().expect("uuid").to_owned();
    let (status, _) = server.call(Method::PATCH, &format!("/transaction/{uuid}/pending"), "bob", None);
    assert_eq!(status, StatusCode::CREATED);
    for (hash, ready) in [
        ("#/home", "document.querySelector('#balance')"),
        ("#/pay", "document.querySelector('#pay-form')"),
        ("#/transactions", "document.querySelector('#tx-table')"),
        (&format!("#/tx/{uuid}"), "document.querySelector('#to-completed')"),
    ] {
        s.goto_hash(&alice, hash);
        s.wait(&alice, ready, hash);
        assert_eq!(unreachable_by_tab(&mut s, &alice), Vec::<String>::new(), "{hash}");
    }

    // Pay by keyboard: focus the amount field by Tab, type, Enter submits the form.
    s.goto_hash(&alice, "#/pay");
    s.wait(&alice, "document.querySelector('#pay-form')", "the pay form");
    for (id, text) in [("partner", "bob"), ("amount", "7"), ("description", "by keyboard")] {
        let mut guard = 0;
        while s.eval(&alice, "document.activeElement.id") != json!(id) {
            s.press(&alice, "Tab");
            guard += 1;
            assert!(guard < 40, "Tab never reached #{id}");
        }
        s.type_text(&alice, text);
    }
    assert_eq!(s.eval(&alice, "document.querySelector('input[name=workflow]:checked').value"), json!("pay"));
    s.press(&alice, "Enter");
    s.wait(&alice, "document.querySelector('#tx-state')", "the payment written");
    assert_eq!(balance_of(&server, "alice"), json!(-7));
    assert_eq!(unreachable_by_tab(&mut s, &alice), Vec::<String>::new(), "a transaction");

    // The operator's screens too.
    let admin = s.person("admin");
    sign_in(&mut s, &admin, &server, "admin", ADMIN_KEY);
    for (hash, ready) in [
        ("#/admin/accounts", "document.querySelector('#new-account')"),
        ("#/admin/account/alice", "document.querySelector('#edit-limits')"),
        ("#/admin/health", "document.querySelector('#health-head')"),
        ("#/admin/warnings", "document.querySelector('#warnings-none')"),
        ("#/admin/events", "document.querySelector('#events')"),
        ("#/admin/nodes", "document.querySelector('#nodes-none')"),
    ] {
        s.goto_hash(&admin, hash);
        s.wait(&admin, ready, hash);
        assert_eq!(unreachable_by_tab(&mut s, &admin), Vec::<String>::new(), "{hash}");
    }
    // Enter on a focused button acts: Sign out.
    let mut guard = 0;
    while s.eval(&admin, "document.activeElement.id") != json!("logout") {
        s.press(&admin, "Tab");
        guard += 1;
        assert!(guard < 60, "Tab never reached Sign out");
    }
    s.press(&admin, "Enter");
    s.wait(&admin, "document.querySelector('#signin')", "signed out by keyboard");
}

#[test]
fn the_app_is_served_with_a_strict_policy_and_the_api_answers_as_before() {
    let (_data, server) = node();
    let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let get = |path: &str, accept: Option<&str>| {
        let mut r = client.get(format!("{}{path}", server.url));
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r.send().expect("request")
    };
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let root = get("/", Some(browser));
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()["location"], "/ui/");
    // Not a browser: GET / is still 405 CCOtherViolation; OPTIONS / is still permittedEndpoints.
    let api = get("/", Some("application/json"));
    assert_eq!(api.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = api.json().expect("JSON");
    assert_eq!(body["errors"][0]["class"], "CCOtherViolation");
    let (status, endpoints) = server.request(Method::OPTIONS, "/", Some(("alice", "alice-key")), None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoints["data"]["newTransaction"], json!(["POST", "/transaction"]));

    for (path, media) in [("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let r = get(path, Some(browser));
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(h("content-type").starts_with(media), "{path}: {}", h("content-type"));
        let csp = h("content-security-policy");
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("referrer-policy"), "no-referrer");
    }
    let missing = get("/ui/nothing.js", None);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().expect("JSON");
    assert_eq!(body["errors"][0]["class"], "DoesNotExistViolation");

    // The CSV routes refuse in Credit Commons error JSON.
    for (path, user, status, class) in [
        ("/admin/export/accounts", "alice", StatusCode::FORBIDDEN, "PermissionViolation"),
        ("/admin/export/transactions", "alice", StatusCode::FORBIDDEN, "PermissionViolation"),
        ("/account/statement?acc_path=bob", "alice", StatusCode::FORBIDDEN, "PermissionViolation"),
        ("/account/statement?at=1", "alice", StatusCode::BAD_REQUEST, "InvalidFieldsViolation"),
        ("/account/statement?acc_path=nobody", "admin", StatusCode::NOT_FOUND, "DoesNotExistViolation"),
    ] {
        let (got, body) = server.call(Method::GET, path, user, None);
        assert_eq!((got, body["errors"][0]["class"].as_str()), (status, Some(class)), "{path}: {body}");
    }
    server.call(
        Method::POST,
        "/transaction",
        "alice",
        Some(json!({"payer": "alice", "payee": "bob", "quant": 2.5, "description": "=cmd|' /C calc'!A0, \"quoted\"", "type": "pay"})),
    );
    let csv = |path: &str| {
        let r = client
            .get(format!("{}{path}", server.url))
            .header("cc-user", "admin")
            .header("cc-auth", ADMIN_KEY)
            .send()
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap_or("").starts_with("text/csv"));
        assert!(r.headers()["content-disposition"].to_str().unwrap_or("").starts_with("attachment"));
        r.text().expect("text")
    };
    let accounts = csv("/admin/export/accounts");
    assert!(
        accounts.starts_with("id,kind,status,min,max,balance,pending_balance,trades,gross_in,gross_out,partners\r\n")
    );
    assert!(accounts.contains("\r\nalice,member,active,-50,100,-2.5,-2.5,1,0,2.5,1\r\n"), "{accounts}");
    assert!(accounts.contains("\r\nadmin,admin,active,"), "{accounts}");
    let transactions = csv("/admin/export/transactions");
    let mut lines = transactions.split("\r\n");
    assert_eq!(lines.next(), Some("written,uuid,version,state,type,author,entry,payer,payee,quant,description"));
    let row = lines.next().expect("a row");
    assert!(row.ends_with(",1,completed,pay,alice,0,alice,bob,2.5,\"'=cmd|' /C calc'!A0, \"\"quoted\"\"\""), "{row}");
    let statement = csv("/account/statement?acc_path=bob");
    assert!(statement.contains(",completed,pay,alice,bob,"), "{statement}");
}

#[test]
fn the_federation_page_of_a_three_node_tree_shows_every_link_agreed() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let trunk = Server::start(dirs[0].path(), "trunk");
    let left = Server::start(dirs[1].path(), "left");
    let right = Server::start(dirs[2].path(), "right");
    crate::federation::graft(&trunk, "trunk", &left, "left", "1", -1000);
    crate::federation::graft(&trunk, "trunk", &right, "right", "1", -1000);
    left.open("alice", -100, 100);
    right.open("bob", -100, 100);

    let mut s = Scenario::new("federation");
    let alice = s.person("alice");
    sign_in(&mut s, &alice, &left, "alice", "alice-key");
    // Completion across the tree, then a payment to the other branch.
    s.goto_hash(&alice, "#/pay");
    s.wait(&alice, "document.querySelector('#pay-form')", "the pay form");
    s.fill(&alice, "#partner", "b");
    s.wait(
        &alice,
        "[...document.querySelectorAll('#names-list option')].some(o => o.value.endsWith('bob'))",
        "bob offered from another node",
    );
    send(&mut s, &alice, "pay", "right/bob", "9", "across");
    s.wait(
        &alice,
        "document.querySelector('#tx-state') && document.querySelector('#tx-state').innerText.includes('completed')",
        "the payment across the tree",
    );
    assert_eq!(balance_of(&right, "bob"), json!(9));

    let admin = s.person("trunk-admin");
    sign_in(&mut s, &admin, &trunk, "admin", ADMIN_KEY);
    s.goto_hash(&admin, "#/admin/nodes");
    s.wait(&admin, "document.querySelectorAll('#nodes tbody tr').length === 2", "both children listed");
    s.wait(
        &admin,
        "[...document.querySelectorAll('.link-state')].every(c => c.dataset.verdict === 'in_sync')",
        "every link agreed",
    );
    for node in ["left", "right"] {
        assert_eq!(s.text(&admin, &format!("#link-{node}")), "agreed");
    }
    let branch = s.person("left-admin");
    sign_in(&mut s, &branch, &left, "admin", ADMIN_KEY);
    s.goto_hash(&branch, "#/admin/nodes");
    s.wait(
        &branch,
        "document.querySelector('#link-trunk') && document.querySelector('#link-trunk').dataset.verdict === 'in_sync'",
        "the trunkward link agreed",
    );
    assert!(s.text(&branch, "tr[data-node=trunk]").contains("trunkward"));
    no_csp_violations(&mut s, &admin);
}

/// The demo community as a newcomer sees it. With `CCNODE_UI_SCREENSHOTS=DIR`
/// it also saves the README's pictures there (`member-home.png`,
/// `operator-accounts.png`): `CCNODE_UI_SCREENSHOTS=docs/screenshots cargo
/// test --test e2e ui::the_demo`.
#[test]
fn the_demo_community_in_the_browser() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::spawn(&["demo", "--data", crate::arg(data.path()), "--listen", "127.0.0.1:0"]);
    let mut s = Scenario::new("demo");
    let alice = s.person("alice");
    sign_in(&mut s, &alice, &server, "alice", "alice");
    s.wait(&alice, "document.querySelector('#chart path.line')", "alice's chart");
    let points = s.eval(&alice, "Number(document.querySelector('#chart path.line').dataset.points)");
    assert!(points.as_u64().unwrap_or(0) > 20, "90 days of trade drawn: {points} points");
    let (status, summary) = server.request(Method::GET, "/account/summary", Some(("alice", "alice")), None);
    assert_eq!(status, StatusCode::OK, "{summary}");
    let balance = &summary["data"]["alice"]["completed"]["balance"];
    assert_eq!(s.text(&alice, "#balance"), balance.to_string().replace('-', "\u{2212}"));
    s.goto_hash(&alice, "#/transactions");
    s.wait(&alice, "document.querySelectorAll('#tx-table tbody tr').length === 10", "a page of ten");
    s.click(&alice, "#next");
    s.wait(
        &alice,
        "document.querySelector('#page-of') && document.querySelector('#page-of').innerText.startsWith('Page 2 of')",
        "page 2",
    );
    s.click(&alice, "#prev");
    s.wait(
        &alice,
        "document.querySelector('#page-of') && document.querySelector('#page-of').innerText.startsWith('Page 1 of')",
        "page 1 again",
    );

    let admin = s.person("admin");
    sign_in(&mut s, &admin, &server, "admin", ADMIN_KEY);
    s.goto_hash(&admin, "#/admin/accounts");
    s.wait(&admin, "document.querySelectorAll('#accounts tbody tr').length === 9", "nine accounts");
    if let Some(dir) = std::env::var_os("CCNODE_UI_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        s.goto_hash(&alice, "#/home");
        s.wait(&alice, "document.querySelector('#chart path.line')", "alice's home");
        s.eval(&alice, "document.activeElement.blur(); true");
        s.eval(&admin, "document.activeElement.blur(); true");
        s.screenshot(&alice, &dir.join("member-home.png")).expect("screenshot");
        s.screenshot(&admin, &dir.join("operator-accounts.png")).expect("screenshot");
    }
    no_csp_violations(&mut s, &alice);
    server.stop();
}

/// Issue 12, item 6: a page from another origin calls the node in a real
/// browser (Chromium sends the preflights); `--cors-origin` lets only the
/// listed origins in.
#[test]
fn pages_from_allowed_origins_call_the_node_through_cors_and_others_are_refused() {
    // The other origin: a second node's /openapi.json (a document without a policy).
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = Server::start(other_dir.path(), "other");
    let allowed = other.url.clone();
    let port = allowed.rsplit(':').next().expect("port").to_owned();
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::spawn(&[
        "serve",
        "--data",
        crate::arg(data.path()),
        "--listen",
        "127.0.0.1:0",
        "--name",
        "town",
        "--cors-origin",
        &allowed,
    ]);
    server.open("alice", -50, 100);
    server.open("bob", -100, 100);

    // Preflights for POST and PATCH, as curl sees them.
    let client = Client::new();
    for (method, path) in
        [("POST", "/transaction"), ("PATCH", "/transaction/00000000-0000-4000-8000-000000000000/completed")]
    {
        let preflight = |origin: &str| {
            client
                .request(Method::OPTIONS, format!("{}{path}", server.url))
                .header("origin", origin)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", "cc-auth,cc-user,content-type")
                .send()
                .expect("preflight")
        };
        let ok = preflight(&allowed);
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        assert_eq!(ok.headers()["access-control-allow-origin"], allowed.as_str());
        assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap_or("").contains(method));
        assert!(ok.headers()["vary"].to_str().unwrap_or("").contains("origin"));
        let refused = preflight("https://evil.example");
        assert!(
            refused.headers().get("access-control-allow-origin").is_none(),
            "{method}: no allowance for another origin"
        );
    }

    let mut s = Scenario::new("cors");
    let wallet = s.person("wallet");
    let fetch_from = |s: &mut Scenario, page: &Page, origin_url: &str| {
        s.goto(page, &format!("{origin_url}/openapi.json"));
        let loaded = format!(
            "document.readyState === 'complete' && location.origin === {} && document.body.innerText.includes('\"openapi\"')",
            json!(origin_url)
        );
        s.wait(page, &loaded, "the other origin's page");
        let script = format!(
            "fetch({url}, {{method: 'POST', headers: {{'cc-user': 'alice', 'cc-auth': 'alice-key', 'content-type': 'application/json'}}, body: JSON.stringify({{payer: 'alice', payee: 'bob', quant: 3, description: 'from a wallet', type: 'pay'}})}}).then(r => r.status).catch(e => 'refused: ' + e.name)",
            url = json!(format!("{}/transaction", server.url))
        );
        s.eval(page, &script)
    };
    assert_eq!(fetch_from(&mut s, &wallet, &allowed), json!(201), "the listed origin pays");
    assert_eq!(balance_of(&server, "alice"), json!(-3));
    // The same page under another name is another origin: the browser refuses the call.
    let unlisted = format!("http://localhost:{port}");
    assert_eq!(fetch_from(&mut s, &wallet, &unlisted), json!("refused: TypeError"));
    assert_eq!(balance_of(&server, "alice"), json!(-3), "the preflight failed, so nothing was sent");

    // A bad origin is refused at start.
    let out = crate::ccnode(&["serve", "--data", crate::arg(data.path()), "--cors-origin", "wallet.example"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an origin"));
}

/// Issue 12, item 5: a soft limit set by an operator; crossing it is allowed,
/// journaled, shown to the member and listed for operators, across a restart.
#[test]
fn a_soft_limit_warns_the_member_and_the_operators_without_refusing_the_payment() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "town");
    server.open("alice", -50, 100);
    server.open("bob", -100, 100);
    let mut s = Scenario::new("soft-limits");
    let admin = s.person("admin");
    sign_in(&mut s, &admin, &server, "admin", ADMIN_KEY);
    s.goto_hash(&admin, "#/admin/account/alice");
    s.wait(&admin, "document.querySelector('#edit-warn')", "alice's screen");
    s.fill(&admin, "#edit-warn-min", "-20");
    s.click(&admin, "#edit-warn-submit");
    s.wait(&admin, "document.querySelector('#edit-warn-now') && document.querySelector('#edit-warn-now').innerText === '\u{2212}20 and none'", "the warning level saved");
    // A bad one is refused in words.
    s.fill(&admin, "#edit-warn-min", "5");
    s.click(&admin, "#edit-warn-submit");
    s.wait(&admin, "document.querySelector('#edit-result .error')", "the refusal");
    assert!(
        s.text(&admin, "#edit-result .error").contains("warn_min (must be <= 0)"),
        "{}",
        s.text(&admin, "#edit-result")
    );

    let alice = s.person("alice");
    sign_in(&mut s, &alice, &server, "alice", "alice-key");
    assert!(s.text(&alice, "#warn-note").contains("goes below \u{2212}20"), "{}", s.text(&alice, "#warn-note"));
    send(&mut s, &alice, "pay", "bob", "30", "bike");
    s.wait(
        &alice,
        "document.querySelector('#tx-state') && document.querySelector('#tx-state').innerText.includes('completed')",
        "the payment, allowed",
    );
    s.goto_hash(&alice, "#/home");
    s.wait(&alice, "document.querySelector('#warn-note.warning')", "the warning on alice's home");
    let note = s.text(&alice, "#warn-note");
    assert!(note.contains("below your community's warning level of \u{2212}20"), "{note}");
    assert!(note.contains("up to your limit of \u{2212}50"), "{note}");

    // A second payment beyond it is no new crossing.
    let pay = json!({"payer": "alice", "payee": "bob", "quant": 5, "description": "tea", "type": "pay"});
    let (status, _) = server.call(Method::POST, "/transaction", "alice", Some(pay));
    assert_eq!(status, StatusCode::CREATED);
    s.goto_hash(&admin, "#/admin/warnings");
    s.wait(&admin, "document.querySelectorAll('#warnings tbody tr').length === 1", "one crossing listed");
    let row = s.text(&admin, "#warnings tbody tr");
    assert!(row.contains("alice") && row.contains("below \u{2212}20") && row.contains("\u{2212}30"), "{row}");
    no_csp_violations(&mut s, &admin);
    no_csp_violations(&mut s, &alice);
    drop(s);

    // Journaled: the event is in the feed, and it all holds across a restart.
    let (status, feed) = server.call(Method::GET, "/replay/events?after=0&limit=1000", "admin", None);
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<&str> =
        feed["data"].as_array().expect("list").iter().filter_map(|r| r["event"]["type"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "WarnLimitCrossed").count(), 1, "{kinds:?}");
    server.stop();
    let server = Server::start(data.path(), "town");
    let (status, mine) = server.call(Method::GET, "/account/warnings", "alice", None);
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["data"]["warn_min"], json!(-20));
    assert_eq!(mine["data"]["beyond"], "below");
    assert_eq!(mine["data"]["crossings"][0]["balance"], json!(-30));
    let (status, all) = server.call(Method::GET, "/admin/warnings", "admin", None);
    assert_eq!((status, all["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{all}");
    server.stop();
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(["verify", "--data", crate::arg(data.path())])
        .output()
        .expect("verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
