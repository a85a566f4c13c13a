//! The federation routes: a neighbour's relay (`POST /transaction/relay`),
//! the link feed and reconciliation (`/replay/link/{node}`,
//! `/replay/reconcile/{node}`), and the tree's administration (children,
//! parent, fees, a link's initial hash, reopening a closed link).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ledger::{AccountId, AccountKind, Amount, Command, Dialect, LedgerView, Limits, Peer, Rate};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{AppPath, Params};
use crate::app::{submit, AppState};
use crate::attempts::{valid_name, Fence, FENCE_IDS_MAX};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::federation::reconcile::{reconcile_link, version_json, LINK_PAGE_MAX};
use crate::federation::{self, connect_commands_in, RelayBody};
use crate::http::AppJson;
use crate::machine::NodeCommand;
use crate::peers::{hash_at, proves_recent};
use crate::wire::{envelope, parse_amount};

/// Longest neighbour URL accepted.
pub const URL_BYTES_MAX: usize = 512;

/// The federation routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/nodes", post(admin_new_child).get(admin_list_nodes))
        .route("/admin/trunkward", put(admin_set_trunkward))
        .route("/admin/fees", put(admin_set_fees))
        .route("/transaction/relay", post(relay))
        .route("/replay/link/{node}", get(link_feed))
        .route("/replay/reconcile/{node}", post(reconcile_route))
        .route("/admin/nodes/{node}/reopen", post(reopen_route))
        .route("/admin/nodes/{node}/rotate", post(admin_rotate))
}

/// A neighbour relays a proposal: validate it here (limits on our two
/// adjacent accounts), relay it on if it goes further, record it validated.
#[utoipa::path(post, path = "/transaction/relay", tag = "federation", request_body = RelayBody,
    responses((status = 201, description = "Validated here and downstream: `{data: [additional entries]}`", body = crate::schema::RelayAnswer),
              (status = 400, description = "A violation here or downstream (passed back untouched)"),
              (status = 401, description = "AuthViolation: a keyed link's request without a valid signature by the neighbour's key"),
              (status = 403, description = "Not called by a neighbour node"), (status = 503, description = "UnavailableNodeFailure: a neighbour downstream did not answer")))]
pub async fn relay(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(raw): AppJson<Box<RawValue>>,
) -> ApiResult<Response> {
    let Caller::Node { account: from } = caller else { return Err(ApiError::forbidden()) };
    federation::receive_relay(&state, from, &headers, &raw).await
}

/// The versions written on the link with `node`, for that node only. It proves
/// who it is with the hash at position `after` of the link (the agreed initial
/// hash for 0), which works even when the two heads differ.
#[utoipa::path(get, path = "/replay/link/{node}", tag = "federation",
    params(("node" = String, Path, description = "The calling neighbour"), ("after" = Option<usize>, Query, description = "Versions to skip"),
           ("limit" = Option<usize>, Query, description = "Page size (up to 10000)")),
    responses((status = 200, description = "`{data: [{uuid, version, state, md5, blake3}], meta: {count, head}}`", body = crate::schema::LinkFeedAnswer),
              (status = 401, description = "AuthViolation: a keyed link's request without a valid signature by the neighbour's key"),
              (status = 403, description = "PermissionViolation: not that neighbour"),
              (status = 409, description = "HashMismatchFailure: the caller's hash at `after` is not ours")))]
