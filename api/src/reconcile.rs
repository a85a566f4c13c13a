//! Reconciling federation links: each side serves the ordered versions it
//! wrote on a link (`GET /replay/link/{node}`); a node compares its own with
//! its neighbour's (`replay::reconcile`), copies the versions it missed
//! through the normal decide/append path (`Command::Reconcile`, which checks
//! that the copy reproduces the neighbour's hash), and closes the link on a
//! true divergence until an admin reopens it.
//!
//! It runs at start, periodically, when a neighbour answers
//! `HashMismatchFailure`, and on demand (`POST /replay/reconcile/{node}`,
//! `ccnode reconcile`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use ledger::{AccountId, Command};
use replay::reconcile::{reconcile, LinkVersion, Verdict};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::machine::NodeCommand;
use crate::peers::{hash_at, recent_hashes};
use crate::routes::{AppPath, Params};
use crate::wire::envelope;
use ledger::ratchet::{hex, unhex};

/// Most link versions served per page.
pub const LINK_PAGE_MAX: usize = 10_000;

/// Default seconds between reconciliation passes over every link.
pub const RECONCILE_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);

fn version_json(v: &LinkVersion) -> Value {
    json!({"uuid": v.uuid.to_string(), "version": v.version, "state": v.state.letter().to_string(),
           "md5": hex(&v.md5), "blake3": hex(&v.blake3)})
}

fn version_from_json(v: &Value) -> Option<LinkVersion> {
    let uuid = uuid::Uuid::parse_str(v["uuid"].as_str()?).ok().map(ledger::TxId)?;
    let version = u32::try_from(v["version"].as_u64()?).ok()?;
    let state = ledger::State::parse(v["state"].as_str()?)?;
    Some(LinkVersion {
        uuid,
        version,
        state,
        md5: unhex::<16>(v["md5"].as_str()?)?,
        blake3: unhex::<32>(v["blake3"].as_str()?)?,
    })
}

/// The versions written on the link with `node`, for that node only. It proves
/// who it is with the hash at position `after` of the link (the agreed initial
/// hash for 0), which works even when the two heads differ.
#[utoipa::path(get, path = "/replay/link/{node}", tag = "federation",
    params(("node" = String, Path, description = "The calling neighbour"), ("after" = Option<usize>, Query, description = "Versions to skip"),
           ("limit" = Option<usize>, Query, description = "Page size (up to 10000)")),
    responses((status = 200, description = "`{data: [{uuid, version, state, md5, blake3}], meta: {count, head}}`", body = crate::schema::LinkFeedAnswer),
              (status = 403, description = "PermissionViolation: not that neighbour"),
              (status = 409, description = "HashMismatchFailure: the caller's hash at `after` is not ours")))]
pub async fn link_feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(node): AppPath<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let caller = headers.get("cc-node").and_then(|v| v.to_str().ok()).unwrap_or("");
    let hash = headers.get("last-hash").and_then(|v| v.to_str().ok()).unwrap_or("");
    if caller != node {
        return Err(ApiError::forbidden());
    }
    let after = params
        .0
        .get("after")
        .map(|v| v.parse::<usize>())
        .transpose()
        .map_err(|_| ApiError::invalid_field("after", "a number"))?
        .unwrap_or(0);
    let limit = params
        .0
        .get("limit")
        .map(|v| v.parse::<usize>())
        .transpose()
        .map_err(|_| ApiError::invalid_field("limit", "a number"))?
        .unwrap_or(LINK_PAGE_MAX)
        .clamp(1, LINK_PAGE_MAX);
    let id = AccountId::new(&node).map_err(|_| ApiError::forbidden())?;
    let answer = {
        let read = state.read();
        let initial = read.projections.peer(&id).map(|p| p.initial_hash.clone()).ok_or_else(ApiError::forbidden)?;
        let log = read.projections.link_log(&id);
        // Authenticated before anything is shown, at every `after`: the caller
        // proves our head or the hash one before it (it may not have written
        // the version we just wrote, or may have written one we missed). So
        // the agreed initial hash opens the feed only until the link's first
        // written version is followed by a second: it is good for the first
        // exchange, never again.
        let proved = recent_hashes(&initial, log).iter().any(|h| h == hash);
        proved.then(|| {
            let page: Vec<Value> = log.iter().skip(after).take(limit).map(version_json).collect();
            let head = hash_at(&initial, log, log.len()).unwrap_or_default();
            envelope(Value::Array(page), Some(json!({"count": log.len(), "head": head})), None)
        })
    };
    match answer {
        Some(body) => {
            state.peers().proved(&node);
            Ok(Json(body))
        }
        None => {
            state.peers().refused(&node).await;
            Err(ApiError::hash_mismatch(StatusCode::CONFLICT, &node, hash))
        }
    }
}

