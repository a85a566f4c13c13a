//! Verifiable ledger (issue 11): the node's Ed25519 key, the RFC 6962 tree
//! over its journal, signed checkpoints, and the proof routes.
//!
//! - The key is a 32-byte seed in `DATA/node.key` (0600), made at first
//!   start; its public half is journaled (`NodeKeySet`). A rotation writes the
//!   new seed to `DATA/node.key.next`, journals `NodeKeyRotated` signed by the
//!   old key, then renames the file over `node.key`; a start finishes or
//!   forgets a rotation that a crash interrupted (`settle_key`).
//! - Leaf n of the tree (0-based) is `SHA-256(0x00 ‖ hash of journal record n+1)`.
//!   The writer's decider predicts every record's chain hash (the journal's
//!   rule, `journal::record_hash`) and appends it to the shared tree, so a
//!   checkpoint decided after record N commits to exactly records 1..N and to
//!   the balances and link heads as of N; the appender checks the prediction
//!   against what the journal wrote.
//! - Checkpoints are C2SP signed notes, journaled (`CheckpointSigned`, always
//!   record N+1) and folded by size into the projections; the balances and
//!   limits of any checkpoint are recomputed from the balance timelines and
//!   limit history for balance proofs (`ReadModel::leaves_at`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{Account, AccountId, Amount, LedgerView};
use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Value};
use tlog::{BalanceLeaf, BalanceTree, Checkpoint, LinkLine, Note, NoteSigner, VerifierKey};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::node::{AppState, NodeCommand, NodeOutput};
use crate::routes::Params;

/// The node's key file, in the data directory.
pub const KEY_FILE: &str = "node.key";
/// A rotation's new key until its event is durable.
pub const NEXT_KEY_FILE: &str = "node.key.next";
/// First line of a key file.
const KEY_FILE_HEADER: &str = "ccnode node key v1 (Ed25519 seed, base64)";

/// A secret seed that never shows in logs.
#[derive(Clone)]
pub struct Seed(pub [u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<secret>)")
    }
}

/// Why the node's key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing it failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a key file.
    #[error("{path} is not a ccnode key file")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The key file does not hold the key the journal names.
    #[error(
        "{path} holds the key {found}, but the journal says the node's key is {journaled}: restore the node's key \
         file (a node cannot sign for its journal without it)"
    )]
    NotTheJournaledKey {
        /// The file.
        path: PathBuf,
        /// Its public key, hex.
        found: String,
        /// The journal's, hex.
        journaled: String,
    },
    /// The journal names a key but no key file exists.
    #[error("the journal says the node's key is {journaled}, but {path} does not exist: restore it from a backup")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The journal's key, hex.
        journaled: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_owned(), source }
}

/// A fresh seed from the operating system's generator.
pub fn new_seed() -> Seed {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    Seed(seed)
}

/// Reads a key file; `None` when it does not exist.
pub fn read_key(path: &Path) -> Result<Option<Seed>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let malformed = || KeyError::Malformed { path: path.to_owned() };
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_HEADER) {
        return Err(malformed());
    }
    let seed = lines.next().and_then(tlog::unb64).ok_or_else(malformed)?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| malformed())?;
    Ok(Some(Seed(seed)))
}

/// Writes a new key file, owner-only (0600), synced with its directory.
pub fn write_key(path: &Path, seed: &Seed) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    let text = format!("{KEY_FILE_HEADER}\n{}\n", tlog::b64(&seed.0));
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io(path))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), KeyError> {
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    Ok(())
}

/// The public key of a seed.
pub fn public_key(seed: &Seed) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed.0).verifying_key().to_bytes()
}

/// What a start must do about the node's key.
#[derive(Debug)]
pub struct SettledKey {
    /// The seed to sign with.
    pub seed: Seed,
    /// Whether its public key must still be journaled (`NodeKeySet`).
    pub journal_it: bool,
}

/// Finds the node's key at start, given the key the journal names: makes
/// one on a new node, finishes a rotation whose event is durable (renames
/// `node.key.next`), forgets one whose event is not, and refuses a key file
/// that is not the journal's key.
pub fn settle_key(data_dir: &Path, journaled: Option<&[u8; 32]>) -> Result<SettledKey, KeyError> {
    let path = data_dir.join(KEY_FILE);
    let next_path = data_dir.join(NEXT_KEY_FILE);
    let current = read_key(&path)?;
    let next = read_key(&next_path)?;
    let hex = |k: &[u8; 32]| tlog::checkpoint::hex(k);
    match journaled {
        None => {
            if next.is_some() {
                std::fs::remove_file(&next_path).map_err(io(&next_path))?;
            }
            let seed = match current {
                Some(seed) => seed,
                None => {
                    let seed = new_seed();
                    write_key(&path, &seed)?;
                    tracing::info!(path = %path.display(), "created the node's key");
                    seed
                }
            };
            Ok(SettledKey { seed, journal_it: true })
        }
        Some(k) => {
            if let Some(next) = next {
                if &public_key(&next) == k {
                    std::fs::rename(&next_path, &path).map_err(io(&path))?;
                    sync_parent(&path)?;
                    tracing::info!("finished a key rotation that a stop interrupted");
                    return Ok(SettledKey { seed: next, journal_it: false });
                }
                std::fs::remove_file(&next_path).map_err(io(&next_path))?;
                tracing::warn!("forgot a key rotation that was never journaled");
            }
            match current {
                Some(seed) if &public_key(&seed) == k => Ok(SettledKey { seed, journal_it: false }),
                Some(seed) => {
                    Err(KeyError::NotTheJournaledKey { path, found: hex(&public_key(&seed)), journaled: hex(k) })
                }
                None => Err(KeyError::Missing { path, journaled: hex(k) }),
            }
        }
    }
}

