//! A running node: the journal, the writer thread with the ledger's state,
//! the read model the HTTP handlers use, and start-up / shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use journal::Store as _;

use crate::store::Follow as _;
use ledger::{decode_event, AccountId, AccountKind, Command, Limits, NodeName, Violation};
use projections::{Projections, SnapshotStore};

use crate::app::{describe_write_error, projections_dir, AppState, Shared};
use crate::auth;
use crate::machine::{LedgerMachine, NodeCommand, ReadPublisher};
use crate::metrics::Metrics;
use crate::read_model::ReadModel;
use crate::runtime::{WriteError, Writer};

/// Journal records from which the Merkle tree is rebuilt in the background
/// at start (below, it takes at most a few tens of milliseconds).
pub const MERKLE_BACKGROUND_FROM: u64 = 100_000;

/// Id of the operator's first admin account.
pub const ADMIN_ACCOUNT: &str = "admin";

/// Default time between scheduled checkpoints (`ccnode serve --checkpoint-interval`).
pub const CHECKPOINT_INTERVAL_DEFAULT: std::time::Duration = std::time::Duration::from_secs(300);
/// Default records written after which a checkpoint is signed (`--checkpoint-records`).
pub const CHECKPOINT_RECORDS_DEFAULT: u64 = 10_000;
/// Default records between projections snapshots while running (`--snapshot-every`).
pub const SNAPSHOT_EVERY_DEFAULT: u64 = 100_000;

/// Settings the node starts with.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Data directory (journal in `journal/`, derived store in `projections/`).
    pub data_dir: PathBuf,
    /// Node name, fixed at first start.
    pub name: String,
    /// Key for the `admin` account (created at first start, rotated if it changed).
    pub admin_key: Option<String>,
    /// Seconds before a validated transaction expires.
    pub validated_window_seconds: u64,
    /// Whether zero payments are allowed.
    pub zero_payments: bool,
    /// Records between projections snapshots while running (0: only at a
    /// clean stop); a start after a crash folds at most this many records.
    pub snapshot_every: u64,
    /// Journals with at least this many records rebuild the Merkle tree in
    /// the background after start ([`MERKLE_BACKGROUND_FROM`]); smaller ones before serving.
    pub merkle_background_from: u64,
    /// Whether pending transactions count toward limits.
    pub validate_pending: bool,
    /// Limits of accounts opened without explicit ones.
    pub default_limits: (ledger::Amount, ledger::Amount),
    /// How long a neighbour has to answer.
    pub peer_timeout: std::time::Duration,
    /// How far a neighbour's request signature's `created` may be from our
    /// clock, in seconds (`--peer-signature-window`).
    pub peer_signature_window_secs: u64,
    /// Seconds between reconciliation passes over every link.
    pub reconcile_interval: std::time::Duration,
    /// The parent node to connect at first start, if not connected yet.
    pub trunkward: Option<TrunkwardOptions>,
    /// The workflows new transactions may use (`--workflows FILE`); `None`
    /// keeps the journal's (the shipped set on a new node). A different set
    /// is journaled as a configuration change; old transactions keep theirs.
    pub workflows: Option<Vec<ledger::Workflow>>,
    /// The checkpoints' origin and key name (default: the node's name).
    pub origin: Option<String>,
    /// Seconds between scheduled checkpoints (zero: none on a schedule).
    pub checkpoint_interval: std::time::Duration,
    /// Sign a checkpoint whenever this many records were written since the last (zero: never for that).
    pub checkpoint_records: u64,
    /// Clock for journal timestamps (unix µs); the demo backdates with its own.
    pub clock: fn() -> u64,
    /// How neighbours are reached: `None` is HTTP with `peer_timeout`; a
    /// simulation or an in-process test gives its own network.
    pub peer_client: Option<Arc<dyn crate::peer_client::PeerClient>>,
    /// Where the journal lives: the data directory's segment files (the
    /// default) or a PostgreSQL database.
    pub store: crate::store::StoreLocation,
    /// The simulator's replacements for the clock, fresh ids and the writer's
    /// threads (the default keeps production's).
    pub hooks: Hooks,
}

