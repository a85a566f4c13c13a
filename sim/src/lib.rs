//! Deterministic simulation of a ccnode federation (issue 13).
//!
//! [`world::run`] starts a tree of 3–12 real nodes (`api::node::Node`, the
//! production writer, decide, federation flows and reconciliation) in one
//! process on a single-threaded tokio runtime with a paused clock, and
//! supplies what is not deterministic: the network ([`net`], a
//! `PeerClient`), the disk (`journal::MemDisk`), the clock and fresh ids.
//! One `u64` seed decides the tree, the workload and every fault, so a
//! failing seed replays exactly (`cargo run -p sim --release -- --seed S`).
//! See docs/TESTING.md, "Simulation".

pub mod net;
pub mod trace;
pub mod world;

pub use world::{run, Failure, Options, Outcome, Profile};