/// Micro-units of an amount (exact: amounts have at most 6 decimal places).
pub fn micros(amount: Amount) -> Option<i128> {
    (amount.as_decimal() * rust_decimal::Decimal::from(1_000_000)).trunc().to_i128()
}

/// The balances-tree leaves of accounts as decided: completed balance and limits.
pub fn balance_leaves<'a>(
    accounts: impl Iterator<Item = &'a Account>,
    view: &impl LedgerView,
) -> Option<Vec<BalanceLeaf>> {
    leaves_of(accounts.map(|a| (&a.id, view.balances(&a.id).completed, a.limits)))
}

/// Balances-tree leaves of `(account, completed balance, limits)` rows, in
/// their order; `None` when a figure does not fit a leaf.
pub fn leaves_of<'a>(
    rows: impl IntoIterator<Item = (&'a AccountId, Amount, ledger::Limits)>,
) -> Option<Vec<BalanceLeaf>> {
    rows.into_iter()
        .map(|(id, balance, limits)| {
            Some(BalanceLeaf {
                account: id.as_str().to_owned(),
                balance: micros(balance)?,
                min: micros(limits.min())?,
                max: micros(limits.max())?,
            })
        })
        .collect()
}

/// Makes and signs the checkpoint of the first `size` records.
pub fn sign_checkpoint(
    signer: &NoteSigner,
    size: u64,
    root: tlog::Hash,
    leaves: Vec<BalanceLeaf>,
    links: Vec<LinkLine>,
) -> Result<String, String> {
    let tree = BalanceTree::build(leaves).map_err(|e| e.to_string())?;
    let top = tree.root().map_err(|e| e.to_string())?;
    if top.sum != 0 {
        return Err(format!("the balances sum to {} micro-units, not zero", top.sum));
    }
    let balances = tree.commitment().map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::ccnode(signer.name(), size, root, balances, links);
    let text = checkpoint.text();
    let note = Note { signatures: vec![signer.sign(&text)], text };
    Ok(note.encode())
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
    state.submit(NodeCommand::Checkpoint).await.map_err(crate::routes::write_error)?;
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
    let submitted = state.submit(NodeCommand::RotateKey { seed }).await;
    if let Err(error) = submitted {
        let _ = std::fs::remove_file(&next);
        return Err(crate::routes::write_error(error));
    }
    // Durable: the journal names the new key. A failure here is finished at the next start.
    let renamed = std::fs::rename(&next, dir.join(KEY_FILE)).map_err(|e| KeyError::Io { path: next, source: e });
    if let Err(error) = renamed.and_then(|()| sync_parent(&dir.join(KEY_FILE))) {
        tracing::error!(%error, "the rotation is journaled but its key file was not renamed; the next start finishes it");
    }
    let new = verifier_key(&state).ok_or_else(|| ApiError::failure("the node lost its key"))?;
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

/// The balance proof JSON of an account at a checkpoint.
fn balance_json(state: &AppState, id: &AccountId, size: u64, note: &str) -> ApiResult<Value> {
    let leaves = state
        .read()
        .leaves_at(size)
        .ok_or_else(|| ApiError::does_not_exist("checkpoint balances", size.to_string()))?;
    let tree = BalanceTree::build(leaves.as_ref().clone()).map_err(|_| ApiError::failure("balances tree"))?;
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

/// Signs a checkpoint every `interval` (if records were written since the
/// last one) and whenever `records` were written, until `stop` changes.
pub async fn checkpoint_loop(
    state: AppState,
    interval: std::time::Duration,
    records: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if interval.is_zero() && records == 0 {
        return;
    }
    let mut durable = state.durable_head();
    let mut tick =
        tokio::time::interval(if interval.is_zero() { std::time::Duration::from_secs(3600) } else { interval });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let due = tokio::select! {
            _ = tick.tick() => !interval.is_zero(),
            changed = durable.changed() => {
                if changed.is_err() {
                    return;
                }
                let head = *durable.borrow_and_update();
                let last = state.read().latest_checkpoint().map_or(0, |(s, _)| s);
                records > 0 && head >= last + records
            }
            _ = stop.changed() => return,
        };
        if due {
            match state.submit(NodeCommand::Checkpoint).await {
                Ok(NodeOutput::Checkpointed { size }) => tracing::debug!(size, "signed a checkpoint"),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %crate::node::describe_write_error(&error), "no checkpoint"),
            }
        }
    }
}
