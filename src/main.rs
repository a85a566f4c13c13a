//! `ccnode`: the Credit Commons node binary. Thin: parses the command line,
//! sets up logging and calls into the library crates.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a profile of `ccnode serve` under 64
/// connections spent ~23 % of its CPU in glibc's allocator (most of it in
/// `malloc_consolidate` and `unlink_chunk`, freeing across threads); see
/// docs/BENCHMARKS.md for the figures before and after.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod import_cmd;
mod journal_cmd;
mod node_cmd;
mod private;
mod proof_cmd;
mod replay_cmd;
mod store_cmd;

/// A Credit Commons node: an event-sourced mutual-credit ledger with a
/// hash-chained, append-only journal.
#[derive(Debug, Parser)]
#[command(name = "ccnode", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CCNODE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node: the Credit Commons HTTP API on its embedded store.
    ///
    /// Settings come from defaults, then the --config file, then flags and
    /// environment variables. Stop with Ctrl-C or SIGTERM: requests in flight
    /// finish and the journal is closed cleanly (a crash loses nothing either).
    Serve(node_cmd::ServeArgs),
    /// Run a node pre-filled with a small community and 90 days of trade.
    ///
    /// Uses ./ccnode-demo (seeded on first run, reused after), node name
    /// `demo`, admin key `admin`; each member's key is its name.
    Demo {
        #[command(flatten)]
        args: node_cmd::ServeArgs,
        /// Seed of the generated trade.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Run five federated nodes in one process: trunk, branch1 and branch2 under
    /// it, twig1 and twig2 under branch1, with different conversion rates.
    ///
    /// Nodes listen on consecutive ports from --base-port (0: any free ports)
    /// and keep their data in DIR/<node>. Members: alice@twig1, bob@twig2,
    /// carol@branch2, dave@branch1 (keys = names); every admin key is `admin`.
    DemoTree {
        /// Parent of the five data directories.
        #[arg(long, value_name = "DIR", default_value = "./ccnode-demo-tree")]
        data: PathBuf,
        /// First of five consecutive ports.
        #[arg(long, value_name = "PORT", default_value_t = 8100)]
        base_port: u16,
    },
    /// Ask a running node to reconcile its federation link with a neighbour now.
    ///
    /// Prints the verdict (in_sync, we_are_behind with the versions copied,
    /// peer_behind, diverged with the evidence). Exit status: 0 in sync or
    /// repaired, 1 diverged (the link stays closed until an admin reopens it
    /// with POST /admin/nodes/{node}/reopen), 2 could not ask.
    Reconcile {
        /// The neighbour node's name.
        #[arg(long, value_name = "NODE")]
        peer: String,
        /// The running node's base URL.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080", env = "CCNODE_URL")]
        url: String,
        /// The node's admin key (`-`: one line of standard input).
        #[arg(long, value_name = "KEY", env = "CCNODE_ADMIN_KEY", hide_env_values = true)]
        admin_key: Option<String>,
        /// A file holding the admin key on its first line (chmod 600).
        #[arg(long, value_name = "FILE", env = "CCNODE_ADMIN_KEY_FILE")]
        admin_key_file: Option<PathBuf>,
    },
    /// Print an account's balance from the journal alone (the node may be running).
    Balance {
        /// The node's data directory.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "CCNODE_DATA")]
        data: PathBuf,
        /// The journal's store: `file` (DIR/journal) or `postgres://USER@HOST:PORT/DB`.
        #[arg(long, value_name = "STORE", default_value = "file", env = "CCNODE_STORE", hide_env_values = true)]
        store: String,
        /// Account id.
        account: String,
        /// A journal seq or an RFC 3339 instant (e.g. 2026-11-01T00:00:00Z); default now.
        #[arg(long, value_name = "SEQ|INSTANT")]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and check the journal, the ledger's source of truth.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Check a data directory: the journal chain, every event, zero-sum and
    /// limits after every event, and the stored projections snapshot.
    ///
    /// Exit status: 0 consistent, 1 damage or mismatch (seq and account are
    /// printed), 2 could not run.
    Verify(replay_cmd::VerifyArgs),
    /// Rebuild the ledger as of a past seq or instant and print balances,
    /// limits and pending transactions.
    Replay(replay_cmd::ReplayArgs),
    /// Write a self-contained, verifiable audit bundle of the journal.
    Export(replay_cmd::ExportArgs),
    /// Load a community's accounts and history into a new node, at their original times.
    ///
    /// The files are checked first, then replayed through the node's rules
    /// (limits included) into a new directory that becomes DIR only when every
    /// row is in. Prints each account's new key as CSV (`id,key`). Exit status:
    /// 0 imported, 1 refused (the file and line are named; nothing is written),
    /// 2 could not run.
    Import(import_cmd::ImportArgs),
    /// Verify an audit bundle offline and recompute every balance.
    ///
    /// Exit status: 0 sound, 1 damaged or inconsistent (the seq is printed), 2 unreadable.
    Audit(replay_cmd::AuditArgs),
    /// Copy a journal between stores, record for record, verifying every hash.
    ///
    /// FROM and TO are `file:DIR` (the segment files of data directory DIR)
    /// or `postgres://USER@HOST:PORT/DB`. The target must hold no records.
    /// Both journals are read back and compared after the copy. Exit status:
    /// 0 copied, 1 the source is damaged (the seq is printed), 2 could not run.
    MigrateStore {
        /// The store to copy from (read only).
        #[arg(long, value_name = "file:DIR|postgres://…")]
        from: String,
        /// The empty store to copy into.
        #[arg(long, value_name = "file:DIR|postgres://…")]
        to: String,
    },
    /// Verify signed checkpoints, proofs and statements offline (issue 11).
    #[command(subcommand)]
    Proof(ProofCommand),
}

#[derive(Debug, Subcommand)]
enum ProofCommand {
    /// Check checkpoints (and witnesses' cosignatures), inclusion, consistency
    /// and balance proofs and statements, with public keys only.
    ///
    /// Exit status: 0 every file verified, 1 one did not (each file's verdict
    /// is printed, with what failed), 2 could not run.
    Check(proof_cmd::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Verify the whole hash chain: framing, checksums, dense seqs, every
    /// record's blake3 hash and the recorded checkpoints.
    ///
    /// Exit status: 0 when the journal is sound, 1 when damage was found (the
    /// first bad seq is printed), 2 when the journal could not be read at all.
    Verify {
        /// The node's data directory (the journal lives in DIR/journal).
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "CCNODE_DATA")]
        data: PathBuf,
        /// Start from a trusted checkpoint `SEQ:HASH` instead of genesis.
        #[arg(long, value_name = "SEQ:HASH")]
        from: Option<String>,
        /// Stop after this seq.
        #[arg(long, value_name = "SEQ")]
        until: Option<u64>,
        /// Segments checked at once (0: one per core).
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
        /// Never draw a progress bar, even on a terminal.
        #[arg(long)]
        no_progress: bool,
        /// The journal's store: `file` (DIR/journal) or `postgres://USER@HOST:PORT/DB`,
        /// where every record is read back and rehashed.
        #[arg(long, value_name = "STORE", default_value = "file", env = "CCNODE_STORE", hide_env_values = true)]
        store: String,
    },
    /// Print the journal's size and head: records, segments, bytes, head hash.
    Stat {
        /// The node's data directory (the journal lives in DIR/journal).
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "CCNODE_DATA")]
        data: PathBuf,
        /// The journal's store: `file` (DIR/journal) or `postgres://USER@HOST:PORT/DB`.
        #[arg(long, value_name = "STORE", default_value = "file", env = "CCNODE_STORE", hide_env_values = true)]
        store: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Where `ccnode` keeps its data unless told otherwise.
