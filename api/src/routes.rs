//! The Credit Commons 0.8.x client routes, ccnode's additions and the admin routes.
//!
//! Handlers read from the read model (a short read lock, never waiting on an
//! fsync) and write through the writer, answering only once it is durable.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{
    allowed_actors, Account, AccountId, AccountKind, AccountStatus, Actor, Amount, Command, FieldValue, Limits,
    Proposal, State as TxState, Transaction, TxId, Violation, WorkflowId,
};
use projections::{Query as TxQuery, Sort, TradeStats};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::http::AppJson;
use crate::node::{AppState, NodeCommand, NodeOutput};
use crate::runtime::WriteError;
use crate::wire::{
    amount_value, decimal_value, envelope, format_datetime, format_rfc3339, parse_amount, parse_metadata,
    parse_rfc3339, parse_state, workflow_hash, workflow_json, EntryFullJson, NewTransaction, TransactionJson,
};

/// Default page size of `/transactions` and `/entries`.
pub const PAGE_LIMIT_DEFAULT: usize = 25;
/// Largest page size.
pub const PAGE_LIMIT_MAX: usize = 1000;
/// Most names `/account/names` returns.
pub const NAMES_LIMIT_MAX: usize = 1000;
/// Most points `/account/history` samples.
pub const HISTORY_SAMPLES_MAX: i64 = 10_000;
/// Longest query parameter value accepted, in bytes.
pub const QUERY_VALUE_BYTES_MAX: usize = 1024;

/// Query string, parsed leniently into a map and checked by each handler.
#[derive(Debug, Default, Deserialize, FromRequestParts)]
#[serde(transparent)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params(pub HashMap<String, String>);

/// Path parameters with Credit Commons errors.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