impl StartOptions {
    /// The options `ccnode serve` starts node `name` in `data_dir` with when
    /// no flag, variable or config file says otherwise: no admin key, the
    /// default limits, window, timeouts, checkpoint and snapshot intervals,
    /// HTTP neighbours, segment files, the system clock. A caller changes what
    /// it needs with struct update syntax (`StartOptions { … ,
    /// ..StartOptions::new(dir, name) }`).
    pub fn new(data_dir: impl Into<PathBuf>, name: impl Into<String>) -> StartOptions {
        let (min, max) = crate::config::DEFAULT_LIMIT_UNITS;
        StartOptions {
            data_dir: data_dir.into(),
            name: name.into(),
            admin_key: None,
            validated_window_seconds: crate::config::DEFAULT_VALIDATED_WINDOW_SECONDS,
            zero_payments: false,
            snapshot_every: SNAPSHOT_EVERY_DEFAULT,
            merkle_background_from: MERKLE_BACKGROUND_FROM,
            validate_pending: true,
            default_limits: (ledger::Amount::from_units(min), ledger::Amount::from_units(max)),
            peer_timeout: crate::peers::PEER_TIMEOUT_DEFAULT,
            peer_signature_window_secs: crate::httpsig::WINDOW_SECS_DEFAULT,
            reconcile_interval: crate::federation::reconcile::RECONCILE_INTERVAL_DEFAULT,
            trunkward: None,
            workflows: None,
            origin: None,
            checkpoint_interval: CHECKPOINT_INTERVAL_DEFAULT,
            checkpoint_records: CHECKPOINT_RECORDS_DEFAULT,
            clock: journal::now_us,
            peer_client: None,
            store: crate::store::StoreLocation::File,
            hooks: Hooks::default(),
        }
    }
}

/// What the deterministic simulator (`sim/`, issue 13) supplies instead of
/// the real thing; every field's default is production's behaviour. The
/// simulated disk is [`crate::store::StoreLocation::Memory`] and the
/// simulated network [`StartOptions::peer_client`].
#[derive(Clone, Default)]
pub struct Hooks {
    /// The writer's clock (unix µs), instead of [`StartOptions::clock`].
    pub clock: Option<crate::runtime::Clock>,
    /// Fresh transaction ids, instead of random v4 uuids.
    pub fresh_uuid: Option<crate::machine::UuidSource>,
    /// Run the writer in the caller's task ([`Writer::start_inline`]), not on threads.
    pub inline_writer: bool,
    /// A planted bug, for the simulator's test of itself: a change left in
    /// doubt is aborted, as before issue 13's fix. Never set in production.
    pub plant_abort_in_doubt: bool,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("clock", &self.clock.is_some())
            .field("fresh_uuid", &self.fresh_uuid.is_some())
            .field("inline_writer", &self.inline_writer)
            .field("plant_abort_in_doubt", &self.plant_abort_in_doubt)
            .finish()
    }
}

