//! One simulation run: a tree of real nodes, a workload, faults, checkers.
//!
//! Everything runs on one current-thread tokio runtime whose clock is
//! paused: time moves only when every task waits, straight to the next
//! timer, so a run takes as long as its work, not its simulated minutes, and
//! the order of events is decided by the seed alone. Each node is
//! `api::node::Node` as production starts it, with the simulator's disk
//! (`StoreLocation::Memory`), network (`PeerClient`), clock, uuids and the
//! inline writer; its routes are `api::server::router`, its background work
//! production's reconciliation and expiry loops.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::app::AppState;
use api::metrics::Metrics;
use api::node::{Hooks, Node, StartOptions};
use axum::body::Body;
use axum::http::{Method, Request};
use journal::{MemDisk, MemJournal, Store as _};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::net::{Net, NetFaults};
use crate::trace::Trace;

/// The admin key of every simulated node.
const ADMIN_KEY: &str = "sim-admin-key";
/// Unix µs at simulated time zero (2026-01-01T00:00:00Z).
const EPOCH_US: u64 = 1_767_225_600_000_000;
/// How long a sender waits for a neighbour.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Between reconciliation passes.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);
/// Liveness: every link must agree this long after the last fault.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Decides everything.
    pub seed: u64,
    /// Workload and fault events.
    pub steps: u32,
    /// Print every trace line as it happens.
    pub print_trace: bool,
    /// Keep every trace line (for comparing two runs).
    pub keep_trace: bool,
    /// Plant a bug: every node's disk acknowledges syncs it did not do.
    pub lying_disk: bool,
    /// Plant a bug: a change left in doubt is aborted (the federation bug
    /// the simulator found first, issue 13).
    pub abort_in_doubt: bool,
    /// Admins change members' limits mid-flight.
    pub limit_changes: bool,
    /// Which faults the seed may choose.
    pub profile: Profile,
}

/// Which faults a run may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every fault: lost answers, peers slower than the timeout, crashes,
    /// fsync failures, besides the rest.
    Full,
    /// Leaves out the faults after which a neighbour is left in doubt about
    /// a change it asked for (see docs/TESTING.md, "Simulation", for the bug
    /// they find): keeps duplicates (which can still do it, rarely), delays
    /// well within the timeout, partitions (refused at once), clock jumps,
    /// admins changing limits.
    NoDoubt,
}

impl Options {
    /// `steps` events of seed `seed`, quietly.
    pub fn new(seed: u64, steps: u32) -> Options {
        Options {
            seed,
            steps,
            print_trace: false,
            keep_trace: false,
            lying_disk: false,
            abort_in_doubt: false,
            limit_changes: true,
            profile: Profile::Full,
        }
    }
}

/// A checker that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("seed {seed}: {check} failed: {detail}")]
pub struct Failure {
    /// The seed that replays it.
    pub seed: u64,
    /// Which checker.
    pub check: &'static str,
    /// What it found.
    pub detail: String,
}

/// How a run went.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The first checker that failed, if any.
    pub failure: Option<Failure>,
    /// Hash of the whole trace (equal for two runs of a seed).
    pub trace_hash: u64,
    /// Trace lines (events).
    pub events: u64,
    /// Messages between nodes.
    pub messages: u64,
    /// Simulated time the run covered.
    pub simulated: Duration,
    /// Every trace line, if kept.
    pub lines: Option<Vec<String>>,
    /// The last trace lines.
    pub tail: Vec<String>,
    /// Counts of what happened, for the summary.
    pub stats: BTreeMap<&'static str, u64>,
}

/// Runs one simulation to the end (or its first failure).
pub fn run(options: &Options) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        let trace = Trace::new(options.keep_trace, options.print_trace);
        let started = tokio::time::Instant::now();
        let mut sim = Sim::new(options, trace.clone());
        let result = sim.run().await;
        let simulated = started.elapsed();
        if let Err(failure) = &result {
            trace.line(format!("FAILED {failure}"));
        }
        let messages = sim.net.messages();
        let stats = std::mem::take(&mut sim.stats);
        sim.stop_all();
        Outcome {
            seed: options.seed,
            failure: result.err(),
            trace_hash: trace.hash(),
            events: trace.count(),
            messages,
            simulated,
            lines: trace.lines(),
            tail: trace.tail(),
            stats,
        }
    })
}

/// A member: `(node index, account id)`.
type Member = (usize, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Credit,
    Bill,
}

#[derive(Debug, Clone)]
struct Proposal {
    uuid: String,
    origin: usize,
    author: String,
    kind: Kind,
    other: Member,
    pending: bool,
}

