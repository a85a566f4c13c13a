//! A Komunitin-dialect link exercised both ways against the real `ccnode`
//! binary, with the hashes checked on both sides.
//!
//! The neighbour is a fake Komunitin in this file: a tiny HTTP server on
//! loopback doing exactly what Komunitin does (community-exchange-network/
//! komunitin at a3de3eab; `accounting/src/creditcommons/credit-commons-controller.ts`
//! is CCC, `accounting/src/server/auth.ts` is A). Topology, as in Komunitin's
//! tests (`test/server/setup.ts` l.88-99): ccnode is the root `trunk`;
//! Komunitin's currency TEST is its child `branch2`, configured with
//! peerNodePath `trunk`, ourNodePath `trunk/branch2`, lastHash `trunk`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::Server;

const PEER_NODE_PATH: &str = "trunk";
const OUR_NODE_PATH: &str = "trunk/branch2";

/// What the fake Komunitin holds: its `CreditCommonsNode` row's lastHash, the
/// balances of its local accounts, the transfer ids it has seen and every request.
#[derive(Debug, Default)]
struct KomunitinState {
    last_hash: String,
    balances: BTreeMap<String, f64>,
    transfers: Vec<String>,
    requests: Vec<String>,
}

#[derive(Debug, Clone)]
struct Komunitin {
    url: String,
    state: Arc<Mutex<KomunitinState>>,
}

/// JS `Number#toString` for the amounts these tests use (finite, below 1e21,
/// at most 15 significant digits): integers without a point, others in
/// shortest round-trip form, which Rust's `Display` for f64 also is.
fn js_number(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().expect("finite");
            if f.fract() == 0.0 {
                format!("{f:.0}")
            } else {
                format!("{f}")
            }
        }
        // A JSON string is used verbatim by the template literal.
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `${x}` of a JS value in a template literal (missing → "undefined").
fn js_template(v: Option<&Value>) -> String {
    match v {
        None => "undefined".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => "null".to_owned(),
        Some(other) => js_number(other),
    }
}

