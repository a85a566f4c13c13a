//! The ledger as the writer drives it: the commands the writer takes, the
//! machine that decides them, and the publisher that folds durable events
//! into the read model.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ledger::federation::{self, Plan, RelayIn, WireEntry};
use ledger::{
    encode_event, AccountId, AccountKind, Command, Context, Event, KeyHash, LedgerView, Limits, Proposal, TxId,
    Violation,
};

use crate::pending::{Hold, Pending, View};
use crate::read_model::ReadModel;
use crate::runtime::{Decision, Machine};
use projections::Projections;

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
    /// Time out every validated transaction past its window, except those
    /// crossing a link to one of `unsettled` (ccnode neighbours not
    /// reconciled since this node started: one may have written a change of
    /// it that this node lost in a crash, or left in doubt).
    ExpireDue {
        /// The neighbours not reconciled since start.
        unsettled: Vec<AccountId>,
    },
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
    /// Drop the reservation of a change of `uuid` to `to` left in doubt,
    /// once a fenced reconciliation showed the next node did not write it
    /// (nothing happens if that change is no longer held).
    Settle {
        /// Which.
        uuid: TxId,
        /// The state the change in doubt was to reach.
        to: ledger::State,
    },
    /// At start: hold every validated or pending transaction crossing a link
    /// to one of `peers` as if its completion were in flight (this node may
    /// have asked it of a neighbour before it stopped, and then must be able
    /// to write it when reconciliation copies it), until that link is
    /// reconciled ([`NodeCommand::ReleasePresumed`]).
    PresumeHolds {
        /// The ccnode neighbours.
        peers: Vec<AccountId>,
    },
    /// Drop the holds presumed at start whose transactions cross none of
    /// `unsettled` (the ccnode links not reconciled yet).
    ReleasePresumed {
        /// The neighbours not reconciled since start.
        unsettled: Vec<AccountId>,
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

/// The ledger as the writer drives it.
#[derive(Debug)]
pub struct LedgerMachine {
    /// The read model: the writer decides against its projections.
    pub(crate) read: Arc<RwLock<ReadModel>>,
    /// What was decided but is not yet in the projections.
    pub(crate) pending: Pending,
    pub(crate) holds: HashMap<TxId, Hold>,
    /// Seq and hash of the last record decided (predicted before it is durable).
    pub(crate) chain: (u64, [u8; 32]),
    /// The Merkle tree over the journal, shared with readers (who use only checkpointed sizes).
    pub(crate) tree: crate::merkle::SharedTree,
    /// Whether every prediction so far matched the journal.
    pub(crate) tree_ok: Arc<AtomicBool>,
    /// Signs checkpoints (none on a read-only node).
    pub(crate) signer: Option<tlog::NoteSigner>,
    /// Seq of the last record that is not a checkpoint or cosignature.
    pub(crate) last_ledger_seq: u64,
    /// Where fresh transaction ids come from (`None`: random v4 uuids).
    pub(crate) fresh_uuid: Option<UuidSource>,
}

/// A source of fresh uuids: the simulator's is seeded, so a run repeats.
#[derive(Clone)]
pub struct UuidSource(pub Arc<dyn Fn() -> uuid::Uuid + Send + Sync>);

impl std::fmt::Debug for UuidSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UuidSource")
    }
}

pub(crate) use projections::is_proof_bookkeeping;

impl LedgerMachine {
    fn context(&self, now_us: u64) -> Context {
        let fresh = self.fresh_uuid.as_ref().map_or_else(uuid::Uuid::new_v4, |source| (source.0)());
        Context { now_unix_s: now_us / 1_000_000, fresh_uuid: TxId(fresh) }
    }

    fn view<'a>(&'a self, base: &'a Projections) -> View<'a> {
        View { base, pending: &self.pending, holds: &self.holds }
    }

    fn decide_one(
        &mut self,
        base: &Projections,
        command: Command,
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Result<(), Violation> {
        let ctx = self.context(now_us);
        let new = ledger::decide(&self.view(base), command, &ctx)?;
        self.record(base, new, events);
        Ok(())
    }

    /// Records decided events as pending and queues them for the journal,
    /// each followed by the soft limits it made a balance cross.
    fn record(&mut self, base: &Projections, new: Vec<Event>, events: &mut Vec<Event>) {
        for event in new {
            let watched = ledger::warn::watched(&self.view(base), &event);
            self.push(base, event, events);
            if let Some((uuid, before)) = watched {
                for crossed in ledger::warn::crossings(&self.view(base), uuid, &before) {
                    self.push(base, crossed, events);
                }
            }
        }
    }

    /// One event: record `chain.0 + 1 + events.len()` (seqs are assigned in
    /// this order right after `decide` returns).
    fn push(&mut self, base: &Projections, event: Event, events: &mut Vec<Event>) {
        let seq = self.chain.0 + 1 + u64::try_from(events.len()).expect("usize fits u64");
        self.pending.record(base, seq, &event);
        events.push(event);
    }
}

impl Machine for LedgerMachine {
    type Command = NodeCommand;
    type Event = Event;
    type Output = NodeOutput;
    type Rejection = Violation;

