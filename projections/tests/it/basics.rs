//! Folding: balances, stats, timelines, historical queries.

use ledger::*;
use projections::{Balances, FindingKind, Projections, TimelinePoint, TradeStats};

use crate::{acc, amt, tx_id, Node};

fn bal(completed: &str, pending: &str) -> Option<Balances> {
    Some(Balances { completed: amt(completed), pending: amt(pending) })
}

#[test]
fn payment_moves_completed_and_pending_balances_and_timeline() {
    let mut node = Node::twig();
    let opened = node.proj.seq();
    node.propose("alice", "alice", "bob", "2.5", "payment", 1);
    let p = &node.proj;
    assert_eq!(p.balances(&acc("alice")), bal("-2.5", "-2.5"));
    assert_eq!(p.balances(&acc("bob")), bal("2.5", "2.5"));
    assert_eq!(p.balances(&acc("carol")), bal("0", "0"));
    assert_eq!(p.balances(&acc("nobody")), None);
    let tx = p.transaction(&tx_id(1)).expect("stored");
    assert_eq!((tx.state, tx.version), (State::Completed, 1));
    // The payment's record, after the definition of `payment` (event format 2).
    let (seq, at_us, _) = *node.events.last().expect("event");
    assert_eq!(seq, opened + 2);
    assert_eq!(p.timeline(&acc("alice")), Some(vec![TimelinePoint { seq, at_us, balance: amt("-2.5") }]));
    assert_eq!(p.timeline(&acc("carol")), Some(vec![]));
    p.assert_invariants();
}

#[test]
fn bill_counts_pending_then_completed_and_erase_of_completed_credit_undoes_it() {
    let mut node = Node::twig();
    node.propose("bob", "alice", "bob", "10", "bill", 1);
    assert_eq!(node.proj.balances(&acc("alice")), bal("0", "-10"));
    assert!(node.proj.timeline(&acc("alice")).expect("open").is_empty(), "pending does not move completed");
    let s = node.proj.stats(&acc("alice")).expect("open").clone();
    assert_eq!(s.completed, TradeStats::default());
    let expected = TradeStats {
        balance: amt("-10"),
        trades: 1,
        entries: 1,
        gross_in: amt("0").into(),
        gross_out: amt("10").into(),
        partners: 1,
        volume: amt("10").into(),
    };
    assert_eq!(s.pending, expected);
    node.transition(1, State::Completed, "alice");
    assert_eq!(node.proj.balances(&acc("alice")), bal("-10", "-10"));
    let s = node.proj.stats(&acc("alice")).expect("open").clone();
    assert_eq!((s.completed.clone(), s.pending), (expected.clone(), expected));
    assert_eq!(node.proj.transaction(&tx_id(1)).map(|t| (t.state, t.version)), Some((State::Completed, 2)));

    // credit: |P-PC+PE-CE0 — validated, confirmed by the author, signed by the payee, erased by an admin.
    node.propose("alice", "alice", "carol", "4", "credit", 2);
    assert_eq!(node.proj.transaction(&tx_id(2)).map(|t| t.state), Some(State::Validated));
    assert_eq!(node.proj.balances(&acc("carol")), bal("0", "0"), "validated counts nowhere");
    node.transition(2, State::Pending, "alice");
    node.transition(2, State::Completed, "carol");
    let s = node.proj.stats(&acc("alice")).expect("open").clone();
    assert_eq!((s.completed.trades, s.completed.partners, s.completed.gross_out), (2, 2, amt("14").into()));
    node.transition(2, State::Erased, "admin");
    let s = node.proj.stats(&acc("alice")).expect("open").clone();
    assert_eq!((s.completed.trades, s.completed.partners, s.completed.volume), (1, 1, amt("10").into()));
    assert_eq!(node.proj.stats(&acc("carol")).expect("open").pending, TradeStats::default());
    assert_eq!(node.proj.balances(&acc("alice")), bal("-10", "-10"));
    node.proj.assert_invariants();
}

#[test]
fn partners_count_distinct_counterparties_and_drop_when_the_last_trade_goes() {
    let mut node = Node::twig();
    node.propose("alice", "alice", "bob", "1", "payment", 1);
    node.propose("alice", "alice", "bob", "1", "payment", 2);
    node.propose("bob", "carol", "bob", "3", "bill", 3);
    let bob = node.proj.stats(&acc("bob")).expect("open").clone();
    assert_eq!((bob.completed.partners, bob.completed.trades, bob.completed.entries), (1, 2, 2));
    assert_eq!((bob.pending.partners, bob.pending.trades, bob.pending.gross_in), (2, 3, amt("5").into()));
    node.transition(3, State::Erased, "carol");
    let bob = node.proj.stats(&acc("bob")).expect("open").clone();
    assert_eq!((bob.pending.partners, bob.pending.trades), (1, 2));
}

#[test]
fn expiry_times_out_a_validated_transaction_and_bumps_its_version() {
    let mut node = Node::twig();
    node.propose("alice", "alice", "bob", "1", "credit", 7);
    node.now_unix_s += 301;
    node.ok(Command::Expire { uuid: tx_id(7) });
    let tx = node.proj.transaction(&tx_id(7)).expect("stored");
    assert_eq!((tx.state, tx.version), (State::TimedOut, 1));
    assert_eq!(node.proj.balances(&acc("bob")), bal("0", "0"));
}

