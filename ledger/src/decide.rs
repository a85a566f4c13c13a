//! Commands and the rules that turn them into events or exactly one
//! [`Violation`]. Pure: the clock and fresh uuids come in [`Context`].
//!
//! Limit rule (stricter than the reference, on purpose): every balance a
//! write changes is checked, not only the primary parties' pending balance.
//! A balance that goes down must stay ≥ `min` (`MinLimitViolation`), one that
//! goes up must stay ≤ `max` (`MaxLimitViolation`); `projected` is the
//! balance after the write (balance + sum of that account's entries). The
//! pending balance is checked when `validate_pending` is on (the default),
//! the completed balance always, so neither can leave its limits through an
//! accepted write. Erasing a completed transaction is checked the same way.
//!
//! Bounds (see [`AMOUNT_MAX_UNITS`]): an entry's quant, a limit's `-min` and
//! `max`, and a fixed fee are at most 10^15 units (`InvalidFieldsViolation`
//! naming the field), and no write moves a balance away from zero beyond
//! [`BALANCE_MAX_UNITS`], so every accepted event can be folded.

use std::collections::BTreeMap;

use crate::amount::{Amount, AMOUNT_MAX_UNITS, BALANCE_MAX_UNITS};
use crate::event::Event;
use crate::federation::{hash_rows, FeePolicy, Link};
use crate::ids::{AccountId, TxId, WorkflowId};
use crate::model::{
    Account, AccountKind, AccountStatus, Dialect, Entry, KeyHash, Limits, NodeConfig, Peer, State, Transaction,
    UnixSeconds, WorkflowRef, DESCRIPTION_LENGTH_MAX_BYTES, METADATA_KEYS_MAX, METADATA_TEXT_LENGTH_MAX_BYTES,
};
use crate::path::{resolve, Resolution};
use crate::state::{balance_deltas, LedgerView};
use crate::violation::Violation;
use crate::workflow::{Actor, Workflow};

/// Longest evidence a `LinkClosed` event keeps.
pub const EVIDENCE_BYTES_MAX: usize = 16 * 1024;

/// What the shell passes besides the command.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Now, from the shell's clock.
    pub now_unix_s: UnixSeconds,
    /// A fresh random uuid from the shell, used when a proposal has none.
    pub fresh_uuid: TxId,
}

/// A new transaction as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Who asks (an account on this node).
    pub author: AccountId,
    /// Payer path (local id, relative or absolute path).
    pub payer: String,
    /// Payee path.
    pub payee: String,
    /// Quantity in this node's unit.
    pub quant: Amount,
    /// Free text.
    pub description: String,
    /// Ordered string map.
    pub metadata: BTreeMap<String, String>,
    /// Workflow id from the node config.
    pub workflow: WorkflowId,
    /// The client's uuid, if it chose one.
    pub uuid: Option<TxId>,
}

