//! The reference cc-server's `tests/MultiNodeTest.php`, ported as black-box
//! HTTP tests against four real `ccnode` processes.
//!
//! Source: `AdonayTeshome/cc_server@f7fb0952a70b7e5431d20213c7452efdd0cf41fd`
//! (`tests/MultiNodeTest.php`, which `extends SingleNodeTest`; harness
//! `tests/TestBase.php`). As in the reference, the node under test is the
//! leaf and every inherited `SingleNodeTest` method runs on it too (the
//! bodies live in `reference_single`).
//!
//! The reference's tree, built explicitly (rate = the child's conversion
//! rate: trunkward amount = local amount × rate):
//!
//! ```text
//!              cctrunk (admin, alice)
//!        ×2 /                 \ ×1
//!   ccbranch1 (admin, dave, erin)   ccbranch2 (admin, carol)
//!        ×1 |
//!   ccleaf (admin, alice, bob)   <- the node under test
//! ```
//!
//! Every account's key is `123`. Errors are checked as in `reference_single`
//! (class or subclass, plus ccnode's 4xx/5xx status and `errors[0].node`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::federation::graft;
use crate::node::Server;
use crate::reference_single::{self as single, RefNode};

/// The four nodes. The leaf accepts errors relayed from any node of the tree.
struct RefTree {
    trunk: RefNode,
    branch1: RefNode,
    branch2: RefNode,
    leaf: RefNode,
    _dirs: Vec<tempfile::TempDir>,
}

fn tree() -> RefTree {
    let mut dirs = Vec::new();
    let mut start = |name: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(dir.path(), name);
        dirs.push(dir);
        server
    };
    let (trunk, branch1, branch2, leaf) = (start("cctrunk"), start("ccbranch1"), start("ccbranch2"), start("ccleaf"));
    graft(&trunk, "cctrunk", &branch1, "ccbranch1", "2", -1000);
    graft(&trunk, "cctrunk", &branch2, "ccbranch2", "1", -1000);
    graft(&branch1, "ccbranch1", &leaf, "ccleaf", "1", -1000);
    let trunk = RefNode::new(trunk, "cctrunk", &["alice"]);
    let branch1 = RefNode::new(branch1, "ccbranch1", &["dave", "erin"]);
    let branch2 = RefNode::new(branch2, "ccbranch2", &["carol"]);
    let mut leaf = RefNode::new(leaf, "ccleaf", &["alice", "bob"]);
    leaf.error_nodes = ["ccleaf", "ccbranch1", "cctrunk", "ccbranch2"].map(str::to_owned).to_vec();
    RefTree { trunk, branch1, branch2, leaf, _dirs: dirs }
}

/// The reference discovers these in `MultiNodeTest::__construct`
/// (cc_server@f7fb095 `tests/MultiNodeTest.php:16-56`, `getLeafwardAccounts` `:58-71`) by
/// walking `GET /account/names`. That walk depends on the reference's
/// inconsistent name prefixes (notes §5, §6e, §8.5), so the lists are derived
/// here from the known fixtures instead, as paths relative to ccleaf:
/// `$local_accounts` (the leaf's names, as `/account/names` lists them).
const LOCAL_ACCOUNTS: [&str; 3] = ["admin", "alice", "bob"];

/// `$foreign_accounts_grouped`: foreign accounts by node path, relative to
/// ccleaf (`$foreign_accounts` is their concatenation; the reference
/// shuffles it and uses three, here all are used).
const FOREIGN_ACCOUNTS_GROUPED: [(&str, &[&str]); 3] = [
    ("ccbranch1", &["ccbranch1/admin", "ccbranch1/dave", "ccbranch1/erin"]),
    ("cctrunk", &["cctrunk/admin", "cctrunk/alice"]),
    ("cctrunk/ccbranch2", &["cctrunk/ccbranch2/admin", "cctrunk/ccbranch2/carol"]),
];

fn first_group() -> &'static [&'static str] {
    FOREIGN_ACCOUNTS_GROUPED[0].1
}

fn last_group() -> &'static [&'static str] {
    FOREIGN_ACCOUNTS_GROUPED[FOREIGN_ACCOUNTS_GROUPED.len() - 1].1
}

