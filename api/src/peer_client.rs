//! The one door to neighbour nodes: a request is facts (method, URL,
//! headers, JSON body), an answer is facts (status, content type, body), and
//! the [`PeerClient`] that carries them is a trait, so the federation flows
//! can run over HTTP ([`HttpPeerClient`], reqwest) or over a simulated
//! network in one process. Nothing here reads the node's state.

use std::fmt::Debug;
use std::time::Duration;

use futures_util::future::BoxFuture;

/// One request to a neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRequest {
    /// `GET`, `POST`, `PATCH`, …
    pub method: reqwest::Method,
    /// The full URL (the neighbour's base URL and the path).
    pub url: String,
    /// Headers, in order (`cc-node`, `last-hash`, `cc-user`, `cc-auth`, …).
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body, already serialised.
    pub body: Option<String>,
    /// Whether [`crate::peers::Peers::send`] signs it (RFC 9421; ccnode neighbours only).
    pub sign: bool,
}

impl PeerRequest {
    /// A request with no headers or body yet.
    pub fn new(method: reqwest::Method, url: String) -> PeerRequest {
        PeerRequest { method, url, headers: Vec::new(), body: None, sign: false }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> PeerRequest {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> PeerRequest {
        self.body = Some(body.to_string());
        self
    }

    /// Sets a body that is not JSON (sent as `text/plain`).
    pub fn text(mut self, body: String) -> PeerRequest {
        self.body = Some(body);
        self.headers.push(("content-type", "text/plain".to_owned()));
        self
    }

    /// Asks for the request to be signed with this node's key (when `yes`).
    pub fn signed(mut self, yes: bool) -> PeerRequest {
        self.sign = yes;
        self
    }
}

/// A neighbour's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAnswer {
    /// HTTP status code.
    pub status: u16,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Its body as text (empty when none).
    pub body: String,
}

/// The neighbour could not be reached, or did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the neighbour did not answer: {reason}")]
pub struct Unreachable {
    /// What happened.
    pub reason: String,
    /// Whether the request may have reached the neighbour (it timed out, or
    /// the connection broke after it was sent), so that it may have acted on
    /// it; `false` when it certainly was not delivered (no connection).
    pub maybe_delivered: bool,
}

impl Unreachable {
    /// The request certainly did not reach the neighbour.
    pub fn not_sent(reason: impl Into<String>) -> Unreachable {
        Unreachable { reason: reason.into(), maybe_delivered: false }
    }

    /// The request may have reached the neighbour, whose answer did not come back.
    pub fn no_answer(reason: impl Into<String>) -> Unreachable {
        Unreachable { reason: reason.into(), maybe_delivered: true }
    }
}

/// Carries requests to neighbours.
pub trait PeerClient: Send + Sync + Debug {
    /// Sends `request` and reads the whole answer.
    fn send(&self, request: PeerRequest) -> BoxFuture<'_, Result<PeerAnswer, Unreachable>>;
}

/// Neighbours over HTTP or HTTPS (reqwest with rustls), each request given up after the timeout.
#[derive(Debug)]
pub struct HttpPeerClient {
    client: reqwest::Client,
}

/// The CA bundle given for `https://` neighbours could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no usable PEM certificate.
    #[error("{path} holds no PEM certificate: {detail}")]
    Pem {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        detail: String,
    },
    /// The client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
}

impl HttpPeerClient {
    /// A client whose requests give up after `timeout`, trusting the system's CA bundle.
    pub fn new(timeout: Duration) -> HttpPeerClient {
        HttpPeerClient::with_ca(timeout, None).expect("an HTTP client with the system's roots builds")
    }

    /// A client whose requests give up after `timeout`, trusting the system's
    /// CA bundle and, when given, the PEM certificates of `ca_file` too
    /// (`--peer-ca-file`).
    pub fn with_ca(timeout: Duration, ca_file: Option<&std::path::Path>) -> Result<HttpPeerClient, TlsConfigError> {
        let mut builder = reqwest::Client::builder().timeout(timeout).use_rustls_tls();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| TlsConfigError::Read { path: path.to_owned(), source })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| TlsConfigError::Pem { path: path.to_owned(), detail: e.to_string() })?;
            if certs.is_empty() {
                return Err(TlsConfigError::Pem { path: path.to_owned(), detail: "no certificate".to_owned() });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| TlsConfigError::Client(e.to_string()))?;
        Ok(HttpPeerClient { client })
    }
}

impl PeerClient for HttpPeerClient {
    fn send(&self, request: PeerRequest) -> BoxFuture<'_, Result<PeerAnswer, Unreachable>> {
        Box::pin(async move {
            let mut builder = self.client.request(request.method, &request.url);
            for (name, value) in &request.headers {
                builder = builder.header(*name, value);
            }
            if let Some(body) = request.body {
                if !request.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
                    builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
                }
                builder = builder.body(body);
            }
            let response = builder.send().await.map_err(|e| {
                // A refused connection (or a request never built) was not delivered;
                // a timeout or a connection broken later may have been.
                if e.is_connect() || e.is_builder() {
                    Unreachable::not_sent(e.to_string())
                } else {
                    Unreachable::no_answer(e.to_string())
                }
            })?;
            let status = response.status().as_u16();
            let content_type =
                response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = response.text().await.map_err(|e| Unreachable::no_answer(e.to_string()))?;
            Ok(PeerAnswer { status, content_type, body })
        })
    }
}
