//! Reconciliation of a federation link: a pure state machine.
//!
//! Each side of a link holds the ordered sequence of written versions of the
//! transactions shared on that link, each with its ratchet hashes (MD5 as the
//! reference protocol carries it, blake3 as ccnode chains it). [`reconcile`]
//! compares our sequence with the peer's and says who is missing what, or
//! where they first disagree; [`apply`] models a repair (appending the
//! versions one side is missing). Both are pure: fetching the peer's feed and
//! writing the repair through the ledger are the runtime's business.
//!
//! Duplicates (the same version delivered twice, identical in every field)
//! are ignored on both sides: only the first occurrence counts. Two different
//! records at the same position are a divergence, which is never repaired
//! automatically.

use std::collections::HashSet;

pub use ledger::ratchet::LinkVersion;

/// The outcome of comparing the two sides of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both sides hold the same sequence.
    InSync,
    /// The peer holds a strict prefix of ours: it misses these versions.
    PeerBehind {
        /// What the peer should append, in order.
        missing: Vec<LinkVersion>,
    },
    /// We hold a strict prefix of the peer's: we miss these versions.
    WeAreBehind {
        /// What we should append, in order.
        missing: Vec<LinkVersion>,
    },
    /// Both sides wrote different things at `index` (0-based, duplicates
    /// removed). Never repaired automatically.
    Diverged {
        /// Position of the first difference.
        index: usize,
        /// Our record there.
        ours: LinkVersion,
        /// The peer's record there.
        theirs: LinkVersion,
    },
}

impl Verdict {
    /// `peer behind by k` / `we are behind by k`: how many versions.
    pub fn missing_count(&self) -> usize {
        match self {
            Verdict::PeerBehind { missing } | Verdict::WeAreBehind { missing } => missing.len(),
            Verdict::InSync | Verdict::Diverged { .. } => 0,
        }
    }
}

/// The sequence with repeated identical records removed (first kept).
pub fn dedup(sequence: &[LinkVersion]) -> Vec<LinkVersion> {
    let mut seen: HashSet<&LinkVersion> = HashSet::with_capacity(sequence.len());
    sequence.iter().filter(|v| seen.insert(v)).cloned().collect()
}

/// Compares our link sequence with the peer's.
pub fn reconcile(ours: &[LinkVersion], theirs: &[LinkVersion]) -> Verdict {
    let (ours, theirs) = (dedup(ours), dedup(theirs));
    let common = ours.len().min(theirs.len());
    if let Some(index) = (0..common).find(|&i| ours[i] != theirs[i]) {
        return Verdict::Diverged { index, ours: ours[index].clone(), theirs: theirs[index].clone() };
    }
    match ours.len().cmp(&theirs.len()) {
        std::cmp::Ordering::Equal => Verdict::InSync,
        std::cmp::Ordering::Greater => Verdict::PeerBehind { missing: ours[common..].to_vec() },
        std::cmp::Ordering::Less => Verdict::WeAreBehind { missing: theirs[common..].to_vec() },
    }
}

/// Appends `missing` to `sequence`, skipping versions it already holds
/// (identical in every field): applying the same repair twice changes
/// nothing the second time. Returns how many versions were appended.
pub fn apply(sequence: &mut Vec<LinkVersion>, missing: &[LinkVersion]) -> usize {
    let mut held: HashSet<LinkVersion> = sequence.iter().cloned().collect();
    let before = sequence.len();
    for v in missing {
        if held.insert(v.clone()) {
            sequence.push(v.clone());
        }
    }
    sequence.len() - before
}
