//! The federation flows: calling neighbour nodes, the relay and state-change
//! flows across the tree, paths that lead to other nodes, and reconciling
//! links (`reconcile`); per dialect (`reference`, `komunitin`). Their routes
//! are in `routes::federation`.
//!
//! Peer calls never run inside the writer: a flow asks the writer to plan or
//! prepare (no write), calls the neighbour, then asks the writer to record.
//! Every request to one neighbour is serialised by that link's lock, so both
//! sides advance the link's ratchet in the same order.

mod komunitin;
pub mod reconcile;
mod reference;

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::federation::{RelayIn, WireEntry};
use ledger::{
    AccountId, AccountKind, Command, Dialect, LedgerView, Limits, Peer, Rate, State as TxState, TxId, Workflow,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::{submit, violation_error, AppState};
use crate::attempts::Begin;
use crate::error::{ApiError, ApiResult};
use crate::machine::{NodeCommand, NodeOutput};
use crate::peer_client::PeerRequest;
/// Node::start builds the `Peers` it names here.
pub use crate::peers::Peers;
use crate::peers::{link_busy, link_closed, reference_mismatch};
use crate::wire::{amount_json, envelope, parse_amount};

/// What a neighbour needs to be called: its URL and our last hash on the link.
fn peer_facts(state: &AppState, peer: &AccountId) -> ApiResult<(String, String)> {
    let read = state.read();
    let url = read.projections.peer(peer).map(|p| p.url.clone());
    let hash = read.ratchet(peer).map(|r| r.md5.clone());
    match (url, hash) {
        (Some(url), Some(hash)) => Ok((url.trim_end_matches('/').to_owned(), hash)),
        _ => Err(ApiError::does_not_exist("node", peer.as_str())),
    }
}

/// Test-only fault injection: `CCNODE_FAILPOINT=<name>` makes the process abort at that point.
fn failpoint(name: &str) {
    if crate::failpoint_is(name) {
        tracing::error!(failpoint = name, "failpoint reached: aborting");
        std::process::abort();
    }
}

fn unavailable(url: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UnavailableNodeFailure").with("url", url)
}

/// `UnavailableNodeFailure` with `in_doubt`: the neighbour may have acted on
/// the request, whose answer did not come back.
fn no_answer(url: &str) -> ApiError {
    unavailable(url).with("in_doubt", true)
}

/// The answer to a state change left in doubt (docs/PROTOCOL.md, "Changes in doubt").
fn in_doubt_error(url: &str) -> ApiError {
    no_answer(url).with(
        "translated",
        "the next node did not answer in time: the change is in doubt, and is settled with that node \
         as soon as it answers (read the transaction again later)",
    )
}

/// Sends a request to a neighbour with our node headers; an error answer
/// comes back as the neighbour's own error JSON, untouched.
async fn call_peer(
    state: &AppState,
    peer: &AccountId,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    trace: &str,
) -> ApiResult<(StatusCode, Value)> {
    call_peer_with(state, peer, method, path, body, trace, Vec::new()).await
}

/// `call_peer` with more headers (a ccnode neighbour's only).
async fn call_peer_with(
    state: &AppState,
    peer: &AccountId,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    trace: &str,
    extra: Vec<(&'static str, String)>,
) -> ApiResult<(StatusCode, Value)> {
    if let Some(evidence) = state.read().closed(peer) {
        return Err(link_closed(peer, &evidence));
    }
    let dialect = state.read().projections.dialect(peer);
    if dialect == Dialect::Reference {
        let result = reference::request(state, peer, method, path, body, None).await;
        if result.as_ref().is_err_and(|e| e.class_name() == "HashMismatchFailure") {
            spawn_reconcile(state, peer);
        }
        return result;
    }
    let (url, last_hash) = peer_facts(state, peer)?;
    let full = format!("{url}{path}");
    let method_name = method.to_string();
    let mut request = PeerRequest::new(method, full.clone())
        .header("cc-node", state.name())
        .header("last-hash", last_hash.as_str())
        .header("cc-node-trace", format!("{trace}{}>", state.name()))
        .signed(dialect == Dialect::Ccnode);
    for (name, value) in extra {
        request = request.header(name, value);
    }
    let sent = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
    tracing::debug!(%peer, %method_name, path, %last_hash, body = %sent, "to neighbour");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = state.peers().send(request).await.map_err(|e| {
        tracing::warn!(%peer, url = %full, error = %e, "neighbour did not answer");
        if e.maybe_delivered {
            no_answer(&url)
        } else {
            unavailable(&url)
        }
    })?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = answer.body;
    let value: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
    tracing::debug!(%peer, path, status = status.as_u16(), body = %text, "from neighbour");
    if status.is_success() {
        return Ok((status, value));
    }
    if value.get("errors").is_some() {
        if value["errors"][0]["class"] == "HashMismatchFailure" {
            spawn_reconcile(state, peer);
        }
        return Err(ApiError::raw(status, value));
    }
    // A server error with no Credit Commons body (a proxy's 502 or 504, say)
    // does not say whether the neighbour acted on the request.
    Err(if status.is_server_error() { no_answer(&url) } else { unavailable(&url) })
}

/// Our heads differ: find out which side missed what, in the background
/// (it needs this link's lock, which our caller holds).
fn spawn_reconcile(state: &AppState, peer: &AccountId) {
    let (state, peer) = (state.clone(), peer.clone());
    tokio::spawn(async move {
        if let Err(error) = reconcile::reconcile_link(&state, &peer).await {
            tracing::warn!(%peer, class = error.class_name(), "reconciliation after a hash mismatch failed");
        }
    });
}

fn trace_of(headers: &HeaderMap) -> String {
    headers.get("cc-node-trace").and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(512).collect()
}

/// A relay body, 0.9.x style (`state` letter, `workflow` code) with the 0.8.x `type` accepted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RelayBody {
    /// The transaction's uuid.
    #[schema(pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub uuid: String,
    /// `V` (or `validated`).
    #[serde(default)]
    pub state: Option<String>,
    /// 0.9.x workflow code, e.g. `_C-`.
    #[serde(default)]
    pub workflow: Option<String>,
    /// 0.8.x workflow id.
    #[serde(rename = "type", default)]
    pub type_: Option<String>,
    /// Entries shared with the receiver, paths as it must read them.
    pub entries: Vec<RelayEntry>,
}

/// One relayed entry; `quant` in the trunkward node's unit of this link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RelayEntry {
    /// Payer path.
    pub payer: String,
    /// Payee path.
    pub payee: String,
    /// Amount (JSON number).
    #[schema(value_type = crate::schema::AmountIn)]
    pub quant: Box<RawValue>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Metadata.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

fn relay_body(tx: &ledger::Transaction, entries: &[WireEntry]) -> Value {
    let entries = entries_json(entries);
    json!({
        "uuid": tx.uuid.to_string(),
        "state": "V",
        "workflow": tx.workflow.to_code().ok(),
        "type": tx.workflow.id.as_str(),
        "entries": entries,
    })
}

/// Creates a transaction whose other party is on another node: validate here,
/// relay to the next node (which validates and relays on), record it validated,
/// then, unless the workflow waits for confirmation, write it along the chain.
pub async fn propose(state: &AppState, plan: ledger::federation::Plan, trace: &str) -> ApiResult<TxId> {
    let forward = plan.forward.clone().expect("an origin plan always goes somewhere");
    if let Some(evidence) = state.read().closed(&forward.peer) {
        return Err(link_closed(&forward.peer, &evidence));
    }
    let uuid = plan.transaction.uuid;
    let workflow = plan.transaction.workflow.clone();
    let author = plan.transaction.author.clone();
    {
        // A relay advances no ratchet, so it does not hold the link's lock: many
        // proposals may validate along a link at once.
        let plan = relay_on(state, plan, trace).await?;
        let command = Command::ProposeTransversal { transaction: plan.transaction, link: plan.link };
        submit(state, NodeCommand::Ledger(command)).await?;
    }
    if !workflow.creation.confirm {
        if let Err(error) = change_state(state, uuid, workflow.creation.state, author.clone(), None, trace).await {
            // A reference neighbour refused the relay that was to be its write: it
            // never held this copy, so it is erased here at once (hashing nothing).
            let reference = state.read().projections.dialect(&forward.peer) == Dialect::Reference;
            let validated =
                state.read().projections.transaction(&uuid).is_some_and(|tx| tx.state == TxState::Validated);
            if reference && validated && error.class_name() != "UnavailableNodeFailure" {
                let erase = Command::Transition { uuid, to: TxState::Erased, actor: author };
                if let Err(e) = submit(state, NodeCommand::Ledger(erase)).await {
                    tracing::warn!(%uuid, class = e.class_name(), "could not erase a refused validated copy; it expires");
                }
            }
            return Err(error);
        }
    }
    Ok(uuid)
}

/// Moves a transaction that crosses nodes: check and reserve here, have the
/// next node write first, then write here. `from` is the neighbour that asked,
/// `None` for a local user.
pub async fn change_state(
    state: &AppState,
    uuid: TxId,
    to: TxState,
    actor: AccountId,
    from: Option<AccountId>,
    trace: &str,
) -> ApiResult<()> {
    change_state_relayed(state, uuid, to, actor, from, trace, None).await
}

/// `change_state`, for a relay from a Komunitin neighbour with its body's `version` text.
async fn change_state_relayed(
    state: &AppState,
    uuid: TxId,
    to: TxState,
    actor: AccountId,
    from: Option<AccountId>,
    trace: &str,
    relay_version: Option<String>,
) -> ApiResult<()> {
    let link = state.read().link(&uuid).cloned();
    let Some(link) = link else {
        submit(state, NodeCommand::Ledger(Command::Transition { uuid, to, actor })).await?;
        return Ok(());
    };
    submit(state, NodeCommand::Prepare { uuid, to, actor: actor.clone() }).await?;
    let Some(next) = link.other_than(from.as_ref()).cloned() else {
        return commit(state, uuid, to, actor, relay_version).await;
    };
    let lock = state.peers().lock_for(&next);
    // A flow that already holds its incoming link never waits for a second
    // lock (no hold-and-wait, so no deadlock between opposite flows): if the
    // next link is busy it gives up, and the client may retry.
    let _link = if from.is_some() {
        match lock.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let _ = state.submit(NodeCommand::Abort { uuid }).await;
                return Err(link_busy(&next));
            }
        }
    } else {
        lock.lock().await
    };
    if state.peers().doubts().count(&next) > 0 {
        // The link's head is not known while a change on it is in doubt: no
        // other change crosses it until that one is settled.
        let _ = state.submit(NodeCommand::Abort { uuid }).await;
        return Err(link_in_doubt(&next));
    }
    let dialect = state.read().projections.dialect(&next);
    let attempt = state.peers().fresh_attempt();
    let sent = match dialect {
        // No PATCH crosses a Komunitin link: the relay goes now and books it
        // there at once (a validated copy it never saw is erased here alone).
        Dialect::Komunitin => match to {
            TxState::Completed => komunitin::send_to(state, uuid, &next, trace).await,
            _ => Ok(()),
        },
        Dialect::Reference => reference::send_change(state, uuid, to, &next).await,
        Dialect::Ccnode => {
            let path = format!("/transaction/{uuid}/{}", to.letter());
            let named = vec![("cc-attempt", attempt.clone()), ("cc-boot", state.peers().boot().to_owned())];
            call_peer_with(state, &next, reqwest::Method::PATCH, &path, None, trace, named).await.map(drop)
        }
    };
    if let Err(error) = sent {
        if dialect == Dialect::Ccnode && error.is_in_doubt() && !state.peers().aborts_in_doubt() {
            // The next node may have written it: the reservation stays (and
            // no expiry touches the transaction) until a fenced
            // reconciliation with it says whether it did (issue 13).
            tracing::warn!(%uuid, state = %to, peer = %next, %attempt, "a change is in doubt until the next node answers");
            state.peers().add_doubt(&next, uuid, to, attempt);
            let url = state.read().projections.peer(&next).map(|p| p.url.clone()).unwrap_or_default();
            return Err(in_doubt_error(&url));
        }
        let _ = state.submit(NodeCommand::Abort { uuid }).await;
        return Err(error);
    }
    failpoint("after-next-node-wrote");
    let written = commit(state, uuid, to, actor, relay_version).await;
    if dialect == Dialect::Ccnode && written.as_ref().is_err_and(ApiError::is_in_doubt) {
        // Whether our journal holds it is unknown; the next node's feed has
        // it, and reconciling with it settles the change (and the attempt
        // that asked it of us).
        state.peers().add_doubt(&next, uuid, to, attempt);
    }
    written
}

