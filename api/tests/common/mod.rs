#![allow(dead_code)] // each test binary uses part of this support module
//! The node the in-process router tests start: `twig`, admin key
//! [`ADMIN_KEY`], default limits -100..100, no neighbours.

use std::path::Path;
use std::sync::Arc;

use api::app::AppState;
use api::metrics::Metrics;
use api::node::{Node, StartOptions};
use axum::Router;
use ledger::Amount;

/// The `admin` account's key.
pub const ADMIN_KEY: &str = "admin-secret";

/// A started node, its router and state, and the directory holding its data.
pub struct Started {
    pub node: Node,
    pub router: Router,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

/// The options every in-process test node starts with: admin key
/// [`ADMIN_KEY`], default limits -100..100, no neighbours, no scheduled
/// checkpoints, HTTP neighbours; a test overrides what it needs.
pub fn options(dir: &Path, name: &str) -> StartOptions {
    StartOptions {
        data_dir: dir.to_path_buf(),
        name: name.to_owned(),
        admin_key: Some(ADMIN_KEY.to_owned()),
        validated_window_seconds: 300,
        zero_payments: false,
        validate_pending: true,
        default_limits: (Amount::from_units(-100), Amount::from_units(100)),
        peer_timeout: std::time::Duration::from_secs(2),
        reconcile_interval: std::time::Duration::from_secs(3600),
        trunkward: None,
        workflows: None,
        origin: None,
        checkpoint_interval: std::time::Duration::ZERO,
        checkpoint_records: 0,
        peer_signature_window_secs: api::httpsig::WINDOW_SECS_DEFAULT,
        snapshot_every: 0,
        merkle_background_from: api::node::MERKLE_BACKGROUND_FROM,
        clock: journal::now_us,
        peer_client: None,
        store: store_for(dir),
        hooks: api::node::Hooks::default(),
    }
}

/// The store of a test node in `dir`: segment files, or with
/// `CCNODE_TEST_STORE=postgres` (a second run in `.ci/run`) a database of
/// its own in a throwaway PostgreSQL cluster, the same one for the same
/// directory so that a restarted node finds its journal.
pub fn store_for(dir: &Path) -> api::store::StoreLocation {
    if std::env::var("CCNODE_TEST_STORE").as_deref() != Ok("postgres") {
        return api::store::StoreLocation::File;
    }
    let url = pgcluster::database_for(dir, true).expect("created when missing");
    api::store::StoreLocation::Postgres { url, standby: false }
}

/// Starts node `twig` in a fresh directory.
pub async fn start_twig() -> Started {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options(dir.path(), "twig");
    let metrics = Arc::new(Metrics::new());
    let node = Node::start(options, Arc::clone(&metrics)).await.expect("node starts");
    let state = node.state();
    let router = api::server::router(node.state(), metrics);
    Started { node, router, state, dir }
}
