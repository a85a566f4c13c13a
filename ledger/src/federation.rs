//! Transactions that cross nodes: planning a proposal that leaves this node
//! or arrives from a neighbour, rewriting paths and converting amounts for the
//! next hop, and the link facts every node keeps for such a transaction.
//!
//! Pure like the rest of the crate: the shell relays the planned entries to
//! the neighbour and then asks `decide` to record the plan.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

use crate::amount::Amount;
use crate::decide::{check_limits, check_proposal, entry_between, record_proposal, resolve_party, Context, Proposal};
use crate::event::Event;
use crate::ids::{AccountId, TxId};
use crate::model::{AccountKind, Dialect, Entry, NodeConfig, State, Transaction};
use crate::path::Resolution;
use crate::state::LedgerView;
use crate::violation::Violation;
use crate::workflow::Workflow;

/// What a node keeps about a transaction that crosses it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Link {
    /// The neighbour it came from (`None` on the node where it started).
    pub upstream: Option<AccountId>,
    /// The neighbour it went on to (`None` on the node where it ends).
    pub downstream: Option<AccountId>,
    /// Per entry: its amount in the trunkward node's unit, when the entry is
    /// shared with the trunkward neighbour (exactly as it went on the wire).
    pub trunkward_quants: Vec<Option<Amount>>,
}

impl Link {
    /// The neighbours on this transaction, upstream first.
    pub fn peers(&self) -> impl Iterator<Item = &AccountId> {
        self.upstream.iter().chain(self.downstream.iter())
    }

    /// The neighbour that is not `from` (for a request that came from `from`,
    /// or from a local user when `from` is `None`).
    pub fn other_than(&self, from: Option<&AccountId>) -> Option<&AccountId> {
        self.peers().find(|p| Some(*p) != from)
    }
}

/// What this node charges on transactions that cross it: `fixed` plus
/// `percent` of the primary amount (in this node's unit, half-even to six
/// places), paid by the payer to a local account. Fee entries are never
/// charged fees themselves (no cascades).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct FeePolicy {
    /// The local account fees are paid to.
    pub account: AccountId,
    /// A fixed amount per transaction.
    pub fixed: Amount,
    /// A percentage of the primary amount (`1.5` = 1.5 %).
    pub percent: Amount,
}

impl FeePolicy {
    /// The fee on a primary amount, or `None` when it comes to zero.
    pub fn fee(&self, quant: Amount) -> Option<Amount> {
        let share = quant.as_decimal().checked_mul(self.percent.as_decimal())? / rust_decimal::Decimal::ONE_HUNDRED;
        let share = share.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointNearestEven);
        let total = Amount::from_decimal(share).ok()?.checked_add(self.fixed).ok()?;
        total.is_positive().then_some(total)
    }
}

/// A link's ratchet head: the last MD5 (reference) and blake3 (ccnode) hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ratchet {
    /// Lower-case hex MD5, as sent in `last-hash`.
    pub md5: String,
    /// ccnode's blake3 chain.
    pub blake3: [u8; 32],
    /// Written versions hashed into it so far.
    pub count: u64,
}

/// An entry as it travels between nodes: paths seen from the receiver,
/// amount in the trunkward unit of that link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEntry {
    /// Payer path.
    pub payer: String,
    /// Payee path.
    pub payee: String,
    /// Amount.
    pub quant: Amount,
    /// Description.
    pub description: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A relayed proposal as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayIn {
    /// The transaction's uuid, chosen where it started.
    pub uuid: TxId,
    /// Its workflow (from the 0.9.x code, or our definition of the 0.8.x `type`).
    pub workflow: Workflow,
    /// Entries, primary first.
    pub entries: Vec<WireEntry>,
}

/// Where the shell must relay a planned transaction next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The neighbour's account here.
    pub peer: AccountId,
    /// The entries as that neighbour must receive them.
    pub entries: Vec<WireEntry>,
}

/// A transaction ready to be recorded as validated, and where it goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The transaction (state validated, version 0).
    pub transaction: Transaction,
    /// Its link facts.
    pub link: Link,
    /// The next hop, if this node is not the last.
    pub forward: Option<Forward>,
}

fn path_violation(path: &str, config: &NodeConfig) -> Violation {
    Violation::Path { rel_path: path.to_owned(), context: config.name.to_string() }
}

