//! Test support: a throwaway PostgreSQL cluster of the distribution's
//! `postgresql` package, in a temporary directory, listening on a free
//! loopback port, as `../shared/bench/pg-ledger-baseline.sh` starts one.
//!
//! - The package is installed (`apt-get install postgresql`, through `sudo -n`
//!   when not root) when no `/usr/lib/postgresql/*/bin/initdb` is found: the
//!   tests that use this never skip.
//! - As root the server runs as the `postgres` user (initdb refuses root).
//! - A cluster is stopped and removed when dropped, and also by a small
//!   watcher process when the test process dies without dropping it
//!   (SIGKILL, or a `static` never dropped): nothing is left running.
//!
//! This is test code: every failure panics with what went wrong.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser the cluster is created with (trust authentication on loopback only).
pub const SUPERUSER: &str = "postgres";

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Stops the server if this process dies without dropping the cluster.
    watcher: Option<std::process::Child>,
}

impl Cluster {
    /// Initialises and starts a new cluster.
    pub fn start() -> Cluster {
        let bin = server_bin();
        let as_postgres = is_root();
        // Under /tmp as root: the postgres user must reach it.
        let base = if as_postgres { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = base.join(format!(
            "ccnode-pgcluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        if as_postgres {
            run(Command::new("chown").arg(format!("{SUPERUSER}:{SUPERUSER}")).arg(&dir));
        }
        let mut cluster = Cluster { dir, bin, port: free_port(), as_postgres, watcher: None };
        cluster.server(
            "initdb",
            &["-D", &cluster.data().display().to_string(), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"],
        );
        cluster.watcher = Some(cluster.watch(std::process::id()));
        cluster.start_server();
        cluster
    }

    /// One cluster for the whole test process, started on first use.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty database and returns its URL.
    ///
    /// Runs on a thread of its own, so it may be called inside an async
    /// runtime (the sync client refuses to run there).
    pub fn create_database(&self, name: &str) -> String {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut client = self.connect("postgres");
                    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("create the database");
                })
                .join()
                .expect("creating the database");
        });
        self.url(name)
    }

    /// The URL of database `db`, as ccnode's `--store` takes it.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// A superuser connection to database `db` (the sync client: not inside an async runtime).
    pub fn connect(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url(db)))
    }

    /// Stops the server at once (as a crash would: `-m immediate`).
    pub fn stop(&self) {
        self.server("pg_ctl", &["-D", &self.data().display().to_string(), "-m", "immediate", "-w", "stop"]);
    }

    /// Starts the stopped server again on the same port.
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on -c synchronous_commit=on -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.server(
            "pg_ctl",
            &["-D", &self.data().display().to_string(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"],
        );
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn server(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        let output = command.output().unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed ({}):\n{}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// A detached shell that stops and removes the cluster once `owner` is gone.
    fn watch(&self, owner: u32) -> std::process::Child {
        let stop = self.stop_script();
        let script = format!("while kill -0 {owner} 2>/dev/null; do sleep 1; done; {stop}");
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the cluster's watcher")
    }

    fn stop_script(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let data = self.data().display().to_string();
        let run_as = if self.as_postgres { format!("runuser -u {SUPERUSER} -- ") } else { String::new() };
        format!("{run_as}'{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{}'", self.dir.display())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
        let _ = Command::new("sh").args(["-c", &self.stop_script()]).status();
    }
}

/// The database of data directory `dir` on the shared cluster, created the
/// first time it is asked for with `create`, so that a test node restarted
/// on `dir` finds its journal again: how the suites run with every node's
/// journal in PostgreSQL (`CCNODE_TEST_STORE=postgres`). `None` when `dir`
/// has none and `create` is false.
pub fn database_for(dir: &std::path::Path, create: bool) -> Option<String> {
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut databases = DATABASES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, url)) = databases.iter().find(|(d, _)| d == dir) {
        return Some(url.clone());
    }
    if !create {
        return None;
    }
    let url = Cluster::shared().create_database(&format!("node_{}", databases.len()));
    databases.push((dir.to_owned(), url.clone()));
    Some(url)
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `/usr/lib/postgresql/<newest>/bin`, installing the package when absent.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = find_bin() {
            return bin;
        }
        apt_install(&["postgresql"]);
        find_bin().expect("the postgresql package installed no /usr/lib/postgresql/*/bin/initdb")
    })
    .clone()
}

fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false)
}

/// Installs Debian packages with apt-get, as root or through `sudo -n`: a
/// test's system dependency is installed when absent, never skipped (the
/// e2e tests install chromium and python3-cryptography with it too). One
/// install at a time in a process (apt holds a lock).
pub fn apt_install(packages: &[&str]) {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (program, prefix): (&str, &[&str]) = if is_root() { ("apt-get", &[]) } else { ("sudo", &["-n", "apt-get"]) };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = prefix.to_vec();
        all.extend_from_slice(args);
        let status = Command::new(program)
            .args(&all)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(status.success(), "{program} {all:?} failed: {status}");
    };
    apt(&["update"]);
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install);
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("its address").port()
}

/// Waits until `check` holds, up to `limit`; panics with `what` otherwise.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
