//! The minimal in-memory state `decide` needs, folded from events.

use std::collections::{BTreeMap, HashMap};

use crate::amount::{Amount, AmountError};
use crate::event::Event;
use crate::federation::{FeePolicy, Link, Ratchet};
use crate::ids::{AccountId, TxId};
use crate::model::{Account, AccountKind, Dialect, Entry, KeyHash, NodeConfig, Peer, State, Transaction, WorkflowRef};
use crate::workflow::Workflow;

/// An account's balances. `pending` includes completed transactions, so it
/// is the balance "if everything pending completed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// Sum over completed transactions.
    pub completed: Amount,
    /// Sum over pending and completed transactions.
    pub pending: Amount,
}

/// What `decide` reads. [`LedgerState`] implements it; richer projections
/// may too.
pub trait LedgerView {
    /// Node settings, `None` before `NodeInitialised`.
    fn config(&self) -> Option<&NodeConfig>;
    /// An account's configuration.
    fn account(&self, id: &AccountId) -> Option<&Account>;
    /// An account's balances (zero for unknown accounts).
    fn balances(&self, id: &AccountId) -> Balances;
    /// A transaction by uuid.
    fn transaction(&self, uuid: &TxId) -> Option<&Transaction>;
    /// The trunkward (balance-of-trade) account, if this node has a parent.
    fn trunkward_account(&self) -> Option<&AccountId>;
    /// A node account's connection facts.
    fn peer(&self, _id: &AccountId) -> Option<&Peer> {
        None
    }
    /// The link facts of a transaction that crosses nodes.
    fn link(&self, _uuid: &TxId) -> Option<&Link> {
        None
    }
    /// A neighbour's ratchet head.
    fn ratchet(&self, _peer: &AccountId) -> Option<&Ratchet> {
        None
    }
    /// What this node charges on transactions that cross it.
    fn fees(&self) -> Option<&FeePolicy> {
        None
    }
    /// The dialect a neighbour speaks (`Ccnode` unless a `LinkDialectSet` said otherwise).
    fn dialect(&self, _peer: &AccountId) -> Dialect {
        Dialect::Ccnode
    }
    /// Whether the link with `peer` is closed after a divergence (`LinkClosed`
    /// not followed by `LinkReopened`).
    fn link_closed(&self, _peer: &AccountId) -> bool {
        false
    }
    /// Balance changes reserved by writes in flight elsewhere: `(down, up)`,
    /// the sums of their negative and of their positive deltas. Limit checks
    /// count `down` against minimums and `up` against maximums, so a
    /// reservation can only make a check stricter.
    fn held(&self, _id: &AccountId) -> (Balances, Balances) {
        (Balances::default(), Balances::default())
    }
    /// An account's soft limits (issue 12), if it has any.
    fn warn_limits(&self, _id: &AccountId) -> Option<crate::warn::WarnLimits> {
        None
    }
    /// Whether any account has soft limits (a shortcut for the writer).
    fn any_warn_limits(&self) -> bool {
        false
    }
    /// The workflow definition journaled with this content hash, if any: a
    /// proposal under a workflow the view lacks journals it first.
    fn workflow(&self, hash: &[u8; 32]) -> Option<&Workflow>;
    /// The reference to `workflow` (a view that stores hashes answers
    /// without re-encoding the definition).
    fn workflow_ref(&self, workflow: &Workflow) -> WorkflowRef {
        WorkflowRef::of(workflow)
    }
}

/// `transaction` with the definition `view` holds for the workflow it names
/// in place of the reference.
///
/// # Panics
///
/// When the view holds no such definition: `decide` journals one before the
/// first proposal naming it, so folding a proposal without it is a bug.
pub fn resolve_workflow(view: &impl LedgerView, transaction: &Transaction<WorkflowRef>) -> Transaction {
    let workflow = view.workflow(&transaction.workflow.hash).expect("a proposal's workflow is defined before it");
    transaction.clone().with_workflow(workflow.clone())
}

