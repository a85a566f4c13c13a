//! Restart time and memory (issue 10, item 3): how long `ccnode serve` takes
//! from its start to the first answered request on a large journal, after a
//! clean stop (the snapshot is at the head) and with the snapshot 100,000
//! events behind the head (as after a SIGKILL long after the last snapshot),
//! and its peak RSS then.
//!
//! The journal is written directly with the ledger's own events: a node with
//! `--accounts` members and `--events` immediate local payments between them
//! (each one `TransactionProposed`, as `decide` records a `payment`), amounts
//! cycling so no balance leaves its limits.
//!
//! ```sh
//! cargo build --release --bin ccnode
//! cargo bench --bench startup -- [--events 1000000] [--accounts 100000] [--ccnode PATH] [--keep DIR]
//! ```
//! Data goes under `$CCNODE_BENCH_DIR` (default: the current directory, a real disk).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use journal::{Journal, Options};
use ledger::{
    Account, AccountId, AccountKind, AccountStatus, Amount, Entry, Event, Limits, NodeConfig, NodeName, State,
    Transaction, TxId, WorkflowRef,
};

const ADMIN_KEY: &str = "bench-admin";
const NAME: &str = "big";
/// Events journaled after the snapshot for the "behind" start.
const TAIL: u64 = 100_000;

fn id(i: u64) -> AccountId {
    AccountId::new(&format!("m{i}")).expect("valid id")
}

/// The `i`-th payment: member `i % n` pays the next one, 1 to 9 units.
fn payment(config: &NodeConfig, i: u64, accounts: u64, at: u64) -> Event {
    let workflow = WorkflowRef::of(shipped_payment(config));
    let (payer, payee) = (id(i % accounts), id((i + 1) % accounts));
    let entry = Entry {
        payer: payer.clone(),
        payee,
        quant: Amount::from_units(i64::try_from(1 + i % 9).expect("small")),
        description: format!("payment {i}"),
        metadata: Default::default(),
        remote: Default::default(),
    };
    let uuid = TxId(uuid::Uuid::from_u128(u128::from(i) + 1));
    Event::TransactionProposedRef {
        transaction: Transaction {
            uuid,
            version: 1,
            state: State::Completed,
            workflow,
            author: payer,
            written_unix_s: at,
            entries: vec![entry],
        },
    }
}

/// Appends `events` payments from number `first`, 1,000 per batch.
fn append_payments(dir: &Path, config: &NodeConfig, first: u64, count: u64, accounts: u64) {
    let mut journal = Journal::open(&dir.join("journal"), Options::default()).expect("open the journal");
    let mut batch = Vec::with_capacity(1000);
    for i in first..first + count {
        batch.push(ledger::encode_event(&payment(config, i, accounts, 1_700_000_000 + i / 1000)));
        if batch.len() == 1000 {
            journal.append_batch(&batch).expect("append");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        journal.append_batch(&batch).expect("append");
    }
}

fn shipped_payment(config: &NodeConfig) -> &ledger::Workflow {
    config.workflows.iter().find(|w| w.id.as_str() == "payment").expect("shipped payment")
}

fn create(dir: &Path, accounts: u64) -> NodeConfig {
    let mut journal = Journal::create(&dir.join("journal"), NAME, Options::default()).expect("create the journal");
    let config = NodeConfig::new(NodeName::new(NAME).expect("name"));
    let mut batch = vec![ledger::encode_event(&Event::NodeInitialised { config: config.clone() })];
    let limits = Limits::new(Amount::from_units(-1_000_000), Amount::from_units(1_000_000)).expect("limits");
    for i in 0..accounts {
        let account =
            Account { id: id(i), kind: AccountKind::User { admin: false }, limits, status: AccountStatus::Active };
        batch.push(ledger::encode_event(&Event::AccountOpened { account }));
        if batch.len() == 1000 {
            journal.append_batch(&batch).expect("append");
            batch.clear();
        }
    }
    // Format 2: the payments name the workflow journaled here.
    batch.push(ledger::encode_event(&Event::WorkflowDefined { workflow: shipped_payment(&config).clone() }));
    journal.append_batch(&batch).expect("append");
    config
}

const BENCH: benchkit::Bench = benchkit::Bench("startup");

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the node and times it until `GET /about` answers 200; also its peak RSS.
fn timed_start(ccnode: &Path, data: &Path) -> (Node, Duration, u64) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let started = Instant::now();
    let (child, url) = benchkit::spawn_listening(
        Command::new(ccnode)
            .args(["serve", "--data", data.to_str().expect("utf-8"), "--name", NAME, "--listen", "127.0.0.1:0"])
            .env("CCNODE_ADMIN_KEY", ADMIN_KEY)
            .env("CCNODE_LOG", "warn"),
    );
    loop {
        let ok = client
            .get(format!("{url}/about"))
            .header("cc-user", "admin")
            .header("cc-auth", ADMIN_KEY)
            .send()
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let hwm_kib = benchkit::status_kb(&child.id().to_string(), "VmHWM").unwrap_or(0);
    (Node(child), elapsed, hwm_kib)
}

fn stop(node: Node) {
    let pid = node.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let mut node = node;
    let _ = node.0.wait();
}

fn main() {
    let args = benchkit::Args::from_env();
    let events: u64 = args.flag("--events").and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let accounts: u64 = args.flag("--accounts").and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let ccnode = args.ccnode();
    let base = benchkit::bench_dir();
    let temp = tempfile::Builder::new().prefix("ccnode-startup-bench").tempdir_in(&base).expect("bench dir");
    let data = args.flag("--keep").map(PathBuf::from).unwrap_or_else(|| temp.path().join("data"));
    std::fs::create_dir_all(&data).expect("data dir");

    let t = Instant::now();
    let config = create(&data, accounts);
    append_payments(&data, &config, 0, events, accounts);
    println!("wrote {accounts} accounts and {events} payments in {:.1} s", t.elapsed().as_secs_f64());

    // First start: no snapshot, the projections are rebuilt; a clean stop saves the snapshot.
    let (node, first, first_rss) = timed_start(&ccnode, &data);
    stop(node);
    println!("| start | to the first answer | peak RSS |");
    println!("|---|---|---|");
    println!("| first (no snapshot) | {:.2} s | {} MiB |", first.as_secs_f64(), first_rss / 1024);
    BENCH.figure("start_first_s", first.as_secs_f64(), "s");
    BENCH.figure("start_first_peak_rss_kib", first_rss as f64, "KiB");
    let (node, clean, clean_rss) = timed_start(&ccnode, &data);
    stop(node);
    println!("| after a clean stop | {:.2} s | {} MiB |", clean.as_secs_f64(), clean_rss / 1024);
    BENCH.figure("start_clean_stop_s", clean.as_secs_f64(), "s");
    BENCH.figure("start_clean_stop_peak_rss_kib", clean_rss as f64, "KiB");
    append_payments(&data, &config, events, TAIL, accounts);
    let (node, behind, behind_rss) = timed_start(&ccnode, &data);
    drop(node);
    println!("| snapshot {TAIL} events behind | {:.2} s | {} MiB |", behind.as_secs_f64(), behind_rss / 1024);
    BENCH.figure("start_snapshot_behind_s", behind.as_secs_f64(), "s");
    BENCH.figure("start_snapshot_behind_peak_rss_kib", behind_rss as f64, "KiB");
}
