//! Runs one input through a target without the fuzzer, with its panic and
//! backtrace: `cargo run -p fuzz --bin replay -- TARGET FILE...` (how to
//! reproduce a crash AFL++ saved; see docs/TESTING.md).

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().context("usage: replay TARGET FILE...")?;
    let Some(&(_, run)) = fuzz::TARGETS.iter().find(|(name, _)| *name == target) else {
        bail!("unknown target {target}; targets: {:?}", fuzz::TARGETS.iter().map(|t| t.0).collect::<Vec<_>>())
    };
    for file in args {
        let bytes = std::fs::read(&file).with_context(|| file.clone())?;
        run(&bytes);
        println!("{file}: ok");
    }
    Ok(())
}
