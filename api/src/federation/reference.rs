//! Reference links (docs/PROTOCOL.md, "Dialects"): what ccnode does on a
//! link declared `"dialect": "reference"`, the wire of the PHP reference
//! node cc-node 0.8.5 with cc-php-lib (`../shared/refnode/`), so that both
//! sides' `hash_history` and ratchet agree after every write.
//!
//! What the reference does, from its code (cc-node `src/`, cc-php-lib `src/`):
//! - a neighbour is authenticated by `cc-user: <node name>` and
//!   `cc-auth: <last hash>`, compared exactly (`Remote::authenticate`); the
//!   hash of a link with no history is the empty string (`Remote::getLastHash`);
//! - a relay of a workflow that does not confirm (`pay`) is written at once in
//!   its creation state as version 1 and hashed (`Transaction::insert`), and
//!   answered 201; one that confirms (`bill`, `credit`) is stored `validated`
//!   version 0, not hashed, and answered 200;
//! - each PATCH (`/transaction/{uuid}/pending|completed|erased`) is relayed on
//!   before it is written (`TransversalTransaction::changeState`), so the far
//!   end writes first, each write a new version that is hashed; `/null`
//!   deletes a validated transaction and hashes nothing;
//! - the hash is `md5(last|uuid|<long state name>|quant|description|…|version)`
//!   (`TransversalTransactionTrait::makeHashString`), `quant` as PHP prints a
//!   float (`ledger::ratchet::php_float_text_agrees` guards the amounts).
//!
//! ccnode sends an unconfirmed relay to a reference node when it writes the
//! transaction (as the write, in place of the PATCH), not at the validate
//! step: the validated copy is then journaled here before the neighbour
//! writes, so a crash between the two is repaired from the neighbour's
//! transaction routes (`reconcile`).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{AccountId, Command, State as TxState, TxId};
use serde_json::{json, Value};

use super::{
    answered_entries, change_state_relayed, entries_json, parse_relay, peer_facts, relay_on, trace_of, unavailable,
    RelayBody,
};
use crate::app::{submit, violation_error, AppState};
use crate::error::{ApiError, ApiResult};
use crate::machine::{NodeCommand, NodeOutput};
use crate::peers::{link_closed, reference_mismatch};
use crate::wire::envelope;

/// The relay body the reference sends and reads (`TransversalTransaction::jsonSerialize`):
/// no state, workflow or version; `type` is the workflow id.
pub(super) fn relay_body(tx: &ledger::Transaction, entries: &[ledger::federation::WireEntry]) -> Value {
    json!({
        "uuid": tx.uuid.to_string(),
        "written": "",
        "type": tx.workflow.id.as_str(),
        "entries": entries_json(entries),
    })
}

