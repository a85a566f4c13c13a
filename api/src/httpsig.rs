//! RFC 9421 HTTP Message Signatures with Ed25519, as two ccnodes sign every
//! request between them (issue 11, item 7), and RFC 9530 `Content-Digest`
//! (sha-256). Pure: the caller gives the request's parts, the clock and the
//! key; nothing here does I/O.
//!
//! Only what ccnode needs is built: request signatures, the derived
//! components `@method`, `@path`, `@query` and `@authority`, plain header
//! fields, the parameters `created`, `keyid`, `nonce` and `alg`, one
//! signature per request. The appendix B.2.6 example of the RFC is
//! reproduced byte for byte in the tests below.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::Digest as _;

/// The label ccnode signs under (`Signature-Input: ccnode=(…)`).
pub const LABEL: &str = "ccnode";

/// Components every node-to-node request covers; `@query` and `last-hash`
/// too when the request has them.
pub const REQUIRED: [&str; 5] = ["@method", "@path", "content-digest", "date", "cc-node"];

/// Default window around the receiver's clock for `created`, in seconds.
pub const WINDOW_SECS_DEFAULT: u64 = 60;

/// Most nonces remembered at once; beyond it new requests are refused
/// until old nonces leave the window (fail closed, never forget early).
pub const NONCES_MAX: usize = 100_000;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No `Signature-Input` or `Signature` header.
    #[error("the request is not signed (no Signature-Input/Signature)")]
    Unsigned,
    /// A header could not be parsed.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A required component is not covered, or is covered but absent.
    #[error("the signature does not cover {0}")]
    NotCovered(String),
    /// `alg` is not `ed25519`.
    #[error("unsupported alg {0:?}")]
    Alg(String),
    /// `keyid` is not the link's key.
    #[error("signed with another key ({0})")]
    OtherKey(String),
    /// `created` is missing or outside the window.
    #[error("created {created} is outside ±{window} s of now ({now})")]
    Stale {
        /// The signature's `created`.
        created: i64,
        /// The receiver's clock.
        now: i64,
        /// The window.
        window: u64,
    },
    /// No `nonce` parameter.
    #[error("no nonce")]
    NoNonce,
    /// The nonce was seen in the window.
    #[error("replayed nonce")]
    Replayed,
    /// Too many nonces in the window.
    #[error("too many signed requests in the window")]
    Busy,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Invalid,
    /// `Content-Digest` does not match the body.
    #[error("Content-Digest does not match the body")]
    Digest,
}

/// A request as far as a signature sees it.
#[derive(Debug, Clone, Default)]
pub struct RequestParts {
    /// `GET`, `POST`, …
    pub method: String,
    /// The target URI's `host[:port]` (for `@authority`).
    pub authority: String,
    /// The absolute path.
    pub path: String,
    /// The query without `?`, if the target has one.
    pub query: Option<String>,
    /// Header fields (names in any case), in order; repeated names are combined.
    pub headers: Vec<(String, String)>,
}

impl RequestParts {
    /// The combined value of header `name` (RFC 9421 §2.1: trimmed, joined with `, `).
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> =
            self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The value of component `id`.
    fn component(&self, id: &str) -> Result<String, SigError> {
        let missing = || SigError::NotCovered(id.to_owned());
        match id {
            "@method" => Ok(self.method.clone()),
            "@path" => Ok(if self.path.is_empty() { "/".to_owned() } else { self.path.clone() }),
            "@query" => Ok(format!("?{}", self.query.as_deref().unwrap_or(""))),
            "@authority" => Ok(self.authority.to_ascii_lowercase()),
            id if id.starts_with('@') => Err(missing()),
            name => self.header(name).ok_or_else(missing),
        }
    }
}

/// Signature parameters (RFC 9421 §2.3), serialised in this order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    /// `created`: unix seconds.
    pub created: Option<i64>,
    /// `keyid`.
    pub keyid: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `alg`.
    pub alg: Option<String>,
}