pub async fn link_feed(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    AppPath(node): AppPath<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let caller = headers.get("cc-node").and_then(|v| v.to_str().ok()).unwrap_or("");
    let hash = headers.get("last-hash").and_then(|v| v.to_str().ok()).unwrap_or("");
    if caller != node {
        return Err(ApiError::forbidden());
    }
    if let Ok(id) = AccountId::new(&node) {
        // A keyed link's feed opens only to that neighbour's signature.
        crate::auth::check_signature(&state, &id, &method, &uri, &headers)?;
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
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let boot = header("cc-boot").map(str::to_owned);
    let fenced: Vec<String> = header("cc-fence").map(|f| f.split(',').map(str::to_owned).collect()).unwrap_or_default();
    if boot.as_deref().is_some_and(|b| !valid_name(b))
        || fenced.len() > FENCE_IDS_MAX
        || fenced.iter().any(|a| !valid_name(a))
        || (boot.is_none() && !fenced.is_empty())
    {
        return Err(ApiError::invalid_field(
            "cc-fence",
            format!("cc-boot and up to {FENCE_IDS_MAX} attempts, each 1 to 64 letters, digits or dashes"),
        ));
    }
    let proved = {
        let read = state.read();
        let initial = read.projections.peer(&id).map(|p| p.initial_hash.clone()).ok_or_else(ApiError::forbidden)?;
        let log = read.projections.link_log(&id);
        // Authenticated before anything is shown, at every `after`: the caller
        // proves one of our last FEED_CREDENTIAL_VERSIONS link hashes (it may
        // not have written the versions we wrote last: it lost them in a
        // crash, or left them in doubt). The agreed initial hash, which may
        // be guessable, opens the feed for the first exchange only, unless
        // the link is keyed (its signature was checked above).
        let signed = read.projections.facts().peer_keys.contains_key(&id);
        let before = headers.get("cc-hash-before").and_then(|v| v.to_str().ok());
        proves_recent(&initial, log, hash, signed) || before.is_some_and(|b| proves_recent(&initial, log, b, signed))
    };
    if proved {
        if let Some(boot) = &boot {
            // Fenced before the feed is read, so the feed is final for them.
            // After a restart, an attempt of the caller's we do not know may
            // have been passed on to another neighbour before the crash:
            // every other link is reconciled first (not the caller's own,
            // whose versions are in our journal or were never written, so
            // that two restarted neighbours do not wait for each other).
            let settled = {
                let read = state.read();
                let mut open = read.ccnode_neighbours();
                open.retain(|p| p != &id && read.closed(p).is_none());
                state.peers().all_reconciled(&open)
            };
            if let Fence::NotYet(why) = state.peers().attempts().fence(&id, boot, &fenced, settled) {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UnavailableNodeFailure")
                    .with("translated", format!("{why}; ask again later")));
            }
        }
    }
    let answer = {
        let read = state.read();
        let initial = read.projections.peer(&id).map(|p| p.initial_hash.clone()).ok_or_else(ApiError::forbidden)?;
        let log = read.projections.link_log(&id);
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

/// `POST /admin/nodes`: a child node, on the parent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChild {
    /// The child node's name (its account here).
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "branch2")]
    pub id: String,
    /// Its base URL.
    #[schema(pattern = "^https?://[!-~]{1,500}$", example = "http://127.0.0.1:9")]
    pub url: String,
    /// Lower limit of its account here.
    #[schema(value_type = crate::schema::AmountIn)]
    pub min: Box<RawValue>,
    /// Upper limit.
    #[schema(value_type = crate::schema::AmountIn)]
    pub max: Box<RawValue>,
    /// The link's agreed initial ratchet hash (the same on both sides);
    /// required unless the dialect is `reference`, whose initial hash is the
    /// empty string (a reference node with no `hash_history` row for the link).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{0,128}$", example = "initial-hash")]
    pub last_hash: Option<String>,
    /// How the child speaks: `reference` (the PHP reference node 0.8.5's
    /// wire), `ccnode` (between two ccnodes) or `komunitin`. Default:
    /// `ccnode` when `public_key` is given, else `reference`.
    #[serde(default)]
    #[schema(pattern = "^(reference|ccnode|komunitin)$", example = "reference")]
    pub dialect: Option<String>,
    /// The child's key, its `GET /node/key` (a C2SP Ed25519 verifier key,
    /// `name+hash+base64`): this node then witnesses its checkpoints, as
    /// `PUT /admin/nodes/{node}/key` sets it, and the link is keyed: every
    /// request from the child must carry its RFC 9421 signature.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// `PUT /admin/trunkward`: the parent node, on the child.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Trunkward {
    /// The parent node's name (the balance-of-trade account here).
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "trunk")]
    pub name: String,
    /// Its base URL.
    #[schema(pattern = "^https?://[!-~]{1,500}$", example = "http://127.0.0.1:9")]
    pub url: String,
    /// Conversion rate: trunkward amount = local amount × rate.
    #[schema(value_type = crate::schema::AmountIn)]
    pub rate: Box<RawValue>,
    /// Lower limit of the balance-of-trade account.
    #[schema(value_type = crate::schema::AmountIn)]
    pub min: Box<RawValue>,
    /// Upper limit.
    #[schema(value_type = crate::schema::AmountIn)]
    pub max: Box<RawValue>,
    /// The link's agreed initial ratchet hash; required unless the dialect
    /// is `reference` (default there: the empty string, as a reference node starts).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{0,128}$", example = "initial-hash")]
    pub last_hash: Option<String>,
    /// How the parent speaks: `reference` (the PHP reference node 0.8.5's
    /// wire), `ccnode` (between two ccnodes) or `komunitin`. Default:
    /// `ccnode` when `public_key` is given, else `reference`.
    #[serde(default)]
    #[schema(pattern = "^(reference|ccnode|komunitin)$", example = "reference")]
    pub dialect: Option<String>,
    /// The parent's key, its `GET /node/key` (a C2SP Ed25519 verifier key,
    /// `name+hash+base64`): this node then witnesses its checkpoints, and
    /// the link is keyed: every request from the parent must carry its
    /// RFC 9421 signature (`--trunkward-public-key` at first start).
    #[serde(default)]
    pub public_key: Option<String>,
}

