//! `ccnode proof check`: verifies checkpoints, proofs and statements offline,
//! with public keys only (no data directory, no network).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tlog::VerifierKey;

/// `ccnode proof check` arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The node's verifier key (`GET /node/key`), or a file holding it.
    #[arg(long, value_name = "VKEY")]
    pub key: String,
    /// A witness's verifier key (or a file holding it): every checkpoint must
    /// carry a valid `cosignature/v1` by it. A node's own key (`GET /node/key`
    /// of the neighbour, type 0x01) is taken as its cosigner key (same key,
    /// type 0x04). Repeatable.
    #[arg(long, value_name = "VKEY")]
    pub witness: Vec<String>,
    /// Files: a signed checkpoint (`GET /checkpoint`), or the JSON of
    /// `/proof/inclusion`, `/proof/consistency`, `/proof/balance` or `/statement`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

fn load_key(text: &str) -> anyhow::Result<VerifierKey> {
    if let Ok(key) = VerifierKey::parse(text.trim()) {
        return Ok(key);
    }
    let contents =
        std::fs::read_to_string(text).with_context(|| format!("{text} is neither a verifier key nor a file"))?;
    VerifierKey::parse(contents.trim()).with_context(|| format!("{text} does not hold a verifier key"))
}

/// Exit status: 0 every file verified, 1 one did not (the reason is printed), 2 could not run.
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let key = load_key(&args.key)?;
    let witnesses = args
        .witness
        .iter()
        .map(|w| {
            let key = load_key(w)?;
            Ok(match key.kind {
                tlog::KeyType::Ed25519 => VerifierKey::new(&key.name, tlog::KeyType::CosignatureV1, key.key)?,
                tlog::KeyType::CosignatureV1 => key,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut texts = Vec::new();
    for file in &args.files {
        let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        texts.push(String::from_utf8(text).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display())));
    }
    let mut failed = false;
    for (file, text) in args.files.iter().zip(texts) {
        let verdict = text
            .map_err(|e| e.to_string())
            .and_then(|text| tlog::document::verify_document(&text, &key, &witnesses).map_err(|e| e.to_string()));
        match verdict {
            Ok(verified) => {
                let what: Vec<String> = verified.iter().map(ToString::to_string).collect();
                println!("{}: OK: {}", file.display(), what.join("; "));
            }
            Err(reason) => {
                failed = true;
                println!("{}: FAILED: {reason}", file.display());
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
