//! Neighbours as witnesses (issue 11, item 4), the witness's side: this
//! node cosigns its neighbours' checkpoints (C2SP tlog-witness
//! `add-checkpoint`, with `cosignature/v1`), never a fork.
//!
//! A neighbour's key is given by an admin (`PUT /admin/nodes/{node}/key`,
//! journaled as `PeerKeySet`). Before cosigning, the witness checks the
//! signature, the consistency proof from the last size it cosigned for that
//! neighbour (journaled as `WitnessCosigned`, decided in the writer so that
//! two requests cannot both advance it), and that the checkpoint's `link`
//! line for this node matches this node's own side of the link's ratchet.
//! A second checkpoint for a size it cosigned, or an inconsistent one, is a
//! fork: refused (422), logged as an error, and the link is closed as
//! diverged.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use ledger::AccountId;
use serde_json::{json, Value};
use tlog::{KeyType, SignedCheckpoint, VerifierKey};

use super::AppPath;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::AppJson;
use crate::machine::{NodeCommand, NodeOutput};

/// The witness routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/nodes/{node}/key", put(admin_peer_key))
        .route("/witness/add-checkpoint", post(add_checkpoint))
}

/// Most consistency proof lines a request may carry (the spec's limit).
pub const PROOF_LINES_MAX: usize = 63;

/// `PUT /admin/nodes/{node}/key` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct PeerKey {
    /// The neighbour's verifier key, as its `GET /node/key` answers it.
    pub public_key: String,
}

/// `PUT /admin/nodes/{node}/key`: the key a neighbour signs its checkpoints with.
#[utoipa::path(put, path = "/admin/nodes/{node}/key", tag = "proofs", request_body = PeerKey,
    params(("node" = String, Path, description = "The neighbour's node account")),
    responses((status = 200, description = "The key is recorded: this node now witnesses the neighbour's checkpoints", body = crate::schema::PeerKeyAnswer),
              (status = 400, description = "Not an Ed25519 verifier key"), (status = 403, description = "Not an admin"),
              (status = 404, description = "No such neighbour")))]
pub async fn admin_peer_key(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(node): AppPath<String>,
    AppJson(body): AppJson<PeerKey>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let peer = AccountId::new(&node).map_err(|_| ApiError::does_not_exist("node", node.clone()))?;
    if state.read().projections.peer(&peer).is_none() {
        return Err(ApiError::does_not_exist("node", node));
    }
    let key = VerifierKey::parse(&body.public_key)
        .ok()
        .filter(|k| k.kind == KeyType::Ed25519)
        .ok_or_else(|| ApiError::invalid_field("public_key", "an Ed25519 C2SP verifier key (GET /node/key)"))?;
    let command =
        NodeCommand::SetPeerKey { peer: peer.clone(), origin: key.name.clone(), public_key: key.key.to_bytes() };
    state.submit(command).await.map_err(crate::app::write_error)?;
    Ok(Json(json!({ "data": { "node": peer.as_str(), "public_key": key.to_string() } })))
}

/// A parsed `add-checkpoint` request.
#[derive(Debug)]
struct AddCheckpoint {
    old: u64,
    proof: Vec<tlog::Hash>,
    signed: SignedCheckpoint,
}

fn parse_request(body: &str) -> Result<AddCheckpoint, &'static str> {
    let (head, note) = body.split_once("\n\n").ok_or("no empty line before the checkpoint")?;
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .and_then(tlog::checkpoint::parse_decimal)
        .ok_or("the first line must be `old <size>`")?;
    let proof: Vec<tlog::Hash> = lines
        .map(tlog::checkpoint::parse_hash_b64)
        .collect::<Option<_>>()
        .ok_or("a proof line is not a base64 hash")?;
    if proof.len() > PROOF_LINES_MAX {
        return Err("more than 63 proof lines");
    }
    let signed = SignedCheckpoint::parse(note.as_bytes()).map_err(|_| "the checkpoint is not a signed note")?;
    Ok(AddCheckpoint { old, proof, signed })
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(CONTENT_TYPE, content_type)], body).into_response()
}

/// Refuses a fork: logs it, closes the link as diverged, answers 422.
async fn fork(state: &AppState, peer: &AccountId, detail: &str, request: &AddCheckpoint) -> ApiError {
    tracing::error!(peer = %peer, detail, "a neighbour's checkpoint forks from the one this node cosigned");
    let evidence = json!({
        "fork": detail,
        "size": request.signed.checkpoint.size,
        "checkpoint": request.signed.note.encode(),
    });
    state.close_link(peer, evidence).await;
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CCFailure").with("message", format!("refused: {detail}"))
}

/// `POST /witness/add-checkpoint`: C2SP tlog-witness, for this node's neighbours.
#[utoipa::path(post, path = "/witness/add-checkpoint", tag = "proofs",
    request_body(content = String, content_type = "text/plain", description = "`old <size>`, consistency proof lines (base64), an empty line, then the signed checkpoint"),
    responses((status = 200, description = "The cosignature line(s)", content((String = "text/plain"))),
              (status = 400, description = "Malformed, or the old size is larger than the checkpoint's"),
              (status = 401, description = "AuthViolation: sent with `cc-node` but without that neighbour's valid RFC 9421 signature"),
              (status = 403, description = "Not signed by the neighbour's key"),
              (status = 404, description = "The origin is no neighbour's"),
              (status = 409, description = "The old size is not the last cosigned size (the body, text/x.tlog.size, says which)", content((String = "text/x.tlog.size"))),
              (status = 422, description = "Inconsistent with the last cosigned checkpoint (a fork: the link is closed), or its link line disagrees with this node's")))]
