//! `ccnode serve`, `ccnode demo` and `ccnode balance`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use api::app::AppState;
use api::config::{ConfigFile, NodeConfig};
use api::machine::NodeCommand;
use api::metrics::Metrics;
use api::node::{Node, StartOptions};
use journal::Store as _;
use ledger::{AccountId, AccountKind, Amount, Command, Limits, Proposal, State, TxId, WorkflowId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Flags of `serve` (and `demo`), each overriding the config file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Data directory: the journal and derived data [default: ./ccnode-data].
    #[arg(long, value_name = "DIR", env = "CCNODE_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", env = "CCNODE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// This node's name, fixed at first start [default: ccnode].
    #[arg(long, value_name = "NODE", env = "CCNODE_NAME")]
    pub name: Option<String>,
    /// Key of the `admin` account: created at first start, replaced if it changed.
    /// `-` reads it from standard input (one line), which keeps it out of `ps`;
    /// so does --admin-key-file.
    #[arg(long, value_name = "KEY", env = "CCNODE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// A file holding the admin key on its first line (the line end is not part
    /// of it). Refused when group or others may read it: chmod 600.
    #[arg(long, value_name = "FILE", env = "CCNODE_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Seconds a client has to send a request's headers; also the longest a
    /// kept-alive connection may sit idle [default: 10].
    #[arg(long, value_name = "SECONDS", env = "CCNODE_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a client has to send a request's body once its headers are in
    /// (408 after) [default: 30]. Responses, such as live feeds, are not limited.
    #[arg(long, value_name = "SECONDS", env = "CCNODE_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Most connections open at once; further ones wait to be accepted [default: 1024].
    #[arg(long, value_name = "N", env = "CCNODE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// An origin (`https://wallet.example`, scheme://host[:port]) whose pages may call
    /// the node from a browser; repeat for several. Answers name the caller's origin when
    /// it is listed and carry no CORS allowance otherwise [default: any origin, `*`].
    #[arg(long = "cors-origin", value_name = "ORIGIN", env = "CCNODE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Where the journal lives: `file` (segment files in DIR/journal) or a PostgreSQL
    /// database, `postgres://USER@HOST:PORT/DB` (ccnode creates and migrates its tables;
    /// a password in the URL is best given through CCNODE_STORE or the config file, not argv) [default: file].
    #[arg(long, value_name = "STORE", env = "CCNODE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// With a PostgreSQL store: when another node holds the journal's writer lock, stand
    /// by instead of refusing to start: follow the journal (reads are answered, writes
    /// refused with 503) and take over when that node's lock is released.
    #[arg(long, env = "CCNODE_STANDBY")]
    pub standby: bool,
    /// A TOML file with any of: data, listen, name, admin_key, validated_window_seconds,
    /// zero_payments, validate_pending, default_min, default_max, header_timeout_seconds,
    /// body_timeout_seconds, max_connections, cors_origins, store, standby.
    #[arg(long, value_name = "FILE", env = "CCNODE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The workflows new transactions may use: a JSON file in the reference's
    /// `workflows.json` format (an array of {id, label, direction, creation, states,
    /// disabled}). A workflow marked `"disabled": true` is refused for new transactions
    /// (DeprecatedWorkflowViolation). A changed set is journaled; old transactions keep
    /// the workflow they were written under. [default: the journal's; on a new node the
    /// shipped set: bill, credit, disabled, 3rdparty, pay, payment]
    #[arg(long, value_name = "FILE", env = "CCNODE_WORKFLOWS")]
    pub workflows: Option<PathBuf>,
    /// Seconds a neighbour node has to answer a relayed request.
    #[arg(long, value_name = "SECONDS", default_value_t = api::peers::PEER_TIMEOUT_DEFAULT.as_secs(), env = "CCNODE_PEER_TIMEOUT")]
    pub peer_timeout: u64,
    /// Seconds between automatic reconciliations of every federation link (also at start
    /// and whenever a neighbour reports a hash mismatch).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = api::federation::reconcile::RECONCILE_INTERVAL_DEFAULT.as_secs(),
        env = "CCNODE_RECONCILE_INTERVAL"
    )]
    pub reconcile_interval: u64,
    /// The origin line of this node's checkpoints and its key's name (default: the node's name; a branch
    /// should give its absolute path, e.g. `trunk/branch1`).
    #[arg(long, value_name = "ORIGIN", env = "CCNODE_ORIGIN")]
    pub origin: Option<String>,
    /// Seconds between signed checkpoints when records were written (0: none on a schedule).
    #[arg(long, value_name = "SECONDS", default_value_t = api::node::CHECKPOINT_INTERVAL_DEFAULT.as_secs(), env = "CCNODE_CHECKPOINT_INTERVAL")]
    pub checkpoint_interval: u64,
    /// Also sign a checkpoint whenever this many records were written since the last one (0: never for that).
    #[arg(long, value_name = "RECORDS", default_value_t = api::node::CHECKPOINT_RECORDS_DEFAULT, env = "CCNODE_CHECKPOINT_RECORDS")]
    pub checkpoint_records: u64,
    /// Save a projections snapshot (derived data) whenever this many records were written since the
    /// last one, so that a start after a crash folds at most that many (0: only at a clean stop).
    #[arg(long, value_name = "RECORDS", default_value_t = api::node::SNAPSHOT_EVERY_DEFAULT, env = "CCNODE_SNAPSHOT_EVERY")]
    pub snapshot_every: u64,
    /// Connect to a parent node at first start: its name (same as `PUT /admin/trunkward`).
    #[arg(long, value_name = "NODE", requires = "trunkward_url")]
    pub trunkward_name: Option<String>,
    /// The parent's base URL.
    #[arg(long, value_name = "URL", requires = "trunkward_name")]
    pub trunkward_url: Option<String>,
    /// Conversion rate with the parent: trunkward amount = local amount × rate.
    #[arg(long, value_name = "RATE", default_value = "1")]
    pub trunkward_rate: String,
    /// Lower limit of the balance-of-trade account.
    #[arg(long, value_name = "AMOUNT", default_value = "-1000", allow_hyphen_values = true)]
    pub trunkward_min: String,
    /// Upper limit of the balance-of-trade account.
    #[arg(long, value_name = "AMOUNT", default_value = "1000")]
    pub trunkward_max: String,
    /// The link's agreed initial ratchet hash [default: the empty string on a
    /// `reference` link, as a reference node starts one; the parent's name otherwise].
    #[arg(long, value_name = "HASH")]
    pub trunkward_last_hash: Option<String>,
    /// How the parent speaks: `reference` (the PHP reference node 0.8.5's
    /// wire), `ccnode` (another ccnode) or `komunitin` (docs/PROTOCOL.md, "Dialects")
    /// [default: `ccnode` with --trunkward-public-key, else `reference`].
    #[arg(long, value_name = "DIALECT", value_parser = ["reference", "ccnode", "komunitin"])]
    pub trunkward_dialect: Option<String>,
    /// The parent's verifier key, as its `GET /node/key` answers it (`name+hash+base64`):
    /// the link is keyed, so every request on it is signed (RFC 9421) and a request from
    /// the parent without a valid signature by this key is refused; this node also
    /// witnesses the parent's checkpoints. Same as `public_key` in `PUT /admin/trunkward`.
    #[arg(long, value_name = "VKEY", env = "CCNODE_TRUNKWARD_PUBLIC_KEY")]
    pub trunkward_public_key: Option<String>,
    /// Seconds a neighbour's request signature's `created` may be from this node's clock;
    /// older or newer signed requests are refused, and each nonce is accepted once in it.
    #[arg(long, value_name = "SECONDS", default_value_t = api::httpsig::WINDOW_SECS_DEFAULT, env = "CCNODE_PEER_SIGNATURE_WINDOW")]
    pub peer_signature_window: u64,
    /// A PEM file of CA certificates trusted for `https://` neighbour URLs, besides the
    /// system's CA bundle (e.g. a private CA's certificate).
    #[arg(long, value_name = "PATH", env = "CCNODE_PEER_CA_FILE")]
    pub peer_ca_file: Option<PathBuf>,
}