/// What the clients were told, shared by the workload's tasks.
#[derive(Debug, Default)]
struct Book {
    proposals: Vec<Proposal>,
    /// Completed at their origin: erasable.
    completed: Vec<(String, usize)>,
    /// The state each node acknowledged to a client last, per transaction.
    acked: BTreeMap<(String, usize), String>,
    /// The loosest limits each account ever had (`(node, account)` → (min, max)).
    limits: BTreeMap<(usize, String), (Decimal, Decimal)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct SimNode {
    name: String,
    parent: Option<usize>,
    members: Vec<String>,
    disk: MemDisk,
    dir: tempfile::TempDir,
    incarnation: u64,
    skew_us: Arc<AtomicI64>,
    window_s: u64,
    up: Option<Up>,
    /// The head it had acknowledged when it crashed.
    acked_head: Option<(u64, [u8; 32])>,
    restart_at: Option<tokio::time::Instant>,
}

struct Up {
    /// Held so that dropping it is the crash (no shutdown).
    _node: Node,
    state: AppState,
    stop: tokio::sync::watch::Sender<bool>,
}

struct Sim {
    seed: u64,
    steps: u32,
    rng: StdRng,
    trace: Trace,
    net: Arc<Net>,
    nodes: Vec<SimNode>,
    book: Arc<Mutex<Book>>,
    heals: Vec<(tokio::time::Instant, usize, usize)>,
    faults: Faults,
    lying_disk: bool,
    abort_in_doubt: bool,
    limit_changes: bool,
    stats: BTreeMap<&'static str, u64>,
    workload: Vec<tokio::task::JoinHandle<()>>,
    /// Simulated time zero.
    origin: tokio::time::Instant,
}

/// Probabilities of each kind of event (besides the network's, per message).
#[derive(Debug, Clone, Copy)]
struct Faults {
    partition: f64,
    crash: f64,
    fsync: f64,
    clock_jump: f64,
}

impl Sim {
    fn new(options: &Options, trace: Trace) -> Sim {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut pick = |max: f64| if rng.gen_bool(0.25) { 0.0 } else { rng.gen_range(0.0..max) };
        let mut net_faults = NetFaults {
            drop_request: pick(0.08),
            drop_answer: pick(0.08),
            duplicate: pick(0.08),
            slow: pick(0.05),
            delay_max: Duration::from_secs_f64(0.001 + pick(0.8)),
        };
        let mut faults = Faults { partition: pick(0.04), crash: pick(0.04), fsync: pick(0.02), clock_jump: pick(0.03) };
        if options.profile == Profile::NoDoubt {
            // A lost request holds the sender's link lock for the whole
            // timeout, and a neighbour's opposite request waiting for it times
            // out in turn: that too leaves a change in doubt.
            net_faults.drop_request = 0.0;
            net_faults.drop_answer = 0.0;
            net_faults.slow = 0.0;
            // A chain of 11 hops, there and back, stays within the timeout.
            net_faults.delay_max = net_faults.delay_max.min(Duration::from_millis(50));
            faults.crash = 0.0;
            faults.fsync = 0.0;
        }
        let net_rng = StdRng::seed_from_u64(rng.gen());
        trace.line(format!("seed {} faults {faults:?} network {net_faults:?}", options.seed));
        let net = Arc::new(Net::new(net_rng, net_faults, PEER_TIMEOUT, trace.clone()));
        Sim {
            seed: options.seed,
            steps: options.steps,
            rng,
            trace,
            net,
            nodes: Vec::new(),
            book: Arc::new(Mutex::new(Book::default())),
            heals: Vec::new(),
            faults,
            lying_disk: options.lying_disk,
            abort_in_doubt: options.abort_in_doubt,
            limit_changes: options.limit_changes,
            stats: BTreeMap::new(),
            workload: Vec::new(),
            origin: tokio::time::Instant::now(),
        }
    }