/// A structured-field string (RFC 8941 §4.1.6): only printable ASCII.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `("c1" "c2");created=…;keyid="…"…`: the value of `@signature-params`.
pub fn serialize_params(components: &[String], params: &Params) -> String {
    let list: Vec<String> = components.iter().map(|c| sf_string(c)).collect();
    let mut out = format!("({})", list.join(" "));
    if let Some(created) = params.created {
        out.push_str(&format!(";created={created}"));
    }
    if let Some(keyid) = &params.keyid {
        out.push_str(&format!(";keyid={}", sf_string(keyid)));
    }
    if let Some(nonce) = &params.nonce {
        out.push_str(&format!(";nonce={}", sf_string(nonce)));
    }
    if let Some(alg) = &params.alg {
        out.push_str(&format!(";alg={}", sf_string(alg)));
    }
    out
}

/// The signature base (RFC 9421 §2.5) of `request` over `components`,
/// whose last line is `"@signature-params": <params_value>`.
pub fn signature_base(request: &RequestParts, components: &[String], params_value: &str) -> Result<String, SigError> {
    let mut base = String::new();
    for id in components {
        let value = request.component(id)?;
        base.push_str(&format!("{}: {value}\n", sf_string(id)));
    }
    base.push_str(&format!("\"@signature-params\": {params_value}"));
    Ok(base)
}

/// The `Content-Digest` of `body` (RFC 9530, sha-256).
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", b64().encode(sha2::Sha256::digest(body)))
}

/// Whether `header` (a `Content-Digest` value) holds a sha-256 digest of `body`;
/// other algorithms in the dictionary are ignored, and one sha-256 is required.
pub fn digest_matches(header: &str, body: &[u8]) -> bool {
    let want = sha2::Sha256::digest(body);
    header.split(',').filter_map(|m| m.trim().strip_prefix("sha-256=")).any(|v| {
        v.strip_prefix(':')
            .and_then(|v| v.strip_suffix(':'))
            .and_then(|v| b64().decode(v).ok())
            .is_some_and(|d| d.as_slice() == want.as_slice())
    })
}

/// The two headers of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `Signature-Input`.
    pub input: String,
    /// `Signature`.
    pub signature: String,
}

/// Signs `request` over `components` with `params` under `label`.
pub fn sign(
    request: &RequestParts,
    components: &[String],
    params: &Params,
    label: &str,
    key: &SigningKey,
) -> Result<Signed, SigError> {
    let value = serialize_params(components, params);
    let base = signature_base(request, components, &value)?;
    let signature = key.sign(base.as_bytes()).to_bytes();
    Ok(Signed { input: format!("{label}={value}"), signature: format!("{label}=:{}:", b64().encode(signature)) })
}

/// The components ccnode covers in `request`: [`REQUIRED`], then `@query`
/// and `last-hash` when present.
pub fn ccnode_components(request: &RequestParts) -> Vec<String> {
    let mut components: Vec<String> = REQUIRED.iter().map(|s| (*s).to_owned()).collect();
    if request.query.is_some() {
        components.insert(2, "@query".to_owned());
    }
    if request.header("last-hash").is_some() {
        components.push("last-hash".to_owned());
    }
    components
}

/// Adds `Content-Digest`, `Date` (if absent), `Signature-Input` and
/// `Signature` to `request`'s headers: ccnode's signature at `now` (unix s).
pub fn sign_ccnode(
    request: &mut RequestParts,
    body: &[u8],
    key: &SigningKey,
    keyid: &str,
    nonce: &str,
    now: i64,
) -> Result<(), SigError> {
    request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-digest"));
    request.headers.push(("content-digest".to_owned(), content_digest(body)));
    if request.header("date").is_none() {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(now).unwrap_or(0));
        request.headers.push(("date".to_owned(), httpdate::fmt_http_date(when)));
    }
    let components = ccnode_components(request);
    let params = Params {
        created: Some(now),
        keyid: Some(keyid.to_owned()),
        nonce: Some(nonce.to_owned()),
        alg: Some("ed25519".to_owned()),
    };
    let signed = sign(request, &components, &params, LABEL, key)?;
    request.headers.push(("signature-input".to_owned(), signed.input));
    request.headers.push(("signature".to_owned(), signed.signature));
    Ok(())
}

/// A parsed `Signature-Input` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Its label.
    pub label: String,
    /// Covered components, in order.
    pub components: Vec<String>,
    /// Its parameters.
    pub params: Params,
    /// The member's value as received (the `@signature-params` value).
    pub value: String,
}

/// Reads an sf-string at the start of `s`: (the string, the rest).
fn take_string(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 2..])),
            c if (' '..='~').contains(&c) => out.push(c),
            _ => return None,
        }
    }
    None
}

