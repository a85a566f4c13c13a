//! Account keys: stored only as salted blake3 hashes; requests carry the key
//! in `cc-auth` next to the account id in `cc-user` (the 0.8.x scheme).
//!
//! Keys are API tokens that a platform generates and keeps, not passwords a
//! person remembers: a fast keyed hash is the right tool (every request is
//! authenticated), and the salt keeps equal keys from having equal hashes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ledger::{AccountId, KeyHash};
use rand::RngCore;

use crate::app::AppState;
use crate::error::ApiError;
use crate::peers::{hash_at, link_closed, reference_mismatch};

/// Longest key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 256;

const KEY_CONTEXT: &str = "ccnode 2026-11 account key v1";

/// Hashes `key` with `salt`.
pub fn hash_key(key: &str, salt: [u8; 16]) -> KeyHash {
    let mut hasher = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    hasher.update(&salt);
    hasher.update(key.as_bytes());
    KeyHash { salt, hash: *hasher.finalize().as_bytes() }
}

/// Hashes `key` with a fresh random salt.
pub fn new_key_hash(key: &str) -> KeyHash {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    hash_key(key, salt)
}

/// Whether `key` matches `stored` (constant-time comparison).
pub fn key_matches(key: &str, stored: &KeyHash) -> bool {
    let candidate = hash_key(key, stored.salt);
    blake3::Hash::from(candidate.hash) == blake3::Hash::from(stored.hash)
}

/// Checks a key given by an operator or admin.
pub fn check_new_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::invalid_field("key", "must not be empty"));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(ApiError::invalid_field("key", format!("longer than {KEY_BYTES_MAX} bytes")));
    }
    Ok(())
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No `cc-user`/`cc-auth` pair.
    Anonymous,
    /// A neighbour node, authenticated by the link's last hash.
    Node {
        /// Its node account here.
        account: AccountId,
    },
    /// An authenticated local account.
    Account {
        /// Its id.
        id: AccountId,
        /// Whether it is an admin.
        admin: bool,
    },
}

impl Caller {
    /// The account, or `PermissionViolation` (403) if anonymous, as the
    /// reference answers a route that needs an account.
    pub fn account(&self) -> Result<&AccountId, ApiError> {
        match self {
            Caller::Account { id, .. } => Ok(id),
            Caller::Node { account } => Ok(account),
            Caller::Anonymous => Err(ApiError::forbidden()),
        }
    }

    /// The account if it is an admin; `PermissionViolation` otherwise.
    pub fn admin(&self) -> Result<&AccountId, ApiError> {
        match self {
            Caller::Account { id, admin: true } => Ok(id),
            Caller::Account { .. } | Caller::Node { .. } | Caller::Anonymous => Err(ApiError::forbidden()),
        }
    }

    /// Whether the caller is an admin account.
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Account { admin: true, .. })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = |name: &str| parts.headers.get(name).map(|v| v.to_str().map(str::to_owned));
        if let (Some(Ok(node)), Some(Ok(hash))) = (header("cc-node"), header("last-hash")) {
            return guarded(state, &node, authenticate_node(state, &node, &hash, lenient(parts), parts)).await;
        }
        let (user, auth) = match (header("cc-user"), header("cc-auth")) {
            (Some(Ok(user)), Some(Ok(auth))) if !user.is_empty() => (user, auth),
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                return Err(ApiError::invalid_field("cc-user", "headers must be visible ASCII"))
            }
            _ => return Ok(Caller::Anonymous),
        };
        let key = if auth == "null" { String::new() } else { auth };
        // An unknown account is `DoesNotExistViolation` (type account), as the reference answers.
        let unknown = || ApiError::does_not_exist("account", user.chars().take(64).collect::<String>());
        let id = AccountId::new(&user).map_err(|_| unknown())?;
        let user_account = {
            let read = state.read();
            let account = read.projections.account(&id).ok_or_else(unknown)?;
            if matches!(account.kind, ledger::AccountKind::User { .. }) {
                let admin = account.is_admin();
                Some(match read.projections.key_hash(&id) {
                    Some(stored) if key_matches(&key, stored) => Ok(Caller::Account { id, admin }),
                    _ => Err(ApiError::wrong_key(&user)),
                })
            } else {
                None
            }
        };
        match user_account {
            Some(result) => result,
            // 0.8.x: a neighbour sends its name as cc-user and the link's last hash as cc-auth.
            None => guarded(state, &user, authenticate_node(state, &user, &key, lenient(parts), parts)).await,
        }
    }
}

