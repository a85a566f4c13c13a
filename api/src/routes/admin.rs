//! Account administration: opening a local account and changing its limits,
//! status, key or soft limits (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use ledger::{Account, AccountId, AccountKind, AccountStatus, Amount, Command, Limits};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{ok, AppPath};
use crate::app::{submit, AppState};
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::http::AppJson;
use crate::machine::NodeCommand;
use crate::wire::{amount_value, envelope, parse_amount};

/// The account administration routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/accounts", post(admin_new_account))
        .route("/admin/accounts/{id}", patch(admin_change_account))
}

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