/// Sends one request to a reference neighbour with the 0.8 pair, `cc-auth`
/// being our head or, during reconciliation, `auth`. Answers the status and
/// the JSON body (`Null` when empty); an error answer is the neighbour's
/// error JSON, a violation re-said with status 400 (the reference answers
/// every violation with 500), a non-JSON answer a `CCFailure`.
pub(super) async fn request(
    state: &AppState,
    peer: &AccountId,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> ApiResult<(StatusCode, Value)> {
    let (url, head) = peer_facts(state, peer)?;
    let full = format!("{url}{path}");
    let cc_auth = auth.unwrap_or(&head);
    let method_name = method.to_string();
    let mut request = crate::peer_client::PeerRequest::new(method, full.clone())
        .header("cc-user", state.name())
        .header("cc-auth", cc_auth);
    tracing::debug!(%peer, %method_name, path, cc_auth, body = %body.as_ref().map(ToString::to_string).unwrap_or_default(), "to reference neighbour");
    if let Some(body) = &body {
        request = request.json(body);
    }
    let answer = state.peers().send(request).await.map_err(|e| {
        tracing::warn!(%peer, url = %full, error = %e, "reference neighbour did not answer");
        unavailable(&url)
    })?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let json_type = answer.content_type.as_deref().is_some_and(|v| v.starts_with("application/json"));
    let text = answer.body;
    tracing::debug!(%peer, path, status = status.as_u16(), body = %text, "from reference neighbour");
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        match (json_type, serde_json::from_str::<Value>(&text)) {
            (true, Ok(value)) => value,
            // The reference answers some failures 200 text/html with a PHP fatal error.
            _ => {
                let shown: String = text.chars().take(300).collect();
                return Err(ApiError::new(StatusCode::BAD_GATEWAY, "CCFailure")
                    .with("remoteNode", peer.as_str())
                    .with("translated", format!("the reference neighbour answered {status} without JSON: {shown}")));
            }
        }
    };
    if status.is_success() {
        return Ok((status, value));
    }
    if let Some(class) = value["errors"][0]["class"].as_str() {
        let status = if class.ends_with("Violation") && status == StatusCode::INTERNAL_SERVER_ERROR {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        return Err(ApiError::raw(status, value));
    }
    Err(ApiError::new(StatusCode::BAD_GATEWAY, "CCFailure")
        .with("remoteNode", peer.as_str())
        .with("translated", format!("the reference neighbour answered {status} with no error")))
}

/// Sends a state change of a transaction shared with a reference neighbour
/// `peer`, which writes first. An unconfirmed workflow's write is its relay;
/// deleting a validated copy is `/null` (and nothing at all when the
/// neighbour never saw the copy); any other move is a PATCH with the long name.
/// A link closed after a divergence takes no change.
pub(super) async fn send_change(state: &AppState, uuid: TxId, to: TxState, peer: &AccountId) -> ApiResult<()> {
    let closed = state.read().closed(peer);
    if let Some(evidence) = closed {
        return Err(link_closed(peer, &evidence));
    }
    let (from_state, confirm, creation) = {
        let read = state.read();
        let tx = read
            .projections
            .transaction(&uuid)
            .ok_or_else(|| ApiError::does_not_exist("transaction", uuid.to_string()))?;
        (tx.state, tx.workflow.creation.confirm, tx.workflow.creation.state)
    };
    if from_state == TxState::Validated && !confirm {
        if to == TxState::Erased || to == TxState::TimedOut {
            return Ok(()); // the neighbour never saw this copy
        }
        if to == creation {
            return send_relay(state, uuid, peer).await;
        }
    }
    let path = if from_state == TxState::Validated && to == TxState::Erased {
        format!("/transaction/{uuid}/null")
    } else {
        format!("/transaction/{uuid}/{}", to.name())
    };
    request(state, peer, reqwest::Method::PATCH, &path, None, None).await.map(drop)
}

/// The relay of a transaction validated here whose workflow does not
/// confirm: the reference writes it at once (its creation state, version 1).
async fn send_relay(state: &AppState, uuid: TxId, peer: &AccountId) -> ApiResult<()> {
    let body = {
        let read = state.read();
        let p = &read.projections;
        let (Some(tx), Some(link), Some(config)) = (p.transaction(&uuid), read.link(&uuid), p.config()) else {
            return Err(ApiError::does_not_exist("transaction", uuid.to_string()));
        };
        let entries = ledger::federation::wire_entries(p, config, tx, link, peer);
        relay_body(tx, &entries)
    };
    let (_, answer) = request(state, peer, reqwest::Method::POST, "/transaction/relay", Some(body), None).await?;
    let added = answered_entries(&answer)?;
    if !added.is_empty() {
        // It booked entries (its fees) this node never validated, and hashed them:
        // the link cannot agree. Said loudly; an operator must settle it.
        let evidence = json!({"uuid": uuid.to_string(), "why": "the reference neighbour added entries to a payment it wrote at once; ccnode cannot book them here", "added": entries_json(&added)});
        tracing::error!(%peer, %evidence, "reference link cannot agree");
        state.close_link(peer, evidence.clone()).await;
        return Err(link_closed(peer, &evidence));
    }
    Ok(())
}

/// A relay from a reference neighbour. One that confirms is validated and
/// recorded here (and on) like any, answered 200; one that does not is
/// written at once, as the reference wrote it, its link's ratchet advancing
/// with version 1, answered 201. Both answer `{data: [additional entries]}`.
pub(super) async fn relay_from(
    state: &AppState,
    from: AccountId,
    headers: &HeaderMap,
    body: RelayBody,
) -> ApiResult<Response> {
    let trace = trace_of(headers);
    if body.type_.is_none() {
        return Err(ApiError::invalid_field("type", "a reference relay names its workflow by id"));
    }
    let relay = parse_relay(state, body)?;
    let uuid = relay.uuid;
    let immediate = !relay.workflow.creation.confirm;
    let creation = relay.workflow.creation.state;
    // A write advances the link's ratchet: serialised with every other request
    // on the link, and its hash checked exactly under the lock.
    let lock = state.peers().lock_for(&from);
    let _link = if immediate { Some(lock.lock().await) } else { None };
    if immediate {
        let claimed = headers.get("cc-auth").or_else(|| headers.get("last-hash")).and_then(|v| v.to_str().ok());
        let claimed = claimed.map(|c| if c == "null" { "" } else { c });
        let ours = state.read().ratchet(&from).map(|r| r.md5.clone()).unwrap_or_default();
        if claimed != Some(ours.as_str()) {
            state.peers().refused(from.as_str()).await;
            return Err(reference_mismatch(from.as_str(), claimed.unwrap_or("")));
        }
    }
    if state.read().projections.transaction(&uuid).is_some() {
        return Err(violation_error(&ledger::Violation::DuplicateUuid { uuid: uuid.to_string() }));
    }
    let output = submit(state, NodeCommand::PlanRelay { from: from.clone(), relay }).await?;
    let NodeOutput::Plan(Some(plan)) = output else { return Err(ApiError::failure("relay planning gave no plan")) };
    let plan = relay_on(state, *plan, &trace).await?;
    let command = Command::ProposeTransversal { transaction: plan.transaction, link: plan.link };
    submit(state, NodeCommand::Ledger(command)).await?;
    if immediate {
        change_state_relayed(state, uuid, creation, from.clone(), Some(from.clone()), &trace, None).await?;
    }
    let added = match submit(state, NodeCommand::Additional { uuid, upstream: from }).await? {
        NodeOutput::Entries(entries) => entries,
        _ => Vec::new(),
    };
    let status = if immediate { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(envelope(entries_json(&added), None, None))).into_response())
}

