//! The proof routes (issue 11): the node's verifier key, signed checkpoints,
//! inclusion, consistency and balance proofs, statements, and the admin
//! routes that sign a checkpoint or rotate the node's key now.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::AccountId;
use serde_json::{json, Value};
use tlog::{BalanceTree, VerifierKey};

use super::Params;
use crate::app::AppState;
use crate::auth::Caller;
use crate::checkpoint::{new_seed, sync_parent, write_key, KeyError, KEY_FILE, NEXT_KEY_FILE};
use crate::error::{ApiError, ApiResult};
use crate::machine::NodeCommand;

/// The proof routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/node/key", get(node_key))
        .route("/checkpoint", get(get_checkpoint))
        .route("/admin/checkpoint", post(admin_checkpoint))
        .route("/admin/node/key", post(admin_rotate_key))
        .route("/proof/inclusion", get(proof_inclusion))
        .route("/proof/consistency", get(proof_consistency))
        .route("/proof/balance", get(proof_balance))
        .route("/statement", get(statement))
}

/// This node's verifier key, once it has a key.
pub fn verifier_key(state: &AppState) -> Option<VerifierKey> {
    let key = state.read().projections.facts().node_key?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).ok()?;
    VerifierKey::new(state.origin(), tlog::KeyType::Ed25519, key).ok()
}

fn text(body: String) -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn number(params: &Params, key: &str) -> ApiResult<Option<u64>> {
    match params.0.get(key).map(String::as_str) {
        None => Ok(None),
        Some(v) => tlog::checkpoint::parse_decimal(v)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(key, "expected a whole number without leading zeroes")),
    }
}

fn only(params: &Params, known: &[&str]) -> ApiResult<()> {
    for key in params.0.keys() {
        if !known.contains(&key.as_str()) {
            return Err(ApiError::invalid_field(key, format!("unknown parameter; known: {}", known.join(", "))));
        }
    }
    Ok(())
}

/// The checkpoint of `size` (default: the latest), as (size, note).
fn checkpoint_at(state: &AppState, size: Option<u64>) -> ApiResult<(u64, String)> {
    let read = state.read();
    let size = size.or_else(|| read.latest_checkpoint().map(|(s, _)| s));
    size.and_then(|s| read.published(s).map(|n| (s, n)))
        .ok_or_else(|| ApiError::does_not_exist("checkpoint", size.map_or("latest".to_owned(), |s| s.to_string())))
}

/// `GET /node/key`: the node's C2SP verifier key.
#[utoipa::path(get, path = "/node/key", tag = "proofs",
    responses((status = 200, description = "The node's verifier key (`<origin>+<key id hex>+<base64(0x01 ‖ Ed25519 public key)>`) and a newline", content((String = "text/plain"))),
              (status = 404, description = "The node has no key yet")))]
pub async fn node_key(State(state): State<AppState>) -> ApiResult<Response> {
    let vkey = verifier_key(&state).ok_or_else(|| ApiError::does_not_exist("node key", state.name()))?;
    Ok(text(format!("{vkey}\n")))
}

/// `GET /checkpoint[?size=N]`: a signed checkpoint.
#[utoipa::path(get, path = "/checkpoint", tag = "proofs",
    params(("size" = Option<u64>, Query, description = "The tree size of an earlier checkpoint (default: the latest)")),
    responses((status = 200, description = "A C2SP signed note: origin, size, base64 root, `balances` and `link` lines, blank line, signatures", content((String = "text/plain"))),
              (status = 400, description = "Malformed parameter"), (status = 404, description = "No checkpoint of that size")))]
pub async fn get_checkpoint(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    only(&params, &["size"])?;
    let (_, note) = checkpoint_at(&state, number(&params, "size")?)?;
    Ok(text(note))
}

/// `POST /admin/checkpoint`: signs a checkpoint now (admins only).
#[utoipa::path(post, path = "/admin/checkpoint", tag = "proofs",
    responses((status = 200, description = "The new checkpoint, or the latest when no record was written since", body = crate::schema::CheckpointMade),
              (status = 403, description = "Not an admin")))]
pub async fn admin_checkpoint(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    state.submit(NodeCommand::Checkpoint).await.map_err(crate::app::write_error)?;
    let (size, note) = checkpoint_at(&state, None)?;
    Ok(Json(json!({ "data": { "size": size, "checkpoint": note } })))
}

/// `POST /admin/node/key`: replaces the node's key; the old key signs the change.
#[utoipa::path(post, path = "/admin/node/key", tag = "proofs",
    responses((status = 200, description = "Both verifier keys", body = crate::schema::KeyRotated),
              (status = 403, description = "Not an admin")))]