/// Per-account balance changes of moving `entries` from state `from`
/// (`None` = not yet booked) to `to`. Each entry contributes `+quant` to its
/// payee and `-quant` to its payer, so the deltas always sum to zero.
pub fn balance_deltas(
    entries: &[Entry],
    from: Option<State>,
    to: State,
) -> Result<BTreeMap<AccountId, Balances>, AmountError> {
    let factor = |counts: fn(State) -> bool| -> i8 { i8::from(counts(to)) - i8::from(from.is_some_and(counts)) };
    let (completed, pending) = (factor(State::counts_completed), factor(State::counts_pending));
    let mut deltas: BTreeMap<AccountId, Balances> = BTreeMap::new();
    if completed == 0 && pending == 0 {
        return Ok(deltas);
    }
    for entry in entries {
        for (account, signed) in [(&entry.payee, entry.quant), (&entry.payer, -entry.quant)] {
            let d = deltas.entry(account.clone()).or_default();
            d.completed = scaled_add(d.completed, signed, completed)?;
            d.pending = scaled_add(d.pending, signed, pending)?;
        }
    }
    Ok(deltas)
}

fn scaled_add(acc: Amount, value: Amount, factor: i8) -> Result<Amount, AmountError> {
    match factor {
        0 => Ok(acc),
        1 => acc.checked_add(value),
        -1 => acc.checked_sub(value),
        _ => unreachable!("factor is a difference of two booleans"),
    }
}

#[derive(Debug, Clone)]
struct AccountRecord {
    account: Account,
    balances: Balances,
    key_hash: Option<KeyHash>,
    peer: Option<Peer>,
}

/// Pure fold of events: accounts, balances, transactions.
#[derive(Debug, Clone, Default)]
pub struct LedgerState {
    config: Option<NodeConfig>,
    accounts: BTreeMap<AccountId, AccountRecord>,
    trunkward: Option<AccountId>,
    transactions: HashMap<TxId, Transaction>,
    links: HashMap<TxId, Link>,
    ratchets: BTreeMap<AccountId, Ratchet>,
    fees: Option<FeePolicy>,
    dialects: BTreeMap<AccountId, Dialect>,
    closed: std::collections::BTreeSet<AccountId>,
    warn_limits: HashMap<AccountId, crate::warn::WarnLimits>,
    node_key: Option<[u8; 32]>,
    checkpoint_size: u64,
    witnessed: BTreeMap<AccountId, (u64, [u8; 32])>,
    /// Workflow definitions by content hash (`WorkflowDefined`, and the
    /// embedded ones of format-1 proposals).
    workflows: HashMap<[u8; 32], Workflow>,
}

impl LedgerView for LedgerState {
    fn config(&self) -> Option<&NodeConfig> {
        self.config.as_ref()
    }
    fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id).map(|r| &r.account)
    }
    fn balances(&self, id: &AccountId) -> Balances {
        self.accounts.get(id).map(|r| r.balances).unwrap_or_default()
    }
    fn transaction(&self, uuid: &TxId) -> Option<&Transaction> {
        self.transactions.get(uuid)
    }
    fn peer(&self, id: &AccountId) -> Option<&Peer> {
        self.accounts.get(id).and_then(|r| r.peer.as_ref())
    }
    fn link(&self, uuid: &TxId) -> Option<&Link> {
        self.links.get(uuid)
    }
    fn ratchet(&self, peer: &AccountId) -> Option<&Ratchet> {
        self.ratchets.get(peer)
    }
    fn fees(&self) -> Option<&FeePolicy> {
        self.fees.as_ref()
    }
    fn dialect(&self, peer: &AccountId) -> Dialect {
        self.dialects.get(peer).copied().unwrap_or_default()
    }
    fn link_closed(&self, peer: &AccountId) -> bool {
        self.closed.contains(peer)
    }
    fn trunkward_account(&self) -> Option<&AccountId> {
        self.trunkward.as_ref()
    }
    fn warn_limits(&self, id: &AccountId) -> Option<crate::warn::WarnLimits> {
        self.warn_limits.get(id).copied()
    }
    fn any_warn_limits(&self) -> bool {
        !self.warn_limits.is_empty()
    }
    fn workflow(&self, hash: &[u8; 32]) -> Option<&Workflow> {
        self.workflows.get(hash)
    }
}

impl LedgerState {
    /// An empty, uninitialised ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// The accounts with soft limits (issue 12), and theirs.
    pub fn warn_limits(&self) -> &HashMap<AccountId, crate::warn::WarnLimits> {
        &self.warn_limits
    }

