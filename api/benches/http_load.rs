//! HTTP load benchmark of a real `ccnode serve` (issue 4).
//!
//! Starts the given `ccnode` binary on a fresh data directory on a real disk,
//! opens 10,000 accounts through the admin API, then for each connection count
//! sends immediate (`pay`) payments between random distinct accounts over
//! persistent HTTP/1.1 keep-alive connections, one request in flight per
//! connection, and prints a markdown row per level: payments/s, latency
//! percentiles, non-2xx answers, mean group-commit batch (from `/metrics`),
//! CPU used by server, client and anything else on the machine (a busy
//! neighbour spoils the figures, so it is shown), and the server's peak RSS (`VmHWM`).
//!
//! ```text
//! export CARGO_TARGET_DIR=/work/main/target-bench
//! cargo build --release --bin ccnode
//! cargo bench -p api --bench http_load -- [--ccnode PATH] [--connections 1,16,64]
//!     [--seconds 10] [--warmup 2] [--accounts 10000] [--client-threads 1] [--quick]
//! ```
//!
//! `--ccnode` defaults to `$CARGO_TARGET_DIR/release/ccnode` when
//! `CARGO_TARGET_DIR` is set, else `<workspace>/target/release/ccnode`. The
//! bench never builds the server itself: build it in release mode first.
//! The data directory is a fresh temporary directory under `$CCNODE_BENCH_DIR`,
//! default the same target directory (on the workspace's disk, so every 201
//! really waited for an `fdatasync` on a disk, not on tmpfs); it is deleted at
//! the end.
//!
//! Why a hand-written HTTP/1.1 client rather than `reqwest` or hyper's client:
//! the load generator shares the machine's 2 cores with the server, so each
//! cycle it spends is taken from the server. A request here is one `write` of
//! a pre-formatted buffer and usually one `read` of the answer, parsed only for
//! the status and `content-length`; no header maps, no connection pool, no
//! extra tasks per connection. It runs on a current-thread tokio runtime by
//! default so it can never use more than one core. It supports exactly what
//! ccnode sends (HTTP/1.1 with `content-length` bodies) and fails loudly on
//! anything else.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use benchkit::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_KEY: &str = "http-load-bench-admin-key";
/// Connections used to open the accounts.
const SETUP_CONNECTIONS: usize = 32;
/// Limits of every account: wide enough that random ±1 payments never hit them.
const ACCOUNT_LIMIT: u64 = 1_000_000_000;
/// Linux reports CPU time in /proc/stat in USER_HZ ticks, 100 per second on every architecture it runs on here.
const USER_HZ: f64 = 100.0;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
struct Args {
    ccnode: PathBuf,
    connections: Vec<usize>,
    seconds: f64,
    warmup: f64,
    accounts: usize,
    client_threads: usize,
}

const BENCH: benchkit::Bench = benchkit::Bench("http_load");

fn default_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"),
    }
}

const USAGE: &str = "usage: http_load [--ccnode PATH] [--connections 1,16,64] [--seconds 10] [--warmup 2] \
[--accounts 10000] [--client-threads 1] [--quick]
  --ccnode PATH       the ccnode binary (default $CARGO_TARGET_DIR/release/ccnode, else <workspace>/target/release/ccnode)
  --connections LIST  concurrent keep-alive connections per level, comma separated (default 1,16,64)
  --seconds N         measured seconds per level (default 10)
  --warmup N          unmeasured seconds before each level (default 2)
  --accounts N        accounts opened before the runs (default 10000)
  --client-threads N  load generator threads (default 1: current-thread runtime)
  --quick             smoke run: 1,16 connections, 1 s each, 0.2 s warm-up, 1000 accounts
Environment: CCNODE_BENCH_DIR  where the temporary data directory is made (default the target directory)";