    fn fail(&self, check: &'static str, detail: impl Into<String>) -> Failure {
        Failure { seed: self.seed, check, detail: detail.into() }
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    async fn run(&mut self) -> Result<(), Failure> {
        self.build().await?;
        for step in 0..self.steps {
            let gap = Duration::from_millis(self.rng.gen_range(0..400));
            tokio::time::sleep(gap).await;
            self.due().await?;
            self.event(step).await?;
            self.check_now()?;
        }
        self.heal().await?;
        self.converge().await?;
        self.check_end().await
    }

    /// The tree: 3–12 nodes, each under an earlier one, with members.
    async fn build(&mut self) -> Result<(), Failure> {
        let count = self.rng.gen_range(3..=12);
        for i in 0..count {
            let parent = if i == 0 { None } else { Some(self.rng.gen_range(0..i)) };
            let name = if i == 0 { "trunk".to_owned() } else { format!("n{i}") };
            let members = (0..self.rng.gen_range(1..=3)).map(|m| format!("m{i}{}", ['a', 'b', 'c'][m])).collect();
            let disk = MemDisk::new();
            if self.lying_disk {
                disk.lie_about_syncs();
            }
            let dir = tempfile::tempdir().map_err(|e| self.fail("setup", e.to_string()))?;
            let window_s = self.rng.gen_range(20..=300);
            self.nodes.push(SimNode {
                name,
                parent,
                members,
                disk,
                dir,
                incarnation: 0,
                skew_us: Arc::new(AtomicI64::new(0)),
                window_s,
                up: None,
                acked_head: None,
                restart_at: None,
            });
            self.start(i).await?;
        }
        let shape: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}<{}", n.name, n.parent.map_or("-", |p| &self.nodes[p].name)))
            .collect();
        self.trace.line(format!("tree {}", shape.join(" ")));
        for i in 1..count {
            let parent = self.nodes[i].parent.expect("not the trunk");
            let (pname, cname) = (self.nodes[parent].name.clone(), self.nodes[i].name.clone());
            let rate = ["1", "2", "0.5", "3", "1.5"][self.rng.gen_range(0..5)];
            let (pmin, pmax) = (-self.rng.gen_range(50..2000), self.rng.gen_range(50..2000));
            let (cmin, cmax) = (-self.rng.gen_range(50..2000), self.rng.gen_range(50..2000));
            let hash = format!("graft-{pname}-{cname}");
            let body = json!({"id": cname, "url": format!("http://{cname}"), "min": pmin, "max": pmax,
                              "last_hash": hash, "dialect": "ccnode"});
            self.admin(parent, Method::POST, "/admin/nodes", Some(body), 201).await?;
            let body = json!({"name": pname, "url": format!("http://{pname}"), "rate": rate, "min": cmin, "max": cmax,
                              "last_hash": hash, "dialect": "ccnode"});
            self.admin(i, Method::PUT, "/admin/trunkward", Some(body), 201).await?;
            let mut book = lock(&self.book);
            book.limits.insert((parent, cname.clone()), (Decimal::from(pmin), Decimal::from(pmax)));
            book.limits.insert((i, pname.clone()), (Decimal::from(cmin), Decimal::from(cmax)));
            drop(book);
            self.trace.line(format!("graft {cname} under {pname} rate {rate}"));
        }
        for i in 0..count {
            for member in self.nodes[i].members.clone() {
                let (min, max) = (-self.rng.gen_range(0..300), self.rng.gen_range(0..300));
                let body = json!({"id": member, "key": format!("key-{member}"), "min": min, "max": max});
                self.admin(i, Method::POST, "/admin/accounts", Some(body), 201).await?;
                lock(&self.book).limits.insert((i, member), (Decimal::from(min), Decimal::from(max)));
            }
        }
        Ok(())
    }