impl Params {
    fn only(&self, known: &[&str]) -> ApiResult<()> {
        for (key, value) in &self.0 {
            if !known.contains(&key.as_str()) {
                return Err(ApiError::invalid_field(key, format!("unknown parameter; known: {}", known.join(", "))));
            }
            if value.len() > QUERY_VALUE_BYTES_MAX {
                return Err(ApiError::invalid_field(key, "value too long"));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> ApiResult<Option<T>> {
        self.get(key).map(|v| v.parse::<T>().map_err(|_| ApiError::invalid_field(key, "expected a number"))).transpose()
    }
}

/// A refused command as Credit Commons error JSON.
pub fn violation_error(violation: &Violation) -> ApiError {
    let status = match violation {
        Violation::DoesNotExist { .. } => StatusCode::NOT_FOUND,
        Violation::Permission => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut error = ApiError::new(status, violation.class());
    for (key, value) in violation.fields() {
        let value = match value {
            FieldValue::Text(s) => Value::String(s),
            FieldValue::Amount(a) => amount_value(a),
            FieldValue::Map(m) => json!(m),
        };
        error = error.with(key, value);
    }
    error
}

pub(crate) fn write_error(error: WriteError<Violation>) -> ApiError {
    match error {
        WriteError::Rejected(violation) => violation_error(&violation),
        WriteError::Journal(_) => ApiError::failure("the journal could not be written; the node stopped writing"),
        WriteError::Unavailable => ApiError::unavailable("the node is not accepting writes (shutting down or stopped)"),
        WriteError::ReadOnly(reason) => ApiError::unavailable(&reason),
    }
}

pub(crate) async fn submit(state: &AppState, command: NodeCommand) -> ApiResult<NodeOutput> {
    state.submit(command).await.map_err(write_error)
}

/// What an `acc_path` names, seen from this node.
enum Target {
    /// This node: every account here.
    Node,
    /// One account here.
    Account(AccountId),
    /// Held by a neighbour: ask it, with the path as it must read it.
    Remote { peer: AccountId, acc_path: String },
}

/// Reads `acc_path` with the one path resolver: `alice` or `<this node>/alice`
/// is an account here, `<this node>` or `<this node>/` the node, a path
/// through a child (`branch2/carol`, `branch2/`) goes leafward and anything
/// else trunkward (when there is a parent).
fn target(state: &AppState, acc_path: &str) -> ApiResult<Target> {
    use crate::federation::{route_path_with, PathRoute};
    // A single name is read here when it is an account here, or when there is
    // no parent to ask (then an unknown one is DoesNotExistViolation).
    let route = route_path_with(state, acc_path, |p, name| {
        AccountId::new(name).ok().and_then(|id| p.account(&id).map(|_| ())).is_some()
            || !p.accounts().any(|a| a.kind == AccountKind::Trunkward)
    })?;
    match route {
        PathRoute::Here(rest) if rest.is_empty() => Ok(Target::Node),
        PathRoute::Here(rest) => {
            let id = AccountId::new(&rest).map_err(|_| ApiError::invalid_field("acc_path", "not an account name"))?;
            if state.read().projections.account(&id).is_none() {
                return Err(ApiError::does_not_exist("account", id.as_str()));
            }
            Ok(Target::Account(id))
        }
        // A child node's own path names that node: it reads its name as itself.
        PathRoute::Leafward(child, rest) if rest.is_empty() => {
            Ok(Target::Remote { acc_path: child.to_string(), peer: child })
        }
        PathRoute::Leafward(child, rest) => Ok(Target::Remote { peer: child, acc_path: rest }),
        PathRoute::Trunkward(parent, whole) => Ok(Target::Remote { peer: parent, acc_path: whole }),
    }
}

/// Asks the neighbour that holds `acc_path` and answers as it answers (with
/// its own authorisation of this node as the caller).
async fn forward_read(
    state: &AppState,
    peer: &AccountId,
    route: &str,
    acc_path: &str,
    extra: &str,
) -> ApiResult<Json<Value>> {
    let query = format!("{route}?acc_path={}{extra}", crate::federation::query_value(acc_path));
    Ok(Json(crate::federation::get_from(state, peer, &query).await?))
}

/// The accounts an optional `acc_path` names here, defaulting to the caller's
/// own; `Err(Ok(..))` when a neighbour holds them.
fn local_targets(
    state: &AppState,
    params: &Params,
    caller: &AccountId,
) -> ApiResult<Result<Vec<AccountId>, (AccountId, String)>> {
    let Some(path) = params.get("acc_path") else { return Ok(Ok(vec![caller.clone()])) };
    Ok(match target(state, path)? {
        Target::Node => Ok(state.read().projections.accounts().map(|a| a.id.clone()).collect()),
        Target::Account(id) => Ok(vec![id]),
        Target::Remote { peer, acc_path } => Err((peer, acc_path)),
    })
}

fn one_account(state: &AppState, params: &Params, caller: &AccountId) -> ApiResult<AccountId> {
    match params.get("acc_path") {
        None => Ok(caller.clone()),
        // Any account here by its id, node accounts included (their balance of trade).
        Some(path) if AccountId::new(path).is_ok_and(|id| state.read().projections.account(&id).is_some()) => {
            Ok(AccountId::new(path).expect("checked"))
        }
        Some(path) => match target(state, path)? {
            Target::Account(id) => Ok(id),
            Target::Node => Err(ApiError::invalid_field("acc_path", "names a node; an account is needed")),
            Target::Remote { .. } => {
                Err(ApiError::invalid_field("acc_path", "names an account on another node; ask /account/history"))
            }
        },
    }
}

fn roles(tx: &Transaction, who: &AccountId) -> Vec<Actor> {
    let primary = tx.primary();
    let mut roles = Vec::new();
    if &primary.payer == who {
        roles.push(Actor::Payer);
    }
    if &primary.payee == who {
        roles.push(Actor::Payee);
    }
    if &tx.author == who {
        roles.push(Actor::Author);
    }
    roles
}

/// The transitions `caller` may make on `tx`: `{state: "/transaction/{uuid}/{state}"}`.
fn transitions(tx: &Transaction, caller: &Caller) -> Map<String, Value> {
    let mut out = Map::new();
    let Caller::Account { id, admin } = caller else { return out };
    let mine = roles(tx, id);
    for to in TxState::ALL {
        if to == tx.state {
            continue;
        }
        if let Some(actors) = allowed_actors(tx, to) {
            if *admin || mine.iter().any(|r| actors.contains(r)) {
                // The reference names deleting a validated transaction `null`.
                let name = if tx.state == TxState::Validated && to == TxState::Erased { "null" } else { to.name() };
                out.insert(name.to_owned(), Value::String(format!("/transaction/{}/{name}", tx.uuid)));
            }
        }
    }
    out
}

fn transitions_meta<'a>(txs: impl Iterator<Item = &'a Transaction>, caller: &Caller) -> Value {
    let map: Map<String, Value> = txs.map(|tx| (tx.uuid.to_string(), Value::Object(transitions(tx, caller)))).collect();
    json!({ "transitions": map })
}

/// A `validated` transaction (not yet confirmed) exists only for its author
/// and admins; anyone else is refused as the reference refuses them.
fn visible(tx: &Transaction, caller: &Caller) -> ApiResult<()> {
    if tx.state != TxState::Validated || caller.is_admin() {
        return Ok(());
    }
    match caller {
        Caller::Account { id, .. } | Caller::Node { account: id } if id == &tx.author => Ok(()),
        _ => Err(ApiError::forbidden()),
    }
}

/// Whose validated transactions a listing shows: an admin's shows all.
fn validated_author(caller: &Caller) -> Option<AccountId> {
    match caller {
        Caller::Account { admin: true, .. } => None,
        Caller::Account { id, .. } | Caller::Node { account: id } => Some(id.clone()),
        Caller::Anonymous => Some(AccountId::new("-anon-").expect("a valid placeholder id")),
    }
}

fn tx_value(tx: &Transaction) -> Value {
    serde_json::to_value(TransactionJson::from_tx(tx)).expect("transactions serialise")
}

fn stats_value(stats: &TradeStats) -> Value {
    json!({
        "balance": amount_value(stats.balance),
        "trades": stats.trades,
        "entries": stats.entries,
        "gross_in": decimal_value(&stats.gross_in.to_string()),
        "gross_out": decimal_value(&stats.gross_out.to_string()),
        "partners": stats.partners,
        "volume": decimal_value(&stats.volume.to_string()),
    })
}

fn ok(data: Value) -> Json<Value> {
    Json(envelope(data, None, None))
}

// ---------------------------------------------------------------------------
// Node routes

const OPERATIONS: &[(&str, &str, &str, bool)] = &[
    ("permittedEndpoints", "OPTIONS", "/", false),
    ("about", "GET", "/about", false),
    ("workflows", "GET", "/workflows", true),
    ("handshake", "GET", "/handshake", true),
    ("absolutePath", "GET", "/absolutepath", true),
    ("accountNameFilter", "GET", "/account/names", true),
    ("accountSummary", "GET", "/account/summary", true),
    ("accountLimits", "GET", "/account/limits", true),
    ("accountHistory", "GET", "/account/history", true),
    ("accountBalance", "GET", "/account/balance", true),
    ("newTransaction", "POST", "/transaction", true),
    ("getTransaction", "GET", "/transaction/{uuid}", true),
    ("stateChange", "PATCH", "/transaction/{uuid}/{dest_state}", true),
    ("filterTransactions", "GET", "/transactions", true),
    ("filterTransactionEntries", "GET", "/entries", true),
    ("getEntries", "GET", "/entries/{uuid}", true),
];

/// The operations the caller may use.
#[utoipa::path(options, path = "/", tag = "node",
    responses((status = 200, description = "`{data: {operationId: [method, path]}}` for the caller", body = crate::schema::PermittedEndpoints)))]
pub async fn permitted_endpoints(caller: Caller) -> Json<Value> {
    let authenticated = caller != Caller::Anonymous;
    let data: Map<String, Value> = OPERATIONS
        .iter()
        .filter(|(_, _, _, needs_auth)| authenticated || !needs_auth)
        .map(|(op, method, path, _)| ((*op).to_owned(), json!([method, path])))
        .collect();
    ok(Value::Object(data))
}

/// Facts about this node: format, conversion rate and ccnode extras.
#[utoipa::path(get, path = "/about", tag = "node",
    params(("node_path" = Option<String>, Query, description = "Another node's path (relative or absolute); the request is forwarded along the tree")),
    responses((status = 200, description = "`{data: {format, rate, name, validated_window, accounts, transactions}}` of the node named", body = crate::schema::AboutAnswer),
              (status = 400, description = "PathViolation: `node_path` names no node"), (status = 503, description = "UnavailableNodeFailure: a neighbour on the way did not answer")))]