/// `makeHash` (CCC l.23-32): `[lastHash, uuid, state, entries.map(e =>
/// `${e.quant}|${e.description}`).join('|'), version].join('|')`, MD5 hex.
/// `Array#join` turns undefined/null into the empty string.
fn make_hash(tx: &Value, last_hash: &str) -> String {
    let join = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(v) => js_template(Some(v)),
    };
    let entries: Vec<String> = tx["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| format!("{}|{}", js_template(e.get("quant")), js_template(e.get("description"))))
        .collect();
    let text =
        [last_hash.to_owned(), join(tx.get("uuid")), join(tx.get("state")), entries.join("|"), join(tx.get("version"))]
            .join("|");
    md5_hex(&text)
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `ledgerOf` (CCC l.34-41): everything up to and including the last `/`.
fn ledger_of(address: &str) -> &str {
    address.rfind('/').map_or("", |i| &address[..=i])
}

struct Answer {
    status: u16,
    body: String,
    trace: bool,
}

fn error(status: u16, message: &str) -> Answer {
    // Error bodies on every CC route (routes.ts l.16-31).
    Answer { status, body: json!({"errors": [message]}).to_string(), trace: false }
}

impl Komunitin {
    fn start(accounts: &[&str]) -> Komunitin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = KomunitinState {
            last_hash: "trunk".to_owned(),
            balances: accounts.iter().map(|a| ((*a).to_owned(), 0.0)).collect(),
            ..KomunitinState::default()
        };
        let fake = Komunitin { url, state: Arc::new(Mutex::new(state)) };
        let server = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        fake
    }

    fn last_hash(&self) -> String {
        self.state.lock().expect("lock").last_hash.clone()
    }

    fn balance(&self, code: &str) -> f64 {
        self.state.lock().expect("lock").balances[code]
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().expect("lock").requests.clone()
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = self.handle(&method, &path, &headers, &body);
        let mut stream = stream;
        let trace = if answer.trace { "cc-node-trace: undefined, <branch2\r\n" } else { "" };
        let reason = if answer.status < 300 { "OK" } else { "Error" };
        let _ = write!(
            stream,
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{trace}Connection: close\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
    }

    fn handle(&self, method: &str, path: &str, headers: &BTreeMap<String, String>, body: &[u8]) -> Answer {
        let mut state = self.state.lock().expect("lock");
        state.requests.push(format!("{method} {path}"));
        // lastHashAuth (A l.100-120) then checkLastHashAuth (CCC l.103-125), in this order.
        let node = headers.get("cc-node").filter(|v| !v.is_empty());
        let Some(node) = node else { return error(401, "cc-node header is required.") };
        let hash = headers.get("last-hash").filter(|v| !v.is_empty());
        let Some(hash) = hash else { return error(401, "last-hash header is required.") };
        if node != PEER_NODE_PATH {
            return error(401, &format!("cc-node {} is not our trunkward node.", json!(node)));
        }
        if *hash != state.last_hash {
            return error(401, &format!("value of last-hash header {} does not match our records.", json!(hash)));
        }
        if method == "PATCH" && path.starts_with("/TEST/cc/transaction/") {
            // CCC l.276-281: 404 for an unknown transfer, else "not implemented yet".
            let id = path.trim_start_matches("/TEST/cc/transaction/").split('/').next().unwrap_or("");
            if state.transfers.iter().any(|t| t == id) {
                return error(500, "not implemented yet");
            }
            return error(404, &format!("Transfer {id} not found"));
        }
        if method != "POST" || path != "/TEST/cc/transaction/relay" {
            return error(404, "not found");
        }
        let Ok(tx) = serde_json::from_slice::<Value>(body) else { return error(400, "bad body") };
        // ccToLocal (CCC l.160-259): absolute paths, one local account, a net credit to it.
        let base = format!("{OUR_NODE_PATH}/");
        let mut local: Option<String> = None;
        let mut net_gain = 0.0;
        for e in tx["entries"].as_array().cloned().unwrap_or_default() {
            let (payer, payee) = (e["payer"].as_str().unwrap_or(""), e["payee"].as_str().unwrap_or(""));
            let (payer_local, payee_local) = (ledger_of(payer) == base, ledger_of(payee) == base);
            let party = match (payer_local, payee_local) {
                (true, true) => return error(400, "Payer and Payee cannot both be local"),
                (false, false) => return error(400, "Payer and Payee cannot both be remote"),
                (true, false) => payer,
                (false, true) => payee,
            };
            let code = party[base.len()..].to_owned();
            if local.as_ref().is_some_and(|l| *l != code) {
                return error(400, "All entries must be to or from the same local account");
            }
            local = Some(code);
            let quant = e["quant"].as_f64().unwrap_or(f64::NAN);
            net_gain += if payee_local { quant } else { -quant };
        }
        if net_gain.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return error(400, "Net gain must be positive for incoming transaction");
        }
        let code = local.expect("some entry");
        if !state.balances.contains_key(&code) {
            return error(404, &format!("local party {code} not found on {OUR_NODE_PATH}"));
        }
        let uuid = tx["uuid"].as_str().unwrap_or("").to_owned();
        // TC l.22-64: a replayed id fails.
        if state.transfers.contains(&uuid) {
            return error(400, &format!("Transfer with id {uuid} already exists"));
        }
        state.transfers.push(uuid);
        *state.balances.get_mut(&code).expect("checked") += net_gain;
        // CCC l.264-265: the new hash over the body as received, after booking.
        state.last_hash = make_hash(&tx, &state.last_hash.clone());
        // CCC l.266-274: 201, the entries echoed, secs_valid_left 0, with the trace header.
        let data = tx["entries"].to_string();
        Answer { status: 201, body: format!(r#"{{"data":{data},"meta":{{"secs_valid_left":0}}}}"#), trace: true }
    }

    /// Komunitin as sender (`createCreditCommonsTransfer`, CCC l.416-477):
    /// the local debit first, then `POST {url}transaction/relay` with
    /// `cc-node: <last segment of ourNodePath>`, the stored last hash and a
    /// pretty-printed body in Komunitin's key order; on 200/201 the hash
    /// advances over what it sent. `version: None` sends 3.receive.test.ts's
    /// shape (no `version`), `Some(1)` what Komunitin itself sends.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        ccnode: &Server,
        uuid: &str,
        payer: &str,
        payee: &str,
        quant: &str,
        description: &str,
        version: Option<u64>,
    ) -> (StatusCode, Value, Value) {
        let last_hash = self.last_hash();
        let version_field = version.map(|v| format!("  \"version\": {v},\n")).unwrap_or_default();
        let text = format!(
            "{{\n{version_field}  \"uuid\": \"{uuid}\",\n  \"state\": \"V\",\n  \"workflow\": \"|P-PC+CX+\",\n  \"entries\": [\n    {{\n      \"payee\": \"{payee}\",\n      \"payer\": \"{OUR_NODE_PATH}/{payer}\",\n      \"quant\": {quant},\n      \"description\": {},\n      \"metadata\": {{}}\n    }}\n  ]\n}}",
            json!(description)
        );
        let tx: Value = serde_json::from_str(&text).expect("a JSON body");
        let response = reqwest::blocking::Client::new()
            .post(format!("{}/transaction/relay", ccnode.url))
            .header("content-type", "application/json")
            .header("cc-node", OUR_NODE_PATH.rsplit('/').next().expect("segment"))
            .header("last-hash", &last_hash)
            .body(text)
            .send()
            .expect("ccnode answers");
        let status = response.status();
        let answer: Value = serde_json::from_str(&response.text().expect("body")).unwrap_or(Value::Null);
        if status == StatusCode::OK || status == StatusCode::CREATED {
            let mut state = self.state.lock().expect("lock");
            *state.balances.get_mut(payer).expect("a local account") -= tx["entries"][0]["quant"].as_f64().expect("n");
            state.last_hash = make_hash(&tx, &last_hash);
        }
        (status, answer, tx)
    }
}

fn ccnode_head(node: &Server) -> String {
    let (status, value) = node.call(Method::GET, "/admin/nodes", "admin", None);
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["data"]["branch2"]["dialect"], "komunitin", "{value}");
    value["data"]["branch2"]["last_hash"].as_str().expect("hash").to_owned()
}