    /// Starts (or restarts, from its disk) node `i`.
    async fn start(&mut self, i: usize) -> Result<(), Failure> {
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        let (skew, seed, origin) = (Arc::clone(&n.skew_us), self.seed, self.origin);
        let clock: api::runtime::Clock = Arc::new(move || {
            let since = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
            let at = i128::from(EPOCH_US) + i128::from(since) + i128::from(skew.load(Ordering::SeqCst));
            u64::try_from(at.max(0)).unwrap_or(u64::MAX)
        });
        let uuid_rng = Mutex::new(StdRng::seed_from_u64(seed ^ ((i as u64) << 40) ^ (n.incarnation << 20)));
        let fresh_uuid = api::machine::UuidSource(Arc::new(move || {
            let bytes: [u8; 16] = lock(&uuid_rng).gen();
            uuid::Builder::from_random_bytes(bytes).into_uuid()
        }));
        let options = StartOptions {
            admin_key: Some(ADMIN_KEY.to_owned()),
            validated_window_seconds: n.window_s,
            default_limits: (ledger::Amount::from_units(-100), ledger::Amount::from_units(100)),
            peer_timeout: PEER_TIMEOUT,
            reconcile_interval: RECONCILE_INTERVAL,
            checkpoint_interval: Duration::ZERO,
            checkpoint_records: 0,
            snapshot_every: 0,
            peer_client: Some(self.net.client(&n.name, n.incarnation)),
            store: api::store::StoreLocation::Memory(n.disk.clone()),
            hooks: Hooks {
                clock: Some(clock),
                fresh_uuid: Some(fresh_uuid),
                inline_writer: true,
                plant_abort_in_doubt: self.abort_in_doubt,
            },
            ..StartOptions::new(n.dir.path(), n.name.clone())
        };
        let metrics = Arc::new(Metrics::new());
        let node = Node::start(options, Arc::clone(&metrics)).await.map_err(|e| Failure {
            seed,
            check: "restart",
            detail: format!("{} does not start: {e}", n.name),
        })?;
        let state = node.state();
        if let Some((seq, hash)) = n.acked_head.take() {
            // Every write it acknowledged before the crash is on its disk.
            let journal = MemJournal::open_read_only(&n.disk).map_err(|e| Failure {
                seed,
                check: "durability",
                detail: format!("{}: {e}", n.name),
            })?;
            let kept =
                seq == 0 || (journal.head().seq >= seq && journal.read(seq).map(|r| r.hash.0).ok() == Some(hash));
            if !kept {
                return Err(Failure {
                    seed,
                    check: "durability",
                    detail: format!(
                        "{} acknowledged seq {seq} before it crashed; after restart its journal's head is {}{}",
                        n.name,
                        journal.head().seq,
                        if journal.head().seq >= seq { " with another hash there" } else { "" }
                    ),
                });
            }
        }
        let router = api::server::router(state.clone(), metrics);
        self.net.attach(&n.name, n.incarnation, router);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (first_pass, first_pass_rx) = tokio::sync::watch::channel(false);
        let reconcile = tokio::spawn(api::federation::reconcile::reconcile_loop(
            state.clone(),
            RECONCILE_INTERVAL,
            stop_rx.clone(),
            first_pass,
        ));
        self.net.own(&n.name, reconcile.abort_handle());
        let expiry = tokio::spawn(api::server::expire_loop(state.clone(), stop_rx, first_pass_rx));
        self.net.own(&n.name, expiry.abort_handle());
        self.trace.line(format!("start {} #{} head {}", n.name, n.incarnation, state.read().projections.seq()));
        n.up = Some(Up { _node: node, state, stop });
        Ok(())
    }

    /// Node `i` loses power.
    fn crash(&mut self, i: usize, down_for: Duration) {
        let keep_max = self.nodes[i].disk.unsynced_bytes();
        let keep = if keep_max == 0 { 0 } else { self.rng.gen_range(0..=keep_max) };
        let n = &mut self.nodes[i];
        let Some(up) = n.up.take() else { return };
        let head = {
            let read = up.state.read();
            (read.projections.seq(), read.head_hash)
        };
        self.net.detach(&n.name);
        let _ = up.stop.send(true);
        // No shutdown: the process is gone. Whatever of it is still
        // referenced (a task it spawned) is fenced off its disk and the network.
        drop(up);
        n.disk.crash(keep);
        n.acked_head = Some(head);
        n.restart_at = Some(tokio::time::Instant::now() + down_for);
        self.trace.line(format!(
            "crash {} at head {} keeping {keep} of {keep_max} unsynced bytes, down {}ms",
            n.name,
            head.0,
            down_for.as_millis()
        ));
    }

