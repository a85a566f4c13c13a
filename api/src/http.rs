//! HTTP plumbing shared by all routes: the JSON extractor that answers in
//! Credit Commons error format, request metrics, response headers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Largest request body accepted, in bytes.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// A JSON body, whatever its `Content-Type`: a browser sends
/// `text/plain;charset=UTF-8` for a body it posts without a preflight, and the
/// reference reads such bodies as JSON. A body that is not JSON (or not the
/// expected shape) is an `InvalidFieldsViolation`; an oversized one is 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|_| {
            ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "InvalidFieldsViolation")
                .with("fields", serde_json::json!({"body": "request body is too large or unreadable"}))
        })?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid_field("body", format!("not the expected JSON: {e}")))?;
        Ok(AppJson(value))
    }
}

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Records every request's route, status and latency.
pub async fn track_metrics(metrics: Arc<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map_or("unmatched", |p| crate::metrics::route_label(p.as_str()));
    let method = crate::metrics::method_label(request.method());
    let response = next.run(request).await;
    metrics.request(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Methods a browser may use from another origin.
pub const CORS_METHODS: &str = "GET, POST, PATCH, PUT, OPTIONS";
/// Request headers a browser may send from another origin.
pub const CORS_HEADERS: &str = "cc-user, cc-auth, cc-node, last-hash, cc-node-trace, content-type";

/// Which other origins' pages may call the node (`--cors-origin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`Access-Control-Allow-Origin: *`): the default.
    #[default]
    Any,
    /// Only these origins (`scheme://host[:port]`, compared without case);
    /// the answer names the caller's origin when it is one of them.
    Only(Arc<[String]>),
}

/// Why an allowed origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin:?} is not an origin (scheme://host[:port], without a path), nor *")]
pub struct BadOrigin {
    /// What was given.
    pub origin: String,
}

impl CorsOrigins {
    /// From the configured list: empty or `*` is any origin.
    pub fn parse(list: &[String]) -> Result<CorsOrigins, BadOrigin> {
        if list.is_empty() || list.iter().any(|o| o.trim() == "*") {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::new();
        for origin in list {
            let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
            let ok = rest.is_some_and(|host| {
                !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ']) && HeaderValue::from_str(&o).is_ok()
            });
            if !ok {
                return Err(BadOrigin { origin: origin.clone() });
            }
            origins.push(o);
        }
        Ok(CorsOrigins::Only(origins.into()))
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if any.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self {
            CorsOrigins::Any => Some(HeaderValue::from_static("*")),
            CorsOrigins::Only(list) => {
                let origin = origin?;
                let text = origin.to_str().ok()?.to_ascii_lowercase();
                list.contains(&text).then(|| origin.clone())
            }
        }
    }
}

/// CORS on every response, so browser wallets served from another origin
/// work: a preflight (`OPTIONS` with `Access-Control-Request-Method`) on any
/// route is answered 204 here, before routing and authentication (a browser
/// sends it without the `cc-user`/`cc-auth` headers); `OPTIONS /` without it
/// is still the reference's `permittedEndpoints`. With a list of origins,
/// only a page from one of them gets the allow headers (the browser refuses
/// the others), and answers say `Vary: Origin`.
pub async fn decorate(origins: CorsOrigins, request: Request, next: Next) -> Response {
    let is_preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key("access-control-request-method");
    let allow = origins.allow(request.headers().get(axum::http::header::ORIGIN));
    let mut response =
        if is_preflight { axum::http::StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    let headers = response.headers_mut();
    if matches!(origins, CorsOrigins::Only(_)) {
        headers.append(axum::http::header::VARY, HeaderValue::from_static("origin"));
    }
    let Some(allow) = allow else { return response };
    headers.insert(HeaderName::from_static("access-control-allow-origin"), allow);
    headers.insert(HeaderName::from_static("access-control-allow-headers"), HeaderValue::from_static(CORS_HEADERS));
    headers.insert(HeaderName::from_static("access-control-allow-methods"), HeaderValue::from_static(CORS_METHODS));
    if is_preflight {
        headers.insert(HeaderName::from_static("access-control-max-age"), HeaderValue::from_static("86400"));
    }
    response
}

/// Whether `caller` is a neighbour node on a reference link.
fn reference_neighbour(state: &crate::app::AppState, caller: &str) -> bool {
    let Ok(id) = ledger::AccountId::new(caller) else { return false };
    let read = state.read();
    read.projections.peer(&id).is_some()
        && ledger::LedgerView::dialect(&read.projections, &id) == ledger::Dialect::Reference
}

/// cc-php-lib rebuilds a neighbour's error from its JSON
/// (`NodeRequester::reconstructCCErr`) and fails unless `method`, `path`,
/// `user` and each constructor field are there: to a reference neighbour the
/// error objects carry them (`user` is `- anon -`, as the reference sends it
/// to a node), and `translated` when the class has no message of its own.
fn for_reference(body: &mut serde_json::Value, method: &str, path: &str) {
    let Some(errors) = body.get_mut("errors").and_then(serde_json::Value::as_array_mut) else { return };
    for error in errors.iter_mut().filter_map(serde_json::Value::as_object_mut) {
        error.entry("method").or_insert_with(|| method.into());
        error.entry("path").or_insert_with(|| path.into());
        error.entry("user").or_insert_with(|| "- anon -".into());
        let class = error.get("class").and_then(serde_json::Value::as_str).unwrap_or("CCFailure").to_owned();
        error.entry("translated").or_insert_with(|| class.into());
    }
}

/// Puts the answering node's name into every error object ccnode itself
/// makes (`{"errors":[{"class": …, "node": "<name>"}]}`, as the reference
/// does); a neighbour's error relayed upstream keeps the node it came from.
pub async fn name_errors(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let caller = request.headers().get("cc-user").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<crate::error::Rendered>() {
        let (mut parts, _) = response.into_parts();
        let mut body = error.0.body_from(state.name());
        if caller.is_some_and(|c| reference_neighbour(&state, &c)) {
            for_reference(&mut body, &method, &path);
        }
        let bytes = serde_json::to_vec(&body).expect("error JSON serialises");
        parts.headers.insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_matched_without_case() {
        assert_eq!(CorsOrigins::parse(&[]), Ok(CorsOrigins::Any));
        assert_eq!(CorsOrigins::parse(&["*".into()]), Ok(CorsOrigins::Any));
        for bad in ["wallet.example", "ftp://x", "https://x/path", "https://", "https://a b"] {
            assert!(CorsOrigins::parse(&[bad.into()]).is_err(), "{bad}");
        }
        let only = CorsOrigins::parse(&["https://Wallet.example/".into(), "http://127.0.0.1:5173".into()]).expect("ok");
        let allow = |o: &str| only.allow(Some(&HeaderValue::from_str(o).expect("header")));
        assert_eq!(allow("https://wallet.example"), Some(HeaderValue::from_static("https://wallet.example")));
        assert_eq!(allow("HTTPS://WALLET.EXAMPLE"), Some(HeaderValue::from_static("HTTPS://WALLET.EXAMPLE")));
        assert_eq!(allow("http://127.0.0.1:5173"), Some(HeaderValue::from_static("http://127.0.0.1:5173")));
        assert_eq!(allow("https://evil.example"), None);
        assert_eq!(allow("https://wallet.example.evil"), None);
        assert_eq!(only.allow(None), None);
    }
}
