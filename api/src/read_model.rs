//! What the HTTP handlers read: the projections folded from durable events,
//! and the checkpoint log beside them.

use std::collections::HashMap;

use ledger::federation::{Link, Ratchet};
use ledger::{AccountId, Event, LedgerView, TxId};
use projections::Projections;

/// What the HTTP side reads: the projections (balances, transactions, key
/// hashes, links and ratchets) plus each link's version log and closed links.
#[derive(Debug, Default)]
pub struct ReadModel {
    /// Balances, transactions, history.
    pub projections: Projections,
    /// Soft limits and their crossings (issue 12, item 5).
    pub warnings: Warnings,
    /// The node's key and its signed checkpoints (issue 11).
    pub checkpoints: crate::checkpoint::CheckpointLog,
}

/// Soft limits and every time one was crossed, folded from the journal.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    /// Each account's soft limits.
    pub limits: HashMap<AccountId, ledger::warn::WarnLimits>,
    /// Every crossing, oldest first.
    pub crossed: Vec<Crossing>,
}

/// One soft limit crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The journal record of the crossing.
    pub seq: u64,
    /// When it was recorded (unix microseconds).
    pub at_us: u64,
    /// The account.
    pub id: AccountId,
    /// The transaction that moved its balance.
    pub uuid: TxId,
    /// Below the soft minimum (else above the soft maximum).
    pub below: bool,
    /// The soft limit.
    pub limit: ledger::Amount,
    /// The completed balance after the transaction.
    pub balance: ledger::Amount,
}

impl Warnings {
    /// Folds one event.
    pub fn apply(&mut self, seq: u64, at_us: u64, event: &Event) {
        match event {
            Event::WarnLimitsChanged { id, warn_min, warn_max } => {
                let limits = ledger::warn::WarnLimits { min: *warn_min, max: *warn_max };
                if limits == ledger::warn::WarnLimits::default() {
                    self.limits.remove(id);
                } else {
                    self.limits.insert(id.clone(), limits);
                }
            }
            Event::WarnLimitCrossed { id, uuid, below, limit, balance } => self.crossed.push(Crossing {
                seq,
                at_us,
                id: id.clone(),
                uuid: *uuid,
                below: *below,
                limit: *limit,
                balance: *balance,
            }),
            _ => {}
        }
    }
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

    pub(crate) fn apply(&mut self, seq: u64, recorded_at_us: u64, event: &Event) {
        self.warnings.apply(seq, recorded_at_us, event);
        if matches!(event, Event::TransactionProposed { .. }) && crate::failpoint_is("panic-in-fold") {
            // Stands for a bug in the fold: it panics under the read model's write lock.
            panic!("failpoint panic-in-fold: the fold of seq {seq} panicked");
        }
        if let Event::CheckpointSigned { size, note } = event {
            // Recorded right after record `size`: the projections are as of it.
            let leaves = crate::checkpoint::balance_leaves(self.projections.accounts(), &self.projections);
            self.checkpoints.record(*size, note.clone(), leaves);
        }
        self.checkpoints.observe(event);
        self.projections.apply(seq, recorded_at_us, event);
    }
}