    /// Restarts and heals what is due.
    async fn due(&mut self) -> Result<(), Failure> {
        let now = tokio::time::Instant::now();
        for i in 0..self.nodes.len() {
            if self.nodes[i].restart_at.is_some_and(|at| at <= now) {
                self.nodes[i].restart_at = None;
                self.start(i).await?;
            }
            // The operator restarts a node whose writer stopped (a failed fsync).
            let stopped = self.nodes[i].up.as_ref().is_some_and(|u| !u.state.writing());
            if stopped {
                self.trace.line(format!("{} stopped writing: the operator restarts it", self.nodes[i].name));
                self.count("operator restarts");
                let down = Duration::from_millis(self.rng.gen_range(100..5000));
                self.crash(i, down);
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = self.heals.drain(..).partition(|(at, _, _)| *at <= now);
        self.heals = later;
        for (_, a, b) in due {
            self.net.set_cut(&self.nodes[a].name, &self.nodes[b].name, false);
            self.trace.line(format!("heal {}-{}", self.nodes[a].name, self.nodes[b].name));
        }
        Ok(())
    }

    async fn event(&mut self, step: u32) -> Result<(), Failure> {
        let roll: f64 = self.rng.gen();
        let f = self.faults;
        let mut edge = 0.0;
        let mut hit = |p: f64| {
            edge += p;
            roll < edge
        };
        if hit(f.partition) {
            let child = self.rng.gen_range(1..self.nodes.len());
            let parent = self.nodes[child].parent.expect("not the trunk");
            let heal_in = Duration::from_millis(self.rng.gen_range(500..60_000));
            self.net.set_cut(&self.nodes[parent].name, &self.nodes[child].name, true);
            self.heals.push((tokio::time::Instant::now() + heal_in, parent, child));
            self.trace.line(format!(
                "partition {}-{} for {}ms",
                self.nodes[parent].name,
                self.nodes[child].name,
                heal_in.as_millis()
            ));
            self.count("partitions");
        } else if hit(f.crash) {
            let i = self.rng.gen_range(0..self.nodes.len());
            let down = self.nodes.iter().filter(|n| n.up.is_none()).count();
            if self.nodes[i].up.is_some() && down < 2 {
                let down_for = Duration::from_millis(self.rng.gen_range(10..20_000));
                self.crash(i, down_for);
                self.count("crashes");
            }
        } else if hit(f.fsync) {
            let i = self.rng.gen_range(0..self.nodes.len());
            self.nodes[i].disk.fail_syncs(1);
            self.trace.line(format!("the next fsync of {} fails", self.nodes[i].name));
            self.count("fsync failures");
        } else if hit(f.clock_jump) {
            let i = self.rng.gen_range(0..self.nodes.len());
            let jump = self.rng.gen_range(-30_000_000i64..600_000_000);
            self.nodes[i].skew_us.fetch_add(jump, Ordering::SeqCst);
            self.trace.line(format!("clock of {} jumps {}ms", self.nodes[i].name, jump / 1000));
            self.count("clock jumps");
        } else {
            self.workload_event(step);
        }
        Ok(())
    }

    /// A path from node `from` to member `member` of node `to`, as a member of `from` writes it.
    fn path(&self, from: usize, to: usize, member: &str) -> String {
        if from == to {
            return member.to_owned();
        }
        let mut up = BTreeSet::new();
        let mut at = Some(from);
        while let Some(i) = at {
            up.insert(i);
            at = self.nodes[i].parent;
        }
        if up.contains(&to) {
            return format!("{}/{member}", self.nodes[to].name);
        }
        // Down from the lowest common ancestor to `to`.
        let mut down = Vec::new();
        let mut at = to;
        while !up.contains(&at) {
            down.push(self.nodes[at].name.clone());
            at = self.nodes[at].parent.expect("the trunk is everyone's ancestor");
        }
        down.reverse();
        format!("{}/{member}", down.join("/"))
    }

    fn member(&mut self) -> Member {
        let i = self.rng.gen_range(0..self.nodes.len());
        let m = self.rng.gen_range(0..self.nodes[i].members.len());
        (i, self.nodes[i].members[m].clone())
    }

    fn fresh_uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid().to_string()
    }

    fn workload_event(&mut self, step: u32) {
        let kind = self.rng.gen_range(0..100);
        let ctx = Client { net: Arc::clone(&self.net), trace: self.trace.clone(), book: Arc::clone(&self.book) };
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let task = match kind {
            0..=54 => {
                let (a, payer) = self.member();
                let (mut b, mut payee) = self.member();
                while (a, &payer) == (b, &payee) {
                    (b, payee) = self.member();
                }
                let workflow = match self.rng.gen_range(0..10) {
                    0..=4 => "pay",
                    5..=7 => "credit",
                    _ => "bill",
                };
                let quant = self.rng.gen_range(1..60);
                let uuid = self.fresh_uuid();
                let (author, origin, body) = if workflow == "bill" {
                    // The payee bills the payer.
                    let path = self.path(b, a, &payer);
                    (
                        payee.clone(),
                        b,
                        json!({"uuid": uuid, "payer": path, "payee": payee, "quant": quant,
                                              "description": format!("s{step}"), "type": "bill"}),
                    )
                } else {
                    let path = self.path(a, b, &payee);
                    (
                        payer.clone(),
                        a,
                        json!({"uuid": uuid, "payer": payer, "payee": path, "quant": quant,
                                              "description": format!("s{step}"), "type": workflow}),
                    )
                };
                let other = if workflow == "bill" { (a, payer) } else { (b, payee) };
                let kind = if workflow == "bill" { Kind::Bill } else { Kind::Credit };
                let name = names[origin].clone();
                tokio::spawn(async move { ctx.propose(name, origin, author, body, uuid, kind, other).await })
            }
            55..=79 => {
                let proposal = {
                    let book = lock(&self.book);
                    if book.proposals.is_empty() {
                        None
                    } else {
                        Some(book.proposals[self.rng.gen_range(0..book.proposals.len())].clone())
                    }
                };
                let Some(p) = proposal else { return };
                let (node, user, to) = if p.pending {
                    (p.other.0, p.other.1.clone(), "completed")
                } else {
                    (p.origin, p.author.clone(), "pending")
                };
                let name = names[node].clone();
                tokio::spawn(async move { ctx.advance(name, node, user, p, to).await })
            }
            80..=89 => {
                let target = {
                    let book = lock(&self.book);
                    if book.completed.is_empty() {
                        None
                    } else {
                        Some(book.completed[self.rng.gen_range(0..book.completed.len())].clone())
                    }
                };
                let Some((uuid, origin)) = target else { return };
                let name = names[origin].clone();
                tokio::spawn(async move { ctx.erase(name, origin, uuid).await })
            }
            _ => {
                if !self.limit_changes {
                    return;
                }
                let (i, member) = self.member();
                let (min, max) = (-self.rng.gen_range(0..400), self.rng.gen_range(0..400));
                let name = names[i].clone();
                tokio::spawn(async move { ctx.limits(name, i, member, min, max).await })
            }
        };
        self.workload.retain(|t| !t.is_finished());
        self.workload.push(task);
    }

    async fn admin(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Result<Value, Failure> {
        let request = request(method.clone(), path, ("admin", ADMIN_KEY), body);
        match self.net.call(&self.nodes[i].name, request).await {
            Some((status, value)) if status == want => Ok(value),
            Some((status, value)) => {
                Err(self.fail("setup", format!("{} {method} {path}: {status} {value}", self.nodes[i].name)))
            }
            None => Err(self.fail("setup", format!("{} did not answer {method} {path}", self.nodes[i].name))),
        }
    }

    /// After every step: every ledger that is up sums to zero, and no
    /// completed balance is outside the loosest limits its account ever had.
    fn check_now(&self) -> Result<(), Failure> {
        let limits = lock(&self.book).limits.clone();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(up) = &n.up else { continue };
            let read = up.state.read();
            let sums = read.projections.balance_sums();
            if sums.completed != ledger::Amount::ZERO || sums.pending != ledger::Amount::ZERO {
                return Err(self.fail("zero-sum", format!("{}: {sums:?}", n.name)));
            }
            for ((node, id), (min, max)) in limits.range((i, String::new())..) {
                if *node != i {
                    break;
                }
                let Ok(account) = ledger::AccountId::new(id) else { continue };
                let balance = ledger::LedgerView::balances(&read.projections, &account).completed.as_decimal();
                if balance < *min || balance > *max {
                    return Err(self.fail("limits", format!("{}/{id} has {balance}, outside {min}..{max}", n.name)));
                }
            }
        }
        Ok(())
    }

    /// Ends every fault: links healed, nodes restarted, messages reliable.
    async fn heal(&mut self) -> Result<(), Failure> {
        self.trace.line("heal everything");
        self.net.set_faulty(false);
        for (_, a, b) in std::mem::take(&mut self.heals) {
            self.net.set_cut(&self.nodes[a].name, &self.nodes[b].name, false);
        }
        // The workload's last requests finish (or time out) first.
        for task in std::mem::take(&mut self.workload) {
            let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
        }
        for i in 0..self.nodes.len() {
            self.nodes[i].disk.fail_syncs(0);
            let stopped = self.nodes[i].up.as_ref().is_some_and(|u| !u.state.writing());
            if stopped {
                self.crash(i, Duration::ZERO);
            }
            if self.nodes[i].up.is_none() {
                self.nodes[i].restart_at = None;
                self.start(i).await?;
            }
        }
        Ok(())
    }

    /// Liveness: within [`CONVERGE_WITHIN`], every link agrees.
    async fn converge(&mut self) -> Result<(), Failure> {
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RECONCILE_INTERVAL).await;
            let disagreements = self.link_disagreements().await?;
            if disagreements.is_empty() {
                self.trace.line(format!("converged {}ms after the last fault", started.elapsed().as_millis()));
                return Ok(());
            }
            if started.elapsed() > CONVERGE_WITHIN {
                return Err(self.fail("liveness", disagreements.join("; ")));
            }
        }
    }