const DEFAULT_DATA_DIR: &str = "./ccnode-data";

fn main() -> ExitCode {
    crash_only();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ccnode: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A panic is a bug: after it is reported the process aborts, on every
/// build profile and every thread, so a node never goes on serving with a
/// poisoned lock or a half-applied fold. A supervisor restarts it, and the
/// restart rebuilds everything from the journal, where every answered write
/// already is (docs/OPERATIONS.md, "When ccnode stops on a bug").
fn crash_only() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("ccnode: this is a bug; stopping now (the journal holds every answered write; restart the node)");
        std::process::abort();
    }));
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => node_cmd::serve(args),
        Command::Demo { args, seed } => node_cmd::demo(args, seed),
        Command::DemoTree { data, base_port } => node_cmd::demo_tree(data, base_port),
        Command::Reconcile { peer, url, admin_key, admin_key_file } => {
            let key = private::admin_key(admin_key.as_deref(), admin_key_file.as_deref())?
                .context("the admin key: --admin-key-file FILE, --admin-key - (standard input) or CCNODE_ADMIN_KEY")?;
            node_cmd::reconcile(&url, &key, &peer)
        }
        Command::Balance { data, store, account, at, json } => {
            node_cmd::balance(&data, &store, &account, at.as_deref(), json)
        }
        Command::Journal(JournalCommand::Verify { store, from, until, .. }) if store != "file" => {
            if from.is_some() || until.is_some() {
                anyhow::bail!("--from and --until apply to segment files; a PostgreSQL journal is verified whole");
            }
            store_cmd::verify(&store)
        }
        Command::Journal(JournalCommand::Verify { data, from, until, threads, no_progress, .. }) => {
            let from = from.as_deref().map(journal_cmd::parse_checkpoint).transpose().context("bad --from")?;
            let progress = !no_progress && std::io::stderr().is_terminal();
            let options = journal::VerifyOptions { from, until_seq: until, threads };
            journal_cmd::verify(&api::store::journal_dir(&data), options, progress)
        }
        Command::Journal(JournalCommand::Stat { store, json, .. }) if store != "file" => store_cmd::stat(&store, json),
        Command::Journal(JournalCommand::Stat { data, json, .. }) => {
            journal_cmd::stat(&api::store::journal_dir(&data), json)
        }
        Command::MigrateStore { from, to } => store_cmd::migrate(&from, &to),
        Command::Verify(args) => replay_cmd::verify(args),
        Command::Replay(args) => replay_cmd::replay(args),
        Command::Export(args) => replay_cmd::export(args),
        Command::Audit(args) => replay_cmd::audit(args),
        Command::Import(args) => import_cmd::import(args),
        Command::Proof(ProofCommand::Check(args)) => proof_cmd::check(args),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CCNODE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