pub async fn about(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    params.only(&["node_path"])?;
    if let Some(path) = params.get("node_path") {
        use crate::federation::{get_from, query_value, route_path, PathRoute};
        let forwarded = match route_path(&state, path, true)? {
            PathRoute::Here(rest) if rest.is_empty() => None,
            PathRoute::Here(_) => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "PathViolation")
                    .with("relPath", path)
                    .with("context", state.name()))
            }
            PathRoute::Leafward(child, rest) => Some((child, rest)),
            PathRoute::Trunkward(parent, whole) => Some((parent, whole)),
        };
        if let Some((peer, rest)) = forwarded {
            let query = if rest.is_empty() { String::new() } else { format!("?node_path={}", query_value(&rest)) };
            let value = get_from(&state, &peer, &format!("/about{query}")).await?;
            return Ok(Json(value));
        }
    }
    let read = state.read();
    let p = &read.projections;
    let window = p.config().map_or(0, |c| c.validated_window_s);
    Ok(ok(json!({
        "format": "0",
        "rate": 1,
        "name": state.name(),
        "validated_window": window,
        "accounts": p.account_count(),
        "transactions": p.transaction_count(),
    })))
}

/// The workflows of this node, keyed by the reference's workflow hash.
#[utoipa::path(get, path = "/workflows", tag = "node",
    responses((status = 200, description = "`{data: {hash: workflow}}` in the 0.8.x format plus `code` (0.9.x)", body = crate::schema::WorkflowsAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn workflows(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.account()?;
    let read = state.read();
    // A reference node reads every workflow its trunk lists on each request,
    // and cc-php-lib's `Workflow::getHash()` fails on one with no transitions
    // (`states: {}`, such as `payment`): it is not shown to a reference
    // neighbour, which therefore cannot use it across the link.
    let reference = match &caller {
        Caller::Node { account } => {
            ledger::LedgerView::dialect(&read.projections, account) == ledger::Dialect::Reference
        }
        _ => false,
    };
    let data: Map<String, Value> = read
        .projections
        .config()
        .map(|c| {
            c.workflows
                .iter()
                .filter(|w| !(reference && w.transitions.is_empty()))
                .map(|w| (workflow_hash(w), workflow_json(w, state.name())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ok(Value::Object(data)))
}

/// This node's absolute path, trunk first.
#[utoipa::path(get, path = "/absolutepath", tag = "node", responses((status = 200, description = "`{data: [names]}`", body = crate::schema::NamesAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn absolute_path(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.account()?;
    let path = crate::federation::absolute_path(&state, "").await?;
    Ok(ok(json!(path)))
}

/// Status of each adjacent node: `ok`, `UnavailableNodeFailure`, `HashMismatchFailure` or another class.
/// Only a local account's call checks the neighbours (one level deep); a neighbour's call gets `{}`.
#[utoipa::path(get, path = "/handshake", tag = "node", responses((status = 200, description = "`{data: {node: status}}`", body = crate::schema::HandshakeAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn handshake(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.account()?;
    if matches!(caller, Caller::Node { .. }) {
        return Ok(ok(json!({})));
    }
    Ok(ok(json!(crate::federation::handshake(&state, "").await)))
}

// ---------------------------------------------------------------------------
// Accounts

/// Account names containing a fragment; node accounts end with `/`.
#[utoipa::path(get, path = "/account/names", tag = "accounts",
    params(("acc_path" = Option<String>, Query, description = "Fragment, or a node path then a fragment (`branch2/ca`), answered by that node"), ("limit" = Option<usize>, Query, description = "Most names (default 10)")),
    responses((status = 200, description = "`{data: [names]}`", body = crate::schema::NamesAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn account_names(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    caller.account()?;
    params.only(&["acc_path", "limit"])?;
    let limit = params.number::<usize>("limit")?.unwrap_or(10).min(NAMES_LIMIT_MAX);
    let path = params.get("acc_path").unwrap_or("");
    use crate::federation::{get_from, query_value, route_path, PathRoute};
    let (peer, rest, prefix) = match route_path(&state, path, false)? {
        PathRoute::Here(fragment) => return Ok(ok(json!(names_in_tree(&state, &caller, &fragment, limit).await))),
        PathRoute::Leafward(child, rest) => (child.clone(), rest, format!("{child}/")),
        PathRoute::Trunkward(parent, whole) => (parent, whole, String::new()),
    };
    let value =
        get_from(&state, &peer, &format!("/account/names?acc_path={}&limit={limit}", query_value(&rest))).await?;
    let names: Vec<String> = value["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()).map(|n| format!("{prefix}{n}")).collect())
        .unwrap_or_default();
    Ok(ok(json!(names)))
}

/// Names containing `fragment` here and on the nodes around (the reference's
/// `accountNameFilter`): this node's accounts (child nodes end with `/`),
/// then each child's names as `child/name`, then the parent's as
/// `parent/name`, each a path that reaches the account from here. A
/// neighbour that asks is not asked back, so the walk covers the tree once.
/// A neighbour that does not answer is left out.
async fn names_in_tree(state: &AppState, caller: &Caller, fragment: &str, limit: usize) -> Vec<String> {
    let asking_node = match caller {
        Caller::Node { account } => Some(account.clone()),
        _ => None,
    };
    let lower = fragment.to_lowercase();
    let (mut names, children, parent) = {
        let read = state.read();
        let p = &read.projections;
        let names: Vec<String> = p
            .accounts()
            .filter(|a| a.kind != AccountKind::Trunkward && Some(&a.id) != asking_node.as_ref())
            .filter(|a| a.id.as_str().to_lowercase().contains(&lower))
            .take(limit)
            .map(|a| if crate::node::is_user(a) { a.id.to_string() } else { format!("{}/", a.id) })
            .collect();
        let children: Vec<AccountId> = p
            .accounts()
            .filter(|a| a.kind == AccountKind::Leafward && Some(&a.id) != asking_node.as_ref())
            .map(|a| a.id.clone())
            .collect();
        let parent = p
            .accounts()
            .find(|a| a.kind == AccountKind::Trunkward && Some(&a.id) != asking_node.as_ref())
            .map(|a| a.id.clone());
        (names, children, parent)
    };
    let query = format!("/account/names?acc_path={}&limit={limit}", crate::federation::query_value(fragment));
    for peer in children.into_iter().chain(parent) {
        if names.len() >= limit {
            break;
        }
        match crate::federation::get_from(state, &peer, &query).await {
            Ok(value) => {
                let theirs = value["data"].as_array().cloned().unwrap_or_default();
                names.extend(theirs.iter().filter_map(Value::as_str).map(|n| format!("{peer}/{n}")));
            }
            Err(error) => tracing::debug!(%peer, class = error.class_name(), "names from a neighbour left out"),
        }
    }
    names.truncate(limit);
    names
}

/// Trade statistics (completed, and pending including completed) per account.
#[utoipa::path(get, path = "/account/summary", tag = "accounts",
    params(("acc_path" = Option<String>, Query, description = "Account, or this node's name for all accounts; default the caller")),
    responses((status = 200, description = "`{data: {account: {completed: TradeStats, pending: TradeStats}}}`", body = crate::schema::SummaryAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn account_summary(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    let me = caller.account()?;
    params.only(&["acc_path"])?;
    let ids = match local_targets(&state, &params, me)? {
        Ok(ids) => ids,
        Err((peer, acc_path)) => return forward_read(&state, &peer, "/account/summary", &acc_path, "").await,
    };
    let read = state.read();
    let mut data = Map::new();
    for id in ids {
        if let Some(stats) = read.projections.stats(&id) {
            data.insert(
                id.to_string(),
                json!({"completed": stats_value(&stats.completed), "pending": stats_value(&stats.pending)}),
            );
        }
    }
    Ok(ok(Value::Object(data)))
}

/// Limits per account.
#[utoipa::path(get, path = "/account/limits", tag = "accounts",
    params(("acc_path" = Option<String>, Query, description = "Account, or this node's name for all; default the caller")),
    responses((status = 200, description = "`{data: {account: {min, max}}}`", body = crate::schema::LimitsAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn account_limits(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    let me = caller.account()?;
    params.only(&["acc_path"])?;
    let ids = match local_targets(&state, &params, me)? {
        Ok(ids) => ids,
        Err((peer, acc_path)) => return forward_read(&state, &peer, "/account/limits", &acc_path, "").await,
    };
    let read = state.read();
    let mut data = Map::new();
    for id in ids {
        if let Some(account) = read.projections.account(&id) {
            data.insert(
                id.to_string(),
                json!({"min": amount_value(account.limits.min()), "max": amount_value(account.limits.max())}),
            );
        }
    }
    Ok(ok(Value::Object(data)))
}

/// The completed balance over time.
#[utoipa::path(get, path = "/account/history", tag = "accounts",
    params(("acc_path" = Option<String>, Query, description = "Account; default the caller"),
           ("samples" = Option<i64>, Query, description = "-1 stepped (default), 0 raw points, n > 0 evenly spaced samples")),
    responses((status = 200, description = "`{data: {\"Y-m-d H:i:s\": balance}, meta: {min, max, points, start, end}}`", body = crate::schema::HistoryAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn account_history(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    let me = caller.account()?;
    params.only(&["acc_path", "samples"])?;
    let samples = params.number::<i64>("samples")?.unwrap_or(-1);
    if !(-1..=HISTORY_SAMPLES_MAX).contains(&samples) {
        return Err(ApiError::invalid_field("samples", format!("must be -1, 0 or up to {HISTORY_SAMPLES_MAX}")));
    }
    if let Some(path) = params.get("acc_path") {
        if let Target::Remote { peer, acc_path } = target(&state, path)? {
            let extra = format!("&samples={samples}");
            return forward_read(&state, &peer, "/account/history", &acc_path, &extra).await;
        }
    }
    let id = one_account(&state, &params, me)?;
    let read = state.read();
    let p = &read.projections;
    let timeline = p.timeline(&id).unwrap_or(&[]);
    let mut points: Vec<(u64, Amount)> = Vec::new();
    match samples {
        0 => points.extend(timeline.iter().map(|t| (t.at_us, t.balance))),
        -1 => {
            let mut previous = Amount::ZERO;
            for t in timeline {
                // A step: the old balance just before the change, then the new one.
                points.push((t.at_us.saturating_sub(1_000_000), previous));
                points.push((t.at_us, t.balance));
                previous = t.balance;
            }
        }
        n => {
            if let (Some(first), Some(last)) = (timeline.first(), timeline.last()) {
                let n = u64::try_from(n).expect("checked positive");
                let span = last.at_us - first.at_us;
                for i in 0..n {
                    let at = first.at_us + if n == 1 { span } else { span / (n - 1) * i };
                    points.push((at, p.balance_at_time(&id, at).unwrap_or(Amount::ZERO)));
                }
            }
        }
    }
    let mut data = Map::new();
    for (at, balance) in &points {
        data.insert(format_datetime(at / 1_000_000), amount_value(*balance));
    }
    let min = points.iter().map(|(_, b)| *b).min().unwrap_or(Amount::ZERO);
    let max = points.iter().map(|(_, b)| *b).max().unwrap_or(Amount::ZERO);
    let meta = json!({
        "min": amount_value(min),
        "max": amount_value(max),
        "points": data.len(),
        "start": points.first().map(|(at, _)| format_datetime(at / 1_000_000)),
        "end": points.last().map(|(at, _)| format_datetime(at / 1_000_000)),
    });
    Ok(Json(envelope(Value::Object(data), Some(meta), None)))
}

/// The completed balance of an account now, or as it stood at a journal seq or instant.
#[utoipa::path(get, path = "/account/balance", tag = "accounts",
    params(("acc_path" = Option<String>, Query, description = "Account; default the caller"),
           ("at" = Option<String>, Query, description = "A journal seq (digits) or an RFC 3339 instant; default now")),
    responses((status = 200, description = "`{data: {account, balance, pending, seq?, at?}}`", body = crate::schema::BalanceAnswer), (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn account_balance(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    let me = caller.account()?;
    params.only(&["acc_path", "at"])?;
    let id = one_account(&state, &params, me)?;
    let read = state.read();
    let p = &read.projections;
    let data = match params.get("at") {
        None => {
            let balances = p.balances(&id).unwrap_or_default();
            json!({"account": id.as_str(), "balance": amount_value(balances.completed),
                   "pending": amount_value(balances.pending), "seq": p.seq()})
        }
        Some(at) if at.bytes().all(|b| b.is_ascii_digit()) => {
            let seq: u64 = at.parse().map_err(|_| ApiError::invalid_field("at", "seq out of range"))?;
            if seq > p.seq() {
                return Err(ApiError::invalid_field("at", format!("seq {seq} is beyond the journal head {}", p.seq())));
            }
            let balance = p.balance_at_seq(&id, seq).unwrap_or(Amount::ZERO);
            json!({"account": id.as_str(), "balance": amount_value(balance), "seq": seq})
        }
        Some(at) => {
            let at_us = parse_rfc3339(at)
                .ok_or_else(|| ApiError::invalid_field("at", "expected a journal seq or an RFC 3339 instant"))?;
            let balance = p.balance_at_time(&id, at_us).unwrap_or(Amount::ZERO);
            json!({"account": id.as_str(), "balance": amount_value(balance), "at": format_rfc3339(at_us)})
        }
    };
    Ok(ok(data))
}

// ---------------------------------------------------------------------------
// Transactions

/// Creates a transaction: 201 when written, 200 when it awaits the author's confirmation.
#[utoipa::path(post, path = "/transaction", tag = "transactions", request_body = NewTransaction,
    responses((status = 201, description = "Written: `{data: Transaction, meta: {transitions}}`", body = crate::schema::NewTransactionAnswer),
              (status = 200, description = "Validated, awaiting confirmation (PATCH to the workflow's creation state)", body = crate::schema::NewTransactionAnswer),
              (status = 400, description = "A violation (limits, workflow, fields)"), (status = 403, description = "PermissionViolation"),
              (status = 404, description = "DoesNotExistViolation: an account or workflow named is unknown"),
              (status = 503, description = "UnavailableNodeFailure: a neighbour on the way did not answer")))]
pub async fn new_transaction(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<NewTransaction>,
) -> ApiResult<Response> {
    let author = caller.account()?.clone();
    let workflow = body
        .type_
        .or(body.workflow)
        .ok_or_else(|| ApiError::invalid_field("type", "required: the workflow id, e.g. pay, credit or bill"))?;
    let workflow = WorkflowId::new(&workflow).map_err(|_| {
        violation_error(&Violation::DoesNotExist {
            type_: "workflow".to_owned(),
            id: workflow.chars().take(64).collect(),
        })
    })?;
    // The reference fills in the author as the missing party of a bill (the
    // payee) or a credit (the payer); a party that is given is never replaced.
    let direction = state
        .read()
        .projections
        .config()
        .and_then(|c| c.workflows.iter().find(|w| w.id == workflow).map(|w| w.direction));
    let fill = |party: Option<String>, own: ledger::Direction, name: &str| -> ApiResult<String> {
        match party.filter(|p| !p.is_empty()) {
            Some(party) => Ok(party),
            None if direction == Some(own) => Ok(author.to_string()),
            None => Err(ApiError::invalid_field(name, format!("Missing {name} from passed params"))),
        }
    };
    let payer = fill(body.payer, ledger::Direction::Credit, "payer")?;
    let payee = fill(body.payee, ledger::Direction::Bill, "payee")?;
    let quant = parse_amount("quant", &body.quant)?;
    let uuid = match body.uuid {
        Some(text) => TxId(uuid::Uuid::parse_str(&text).map_err(|_| ApiError::invalid_field("uuid", "not a uuid"))?),
        None => TxId(uuid::Uuid::new_v4()),
    };
    let proposal = Proposal {
        author,
        payer,
        payee,
        quant,
        description: body.description,
        metadata: parse_metadata(body.metadata)?,
        workflow,
        uuid: Some(uuid),
    };
    // One trip through the writer: a local payment is written at once, one
    // that leaves this node comes back as a plan to relay.
    if let NodeOutput::Plan(Some(plan)) = submit(&state, NodeCommand::Propose(proposal)).await? {
        crate::federation::propose(&state, *plan, "").await?;
    }
    let read = state.read();
    let tx = read.projections.transaction(&uuid).ok_or_else(|| ApiError::failure("written transaction not found"))?;
    let status = if tx.state == TxState::Validated { StatusCode::OK } else { StatusCode::CREATED };
    // POST answers the transitions of this one transaction, not keyed by uuid (the reference's shape).
    let body = envelope(tx_value(tx), Some(json!({"transitions": transitions(tx, &caller)})), None);
    Ok((status, Json(body)).into_response())
}

fn parse_uuid(text: &str) -> ApiResult<TxId> {
    uuid::Uuid::parse_str(text).map(TxId).map_err(|_| ApiError::invalid_field("uuid", "not a uuid"))
}

/// One transaction with the transitions the caller may make.
#[utoipa::path(get, path = "/transaction/{uuid}", tag = "transactions",
    params(("uuid" = String, Path, description = "Transaction uuid")),
    responses((status = 200, description = "`{data: Transaction, meta: {transitions: {uuid: {state: path}}}}`", body = crate::schema::TransactionAnswer),
              (status = 403, description = "PermissionViolation"), (status = 404, description = "DoesNotExistViolation")))]
pub async fn get_transaction(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(uuid): AppPath<String>,
) -> ApiResult<Json<Value>> {
    caller.account()?;
    let uuid = parse_uuid(&uuid)?;
    let read = state.read();
    let tx =
        read.projections.transaction(&uuid).ok_or_else(|| ApiError::does_not_exist("transaction", uuid.to_string()))?;
    visible(tx, &caller)?;
    Ok(Json(envelope(tx_value(tx), Some(transitions_meta(std::iter::once(tx), &caller)), None)))
}

/// Moves a transaction to another state (`pending`, `completed`, `erased`; letters `P`, `C`, `E` too;
/// `null` deletes a validated one).
#[utoipa::path(patch, path = "/transaction/{uuid}/{dest_state}", tag = "transactions",
    params(("uuid" = String, Path, description = "Transaction uuid"), ("dest_state" = String, Path, description = "Target state")),
    responses((status = 201, description = "Written (no body)"), (status = 200, description = "A validated transaction was deleted (no body)"),
              (status = 400, description = "WorkflowViolation or a limit violation"), (status = 403, description = "PermissionViolation"),
              (status = 404, description = "DoesNotExistViolation"), (status = 503, description = "UnavailableNodeFailure: a neighbour on the way did not answer")))]
pub async fn state_change(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    AppPath((uuid, dest)): AppPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?.clone();
    let uuid = parse_uuid(&uuid)?;
    let to = parse_state(&dest).ok_or_else(|| ApiError::invalid_field("dest_state", "not a state"))?;
    let trace = headers.get("cc-node-trace").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if let Caller::Node { account } = &caller {
        let claimed = ["last-hash", "cc-auth"]
            .iter()
            .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
            .unwrap_or("")
            .to_owned();
        return crate::federation::relayed_state_change(&state, account.clone(), &claimed, uuid, to, &trace).await;
    }
    let was_validated = state.read().projections.transaction(&uuid).is_some_and(|tx| tx.state == TxState::Validated);
    crate::federation::change_state(&state, uuid, to, actor, None, &trace).await?;
    Ok(if was_validated && to == TxState::Erased { StatusCode::OK } else { StatusCode::CREATED })
}

fn parse_time(key: &str, text: &str) -> ApiResult<u64> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| ApiError::invalid_field(key, "out of range"));
    }
    if let Some(us) = parse_rfc3339(text) {
        return Ok(us / 1_000_000);
    }
    let formats = [
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ];
    for format in formats {
        if let Ok(t) = time::PrimitiveDateTime::parse(text, &format) {
            return u64::try_from(t.assume_utc().unix_timestamp())
                .map_err(|_| ApiError::invalid_field(key, "before 1970"));
        }
    }
    if let Ok(d) = time::Date::parse(text, &time::macros::format_description!("[year]-[month]-[day]")) {
        let t = d.midnight().assume_utc().unix_timestamp();
        return u64::try_from(t).map_err(|_| ApiError::invalid_field(key, "before 1970"));
    }
    Err(ApiError::invalid_field(key, "expected unix seconds, Y-m-d H:i:s, Y-m-d or RFC 3339"))
}

const FILTER_KEYS: &[&str] = &[
    "payer",
    "payee",
    "involving",
    "scribe",
    "author",
    "description",
    "state",
    "states",
    "type",
    "types",
    "since",
    "until",
    "after",
    "before",
    "sort",
    "dir",
    "limit",
    "offset",
];

fn parse_query(params: &Params) -> ApiResult<TxQuery> {
    params.only(FILTER_KEYS)?;
    let account = |key: &str| -> ApiResult<Option<AccountId>> {
        params
            .get(key)
            .map(|v| AccountId::new(v).map_err(|_| ApiError::invalid_field(key, "not an account name")))
            .transpose()
    };
    let list = |a: &str, b: &str| -> Vec<String> {
        [params.get(a), params.get(b)].into_iter().flatten().flat_map(|v| v.split(',')).map(str::to_owned).collect()
    };
    // An unknown state matches nothing, as in the reference (a plain SQL `IN`).
    let named = list("state", "states");
    let states: Vec<TxState> = named.iter().filter_map(|s| TxState::parse(s)).collect();
    let nothing = !named.is_empty() && states.is_empty();
    let sort = match params.get("sort").unwrap_or("written") {
        "written" => Sort::Written,
        "version" => Sort::Version,
        "quant" => Sort::Quant,
        _ => return Err(ApiError::invalid_field("sort", "one of written, version, quant")),
    };
    let descending = match params.get("dir").unwrap_or("desc").to_ascii_lowercase().as_str() {
        "desc" => true,
        "asc" => false,
        _ => return Err(ApiError::invalid_field("dir", "asc or desc")),
    };
    let limit = params.number::<usize>("limit")?.unwrap_or(PAGE_LIMIT_DEFAULT);
    if limit == 0 || limit > PAGE_LIMIT_MAX {
        return Err(ApiError::invalid_field("limit", format!("1 to {PAGE_LIMIT_MAX}")));
    }
    let since = params.get("since").or(params.get("after")).map(|v| parse_time("since", v)).transpose()?;
    let until = params.get("until").or(params.get("before")).map(|v| parse_time("until", v)).transpose()?;
    Ok(TxQuery {
        payer: account("payer")?,
        payee: account("payee")?,
        involving: account("involving")?,
        author: match account("scribe")? {
            Some(a) => Some(a),
            None => account("author")?,
        },
        description: params.get("description").map(str::to_owned),
        states,
        workflows: list("type", "types"),
        since_unix_s: since,
        until_unix_s: until,
        sort,
        descending,
        offset: params.number::<usize>("offset")?.unwrap_or(0),
        limit,
        validated_author: None,
        nothing,
    })
}

fn page_meta_links(uri: &axum::http::Uri, total: usize, offset: usize, limit: usize) -> (Value, Value) {
    let link = |offset: usize| -> String {
        let mut pairs: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                    .filter(|(k, _)| *k != "offset" && !k.is_empty())
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        pairs.push(("offset".to_owned(), offset.to_string()));
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}?{}", uri.path(), query.join("&"))
    };
    let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
    let mut links = Map::new();
    links.insert("first".to_owned(), Value::String(link(0)));
    if offset > 0 {
        links.insert("prev".to_owned(), Value::String(link(offset.saturating_sub(limit))));
    }
    if offset + limit < total {
        links.insert("next".to_owned(), Value::String(link(offset + limit)));
    }
    links.insert("last".to_owned(), Value::String(link(last)));
    let meta = json!({"number_of_results": total, "current_page": offset / limit + 1});
    (meta, Value::Object(links))
}

/// Transactions matching filters, sorted and paged.
#[utoipa::path(get, path = "/transactions", tag = "transactions",
    params(TransactionFilters),
    responses((status = 200, description = "`{data: [Transaction], meta: {number_of_results, current_page, transitions}, links: {first, prev, next, last}}`", body = crate::schema::TransactionsAnswer),
              (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn filter_transactions(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    params: Params,
) -> ApiResult<Json<Value>> {
    caller.account()?;
    let read = state.read();
    let query = TxQuery { validated_author: validated_author(&caller), ..parse_query(&params)? };
    let page = read.projections.transactions(&query);
    let data: Vec<Value> = page.items.iter().map(|tx| tx_value(tx)).collect();
    let (mut meta, links) = page_meta_links(&uri, page.total, query.offset, query.limit);
    if let (Value::Object(meta), Value::Object(t)) = (&mut meta, transitions_meta(page.items.iter().copied(), &caller))
    {
        meta.extend(t);
    }
    Ok(Json(envelope(Value::Array(data), Some(meta), Some(links))))
}

/// Entries matching filters (each with its transaction's header), sorted and paged.
#[utoipa::path(get, path = "/entries", tag = "transactions",
    params(TransactionFilters),
    responses((status = 200, description = "`{data: [EntryFull], meta: {number_of_results, current_page}, links}`", body = crate::schema::EntriesAnswer),
              (status = 403, description = "PermissionViolation: not authenticated")))]
pub async fn filter_entries(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    params: Params,
) -> ApiResult<Json<Value>> {
    caller.account()?;
    let read = state.read();
    let query = TxQuery { validated_author: validated_author(&caller), ..parse_query(&params)? };
    let page = read.projections.entries(&query);
    let data: Vec<Value> = page
        .items
        .iter()
        .map(|row| serde_json::to_value(EntryFullJson::new(row.transaction, row.index, row.entry)).expect("serialises"))
        .collect();
    let (meta, links) = page_meta_links(&uri, page.total, query.offset, query.limit);
    Ok(Json(envelope(Value::Array(data), Some(meta), Some(links))))
}

/// The entries of one transaction.
#[utoipa::path(get, path = "/entries/{uuid}", tag = "transactions",
    params(("uuid" = String, Path, description = "Transaction uuid")),
    responses((status = 200, description = "`{data: [EntryFull]}`", body = crate::schema::TransactionEntriesAnswer),
              (status = 403, description = "PermissionViolation"), (status = 404, description = "DoesNotExistViolation")))]
pub async fn transaction_entries(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(uuid): AppPath<String>,
) -> ApiResult<Json<Value>> {
    caller.account()?;
    let uuid = parse_uuid(&uuid)?;
    let read = state.read();
    let tx =
        read.projections.transaction(&uuid).ok_or_else(|| ApiError::does_not_exist("transaction", uuid.to_string()))?;
    visible(tx, &caller)?;
    let data: Vec<Value> = tx
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::to_value(EntryFullJson::new(tx, i, e)).expect("serialises"))
        .collect();
    Ok(ok(Value::Array(data)))
}

/// Filters of `/transactions` and `/entries` (documentation only; handlers parse the query map).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TransactionFilters {
    /// Entries paid by this account.
    payer: Option<String>,
    /// Entries paid to this account.
    payee: Option<String>,
    /// Entries this account pays or receives.
    involving: Option<String>,
    /// Author (`author` is accepted too).
    scribe: Option<String>,
    /// Case-insensitive substring of a description.
    description: Option<String>,
    /// Comma-separated states (`state` is accepted too).
    states: Option<String>,
    /// Comma-separated workflow ids (`type` is accepted too).
    types: Option<String>,
    /// Written at or after: unix seconds, `Y-m-d H:i:s`, `Y-m-d` or RFC 3339 (`after` too).
    since: Option<String>,
    /// Written at or before (`before` too).
    until: Option<String>,
    /// `written` (default), `version` or `quant`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    dir: Option<String>,
    /// Page size, 1 to 1000 (default 25).
    limit: Option<usize>,
    /// Results to skip.
    offset: Option<usize>,
}