/// A request to change the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// First command of a ledger.
    InitialiseNode {
        /// Settings.
        config: NodeConfig,
    },
    /// Replace settings (same name).
    ConfigureNode {
        /// Settings.
        config: NodeConfig,
    },
    /// Open an account, active.
    OpenAccount {
        /// Id.
        id: AccountId,
        /// Kind.
        kind: AccountKind,
        /// Limits.
        limits: Limits,
    },
    /// New limits; `min ≤ 0 ≤ max` is checked here.
    ChangeLimits {
        /// Account.
        id: AccountId,
        /// New minimum.
        min: Amount,
        /// New maximum.
        max: Amount,
    },
    /// Block or unblock.
    ChangeStatus {
        /// Account.
        id: AccountId,
        /// New status.
        status: AccountStatus,
    },
    /// Store a new salted key hash.
    ChangeKey {
        /// Account.
        id: AccountId,
        /// The hash the shell computed.
        key_hash: KeyHash,
    },
    /// Record peer facts on a node account.
    ConnectPeer {
        /// Facts.
        peer: Peer,
    },
    /// Create a transaction.
    ProposeTransaction(Proposal),
    /// Move a transaction.
    Transition {
        /// Which.
        uuid: TxId,
        /// Target state.
        to: State,
        /// Who asks.
        actor: AccountId,
    },
    /// Time out a validated transaction whose window has passed.
    Expire {
        /// Which.
        uuid: TxId,
    },
    /// Record a transaction that crosses nodes, as planned by
    /// `federation::plan_origin` or `plan_relay` and accepted by the next hop.
    ProposeTransversal {
        /// The transaction (validated, version 0).
        transaction: Transaction,
        /// Its neighbours and trunkward amounts.
        link: Link,
    },
    /// Write a version of a shared transaction that the neighbour `peer`
    /// already wrote and this node missed (a crash or a cut link): the same
    /// transition a relayed PATCH would make, checked to produce exactly the
    /// neighbour's ratchet hash, and marked as a reconciliation.
    Reconcile {
        /// The neighbour whose link feed holds the version.
        peer: AccountId,
        /// Which transaction.
        uuid: TxId,
        /// Its state in that version.
        to: State,
        /// The version number.
        version: u32,
        /// The neighbour's MD5 ratchet hash after that version.
        md5: String,
    },
    /// Close the link with a connected neighbour after a divergence.
    CloseLink {
        /// The neighbour's node account.
        peer: AccountId,
        /// What was found (JSON text).
        evidence: String,
    },
    /// Reopen a closed link.
    ReopenLink {
        /// The neighbour's node account.
        peer: AccountId,
    },
    /// Declare the dialect a connected neighbour speaks.
    SetLinkDialect {
        /// The neighbour's node account (connected, its link still unused).
        account: AccountId,
        /// Its dialect.
        dialect: Dialect,
    },
    /// `Transition` of a transaction that a Komunitin neighbour relayed to
    /// us: its ratchet advances over the relay body, whose `version` field
    /// read as text (empty when absent) is `relay_version`.
    TransitionRelayed {
        /// Which.
        uuid: TxId,
        /// Target state.
        to: State,
        /// Who asks (the neighbour).
        actor: AccountId,
        /// The relay body's `version`, as Komunitin joins it into the hash.
        relay_version: String,
    },
    /// Set (or clear) the fees charged on transactions crossing this node.
    ConfigureFees {
        /// The policy; `None` charges nothing.
        policy: Option<FeePolicy>,
    },
}