pub async fn admin_rotate_key(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let old = verifier_key(&state).ok_or_else(|| ApiError::unavailable("the node has no key yet"))?;
    let _rotating = state.key_lock().lock().await;
    let seed = new_seed();
    let dir = state.data_dir().to_owned();
    let next = dir.join(NEXT_KEY_FILE);
    let _ = std::fs::remove_file(&next);
    write_key(&next, &seed).map_err(|e| {
        tracing::error!(error = %e, "writing the new node key failed");
        ApiError::failure("the new key could not be written")
    })?;
    let request_seed = seed.clone();
    let submitted = state.submit(NodeCommand::RotateKey { seed }).await;
    if let Err(error) = submitted {
        let _ = std::fs::remove_file(&next);
        return Err(crate::app::write_error(error));
    }
    // Durable: the journal names the new key. A failure here is finished at the next start.
    let renamed = std::fs::rename(&next, dir.join(KEY_FILE)).map_err(|e| KeyError::Io { path: next, source: e });
    if let Err(error) = renamed.and_then(|()| sync_parent(&dir.join(KEY_FILE))) {
        tracing::error!(%error, "the rotation is journaled but its key file was not renamed; the next start finishes it");
    }
    let new = verifier_key(&state).ok_or_else(|| ApiError::failure("the node lost its key"))?;
    // Requests to neighbours are signed with the new key from now on.
    state.peers().set_signer(&request_seed.0, new.to_string());
    tracing::warn!(old = %old, new = %new, "the node's key was rotated");
    Ok(Json(json!({ "data": { "old": old.to_string(), "new": new.to_string() } })))
}

fn b64s(hashes: &[tlog::Hash]) -> Vec<String> {
    hashes.iter().map(|h| tlog::b64(h)).collect()
}

/// `GET /proof/inclusion?seq=N[&size=M]`: record N's audit path in the tree of checkpoint M.
#[utoipa::path(get, path = "/proof/inclusion", tag = "proofs",
    params(("seq" = u64, Query, description = "The journal record (from 1)"),
           ("size" = Option<u64>, Query, description = "The size of a checkpoint at or after `seq` (default: the latest)")),
    responses((status = 200, description = "The audit path and the signed checkpoint", body = crate::schema::InclusionProof),
              (status = 400, description = "Malformed or out of range"), (status = 404, description = "No such checkpoint")))]
pub async fn proof_inclusion(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    only(&params, &["seq", "size"])?;
    let seq = number(&params, "seq")?.ok_or_else(|| ApiError::invalid_field("seq", "required"))?;
    let (size, note) = checkpoint_at(&state, number(&params, "size")?)?;
    if seq == 0 || seq > size {
        return Err(ApiError::invalid_field("seq", format!("between 1 and the checkpoint's size {size}")));
    }
    Ok(Json(inclusion_json(&state, seq, size, note)?))
}

/// The inclusion proof JSON (also inside statements).
pub fn inclusion_json(state: &AppState, seq: u64, size: u64, note: String) -> ApiResult<Value> {
    let shared = state.tree();
    let guard = crate::merkle::read(&shared);
    let tree = guard.tree().map_err(|e| ApiError::unavailable(&e.to_string()))?;
    let fail = |e: tlog::ProofError| {
        tracing::error!(error = %e, "an inclusion proof of a checkpointed size failed");
        ApiError::failure("the proof could not be made")
    };
    let proof = tree.inclusion_proof(seq - 1, size).map_err(fail)?;
    let root = tree.root_at(size).map_err(fail)?;
    let leaf = tree.leaf(seq - 1).ok_or_else(|| ApiError::failure("the proof could not be made"))?;
    drop(guard);
    Ok(json!({
        "type": "inclusion",
        "seq": seq,
        "size": size,
        "leaf_index": seq - 1,
        "leaf_hash": tlog::b64(&leaf),
        "root": tlog::b64(&root),
        "proof": b64s(&proof),
        "checkpoint": note,
    }))
}

/// `GET /proof/consistency?from=M&to=N`: checkpoint N's tree extends checkpoint M's.
#[utoipa::path(get, path = "/proof/consistency", tag = "proofs",
    params(("from" = u64, Query, description = "The size of an earlier checkpoint"),
           ("to" = Option<u64>, Query, description = "The size of a later checkpoint (default: the latest)")),
    responses((status = 200, description = "The consistency proof and both signed checkpoints", body = crate::schema::ConsistencyProof),
              (status = 400, description = "Malformed or `from` after `to`"), (status = 404, description = "No such checkpoint")))]
pub async fn proof_consistency(State(state): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    only(&params, &["from", "to"])?;
    let from = number(&params, "from")?.ok_or_else(|| ApiError::invalid_field("from", "required"))?;
    let (to, to_note) = checkpoint_at(&state, number(&params, "to")?)?;
    if from > to {
        return Err(ApiError::invalid_field("from", format!("at most `to` ({to})")));
    }
    let (_, from_note) = checkpoint_at(&state, Some(from))?;
    let shared = state.tree();
    let guard = crate::merkle::read(&shared);
    let tree = guard.tree().map_err(|e| ApiError::unavailable(&e.to_string()))?;
    let proof = tree.consistency_proof(from, to).map_err(|e| {
        tracing::error!(error = %e, "a consistency proof between checkpointed sizes failed");
        ApiError::failure("the proof could not be made")
    })?;
    drop(guard);
    Ok(Json(json!({
        "type": "consistency",
        "from": from,
        "to": to,
        "proof": b64s(&proof),
        "from_checkpoint": from_note,
        "to_checkpoint": to_note,
    })))
}