/// Resolves a party and, when it is on another node, checks that node is connected.
fn resolve_on(view: &impl LedgerView, config: &NodeConfig, field: &str, path: &str) -> Result<Resolution, Violation> {
    let resolution = resolve_party(view, config, field, path)?;
    check_connected(view, &resolution)?;
    Ok(resolution)
}

fn check_connected(view: &impl LedgerView, resolution: &Resolution) -> Result<(), Violation> {
    if resolution.remote_path().is_some() && view.peer(resolution.account()).is_none() {
        return Err(Violation::Other { translated: format!("node {} is not connected", resolution.account()) });
    }
    Ok(())
}

fn remote_account(resolution: &Resolution) -> Option<&AccountId> {
    resolution.remote_path().map(|_| resolution.account())
}

/// A client's proposal, decided: booked here when both parties are local,
/// planned for relaying when one is on another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Both parties are here: the events to record.
    Local(Vec<Event>),
    /// One party is elsewhere: relay this plan, then record it.
    Relay(Box<Plan>),
}

/// Decides a client's proposal once: the checks every proposal gets, then
/// either the local events or the plan for a transaction leaving this node.
pub fn plan_origin(view: &impl LedgerView, proposal: &Proposal, ctx: &Context) -> Result<Origin, Violation> {
    let config = view.config().ok_or_else(|| Violation::Other { translated: "node is not initialised".to_owned() })?;
    let checked = check_proposal(view, config, proposal, ctx)?;
    let remote = match (remote_account(&checked.payer), remote_account(&checked.payee)) {
        (None, None) => return Ok(Origin::Local(record_proposal(view, config, &checked, proposal, ctx)?)),
        (Some(_), Some(_)) => {
            return Err(Violation::Other { translated: "one party of a transaction must be on this node".to_owned() })
        }
        (Some(r), None) | (None, Some(r)) => r.clone(),
    };
    check_connected(view, &checked.payer)?;
    check_connected(view, &checked.payee)?;
    let workflow = checked.workflow;
    let transaction = Transaction {
        uuid: checked.uuid,
        version: 0,
        state: State::Validated,
        workflow: workflow.clone(),
        author: checked.author.clone(),
        written_unix_s: ctx.now_unix_s,
        entries: vec![checked.entry(proposal)],
    };
    let mut transaction = transaction;
    if let Some(fee) = fee_entry(view, config, &transaction.entries[0]) {
        transaction.entries.push(fee);
    }
    check_limits(view, config, &transaction.entries, None, workflow.creation.state)?;
    let trunkward_quants = trunkward_quants(view, &transaction.entries, None)?;
    let link = Link { upstream: None, downstream: Some(remote.clone()), trunkward_quants };
    let entries = wire_entries(view, config, &transaction, &link, &remote);
    check_forward(view, &transaction, &remote, &entries)?;
    Ok(Origin::Relay(Box::new(Plan { transaction, link, forward: Some(Forward { peer: remote, entries }) })))
}

