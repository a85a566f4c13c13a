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
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    metrics.request(&route, method.as_str(), response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Methods a browser may use from another origin.
pub const CORS_METHODS: &str = "GET, POST, PATCH, PUT, OPTIONS";
/// Request headers a browser may send from another origin.
pub const CORS_HEADERS: &str = "cc-user, cc-auth, cc-node, last-hash, cc-node-trace, content-type";

/// CORS on every response, so browser wallets served from another origin
/// work: a preflight (`OPTIONS` with `Access-Control-Request-Method`) on any
/// route is answered 204 here, before routing and authentication (a browser
/// sends it without the `cc-user`/`cc-auth` headers); `OPTIONS /` without it
/// is still the reference's `permittedEndpoints`.
pub async fn decorate(request: Request, next: Next) -> Response {
    let is_preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key("access-control-request-method");
    let mut response =
        if is_preflight { axum::http::StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static("access-control-allow-origin"), HeaderValue::from_static("*"));
    headers.insert(HeaderName::from_static("access-control-allow-headers"), HeaderValue::from_static(CORS_HEADERS));
    headers.insert(HeaderName::from_static("access-control-allow-methods"), HeaderValue::from_static(CORS_METHODS));
    if is_preflight {
        headers.insert(HeaderName::from_static("access-control-max-age"), HeaderValue::from_static("86400"));
    }
    response
}

/// Whether `caller` is a neighbour node on a reference link.
fn reference_neighbour(state: &crate::node::AppState, caller: &str) -> bool {
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
    axum::extract::State(state): axum::extract::State<crate::node::AppState>,
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
