//! Every HTTP route, by resource: each module has its handlers and its
//! `router()`, and [`router`] merges them. This module holds what they share:
//! the query and path extractors with Credit Commons errors, the envelope of
//! a plain answer, and the answers to unknown routes and methods.
//!
//! Handlers read from the read model (a short read lock, never waiting on an
//! fsync) and write through the writer, answering only once it is durable.

pub mod accounts;
pub mod admin;
pub mod checkpoint;
pub mod federation;
pub mod node;
pub mod operator;
pub mod replay;
pub mod transactions;
pub mod ui;
pub mod witness;

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::wire::envelope;

/// Longest query parameter value accepted, in bytes.
pub const QUERY_VALUE_BYTES_MAX: usize = 1024;

/// Query string, parsed leniently into a map and checked by each handler.
#[derive(Debug, Default, Deserialize, FromRequestParts)]
#[serde(transparent)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params(pub HashMap<String, String>);

/// Path parameters with Credit Commons errors.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

impl Params {
    fn only(&self, known: &[&str]) -> ApiResult<()> {
        for (key, value) in &self.0 {
            if !known.contains(&key.as_str()) {
                return Err(ApiError::invalid_field(key, format!("unknown parameter; known: {}", known.join(", "))));
            }
            if value.len() > QUERY_VALUE_BYTES_MAX {
                return Err(ApiError::invalid_field(key, "value too long"));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> ApiResult<Option<T>> {
        self.get(key).map(|v| v.parse::<T>().map_err(|_| ApiError::invalid_field(key, "expected a number"))).transpose()
    }
}

fn ok(data: Value) -> Json<Value> {
    Json(envelope(data, None, None))
}

/// Every resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(node::router())
        .merge(accounts::router())
        .merge(transactions::router())
        .merge(admin::router())
        .merge(checkpoint::router())
        .merge(federation::router())
        .merge(operator::router())
        .merge(witness::router())
        .merge(ui::router())
        .merge(replay::router())
}

/// Unknown routes.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::does_not_exist("route", uri.path())
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "CCOtherViolation").with("translated", "method not allowed here")
}
