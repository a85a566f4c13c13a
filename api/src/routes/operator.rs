//! What the web app's operator and statement screens need beyond the Credit
//! Commons routes (issue 12): the list of accounts with their status, the
//! node's health, and CSV exports (a member's statement, every account, every
//! transaction). The CSV text is built by pure functions over the read model.

use std::path::Path;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ledger::{Account, AccountId, AccountKind, AccountStatus, Amount, State as TxState, Transaction};
use projections::{Projections, Query as TxQuery};
use serde_json::{json, Value};

use super::Params;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::{amount_value, envelope, format_rfc3339};

/// The operator routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/accounts", get(admin_list_accounts))
        .route("/admin/health", get(admin_health))
        .route("/admin/warnings", get(admin_warnings))
        .route("/account/warnings", get(account_warnings))
        .route("/account/statement", get(statement))
        .route("/admin/export/accounts", get(export_accounts))
        .route("/admin/export/transactions", get(export_transactions))
}

/// The kind of an account, as the operator screens show it.
fn kind_name(account: &Account) -> &'static str {
    match account.kind {
        AccountKind::User { admin: true } => "admin",
        AccountKind::User { admin: false } => "member",
        _ => "node",
    }
}

fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Blocked => "blocked",
    }
}

/// Every local account with its limits, status and balances (admin only).
#[utoipa::path(get, path = "/admin/accounts", tag = "admin",
    responses((status = 200, description = "`{data: [{id, kind, admin, status, min, max, balance, pending, warn_min, warn_max}]}`, by id", body = crate::schema::AccountListAnswer),
              (status = 403, description = "Not an admin")))]
pub async fn admin_list_accounts(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let read = state.read();
    let mut accounts: Vec<&Account> = read.projections.accounts().collect();
    accounts.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let data: Vec<Value> = accounts
        .into_iter()
        .map(|account| {
            let balances = read.projections.balances(&account.id).unwrap_or_default();
            let warn = read.projections.facts().warn_limits(&account.id).unwrap_or_default();
            json!({
                "warn_min": warn.min.map(amount_value),
                "warn_max": warn.max.map(amount_value),
                "id": account.id.as_str(),
                "kind": kind_name(account),
                "admin": account.is_admin(),
                "status": status_name(account.status),
                "min": amount_value(account.limits.min()),
                "max": amount_value(account.limits.max()),
                "balance": amount_value(balances.completed),
                "pending": amount_value(balances.pending),
            })
        })
        .collect();
    Ok(Json(envelope(Value::Array(data), None, None)))
}

/// Bytes held by the regular files under `dir` (0 when it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The node's health for its operators (admin only): the journal head, the
/// read model, whether it writes, and the disk its data takes.
#[utoipa::path(get, path = "/admin/health", tag = "admin",
    responses((status = 200, description = "`{data: {name, writing, read_only, writer: {state: writing|following|stopped, reason}, journal: {head_seq, last_recorded_at, bytes}, projections: {seq, bytes, snapshots: {loaded_seq, folded_at_start, saved_seq}}, accounts, transactions, neighbours, closed_links: {node: evidence}}}`", body = crate::schema::HealthAnswer),
              (status = 403, description = "Not an admin")))]