/// A parent node given on the command line.
#[derive(Debug, Clone)]
pub struct TrunkwardOptions {
    /// Its name (the balance-of-trade account here).
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Trunkward amount = local amount × rate.
    pub rate: ledger::Rate,
    /// Limits of the balance-of-trade account.
    pub limits: Limits,
    /// The link's agreed initial hash.
    pub last_hash: String,
    /// How the parent speaks.
    pub dialect: ledger::Dialect,
    /// The parent's verifier key (`GET /node/key` there): the link is keyed,
    /// every request on it signed (RFC 9421), and this node witnesses the parent.
    pub public_key: Option<tlog::VerifierKey>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The journal's store could not be opened.
    #[error("{0}")]
    Store(Box<crate::store::OpenStoreError>),
    /// The journal could not be replayed.
    #[error("replaying the journal: {0}")]
    Replay(String),
    /// The data directory belongs to another node.
    #[error("{dir} holds the journal of node {found:?}, not {expected:?}")]
    WrongNode {
        /// Where.
        dir: PathBuf,
        /// Name in the journal.
        found: String,
        /// Name asked for.
        expected: String,
    },
    /// Bad settings.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The first writes (initialisation, admin account) failed.
    #[error("initialising the ledger: {0}")]
    Initialise(String),
    /// Filesystem.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The node's key file.
    #[error("the node's key: {0}")]
    Key(#[from] crate::checkpoint::KeyError),
}

/// A started node: hand `state()` to the router; call `shutdown` at the end.
#[derive(Debug)]
pub struct Node {
    state: AppState,
    writer: Writer,
    store: Option<Arc<SnapshotStore>>,
    /// Takes the snapshots asked for every `--snapshot-every` records.
    snapshotter: Option<std::thread::JoinHandle<()>>,
    data_dir: PathBuf,
    /// Aborts the detached federation flows when the node goes.
    _flows: AbortFlows,
}

/// Aborts a node's detached flows when dropped (a stop, or a simulated crash).
#[derive(Debug)]
struct AbortFlows(Arc<crate::app::Flows>);

impl Drop for AbortFlows {
    fn drop(&mut self) {
        self.0.abort_all();
    }
}

impl Node {
    /// Opens (or creates) the node's journal, rebuilds state, initialises a new
    /// ledger, and starts the writer.
    pub async fn start(options: StartOptions, metrics: Arc<Metrics>) -> Result<Node, StartError> {
        NodeName::new(&options.name).map_err(|e| StartError::Config(format!("node name: {e}")))?;
        if let Some(key) = &options.admin_key {
            auth::check_new_key(key).map_err(|_| StartError::Config("admin key must be 1 to 256 bytes".into()))?;
        }
        std::fs::create_dir_all(&options.data_dir)?;
        let opening = std::time::Instant::now();
        let journal = crate::store::open(&options.store, &options.data_dir, &options.name)
            .map_err(|e| StartError::Store(Box::new(e)))?;
        tracing::info!(head = journal.head().seq, ms = opening.elapsed().as_millis(), "journal opened");
        if journal.identity() != options.name {
            return Err(StartError::WrongNode {
                dir: options.data_dir.clone(),
                found: journal.identity().to_owned(),
                expected: options.name.clone(),
            });
        }
        let origin = options.origin.clone().unwrap_or_else(|| options.name.clone());
        if !tlog::note::valid_key_name(&origin) || origin == "cosignature/v1" {
            return Err(StartError::Config(format!("origin {origin:?}: no spaces or '+', not cosignature/v1")));
        }
        let opening = std::time::Instant::now();
        let store = match SnapshotStore::open(&projections_dir(&options.data_dir)) {
            Ok(store) => {
                // Formats up to 5 kept the snapshot in sled here: not read
                // (the projections are rebuilt from the journal), deleted.
                match store.remove_legacy() {
                    Ok(removed) if !removed.is_empty() => tracing::warn!(
                        ?removed,
                        "removed an old-format projections snapshot (sled); the projections are rebuilt from the journal"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "could not remove an old-format projections snapshot"),
                }
                tracing::info!(ms = opening.elapsed().as_millis(), "snapshot store opened");
                Some(Arc::new(store))
            }
            Err(error) => {
                tracing::warn!(%error, "the projections store cannot be opened; folding the journal in memory");
                None
            }
        };
        let mut snapshot_info = crate::read_model::SnapshotInfo::default();
        let (projections, unfoldable) = match &store {
            Some(store) => {
                let (projections, report) = projections::load_or_rebuild(&journal, store)
                    .map_err(|e| StartError::Replay(format!("projections: {e}")))?;
                if let Some(why) = report.rebuilt_because.as_deref().filter(|why| *why != "no snapshot") {
                    tracing::warn!(reason = why, "the projections snapshot was not used; rebuilt from the journal");
                }
                tracing::info!(
                    snapshot_seq = ?report.from_snapshot_seq,
                    folded = report.folded,
                    rebuilt_because = ?report.rebuilt_because,
                    snapshot_ms = report.snapshot_ms,
                    fold_ms = report.fold_ms,
                    "projections loaded"
                );
                snapshot_info.loaded_seq = report.from_snapshot_seq;
                snapshot_info.folded_at_start = report.folded;
                (projections, report.unfoldable)
            }
            None => {
                let folded = fold_until_unfoldable(&journal)?;
                snapshot_info.folded_at_start = folded.0.seq();
                folded
            }
        };
        projections.assert_invariants();
        let read_only = unfoldable.map(|u| {
            let reason = read_only_reason(&u);
            tracing::error!(seq = u.seq, detail = %u.kind, "{reason}");
            reason
        });
        let node_key = projections.facts().node_key;
        let last_ledger_seq = projections.facts().last_ledger_seq;
        if read_only.is_none() {
            assert_eq!(projections.seq(), journal.head().seq, "the projections fold the whole journal");
        }
        let at_head = projections.seq() == journal.head().seq;
        let head_hash = if at_head { journal.head().hash.0 } else { [0; 32] };
        let mut read = ReadModel::new(projections, head_hash);
        read.snapshots = snapshot_info;
        let read = Arc::new(RwLock::new(read));
        metrics.set_head(journal.head().seq);
        let genesis = journal.genesis().0;
        let (durable, durable_rx) = tokio::sync::watch::channel(read.read().expect("fresh lock").projections.seq());
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let (signer, journal_key, request_seed) = if read_only.is_some() {
            (None, false, None)
        } else {
            let settled = crate::checkpoint::settle_key(&options.data_dir, node_key.as_ref())?;
            let signer = tlog::NoteSigner::new(&origin, &settled.seed.0)
                .map_err(|e| StartError::Config(format!("origin: {e}")))?;
            (Some(signer), settled.journal_it, Some(settled.seed.clone()))
        };
        let request_keyid = signer.as_ref().map(|s| s.verifier_key().to_string());
        let public_key = signer.as_ref().map(tlog::NoteSigner::public_key);
        let head = journal.head();
        // The Merkle tree's leaves are the journal's chain hashes (issue 11),
        // rebuilt on a thread of its own while the node already answers.
        // rebuilt on a thread of its own (while the node already answers) when
        // the journal has at least `merkle_background_from` records.
        let tree = Arc::new(RwLock::new(crate::merkle::MerkleState::rebuilding(head.seq)));
        if head.seq < options.merkle_background_from {
            crate::merkle::rebuild(&options.store, &options.data_dir, head.seq, &tree);
        } else {
            let (tree, dir, head, location) =
                (Arc::clone(&tree), options.data_dir.clone(), head.seq, options.store.clone());
            std::thread::Builder::new()
                .name("ccnode-merkle".into())
                .spawn(move || crate::merkle::rebuild(&location, &dir, head, &tree))?;
        }
        let tree_ok = Arc::new(AtomicBool::new(true));
        let machine = LedgerMachine {
            read: Arc::clone(&read),
            pending: crate::pending::Pending::default(),
            holds: HashMap::new(),
            chain: (head.seq, head.hash.0),
            tree: Arc::clone(&tree),
            tree_ok: Arc::clone(&tree_ok),
            signer,
            last_ledger_seq,
            fresh_uuid: options.hooks.fresh_uuid.clone(),
        };
        // Snapshots while running, so a start after a crash folds only the tail.
        let (snapshots, snapshotter) = match (&store, read_only.is_none() && at_head && options.snapshot_every > 0) {
            (Some(store), true) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let (read, store) = (Arc::clone(&read), Arc::clone(store));
                let thread = std::thread::Builder::new()
                    .name("ccnode-snapshot".into())
                    .spawn(move || snapshot_loop(&read, &store, genesis, &rx))?;
                (Some(tx), Some(thread))
            }
            _ => (None, None),
        };
        let publisher = ReadPublisher {
            read: Arc::clone(&read),
            durable,
            tree_ok,
            snapshot_every: options.snapshot_every,
            snapshot_seq: head.seq,
            snapshots,
            tree: Arc::clone(&tree),
        };
        let standing_by = !journal.is_writer();
        let observer: Arc<dyn crate::runtime::WriterObserver> = metrics.clone();
        let clock = options.hooks.clock.clone().unwrap_or_else(|| Arc::new(options.clock));
        let inline = options.hooks.inline_writer;
        let (writer, handle) = Writer::start_with(machine, publisher, journal, clock, observer, inline);
        let flows = Arc::new(crate::app::Flows::default());
        let app = AppState {
            inner: Arc::new(Shared {
                handle,
                read_only: read_only.clone(),
                read,
                metrics,
                name: options.name.clone(),
                genesis,
                default_limits: options.default_limits,
                peers: match &options.peer_client {
                    Some(client) => crate::federation::Peers::with_client(Arc::clone(client)),
                    None => crate::federation::Peers::new(options.peer_timeout),
                },
                reconcile_interval: options.reconcile_interval,
                durable: durable_rx,
                shutdown,
                data_dir: options.data_dir.clone(),
                store: options.store.clone(),
                tree,
                origin,
                key_lock: tokio::sync::Mutex::new(()),
                witness_lock: tokio::sync::Mutex::new(()),
                checkpoint_schedule: (options.checkpoint_interval, options.checkpoint_records),
                flows: Arc::clone(&flows),
            }),
        };

