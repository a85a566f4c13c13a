//! End-to-end tests: they run the real `ccnode` binary as an operator would.

mod browser;
mod cdp;
mod federation;
mod formats;
mod hardening;
mod hostile;
mod import;
mod journal_cli;
mod komunitin;
mod komunitin_suite;
mod node;
mod overflow;
mod postgres;
mod proofs;
mod reconcile;
mod reference_multi;
mod reference_single;
mod refnode;
mod replay_cli;
mod signatures;
mod tidy;
mod ui;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `ccnode ARGS…` and returns its output (in the PostgreSQL run, with
/// the database of the data directory it names, see [`test_store`]).
pub fn ccnode(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccnode"));
    command.args(args).env_remove("CCNODE_DATA");
    if let Some(url) = test_store(args, false) {
        command.env("CCNODE_STORE", url);
    }
    command.output().expect("run ccnode")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// Whether this is the PostgreSQL run (`CCNODE_TEST_STORE=postgres`): the
/// HTTP and federation suites a second time with every node's journal in
/// PostgreSQL (`.ci/run`).
pub fn on_postgres() -> bool {
    std::env::var("CCNODE_TEST_STORE").as_deref() == Ok("postgres")
}

/// The store (`CCNODE_STORE`) a `ccnode` command with `args` is given in the
/// PostgreSQL run: when it names a data directory (`--data DIR`) and neither
/// a store nor a config file of its own, DIR's database on the one
/// throwaway cluster of this test process, one database per data directory
/// so that a node restarted on DIR finds its journal, and an offline command
/// on DIR reads it. `serving` creates the database the first time; an
/// offline command on a directory no node served keeps its segment files.
/// `None` on segment files (the default run).
pub fn test_store(args: &[&str], serving: bool) -> Option<String> {
    if !on_postgres() || args.iter().any(|a| *a == "--store" || *a == "--config") {
        return None;
    }
    let dir = args.iter().position(|a| *a == "--data").and_then(|i| args.get(i + 1))?;
    pgcluster::database_for(Path::new(dir), serving)
}

/// Installs Debian packages when a test's system dependency is absent
/// (never skipped): `pgcluster`'s installer, which the e2e tests share.
pub fn apt_install(packages: &[&str]) {
    pgcluster::apt_install(packages);
}
