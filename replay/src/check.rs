//! A non-panicking fold of ledger events that checks the ledger's rules at
//! every event.
//!
//! `ledger::LedgerState::apply` and `projections::Projections::apply` panic
//! on an event that does not fit (they trust `decide`). An auditor cannot:
//! the [`Checker`] folds the same events, returns a [`Finding`] naming the
//! seq and the account or transaction instead of panicking, and checks:
//!
//! - structure: initialised once, accounts opened once and known when named,
//!   one trunkward account, peers on node accounts only, transactions
//!   proposed once with entries, transitions from the current state with the
//!   next version;
//! - zero-sum: every booking's deltas sum to zero, so the completed and the
//!   pending balances of all accounts sum to zero after every event;
//! - limits, exactly as `ledger::check_limits` applies them: a balance that a
//!   booking lowers must end ≥ its account's `min`, one it raises must end ≤
//!   `max`; the completed balance always, the pending one when the node
//!   config in force has `validate_pending`. (A balance left outside new,
//!   tighter limits by a limits change is not a violation: decide allows it.)
//!
//! An event the checker accepts is one `Projections::apply` folds without
//! panicking.

use std::collections::HashMap;

use ledger::{Account, AccountId, AccountKind, Amount, Balances, Entry, Event, NodeConfig, State, TxId};

/// What is wrong at one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {kind}")]
pub struct Finding {
    /// The journal seq of the event.
    pub seq: u64,
    /// What.
    pub kind: FindingKind,
}

/// The kinds of inconsistency the checker reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FindingKind {
    /// A signed checkpoint that is misplaced, malformed, wrongly signed or whose root is not the journal's.
    #[error("bad checkpoint: {detail}")]
    BadCheckpoint {
        /// What is wrong.
        detail: String,
    },
    /// A key rotation from a key that is not the node's current key, or not signed by it.
    #[error("node key rotated from a key that is not the node's")]
    KeyRotationFromWrongKey,
    /// A checkpoint that is not the record right after the records it covers, or does not grow.
    #[error("checkpoint of size {size} here (it must be record size + 1, after the checkpoint of size {last})")]
    CheckpointOutOfOrder {
        /// Its size.
        size: u64,
        /// The previous checkpoint's size.
        last: u64,
    },
    /// An event before `NodeInitialised`.
    #[error("event before the node was initialised")]
    NotInitialised,
    /// A second `NodeInitialised`.
    #[error("node initialised twice")]
    InitialisedTwice,
    /// `NodeConfigured` with another name.
    #[error("node name changed from {from} to {to}")]
    NameChanged {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// An account opened twice.
    #[error("account {account} opened twice")]
    AccountOpenedTwice {
        /// Which.
        account: String,
    },
    /// A second trunkward account.
    #[error("account {account} is a second trunkward account")]
    SecondTrunkward {
        /// Which.
        account: String,
    },
    /// An event names an account that is not open.
    #[error("unknown account {account}")]
    UnknownAccount {
        /// Which.
        account: String,
    },
    /// Peer facts on a user account.
    #[error("peer facts on user account {account}")]
    PeerOnUserAccount {
        /// Which.
        account: String,
    },
    /// A ratchet of a neighbour with no peer facts.
    #[error("ratchet of {account}, which is not a connected peer")]
    NotAPeer {
        /// Which.
        account: String,
    },
    /// A transaction without entries.
    #[error("transaction {uuid} has no entries")]
    NoEntries {
        /// Which.
        uuid: String,
    },
    /// A transaction proposed twice.
    #[error("transaction {uuid} proposed twice")]
    DuplicateTransaction {
        /// Which.
        uuid: String,
    },
    /// A transition of a transaction never proposed.
    #[error("transition of unknown transaction {uuid}")]
    UnknownTransaction {
        /// Which.
        uuid: String,
    },
    /// A transition from a state the transaction is not in.
    #[error("transaction {uuid} moves from {claimed} but is {actual}")]
    StaleState {
        /// Which.
        uuid: String,
        /// State the event says it leaves.
        claimed: State,
        /// State it is in.
        actual: State,
    },
    /// A version that is not the next one.
    #[error("transaction {uuid} jumps from version {current} to {claimed}")]
    VersionSkip {
        /// Which.
        uuid: String,
        /// Current version.
        current: u32,
        /// Version the event claims.
        claimed: u32,
    },
    /// Balance arithmetic overflowed.
    #[error("balance of {account} overflows")]
    Overflow {
        /// Which.
        account: String,
    },
    /// A booking moved a balance out of its limits.
    #[error("{which} balance of {account} moved by {change} to {balance}, outside its limits [{min}, {max}]")]
    LimitBroken {
        /// Which account.
        account: String,
        /// `completed` or `pending`.
        which: &'static str,
        /// The change this event made.
        change: Amount,
        /// The balance after it.
        balance: Amount,
        /// Lower limit in force.
        min: Amount,
        /// Upper limit in force.
        max: Amount,
    },
    /// The ledger does not sum to zero after this event.
    #[error("balances do not sum to zero: completed {completed}, pending {pending}")]
    NotZeroSum {
        /// Sum of completed balances.
        completed: Amount,
        /// Sum of pending balances.
        pending: Amount,
    },
}

