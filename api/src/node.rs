//! A running node: the journal, the writer thread with the ledger's state,
//! the read model the HTTP handlers use, and start-up / shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use journal::Journal;
use ledger::federation::{self, FeePolicy, Link, Plan, Ratchet, RelayIn, WireEntry};
use ledger::{
    decode_event, encode_event, Account, AccountId, AccountKind, Command, Context, Event, KeyHash, LedgerState,
    LedgerView, Limits, NodeName, Proposal, TxId, Violation,
};
use projections::{Projections, SnapshotStore};

use crate::auth;
use crate::metrics::Metrics;
use crate::runtime::{Decision, Handle, Machine, WriteError, Writer};

/// Id of the operator's first admin account.
pub const ADMIN_ACCOUNT: &str = "admin";

/// What the HTTP side reads: the projections (balances, transactions, key
/// hashes, links and ratchets) plus each link's version log and closed links.
#[derive(Debug, Default)]
pub struct ReadModel {
    /// Balances, transactions, history.
    pub projections: Projections,
    /// Soft limits and their crossings (issue 12, item 5).
    pub warnings: Warnings,
    /// The node's key and its signed checkpoints (issue 11).
    pub checkpoints: crate::checkpoint::CheckpointLog,
}

/// Soft limits and every time one was crossed, folded from the journal.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    /// Each account's soft limits.
    pub limits: HashMap<AccountId, ledger::warn::WarnLimits>,
    /// Every crossing, oldest first.
    pub crossed: Vec<Crossing>,
}

/// One soft limit crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The journal record of the crossing.
    pub seq: u64,
    /// When it was recorded (unix microseconds).
    pub at_us: u64,
    /// The account.
    pub id: AccountId,
    /// The transaction that moved its balance.
    pub uuid: TxId,
    /// Below the soft minimum (else above the soft maximum).
    pub below: bool,
    /// The soft limit.
    pub limit: ledger::Amount,
    /// The completed balance after the transaction.
    pub balance: ledger::Amount,
}

impl Warnings {
    /// Folds one event.
    pub fn apply(&mut self, seq: u64, at_us: u64, event: &Event) {
        match event {
            Event::WarnLimitsChanged { id, warn_min, warn_max } => {
                let limits = ledger::warn::WarnLimits { min: *warn_min, max: *warn_max };
                if limits == ledger::warn::WarnLimits::default() {
                    self.limits.remove(id);
                } else {
                    self.limits.insert(id.clone(), limits);
                }
            }
            Event::WarnLimitCrossed { id, uuid, below, limit, balance } => self.crossed.push(Crossing {
                seq,
                at_us,
                id: id.clone(),
                uuid: *uuid,
                below: *below,
                limit: *limit,
                balance: *balance,
            }),
            _ => {}
        }
    }
}

impl ReadModel {
    /// The link facts of a transaction that crosses nodes (from the projections).
    pub fn link(&self, uuid: &TxId) -> Option<&Link> {
        LedgerView::link(&self.projections, uuid)
    }

    /// The evidence a link was closed with after a divergence, while it is
    /// closed (`LinkClosed`, folded by the projections; a restart keeps it).
    pub fn closed(&self, peer: &AccountId) -> Option<serde_json::Value> {
        let text = self.projections.closed_link(peer)?;
        Some(serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned())))
    }

    /// A neighbour's ratchet head (from the projections).
    pub fn ratchet(&self, peer: &AccountId) -> Option<&Ratchet> {
        LedgerView::ratchet(&self.projections, peer)
    }

    /// The node accounts of connected neighbours, by id.
    pub fn neighbours(&self) -> Vec<AccountId> {
        self.projections.accounts().filter(|a| self.projections.peer(&a.id).is_some()).map(|a| a.id.clone()).collect()
    }

    fn apply(&mut self, seq: u64, recorded_at_us: u64, event: &Event) {
        self.warnings.apply(seq, recorded_at_us, event);
        if matches!(event, Event::TransactionProposed { .. }) && crate::failpoint_is("panic-in-fold") {
            // Stands for a bug in the fold: it panics under the read model's write lock.
            panic!("failpoint panic-in-fold: the fold of seq {seq} panicked");
        }
        if let Event::CheckpointSigned { size, note } = event {
            // Recorded right after record `size`: the projections are as of it.
            let leaves = crate::checkpoint::balance_leaves(self.projections.accounts(), &self.projections);
            self.checkpoints.record(*size, note.clone(), leaves);
        }
        self.checkpoints.observe(event);
        self.projections.apply(seq, recorded_at_us, event);
    }
}