fn parse_args() -> Result<Args> {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench` to every bench binary.
    raw.retain(|a| a != "--bench");
    let quick = raw.iter().any(|a| a == "--quick");
    let mut args = Args {
        ccnode: default_target_dir().join("release").join("ccnode"),
        connections: if quick { vec![1, 16] } else { vec![1, 16, 64] },
        seconds: if quick { 1.0 } else { 10.0 },
        warmup: if quick { 0.2 } else { 2.0 },
        accounts: if quick { 1000 } else { 10_000 },
        client_threads: 1,
    };
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--quick" {
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--ccnode" => args.ccnode = PathBuf::from(value),
            "--connections" => {
                args.connections = value.split(',').map(|v| v.trim().parse::<usize>()).collect::<Result<_, _>>()?;
                if args.connections.contains(&0) {
                    return Err("--connections: each level must be at least 1".into());
                }
            }
            "--seconds" => args.seconds = value.parse()?,
            "--warmup" => args.warmup = value.parse()?,
            "--accounts" => args.accounts = value.parse()?,
            "--client-threads" => args.client_threads = value.parse::<usize>()?.max(1),
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    if args.accounts < 2 {
        return Err("--accounts must be at least 2".into());
    }
    if args.seconds.is_nan() || args.seconds <= 0.0 || args.warmup.is_nan() || args.warmup < 0.0 {
        return Err("--seconds must be > 0 and --warmup >= 0".into());
    }
    Ok(args)
}

// ---------------------------------------------------------------- the server

/// A running `ccnode serve`; SIGTERMed (then killed if it hangs) when dropped.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Server {
    fn start(binary: &Path, data: &Path) -> Result<Server> {
        if !binary.is_file() {
            return Err(format!(
                "no ccnode binary at {}: build it with `cargo build --release --bin ccnode` or pass --ccnode PATH",
                binary.display()
            )
            .into());
        }
        let mut child = Command::new(binary)
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--admin-key", ADMIN_KEY])
            .env("CCNODE_LOG", std::env::var("CCNODE_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut server = Server { child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        let line = loop {
            match lines.next() {
                Some(line) => {
                    let line = line?;
                    if line.contains(" listening on http://") {
                        break line;
                    }
                }
                None => return Err("ccnode exited before it listened".into()),
            }
        };
        let addr = line.rsplit("http://").next().ok_or("no address in the listening line")?;
        server.addr = addr.trim().parse().map_err(|e| format!("bad address in {line:?}: {e}"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then wait up to 30 s for the graceful shutdown; kill after that.
    fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().ok_or("already stopped")?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                return Err("ccnode did not stop within 30 s of SIGTERM; killed it".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(error) = self.stop() {
                eprintln!("stopping ccnode: {error}");
            }
        }
    }
}

/// CPU seconds all cores spent busy (not idle, not waiting for I/O) since boot.
fn machine_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Some(busy / USER_HZ)
}

/// The file system type that holds `path` (longest mount point prefix in /proc/mounts).
fn fs_type(path: &Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else { return "unknown".to_owned() };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mut best = (0, "unknown".to_owned());
    for line in mounts.lines() {
        let mut parts = line.split_whitespace();
        let (Some(device), Some(mount), Some(kind)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if path.starts_with(mount) && mount.len() >= best.0 {
            best = (mount.len(), format!("{kind} on {device}"));
        }
    }
    best.1
}

// ------------------------------------------------------- a minimal HTTP/1.1 client

/// One keep-alive connection with one request in flight at a time.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    body_start: usize,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(8192), body_start: 0 })
    }

    /// Sends a complete request and reads the whole answer; returns its status.
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let mut head_end = None;
        loop {
            if self.buf.capacity() - self.buf.len() < 2048 {
                self.buf.reserve(8192);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "server closed the connection"));
            }
            if head_end.is_none() {
                head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            }
            if let Some(end) = head_end {
                let (status, length) = parse_head(&self.buf[..end])?;
                let total = end + length;
                if self.buf.len() >= total {
                    if self.buf.len() > total {
                        return Err(bad_data("bytes after the response body"));
                    }
                    self.body_start = end;
                    return Ok(status);
                }
            }
        }
    }

    fn body(&self) -> &[u8] {
        &self.buf[self.body_start..]
    }
}

fn bad_data(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}

/// Status and `content-length` of a response head.
fn parse_head(head: &[u8]) -> std::io::Result<(u16, usize)> {
    let head = std::str::from_utf8(head).map_err(|_| bad_data("non-UTF-8 response head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad_data("bad status line"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().map_err(|_| bad_data("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad_data("chunked responses are not supported by this client"));
        }
    }
    Ok((status, length.ok_or_else(|| bad_data("response without content-length"))?))
}

fn request(buf: &mut Vec<u8>, method: &str, path: &str, addr: SocketAddr, auth: Option<(&str, &str)>, body: &str) {
    buf.clear();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    if let Some((user, key)) = auth {
        let _ = write!(head, "cc-user: {user}\r\ncc-auth: {key}\r\n");
    }
    if !body.is_empty() {
        let _ = write!(head, "content-type: application/json\r\ncontent-length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    buf.extend_from_slice(head.as_bytes());
    buf.extend_from_slice(body.as_bytes());
}

async fn get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut conn = Conn::connect(addr).await?;
    let mut buf = Vec::new();
    request(&mut buf, "GET", path, addr, None, "");
    let status = conn.exchange(&buf).await?;
    if status != 200 {
        return Err(format!("GET {path}: status {status}").into());
    }
    Ok(String::from_utf8_lossy(conn.body()).into_owned())
}

// ---------------------------------------------------------------- the load

async fn open_accounts(addr: SocketAddr, accounts: usize) -> Result<()> {
    let mut tasks = Vec::new();
    for worker in 0..SETUP_CONNECTIONS.min(accounts) {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut buf = Vec::new();
            for i in (worker..accounts).step_by(SETUP_CONNECTIONS) {
                let body = format!(r#"{{"id":"a{i}","key":"k{i}","min":-{ACCOUNT_LIMIT},"max":{ACCOUNT_LIMIT}}}"#);
                request(&mut buf, "POST", "/admin/accounts", addr, Some(("admin", ADMIN_KEY)), &body);
                let status = conn.exchange(&buf).await?;
                if status != 201 {
                    let answer = String::from_utf8_lossy(conn.body()).into_owned();
                    return Err(format!("opening a{i}: status {status}: {answer}").into());
                }
            }
            Ok::<(), Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

#[derive(Default)]
struct WorkerStats {
    /// Latency of every payment answered inside the measured window, in µs.
    latencies_us: Vec<u32>,
    /// Of those, answers other than 2xx.
    non_2xx: u64,
    /// Connection or protocol failures (the connection is reopened).
    io_errors: u64,
    first_failure: Option<String>,
}

/// Pays between random distinct accounts until `end`; records answers that arrive in `[measure_from, end]`.
async fn pay_worker(
    addr: SocketAddr,
    mut conn: Conn,
    accounts: usize,
    seed: u64,
    measure_from: Instant,
    end: Instant,
) -> WorkerStats {
    let mut rng = Rng::new(seed | 1);
    let mut stats = WorkerStats { latencies_us: Vec::with_capacity(1 << 16), ..WorkerStats::default() };
    let mut buf = Vec::with_capacity(512);
    let mut body = String::with_capacity(128);
    let mut user = String::with_capacity(8);
    let mut key = String::with_capacity(8);
    while Instant::now() < end {
        let payer = rng.index(accounts);
        let mut payee = rng.index(accounts - 1);
        if payee >= payer {
            payee += 1;
        }
        user.clear();
        key.clear();
        body.clear();
        let _ = write!(user, "a{payer}");
        let _ = write!(key, "k{payer}");
        let _ =
            write!(body, r#"{{"payer":"a{payer}","payee":"a{payee}","quant":1,"description":"bench","type":"pay"}}"#);
        request(&mut buf, "POST", "/transaction", addr, Some((&user, &key)), &body);
        let started = Instant::now();
        let outcome = conn.exchange(&buf).await;
        let done = Instant::now();
        let measured = done >= measure_from && done <= end;
        match outcome {
            Ok(status) => {
                if measured {
                    let us = u32::try_from(done.duration_since(started).as_micros()).unwrap_or(u32::MAX);
                    stats.latencies_us.push(us);
                    if !(200..300).contains(&status) {
                        stats.non_2xx += 1;
                    }
                }
                if !(200..300).contains(&status) && stats.first_failure.is_none() {
                    stats.first_failure = Some(format!("{status}: {}", String::from_utf8_lossy(conn.body())));
                }
            }
            Err(error) => {
                stats.io_errors += 1;
                if stats.first_failure.is_none() {
                    stats.first_failure = Some(format!("connection: {error}"));
                }
                if stats.io_errors > 100 {
                    break;
                }
                match Conn::connect(addr).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
    stats
}

/// Sum and count of a Prometheus histogram in `/metrics` text.
fn histogram_sum_count(metrics: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        let prefix = format!("{name}_{suffix} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("sum"), value("count"))
}

struct Snapshot {
    batch: (f64, f64),
    events: (f64, f64),
    append: (f64, f64),
    server_cpu: f64,
    client_cpu: f64,
    machine_cpu: f64,
    at: Instant,
}

async fn snapshot(addr: SocketAddr, pid: &str) -> Result<Snapshot> {
    let metrics = get(addr, "/metrics").await?;
    Ok(Snapshot {
        batch: histogram_sum_count(&metrics, "ccnode_writer_batch_commands"),
        events: histogram_sum_count(&metrics, "ccnode_writer_batch_events"),
        append: histogram_sum_count(&metrics, "ccnode_journal_append_seconds"),
        server_cpu: benchkit::cpu_ns(pid).map_or(0.0, |ns| ns as f64 / 1e9),
        client_cpu: benchkit::cpu_ns("self").map_or(0.0, |ns| ns as f64 / 1e9),
        machine_cpu: machine_busy_seconds().unwrap_or(0.0),
        at: Instant::now(),
    })
}

struct Level {
    connections: usize,
    answered: usize,
    payments_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    non_2xx: u64,
    io_errors: u64,
    mean_batch: f64,
    events_per_command: f64,
    mean_append_ms: f64,
    server_cpu_pct: f64,
    client_cpu_pct: f64,
    other_cpu_pct: f64,
    peak_rss_mib: f64,
    first_failure: Option<String>,
}

/// Nearest-rank percentile of sorted latencies, in ms.
fn percentile_ms(sorted_us: &[u32], percent: usize) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = (sorted_us.len() * percent).div_ceil(100).max(1);
    f64::from(sorted_us[rank - 1]) / 1000.0
}

fn delta_mean((sum1, count1): (f64, f64), (sum0, count0): (f64, f64)) -> f64 {
    if count1 > count0 {
        (sum1 - sum0) / (count1 - count0)
    } else {
        f64::NAN
    }
}

async fn run_level(addr: SocketAddr, pid: &str, args: &Args, connections: usize, level_no: u64) -> Result<Level> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Conn::connect(addr).await?);
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::with_capacity(connections);
    for (i, conn) in conns.into_iter().enumerate() {
        let seed = (level_no << 32) ^ u64::try_from(i).expect("usize fits u64").wrapping_mul(0x9e37_79b9_7f4a_7c15);
        tasks.push(tokio::spawn(pay_worker(addr, conn, args.accounts, seed, measure_from, end)));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let before = snapshot(addr, pid).await?;
    tokio::time::sleep_until(end.into()).await;
    let after = snapshot(addr, pid).await?;
    let mut all = Vec::new();
    let (mut non_2xx, mut io_errors, mut first_failure) = (0, 0, None);
    for task in tasks {
        let stats = task.await?;
        all.extend_from_slice(&stats.latencies_us);
        non_2xx += stats.non_2xx;
        io_errors += stats.io_errors;
        first_failure = first_failure.or(stats.first_failure);
    }
    all.sort_unstable();
    let wall = after.at.duration_since(before.at).as_secs_f64();
    let answered = all.len();
    let ok = u64::try_from(answered).expect("usize fits u64") - non_2xx;
    let hwm_kb = benchkit::status_kb(pid, "VmHWM").unwrap_or(0);
    Ok(Level {
        connections,
        answered,
        payments_per_s: to_f64(ok) / args.seconds,
        p50_ms: percentile_ms(&all, 50),
        p99_ms: percentile_ms(&all, 99),
        max_ms: all.last().map_or(f64::NAN, |&us| f64::from(us) / 1000.0),
        non_2xx,
        io_errors,
        mean_batch: delta_mean(after.batch, before.batch),
        events_per_command: (after.events.0 - before.events.0) / (after.batch.0 - before.batch.0),
        mean_append_ms: delta_mean(after.append, before.append) * 1000.0,
        server_cpu_pct: 100.0 * (after.server_cpu - before.server_cpu) / wall,
        client_cpu_pct: 100.0 * (after.client_cpu - before.client_cpu) / wall,
        other_cpu_pct: 100.0
            * ((after.machine_cpu - before.machine_cpu)
                - (after.server_cpu - before.server_cpu)
                - (after.client_cpu - before.client_cpu))
            / wall,
        peak_rss_mib: to_f64(hwm_kb) / 1024.0,
        first_failure,
    })
}

fn to_f64(n: u64) -> f64 {
    // Counts here stay far below 2^53: exact.
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let base = std::env::var_os("CCNODE_BENCH_DIR").map_or_else(default_target_dir, PathBuf::from);
    std::fs::create_dir_all(&base)?;
    let data = tempfile::Builder::new().prefix("ccnode-http-load-").tempdir_in(&base)?;
    let fs = fs_type(data.path());
    if fs.starts_with("tmpfs") {
        eprintln!(
            "warning: {} is on tmpfs: fdatasync costs nothing there; set CCNODE_BENCH_DIR to a disk",
            base.display()
        );
    }
    let runtime = if args.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads).enable_all().build()?
    };

    let mut server = Server::start(&args.ccnode, data.path())?;
    let pid = server.pid().to_string();
    let addr = server.addr;
    println!("# ccnode HTTP load: {} (pid {pid}) on {addr}", args.ccnode.display());
    println!("# data dir {} ({fs})", data.path().display());
    println!(
        "# {} accounts, {} s measured per level after {} s warm-up, client: {} thread(s), one request in flight per connection",
        args.accounts, args.seconds, args.warmup, args.client_threads
    );

    let outcome = runtime.block_on(async {
        let setup = Instant::now();
        open_accounts(addr, args.accounts).await?;
        let setup_s = setup.elapsed().as_secs_f64();
        println!("# opened {} accounts in {setup_s:.2} s ({:.0}/s)", args.accounts, to_f64(u64::try_from(args.accounts).expect("usize fits u64")) / setup_s);
        println!();
        println!(
            "| connections | payments/s | p50 ms | p99 ms | max ms | non-2xx | io errors | mean batch | records/payment | mean append+fsync ms | server CPU % | client CPU % | other CPU % | server peak RSS MiB |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut levels = Vec::new();
        for (n, &connections) in args.connections.iter().enumerate() {
            let level = run_level(addr, &pid, &args, connections, u64::try_from(n).expect("usize fits u64")).await?;
            println!(
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.2} | {:.3} | {:.0} | {:.0} | {:.0} | {:.1} |",
                level.connections,
                level.payments_per_s,
                level.p50_ms,
                level.p99_ms,
                level.max_ms,
                level.non_2xx,
                level.io_errors,
                level.mean_batch,
                level.events_per_command,
                level.mean_append_ms,
                level.server_cpu_pct,
                level.client_cpu_pct,
                level.other_cpu_pct.max(0.0),
                level.peak_rss_mib
            );
            let c = level.connections;
            BENCH.figure(&format!("c{c}_payments_per_s"), level.payments_per_s, "1/s");
            BENCH.figure(&format!("c{c}_p99_ms"), level.p99_ms, "ms");
            BENCH.figure(&format!("c{c}_server_cpu_us_per_payment"), level.server_cpu_pct / 100.0 * 1e6 / level.payments_per_s, "us");
            BENCH.figure(&format!("c{c}_server_peak_rss_kib"), level.peak_rss_mib * 1024.0, "KiB");
            levels.push(level);
        }
        Ok::<_, Error>(levels)
    });

    let stopped = server.stop();
    let levels = outcome?;
    println!();
    for level in &levels {
        if let Some(failure) = &level.first_failure {
            let short: String = failure.chars().take(300).collect();
            println!("# {} connections: first failure: {short}", level.connections);
        }
        println!("# {} connections: {} answers measured", level.connections, level.answered);
    }
    match stopped {
        Ok(status) => println!("# ccnode stopped on SIGTERM: {status}"),
        Err(error) => println!("# ccnode stop: {error}"),
    }
    Ok(())
}