    /// All accounts, ordered by id.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values().map(|r| &r.account)
    }

    /// All transactions, in no particular order.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.transactions.values()
    }

    /// The node's current Ed25519 public key, once journaled.
    pub fn node_key(&self) -> Option<&[u8; 32]> {
        self.node_key.as_ref()
    }

    /// The size of the last signed checkpoint (0: none yet).
    pub fn checkpoint_size(&self) -> u64 {
        self.checkpoint_size
    }

    /// The latest checkpoint of a neighbour this node cosigned: (size, root).
    pub fn witnessed(&self, peer: &AccountId) -> Option<&(u64, [u8; 32])> {
        self.witnessed.get(peer)
    }

    /// Every neighbour's ratchet, by account.
    pub fn ratchets(&self) -> impl Iterator<Item = (&AccountId, &Ratchet)> {
        self.ratchets.iter()
    }

    /// The account's key hash, if any.
    pub fn key_hash(&self, id: &AccountId) -> Option<&KeyHash> {
        self.accounts.get(id).and_then(|r| r.key_hash.as_ref())
    }

    /// Validated transactions whose window has passed at `now`, by uuid, so
    /// the shell can issue `Expire` for each.
    pub fn due_expiries(&self, now_unix_s: crate::model::UnixSeconds) -> Vec<TxId> {
        let Some(config) = &self.config else { return Vec::new() };
        let mut due: Vec<TxId> = self
            .transactions
            .values()
            .filter(|tx| crate::decide::is_expired(tx, config, now_unix_s))
            .map(|tx| tx.uuid)
            .collect();
        due.sort();
        due
    }

    /// Sums of all completed and all pending balances. Both are zero in a
    /// consistent ledger; O(accounts), so callers run it per batch or test.
    pub fn balance_sums(&self) -> Balances {
        self.accounts.values().fold(Balances::default(), |acc, r| Balances {
            completed: acc.completed.checked_add(r.balances.completed).expect("balance sum fits"),
            pending: acc.pending.checked_add(r.balances.pending).expect("balance sum fits"),
        })
    }

    /// Panics unless the ledger sums to zero.
    pub fn assert_zero_sum(&self) {
        let sums = self.balance_sums();
        assert!(sums.completed.is_zero() && sums.pending.is_zero(), "ledger does not sum to zero: {sums:?}");
    }

    /// Folds one event. Events are facts produced by `decide`; one that does
    /// not fit the state (unknown account, stale version) is a bug and panics.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::NodeInitialised { config } => {
                assert!(self.config.is_none(), "node initialised twice");
                self.config = Some(config.clone());
            }
            Event::NodeConfigured { config } => {
                let old = self.config.as_ref().expect("node configured before initialised");
                assert_eq!(old.name, config.name, "node name never changes");
                self.config = Some(config.clone());
            }
            Event::AccountOpened { account } => self.open(account),
            Event::AccountLimitsChanged { id, limits } => self.record_mut(id).account.limits = *limits,
            Event::AccountStatusChanged { id, status } => self.record_mut(id).account.status = *status,
            Event::AccountKeyChanged { id, key_hash } => self.record_mut(id).key_hash = Some(key_hash.clone()),
            Event::PeerConnected { peer } => {
                let record = self.record_mut(&peer.account);
                assert!(!matches!(record.account.kind, AccountKind::User { .. }), "peer on a user account");
                record.peer = Some(peer.clone());
                let ratchet = Ratchet {
                    md5: peer.initial_hash.clone(),
                    blake3: crate::ratchet::blake3_genesis(&peer.initial_hash),
                    count: 0,
                };
                self.ratchets.insert(peer.account.clone(), ratchet);
            }
            Event::LinkAttached { uuid, link } => {
                assert!(self.transactions.contains_key(uuid), "link of an unknown transaction");
                self.links.insert(*uuid, link.clone());
            }
            Event::FeesConfigured { policy } => self.fees.clone_from(policy),
            Event::LinkReconciled { .. } | Event::WarnLimitCrossed { .. } => {}
            Event::WarnLimitsChanged { id, warn_min, warn_max } => {
                assert!(self.accounts.contains_key(id), "soft limits of an unknown account");
                let limits = crate::warn::WarnLimits { min: *warn_min, max: *warn_max };
                if limits == crate::warn::WarnLimits::default() {
                    self.warn_limits.remove(id);
                } else {
                    self.warn_limits.insert(id.clone(), limits);
                }
            }
            Event::LinkDialectSet { account, dialect } => {
                assert!(self.ratchets.contains_key(account), "dialect of a peer not connected");
                self.dialects.insert(account.clone(), *dialect);
            }
            Event::LinkClosed { peer, .. } => {
                assert!(self.ratchets.contains_key(peer), "closing the link of a peer not connected");
                self.closed.insert(peer.clone());
            }
            Event::LinkReopened { peer } => {
                self.closed.remove(peer);
            }
            Event::NodeKeySet { public_key } => self.node_key = Some(*public_key),
            Event::NodeKeyRotated { old, new, .. } => {
                assert_eq!(self.node_key.as_ref(), Some(old), "rotation from a key that is not the node's");
                self.node_key = Some(*new);
            }
            Event::PeerKeySet { peer, .. } => {
                assert!(self.ratchets.contains_key(peer), "key of a peer not connected");
            }
            Event::WitnessCosigned { peer, size, root } => {
                assert!(self.witnessed.get(peer).is_none_or(|(s, _)| s < size), "a witness never goes back");
                self.witnessed.insert(peer.clone(), (*size, *root));
            }
            Event::CheckpointCosigned { .. } => {}
            Event::CheckpointSigned { size, .. } => {
                assert!(*size > self.checkpoint_size, "checkpoints grow");
                self.checkpoint_size = *size;
            }
            Event::RatchetAdvanced { peer, md5, blake3, .. } => {
                let ratchet = self.ratchets.get_mut(peer).expect("ratchet of a connected peer");
                ratchet.md5.clone_from(md5);
                ratchet.blake3 = *blake3;
                ratchet.count += 1;
            }
            Event::TransactionProposed { transaction } => {
                self.workflows
                    .entry(transaction.workflow.content_hash())
                    .or_insert_with(|| transaction.workflow.clone());
                self.propose(transaction);
            }
            Event::WorkflowDefined { workflow } => {
                self.workflows.insert(workflow.content_hash(), workflow.clone());
            }
            Event::TransactionProposedRef { transaction } => {
                let tx = resolve_workflow(self, transaction);
                self.propose(&tx);
            }
            Event::TransactionTransitioned { uuid, from, to, version, .. } => {
                self.transition(uuid, *from, *to, *version)
            }
            Event::TransactionExpired { uuid, version, .. } => {
                self.transition(uuid, State::Validated, State::TimedOut, *version)
            }
        }
    }

    fn record_mut(&mut self, id: &AccountId) -> &mut AccountRecord {
        self.accounts.get_mut(id).expect("event names an open account")
    }

    fn open(&mut self, account: &Account) {
        assert!(!self.accounts.contains_key(&account.id), "account {} opened twice", account.id);
        if account.kind == AccountKind::Trunkward {
            assert!(self.trunkward.is_none(), "a second trunkward account");
            self.trunkward = Some(account.id.clone());
        }
        let record =
            AccountRecord { account: account.clone(), balances: Balances::default(), key_hash: None, peer: None };
        self.accounts.insert(account.id.clone(), record);
    }

    fn propose(&mut self, tx: &Transaction) {
        assert!(!tx.entries.is_empty(), "transaction {} without entries", tx.uuid);
        assert!(!self.transactions.contains_key(&tx.uuid), "transaction {} proposed twice", tx.uuid);
        self.book(&tx.entries, None, tx.state);
        self.transactions.insert(tx.uuid, tx.clone());
    }

    fn transition(&mut self, uuid: &TxId, from: State, to: State, version: u32) {
        let mut tx = self.transactions.remove(uuid).expect("transition of a known transaction");
        assert_eq!(tx.state, from, "transition from a stale state");
        assert_eq!(tx.version.checked_add(1), Some(version), "versions advance by one");
        self.book(&tx.entries, Some(from), to);
        tx.state = to;
        tx.version = version;
        self.transactions.insert(*uuid, tx);
    }

    fn book(&mut self, entries: &[Entry], from: Option<State>, to: State) {
        let deltas = balance_deltas(entries, from, to).expect("decide checked the arithmetic");
        let mut sum = Balances::default();
        for (id, d) in deltas {
            let b = &mut self.record_mut(&id).balances;
            b.completed = b.completed.checked_add(d.completed).expect("decide checked the arithmetic");
            b.pending = b.pending.checked_add(d.pending).expect("decide checked the arithmetic");
            sum.completed = sum.completed.checked_add(d.completed).expect("delta sum fits");
            sum.pending = sum.pending.checked_add(d.pending).expect("delta sum fits");
        }
        assert!(sum.completed.is_zero() && sum.pending.is_zero(), "a booking must sum to zero");
    }
}