impl ServeArgs {
    fn trunkward(&self) -> anyhow::Result<Option<api::node::TrunkwardOptions>> {
        let (Some(name), Some(url)) = (&self.trunkward_name, &self.trunkward_url) else { return Ok(None) };
        let rate: Amount = self.trunkward_rate.parse().context("--trunkward-rate")?;
        let rate = ledger::Rate::new(rate.as_decimal()).context("--trunkward-rate must be positive")?;
        let min: Amount = self.trunkward_min.parse().context("--trunkward-min")?;
        let max: Amount = self.trunkward_max.parse().context("--trunkward-max")?;
        let limits = Limits::new(min, max).context("trunkward limits must satisfy min <= 0 <= max")?;
        let public_key = match &self.trunkward_public_key {
            None => None,
            Some(text) => {
                Some(tlog::VerifierKey::parse(text.trim()).ok().filter(|k| k.kind == tlog::KeyType::Ed25519).context(
                    "--trunkward-public-key must be an Ed25519 verifier key as the parent's GET /node/key answers it",
                )?)
            }
        };
        let dialect = match (&self.trunkward_dialect, &public_key) {
            (Some(name), _) => ledger::Dialect::parse(name).context("--trunkward-dialect")?,
            (None, Some(_)) => ledger::Dialect::Ccnode,
            (None, None) => ledger::Dialect::Reference,
        };
        let last_hash = match (&self.trunkward_last_hash, dialect) {
            (Some(hash), _) => hash.clone(),
            (None, ledger::Dialect::Reference) => String::new(),
            (None, _) => name.clone(),
        };
        Ok(Some(api::node::TrunkwardOptions {
            name: name.clone(),
            url: url.clone(),
            rate,
            limits,
            last_hash,
            dialect,
            public_key,
        }))
    }
}