fn check_url(url: &str) -> ApiResult<()> {
    if url.len() > URL_BYTES_MAX || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid_field("url", "an http:// or https:// URL"));
    }
    Ok(())
}

fn check_hash(hash: &str) -> ApiResult<()> {
    if hash.is_empty() || hash.len() > 128 || !hash.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field("last_hash", "1 to 128 visible ASCII characters"));
    }
    Ok(())
}

/// A graft's initial hash: given, or the empty string a reference node
/// starts a link with; only a reference link may start empty.
pub fn initial_hash_for(dialect: Dialect, given: Option<String>) -> ApiResult<String> {
    match (dialect, given) {
        (Dialect::Reference, None) => Ok(String::new()),
        (Dialect::Reference, Some(hash)) if hash.is_empty() => Ok(hash),
        (_, Some(hash)) => check_hash(&hash).map(|()| hash),
        (_, None) => Err(ApiError::invalid_field("last_hash", "required on a ccnode or komunitin link")),
    }
}

/// `POST /admin/nodes/{node}/rotate` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// The new initial link hash, agreed with the neighbour's operator (1 to 128 visible ASCII characters).
    #[schema(example = "a-secret-both-operators-chose")]
    pub last_hash: String,
}

/// Replaces a link's agreed initial hash before its first exchange (admin
/// only; both sides do it with the same value). The initial hash authenticates
/// a link until its first written versions; an initial hash that was guessed
/// or leaked (the default is the parent's name) is rotated here. A link that
/// has written a version is authenticated by its head instead: 409.
#[utoipa::path(post, path = "/admin/nodes/{node}/rotate", tag = "admin", request_body = Rotate,
    params(("node" = String, Path, description = "A neighbour")),
    responses((status = 200, description = "`{data: {node, rotated: true}}`", body = crate::schema::RotateAnswer),
              (status = 409, description = "CCOtherViolation: the link has written versions", body = crate::schema::ErrorBody),
              (status = 403, description = "Not an admin", body = crate::schema::ErrorBody)))]
pub async fn admin_rotate(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(node): AppPath<String>,
    AppJson(body): AppJson<Rotate>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    check_hash(&body.last_hash)?;
    let id = AccountId::new(&node).map_err(|_| ApiError::does_not_exist("node", node.as_str()))?;
    let lock = state.peers().lock_for(&id);
    let _link = lock.lock().await;
    let peer = {
        let read = state.read();
        let peer =
            read.projections.peer(&id).cloned().ok_or_else(|| ApiError::does_not_exist("node", node.as_str()))?;
        if read.ratchet(&id).is_some_and(|r| r.count > 0) {
            return Err(ApiError::new(StatusCode::CONFLICT, "CCOtherViolation").with(
                "translated",
                "the link has written versions: its head, not the initial hash, authenticates it now",
            ));
        }
        Peer { initial_hash: body.last_hash, ..peer }
    };
    submit(&state, NodeCommand::Ledger(Command::ConnectPeer { peer })).await?;
    tracing::info!(%id, "rotated the link's initial hash");
    Ok(Json(envelope(json!({"node": node, "rotated": true}), None, None)))
}

