//! The node's own facts folded from events that book nothing: fees, soft
//! limits and their crossings, the node's and its neighbours' keys, signed
//! and cosigned checkpoints, and each account's earlier limits (so the
//! balances and limits as of any checkpoint can be recomputed, issue 11).
//!
//! Kept in [`crate::Projections`] and in its snapshot, so a node starts from
//! snapshot plus tail with every read model (issue 10, item 3).

use std::collections::{BTreeMap, HashSet};

use bincode::{Decode, Encode};
use ledger::federation::FeePolicy;
use ledger::warn::WarnLimits;
use ledger::{AccountId, Amount, Event, Limits, TxId};

/// One soft limit crossed.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
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
    pub limit: Amount,
    /// The completed balance after the transaction.
    pub balance: Amount,
}

/// Facts of the node that are not balances or transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct NodeFacts {
    /// What this node charges on transactions that cross it.
    pub fees: Option<FeePolicy>,
    /// Soft limits by account: `(min, max)`.
    warn: BTreeMap<AccountId, (Option<Amount>, Option<Amount>)>,
    /// Every soft limit crossed, oldest first.
    pub crossings: Vec<Crossing>,
    /// The node's current Ed25519 public key.
    pub node_key: Option<[u8; 32]>,
    /// Neighbours' checkpoint keys: (origin, public key).
    pub peer_keys: BTreeMap<AccountId, (String, [u8; 32])>,
    /// The size of the last signed checkpoint (0: none yet).
    pub checkpoint_size: u64,
    /// This node's signed checkpoint notes, by size.
    pub notes: BTreeMap<u64, String>,
    /// Neighbours' cosignature lines of this node's checkpoints, by size.
    pub cosignatures: BTreeMap<u64, Vec<(AccountId, String)>>,
    /// The largest of this node's checkpoints each neighbour cosigned.
    pub cosigned_by: BTreeMap<AccountId, u64>,
    /// The latest checkpoint of each neighbour this node cosigned: (size, root).
    pub witnessed: BTreeMap<AccountId, (u64, [u8; 32])>,
    /// Seq of the last record that is not a checkpoint or a cosignature.
    pub last_ledger_seq: u64,
    /// Per account whose limits changed: `(seq of the change, limits before it)`, in seq order.
    limits_before: BTreeMap<AccountId, Vec<(u64, Limits)>>,
}

/// Records about checkpoints themselves (signed, cosigned, witnessed): no
/// reason for a new checkpoint.
pub fn is_proof_bookkeeping(event: &Event) -> bool {
    matches!(event, Event::CheckpointSigned { .. } | Event::CheckpointCosigned { .. } | Event::WitnessCosigned { .. })
}

impl NodeFacts {
    /// Whether `event` fits these facts (checked before anything changes).
    pub(crate) fn check(&self, event: &Event) -> Result<(), String> {
        match event {
            Event::NodeKeyRotated { old, .. } if self.node_key.as_ref() != Some(old) => {
                Err("a key rotation from a key that is not the node's".into())
            }
            Event::CheckpointSigned { size, .. } if *size <= self.checkpoint_size => {
                Err(format!("checkpoint of size {size} after one of size {}", self.checkpoint_size))
            }
            Event::WitnessCosigned { peer, size, .. } if self.witnessed.get(peer).is_some_and(|(s, _)| s >= size) => {
                Err(format!("cosigned {peer}'s checkpoint of size {size}, not after the last cosigned"))
            }
            _ => Ok(()),
        }
    }

    /// Folds `event` (recorded at `seq`, `at_us`); `limits` are the
    /// account's limits before an `AccountLimitsChanged`.
    pub(crate) fn apply(&mut self, seq: u64, at_us: u64, event: &Event, limits: Option<Limits>) {
        if !is_proof_bookkeeping(event) {
            self.last_ledger_seq = seq;
        }
        match event {
            Event::FeesConfigured { policy } => self.fees.clone_from(policy),
            Event::AccountLimitsChanged { id, .. } => {
                if let Some(old) = limits {
                    self.limits_before.entry(id.clone()).or_default().push((seq, old));
                }
            }
            Event::WarnLimitsChanged { id, warn_min, warn_max } => {
                if warn_min.is_none() && warn_max.is_none() {
                    self.warn.remove(id);
                } else {
                    self.warn.insert(id.clone(), (*warn_min, *warn_max));
                }
            }
            Event::WarnLimitCrossed { id, uuid, below, limit, balance } => self.crossings.push(Crossing {
                seq,
                at_us,
                id: id.clone(),
                uuid: *uuid,
                below: *below,
                limit: *limit,
                balance: *balance,
            }),
            Event::NodeKeySet { public_key } => self.node_key = Some(*public_key),
            Event::NodeKeyRotated { new, .. } => self.node_key = Some(*new),
            Event::PeerKeySet { peer, origin, public_key } => {
                self.peer_keys.insert(peer.clone(), (origin.clone(), *public_key));
            }
            Event::CheckpointSigned { size, note } => {
                self.checkpoint_size = *size;
                self.notes.insert(*size, note.clone());
            }
            Event::CheckpointCosigned { peer, size, signature } => {
                self.cosignatures.entry(*size).or_default().push((peer.clone(), signature.clone()));
                let best = self.cosigned_by.entry(peer.clone()).or_insert(0);
                *best = (*best).max(*size);
            }
            Event::WitnessCosigned { peer, size, root } => {
                self.witnessed.insert(peer.clone(), (*size, *root));
            }
            _ => {}
        }
    }

    /// An account's soft limits, if it has any.
    pub fn warn_limits(&self, id: &AccountId) -> Option<WarnLimits> {
        self.warn.get(id).map(|&(min, max)| WarnLimits { min, max })
    }

    /// Whether any account has soft limits.
    pub fn any_warn_limits(&self) -> bool {
        !self.warn.is_empty()
    }

    /// Every account with soft limits, by id.
    pub fn all_warn_limits(&self) -> impl Iterator<Item = (&AccountId, WarnLimits)> {
        self.warn.iter().map(|(id, &(min, max))| (id, WarnLimits { min, max }))
    }

    /// The limits an account had after every event with seq ≤ `seq`, given its current ones.
    pub fn limits_at(&self, id: &AccountId, seq: u64, current: Limits) -> Limits {
        let Some(changes) = self.limits_before.get(id) else { return current };
        let later = changes.partition_point(|&(at, _)| at <= seq);
        changes.get(later).map_or(current, |&(_, before)| before)
    }

    /// Checks what can be checked without the rest of the projections.
    pub(crate) fn check_consistent(&self, seq: u64, accounts: &HashSet<&AccountId>) -> Result<(), String> {
        let known = |id: &AccountId| accounts.contains(id);
        if self.last_ledger_seq > seq || (self.checkpoint_size != 0 && self.checkpoint_size >= seq) {
            return Err("node facts after the snapshot's seq".into());
        }
        if self.notes.last_key_value().map_or(0, |(s, _)| *s) != self.checkpoint_size {
            return Err("the last checkpoint note is not the last checkpoint".into());
        }
        if !self.warn.keys().all(known)
            || !self.limits_before.keys().all(known)
            || !self.crossings.iter().all(|c| known(&c.id) && c.seq <= seq)
            || !self
                .limits_before
                .values()
                .all(|v| v.windows(2).all(|w| w[0].0 < w[1].0) && v.iter().all(|c| c.0 <= seq))
        {
            return Err("node facts name an unknown account or a later seq".into());
        }
        Ok(())
    }
}