// ---------------------------------------------------------------------------
// Admin

/// `POST /admin/accounts` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "carol", "key": "carol-key", "min": -100, "max": 100}))]
pub struct NewAccount {
    /// Account id: letters, digits, `_`, `-`, `.`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "carol")]
    pub id: String,
    /// Its key (sent by the account as `cc-auth`); stored only as a salted hash.
    #[schema(pattern = "^[!-~]{1,128}$", example = "carol-key")]
    pub key: String,
    /// Lower balance limit, ≤ 0 (default the node's).
    #[schema(value_type = Option<crate::schema::AmountIn>)]
    pub min: Option<Box<RawValue>>,
    /// Upper balance limit, ≥ 0 (default the node's).
    #[schema(value_type = Option<crate::schema::AmountIn>)]
    pub max: Option<Box<RawValue>>,
    /// Whether the account administers the node.
    #[serde(default)]
    pub admin: bool,
}

/// `PATCH /admin/accounts/{id}` body: any of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"min": -200, "max": 200}))]
pub struct AccountChange {
    /// New lower limit.
    #[schema(value_type = Option<crate::schema::AmountIn>)]
    pub min: Option<Box<RawValue>>,
    /// New upper limit.
    #[schema(value_type = Option<crate::schema::AmountIn>)]
    pub max: Option<Box<RawValue>>,
    /// `active` or `blocked`.
    #[schema(pattern = "^(active|blocked)$", example = "active")]
    pub status: Option<String>,
    /// A new key.
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub key: Option<String>,
    /// Soft lower limit (at most 0): crossing it is allowed, journaled and shown; `"none"` removes it.
    #[schema(value_type = Option<crate::schema::WarnLevelIn>)]
    pub warn_min: Option<Box<RawValue>>,
    /// Soft upper limit (at least 0); `"none"` removes it.
    #[schema(value_type = Option<crate::schema::WarnLevelIn>)]
    pub warn_max: Option<Box<RawValue>>,
}

