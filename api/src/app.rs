//! The handlers' shared state (the writer's handle, the read model and the
//! node's settings), how a refused or failed write is answered, and where a
//! data directory keeps the journal and the projections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use axum::http::StatusCode;
use ledger::{AccountId, Command, FieldValue, Violation};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::machine::{LedgerMachine, NodeCommand, NodeOutput};
use crate::metrics::Metrics;
use crate::read_model::ReadModel;
use crate::runtime::{Handle, WriteError};
use crate::wire::amount_value;

/// Shared state of all handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) handle: Handle<LedgerMachine>,
    /// Why the node refuses writes, when it started read-only.
    pub(crate) read_only: Option<String>,
    pub(crate) read: Arc<RwLock<ReadModel>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) name: String,
    pub(crate) genesis: [u8; 32],
    pub(crate) default_limits: (ledger::Amount, ledger::Amount),
    pub(crate) peers: crate::peers::Peers,
    pub(crate) data_dir: PathBuf,
    /// Where the journal lives, for the handlers that open a second,
    /// read-only handle on it (the event feed).
    pub(crate) store: crate::store::StoreLocation,
    pub(crate) reconcile_interval: std::time::Duration,
    pub(crate) durable: tokio::sync::watch::Receiver<u64>,
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) tree: crate::merkle::SharedTree,
    pub(crate) origin: String,
    pub(crate) key_lock: tokio::sync::Mutex<()>,
    pub(crate) witness_lock: tokio::sync::Mutex<()>,
    pub(crate) checkpoint_schedule: (std::time::Duration, u64),
    /// The federation flows running detached from their requests ([`AppState::spawn_flow`]).
    pub(crate) flows: Arc<Flows>,
}

/// Tasks that must run to their end whatever their caller does, and stop
/// with the node ([`crate::node::Node`] aborts them when it is dropped).
#[derive(Debug, Default)]
pub(crate) struct Flows(std::sync::Mutex<Vec<tokio::task::AbortHandle>>);

impl Flows {
    /// Aborts every flow still running.
    pub(crate) fn abort_all(&self) {
        for task in self.0.lock().expect("the flows are never poisoned").drain(..) {
            task.abort();
        }
    }
}

impl AppState {
    /// The ccnode neighbours not reconciled since this node started.
    pub fn unreconciled_links(&self) -> Vec<AccountId> {
        let ccnode = self.read().ccnode_neighbours();
        self.peers().unreconciled(&ccnode)
    }

    /// Runs a federation flow (a state change asked of neighbours) to its
    /// end even if the request that started it is cancelled: hyper drops a
    /// handler whose client disconnects, and a flow dropped between the next
    /// node's write and ours would leak its reservation and, at an
    /// intermediate node, let the link diverge. The caller awaits the
    /// answer; the flow stops with the node.
    pub fn spawn_flow<F>(&self, flow: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(flow);
        let mut flows = self.inner.flows.0.lock().expect("the flows are never poisoned");
        flows.retain(|t| !t.is_finished());
        flows.push(task.abort_handle());
        task
    }