    fn decide(&mut self, command: NodeCommand, now_us: u64) -> Decision<Self> {
        let read = Arc::clone(&self.read);
        let read = read.read().expect("the read model lock is never poisoned");
        let base = &read.projections;
        self.pending.prune(base.seq());
        let decision = self.decide_on(base, command, now_us);
        if cfg!(debug_assertions) {
            self.view(base).assert_zero_sum();
        }
        decision
    }

    fn encode(&self, event: &Event) -> Vec<u8> {
        encode_event(event)
    }

    fn encoded(&mut self, payload: &[u8], now_us: u64) {
        let seq = self.chain.0 + 1;
        let hash = journal::record_hash(&journal::Hash(self.chain.1), seq, now_us, payload).0;
        self.chain = (seq, hash);
        self.tree.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(&hash);
    }

    fn predicted_head(&self) -> Option<[u8; 32]> {
        Some(self.chain.1)
    }

    /// As a restart would: nothing decided is pending any more (the read
    /// model holds every durable record), holds of changes in flight are
    /// dropped (their flows' commits are decided afresh, as after a
    /// restart), and the chain and the Merkle tree go on from `head`.
    fn resume(&mut self, head: &journal::Head) {
        self.pending = Pending::default();
        self.holds.clear();
        self.chain = (head.seq, head.hash.0);
        let read = self.read.read().expect("the read model lock is never poisoned");
        debug_assert_eq!(read.projections.seq(), head.seq, "writing resumes where the read model is");
        self.last_ledger_seq = read.projections.facts().last_ledger_seq;
        drop(read);
        let mut tree = self.tree.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        tree.resume_predictions();
        if tree.records() != head.seq {
            tracing::error!(
                tree = tree.records(),
                head = head.seq,
                "the Merkle tree does not end at the journal's head"
            );
            self.tree_ok.store(false, Ordering::Release);
        }
    }
}

impl LedgerMachine {
    fn decide_on(&mut self, base: &Projections, command: NodeCommand, now_us: u64) -> Decision<Self> {
        let mut events = Vec::new();
        let mut output = NodeOutput::Done;
        match command {
            // One decision: a local payment is recorded at once, one leaving
            // this node comes back as a plan (the checks are not run twice).
            NodeCommand::Propose(proposal) => {
                match federation::plan_origin(&self.view(base), &proposal, &self.context(now_us))? {
                    federation::Origin::Relay(plan) => output = NodeOutput::Plan(Some(plan)),
                    federation::Origin::Local(new) => self.record(base, new, &mut events),
                }
            }
            NodeCommand::PlanRelay { from, relay } => {
                let plan = federation::plan_relay(&self.view(base), &from, relay, &self.context(now_us))?;
                output = NodeOutput::Plan(Some(Box::new(plan)));
            }
            NodeCommand::Prepare { uuid, to, actor } => {
                if self.holds.contains_key(&uuid) {
                    return Err(Violation::Other { translated: format!("a change of {uuid} is already in flight") });
                }
                // Decide without applying: the events are dropped, only the verdict counts.
                ledger::decide(&self.view(base), Command::Transition { uuid, to, actor }, &self.context(now_us))?;
                let tx = self.view(base).transaction(&uuid).cloned().expect("decide found it");
                self.holds.insert(uuid, Hold { entries: tx.entries.clone(), from: tx.state, to, presumed: false });
            }
            NodeCommand::Commit { uuid, to, actor, relay_version } => {
                self.holds.remove(&uuid);
                let command = match relay_version {
                    Some(relay_version) => Command::TransitionRelayed { uuid, to, actor, relay_version },
                    None => Command::Transition { uuid, to, actor },
                };
                self.decide_one(base, command, now_us, &mut events)?;
            }
            NodeCommand::Abort { uuid } => {
                self.holds.remove(&uuid);
            }
            NodeCommand::PresumeHolds { peers } => {
                let view = self.view(base);
                let open: Vec<(TxId, Hold)> = base
                    .open_crossing(&peers)
                    .into_iter()
                    .filter_map(|uuid| {
                        let tx = view.transaction(&uuid)?;
                        let hold = Hold {
                            entries: tx.entries.clone(),
                            from: tx.state,
                            to: ledger::State::Completed,
                            presumed: true,
                        };
                        Some((uuid, hold))
                    })
                    .collect();
                for (uuid, hold) in open {
                    self.holds.entry(uuid).or_insert(hold);
                }
            }
            NodeCommand::ReleasePresumed { unsettled } => {
                let view = self.view(base);
                let still = |uuid: &TxId| view.link(uuid).is_some_and(|l| l.peers().any(|p| unsettled.contains(p)));
                let released: Vec<TxId> =
                    self.holds.iter().filter(|(u, h)| h.presumed && !still(u)).map(|(u, _)| *u).collect();
                for uuid in released {
                    self.holds.remove(&uuid);
                }
            }
            NodeCommand::Settle { uuid, to } => {
                if self.holds.get(&uuid).is_some_and(|h| h.to == to) {
                    self.holds.remove(&uuid);
                }
            }
            NodeCommand::Absorb { plan, from, added } => {
                let plan = federation::absorb(&self.view(base), *plan, &from, added)?;
                output = NodeOutput::Plan(Some(Box::new(plan)));
            }
            NodeCommand::Additional { uuid, upstream } => {
                let view = self.view(base);
                let entries = match (view.transaction(&uuid), view.link(&uuid)) {
                    (Some(tx), Some(link)) => federation::additional_for(&view, tx, link, &upstream),
                    _ => Vec::new(),
                };
                output = NodeOutput::Entries(entries);
            }
            NodeCommand::Ledger(command @ Command::Reconcile { uuid, to, .. }) if !self.holds.is_empty() => {
                // A neighbour's version of a change this node holds (in doubt,
                // or presumed at start) is that change: its reservation is not
                // counted twice. And a neighbour wrote it: only the changes
                // really in flight count against it, not the guesses made at
                // start (they were all in flight at once before the stop, so
                // they fit together).
                if self.holds.get(&uuid).is_some_and(|h| h.to == to || h.presumed) {
                    self.holds.remove(&uuid);
                }
                let real: HashMap<TxId, Hold>;
                let holds = if self.holds.values().any(|h| h.presumed) {
                    real = self.holds.iter().filter(|(_, h)| !h.presumed).map(|(u, h)| (*u, h.clone())).collect();
                    &real
                } else {
                    &self.holds
                };
                let view = View { base, pending: &self.pending, holds };
                let new = ledger::decide(&view, command, &self.context(now_us))?;
                self.record(base, new, &mut events);
            }
            NodeCommand::Ledger(command) => self.decide_one(base, command, now_us, &mut events)?,
            NodeCommand::OpenAccount { id, kind, limits, key_hash } => {
                self.decide_one(base, Command::OpenAccount { id: id.clone(), kind, limits }, now_us, &mut events)?;
                // Cannot fail: the account exists now. A failure here would be a bug.
                self.decide_one(base, Command::ChangeKey { id, key_hash }, now_us, &mut events)
                    .expect("setting the key of an account just opened succeeds");
            }
            NodeCommand::Many(commands) => {
                let mut commands = commands.into_iter();
                if let Some(first) = commands.next() {
                    self.decide_one(base, first, now_us, &mut events)?;
                }
                for command in commands {
                    self.decide_one(base, command, now_us, &mut events)
                        .expect("account changes validated by the handler succeed once the first did");
                }
            }
            NodeCommand::ChangeAccount { id, commands, warn } => {
                // A change prepared against this account's limits and asked of
                // the next nodes must be committable here once they wrote it:
                // its limits do not change under it. (Found by the simulator,
                // issue 13.)
                let limits = commands.iter().any(|c| matches!(c, Command::ChangeLimits { .. }));
                let in_flight = self.holds.values().any(|h| h.entries.iter().any(|e| e.payer == id || e.payee == id));
                if limits && in_flight {
                    return Err(Violation::Other {
                        translated: format!(
                            "a transaction of {id} is being written across nodes; change its limits once it is"
                        ),
                    });
                }
                // Decided on a copy first, so that a refusal writes nothing.
                if let Some(limits) = warn {
                    ledger::warn::set(&self.view(base), &id, limits)?;
                }
                let mut commands = commands.into_iter();
                if let Some(first) = commands.next() {
                    self.decide_one(base, first, now_us, &mut events)?;
                }
                for command in commands {
                    self.decide_one(base, command, now_us, &mut events)
                        .expect("account changes validated by the handler succeed once the first did");
                }
                if let Some(limits) = warn {
                    let event = ledger::warn::set(&self.view(base), &id, limits).expect("checked above");
                    self.record(base, vec![event], &mut events);
                }
            }
            NodeCommand::Checkpoint => {
                if let Some(size) = self.checkpoint(base, &mut events)? {
                    output = NodeOutput::Checkpointed { size };
                }
            }
            NodeCommand::SetNodeKey { public_key } => {
                if self.view(base).node_key().is_some() {
                    return Err(Violation::Other { translated: "the node already has a key".into() });
                }
                self.record(base, vec![Event::NodeKeySet { public_key }], &mut events);
            }
            NodeCommand::RotateKey { seed } => {
                let old = self.signer.as_ref().ok_or_else(no_key)?;
                let new = tlog::NoteSigner::new(old.name(), &seed.0)
                    .map_err(|e| Violation::Other { translated: e.to_string() })?;
                let (from, to) = (old.public_key(), new.public_key());
                if self.view(base).node_key() != Some(&from) {
                    return Err(Violation::Other { translated: "the node's key is not journaled yet".into() });
                }
                let signature = old.sign_bytes(&ledger::node_key_rotation_message(&from, &to));
                self.record(base, vec![Event::NodeKeyRotated { old: from, new: to, signature }], &mut events);
                self.signer = Some(new);
            }
            NodeCommand::SetPeerKey { peer, origin, public_key } => {
                if self.view(base).peer(&peer).is_none() {
                    return Err(Violation::Other { translated: format!("{peer} is not a neighbour") });
                }
                self.record(base, vec![Event::PeerKeySet { peer, origin, public_key }], &mut events);
            }
            NodeCommand::Cosign { peer, size, root, text, again } => {
                let signer = self.signer.as_ref().ok_or_else(no_key)?;
                let last = self.view(base).witnessed(&peer);
                let fits = match (again, last) {
                    (true, Some((s, r))) => s == size && r == root,
                    (true, None) => false,
                    (false, Some((s, _))) => size > s,
                    (false, None) => size > 0,
                };
                if !fits || self.view(base).peer(&peer).is_none() {
                    return Err(Violation::Other { translated: "not after the last checkpoint cosigned".into() });
                }
                let line = signer.cosign(&text, now_us / 1_000_000).line();
                if !again {
                    self.record(base, vec![Event::WitnessCosigned { peer, size, root }], &mut events);
                }
                output = NodeOutput::Cosignature(line);
            }
            NodeCommand::RecordCosignature { peer, size, signature } => {
                if self.view(base).peer(&peer).is_none() || size > self.view(base).checkpoint_size() {
                    return Err(Violation::Other {
                        translated: "not a cosignature of a checkpoint of this node".into(),
                    });
                }
                self.record(base, vec![Event::CheckpointCosigned { peer, size, signature }], &mut events);
            }
            NodeCommand::ExpireDue { unsettled } => {
                for uuid in self.view(base).due_expiries(now_us / 1_000_000) {
                    let view = self.view(base);
                    if view.link(&uuid).is_some_and(|l| l.peers().any(|p| unsettled.contains(p))) {
                        continue;
                    }
                    // A change in flight across nodes (prepared, the next node
                    // asked) is not timed out under it: the next node may have
                    // written it already, and this node must then write it
                    // too. It expires at a later pass if it was aborted. (Found
                    // by the simulator, issue 13.)
                    if self.holds.contains_key(&uuid) {
                        continue;
                    }
                    // A refusal means it is no longer due; nothing to do.
                    let _ = self.decide_one(base, Command::Expire { uuid }, now_us, &mut events);
                }
            }
        }
        // The payloads are encoded (and their seqs assigned) right after this returns, in order.
        for (seq, event) in (self.chain.0 + 1..).zip(events.iter()) {
            if !is_proof_bookkeeping(event) {
                self.last_ledger_seq = seq;
            }
        }
        Ok((events, output))
    }
}

fn no_key() -> Violation {
    Violation::Other { translated: "the node has no key".into() }
}

impl LedgerMachine {
    /// Signs the checkpoint of every record decided so far; `None` when
    /// nothing but the last checkpoint was written since it.
    fn checkpoint(&mut self, base: &Projections, events: &mut Vec<Event>) -> Result<Option<u64>, Violation> {
        let size = self.chain.0;
        let last = self.view(base).checkpoint_size();
        // Checkpoints and cosignatures alone are no reason for a new checkpoint.
        if size == 0 || (last > 0 && self.last_ledger_seq <= last) {
            return Ok(None);
        }
        let refuse = |translated: String| Violation::Other { translated };
        if !self.tree_ok.load(Ordering::Acquire) {
            return Err(refuse("the Merkle tree disagrees with the journal; restart the node".into()));
        }
        let signer = self.signer.as_ref().ok_or_else(no_key)?;
        let root = crate::merkle::read(&self.tree)
            .tree()
            .map_err(|e| refuse(e.to_string()))?
            .root_at(size)
            .map_err(|e| refuse(e.to_string()))?;
        let view = self.view(base);
        let leaves = crate::checkpoint::balance_leaves(view.accounts().into_iter(), &view)
            .ok_or_else(|| refuse("a balance does not fit the balances tree".into()))?;
        let links = view
            .ratchets()
            .into_iter()
            .map(|(peer, r)| tlog::LinkLine { neighbour: peer.as_str().to_owned(), version: r.count, head: r.blake3 })
            .collect();
        let note = crate::checkpoint::sign_checkpoint(signer, size, root, leaves, links).map_err(refuse)?;
        self.record(base, vec![Event::CheckpointSigned { size, note }], events);
        Ok(Some(size))
    }
}

/// Applies durable events to the read model, announces the new head, and
/// asks for a projections snapshot every `snapshot_every` records.
#[derive(Debug)]
pub struct ReadPublisher {
    pub(crate) read: Arc<RwLock<ReadModel>>,
    pub(crate) durable: tokio::sync::watch::Sender<u64>,
    pub(crate) tree_ok: Arc<AtomicBool>,
    /// Records between snapshots (0: only at shutdown).
    pub(crate) snapshot_every: u64,
    /// The seq of the last snapshot asked for.
    pub(crate) snapshot_seq: u64,
    /// Wakes the snapshot thread (never blocks: one request waits at most).
    pub(crate) snapshots: Option<std::sync::mpsc::SyncSender<()>>,
    /// The Merkle tree, which records folded while not writing extend.
    pub(crate) tree: crate::merkle::SharedTree,
}

impl ReadPublisher {
    /// Announces the head `seq` and asks for a snapshot when one is due.
    fn published(&mut self, seq: u64) {
        self.durable.send_replace(seq);
        if self.snapshot_every > 0 && seq >= self.snapshot_seq.saturating_add(self.snapshot_every) {
            if let Some(snapshots) = &self.snapshots {
                // Full means a snapshot is being taken or asked for already.
                if snapshots.try_send(()).is_ok() {
                    self.snapshot_seq = seq;
                }
            }
        }
    }
}

impl crate::runtime::Publisher<Event> for ReadPublisher {
    fn publish(&mut self, first_seq: u64, head: &journal::Head, events: Vec<Event>) {
        let mut read = self.read.write().expect("the read model lock is never poisoned");
        for (seq, event) in (first_seq..).zip(events.iter()) {
            read.apply(seq, head.recorded_at_us, event);
        }
        debug_assert_eq!(read.projections.seq(), head.seq);
        read.head_hash = head.hash.0;
        let seq = read.projections.seq();
        drop(read);
        self.published(seq);
    }

