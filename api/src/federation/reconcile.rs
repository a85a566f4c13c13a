//! Reconciling federation links: each side serves the ordered versions it
//! wrote on a link (`GET /replay/link/{node}`, in `routes::federation`); a
//! node compares its own with its neighbour's (`replay::reconcile`), copies
//! the versions it missed through the normal decide/append path
//! (`Command::Reconcile`, which checks that the copy reproduces the
//! neighbour's hash), and closes the link on a true divergence until an
//! admin reopens it.
//!
//! It runs at start, periodically, when a neighbour answers
//! `HashMismatchFailure`, and on demand (`POST /replay/reconcile/{node}`,
//! `ccnode reconcile`).

use std::time::Duration;

use axum::http::StatusCode;
use ledger::{AccountId, Command};
use replay::reconcile::{reconcile, LinkVersion, Verdict};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::machine::NodeCommand;
use crate::peers::recent_hashes;
use ledger::ratchet::{hex, unhex};

/// Most link versions served per page.
pub const LINK_PAGE_MAX: usize = 10_000;

/// Longest a reconciliation waits for the other link of a transaction it copies.
const OTHER_LINK_WAIT_MAX: Duration = Duration::from_secs(1);

/// Default seconds between reconciliation passes over every link.
pub const RECONCILE_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);

pub(crate) fn version_json(v: &LinkVersion) -> Value {
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

/// Fetches the neighbour's whole feed for our link, fencing `fenced` (the
/// attempts we left in doubt with it) and our earlier incarnations first
/// (`crate::attempts`).
async fn fetch_feed(state: &AppState, peer: &AccountId, fenced: &[String]) -> ApiResult<Vec<LinkVersion>> {
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
        let mut request = crate::peer_client::PeerRequest::new(reqwest::Method::GET, full)
            .header("cc-node", state.name())
            .header("last-hash", credentials[credential].as_str())
            .header("cc-boot", state.peers().boot())
            .signed(true);
        if let Some(before) = credentials.get(credential + 1) {
            // Our hash one before the head too, in the same request: a
            // neighbour that never saw our head need not refuse it first
            // (a refusal is answered slowly, maybe past our timeout).
            request = request.header("cc-hash-before", before.as_str());
        }
        if !fenced.is_empty() {
            request = request.header("cc-fence", fenced.join(","));
        }
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
        return super::reference::reconcile(state, peer).await;
    }
    // Held while the missed versions are copied too (local writes only); no
    // change to this neighbour can be left in doubt meanwhile.
    let _link = state.peers().lock_to_read(peer).await;
    let doubts = state.peers().doubts().on(peer);
    let fenced: Vec<String> = doubts.iter().map(|(_, _, attempt)| attempt.clone()).collect();
    let theirs = fetch_feed(state, peer, &fenced).await?;
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
            // A copy also advances the other link of a transaction that
            // crosses this node: no change may cross that link meanwhile
            // (found by the simulator, issue 13). Bounded waits, so two
            // reconciliations cannot deadlock; busy, this pass gives up.
            let others: std::collections::BTreeSet<AccountId> = {
                let read = state.read();
                missing
                    .iter()
                    .filter_map(|v| read.link(&v.uuid).and_then(|l| l.other_than(Some(peer))).cloned())
                    .collect()
            };
            let mut _others = Vec::new();
            for other in &others {
                let lock = state.peers().lock_for(other);
                match tokio::time::timeout(OTHER_LINK_WAIT_MAX, lock.lock_owned()).await {
                    Ok(guard) => _others.push(guard),
                    Err(_) => return Err(crate::peers::link_busy(other)),
                }
            }
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
    // The feed was final for the fenced attempts: what it had is copied now,
    // and what it lacked will never be written there.
    if !doubts.is_empty() {
        let mut settled = 0;
        for (uuid, to, _) in &doubts {
            if state.submit(NodeCommand::Settle { uuid: *uuid, to: *to }).await.is_err() {
                return Err(ApiError::unavailable("the writer stopped"));
            }
            let written = state.read().projections.transaction(uuid).is_some_and(|tx| tx.state == *to);
            tracing::info!(%peer, %uuid, state = %to, written, "a change in doubt is settled");
            state.peers().attempts().settle(*uuid);
            settled += 1;
        }
        state.peers().doubts().remove(peer, &fenced);
        report["settled"] = json!(settled);
    }
    state.peers().mark_reconciled(peer);
    let unsettled = state.unreconciled_links();
    if state.submit(NodeCommand::ReleasePresumed { unsettled }).await.is_err() {
        return Err(ApiError::unavailable("the writer stopped"));
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
    // Changes in doubt are settled sooner than the next pass: asked again
    // after DOUBT_RETRY_FIRST, then twice as long each time up to `interval`.
    let mut retry = DOUBT_RETRY_FIRST.min(interval);
    loop {
        // Reconciliation writes what it finds: a node that does not write (a
        // standby) leaves it to the writer, and reconciles as soon as it writes.
        let writing = state.writing();
        let in_doubt = writing && !state.peers().doubts().peers().is_empty();
        // Biased: when several branches are ready at once (a pass and a
        // retry due at the same instant), the first listed wins, not a
        // random one, so a simulated run is the same in every process.
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tick.tick() => {
                if writing {
                    reconcile_all(&state).await;
                }
                first_pass.send_replace(true);
            }
            true = state.writer_writes(), if !writing => reconcile_all(&state).await,
            () = state.peers().doubt_added() => retry = DOUBT_RETRY_FIRST.min(interval),
            () = tokio::time::sleep(retry), if in_doubt => {
                let peers = state.peers().doubts().peers();
                for peer in peers {
                    if let Err(error) = reconcile_link(&state, &peer).await {
                        tracing::debug!(%peer, class = error.class_name(), "a change in doubt is not settled yet");
                    }
                }
                retry = (retry * 2).min(interval);
            }
        }
    }
}

/// First wait before a change left in doubt is asked about.
pub const DOUBT_RETRY_FIRST: Duration = Duration::from_millis(500);