pub async fn admin_health(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let head = *state.durable_head().borrow();
    let (seq, last_us, accounts, transactions, neighbours, closed, snapshots) = {
        let read = state.read();
        let neighbours: Vec<String> = read.neighbours().iter().map(|n| n.as_str().to_owned()).collect();
        let closed: serde_json::Map<String, Value> =
            read.neighbours().iter().filter_map(|n| read.closed(n).map(|e| (n.as_str().to_owned(), e))).collect();
        (
            read.projections.seq(),
            read.projections.last_at_us(),
            read.projections.account_count(),
            read.projections.transaction_count(),
            neighbours,
            closed,
            json!({
                "loaded_seq": read.snapshots.loaded_seq,
                "folded_at_start": read.snapshots.folded_at_start,
                "saved_seq": match read.snapshots.saved_seq.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => Value::Null,
                    n => Value::from(n),
                },
            }),
        )
    };
    let data_dir = state.data_dir();
    let read_only = state.read_only().map(str::to_owned);
    let writer = state.writer_state();
    let writing = state.writing();
    let data = json!({
        "name": state.name(),
        "writing": writing,
        "read_only": read_only,
        "writer": {"state": writer.name(), "reason": writer.reason()},
        "journal": {
            "head_seq": head,
            "last_recorded_at": if last_us == 0 { Value::Null } else { Value::String(format_rfc3339(last_us)) },
            "bytes": dir_bytes(&crate::app::journal_dir(data_dir)),
        },
        "projections": {"seq": seq, "bytes": dir_bytes(&crate::app::projections_dir(data_dir)), "snapshots": snapshots},
        "accounts": accounts,
        "transactions": transactions,
        "neighbours": neighbours,
        "closed_links": closed,
    });
    Ok(Json(envelope(data, None, None)))
}

// ---------------------------------------------------------------------------
// Soft limits (issue 12, item 5)

fn crossing_value(c: &crate::read_model::Crossing) -> Value {
    json!({
        "seq": c.seq,
        "at": format_rfc3339(c.at_us),
        "account": c.id.as_str(),
        "uuid": c.uuid.to_string(),
        "side": if c.below { "below" } else { "above" },
        "limit": amount_value(c.limit),
        "balance": amount_value(c.balance),
    })
}

/// Every soft limit crossed, newest first (admin only).
#[utoipa::path(get, path = "/admin/warnings", tag = "admin",
    responses((status = 200, description = "`{data: [{seq, at, account, uuid, side: below|above, limit, balance}]}`, newest first", body = crate::schema::WarningsAnswer),
              (status = 403, description = "Not an admin")))]
pub async fn admin_warnings(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let read = state.read();
    let data: Vec<Value> = read.projections.facts().crossings.iter().rev().map(crossing_value).collect();
    Ok(Json(envelope(Value::Array(data), None, None)))
}

/// An account's soft limits, whether its balance is beyond one now, and its
/// crossings, newest first: the caller's own, or (admins) any local account's.
#[utoipa::path(get, path = "/account/warnings", tag = "accounts",
    params(("acc_path" = Option<String>, Query, description = "A local account; default the caller (others: admins only)")),
    responses((status = 200, description = "`{data: {account, warn_min, warn_max, beyond, crossings}}`", body = crate::schema::AccountWarningsAnswer),
              (status = 403, description = "PermissionViolation: another's account, or not authenticated"),
              (status = 404, description = "DoesNotExistViolation")))]
pub async fn account_warnings(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    let account = local_account(&state, &caller, &params)?;
    let read = state.read();
    let warn = read.projections.facts().warn_limits(&account).unwrap_or_default();
    let balance = read.projections.balances(&account).unwrap_or_default().completed;
    let beyond = warn.beyond(balance).map(|(below, _)| if below { "below" } else { "above" });
    let crossings: Vec<Value> =
        read.projections.facts().crossings.iter().rev().filter(|c| c.id == account).map(crossing_value).collect();
    let data = json!({
        "account": account.as_str(),
        "warn_min": warn.min.map(amount_value),
        "warn_max": warn.max.map(amount_value),
        "beyond": beyond,
        "crossings": crossings,
    });
    Ok(Json(envelope(data, None, None)))
}

/// The local account a member's read names (`acc_path`, default the caller;
/// another's only for admins), checked to exist.
fn local_account(state: &AppState, caller: &Caller, params: &Params) -> ApiResult<AccountId> {
    let me = caller.account()?.clone();
    for (key, value) in &params.0 {
        if key != "acc_path" {
            return Err(ApiError::invalid_field(key, "unknown parameter; known: acc_path"));
        }
        if value.len() > super::QUERY_VALUE_BYTES_MAX {
            return Err(ApiError::invalid_field(key, "value too long"));
        }
    }
    let account = match params.0.get("acc_path").map(String::as_str).filter(|v| !v.is_empty()) {
        None => me.clone(),
        Some(path) => {
            let name = path.strip_prefix(&format!("{}/", state.name())).unwrap_or(path);
            AccountId::new(name).map_err(|_| ApiError::invalid_field("acc_path", "not a local account name"))?
        }
    };
    if account != me && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    if state.read().projections.account(&account).is_none() {
        return Err(ApiError::does_not_exist("account", account.as_str()));
    }
    Ok(account)
}

