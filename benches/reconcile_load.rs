//! Reconciling a link where the peer is N versions ahead (issue 6): two real
//! `ccnode serve` processes, `hub` (parent) and `spoke` (child). Both journals
//! are generated with the ledger's own rules: N payments from spoke to hub,
//! validated on both sides, then completed on the hub only. The spoke starts,
//! reconciles at once, and must copy all N versions from the hub's link feed.
//! Reports the time from starting the spoke until its link head equals the
//! hub's.
//!
//! ```sh
//! cargo build --release --bin ccnode
//! cargo bench --bench reconcile_load -- [--versions 100000] [--ccnode PATH]
//! ```
//! Data goes under `$CCNODE_BENCH_DIR` (default: the current directory, a real disk).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use journal::{Journal, Options};
use ledger::federation::{plan_origin, plan_relay, Origin, RelayIn};
use ledger::{
    AccountId, AccountKind, Amount, Command as LedgerCommand, Context, Event, LedgerState, Limits, NodeConfig,
    NodeName, Peer, Proposal, Rate, State, TxId, WorkflowId,
};

const ADMIN_KEY: &str = "bench-admin";

const BENCH: benchkit::Bench = benchkit::Bench("reconcile_load");

fn id(s: &str) -> AccountId {
    AccountId::new(s).expect("valid id")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Decides `command` on `state`, applies and records the events.
fn run(state: &mut LedgerState, events: &mut Vec<Event>, command: LedgerCommand, now: u64) {
    let ctx = Context { now_unix_s: now, fresh_uuid: TxId(uuid::Uuid::new_v4()) };
    let new = ledger::decide(state, command, &ctx).unwrap_or_else(|v| panic!("generator command refused: {v}"));
    for e in &new {
        state.apply(e);
    }
    events.extend(new);
}

fn node(name: &str, user: &str, peer: &str, kind: AccountKind, url: String) -> (LedgerState, Vec<Event>) {
    let (mut state, mut events) = (LedgerState::new(), Vec::new());
    let config = NodeConfig::new(NodeName::new(name).expect("name"));
    run(&mut state, &mut events, LedgerCommand::InitialiseNode { config }, 1);
    let wide = Limits::new(Amount::from_units(-1_000_000_000), Amount::from_units(1_000_000_000)).expect("limits");
    run(
        &mut state,
        &mut events,
        LedgerCommand::OpenAccount { id: id(user), kind: AccountKind::User { admin: false }, limits: wide },
        1,
    );
    run(&mut state, &mut events, LedgerCommand::OpenAccount { id: id(peer), kind, limits: wide }, 1);
    let peer = Peer { account: id(peer), url, rate: Rate::ONE, initial_hash: "hub-spoke".to_owned() };
    run(&mut state, &mut events, LedgerCommand::ConnectPeer { peer }, 1);
    (state, events)
}

fn write_journal(dir: &Path, identity: &str, events: &[Event]) {
    let mut journal = Journal::create(&dir.join("journal"), identity, Options::default()).expect("journal");
    for chunk in events.chunks(1000) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(ledger::encode_event).collect();
        journal.append_batch(&payloads).expect("append");
    }
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(ccnode: &Path, data: &Path, name: &str, port: u16) -> Node {
    let (child, _url) = benchkit::spawn_listening(
        Command::new(ccnode)
            .args(["serve", "--data", data.to_str().expect("utf-8"), "--name", name])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--reconcile-interval", "3600"])
            .env("CCNODE_ADMIN_KEY", ADMIN_KEY)
            .env("CCNODE_LOG", "warn"),
    );
    Node(child)
}

fn head(client: &reqwest::blocking::Client, port: u16, peer: &str) -> (u64, String) {
    let value: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/admin/nodes"))
        .header("cc-user", "admin")
        .header("cc-auth", ADMIN_KEY)
        .send()
        .and_then(|r| r.json())
        .expect("admin/nodes");
    let link = &value["data"][peer];
    (link["versions"].as_u64().unwrap_or(0), link["last_hash"].as_str().unwrap_or("").to_owned())
}

fn main() {
    let args = benchkit::Args::from_env();
    let versions: usize = args.flag("--versions").and_then(|v| v.parse().ok()).unwrap_or(if args.has("--quick") {
        2_000
    } else {
        100_000
    });
    let ccnode = args.ccnode();
    let base = benchkit::bench_dir();
    let dir = tempfile::Builder::new().prefix("ccnode-reconcile-bench").tempdir_in(&base).expect("bench dir");
    let (hub_port, spoke_port) = (free_port(), free_port());

    let generated = Instant::now();
    let (mut spoke, mut spoke_events) =
        node("spoke", "sami", "hub", AccountKind::Trunkward, format!("http://127.0.0.1:{hub_port}"));
    let (mut hub, mut hub_events) =
        node("hub", "hana", "spoke", AccountKind::Leafward, format!("http://127.0.0.1:{spoke_port}"));
    let start_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    for i in 0..versions {
        let now = start_s + u64::try_from(i / 1000).expect("fits");
        let proposal = Proposal {
            author: id("sami"),
            payer: "sami".to_owned(),
            payee: "hub/hana".to_owned(),
            quant: Amount::from_units(1),
            description: format!("payment {i}"),
            metadata: BTreeMap::new(),
            workflow: WorkflowId::new("pay").expect("id"),
            uuid: Some(TxId(uuid::Uuid::new_v4())),
        };
        let ctx = Context { now_unix_s: now, fresh_uuid: TxId(uuid::Uuid::new_v4()) };
        let Origin::Relay(out) = plan_origin(&spoke, &proposal, &ctx).expect("plan") else {
            panic!("the payment crosses the link")
        };
        let out = *out;
        let forward = out.forward.clone().expect("goes to the hub");
        let relay = RelayIn {
            uuid: out.transaction.uuid,
            workflow: out.transaction.workflow.clone(),
            entries: forward.entries,
        };
        let inbound = plan_relay(&hub, &id("spoke"), relay, &ctx).expect("relay plan");
        let uuid = out.transaction.uuid;
        run(
            &mut spoke,
            &mut spoke_events,
            LedgerCommand::ProposeTransversal { transaction: out.transaction, link: out.link },
            now,
        );
        run(
            &mut hub,
            &mut hub_events,
            LedgerCommand::ProposeTransversal { transaction: inbound.transaction, link: inbound.link },
            now,
        );
        // Only the hub writes the completion: the spoke "crashed" before it did, N times.
        run(
            &mut hub,
            &mut hub_events,
            LedgerCommand::Transition { uuid, to: State::Completed, actor: id("spoke") },
            now,
        );
    }
    write_journal(&dir.path().join("hub"), "hub", &hub_events);
    write_journal(&dir.path().join("spoke"), "spoke", &spoke_events);
    println!(
        "generated {versions} versions ({} + {} events) in {:.1} s",
        hub_events.len(),
        spoke_events.len(),
        generated.elapsed().as_secs_f64()
    );

    let _hub = start(&ccnode, &dir.path().join("hub"), "hub", hub_port);
    let started = Instant::now();
    let _spoke = start(&ccnode, &dir.path().join("spoke"), "spoke", spoke_port);
    let serving = started.elapsed();
    let client = reqwest::blocking::Client::new();
    let target = head(&client, hub_port, "spoke");
    assert_eq!(target.0, u64::try_from(versions).expect("fits"), "the hub holds every version");
    loop {
        let ours = head(&client, spoke_port, "hub");
        if ours == target {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3600), "no convergence within an hour: {ours:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let total = started.elapsed().as_secs_f64();
    println!(
        "| versions | spoke start (replay + serve) | start to converged | versions/s |\n|---:|---:|---:|---:|\n| {versions} | {:.2} s | {total:.2} s | {:.0} |",
        serving.as_secs_f64(),
        f64::from(u32::try_from(versions).unwrap_or(u32::MAX)) / total
    );
    BENCH.figure("spoke_start_s", serving.as_secs_f64(), "s");
    BENCH.figure("converged_s", total, "s");
    BENCH.figure("versions_per_s", f64::from(u32::try_from(versions).unwrap_or(u32::MAX)) / total, "1/s");
}
