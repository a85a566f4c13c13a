//! Soft limits (issue 12, item 5): deciding a change, and the crossings the
//! writer journals after an event, as pure functions over a ledger state.

use ledger::warn::{crossings, set, watched, WarnLimits};
use ledger::*;

use crate::{acc, amt, ctx, proposal, run, twig, tx_id};

/// Records `events` as the writer does: each followed by its crossings.
fn record(state: &mut LedgerState, events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    for event in events {
        let before = watched(state, &event);
        state.apply(&event);
        out.push(event);
        if let Some((uuid, before)) = before {
            for crossed in crossings(state, uuid, &before) {
                state.apply(&crossed);
                out.push(crossed);
            }
        }
    }
    out
}

fn pay(state: &mut LedgerState, payer: &str, payee: &str, quant: &str, n: u128) -> Vec<Event> {
    let events = decide(state, proposal(payer, payer, payee, quant, "payment", n), &ctx(1)).expect("allowed");
    record(state, events)
}

fn crossed(events: &[Event]) -> Vec<(AccountId, bool, Amount, Amount)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::WarnLimitCrossed { id, below, limit, balance, .. } => Some((id.clone(), *below, *limit, *balance)),
            _ => None,
        })
        .collect()
}

#[test]
fn crossing_a_soft_limit_is_allowed_and_recorded_once_until_the_balance_comes_back() {
    let mut state = twig(|_| {});
    let warn = set(&state, &acc("alice"), WarnLimits { min: Some(amt("-5")), max: None }).expect("allowed");
    state.apply(&warn);
    let warn = set(&state, &acc("bob"), WarnLimits { min: None, max: Some(amt("4")) }).expect("allowed");
    state.apply(&warn);

    // Within: nothing. Beyond: both sides of one payment, each recorded after it.
    assert!(crossed(&pay(&mut state, "alice", "bob", "3", 1)).is_empty());
    let events = pay(&mut state, "alice", "bob", "3", 2);
    assert!(matches!(events[0], Event::TransactionProposedRef { .. }), "the payment first");
    assert_eq!(
        crossed(&events),
        vec![(acc("alice"), true, amt("-5"), amt("-6")), (acc("bob"), false, amt("4"), amt("6"))]
    );
    // Still beyond: no new crossing. Back within, then beyond again: a new one.
    assert!(crossed(&pay(&mut state, "alice", "carol", "1", 3)).is_empty());
    assert!(crossed(&pay(&mut state, "carol", "alice", "4", 4)).is_empty());
    assert_eq!(crossed(&pay(&mut state, "alice", "carol", "3", 5)), vec![(acc("alice"), true, amt("-5"), amt("-6"))]);
    // The hard limit still refuses.
    let refused = decide(&state, proposal("alice", "alice", "carol", "5", "payment", 6), &ctx(1));
    assert!(matches!(refused, Err(Violation::MinLimit { .. })), "{refused:?}");
    // Removing the levels stops the warnings.
    let clear = set(&state, &acc("alice"), WarnLimits::default()).expect("allowed");
    state.apply(&clear);
    assert!(!state.warn_limits().contains_key(&acc("alice")));
    run(&mut state, proposal("carol", "carol", "alice", "5", "payment", 7), 1);
    let events = pay(&mut state, "alice", "carol", "6", 8);
    assert_eq!(state.balances(&acc("alice")).completed, amt("-7"), "beyond the old level");
    assert!(crossed(&events).is_empty());
}

#[test]
fn a_change_of_soft_limits_is_checked() {
    let state = twig(|_| {});
    let class = |id: &str, min: Option<&str>, max: Option<&str>| {
        set(&state, &acc(id), WarnLimits { min: min.map(amt), max: max.map(amt) }).map(|_| ()).map_err(|v| v.class())
    };
    assert_eq!(class("alice", Some("-5"), Some("5")), Ok(()));
    assert_eq!(class("alice", Some("1"), None), Err("InvalidFieldsViolation"));
    assert_eq!(class("alice", None, Some("-1")), Err("InvalidFieldsViolation"));
    assert_eq!(class("nobody", Some("-1"), None), Err("DoesNotExistViolation"));
    assert_eq!(class("branch", Some("-1"), None), Err("InvalidFieldsViolation"), "not on a node account");
    let event = Event::TransactionExpired { uuid: tx_id(1), version: 1, at_unix_s: 1 };
    assert!(watched(&state, &event).is_none(), "no soft limits: nothing watched");
}