/// Most open transactions a reconciliation asks the neighbour about.
const CANDIDATES_MAX: usize = 64;

/// Reconciles a reference link with what the reference offers: `/handshake`
/// proves the heads agree; a `HashMismatchFailure` tells the neighbour's head
/// (the reference sends it as `localHash`), and if one open transaction on
/// the link, as `GET /transaction/{uuid}` shows it there, is one version
/// ahead of ours and reproduces that head, the version is copied here. Else
/// the link is reported with the evidence and refuses new transactions
/// until the heads agree again (a later pass that finds them agreeing opens it).
pub(crate) async fn reconcile(state: &AppState, peer: &AccountId) -> ApiResult<Value> {
    let lock = state.peers().lock_for(peer);
    let _link = lock.lock().await;
    let ours = state.read().ratchet(peer).map(|r| r.md5.clone()).unwrap_or_default();
    let mut report = json!({"node": peer.as_str(), "dialect": "reference", "ours": ours});
    let theirs = match request(state, peer, reqwest::Method::GET, "/handshake", None, None).await {
        Ok(_) => {
            if state.reopen_link(peer).await {
                tracing::info!(%peer, "the reference link agrees again: reopened");
                report["reopened"] = json!(true);
            }
            report["verdict"] = json!("in_sync");
            return Ok(report);
        }
        Err(error) if error.class_name() == "HashMismatchFailure" => error
            .raw
            .as_ref()
            .and_then(|b| b["errors"][0]["localHash"].as_str().map(str::to_owned))
            .ok_or_else(|| ApiError::failure("the reference neighbour reported a hash mismatch without its hash"))?,
        Err(error) => return Err(error),
    };
    report["theirs"] = json!(theirs);
    let candidates: Vec<(TxId, TxState, u32)> = {
        let read = state.read();
        let query = projections::Query {
            involving: Some(peer.clone()),
            states: vec![TxState::Validated, TxState::Pending],
            descending: true,
            limit: CANDIDATES_MAX,
            ..projections::Query::default()
        };
        read.projections.transactions(&query).items.iter().map(|tx| (tx.uuid, tx.state, tx.version)).collect()
    };
    let mut checked = Vec::new();
    for (uuid, state_here, version_here) in candidates {
        let path = format!("/transaction/{uuid}");
        let there = match request(state, peer, reqwest::Method::GET, &path, None, Some(&theirs)).await {
            Ok((_, value)) => value,
            Err(error) => {
                checked.push(json!({"uuid": uuid.to_string(), "here": state_here.name(), "there": error.class_name()}));
                continue;
            }
        };
        let there_state = there["data"]["state"].as_str().and_then(TxState::parse);
        let there_version = there["data"]["version"].as_u64().and_then(|v| u32::try_from(v).ok());
        checked.push(json!({"uuid": uuid.to_string(), "here": state_here.name(), "version_here": version_here,
                            "there": there["data"]["state"], "version_there": there["data"]["version"]}));
        let (Some(to), Some(version)) = (there_state, there_version) else { continue };
        if version_here.checked_add(1) != Some(version) {
            continue;
        }
        let command = Command::Reconcile { peer: peer.clone(), uuid, to, version, md5: theirs.clone() };
        match submit(state, NodeCommand::Ledger(command)).await {
            Ok(_) => {
                tracing::info!(%peer, %uuid, version, state = to.name(), "reference link repaired: copied the version the neighbour wrote");
                state.reopen_link(peer).await;
                report["verdict"] = json!("we_are_behind");
                report["applied"] = json!(1);
                report["uuid"] = json!(uuid.to_string());
                return Ok(report);
            }
            Err(error) => {
                checked.push(json!({"uuid": uuid.to_string(), "copy_refused": error.class_name()}));
            }
        }
    }
    let evidence = json!({
        "ours": ours,
        "theirs": theirs,
        "checked": checked,
        "what_to_do": "the two ledgers of this link wrote different histories and ccnode cannot repair it alone: compare this node's transactions with the reference's hash_history for this link, make both ledgers hold the same versions (erase or re-enter the transaction on one side), then seed both heads with the same value (the reference's hash_history, this node's POST /replay/reconcile/{node} once they agree); new transactions on this link are refused until the heads agree",
    });
    tracing::error!(%peer, %evidence, "reference link disagrees and cannot be repaired here; refusing new transactions on it");
    state.close_link(peer, evidence.clone()).await;
    report["verdict"] = json!("diverged");
    report["evidence"] = evidence;
    Ok(report)
}