    fn prediction_failed(&mut self, _seq: u64) {
        self.tree_ok.store(false, Ordering::Release);
    }

    /// Each record decoded, then checked and folded by `try_apply`: a record
    /// that does not fold stops there (the read model keeps what came before).
    fn follow(&mut self, records: &[journal::Record]) -> Result<(), String> {
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            let event = ledger::decode_event(&record.payload)
                .map_err(|e| format!("journal record {} is not an event: {e}", record.seq))?;
            events.push(event);
        }
        let mut folded = Ok(());
        let mut read = self.read.write().expect("the read model lock is never poisoned");
        let mut tree = self.tree.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (record, event) in records.iter().zip(&events) {
            if let Err(finding) = read.projections.try_apply(record.seq, record.recorded_at_us, event) {
                folded = Err(format!("journal record {} cannot be folded: {}", finding.seq, finding.kind));
                break;
            }
            read.head_hash = record.hash.0;
            tree.push_durable(&record.hash.0);
        }
        drop(tree);
        let seq = read.projections.seq();
        drop(read);
        self.published(seq);
        folded
    }

    fn writer_stopped(&mut self, acked: &journal::Head) {
        self.tree.write().unwrap_or_else(std::sync::PoisonError::into_inner).stop_predictions(acked.seq);
    }
}