/// Turns a command into events, or refuses it with one violation. Never
/// panics on bad input; the view must be consistent.
pub fn decide(view: &impl LedgerView, command: Command, ctx: &Context) -> Result<Vec<Event>, Violation> {
    if let Command::InitialiseNode { config } = command {
        if view.config().is_some() {
            return Err(Violation::Other { translated: "node is already initialised".to_owned() });
        }
        check_config(&config)?;
        return Ok(vec![Event::NodeInitialised { config }]);
    }
    let config = view.config().ok_or_else(|| Violation::Other { translated: "node is not initialised".to_owned() })?;
    match command {
        Command::InitialiseNode { .. } => unreachable!("handled above"),
        Command::ConfigureNode { config: new } => {
            if new.name != config.name {
                return Err(Violation::invalid_field("node", "name", "node name never changes"));
            }
            check_config(&new)?;
            Ok(vec![Event::NodeConfigured { config: new }])
        }
        Command::OpenAccount { id, kind, limits } => open_account(view, config, id, kind, limits),
        Command::ChangeLimits { id, min, max } => {
            existing_account(view, &id)?;
            let limits = Limits::new(min, max)
                .map_err(|_| Violation::invalid_field("account", "limits", "min <= 0 <= max does not hold"))?;
            check_limits_bound(&limits)?;
            Ok(vec![Event::AccountLimitsChanged { id, limits }])
        }
        Command::ChangeStatus { id, status } => {
            existing_account(view, &id)?;
            Ok(vec![Event::AccountStatusChanged { id, status }])
        }
        Command::ChangeKey { id, key_hash } => {
            existing_account(view, &id)?;
            Ok(vec![Event::AccountKeyChanged { id, key_hash }])
        }
        Command::ConnectPeer { peer } => {
            if let AccountKind::User { .. } = existing_account(view, &peer.account)?.kind {
                return Err(Violation::invalid_field("account", "id", "peers connect through node accounts"));
            }
            // Connecting restarts the link's ratchet at the initial hash: never
            // once the link has written a version both sides hashed.
            if view.ratchet(&peer.account).is_some_and(|r| r.count > 0) {
                return Err(Violation::Other {
                    translated: format!(
                        "the link with {} has written versions; it cannot be connected anew",
                        peer.account
                    ),
                });
            }
            Ok(vec![Event::PeerConnected { peer }])
        }
        Command::ProposeTransaction(proposal) => propose(view, config, proposal, ctx),
        Command::Transition { uuid, to, actor } => transition(view, config, uuid, to, actor, ctx, How::default()),
        Command::TransitionRelayed { uuid, to, actor, relay_version } => {
            transition(view, config, uuid, to, actor, ctx, How { relay_version: &relay_version, copied: false })
        }
        Command::SetLinkDialect { account, dialect } => {
            let ratchet = view
                .ratchet(&account)
                .ok_or_else(|| Violation::Other { translated: format!("node {account} is not connected") })?;
            if ratchet.count != 0 {
                return Err(Violation::invalid_field("node", "dialect", "the link has carried transactions already"));
            }
            Ok(vec![Event::LinkDialectSet { account, dialect }])
        }
        Command::CloseLink { peer, evidence } => {
            if view.peer(&peer).is_none() {
                return Err(Violation::DoesNotExist { type_: "node".to_owned(), id: peer.to_string() });
            }
            if view.link_closed(&peer) {
                return Err(Violation::Other { translated: format!("the link with {peer} is closed already") });
            }
            if evidence.len() > EVIDENCE_BYTES_MAX {
                return Err(Violation::invalid_field("link", "evidence", "at most 16 KiB"));
            }
            Ok(vec![Event::LinkClosed { peer, evidence }])
        }
        Command::ReopenLink { peer } => {
            if !view.link_closed(&peer) {
                return Err(Violation::Other { translated: format!("the link with {peer} is not closed") });
            }
            Ok(vec![Event::LinkReopened { peer }])
        }
        Command::Expire { uuid } => expire(view, config, uuid, ctx),
        Command::ProposeTransversal { transaction, link } => propose_transversal(view, config, transaction, link),
        Command::Reconcile { peer, uuid, to, version, md5 } => {
            let tx = view
                .transaction(&uuid)
                .ok_or_else(|| Violation::DoesNotExist { type_: "transaction".to_owned(), id: uuid.to_string() })?;
            if tx.version.checked_add(1) != Some(version)
                || !view.link(&uuid).is_some_and(|l| l.peers().any(|p| p == &peer))
            {
                return Err(Violation::Other {
                    translated: format!("version {version} of {uuid} does not follow this node's"),
                });
            }
            // A version the neighbour already wrote: any move the workflow defines,
            // proven by reproducing the neighbour's hash below.
            let mut events =
                transition(view, config, uuid, to, peer.clone(), ctx, How { relay_version: "", copied: true })?;
            let ours = events.iter().find_map(|e| match e {
                Event::RatchetAdvanced { peer: p, md5, .. } if p == &peer => Some(md5.clone()),
                _ => None,
            });
            if ours.as_deref() != Some(md5.as_str()) {
                return Err(Violation::Other {
                    translated: format!("link with {peer} diverged at {uuid} version {version}: the hashes differ"),
                });
            }
            events.push(Event::LinkReconciled { peer, uuid, version });
            Ok(events)
        }
        Command::ConfigureFees { policy } => {
            if let Some(p) = &policy {
                if !matches!(existing_account(view, &p.account)?.kind, AccountKind::User { .. }) {
                    return Err(Violation::invalid_field("fees", "account", "fees are paid to a local user account"));
                }
                if p.fixed.is_negative() || p.percent.is_negative() || p.percent > Amount::from_units(100) {
                    return Err(Violation::invalid_field("fees", "percent", "fixed >= 0 and 0 <= percent <= 100"));
                }
                if !p.fixed.within_max() {
                    return Err(Violation::invalid_field("fees", "fixed", &beyond_max("fixed")));
                }
            }
            Ok(vec![Event::FeesConfigured { policy }])
        }
    }
}

/// Why a figure is refused for exceeding [`AMOUNT_MAX_UNITS`].
pub(crate) fn beyond_max(field: &str) -> String {
    format!("{field} exceeds the maximum amount of {AMOUNT_MAX_UNITS} units")
}

/// `-min` and `max` within [`AMOUNT_MAX_UNITS`].
fn check_limits_bound(limits: &Limits) -> Result<(), Violation> {
    for (field, value) in [("min", limits.min()), ("max", limits.max())] {
        if !value.within_max() {
            return Err(Violation::invalid_field("account", field, &beyond_max(field)));
        }
    }
    Ok(())
}

