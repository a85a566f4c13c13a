//! Addresses and the reference's resolution rule (cc-protocol.md §1).
//!
//! A path is `/`-separated segments, absolute (`trunk/branch/twig/alice`) or
//! relative (`branch/bob`); a trailing `/` names a node, not an account.

use crate::ids::{AccountId, NodeName};
use crate::model::AccountKind;
use crate::violation::Violation;

/// Longest path accepted, in bytes.
pub const PATH_LENGTH_MAX_BYTES: usize = 1024;

/// Where a party lives, seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A user account on this node.
    Local(AccountId),
    /// Through a child node's account; `rel_path` is the rest of the path
    /// (empty when the path names the child node itself).
    Leafward {
        /// The child node's account here.
        node_account: AccountId,
        /// Remaining path below it.
        rel_path: String,
    },
    /// Through the trunkward (balance-of-trade) account, with the whole path.
    Trunkward {
        /// The trunkward account here.
        node_account: AccountId,
        /// The whole given path.
        rel_path: String,
    },
}

impl Resolution {
    /// The account on this node that books the entry.
    pub fn account(&self) -> &AccountId {
        match self {
            Resolution::Local(a) => a,
            Resolution::Leafward { node_account, .. } | Resolution::Trunkward { node_account, .. } => node_account,
        }
    }

    /// The remote relative path, if the party is not local.
    pub fn remote_path(&self) -> Option<&str> {
        match self {
            Resolution::Local(_) => None,
            Resolution::Leafward { rel_path, .. } | Resolution::Trunkward { rel_path, .. } => Some(rel_path),
        }
    }
}

/// Resolves `path` on node `this_node`. `lookup` says whether an account
/// exists and what kind it is; `trunkward` is the trunkward account, if any.
///
/// 1. Split on `/`; if this node's name occurs, drop everything up to and
///    including its first occurrence.
/// 2. The first remaining segment is a candidate account; the rest is
///    `rel_path`.
/// 3. An existing local user account (with nothing after it) is `Local`; an
///    existing leafward node account is `Leafward` with `rel_path`.
/// 4. Otherwise, if this node's name was absent and a trunkward account
///    exists, `Trunkward` with the whole path.
/// 5. Otherwise `PathViolation`.
pub fn resolve(
    path: &str,
    this_node: &NodeName,
    lookup: impl Fn(&AccountId) -> Option<AccountKind>,
    trunkward: Option<&AccountId>,
) -> Result<Resolution, Violation> {
    let violation = || Violation::Path { rel_path: path.to_owned(), context: this_node.to_string() };
    if path.is_empty() || path.len() > PATH_LENGTH_MAX_BYTES {
        return Err(violation());
    }
    let segments: Vec<&str> = path.split('/').collect();
    let own = segments.iter().position(|s| *s == this_node.as_str());
    let rest = match own {
        Some(i) => &segments[i + 1..],
        None => &segments[..],
    };
    if let Some((first, tail)) = rest.split_first() {
        if let Ok(candidate) = AccountId::new(first) {
            match lookup(&candidate) {
                Some(AccountKind::User { .. }) if tail.is_empty() => return Ok(Resolution::Local(candidate)),
                Some(AccountKind::Leafward) => {
                    return Ok(Resolution::Leafward { node_account: candidate, rel_path: tail.join("/") })
                }
                _ => {}
            }
        }
    }
    match (own, trunkward) {
        (None, Some(t)) => Ok(Resolution::Trunkward { node_account: t.clone(), rel_path: path.to_owned() }),
        _ => Err(violation()),
    }
}