/// Writes a prepared change. A refusal is final (nothing was written here);
/// a journal that could not be written, or a writer that stopped, leaves the
/// change in doubt for whoever asked it of us.
async fn commit(
    state: &AppState,
    uuid: TxId,
    to: TxState,
    actor: AccountId,
    relay_version: Option<String>,
) -> ApiResult<()> {
    match state.submit(NodeCommand::Commit { uuid, to, actor, relay_version }).await {
        Ok(_) => Ok(()),
        Err(crate::runtime::WriteError::Rejected(violation)) => {
            tracing::error!(%uuid, state = %to, %violation, "the next node wrote a change this node then refused");
            Err(violation_error(&violation))
        }
        Err(error) => {
            tracing::error!(%uuid, state = %to, %error, "a change asked of this node could not be written");
            let why = crate::app::describe_write_error(&error);
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UnavailableNodeFailure")
                .with("in_doubt", true)
                .with("translated", format!("{why}: the change is in doubt until this node's journal is read again")))
        }
    }
}

fn parse_entries(entries: Vec<RelayEntry>) -> ApiResult<Vec<WireEntry>> {
    entries
        .into_iter()
        .map(|e| {
            Ok(WireEntry {
                payer: e.payer,
                payee: e.payee,
                quant: parse_amount("quant", &e.quant)?,
                description: e.description,
                metadata: crate::wire::parse_metadata(e.metadata)?,
            })
        })
        .collect()
}

