//! `ccnode journal …`: verify and stat.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use journal::{verify_dir, Checkpoint, Hash, Journal, VerifyOptions, VerifyProgress};

/// Seconds between plain progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Parses `SEQ:HASH`.
pub fn parse_checkpoint(text: &str) -> anyhow::Result<Checkpoint> {
    let Some((seq, hash)) = text.split_once(':') else { bail!("expected SEQ:HASH, got {text:?}") };
    let seq = seq.parse().with_context(|| format!("seq {seq:?} is not a number"))?;
    let Some(hash) = Hash::from_hex(hash) else { bail!("hash {hash:?} is not 64 hex characters") };
    Ok(Checkpoint { seq, hash })
}

pub fn verify(dir: &Path, options: VerifyOptions, bar: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut reporter = Reporter::new(bar);
    let report = verify_dir(dir, options, &mut |p| reporter.update(p))
        .with_context(|| format!("cannot verify {}", dir.display()))?;
    reporter.finish();
    let elapsed = started.elapsed();
    if report.unfinished_records > 0 || report.torn_bytes > 0 {
        println!(
            "note: an unfinished last batch ({} records, {} torn bytes) was never acknowledged; the next open removes it",
            report.unfinished_records, report.torn_bytes
        );
    }
    match &report.problem {
        None => {
            println!(
                "ok: {} records verified in {:.2?} ({} segments, {} bytes); head seq {} hash {}",
                report.records_verified, elapsed, report.segments, report.bytes, report.last_seq, report.last_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(problem) => {
            println!("CORRUPT: first bad seq {}", problem.seq);
            println!("  {problem}");
            println!("  the chain is sound up to seq {} (hash {})", report.last_seq, report.last_hash);
            Ok(ExitCode::from(1))
        }
    }
}

pub fn stat(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let journal = Journal::open_read_only(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let head = journal.head();
    let last_checkpoint = journal.checkpoints().last().copied();
    if json {
        let value = serde_json::json!({
            "identity": journal.identity(),
            "records": head.seq,
            "segments": journal.segment_count(),
            "bytes": journal.total_bytes(),
            "head": { "seq": head.seq, "hash": head.hash.to_hex(), "recorded_at_us": head.recorded_at_us },
            "genesis": journal.genesis().to_hex(),
            "checkpoints": journal.checkpoints().len(),
            "last_checkpoint": last_checkpoint.map(|cp| serde_json::json!({"seq": cp.seq, "hash": cp.hash.to_hex()})),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("identity:    {}", journal.identity());
        println!("records:     {}", head.seq);
        println!("segments:    {}", journal.segment_count());
        println!("bytes:       {}", journal.total_bytes());
        println!("head seq:    {}", head.seq);
        println!("head hash:   {}", head.hash);
        println!("head time:   {} (unix µs)", head.recorded_at_us);
        println!("genesis:     {}", journal.genesis());
        match last_checkpoint {
            Some(cp) => println!("checkpoints: {} (last {}:{})", journal.checkpoints().len(), cp.seq, cp.hash),
            None => println!("checkpoints: 0"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal, occasional plain lines otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
}

impl Reporter {
    fn new(bar: bool) -> Reporter {
        let bar = bar.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} verifying [{bar:40}] {bytes}/{total_bytes} {msg} ({eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Reporter { bar, last_line: Instant::now() }
    }

    fn update(&mut self, progress: &VerifyProgress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(progress.bytes_total);
                bar.set_position(progress.bytes_read);
                bar.set_message(format!("{} records", progress.records));
            }
            None if self.last_line.elapsed() >= PLAIN_PROGRESS_INTERVAL => {
                self.last_line = Instant::now();
                eprintln!(
                    "verify: {} records, {}/{} bytes read",
                    progress.records, progress.bytes_read, progress.bytes_total
                );
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