fn check_config(config: &NodeConfig) -> Result<(), Violation> {
    let mut ids: Vec<&WorkflowId> = config.workflows.iter().map(|w| &w.id).collect();
    ids.sort();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(Violation::invalid_field("node", "workflows", "workflow ids must be unique"));
    }
    Ok(())
}

fn existing_account<'v>(view: &'v impl LedgerView, id: &AccountId) -> Result<&'v Account, Violation> {
    view.account(id).ok_or_else(|| Violation::DoesNotExist { type_: "account".to_owned(), id: id.to_string() })
}

fn active_account<'v>(view: &'v impl LedgerView, id: &AccountId) -> Result<&'v Account, Violation> {
    let account = existing_account(view, id)?;
    if account.status == AccountStatus::Blocked {
        return Err(Violation::Permission);
    }
    Ok(account)
}

fn open_account(
    view: &impl LedgerView,
    config: &NodeConfig,
    id: AccountId,
    kind: AccountKind,
    limits: Limits,
) -> Result<Vec<Event>, Violation> {
    if view.account(&id).is_some() {
        return Err(Violation::invalid_field("account", "id", "account already exists"));
    }
    if id.as_str() == config.name.as_str() {
        return Err(Violation::invalid_field("account", "id", "an account cannot be named after this node"));
    }
    if kind == AccountKind::Trunkward && view.trunkward_account().is_some() {
        return Err(Violation::invalid_field("account", "kind", "node already has a trunkward account"));
    }
    check_limits_bound(&limits)?;
    let account = Account { id, kind, limits, status: AccountStatus::Active };
    Ok(vec![Event::AccountOpened { account }])
}

/// Is a validated transaction past its window at `now`?
pub fn is_expired(tx: &Transaction, config: &NodeConfig, now_unix_s: UnixSeconds) -> bool {
    is_expired_at(tx.state, tx.written_unix_s, config, now_unix_s)
}

/// [`is_expired`] on a transaction's state and write time alone (for read
/// models that keep transactions in another shape).
pub fn is_expired_at(state: State, written_unix_s: UnixSeconds, config: &NodeConfig, now_unix_s: UnixSeconds) -> bool {
    state == State::Validated
        && written_unix_s.checked_add(config.validated_window_s).is_none_or(|deadline| now_unix_s >= deadline)
}

pub(crate) fn check_entry_fields(proposal: &Proposal, config: &NodeConfig) -> Result<(), Violation> {
    let bad = |field: &str, why: &str| Err(Violation::invalid_field("entry", field, why));
    if proposal.quant.is_negative() {
        return bad("quant", "quant must not be negative");
    }
    if !proposal.quant.within_max() {
        return bad("quant", &beyond_max("quant"));
    }
    if proposal.quant.is_zero() && !config.zero_payments_allowed {
        return bad("quant", "zero payments are not allowed on this node");
    }
    if proposal.description.len() > DESCRIPTION_LENGTH_MAX_BYTES {
        return bad("description", "description is too long");
    }
    let too_long = |s: &String| s.len() > METADATA_TEXT_LENGTH_MAX_BYTES;
    if proposal.metadata.len() > METADATA_KEYS_MAX || proposal.metadata.iter().any(|(k, v)| too_long(k) || too_long(v))
    {
        return bad("metadata", "metadata is too large");
    }
    Ok(())
}

/// Metadata may not use a key that names a party's account here: that key is
/// where ccnode keeps a remote party's path, and a user's value there would
/// change how the party is shown (`{"bob": "evil/path"}` on a payment to bob).
pub(crate) fn check_metadata_keys(
    payer: &Resolution,
    payee: &Resolution,
    metadata: &BTreeMap<String, String>,
) -> Result<(), Violation> {
    for party in [payer, payee] {
        if metadata.contains_key(party.account().as_str()) {
            return Err(Violation::invalid_field(
                "entry",
                "metadata",
                &format!("the key {:?} is reserved: it names a party of the entry", party.account().as_str()),
            ));
        }
    }
    Ok(())
}

