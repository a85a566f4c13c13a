//! `ccnode import` (issue 12, item 4): a round trip from one node's CSV
//! exports into a new node, with every balance and every historical balance
//! equal; bad files refused naming the row, with nothing written.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::{Server, ADMIN_KEY};
use crate::{arg, stdout};

fn import(data: &Path, files: &[&Path]) -> Output {
    let mut args = vec!["import", "--data", arg(data), "--format", "ccnode", "--name", "town"];
    args.extend(files.iter().map(|f| arg(f)));
    Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(&args)
        .env("CCNODE_LOG", "warn")
        .env_remove("CCNODE_DATA")
        .output()
        .expect("run ccnode import")
}

fn csv(server: &Server, path: &str) -> String {
    let response = reqwest::blocking::Client::new()
        .get(format!("{}{path}", server.url))
        .header("cc-user", "admin")
        .header("cc-auth", ADMIN_KEY)
        .send()
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().expect("text")
}

fn admin_get(server: &Server, path: &str) -> Value {
    let (status, value) = server.request(Method::GET, path, Some(("admin", ADMIN_KEY)), None);
    assert_eq!(status, StatusCode::OK, "{path}: {value}");
    value
}

#[test]
fn a_community_moves_to_a_new_node_with_its_whole_history() {
    // The demo: 90 days of trade among eight members, some bills pending.
    let source_dir = tempfile::tempdir().expect("tempdir");
    let source = Server::spawn(&["demo", "--data", arg(source_dir.path()), "--listen", "127.0.0.1:0"]);
    let work = tempfile::tempdir().expect("tempdir");
    let accounts = work.path().join("accounts.csv");
    let transactions = work.path().join("transactions.csv");
    std::fs::write(&accounts, csv(&source, "/admin/export/accounts")).expect("write");
    std::fs::write(&transactions, csv(&source, "/admin/export/transactions")).expect("write");

    let target = work.path().join("new-node");
    let out = import(&target, &[&transactions, &accounts]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys = stdout(&out);
    assert!(keys.starts_with("id,key\n"), "{keys}");
    let alice_key = keys.lines().find_map(|l| l.strip_prefix("alice,")).expect("alice's new key").to_owned();
    let imported = Server::spawn(&["serve", "--data", arg(&target), "--listen", "127.0.0.1:0", "--name", "town"]);

    // Every account, its limits, its balance.
    let before = admin_get(&source, "/admin/accounts");
    let after = admin_get(&imported, "/admin/accounts");
    let strip = |v: &Value| -> Vec<Value> {
        v["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|a| json!([a["id"], a["kind"], a["min"], a["max"], a["balance"]]))
            .collect()
    };
    assert_eq!(strip(&before), strip(&after));

    // Every historical balance: each account's whole timeline, point by point.
    let members = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
    let mut points = 0;
    for member in members {
        let path = format!("/account/history?acc_path={member}&samples=0");
        let (a, b) = (admin_get(&source, &path), admin_get(&imported, &path));
        assert_eq!(a["data"], b["data"], "{member}'s history");
        points += a["data"].as_object().map_or(0, |m| m.len());
        // And the balance as it stood at instants in between: the second after
        // each change (the exports' times are whole seconds, so within the
        // second of a change the new node may already count it).
        for (at, _) in a["data"].as_object().expect("map").iter().step_by(5) {
            let t = time::PrimitiveDateTime::parse(
                at,
                time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            )
            .expect("a history time")
            .assume_utc()
                + time::Duration::seconds(1);
            let at = t.format(&time::format_description::well_known::Rfc3339).expect("format");
            let path = format!("/account/balance?acc_path={member}&at={at}");
            let (x, y) = (admin_get(&source, &path), admin_get(&imported, &path));
            assert_eq!(x["data"], y["data"], "{member} at {at}");
        }
    }
    assert!(points > 200, "only {points} points compared");

    // Imported transactions are ordinary ones, marked, with their original uuid and date.
    let (status, list) =
        imported.request(Method::GET, "/transactions?limit=1&dir=asc", Some(("alice", &alice_key)), None);
    assert_eq!(status, StatusCode::OK, "{list}");
    let first = &list["data"][0];
    assert_eq!(first["entries"][0]["metadata"]["imported"], "ccnode", "{first}");
    let uuid = first["uuid"].as_str().expect("uuid");
    let (status, original) =
        source.request(Method::GET, &format!("/transaction/{uuid}"), Some(("admin", ADMIN_KEY)), None);
    assert_eq!(status, StatusCode::OK, "{original}");
    assert_eq!(original["data"]["written"], first["written"]);
    imported.stop();
    source.stop();
    // The new journal holds up: chain, rules, limits after every event, snapshot.
    let verify =
        Command::new(env!("CARGO_BIN_EXE_ccnode")).args(["verify", "--data", arg(&target)]).output().expect("verify");
    assert!(verify.status.success(), "{}{}", stdout(&verify), String::from_utf8_lossy(&verify.stderr));
}

const ACCOUNTS: &str = "id,kind,status,min,max\nalice,member,active,-10,100\nbob,member,active,-100,100\n";
const HEADER: &str = "written,uuid,version,state,type,author,entry,payer,payee,quant,description\n";

fn payment(written: &str, payer: &str, payee: &str, quant: &str) -> String {
    let uuid = uuid::Uuid::new_v4();
    format!("{written},{uuid},1,completed,pay,{payer},0,{payer},{payee},{quant},soup\n")
}

#[test]
fn a_file_with_a_bad_row_is_refused_naming_the_row_and_nothing_is_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let accounts = work.path().join("accounts.csv");
    std::fs::write(&accounts, ACCOUNTS).expect("write");
    let good = payment("2025-03-01T09:00:00Z", "bob", "alice", "5");
    let cases = [
        // Breaks alice's limit of -10 (checked as the history is replayed).
        (
            "limit",
            format!("{good}{}", payment("2025-03-02T09:00:00Z", "alice", "bob", "16")),
            "line 3",
            "below its minimum",
        ),
        (
            "backwards",
            format!("{good}{}", payment("2025-02-01T09:00:00Z", "alice", "bob", "1")),
            "line 3",
            "goes back in time",
        ),
        (
            "unknown",
            format!("{good}{}", payment("2025-03-02T09:00:00Z", "alice", "carol", "1")),
            "line 3",
            "carol is not in the accounts file",
        ),
        (
            "amount",
            format!("{good}{}", payment("2025-03-02T09:00:00Z", "alice", "bob", "1.2.3")),
            "line 3",
            "is not an amount",
        ),
    ];
    for (name, rows, line, words) in cases {
        let file = work.path().join(format!("{name}.csv"));
        std::fs::write(&file, format!("{HEADER}{rows}")).expect("write");
        let target = work.path().join(format!("node-{name}"));
        let out = import(&target, &[&accounts, &file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{name}.csv {line}")) && stderr.contains(words), "{name}: {stderr}");
        assert!(stderr.contains("nothing written"), "{stderr}");
        assert!(!target.exists(), "{name}: {} was written", target.display());
        assert!(stdout(&out).is_empty(), "{name}: no keys printed");
    }
    // Nothing left beside it either (the staging directory is gone).
    let left: Vec<String> = std::fs::read_dir(work.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".csv"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // A directory in use is refused; the good file then goes in.
    let used = work.path().join("used");
    std::fs::create_dir(&used).expect("mkdir");
    std::fs::write(used.join("something"), "x").expect("write");
    let file = work.path().join("good.csv");
    std::fs::write(&file, format!("{HEADER}{good}")).expect("write");
    let out = import(&used, &[&accounts, &file]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let fresh = work.path().join("fresh");
    let out = import(&fresh, &[&accounts, &file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let balance = Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(["balance", "--data", arg(&fresh), "alice", "--at", "2025-03-01T09:00:01Z", "--json"])
        .output()
        .expect("balance");
    let value: Value = serde_json::from_slice(&balance.stdout).expect("JSON");
    assert_eq!(value["balance"], "5", "{value}");
    let before = Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args(["balance", "--data", arg(&fresh), "alice", "--at", "2025-03-01T08:59:59Z", "--json"])
        .output()
        .expect("balance");
    let value: Value = serde_json::from_slice(&before.stdout).expect("JSON");
    assert_eq!(value["balance"], "0", "before the original date: {value}");
}