/// A request to the writer.
#[derive(Debug, Clone)]
pub enum NodeCommand {
    /// One ledger command.
    Ledger(Command),
    /// Open an account and set its key in one atomic write.
    OpenAccount {
        /// Id.
        id: AccountId,
        /// Kind.
        kind: AccountKind,
        /// Limits.
        limits: Limits,
        /// Its key's salted hash.
        key_hash: KeyHash,
    },
    /// Several account-management commands on one existing account, all or
    /// nothing (the handler checks them first, so only the first can fail).
    Many(Vec<Command>),
    /// An account change from `PATCH /admin/accounts/{id}`: its commands as
    /// `Many`, then its soft limits when given; all or nothing.
    ChangeAccount {
        /// The account.
        id: AccountId,
        /// Limits, status, key.
        commands: Vec<Command>,
        /// New soft limits, if they change.
        warn: Option<ledger::warn::WarnLimits>,
    },
    /// Time out every validated transaction past its window.
    ExpireDue,
    /// Sign a checkpoint of every record decided so far, unless nothing but
    /// the last checkpoint was written since it (issue 11).
    Checkpoint,
    /// Journal the node's public key (once, at start).
    SetNodeKey {
        /// Ed25519 public key.
        public_key: [u8; 32],
    },
    /// Replace the node's key; the old key signs the change.
    RotateKey {
        /// The new key's seed (already in `node.key.next`).
        seed: crate::checkpoint::Seed,
    },
    /// Record a neighbour's checkpoint key.
    SetPeerKey {
        /// The neighbour.
        peer: AccountId,
        /// Its origin (the key's name).
        origin: String,
        /// Its public key.
        public_key: [u8; 32],
    },
    /// Cosign a neighbour's checkpoint (checked by the witness route) and
    /// record it; refused if it does not grow the last one cosigned.
    Cosign {
        /// The neighbour.
        peer: AccountId,
        /// Its size.
        size: u64,
        /// Its root.
        root: [u8; 32],
        /// Its note text (what the cosignature signs).
        text: String,
        /// The same tree as the last cosigned: cosign again, record nothing.
        again: bool,
    },
    /// Record a neighbour's cosignature of this node's checkpoint.
    RecordCosignature {
        /// The neighbour.
        peer: AccountId,
        /// The checkpoint's size.
        size: u64,
        /// The signature line.
        signature: String,
    },
    /// A client's proposal: written at once when both parties are local
    /// (`NodeOutput::Done`), else planned for relaying (`NodeOutput::Plan`, no write).
    Propose(Proposal),
    /// Plan a proposal relayed by a neighbour.
    PlanRelay {
        /// The neighbour's account.
        from: AccountId,
        /// What it sent.
        relay: RelayIn,
    },
    /// Check a state change of a transaction that crosses nodes and reserve
    /// its balance changes until `Commit` or `Abort` (writes nothing).
    Prepare {
        /// Which.
        uuid: TxId,
        /// Target state.
        to: ledger::State,
        /// Who asks (a local account or the neighbour that relayed it).
        actor: AccountId,
    },
    /// Write a prepared state change (after the next node wrote it).
    Commit {
        /// Which.
        uuid: TxId,
        /// Target state.
        to: ledger::State,
        /// Who asked.
        actor: AccountId,
        /// For a relay a Komunitin neighbour sent: its body's `version` text,
        /// which its link's ratchet hashes.
        relay_version: Option<String>,
    },
    /// Drop a prepared state change (the next node refused or did not answer).
    Abort {
        /// Which.
        uuid: TxId,
    },
    /// Add the entries the next node answered a relay with to a plan (no write).
    Absorb {
        /// The plan.
        plan: Box<Plan>,
        /// The node that answered.
        from: AccountId,
        /// Its additional entries.
        added: Vec<WireEntry>,
    },
    /// The additional entries to answer `upstream` with for a recorded transaction (no write).
    Additional {
        /// Which.
        uuid: TxId,
        /// The neighbour that relayed it to us.
        upstream: AccountId,
    },
}

/// What a command answers besides "durable".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutput {
    /// Nothing more.
    Done,
    /// A plan (no write).
    Plan(Option<Box<Plan>>),
    /// Entries to answer a relay with.
    Entries(Vec<WireEntry>),
    /// A checkpoint of this many records was signed.
    Checkpointed {
        /// Its tree size.
        size: u64,
    },
    /// A `cosignature/v1` line by this node.
    Cosignature(String),
}

/// A state change in flight across nodes: its balance changes are reserved.
#[derive(Debug, Clone)]
struct Hold {
    entries: Vec<ledger::Entry>,
    from: ledger::State,
    to: ledger::State,
}

/// The writer's state seen with the reservations of changes in flight.
struct HeldView<'a> {
    state: &'a LedgerState,
    holds: &'a HashMap<TxId, Hold>,
}

impl LedgerView for HeldView<'_> {
    fn config(&self) -> Option<&ledger::NodeConfig> {
        self.state.config()
    }
    fn account(&self, id: &AccountId) -> Option<&Account> {
        self.state.account(id)
    }
    fn balances(&self, id: &AccountId) -> ledger::Balances {
        self.state.balances(id)
    }
    fn transaction(&self, uuid: &TxId) -> Option<&ledger::Transaction> {
        self.state.transaction(uuid)
    }
    fn trunkward_account(&self) -> Option<&AccountId> {
        self.state.trunkward_account()
    }
    fn peer(&self, id: &AccountId) -> Option<&ledger::Peer> {
        self.state.peer(id)
    }
    fn link(&self, uuid: &TxId) -> Option<&Link> {
        self.state.link(uuid)
    }
    fn ratchet(&self, peer: &AccountId) -> Option<&Ratchet> {
        self.state.ratchet(peer)
    }
    fn fees(&self) -> Option<&FeePolicy> {
        self.state.fees()
    }
    fn dialect(&self, peer: &AccountId) -> ledger::Dialect {
        self.state.dialect(peer)
    }
    fn link_closed(&self, peer: &AccountId) -> bool {
        self.state.link_closed(peer)
    }
    fn held(&self, id: &AccountId) -> (ledger::Balances, ledger::Balances) {
        let mut down = ledger::Balances::default();
        let mut up = ledger::Balances::default();
        for hold in self.holds.values() {
            let Ok(deltas) = ledger::balance_deltas(&hold.entries, Some(hold.from), hold.to) else { continue };
            if let Some(d) = deltas.get(id) {
                let add = |acc: ledger::Amount, v: ledger::Amount| acc.checked_add(v).unwrap_or(acc);
                if d.completed.is_negative() {
                    down.completed = add(down.completed, d.completed);
                } else {
                    up.completed = add(up.completed, d.completed);
                }
                if d.pending.is_negative() {
                    down.pending = add(down.pending, d.pending);
                } else {
                    up.pending = add(up.pending, d.pending);
                }
            }
        }
        (down, up)
    }
}

