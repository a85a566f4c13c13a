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
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::Params;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use journal::Store as _;

use crate::wire::{envelope, events, format_rfc3339};

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

#[utoipa::path(get, path = "/replay/events", tag = "operations",
    params(("after" = Option<u64>, Query, description = "Records after this seq (default 0)"),
           ("limit" = Option<u64>, Query, description = "Page size, 1 to 1000 (default 100)"),
           ("follow" = Option<bool>, Query, description = "Stream newline-delimited JSON that continues live")),
    responses((status = 200, description = "`{data: [{seq, recorded_at, recorded_at_us, prev_hash, hash, payload, event}], meta: {head, identity, genesis}}`, or NDJSON (one EventRecord a line) with follow=true",
               content((crate::schema::EventsAnswer = "application/json"), (crate::schema::EventRecord = "application/x-ndjson"))),
              (status = 401, description = "Not authenticated"), (status = 403, description = "Not an admin")))]
/// Journal records after `after`, with the head (admins only). With
/// `follow=true` the answer is newline-delimited JSON, one record per line,
/// that continues with new records as they become durable until the client
/// disconnects or the node shuts down.
pub async fn events(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Response> {
    caller.admin()?;
    for key in params.0.keys() {
        if !["after", "limit", "follow"].contains(&key.as_str()) {
            return Err(ApiError::invalid_field(key, "unknown parameter; known: after, limit, follow"));
        }
    }
    let after = number(&params, "after")?.unwrap_or(0);
    let limit = number(&params, "limit")?.unwrap_or(EVENTS_LIMIT_DEFAULT);
    if limit == 0 || limit > EVENTS_LIMIT_MAX {
        return Err(ApiError::invalid_field("limit", format!("between 1 and {EVENTS_LIMIT_MAX}")));
    }
    let follow = match params.0.get("follow").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::invalid_field("follow", "true or false")),
    };
    let dir = JournalAt { location: state.store_location().clone(), dir: state.data_dir().to_owned() };
    if follow {
        return Ok(follow_stream(state, dir, after));
    }
    let durable = *state.durable_head().borrow();
    let page = tokio::task::spawn_blocking(move || read_page(dir, after, limit, durable))
        .await
        .map_err(|_| ApiError::failure("reading the journal failed"))??;
    Ok(Json(page).into_response())
}

/// Where the node's journal is: its store, and its data directory (whose
/// `journal/` holds the segment files).
#[derive(Debug, Clone)]
struct JournalAt {
    location: crate::store::StoreLocation,
    dir: PathBuf,
}

/// The live NDJSON form: pages of records, then waits for the durable head to move.
fn follow_stream(state: AppState, dir: JournalAt, after: u64) -> Response {
    struct Cursor {
        state: AppState,
        dir: JournalAt,
        after: u64,
        durable: tokio::sync::watch::Receiver<u64>,
        stop: tokio::sync::watch::Receiver<bool>,
    }
    let cursor = Cursor { durable: state.durable_head(), stop: state.shutting_down(), state, dir, after };
    let stream = futures_util::stream::unfold(Some(cursor), |cursor| async move {
        let mut c = cursor?;
        loop {
            if *c.stop.borrow() {
                return None;
            }
            let head = *c.durable.borrow_and_update();
            if c.after < head {
                let (dir, after) = (c.dir.clone(), c.after);
                let page = tokio::task::spawn_blocking(move || read_page(dir, after, EVENTS_LIMIT_MAX, head)).await;
                let Ok(Ok(page)) = page else { return None };
                let records = page["data"].as_array().cloned().unwrap_or_default();
                let mut text = String::new();
                for record in &records {
                    text.push_str(&record.to_string());
                    text.push('\n');
                }
                c.after = records.last().and_then(|r| r["seq"].as_u64()).unwrap_or(head);
                let _ = &c.state;
                return Some((Ok::<_, std::io::Error>(text), Some(c)));
            }
            tokio::select! {
                changed = c.durable.changed() => if changed.is_err() { return None },
                _ = c.stop.changed() => return None,
                // A blank line now and then keeps proxies from closing an idle feed.
                _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => return Some((Ok("\n".to_owned()), Some(c))),
            }
        }
    });
    ([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(stream))
        .into_response()
}

/// Records after `after`, at most `limit`, never past `durable` (a record on
/// disk but not yet acknowledged stays invisible), read through a second,
/// read-only handle on the node's store.
fn read_page(at: JournalAt, after: u64, limit: u64, durable: u64) -> ApiResult<Value> {
    let failure = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "replay feed: reading the journal failed");
        ApiError::failure("reading the journal failed")
    };
    let journal = crate::store::open_read_only(&at.location, &at.dir).map_err(|e| failure(&e))?;
    let mut head = journal.head();
    if head.seq > durable && durable == 0 {
        head = journal::Head { seq: 0, hash: journal.genesis(), recorded_at_us: 0 };
    } else if head.seq > durable {
        head = journal
            .read(durable)
            .map(|r| journal::Head { seq: r.seq, hash: r.hash, recorded_at_us: r.recorded_at_us })
            .map_err(|e| failure(&e))?;
    }
    let mut data = Vec::new();
    if after < head.seq {
        let last = after.saturating_add(limit).min(head.seq);
        for record in journal.range(after + 1, last).map_err(|e| failure(&e))? {
            let r = record.map_err(|e| failure(&e))?;
            let (event, error) = match ledger::decode_event(&r.payload) {
                Ok(event) => (events::event_json(&event), Value::Null),
                Err(e) => (Value::Null, Value::String(e.to_string())),
            };
            let mut item = json!({
                "seq": r.seq,
                "recorded_at": format_rfc3339(r.recorded_at_us),
                "recorded_at_us": r.recorded_at_us,
                "prev_hash": r.prev_hash.to_hex(),
                "hash": r.hash.to_hex(),
                "payload": events::hex(&r.payload),
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