        app.peers().set_window(options.peer_signature_window_secs);
        if let Some(source) = &options.hooks.fresh_uuid {
            app.peers().set_uuid_source(source.clone());
        }
        app.peers().plant_abort_in_doubt(options.hooks.plant_abort_in_doubt);
        if let (Some(seed), Some(keyid)) = (&request_seed, request_keyid) {
            // The same key signs checkpoints and requests to neighbours (RFC 9421).
            app.peers().set_signer(&seed.0, keyid);
        }
        if read_only.is_some() {
            // No start-up write either: the node only answers reads.
            let _flows = AbortFlows(flows);
            return Ok(Node { state: app, writer, store: None, snapshotter, data_dir: options.data_dir, _flows });
        }
        let journal_key = public_key.filter(|_| journal_key);
        if standing_by {
            // A standby writes once it takes over, whatever the node that
            // writes now did not write already.
            let (writing, app, options) = (app.inner.handle.writing(), Arc::downgrade(&app.inner), options.clone());
            tokio::spawn(async move {
                if !writing.await {
                    return;
                }
                let Some(inner) = app.upgrade() else { return };
                if let Err(error) = startup_writes(&AppState { inner }, &options, journal_key).await {
                    tracing::error!(%error, "the start-up writes after taking over failed");
                }
            });
        } else {
            startup_writes(&app, &options, journal_key).await?;
        }
        Ok(Node { state: app, writer, store, snapshotter, data_dir: options.data_dir, _flows: AbortFlows(flows) })
    }

