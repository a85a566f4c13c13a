//! Komunitin links (docs/PROTOCOL.md, "Komunitin links"): what ccnode does
//! on a link declared `"dialect": "komunitin"`, so that both sides' last
//! hashes agree after every payment. Komunitin (its
//! `accounting/src/creditcommons/credit-commons-controller.ts`, CCC below,
//! at commit a3de3eab) books a relay at once, never sends or takes a PATCH,
//! and advances its hash over the relay body: state letter and `version`
//! as in the body (CCC l.23-32, l.264-265, l.466-467).

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger::federation::RelayIn;
use ledger::{AccountId, Command, LedgerView, State as TxState, TxId, Workflow};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{change_state_relayed, parse_entries, peer_facts, relay_body, relay_on, trace_of, unavailable, RelayBody};
use crate::app::{submit, violation_error, AppState};
use crate::error::{ApiError, ApiResult};
use crate::machine::{NodeCommand, NodeOutput};

/// The parts of a relay body Komunitin hashes or echoes, as they came.
#[derive(Deserialize)]
struct Echo<'a> {
    #[serde(borrow)]
    entries: &'a RawValue,
    #[serde(default)]
    version: Option<Value>,
}

/// The `version` text Komunitin joins into its hash (`Array#join`: absent or
/// `null` is the empty string, CCC l.23-32).
fn version_text(version: Option<&Value>) -> ApiResult<String> {
    match version {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if s.len() <= 64 => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        _ => Err(ApiError::invalid_field("version", "an integer, a short string or absent")),
    }
}

/// What a relay from Komunitin is booked as here: it completes at once, as
/// Komunitin booked it (whatever workflow code it sent; it sends `|P-PC+CX+`).
fn immediate_workflow(state: &AppState) -> Workflow {
    let read = state.read();
    let ours = read
        .projections
        .config()
        .and_then(|c| c.workflows.iter().find(|w| w.active && w.to_code().ok().as_deref() == Some("_C-")).cloned());
    ours.unwrap_or_else(|| Workflow::from_code("_C-").expect("a shipped code parses"))
}

