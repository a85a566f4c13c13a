//! `ccnode import` (issue 12, item 4): a round trip from one node's CSV
//! exports into a new node, with every balance and every historical balance
//! equal; Komunitin's bundle and the CES export from fixtures written for the
//! test; bad files refused naming the row, with nothing written.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::{Server, ADMIN_KEY};
use crate::{arg, stdout};

fn import(data: &Path, files: &[&Path]) -> Output {
    import_as(&["--format", "ccnode", "--name", "town"], data, files)
}

/// `ccnode import --data DATA OPTIONS FILES…`.
fn import_as(options: &[&str], data: &Path, files: &[&Path]) -> Output {
    let mut args = vec!["import", "--data", arg(data)];
    args.extend(options);
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

/// The CES export written for the test (`tests/fixtures/ces/README.md`).
fn ces_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ces").join(name)
}

const CES_OPTIONS: &[&str] = &["--format", "ces", "--utc-offset", "+02:00", "--name", "hora"];

#[test]
fn a_ces_export_is_imported_with_its_levies_remote_trades_limits_and_dates() {
    let work = tempfile::tempdir().expect("tempdir");
    let target = work.path().join("node");
    let files = [ces_fixture("transactions.csv"), ces_fixture("balances.csv"), ces_fixture("users.csv")];
    let out = import_as(CES_OPTIONS, &target, &files.iter().map(|f| f.as_path()).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys = stdout(&out);
    let mut ids: Vec<&str> = keys.lines().skip(1).filter_map(|l| l.split(',').next()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["HORA0000", "HORA0001", "HORA0002", "HORA0003", "HORANET2", "HORAVIRT"], "{keys}");

    let server = Server::spawn(&["serve", "--data", arg(&target), "--listen", "127.0.0.1:0", "--name", "hora"]);
    let accounts = admin_get(&server, "/admin/accounts");
    let row = |id: &str| {
        let list = accounts["data"].as_array().expect("list");
        let a = list.iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("no {id} in {accounts}"));
        (a["kind"].clone(), a["status"].clone(), a["min"].as_f64(), a["max"].as_f64(), a["balance"].as_f64())
    };
    let unlimited = Some(1e15);
    let active = || json!("active");
    // Limits from debit_limit and credit_limit (0 is none); balances from the trades and levies.
    assert_eq!(row("HORA0000"), (json!("admin"), active(), Some(-1e15), unlimited, Some(-1.96)));
    assert_eq!(row("HORA0001"), (json!("member"), active(), Some(-50.0), Some(300.0), Some(-9.38)));
    assert_eq!(row("HORA0002"), (json!("member"), active(), Some(-100.0), unlimited, Some(24.5)));
    assert_eq!(row("HORA0003"), (json!("member"), json!("blocked"), Some(-20.0), Some(100.0), Some(-2.16)));
    // The trade with exchange NET2 went through its virtual account.
    assert_eq!(row("HORANET2"), (json!("member"), active(), Some(-1e15), unlimited, Some(-11.0)));
    assert_eq!(row("HORAVIRT").4, Some(0.0));

    // The original dates (CES times are local: 12:00 at +02:00 is 10:00 UTC).
    for (at, balance) in [
        ("2025-02-01T09:59:59Z", 0.0),
        ("2025-02-01T10:00:01Z", -10.2),
        ("2025-02-02T06:30:01Z", -5.3),
        ("2025-02-04T07:15:01Z", -9.38),
    ] {
        let value = admin_get(&server, &format!("/account/balance?acc_path=HORA0001&at={at}"));
        assert_eq!(value["data"]["balance"].as_f64(), Some(balance), "HORA0001 at {at}: {value}");
    }
    let history = admin_get(&server, "/account/history?acc_path=HORA0002&samples=0");
    assert_eq!(history["data"], json!({"2025-02-01 10:00:00": 9.8, "2025-02-03 16:00:00": 24.5}), "{history}");

    // Each trade is an ordinary payment, its levies payments of their own to the administration.
    let list = admin_get(&server, "/transactions?dir=asc&limit=20");
    assert_eq!(list["meta"]["number_of_results"], 12, "5 trades, 7 levies paid here: {list}");
    let txs = list["data"].as_array().expect("list");
    assert!(txs[..3].iter().all(|t| t["written"] == "2025-02-01 10:00:00"), "{list}");
    let mut first: Vec<Value> = txs
        .iter()
        .map(|t| &t["entries"][0])
        .filter(|e| e["metadata"]["imported_txid"] == "101")
        .map(|e| {
            let m = &e["metadata"];
            json!([
                m["imported_entry"],
                e["payer"],
                e["payee"],
                e["quant"],
                e["description"],
                m["imported"],
                m["imported_type"]
            ])
        })
        .collect();
    first.sort_by_key(|v| v[0].as_str().map(str::to_owned));
    assert_eq!(
        first,
        [
            json!(["buyer_levy", "HORA0001", "HORA0000", 0.2, "the buyer's levy", "ces", "sess"]),
            json!(["seller_levy", "HORA0002", "HORA0000", 0.2, "the seller's levy", "ces", "sess"]),
            json!(["trade", "HORA0001", "HORA0002", 10, "bread, two loaves", "ces", "sess"]),
        ]
    );
    let remote = txs
        .iter()
        .map(|t| &t["entries"][0])
        .find(|e| e["metadata"]["imported_txid"] == "103" && e["metadata"]["imported_entry"] == "trade")
        .expect("103");
    assert_eq!((&remote["payer"], &remote["quant"]), (&json!("HORANET2"), &json!(15)), "the seller's amount: {remote}");
    assert_eq!(remote["metadata"]["imported_remote_buyer"], "NET21234");
    server.stop();
    let verify =
        Command::new(env!("CARGO_BIN_EXE_ccnode")).args(["verify", "--data", arg(&target)]).output().expect("verify");
    assert!(verify.status.success(), "{}{}", stdout(&verify), String::from_utf8_lossy(&verify.stderr));
}