/// Resolves one party of an entry to the account on this node that books it.
pub(crate) fn resolve_party(
    view: &impl LedgerView,
    config: &NodeConfig,
    field: &str,
    path: &str,
) -> Result<Resolution, Violation> {
    let resolution =
        resolve(path, &config.name, |id| view.account(id).map(|a| a.kind.clone()), view.trunkward_account())?;
    if resolution.remote_path() == Some("") {
        // The path names a node, not an account.
        return Err(Violation::Path { rel_path: path.to_owned(), context: config.name.to_string() });
    }
    let account = existing_account(view, resolution.account())?;
    if account.status == AccountStatus::Blocked {
        return Err(Violation::invalid_field("entry", field, "account is blocked"));
    }
    Ok(resolution)
}

pub(crate) fn find_workflow<'c>(config: &'c NodeConfig, id: &WorkflowId) -> Result<&'c Workflow, Violation> {
    let workflow = config
        .workflows
        .iter()
        .find(|w| &w.id == id)
        .ok_or_else(|| Violation::DoesNotExist { type_: "workflow".to_owned(), id: id.to_string() })?;
    if !workflow.active {
        return Err(Violation::DeprecatedWorkflow { id: id.to_string() });
    }
    Ok(workflow)
}

/// A client's proposal that passed the checks every proposal gets, whether
/// both parties are here or one is on another node.
pub(crate) struct CheckedProposal<'c> {
    pub workflow: &'c Workflow,
    pub author: AccountId,
    pub payer: Resolution,
    pub payee: Resolution,
    pub uuid: TxId,
}

impl CheckedProposal<'_> {
    /// The primary entry, with the remote parties' paths kept in its metadata.
    pub fn entry(&self, p: &Proposal) -> Entry {
        entry_between(&self.payer, &self.payee, p.quant, p.description.clone(), p.metadata.clone())
    }
}

/// An entry between two resolved parties; a remote party's path is kept in
/// the metadata under the account that books it here.
pub(crate) fn entry_between(
    payer: &Resolution,
    payee: &Resolution,
    quant: Amount,
    description: String,
    metadata: BTreeMap<String, String>,
) -> Entry {
    let mut remote = BTreeMap::new();
    for party in [payer, payee] {
        if let Some(path) = party.remote_path() {
            remote.insert(party.account().to_string(), path.to_owned());
        }
    }
    Entry { payer: payer.account().clone(), payee: payee.account().clone(), quant, description, metadata, remote }
}

/// Workflow, author, fields, parties, creator and uuid of a proposal.
pub(crate) fn check_proposal<'c>(
    view: &impl LedgerView,
    config: &'c NodeConfig,
    p: &Proposal,
    ctx: &Context,
) -> Result<CheckedProposal<'c>, Violation> {
    let workflow = find_workflow(config, &p.workflow)?;
    let author = active_account(view, &p.author)?;
    check_entry_fields(p, config)?;
    let payer = resolve_party(view, config, "payer", &p.payer)?;
    let payee = resolve_party(view, config, "payee", &p.payee)?;
    if payer.account() == payee.account() {
        return Err(Violation::SameAccount { wrong_id: payer.account().to_string() });
    }
    check_metadata_keys(&payer, &payee, &p.metadata)?;
    let creator_ok = match workflow.creator() {
        Some(Actor::Payer) => payer.account() == &author.id,
        Some(Actor::Payee) => payee.account() == &author.id,
        _ => false,
    };
    if !creator_ok && !author.is_admin() {
        // The reference's answer to a bill not sent by its payee, a credit not
        // sent by its payer, or a third-party transaction not sent by an admin.
        return Err(Violation::Workflow {
            type_: workflow.id.to_string(),
            from: "init".to_owned(),
            to: workflow.creation.state.name().to_owned(),
        });
    }
    let uuid = p.uuid.unwrap_or(ctx.fresh_uuid);
    if view.transaction(&uuid).is_some() {
        return Err(Violation::DuplicateUuid { uuid: uuid.to_string() });
    }
    Ok(CheckedProposal { workflow, author: author.id.clone(), payer, payee, uuid })
}

fn propose(view: &impl LedgerView, config: &NodeConfig, p: Proposal, ctx: &Context) -> Result<Vec<Event>, Violation> {
    let checked = check_proposal(view, config, &p, ctx)?;
    record_proposal(view, config, &checked, &p, ctx)
}