// ---------------------------------------------------------------------------
// CSV

/// One CSV field: quoted when it holds a comma, quote or line break; a text
/// field starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so
/// that a spreadsheet shows it rather than evaluating it.
fn field(out: &mut String, text: &str, is_text: bool) {
    let guarded = is_text && text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = guarded || text.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// A row of fields: `(text, is_free_text)`.
fn row(out: &mut String, fields: &[(&str, bool)]) {
    for (i, (text, is_text)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, text, *is_text);
    }
    out.push_str("\r\n");
}

/// Columns of a statement.
pub const STATEMENT_COLUMNS: &[&str] =
    &["written", "uuid", "state", "type", "payer", "payee", "description", "amount", "balance"];

/// A statement of `account`: one row per entry of a transaction naming it as
/// payer or payee (fees included), oldest first (then by uuid and entry);
/// `amount` is signed from the account's side and `balance` is the running
/// completed balance after the row (empty for rows not completed). The
/// validated transactions of others are left out (they exist only for their
/// author).
pub fn statement_csv(projections: &Projections, account: &AccountId) -> String {
    let query = TxQuery {
        involving: Some(account.clone()),
        descending: false,
        limit: 0,
        validated_author: Some(account.clone()),
        ..TxQuery::default()
    };
    let page = projections.entries(&query);
    let mut out = String::new();
    let header: Vec<(&str, bool)> = STATEMENT_COLUMNS.iter().map(|c| (*c, false)).collect();
    row(&mut out, &header);
    let mut balance = Amount::ZERO;
    for r in &page.items {
        let tx = r.transaction;
        let entry = r.entry;
        let mut signed = Amount::ZERO;
        if &entry.payee == account {
            signed = signed.checked_add(entry.quant).unwrap_or(signed);
        }
        if &entry.payer == account {
            signed = signed.checked_sub(entry.quant).unwrap_or(signed);
        }
        let running = if tx.state == TxState::Completed {
            balance = balance.checked_add(signed).unwrap_or(balance);
            balance.to_string()
        } else {
            String::new()
        };
        let written = format_rfc3339(tx.written_unix_s.saturating_mul(1_000_000));
        let (uuid, amount, workflow) = (tx.uuid.to_string(), signed.to_string(), tx.workflow.id.to_string());
        row(
            &mut out,
            &[
                (&written, false),
                (&uuid, false),
                (tx.state.name(), false),
                (&workflow, false),
                (party(entry.payer.as_str(), &entry.remote), true),
                (party(entry.payee.as_str(), &entry.remote), true),
                (&entry.description, true),
                (&amount, false),
                (&running, false),
            ],
        );
    }
    out
}

/// A party as the entry names it: its remote path when it has one.
fn party<'a>(id: &'a str, remote: &'a std::collections::BTreeMap<String, String>) -> &'a str {
    remote.get(id).map_or(id, String::as_str)
}

/// Columns of the accounts export.
pub const ACCOUNTS_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "status",
    "min",
    "max",
    "balance",
    "pending_balance",
    "trades",
    "gross_in",
    "gross_out",
    "partners",
];