#[test]
fn a_bad_ces_export_is_refused_naming_the_row_and_nothing_is_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let read = |name: &str| std::fs::read_to_string(ces_fixture(name)).expect("fixture");
    let (trades, balances) = (read("transactions.csv"), read("balances.csv"));
    let trade = |buyer: &str, amount: &str, date: &str| {
        format!("{trades}106,HORA,sess,{buyer},HORA0002,CES0001,CES0001,{amount},{amount},0,0,2,2,{amount},soup,{date},{date},HORA0002,s,web\n")
    };
    // A sixth trade (line 7), bad in one way each: (case, buyer, amount, date, why).
    let bad_trades = [
        // HORA0001 stands at -9.38 with a debit limit of 50 (checked as the history is replayed).
        ("limit", "HORA0001", "45.00", "2025-02-06 10:00:00", "below its minimum"),
        ("backwards", "HORA0001", "1.00", "2025-01-31 10:00:00", "goes back in time"),
        ("unknown", "HORA0009", "1.00", "2025-02-06 10:00:00", "HORA0009 is not in users.csv"),
        ("amount", "HORA0001", "1.0.0", "2025-02-06 10:00:00", "is not an amount"),
    ];
    let mut cases: Vec<(&str, String, String, &str, &str)> = bad_trades
        .iter()
        .map(|&(name, buyer, amount, date, why)| {
            (name, trade(buyer, amount, date), balances.clone(), "transactions.csv line 7", why)
        })
        .collect();
    // The export's balance of HORA0002 is not what its trades add up to.
    let wrong = balances.replace("HORA0002,24.50", "HORA0002,25.50");
    cases.push(("balance", trades.clone(), wrong, "balances.csv line 4", "declared balance 25.5 of HORA0002"));
    for (name, trades_text, balances_text, place, words) in cases {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        let files = [dir.join("users.csv"), dir.join("transactions.csv"), dir.join("balances.csv")];
        std::fs::write(&files[0], read("users.csv")).expect("write");
        std::fs::write(&files[1], trades_text).expect("write");
        std::fs::write(&files[2], balances_text).expect("write");
        let target = dir.join("node");
        let out = import_as(CES_OPTIONS, &target, &files.iter().map(|f| f.as_path()).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(place) && stderr.contains(words), "{name}: {stderr}");
        assert!(stderr.contains("nothing written"), "{name}: {stderr}");
        assert!(!target.exists(), "{name}: {} was written", target.display());
        assert!(stdout(&out).is_empty(), "{name}: no keys printed");
        let left: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().filter(|e| e.path().is_dir()).collect();
        assert!(left.is_empty(), "{name}: {left:?} left behind");
    }
    // --utc-offset belongs to the CES export only.
    let out = import_as(
        &["--format", "ccnode", "--utc-offset", "+02:00"],
        &work.path().join("x"),
        &[&ces_fixture("users.csv")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--utc-offset is for --format ces"));
}