#[derive(Debug, Clone)]
struct Slot {
    account: Account,
    /// Balances and limits in micro-units (amounts have at most six decimals):
    /// integer arithmetic keeps the fold fast.
    bal: Bal,
    min: i128,
    max: i128,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bal {
    completed: i128,
    pending: i128,
}

/// Largest balance magnitude in micro-units: what a `rust_decimal::Decimal`
/// holds exactly at six decimals (a 96-bit mantissa). Beyond it the
/// projections' decimal arithmetic would overflow, so the checker reports
/// an overflow first.
const MAX_MICROS: i128 = (1 << 96) - 1;

/// An amount in micro-units.
fn micros(amount: Amount) -> Option<i128> {
    let d = amount.as_decimal();
    let scale = d.scale();
    let factor = 10i128.checked_pow(6u32.checked_sub(scale)?)?;
    d.mantissa().checked_mul(factor)
}

/// Micro-units as an amount (saturating at zero if out of range, which the
/// checks make unreachable).
fn amount(micros: i128) -> Amount {
    rust_decimal::Decimal::try_from_i128_with_scale(micros, 6)
        .ok()
        .and_then(|d| Amount::from_decimal(d).ok())
        .unwrap_or(Amount::ZERO)
}

fn bal_amounts(b: Bal) -> Balances {
    Balances { completed: amount(b.completed), pending: amount(b.pending) }
}

/// One entry with its parties resolved to slots.
#[derive(Debug, Clone, Copy)]
struct Leg {
    payer: u32,
    payee: u32,
    quant: i128,
}

/// A transaction's entries; one entry (the common case) is stored inline, so
/// most transactions own no heap memory.
#[derive(Debug, Clone)]
enum Legs {
    One(Leg),
    Many(Box<[Leg]>),
}

impl Legs {
    fn as_slice(&self) -> &[Leg] {
        match self {
            Legs::One(leg) => std::slice::from_ref(leg),
            Legs::Many(legs) => legs,
        }
    }
}

#[derive(Debug, Clone)]
struct Tx {
    state: State,
    version: u32,
    legs: Legs,
}

/// The checking fold. Cheap per event: O(entries) plus a hash lookup.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    config: Option<NodeConfig>,
    ids: HashMap<AccountId, u32, FastHash>,
    slots: Vec<Slot>,
    has_trunkward: bool,
    peers: std::collections::HashSet<AccountId>,
    txs: HashMap<TxId, Tx, FastHash>,
    scratch: Vec<(u32, Bal, Bal)>,
    events: u64,
    bookings: u64,
    node_key: Option<[u8; 32]>,
    checkpoint_size: u64,
    witnessed: HashMap<AccountId, u64>,
}

impl Checker {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events folded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Events that changed a balance.
    pub fn bookings(&self) -> u64 {
        self.bookings
    }

    /// Number of open accounts.
    pub fn account_count(&self) -> usize {
        self.slots.len()
    }

