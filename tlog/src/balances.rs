//! The balances tree: a Merkle-sum tree over every account's completed
//! balance and limits, whose root commits to the ledger's zero sum.
//!
//! Leaves are accounts in byte order of their ids. Amounts are integer
//! micro-units (10^-6), as signed 128-bit big-endian integers.
//!
//! ```text
//! leaf  = SHA-256(0x00 ‖ u32be(len(id)) ‖ id ‖ i128be(balance) ‖ i128be(min) ‖ i128be(max)),  sum = balance
//! node  = SHA-256(0x01 ‖ left.hash ‖ i128be(left.sum) ‖ right.hash ‖ i128be(right.sum)),     sum = left.sum + right.sum
//! empty = SHA-256(""), sum 0
//! root  = SHA-256(0x02 ‖ u64be(count of leaves) ‖ i128be(top.sum) ‖ top.hash)   (the `balances` line)
//! ```
//! The shape is RFC 6962's (split at the largest power of two below n), so
//! an account's proof is an audit path whose entries carry their sums.

use sha2::{Digest, Sha256};

use crate::merkle::{empty_root, fold_inclusion, split_point, Hash, ProofError};

/// One account's leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceLeaf {
    /// The account id.
    pub account: String,
    /// Completed balance, micro-units.
    pub balance: i128,
    /// Lower limit, micro-units.
    pub min: i128,
    /// Upper limit, micro-units.
    pub max: i128,
}

/// A node of the tree: its hash and the sum of the balances under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SumNode {
    /// Hash.
    pub hash: Hash,
    /// Sum of balances below, micro-units.
    pub sum: i128,
}

/// Why a balances tree or proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceError {
    /// Sums beyond 128 bits.
    #[error("the balances overflow")]
    Overflow,
    /// Two leaves for one account.
    #[error("account {0} appears twice")]
    Duplicate(String),
    /// The root's sum is not zero.
    #[error("the balances sum to {sum} micro-units, not zero")]
    NotZeroSum {
        /// The sum.
        sum: i128,
    },
    /// The path does not fit or does not lead to the root.
    #[error("balance proof: {0}")]
    Proof(#[from] ProofError),
    /// The account is not in the tree.
    #[error("account {0} is not in the balances tree")]
    NoSuchAccount(String),
}

impl BalanceLeaf {
    /// The leaf node.
    pub fn node(&self) -> SumNode {
        let mut h = Sha256::new();
        h.update([0x00]);
        let len = u32::try_from(self.account.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(self.account.as_bytes());
        h.update(self.balance.to_be_bytes());
        h.update(self.min.to_be_bytes());
        h.update(self.max.to_be_bytes());
        SumNode { hash: h.finalize().into(), sum: self.balance }
    }
}

/// The parent of two nodes.
pub fn parent(left: &SumNode, right: &SumNode) -> Result<SumNode, BalanceError> {
    let sum = left.sum.checked_add(right.sum).ok_or(BalanceError::Overflow)?;
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.hash);
    h.update(left.sum.to_be_bytes());
    h.update(right.hash);
    h.update(right.sum.to_be_bytes());
    Ok(SumNode { hash: h.finalize().into(), sum })
}

/// The committed root: the top node with the number of leaves and the total,
/// so a proof cannot claim another count (which would place its leaf elsewhere).
pub fn commitment(count: u64, top: &SumNode) -> Hash {
    let mut h = Sha256::new();
    h.update([0x02]);
    h.update(count.to_be_bytes());
    h.update(top.sum.to_be_bytes());
    h.update(top.hash);
    h.finalize().into()
}

/// A balances tree built from every account's leaf.
///
/// Every complete, aligned subtree is kept (`levels[h][i]` covers leaves
/// `i·2^h .. (i+1)·2^h`), so a proof costs O(log² n) hashes at most, not a
/// rehash of the whole tree: about twice the leaves' nodes in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceTree {
    leaves: Vec<BalanceLeaf>,
    levels: Vec<Vec<SumNode>>,
}

