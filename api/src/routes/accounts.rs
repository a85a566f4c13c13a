//! The account routes: names, summaries, limits, history and balances. A
//! path that names another node's account is forwarded to the neighbour on
//! the way (`target`, `forward_read`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use ledger::{Account, AccountId, AccountKind, Amount};
use projections::TradeStats;
use serde_json::{json, Map, Value};

use super::{ok, Params};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::{amount_value, decimal_value, envelope, format_datetime, format_rfc3339, parse_rfc3339};

/// Most names `/account/names` returns.
pub const NAMES_LIMIT_MAX: usize = 1000;
/// Most points `/account/history` samples.
pub const HISTORY_SAMPLES_MAX: i64 = 10_000;

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/names", get(account_names))
        .route("/account/summary", get(account_summary))
        .route("/account/limits", get(account_limits))
        .route("/account/history", get(account_history))
        .route("/account/balance", get(account_balance))
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

/// Whether an account is a local user (not a node account).
pub fn is_user(account: &Account) -> bool {
    matches!(account.kind, AccountKind::User { .. })
}

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
            .map(|a| if is_user(a) { a.id.to_string() } else { format!("{}/", a.id) })
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
    let timeline = p.timeline(&id).unwrap_or_default();
    let mut points: Vec<(u64, Amount)> = Vec::new();
    match samples {
        0 => points.extend(timeline.iter().map(|t| (t.at_us, t.balance))),
        -1 => {
            let mut previous = Amount::ZERO;
            for t in &timeline {
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