/// Plans a proposal relayed to us by the neighbour `from`.
pub fn plan_relay(view: &impl LedgerView, from: &AccountId, relay: RelayIn, ctx: &Context) -> Result<Plan, Violation> {
    let config = view.config().ok_or_else(|| Violation::Other { translated: "node is not initialised".to_owned() })?;
    let peer = view.peer(from).ok_or(Violation::Permission)?;
    let from_trunkward = view.trunkward_account() == Some(from);
    if relay.entries.is_empty() {
        return Err(Violation::invalid_field("transaction", "entries", "at least one entry"));
    }
    if view.transaction(&relay.uuid).is_some() {
        return Err(Violation::DuplicateUuid { uuid: relay.uuid.to_string() });
    }
    for wire in &relay.entries {
        check_amount_text(view.dialect(from), wire.quant)?;
    }
    let mut entries = Vec::with_capacity(relay.entries.len());
    let mut wire_trunkward = Vec::with_capacity(relay.entries.len());
    let mut downstream: Option<AccountId> = None;
    for (index, wire) in relay.entries.into_iter().enumerate() {
        if wire.quant.is_negative() || (wire.quant.is_zero() && !config.zero_payments_allowed) {
            return Err(Violation::invalid_field("entry", "quant", "must be positive"));
        }
        let payer = resolve_on(view, config, "payer", &wire.payer)?;
        let payee = resolve_on(view, config, "payee", &wire.payee)?;
        if payer.account() == payee.account() {
            return Err(Violation::SameAccount { wrong_id: payer.account().to_string() });
        }
        crate::decide::check_metadata_keys(&payer, &payee, &wire.metadata)?;
        if index == 0 {
            // The primary entry runs from the neighbour that sent it to one other account.
            let other = match (payer.account() == from, payee.account() == from) {
                (true, false) => &payee,
                (false, true) => &payer,
                _ => return Err(path_violation(&wire.payee, config)),
            };
            downstream = remote_account(other).cloned();
        }
        let quant = if from_trunkward {
            wire.quant
                .from_trunkward(peer.rate)
                .map_err(|_| Violation::invalid_field("entry", "quant", "out of range"))?
        } else {
            wire.quant
        };
        wire_trunkward.push(from_trunkward.then_some(wire.quant));
        entries.push(entry_between(&payer, &payee, quant, wire.description, wire.metadata));
    }
    if let Some(fee) = fee_entry(view, config, &entries[0]) {
        entries.push(fee);
        wire_trunkward.push(None);
    }
    let transaction = Transaction {
        uuid: relay.uuid,
        version: 0,
        state: State::Validated,
        workflow: relay.workflow,
        author: from.clone(),
        written_unix_s: ctx.now_unix_s,
        entries,
    };
    check_limits(view, config, &transaction.entries, None, transaction.workflow.creation.state)?;
    let trunkward_quants = trunkward_quants(view, &transaction.entries, from_trunkward.then_some(&wire_trunkward))?;
    let link = Link { upstream: Some(from.clone()), downstream: downstream.clone(), trunkward_quants };
    let forward = downstream.map(|peer| {
        let entries = wire_entries(view, config, &transaction, &link, &peer);
        Forward { peer, entries }
    });
    if let Some(f) = &forward {
        check_forward(view, &transaction, &f.peer, &f.entries)?;
    }
    Ok(Plan { transaction, link, forward })
}

/// Whether a neighbour of `dialect` reads and hashes `quant` as the text we
/// hash: a Komunitin node reads amounts as JavaScript numbers, a reference
/// node as PHP floats printed with 14 significant digits.
fn check_amount_text(dialect: Dialect, quant: Amount) -> Result<(), Violation> {
    let (agrees, rule) = match dialect {
        Dialect::Ccnode => return Ok(()),
        Dialect::Komunitin => (
            crate::ratchet::js_number_text_agrees(quant),
            "a Komunitin node reads amounts as JavaScript numbers: below 1e21 with at most 15 significant digits",
        ),
        Dialect::Reference => (
            crate::ratchet::php_float_text_agrees(quant),
            "a reference node reads amounts as PHP floats: zero or from 0.0001 to below 1e14, at most 14 significant digits",
        ),
    };
    if agrees {
        return Ok(());
    }
    Err(Violation::invalid_field("entry", "quant", rule))
}

/// What the neighbour `to` can take of a transaction we send it.
fn check_forward(
    view: &impl LedgerView,
    tx: &Transaction,
    to: &AccountId,
    entries: &[WireEntry],
) -> Result<(), Violation> {
    let dialect = view.dialect(to);
    for entry in entries {
        check_amount_text(dialect, entry.quant)?;
    }
    if dialect == Dialect::Reference && tx.workflow.creation.state != State::Completed && !tx.workflow.creation.confirm
    {
        // The reference writes such a relay in its creation state at once (version 1), a
        // write ccnode has no order for; the shipped workflows all confirm or complete.
        return Err(Violation::invalid_field(
            "transaction",
            "workflow",
            "a reference node writes an unconfirmed relay at once; only workflows that confirm or complete at once cross",
        ));
    }
    check_komunitin_forward(view, tx, to)
}

