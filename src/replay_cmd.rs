//! `ccnode verify`, `ccnode replay`, `ccnode export` and `ccnode audit`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use journal::Store as _;
use ledger::State;
use replay::{AuditError, Progress, Until};
use serde_json::{json, Value};

/// Where `ccnode` keeps its data unless told otherwise (as in main.rs).
const DEFAULT_DATA_DIR: &str = "./ccnode-data";
/// Seconds between plain progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Flags of `ccnode verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The node's data directory (journal in DIR/journal, snapshot in DIR/projections).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "CCNODE_DATA")]
    pub data: PathBuf,
    /// The journal's store: `file` (DIR/journal) or `postgres://USER@HOST:PORT/DB` (the
    /// snapshot compared is still DIR/projections).
    #[arg(long, value_name = "STORE", default_value = "file", env = "CCNODE_STORE", hide_env_values = true)]
    pub store: String,
    /// Never draw a progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// Output format of `ccnode replay`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Aligned text.
    Text,
    /// One JSON document (amounts as strings).
    Json,
}

/// Flags of `ccnode replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The node's data directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "CCNODE_DATA")]
    pub data: PathBuf,
    /// The journal's store: `file` (DIR/journal) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, value_name = "STORE", default_value = "file", env = "CCNODE_STORE", hide_env_values = true)]
    pub store: String,
    /// A journal seq, or an RFC 3339 instant (e.g. 2026-11-01T00:00:00Z): the
    /// state after the last record at or before it.
    #[arg(long, value_name = "SEQ|INSTANT")]
    pub until: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Flags of `ccnode export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The node's data directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "CCNODE_DATA")]
    pub data: PathBuf,
    /// The journal's store: `file` (DIR/journal) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, value_name = "STORE", default_value = "file", env = "CCNODE_STORE", hide_env_values = true)]
    pub store: String,
    /// The bundle to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Export records 1..=SEQ only [default: the head].
    #[arg(long, value_name = "SEQ")]
    pub until: Option<u64>,
    /// Never draw a progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// Flags of `ccnode audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The bundle written by `ccnode export`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Never draw a progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `ccnode verify`: 0 sound, 1 damage or mismatch, 2 could not run (an `Err`).
pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut reporter = Reporter::new(!args.no_progress && std::io::stderr().is_terminal());
    let outcome = match api::store::StoreLocation::parse(&args.store).map_err(anyhow::Error::msg).context("--store")? {
        api::store::StoreLocation::File => replay::verify_data_dir(&args.data, &mut |p| reporter.update(p))?,
        api::store::StoreLocation::Postgres { url, .. } => match pgjournal::PgJournal::open_read_only(&url) {
            Err(pgjournal::OpenError::Corrupt { seq, kind }) => {
                println!("FAILED: journal damaged at seq {seq}: {kind} (PostgreSQL)");
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", pgjournal::redacted(&url))),
            Ok(journal) => replay::verify_store(&journal, &args.data, &mut |p| reporter.update(p))?,
        },
        api::store::StoreLocation::Memory(_) => anyhow::bail!("--store does not name a memory store"),
    };
    reporter.finish();
    for note in &outcome.notes {
        println!("note: {note}");
    }
    match &outcome.failure {
        None => {
            println!(
                "ok: {} records verified and replayed in {:.2?}; {} accounts, {} transactions; zero-sum and limits hold after every event",
                outcome.records,
                started.elapsed(),
                outcome.accounts,
                outcome.transactions
            );
            println!("head seq {} hash {}", outcome.head_seq, outcome.head_hash);
            println!("snapshot: {}", outcome.snapshot);
            Ok(ExitCode::SUCCESS)
        }
        Some(failure) => {
            println!("FAILED: {failure}");
            Ok(ExitCode::from(1))
        }
    }
}

fn parse_until(text: &str) -> anyhow::Result<Until> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Until::Seq(text.parse().context("seq out of range")?));
    }
    let us =
        api::wire::parse_rfc3339(text).with_context(|| format!("{text:?} is neither a seq nor an RFC 3339 instant"))?;
    Ok(Until::Time(us))
}

