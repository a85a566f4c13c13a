//! `ccnode import`: a community's history onto a new node (see `api::import`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Formats `ccnode import` reads.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ImportFormat {
    /// ccnode's own CSV exports: the accounts file and the transactions file.
    Ccnode,
    /// Komunitin's community migration bundle: its members.csv and transfers.csv.
    Komunitin,
    /// The Community Exchange System's export (as IntegralCES reads it): its
    /// users.csv and transactions.csv, and balances.csv to check against.
    Ces,
}

/// `ccnode import` arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The new node's data directory: absent or empty.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The files' format.
    #[arg(long, value_enum)]
    format: ImportFormat,
    /// The new node's name.
    #[arg(long, value_name = "NODE", default_value = "ccnode")]
    name: String,
    /// For `ces`: the offset from UTC of the export's times, which carry no zone
    /// (`+02:00`, `-05:30`; default UTC).
    #[arg(long, value_name = "±HH:MM", allow_hyphen_values = true, value_parser = api::import::parse_utc_offset)]
    utc_offset: Option<i32>,
    /// The files, in any order: for `ccnode` the accounts and transactions exports, for
    /// `komunitin` the bundle's members.csv and transfers.csv, for `ces` the export's
    /// users.csv, transactions.csv and (optional, checked) balances.csv.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// Exit status: 0 imported, 1 refused (a bad row, named; nothing written), 2 could not run.
pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let format = match (args.format, args.utc_offset) {
        (ImportFormat::Ccnode, None) => api::import::Format::Ccnode,
        (ImportFormat::Komunitin, None) => api::import::Format::Komunitin,
        (ImportFormat::Ces, offset) => api::import::Format::Ces { utc_offset_seconds: offset.unwrap_or(0) },
        (_, Some(_)) => anyhow::bail!("--utc-offset is for --format ces (the other formats' times carry their zone)"),
    };
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        files.push((path.display().to_string(), text));
    }
    let plan = match api::import::plan(format, &files, journal::now_us()) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("ccnode import: refused, nothing written: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match runtime.block_on(api::import::run(&plan, &args.data, &args.name)) {
        Ok(report) => {
            eprintln!(
                "ccnode import: node {} in {}: {} accounts, {} payments; {} rows of transactions not completed left out",
                args.name,
                args.data.display(),
                report.accounts,
                report.payments,
                report.skipped
            );
            eprintln!(
                "ccnode import: each account's new key follows (only its hash is stored; give each to its owner)"
            );
            let mut out = String::from("id,key\n");
            for (id, key) in &report.keys {
                out.push_str(&format!("{id},{key}\n"));
            }
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).context("printing the new keys")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ (api::import::ImportError::Row { .. } | api::import::ImportError::Refused(_))) => {
            eprintln!("ccnode import: refused, nothing written: {error}");
            Ok(ExitCode::from(1))
        }
        Err(error) => Err(error).context("importing"),
    }
}
