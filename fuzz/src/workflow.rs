//! Workflow codes (`Workflow::from_code`), workflow JSON (the operator's
//! workflows file, `api::wire::workflow`), account paths (`ledger::resolve`
//! and `ledger::route`), names and amounts: the text a node parses outside
//! the HTTP layer.
//!
//! Input: a selector byte, then UTF-8 text (the target returns on anything
//! else: every parser here takes `&str`).
//!
//! Contracts: no panic; a parsed code writes back a code that parses to the
//! same rules and writes back the same code; a parsed workflows file
//! survives `WorkflowJson` both ways; a path resolves to an account that
//! exists with the kind it is used as; a parsed amount prints as text that
//! parses back to it.

use api::wire::workflow::{workflows_from_json, WorkflowJson};
use ledger::{resolve, route, AccountId, AccountKind, Amount, NodeName, Resolution, Route, Workflow};

pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match selector % 5 {
        0 => code(text),
        1 => workflows_file(text),
        2 => path(text),
        3 => amount(text),
        _ => names(text),
    }
}

fn code(text: &str) {
    let Ok(workflow) = Workflow::from_code(text) else { return };
    let Ok(written) = workflow.to_code() else { return };
    let again = Workflow::from_code(&written).expect("a written code parses");
    assert_eq!(
        (&again.direction, &again.creation, &again.transitions),
        (&workflow.direction, &workflow.creation, &workflow.transitions),
        "code {text:?} wrote {written:?}, which parses to other rules"
    );
    assert_eq!(again.to_code().expect("expressible"), written, "writing a code is not idempotent");
}

fn workflows_file(text: &str) {
    let Ok(workflows) = workflows_from_json(text) else { return };
    for workflow in &workflows {
        let json = WorkflowJson::from(workflow);
        let back = Workflow::try_from(&json).expect("a workflow's own JSON parses");
        assert_eq!(&back, workflow, "workflow JSON does not round-trip");
        let _ = api::wire::workflow::workflow_json(workflow, "twig");
        let _ = workflow.content_hash();
    }
}

/// `twig` holds user `alice`, admin `admin`, child node `leaf` and parent `trunk`.
fn lookup(id: &AccountId) -> Option<AccountKind> {
    match id.as_str() {
        "alice" => Some(AccountKind::User { admin: false }),
        "admin" => Some(AccountKind::User { admin: true }),
        "leaf" => Some(AccountKind::Leafward),
        "trunk" => Some(AccountKind::Trunkward),
        _ => None,
    }
}

fn path(text: &str) {
    let here = NodeName::new("twig").expect("name");
    let trunk = AccountId::new("trunk").expect("id");
    for trunkward in [None, Some(&trunk)] {
        match resolve(text, &here, lookup, trunkward) {
            Ok(Resolution::Local(account)) => {
                assert!(matches!(lookup(&account), Some(AccountKind::User { .. })), "{text:?} resolved to a non-user");
            }
            Ok(Resolution::Leafward { node_account, .. }) => {
                assert_eq!(lookup(&node_account), Some(AccountKind::Leafward), "{text:?}");
            }
            Ok(Resolution::Trunkward { node_account, .. }) => {
                assert_eq!(Some(&node_account), trunkward, "{text:?} went trunkward without a parent");
            }
            Err(_) => {}
        }
        let is_here = |s: &str| AccountId::new(s).is_ok_and(|id| lookup(&id).is_some());
        if let Ok(Route::Leafward { node_account, .. }) = route(text, &here, lookup, trunkward, is_here) {
            assert_eq!(lookup(&node_account), Some(AccountKind::Leafward), "{text:?}");
        }
    }
}

fn amount(text: &str) {
    let Ok(amount) = text.parse::<Amount>() else { return };
    let printed = amount.to_string();
    let back: Amount = printed.parse().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
    assert_eq!(back, amount, "{text:?} printed as {printed:?}");
}

fn names(text: &str) {
    if let Ok(id) = AccountId::new(text) {
        assert_eq!(id.as_str(), text);
        assert_eq!(AccountId::new(id.as_str()), Ok(id));
    }
    if let Ok(name) = NodeName::new(text) {
        assert_eq!(name.as_str(), text);
    }
}