/// The ledger as the writer drives it.
#[derive(Debug)]
pub struct LedgerMachine {
    state: LedgerState,
    holds: HashMap<TxId, Hold>,
    /// Seq and hash of the last record decided (predicted before it is durable).
    chain: (u64, [u8; 32]),
    /// The Merkle tree over the journal, shared with readers (who use only checkpointed sizes).
    tree: Arc<RwLock<tlog::Tree>>,
    /// Whether every prediction so far matched the journal.
    tree_ok: Arc<AtomicBool>,
    /// Signs checkpoints (none on a read-only node).
    signer: Option<tlog::NoteSigner>,
    /// Seq of the last record that is not a checkpoint or cosignature.
    last_ledger_seq: u64,
}

/// Records about checkpoints themselves (signed, cosigned, witnessed).
fn is_proof_bookkeeping(event: &Event) -> bool {
    matches!(event, Event::CheckpointSigned { .. } | Event::CheckpointCosigned { .. } | Event::WitnessCosigned { .. })
}

fn context(now_us: u64) -> Context {
    Context { now_unix_s: now_us / 1_000_000, fresh_uuid: TxId(uuid::Uuid::new_v4()) }
}

impl LedgerMachine {
    fn view(&self) -> HeldView<'_> {
        HeldView { state: &self.state, holds: &self.holds }
    }

    fn decide_one(&mut self, command: Command, now_us: u64, events: &mut Vec<Event>) -> Result<(), Violation> {
        let ctx = context(now_us);
        let new = ledger::decide(&self.view(), command, &ctx)?;
        self.record(new, events);
        Ok(())
    }

    /// Applies decided events to the writer's state and queues them for the
    /// journal, each followed by the soft limits it made a balance cross.
    fn record(&mut self, new: Vec<Event>, events: &mut Vec<Event>) {
        for event in new {
            let watched = ledger::warn::watched(&self.state, self.state.warn_limits(), &event);
            self.state.apply(&event);
            events.push(event);
            if let Some((uuid, before)) = watched {
                for crossed in ledger::warn::crossings(&self.state, self.state.warn_limits(), uuid, &before) {
                    self.state.apply(&crossed);
                    events.push(crossed);
                }
            }
        }
    }
}

impl Machine for LedgerMachine {
    type Command = NodeCommand;
    type Event = Event;
    type Output = NodeOutput;
    type Rejection = Violation;