    async fn link_disagreements(&self) -> Result<Vec<String>, Failure> {
        let mut out = Vec::new();
        for (c, n) in self.nodes.iter().enumerate() {
            let Some(p) = n.parent else { continue };
            let (pname, cname) = (&self.nodes[p].name, &n.name);
            let up = self.admin(p, Method::GET, "/admin/nodes", None, 200).await?;
            let down = self.admin(c, Method::GET, "/admin/nodes", None, 200).await?;
            let (a, b) = (&up["data"][cname], &down["data"][pname]);
            for field in ["last_hash", "blake3", "versions"] {
                if a[field] != b[field] {
                    out.push(format!("{pname}-{cname} {field} {} vs {}", a[field], b[field]));
                }
            }
            for (side, v) in [(pname, a), (cname, b)] {
                if !v["closed"].is_null() {
                    out.push(format!("{pname}-{cname} closed at {side}: {}", v["closed"]));
                }
                if v["in_doubt"] != 0 {
                    out.push(format!("{pname}-{cname} {} change(s) still in doubt at {side}", v["in_doubt"]));
                }
            }
        }
        Ok(out)
    }

    /// After healing: the end checks.
    async fn check_end(&mut self) -> Result<(), Failure> {
        // A validated transaction times out on each node's own clock and
        // window: wait until every one is past (simulated time is free), then
        // every copy of a transaction must be in the same state.
        let longest = self.nodes.iter().map(|n| n.window_s).max().unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(longest + 60)).await;
        self.converge().await?;
        self.check_now()?;
        let mut states: Vec<BTreeMap<String, String>> = Vec::new();
        for i in 0..self.nodes.len() {
            let txs = self.admin(i, Method::GET, "/transactions?limit=1000", None, 200).await?;
            let items = txs["data"].as_array().cloned().unwrap_or_default();
            if items.len() >= 1000 {
                return Err(self.fail("setup", "more than 1000 transactions on a node: page the check"));
            }
            let map = items
                .iter()
                .filter_map(|t| Some((t["uuid"].as_str()?.to_owned(), t["state"].as_str()?.to_owned())))
                .collect();
            states.push(map);
            self.check_limits(i).await?;
        }
        // Both sides of every link hold the same state of every shared transaction.
        for (c, n) in self.nodes.iter().enumerate() {
            let Some(p) = n.parent else { continue };
            for (uuid, state) in &states[c] {
                if let Some(other) = states[p].get(uuid) {
                    if other != state {
                        return Err(self.fail(
                            "shared state",
                            format!("{uuid} is {state} at {} but {other} at {}", n.name, self.nodes[p].name),
                        ));
                    }
                }
            }
        }
        // Every acknowledged state survived (or moved on the way workflows allow).
        let acked = lock(&self.book).acked.clone();
        for ((uuid, node), said) in acked {
            let now = states[node].get(&uuid).map_or("missing", String::as_str);
            let allowed: &[&str] = match said.as_str() {
                "validated" => &["validated", "pending", "completed", "erased", "timedout"],
                "pending" => &["pending", "completed", "erased"],
                "completed" => &["completed", "erased"],
                other => &[if other == "erased" { "erased" } else { "?" }],
            };
            if !allowed.contains(&now) {
                return Err(self.fail(
                    "acknowledged writes",
                    format!("{} answered {uuid} {said}; it is now {now} there", self.nodes[node].name),
                ));
            }
        }
        let total: usize = states.iter().map(BTreeMap::len).sum();
        self.trace.line(format!("end: {total} transaction copies checked on {} nodes", self.nodes.len()));
        Ok(())
    }

    /// No balance outside the loosest limits its account ever had.
    async fn check_limits(&self, i: usize) -> Result<(), Failure> {
        let path = format!("/account/summary?acc_path={}", self.nodes[i].name);
        let summary = self.admin(i, Method::GET, &path, None, 200).await?;
        let limits = lock(&self.book).limits.clone();
        for (id, s) in summary["data"].as_object().into_iter().flatten() {
            let Some((min, max)) = limits.get(&(i, id.clone())) else { continue };
            let balance = Decimal::from_str(&s["completed"]["balance"].to_string()).unwrap_or_default();
            if balance < *min || balance > *max {
                return Err(
                    self.fail("limits", format!("{}/{id} has {balance}, outside {min}..{max}", self.nodes[i].name))
                );
            }
        }
        Ok(())
    }

    fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if let Some(up) = n.up.take() {
                self.net.detach(&n.name);
                let _ = up.stop.send(true);
            }
        }
    }
}