/// Fetches the neighbour's whole feed for our link.
async fn fetch_feed(state: &AppState, peer: &AccountId) -> ApiResult<Vec<LinkVersion>> {
    let (url, initial) = {
        let read = state.read();
        let facts = read.projections.peer(peer).ok_or_else(|| ApiError::does_not_exist("node", peer.as_str()))?;
        (facts.url.trim_end_matches('/').to_owned(), facts.initial_hash.clone())
    };
    // Our credential: our head, or, if the neighbour does not know it (we wrote
    // a version it missed, or the link diverged at our last version), the
    // hash one before it.
    let credentials: Vec<String> = {
        let read = state.read();
        let log = read.projections.link_log(peer);
        recent_hashes(&initial, log)
    };
    let mut credential = 0;
    let mut theirs: Vec<LinkVersion> = Vec::new();
    loop {
        let full = format!("{url}/replay/link/{}?after={}&limit={LINK_PAGE_MAX}", state.name(), theirs.len());
        let request = crate::peer_client::PeerRequest::new(reqwest::Method::GET, full)
            .header("cc-node", state.name())
            .header("last-hash", credentials[credential].as_str());
        let answer = state.peers().send(request).await.map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UnavailableNodeFailure").with("url", url.as_str())
        })?;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if status == StatusCode::CONFLICT && credential + 1 < credentials.len() && theirs.is_empty() {
            credential += 1;
            continue;
        }
        if !status.is_success() {
            return Err(ApiError::raw(status, value));
        }
        let page = value["data"].as_array().cloned().unwrap_or_default();
        let parsed: Option<Vec<LinkVersion>> = page.iter().map(version_from_json).collect();
        let parsed = parsed.ok_or_else(|| ApiError::failure("a neighbour's link feed is malformed"))?;
        let done = parsed.len() < LINK_PAGE_MAX;
        theirs.extend(parsed);
        if done {
            return Ok(theirs);
        }
    }
}

/// Reconciles the link with `peer` and says what happened.
pub async fn reconcile_link(state: &AppState, peer: &AccountId) -> ApiResult<Value> {
    if ledger::LedgerView::dialect(&state.read().projections, peer) == ledger::Dialect::Komunitin {
        // Komunitin serves no link feed (docs/PROTOCOL.md, "Komunitin links"): never ask it.
        return Ok(json!({"node": peer.as_str(), "verdict": "not_reconciled", "dialect": "komunitin"}));
    }
    if ledger::LedgerView::dialect(&state.read().projections, peer) == ledger::Dialect::Reference {
        // The reference serves no link feed: its handshake and transaction routes instead.
        return crate::federation::reference::reconcile(state, peer).await;
    }
    let lock = state.peers().lock_for(peer);
    let _link = lock.lock().await;
    let theirs = fetch_feed(state, peer).await?;
    let ours = state.read().projections.link_log(peer).to_vec();
    let verdict = reconcile(&ours, &theirs);
    let mut report = json!({"node": peer.as_str(), "ours": ours.len(), "theirs": theirs.len()});
    match verdict {
        Verdict::InSync => report["verdict"] = json!("in_sync"),
        Verdict::PeerBehind { missing } => {
            report["verdict"] = json!("peer_behind");
            report["missing"] = json!(missing.len());
        }
        Verdict::WeAreBehind { missing } => {
            report["verdict"] = json!("we_are_behind");
            report["missing"] = json!(missing.len());
            let mut applied = 0;
            // In order, a chunk at a time so the copies share group commits.
            'chunks: for chunk in missing.chunks(crate::runtime::BATCH_COMMANDS_MAX) {
                let commands = chunk
                    .iter()
                    .map(|v| {
                        NodeCommand::Ledger(Command::Reconcile {
                            peer: peer.clone(),
                            uuid: v.uuid,
                            to: v.state,
                            version: v.version,
                            md5: hex(&v.md5),
                        })
                    })
                    .collect();
                let answers = state.submit_all(commands).await;
                for (v, answer) in chunk.iter().zip(answers.iter().map(Some).chain(std::iter::repeat(None))) {
                    let why = match answer {
                        Some(Ok(_)) => {
                            applied += 1;
                            continue;
                        }
                        Some(Err(error)) => crate::app::describe_write_error(error),
                        None => "the writer stopped".to_owned(),
                    };
                    tracing::error!(%peer, uuid = %v.uuid, version = v.version, %why, "a missing version could not be copied; the link is closed");
                    state.close_link(peer, json!({"uuid": v.uuid.to_string(), "version": v.version, "why": why})).await;
                    report["verdict"] = json!("diverged");
                    report["evidence"] = json!({"theirs": version_json(v), "why": why});
                    break 'chunks;
                }
            }
            report["applied"] = json!(applied);
            if applied > 0 {
                tracing::info!(%peer, applied, "link repaired from the neighbour's feed");
            }
        }
        Verdict::Diverged { index, ours, theirs } => {
            let evidence = json!({"index": index, "ours": version_json(&ours), "theirs": version_json(&theirs)});
            tracing::error!(%peer, %evidence, "link diverged: both sides wrote different versions; closed until an admin reopens it");
            state.close_link(peer, evidence.clone()).await;
            report["verdict"] = json!("diverged");
            report["evidence"] = evidence;
        }
    }
    Ok(report)
}

