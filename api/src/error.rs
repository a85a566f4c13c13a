//! Every failure leaves as Credit Commons error JSON:
//! `{"errors":[{"class": "...", <class fields>}]}` with the right status.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// One Credit Commons error object and the HTTP status it travels with.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The Credit Commons class, e.g. `DoesNotExistViolation`.
    pub class: &'static str,
    /// The class's fields.
    pub fields: Map<String, Value>,
    /// A neighbour's error body, passed upstream untouched.
    pub raw: Option<Value>,
}

impl ApiError {
    /// An error with no fields.
    pub fn new(status: StatusCode, class: &'static str) -> ApiError {
        ApiError { status, class, fields: Map::new(), raw: None }
    }

    /// A neighbour's error answer, relayed as it came.
    pub fn raw(status: StatusCode, body: Value) -> ApiError {
        ApiError { status, class: "CCFailure", fields: Map::new(), raw: Some(body) }
    }

    /// The class, also of a relayed error.
    pub fn class_name(&self) -> &str {
        self.raw.as_ref().and_then(|b| b["errors"][0]["class"].as_str()).unwrap_or(self.class)
    }

    /// Whether this says a neighbour may have acted on a request whose answer
    /// did not come back (`UnavailableNodeFailure` with `in_doubt`), also
    /// when a neighbour relayed it.
    pub fn is_in_doubt(&self) -> bool {
        let flag = match &self.raw {
            Some(body) => body["errors"][0]["in_doubt"] == Value::Bool(true),
            None => self.fields.get("in_doubt") == Some(&Value::Bool(true)),
        };
        flag && self.class_name() == "UnavailableNodeFailure"
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// 400 `InvalidFieldsViolation`: the request's fields are malformed.
    pub fn invalid_fields(fields: &[(&str, String)]) -> ApiError {
        let map: Map<String, Value> = fields.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidFieldsViolation").with("fields", Value::Object(map))
    }

    /// 400 `InvalidFieldsViolation` for one field.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::invalid_fields(&[(field, reason.into())])
    }

    /// 404 `DoesNotExistViolation`.
    pub fn does_not_exist(kind: &str, id: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "DoesNotExistViolation").with("type", kind).with("id", id.into())
    }

    /// 401 `AuthViolation`: no or unknown credentials where they are needed.
    pub fn unauthenticated(acc_id: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "AuthViolation").with("acc_id", acc_id)
    }

    /// 401 `PasswordViolation`: a known account with the wrong key.
    pub fn wrong_key(acc_id: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "PasswordViolation").with("key", acc_id)
    }

    /// 403 `PermissionViolation`.
    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "PermissionViolation")
    }

    /// `HashMismatchFailure {remoteNode, remoteHash}`: a neighbour's last hash
    /// is not ours (500, as the reference sends it; 409 where the caller asked
    /// about a position of the link rather than its head). Unlike the
    /// reference, ccnode never sends its own hash (`localHash`) back: the link
    /// hash is the neighbour's credential, and a caller that does not hold it
    /// must not learn it from the refusal.
    pub fn hash_mismatch(status: StatusCode, node: &str, remote: &str) -> ApiError {
        ApiError::new(status, "HashMismatchFailure").with("remoteNode", node).with("remoteHash", remote)
    }

    /// 500 `CCFailure` with a message that reveals no internals.
    pub fn failure(message: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "CCFailure").with("message", message)
    }

    /// 503 `CCFailure`: the node is not taking writes.
    pub fn unavailable(message: &str) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "CCFailure").with("message", message)
    }

    /// The JSON body, without the answering node's name.
    pub fn body(&self) -> Value {
        self.render(None)
    }

    /// The JSON body as node `node` answers it: its own errors name it.
    pub fn body_from(&self, node: &str) -> Value {
        self.render(Some(node))
    }

    fn render(&self, node: Option<&str>) -> Value {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut object = Map::new();
        object.insert("class".to_owned(), Value::String(self.class.to_owned()));
        if let Some(node) = node {
            object.insert("node".to_owned(), Value::String(node.to_owned()));
        }
        for (key, value) in &self.fields {
            object.insert(key.clone(), value.clone());
        }
        json!({ "errors": [Value::Object(object)] })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(class = self.class_name(), status = %self.status, "request failed");
        }
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response.extensions_mut().insert(Rendered(self));
        response
    }
}

/// The error a response was made from, so the router can name the node in it
/// (`crate::http::name_errors`).
#[derive(Debug, Clone)]
pub struct Rendered(pub ApiError);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::invalid_field("query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::invalid_field("path", rejection.body_text())
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
