//! The replay routes: the journal's event feed for auditors and admins.
//!
//! `GET /replay/events?after=SEQ&limit=N` returns the journal records after
//! `SEQ` (at most `N`), each with its chain fields, its raw payload (hex) and
//! the event as JSON, plus the journal head, identity and genesis hash, so an
//! auditor can recompute `hash = blake3(prev_hash ‖ seq ‖ recorded_at_us ‖
//! payload)` and the links from the records alone. Admin accounts only.
//!
//! Records are read through a second, read-only journal handle (the writer
//! owns the journal); only acknowledged records are visible.

use std::path::PathBuf;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::node::{journal_dir, AppState};
use crate::routes::Params;
use crate::wire::{envelope, format_rfc3339};

/// Default page size of `/replay/events`.
pub const EVENTS_LIMIT_DEFAULT: u64 = 100;
/// Largest page size of `/replay/events`.
pub const EVENTS_LIMIT_MAX: u64 = 1000;

/// The replay routes, to merge into the main router.
pub fn router() -> Router<AppState> {
    Router::new().route("/replay/events", get(events))
}

fn number(params: &Params, key: &str) -> ApiResult<Option<u64>> {
    match params.0.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| ApiError::invalid_field(key, "expected a whole number")),
    }
}

/// Journal records after `after`, with the head (admins only).
async fn events(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    caller.admin()?;
    for key in params.0.keys() {
        if !["after", "limit"].contains(&key.as_str()) {
            return Err(ApiError::invalid_field(key, "unknown parameter; known: after, limit"));
        }
    }
    let after = number(&params, "after")?.unwrap_or(0);
    let limit = number(&params, "limit")?.unwrap_or(EVENTS_LIMIT_DEFAULT);
    if limit == 0 || limit > EVENTS_LIMIT_MAX {
        return Err(ApiError::invalid_field("limit", format!("between 1 and {EVENTS_LIMIT_MAX}")));
    }
    let dir = journal_dir(state.data_dir());
    let page = tokio::task::spawn_blocking(move || read_page(dir, after, limit))
        .await
        .map_err(|_| ApiError::failure("reading the journal failed"))??;
    Ok(Json(page))
}

fn read_page(dir: PathBuf, after: u64, limit: u64) -> ApiResult<Value> {
    let failure = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "replay feed: reading the journal failed");
        ApiError::failure("reading the journal failed")
    };
    let journal = journal::Journal::open_read_only(&dir).map_err(|e| failure(&e))?;
    let head = journal.head();
    let mut data = Vec::new();
    if after < head.seq {
        let last = after.saturating_add(limit).min(head.seq);
        for record in journal.range(after + 1, last).map_err(|e| failure(&e))? {
            let r = record.map_err(|e| failure(&e))?;
            let (event, error) = match ledger::decode_event(&r.payload) {
                Ok(event) => (replay::json::event_json(&event), Value::Null),
                Err(e) => (Value::Null, Value::String(e.to_string())),
            };
            let mut item = json!({
                "seq": r.seq,
                "recorded_at": format_rfc3339(r.recorded_at_us),
                "recorded_at_us": r.recorded_at_us,
                "prev_hash": r.prev_hash.to_hex(),
                "hash": r.hash.to_hex(),
                "payload": replay::json::hex(&r.payload),
                "event": event,
            });
            if !error.is_null() {
                item["decode_error"] = error;
            }
            data.push(item);
        }
    }
    let meta = json!({
        "head": {"seq": head.seq, "hash": head.hash.to_hex()},
        "identity": journal.identity(),
        "genesis": journal.genesis().to_hex(),
    });
    Ok(envelope(Value::Array(data), Some(meta), None))
}
