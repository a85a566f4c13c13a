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

/// The header of `members.csv` in Komunitin's community migration bundle
/// (community-exchange-network/komunitin, `shared/migration/FORMAT.md`).
const KOMUNITIN_MEMBERS: &str = "code,name,type,status,access,description,adminUsers,account.balance,account.creditLimit,createdAt,updatedAt,account.createdAt,account.updatedAt,account.maximumBalance,imageUrl,address.streetAddress,address.locality,address.postalCode,address.region,address.country,location.name,location.type,location.longitude,location.latitude,contact.phone,contact.email,contact.telegram,contact.whatsapp,contact.website,account.settings.onPaymentCreditLimit,account.settings.acceptPaymentsAfter,account.settings.acceptPaymentsWhitelist,account.settings.allowPayments,account.settings.allowPaymentRequests,account.settings.allowSimplePayments,account.settings.allowSimplePaymentRequests,account.settings.allowQrPayments,account.settings.allowQrPaymentRequests,account.settings.allowMultiplePayments,account.settings.allowMultiplePaymentRequests,account.settings.allowTagPayments,account.settings.allowTagPaymentRequests,account.settings.acceptPaymentsAutomatically,account.settings.allowExternalPayments,account.settings.allowExternalPaymentRequests,account.settings.acceptExternalPaymentsAutomatically,account.settings.hideBalance";
/// The header of its `transfers.csv`.
const KOMUNITIN_TRANSFERS: &str =
    "sourceKey,payerAccountCode,payeeAccountCode,initiatorUser,amount,description,createdAt,updatedAt";