    fn decide(&mut self, command: NodeCommand, now_us: u64) -> Decision<Self> {
        let mut events = Vec::new();
        let mut output = NodeOutput::Done;
        match command {
            // One decision: a local payment is recorded at once, one leaving
            // this node comes back as a plan (the checks are not run twice).
            NodeCommand::Propose(proposal) => match federation::plan_origin(&self.view(), &proposal, &context(now_us))?
            {
                federation::Origin::Relay(plan) => output = NodeOutput::Plan(Some(plan)),
                federation::Origin::Local(new) => self.record(new, &mut events),
            },
            NodeCommand::PlanRelay { from, relay } => {
                let plan = federation::plan_relay(&self.view(), &from, relay, &context(now_us))?;
                output = NodeOutput::Plan(Some(Box::new(plan)));
            }
            NodeCommand::Prepare { uuid, to, actor } => {
                if self.holds.contains_key(&uuid) {
                    return Err(Violation::Other { translated: format!("a change of {uuid} is already in flight") });
                }
                // Decide without applying: the events are dropped, only the verdict counts.
                ledger::decide(&self.view(), Command::Transition { uuid, to, actor }, &context(now_us))?;
                let tx = self.state.transaction(&uuid).expect("decide found it");
                self.holds.insert(uuid, Hold { entries: tx.entries.clone(), from: tx.state, to });
            }
            NodeCommand::Commit { uuid, to, actor, relay_version } => {
                self.holds.remove(&uuid);
                let command = match relay_version {
                    Some(relay_version) => Command::TransitionRelayed { uuid, to, actor, relay_version },
                    None => Command::Transition { uuid, to, actor },
                };
                self.decide_one(command, now_us, &mut events)?;
            }
            NodeCommand::Abort { uuid } => {
                self.holds.remove(&uuid);
            }
            NodeCommand::Absorb { plan, from, added } => {
                let plan = federation::absorb(&self.view(), *plan, &from, added)?;
                output = NodeOutput::Plan(Some(Box::new(plan)));
            }
            NodeCommand::Additional { uuid, upstream } => {
                let view = self.view();
                let entries = match (view.transaction(&uuid), view.link(&uuid)) {
                    (Some(tx), Some(link)) => federation::additional_for(&view, tx, link, &upstream),
                    _ => Vec::new(),
                };
                output = NodeOutput::Entries(entries);
            }
            NodeCommand::Ledger(command) => self.decide_one(command, now_us, &mut events)?,
            NodeCommand::OpenAccount { id, kind, limits, key_hash } => {
                self.decide_one(Command::OpenAccount { id: id.clone(), kind, limits }, now_us, &mut events)?;
                // Cannot fail: the account exists now. A failure here would be a bug.
                self.decide_one(Command::ChangeKey { id, key_hash }, now_us, &mut events)
                    .expect("setting the key of an account just opened succeeds");
            }
            NodeCommand::Many(commands) => {
                let mut commands = commands.into_iter();
                if let Some(first) = commands.next() {
                    self.decide_one(first, now_us, &mut events)?;
                }
                for command in commands {
                    self.decide_one(command, now_us, &mut events)
                        .expect("account changes validated by the handler succeed once the first did");
                }
            }
            NodeCommand::ChangeAccount { id, commands, warn } => {
                // Decided on a copy first, so that a refusal writes nothing.
                if let Some(limits) = warn {
                    ledger::warn::set(&self.state, &id, limits)?;
                }
                let mut commands = commands.into_iter();
                if let Some(first) = commands.next() {
                    self.decide_one(first, now_us, &mut events)?;
                }
                for command in commands {
                    self.decide_one(command, now_us, &mut events)
                        .expect("account changes validated by the handler succeed once the first did");
                }
                if let Some(limits) = warn {
                    let event = ledger::warn::set(&self.state, &id, limits).expect("checked above");
                    self.record(vec![event], &mut events);
                }
            }
            NodeCommand::Checkpoint => {
                if let Some(size) = self.checkpoint(&mut events)? {
                    output = NodeOutput::Checkpointed { size };
                }
            }
            NodeCommand::SetNodeKey { public_key } => {
                if self.state.node_key().is_some() {
                    return Err(Violation::Other { translated: "the node already has a key".into() });
                }
                self.record(vec![Event::NodeKeySet { public_key }], &mut events);
            }
            NodeCommand::RotateKey { seed } => {
                let old = self.signer.as_ref().ok_or_else(no_key)?;
                let new = tlog::NoteSigner::new(old.name(), &seed.0)
                    .map_err(|e| Violation::Other { translated: e.to_string() })?;
                let (from, to) = (old.public_key(), new.public_key());
                if self.state.node_key() != Some(&from) {
                    return Err(Violation::Other { translated: "the node's key is not journaled yet".into() });
                }
                let signature = old.sign_bytes(&ledger::node_key_rotation_message(&from, &to));
                self.record(vec![Event::NodeKeyRotated { old: from, new: to, signature }], &mut events);
                self.signer = Some(new);
            }
            NodeCommand::SetPeerKey { peer, origin, public_key } => {
                if self.state.peer(&peer).is_none() {
                    return Err(Violation::Other { translated: format!("{peer} is not a neighbour") });
                }
                self.record(vec![Event::PeerKeySet { peer, origin, public_key }], &mut events);
            }
            NodeCommand::Cosign { peer, size, root, text, again } => {
                let signer = self.signer.as_ref().ok_or_else(no_key)?;
                let last = self.state.witnessed(&peer).copied();
                let fits = match (again, last) {
                    (true, Some((s, r))) => s == size && r == root,
                    (true, None) => false,
                    (false, Some((s, _))) => size > s,
                    (false, None) => size > 0,
                };
                if !fits || self.state.peer(&peer).is_none() {
                    return Err(Violation::Other { translated: "not after the last checkpoint cosigned".into() });
                }
                let line = signer.cosign(&text, now_us / 1_000_000).line();
                if !again {
                    self.record(vec![Event::WitnessCosigned { peer, size, root }], &mut events);
                }
                output = NodeOutput::Cosignature(line);
            }
            NodeCommand::RecordCosignature { peer, size, signature } => {
                if self.state.peer(&peer).is_none() || size > self.state.checkpoint_size() {
                    return Err(Violation::Other {
                        translated: "not a cosignature of a checkpoint of this node".into(),
                    });
                }
                self.record(vec![Event::CheckpointCosigned { peer, size, signature }], &mut events);
            }
            NodeCommand::ExpireDue => {
                for uuid in self.state.due_expiries(now_us / 1_000_000) {
                    // A refusal means it is no longer due; nothing to do.
                    let _ = self.decide_one(Command::Expire { uuid }, now_us, &mut events);
                }
            }
        }
        // The payloads are encoded (and their seqs assigned) right after this returns, in order.
        for (seq, event) in (self.chain.0 + 1..).zip(events.iter()) {
            if !is_proof_bookkeeping(event) {
                self.last_ledger_seq = seq;
            }
        }
        if cfg!(debug_assertions) {
            self.state.assert_zero_sum();
        }
        Ok((events, output))
    }

    fn encode(&self, event: &Event) -> Vec<u8> {
        encode_event(event)
    }

    fn encoded(&mut self, payload: &[u8], now_us: u64) {
        let seq = self.chain.0 + 1;
        let hash = journal::record_hash(&journal::Hash(self.chain.1), seq, now_us, payload).0;
        self.chain = (seq, hash);
        self.tree.write().expect("the tree lock is never poisoned").push_leaf_hash(tlog::leaf_hash(&hash));
    }

    fn predicted_head(&self) -> Option<[u8; 32]> {
        Some(self.chain.1)
    }
}

fn no_key() -> Violation {
    Violation::Other { translated: "the node has no key".into() }
}

