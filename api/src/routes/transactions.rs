//! The transaction routes: create, read, move (a transaction that crosses
//! nodes through the federation flows), filter and page. `validated`
//! transactions are visible only to their author and admins (`visible`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use ledger::{allowed_actors, AccountId, Actor, Proposal, State as TxState, Transaction, TxId, Violation, WorkflowId};
use projections::{Query as TxQuery, Sort};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;

use super::{ok, AppPath, Params};
use crate::app::{submit, violation_error, AppState};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::AppJson;
use crate::machine::{NodeCommand, NodeOutput};
use crate::wire::{
    envelope, parse_amount, parse_metadata, parse_rfc3339, parse_state, EntryFullJson, NewTransaction, TransactionJson,
};

/// Default page size of `/transactions` and `/entries`.
pub const PAGE_LIMIT_DEFAULT: usize = 25;
/// Largest page size.
pub const PAGE_LIMIT_MAX: usize = 1000;

/// The transaction routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/transaction", post(new_transaction))
        .route("/transaction/{uuid}", get(get_transaction))
        .route("/transaction/{uuid}/{dest_state}", patch(state_change))
        .route("/transactions", get(filter_transactions))
        .route("/entries", get(filter_entries))
        .route("/entries/{uuid}", get(transaction_entries))
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
    transition_links(tx, caller).into_iter().map(|(name, link)| (name.to_owned(), Value::String(link))).collect()
}

/// As [`transitions`], as plain pairs, in state-name order.
fn transition_links(tx: &Transaction, caller: &Caller) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
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
                out.insert(name, format!("/transaction/{}/{name}", tx.uuid));
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
        let flow_state = state.clone();
        let flow = state.spawn_flow(async move { crate::federation::propose(&flow_state, *plan, "").await });
        flow.await.unwrap_or_else(|_| Err(ApiError::unavailable("the node is stopping")))?;
    }
    let read = state.read();
    let tx = read.projections.transaction(&uuid).ok_or_else(|| ApiError::failure("written transaction not found"))?;
    let status = if tx.state == TxState::Validated { StatusCode::OK } else { StatusCode::CREATED };
    // POST answers the transitions of this one transaction, not keyed by uuid
    // (the reference's shape), serialised straight from the transaction.
    let body = Created {
        data: TransactionJson::from_tx(tx),
        meta: CreatedMeta { transitions: transition_links(tx, &caller) },
    };
    Ok((status, Json(body)).into_response())
}

/// The answer to `POST /transaction` (`NewTransactionAnswer` in the OpenAPI),
/// written without building a `serde_json::Value` first.
#[derive(serde::Serialize)]
struct Created {
    data: TransactionJson,
    meta: CreatedMeta,
}

#[derive(serde::Serialize)]
struct CreatedMeta {
    transitions: BTreeMap<&'static str, String>,
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
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let named = match (header("cc-attempt"), header("cc-boot")) {
            (Some(attempt), Some(boot)) => {
                if !crate::attempts::valid_name(&attempt) || !crate::attempts::valid_name(&boot) {
                    return Err(ApiError::invalid_field("cc-attempt", "1 to 64 letters, digits or dashes"));
                }
                Some((attempt, boot))
            }
            _ => None,
        };
        let (flow_state, account) = (state.clone(), account.clone());
        let flow = state.spawn_flow(async move {
            crate::federation::relayed_state_change(&flow_state, account, &claimed, uuid, to, &trace, named).await
        });
        return flow.await.unwrap_or_else(|_| Err(ApiError::unavailable("the node is stopping")));
    }
    let was_validated = state.read().projections.transaction(&uuid).is_some_and(|tx| tx.state == TxState::Validated);
    let flow_state = state.clone();
    let flow = state
        .spawn_flow(async move { crate::federation::change_state(&flow_state, uuid, to, actor, None, &trace).await });
    flow.await.unwrap_or_else(|_| Err(ApiError::unavailable("the node is stopping")))?;
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
