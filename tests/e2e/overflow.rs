//! Issue 16, item 3: one payment must not brick a node. Amounts and limits
//! beyond `ledger::AMOUNT_MAX_UNITS` (10^15 units) are refused where they are
//! parsed, with nothing written; a journal written by an older version that
//! holds an event no projection can fold opens read-only, and `ccnode verify`
//! names the record.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::{Server, ADMIN_KEY};
use crate::{arg, ccnode, stdout};

const OLD_MAX: &str = "9999999999999999999999999";
const E23: &str = "100000000000000000000000";
const FOUR_E22: &str = "40000000000000000000000";

fn refused_as_invalid_field(status: StatusCode, value: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["errors"][0]["class"], "InvalidFieldsViolation", "{value}");
    let text = value.to_string();
    assert!(text.contains(field) && text.contains("1000000000000000"), "names {field} and the maximum: {text}");
}

fn transactions(server: &Server) -> usize {
    let (status, value) = server.call(Method::GET, "/transactions", "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    value["data"].as_array().map_or(0, Vec::len)
}

#[test]
fn overflow_amounts_beyond_the_maximum_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, "wide");
    server.open("alice", -1_000_000_000_000_000, 1_000_000_000_000_000);
    server.open("bob", -1_000_000_000_000_000, 1_000_000_000_000_000);
    // The old maximum (what 26 bytes of text allowed) is refused for limits.
    for body in [json!({"min": format!("-{OLD_MAX}")}), json!({"max": OLD_MAX})] {
        let field = if body.get("min").is_some() { "min" } else { "max" };
        let (status, value) = server.call(Method::PATCH, "/admin/accounts/alice", "admin", Some(body));
        refused_as_invalid_field(status, &value, field);
    }
    let body = json!({"id": "carol", "key": "carol-key", "min": format!("-{OLD_MAX}"), "max": OLD_MAX});
    let (status, value) = server.call(Method::POST, "/admin/accounts", "admin", Some(body));
    refused_as_invalid_field(status, &value, "min");
    // One 10^23 payment, two 4·10^22 ones: refused, nothing written.
    for quant in [E23, FOUR_E22, FOUR_E22] {
        let body = json!({"payer": "alice", "payee": "bob", "quant": quant, "workflow": "payment"});
        let (status, value) = server.call(Method::POST, "/transaction", "alice", Some(body));
        refused_as_invalid_field(status, &value, "quant");
    }
    assert_eq!(transactions(&server), 0);
    // The node keeps working: the maximum itself is accepted, twice.
    for (payer, payee) in [("alice", "bob"), ("bob", "alice")] {
        let body = json!({"payer": payer, "payee": payee, "quant": "1000000000000000", "workflow": "payment"});
        let (status, value) = server.call(Method::POST, "/transaction", payer, Some(body));
        assert_eq!(status, StatusCode::CREATED, "{value}");
    }
    let (status, value) = server.call(Method::GET, "/account/summary?acc_path=wide/bob", "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["data"]["bob"]["completed"]["volume"], json!(2_000_000_000_000_000u64), "{value}");
    server.stop();
    // And restarts cleanly, with everything it acknowledged.
    let server = Server::start(&data, "wide");
    assert_eq!(transactions(&server), 2);
    server.stop();
    let verified = ccnode(&["verify", "--data", arg(&data)]);
    assert!(verified.status.success(), "{}", stdout(&verified));
}

/// Writes, bypassing `decide`, the journal an older version wrote after an
/// admin set limits of ±10^25 and accepted one payment of 10^23 (seq 6).
fn write_old_journal(data: &std::path::Path) {
    use ledger::*;
    let mut journal = journal::Journal::open_or_create(&data.join("journal"), "old", journal::Options::default())
        .expect("create the journal");
    let config = NodeConfig::new(NodeName::new("old").expect("name"));
    let payment = config.workflows.iter().find(|w| w.id.as_str() == "payment").expect("payment").clone();
    let id = |s: &str| AccountId::new(s).expect("id");
    let wide: Amount = OLD_MAX.parse().expect("amount");
    let open = |name: &str, admin: bool, limits: Limits| Event::AccountOpened {
        account: Account { id: id(name), kind: AccountKind::User { admin }, limits, status: AccountStatus::Active },
    };
    let events = [
        Event::NodeInitialised { config },
        open("admin", true, Limits::new(Amount::ZERO, Amount::ZERO).expect("limits")),
        Event::AccountKeyChanged { id: id("admin"), key_hash: api::auth::new_key_hash(ADMIN_KEY) },
        open("a", false, Limits::new(-wide, wide).expect("limits")),
        open("b", false, Limits::new(-wide, wide).expect("limits")),
        Event::TransactionProposed {
            transaction: Transaction {
                uuid: TxId(uuid::Uuid::from_u128(6)),
                version: 1,
                state: State::Completed,
                workflow: payment,
                author: id("a"),
                written_unix_s: 1,
                entries: vec![Entry {
                    payer: id("a"),
                    payee: id("b"),
                    quant: E23.parse().expect("amount"),
                    description: "bricks an older node".to_owned(),
                    metadata: Default::default(),
                    remote: Default::default(),
                }],
            },
        },
    ];
    // Written before event format 2: every proposal embeds its workflow.
    let payloads: Vec<Vec<u8>> = events.iter().map(encode_event_v1).collect();
    journal.append_batch(&payloads).expect("append");
}

#[test]
fn overflow_journal_of_an_older_version_opens_read_only_and_verify_names_the_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    write_old_journal(&data);
    // The PostgreSQL run: the same journal, copied into the node's database.
    if let Some(url) = crate::test_store(&["--data", arg(&data)], true) {
        let out = ccnode(&["migrate-store", "--from", &format!("file:{}", arg(&data)), "--to", &url]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        std::fs::remove_dir_all(data.join("journal")).expect("no segment files left to read");
    }

    let verified = ccnode(&["verify", "--data", arg(&data)]);
    let out = stdout(&verified);
    assert_eq!(verified.status.code(), Some(1), "{out}");
    assert!(out.contains("FAILED") && out.contains("seq 6"), "{out}");

    for _ in 0..2 {
        let server = Server::start(&data, "old");
        // Reads answer, showing the ledger before the record.
        let (status, value) = server.call(Method::GET, "/account/summary?acc_path=old/a", "admin", None);
        assert_eq!(status, StatusCode::OK, "{value}");
        assert_eq!(value["data"]["a"]["completed"]["balance"], json!(0), "{value}");
        // Writes answer 503 naming the record, and nothing is written.
        let body = json!({"payer": "a", "payee": "b", "quant": 1, "workflow": "payment"});
        let (status, value) = server.call(Method::POST, "/transaction", "admin", Some(body));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{value}");
        assert_eq!(value["errors"][0]["class"], "CCFailure", "{value}");
        assert!(value.to_string().contains("journal record 6"), "{value}");
        let body = json!({"id": "c", "key": "c-key"});
        let (status, value) = server.call(Method::POST, "/admin/accounts", "admin", Some(body));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{value}");
        server.stop();
    }
    let verified = ccnode(&["verify", "--data", arg(&data)]);
    assert!(stdout(&verified).contains("seq 6"), "still names it and nothing was added: {}", stdout(&verified));
}
