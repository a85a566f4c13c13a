//! What the HTTP handlers read: the projections folded from durable events.

use std::sync::{Arc, Mutex};

use ledger::federation::{Link, Ratchet};
use ledger::{AccountId, Event, LedgerView, TxId};
pub use projections::Crossing;
use projections::Projections;
use tlog::{BalanceLeaf, BalanceTree};

/// What the HTTP side reads: the projections (balances, transactions, key
/// hashes, links, ratchets, link logs, closed links, soft limits, keys and
/// checkpoints), all folded from durable events.
#[derive(Debug, Default)]
pub struct ReadModel {
    /// Everything folded from the journal.
    pub projections: Projections,
    /// The hash of journal record `projections.seq()` (the genesis hash at 0).
    pub head_hash: [u8; 32],
    /// How the projections were loaded at start, and the last snapshot saved.
    pub snapshots: SnapshotInfo,
    /// The balances tree of the last checkpoint a proof was asked of.
    balance_tree: Mutex<Option<(u64, Arc<BalanceTree>)>>,
}

/// Snapshots of the projections, for operators (`GET /admin/health`).
#[derive(Debug, Default)]
pub struct SnapshotInfo {
    /// The seq of the snapshot the node started from (`None`: folded from seq 1).
    pub loaded_seq: Option<u64>,
    /// Journal records folded at start after it.
    pub folded_at_start: u64,
    /// The seq of the last snapshot saved while running (0: none yet).
    pub saved_seq: std::sync::atomic::AtomicU64,
}

impl ReadModel {
    /// The link facts of a transaction that crosses nodes (from the projections).
    pub fn link(&self, uuid: &TxId) -> Option<&Link> {
        LedgerView::link(&self.projections, uuid)
    }

    /// The evidence a link was closed with after a divergence, while it is
    /// closed (`LinkClosed`, folded by the projections; a restart keeps it).
    pub fn closed(&self, peer: &AccountId) -> Option<serde_json::Value> {
        let text = self.projections.closed_link(peer)?;
        Some(serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned())))
    }

    /// A neighbour's ratchet head (from the projections).
    pub fn ratchet(&self, peer: &AccountId) -> Option<&Ratchet> {
        LedgerView::ratchet(&self.projections, peer)
    }

    /// The node accounts of connected neighbours, by id.
    pub fn neighbours(&self) -> Vec<AccountId> {
        self.projections.accounts().filter(|a| self.projections.peer(&a.id).is_some()).map(|a| a.id.clone()).collect()
    }

    /// The neighbours on a `ccnode` link: the ones that take named attempts
    /// and fences (`crate::attempts`).
    pub fn ccnode_neighbours(&self) -> Vec<AccountId> {
        let mut peers = self.neighbours();
        peers.retain(|p| ledger::LedgerView::dialect(&self.projections, p) == ledger::Dialect::Ccnode);
        peers
    }

    /// Read model over projections already folded.
    pub fn new(projections: Projections, head_hash: [u8; 32]) -> Self {
        Self { projections, head_hash, snapshots: SnapshotInfo::default(), balance_tree: Mutex::new(None) }
    }

    /// This node's latest signed checkpoint: (size, note).
    pub fn latest_checkpoint(&self) -> Option<(u64, &str)> {
        self.projections.facts().notes.last_key_value().map(|(s, n)| (*s, n.as_str()))
    }

    /// This node's checkpoint of a size.
    pub fn checkpoint_at(&self, size: u64) -> Option<&str> {
        self.projections.facts().notes.get(&size).map(String::as_str)
    }

    /// The neighbours' cosignature lines of the checkpoint of `size`.
    pub fn cosignatures_at(&self, size: u64) -> &[(AccountId, String)] {
        self.projections.facts().cosignatures.get(&size).map_or(&[], Vec::as_slice)
    }

    /// The checkpoint of `size` with every cosignature collected.
    pub fn published(&self, size: u64) -> Option<String> {
        let mut note = self.checkpoint_at(size)?.to_owned();
        for (_, line) in self.cosignatures_at(size) {
            note.push_str(line);
        }
        Some(note)
    }

    /// The balances and limits a checkpoint of `size` committed to, as
    /// balances-tree leaves (`None` when there is no such checkpoint or a
    /// figure does not fit a leaf). Recomputed from the balance timelines
    /// and limit history, so every checkpoint's balances can be proved.
    pub fn leaves_at(&self, size: u64) -> Option<Vec<BalanceLeaf>> {
        self.checkpoint_at(size)?;
        crate::checkpoint::leaves_of(self.projections.balances_and_limits_at(size))
    }

    /// The balances tree of checkpoint `size`, if it is the one kept (the
    /// last one a proof was asked of: members ask of the latest).
    pub fn kept_balance_tree(&self, size: u64) -> Option<Arc<BalanceTree>> {
        let kept = self.balance_tree.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.as_ref().filter(|(at, _)| *at == size).map(|(_, tree)| Arc::clone(tree))
    }

    /// Keeps the balances tree of checkpoint `size` for the next proofs.
    pub fn keep_balance_tree(&self, size: u64, tree: Arc<BalanceTree>) {
        *self.balance_tree.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((size, tree));
    }

    pub(crate) fn apply(&mut self, seq: u64, recorded_at_us: u64, event: &Event) {
        if matches!(event, Event::TransactionProposed { .. } | Event::TransactionProposedRef { .. })
            && crate::failpoint_is("panic-in-fold")
        {
            // Stands for a bug in the fold: it panics under the read model's write lock.
            panic!("failpoint panic-in-fold: the fold of seq {seq} panicked");
        }
        self.projections.apply(seq, recorded_at_us, event);
    }
}
