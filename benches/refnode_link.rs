//! Cross-node payments over a link with the real PHP reference node (issue
//! 17): a reference trunk `hub` with two children, a reference branch `refb`
//! and a `ccnode` `cc`, measured in one run, interleaved:
//!
//! - reference ↔ reference: `refb/alice` pays `hub/bob` (`pay`, the relay is the write);
//! - ccnode → reference: `cc/carol` pays `hub/bob` (ccnode journals its validated
//!   copy, sends the relay as the write, writes);
//! - reference → ccnode: `bob` on the hub pays `cc/carol`.
//!
//! One client at a time: a reference node does not serialise writes on one
//! link, so two relays on one link at once split its hash chain (its
//! `hash_history` gets two rows from one parent), whichever node sends them.
//!
//! ```sh
//! cargo build --release --bin ccnode
//! cargo bench --bench refnode_link -- [--ccnode PATH] [--seconds 10] [--rounds 2] [--quick]
//! ```
//! Needs `../shared/refnode/` (it installs PHP and MariaDB with apt when missing).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;

const ADMIN_KEY: &str = "bench-admin";

fn refnode() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/refnode/refnode.py"))
}

fn refnode_run(args: &[&str]) -> String {
    let output = Command::new("python3").arg(refnode()).arg("-q").args(args).output().expect("refnode.py");
    assert!(output.status.success(), "refnode.py {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Work(PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        let _ = Command::new("python3").arg(refnode()).args(["-q", "down", "--workdir"]).arg(&self.0).output();
    }
}

struct Ccnode(Child);

impl Drop for Ccnode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_ccnode(ccnode: &Path, data: &Path, listen: &str, hub: &str) -> Ccnode {
    let (child, _url) = benchkit::spawn_listening(
        Command::new(ccnode)
            .args(["serve", "--data", data.to_str().expect("utf-8"), "--listen", listen, "--name", "cc"])
            .args(["--trunkward-name", "hub", "--trunkward-url", hub, "--trunkward-min", "-1000000000"])
            .args(["--trunkward-max", "1000000000"])
            .env("CCNODE_ADMIN_KEY", ADMIN_KEY)
            .env("CCNODE_LOG", "warn"),
    );
    Ccnode(child)
}

const BENCH: benchkit::Bench = benchkit::Bench("refnode_link");

/// Pays from `user` at `url` to `payee` for `seconds`; the table row, and
/// the `figure` lines named `name` (payments/s, p99).
fn measure(
    client: &reqwest::blocking::Client,
    url: &str,
    (user, key): (&str, &str),
    payee: &str,
    seconds: u64,
    name: &str,
) -> String {
    let started = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        let body = json!({"payee": payee, "quant": 1, "description": "bench", "type": "pay"});
        let ok = client
            .post(format!("{url}/transaction"))
            .header("cc-user", user)
            .header("cc-auth", key)
            .json(&body)
            .send()
            .is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED);
        if ok {
            latencies.push(t.elapsed());
        } else {
            errors += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    BENCH.figure(&format!("{name}_payments_per_s"), latencies.len() as f64 / elapsed, "1/s");
    BENCH.figure(&format!("{name}_p99_ms"), benchkit::percentile(&latencies, 990).as_secs_f64() * 1e3, "ms");
    format!(
        "{:.0} | {:.1} ms | {:.1} ms | {errors}",
        latencies.len() as f64 / elapsed,
        benchkit::percentile(&latencies, 500).as_secs_f64() * 1e3,
        benchkit::percentile(&latencies, 990).as_secs_f64() * 1e3
    )
}

fn main() {
    let args = benchkit::Args::from_env();
    let quick = args.has("--quick");
    let ccnode = args.ccnode();
    let seconds: u64 = args.flag("--seconds").and_then(|s| s.parse().ok()).unwrap_or(if quick { 2 } else { 10 });
    let rounds: usize = args.flag("--rounds").and_then(|s| s.parse().ok()).unwrap_or(if quick { 1 } else { 2 });
    let dir = tempfile::Builder::new().prefix("ccnode-refnode-bench").tempdir_in(".").expect("bench dir");
    let work = Work(dir.path().join("refnode"));
    let ports: Vec<String> = refnode_run(&["freeport", "3"]).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let (hub_port, refb_port, cc_port) = (&ports[0], &ports[1], &ports[2]);
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let cc_url = format!("http://127.0.0.1:{cc_port}");
    let _cc = start_ccnode(&ccnode, &dir.path().join("cc"), &format!("127.0.0.1:{cc_port}"), &hub_url);
    let workdir = work.0.to_str().expect("utf-8").to_owned();
    let refb_child = format!("refb=http://127.0.0.1:{refb_port}");
    let cc_child = format!("cc={cc_url}");
    refnode_run(&[
        "up",
        "--workdir",
        &workdir,
        "--name",
        "hub",
        "--port",
        hub_port,
        "--dev-mode",
        "0",
        "--account",
        "bob:123:-1000000000:1000000000",
        "--child",
        &refb_child,
        "--child",
        &cc_child,
    ]);
    refnode_run(&[
        "up",
        "--workdir",
        &workdir,
        "--name",
        "refb",
        "--port",
        refb_port,
        "--dev-mode",
        "0",
        "--account",
        "alice:123:-1000000000:1000000000",
        "--trunkward-name",
        "hub",
        "--trunkward-url",
        &hub_url,
    ]);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let account = json!({"id": "carol", "key": "carol-key", "min": -1_000_000_000, "max": 1_000_000_000});
    let response = client
        .post(format!("{cc_url}/admin/accounts"))
        .header("cc-user", "admin")
        .header("cc-auth", ADMIN_KEY)
        .json(&account)
        .send()
        .expect("open carol");
    assert!(response.status().is_success());
    let refb_url = format!("http://127.0.0.1:{refb_port}");
    println!("| round | link | payments/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");
    for round in 1..=rounds {
        let line = measure(&client, &refb_url, ("alice", "123"), "hub/bob", seconds, &format!("r{round}_ref_to_ref"));
        println!("| {round} | reference → reference (refb/alice → hub/bob) | {line} |");
        let line =
            measure(&client, &cc_url, ("carol", "carol-key"), "hub/bob", seconds, &format!("r{round}_ccnode_to_ref"));
        println!("| {round} | ccnode → reference (cc/carol → hub/bob) | {line} |");
        let line = measure(&client, &hub_url, ("bob", "123"), "cc/carol", seconds, &format!("r{round}_ref_to_ccnode"));
        println!("| {round} | reference → ccnode (hub/bob → cc/carol) | {line} |");
        let line =
            measure(&client, &hub_url, ("bob", "123"), "refb/alice", seconds, &format!("r{round}_ref_to_ref_back"));
        println!("| {round} | reference → reference (hub/bob → refb/alice) | {line} |");
    }
}