impl LedgerMachine {
    /// Signs the checkpoint of every record decided so far; `None` when
    /// nothing but the last checkpoint was written since it.
    fn checkpoint(&mut self, events: &mut Vec<Event>) -> Result<Option<u64>, Violation> {
        let size = self.chain.0;
        let last = self.state.checkpoint_size();
        // Checkpoints and cosignatures alone are no reason for a new checkpoint.
        if size == 0 || (last > 0 && self.last_ledger_seq <= last) {
            return Ok(None);
        }
        let refuse = |translated: String| Violation::Other { translated };
        if !self.tree_ok.load(Ordering::Acquire) {
            return Err(refuse("the Merkle tree disagrees with the journal; restart the node".into()));
        }
        let signer = self.signer.as_ref().ok_or_else(no_key)?;
        let root = self
            .tree
            .read()
            .expect("the tree lock is never poisoned")
            .root_at(size)
            .map_err(|e| refuse(e.to_string()))?;
        let leaves = crate::checkpoint::balance_leaves(self.state.accounts(), &self.state)
            .ok_or_else(|| refuse("a balance does not fit the balances tree".into()))?;
        let links = self
            .state
            .ratchets()
            .map(|(peer, r)| tlog::LinkLine { neighbour: peer.as_str().to_owned(), version: r.count, head: r.blake3 })
            .collect();
        let note = crate::checkpoint::sign_checkpoint(signer, size, root, leaves, links).map_err(refuse)?;
        self.record(vec![Event::CheckpointSigned { size, note }], events);
        Ok(Some(size))
    }
}

/// Applies durable events to the read model and announces the new head.
#[derive(Debug)]
pub struct ReadPublisher {
    read: Arc<RwLock<ReadModel>>,
    durable: tokio::sync::watch::Sender<u64>,
    tree_ok: Arc<AtomicBool>,
}

impl crate::runtime::Publisher<Event> for ReadPublisher {
    fn publish(&mut self, first_seq: u64, recorded_at_us: u64, events: Vec<Event>) {
        let mut read = self.read.write().expect("the read model lock is never poisoned");
        for (seq, event) in (first_seq..).zip(events.iter()) {
            read.apply(seq, recorded_at_us, event);
        }
        let head = read.projections.seq();
        drop(read);
        self.durable.send_replace(head);
    }

    fn prediction_failed(&mut self, _seq: u64) {
        self.tree_ok.store(false, Ordering::Release);
    }
}

/// Settings the node starts with.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Data directory (journal in `journal/`, derived store in `projections/`).
    pub data_dir: PathBuf,
    /// Node name, fixed at first start.
    pub name: String,
    /// Key for the `admin` account (created at first start, rotated if it changed).
    pub admin_key: Option<String>,
    /// Seconds before a validated transaction expires.
    pub validated_window_seconds: u64,
    /// Whether zero payments are allowed.
    pub zero_payments: bool,
    /// Whether pending transactions count toward limits.
    pub validate_pending: bool,
    /// Limits of accounts opened without explicit ones.
    pub default_limits: (ledger::Amount, ledger::Amount),
    /// How long a neighbour has to answer.
    pub peer_timeout: std::time::Duration,
    /// Seconds between reconciliation passes over every link.
    pub reconcile_interval: std::time::Duration,
    /// The parent node to connect at first start, if not connected yet.
    pub trunkward: Option<TrunkwardOptions>,
    /// The workflows new transactions may use (`--workflows FILE`); `None`
    /// keeps the journal's (the shipped set on a new node). A different set
    /// is journaled as a configuration change; old transactions keep theirs.
    pub workflows: Option<Vec<ledger::Workflow>>,
    /// The checkpoints' origin and key name (default: the node's name).
    pub origin: Option<String>,
    /// Seconds between scheduled checkpoints (zero: none on a schedule).
    pub checkpoint_interval: std::time::Duration,
    /// Sign a checkpoint whenever this many records were written since the last (zero: never for that).
    pub checkpoint_records: u64,
    /// Clock for journal timestamps (unix µs); the demo backdates with its own.
    pub clock: fn() -> u64,
    /// How neighbours are reached: `None` is HTTP with `peer_timeout`; a
    /// simulation or an in-process test gives its own network.
    pub peer_client: Option<Arc<dyn crate::peer_client::PeerClient>>,
}

/// A parent node given on the command line.
#[derive(Debug, Clone)]
pub struct TrunkwardOptions {
    /// Its name (the balance-of-trade account here).
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Trunkward amount = local amount × rate.
    pub rate: ledger::Rate,
    /// Limits of the balance-of-trade account.
    pub limits: Limits,
    /// The link's agreed initial hash.
    pub last_hash: String,
    /// How the parent speaks.
    pub dialect: ledger::Dialect,
}

/// Shared state of all handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    handle: Handle<LedgerMachine>,
    /// Why the node refuses writes, when it started read-only.
    read_only: Option<String>,
    read: Arc<RwLock<ReadModel>>,
    metrics: Arc<Metrics>,
    name: String,
    genesis: [u8; 32],
    default_limits: (ledger::Amount, ledger::Amount),
    peers: crate::federation::Peers,
    data_dir: PathBuf,
    reconcile_interval: std::time::Duration,
    durable: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tree: Arc<RwLock<tlog::Tree>>,
    origin: String,
    key_lock: tokio::sync::Mutex<()>,
    witness_lock: tokio::sync::Mutex<()>,
    checkpoint_schedule: (std::time::Duration, u64),
}

