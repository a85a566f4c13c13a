//! Verifiable ledger (issue 11): the node's Ed25519 key, the RFC 6962 tree
//! over its journal, and signed checkpoints (the proof routes are in
//! `routes::checkpoint`, the schedule in `server`).
//!
//! - The key is a 32-byte seed in `DATA/node.key` (0600), made at first
//!   start; its public half is journaled (`NodeKeySet`). A rotation writes the
//!   new seed to `DATA/node.key.next`, journals `NodeKeyRotated` signed by the
//!   old key, then renames the file over `node.key`; a start finishes or
//!   forgets a rotation that a crash interrupted (`settle_key`).
//! - Leaf n of the tree (0-based) is `SHA-256(0x00 ‖ hash of journal record n+1)`.
//!   The writer's decider predicts every record's chain hash (the journal's
//!   rule, `journal::record_hash`) and appends it to the shared tree, so a
//!   checkpoint decided after record N commits to exactly records 1..N and to
//!   the balances and link heads as of N; the appender checks the prediction
//!   against what the journal wrote.
//! - Checkpoints are C2SP signed notes, journaled (`CheckpointSigned`, always
//!   record N+1) and folded by size into the projections; the balances and
//!   limits of any checkpoint are recomputed from the balance timelines and
//!   limit history for balance proofs (`ReadModel::leaves_at`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ledger::{Account, AccountId, Amount, LedgerView};
use rust_decimal::prelude::ToPrimitive;
use tlog::{BalanceLeaf, BalanceTree, Checkpoint, LinkLine, Note, NoteSigner};

/// The node's key file, in the data directory.
pub const KEY_FILE: &str = "node.key";
/// A rotation's new key until its event is durable.
pub const NEXT_KEY_FILE: &str = "node.key.next";
/// First line of a key file.
const KEY_FILE_HEADER: &str = "ccnode node key v1 (Ed25519 seed, base64)";

/// A secret seed that never shows in logs.
#[derive(Clone)]
pub struct Seed(pub [u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<secret>)")
    }
}

/// Why the node's key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing it failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a key file.
    #[error("{path} is not a ccnode key file")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The key file does not hold the key the journal names.
    #[error(
        "{path} holds the key {found}, but the journal says the node's key is {journaled}: restore the node's key \
         file (a node cannot sign for its journal without it)"
    )]
    NotTheJournaledKey {
        /// The file.
        path: PathBuf,
        /// Its public key, hex.
        found: String,
        /// The journal's, hex.
        journaled: String,
    },
    /// The journal names a key but no key file exists.
    #[error("the journal says the node's key is {journaled}, but {path} does not exist: restore it from a backup")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The journal's key, hex.
        journaled: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_owned(), source }
}

/// A fresh seed from the operating system's generator.
pub fn new_seed() -> Seed {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    Seed(seed)
}

/// Reads a key file; `None` when it does not exist.
pub fn read_key(path: &Path) -> Result<Option<Seed>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let malformed = || KeyError::Malformed { path: path.to_owned() };
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_HEADER) {
        return Err(malformed());
    }
    let seed = lines.next().and_then(tlog::unb64).ok_or_else(malformed)?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| malformed())?;
    Ok(Some(Seed(seed)))
}

/// Writes a new key file, owner-only (0600), synced with its directory.
pub fn write_key(path: &Path, seed: &Seed) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    let text = format!("{KEY_FILE_HEADER}\n{}\n", tlog::b64(&seed.0));
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io(path))?;
    sync_parent(path)
}

pub(crate) fn sync_parent(path: &Path) -> Result<(), KeyError> {
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    Ok(())
}

/// The public key of a seed.
pub fn public_key(seed: &Seed) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed.0).verifying_key().to_bytes()
}

/// What a start must do about the node's key.
#[derive(Debug)]
pub struct SettledKey {
    /// The seed to sign with.
    pub seed: Seed,
    /// Whether its public key must still be journaled (`NodeKeySet`).
    pub journal_it: bool,
}