/// The entries a relay was answered with (`{data: [entries]}`).
fn answered_entries(value: &Value) -> ApiResult<Vec<WireEntry>> {
    let data = value.get("data").cloned().unwrap_or(Value::Array(Vec::new()));
    let entries: Vec<RelayEntry> = serde_json::from_value(data)
        .map_err(|e| ApiError::failure(&format!("a neighbour answered a relay with malformed entries: {e}")))?;
    parse_entries(entries).map_err(|_| ApiError::failure("a neighbour answered a relay with malformed amounts"))
}

fn entries_json(entries: &[WireEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({"payer": e.payer, "payee": e.payee, "quant": amount_json(e.quant), "description": e.description,
                       "metadata": e.metadata})
            })
            .collect(),
    )
}

/// Relays a plan to its next node and folds the entries it answers with into the plan.
async fn relay_on(
    state: &AppState,
    plan: ledger::federation::Plan,
    trace: &str,
) -> ApiResult<ledger::federation::Plan> {
    let Some(forward) = plan.forward.clone() else { return Ok(plan) };
    let dialect = state.read().projections.dialect(&forward.peer);
    let confirm = plan.transaction.workflow.creation.confirm;
    if dialect == Dialect::Komunitin || (dialect == Dialect::Reference && !confirm) {
        // Komunitin books a relay at once, and so does the reference an
        // unconfirmed one: it is sent when the transaction is written here.
        return Ok(plan);
    }
    let (body, lock) = if dialect == Dialect::Reference {
        // The reference checks our head exactly: no write may cross the link meanwhile.
        (reference::relay_body(&plan.transaction, &forward.entries), Some(state.peers().lock_for(&forward.peer)))
    } else {
        (relay_body(&plan.transaction, &forward.entries), None)
    };
    let _link = match &lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    let (_, answer) =
        call_peer(state, &forward.peer, reqwest::Method::POST, "/transaction/relay", Some(body), trace).await?;
    let added = answered_entries(&answer)?;
    if added.is_empty() {
        return Ok(plan);
    }
    match submit(state, NodeCommand::Absorb { plan: Box::new(plan), from: forward.peer.clone(), added }).await? {
        NodeOutput::Plan(Some(plan)) => Ok(*plan),
        _ => Err(ApiError::failure("absorbing additional entries gave no plan")),
    }
}

