//! ccnode's HTTP layer and node runtime: the Credit Commons routes, the admin
//! routes, OpenAPI and metrics, over a writer thread that group-commits
//! ledger commands to the journal and publishes them to the read model.

pub mod app;
pub mod attempts;
pub mod auth;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod federation;
pub mod http;
pub mod httpsig;
pub mod import;
pub mod machine;
pub mod merkle;
pub mod metrics;
pub mod node;
pub mod peer_client;
pub mod peers;
pub(crate) mod pending;
pub mod read_model;
pub mod routes;
pub mod runtime;
pub mod schema;
pub mod server;
pub mod store;
pub mod wire;

/// Test-only fault injection: whether `CCNODE_FAILPOINT` names `name`
/// (docs/OPERATIONS.md; never set in production).
pub(crate) fn failpoint_is(name: &str) -> bool {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    POINT.get_or_init(|| std::env::var("CCNODE_FAILPOINT").ok()).as_deref() == Some(name)
}
pub mod witness;