/// Finds the node's key at start, given the key the journal names: makes
/// one on a new node, finishes a rotation whose event is durable (renames
/// `node.key.next`), forgets one whose event is not, and refuses a key file
/// that is not the journal's key.
pub fn settle_key(data_dir: &Path, journaled: Option<&[u8; 32]>) -> Result<SettledKey, KeyError> {
    let path = data_dir.join(KEY_FILE);
    let next_path = data_dir.join(NEXT_KEY_FILE);
    let current = read_key(&path)?;
    let next = read_key(&next_path)?;
    let hex = |k: &[u8; 32]| tlog::checkpoint::hex(k);
    match journaled {
        None => {
            if next.is_some() {
                std::fs::remove_file(&next_path).map_err(io(&next_path))?;
            }
            let seed = match current {
                Some(seed) => seed,
                None => {
                    let seed = new_seed();
                    write_key(&path, &seed)?;
                    tracing::info!(path = %path.display(), "created the node's key");
                    seed
                }
            };
            Ok(SettledKey { seed, journal_it: true })
        }
        Some(k) => {
            if let Some(next) = next {
                if &public_key(&next) == k {
                    std::fs::rename(&next_path, &path).map_err(io(&path))?;
                    sync_parent(&path)?;
                    tracing::info!("finished a key rotation that a stop interrupted");
                    return Ok(SettledKey { seed: next, journal_it: false });
                }
                std::fs::remove_file(&next_path).map_err(io(&next_path))?;
                tracing::warn!("forgot a key rotation that was never journaled");
            }
            match current {
                Some(seed) if &public_key(&seed) == k => Ok(SettledKey { seed, journal_it: false }),
                Some(seed) => {
                    Err(KeyError::NotTheJournaledKey { path, found: hex(&public_key(&seed)), journaled: hex(k) })
                }
                None => Err(KeyError::Missing { path, journaled: hex(k) }),
            }
        }
    }
}

/// Micro-units of an amount (exact: amounts have at most 6 decimal places).
pub fn micros(amount: Amount) -> Option<i128> {
    (amount.as_decimal() * rust_decimal::Decimal::from(1_000_000)).trunc().to_i128()
}

/// The balances-tree leaves of accounts as decided: completed balance and limits.
pub fn balance_leaves<'a>(
    accounts: impl Iterator<Item = &'a Account>,
    view: &impl LedgerView,
) -> Option<Vec<BalanceLeaf>> {
    leaves_of(accounts.map(|a| (&a.id, view.balances(&a.id).completed, a.limits)))
}

/// Balances-tree leaves of `(account, completed balance, limits)` rows, in
/// their order; `None` when a figure does not fit a leaf.
pub fn leaves_of<'a>(
    rows: impl IntoIterator<Item = (&'a AccountId, Amount, ledger::Limits)>,
) -> Option<Vec<BalanceLeaf>> {
    rows.into_iter()
        .map(|(id, balance, limits)| {
            Some(BalanceLeaf {
                account: id.as_str().to_owned(),
                balance: micros(balance)?,
                min: micros(limits.min())?,
                max: micros(limits.max())?,
            })
        })
        .collect()
}

/// Makes and signs the checkpoint of the first `size` records.
pub fn sign_checkpoint(
    signer: &NoteSigner,
    size: u64,
    root: tlog::Hash,
    leaves: Vec<BalanceLeaf>,
    links: Vec<LinkLine>,
) -> Result<String, String> {
    let tree = BalanceTree::build(leaves).map_err(|e| e.to_string())?;
    let top = tree.root().map_err(|e| e.to_string())?;
    if top.sum != 0 {
        return Err(format!("the balances sum to {} micro-units, not zero", top.sum));
    }
    let balances = tree.commitment().map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::ccnode(signer.name(), size, root, balances, links);
    let text = checkpoint.text();
    let note = Note { signatures: vec![signer.sign(&text)], text };
    Ok(note.encode())
}