/// The dialect a graft names, or its default: a neighbour that gave its
/// key is another ccnode, one without is taken to speak the reference's wire.
fn dialect_of(name: Option<&str>, keyed: bool) -> ApiResult<Dialect> {
    match name {
        None if keyed => Ok(Dialect::Ccnode),
        None => Ok(Dialect::Reference),
        Some(name) => {
            Dialect::parse(name).ok_or_else(|| ApiError::invalid_field("dialect", "reference, ccnode or komunitin"))
        }
    }
}

/// A graft's `public_key`, checked before anything is written.
fn peer_key(text: Option<&str>) -> ApiResult<Option<tlog::VerifierKey>> {
    text.map(|t| {
        tlog::VerifierKey::parse(t)
            .ok()
            .filter(|k| k.kind == tlog::KeyType::Ed25519)
            .ok_or_else(|| ApiError::invalid_field("public_key", "an Ed25519 C2SP verifier key (GET /node/key)"))
    })
    .transpose()
}

/// Records a grafted neighbour's checkpoint key (`PeerKeySet`), as `PUT /admin/nodes/{node}/key` does.
async fn set_peer_key(state: &AppState, peer: &AccountId, key: Option<&tlog::VerifierKey>) -> ApiResult<()> {
    let Some(key) = key else { return Ok(()) };
    let command =
        NodeCommand::SetPeerKey { peer: peer.clone(), origin: key.name.clone(), public_key: key.key.to_bytes() };
    submit(state, command).await.map(drop)
}

fn limits_of(min: &RawValue, max: &RawValue) -> ApiResult<Limits> {
    let (min, max): (Amount, Amount) = (parse_amount("min", min)?, parse_amount("max", max)?);
    Limits::new(min, max)
        .map_err(|_| ApiError::invalid_fields(&[("min", "must be <= 0".into()), ("max", "must be >= 0".into())]))
}

/// Connects a child node (admin only, on the parent).
#[utoipa::path(post, path = "/admin/nodes", tag = "admin", request_body = NewChild,
    responses((status = 201, description = "`{data: {id, url, min, max, dialect}}`", body = crate::schema::ChildAnswer), (status = 400, description = "Bad fields or the id exists"),
              (status = 403, description = "Not an admin")))]
pub async fn admin_new_child(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<NewChild>,
) -> ApiResult<Response> {
    caller.admin()?;
    let id = AccountId::new(&body.id).map_err(|e| ApiError::invalid_field("id", e.to_string()))?;
    check_url(&body.url)?;
    let key = peer_key(body.public_key.as_deref())?;
    let dialect = dialect_of(body.dialect.as_deref(), key.is_some())?;
    let last_hash = initial_hash_for(dialect, body.last_hash)?;
    let limits = limits_of(&body.min, &body.max)?;
    let commands =
        connect_commands_in(id.clone(), AccountKind::Leafward, limits, body.url.clone(), Rate::ONE, last_hash, dialect);
    submit(&state, NodeCommand::Many(commands)).await?;
    set_peer_key(&state, &id, key.as_ref()).await?;
    let data = json!({"id": id.as_str(), "url": body.url, "min": crate::wire::amount_value(limits.min()), "max": crate::wire::amount_value(limits.max()), "dialect": dialect.name(), "public_key": key.map(|k| k.to_string())});
    Ok((StatusCode::CREATED, Json(envelope(data, None, None))).into_response())
}

/// Sets this node's parent (admin only, on the child).
#[utoipa::path(put, path = "/admin/trunkward", tag = "admin", request_body = Trunkward,
    responses((status = 201, description = "`{data: {name, url, rate, min, max, dialect}}`", body = crate::schema::TrunkwardAnswer), (status = 400, description = "Bad fields or a parent is already set"),
              (status = 403, description = "Not an admin")))]
pub async fn admin_set_trunkward(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<Trunkward>,
) -> ApiResult<Response> {
    caller.admin()?;
    let name = AccountId::new(&body.name).map_err(|e| ApiError::invalid_field("name", e.to_string()))?;
    check_url(&body.url)?;
    let key = peer_key(body.public_key.as_deref())?;
    let dialect = dialect_of(body.dialect.as_deref(), key.is_some())?;
    let last_hash = initial_hash_for(dialect, body.last_hash)?;
    let limits = limits_of(&body.min, &body.max)?;
    let rate_text = parse_amount("rate", &body.rate)?;
    let rate = Rate::new(rate_text.as_decimal()).map_err(|_| ApiError::invalid_field("rate", "must be positive"))?;
    let commands =
        connect_commands_in(name.clone(), AccountKind::Trunkward, limits, body.url.clone(), rate, last_hash, dialect);
    submit(&state, NodeCommand::Many(commands)).await?;
    set_peer_key(&state, &name, key.as_ref()).await?;
    let data = json!({"name": name.as_str(), "url": body.url, "rate": rate.to_string(), "min": crate::wire::amount_value(limits.min()), "max": crate::wire::amount_value(limits.max()), "dialect": dialect.name(), "public_key": key.map(|k| k.to_string())});
    Ok((StatusCode::CREATED, Json(envelope(data, None, None))).into_response())
}