pub async fn add_checkpoint(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "InvalidFieldsViolation")
            .with("fields", json!({"body": "request body is too large or unreadable"}))
    })?;
    let body = std::str::from_utf8(&body).map_err(|_| ApiError::invalid_field("body", "not UTF-8 text"))?;
    let request = parse_request(body).map_err(|reason| ApiError::invalid_field("body", reason))?;
    let cp = &request.signed.checkpoint;
    let (peer, key) = {
        let read = state.read();
        let found = read.projections.facts().peer_keys.iter().find(|(_, (origin, _))| origin == &cp.origin);
        let (peer, (origin, key)) = found.ok_or_else(|| ApiError::does_not_exist("origin", cp.origin.clone()))?;
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| ApiError::failure("a stored key is invalid"))?;
        (peer.clone(), VerifierKey::new(origin, KeyType::Ed25519, key).map_err(|_| ApiError::failure("bad origin"))?)
    };
    // A ccnode neighbour (`cc-node`) signs this request too (RFC 9421): it
    // must be the checkpoint's node and its signature must verify. A plain
    // C2SP client (no `cc-node`) is judged by the checkpoint's signature alone.
    if let Some(claimed) = headers.get("cc-node") {
        if claimed.to_str().ok() != Some(peer.as_str()) {
            return Err(ApiError::forbidden().with("reason", "cc-node is not the checkpoint's node"));
        }
        crate::auth::check_signature(&state, &peer, &method, &uri, &headers)?;
    }
    if request.signed.note.verify(std::slice::from_ref(&key)).is_err() {
        return Err(ApiError::forbidden().with("reason", "not signed by the neighbour's key"));
    }
    if request.old > cp.size {
        return Err(ApiError::invalid_field("old", "larger than the checkpoint's size"));
    }
    let _one_at_a_time = state.witness_lock().lock().await;
    let last = state.read().projections.facts().witnessed.get(&peer).copied();
    let (last_size, last_root) = last.unwrap_or((0, tlog::empty_root()));
    if request.old != last_size {
        return Ok(text(StatusCode::CONFLICT, "text/x.tlog.size", format!("{last_size}\n")));
    }
    let unprocessable =
        |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CCFailure").with("message", m.to_owned());
    if cp.size == 0 {
        return Err(unprocessable("an empty tree is not cosigned"));
    }
    if request.old == 0 {
        if !request.proof.is_empty() {
            return Err(unprocessable("a proof from size 0 must be empty"));
        }
    } else if request.old == cp.size {
        if cp.root != last_root {
            return Err(fork(&state, &peer, "a second checkpoint for a size already cosigned", &request).await);
        }
    } else if tlog::verify_consistency(request.old, cp.size, &last_root, &cp.root, &request.proof).is_err() {
        return Err(fork(&state, &peer, "not consistent with the last cosigned checkpoint", &request).await);
    }
    // The link line for this node must be this node's side of the ratchet at that version.
    let links = cp.links().map_err(|_| unprocessable("malformed link lines"))?;
    let line = links
        .iter()
        .find(|l| l.neighbour == state.name())
        .ok_or_else(|| unprocessable("no link line for this node"))?;
    let ours = {
        let read = state.read();
        let log = read.projections.link_log(&peer);
        let count = u64::try_from(log.len()).unwrap_or(u64::MAX);
        match line.version {
            0 => read.projections.peer(&peer).map(|p| ledger::ratchet::blake3_genesis(&p.initial_hash)),
            v if v <= count => log.get(usize::try_from(v - 1).unwrap_or(usize::MAX)).map(|v| v.blake3),
            _ => None,
        }
    };
    match ours {
        None => return Err(unprocessable("the link line is ahead of this node's side of the link")),
        Some(head) if head != line.head => {
            return Err(
                fork(&state, &peer, "the link line disagrees with this node's side of the ratchet", &request).await
            );
        }
        Some(_) => {}
    }
    if request.old == cp.size {
        // Already cosigned this very tree: cosign it again (a retry), no new record.
        let output = state
            .submit(NodeCommand::Cosign {
                peer,
                size: cp.size,
                root: cp.root,
                text: request.signed.note.text.clone(),
                again: true,
            })
            .await
            .map_err(crate::app::write_error)?;
        return cosignature_answer(output);
    }
    let output = state
        .submit(NodeCommand::Cosign {
            peer,
            size: cp.size,
            root: cp.root,
            text: request.signed.note.text.clone(),
            again: false,
        })
        .await
        .map_err(crate::app::write_error)?;
    cosignature_answer(output)
}

fn cosignature_answer(output: NodeOutput) -> ApiResult<Response> {
    match output {
        NodeOutput::Cosignature(line) => Ok(text(StatusCode::OK, "text/plain; charset=utf-8", line)),
        _ => Err(ApiError::failure("no cosignature")),
    }
}
