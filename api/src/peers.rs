//! Neighbours as this node keeps them: the calls to them (through a
//! [`PeerClient`]) and the lock of each link ([`Peers`]), the link hashes a
//! neighbour may prove ([`hash_at`], [`recent_hashes`]), and how a link
//! refuses a request ([`link_busy`], [`link_closed`], [`reference_mismatch`]).
//! Authentication and the federation flows both use it; it calls no route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use ledger::ratchet::hex;
use ledger::AccountId;
use replay::reconcile::LinkVersion;
use serde_json::Value;

use crate::attempts::{Attempts, Doubts};
use crate::error::ApiError;
use crate::peer_client::{HttpPeerClient, PeerAnswer, PeerClient, PeerRequest, Unreachable};

/// Default time a neighbour has to answer (the reference's 2 s proved too tight in practice).
pub const PEER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Calls to neighbours (through a [`PeerClient`]), and the per-link locks.
#[derive(Debug)]
pub struct Peers {
    client: Arc<dyn PeerClient>,
    locks: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
    /// Links whose lock is held only to read from the neighbour ([`Peers::lock_to_read`]).
    reading: Arc<Mutex<std::collections::HashSet<AccountId>>>,
    /// Consecutive failed node authentications per claimed node name.
    failures: Mutex<HashMap<String, u32>>,
    /// This node's key and its verifier key (the `keyid`), for signing requests (RFC 9421).
    signer: std::sync::RwLock<Option<(ed25519_dalek::SigningKey, String)>>,
    /// Nonces of neighbours' signed requests within the window.
    nonces: Mutex<crate::httpsig::NonceCache>,
    /// How far a signature's `created` may be from our clock, in seconds.
    window: std::sync::atomic::AtomicU64,
    /// The attempts of state changes neighbours sent us ([`crate::attempts`]).
    attempts: Mutex<Attempts>,
    /// The changes we left in doubt with each neighbour.
    doubts: Mutex<Doubts>,
    /// Wakes the reconciliation loop when a change is left in doubt.
    doubt_added: tokio::sync::Notify,
    /// This incarnation's name (`cc-boot`), made at the first use.
    boot: std::sync::OnceLock<String>,
    /// Where attempt and incarnation names come from (seeded in a simulation).
    fresh: std::sync::RwLock<Option<crate::machine::UuidSource>>,
    /// Neighbours reconciled since this node started.
    reconciled: Mutex<std::collections::HashSet<AccountId>>,
    /// The simulator's planted bug ([`crate::node::Hooks::plant_abort_in_doubt`]).
    abort_in_doubt: std::sync::atomic::AtomicBool,
}

/// Most distinct node names whose failures are remembered (beyond it the
/// record starts over, so a caller cannot grow it without bound).
const FAILURE_NAMES_MAX: usize = 4096;

impl Peers {
    /// Neighbours over HTTP, each request given up after `timeout`.
    pub fn new(timeout: Duration) -> Peers {
        Peers::with_client(Arc::new(HttpPeerClient::new(timeout)))
    }

