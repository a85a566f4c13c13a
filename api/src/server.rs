//! The router, the OpenAPI document, and serving with graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use tokio::net::TcpListener;
use utoipa::OpenApi;

use crate::app::{describe_write_error, AppState};
use crate::error::ApiError;
use crate::http::{decorate, name_errors, track_metrics, CorsOrigins, BODY_BYTES_MAX};
use crate::machine::{NodeCommand, NodeOutput};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::schema::{self, ErrorResponses};
use crate::{federation, routes};

/// How often validated transactions past their window are timed out.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// The OpenAPI 3 document of every route.
#[derive(OpenApi)]
#[openapi(
    info(title = "ccnode", description = "A Credit Commons node: the 0.8.x client API, ccnode's historical balance and the admin API. Authenticate with `cc-user` (account id) and `cc-auth` (its key). Every answer has a content schema: `{data, meta?, links?}` on success, `ErrorBody` (`{\"errors\":[{\"class\": ..., \"node\": ...}]}`) on every 4xx and 5xx. Amounts are exact decimals of at most 6 places (`Amount`, `AmountIn`)."),
    paths(
        routes::node::permitted_endpoints, routes::node::about, routes::node::workflows, routes::node::absolute_path, routes::node::handshake,
        routes::accounts::account_names, routes::accounts::account_summary, routes::accounts::account_limits, routes::accounts::account_history,
        routes::accounts::account_balance, routes::transactions::new_transaction, routes::transactions::get_transaction, routes::transactions::state_change,
        routes::transactions::filter_transactions, routes::transactions::filter_entries, routes::transactions::transaction_entries,
        routes::admin::admin_new_account, routes::admin::admin_change_account, openapi_json, metrics_text,
        routes::operator::admin_list_accounts, routes::operator::admin_health, routes::operator::admin_warnings,
        routes::operator::account_warnings,
        routes::federation::relay, routes::federation::admin_new_child, routes::federation::admin_set_trunkward, routes::federation::admin_list_nodes,
        routes::federation::admin_set_fees, routes::federation::link_feed, routes::federation::reconcile_route,
        routes::federation::reopen_route, routes::replay::events, routes::federation::admin_rotate,
        routes::checkpoint::node_key, routes::checkpoint::get_checkpoint, routes::checkpoint::admin_checkpoint,
        routes::checkpoint::admin_rotate_key, routes::checkpoint::proof_inclusion, routes::checkpoint::proof_consistency,
        routes::checkpoint::proof_balance, routes::checkpoint::statement, routes::witness::admin_peer_key,
        routes::witness::add_checkpoint,
    ),
    components(schemas(crate::wire::NewTransaction, crate::wire::TransactionJson, crate::wire::EntryJson,
        crate::wire::EntryFullJson, routes::admin::NewAccount, routes::admin::AccountChange, federation::RelayBody,
        federation::RelayEntry, routes::federation::NewChild, routes::federation::Trunkward, routes::federation::Fees, routes::federation::Rotate,
        schema::Amount, schema::AmountIn, schema::ErrorBody, schema::ErrorObject)),
    modifiers(&ErrorResponses),
    tags((name = "node"), (name = "accounts"), (name = "transactions"), (name = "admin"), (name = "federation"), (name = "operations"), (name = "proofs")),
)]
#[derive(Debug)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content((String = "application/openmetrics-text")))))]
pub async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics().render())
}

/// Every route, with the body limit, metrics and the reference's response
/// headers, and the default body timeout.
pub fn router(state: AppState, metrics: Arc<Metrics>) -> Router {
    router_with(state, metrics, ConnectionLimits::default().body_timeout)
}

/// Every route; a request body must arrive within `body_timeout` of its headers.
pub fn router_with(state: AppState, metrics: Arc<Metrics>, body_timeout: Duration) -> Router {
    router_with_cors(state, metrics, body_timeout, CorsOrigins::Any)
}

/// The same, with the origins whose pages may call the node (`--cors-origin`).
pub fn router_with_cors(state: AppState, metrics: Arc<Metrics>, body_timeout: Duration, cors: CorsOrigins) -> Router {
    routes::router()
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics_text))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn(check_digest))
        .layer(middleware::from_fn(move |req, next| body_deadline(body_timeout, req, next)))
        .layer(middleware::from_fn_with_state(state.clone(), name_errors))
        .layer(middleware::from_fn(move |req, next| decorate(cors.clone(), req, next)))
        .route_layer(middleware::from_fn(move |req, next| track_metrics(Arc::clone(&metrics), req, next)))
        .with_state(state)
}

/// Times out validated transactions past their window, until `stop` resolves
/// (after `reconciled` says the first reconciliation pass is over). Public
/// for the simulator, which runs the same loop.
pub async fn expire_loop(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut reconciled: tokio::sync::watch::Receiver<bool>,
) {
    // A transaction a neighbour completed while this node was down is still
    // validated here; copying that version must come before the local clock
    // times it out, so expiry waits for the first reconciliation pass.
    // Biased (here and below): the first ready branch wins, not a random
    // one, so a simulated run is the same in every process.
    tokio::select! {
        biased;
        _ = stop.changed() => return,
        _ = reconciled.wait_for(|done| *done) => {}
    }
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            // A node that does not write (a standby) leaves expiry to the one that does.
            _ = tick.tick() => {
                if !state.writing() {
                    continue;
                }
                let unsettled = state.unreconciled_links();
                if let Err(error) = state.submit(NodeCommand::ExpireDue { unsettled }).await {
                    tracing::debug!(error = %describe_write_error(&error), "expiry pass skipped");
                }
            }
        }
    }
}