/// The events of a checked proposal booked on this node only.
pub(crate) fn record_proposal(
    view: &impl LedgerView,
    config: &NodeConfig,
    checked: &CheckedProposal<'_>,
    p: &Proposal,
    ctx: &Context,
) -> Result<Vec<Event>, Violation> {
    let workflow = checked.workflow;
    let entry = checked.entry(p);
    let (state, version) = if workflow.creation.confirm { (State::Validated, 0) } else { (workflow.creation.state, 1) };
    // Checked against the creation state even when the transaction first
    // waits in validated, so a doomed proposal is refused at once.
    check_limits(view, config, std::slice::from_ref(&entry), None, workflow.creation.state)?;
    let transaction = Transaction {
        uuid: checked.uuid,
        version,
        state,
        workflow: view.workflow_ref(workflow),
        author: checked.author.clone(),
        written_unix_s: ctx.now_unix_s,
        entries: vec![entry],
    };
    Ok(proposal_events(view, workflow, transaction))
}

/// The events that propose `transaction` under `workflow`: the definition
/// first when the view does not hold it yet (format 2 journals each
/// definition once), then the proposal naming it.
fn proposal_events(view: &impl LedgerView, workflow: &Workflow, transaction: Transaction<WorkflowRef>) -> Vec<Event> {
    debug_assert_eq!(transaction.workflow, WorkflowRef::of(workflow), "a view's reference is the definition's");
    let mut events = Vec::with_capacity(3);
    if view.workflow(&transaction.workflow.hash).is_none() {
        events.push(Event::WorkflowDefined { workflow: workflow.clone() });
    }
    events.push(Event::TransactionProposedRef { transaction });
    events
}

/// Roles `actor` holds on `tx`'s primary entry.
fn roles(tx: &Transaction, actor: &AccountId) -> Vec<Actor> {
    let primary = tx.primary();
    [(Actor::Payer, &primary.payer), (Actor::Payee, &primary.payee), (Actor::Author, &tx.author)]
        .into_iter()
        .filter(|(_, id)| *id == actor)
        .map(|(role, _)| role)
        .collect()
}

/// Who may move `tx` to `to`: `Some(actors)` if the move exists (empty =
/// admins only), `None` if the workflow has no such move. From `validated`
/// the author confirms into the creation state or deletes (erases).
pub fn allowed_actors(tx: &Transaction, to: State) -> Option<Vec<Actor>> {
    let workflow = &tx.workflow;
    if tx.state == State::Validated {
        // Confirming: locally only workflows with a confirm step wait here, and
        // a transaction crossing nodes always does (the validate phase).
        let confirm = to == workflow.creation.state;
        return (confirm || to == State::Erased).then(|| vec![Actor::Author]);
    }
    workflow.rule(tx.state, to).map(|rule| rule.actors.clone())
}

/// `relay_version` is the `version` text of the relay body a Komunitin
/// neighbour sent (empty otherwise, and for the bodies ccnode sends).
/// How a state change reaches `transition`.
#[derive(Debug, Clone, Copy, Default)]
struct How<'a> {
    /// A Komunitin relay body's `version` text (its link hashes it).
    relay_version: &'a str,
    /// A version the neighbour already wrote, copied by reconciliation.
    copied: bool,
}