/// A soft limit from a request: `"none"` is none.
fn warn_level(field: &str, raw: &RawValue) -> ApiResult<Option<Amount>> {
    if raw.get().trim() == "\"none\"" {
        return Ok(None);
    }
    parse_amount(field, raw).map(Some)
}

fn account_value(account: &Account) -> Value {
    json!({
        "id": account.id.as_str(),
        "min": amount_value(account.limits.min()),
        "max": amount_value(account.limits.max()),
        "admin": account.is_admin(),
        "status": match account.status { AccountStatus::Active => "active", AccountStatus::Blocked => "blocked" },
    })
}

fn limits(min: Amount, max: Amount) -> ApiResult<Limits> {
    Limits::new(min, max)
        .map_err(|_| ApiError::invalid_fields(&[("min", "must be <= 0".into()), ("max", "must be >= 0".into())]))
}

/// Opens a local account (admin only).
#[utoipa::path(post, path = "/admin/accounts", tag = "admin", request_body = NewAccount,
    responses((status = 201, description = "`{data: {id, min, max, admin, status}}`", body = crate::schema::AccountAnswer),
              (status = 400, description = "InvalidFieldsViolation (bad id, limits, key, or the id exists)"),
              (status = 401, description = "Not authenticated"), (status = 403, description = "Not an admin")))]