/// `ccnode replay`: the state as of a seq or an instant.
pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let until = parse_until(&args.until)?;
    let journal = crate::store_cmd::open_for_reading(&args.store, &args.data)?;
    let point = replay::state_at(&journal, until, &mut |_| {})?;
    let p = &point.projections;
    let at = if point.seq == 0 { "-".to_owned() } else { api::wire::format_rfc3339(point.recorded_at_us) };
    let accounts: Vec<Value> = p
        .accounts()
        .map(|a| {
            let b = p.balances(&a.id).unwrap_or_default();
            let mut v = api::wire::events::account_json(a);
            v["completed"] = json!(b.completed.to_string());
            v["pending"] = json!(b.pending.to_string());
            v
        })
        .collect();
    let open = replay::point::open_transactions(p);
    let mut out = String::new();
    match args.format {
        Format::Json => {
            let txs: Vec<Value> = open.iter().map(|tx| api::wire::events::transaction_json(tx)).collect();
            let value = json!({
                "seq": point.seq,
                "recorded_at": at,
                "hash": point.hash.to_hex(),
                "accounts": accounts,
                "transactions": txs,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        Format::Text => {
            writeln!(out, "state as of seq {} ({at}), hash {}", point.seq, point.hash)?;
            writeln!(
                out,
                "{:<24} {:>16} {:>16} {:>14} {:>14}  status",
                "account", "completed", "pending", "min", "max"
            )?;
            for a in p.accounts() {
                let b = p.balances(&a.id).unwrap_or_default();
                let status = if a.status == ledger::AccountStatus::Active { "active" } else { "blocked" };
                writeln!(
                    out,
                    "{:<24} {:>16} {:>16} {:>14} {:>14}  {status}",
                    a.id.as_str(),
                    b.completed.to_string(),
                    b.pending.to_string(),
                    a.limits.min().to_string(),
                    a.limits.max().to_string()
                )?;
            }
            writeln!(out, "{} pending or validated transactions", open.len())?;
            for tx in &open {
                let e = tx.primary();
                writeln!(
                    out,
                    "{} {:<9} v{} {} -> {} {} ({})",
                    tx.uuid,
                    tx.state.name(),
                    tx.version,
                    e.payer,
                    e.payee,
                    e.quant,
                    tx.workflow.id.as_str()
                )?;
            }
        }
    }
    emit(&out)
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<ExitCode> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `ccnode export`: write an audit bundle.
pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let journal = match crate::store_cmd::open_for_reading(&args.store, &args.data) {
        Err(e) => {
            match e.downcast_ref::<api::store::OpenStoreError>().and_then(api::store::OpenStoreError::corrupt_seq) {
                Some(seq) => return Ok(tampered(seq)),
                None => return Err(e),
            }
        }
        Ok(journal) => journal,
    };
    let started = Instant::now();
    let mut reporter = Reporter::new(!args.no_progress && std::io::stderr().is_terminal());
    let result = replay::export_to_file(&journal, args.until, &args.out, &mut |p| reporter.update(p));
    reporter.finish();
    match result {
        Ok(summary) => {
            println!(
                "exported {} records and {} checkpoints ({} bytes) to {} in {:.2?}",
                summary.records,
                summary.checkpoints,
                summary.bytes,
                args.out.display(),
                started.elapsed()
            );
            println!("identity {} head seq {} hash {}", journal.identity(), summary.records, summary.head_hash);
            Ok(ExitCode::SUCCESS)
        }
        Err(replay::bundle::ExportError::Tampered { seq }) => Ok(tampered(seq)),
        Err(replay::bundle::ExportError::Read(e)) => {
            match e.downcast_ref::<api::store::StoreReadError>().and_then(api::store::StoreReadError::corrupt_seq) {
                Some(seq) => Ok(tampered(seq)),
                None => Err(anyhow::anyhow!("reading the journal: {e}")),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn tampered(seq: u64) -> ExitCode {
    println!("FAILED: journal record {seq} does not match its hash; nothing exported (run `ccnode verify`)");
    ExitCode::from(1)
}

/// `ccnode audit`: verify a bundle offline.
pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut reporter = Reporter::new(!args.no_progress && std::io::stderr().is_terminal());
    let result = replay::audit_file(&args.file, &mut |p| reporter.update(p));
    reporter.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(e @ AuditError::Io { .. }) => bail!(e),
        Err(e) => {
            match e.seq() {
                Some(seq) => println!("AUDIT FAILED at seq {seq}: {e}"),
                None => println!("AUDIT FAILED: {e}"),
            }
            return Ok(ExitCode::from(1));
        }
    };
    let elapsed = started.elapsed();
    let count = |s: State| summary.transactions.iter().find(|(st, _)| *st == s).map_or(0, |(_, n)| *n);
    let at = |us: u64| if summary.records == 0 { "-".to_owned() } else { api::wire::format_rfc3339(us) };
    if args.json {
        let states: serde_json::Map<String, Value> =
            summary.transactions.iter().map(|(s, n)| (s.name().to_owned(), json!(n))).collect();
        let value = json!({
            "ok": true,
            "identity": summary.identity,
            "genesis": summary.genesis.to_hex(),
            "records": summary.records,
            "head": {"seq": summary.head_seq, "hash": summary.head_hash.to_hex()},
            "first_recorded_at": at(summary.first_at_us),
            "last_recorded_at": at(summary.last_at_us),
            "checkpoints": summary.checkpoints,
            "signed_checkpoints": summary.signed_checkpoints,
            "accounts": summary.accounts,
            "transactions": states,
            "bookings": summary.bookings,
            "bytes": summary.bytes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("ok: bundle of node {} audited in {elapsed:.2?}", summary.identity);
        println!("  records:      {} ({} to {})", summary.records, at(summary.first_at_us), at(summary.last_at_us));
        println!("  genesis:      {}", summary.genesis);
        println!("  head:         seq {} hash {}", summary.head_seq, summary.head_hash);
        println!("  checkpoints:  {} verified", summary.checkpoints);
        println!(
            "  signed checkpoints: {} (root = Merkle root of the records before, signed by the node's key)",
            summary.signed_checkpoints
        );
        println!("  accounts:     {}", summary.accounts);
        println!(
            "  transactions: {} completed, {} pending, {} validated, {} erased, {} timed out",
            count(State::Completed),
            count(State::Pending),
            count(State::Validated),
            count(State::Erased),
            count(State::TimedOut)
        );
        println!(
            "  balances:     recomputed at {} bookings; zero-sum and limits held after every event",
            summary.bookings
        );
        println!("compare the head hash with one obtained from the node to tie this history to it");
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal, occasional plain lines otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    phase: &'static str,
    last_line: Instant,
}

impl Reporter {
    fn new(bar: bool) -> Reporter {
        let bar = bar.then(|| indicatif::ProgressBar::new(0));
        Reporter { bar, phase: "", last_line: Instant::now() }
    }

    fn update(&mut self, p: Progress) {
        match &self.bar {
            Some(bar) => {
                if p.phase != self.phase {
                    self.phase = p.phase;
                    let template = if p.bytes {
                        "{spinner} {prefix} [{bar:40}] {bytes}/{total_bytes} ({eta})"
                    } else {
                        "{spinner} {prefix} [{bar:40}] {pos}/{len} records ({eta})"
                    };
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(template)
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(p.phase);
                }
                bar.set_length(p.total);
                bar.set_position(p.done);
            }
            None if self.last_line.elapsed() >= PLAIN_PROGRESS_INTERVAL => {
                self.last_line = Instant::now();
                let unit = if p.bytes { "bytes" } else { "records" };
                eprintln!("{}: {}/{} {unit}", p.phase, p.done, p.total);
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