/// An account's proof in a balances tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceProof {
    /// The account's position (accounts in byte order of their ids).
    pub index: u64,
    /// Accounts in the tree.
    pub count: u64,
    /// The account's leaf.
    pub leaf: BalanceLeaf,
    /// Sibling nodes, nearest first.
    pub path: Vec<SumNode>,
}

impl BalanceTree {
    /// Builds the tree (sorting the leaves); sums are checked, not required to be zero.
    pub fn build(mut leaves: Vec<BalanceLeaf>) -> Result<BalanceTree, BalanceError> {
        leaves.sort_by(|a, b| a.account.as_bytes().cmp(b.account.as_bytes()));
        if let Some(w) = leaves.windows(2).find(|w| w[0].account == w[1].account) {
            return Err(BalanceError::Duplicate(w[0].account.clone()));
        }
        let mut levels: Vec<Vec<SumNode>> = vec![leaves.iter().map(BalanceLeaf::node).collect()];
        while let Some(below) = levels.last().filter(|l| l.len() >= 2) {
            let level = below.chunks_exact(2).map(|pair| parent(&pair[0], &pair[1])).collect::<Result<Vec<_>, _>>()?;
            levels.push(level);
        }
        let tree = BalanceTree { leaves, levels };
        tree.root()?;
        Ok(tree)
    }

    fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Leaves in order.
    pub fn leaves(&self) -> &[BalanceLeaf] {
        &self.leaves
    }

    fn range(&self, start: usize, end: usize) -> Result<SumNode, BalanceError> {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            // A complete, aligned subtree: kept since the build.
            let height = n.trailing_zeros() as usize;
            return Ok(self.levels[height][start >> height]);
        }
        let k = usize::try_from(split_point((end - start) as u64)).expect("below a usize");
        parent(&self.range(start, start + k)?, &self.range(start + k, end)?)
    }

    /// The committed root hash (what a checkpoint's `balances` line holds).
    pub fn commitment(&self) -> Result<Hash, BalanceError> {
        Ok(commitment(self.len() as u64, &self.root()?))
    }

    /// The top node (hash and total).
    pub fn root(&self) -> Result<SumNode, BalanceError> {
        if self.leaves.is_empty() {
            return Ok(SumNode { hash: empty_root(), sum: 0 });
        }
        self.range(0, self.len())
    }

    /// The proof of one account.
    pub fn proof(&self, account: &str) -> Result<BalanceProof, BalanceError> {
        let index = self
            .leaves
            .binary_search_by(|l| l.account.as_bytes().cmp(account.as_bytes()))
            .map_err(|_| BalanceError::NoSuchAccount(account.to_owned()))?;
        let mut path = Vec::new();
        self.path(index, 0, self.len(), &mut path)?;
        Ok(BalanceProof { index: index as u64, count: self.len() as u64, leaf: self.leaves[index].clone(), path })
    }

    fn path(&self, m: usize, start: usize, end: usize, out: &mut Vec<SumNode>) -> Result<(), BalanceError> {
        let n = end - start;
        if n == 1 {
            return Ok(());
        }
        let k = usize::try_from(split_point(n as u64)).expect("below a usize");
        if m < k {
            self.path(m, start, start + k, out)?;
            out.push(self.range(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, out)?;
            out.push(self.range(start, start + k)?);
        }
        Ok(())
    }
}

impl BalanceProof {
    /// The top node this proof leads to.
    pub fn root(&self) -> Result<SumNode, BalanceError> {
        fold_inclusion(self.index, self.count, self.leaf.node(), &self.path, parent)?.map_err(BalanceError::Proof)
    }

    /// Verifies the proof against a balances root (a checkpoint's `balances`
    /// line): the path and count must lead to it, and the total must be zero.
    pub fn verify(&self, root_hash: &Hash) -> Result<(), BalanceError> {
        let root = self.root()?;
        let committed = commitment(self.count, &root);
        if &committed != root_hash {
            return Err(BalanceError::Proof(ProofError::RootMismatch {
                computed: crate::b64(&committed),
                expected: crate::b64(root_hash),
            }));
        }
        if root.sum != 0 {
            return Err(BalanceError::NotZeroSum { sum: root.sum });
        }
        Ok(())
    }
}