pub async fn admin_new_account(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<NewAccount>,
) -> ApiResult<Response> {
    caller.admin()?;
    let id = AccountId::new(&body.id).map_err(|e| ApiError::invalid_field("id", e.to_string()))?;
    auth::check_new_key(&body.key)?;
    let (default_min, default_max) = state.default_limits();
    let min = body.min.as_deref().map(|v| parse_amount("min", v)).transpose()?.unwrap_or(default_min);
    let max = body.max.as_deref().map(|v| parse_amount("max", v)).transpose()?.unwrap_or(default_max);
    let limits = limits(min, max)?;
    let key_hash = auth::new_key_hash(&body.key);
    let kind = AccountKind::User { admin: body.admin };
    submit(&state, NodeCommand::OpenAccount { id: id.clone(), kind, limits, key_hash }).await?;
    let read = state.read();
    let account = read.projections.account(&id).ok_or_else(|| ApiError::failure("opened account not found"))?;
    Ok((StatusCode::CREATED, Json(envelope(account_value(account), None, None))).into_response())
}

/// Changes an account's limits, status or key (admin only); all or nothing.
#[utoipa::path(patch, path = "/admin/accounts/{id}", tag = "admin", request_body = AccountChange,
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "`{data: {id, min, max, admin, status}}`", body = crate::schema::AccountAnswer),
              (status = 400, description = "InvalidFieldsViolation"), (status = 404, description = "No such account"), (status = 403, description = "Not an admin")))]
