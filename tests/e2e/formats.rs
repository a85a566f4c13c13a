//! Issue 14, item 1: event format 2 on a journal that an older ccnode wrote
//! in format 1. The node reads the format-1 records, moves an old transaction
//! under the workflow its record embeds (one the node no longer offers),
//! writes format 2 after them (journaling a workflow's definition once, before
//! its first use), restarts from the mixed journal, and `ccnode verify` passes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::node::{exact, Server, ADMIN_KEY};
use crate::{arg, ccnode, stdout};

/// The immediate bill ccnode shipped first (payee bills, pending at once,
/// payer signs): not among today's workflows.
const OLD_BILL: &str = "_P+PC-PE-PE+";
const OLD_BILL_UUID: u128 = 0x01d0_b111_0000_4000_8000_0000_0000_0001;

/// A format-1 journal as an older ccnode wrote it: admin, alice and bob (keys
/// `<id>-key`), a payment from alice to bob of 3 and a pending bill of 2 from
/// bob to alice under [`OLD_BILL`], each embedding its workflow.
fn write_format_1_journal(data: &std::path::Path) {
    use ledger::*;
    let mut journal = journal::Journal::open_or_create(&data.join("journal"), "old", journal::Options::default())
        .expect("create the journal");
    let config = NodeConfig::new(NodeName::new("old").expect("name"));
    let payment = config.workflows.iter().find(|w| w.id.as_str() == "payment").expect("payment").clone();
    let mut old_bill = Workflow::from_code(OLD_BILL).expect("code");
    old_bill.id = WorkflowId::new("oldbill").expect("id");
    let id = |s: &str| AccountId::new(s).expect("id");
    let open = |name: &str, admin: bool| Event::AccountOpened {
        account: Account {
            id: id(name),
            kind: AccountKind::User { admin },
            limits: Limits::new(Amount::from_units(-100), Amount::from_units(100)).expect("limits"),
            status: AccountStatus::Active,
        },
    };
    let key = |name: &str, key: &str| Event::AccountKeyChanged { id: id(name), key_hash: api::auth::new_key_hash(key) };
    let proposal = |uuid: u128, workflow: Workflow, state, payer: &str, payee: &str, units, author: &str| {
        Event::TransactionProposed {
            transaction: Transaction {
                uuid: TxId(uuid::Uuid::from_u128(uuid)),
                version: 1,
                state,
                workflow,
                author: id(author),
                written_unix_s: 1_700_000_000,
                entries: vec![Entry {
                    payer: id(payer),
                    payee: id(payee),
                    quant: Amount::from_units(units),
                    description: "written in format 1".to_owned(),
                    metadata: Default::default(),
                    remote: Default::default(),
                }],
            },
        }
    };
    let events = [
        Event::NodeInitialised { config },
        open("admin", true),
        key("admin", ADMIN_KEY),
        open("alice", false),
        key("alice", "alice-key"),
        open("bob", false),
        key("bob", "bob-key"),
        proposal(1, payment, State::Completed, "alice", "bob", 3, "alice"),
        proposal(OLD_BILL_UUID, old_bill, State::Pending, "alice", "bob", 2, "bob"),
    ];
    let payloads: Vec<Vec<u8>> = events.iter().map(encode_event_v1).collect();
    journal.append_batch(&payloads).expect("append");
}

/// Every record's format byte and decoded event.
fn records(data: &std::path::Path) -> Vec<(u8, ledger::Event)> {
    let journal = journal::Journal::open_read_only(&data.join("journal")).expect("open");
    let head = journal.head().seq;
    journal
        .range(1, head)
        .expect("range")
        .map(|r| {
            let r = r.expect("record");
            (r.payload[0], ledger::decode_event(&r.payload).expect("every record decodes"))
        })
        .collect()
}

#[test]
fn a_format_1_journal_is_read_moved_and_continued_in_format_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    write_format_1_journal(&data);

    let server = Server::start(&data, "old");
    let uuid = uuid::Uuid::from_u128(OLD_BILL_UUID).to_string();
    // The old bill moves by the rules its record embeds, though `oldbill` is not offered.
    let (status, value) = server.call(Method::PATCH, &format!("/transaction/{uuid}/completed"), "alice", None);
    assert_eq!(status, StatusCode::CREATED, "{value}");
    // A payment under a workflow the format-1 records already embed, then a
    // credit, whose definition no record holds yet.
    let body = json!({"payer": "alice", "payee": "bob", "quant": 4, "type": "payment", "description": "format 2"});
    let (status, value) = server.call(Method::POST, "/transaction", "alice", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let body = json!({"payer": "bob", "payee": "alice", "quant": 1, "type": "credit", "description": "format 2"});
    let (status, value) = server.call(Method::POST, "/transaction", "bob", Some(body));
    assert!(status.is_success(), "{status} {value}");
    let credit = value["data"]["uuid"].as_str().expect("uuid").to_owned();
    server.stop();

    let records = records(&data);
    let (old, new) = records.split_at(9);
    assert!(old.iter().all(|(format, _)| *format == 1), "the format-1 records are untouched");
    assert!(!new.is_empty() && new.iter().all(|(format, _)| *format == 2), "what the node wrote is format 2");
    let defined: Vec<&str> = new
        .iter()
        .filter_map(|(_, e)| match e {
            ledger::Event::WorkflowDefined { workflow } => Some(workflow.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(defined, ["credit"], "only the workflow no earlier record holds is defined, once");
    assert!(
        new.iter().any(|(_, e)| matches!(e, ledger::Event::TransactionProposedRef { .. })),
        "proposals name their workflow"
    );

    // The mixed journal restarts (no snapshot: a full fold of both formats) and verifies.
    std::fs::remove_dir_all(data.join("projections")).ok();
    let server = Server::start(&data, "old");
    let balances: std::collections::BTreeMap<_, _> = server.balances("old").into_iter().collect();
    // alice: −3 − 2 − 4 + credit pending (not completed).
    assert_eq!(balances["alice"], exact(&json!(-9)), "{balances:?}");
    assert_eq!(balances["bob"], exact(&json!(9)), "{balances:?}");
    let (status, value) = server.call(Method::GET, &format!("/transaction/{uuid}"), "alice", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["data"]["state"], "completed", "{value}");
    assert_eq!(value["data"]["type"], "oldbill", "{value}");
    let (status, value) = server.call(Method::GET, &format!("/transaction/{credit}"), "bob", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["data"]["type"], "credit", "{value}");
    server.stop();
    let verified = ccnode(&["verify", "--data", arg(&data)]);
    assert!(verified.status.success(), "{}", stdout(&verified));
}