impl ServeArgs {
    fn resolve(&self, defaults: NodeConfig) -> anyhow::Result<NodeConfig> {
        let mut config = defaults;
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let file: ConfigFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            if file.admin_key.is_some() {
                crate::private::warn_if_shared(path, "the config file holds the admin key");
            }
            file.apply(&mut config);
        }
        if let Some(v) = &self.data {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = &self.name {
            config.name = v.clone();
        }
        if let Some(key) = crate::private::admin_key(self.admin_key.as_deref(), self.admin_key_file.as_deref())? {
            config.admin_key = Some(key);
        }
        if let Some(v) = self.header_timeout {
            config.header_timeout_seconds = v;
        }
        if let Some(v) = self.body_timeout {
            config.body_timeout_seconds = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if !self.cors_origins.is_empty() {
            config.cors_origins = self.cors_origins.clone();
        }
        if let Some(v) = &self.store {
            config.store = v.clone();
        }
        if self.standby {
            config.standby = true;
        }
        let location =
            api::store::StoreLocation::parse(&config.store).map_err(anyhow::Error::msg).context("--store")?;
        if config.standby && location == api::store::StoreLocation::File {
            bail!("--standby needs a PostgreSQL store (--store postgres://…): segment files have one writer on one machine");
        }
        api::http::CorsOrigins::parse(&config.cors_origins).context("--cors-origin")?;
        if config.header_timeout_seconds == 0 || config.body_timeout_seconds == 0 {
            bail!("the header and body timeouts are at least 1 second");
        }
        if config.max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        Ok(config)
    }
}

fn start_options(config: &NodeConfig, args: &ServeArgs, clock: fn() -> u64) -> anyhow::Result<StartOptions> {
    let min: Amount = config.default_min.parse().context("default_min")?;
    let max: Amount = config.default_max.parse().context("default_max")?;
    Limits::new(min, max).context("default limits must satisfy min <= 0 <= max")?;
    Ok(StartOptions {
        admin_key: config.admin_key.clone(),
        validated_window_seconds: config.validated_window_seconds,
        zero_payments: config.zero_payments,
        validate_pending: config.validate_pending,
        default_limits: (min, max),
        peer_timeout: std::time::Duration::from_secs(args.peer_timeout.max(1)),
        reconcile_interval: std::time::Duration::from_secs(args.reconcile_interval.max(1)),
        trunkward: args.trunkward()?,
        origin: args.origin.clone(),
        checkpoint_interval: std::time::Duration::from_secs(args.checkpoint_interval),
        checkpoint_records: args.checkpoint_records,
        peer_signature_window_secs: args.peer_signature_window,
        snapshot_every: args.snapshot_every,
        workflows: match &args.workflows {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the workflows file {}", path.display()))?;
                let workflows = api::wire::workflow::workflows_from_json(&text)
                    .with_context(|| format!("the workflows file {}", path.display()))?;
                Some(workflows)
            }
        },
        clock,
        peer_client: match &args.peer_ca_file {
            None => None,
            Some(path) => {
                let timeout = std::time::Duration::from_secs(args.peer_timeout.max(1));
                let client =
                    api::peer_client::HttpPeerClient::with_ca(timeout, Some(path)).context("--peer-ca-file")?;
                Some(std::sync::Arc::new(client) as std::sync::Arc<dyn api::peer_client::PeerClient>)
            }
        },
        store: match api::store::StoreLocation::parse(&config.store).map_err(anyhow::Error::msg).context("--store")? {
            api::store::StoreLocation::Postgres { url, .. } => {
                api::store::StoreLocation::Postgres { url, standby: config.standby }
            }
            file => file,
        },
        ..StartOptions::new(config.data_dir.clone(), config.name.clone())
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Resolves at SIGINT or SIGTERM. The handlers are installed when this is
/// called (not when first polled), so a signal that arrives as soon as the
/// "listening" line is out still shuts down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = signals;
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            let terminate = async {
                match terminate.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupt => {},
                () = terminate => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight and closing the journal");
    }
}

async fn run_node(node: Node, metrics: Arc<Metrics>, config: &NodeConfig, hint: Option<&str>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal();
    let store = api::store::StoreLocation::parse(&config.store).map_or_else(|_| config.store.clone(), |s| s.describe());
    tracing::info!(%addr, data = %config.data_dir.display(), %store, name = %config.name, "ccnode is serving");
    // Scripts and tests read this line to find the port.
    println!("ccnode {} listening on http://{addr}", config.name);
    std::io::stdout().flush()?;
    if let Some(hint) = hint {
        eprintln!("{}", hint.replace("{addr}", &addr.to_string()));
    }
    let limits = api::server::ConnectionLimits::from_config(config);
    let cors = api::http::CorsOrigins::parse(&config.cors_origins).context("--cors-origin")?;
    api::server::serve_with_cors(node, metrics, listener, limits, cors, shutdown).await.context("serving")
}

/// `ccnode serve`.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.resolve(NodeConfig::default())?;
    let options = start_options(&config, &args, journal::now_us)?;
    crate::private::prepare_data_dir(&config.data_dir)?;
    runtime()?.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let small_pages = SmallPages::while_starting();
        let node = Node::start(options, Arc::clone(&metrics)).await?;
        drop(small_pages);
        if node.state().read().projections.account(&AccountId::new("admin").expect("valid")).is_none() {
            tracing::warn!(
                "no admin account: start once with --admin-key-file FILE (or --admin-key -, reading standard input) to create one"
            );
        }
        run_node(node, metrics, &config, None).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Transparent huge pages off while the node starts, back on after: the
/// start copies the snapshot's tables into fresh memory, and with huge pages
/// (mimalloc asks for them) most of its CPU was the kernel zeroing 2 MiB
/// pages at their first touch (docs/BENCHMARKS.md). A process setting
/// (`PR_SET_THP_DISABLE`), so it covers every thread; left alone when huge
/// pages were already off (`MIMALLOC_ALLOW_THP=0` sets it for the whole
/// run) or `CCNODE_START_THP=1` asks to keep them.
#[derive(Debug)]
struct SmallPages {
    restore: bool,
}

impl SmallPages {
    fn while_starting() -> Self {
        #[cfg(target_os = "linux")]
        {
            let keep = std::env::var_os("CCNODE_START_THP").is_some_and(|v| v == "1");
            let already_off = rustix::thread::transparent_huge_pages_are_disabled().unwrap_or(true);
            if !keep && !already_off {
                match rustix::thread::disable_transparent_huge_pages(true) {
                    Ok(()) => return Self { restore: true },
                    Err(error) => tracing::debug!(%error, "transparent huge pages stay on during the start"),
                }
            }
        }
        Self { restore: false }
    }
}

impl Drop for SmallPages {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.restore {
            if let Err(error) = rustix::thread::disable_transparent_huge_pages(false) {
                tracing::warn!(%error, "could not switch transparent huge pages back on after the start");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// demo

static DEMO_NOW_US: AtomicU64 = AtomicU64::new(0);

/// The demo's clock: backdated while seeding, then real time.
fn demo_clock() -> u64 {
    match DEMO_NOW_US.load(Ordering::Relaxed) {
        0 => journal::now_us(),
        t => t,
    }
}

const DEMO_MEMBERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
const DEMO_WHAT: &[&str] = &[
    "bread",
    "bike repair",
    "childcare",
    "garden help",
    "eggs",
    "lift to town",
    "tax form help",
    "soup",
    "haircut",
    "piano lesson",
    "firewood",
    "sewing",
];

/// `ccnode demo`: a node with a small community and a few months of trade.
pub fn demo(args: ServeArgs, seed: u64) -> anyhow::Result<ExitCode> {
    let mut defaults =
        NodeConfig { name: "demo".to_owned(), admin_key: Some("admin".to_owned()), ..NodeConfig::default() };
    defaults.data_dir = PathBuf::from("./ccnode-demo");
    let config = args.resolve(defaults)?;
    let fresh = match api::store::StoreLocation::parse(&config.store).map_err(anyhow::Error::msg)? {
        api::store::StoreLocation::File => !config.data_dir.join("journal").exists(),
        api::store::StoreLocation::Postgres { url, .. } => pgjournal::PgJournal::is_empty_at(&url)?,
        api::store::StoreLocation::Memory(_) => anyhow::bail!("--store does not name a memory store"),
    };
    let options = start_options(&config, &args, demo_clock)?;
    crate::private::prepare_data_dir(&config.data_dir)?;
    runtime()?.block_on(async {
        let metrics = Arc::new(Metrics::new());
        if fresh {
            // Start the ledger 90 days ago so the history has a past.
            DEMO_NOW_US.store(journal::now_us() - 90 * 86_400 * 1_000_000, Ordering::Relaxed);
        }
        let node = Node::start(options, Arc::clone(&metrics)).await?;
        if fresh {
            let made = seed_community(&node.state(), seed).await?;
            eprintln!("demo: seeded {made} transactions among {} members", DEMO_MEMBERS.len());
        } else {
            eprintln!("demo: reusing {}", config.data_dir.display());
        }
        DEMO_NOW_US.store(0, Ordering::Relaxed);
        eprintln!(
            "demo: members {} have keys equal to their names; the admin key is {:?}",
            DEMO_MEMBERS.join(", "),
            config.admin_key.as_deref().unwrap_or("")
        );
        let hint = "demo: open http://{addr}/ in a browser (sign in as alice with key alice, or as admin), \
                    or try  curl -H 'cc-user: alice' -H 'cc-auth: alice' http://{addr}/account/summary";
        run_node(node, metrics, &config, Some(hint)).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn seed_community(state: &AppState, seed: u64) -> anyhow::Result<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let id = |name: &str| AccountId::new(name).expect("demo names are valid");
    for name in DEMO_MEMBERS {
        let limits = Limits::new(Amount::from_units(-200), Amount::from_units(300)).expect("valid");
        let key_hash = api::auth::new_key_hash(name);
        let command =
            NodeCommand::OpenAccount { id: id(name), kind: AccountKind::User { admin: false }, limits, key_hash };
        state.submit(command).await.map_err(|e| anyhow::anyhow!(api::app::describe_write_error(&e)))?;
    }
    let start = DEMO_NOW_US.load(Ordering::Relaxed);
    let count = 300usize;
    let step = (90 * 86_400 * 1_000_000 - 3_600 * 1_000_000) / u64::try_from(count).expect("small");
    let mut made = 0;
    for i in 0..count {
        DEMO_NOW_US.store(start + step * u64::try_from(i + 1).expect("small"), Ordering::Relaxed);
        let a = DEMO_MEMBERS[rng.gen_range(0..DEMO_MEMBERS.len())];
        let mut b = DEMO_MEMBERS[rng.gen_range(0..DEMO_MEMBERS.len())];
        while b == a {
            b = DEMO_MEMBERS[rng.gen_range(0..DEMO_MEMBERS.len())];
        }
        let quant = Amount::from_units(rng.gen_range(1..=40));
        let what = DEMO_WHAT[rng.gen_range(0..DEMO_WHAT.len())];
        let (workflow, author) = match i % 10 {
            0..=6 => ("pay", a),
            7 | 8 => ("bill", b),
            _ => ("credit", a),
        };
        let uuid = TxId(uuid::Uuid::new_v4());
        let proposal = Proposal {
            author: id(author),
            payer: a.to_owned(),
            payee: b.to_owned(),
            quant,
            description: what.to_owned(),
            metadata: Default::default(),
            workflow: WorkflowId::new(workflow).expect("valid"),
            uuid: Some(uuid),
        };
        if state.submit(NodeCommand::Ledger(Command::ProposeTransaction(proposal))).await.is_err() {
            continue; // out of limits: communities have those days too
        }
        made += 1;
        let last_days = i + 15 >= count;
        // The author confirms a credit or bill; the other party signs it, except
        // in the last days (left pending for the visitor to see).
        let steps: &[(&str, State)] = match workflow {
            "credit" if last_days => &[(a, State::Pending)],
            "credit" => &[(a, State::Pending), (b, State::Completed)],
            "bill" if last_days => &[(b, State::Pending)],
            "bill" => &[(b, State::Pending), (a, State::Completed)],
            _ => &[],
        };
        for &(actor, to) in steps {
            if state.submit(NodeCommand::Ledger(Command::Transition { uuid, to, actor: id(actor) })).await.is_err() {
                break;
            }
        }
    }
    Ok(made)
}

// ---------------------------------------------------------------------------
// balance

/// `ccnode balance`: an account's balance now or at a seq/instant, from the journal alone.
pub fn balance(data: &Path, store: &str, account: &str, at: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let id = AccountId::new(account).map_err(|e| anyhow::anyhow!("{account:?} is not an account id: {e}"))?;
    let location = api::store::StoreLocation::parse(store).map_err(anyhow::Error::msg).context("--store")?;
    let (journal, projections) = api::node::open_offline(&location, data)?;
    let Some(current) = projections.balances(&id) else {
        bail!("no account {account:?} in {}", data.display());
    };
    let (balance, when) = match at {
        None => (current.completed, format!("now (seq {})", journal.head().seq)),
        Some(at) if at.bytes().all(|b| b.is_ascii_digit()) => {
            let seq: u64 = at.parse().context("seq out of range")?;
            if seq > journal.head().seq {
                bail!("seq {seq} is beyond the journal head {}", journal.head().seq);
            }
            (projections.balance_at_seq(&id, seq).unwrap_or(Amount::ZERO), format!("seq {seq}"))
        }
        Some(at) => {
            let us = api::wire::parse_rfc3339(at)
                .with_context(|| format!("{at:?} is neither a seq nor an RFC 3339 instant"))?;
            (projections.balance_at_time(&id, us).unwrap_or(Amount::ZERO), api::wire::format_rfc3339(us))
        }
    };
    if json {
        println!("{}", serde_json::json!({"account": account, "balance": balance.to_string(), "at": when}));
    } else {
        println!("{account} {balance} at {when}");
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// demo-tree

/// The demo tree: (node, parent, conversion rate with the parent).
const TREE: &[(&str, Option<&str>, &str)] = &[
    ("trunk", None, "1"),
    ("branch1", Some("trunk"), "2"),
    ("branch2", Some("trunk"), "0.5"),
    ("twig1", Some("branch1"), "1"),
    ("twig2", Some("branch1"), "3"),
];

/// Members of the demo tree and their nodes; each key is the member's name.
const TREE_MEMBERS: &[(&str, &str)] =
    &[("alice", "twig1"), ("bob", "twig2"), ("carol", "branch2"), ("dave", "branch1")];

/// `ccnode demo-tree`: five federated nodes in one process, on consecutive ports.
pub fn demo_tree(data: PathBuf, base_port: u16) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let mut listeners = Vec::new();
        for (i, (name, _, _)) in TREE.iter().enumerate() {
            let port = if base_port == 0 { 0 } else { base_port + u16::try_from(i).expect("five nodes") };
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| format!("binding a port for {name}"))?;
            listeners.push(listener);
        }
        let urls: Vec<String> =
            listeners.iter().map(|l| l.local_addr().map(|a| format!("http://{a}"))).collect::<Result<_, _>>()?;
        let url_of = |node: &str| -> String {
            let i = TREE.iter().position(|(n, _, _)| *n == node).expect("a node of the tree");
            urls[i].clone()
        };
        let wide = Limits::new(Amount::from_units(-1000), Amount::from_units(1000)).expect("valid");
        let mut nodes = Vec::new();
        for (name, parent, rate) in TREE {
            let trunkward = parent.map(|p| api::node::TrunkwardOptions {
                name: p.to_owned(),
                url: url_of(p),
                rate: ledger::Rate::new(rate.parse::<Amount>().expect("demo rate").as_decimal()).expect("positive"),
                limits: wide,
                last_hash: format!("{p}-{name}"),
                dialect: ledger::Dialect::Ccnode,
                public_key: None,
            });
            crate::private::prepare_data_dir(&data.join(name))?;
            let options = StartOptions {
                admin_key: Some("admin".to_owned()),
                reconcile_interval: std::time::Duration::from_secs(10),
                trunkward,
                checkpoint_interval: std::time::Duration::from_secs(60),
                ..StartOptions::new(data.join(name), *name)
            };
            let metrics = Arc::new(Metrics::new());
            let node = Node::start(options, Arc::clone(&metrics)).await?;
            nodes.push((*name, node, metrics));
        }
        // Parents open their children's accounts; members get accounts (first run only).
        for (name, node, _) in &nodes {
            let state = node.state();
            for (child, parent, _) in TREE.iter().filter(|(_, p, _)| p == &Some(*name)) {
                let id = AccountId::new(child).expect("valid");
                if state.read().projections.account(&id).is_none() {
                    let commands = api::federation::connect_commands(
                        id,
                        AccountKind::Leafward,
                        wide,
                        url_of(child),
                        ledger::Rate::ONE,
                        format!("{}-{child}", parent.expect("a child has a parent")),
                    );
                    state.submit(NodeCommand::Many(commands)).await.map_err(|e| anyhow::anyhow!(api::app::describe_write_error(&e)))?;
                }
            }
            for (member, _) in TREE_MEMBERS.iter().filter(|(_, n)| n == name) {
                let id = AccountId::new(member).expect("valid");
                if state.read().projections.account(&id).is_none() {
                    let limits = Limits::new(Amount::from_units(-500), Amount::from_units(500)).expect("valid");
                    let command = NodeCommand::OpenAccount {
                        id,
                        kind: AccountKind::User { admin: false },
                        limits,
                        key_hash: api::auth::new_key_hash(member),
                    };
                    state.submit(command).await.map_err(|e| anyhow::anyhow!(api::app::describe_write_error(&e)))?;
                }
            }
        }
        let shutdown = shutdown_signal();
        for ((name, parent, rate), url) in TREE.iter().zip(&urls) {
            let under = parent.map_or(String::new(), |p| format!(" (under {p}, rate {rate})"));
            println!("{name:8} {url}{under}");
        }
        std::io::stdout().flush()?;
        eprintln!("demo-tree: members alice@twig1, bob@twig2, carol@branch2, dave@branch1; keys are their names, admin key `admin`");
        eprintln!(
            "demo-tree: try  curl -H 'cc-user: alice' -H 'cc-auth: alice' -H 'content-type: application/json' {}/transaction \\\n  -d '{{\"payer\":\"alice\",\"payee\":\"branch2/carol\",\"quant\":10,\"description\":\"hello\",\"type\":\"pay\"}}'",
            url_of("twig1")
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for ((_, node, metrics), listener) in nodes.into_iter().zip(listeners) {
            let mut stop = stop_rx.clone();
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            let limits = api::server::ConnectionLimits::default();
            tasks.push(tokio::spawn(api::server::serve(node, metrics, listener, limits, shutdown)));
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        for task in tasks {
            task.await.context("a node task")?.context("serving")?;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// reconcile

/// `ccnode reconcile`: asks a running node to reconcile its link with a neighbour.
pub fn reconcile(url: &str, admin_key: &str, peer: &str) -> anyhow::Result<ExitCode> {
    let url = url.trim_end_matches('/');
    let body = runtime()?.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{url}/replay/reconcile/{peer}"))
            .header("cc-user", "admin")
            .header("cc-auth", admin_key)
            .send()
            .await
            .with_context(|| format!("reaching the node at {url}"))?;
        let status = response.status();
        let value: serde_json::Value = response.json().await.context("reading the answer")?;
        if !status.is_success() {
            bail!("the node refused ({status}): {value}");
        }
        Ok::<serde_json::Value, anyhow::Error>(value)
    })?;
    let report = &body["data"];
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(if report["verdict"] == "diverged" { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    /// `ccnode serve` without flags starts the node with `StartOptions::new`'s
    /// settings, so the CLI's defaults and the library's cannot drift apart.
    #[test]
    fn serve_without_flags_starts_with_the_library_defaults() {
        let serve = Serve::try_parse_from(["ccnode"]).expect("no flag is required");
        let config = serve.args.resolve(NodeConfig::default()).expect("the defaults are valid");
        let options = start_options(&config, &serve.args, journal::now_us).expect("the defaults are valid");
        let defaults = StartOptions::new(api::config::DEFAULT_DATA_DIR, api::config::DEFAULT_NAME);
        assert_eq!(format!("{options:?}"), format!("{defaults:?}"));
    }
}