fn first(list: &[&'static str]) -> &'static str {
    list.first().expect("non-empty")
}

fn last(list: &[&'static str]) -> &'static str {
    list.last().expect("non-empty")
}

// ---------------------------------------------------------------------------
// Inherited SingleNodeTest methods, run on the leaf.

/// `SingleNodeTest::testEndpoints` (cc_server@f7fb095 `tests/SingleNodeTest.php:30-39`), inherited by `MultiNodeTest`.
#[test]
fn leaf_options_lists_public_endpoints_to_anon_and_account_ones_to_users() {
    let t = tree();
    single::test_endpoints(&t.leaf);
}

/// `SingleNodeTest::testBadLogin` (cc_server@f7fb095 `tests/SingleNodeTest.php:41-51`), inherited.
#[test]
fn leaf_unknown_user_is_does_not_exist_account_and_wrong_key_is_password_violation() {
    let t = tree();
    single::test_bad_login(&t.leaf);
}

/// `SingleNodeTest::testAccountNames` (cc_server@f7fb095 `tests/SingleNodeTest.php:53-64`), inherited:
/// on the leaf the names of other nodes match too, so `limit=1` is exercised.
#[test]
fn leaf_account_names_contain_the_fragment_and_honour_the_limit() {
    let t = tree();
    single::test_account_names(&t.leaf);
}

/// `MultiNodeTest::testWorkflows` (cc_server@f7fb095 `tests/MultiNodeTest.php:77-80`) = the
/// parent's (cc_server@f7fb095 `tests/SingleNodeTest.php:66-70`).
#[test]
fn leaf_workflows_are_listed_to_an_account() {
    let t = tree();
    single::test_workflows(&t.leaf);
}

/// `SingleNodeTest::testAccountSummaries` (cc_server@f7fb095 `tests/SingleNodeTest.php:321-330`), inherited.
#[test]
fn leaf_account_limits_and_summaries_are_readable() {
    let t = tree();
    single::test_account_summaries(&t.leaf);
}

// ---------------------------------------------------------------------------
// MultiNodeTest's own methods.

/// `MultiNodeTest::testHandshake` (cc_server@f7fb095 `tests/MultiNodeTest.php:73-75`).
#[test]
fn leaf_handshake_answers_the_admin() {
    let t = tree();
    t.leaf.get("handshake", t.leaf.admin());
}

/// `MultiNodeTest::testConversion` (cc_server@f7fb095 `tests/MultiNodeTest.php:82-89`): `about`
/// for every foreign node path, anonymously.
#[test]
fn about_every_foreign_node_is_open_to_anonymous_callers() {
    let t = tree();
    for (node_path, _) in FOREIGN_ACCOUNTS_GROUPED {
        t.leaf.get(&format!("about?node_path={node_path}"), "");
        // "Can't tell from here what the conversion rate should be."
    }
}

/// `MultiNodeTest::testBadTransactions` (cc_server@f7fb095 `tests/MultiNodeTest.php:91-111`):
/// the parent's checks, then two foreign accounts on one node, then a
/// "mirror account".
#[test]
fn leaf_refuses_bad_transactions_and_two_parties_behind_one_link_or_one_account() {
    let t = tree();
    let n = &t.leaf;
    single::test_bad_transactions(n);
    let admin = n.admin();
    let mut obj = json!({"description": "test 3rdparty bad", "quant": 2, "type": "3rdparty",
                         "metadata": {"foo": "bar"}});
    // Two foreign accounts on the same node: both are the link account here.
    obj["payer"] = json!(first(first_group()));
    obj["payee"] = json!(last(first_group()));
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "SameAccountViolation");

    // "Try to trade with a mirror account" (`:107-110`): payee
    // `reset($local_accounts)`, payer `reset($remote_accounts)`. Upstream it
    // passes only because its discovery makes both names the same local
    // account (notes §5, §8.6). Port the intent: a path to a local account
    // that names this node (directly, or via the trunk and back) is that
    // same account.
    obj["payee"] = json!(first(&LOCAL_ACCOUNTS));
    for mirror in ["ccleaf/admin", "cctrunk/ccbranch1/ccleaf/admin"] {
        obj["payer"] = json!(mirror);
        n.err(Method::POST, "transaction", admin, &obj.to_string(), "SameAccountViolation");
    }
    // And the bare link account as a party (notes §8.6: refused; the
    // reference raised DoesNotExistViolation from ccbranch1 here, so only
    // "a violation" is asserted).
    obj["payer"] = json!("ccbranch1");
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "CCViolation");
}

/// `MultiNodeTest::test3rdParty` (cc_server@f7fb095 `tests/MultiNodeTest.php:113-139`): the
/// parent's checks, then 3rd-party transactions with foreign parties.
#[test]
fn leaf_admin_writes_third_party_transactions_to_foreign_accounts_but_not_between_two_behind_one_link() {
    let t = tree();
    let n = &t.leaf;
    single::test_3rd_party(n);
    let admin = n.admin();
    let mut obj = json!({"payee": last(first_group()), "payer": first(first_group()),
                         "description": "test 3rdparty good", "quant": 3, "type": "3rdparty",
                         "metadata": {"foo": "bar"}});
    // The admin can't even do a transaction between two foreign accounts.
    n.err(Method::POST, "transaction", admin, &obj.to_string(), "SameAccountViolation");
    obj["payee"] = json!(first(first_group()));
    obj["payer"] = json!(first(&LOCAL_ACCOUNTS));
    n.ok(Method::POST, "transaction", admin, &obj.to_string(), 201);
    // Again for good measure.
    obj["payee"] = json!(last(last_group()));
    obj["payer"] = json!(last(&LOCAL_ACCOUNTS));
    obj["description"] = json!("test 3rdparty good again");
    n.ok(Method::POST, "transaction", admin, &obj.to_string(), 201);
}

/// `MultiNodeTest::testTransactionLifecycle` (cc_server@f7fb095 `tests/MultiNodeTest.php:152-167`):
/// the parent's lifecycle on the leaf, then a credit to `cctrunk/alice`
/// confirmed by its payer.
#[test]
fn leaf_bill_lifecycle_then_a_transversal_credit_to_the_trunk_is_validated_and_confirmed() {
    let t = tree();
    let n = &t.leaf;
    single::seed_prior_tests(n);
    single::test_transaction_lifecycle(n);
    let payer = last(&LOCAL_ACCOUNTS);
    let obj = json!({"payer": payer, "payee": "cctrunk/alice", "description": "test transversal bill ",
                     "quant": 4, "type": "credit", "metadata": {"foo": "bar"}});
    let tx = n.ok(Method::POST, "transaction", payer, &obj.to_string(), 200);
    let uuid = tx["data"]["uuid"].as_str().unwrap_or_else(|| panic!("uuid: {tx}"));
    n.ok(Method::PATCH, &format!("transaction/{uuid}/pending"), payer, "", 201);
}

/// `MultiNodeTest::testRemoteRetrievals` (cc_server@f7fb095 `tests/MultiNodeTest.php:169-191`):
/// the parent's `testAccountSummaries`, then summary, limits and names of
/// every foreign node, and summary and limits of foreign accounts. (The
/// history request is commented out upstream, `:187-188`; see
/// `remote_summary_limits_and_history_are_answered_as_the_remote_node_answers`.)
#[test]
fn leaf_reads_summaries_limits_and_names_of_foreign_nodes_and_accounts() {
    let t = tree();
    let n = &t.leaf;
    single::test_account_summaries(n);
    let user1 = n.u0();
    for (node_path, _) in FOREIGN_ACCOUNTS_GROUPED {
        n.get(&format!("account/summary?acc_path={node_path}/"), user1);
        n.get(&format!("account/limits?acc_path={node_path}/"), user1);
        n.get(&format!("account/names?acc_path={node_path}/"), user1);
    }
    for (_, accounts) in FOREIGN_ACCOUNTS_GROUPED {
        for rel_acc_path in accounts {
            n.get(&format!("account/summary?acc_path={rel_acc_path}"), user1);
            n.get(&format!("account/limits?acc_path={rel_acc_path}"), user1);
        }
    }
}

/// `MultiNodeTest::testTrunkwards` (cc_server@f7fb095 `tests/MultiNodeTest.php:193-203`).
#[test]
fn leaf_absolute_path_needs_an_account_and_ends_with_the_leaf() {
    let t = tree();
    let n = &t.leaf;
    n.err(Method::GET, "absolutepath", "", "", "PermissionViolation");
    let nodes = n.get("absolutepath", n.u0())["data"].clone();
    let list = nodes.as_array().unwrap_or_else(|| panic!("a list: {nodes}"));
    assert!(list.len() > 1, "Absolute path did not return more than one node: {nodes}");
    assert_eq!(list.last(), Some(&json!(n.name)), "Absolute path does not end with the current node.");
}

// ---------------------------------------------------------------------------
// ccnode's intended behaviour where the reference is broken (notes §6e).

/// Remote `summary`, `limits` and `history` are forwarded and answered as the
/// remote node answers. Upstream these are only asserted as 200 (`:176-186`)
/// and remote history is broken in the reference (notes §6e).
#[test]
fn remote_summary_limits_and_history_are_answered_as_the_remote_node_answers() {
    let t = tree();
    let n = &t.leaf;
    // Give the remote nodes some trades first.
    let pay = json!({"payer": "alice", "payee": "ccbranch1/dave", "quant": 1, "description": "x", "type": "pay"});
    n.ok(Method::POST, "transaction", "alice", &pay.to_string(), 201);

    // Every check is tried; the failures are reported together.
    let mut failures = Vec::new();
    for query in ["summary", "limits"] {
        let via_leaf = n.get(&format!("account/{query}?acc_path=ccbranch1/"), "alice");
        let direct = t.branch1.get(&format!("account/{query}?acc_path=ccbranch1"), "dave");
        if via_leaf["data"] != direct["data"] {
            failures.push(format!("{query} of ccbranch1/ via the leaf {via_leaf} but ccbranch1 itself {direct}"));
        }
        for id in ["admin", "dave", "erin"] {
            if via_leaf["data"].get(id).is_none() {
                failures.push(format!("{query} of ccbranch1/: {id} missing: {via_leaf}"));
            }
        }
    }
    let summary = n.get("account/summary?acc_path=cctrunk/alice", "alice");
    let stats = summary["data"].as_object().and_then(|m| m.values().next()).cloned().unwrap_or(Value::Null);
    if !(stats["completed"].is_object() && stats["pending"].is_object()) {
        failures.push(format!("summary of cctrunk/alice: {summary}"));
    }
    let limits = n.get("account/limits?acc_path=cctrunk/alice", "alice");
    let limit = limits["data"].as_object().and_then(|m| m.values().next()).cloned().unwrap_or(Value::Null);
    if !(limit["min"].as_f64().is_some_and(|m| m < 0.0) && limit["max"].as_f64().is_some_and(|m| m > 0.0)) {
        failures.push(format!("limits of cctrunk/alice: {limits}"));
    }
    for path in ["ccbranch1/dave", "cctrunk/alice"] {
        let (status, history) = n.send(Method::GET, &format!("account/history?acc_path={path}"), "alice", "");
        if status.as_u16() != 200 || !history["meta"].is_object() {
            failures.push(format!("history of {path}: {status} {history}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `GET /account/names` on the leaf also returns names on other nodes, with
/// a path prefix relative to the leaf: every name contains the fragment, and
/// a prefixed name used as a payee path from the leaf reaches that account.
/// (The reference's names are prefixed inconsistently, notes §6e, so its
/// discovery, `tests/MultiNodeTest.php:28-55`, is replaced by this check.)
#[test]
fn leaf_account_names_include_trunkward_and_leafward_names_that_work_as_payee_paths() {
    let t = tree();
    let n = &t.leaf;
    // (fragment, account, node holding it, amount there for 1 at the leaf)
    let cases: [(&str, &str, &RefNode, f64); 3] =
        [("da", "dave", &t.branch1, 1.0), ("al", "alice", &t.trunk, 2.0), ("ccbranch2/ca", "carol", &t.branch2, 2.0)];
    // Every case is tried; the failures are reported together.
    let mut failures = Vec::new();
    for (fragment, account, node, expected) in cases {
        let names = n.get(&format!("account/names?acc_path={fragment}&limit=50"), "alice");
        let list: Vec<&str> = names["data"].as_array().expect("a list").iter().filter_map(Value::as_str).collect();
        let bare = fragment.rsplit('/').next().unwrap_or(fragment);
        for name in &list {
            assert!(name.contains(bare), "{name} does not contain {bare}: {names}");
        }
        let suffix = format!("/{account}");
        let remote: Vec<&str> = list.iter().copied().filter(|name| name.ends_with(&suffix)).collect();
        if remote.len() != 1 {
            failures.push(format!("want one prefixed name for {account} on {} for {fragment}: {names}", node.name));
            continue;
        }
        let body = json!({"payer": "alice", "payee": remote[0], "quant": 1, "description": "to a listed name",
                          "type": "pay"});
        let (status, paid) = n.send(Method::POST, "transaction", "alice", &body.to_string());
        if status.as_u16() != 201 || paid["data"]["state"] != "completed" {
            failures.push(format!("paying {} (listed for {fragment}: {names}): {status} {paid}", remote[0]));
            continue;
        }
        let summary = node.get(&format!("account/summary?acc_path={account}"), account);
        if summary["data"][account]["completed"]["balance"].as_f64() != Some(expected) {
            failures.push(format!("{account} on {} should have {expected}: {summary}", node.name));
        }
    }
    // The local alice is listed too, without a prefix.
    let names = n.get("account/names?acc_path=al&limit=50", "alice");
    if !names["data"].as_array().expect("a list").contains(&json!("alice")) {
        failures.push(format!("local alice not listed for al: {names}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