pub async fn admin_change_account(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<AccountChange>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let id = AccountId::new(&id).map_err(|_| ApiError::does_not_exist("account", id))?;
    let current = state
        .read()
        .projections
        .account(&id)
        .cloned()
        .ok_or_else(|| ApiError::does_not_exist("account", id.as_str()))?;
    let mut commands = Vec::new();
    if body.min.is_some() || body.max.is_some() {
        let min = body.min.as_deref().map(|v| parse_amount("min", v)).transpose()?.unwrap_or(current.limits.min());
        let max = body.max.as_deref().map(|v| parse_amount("max", v)).transpose()?.unwrap_or(current.limits.max());
        limits(min, max)?;
        commands.push(Command::ChangeLimits { id: id.clone(), min, max });
    }
    if let Some(status) = &body.status {
        let status = match status.as_str() {
            "active" => AccountStatus::Active,
            "blocked" => AccountStatus::Blocked,
            _ => return Err(ApiError::invalid_field("status", "active or blocked")),
        };
        commands.push(Command::ChangeStatus { id: id.clone(), status });
    }
    if let Some(key) = &body.key {
        auth::check_new_key(key)?;
        commands.push(Command::ChangeKey { id: id.clone(), key_hash: auth::new_key_hash(key) });
    }
    let warn = if body.warn_min.is_some() || body.warn_max.is_some() {
        let current = state.read().projections.facts().warn_limits(&id).unwrap_or_default();
        let min = body.warn_min.as_deref().map(|v| warn_level("warn_min", v)).transpose()?.unwrap_or(current.min);
        let max = body.warn_max.as_deref().map(|v| warn_level("warn_max", v)).transpose()?.unwrap_or(current.max);
        Some(ledger::warn::WarnLimits { min, max })
    } else {
        None
    };
    if commands.is_empty() && warn.is_none() {
        return Err(ApiError::invalid_field(
            "body",
            "nothing to change: give min, max, status, key, warn_min or warn_max",
        ));
    }
    submit(&state, NodeCommand::ChangeAccount { id: id.clone(), commands, warn }).await?;
    let read = state.read();
    let account = read.projections.account(&id).ok_or_else(|| ApiError::failure("account not found"))?;
    Ok(ok(account_value(account)))
}

/// Unknown routes.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::does_not_exist("route", uri.path())
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "CCOtherViolation").with("translated", "method not allowed here")
}
