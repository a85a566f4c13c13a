//! Listings: filters, sorting, paging.

use ledger::*;
use projections::{Query, Sort};

use crate::{acc, amt, proposal, tx_id, Node};

/// Five transactions at increasing times:
/// 1 alice→bob 5 payment "Apples", 2 carol→bob 1 bill (pending) "pears",
/// 3 bob→alice 3 payment "APPLE pie", 4 alice→carol 2 credit (validated),
/// 5 alice→bob 5 payment "bread" (same quant as 1).
fn market() -> Node {
    let mut node = Node::twig();
    for (author, payer, payee, quant, workflow, uuid, description) in [
        ("alice", "alice", "bob", "5", "payment", 1, "Apples"),
        ("bob", "carol", "bob", "1", "bill", 2, "pears"),
        ("bob", "bob", "alice", "3", "payment", 3, "APPLE pie"),
        ("alice", "alice", "carol", "2", "credit", 4, "loan"),
        ("alice", "alice", "bob", "5", "payment", 5, "bread"),
    ] {
        node.now_unix_s += 10;
        node.ok(proposal(author, payer, payee, quant, workflow, uuid, description));
    }
    node
}

fn uuids(node: &Node, query: &Query) -> (Vec<u128>, usize) {
    let page = node.proj.transactions(query);
    (page.items.iter().map(|t| t.uuid.0.as_u128()).collect(), page.total)
}

#[test]
fn no_filter_lists_everything_by_written_time() {
    let node = market();
    assert_eq!(uuids(&node, &Query::default()), (vec![1, 2, 3, 4, 5], 5));
    assert_eq!(uuids(&node, &Query { descending: true, ..Query::default() }), (vec![5, 4, 3, 2, 1], 5));
}

#[test]
fn entry_level_filters() {
    let node = market();
    let q = |f: fn(&mut Query)| {
        let mut query = Query::default();
        f(&mut query);
        uuids(&node, &query).0
    };
    assert_eq!(q(|q| q.payer = Some(acc("alice"))), [1, 4, 5]);
    assert_eq!(q(|q| q.payee = Some(acc("bob"))), [1, 2, 5]);
    assert_eq!(q(|q| q.involving = Some(acc("carol"))), [2, 4]);
    assert_eq!(q(|q| q.involving = Some(acc("nobody"))), Vec::<u128>::new());
    assert_eq!(q(|q| q.description = Some("apple".into())), [1, 3]);
    assert_eq!(q(|q| q.description = Some("PIE".into())), [3]);
    // payer and payee must hold on the same entry.
    assert_eq!(q(|q| (q.payer, q.payee) = (Some(acc("bob")), Some(acc("alice")))), [3]);
    assert_eq!(q(|q| (q.payer, q.payee) = (Some(acc("carol")), Some(acc("alice")))), Vec::<u128>::new());
}

#[test]
fn transaction_level_filters() {
    let node = market();
    let q = |f: fn(&mut Query)| {
        let mut query = Query::default();
        f(&mut query);
        uuids(&node, &query).0
    };
    assert_eq!(q(|q| q.author = Some(acc("bob"))), [2, 3]);
    assert_eq!(q(|q| q.states = vec![State::Pending, State::Validated]), [2, 4]);
    assert_eq!(q(|q| q.workflows = vec!["payment".into()]), [1, 3, 5]);
    assert_eq!(q(|q| q.workflows = vec!["bill".into(), "credit".into()]), [2, 4]);
    // Written at 1010, 1020, …, 1050; bounds inclusive.
    assert_eq!(q(|q| q.since_unix_s = Some(1_030)), [3, 4, 5]);
    assert_eq!(q(|q| q.until_unix_s = Some(1_020)), [1, 2]);
    assert_eq!(q(|q| (q.since_unix_s, q.until_unix_s) = (Some(1_020), Some(1_030))), [2, 3]);
    assert_eq!(q(|q| (q.states, q.payer) = (vec![State::Completed], Some(acc("alice")))), [1, 5]);
}

#[test]
fn sorting_breaks_ties_by_uuid_and_paging_counts_all() {
    let mut node = market();
    node.transition(2, State::Completed, "carol");
    let by_quant = Query { sort: Sort::Quant, ..Query::default() };
    assert_eq!(uuids(&node, &by_quant).0, [2, 4, 3, 1, 5]);
    assert_eq!(uuids(&node, &Query { descending: true, ..by_quant.clone() }).0, [5, 1, 3, 4, 2]);
    // Versions: 1,2(now 2),1,0,1.
    assert_eq!(uuids(&node, &Query { sort: Sort::Version, ..Query::default() }).0, [4, 1, 3, 5, 2]);
    let page = Query { offset: 1, limit: 2, ..by_quant.clone() };
    assert_eq!(uuids(&node, &page), (vec![4, 3], 5));
    let past_end = Query { offset: 9, limit: 2, ..by_quant };
    assert_eq!(uuids(&node, &past_end), (vec![], 5));
}

#[test]
fn entries_listing_matches_entries_and_carries_the_transaction() {
    let node = market();
    let query =
        Query { involving: Some(acc("bob")), sort: Sort::Quant, descending: true, limit: 3, ..Query::default() };
    let page = node.proj.entries(&query);
    assert_eq!(page.total, 4);
    let rows: Vec<(u128, usize, Amount)> =
        page.items.iter().map(|r| (r.transaction.uuid.0.as_u128(), r.index, r.entry.quant)).collect();
    assert_eq!(rows, [(5, 0, amt("5")), (1, 0, amt("5")), (3, 0, amt("3"))]);
    assert!(page.items.iter().all(|r| std::ptr::eq(r.entry, &r.transaction.entries[r.index])));
    let none = Query { payer: Some(acc("carol")), payee: Some(acc("alice")), ..Query::default() };
    assert_eq!(node.proj.entries(&none).total, 0);
    assert_eq!(node.proj.transaction(&tx_id(3)).map(|t| t.author.as_str()), Some("bob"));
}