    /// Neighbours through `client` (a simulated network, for instance).
    pub fn with_client(client: Arc<dyn PeerClient>) -> Peers {
        Peers {
            client,
            locks: Mutex::default(),
            reading: Arc::default(),
            failures: Mutex::default(),
            signer: std::sync::RwLock::new(None),
            nonces: Mutex::default(),
            window: std::sync::atomic::AtomicU64::new(crate::httpsig::WINDOW_SECS_DEFAULT),
            attempts: Mutex::default(),
            doubts: Mutex::default(),
            doubt_added: tokio::sync::Notify::new(),
            boot: std::sync::OnceLock::new(),
            fresh: std::sync::RwLock::new(None),
            reconciled: Mutex::default(),
            abort_in_doubt: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Plants the simulator's test bug: changes in doubt are aborted.
    pub fn plant_abort_in_doubt(&self, yes: bool) {
        self.abort_in_doubt.store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the simulator's test bug is planted.
    pub fn aborts_in_doubt(&self) -> bool {
        self.abort_in_doubt.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Names attempts and this incarnation from `source` from now on (a
    /// simulation's seeded uuids).
    pub fn set_uuid_source(&self, source: crate::machine::UuidSource) {
        *self.fresh.write().expect("the uuid source is never poisoned") = Some(source);
    }

    fn fresh_name(&self) -> String {
        let fresh = self.fresh.read().expect("the uuid source is never poisoned");
        fresh.as_ref().map_or_else(uuid::Uuid::new_v4, |source| (source.0)()).to_string()
    }

    /// A fresh name for one attempt of a state change (`cc-attempt`).
    pub fn fresh_attempt(&self) -> String {
        self.fresh_name()
    }

    /// This incarnation's name (`cc-boot`): new at every start.
    pub fn boot(&self) -> &str {
        self.boot.get_or_init(|| self.fresh_name())
    }

    /// The attempts neighbours sent us.
    pub fn attempts(&self) -> MutexGuard<'_, Attempts> {
        self.attempts.lock().expect("the attempts are never poisoned")
    }

    /// The changes we left in doubt.
    pub fn doubts(&self) -> MutexGuard<'_, Doubts> {
        self.doubts.lock().expect("the doubts are never poisoned")
    }

    /// The change of `uuid` to `to`, sent to `peer` as `attempt`, is in doubt:
    /// kept until a fenced reconciliation with `peer` settles it.
    pub fn add_doubt(&self, peer: &AccountId, uuid: ledger::TxId, to: ledger::State, attempt: String) {
        self.doubts().add(peer, uuid, to, attempt);
        self.doubt_added.notify_one();
    }

    /// Resolves when a change is left in doubt.
    pub async fn doubt_added(&self) {
        self.doubt_added.notified().await;
    }

    /// The link with `peer` was reconciled.
    pub fn mark_reconciled(&self, peer: &AccountId) {
        self.reconciled.lock().expect("the reconciled set is never poisoned").insert(peer.clone());
    }

    /// Those of `peers` not reconciled since this node started.
    pub fn unreconciled(&self, peers: &[AccountId]) -> Vec<AccountId> {
        let reconciled = self.reconciled.lock().expect("the reconciled set is never poisoned");
        peers.iter().filter(|p| !reconciled.contains(*p)).cloned().collect()
    }

    /// Whether every one of `peers` was reconciled since this node started.
    pub fn all_reconciled(&self, peers: &[AccountId]) -> bool {
        let reconciled = self.reconciled.lock().expect("the reconciled set is never poisoned");
        peers.iter().all(|p| reconciled.contains(p))
    }

    /// Signs requests marked [`PeerRequest::signed`] with `seed` from now on,
    /// naming `keyid` (this node's verifier key, as `GET /node/key` answers it).
    pub fn set_signer(&self, seed: &[u8; 32], keyid: String) {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        *self.signer.write().expect("the signer is never poisoned") = Some((key, keyid));
    }

    /// Sets the window for neighbours' signatures (`--peer-signature-window`).
    pub fn set_window(&self, seconds: u64) {
        self.window.store(seconds, std::sync::atomic::Ordering::Relaxed);
    }

    /// The window for neighbours' signatures, in seconds.
    pub fn window(&self) -> u64 {
        self.window.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Accepts a verified signature's nonce once within the window.
    pub fn fresh_nonce(
        &self,
        keyid: &str,
        verified: &crate::httpsig::Verified,
    ) -> Result<(), crate::httpsig::SigError> {
        let now = unix_now();
        let mut nonces = self.nonces.lock().expect("the nonce cache is never poisoned");
        nonces.check(keyid, &verified.nonce, verified.created, now, self.window())
    }

    /// Adds this node's RFC 9421 signature to `request` (`Content-Digest`,
    /// `Date`, `Signature-Input`, `Signature`); unchanged when the node has no key.
    pub fn sign(&self, request: &mut PeerRequest) {
        let signer = self.signer.read().expect("the signer is never poisoned");
        let Some((key, keyid)) = signer.as_ref() else { return };
        let Ok(url) = reqwest::Url::parse(&request.url) else { return };
        let mut parts = crate::httpsig::RequestParts {
            method: request.method.as_str().to_owned(),
            authority: url.authority().to_owned(),
            path: url.path().to_owned(),
            query: url.query().map(str::to_owned),
            headers: request.headers.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect(),
        };
        let body = request.body.as_deref().unwrap_or("").as_bytes();
        let nonce = {
            let mut bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
            hex(&bytes)
        };
        if let Err(error) = crate::httpsig::sign_ccnode(&mut parts, body, key, keyid, &nonce, unix_now()) {
            tracing::error!(%error, url = %request.url, "the request could not be signed");
            return;
        }
        const ADDED: [&str; 4] = ["content-digest", "date", "signature-input", "signature"];
        request.headers.retain(|(n, _)| !ADDED.iter().any(|a| n.eq_ignore_ascii_case(a)));
        for (name, value) in parts.headers {
            let name: &'static str = match name.as_str() {
                "content-digest" => "content-digest",
                "date" => "date",
                "signature-input" => "signature-input",
                "signature" => "signature",
                _ => continue,
            };
            request.headers.push((name, value));
        }
    }

    /// A request claiming to be node `node` failed to prove the link hash:
    /// logged, and answered only after a delay that doubles with each
    /// consecutive failure (100 ms up to 5 s), so guessing is slow.
    pub async fn refused(&self, node: &str) {
        let count = {
            let mut failures = self.failures.lock().expect("failure counts are never poisoned");
            if failures.len() >= FAILURE_NAMES_MAX && !failures.contains_key(node) {
                failures.clear();
            }
            let count = failures.entry(node.chars().take(64).collect()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        let delay = Duration::from_millis(100u64.saturating_mul(1 << count.min(6).saturating_sub(1)))
            .min(Duration::from_secs(5));
        tracing::warn!(node = %node.chars().take(64).collect::<String>(), failures = count, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "a caller claiming to be this neighbour sent a wrong link hash");
        tokio::time::sleep(delay).await;
    }

    /// Node `node` proved the link hash: its failure count starts over.
    pub fn proved(&self, node: &str) {
        let mut failures = self.failures.lock().expect("failure counts are never poisoned");
        if !failures.is_empty() {
            failures.remove(node);
        }
    }

    /// Sends one request to a neighbour, signed first if it asks to be ([`Peers::sign`]).
    pub async fn send(&self, mut request: PeerRequest) -> Result<PeerAnswer, Unreachable> {
        if request.sign {
            self.sign(&mut request);
        }
        self.client.send(request).await
    }

    /// The lock every request to `peer` holds.
    pub fn lock_for(&self, peer: &AccountId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("link locks are never poisoned");
        Arc::clone(locks.entry(peer.clone()).or_default())
    }

    /// Takes `peer`'s link lock for requests that only read from the
    /// neighbour (its link feed, handshake, a GET), whose handlers there take
    /// no link lock. While it is held so, a change arriving from that
    /// neighbour may wait for it ([`Peers::held_to_read`]) instead of being
    /// refused as busy: waiting cannot deadlock on a read.
    pub async fn lock_to_read(&self, peer: &AccountId) -> ReadLock {
        let guard = self.lock_for(peer).lock_owned().await;
        self.reading.lock().expect("the reading set is never poisoned").insert(peer.clone());
        ReadLock { _guard: guard, peer: peer.clone(), reading: Arc::clone(&self.reading) }
    }

    /// Takes `peer`'s link lock for a state change arriving from it, or
    /// `None` when the link is busy: the trunkward side wins a collision, so
    /// a change from the parent (`from_parent`) waits for ours; a change from
    /// a child is refused at once while a change of ours holds the link, and
    /// waits up to `wait_max` while the link is only being read.
    pub async fn lock_incoming_change(
        &self,
        peer: &AccountId,
        from_parent: bool,
        wait_max: Duration,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let lock = self.lock_for(peer);
        match Arc::clone(&lock).try_lock_owned() {
            Ok(guard) => Some(guard),
            Err(_) if from_parent => Some(lock.lock_owned().await),
            Err(_) if self.held_to_read(peer) => tokio::time::timeout(wait_max, lock.lock_owned()).await.ok(),
            Err(_) => None,
        }
    }

    /// Whether `peer`'s link lock is held by [`Peers::lock_to_read`] now.
    pub fn held_to_read(&self, peer: &AccountId) -> bool {
        self.reading.lock().expect("the reading set is never poisoned").contains(peer)
    }
}

/// The clock in unix seconds.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// A link's lock held only to read from the neighbour; released on drop.
#[derive(Debug)]
pub struct ReadLock {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    peer: AccountId,
    reading: Arc<Mutex<std::collections::HashSet<AccountId>>>,
}

impl Drop for ReadLock {
    fn drop(&mut self) {
        // Unmarked before the guard (a field) unlocks, so no writer is ever marked.
        self.reading.lock().expect("the reading set is never poisoned").remove(&self.peer);
    }
}

/// A link version's MD5 as the lower-case hex the protocol carries.
pub fn md5_hex(v: &LinkVersion) -> String {
    hex(&v.md5)
}

/// The link hash after `position` versions of `log` (0: the agreed initial
/// hash), if the log reaches that far.
pub fn hash_at(initial: &str, log: &[LinkVersion], position: usize) -> Option<String> {
    match position {
        0 => Some(initial.to_owned()),
        n => log.get(n - 1).map(md5_hex),
    }
}

/// Versions back from the head within which a link hash still opens the
/// link feed ([`proves_recent`]): a neighbour that lost its last unsynced
/// versions in a crash, or left changes in doubt, is that far behind.
pub const FEED_CREDENTIAL_VERSIONS: usize = 1024;

/// Whether `hash` opens the link feed: one of the link's hashes at the last
/// [`FEED_CREDENTIAL_VERSIONS`] positions, the head included. The agreed
/// initial hash, which may be guessable, opens it only for the first
/// exchange (at most one version written), or, on a keyed link (`signed`:
/// the request's signature by the neighbour's key was checked), while the
/// link is younger than [`FEED_CREDENTIAL_VERSIONS`].
pub fn proves_recent(initial: &str, log: &[LinkVersion], hash: &str, signed: bool) -> bool {
    let oldest = log.len().saturating_sub(FEED_CREDENTIAL_VERSIONS);
    let initial_opens = log.len() <= 1 || (signed && oldest == 0);
    (initial_opens && initial == hash) || log[oldest.saturating_sub(1)..].iter().any(|v| md5_hex(v) == hash)
}

/// The hashes a neighbour may prove on a link without advancing it: the
/// head, then the one before it (a neighbour one version apart).
pub fn recent_hashes(initial: &str, log: &[LinkVersion]) -> Vec<String> {
    let before = log.len().checked_sub(1);
    [Some(log.len()), before].into_iter().flatten().filter_map(|p| hash_at(initial, log, p)).collect()
}

/// Both ends of a link tried to change a shared transaction at once; this one
/// yields. Nothing was written; retrying is safe.
pub fn link_busy(peer: &AccountId) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "LinkBusyFailure")
        .with("remoteNode", peer.as_str())
        .with("translated", "another change is crossing this link; nothing was written, retry")
}

/// A link closed after a divergence refuses traffic until an admin reopens it.
pub fn link_closed(peer: &AccountId, evidence: &Value) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "HashMismatchFailure")
        .with("remoteNode", peer.as_str())
        .with("translated", "the link diverged and is closed until an admin resolves it")
        .with("evidence", evidence.clone())
}

/// `HashMismatchFailure` for a reference neighbour: with `localHash`, which
/// cc-php-lib needs to rebuild the error (`NodeRequester::reconstructCCErr`
/// reads every constructor field), but empty: our head is the neighbour's
/// credential and is never echoed (issue 16).
pub fn reference_mismatch(node: &str, claimed: &str) -> ApiError {
    ApiError::hash_mismatch(StatusCode::INTERNAL_SERVER_ERROR, node, claimed).with("localHash", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> Peers {
        Peers::new(Duration::from_secs(1))
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_free_link_is_taken_at_once() {
        let p = peers();
        let child = AccountId::new("child").expect("id");
        assert!(p.lock_incoming_change(&child, false, WAIT).await.is_some());
        // Released on drop: taken again.
        assert!(p.lock_incoming_change(&child, false, WAIT).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_is_refused_at_once_while_our_change_holds_the_link() {
        let p = peers();
        let child = AccountId::new("child").expect("id");
        let _ours = p.lock_for(&child).lock_owned().await;
        let started = tokio::time::Instant::now();
        assert!(p.lock_incoming_change(&child, false, WAIT).await.is_none());
        assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_waits_while_the_link_is_only_read_and_gets_it_when_the_read_ends() {
        let p = Arc::new(peers());
        let child = AccountId::new("child").expect("id");
        let read = p.lock_to_read(&child).await;
        assert!(p.held_to_read(&child));
        let waiter = {
            let (p, child) = (Arc::clone(&p), child.clone());
            tokio::spawn(async move { p.lock_incoming_change(&child, false, WAIT).await.is_some() })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiter.is_finished(), "still waiting for the read");
        drop(read);
        assert!(!p.held_to_read(&child));
        assert!(waiter.await.expect("joined"), "took the link after the read");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_longer_than_the_wait_leaves_the_link_busy() {
        let p = peers();
        let child = AccountId::new("child").expect("id");
        let _read = p.lock_to_read(&child).await;
        let started = tokio::time::Instant::now();
        assert!(p.lock_incoming_change(&child, false, WAIT).await.is_none());
        assert_eq!(started.elapsed(), WAIT, "gave up after the longest wait");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_from_the_parent_waits_for_ours() {
        let p = Arc::new(peers());
        let parent = AccountId::new("parent").expect("id");
        let ours = p.lock_for(&parent).lock_owned().await;
        let waiter = {
            let (p, parent) = (Arc::clone(&p), parent.clone());
            tokio::spawn(async move { p.lock_incoming_change(&parent, true, WAIT).await.is_some() })
        };
        // Longer than a child would wait: the parent's change is never refused.
        tokio::time::sleep(WAIT * 3).await;
        assert!(!waiter.is_finished());
        drop(ours);
        assert!(waiter.await.expect("joined"));
    }
}
