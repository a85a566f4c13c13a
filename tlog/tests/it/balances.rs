use proptest::prelude::*;
use tlog::balances::*;

fn leaf(account: &str, balance: i128) -> BalanceLeaf {
    BalanceLeaf { account: account.into(), balance, min: -100_000_000, max: 100_000_000 }
}

#[test]
fn every_account_proves_its_balance_and_the_zero_sum() {
    for n in 1..=17usize {
        let mut leaves: Vec<BalanceLeaf> =
            (0..n).map(|i| leaf(&format!("acc{i:02}"), (i as i128) * 1_000_000)).collect();
        let total: i128 = leaves.iter().map(|l| l.balance).sum();
        leaves[0].balance -= total;
        let tree = BalanceTree::build(leaves.clone()).expect("tree");
        assert_eq!(tree.root().expect("root").sum, 0);
        let root = tree.commitment().expect("root");
        for l in &leaves {
            let proof = tree.proof(&l.account).expect("proof");
            assert_eq!(proof.leaf, *l);
            proof.verify(&root).expect("verifies");
            // A different balance, limit, account, sibling hash or sum, index or count fails.
            let mut bad = proof.clone();
            bad.leaf.balance += 1;
            assert!(bad.verify(&root).is_err());
            let mut bad = proof.clone();
            bad.leaf.max -= 1;
            assert!(bad.verify(&root).is_err());
            let mut bad = proof.clone();
            bad.leaf.account.push('x');
            assert!(bad.verify(&root).is_err());
            for i in 0..proof.path.len() {
                let mut bad = proof.clone();
                bad.path[i].sum += 1;
                assert!(bad.verify(&root).is_err());
                let mut bad = proof.clone();
                bad.path[i].hash[5] ^= 4;
                assert!(bad.verify(&root).is_err());
            }
            // Another count is refused (the root commits to it), and so is another index.
            let mut bad = proof.clone();
            bad.count += 1;
            assert!(bad.verify(&root).is_err());
            if n > 1 {
                let mut bad = proof.clone();
                bad.index = (bad.index + 1) % n as u64;
                assert!(bad.verify(&root).is_err());
            }
        }
    }
}

/// A tree whose balances do not sum to zero builds (it is a fact about the
/// data), but no proof from it verifies: the verifier requires the zero sum.
#[test]
fn a_tree_that_does_not_sum_to_zero_is_refused() {
    let tree = BalanceTree::build(vec![leaf("a", 5), leaf("b", -4)]).expect("builds");
    assert_eq!(tree.root().expect("root").sum, 1);
    let root = tree.commitment().expect("root");
    assert_eq!(tree.proof("a").expect("proof").verify(&root), Err(BalanceError::NotZeroSum { sum: 1 }));
    let single = BalanceTree::build(vec![leaf("a", 7)]).expect("builds");
    let r = single.commitment().expect("root");
    assert_eq!(single.proof("a").expect("p").verify(&r), Err(BalanceError::NotZeroSum { sum: 7 }));
}

#[test]
fn duplicates_overflow_and_unknown_accounts() {
    assert!(matches!(BalanceTree::build(vec![leaf("a", 0), leaf("a", 0)]), Err(BalanceError::Duplicate(_))));
    assert_eq!(BalanceTree::build(vec![leaf("a", i128::MAX), leaf("b", 1)]), Err(BalanceError::Overflow));
    let tree = BalanceTree::build(vec![leaf("b", 1), leaf("a", -1)]).expect("tree");
    assert_eq!(tree.leaves()[0].account, "a", "sorted by id");
    assert!(matches!(tree.proof("c"), Err(BalanceError::NoSuchAccount(_))));
    let empty = BalanceTree::build(Vec::new()).expect("empty");
    assert_eq!(empty.root().expect("root"), SumNode { hash: tlog::empty_root(), sum: 0 });
}

/// Pinned bytes: the leaf and node encodings are a format (documented in
/// docs/PROTOCOL.md); a change must be deliberate.
#[test]
fn pinned_balance_hashes() {
    let tree = BalanceTree::build(vec![leaf("alice", -1_500_000), leaf("bob", 1_500_000)]).expect("tree");
    let root = tree.root().expect("root");
    assert_eq!(tlog::b64(&tree.leaves()[0].node().hash), "bVO2nZjlKbp5fIOZxAArlIoqQ2wGCv8y3j6ecTVKEHM=");
    assert_eq!(tlog::b64(&root.hash), "Mt7Nfevj7a07iIisuBjK6QfWts0+F6N3HhaIkDdVWjM=");
    assert_eq!(tlog::b64(&tree.commitment().expect("c")), "aW8sY9n6tKBmnt0kk9AnQXEIVtW337Mv19av1YwVf5w=");
}

proptest! {
    #[test]
    fn random_trees_prove_every_account(balances in proptest::collection::vec(-1_000_000_000i128..1_000_000_000, 1..40)) {
        let mut leaves: Vec<BalanceLeaf> = balances.iter().enumerate().map(|(i, b)| leaf(&format!("a{i}"), *b)).collect();
        let total: i128 = leaves.iter().map(|l| l.balance).sum();
        leaves.push(leaf("zz-balancer", -total));
        let tree = BalanceTree::build(leaves.clone()).expect("tree");
        prop_assert_eq!(tree.root().expect("root").sum, 0);
        let root = tree.commitment().expect("root");
        for l in &leaves {
            prop_assert!(tree.proof(&l.account).expect("proof").verify(&root).is_ok());
        }
    }
}

/// RFC 6962's recursion written out with no cache: the root of leaves
/// `start..end` hashed from the leaves every time.
fn naive_range(nodes: &[SumNode]) -> SumNode {
    if nodes.len() == 1 {
        return nodes[0];
    }
    let k = nodes.len().next_power_of_two() / 2;
    tlog::balances::parent(&naive_range(&nodes[..k]), &naive_range(&nodes[k..])).expect("no overflow")
}

fn naive_path(nodes: &[SumNode], m: usize, out: &mut Vec<SumNode>) {
    if nodes.len() == 1 {
        return;
    }
    let k = nodes.len().next_power_of_two() / 2;
    if m < k {
        naive_path(&nodes[..k], m, out);
        out.push(naive_range(&nodes[k..]));
    } else {
        naive_path(&nodes[k..], m - k, out);
        out.push(naive_range(&nodes[..k]));
    }
}

proptest! {
    /// The tree keeps its complete subtrees to answer proofs in O(log² n);
    /// every root and path must be what hashing from the leaves gives.
    #[test]
    fn kept_subtrees_give_the_same_roots_and_paths_as_rehashing(n in 1usize..300, pick in 0usize..300) {
        let mut leaves: Vec<BalanceLeaf> = (0..n).map(|i| leaf(&format!("m{i:04}"), (i as i128 % 7 - 3) * 1_000)).collect();
        let total: i128 = leaves.iter().map(|l| l.balance).sum();
        leaves[0].balance -= total;
        let tree = BalanceTree::build(leaves).expect("tree");
        let nodes: Vec<SumNode> = tree.leaves().iter().map(BalanceLeaf::node).collect();
        prop_assert_eq!(tree.root().expect("root"), naive_range(&nodes));
        let m = pick % n;
        let proof = tree.proof(&tree.leaves()[m].account).expect("present");
        let mut expected = Vec::new();
        naive_path(&nodes, m, &mut expected);
        prop_assert_eq!(proof.path, expected);
    }
}