/// What a Komunitin neighbour can take (docs/PROTOCOL.md, "Komunitin links"):
/// a payment that completes at once (it books the relay and never takes a
/// PATCH), crediting its account (its `netGain` must be positive), with
/// amounts it reads as we write them.
fn check_komunitin_forward(view: &impl LedgerView, tx: &Transaction, to: &AccountId) -> Result<(), Violation> {
    if view.dialect(to) != Dialect::Komunitin {
        return Ok(());
    }
    let creation = &tx.workflow.creation;
    if creation.state != State::Completed || creation.confirm {
        return Err(Violation::invalid_field(
            "transaction",
            "workflow",
            "a Komunitin node books only payments that complete at once",
        ));
    }
    if &tx.primary().payee != to {
        return Err(Violation::invalid_field(
            "entry",
            "payee",
            "a Komunitin node accepts only payments to its accounts",
        ));
    }
    Ok(())
}

/// Trunkward amounts of the entries shared with the trunkward neighbour:
/// as received when they came from it, else converted at its rate.
fn trunkward_quants(
    view: &impl LedgerView,
    entries: &[Entry],
    received: Option<&Vec<Option<Amount>>>,
) -> Result<Vec<Option<Amount>>, Violation> {
    let Some(trunkward) = view.trunkward_account() else { return Ok(vec![None; entries.len()]) };
    let rate = view.peer(trunkward).map(|p| p.rate);
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if &e.payer != trunkward && &e.payee != trunkward {
                return Ok(None);
            }
            if let Some(q) = received.and_then(|r| r.get(i).copied().flatten()) {
                return Ok(Some(q));
            }
            let rate = rate.ok_or_else(|| Violation::Other { translated: "trunkward node is not connected".into() })?;
            e.quant
                .to_trunkward(rate)
                .map(Some)
                .map_err(|_| Violation::invalid_field("entry", "quant", "out of range after conversion"))
        })
        .collect()
}

/// How a party is named to the neighbour `to` (the reference's path rewriting).
fn wire_path(view: &impl LedgerView, config: &NodeConfig, entry: &Entry, party: &AccountId, to: &AccountId) -> String {
    let node = config.name.as_str();
    let to_trunkward = view.trunkward_account() == Some(to);
    let rel = entry.remote.get(party.as_str()).map(String::as_str).unwrap_or("");
    let kind = view.account(party).map(|a| a.kind.clone());
    let join = |a: &str, b: &str| if b.is_empty() { a.to_owned() } else { format!("{a}/{b}") };
    match kind {
        Some(AccountKind::Trunkward) if to_trunkward => rel.to_owned(),
        // The whole path was kept; name the parent in front unless it already is.
        Some(AccountKind::Trunkward) if rel.starts_with(&format!("{party}/")) => rel.to_owned(),
        Some(AccountKind::Trunkward) => join(party.as_str(), rel),
        Some(AccountKind::Leafward) if to_trunkward => join(&format!("{node}/{party}"), rel),
        Some(AccountKind::Leafward) => join(party.as_str(), rel),
        _ => format!("{node}/{party}"),
    }
}

/// The entries shared with neighbour `to`, as it must receive them.
pub fn wire_entries(
    view: &impl LedgerView,
    config: &NodeConfig,
    tx: &Transaction,
    link: &Link,
    to: &AccountId,
) -> Vec<WireEntry> {
    let to_trunkward = view.trunkward_account() == Some(to);
    tx.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| &e.payer == to || &e.payee == to)
        .map(|(i, e)| {
            let quant =
                if to_trunkward { link.trunkward_quants.get(i).copied().flatten().unwrap_or(e.quant) } else { e.quant };
            // The user's metadata travels; remote paths are rewritten into the parties.
            let metadata = e.metadata.clone();
            WireEntry {
                payer: wire_path(view, config, e, &e.payer, to),
                payee: wire_path(view, config, e, &e.payee, to),
                quant,
                description: e.description.clone(),
                metadata,
            }
        })
        .collect()
}

/// The rows a link's ratchet hashes for `tx`: entries shared with `peer`,
/// amounts in the trunkward unit.
pub fn hash_rows<'t>(
    view: &impl LedgerView,
    tx: &'t Transaction,
    link: &Link,
    peer: &AccountId,
) -> Vec<crate::ratchet::HashRow<'t>> {
    let peer_is_trunkward = view.trunkward_account() == Some(peer);
    tx.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| &e.payer == peer || &e.payee == peer)
        .map(|(i, e)| crate::ratchet::HashRow {
            quant: if peer_is_trunkward {
                link.trunkward_quants.get(i).copied().flatten().unwrap_or(e.quant)
            } else {
                e.quant
            },
            description: &e.description,
        })
        .collect()
}