/// The neighbours of this node with each link's ratchet head (admin only).
#[utoipa::path(get, path = "/admin/nodes", tag = "admin",
    responses((status = 200, description = "`{data: {node: {kind, url, rate, last_hash, blake3, versions, balance, dialect, closed, in_doubt}}}` (`closed`: the evidence while the link is closed after a divergence, else null; `in_doubt`: changes sent on the link whose outcome is not known yet)", body = crate::schema::NodesAnswer),
              (status = 403, description = "Not an admin")))]
pub async fn admin_list_nodes(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let read = state.read();
    let mut data = serde_json::Map::new();
    for peer in &read.neighbours() {
        let Some(ratchet) = read.ratchet(peer) else { continue };
        let facts = read.projections.peer(peer);
        let kind =
            read.projections
                .account(peer)
                .map(|a| if a.kind == AccountKind::Trunkward { "trunkward" } else { "leafward" });
        let balance = read.projections.balances(peer).unwrap_or_default();
        data.insert(
            peer.to_string(),
            json!({
                "kind": kind,
                "url": facts.map(|p| p.url.clone()),
                "rate": facts.map(|p| p.rate.to_string()),
                "last_hash": ratchet.md5,
                "blake3": ledger::ratchet::hex(&ratchet.blake3),
                "versions": ratchet.count,
                "balance": crate::wire::amount_value(balance.completed),
                "dialect": read.projections.dialect(peer).name(),
                "closed": read.closed(peer),
                "in_doubt": state.peers().doubts().count(peer),
            }),
        );
    }
    Ok(Json(envelope(Value::Object(data), None, None)))
}

/// `PUT /admin/fees`: what this node charges on transactions crossing it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fees {
    /// The local account fees are paid to; `null` stops charging.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "admin")]
    pub account: Option<String>,
    /// A fixed amount per transaction (default 0).
    #[schema(value_type = Option<crate::schema::AmountIn>)]
    pub fixed: Option<Box<RawValue>>,
    /// A percentage of the primary amount (default 0; `1.5` = 1.5 %).
    #[schema(value_type = Option<crate::schema::AmountIn>)]
    pub percent: Option<Box<RawValue>>,
}

/// Sets the fees this node charges on transactions that cross it (admin only).
/// Fees are paid by the payer, added as entries on the way, and never charged on fees.
#[utoipa::path(put, path = "/admin/fees", tag = "admin", request_body = Fees,
    responses((status = 200, description = "`{data: {account, fixed, percent}}` (`data: null` when charging stopped)", body = crate::schema::FeesAnswer), (status = 400, description = "Bad fields"),
              (status = 403, description = "Not an admin")))]
pub async fn admin_set_fees(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<Fees>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    let policy = match body.account {
        None => None,
        Some(account) => {
            let account = AccountId::new(&account).map_err(|e| ApiError::invalid_field("account", e.to_string()))?;
            let fixed = body.fixed.as_deref().map(|v| parse_amount("fixed", v)).transpose()?.unwrap_or(Amount::ZERO);
            let percent =
                body.percent.as_deref().map(|v| parse_amount("percent", v)).transpose()?.unwrap_or(Amount::ZERO);
            Some(ledger::federation::FeePolicy { account, fixed, percent })
        }
    };
    submit(&state, NodeCommand::Ledger(Command::ConfigureFees { policy: policy.clone() })).await?;
    let data = match policy {
        Some(p) => {
            json!({"account": p.account.as_str(), "fixed": crate::wire::amount_value(p.fixed), "percent": crate::wire::amount_value(p.percent)})
        }
        None => Value::Null,
    };
    Ok(Json(envelope(data, None, None)))
}