/// Signs a checkpoint every `interval` (if records were written since the
/// last one) and whenever `records` were written, until `stop` changes.
async fn checkpoint_loop(
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
        if due && state.writing() {
            match state.submit(NodeCommand::Checkpoint).await {
                Ok(NodeOutput::Checkpointed { size }) => tracing::debug!(size, "signed a checkpoint"),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %describe_write_error(&error), "no checkpoint"),
            }
        }
    }
}

/// What a connection may take: the slow-client defences.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to send a request's headers, from the connection's start or the
    /// end of the previous response (so also the longest idle keep-alive).
    pub header_timeout: Duration,
    /// Time to send a request's body, from the end of its headers.
    pub body_timeout: Duration,
    /// Connections open at once; further ones wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(crate::config::DEFAULT_HEADER_TIMEOUT_SECONDS),
            body_timeout: Duration::from_secs(crate::config::DEFAULT_BODY_TIMEOUT_SECONDS),
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// From a resolved configuration (each value at least 1).
    pub fn from_config(config: &crate::config::NodeConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(config.header_timeout_seconds.max(1)),
            body_timeout: Duration::from_secs(config.body_timeout_seconds.max(1)),
            max_connections: config.max_connections.max(1),
        }
    }
}

/// A request body that fails once `deadline` passes before its end, and says so in `expired`.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error a timed-out body gives its reader.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request with a body must deliver all of it within `timeout` of its
/// headers; else the answer is 408 `CCFailure` and the connection closes.
/// Responses are not limited: a live feed streams for as long as it likes.
/// A request with a `Content-Digest` (RFC 9530) must have the body it names:
/// the body is read here and checked (sha-256), else 401 `AuthViolation`
/// before any handler runs. A signed request covers the header (see
/// `auth::check_signature`), so the signature binds the body too.
async fn check_digest(request: Request, next: Next) -> Response {
    let Some(digest) = request.headers().get("content-digest").cloned() else { return next.run(request).await };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "CCFailure")
                .with("message", "the request body is too large or did not arrive")
                .into_response()
        }
    };
    if !digest.to_str().is_ok_and(|d| crate::httpsig::digest_matches(d, &bytes)) {
        tracing::warn!(path = %parts.uri.path(), "a request's Content-Digest does not match its body");
        return ApiError::new(StatusCode::UNAUTHORIZED, "AuthViolation")
            .with("signature", crate::httpsig::SigError::Digest.to_string())
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

async fn body_deadline(timeout: Duration, request: Request, next: Next) -> Response {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body =
        DeadlineBody { inner: body, deadline: Box::pin(tokio::time::sleep(timeout)), expired: Arc::clone(&expired) };
    let response = next.run(Request::from_parts(parts, Body::new(body))).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    tracing::debug!(seconds = timeout.as_secs(), "request body timed out");
    let message = format!("the request body did not arrive within {} s", timeout.as_secs());
    let mut response = ApiError::new(StatusCode::REQUEST_TIMEOUT, "CCFailure").with("message", message).into_response();
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves `node` on `listener` until `shutdown` resolves; then stops taking
/// connections, lets requests in flight finish, drains the writer and closes
/// the journal. Connections are held to `limits`.
pub async fn serve(
    node: Node,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_cors(node, metrics, listener, limits, CorsOrigins::Any, shutdown).await
}

/// [`serve`], with the origins whose pages may call the node.
pub async fn serve_with_cors(
    node: Node,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    limits: ConnectionLimits,
    cors: CorsOrigins,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = node.state();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (reconciled_tx, reconciled_rx) = tokio::sync::watch::channel(false);
    let expiry = tokio::spawn(expire_loop(state.clone(), stop_rx.clone(), reconciled_rx));
    let (interval, records) = state.checkpoint_schedule();
    let checkpointer = tokio::spawn(checkpoint_loop(state.clone(), interval, records, stop_rx.clone()));
    let cosigner =
        tokio::spawn(crate::witness::cosign_loop(state.clone(), state.reconcile_interval(), stop_rx.clone()));
    let reconciler = tokio::spawn(federation::reconcile::reconcile_loop(
        state.clone(),
        state.reconcile_interval(),
        stop_rx,
        reconciled_tx,
    ));
    let app = router_with_cors(state.clone(), metrics, limits.body_timeout, cors);
    let streams = state.clone();
    let shutdown = async move {
        shutdown.await;
        // Live feeds end so their connections can close.
        streams.begin_shutdown();
    };
    drop(state);
    accept_loop(listener, app, limits, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = expiry.await;
    let _ = reconciler.await;
    let _ = checkpointer.await;
    let _ = cosigner.await;
    tokio::task::spawn_blocking(move || node.shutdown()).await.map_err(std::io::Error::other)?;
    Ok(())
}

/// Accepts connections while fewer than `limits.max_connections` are open
/// and serves each over HTTP/1.1 with the header timeout, until `shutdown`;
/// then asks every connection to finish its request in flight and close,
/// and waits for them.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    // The limit is logged at most once a minute, however long it lasts.
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(max = limits.max_connections, "connection limit reached: new connections wait");
                    warned = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of descriptors, for instance: wait before trying again.
                        tracing::error!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection, not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
