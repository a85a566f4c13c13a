//! The node routes: the operations a caller may use (`OPTIONS /`), `/about`
//! (forwarded along the tree for another node), `/workflows`, `/absolutepath`
//! and `/handshake`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, on, MethodFilter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{ok, Params};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::workflow::{workflow_hash, workflow_json};

/// The node's routes: `OPTIONS /` and what a client asks about the node.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", on(MethodFilter::OPTIONS, permitted_endpoints))
        .route("/about", get(about))
        .route("/workflows", get(workflows))
        .route("/absolutepath", get(absolute_path))
        .route("/handshake", get(handshake))
}

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