/// This node's fee on a transaction whose primary entry is `primary`: paid by
/// the payer's side (the payer, or the node account it is reached through) to
/// the fee account.
fn fee_entry(view: &impl LedgerView, config: &NodeConfig, primary: &Entry) -> Option<Entry> {
    let policy = view.fees()?;
    if view.dialect(&primary.payer) == Dialect::Komunitin {
        // It would be shared with a Komunitin node, which ignores additional entries.
        return None;
    }
    let quant = policy.fee(primary.quant)?;
    if primary.payer == policy.account {
        return None;
    }
    let mut remote = BTreeMap::new();
    if let Some(path) = primary.remote.get(primary.payer.as_str()) {
        remote.insert(primary.payer.to_string(), path.clone());
    }
    Some(Entry {
        payer: primary.payer.clone(),
        payee: policy.account.clone(),
        quant,
        description: format!("Payer fee of {quant} to {}/{}", config.name, policy.account),
        metadata: BTreeMap::new(),
        remote,
    })
}

/// Adds the entries the next node answered with (its fees and those further
/// on, already filtered to our link) to a planned transaction: amounts
/// converted from the trunkward unit when `from` is our trunkward node, paths
/// resolved here, limits checked again over everything.
pub fn absorb(view: &impl LedgerView, plan: Plan, from: &AccountId, added: Vec<WireEntry>) -> Result<Plan, Violation> {
    let config = view.config().ok_or_else(|| Violation::Other { translated: "node is not initialised".to_owned() })?;
    if added.is_empty() {
        return Ok(plan);
    }
    if added.len() > 32 {
        return Err(Violation::invalid_field("transaction", "entries", "too many additional entries"));
    }
    let from_trunkward = view.trunkward_account() == Some(from);
    let rate = view.peer(from).map(|p| p.rate).ok_or(Violation::Permission)?;
    let Plan { mut transaction, mut link, forward } = plan;
    for wire in added {
        if !wire.quant.is_positive() {
            return Err(Violation::invalid_field("entry", "quant", "additional entries must be positive"));
        }
        let payer = resolve_on(view, config, "payer", &wire.payer)?;
        let payee = resolve_on(view, config, "payee", &wire.payee)?;
        if [payer.account(), payee.account()].into_iter().any(|a| view.dialect(a) == Dialect::Komunitin) {
            return Err(Violation::invalid_field(
                "entry",
                "payer",
                "a Komunitin node ignores additional entries: none may involve it (no fees on its side)",
            ));
        }
        crate::decide::check_metadata_keys(&payer, &payee, &wire.metadata)?;
        if payer.account() != from && payee.account() != from {
            return Err(Violation::invalid_field(
                "entry",
                "payee",
                "an additional entry must involve the node that added it",
            ));
        }
        let quant = if from_trunkward {
            wire.quant.from_trunkward(rate).map_err(|_| Violation::invalid_field("entry", "quant", "out of range"))?
        } else {
            wire.quant
        };
        transaction.entries.push(entry_between(&payer, &payee, quant, wire.description, wire.metadata));
        let entry = transaction.entries.last().expect("just pushed");
        let trunkward = match view.trunkward_account() {
            Some(t) if &entry.payer == t || &entry.payee == t => Some(if from_trunkward {
                wire.quant
            } else {
                let rate = view.peer(t).map(|p| p.rate).ok_or(Violation::Permission)?;
                quant.to_trunkward(rate).map_err(|_| Violation::invalid_field("entry", "quant", "out of range"))?
            }),
            _ => None,
        };
        link.trunkward_quants.push(trunkward);
    }
    check_limits(view, config, &transaction.entries, None, transaction.workflow.creation.state)?;
    Ok(Plan { transaction, link, forward })
}

/// What a node answers upstream after validating a relay: the entries it and
/// the nodes after it added, as the upstream node must read them.
pub fn additional_for(view: &impl LedgerView, tx: &Transaction, link: &Link, upstream: &AccountId) -> Vec<WireEntry> {
    let Some(config) = view.config() else { return Vec::new() };
    let mut without_primary = tx.clone();
    let mut link = link.clone();
    without_primary.entries.remove(0);
    link.trunkward_quants.remove(0);
    wire_entries(view, config, &without_primary, &link, upstream)
}