impl AppState {
    /// Read access to the read model (never waits on the writer's fsync).
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.inner.read.read().expect("the read model lock is never poisoned")
    }

    /// Submits a command and waits until it is durable.
    pub async fn submit(&self, command: NodeCommand) -> Result<NodeOutput, WriteError<Violation>> {
        if let Some(reason) = &self.inner.read_only {
            return Err(WriteError::ReadOnly(reason.clone()));
        }
        self.inner.handle.submit(command).await
    }

    /// Why the node refuses every write, when it started read-only (its
    /// journal holds a record the read model cannot fold; the reason names it).
    pub fn read_only(&self) -> Option<&str> {
        self.inner.read_only.as_deref()
    }

    /// Submits commands in order, sharing batches; one answer per command sent
    /// (fewer if the writer stopped).
    pub async fn submit_all(&self, commands: Vec<NodeCommand>) -> Vec<Result<NodeOutput, WriteError<Violation>>> {
        if let Some(reason) = &self.inner.read_only {
            return commands.iter().map(|_| Err(WriteError::ReadOnly(reason.clone()))).collect();
        }
        self.inner.handle.submit_all(commands).await
    }

    /// Metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The seq of the last durable, published record; changes as the writer commits.
    pub fn durable_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.durable.clone()
    }

    /// Says to long-lived streams that the node is shutting down.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves when the node begins shutting down.
    pub fn shutting_down(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Closes a link after a divergence: journaled (`LinkClosed`), so a
    /// restart keeps it closed. A link closed already keeps its first evidence.
    pub async fn close_link(&self, peer: &AccountId, evidence: serde_json::Value) {
        let mut text = evidence.to_string();
        if text.len() > ledger::decide::EVIDENCE_BYTES_MAX {
            let cut =
                (0..=ledger::decide::EVIDENCE_BYTES_MAX - 128).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text = serde_json::json!({"truncated": &text[..cut]}).to_string();
        }
        let command = NodeCommand::Ledger(Command::CloseLink { peer: peer.clone(), evidence: text });
        if let Err(error) = self.submit(command).await {
            tracing::debug!(%peer, why = %describe_write_error(&error), "link not closed (closed already?)");
        }
    }

    /// Reopens a closed link (`LinkReopened`); whether it was closed.
    pub async fn reopen_link(&self, peer: &AccountId) -> bool {
        if self.read().closed(peer).is_none() {
            return false;
        }
        self.submit(NodeCommand::Ledger(Command::ReopenLink { peer: peer.clone() })).await.is_ok()
    }

    /// Seconds between reconciliation passes.
    pub fn reconcile_interval(&self) -> std::time::Duration {
        self.inner.reconcile_interval
    }

    /// Neighbour calls and link locks.
    pub fn peers(&self) -> &crate::federation::Peers {
        &self.inner.peers
    }

    /// Default (min, max) of new accounts.
    pub fn default_limits(&self) -> (ledger::Amount, ledger::Amount) {
        self.inner.default_limits
    }

    /// Whether the writer stopped after a journal failure.
    pub fn writer_failed(&self) -> bool {
        self.inner.handle.has_failed()
    }

    /// The checkpoints' origin (the node's key name).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The Merkle tree over the journal. It may hold leaves past the durable
    /// head (decided, not yet synced): use only sizes of checkpoints.
    pub fn tree(&self) -> Arc<RwLock<tlog::Tree>> {
        Arc::clone(&self.inner.tree)
    }

    /// Held while the node's key is being rotated.
    pub fn key_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.key_lock
    }

    /// Held while a neighbour's checkpoint is checked and cosigned.
    pub fn witness_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.witness_lock
    }

    /// Seconds between scheduled checkpoints and records between checkpoints.
    pub fn checkpoint_schedule(&self) -> (std::time::Duration, u64) {
        self.inner.checkpoint_schedule
    }

    /// The data directory (journal in `journal/`), for read-only journal
    /// handles such as the replay event feed.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The journal could not be opened.
    #[error("opening the journal in {dir}: {source}")]
    Journal {
        /// Where.
        dir: PathBuf,
        /// Why.
        source: Box<journal::OpenError>,
    },
    /// The journal could not be replayed.
    #[error("replaying the journal: {0}")]
    Replay(String),
    /// The data directory belongs to another node.
    #[error("{dir} holds the journal of node {found:?}, not {expected:?}")]
    WrongNode {
        /// Where.
        dir: PathBuf,
        /// Name in the journal.
        found: String,
        /// Name asked for.
        expected: String,
    },
    /// Bad settings.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The first writes (initialisation, admin account) failed.
    #[error("initialising the ledger: {0}")]
    Initialise(String),
    /// Filesystem.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The node's key file.
    #[error("the node's key: {0}")]
    Key(#[from] crate::checkpoint::KeyError),
}

/// A started node: hand `state()` to the router; call `shutdown` at the end.
#[derive(Debug)]
pub struct Node {
    state: AppState,
    writer: Writer,
    store: Option<SnapshotStore>,
    data_dir: PathBuf,
}

/// Where the journal lives inside a data directory.
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

/// Where the derived projections snapshot lives inside a data directory.
pub fn projections_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("projections")
}

