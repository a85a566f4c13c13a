//! RFC 6962 / RFC 9162 Merkle trees: hashing, an append-only tree that keeps
//! every complete subtree so that roots and proofs of any earlier size cost
//! O(log n), and the verifiers of inclusion and consistency proofs.
//!
//! Hashing (RFC 6962 §2.1): the empty tree is `SHA-256()`, a leaf is
//! `SHA-256(0x00 ‖ data)`, an interior node `SHA-256(0x01 ‖ left ‖ right)`;
//! a tree of n > 1 leaves splits at the largest power of two below n.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (n ≥ 2).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexBeyondSize {
        /// The index.
        index: u64,
        /// The size.
        size: u64,
    },
    /// A size larger than the tree holds.
    #[error("tree size {size} is larger than the {len} leaves held")]
    SizeBeyondTree {
        /// Asked.
        size: u64,
        /// Held.
        len: u64,
    },
    /// The first size of a consistency proof is larger than the second.
    #[error("consistency from size {first} to the smaller size {second}")]
    SizesOutOfOrder {
        /// First size.
        first: u64,
        /// Second size.
        second: u64,
    },
    /// A consistency proof from the empty tree (it proves nothing).
    #[error("a consistency proof from the empty tree is meaningless")]
    FromEmptyTree,
    /// The proof has more or fewer hashes than its sizes need.
    #[error("the proof has the wrong number of hashes ({len})")]
    WrongLength {
        /// How many it has.
        len: usize,
    },
    /// Equal sizes with different roots, or a non-empty proof.
    #[error("equal tree sizes need equal roots and an empty proof")]
    EqualSizes,
    /// The root the proof leads to is not the expected one.
    #[error("the proof leads to root {computed}, not {expected}")]
    RootMismatch {
        /// Base64 of the computed root.
        computed: String,
        /// Base64 of the expected root.
        expected: String,
    },
    /// The proof does not lead to the first (older) root.
    #[error("the proof does not lead to the older root")]
    FirstRootMismatch,
}

/// An append-only RFC 6962 tree that keeps the hash of every complete,
/// aligned subtree: `levels[h][i]` covers leaves `[i·2^h, (i+1)·2^h)`.
/// Appending is amortised O(1), worst case O(log n); the root and proofs of
/// any size up to the current one are O(log n) hash look-ups and at most
/// O(log n) hash computations. Memory: about 64 bytes per leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Leaves held.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Whether no leaf is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf given its data.
    pub fn push_data(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    /// Appends a leaf given its leaf hash (`leaf_hash(data)`).
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        let mut carry = hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(carry);
            if row.len() % 2 == 1 {
                break;
            }
            let right = row[row.len() - 1];
            let left = row[row.len() - 2];
            carry = node_hash(&left, &right);
            level += 1;
        }
    }

    /// Forgets every leaf from `size` on (used when a predicted batch never
    /// became durable). A no-op when `size >= len`.
    pub fn truncate(&mut self, size: u64) {
        for (h, row) in self.levels.iter_mut().enumerate() {
            let keep = usize::try_from(size >> h).unwrap_or(usize::MAX);
            row.truncate(keep);
        }
        while self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }

    /// The leaf hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first().and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i).copied()))
    }

    /// The hash of leaves `[start, end)`, 0 ≤ start < end ≤ len, as RFC 6962
    /// defines the tree of exactly those leaves.
    fn range(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            let i = usize::try_from(start >> h).expect("index of a held subtree fits usize");
            return self.levels[h][i];
        }
        let k = split_point(n);
        node_hash(&self.range(start, start + k), &self.range(start + k, end))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.len() {
            return Err(ProofError::SizeBeyondTree { size, len: self.len() });
        }
        Ok(())
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 { empty_root() } else { self.range(0, size) })
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.root_at(self.len()).expect("the current size is held")
    }

    /// The audit path of leaf `index` in the tree of size `size`
    /// (RFC 9162 §2.1.3.1), nearest sibling first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexBeyondSize { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n == 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.range(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.range(start, start + k));
        }
    }

    /// The consistency proof from size `first` to size `second`
    /// (RFC 9162 §2.1.4.1). Empty when `first` is 0 or equals `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(second)?;
        if first > second {
            return Err(ProofError::SizesOutOfOrder { first, second });
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.range(start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.range(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.range(start, start + k));
        }
    }
}

/// Folds an audit path the way RFC 9162 §2.1.3.2 verifies it, over any node
/// type: `combine(left, right)` makes a parent. Returns the root the path
/// leads to, or `WrongLength` when the path does not fit the index and size.
pub(crate) fn fold_inclusion<T: Clone, E>(
    index: u64,
    size: u64,
    leaf: T,
    proof: &[T],
    mut combine: impl FnMut(&T, &T) -> Result<T, E>,
) -> Result<Result<T, ProofError>, E> {
    if index >= size {
        return Ok(Err(ProofError::IndexBeyondSize { index, size }));
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = leaf;
    for p in proof {
        if s == 0 {
            return Ok(Err(ProofError::WrongLength { len: proof.len() }));
        }
        if f & 1 == 1 || f == s {
            r = combine(p, &r)?;
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = combine(&r, p)?;
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Ok(Err(ProofError::WrongLength { len: proof.len() }));
    }
    Ok(Ok(r))
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Result<Hash, ProofError> {
    let folded: Result<_, std::convert::Infallible> =
        fold_inclusion(index, size, *leaf, proof, |l, r| Ok(node_hash(l, r)));
    match folded {
        Ok(result) => result,
        Err(never) => match never {},
    }
}

/// Verifies that `leaf` (a leaf hash) is leaf `index` of the tree of size
/// `size` whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    let computed = root_from_inclusion(index, size, leaf, proof)?;
    matches(&computed, root)
}

fn matches(computed: &Hash, expected: &Hash) -> Result<(), ProofError> {
    if computed == expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch { computed: crate::b64(computed), expected: crate::b64(expected) })
    }
}

/// Verifies that the tree of size `first` with root `first_root` is a prefix
/// of the tree of size `second` with root `second_root` (RFC 9162 §2.1.4.2).
/// A proof from size 0 is refused as meaningless (every tree extends the
/// empty one; a caller that accepts that says so itself).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root { Ok(()) } else { Err(ProofError::EqualSizes) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { len: 0 });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let mut f = first - 1;
    let mut s = second - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength { len: proof.len() });
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength { len: proof.len() });
    }
    if &fr != first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    matches(&sr, second_root)
}

/// The right edge of an RFC 6962 tree: the roots of its perfect subtrees,
/// largest first. Enough to append and to compute the current root in
/// O(log n) memory (an auditor following a journal keeps only this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash) of each perfect subtree, left to right.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Leaves appended.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether no leaf was appended.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends a leaf hash.
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        let mut carry = (0u32, hash);
        while let Some(&(height, left)) = self.peaks.last() {
            if height != carry.0 {
                break;
            }
            self.peaks.pop();
            carry = (height + 1, node_hash(&left, &carry.1));
        }
        self.peaks.push(carry);
        self.size += 1;
    }

    /// The root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut root)) = peaks.next() else { return empty_root() };
        for (_, left) in peaks {
            root = node_hash(left, &root);
        }
        root
    }
}
