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
}

impl PeerRequest {
    /// A request with no headers or body yet.
    pub fn new(method: reqwest::Method, url: String) -> PeerRequest {
        PeerRequest { method, url, headers: Vec::new(), body: None }
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
#[error("the neighbour did not answer: {0}")]
pub struct Unreachable(pub String);

/// Carries requests to neighbours.
pub trait PeerClient: Send + Sync + Debug {
    /// Sends `request` and reads the whole answer.
    fn send(&self, request: PeerRequest) -> BoxFuture<'_, Result<PeerAnswer, Unreachable>>;
}

/// Neighbours over HTTP (reqwest, no TLS), each request given up after the timeout.
#[derive(Debug)]
pub struct HttpPeerClient {
    client: reqwest::Client,
}

impl HttpPeerClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> HttpPeerClient {
        let client = reqwest::Client::builder().timeout(timeout).build().expect("an HTTP client without TLS builds");
        HttpPeerClient { client }
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
                builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
            }
            let response = builder.send().await.map_err(|e| Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let content_type =
                response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = response.text().await.map_err(|e| Unreachable(e.to_string()))?;
            Ok(PeerAnswer { status, content_type, body })
        })
    }
}