impl Node {
    /// Opens (or creates) the node's journal, rebuilds state, initialises a new
    /// ledger, and starts the writer.
    pub async fn start(options: StartOptions, metrics: Arc<Metrics>) -> Result<Node, StartError> {
        let name = NodeName::new(&options.name).map_err(|e| StartError::Config(format!("node name: {e}")))?;
        if let Some(key) = &options.admin_key {
            auth::check_new_key(key).map_err(|_| StartError::Config("admin key must be 1 to 256 bytes".into()))?;
        }
        std::fs::create_dir_all(&options.data_dir)?;
        let dir = journal_dir(&options.data_dir);
        let journal = Journal::open_or_create(&dir, &options.name, journal::Options::default())
            .map_err(|source| StartError::Journal { dir: dir.clone(), source: Box::new(source) })?;
        if journal.identity() != options.name {
            return Err(StartError::WrongNode {
                dir: options.data_dir.clone(),
                found: journal.identity().to_owned(),
                expected: options.name.clone(),
            });
        }
        let origin = options.origin.clone().unwrap_or_else(|| options.name.clone());
        if !tlog::note::valid_key_name(&origin) || origin == "cosignature/v1" {
            return Err(StartError::Config(format!("origin {origin:?}: no spaces or '+', not cosignature/v1")));
        }
        let mut state = LedgerState::new();
        let mut warnings = Warnings::default();
        let mut tree = tlog::Tree::new();
        let mut checkpoints = crate::checkpoint::CheckpointLog::default();
        let mut pending_checkpoints = std::collections::VecDeque::new();
        let mut last_ledger_seq = 0;
        crate::runtime::replay_journal(&journal, |record| {
            tree.push_leaf_hash(tlog::leaf_hash(&record.hash.0));
            let event = decode_event(&record.payload).map_err(|e| e.to_string())?;
            if !is_proof_bookkeeping(&event) {
                last_ledger_seq = record.seq;
            }
            checkpoints.observe(&event);
            if let Event::CheckpointSigned { size, note } = &event {
                // The state is as of record `size` (this is record size + 1).
                let leaves = crate::checkpoint::balance_leaves(state.accounts(), &state);
                pending_checkpoints.push_back((*size, note.clone(), leaves));
                if pending_checkpoints.len() > crate::checkpoint::BALANCE_TREES_KEPT {
                    if let Some((size, note, _)) = pending_checkpoints.pop_front() {
                        checkpoints.record(size, note, None);
                    }
                }
            }
            state.apply(&event);
            warnings.apply(record.seq, record.recorded_at_us, &event);
            Ok::<(), String>(())
        })
        .map_err(|e| StartError::Replay(format!("{e}: {e:?}")))?;
        state.assert_zero_sum();

        let store = match SnapshotStore::open(&projections_dir(&options.data_dir)) {
            Ok(store) => Some(store),
            Err(error) => {
                tracing::warn!(%error, "the projections store cannot be opened; folding the journal in memory");
                None
            }
        };
        let (projections, unfoldable) = match &store {
            Some(store) => {
                let (projections, report) = projections::load_or_rebuild(&journal, store)
                    .map_err(|e| StartError::Replay(format!("projections: {e}")))?;
                tracing::info!(
                    snapshot_seq = ?report.from_snapshot_seq,
                    folded = report.folded,
                    rebuilt_because = ?report.rebuilt_because,
                    "projections loaded"
                );
                (projections, report.unfoldable)
            }
            None => fold_until_unfoldable(&journal)?,
        };
        projections.assert_invariants();
        let read_only = unfoldable.map(|u| {
            let reason = read_only_reason(&u);
            tracing::error!(seq = u.seq, detail = %u.detail, "{reason}");
            reason
        });
        for (size, note, leaves) in pending_checkpoints {
            checkpoints.record(size, note, leaves);
        }
        let read = Arc::new(RwLock::new(ReadModel { projections, warnings, checkpoints }));
        metrics.set_head(journal.head().seq);
        let genesis = journal.genesis().0;
        let needs_init = state.config().is_none();
        let admin_hash = state.key_hash(&AccountId::new(ADMIN_ACCOUNT).expect("valid id")).cloned();
        let has_admin = state.account(&AccountId::new(ADMIN_ACCOUNT).expect("valid id")).is_some();
        let (durable, durable_rx) = tokio::sync::watch::channel(read.read().expect("fresh lock").projections.seq());
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let (signer, journal_key) = if read_only.is_some() {
            (None, false)
        } else {
            let settled = crate::checkpoint::settle_key(&options.data_dir, state.node_key())?;
            let signer = tlog::NoteSigner::new(&origin, &settled.seed.0)
                .map_err(|e| StartError::Config(format!("origin: {e}")))?;
            (Some(signer), settled.journal_it)
        };
        let public_key = signer.as_ref().map(tlog::NoteSigner::public_key);
        let head = journal.head();
        let tree = Arc::new(RwLock::new(tree));
        let tree_ok = Arc::new(AtomicBool::new(true));
        let machine = LedgerMachine {
            state,
            holds: HashMap::new(),
            chain: (head.seq, head.hash.0),
            tree: Arc::clone(&tree),
            tree_ok: Arc::clone(&tree_ok),
            signer,
            last_ledger_seq,
        };
        let publisher = ReadPublisher { read: Arc::clone(&read), durable, tree_ok };
        let observer: Arc<dyn crate::runtime::WriterObserver> = metrics.clone();
        let (writer, handle) = Writer::start(machine, publisher, journal, options.clock, observer);
        let app = AppState {
            inner: Arc::new(Shared {
                handle,
                read_only: read_only.clone(),
                read,
                metrics,
                name: options.name.clone(),
                genesis,
                default_limits: options.default_limits,
                peers: match &options.peer_client {
                    Some(client) => crate::federation::Peers::with_client(Arc::clone(client)),
                    None => crate::federation::Peers::new(options.peer_timeout),
                },
                reconcile_interval: options.reconcile_interval,
                durable: durable_rx,
                shutdown,
                data_dir: options.data_dir.clone(),
                tree,
                origin,
                key_lock: tokio::sync::Mutex::new(()),
                witness_lock: tokio::sync::Mutex::new(()),
                checkpoint_schedule: (options.checkpoint_interval, options.checkpoint_records),
            }),
        };

        if read_only.is_some() {
            // No start-up write either: the node only answers reads.
            return Ok(Node { state: app, writer, store: None, data_dir: options.data_dir });
        }
        let init_error = |e: WriteError<Violation>| StartError::Initialise(describe_write_error(&e));
        if needs_init {
            let mut config = ledger::NodeConfig::new(name);
            config.validated_window_s = options.validated_window_seconds;
            config.zero_payments_allowed = options.zero_payments;
            config.validate_pending = options.validate_pending;
            if let Some(workflows) = &options.workflows {
                config.workflows.clone_from(workflows);
            }
            app.submit(NodeCommand::Ledger(Command::InitialiseNode { config })).await.map_err(init_error)?;
        } else if let Some(workflows) = &options.workflows {
            let current = app.read().projections.config().cloned();
            if let Some(mut config) = current.filter(|c| &c.workflows != workflows) {
                config.workflows.clone_from(workflows);
                app.submit(NodeCommand::Ledger(Command::ConfigureNode { config })).await.map_err(init_error)?;
                tracing::info!(count = workflows.len(), "the workflows changed: new transactions use the new set");
            }
        }
        if let (true, Some(public_key)) = (journal_key, public_key) {
            app.submit(NodeCommand::SetNodeKey { public_key }).await.map_err(init_error)?;
            tracing::info!("journaled the node's public key");
        }
        if let Some(key) = &options.admin_key {
            let id = AccountId::new(ADMIN_ACCOUNT).expect("valid id");
            if !has_admin {
                let limits = Limits::new(ledger::Amount::ZERO, ledger::Amount::ZERO).expect("0 <= 0 <= 0");
                let kind = AccountKind::User { admin: true };
                let key_hash = auth::new_key_hash(key);
                app.submit(NodeCommand::OpenAccount { id, kind, limits, key_hash }).await.map_err(init_error)?;
                tracing::info!("created the admin account");
            } else if !admin_hash.is_some_and(|h| auth::key_matches(key, &h)) {
                let key_hash = auth::new_key_hash(key);
                app.submit(NodeCommand::Ledger(Command::ChangeKey { id, key_hash })).await.map_err(init_error)?;
                tracing::warn!("the admin key given at start differs from the stored one: replaced it");
            }
        }
        if let Some(t) = &options.trunkward {
            let id = AccountId::new(&t.name).map_err(|e| StartError::Config(format!("trunkward name: {e}")))?;
            let connected = app.read().projections.account(&id).is_some();
            if !connected {
                let commands = crate::federation::connect_commands_in(
                    id,
                    AccountKind::Trunkward,
                    t.limits,
                    t.url.clone(),
                    t.rate,
                    t.last_hash.clone(),
                    t.dialect,
                );
                app.submit(NodeCommand::Many(commands)).await.map_err(init_error)?;
                tracing::info!(parent = %t.name, url = %t.url, "connected the trunkward node");
            }
        }
        Ok(Node { state: app, writer, store, data_dir: options.data_dir })
    }