    /// The handlers' state.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the writer after the queued commands, then saves a projections
    /// snapshot (derived data, so a failure here loses nothing). Every other
    /// `AppState` clone must be dropped first (the router and its connections).
    pub fn shutdown(self) {
        let Node { state, writer, store, snapshotter, .. } = self;
        let read = Arc::clone(&state.inner.read);
        let genesis = state.inner.genesis;
        drop(state);
        let journal = writer.join();
        // The writer's publisher held the snapshot thread's only sender.
        if let Some(thread) = snapshotter {
            if thread.join().is_err() {
                tracing::warn!("the snapshot thread panicked");
            }
        }
        let head = journal.head();
        if let Some(store) = store {
            // The read model's own head: a node that was following may have
            // read a head it had not folded yet.
            let read = read.read().expect("the read model lock is never poisoned");
            match store.save(&read.projections, genesis, read.head_hash) {
                Ok(()) => tracing::info!(seq = read.projections.seq(), "projections snapshot saved"),
                Err(error) => tracing::warn!(%error, "saving the projections snapshot failed; it is rebuilt at start"),
            }
        }
        tracing::info!(seq = head.seq, "journal closed");
    }
}

/// The writes a node makes at start once it writes: initialising a new
/// ledger or its changed workflows, the node's public key (`journal_key`,
/// when the journal lacks it), the admin account or its changed key, and the
/// trunkward link. Each is decided from the read model as it is then, so a
/// standby taking over makes only those its predecessor did not.
async fn startup_writes(
    app: &AppState,
    options: &StartOptions,
    journal_key: Option<[u8; 32]>,
) -> Result<(), StartError> {
    let name = NodeName::new(&options.name).map_err(|e| StartError::Config(format!("node name: {e}")))?;
    let admin = AccountId::new(ADMIN_ACCOUNT).expect("valid id");
    let (needs_init, admin_hash, has_admin, has_key) = {
        let read = app.read();
        let p = &read.projections;
        (p.config().is_none(), p.key_hash(&admin).cloned(), p.account(&admin).is_some(), p.facts().node_key.is_some())
    };
    let init_error = |e: WriteError<Violation>| StartError::Initialise(describe_write_error(&e));
    if needs_init {
        let mut config = ledger::NodeConfig::new(name);
        config.validated_window_s = options.validated_window_seconds;
        config.zero_payments_allowed = options.zero_payments;
        config.validate_pending = options.validate_pending;
        if let Some(workflows) = &options.workflows {
            config.workflows.clone_from(workflows);
        }
        app.submit(NodeCommand::Ledger(Command::InitialiseNode { config })).await.map_err(init_error)?;
    } else if let Some(workflows) = &options.workflows {
        let current = app.read().projections.config().cloned();
        if let Some(mut config) = current.filter(|c| &c.workflows != workflows) {
            config.workflows.clone_from(workflows);
            app.submit(NodeCommand::Ledger(Command::ConfigureNode { config })).await.map_err(init_error)?;
            tracing::info!(count = workflows.len(), "the workflows changed: new transactions use the new set");
        }
    }
    if let Some(public_key) = journal_key.filter(|_| !has_key) {
        app.submit(NodeCommand::SetNodeKey { public_key }).await.map_err(init_error)?;
        tracing::info!("journaled the node's public key");
    }
    if let Some(key) = &options.admin_key {
        let id = admin;
        if !has_admin {
            let limits = Limits::new(ledger::Amount::ZERO, ledger::Amount::ZERO).expect("0 <= 0 <= 0");
            let kind = AccountKind::User { admin: true };
            let key_hash = auth::new_key_hash(key);
            app.submit(NodeCommand::OpenAccount { id, kind, limits, key_hash }).await.map_err(init_error)?;
            tracing::info!("created the admin account");
        } else if !admin_hash.is_some_and(|h| auth::key_matches(key, &h)) {
            let key_hash = auth::new_key_hash(key);
            app.submit(NodeCommand::Ledger(Command::ChangeKey { id, key_hash })).await.map_err(init_error)?;
            tracing::warn!("the admin key given at start differs from the stored one: replaced it");
        }
    }
    if let Some(t) = &options.trunkward {
        let id = AccountId::new(&t.name).map_err(|e| StartError::Config(format!("trunkward name: {e}")))?;
        let connected = app.read().projections.account(&id).is_some();
        if !connected {
            let commands = crate::federation::connect_commands_in(
                id.clone(),
                AccountKind::Trunkward,
                t.limits,
                t.url.clone(),
                t.rate,
                t.last_hash.clone(),
                t.dialect,
            );
            app.submit(NodeCommand::Many(commands)).await.map_err(init_error)?;
            tracing::info!(parent = %t.name, url = %t.url, "connected the trunkward node");
        }
        let known = app.read().projections.facts().peer_keys.get(&id).map(|(_, k)| *k);
        if let Some(key) = t.public_key.as_ref().filter(|k| known != Some(k.key.to_bytes())) {
            let command =
                NodeCommand::SetPeerKey { peer: id, origin: key.name.clone(), public_key: key.key.to_bytes() };
            app.submit(command).await.map_err(init_error)?;
            tracing::info!(parent = %t.name, key = %key, "recorded the trunkward node's key");
        }
    }
    // Whatever this node had reserved for changes in flight before it
    // stopped is unknown now: every open transaction crossing a ccnode link
    // is held until that link is reconciled (`NodeCommand::PresumeHolds`).
    let ccnode = app.read().ccnode_neighbours();
    if !ccnode.is_empty() {
        app.submit(NodeCommand::PresumeHolds { peers: ccnode }).await.map_err(init_error)?;
    }
    Ok(())
}