fn parse_relay(state: &AppState, body: RelayBody) -> ApiResult<RelayIn> {
    let uuid =
        uuid::Uuid::parse_str(&body.uuid).map(TxId).map_err(|_| ApiError::invalid_field("uuid", "not a uuid"))?;
    if let Some(s) = &body.state {
        if ledger::State::parse(s) != Some(TxState::Validated) {
            return Err(ApiError::invalid_field("state", "a relayed transaction is validated (V)"));
        }
    }
    let ours: Option<Workflow> = {
        let read = state.read();
        let config = read.projections.config();
        body.type_
            .as_deref()
            .and_then(|id| config.and_then(|c| c.workflows.iter().find(|w| w.id.as_str() == id).cloned()))
    };
    let workflow = match (ours, &body.workflow) {
        (Some(w), Some(code)) if w.to_code().ok().as_deref() == Some(code.as_str()) => w,
        (Some(w), None) => w,
        (_, Some(code)) => Workflow::from_code(code).map_err(|e| ApiError::invalid_field("workflow", e.to_string()))?,
        (None, None) => {
            return Err(match body.type_.as_deref() {
                Some(id) => ApiError::does_not_exist("workflow", id.chars().take(64).collect::<String>()),
                None => ApiError::invalid_field("workflow", "a workflow code or a known type is required"),
            })
        }
    };
    if body.entries.is_empty() || body.entries.len() > 64 {
        return Err(ApiError::invalid_field("entries", "1 to 64 entries"));
    }
    let entries = parse_entries(body.entries)?;
    Ok(RelayIn { uuid, workflow, entries })
}