    /// Read access to the read model (never waits on the writer's fsync).
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.inner.read.read().expect("the read model lock is never poisoned")
    }

    /// Submits a command and waits until it is durable.
    pub async fn submit(&self, command: NodeCommand) -> Result<NodeOutput, WriteError<Violation>> {
        if let Some(reason) = &self.inner.read_only {
            return Err(WriteError::ReadOnly(reason.clone()));
        }
        self.inner.handle.submit(command).await
    }

    /// Why the node refuses every write, when it started read-only (its
    /// journal holds a record the read model cannot fold; the reason names it).
    pub fn read_only(&self) -> Option<&str> {
        self.inner.read_only.as_deref()
    }

    /// Submits commands in order, sharing batches; one answer per command sent
    /// (fewer if the writer stopped).
    pub async fn submit_all(&self, commands: Vec<NodeCommand>) -> Vec<Result<NodeOutput, WriteError<Violation>>> {
        if let Some(reason) = &self.inner.read_only {
            return commands.iter().map(|_| Err(WriteError::ReadOnly(reason.clone()))).collect();
        }
        self.inner.handle.submit_all(commands).await
    }

    /// Metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The seq of the last durable, published record; changes as the writer commits.
    pub fn durable_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.durable.clone()
    }

    /// Says to long-lived streams that the node is shutting down.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves when the node begins shutting down.
    pub fn shutting_down(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Closes a link after a divergence: journaled (`LinkClosed`), so a
    /// restart keeps it closed. A link closed already keeps its first evidence.
    pub async fn close_link(&self, peer: &AccountId, evidence: serde_json::Value) {
        let mut text = evidence.to_string();
        if text.len() > ledger::decide::EVIDENCE_BYTES_MAX {
            let cut =
                (0..=ledger::decide::EVIDENCE_BYTES_MAX - 128).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text = serde_json::json!({"truncated": &text[..cut]}).to_string();
        }
        let command = NodeCommand::Ledger(Command::CloseLink { peer: peer.clone(), evidence: text });
        if let Err(error) = self.submit(command).await {
            tracing::debug!(%peer, why = %describe_write_error(&error), "link not closed (closed already?)");
        }
    }

    /// Reopens a closed link (`LinkReopened`); whether it was closed.
    pub async fn reopen_link(&self, peer: &AccountId) -> bool {
        if self.read().closed(peer).is_none() {
            return false;
        }
        self.submit(NodeCommand::Ledger(Command::ReopenLink { peer: peer.clone() })).await.is_ok()
    }

    /// Seconds between reconciliation passes.
    pub fn reconcile_interval(&self) -> std::time::Duration {
        self.inner.reconcile_interval
    }

    /// Neighbour calls and link locks.
    pub fn peers(&self) -> &crate::peers::Peers {
        &self.inner.peers
    }

    /// Default (min, max) of new accounts.
    pub fn default_limits(&self) -> (ledger::Amount, ledger::Amount) {
        self.inner.default_limits
    }

    /// What the writer does now: writing, following the journal (a standby,
    /// or a store being reconnected), or stopped until restart.
    pub fn writer_state(&self) -> crate::runtime::WriterState {
        self.inner.handle.state()
    }

    /// Resolves to `true` once the node writes (at once if it does), `false`
    /// if its writer stopped running, never on a read-only node; holds
    /// nothing that keeps the writer running.
    pub fn writer_writes(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let read_only = self.inner.read_only.is_some();
        let writing = self.inner.handle.writing();
        async move {
            if read_only {
                std::future::pending::<()>().await;
            }
            writing.await
        }
    }

    /// Whether the node writes now (not read-only, not following, not stopped).
    pub fn writing(&self) -> bool {
        self.inner.read_only.is_none() && self.writer_state() == crate::runtime::WriterState::Writing
    }

    /// The checkpoints' origin (the node's key name).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The Merkle tree over the journal. It may hold leaves past the durable
    /// head (decided, not yet synced): use only sizes of checkpoints.
    pub fn tree(&self) -> crate::merkle::SharedTree {
        Arc::clone(&self.inner.tree)
    }

    /// Held while the node's key is being rotated.
    pub fn key_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.key_lock
    }

    /// Held while a neighbour's checkpoint is checked and cosigned.
    pub fn witness_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.witness_lock
    }

    /// Seconds between scheduled checkpoints and records between checkpoints.
    pub fn checkpoint_schedule(&self) -> (std::time::Duration, u64) {
        self.inner.checkpoint_schedule
    }

    /// The data directory (journal in `journal/` unless the store is a
    /// database, the node's key, the projections).
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Where the journal lives, for read-only handles such as the replay event feed.
    pub fn store_location(&self) -> &crate::store::StoreLocation {
        &self.inner.store
    }
}

/// Where the journal lives inside a data directory (defined with the stores).
pub use crate::store::journal_dir;

/// Where the derived projections snapshot lives inside a data directory.
pub fn projections_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("projections")
}

/// A one-line description of a failed write for logs and start-up errors.
pub fn describe_write_error(error: &WriteError<Violation>) -> String {
    match error {
        WriteError::Rejected(v) => format!("{}: {v}", v.class()),
        other => other.to_string(),
    }
}

/// A refused command as Credit Commons error JSON.
pub fn violation_error(violation: &Violation) -> ApiError {
    let status = match violation {
        Violation::DoesNotExist { .. } => StatusCode::NOT_FOUND,
        Violation::Permission => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut error = ApiError::new(status, violation.class());
    for (key, value) in violation.fields() {
        let value = match value {
            FieldValue::Text(s) => Value::String(s),
            FieldValue::Amount(a) => amount_value(a),
            FieldValue::Map(m) => json!(m),
        };
        error = error.with(key, value);
    }
    error
}

/// A failed write as Credit Commons error JSON.
pub(crate) fn write_error(error: WriteError<Violation>) -> ApiError {
    match error {
        WriteError::Rejected(violation) => violation_error(&violation),
        WriteError::Journal(_) => ApiError::failure(
            "the journal could not be written, so whether this write was recorded is unknown (retry with the same \
             uuid to find out); the node refuses writes until its journal can be written again",
        ),
        WriteError::Unavailable => ApiError::unavailable("the node is not accepting writes (shutting down or stopped)"),
        WriteError::ReadOnly(reason) | WriteError::NotWriting(reason) => ApiError::unavailable(&reason),
    }
}

/// Submits a command and answers its failure as Credit Commons error JSON.
pub(crate) async fn submit(state: &AppState, command: NodeCommand) -> ApiResult<NodeOutput> {
    state.submit(command).await.map_err(write_error)
}