/// Saves a projections snapshot each time the publisher asks, until it is
/// gone. The snapshot is encoded under the read lock (the publisher waits
/// meanwhile, readers do not) and written to the snapshot file after it is released.
fn snapshot_loop(
    read: &RwLock<ReadModel>,
    store: &SnapshotStore,
    genesis: [u8; 32],
    asks: &std::sync::mpsc::Receiver<()>,
) {
    while asks.recv().is_ok() {
        let started = std::time::Instant::now();
        let (seq, blob) = {
            let read = read.read().expect("the read model lock is never poisoned");
            (read.projections.seq(), projections::store::encode_snapshot(&read.projections, genesis, read.head_hash))
        };
        let encoded = started.elapsed();
        match blob.and_then(|blob| store.save_blob(&blob)) {
            Ok(()) => {
                let read = read.read().expect("the read model lock is never poisoned");
                read.snapshots.saved_seq.store(seq, std::sync::atomic::Ordering::Relaxed);
                drop(read);
                tracing::info!(
                    seq,
                    encode_ms = encoded.as_millis(),
                    total_ms = started.elapsed().as_millis(),
                    "projections snapshot saved"
                );
            }
            Err(error) => tracing::warn!(%error, seq, "saving a projections snapshot failed; the next one may succeed"),
        }
    }
}