/// Parses a `Signature-Input` value with exactly one member.
pub fn parse_input(header: &str) -> Result<Input, SigError> {
    let bad = || SigError::Malformed("Signature-Input");
    let header = header.trim();
    let (label, value) = header.split_once('=').ok_or_else(bad)?;
    let mut rest = value.strip_prefix('(').ok_or_else(bad)?;
    let mut components = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(')') {
            rest = after;
            break;
        }
        let (component, after) = take_string(rest).ok_or_else(bad)?;
        if after.starts_with(';') {
            // Component parameters (`;sf`, `;req`, …) are not used by ccnode.
            return Err(bad());
        }
        components.push(component);
        rest = after;
    }
    let mut params = Params::default();
    while let Some(after) = rest.strip_prefix(';') {
        let (name, after) = after.split_once('=').ok_or_else(bad)?;
        let (text, after) = if after.starts_with('"') {
            take_string(after).ok_or_else(bad)?
        } else {
            let end = after.find([';', ',', ' ']).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        match name {
            "created" => params.created = Some(text.parse().map_err(|_| bad())?),
            "keyid" => params.keyid = Some(text),
            "nonce" => params.nonce = Some(text),
            "alg" => params.alg = Some(text),
            // `expires`, `tag`: allowed, not used.
            _ => {}
        }
        rest = after;
    }
    if !rest.trim().is_empty() {
        return Err(bad());
    }
    Ok(Input { label: label.trim().to_owned(), components, params, value: value.to_owned() })
}

/// Finds `label`'s byte sequence in a `Signature` value.
pub fn parse_signature(header: &str, label: &str) -> Result<Vec<u8>, SigError> {
    let bad = || SigError::Malformed("Signature");
    for member in header.split(',') {
        let Some((name, value)) = member.trim().split_once('=') else { return Err(bad()) };
        if name.trim() == label {
            let inner = value.trim().strip_prefix(':').and_then(|v| v.strip_suffix(':')).ok_or_else(bad)?;
            return b64().decode(inner).map_err(|_| bad());
        }
    }
    Err(bad())
}

/// What a verified signature said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `created`.
    pub created: i64,
    /// `nonce`.
    pub nonce: String,
}

/// Checks ccnode's signature on `request`: one member, `alg` (if given)
/// `ed25519`, `keyid` equal to `keyid`, every component of
/// [`ccnode_components`] covered, `created` within `window` of `now`, a
/// nonce, and the Ed25519 signature by `key`. The body's digest and the
/// nonce's freshness are the caller's ([`digest_matches`], [`NonceCache`]).
pub fn verify_ccnode(
    request: &RequestParts,
    key: &VerifyingKey,
    keyid: &str,
    now: i64,
    window: u64,
) -> Result<Verified, SigError> {
    let (Some(input), Some(signature)) = (request.header("signature-input"), request.header("signature")) else {
        return Err(SigError::Unsigned);
    };
    let input = parse_input(&input)?;
    if let Some(alg) = &input.params.alg {
        if alg != "ed25519" {
            return Err(SigError::Alg(alg.clone()));
        }
    }
    let theirs = input.params.keyid.clone().unwrap_or_default();
    if theirs != keyid {
        return Err(SigError::OtherKey(theirs.chars().take(120).collect()));
    }
    for required in ccnode_components(request) {
        if !input.components.contains(&required) {
            return Err(SigError::NotCovered(required));
        }
    }
    let created = input.params.created.ok_or(SigError::Stale { created: 0, now, window })?;
    if created.abs_diff(now) > window {
        return Err(SigError::Stale { created, now, window });
    }
    let nonce = input.params.nonce.clone().filter(|n| !n.is_empty()).ok_or(SigError::NoNonce)?;
    let bytes = parse_signature(&signature, &input.label)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SigError::Invalid)?;
    let base = signature_base(request, &input.components, &input.value)?;
    key.verify_strict(base.as_bytes(), &ed25519_dalek::Signature::from_bytes(&bytes)).map_err(|_| SigError::Invalid)?;
    Ok(Verified { created, nonce })
}

/// The nonces seen within the window, per key: a nonce is accepted once.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<(String, String), i64>,
    order: VecDeque<(i64, String, String)>,
}

