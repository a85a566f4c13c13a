//! `cargo run -p sim --release -- --seed S [--trace]` replays one seed;
//! `--seeds A..B` runs a range and prints every failing seed.

use std::process::ExitCode;

use clap::Parser;

/// Deterministic simulation of a ccnode federation.
#[derive(Debug, Parser)]
struct Args {
    /// One seed to run (replays it exactly).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, `A..B` (B excluded).
    #[arg(long)]
    seeds: Option<String>,
    /// Workload and fault events per seed.
    #[arg(long, default_value_t = 300)]
    steps: u32,
    /// Print one line per event.
    #[arg(long)]
    trace: bool,
    /// Plant a bug (every disk acknowledges syncs it did not do), to see the checkers catch it.
    #[arg(long)]
    lying_disk: bool,
    /// Plant a bug (a change left in doubt is aborted, as before the fix), to see the checkers catch it.
    #[arg(long)]
    abort_in_doubt: bool,
    /// No admin changes members' limits.
    #[arg(long)]
    no_limit_changes: bool,
    /// `full` (every fault) or `no-doubt` (the faults that leave no neighbour in doubt).
    #[arg(long, default_value = "full")]
    profile: String,
}

fn parse_range(text: &str) -> anyhow::Result<std::ops::Range<u64>> {
    let (a, b) = text.split_once("..").ok_or_else(|| anyhow::anyhow!("--seeds A..B"))?;
    Ok(a.parse()?..b.parse()?)
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let seeds = match (&args.seed, &args.seeds) {
        (Some(seed), _) => *seed..*seed + 1,
        (None, Some(range)) => parse_range(range)?,
        (None, None) => 0..1,
    };
    let profile = match args.profile.as_str() {
        "full" => sim::Profile::Full,
        "no-doubt" => sim::Profile::NoDoubt,
        other => anyhow::bail!("--profile {other}: full or no-doubt"),
    };
    let started = std::time::Instant::now();
    let (mut failed, mut events, mut runs) = (Vec::new(), 0u64, 0u64);
    for seed in seeds {
        let options = sim::Options {
            seed,
            steps: args.steps,
            print_trace: args.trace,
            keep_trace: false,
            lying_disk: args.lying_disk,
            abort_in_doubt: args.abort_in_doubt,
            limit_changes: !args.no_limit_changes,
            profile,
        };
        let outcome = sim::run(&options);
        runs += 1;
        events += outcome.events;
        match &outcome.failure {
            None => println!(
                "seed {seed} ok: {} events, {} messages, {:.0} s simulated, trace {:016x}, {:?}",
                outcome.events,
                outcome.messages,
                outcome.simulated.as_secs_f64(),
                outcome.trace_hash,
                outcome.stats
            ),
            Some(failure) => {
                if !args.trace {
                    for line in &outcome.tail {
                        println!("  {line}");
                    }
                }
                println!("FAILED {failure}");
                println!(
                    "replay: cargo run -p sim --release -- --seed {seed} --steps {} --profile {}{} --trace",
                    args.steps,
                    args.profile,
                    if args.no_limit_changes { " --no-limit-changes" } else { "" }
                );
                failed.push(seed);
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!("{runs} seeds, {} failed {failed:?}, {events} events in {wall:.1} s", failed.len());
    println!("figure\tsim\tevents_per_second\t{:.0}\tevents/s", events as f64 / wall.max(1e-9));
    println!("figure\tsim\tseeds_per_10_minutes\t{:.0}\tseeds", runs as f64 / wall.max(1e-9) * 600.0);
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