    /// The handlers' state.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the writer after the queued commands, then saves a projections
    /// snapshot (derived data, so a failure here loses nothing). Every other
    /// `AppState` clone must be dropped first (the router and its connections).
    pub fn shutdown(self) {
        let Node { state, writer, store, .. } = self;
        let read = Arc::clone(&state.inner.read);
        let genesis = state.inner.genesis;
        drop(state);
        let journal = writer.join();
        let head = journal.head();
        if let Some(store) = store {
            let read = read.read().expect("the read model lock is never poisoned");
            match store.save(&read.projections, genesis, head.hash.0) {
                Ok(()) => tracing::info!(seq = head.seq, "projections snapshot saved"),
                Err(error) => tracing::warn!(%error, "saving the projections snapshot failed; it is rebuilt at start"),
            }
        }
        tracing::info!(seq = head.seq, "journal closed");
    }
}

/// Folds the whole journal into fresh projections; a record they cannot
/// fold is an error naming its seq.
pub fn fold_all(journal: &Journal) -> Result<Projections, StartError> {
    match fold_until_unfoldable(journal)? {
        (projections, None) => Ok(projections),
        (_, Some(unfoldable)) => Err(StartError::Replay(unfoldable.to_string())),
    }
}

/// Folds the journal into fresh projections up to the first record they
/// cannot fold (an event an older version journaled beyond today's bounds),
/// which is returned: the projections are then those of the records before it.
pub fn fold_until_unfoldable(journal: &Journal) -> Result<(Projections, Option<projections::Unfoldable>), StartError> {
    let mut projections = Projections::new();
    let mut unfoldable = None;
    crate::runtime::replay_journal(journal, |record| {
        if unfoldable.is_some() {
            return Ok(());
        }
        let event = decode_event(&record.payload).map_err(|e| e.to_string())?;
        unfoldable = projections.try_apply(record.seq, record.recorded_at_us, &event).err();
        Ok::<(), String>(())
    })
    .map_err(|e| StartError::Replay(format!("{e}: {e:?}")))?;
    Ok((projections, unfoldable))
}

/// What a read-only node answers to every write.
fn read_only_reason(unfoldable: &projections::Unfoldable) -> String {
    format!(
        "the node is read-only: journal record {} cannot be folded ({}); it was written by an older version \
         that accepted amounts beyond today's bounds. Reads show the ledger before it; `ccnode verify` names it",
        unfoldable.seq, unfoldable.detail
    )
}

/// A one-line description of a failed write for logs and start-up errors.
pub fn describe_write_error(error: &WriteError<Violation>) -> String {
    match error {
        WriteError::Rejected(v) => format!("{}: {v}", v.class()),
        other => other.to_string(),
    }
}

/// Opens a data directory read-only and folds its journal: for offline commands.
pub fn open_offline(data_dir: &Path) -> Result<(Journal, Projections), StartError> {
    let dir = journal_dir(data_dir);
    let journal =
        Journal::open_read_only(&dir).map_err(|source| StartError::Journal { dir, source: Box::new(source) })?;
    let projections = fold_all(&journal)?;
    Ok((journal, projections))
}

/// Whether an account is a local user (not a node account).
pub fn is_user(account: &Account) -> bool {
    matches!(account.kind, AccountKind::User { .. })
}
