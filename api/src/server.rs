//! The router, the OpenAPI document, and serving with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, on, patch, post, put, MethodFilter};
use axum::{middleware, Json, Router};
use tokio::net::TcpListener;
use utoipa::OpenApi;

use crate::http::{decorate, name_errors, track_metrics, BODY_BYTES_MAX};
use crate::metrics::Metrics;
use crate::node::{AppState, Node, NodeCommand};
use crate::schema::{self, ErrorResponses};
use crate::{federation, routes};

/// How often validated transactions past their window are timed out.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// The OpenAPI 3 document of every route.
#[derive(OpenApi)]
#[openapi(
    info(title = "ccnode", description = "A Credit Commons node: the 0.8.x client API, ccnode's historical balance and the admin API. Authenticate with `cc-user` (account id) and `cc-auth` (its key). Every answer has a content schema: `{data, meta?, links?}` on success, `ErrorBody` (`{\"errors\":[{\"class\": ..., \"node\": ...}]}`) on every 4xx and 5xx. Amounts are exact decimals of at most 6 places (`Amount`, `AmountIn`)."),
    paths(
        routes::permitted_endpoints, routes::about, routes::workflows, routes::absolute_path, routes::handshake,
        routes::account_names, routes::account_summary, routes::account_limits, routes::account_history,
        routes::account_balance, routes::new_transaction, routes::get_transaction, routes::state_change,
        routes::filter_transactions, routes::filter_entries, routes::transaction_entries,
        routes::admin_new_account, routes::admin_change_account, openapi_json, metrics_text,
        federation::relay, federation::admin_new_child, federation::admin_set_trunkward, federation::admin_list_nodes,
        federation::admin_set_fees, crate::reconcile::link_feed, crate::reconcile::reconcile_route,
        crate::reconcile::reopen_route, crate::replay_routes::events,
    ),
    components(schemas(crate::wire::NewTransaction, crate::wire::TransactionJson, crate::wire::EntryJson,
        crate::wire::EntryFullJson, routes::NewAccount, routes::AccountChange, federation::RelayBody,
        federation::RelayEntry, federation::NewChild, federation::Trunkward, federation::Fees,
        schema::Amount, schema::AmountIn, schema::ErrorBody, schema::ErrorObject)),
    modifiers(&ErrorResponses),
    tags((name = "node"), (name = "accounts"), (name = "transactions"), (name = "admin"), (name = "federation"), (name = "operations")),
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

/// Every route, with the body limit, metrics and the reference's response headers.
pub fn router(state: AppState, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/", on(MethodFilter::OPTIONS, routes::permitted_endpoints))
        .route("/about", get(routes::about))
        .route("/workflows", get(routes::workflows))
        .route("/absolutepath", get(routes::absolute_path))
        .route("/handshake", get(routes::handshake))
        .route("/account/names", get(routes::account_names))
        .route("/account/summary", get(routes::account_summary))
        .route("/account/limits", get(routes::account_limits))
        .route("/account/history", get(routes::account_history))
        .route("/account/balance", get(routes::account_balance))
        .route("/transaction", post(routes::new_transaction))
        .route("/transaction/{uuid}", get(routes::get_transaction))
        .route("/transaction/{uuid}/{dest_state}", patch(routes::state_change))
        .route("/transactions", get(routes::filter_transactions))
        .route("/entries", get(routes::filter_entries))
        .route("/entries/{uuid}", get(routes::transaction_entries))
        .route("/admin/accounts", post(routes::admin_new_account))
        .route("/admin/accounts/{id}", patch(routes::admin_change_account))
        .route("/admin/nodes", post(federation::admin_new_child).get(federation::admin_list_nodes))
        .route("/admin/trunkward", put(federation::admin_set_trunkward))
        .route("/admin/fees", put(federation::admin_set_fees))
        .route("/transaction/relay", post(federation::relay))
        .route("/replay/link/{node}", get(crate::reconcile::link_feed))
        .route("/replay/reconcile/{node}", post(crate::reconcile::reconcile_route))
        .route("/admin/nodes/{node}/reopen", post(crate::reconcile::reopen_route))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics_text))
        .merge(crate::replay_routes::router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), name_errors))
        .layer(middleware::from_fn(decorate))
        .route_layer(middleware::from_fn(move |req, next| track_metrics(Arc::clone(&metrics), req, next)))
        .with_state(state)
}

/// Times out validated transactions past their window, until `stop` resolves.
async fn expire_loop(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut reconciled: tokio::sync::watch::Receiver<bool>,
) {
    // A transaction a neighbour completed while this node was down is still
    // validated here; copying that version must come before the local clock
    // times it out, so expiry waits for the first reconciliation pass.
    tokio::select! {
        _ = reconciled.wait_for(|done| *done) => {}
        _ = stop.changed() => return,
    }
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(error) = state.submit(NodeCommand::ExpireDue).await {
                    tracing::debug!(error = %crate::node::describe_write_error(&error), "expiry pass skipped");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Serves `node` on `listener` until `shutdown` resolves; then stops taking
/// connections, lets requests in flight finish, drains the writer and closes
/// the journal.
pub async fn serve(
    node: Node,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = node.state();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (reconciled_tx, reconciled_rx) = tokio::sync::watch::channel(false);
    let expiry = tokio::spawn(expire_loop(state.clone(), stop_rx.clone(), reconciled_rx));
    let reconciler = tokio::spawn(crate::reconcile::reconcile_loop(
        state.clone(),
        state.reconcile_interval(),
        stop_rx,
        reconciled_tx,
    ));
    let app = router(state.clone(), metrics);
    let streams = state.clone();
    let shutdown = async move {
        shutdown.await;
        // Live feeds end so their connections can close.
        streams.begin_shutdown();
    };
    drop(state);
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    let _ = stop_tx.send(true);
    let _ = expiry.await;
    let _ = reconciler.await;
    tokio::task::spawn_blocking(move || node.shutdown()).await.map_err(std::io::Error::other)?;
    result
}