fn request(method: Method, path: &str, user: (&str, &str), body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path).header("cc-user", user.0).header("cc-auth", user.1);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("a request from parts")
}

fn class(value: &Value) -> String {
    value["errors"][0]["class"].as_str().map_or_else(|| value["data"]["state"].to_string(), str::to_owned)
}

/// A member's or admin's client, in a task of its own.
struct Client {
    net: Arc<Net>,
    trace: Trace,
    book: Arc<Mutex<Book>>,
}

impl Client {
    fn ack(&self, uuid: &str, node: usize, state: &str) {
        lock(&self.book).acked.insert((uuid.to_owned(), node), state.to_owned());
    }

    #[allow(clippy::too_many_arguments)]
    async fn propose(
        &self,
        name: String,
        origin: usize,
        author: String,
        body: Value,
        uuid: String,
        kind: Kind,
        other: Member,
    ) {
        let key = format!("key-{author}");
        let req = request(Method::POST, "/transaction", (&author, &key), Some(body.clone()));
        let answer = self.net.call(&name, req).await;
        let Some((status, value)) = answer else {
            self.trace.line(format!("client {author}@{name} {} {uuid}: no answer", body["type"]));
            return;
        };
        self.trace.line(format!(
            "client {author}@{name} {} {} {uuid}: {status} {}",
            body["type"],
            body["quant"],
            class(&value)
        ));
        if status == 201 || status == 200 {
            let state = value["data"]["state"].as_str().unwrap_or("?").to_owned();
            self.ack(&uuid, origin, &state);
            let mut book = lock(&self.book);
            if state == "completed" {
                book.completed.push((uuid, origin));
            } else if state == "validated" {
                book.proposals.push(Proposal { uuid, origin, author, kind, other, pending: false });
            }
        }
    }