/// A neighbour relays a proposal (`POST /transaction/relay`): validate it
/// here (limits on our two adjacent accounts), relay it on if it goes
/// further, record it validated; per the link's dialect.
pub async fn receive_relay(
    state: &AppState,
    from: AccountId,
    headers: &HeaderMap,
    raw: &RawValue,
) -> ApiResult<Response> {
    let body: RelayBody = serde_json::from_str(raw.get())
        .map_err(|e| ApiError::invalid_field("body", format!("not the expected JSON: {e}")))?;
    let dialect = state.read().projections.dialect(&from);
    match dialect {
        Dialect::Komunitin => return komunitin::relay_from(state, from, headers, raw, body).await,
        Dialect::Reference => return reference::relay_from(state, from, headers, body).await,
        Dialect::Ccnode => {}
    }
    let upstream = from.clone();
    let relay = parse_relay(state, body)?;
    let trace = trace_of(headers);
    // A retried relay that was already recorded answers as the first did.
    let existing = {
        let read = state.read();
        read.link(&relay.uuid).map(|l| l.upstream.as_ref() == Some(&from))
    };
    match existing {
        Some(true) => {
            let added = match submit(state, NodeCommand::Additional { uuid: relay.uuid, upstream: from }).await? {
                NodeOutput::Entries(entries) => entries,
                _ => Vec::new(),
            };
            return Ok((StatusCode::CREATED, Json(envelope(entries_json(&added), None, None))).into_response());
        }
        Some(false) => return Err(violation_error(&ledger::Violation::DuplicateUuid { uuid: relay.uuid.to_string() })),
        None => {}
    }
    let output = submit(state, NodeCommand::PlanRelay { from: upstream, relay }).await?;
    let NodeOutput::Plan(Some(plan)) = output else { return Err(ApiError::failure("relay planning gave no plan")) };
    let plan = *plan;
    let plan = relay_on(state, plan, &trace).await?;
    let uuid = plan.transaction.uuid;
    let command = Command::ProposeTransversal { transaction: plan.transaction, link: plan.link };
    submit(state, NodeCommand::Ledger(command)).await?;
    let added = match submit(state, NodeCommand::Additional { uuid, upstream: from }).await? {
        NodeOutput::Entries(entries) => entries,
        _ => Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(envelope(entries_json(&added), None, None))).into_response())
}