fn transition(
    view: &impl LedgerView,
    config: &NodeConfig,
    uuid: TxId,
    to: State,
    actor: AccountId,
    ctx: &Context,
    how: How<'_>,
) -> Result<Vec<Event>, Violation> {
    let How { relay_version, copied } = how;
    let tx = view
        .transaction(&uuid)
        .ok_or_else(|| Violation::DoesNotExist { type_: "transaction".to_owned(), id: uuid.to_string() })?;
    let account = active_account(view, &actor)?;
    let workflow_violation = || Violation::Workflow {
        type_: tx.workflow.id.to_string(),
        from: tx.state.name().to_owned(),
        to: to.name().to_owned(),
    };
    let actors = allowed_actors(tx, to).ok_or_else(workflow_violation)?;
    let link = view.link(&uuid);
    // A neighbour relays a change of a transaction it shares, for the party on
    // its side: its node account here holds that party's roles (payer, payee,
    // author of a relayed proposal), and it may make the moves the workflow
    // gives those roles. Admin-only moves (no actors) are trusted from a
    // neighbour, whose admin made them.
    let neighbour = link.is_some_and(|l| l.peers().any(|p| p == &actor));
    if link.is_some() && !neighbour && link.is_some_and(|l| l.upstream.is_some() && l.downstream.is_some()) {
        // Intermediate ledger: only the ends of a transversal transaction change it.
        return Err(workflow_violation());
    }
    let by_role = roles(tx, &actor).iter().any(|r| actors.contains(r));
    let permitted = account.is_admin() || by_role || (neighbour && (actors.is_empty() || copied));
    if !permitted {
        return Err(Violation::Permission);
    }
    if let Some(link) = link {
        let komunitin = link.peers().any(|p| view.dialect(p) == Dialect::Komunitin);
        // A Komunitin node books a relay at once and never takes a PATCH: the
        // only change it shares is the one that books the relay (or erasing a
        // validated copy it never saw).
        if komunitin && !(tx.state == State::Validated && matches!(to, State::Completed | State::Erased)) {
            return Err(Violation::Other {
                translated: format!("{uuid} crosses a Komunitin link, which carries no state change after the relay"),
            });
        }
    }
    check_limits(view, config, &tx.entries, Some(tx.state), to)?;
    let version = tx.version.checked_add(1).ok_or_else(workflow_violation)?;
    let mut events =
        vec![Event::TransactionTransitioned { uuid, from: tx.state, to, actor, version, at_unix_s: ctx.now_unix_s }];
    if let Some(link) = link {
        let mut moved = tx.clone();
        moved.state = to;
        moved.version = version;
        for peer in link.peers() {
            let head = view
                .ratchet(peer)
                .ok_or_else(|| Violation::Other { translated: format!("node {peer} is not connected") })?;
            let rows = hash_rows(view, &moved, link, peer);
            let (uuid_text, state_text, version_text) = match view.dialect(peer) {
                Dialect::Komunitin => {
                    if to != State::Completed {
                        continue; // a validated copy the Komunitin node never booked
                    }
                    // Komunitin hashes the relay body: its state letter and `version` field.
                    // The bodies ccnode sends carry no `version`; only the upstream's body had one.
                    let version_text = if link.upstream.as_ref() == Some(peer) { relay_version } else { "" };
                    (uuid.to_string(), State::Validated.letter().to_string(), version_text.to_owned())
                }
                Dialect::Reference => {
                    if tx.state == State::Validated && matches!(to, State::Erased | State::TimedOut) {
                        continue; // the reference deletes a validated copy (`/null`) and hashes nothing
                    }
                    // cc-node 0.8.5 hashes the long state name (TransversalTransactionTrait::makeHashString).
                    (uuid.to_string(), to.name().to_owned(), version.to_string())
                }
                Dialect::Ccnode => (uuid.to_string(), to.letter().to_string(), version.to_string()),
            };
            events.push(Event::RatchetAdvanced {
                peer: peer.clone(),
                uuid,
                version,
                md5: crate::ratchet::md5_next(&head.md5, &uuid_text, &state_text, &rows, &version_text),
                blake3: crate::ratchet::blake3_next(&head.blake3, &uuid_text, &state_text, &rows, &version_text),
            });
        }
    }
    Ok(events)
}

fn propose_transversal(
    view: &impl LedgerView,
    config: &NodeConfig,
    transaction: Transaction,
    link: Link,
) -> Result<Vec<Event>, Violation> {
    if view.transaction(&transaction.uuid).is_some() {
        return Err(Violation::DuplicateUuid { uuid: transaction.uuid.to_string() });
    }
    if transaction.entries.is_empty()
        || transaction.state != State::Validated
        || transaction.version != 0
        || link.trunkward_quants.len() != transaction.entries.len()
        || link.peers().next().is_none()
    {
        return Err(Violation::invalid_field("transaction", "link", "not a planned transversal transaction"));
    }
    for peer in link.peers() {
        if view.peer(peer).is_none() {
            return Err(Violation::Other { translated: format!("node {peer} is not connected") });
        }
    }
    for entry in &transaction.entries {
        if entry.quant.is_negative() || !entry.quant.within_max() {
            return Err(Violation::invalid_field("entry", "quant", &beyond_max("quant")));
        }
        for id in [&entry.payer, &entry.payee] {
            if active_account(view, id).is_err() {
                return Err(Violation::invalid_field("entry", "payer", &format!("account {id} is missing or blocked")));
            }
        }
    }
    check_limits(view, config, &transaction.entries, None, transaction.workflow.creation.state)?;
    let uuid = transaction.uuid;
    let reference = view.workflow_ref(&transaction.workflow);
    let (transaction, workflow) = transaction.replace_workflow(reference);
    let mut events = proposal_events(view, &workflow, transaction);
    events.push(Event::LinkAttached { uuid, link });
    Ok(events)
}