/// A relay from a Komunitin neighbour: checked, planned and relayed on like
/// any, then written completed at once; its link's ratchet advances over the
/// body as received. Answers 201 with the entries echoed (CCC l.266-274).
pub(super) async fn relay_from(
    state: &AppState,
    from: AccountId,
    headers: &HeaderMap,
    raw: &RawValue,
    body: RelayBody,
) -> ApiResult<Response> {
    let bad_body = |e: serde_json::Error| ApiError::invalid_field("body", format!("not the expected JSON: {e}"));
    let echo: Echo<'_> = serde_json::from_str(raw.get()).map_err(bad_body)?;
    let relay_version = version_text(echo.version.as_ref())?;
    let items: Vec<serde_json::Map<String, Value>> = serde_json::from_str(echo.entries.get()).map_err(bad_body)?;
    for item in &items {
        // Komunitin hashes `${quant}` of the parsed value and `${description}`
        // (a missing one as "undefined"): only numbers and strings hash alike here.
        if !item.get("quant").is_some_and(Value::is_number) {
            return Err(ApiError::invalid_field("quant", "a Komunitin relay carries amounts as JSON numbers"));
        }
        if !item.get("description").is_some_and(Value::is_string) {
            return Err(ApiError::invalid_field("description", "every entry of a Komunitin relay has a description"));
        }
    }
    if body.state.as_deref() != Some("V") {
        return Err(ApiError::invalid_field("state", "a relayed transaction is validated (V)"));
    }
    let uuid =
        uuid::Uuid::parse_str(&body.uuid).map(TxId).map_err(|_| ApiError::invalid_field("uuid", "not a uuid"))?;
    if body.entries.is_empty() || body.entries.len() > 64 {
        return Err(ApiError::invalid_field("entries", "1 to 64 entries"));
    }
    let entries = parse_entries(body.entries)?;
    let relay = RelayIn { uuid, workflow: immediate_workflow(state), entries };

    // This relay advances the link's ratchet: serialised with every other
    // request on the link, and its hash checked exactly under the lock.
    let lock = state.peers().lock_for(&from);
    let _link = lock.lock().await;
    let claimed = headers.get("last-hash").or_else(|| headers.get("cc-auth")).and_then(|v| v.to_str().ok());
    let ours = state.read().ratchet(&from).map(|r| r.md5.clone()).unwrap_or_default();
    if claimed != Some(ours.as_str()) {
        let claimed = claimed.unwrap_or("");
        return Err(ApiError::hash_mismatch(StatusCode::INTERNAL_SERVER_ERROR, from.as_str(), claimed));
    }
    if state.read().projections.transaction(&uuid).is_some() {
        // Komunitin never retries; a replay is refused as Komunitin refuses one (TC l.22-64).
        return Err(violation_error(&ledger::Violation::DuplicateUuid { uuid: uuid.to_string() }));
    }
    let trace = trace_of(headers);
    let output = submit(state, NodeCommand::PlanRelay { from: from.clone(), relay }).await?;
    let NodeOutput::Plan(Some(plan)) = output else { return Err(ApiError::failure("relay planning gave no plan")) };
    let plan = relay_on(state, *plan, &trace).await?;
    let command = Command::ProposeTransversal { transaction: plan.transaction, link: plan.link };
    submit(state, NodeCommand::Ledger(command)).await?;
    change_state_relayed(state, uuid, TxState::Completed, from.clone(), Some(from), &trace, Some(relay_version))
        .await?;
    let text = format!(r#"{{"data":{},"meta":{{"secs_valid_left":0}}}}"#, echo.entries.get());
    Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// This node's absolute path (`/absolutepath` of the parent, without its
/// link's lock: a flow from the parent may hold it).
async fn our_path(state: &AppState, trace: &str) -> ApiResult<String> {
    Ok(super::path_asking_parent(state, trace, false).await?.join("/"))
}

/// Paths as Komunitin reads them: absolute, the party on its side as
/// `<its node path>/<code>` (CCC l.34-41, l.160-259). Komunitin keeps one
/// neighbour only (CCC l.107), so a Komunitin parent is the root, its path
/// its name; a Komunitin child's path is ours and its name.
fn absolute(path: &str, peer: &AccountId, peer_is_parent: bool, our_path: &str, name: &str) -> String {
    if peer_is_parent {
        return if path.starts_with(&format!("{peer}/")) { path.to_owned() } else { format!("{peer}/{path}") };
    }
    let above = our_path.strip_suffix(name).unwrap_or("");
    if path.starts_with(&format!("{name}/")) {
        format!("{above}{path}")
    } else if path.starts_with(&format!("{peer}/")) || !path.contains('/') {
        format!("{our_path}/{path}")
    } else {
        path.to_owned()
    }
}

/// Sends a written-here transaction's relay to a Komunitin neighbour, in
/// place of the PATCH: it books it at once. Our ratchet then advances over
/// exactly this body (`V`, no `version`), as Komunitin's does (CCC l.264-265).
pub(super) async fn send_to(state: &AppState, uuid: TxId, peer: &AccountId, trace: &str) -> ApiResult<()> {
    let peer_is_parent = state.read().projections.trunkward_account() == Some(peer);
    let our_path = if peer_is_parent { String::new() } else { our_path(state, trace).await? };
    let body = {
        let read = state.read();
        let p = &read.projections;
        let (Some(tx), Some(link), Some(config)) = (p.transaction(&uuid), read.link(&uuid), p.config()) else {
            return Err(ApiError::does_not_exist("transaction", uuid.to_string()));
        };
        let mut entries = ledger::federation::wire_entries(p, config, tx, link, peer);
        for e in &mut entries {
            e.payer = absolute(&e.payer, peer, peer_is_parent, &our_path, state.name());
            e.payee = absolute(&e.payee, peer, peer_is_parent, &our_path, state.name());
        }
        relay_body(tx, &entries)
    };
    let (url, last_hash) = peer_facts(state, peer)?;
    let full = format!("{url}/transaction/relay");
    tracing::debug!(%peer, %last_hash, body = %body, "relay to Komunitin");
    let request = crate::peer_client::PeerRequest::new(reqwest::Method::POST, full)
        .header("cc-node", state.name())
        .header("last-hash", last_hash.as_str())
        .json(&body);
    let answer = state.peers().send(request).await.map_err(|_| unavailable(&url))?;
    let (status, text) = (answer.status, answer.body);
    tracing::debug!(%peer, status, body = %text, "from Komunitin");
    // 200 or 201 is success; the answer's body is not read (CCC l.460-467).
    if (200..300).contains(&status) {
        return Ok(());
    }
    // Komunitin's errors are `{"errors":["<message>"]}` (routes.ts l.16-31): re-said in CC form.
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["errors"][0].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(512).collect());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let class = if status.is_client_error() { "CCOtherViolation" } else { "CCFailure" };
    Err(ApiError::new(status, class).with("remoteNode", peer.as_str()).with("translated", message))
}