    /// Number of transactions (any state).
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// Transactions per state, in `State::ALL` order.
    pub fn transactions_by_state(&self) -> [(State, u64); 5] {
        let mut counts = State::ALL.map(|s| (s, 0u64));
        for tx in self.txs.values() {
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == tx.state) {
                slot.1 += 1;
            }
        }
        counts
    }

    /// Sums of completed and pending balances (both zero in a sound ledger).
    pub fn sums(&self) -> Balances {
        let mut sums = Bal::default();
        for s in &self.slots {
            sums.completed = sums.completed.saturating_add(s.bal.completed);
            sums.pending = sums.pending.saturating_add(s.bal.pending);
        }
        bal_amounts(sums)
    }

    /// Every account with its balances, in id order.
    pub fn balances(&self) -> Vec<(&Account, Balances)> {
        let mut out: Vec<(&Account, Balances)> = self.slots.iter().map(|s| (&s.account, bal_amounts(s.bal))).collect();
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        out
    }

    /// Folds the event recorded at `seq`, or says what is wrong with it. On
    /// error the state is unchanged.
    pub fn apply(&mut self, seq: u64, event: &Event) -> Result<(), Finding> {
        if let Event::CheckpointSigned { size, .. } = event {
            if size.checked_add(1) != Some(seq) {
                return Err(Finding {
                    seq,
                    kind: FindingKind::CheckpointOutOfOrder { size: *size, last: self.checkpoint_size },
                });
            }
        }
        self.apply_kind(event).map_err(|kind| Finding { seq, kind })?;
        self.events += 1;
        Ok(())
    }

    fn slot_of(&self, id: &AccountId) -> Result<u32, FindingKind> {
        self.ids.get(id).copied().ok_or_else(|| FindingKind::UnknownAccount { account: id.to_string() })
    }

    fn slot_mut(&mut self, id: &AccountId) -> Result<&mut Slot, FindingKind> {
        let index = self.slot_of(id)?;
        Ok(&mut self.slots[ix(index)])
    }

    fn apply_kind(&mut self, event: &Event) -> Result<(), FindingKind> {
        if let Event::NodeInitialised { config } = event {
            if self.config.is_some() {
                return Err(FindingKind::InitialisedTwice);
            }
            self.config = Some(config.clone());
            return Ok(());
        }
        let Some(current) = &self.config else { return Err(FindingKind::NotInitialised) };
        match event {
            Event::NodeInitialised { .. } => Err(FindingKind::InitialisedTwice),
            Event::NodeConfigured { config } => {
                if config.name != current.name {
                    let (from, to) = (current.name.to_string(), config.name.to_string());
                    return Err(FindingKind::NameChanged { from, to });
                }
                self.config = Some(config.clone());
                Ok(())
            }
            Event::AccountOpened { account } => self.open(account),
            Event::AccountLimitsChanged { id, limits } => {
                let overflow = || FindingKind::Overflow { account: id.to_string() };
                let (min, max) =
                    (micros(limits.min()).ok_or_else(overflow)?, micros(limits.max()).ok_or_else(overflow)?);
                let slot = self.slot_mut(id)?;
                slot.account.limits = *limits;
                (slot.min, slot.max) = (min, max);
                Ok(())
            }
            Event::AccountStatusChanged { id, status } => {
                self.slot_mut(id)?.account.status = *status;
                Ok(())
            }
            Event::AccountKeyChanged { id, .. } => self.slot_of(id).map(drop),
            Event::PeerConnected { peer } => {
                let slot = self.slot_mut(&peer.account)?;
                if matches!(slot.account.kind, AccountKind::User { .. }) {
                    return Err(FindingKind::PeerOnUserAccount { account: peer.account.to_string() });
                }
                self.peers.insert(peer.account.clone());
                Ok(())
            }
            Event::LinkAttached { uuid, .. } => match self.txs.contains_key(uuid) {
                true => Ok(()),
                false => Err(FindingKind::UnknownTransaction { uuid: uuid.to_string() }),
            },
            Event::LinkReconciled { uuid, .. } => match self.txs.contains_key(uuid) {
                true => Ok(()),
                false => Err(FindingKind::UnknownTransaction { uuid: uuid.to_string() }),
            },
            Event::FeesConfigured { policy } => match policy {
                Some(p) => self.slot_of(&p.account).map(drop),
                None => Ok(()),
            },
            Event::NodeKeySet { public_key } => {
                self.node_key = Some(*public_key);
                Ok(())
            }
            Event::NodeKeyRotated { old, new, .. } => {
                if self.node_key.as_ref() != Some(old) {
                    return Err(FindingKind::KeyRotationFromWrongKey);
                }
                self.node_key = Some(*new);
                Ok(())
            }
            Event::CheckpointSigned { size, .. } => {
                if *size <= self.checkpoint_size {
                    return Err(FindingKind::CheckpointOutOfOrder { size: *size, last: self.checkpoint_size });
                }
                self.checkpoint_size = *size;
                Ok(())
            }
            Event::PeerKeySet { peer, .. } => match self.peers.contains(peer) {
                true => Ok(()),
                false => Err(FindingKind::NotAPeer { account: peer.to_string() }),
            },
            Event::WitnessCosigned { peer, size, .. } => {
                if !self.peers.contains(peer) {
                    return Err(FindingKind::NotAPeer { account: peer.to_string() });
                }
                let last = self.witnessed.get(peer).copied().unwrap_or(0);
                if *size <= last {
                    return Err(FindingKind::CheckpointOutOfOrder { size: *size, last });
                }
                self.witnessed.insert(peer.clone(), *size);
                Ok(())
            }
            Event::CheckpointCosigned { peer, .. } => match self.peers.contains(peer) {
                true => Ok(()),
                false => Err(FindingKind::NotAPeer { account: peer.to_string() }),
            },
            Event::WarnLimitsChanged { id, .. } => self.slot_of(id).map(drop),
            Event::WarnLimitCrossed { id, uuid, .. } => match self.txs.contains_key(uuid) {
                true => self.slot_of(id).map(drop),
                false => Err(FindingKind::UnknownTransaction { uuid: uuid.to_string() }),
            },
            Event::LinkDialectSet { account, .. }
            | Event::LinkClosed { peer: account, .. }
            | Event::LinkReopened { peer: account } => match self.peers.contains(account) {
                true => Ok(()),
                false => Err(FindingKind::NotAPeer { account: account.to_string() }),
            },
            Event::RatchetAdvanced { peer, .. } => match self.peers.contains(peer) {
                true => Ok(()),
                false => Err(FindingKind::NotAPeer { account: peer.to_string() }),
            },
            Event::TransactionProposed { transaction } => {
                let uuid = transaction.uuid;
                if transaction.entries.is_empty() {
                    return Err(FindingKind::NoEntries { uuid: uuid.to_string() });
                }
                if self.txs.contains_key(&uuid) {
                    return Err(FindingKind::DuplicateTransaction { uuid: uuid.to_string() });
                }
                let legs = self.legs(&transaction.entries)?;
                self.book(legs.as_slice(), None, transaction.state)?;
                self.txs.insert(uuid, Tx { state: transaction.state, version: transaction.version, legs });
                Ok(())
            }
            Event::TransactionTransitioned { uuid, from, to, version, .. } => {
                self.transition(uuid, *from, *to, *version)
            }
            Event::TransactionExpired { uuid, version, .. } => {
                self.transition(uuid, State::Validated, State::TimedOut, *version)
            }
        }
    }

    fn open(&mut self, account: &Account) -> Result<(), FindingKind> {
        if self.ids.contains_key(&account.id) {
            return Err(FindingKind::AccountOpenedTwice { account: account.id.to_string() });
        }
        if account.kind == AccountKind::Trunkward {
            if self.has_trunkward {
                return Err(FindingKind::SecondTrunkward { account: account.id.to_string() });
            }
            self.has_trunkward = true;
        }
        let index =
            u32::try_from(self.slots.len()).map_err(|_| FindingKind::Overflow { account: account.id.to_string() })?;
        self.ids.insert(account.id.clone(), index);
        let overflow = || FindingKind::Overflow { account: account.id.to_string() };
        let min = micros(account.limits.min()).ok_or_else(overflow)?;
        let max = micros(account.limits.max()).ok_or_else(overflow)?;
        self.slots.push(Slot { account: account.clone(), bal: Bal::default(), min, max });
        Ok(())
    }

    fn legs(&self, entries: &[Entry]) -> Result<Legs, FindingKind> {
        let leg = |e: &Entry| {
            let quant = micros(e.quant).ok_or_else(|| FindingKind::Overflow { account: e.payer.to_string() })?;
            Ok(Leg { payer: self.slot_of(&e.payer)?, payee: self.slot_of(&e.payee)?, quant })
        };
        if let [only] = entries {
            return leg(only).map(Legs::One);
        }
        entries.iter().map(leg).collect::<Result<Box<[Leg]>, _>>().map(Legs::Many)
    }

    fn transition(&mut self, uuid: &TxId, from: State, to: State, version: u32) -> Result<(), FindingKind> {
        let unknown = || FindingKind::UnknownTransaction { uuid: uuid.to_string() };
        let tx = self.txs.get_mut(uuid).ok_or_else(unknown)?;
        if tx.state != from {
            return Err(FindingKind::StaleState { uuid: uuid.to_string(), claimed: from, actual: tx.state });
        }
        if tx.version.checked_add(1) != Some(version) {
            return Err(FindingKind::VersionSkip { uuid: uuid.to_string(), current: tx.version, claimed: version });
        }
        let legs = std::mem::replace(&mut tx.legs, Legs::Many(Box::default()));
        let booked = self.book(legs.as_slice(), Some(from), to);
        let tx = self.txs.get_mut(uuid).ok_or_else(unknown)?;
        tx.legs = legs;
        booked?;
        tx.state = to;
        tx.version = version;
        Ok(())
    }

    /// Books moving `legs` from `from` to `to`, checking limits and zero-sum;
    /// changes nothing on error.
    fn book(&mut self, legs: &[Leg], from: Option<State>, to: State) -> Result<(), FindingKind> {
        let factor = |counts: fn(State) -> bool| i8::from(counts(to)) - i8::from(from.is_some_and(counts));
        let (fc, fp) = (factor(State::counts_completed), factor(State::counts_pending));
        if fc == 0 && fp == 0 {
            return Ok(());
        }
        let mut deltas = std::mem::take(&mut self.scratch);
        let result = self.book_into(&mut deltas, legs, fc, fp);
        self.scratch = deltas;
        result
    }

    fn book_into(
        &mut self,
        deltas: &mut Vec<(u32, Bal, Bal)>,
        legs: &[Leg],
        fc: i8,
        fp: i8,
    ) -> Result<(), FindingKind> {
        // Net change per account (a few accounts per transaction).
        deltas.clear();
        for leg in legs {
            for (slot, payee) in [(leg.payee, true), (leg.payer, false)] {
                let overflow = || FindingKind::Overflow { account: self.slots[ix(slot)].account.id.to_string() };
                let d = match deltas.iter().position(|(s, _, _)| *s == slot) {
                    Some(i) => &mut deltas[i].1,
                    None => {
                        deltas.push((slot, Bal::default(), Bal::default()));
                        let last = deltas.len() - 1;
                        &mut deltas[last].1
                    }
                };
                d.completed = scaled(d.completed, leg.quant, fc, payee).ok_or_else(overflow)?;
                d.pending = scaled(d.pending, leg.quant, fp, payee).ok_or_else(overflow)?;
            }
        }
        let validate_pending = self.config.as_ref().is_some_and(|c| c.validate_pending);
        let mut sum = Bal::default();
        // The violation decide would name: lowest account id, pending first.
        let mut broken: Option<FindingKind> = None;
        for (slot, d, new) in deltas.iter_mut() {
            let s = &self.slots[ix(*slot)];
            let overflow = || FindingKind::Overflow { account: s.account.id.to_string() };
            new.completed = s.bal.completed.checked_add(d.completed).ok_or_else(overflow)?;
            new.pending = s.bal.pending.checked_add(d.pending).ok_or_else(overflow)?;
            if new.completed.abs() > MAX_MICROS || new.pending.abs() > MAX_MICROS {
                return Err(overflow());
            }
            sum.completed = sum.completed.checked_add(d.completed).ok_or_else(overflow)?;
            sum.pending = sum.pending.checked_add(d.pending).ok_or_else(overflow)?;
            let (min, max) = (s.min, s.max);
            let outside = |change: i128, balance: i128| (change < 0 && balance < min) || (change > 0 && balance > max);
            let which = if validate_pending && outside(d.pending, new.pending) {
                Some(("pending", d.pending, new.pending))
            } else if outside(d.completed, new.completed) {
                Some(("completed", d.completed, new.completed))
            } else {
                None
            };
            if let Some((which, change, balance)) = which {
                let earlier = match &broken {
                    Some(FindingKind::LimitBroken { account, .. }) => account.as_str() < s.account.id.as_str(),
                    _ => false,
                };
                if !earlier {
                    broken = Some(FindingKind::LimitBroken {
                        account: s.account.id.to_string(),
                        which,
                        change: amount(change),
                        balance: amount(balance),
                        min: s.account.limits.min(),
                        max: s.account.limits.max(),
                    });
                }
            }
        }
        if let Some(finding) = broken {
            return Err(finding);
        }
        if sum != Bal::default() {
            return Err(FindingKind::NotZeroSum { completed: amount(sum.completed), pending: amount(sum.pending) });
        }
        for (slot, _, new) in deltas.iter() {
            self.slots[ix(*slot)].bal = *new;
        }
        self.bookings += 1;
        Ok(())
    }
}

/// `acc + quant × factor`, negated for the payer.
fn scaled(acc: i128, quant: i128, factor: i8, payee: bool) -> Option<i128> {
    let add = (factor > 0) == payee;
    match factor {
        0 => Some(acc),
        _ if add => acc.checked_add(quant),
        _ => acc.checked_sub(quant),
    }
}

fn ix(slot: u32) -> usize {
    usize::try_from(slot).unwrap_or(usize::MAX)
}

/// A fast, non-cryptographic hasher for the checker's maps (uuids are random
/// and account ids come from a verified journal, so flooding is no concern).
#[derive(Debug, Clone, Copy, Default)]
pub struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

/// The hasher of [`FastHash`]: a multiply-rotate mix per 8 bytes.
#[derive(Debug, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(u64::try_from(i).unwrap_or(u64::MAX));
    }
}
