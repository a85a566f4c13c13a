//! The Merkle tree over the journal (issue 11), shared by the writer, which
//! appends each record's leaf as it decides, and the proof routes.
//!
//! At start the tree is rebuilt from the journal's chain hashes on a thread
//! of its own, so the node answers before it is done (issue 10, item 3):
//! meanwhile the writer's leaves wait in a backlog, and proofs, checkpoints
//! and cosigning answer that the tree is being rebuilt.

use std::path::Path;

use journal::Store as _;

use crate::store::StoreLocation;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// The tree, or the leaves decided while it is being rebuilt.
#[derive(Debug, Default)]
pub struct MerkleState {
    tree: tlog::Tree,
    /// `Some` until the rebuild is done: leaves of records after the start's head.
    backlog: Option<Vec<tlog::Hash>>,
    /// The start's head, which the rebuild covers.
    rebuild_head: u64,
    /// Set while the writer does not write after a failed append: the
    /// decider's predictions are ignored, and the leaves of the records the
    /// node folds from the store come through `push_durable`.
    predictions_paused: bool,
}

/// The tree is still being rebuilt after a start.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the Merkle tree is being rebuilt from the journal after the start; try again in a moment")]
pub struct NotReady;

/// The shared tree.
pub type SharedTree = Arc<RwLock<MerkleState>>;

impl MerkleState {
    /// A tree still to be rebuilt up to record `head`.
    pub fn rebuilding(head: u64) -> Self {
        Self { tree: tlog::Tree::new(), backlog: Some(Vec::new()), rebuild_head: head, predictions_paused: false }
    }

    /// Appends the leaf of the next record's chain hash, as the decider
    /// predicts it (ignored while predictions are paused).
    pub fn push(&mut self, chain_hash: &[u8; 32]) {
        if !self.predictions_paused {
            self.push_durable(chain_hash);
        }
    }

    /// Appends the leaf of a durable record the node did not decide (one it
    /// folds from the store while not writing).
    pub fn push_durable(&mut self, chain_hash: &[u8; 32]) {
        let leaf = tlog::leaf_hash(chain_hash);
        match &mut self.backlog {
            Some(backlog) => backlog.push(leaf),
            None => self.tree.push_leaf_hash(leaf),
        }
    }

    /// Records (leaves) in the tree, or, while it is rebuilt, the start's
    /// head and the leaves of the backlog.
    pub fn records(&self) -> u64 {
        match &self.backlog {
            Some(backlog) => self.rebuild_head + u64::try_from(backlog.len()).expect("usize fits u64"),
            None => self.tree.len(),
        }
    }

    /// An append failed after record `durable`: drops the leaves predicted
    /// past it and ignores the decider's predictions until
    /// `resume_predictions`. While rebuilding, the backlog holds the leaves
    /// after the start's head, which is at most `durable`.
    pub fn stop_predictions(&mut self, durable: u64) {
        self.predictions_paused = true;
        match &mut self.backlog {
            Some(backlog) => {
                let keep = usize::try_from(durable.saturating_sub(self.rebuild_head)).expect("a backlog fits usize");
                backlog.truncate(keep);
            }
            None => self.tree.truncate(durable),
        }
    }

    /// Writing resumes: the decider's predictions count again.
    pub fn resume_predictions(&mut self) {
        self.predictions_paused = false;
    }

    /// The tree, once rebuilt.
    pub fn tree(&self) -> Result<&tlog::Tree, NotReady> {
        match self.backlog {
            Some(_) => Err(NotReady),
            None => Ok(&self.tree),
        }
    }

    /// Installs the tree rebuilt for the records before the backlog, then the backlog.
    fn install(&mut self, mut tree: tlog::Tree) {
        for leaf in self.backlog.take().unwrap_or_default() {
            tree.push_leaf_hash(leaf);
        }
        self.tree = tree;
    }
}

/// Reads the shared tree (the lock is never poisoned: nothing panics under it).
pub fn read(tree: &SharedTree) -> RwLockReadGuard<'_, MerkleState> {
    tree.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Test-only (debug builds only): with `CCNODE_FAILPOINT=lie-about-record-1`
/// the rebuilt tree takes record 1's chain hash as if that record had been
/// rewritten, so every checkpoint the node signs from then on lies about its
/// history; its neighbours must refuse to cosign it (tests/e2e/signatures.rs).
fn lie(seq: u64, hash: [u8; 32]) -> [u8; 32] {
    if cfg!(debug_assertions) && seq == 1 && crate::failpoint_is("lie-about-record-1") {
        tracing::error!("FAILPOINT lie-about-record-1: this node's checkpoints now lie about record 1");
        let mut lied = hash;
        lied[0] ^= 0xff;
        return lied;
    }
    hash
}

/// Rebuilds the tree of the journal at `location` (for the node on data
/// directory `data_dir`) up to `head` records, through a read-only handle of
/// its own, then installs it with the backlog. On failure the tree stays
/// unavailable (and says so in the log); the ledger itself is unaffected.
pub fn rebuild(location: &StoreLocation, data_dir: &Path, head: u64, shared: &SharedTree) {
    let started = std::time::Instant::now();
    let built = (|| -> Result<tlog::Tree, String> {
        let mut tree = tlog::Tree::new();
        if head == 0 {
            return Ok(tree);
        }
        let journal = crate::store::open_read_only(location, data_dir).map_err(|e| e.to_string())?;
        for record in journal.iter_from(1).map_err(|e| e.to_string())? {
            let record = record.map_err(|e| e.to_string())?;
            if record.seq > head {
                break;
            }
            tree.push_leaf_hash(tlog::leaf_hash(&lie(record.seq, record.hash.0)));
        }
        if tree.len() != head {
            return Err(format!("the journal has {} records, not {head}", tree.len()));
        }
        Ok(tree)
    })();
    match built {
        Ok(tree) => {
            shared.write().unwrap_or_else(std::sync::PoisonError::into_inner).install(tree);
            tracing::info!(records = head, ms = started.elapsed().as_millis(), "Merkle tree rebuilt");
        }
        Err(error) => {
            tracing::error!(%error, "rebuilding the Merkle tree failed: no checkpoints or proofs until restart")
        }
    }
}