/// The local account a member may see (their own; admins any).
fn visible_account(state: &AppState, caller: &Caller, params: &Params) -> ApiResult<AccountId> {
    let me = caller.account()?.clone();
    let path = params.0.get("acc_path").map_or(me.as_str(), String::as_str);
    let path = path.strip_prefix(&format!("{}/", state.name())).unwrap_or(path);
    let id = AccountId::new(path).map_err(|_| ApiError::invalid_field("acc_path", "not a local account"))?;
    if id != me && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    if state.read().projections.account(&id).is_none() {
        return Err(ApiError::does_not_exist("account", id.as_str()));
    }
    Ok(id)
}

/// The balances tree of checkpoint `size`: the kept one, or built from the
/// leaves outside the read model's lock (a build costs about 0.5 µs per
/// account) and kept for the next proofs.
fn balance_tree(state: &AppState, size: u64) -> ApiResult<Arc<BalanceTree>> {
    if let Some(tree) = state.read().kept_balance_tree(size) {
        return Ok(tree);
    }
    let leaves = state
        .read()
        .leaves_at(size)
        .ok_or_else(|| ApiError::does_not_exist("checkpoint balances", size.to_string()))?;
    let tree = Arc::new(BalanceTree::build(leaves).map_err(|_| ApiError::failure("balances tree"))?);
    state.read().keep_balance_tree(size, Arc::clone(&tree));
    Ok(tree)
}

/// The balance proof JSON of an account at a checkpoint.
fn balance_json(state: &AppState, id: &AccountId, size: u64, note: &str) -> ApiResult<Value> {
    let tree = balance_tree(state, size)?;
    let proof = tree
        .proof(id.as_str())
        .map_err(|_| ApiError::does_not_exist("account in checkpoint", format!("{id} at {size}")))?;
    Ok(json!({
        "type": "balance",
        "size": size,
        "index": proof.index,
        "count": proof.count,
        "leaf": {
            "account": proof.leaf.account,
            "balance_micros": proof.leaf.balance.to_string(),
            "min_micros": proof.leaf.min.to_string(),
            "max_micros": proof.leaf.max.to_string(),
        },
        "path": proof.path.iter().map(|n| json!({"hash": tlog::b64(&n.hash), "sum_micros": n.sum.to_string()})).collect::<Vec<_>>(),
        "checkpoint": note,
    }))
}

/// `GET /proof/balance?acc_path=A[&size=N]`: the account's leaf in the balances tree of checkpoint N.
#[utoipa::path(get, path = "/proof/balance", tag = "proofs",
    params(("acc_path" = Option<String>, Query, description = "A local account (default: the caller's); members see their own"),
           ("size" = Option<u64>, Query, description = "A checkpoint size (default: the latest)")),
    responses((status = 200, description = "The account's leaf, its path and the signed checkpoint", body = crate::schema::BalanceProofJson),
              (status = 400, description = "Malformed"), (status = 403, description = "Another member's account"),
              (status = 404, description = "No such account or checkpoint, or its balances are no longer kept")))]
pub async fn proof_balance(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    only(&params, &["acc_path", "size"])?;
    let id = visible_account(&state, &caller, &params)?;
    let (size, note) = checkpoint_at(&state, number(&params, "size")?)?;
    Ok(Json(balance_json(&state, &id, size, &note)?))
}

/// `GET /statement?acc_path=A`: a self-contained, offline-checkable statement.
#[utoipa::path(get, path = "/statement", tag = "proofs",
    params(("acc_path" = Option<String>, Query, description = "A local account (default: the caller's); members see their own")),
    responses((status = 200, description = "The account's completed balance and limits at the latest checkpoint, with the proof that the signed balances root holds them", body = crate::schema::Statement),
              (status = 403, description = "Another member's account"), (status = 404, description = "No such account, or no checkpoint yet")))]
pub async fn statement(State(state): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<Value>> {
    only(&params, &["acc_path"])?;
    let id = visible_account(&state, &caller, &params)?;
    let (size, note) = checkpoint_at(&state, None)?;
    let proof = balance_json(&state, &id, size, &note)?;
    let decimal = |key: &str| {
        let micros: i128 = proof["leaf"][key].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        rust_decimal::Decimal::from_i128_with_scale(micros, 6).normalize().to_string()
    };
    Ok(Json(json!({
        "type": "ccnode-statement/v1",
        "origin": state.origin(),
        "account": id.as_str(),
        "balance": decimal("balance_micros"),
        "min": decimal("min_micros"),
        "max": decimal("max_micros"),
        "size": size,
        "checkpoint": note,
        "balance_proof": proof,
    })))
}
