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
    let (segments, own) = segments_after_own(path, this_node);
    let rest = &segments[own.unwrap_or(0)..];
    if let Some((first, tail)) = rest.split_first() {
        if let Ok(candidate) = AccountId::new(first) {
            match lookup(&candidate) {
                Some(AccountKind::User { .. }) if tail.is_empty() && !path.ends_with('/') => {
                    return Ok(Resolution::Local(candidate))
                }
                Some(AccountKind::Leafward) => {
                    return Ok(Resolution::Leafward { node_account: candidate, rel_path: tail.join("/") })
                }
                // `<this node>/<parent>/…`: up through the parent, with what follows
                // this node's name (a name another node listed for us).
                Some(AccountKind::Trunkward) if own.is_some() => {
                    // Empty when it names the parent itself (not an account).
                    let rel_path = if tail.is_empty() { String::new() } else { rest.join("/") };
                    return Ok(Resolution::Trunkward { node_account: candidate, rel_path });
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

/// Where a path that names a node, or an account under a node, leads from
/// here (the reading routes use: `/about?node_path`, `/account/summary`,
/// `/account/limits`, `/account/history`, `/account/names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node: the rest of the path after this node's own name (empty when
    /// the path names this node itself).
    Here(String),
    /// Through a child node's account, with the path below it (empty when the
    /// path names that node).
    Leafward {
        /// The child node's account here.
        node_account: AccountId,
        /// Remaining path below it.
        rel_path: String,
    },
    /// Through the trunkward account, with the whole given path.
    Trunkward {
        /// The trunkward account here.
        node_account: AccountId,
        /// The whole given path.
        rel_path: String,
    },
}

/// Segments of `path` (empty ones dropped), and the index just after this
/// node's own name if it occurs. Paths are always compared segment by
/// segment, never as strings: node `a` does not prefix account `alice`.
fn segments_after_own<'p>(path: &'p str, this_node: &NodeName) -> (Vec<&'p str>, Option<usize>) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let own = segments.iter().position(|s| *s == this_node.as_str()).map(|i| i + 1);
    (segments, own)
}

/// Routes `path` by the reference's rule for reads: everything up to and
/// including this node's name is dropped; a first remaining segment naming a
/// child node goes leafward; a path that does not name this node goes
/// trunkward when there is a parent, unless it is a single segment that
/// `is_here` accepts (a local account, or a name fragment); otherwise it is
/// `PathViolation`.
pub fn route(
    path: &str,
    this_node: &NodeName,
    lookup: impl Fn(&AccountId) -> Option<AccountKind>,
    trunkward: Option<&AccountId>,
    is_here: impl Fn(&str) -> bool,
) -> Result<Route, Violation> {
    let violation = || Violation::Path { rel_path: path.to_owned(), context: this_node.to_string() };
    if path.len() > PATH_LENGTH_MAX_BYTES {
        return Err(violation());
    }
    let (segments, own) = segments_after_own(path, this_node);
    let rest = &segments[own.unwrap_or(0)..];
    let Some((first, tail)) = rest.split_first() else { return Ok(Route::Here(String::new())) };
    if let Ok(candidate) = AccountId::new(first) {
        match lookup(&candidate) {
            Some(AccountKind::Leafward) => {
                return Ok(Route::Leafward { node_account: candidate, rel_path: tail.join("/") })
            }
            // A path through the parent (`ccbranch1/`, `ccbranch1/dave`) is the
            // parent's to read, with the whole path (or what follows this
            // node's own name).
            Some(AccountKind::Trunkward) => {
                let rel_path = if own.is_some() { rest.join("/") } else { path.to_owned() };
                return Ok(Route::Trunkward { node_account: candidate, rel_path });
            }
            _ => {}
        }
    }
    if tail.is_empty() && (own.is_some() || is_here(first)) {
        return Ok(Route::Here((*first).to_owned()));
    }
    match (own, trunkward) {
        (None, Some(t)) => Ok(Route::Trunkward { node_account: t.clone(), rel_path: path.to_owned() }),
        _ => Err(violation()),
    }
}