fn expire(view: &impl LedgerView, config: &NodeConfig, uuid: TxId, ctx: &Context) -> Result<Vec<Event>, Violation> {
    let tx = view
        .transaction(&uuid)
        .ok_or_else(|| Violation::DoesNotExist { type_: "transaction".to_owned(), id: uuid.to_string() })?;
    if tx.state != State::Validated {
        let (from, to) = (tx.state.name().to_owned(), State::TimedOut.name().to_owned());
        return Err(Violation::Workflow { type_: tx.workflow.id.to_string(), from, to });
    }
    if !is_expired(tx, config, ctx.now_unix_s) {
        return Err(Violation::Other {
            translated: format!("transaction {uuid} is still within its validated window"),
        });
    }
    let version = tx.version.checked_add(1).expect("a validated transaction has version 0");
    Ok(vec![Event::TransactionExpired { uuid, version, at_unix_s: ctx.now_unix_s }])
}

/// Applies the module's limit rule to moving `entries` from `from` to `to`.
pub fn check_limits(
    view: &impl LedgerView,
    config: &NodeConfig,
    entries: &[Entry],
    from: Option<State>,
    to: State,
) -> Result<(), Violation> {
    let overflow = || Violation::invalid_field("entry", "quant", "amount overflows the balance");
    let deltas = balance_deltas(entries, from, to).map_err(|_| overflow())?;
    for (id, delta) in &deltas {
        let account = existing_account(view, id)?;
        let balances = view.balances(id);
        let (down, up) = view.held(id);
        // The pending balance keeps within its limits only when they are
        // checked, and within BALANCE_MAX_UNITS always.
        let checks = [
            (balances.pending, delta.pending, down.pending, up.pending, config.validate_pending),
            (balances.completed, delta.completed, down.completed, up.completed, true),
        ];
        for (balance, change, held_down, held_up, limited) in checks {
            let projected = balance.checked_add(change).map_err(|_| overflow())?;
            let growing = projected.as_decimal().abs() > balance.as_decimal().abs();
            if growing && !projected.within_balance_max() {
                return Err(Violation::invalid_field(
                    "entry",
                    "quant",
                    &format!("the balance of {id} would exceed the maximum balance of {BALANCE_MAX_UNITS} units"),
                ));
            }
            if !limited {
                continue;
            }
            let limits = account.limits;
            // What other undecided writes hold counts against the limit it nears.
            let lowered = if change.is_negative() { projected.checked_add(held_down) } else { Ok(projected) };
            let raised = if change.is_positive() { projected.checked_add(held_up) } else { Ok(projected) };
            let (lowered, raised) = (lowered.map_err(|_| overflow())?, raised.map_err(|_| overflow())?);
            match limit_broken(change, lowered, raised, limits.min(), limits.max()) {
                Some(LimitSide::Min) => {
                    return Err(Violation::MinLimit { limit: limits.min(), projected, acc_id: id.to_string() })
                }
                Some(LimitSide::Max) => {
                    return Err(Violation::MaxLimit { limit: limits.max(), projected, acc_id: id.to_string() })
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// The limit a booking breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSide {
    /// It lowered the balance below the account's minimum.
    Min,
    /// It raised the balance above the account's maximum.
    Max,
}

/// The limit rule, one for `decide` ([`check_limits`]) and for every fold
/// that checks a journal: a booking that lowers a balance (`change < 0`) must
/// leave it at or above `min`, one that raises it at or below `max`. A
/// balance a booking does not move, or moves back towards its limits, is never
/// refused, so one left outside tighter limits by a limits change stays
/// foldable. `lowered`/`raised` are where the balance ends when lowered or
/// raised (with what other undecided writes hold, for `decide`). Generic so
/// that the projections apply it to integer micro-units.
pub fn limit_broken<T: PartialOrd + Default>(change: T, lowered: T, raised: T, min: T, max: T) -> Option<LimitSide> {
    let zero = T::default();
    if change < zero && lowered < min {
        Some(LimitSide::Min)
    } else if change > zero && raised > max {
        Some(LimitSide::Max)
    } else {
        None
    }
}