    async fn advance(&self, name: String, node: usize, user: String, p: Proposal, to: &str) {
        let key = format!("key-{user}");
        let path = format!("/transaction/{}/{to}", p.uuid);
        let answer = self.net.call(&name, request(Method::PATCH, &path, (&user, &key), None)).await;
        let Some((status, value)) = answer else {
            self.trace.line(format!("client {user}@{name} {to} {}: no answer", p.uuid));
            return;
        };
        self.trace.line(format!("client {user}@{name} {to} {}: {status} {}", p.uuid, class(&value)));
        let mut book = lock(&self.book);
        if status == 201 || status == 200 {
            book.acked.insert((p.uuid.clone(), node), to.to_owned());
            if let Some(q) = book.proposals.iter_mut().find(|q| q.uuid == p.uuid) {
                q.pending = true;
            }
            if to == "completed" {
                book.proposals.retain(|q| q.uuid != p.uuid);
                book.completed.push((p.uuid, p.origin));
            }
        } else if status == 400 && value["errors"][0]["class"] == "WorkflowViolation" {
            // Expired or erased meanwhile.
            book.proposals.retain(|q| q.uuid != p.uuid);
        }
        let _ = p.kind;
    }

    async fn erase(&self, name: String, origin: usize, uuid: String) {
        let path = format!("/transaction/{uuid}/erased");
        let answer = self.net.call(&name, request(Method::PATCH, &path, ("admin", ADMIN_KEY), None)).await;
        let Some((status, value)) = answer else {
            self.trace.line(format!("client admin@{name} erase {uuid}: no answer"));
            return;
        };
        self.trace.line(format!("client admin@{name} erase {uuid}: {status} {}", class(&value)));
        let mut book = lock(&self.book);
        if status == 201 || status == 200 {
            book.acked.insert((uuid.clone(), origin), "erased".to_owned());
            book.completed.retain(|(u, _)| *u != uuid);
        }
    }

    async fn limits(&self, name: String, node: usize, member: String, min: i64, max: i64) {
        let path = format!("/admin/accounts/{member}");
        let body = json!({"min": min, "max": max});
        {
            // The change may apply even if its answer is lost.
            let mut book = lock(&self.book);
            let entry = book.limits.entry((node, member.clone())).or_insert((Decimal::ZERO, Decimal::ZERO));
            entry.0 = entry.0.min(Decimal::from(min));
            entry.1 = entry.1.max(Decimal::from(max));
        }
        let answer = self.net.call(&name, request(Method::PATCH, &path, ("admin", ADMIN_KEY), Some(body))).await;
        let Some((status, value)) = answer else {
            self.trace.line(format!("client admin@{name} limits {member}: no answer"));
            return;
        };
        self.trace.line(format!("client admin@{name} limits {member} {min}..{max}: {status} {}", class(&value)));
    }
}