/// Longest a change from a child waits for a link that is only being read
/// (a read that takes longer, say a large feed, leaves it busy: retry).
const READ_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// A neighbour relays a state change (the PATCH route calls this for node callers).
pub async fn relayed_state_change(
    state: &AppState,
    from: AccountId,
    claimed_hash: &str,
    uuid: TxId,
    to: TxState,
    trace: &str,
    named: Option<(String, String)>,
) -> ApiResult<StatusCode> {
    // State changes on one link are written in one order on both sides: the
    // incoming one takes this link's lock before anything is checked. The
    // trunkward side wins a collision: a change from our parent waits for our
    // own outgoing change on that link (which the parent refuses at once);
    // a change from a child is refused while ours to that child is in flight.
    // A change from a child also waits while the link is only being read
    // (reconciliation, a handshake): no request of ours is waiting there.
    // A named attempt is written at most once, and never after its sender
    // fenced it or restarted (`crate::attempts`).
    let mut guard = match named {
        Some((attempt, boot)) => match state.peers().attempts().begin(&from, &attempt, &boot, uuid) {
            Begin::Go => Some(AttemptGuard { state, peer: &from, attempt, in_doubt: false }),
            Begin::Seen => return Err(attempt_refused(&from, "this attempt was received before or given up")),
            Begin::StaleBoot => return Err(attempt_refused(&from, "the sender restarted since it sent this attempt")),
        },
        None => None,
    };
    let from_parent = state.read().projections.account(&from).is_some_and(|a| a.kind == AccountKind::Trunkward);
    let _incoming =
        state.peers().lock_incoming_change(&from, from_parent, READ_WAIT_MAX).await.ok_or_else(|| link_busy(&from))?;
    if state.peers().doubts().count(&from) > 0 {
        // A change we sent on this link is in doubt: the neighbour may have
        // written it at the index this one claims (found by the simulator).
        return Err(link_in_doubt(&from));
    }
    let ours = state.read().ratchet(&from).map(|r| r.md5.clone()).unwrap_or_default();
    if ours != claimed_hash {
        state.peers().refused(from.as_str()).await;
        if state.read().projections.dialect(&from) == Dialect::Reference {
            return Err(reference_mismatch(from.as_str(), claimed_hash));
        }
        return Err(ApiError::hash_mismatch(StatusCode::INTERNAL_SERVER_ERROR, from.as_str(), claimed_hash));
    }
    let current = state.read().projections.transaction(&uuid).map(|tx| tx.state);
    match current {
        None => return Err(ApiError::does_not_exist("transaction", uuid.to_string())),
        // Idempotent per (uuid, target state): a retry changes nothing and advances no ratchet.
        Some(s) if s == to => return Ok(StatusCode::CREATED),
        Some(_) => {}
    }
    if !state.read().link(&uuid).is_some_and(|l| l.peers().any(|p| p == &from)) {
        return Err(ApiError::forbidden());
    }
    let result = change_state(state, uuid, to, from.clone(), Some(from.clone()), trace).await;
    if let Some(guard) = guard.as_mut() {
        guard.in_doubt = result.as_ref().is_err_and(ApiError::is_in_doubt);
    }
    result?;
    Ok(StatusCode::CREATED)
}

/// Ends a received attempt when its handler returns (or is dropped): final,
/// or in doubt when this node's next node did not answer.
struct AttemptGuard<'a> {
    state: &'a AppState,
    peer: &'a AccountId,
    attempt: String,
    in_doubt: bool,
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        self.state.peers().attempts().end(self.peer, &self.attempt, self.in_doubt);
    }
}

/// 409 `LinkBusyFailure` while a change on the link is in doubt.
fn link_in_doubt(peer: &AccountId) -> ApiError {
    link_busy(peer).with(
        "translated",
        "a change on this link is in doubt until the neighbour is asked again; nothing was written, retry later",
    )
}

/// 409 `LinkBusyFailure` for an attempt that is not written (a copy, a fenced
/// attempt, one from the sender's earlier start).
fn attempt_refused(peer: &AccountId, why: &str) -> ApiError {
    link_busy(peer).with("translated", format!("{why}; nothing was written"))
}

/// The commands that connect a neighbour: open its node account, record its facts.
pub fn connect_commands(
    id: AccountId,
    kind: AccountKind,
    limits: Limits,
    url: String,
    rate: Rate,
    last_hash: String,
) -> Vec<Command> {
    let peer = Peer { account: id.clone(), url, rate, initial_hash: last_hash };
    vec![Command::OpenAccount { id, kind, limits }, Command::ConnectPeer { peer }]
}

/// `connect_commands`, then the link's dialect when it is not ccnode's.
pub fn connect_commands_in(
    id: AccountId,
    kind: AccountKind,
    limits: Limits,
    url: String,
    rate: Rate,
    last_hash: String,
    dialect: Dialect,
) -> Vec<Command> {
    let mut commands = connect_commands(id.clone(), kind, limits, url, rate, last_hash);
    if dialect != Dialect::Ccnode {
        commands.push(Command::SetLinkDialect { account: id, dialect });
    }
    commands
}