/// Folds the whole journal into fresh projections; a record they cannot
/// fold is an error naming its seq.
pub fn fold_all<S: journal::Store>(journal: &S) -> Result<Projections, StartError> {
    match fold_until_unfoldable(journal)? {
        (projections, None) => Ok(projections),
        (_, Some(unfoldable)) => Err(StartError::Replay(unfoldable.to_string())),
    }
}

/// Folds the journal into fresh projections up to the first record they
/// cannot fold (an event an older version journaled beyond today's bounds),
/// which is returned: the projections are then those of the records before it.
pub fn fold_until_unfoldable<S: journal::Store>(
    journal: &S,
) -> Result<(Projections, Option<projections::Unfoldable>), StartError> {
    let mut projections = Projections::new();
    let mut unfoldable = None;
    crate::runtime::replay_journal(journal, |record| {
        if unfoldable.is_some() {
            return Ok(());
        }
        let event = decode_event(&record.payload).map_err(|e| e.to_string())?;
        unfoldable = projections.try_apply(record.seq, record.recorded_at_us, &event).err();
        Ok::<(), String>(())
    })
    .map_err(|e| StartError::Replay(format!("{e}: {e:?}")))?;
    Ok((projections, unfoldable))
}

/// What a read-only node answers to every write.
fn read_only_reason(unfoldable: &projections::Unfoldable) -> String {
    format!(
        "the node is read-only: journal record {} cannot be folded ({}); no version of ccnode writes such a \
         record today (an older one accepted amounts beyond today's bounds). Reads show the ledger before it; \
         `ccnode verify` names it",
        unfoldable.seq, unfoldable.kind
    )
}

/// Opens the journal `location` names for data directory `data_dir`
/// read-only and folds it: for offline commands.
pub fn open_offline(
    location: &crate::store::StoreLocation,
    data_dir: &Path,
) -> Result<(crate::store::NodeStore, Projections), StartError> {
    let journal = crate::store::open_read_only(location, data_dir).map_err(|e| StartError::Store(Box::new(e)))?;
    let projections = fold_all(&journal)?;
    Ok((journal, projections))
}
