//! End-to-end tests: they run the real `ccnode` binary as an operator would.

mod browser;
mod cdp;
mod federation;
mod hardening;
mod hostile;
mod import;
mod journal_cli;
mod komunitin;
mod komunitin_suite;
mod node;
mod overflow;
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