impl NonceCache {
    /// Accepts `nonce` of `keyid` signed at `created` if not seen within
    /// `window` of `now`, and remembers it; forgets nonces older than the window.
    pub fn check(&mut self, keyid: &str, nonce: &str, created: i64, now: i64, window: u64) -> Result<(), SigError> {
        let horizon = now.saturating_sub(i64::try_from(window).unwrap_or(i64::MAX)).saturating_sub(1);
        while let Some((at, _, _)) = self.order.front() {
            if *at >= horizon && self.order.len() < NONCES_MAX {
                break;
            }
            if *at >= horizon {
                // Full of live nonces: refuse rather than forget one early.
                return Err(SigError::Busy);
            }
            let (_, k, n) = self.order.pop_front().expect("front exists");
            self.seen.remove(&(k, n));
        }
        let entry = (keyid.to_owned(), nonce.to_owned());
        if self.seen.contains_key(&entry) {
            return Err(SigError::Replayed);
        }
        // Remembered until `created` (not arrival) leaves the window, which
        // is when a replay would be refused as stale anyway; kept in arrival
        // order with the larger of the two so the queue stays ordered.
        let at = created.max(self.order.back().map_or(i64::MIN, |b| b.0));
        self.seen.insert(entry.clone(), at);
        self.order.push_back((at, entry.0, entry.1));
        Ok(())
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 9421 Appendix B.1.4 `test-key-ed25519` (the JWK `d` and `x`).
    fn test_key() -> SigningKey {
        let seed: [u8; 32] = b64url("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU").try_into().unwrap();
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(key.verifying_key().to_bytes().to_vec(), b64url("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"));
        key
    }

    /// RFC 9421 Appendix B.2 test-request (`POST /foo?param=Value&Pet=dog`).
    fn test_request() -> RequestParts {
        RequestParts {
            method: "POST".into(),
            authority: "example.com".into(),
            path: "/foo".into(),
            query: Some("param=Value&Pet=dog".into()),
            headers: vec![
                ("Host".into(), "example.com".into()),
                ("Date".into(), "Tue, 20 Apr 2021 02:07:55 GMT".into()),
                ("Content-Type".into(), "application/json".into()),
                ("Content-Digest".into(), "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:".into()),
                ("Content-Length".into(), "18".into()),
            ],
        }
    }

    /// RFC 9421 Appendix B.2.6 "Signing a Request Using ed25519": the
    /// signature base and the signature, byte for byte (Ed25519 is
    /// deterministic, so signing must give the RFC's value).
    #[test]
    fn rfc9421_b26_ed25519_vector() {
        let request = test_request();
        let components: Vec<String> = ["date", "@method", "@path", "@authority", "content-type", "content-length"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let params = Params { created: Some(1618884473), keyid: Some("test-key-ed25519".into()), ..Params::default() };
        let value = serialize_params(&components, &params);
        let base = signature_base(&request, &components, &value).unwrap();
        let expected_base = concat!(
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n",
            "\"@method\": POST\n",
            "\"@path\": /foo\n",
            "\"@authority\": example.com\n",
            "\"content-type\": application/json\n",
            "\"content-length\": 18\n",
            "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        assert_eq!(base, expected_base);
        let signed = sign(&request, &components, &params, "sig-b26", &test_key()).unwrap();
        assert_eq!(
            signed.input,
            "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        assert_eq!(
            signed.signature,
            "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
        );
        // And the RFC's headers parse back to the same base and verify.
        let input = parse_input(&signed.input).unwrap();
        assert_eq!(input.components, components);
        let sig = parse_signature(&signed.signature, "sig-b26").unwrap();
        let again = signature_base(&request, &input.components, &input.value).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&sig.try_into().unwrap());
        assert!(test_key().verifying_key().verify_strict(again.as_bytes(), &sig).is_ok());
    }

    /// RFC 9530 Appendix B.1's `{"hello": "world"}`, sha-256.
    #[test]
    fn rfc9530_sha256_digest() {
        let body = br#"{"hello": "world"}"#;
        assert_eq!(content_digest(body), "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
        assert!(digest_matches("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", body));
        assert!(!digest_matches("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", b"{}"));
        assert!(!digest_matches("sha-512=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", body));
    }

    fn ccnode_request() -> RequestParts {
        RequestParts {
            method: "GET".into(),
            authority: "127.0.0.1:8080".into(),
            path: "/replay/link/branch".into(),
            query: Some("after=0&limit=10".into()),
            headers: vec![("cc-node".into(), "branch".into()), ("last-hash".into(), "abc".into())],
        }
    }

    #[test]
    fn ccnode_round_trip_and_refusals() {
        let key = test_key();
        let vk = key.verifying_key();
        let mut request = ccnode_request();
        sign_ccnode(&mut request, b"", &key, "k1", "n1", 1_000).unwrap();
        let input = request.header("signature-input").unwrap();
        assert!(input.starts_with(
            "ccnode=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"date\" \"cc-node\" \"last-hash\");created=1000;keyid=\"k1\";nonce=\"n1\""
        ));
        assert_eq!(verify_ccnode(&request, &vk, "k1", 1_030, 60), Ok(Verified { created: 1000, nonce: "n1".into() }));
        // Another keyid, another key, stale, a changed header, a changed path, unsigned.
        assert!(matches!(verify_ccnode(&request, &vk, "k2", 1_000, 60), Err(SigError::OtherKey(_))));
        let other = SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(verify_ccnode(&request, &other, "k1", 1_000, 60), Err(SigError::Invalid));
        assert!(matches!(verify_ccnode(&request, &vk, "k1", 1_061, 60), Err(SigError::Stale { .. })));
        assert!(matches!(verify_ccnode(&request, &vk, "k1", 939, 60), Err(SigError::Stale { .. })));
        let mut changed = request.clone();
        for (n, v) in &mut changed.headers {
            if n == "last-hash" {
                *v = "abd".into();
            }
        }
        assert_eq!(verify_ccnode(&changed, &vk, "k1", 1_000, 60), Err(SigError::Invalid));
        let mut moved = request.clone();
        moved.path = "/replay/link/other".into();
        assert_eq!(verify_ccnode(&moved, &vk, "k1", 1_000, 60), Err(SigError::Invalid));
        let mut requery = request.clone();
        requery.query = Some("after=5&limit=10".into());
        assert_eq!(verify_ccnode(&requery, &vk, "k1", 1_000, 60), Err(SigError::Invalid));
        assert_eq!(verify_ccnode(&ccnode_request(), &vk, "k1", 1_000, 60), Err(SigError::Unsigned));
    }

    #[test]
    fn a_signature_must_cover_every_required_component() {
        let key = test_key();
        let mut request = ccnode_request();
        request.headers.push(("content-digest".into(), content_digest(b"")));
        request.headers.push(("date".into(), "x".into()));
        // Signed over fewer components than ccnode requires: refused even though it verifies.
        let components: Vec<String> =
            ["@method", "@path", "content-digest", "date", "cc-node"].map(String::from).into();
        let params = Params { created: Some(5), keyid: Some("k".into()), nonce: Some("n".into()), alg: None };
        let signed = sign(&request, &components, &params, "x", &key).unwrap();
        request.headers.push(("signature-input".into(), signed.input));
        request.headers.push(("signature".into(), signed.signature));
        assert_eq!(
            verify_ccnode(&request, &key.verifying_key(), "k", 5, 60),
            Err(SigError::NotCovered("@query".into()))
        );
    }

    #[test]
    fn nonces_are_accepted_once_within_the_window() {
        let mut cache = NonceCache::default();
        assert_eq!(cache.check("k", "a", 100, 100, 60), Ok(()));
        assert_eq!(cache.check("k", "a", 100, 110, 60), Err(SigError::Replayed));
        assert_eq!(cache.check("other", "a", 100, 110, 60), Ok(()));
        assert_eq!(cache.check("k", "b", 105, 110, 60), Ok(()));
        // Once `created` left the window the nonce is forgotten (a replay is stale by then).
        assert_eq!(cache.check("k", "c", 200, 200, 60), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        for input in ["", "x", "x=", "x=(", "x=(\"a", "x=(\"a\";sf)", "x=(\"a\");created=z", "x=(\"a\") junk"] {
            assert_eq!(parse_input(input), Err(SigError::Malformed("Signature-Input")), "{input}");
        }
        for sig in ["", "x", "x=abc", "x=:!!:"] {
            assert!(parse_signature(sig, "x").is_err(), "{sig}");
        }
    }
}
