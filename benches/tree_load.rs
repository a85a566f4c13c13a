//! Cross-tree payment load (issue 5): five real `ccnode serve` processes on
//! loopback, payments from leaves of twig1 to leaves of twig2 crossing three
//! intermediate nodes:
//!
//! ```text
//!                 trunk
//!               /       \
//!         branch1       branch2
//!            |             |
//!          twig1         twig2
//!      (payers p0..)   (payees q0..)
//! ```
//!
//! Each payment is `POST /transaction` with the immediate `pay` workflow at
//! twig1: relayed down the chain, then written at every node (five fsyncs on
//! the way back). Reports payments/s and latency percentiles per concurrency.
//!
//! ```sh
//! cargo build --release --bin ccnode
//! cargo bench --bench tree_load -- [--ccnode PATH] [--connections 16,64] [--seconds 10] [--quick]
//! ```
//! Data goes under `$CCNODE_BENCH_DIR` (default: a temp dir in the current directory, so it is on a real disk).

use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

const ADMIN_KEY: &str = "bench-admin";
const PAYERS: usize = 64;
const PAYEES: usize = 64;

struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BENCH: benchkit::Bench = benchkit::Bench("tree_load");

fn start(ccnode: &Path, data: &Path, name: &str) -> Node {
    let (child, url) = benchkit::spawn_listening(
        Command::new(ccnode)
            .args([
                "serve",
                "--data",
                data.join(name).to_str().expect("utf-8"),
                "--listen",
                "127.0.0.1:0",
                "--name",
                name,
            ])
            .env("CCNODE_ADMIN_KEY", ADMIN_KEY)
            .env("CCNODE_LOG", "warn"),
    );
    Node { child, url }
}

async fn admin(client: &reqwest::Client, method: reqwest::Method, url: String, body: serde_json::Value) {
    let response = client
        .request(method, &url)
        .header("cc-user", "admin")
        .header("cc-auth", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("admin call");
    assert!(response.status().is_success(), "{url}: {}", response.text().await.unwrap_or_default());
}

async fn graft(client: &reqwest::Client, parent: &Node, parent_name: &str, child: &Node, child_name: &str) {
    let hash = format!("{parent_name}-{child_name}");
    let wide = json!({"min": -1_000_000_000, "max": 1_000_000_000});
    let body = json!({"id": child_name, "url": child.url, "min": wide["min"], "max": wide["max"], "last_hash": hash, "dialect": "ccnode"});
    admin(client, reqwest::Method::POST, format!("{}/admin/nodes", parent.url), body).await;
    let body = json!({"name": parent_name, "url": parent.url, "rate": 1, "min": wide["min"], "max": wide["max"], "last_hash": hash, "dialect": "ccnode"});
    admin(client, reqwest::Method::PUT, format!("{}/admin/trunkward", child.url), body).await;
}

fn main() {
    let args = benchkit::Args::from_env();
    let quick = args.has("--quick");
    let ccnode = args.ccnode();
    let seconds: u64 = args.flag("--seconds").and_then(|s| s.parse().ok()).unwrap_or(if quick { 2 } else { 10 });
    let levels: Vec<usize> = args
        .flag("--connections")
        .map(|s| s.split(',').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| if quick { vec![4] } else { vec![16, 64] });
    let base = benchkit::bench_dir();
    let dir = tempfile::Builder::new().prefix("ccnode-tree-bench").tempdir_in(&base).expect("bench dir");

    let trunk = start(&ccnode, dir.path(), "trunk");
    let branch1 = start(&ccnode, dir.path(), "branch1");
    let branch2 = start(&ccnode, dir.path(), "branch2");
    let twig1 = start(&ccnode, dir.path(), "twig1");
    let twig2 = start(&ccnode, dir.path(), "twig2");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");
        graft(&client, &trunk, "trunk", &branch1, "branch1").await;
        graft(&client, &trunk, "trunk", &branch2, "branch2").await;
        graft(&client, &branch1, "branch1", &twig1, "twig1").await;
        graft(&client, &branch2, "branch2", &twig2, "twig2").await;
        for i in 0..PAYERS {
            let body = json!({"id": format!("p{i}"), "key": format!("k{i}"), "min": -1_000_000_000, "max": 0});
            admin(&client, reqwest::Method::POST, format!("{}/admin/accounts", twig1.url), body).await;
        }
        for i in 0..PAYEES {
            let body = json!({"id": format!("q{i}"), "key": format!("k{i}"), "min": 0, "max": 1_000_000_000});
            admin(&client, reqwest::Method::POST, format!("{}/admin/accounts", twig2.url), body).await;
        }
        println!("| connections | payments/s | p50 | p99 | max | errors |");
        println!("|---|---|---|---|---|---|");
        for &connections in &levels {
            let stop = Arc::new(AtomicBool::new(false));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..connections {
                let (client, url, stop) = (client.clone(), twig1.url.clone(), Arc::clone(&stop));
                tasks.push(tokio::spawn(async move {
                    let (mut latencies, mut errors, mut n) = (Vec::new(), 0u64, c);
                    while !stop.load(Ordering::Relaxed) {
                        let payer = n % PAYERS;
                        let body = json!({"payer": format!("p{payer}"), "payee": format!("branch2/twig2/q{}", n % PAYEES),
                                          "quant": 1, "description": "bench", "type": "pay"});
                        n += connections;
                        let sent = Instant::now();
                        let response = client
                            .post(format!("{url}/transaction"))
                            .header("cc-user", format!("p{payer}"))
                            .header("cc-auth", format!("k{payer}"))
                            .json(&body)
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status().as_u16() == 201 => latencies.push(sent.elapsed()),
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                }));
            }
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            let (mut latencies, mut errors) = (Vec::new(), 0);
            for task in tasks {
                let (l, e) = task.await.expect("client task");
                latencies.extend(l);
                errors += e;
            }
            let elapsed = started.elapsed().as_secs_f64();
            latencies.sort();
            let rate = latencies.len() as f64 / elapsed;
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
            println!(
                "| {connections} | {rate:.0} | {} | {} | {} | {errors} |",
                ms(benchkit::percentile(&latencies, 500)),
                ms(benchkit::percentile(&latencies, 990)),
                ms(latencies.last().copied().unwrap_or_default())
            );
            BENCH.figure(&format!("c{connections}_payments_per_s"), rate, "1/s");
            BENCH.figure(&format!("c{connections}_p99_ms"), benchkit::percentile(&latencies, 990).as_secs_f64() * 1000.0, "ms");
        }
    });
    drop((trunk, branch1, branch2, twig1, twig2));
}