/// One members.csv row: the given columns, every other one blank.
fn member(values: &[(&str, &str)]) -> String {
    KOMUNITIN_MEMBERS
        .split(',')
        .map(|column| {
            let value = values.iter().find(|(c, _)| *c == column).map_or("", |(_, v)| *v);
            if value.contains(',') {
                format!("\"{value}\"")
            } else {
                value.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn komunitin_members(bob_balance: &str) -> String {
    let t = "2025-01-01T09:00:00Z";
    let account = |code, name, status, balance, credit, max| -> Vec<(&str, &str)> {
        vec![
            ("code", code),
            ("name", name),
            ("type", "personal"),
            ("status", status),
            ("access", "group"),
            ("adminUsers", "someone@example.org"),
            ("createdAt", t),
            ("updatedAt", t),
            ("account.balance", balance),
            ("account.creditLimit", credit),
            ("account.maximumBalance", max),
            ("account.createdAt", t),
            ("account.updatedAt", t),
        ]
    };
    let rows = [
        member(&account("KOMU0001", "Ana", "active", "-7.5", "50", "")),
        member(&account("KOMU0002", "Bo, the baker", "active", bob_balance, "100.00", "200")),
        member(&account("KOMU0003", "Cy", "suspended", "-2.5", "20", "")),
        // A pending member: no account, so every account column blank.
        member(&[
            ("code", "KOMU0004"),
            ("name", "Di"),
            ("type", "personal"),
            ("status", "pending"),
            ("access", "group"),
            ("createdAt", t),
            ("updatedAt", t),
        ]),
    ];
    rows.iter().fold(format!("{KOMUNITIN_MEMBERS}\n"), |acc, row| acc + row + "\n")
}

fn komunitin_transfers(extra: &str) -> String {
    format!(
        "{KOMUNITIN_TRANSFERS}\n\
         t-1,KOMU0001,KOMU0002,ana@example.org,10.00,\"bread, two loaves\",2025-02-01T11:59:00Z,2025-02-01T12:00:00Z\n\
         t-2,KOMU0003,KOMU0001,cy@example.org,2.5,eggs,2025-02-02T08:30:00.250Z,2025-02-02T08:30:00.250Z\n{extra}"
    )
}

#[test]
fn a_komunitin_bundle_is_imported_with_its_limits_statuses_and_dates() {
    let work = tempfile::tempdir().expect("tempdir");
    let members = work.path().join("members.csv");
    let transfers = work.path().join("transfers.csv");
    std::fs::write(&members, komunitin_members("10")).expect("write");
    std::fs::write(&transfers, komunitin_transfers("")).expect("write");
    let target = work.path().join("node");
    let out = Command::new(env!("CARGO_BIN_EXE_ccnode"))
        .args([
            "import",
            "--data",
            arg(&target),
            "--format",
            "komunitin",
            "--name",
            "komu",
            arg(&members),
            arg(&transfers),
        ])
        .env("CCNODE_LOG", "warn")
        .output()
        .expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).lines().count(), 4, "a key for each of the three accounts: {}", stdout(&out));

    let server = Server::spawn(&["serve", "--data", arg(&target), "--listen", "127.0.0.1:0", "--name", "komu"]);
    let accounts = admin_get(&server, "/admin/accounts");
    let row = |id: &str| accounts["data"].as_array().expect("list").iter().find(|a| a["id"] == id).cloned();
    let ana = row("KOMU0001").expect("Ana's account");
    assert_eq!(
        (&ana["min"], &ana["max"], &ana["balance"], &ana["status"]),
        (&json!(-50), &json!(1_000_000_000_000_000u64), &json!(-7.5), &json!("active"))
    );
    let bo = row("KOMU0002").expect("Bo's account");
    assert_eq!((&bo["min"], &bo["max"], &bo["balance"]), (&json!(-100), &json!(200), &json!(10)));
    assert_eq!(row("KOMU0003").expect("Cy's account")["status"], "blocked", "suspended");
    assert!(row("KOMU0004").is_none(), "a pending member has no account");
    // The original dates: Ana's balance before, between and after the two transfers.
    for (at, balance) in
        [("2025-02-01T11:59:59Z", 0.0), ("2025-02-01T12:00:01Z", -10.0), ("2025-02-02T08:30:01Z", -7.5)]
    {
        let value = admin_get(&server, &format!("/account/balance?acc_path=KOMU0001&at={at}"));
        assert_eq!(value["data"]["balance"].as_f64(), Some(balance), "at {at}: {value}");
    }
    let list = admin_get(&server, "/transactions?dir=asc&limit=5");
    let first = &list["data"][0]["entries"][0];
    assert_eq!(first["description"], "bread, two loaves");
    assert_eq!(first["metadata"]["imported"], "komunitin");
    assert_eq!(first["metadata"]["imported_source_key"], "t-1");
    assert_eq!(list["data"][0]["written"], "2025-02-01 12:00:00");
    server.stop();
}

#[test]
fn a_komunitin_bundle_that_does_not_add_up_or_names_a_member_without_account_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let cases = [
        // Bo's declared balance is not what the transfers give him.
        ("balance", komunitin_members("11"), komunitin_transfers(""), "members.csv line 3", "declared balance 11"),
        (
            "pending",
            komunitin_members("10"),
            komunitin_transfers(
                "t-3,KOMU0001,KOMU0004,ana@example.org,1,x,2025-03-01T00:00:00Z,2025-03-01T00:00:00Z\n",
            ),
            "transfers.csv line 4",
            "without an account",
        ),
        (
            "places",
            komunitin_members("10"),
            komunitin_transfers(
                "t-3,KOMU0001,KOMU0002,ana@example.org,0.0000001,x,2025-03-01T00:00:00Z,2025-03-01T00:00:00Z\n",
            ),
            "transfers.csv line 4",
            "is not an amount",
        ),
        (
            "duplicate",
            komunitin_members("10"),
            komunitin_transfers(
                "t-1,KOMU0001,KOMU0002,ana@example.org,1,x,2025-03-01T00:00:00Z,2025-03-01T00:00:00Z\n",
            ),
            "transfers.csv line 4",
            "not unique",
        ),
    ];
    for (name, members_text, transfers_text, place, words) in cases {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        let (members, transfers) = (dir.join("members.csv"), dir.join("transfers.csv"));
        std::fs::write(&members, members_text).expect("write");
        std::fs::write(&transfers, transfers_text).expect("write");
        let target = dir.join("node");
        let out = Command::new(env!("CARGO_BIN_EXE_ccnode"))
            .args(["import", "--data", arg(&target), "--format", "komunitin", arg(&members), arg(&transfers)])
            .env("CCNODE_LOG", "warn")
            .output()
            .expect("import");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(place) && stderr.contains(words), "{name}: {stderr}");
        assert!(!target.exists(), "{name}: nothing written");
        let left: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().filter(|e| e.path().is_dir()).collect();
        assert!(left.is_empty(), "{name}: {left:?} left behind");
    }
}