/// This node's absolute path, asking the parent for its own.
pub async fn absolute_path(state: &AppState, trace: &str) -> ApiResult<Vec<String>> {
    path_asking_parent(state, trace, true).await
}

/// `absolute_path`; with `hold_link` false the parent is asked without taking
/// its link's lock (a read that advances no ratchet), for a flow that may
/// already hold that lock.
pub(crate) async fn path_asking_parent(state: &AppState, trace: &str, hold_link: bool) -> ApiResult<Vec<String>> {
    let trunkward =
        state.read().projections.accounts().find(|a| a.kind == AccountKind::Trunkward).map(|a| a.id.clone());
    let mut path = match trunkward {
        Some(parent) => {
            let lock = state.peers().lock_for(&parent);
            let _link = if hold_link { Some(lock.lock().await) } else { None };
            let (_, value) = call_peer(state, &parent, reqwest::Method::GET, "/absolutepath", None, trace).await?;
            value["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    path.push(state.name().to_owned());
    Ok(path)
}

/// Each neighbour's status as seen from here.
pub async fn handshake(state: &AppState, trace: &str) -> BTreeMap<String, String> {
    let peers: Vec<AccountId> = state.read().neighbours();
    let mut out = BTreeMap::new();
    for peer in peers {
        if state.read().projections.dialect(&peer) == Dialect::Komunitin {
            // Komunitin has no /handshake (it serves only relay, account and history).
            out.insert(peer.to_string(), "komunitin (not asked)".to_owned());
            continue;
        }
        let _link = state.peers().lock_to_read(&peer).await;
        let status = match call_peer(state, &peer, reqwest::Method::GET, "/handshake", None, trace).await {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.class_name().to_owned(),
        };
        out.insert(peer.to_string(), status);
    }
    out
}

/// Where a path that names a node (or starts with one) leads from here.
#[derive(Debug)]
pub enum PathRoute {
    /// This node; the rest of the path.
    Here(String),
    /// A child node and the path below it.
    Leafward(AccountId, String),
    /// The parent node, with the whole path.
    Trunkward(AccountId, String),
}

/// Routes `path` with the one path resolver (`ledger::path::route`). With
/// `node_only`, a single segment that is not this node's name is a node
/// name (sent trunkward), not a local name.
pub fn route_path(state: &AppState, path: &str, node_only: bool) -> ApiResult<PathRoute> {
    route_path_with(state, path, |_, _| !node_only)
}

/// `route_path`, where `is_here` says whether a single segment that is not
/// this node's name is read here (given the read model) or sent trunkward.
pub fn route_path_with(
    state: &AppState,
    path: &str,
    is_here: impl Fn(&projections::Projections, &str) -> bool,
) -> ApiResult<PathRoute> {
    let read = state.read();
    let p = &read.projections;
    let name = ledger::NodeName::new(state.name()).map_err(|_| ApiError::failure("node name"))?;
    let trunkward = p.accounts().find(|a| a.kind == AccountKind::Trunkward).map(|a| a.id.clone());
    let route = ledger::route(
        path,
        &name,
        |id| p.account(id).map(|a| a.kind.clone()),
        trunkward.as_ref(),
        |seg| is_here(p, seg),
    )
    .map_err(|v| violation_error(&v))?;
    Ok(match route {
        ledger::Route::Here(rest) => PathRoute::Here(rest),
        ledger::Route::Leafward { node_account, rel_path } => PathRoute::Leafward(node_account, rel_path),
        ledger::Route::Trunkward { node_account, rel_path } => PathRoute::Trunkward(node_account, rel_path),
    })
}

/// GETs `path_and_query` from a neighbour, holding the link's lock.
pub async fn get_from(state: &AppState, peer: &AccountId, path_and_query: &str) -> ApiResult<Value> {
    let _link = state.peers().lock_to_read(peer).await;
    let (_, value) = call_peer(state, peer, reqwest::Method::GET, path_and_query, None, "").await?;
    Ok(value)
}

/// Percent-encodes a query value (paths and fragments are short ASCII names).
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