/// Reconciles every link now.
pub async fn reconcile_all(state: &AppState) {
    let peers: Vec<AccountId> = state.read().neighbours();
    for peer in peers {
        let dialect = ledger::LedgerView::dialect(&state.read().projections, &peer);
        // A closed reference link is still asked: it opens again once the heads agree.
        let closed = state.read().closed(&peer).is_some() && dialect != ledger::Dialect::Reference;
        if dialect == ledger::Dialect::Komunitin || closed {
            continue;
        }
        match reconcile_link(state, &peer).await {
            Ok(report) if report["verdict"] != "in_sync" => tracing::info!(%peer, %report, "link reconciled"),
            Ok(_) => {}
            Err(error) => tracing::debug!(%peer, class = error.class_name(), "link not reconciled this time"),
        }
    }
}

/// Reconciles one link on demand (admin only).
#[utoipa::path(post, path = "/replay/reconcile/{node}", tag = "federation",
    params(("node" = String, Path, description = "A neighbour")),
    responses((status = 200, description = "`{data: {node, verdict: in_sync|we_are_behind|peer_behind|diverged, missing, applied, evidence}}`", body = crate::schema::ReconcileAnswer),
              (status = 403, description = "Not an admin"), (status = 404, description = "Not a neighbour"),
              (status = 503, description = "UnavailableNodeFailure: the neighbour did not answer")))]
pub async fn reconcile_route(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(node): AppPath<String>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let id = AccountId::new(&node).map_err(|_| ApiError::does_not_exist("node", node.as_str()))?;
    if state.read().ratchet(&id).is_none() {
        return Err(ApiError::does_not_exist("node", node));
    }
    let report = reconcile_link(&state, &id).await?;
    Ok(Json(envelope(report, None, None)))
}

/// Reopens a link closed after a divergence, once an admin has resolved it (admin only).
#[utoipa::path(post, path = "/admin/nodes/{node}/reopen", tag = "admin",
    params(("node" = String, Path, description = "A neighbour")),
    responses((status = 200, description = "`{data: {node, was_closed}}`", body = crate::schema::ReopenAnswer), (status = 403, description = "Not an admin")))]
pub async fn reopen_route(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(node): AppPath<String>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let id = AccountId::new(&node).map_err(|_| ApiError::does_not_exist("node", node.as_str()))?;
    let was = state.reopen_link(&id).await;
    Ok(Json(envelope(json!({"node": node, "was_closed": was}), None, None)))
}

/// Reconciles all links every `interval`, the first pass at once, until `stop` changes.
/// Says `true` on `first_pass` once the first pass is over (expiry waits for it).
pub async fn reconcile_loop(
    state: AppState,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    first_pass: tokio::sync::watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                reconcile_all(&state).await;
                first_pass.send_replace(true);
            }
            _ = stop.changed() => return,
        }
    }
}
