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
mod tidy;
mod ui;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `ccnode ARGS…` and returns its output.
pub fn ccnode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccnode")).args(args).env_remove("CCNODE_DATA").output().expect("run ccnode")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// Installs Debian packages with apt-get, as root or through `sudo -n`: a
/// test's system dependency is installed when absent, never skipped. One
/// install at a time (apt holds a lock).
pub fn apt_install(packages: &[&str]) {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let (program, prefix): (&str, &[&str]) = if root { ("apt-get", &[]) } else { ("sudo", &["-n", "apt-get"]) };
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = prefix.to_vec();
        all.extend_from_slice(args);
        let status = Command::new(program)
            .args(&all)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(status.success(), "{program} {all:?} failed: {status}");
    };
    run(&["update"]);
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run(&install);
}