fn balance(node: &Server, id: &str) -> f64 {
    // The fake Komunitin keeps f64 balances as Komunitin's JavaScript does; compared as such.
    node.balances("trunk").into_iter().find(|(a, _)| a == id).map_or(0.0, |(_, b)| f64::try_from(b).expect("finite"))
}

fn transactions(node: &Server) -> u64 {
    let (_, value) = node.call(Method::GET, "/transactions?limit=1", "admin", None);
    value["meta"]["number_of_results"].as_u64().expect("count")
}

fn completed(node: &Server) -> u64 {
    let (_, value) = node.call(Method::GET, "/transactions?limit=1&states=completed", "admin", None);
    value["meta"]["number_of_results"].as_u64().expect("count")
}

struct Setup {
    trunk: Server,
    komunitin: Komunitin,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let komunitin = Komunitin::start(&["TEST0000", "TEST0001", "TEST0002"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let trunk = Server::start(dir.path(), "trunk");
    trunk.open("bob", -1000, 1000);
    // Komunitin refuses an empty last-hash (A l.106): so does grafting.
    let graft = |hash: &str| {
        json!({"id": "branch2", "url": format!("{}/TEST/cc/", komunitin.url), "min": -1000, "max": 1000,
               "last_hash": hash, "dialect": "komunitin"})
    };
    let (status, value) = trunk.call(Method::POST, "/admin/nodes", "admin", Some(graft("")));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    let mut bad = graft("trunk");
    bad["dialect"] = json!("martian");
    let (status, value) = trunk.call(Method::POST, "/admin/nodes", "admin", Some(bad));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    let (status, value) = trunk.call(Method::POST, "/admin/nodes", "admin", Some(graft("trunk")));
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["data"]["dialect"], "komunitin");
    assert_eq!(ccnode_head(&trunk), "trunk");
    Setup { trunk, komunitin, _dir: dir }
}

const FIXTURE_UUID: &str = "3d8ebb9f-6a29-42cb-9d39-9ee0a6bf7f1c";
const FIXTURE_DESCRIPTION: &str = "test long distance for 3 from leaf";

#[test]
fn the_fake_komunitin_hashes_as_komunitin_tests_assert() {
    // 3.receive.test.ts: after relaying the one-entry fixture with last-hash
    // `trunk`, Komunitin accepts last-hash 196bf56f… (the notes' V1 and V2).
    let mut tx = json!({"uuid": FIXTURE_UUID, "state": "V", "workflow": "|P-PC+CX+", "entries": [
        {"payee": "trunk/branch2/TEST0002", "payer": "trunk/branch/twig/alice", "quant": 0.01,
         "description": FIXTURE_DESCRIPTION, "metadata": {"foo": "bar"}}]});
    assert_eq!(make_hash(&tx, "trunk"), "196bf56fdf9c2b747a20b8604b7b1f61");
    tx["version"] = json!(1);
    assert_eq!(make_hash(&tx, "trunk"), "0468cf7c904eafa6dd59cc295442f8dc");
}

#[test]
fn a_komunitin_link_carries_payments_both_ways_with_the_same_hashes_on_both_sides() {
    let Setup { trunk, komunitin, _dir } = setup();

    // (1) Komunitin → ccnode: 3.receive.test.ts's fixture, paths absolute for
    // this tree. A wrong hash first: refused, nothing changes anywhere.
    let relay = |hash: &str, uuid: &str| {
        let body = json!({"uuid": uuid, "state": "V", "workflow": "|P-PC+CX+", "entries": [
            {"payee": "trunk/bob", "payer": "trunk/branch2/TEST0001", "quant": 0.01,
             "description": FIXTURE_DESCRIPTION, "metadata": {"foo": "bar"}}]});
        trunk.request_json(Method::POST, "/transaction/relay", &[("cc-node", "branch2"), ("last-hash", hash)], &body)
    };
    let (status, value) = relay("qwer", FIXTURE_UUID);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{value}");
    assert_eq!(value["errors"][0]["class"], "HashMismatchFailure", "{value}");
    assert_eq!((ccnode_head(&trunk), balance(&trunk, "bob"), transactions(&trunk)), ("trunk".to_owned(), 0.0, 0));

    let (status, answer, sent) =
        komunitin.send(&trunk, FIXTURE_UUID, "TEST0001", "trunk/bob", "0.01", FIXTURE_DESCRIPTION, None);
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["data"], sent["entries"], "the entries are echoed");
    assert_eq!(answer["meta"]["secs_valid_left"], 0);
    assert_eq!(ccnode_head(&trunk), "196bf56fdf9c2b747a20b8604b7b1f61");
    assert_eq!(komunitin.last_hash(), "196bf56fdf9c2b747a20b8604b7b1f61");
    assert_eq!(balance(&trunk, "bob"), 0.01);
    assert_eq!(balance(&trunk, "branch2"), -0.01);
    let (_, tx) = trunk.call(Method::GET, &format!("/transaction/{FIXTURE_UUID}"), "admin", None);
    assert_eq!(tx["data"]["state"], "completed", "{tx}");
    // The old hash is refused now, and a replay of the same relay too.
    let (status, value) = relay("trunk", &uuid::Uuid::new_v4().to_string());
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{value}");
    let (status, value) = relay("196bf56fdf9c2b747a20b8604b7b1f61", FIXTURE_UUID);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["errors"][0]["class"], "DuplicateUuidViolation", "{value}");
    assert_eq!(ccnode_head(&trunk), "196bf56fdf9c2b747a20b8604b7b1f61");
    // A following request with the new hash is accepted (Komunitin's own shape, version 1).
    let uuid = uuid::Uuid::new_v4().to_string();
    let (status, answer, _) = komunitin.send(&trunk, &uuid, "TEST0001", "trunk/bob", "2.5", "second", Some(1));
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(ccnode_head(&trunk), komunitin.last_hash());
    assert_eq!(balance(&trunk, "bob"), 2.51);

    // (2) ccnode → Komunitin: bob pays TEST0002, twice; the chain continues on both sides.
    let pay = |quant: f64, description: &str| {
        let body = json!({"payer": "bob", "payee": "branch2/TEST0002", "quant": quant, "description": description,
                          "type": "payment"});
        trunk.call(Method::POST, "/transaction", "bob", Some(body))
    };
    let (status, value) = pay(1.25, "to komunitin");
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(komunitin.balance("TEST0002"), 1.25);
    assert_eq!(ccnode_head(&trunk), komunitin.last_hash());
    let (status, value) = pay(0.5, "again");
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(komunitin.balance("TEST0002"), 1.75);
    assert_eq!(ccnode_head(&trunk), komunitin.last_hash());
    assert_eq!(balance(&trunk, "bob"), 0.76);

    // (3) Both directions interleaved: the hashes agree after each payment.
    for round in 0..3 {
        let uuid = uuid::Uuid::new_v4().to_string();
        let (status, answer, _) =
            komunitin.send(&trunk, &uuid, "TEST0000", "trunk/bob", "0.3", &format!("in {round}"), Some(1));
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(ccnode_head(&trunk), komunitin.last_hash(), "after incoming {round}");
        let (status, value) = pay(0.1, &format!("out {round}"));
        assert_eq!(status, StatusCode::CREATED, "{value}");
        assert_eq!(ccnode_head(&trunk), komunitin.last_hash(), "after outgoing {round}");
    }
    // Komunitin refusing (an unknown account): nothing is written here, no hash moves.
    let (head, count, bob) = (ccnode_head(&trunk), completed(&trunk), balance(&trunk, "bob"));
    let body =
        json!({"payer": "bob", "payee": "branch2/TEST0099", "quant": 1, "description": "nobody", "type": "payment"});
    let (status, value) = trunk.call(Method::POST, "/transaction", "bob", Some(body));
    assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    assert!(value["errors"][0]["class"].is_string(), "CC error JSON: {value}");
    assert_eq!(ccnode_head(&trunk), head);
    assert_eq!(komunitin.last_hash(), head);
    assert_eq!(balance(&trunk, "bob"), bob);
    // Only the validated copy (no balance moved) stays, and expires; see docs/PROTOCOL.md.
    assert_eq!(completed(&trunk), count, "nothing completed");

    // (4) Bills and credits wait for a signature: they cannot cross; refused before anything is sent or written.
    let requests = komunitin.requests().len();
    for (payer, payee, workflow, author) in
        [("branch2/TEST0002", "bob", "bill", "bob"), ("bob", "branch2/TEST0002", "credit", "bob")]
    {
        let body = json!({"payer": payer, "payee": payee, "quant": 1, "description": "wait", "type": workflow});
        let (status, value) = trunk.call(Method::POST, "/transaction", author, Some(body));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{workflow}: {value}");
        assert_eq!(value["errors"][0]["class"], "InvalidFieldsViolation", "{value}");
    }
    assert_eq!(komunitin.requests().len(), requests, "nothing reached Komunitin");
    assert_eq!(ccnode_head(&trunk), komunitin.last_hash());

    // No PATCH ever reached Komunitin, and every request it got was a relay.
    let requests = komunitin.requests();
    assert!(requests.iter().all(|r| r == "POST /TEST/cc/transaction/relay"), "{requests:?}");
    assert_eq!(requests.len(), 2 + 3 + 1);
}
