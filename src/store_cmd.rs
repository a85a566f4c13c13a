//! `ccnode migrate-store` and `ccnode journal verify|stat --store postgres://…`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use api::store::{CopyError, StoreLocation};
use journal::Store;

/// One side of `migrate-store`: `file:DIR` (a data directory) or a database URL.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The segment files of data directory DIR (in DIR/journal).
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(String),
}

impl Endpoint {
    pub fn parse(text: &str) -> anyhow::Result<Endpoint> {
        if let Some(dir) = text.strip_prefix("file:") {
            if dir.is_empty() {
                bail!("file: needs a data directory, e.g. file:./ccnode-data");
            }
            return Ok(Endpoint::File(PathBuf::from(dir)));
        }
        if pgjournal::is_postgres_url(text) {
            return Ok(Endpoint::Postgres(text.to_owned()));
        }
        bail!("{text:?} is neither file:DIR nor a postgres://USER@HOST:PORT/DB URL")
    }

    fn describe(&self) -> String {
        match self {
            Endpoint::File(dir) => format!("file:{}", dir.display()),
            Endpoint::Postgres(url) => pgjournal::redacted(url),
        }
    }

    fn location(&self) -> (StoreLocation, PathBuf) {
        match self {
            Endpoint::File(dir) => (StoreLocation::File, dir.clone()),
            Endpoint::Postgres(url) => (StoreLocation::Postgres { url: url.clone(), standby: false }, PathBuf::new()),
        }
    }
}

/// `ccnode migrate-store --from … --to …`.
pub fn migrate(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let from = Endpoint::parse(from).context("--from")?;
    let to = Endpoint::parse(to).context("--to")?;
    let (location, dir) = from.location();
    let source = api::store::open_read_only(&location, &dir).with_context(|| format!("opening {}", from.describe()))?;
    let identity = source.identity().to_owned();
    let (location, dir) = to.location();
    if let Endpoint::File(data) = &to {
        crate::private::prepare_data_dir(data)?;
    }
    let mut target =
        api::store::open(&location, &dir, &identity).with_context(|| format!("opening {}", to.describe()))?;
    let started = Instant::now();
    eprintln!(
        "migrate-store: copying {} records of {identity:?} from {} to {}",
        source.head().seq,
        from.describe(),
        to.describe()
    );
    let copied = api::store::copy(&source, &mut target, &mut |seq| eprintln!("migrate-store: {seq} records copied"));
    match copied {
        Ok(report) => {
            println!(
                "ok: {} records copied in {} batches and compared in {:.2?}; every hash verified; head seq {} hash {}",
                report.records,
                report.batches,
                started.elapsed(),
                report.head.seq,
                report.head.hash
            );
            if let Endpoint::File(data) = &from {
                println!(
                    "note: the node's key is not part of the journal: the node that uses {} needs {}",
                    to.describe(),
                    data.join("node.key").display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ CopyError::TargetNotEmpty { .. }) => Err(e).context(format!("refusing {}", to.describe())),
        Err(e @ (CopyError::Source { .. } | CopyError::Mismatch { .. })) => {
            println!("FAILED: {e}");
            println!("  the target {} holds a partial copy: remove it before trying again", to.describe());
            Ok(ExitCode::from(1))
        }
        Err(e @ CopyError::Target { .. }) => {
            Err(e).context(format!("the target {} holds a partial copy: remove it before trying again", to.describe()))
        }
    }
}

/// `ccnode journal verify --store postgres://…`: the whole chain read back
/// and checked record by record.
pub fn verify(store: &str) -> anyhow::Result<ExitCode> {
    let journal = match open_database(store) {
        Err(e) => match e.downcast_ref::<pgjournal::OpenError>() {
            Some(pgjournal::OpenError::Corrupt { seq, kind }) => {
                println!("CORRUPT: first bad seq {seq}");
                println!("  journal corruption at seq {seq} (PostgreSQL): {kind}");
                return Ok(ExitCode::from(1));
            }
            _ => return Err(e),
        },
        Ok(journal) => journal,
    };
    let started = Instant::now();
    let report = api::store::verify_chain(&journal, &mut |seq| eprintln!("verify: {seq} records"));
    match &report.problem {
        None => {
            println!(
                "ok: {} records verified in {:.2?} (PostgreSQL {}); head seq {} hash {}",
                report.records_verified,
                started.elapsed(),
                journal.location(),
                report.last.seq,
                report.last.hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, detail)) => {
            println!("CORRUPT: first bad seq {seq}");
            println!("  {detail}");
            println!("  the chain is sound up to seq {} (hash {})", report.last.seq, report.last.hash);
            Ok(ExitCode::from(1))
        }
    }
}

/// `ccnode journal stat --store postgres://…`.
pub fn stat(store: &str, json: bool) -> anyhow::Result<ExitCode> {
    let journal = open_database(store)?;
    let head = journal.head();
    if json {
        let value = serde_json::json!({
            "identity": journal.identity(),
            "store": journal.location(),
            "records": head.seq,
            "head": { "seq": head.seq, "hash": head.hash.to_hex(), "recorded_at_us": head.recorded_at_us },
            "genesis": journal.genesis().to_hex(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("identity:    {}", journal.identity());
        println!("store:       {}", journal.location());
        println!("records:     {}", head.seq);
        println!("head seq:    {}", head.seq);
        println!("head hash:   {}", head.hash);
        println!("head time:   {} (unix µs)", head.recorded_at_us);
        println!("genesis:     {}", journal.genesis());
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a database read-only; a damaged journal is a `pgjournal::OpenError::Corrupt` inside.
pub fn open_database(store: &str) -> anyhow::Result<pgjournal::PgJournal> {
    match StoreLocation::parse(store).map_err(anyhow::Error::msg)? {
        StoreLocation::Postgres { url, .. } => {
            pgjournal::PgJournal::open_read_only(&url).with_context(|| format!("opening {}", pgjournal::redacted(&url)))
        }
        StoreLocation::File => bail!("--store file is the data directory's journal: use --data DIR"),
        StoreLocation::Memory(_) => bail!("--store does not name a memory store"),
    }
}

/// Opens the journal `--store` names read-only: `file`, the segment files of
/// data directory `data`, or a database (for `replay`, `export`, `balance`).
pub fn open_for_reading(store: &str, data: &std::path::Path) -> anyhow::Result<api::store::NodeStore> {
    let location = StoreLocation::parse(store).map_err(anyhow::Error::msg).context("--store")?;
    api::store::open_read_only(&location, data).with_context(|| match &location {
        StoreLocation::File => format!("cannot open {}", api::store::journal_dir(data).display()),
        other => format!("opening {}", other.describe()),
    })
}