#[test]
fn account_events_update_configuration_and_config_is_kept() {
    let mut node = Node::twig();
    assert_eq!(node.proj.config().map(|c| c.name.as_str()), Some("twig"));
    node.ok(Command::ChangeLimits { id: acc("bob"), min: amt("-5"), max: amt("7") });
    node.ok(Command::ChangeStatus { id: acc("bob"), status: AccountStatus::Blocked });
    let key_hash = KeyHash { salt: [1; 16], hash: [2; 32] };
    node.ok(Command::ChangeKey { id: acc("bob"), key_hash: key_hash.clone() });
    let bob = node.proj.account(&acc("bob")).expect("open");
    assert_eq!((bob.limits.min(), bob.limits.max(), bob.status), (amt("-5"), amt("7"), AccountStatus::Blocked));
    assert_eq!(node.proj.key_hash(&acc("bob")), Some(&key_hash));
    let ids: Vec<&str> = node.proj.accounts().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["admin", "alice", "bob", "branch", "carol"]);
    let peer = Peer { account: acc("branch"), url: "http://b".into(), rate: Rate::ONE, initial_hash: "h".into() };
    node.ok(Command::ConnectPeer { peer: peer.clone() });
    assert_eq!(node.proj.peer(&acc("branch")), Some(&peer));
}

#[test]
fn historical_balances_by_seq_and_time() {
    let mut node = Node::twig();
    let before = node.proj.seq();
    node.propose("alice", "alice", "bob", "1", "payment", 1);
    node.now_unix_s += 10;
    node.propose("alice", "alice", "bob", "2", "payment", 2);
    node.propose("bob", "bob", "carol", "5", "payment", 3);
    let (alice, bob) = (acc("alice"), acc("bob"));
    let p = &node.proj;
    // The i-th payment's record (the first comes after `payment`'s definition).
    let proposals: Vec<(u64, u64)> = node.events[usize::try_from(before).expect("small")..]
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::TransactionProposedRef { .. }))
        .map(|&(seq, at, _)| (seq, at))
        .collect();
    let seq_of = |i: usize| proposals[i].0;
    let at_of = |i: usize| proposals[i].1;
    assert_eq!(p.balance_at_seq(&alice, before), Some(amt("0")));
    assert_eq!(p.balance_at_seq(&alice, seq_of(0)), Some(amt("-1")));
    assert_eq!(p.balance_at_seq(&alice, seq_of(1)), Some(amt("-3")));
    assert_eq!(p.balance_at_seq(&bob, seq_of(1)), Some(amt("3")));
    assert_eq!(p.balance_at_seq(&bob, seq_of(2)), Some(amt("-2")));
    assert_eq!(p.balance_at_seq(&bob, u64::MAX), Some(amt("-2")));
    assert_eq!(p.balance_at_time(&bob, at_of(0)), Some(amt("1")));
    assert_eq!(p.balance_at_time(&bob, at_of(1) - 1), Some(amt("1")));
    assert_eq!(p.balance_at_time(&bob, at_of(2)), Some(amt("-2")));
    assert_eq!(p.balance_at_seq(&acc("nobody"), 5), None);
    // bob was opened at seq 3 (after the node and alice): unknown before.
    assert_eq!(p.opened_seq(&bob), Some(3));
    assert_eq!(p.balance_at_seq(&bob, 2), None);
    assert_eq!(p.balance_at_time(&bob, 0), None);
    let all = p.balances_at_seq(seq_of(1));
    assert_eq!(all.get(&alice), Some(&amt("-3")));
    assert_eq!(all.len(), 5);
    assert_eq!(p.balances_at_seq(2).keys().map(AccountId::as_str).collect::<Vec<_>>(), ["alice"]);
}

#[test]
fn record_times_are_made_monotonic() {
    let mut p = Projections::new();
    let config = NodeConfig::new(NodeName::new("n").expect("name"));
    p.apply(1, 500, &Event::NodeInitialised { config });
    let account = Account {
        id: acc("a"),
        kind: AccountKind::User { admin: false },
        limits: crate::limits(-1, 1),
        status: AccountStatus::Active,
    };
    p.apply(3, 200, &Event::AccountOpened { account });
    assert_eq!((p.seq(), p.last_at_us()), (3, 500));
    assert_eq!(p.balance_at_time(&acc("a"), 499), None);
    assert_eq!(p.balance_at_time(&acc("a"), 500), Some(Amount::ZERO));
}

#[test]
fn seq_going_backwards_is_refused_and_changes_nothing() {
    let mut node = Node::twig();
    let config = node.proj.config().expect("initialised").clone();
    let seq = node.proj.seq();
    let found = node.proj.try_apply(seq, 0, &Event::NodeConfigured { config }).expect_err("a stale seq");
    assert_eq!(found.seq, seq);
    assert_eq!(found.kind, FindingKind::SeqNotIncreasing { last: seq });
    assert_eq!(node.proj.seq(), seq, "nothing folded");
}

#[test]
fn transition_of_an_unknown_transaction_is_refused_and_changes_nothing() {
    let mut node = Node::twig();
    let event = Event::TransactionTransitioned {
        uuid: tx_id(42),
        from: State::Pending,
        to: State::Completed,
        actor: acc("alice"),
        version: 2,
        at_unix_s: 0,
    };
    let before = node.proj.seq();
    let found = node.proj.try_apply(before + 1, 0, &event).expect_err("an unknown transaction");
    assert_eq!(found.seq, before + 1);
    assert_eq!(found.kind, FindingKind::UnknownTransaction { uuid: tx_id(42).to_string() });
    assert_eq!(node.proj.seq(), before, "nothing folded");
    assert!(node.proj.transaction(&tx_id(42)).is_none());
}