/// Slows down and logs repeated failures to prove a link hash.
async fn guarded(state: &AppState, node: &str, result: Result<Caller, ApiError>) -> Result<Caller, ApiError> {
    match &result {
        Ok(_) => state.peers().proved(node),
        Err(e) if e.class == "HashMismatchFailure" => state.peers().refused(node).await,
        Err(_) => {}
    }
    result
}

/// A neighbour proves itself with the link's last hash; a different hash is
/// `HashMismatchFailure` and the request is refused before anything is read or written.
fn authenticate_node(
    state: &AppState,
    node: &str,
    hash: &str,
    lenient: Leniency,
    parts: &Parts,
) -> Result<Caller, ApiError> {
    let id = AccountId::new(node).map_err(|_| ApiError::unauthenticated(node))?;
    check_signature(state, &id, &parts.method, &parts.uri, &parts.headers)?;
    let read = state.read();
    if let Some(evidence) = read.closed(&id) {
        return Err(link_closed(&id, &evidence));
    }
    let ours = read.ratchet(&id).ok_or_else(|| ApiError::unauthenticated(node))?;
    // A request that advances no ratchet may come from a neighbour that has not
    // yet written the version we just wrote on this link: one behind is accepted.
    let previous = || {
        let log = read.projections.link_log(&id);
        let initial = read.projections.peer(&id).map(|p| p.initial_hash.as_str())?;
        hash_at(initial, log, log.len().checked_sub(1)?)
    };
    // A Komunitin node checks our hash exactly and keeps no history, so we do
    // the same on its link (docs/PROTOCOL.md, "Komunitin links").
    let komunitin = ledger::LedgerView::dialect(&read.projections, &id) == ledger::Dialect::Komunitin;
    let lenient = if komunitin { Leniency::Exact } else { lenient };
    let accepted = match lenient {
        // A state change is checked exactly once it holds the link's lock.
        Leniency::Deferred => true,
        Leniency::OneBehind => ours.md5 == hash || previous().as_deref() == Some(hash),
        Leniency::Exact => ours.md5 == hash,
    };
    if !accepted {
        if ledger::LedgerView::dialect(&read.projections, &id) == ledger::Dialect::Reference {
            return Err(reference_mismatch(node, hash));
        }
        return Err(ApiError::hash_mismatch(axum::http::StatusCode::INTERNAL_SERVER_ERROR, node, hash));
    }
    Ok(Caller::Node { account: id })
}

/// On a keyed link (the neighbour's key was given at grafting or with
/// `PUT /admin/nodes/{node}/key`), a request claiming to come from `peer`
/// must carry that key's RFC 9421 signature ([`crate::httpsig`]) over the
/// method, path, query, `Content-Digest` (checked against the body by the
/// server's middleware), `Date`, `cc-node` and `last-hash`, created within the
/// window, with a nonce not seen in it. 401 `AuthViolation` otherwise, before
/// anything is read or written. A link without a key (the PHP reference,
/// Komunitin) is unchanged: the last hash alone.
pub fn check_signature(
    state: &AppState,
    peer: &AccountId,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> Result<(), ApiError> {
    let Some((origin, key)) = state.read().projections.facts().peer_keys.get(peer).cloned() else { return Ok(()) };
    let refuse = |detail: String| {
        tracing::warn!(peer = %peer, %detail, "a request on a keyed link was refused");
        ApiError::unauthenticated(peer.as_str()).with("signature", detail)
    };
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| refuse("the link's key is not a point".into()))?;
    let keyid = tlog::VerifierKey::new(&origin, tlog::KeyType::Ed25519, key)
        .map_err(|_| refuse("the link's key has no valid name".into()))?
        .to_string();
    let request = crate::httpsig::RequestParts {
        method: method.as_str().to_owned(),
        authority: headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
            .collect(),
    };
    let peers = state.peers();
    let verified = crate::httpsig::verify_ccnode(&request, &key, &keyid, crate::peers::unix_now(), peers.window())
        .map_err(|e| refuse(e.to_string()))?;
    peers.fresh_nonce(&keyid, &verified).map_err(|e| refuse(e.to_string()))
}

/// How exactly a neighbour's last hash must match ours at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leniency {
    /// It must be our head.
    Exact,
    /// Our head or the one before (requests that advance no ratchet: reads, relays).
    OneBehind,
    /// Checked later, under the link's lock (state changes).
    Deferred,
}

fn lenient(parts: &Parts) -> Leniency {
    if parts.method == axum::http::Method::PATCH && parts.uri.path().starts_with("/transaction/") {
        Leniency::Deferred
    } else if parts.method == axum::http::Method::GET || parts.uri.path() == "/transaction/relay" {
        Leniency::OneBehind
    } else {
        Leniency::Exact
    }
}
