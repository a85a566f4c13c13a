//! ccnode's HTTP layer and node runtime: the Credit Commons routes, the admin
//! routes, OpenAPI and metrics, over a writer thread that group-commits
//! ledger commands to the journal and publishes them to the read model.

pub mod auth;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod federation;
pub mod http;
pub mod metrics;
pub mod node;
pub mod reconcile;
pub mod replay_routes;
pub mod routes;
pub mod runtime;
pub mod schema;
pub mod server;
pub mod wire;
pub mod witness;