/// Every local account, by id.
pub fn accounts_csv(projections: &Projections) -> String {
    let mut accounts: Vec<&Account> = projections.accounts().collect();
    accounts.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let mut out = String::new();
    let header: Vec<(&str, bool)> = ACCOUNTS_COLUMNS.iter().map(|c| (*c, false)).collect();
    row(&mut out, &header);
    for account in accounts {
        let balances = projections.balances(&account.id).unwrap_or_default();
        let stats = projections.stats(&account.id);
        let completed = stats.map(|s| &s.completed);
        let (trades, gross_in, gross_out, partners) = completed.map_or_else(
            || ("0".to_owned(), "0".to_owned(), "0".to_owned(), "0".to_owned()),
            |s| (s.trades.to_string(), s.gross_in.to_string(), s.gross_out.to_string(), s.partners.to_string()),
        );
        let (min, max) = (account.limits.min().to_string(), account.limits.max().to_string());
        let (balance, pending) = (balances.completed.to_string(), balances.pending.to_string());
        row(
            &mut out,
            &[
                (account.id.as_str(), false),
                (kind_name(account), false),
                (status_name(account.status), false),
                (&min, false),
                (&max, false),
                (&balance, false),
                (&pending, false),
                (&trades, false),
                (&gross_in, false),
                (&gross_out, false),
                (&partners, false),
            ],
        );
    }
    out
}

/// Columns of the transactions export.
pub const TRANSACTIONS_COLUMNS: &[&str] =
    &["written", "uuid", "version", "state", "type", "author", "entry", "payer", "payee", "quant", "description"];

/// Every transaction, one row per entry (entry 0 is the primary one), oldest first.
pub fn transactions_csv(projections: &Projections) -> String {
    let query = TxQuery { descending: false, limit: 0, validated_author: None, ..TxQuery::default() };
    let page = projections.entries(&query);
    let mut out = String::new();
    let header: Vec<(&str, bool)> = TRANSACTIONS_COLUMNS.iter().map(|c| (*c, false)).collect();
    row(&mut out, &header);
    for r in &page.items {
        let tx: &Transaction = r.transaction;
        let entry = r.entry;
        let written = format_rfc3339(tx.written_unix_s.saturating_mul(1_000_000));
        let (uuid, version, workflow) = (tx.uuid.to_string(), tx.version.to_string(), tx.workflow.id.to_string());
        let (index, quant) = (r.index.to_string(), entry.quant.to_string());
        row(
            &mut out,
            &[
                (&written, false),
                (&uuid, false),
                (&version, false),
                (tx.state.name(), false),
                (&workflow, false),
                (tx.author.as_str(), false),
                (&index, false),
                (party(entry.payer.as_str(), &entry.remote), true),
                (party(entry.payee.as_str(), &entry.remote), true),
                (&quant, false),
                (&entry.description, true),
            ],
        );
    }
    out
}

fn csv_response(name: &str, body: String) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `GET /account/statement[?acc_path=ID]`: the caller's statement as CSV; an
/// admin may name any local account.
pub async fn statement(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Response> {
    let account = local_account(&state, &caller, &params)?;
    let read = state.read();
    let body = statement_csv(&read.projections, &account);
    drop(read);
    Ok(csv_response(&format!("statement-{}.csv", account.as_str()), body))
}

/// `GET /admin/export/accounts`: every account as CSV (admin only).
pub async fn export_accounts(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.admin()?;
    let body = accounts_csv(&state.read().projections);
    Ok(csv_response(&format!("{}-accounts.csv", state.name()), body))
}

/// `GET /admin/export/transactions`: every transaction's entries as CSV (admin only).
pub async fn export_transactions(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.admin()?;
    let body = transactions_csv(&state.read().projections);
    Ok(csv_response(&format!("{}-transactions.csv", state.name()), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str, is_text: bool) -> String {
        let mut out = String::new();
        field(&mut out, text, is_text);
        out
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(one("bread", true), "bread");
        assert_eq!(one("a,b", true), "\"a,b\"");
        assert_eq!(one("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(one("two\nlines", true), "\"two\nlines\"");
    }

    #[test]
    fn formulas_in_free_text_are_defused_but_amounts_are_not() {
        assert_eq!(one("=HYPERLINK(\"x\")", true), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(one("+1", true), "\"'+1\"");
        assert_eq!(one("-12.5", false), "-12.5");
    }

    #[test]
    fn rows_end_with_crlf() {
        let mut out = String::new();
        row(&mut out, &[("a", false), ("b,c", true)]);
        assert_eq!(out, "a,\"b,c\"\r\n");
    }
}
