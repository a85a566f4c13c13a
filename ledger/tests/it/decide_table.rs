use ledger::*;

use crate::{acc, amt, ctx, proposal, run, twig, tx_id};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Payer,
    Payee,
    Admin,
    Stranger,
}

fn who_id(w: Who) -> &'static str {
    match w {
        Who::Payer => "alice",
        Who::Payee => "bob",
        Who::Admin => "admin",
        Who::Stranger => "carol",
    }
}

/// Builds a transaction of `workflow` (alice pays bob 1) and drives it to
/// `from` as admin; `None` if `from` is unreachable.
fn reach(workflow: &str, from: State) -> Option<LedgerState> {
    let mut state = twig(|_| {});
    let w = state.config().expect("init").workflows.iter().find(|w| w.id.as_str() == workflow).expect("wf").clone();
    let author = match w.direction {
        Direction::Bill => "bob",
        Direction::Credit => "alice",
        Direction::ThirdParty => "admin",
    };
    run(&mut state, proposal(author, "alice", "bob", "1", workflow, 1), 1);
    let mut path = vec![state.transaction(&tx_id(1)).expect("tx").state];
    if path[0] == State::Validated && from != State::Validated {
        run(&mut state, Command::Transition { uuid: tx_id(1), to: w.creation.state, actor: acc("admin") }, 2);
        path.push(w.creation.state);
    }
    if *path.last().expect("state") == State::Pending
        && from == State::Completed
        && w.rule(State::Pending, State::Completed).is_some()
    {
        run(&mut state, Command::Transition { uuid: tx_id(1), to: State::Completed, actor: acc("admin") }, 3);
        path.push(State::Completed);
    }
    (*path.last().expect("state") == from).then_some(state)
}

/// Every default workflow, every state reachable, every target, every kind
/// of actor: allowed exactly when listed here.
#[test]
fn default_workflow_transitions() {
    use State::*;
    use Who::*;
    let allowed: &[(&str, State, State, &[Who])] = &[
        // The reference's bill (cc-node 0.8.5 workflows.json.example): the
        // payee asks and confirms, the payer signs or the payee erases.
        ("bill", Validated, Pending, &[Payee, Admin]),
        ("bill", Validated, Erased, &[Payee, Admin]),
        ("bill", Pending, Completed, &[Payer, Admin]),
        ("bill", Pending, Erased, &[Payee, Admin]),
        ("bill", Completed, Erased, &[Admin]),
        ("credit", Validated, Pending, &[Payer, Admin]),
        ("credit", Validated, Erased, &[Payer, Admin]),
        ("credit", Pending, Completed, &[Payee, Admin]),
        ("credit", Pending, Erased, &[Payer, Admin]),
        ("credit", Completed, Erased, &[Admin]),
    ];
    let reachable = [
        ("payment", vec![Completed]),
        ("bill", vec![Validated, Pending, Completed]),
        ("credit", vec![Validated, Pending, Completed]),
    ];
    let mut checked = 0;
    for (workflow, froms) in reachable {
        for from in froms {
            for to in State::ALL {
                for who in [Payer, Payee, Admin, Stranger] {
                    let state = reach(workflow, from).unwrap_or_else(|| panic!("{workflow} reaches {from}"));
                    let command = Command::Transition { uuid: tx_id(1), to, actor: acc(who_id(who)) };
                    let result = decide(&state, command, &ctx(10));
                    let row = allowed.iter().find(|(w, f, t, _)| *w == workflow && *f == from && *t == to);
                    match (row, result) {
                        (Some((_, _, _, whos)), Ok(events)) if whos.contains(&who) => assert_eq!(events.len(), 1),
                        (Some(_), Err(v)) => {
                            assert_eq!(v.class(), "PermissionViolation", "{workflow} {from}->{to} {who:?}")
                        }
                        (None, Err(v)) => assert_eq!(v.class(), "WorkflowViolation", "{workflow} {from}->{to} {who:?}"),
                        (row, result) => panic!("{workflow} {from}->{to} by {who:?}: table {row:?}, got {result:?}"),
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 7 * 5 * 4);
}

#[test]
fn creation_permissions() {
    let state = twig(|_| {});
    let refused = |author, workflow| {
        decide(&state, proposal(author, "alice", "bob", "1", workflow, 9), &ctx(1)).map_err(|v| v.class())
    };
    // The reference's class for a transaction created by the wrong party.
    assert!(refused("alice", "payment").is_ok());
    assert_eq!(refused("bob", "payment"), Err("WorkflowViolation"));
    assert!(refused("bob", "bill").is_ok());
    assert_eq!(refused("alice", "bill"), Err("WorkflowViolation"));
    assert_eq!(refused("carol", "credit"), Err("WorkflowViolation"));
    assert!(refused("admin", "credit").is_ok());
    assert_eq!(refused("alice", "_C0CE-PE0CX-"), Err("WorkflowViolation"));
    assert_eq!(refused("alice", "3rdparty"), Err("WorkflowViolation"));
    assert!(refused("admin", "3rdparty").is_ok());
    assert_eq!(refused("admin", "nosuch"), Err("DoesNotExistViolation"));
    assert_eq!(refused("alice", "disabled"), Err("DeprecatedWorkflowViolation"));
    assert!(refused("admin", "_C0CE-PE0CX-").is_ok());
}

#[test]
fn limits_carry_fields() {
    let mut state = twig(|_| {});
    run(&mut state, proposal("alice", "alice", "bob", "9.999999", "payment", 1), 1);
    let v =
        decide(&state, proposal("alice", "alice", "carol", "0.000002", "payment", 2), &ctx(1)).expect_err("below min");
    assert_eq!(v, Violation::MinLimit { limit: amt("-10"), projected: amt("-10.000001"), acc_id: "alice".to_owned() });
    assert_eq!(v.class(), "MinLimitViolation");
    assert_eq!(v.fields()[2], ("accId", FieldValue::Text("alice".to_owned())));
    run(&mut state, proposal("alice", "alice", "carol", "0.000001", "payment", 3), 1);
    assert_eq!(state.balances(&acc("alice")).completed, amt("-10"));
    let v =
        decide(&state, proposal("carol", "carol", "bob", "0.000002", "payment", 4), &ctx(1)).expect_err("above max");
    assert_eq!(v, Violation::MaxLimit { limit: amt("10"), projected: amt("10.000001"), acc_id: "bob".to_owned() });
}

#[test]
fn pending_counts_only_when_validate_pending() {
    for (validate_pending, refused) in [(true, true), (false, false)] {
        let mut state = twig(|c| c.validate_pending = validate_pending);
        run(&mut state, proposal("bob", "alice", "bob", "8", "bill", 1), 1);
        run(&mut state, Command::Transition { uuid: tx_id(1), to: State::Pending, actor: acc("bob") }, 1);
        assert_eq!(state.balances(&acc("alice")), Balances { completed: amt("0"), pending: amt("-8") });
        let result = decide(&state, proposal("alice", "alice", "carol", "3", "payment", 2), &ctx(1));
        assert_eq!(result.is_err(), refused, "validate_pending={validate_pending}: {result:?}");
        if let Err(v) = result {
            assert_eq!(v, Violation::MinLimit { limit: amt("-10"), projected: amt("-11"), acc_id: "alice".to_owned() });
        }
    }
}

#[test]
fn zero_payments_follow_config() {
    let state = twig(|_| {});
    let v = decide(&state, proposal("alice", "alice", "bob", "0", "payment", 1), &ctx(1)).expect_err("zero");
    assert_eq!(v.class(), "InvalidFieldsViolation");
    let state = twig(|c| c.zero_payments_allowed = true);
    assert!(decide(&state, proposal("alice", "alice", "bob", "0", "payment", 1), &ctx(1)).is_ok());
}

#[test]
fn refusals_by_class() {
    let mut state = twig(|_| {});
    run(&mut state, proposal("alice", "alice", "bob", "1", "payment", 1), 1);
    let class = |state: &LedgerState, c: Command| decide(state, c, &ctx(1)).map(|_| ()).map_err(|v| v.class());
    assert_eq!(class(&state, proposal("alice", "alice", "alice", "1", "payment", 2)), Err("SameAccountViolation"));
    assert_eq!(class(&state, proposal("alice", "alice", "twig/nobody", "1", "payment", 2)), Err("PathViolation"));
    assert_eq!(class(&state, proposal("alice", "alice", "leaf1/", "1", "payment", 2)), Err("PathViolation"));
    assert_eq!(class(&state, proposal("alice", "alice", "bob", "1", "nope", 2)), Err("DoesNotExistViolation"));
    assert_eq!(class(&state, proposal("alice", "alice", "bob", "1", "payment", 1)), Err("DuplicateUuidViolation"));
    assert_eq!(class(&state, proposal("zed", "alice", "bob", "1", "payment", 2)), Err("DoesNotExistViolation"));
    assert_eq!(class(&state, proposal("alice", "alice", "bob", "-1", "payment", 2)), Err("InvalidFieldsViolation"));
    assert_eq!(
        class(&state, Command::Transition { uuid: tx_id(7), to: State::Erased, actor: acc("admin") }),
        Err("DoesNotExistViolation")
    );
    assert_eq!(
        class(&state, Command::ChangeLimits { id: acc("alice"), min: amt("1"), max: amt("2") }),
        Err("InvalidFieldsViolation")
    );
    let open =
        Command::OpenAccount { id: acc("branch2"), kind: AccountKind::Trunkward, limits: crate::limits("0", "0") };
    assert_eq!(class(&state, open), Err("InvalidFieldsViolation"));
    run(&mut state, Command::ChangeStatus { id: acc("alice"), status: AccountStatus::Blocked }, 1);
    assert_eq!(class(&state, proposal("alice", "alice", "bob", "1", "payment", 2)), Err("PermissionViolation"));
    assert_eq!(class(&state, proposal("bob", "alice", "bob", "1", "bill", 2)), Err("InvalidFieldsViolation"));
    let mut config = state.config().expect("init").clone();
    config.workflows.iter_mut().for_each(|w| w.active = false);
    run(&mut state, Command::ConfigureNode { config }, 1);
    assert_eq!(class(&state, proposal("bob", "bob", "carol", "1", "payment", 2)), Err("DeprecatedWorkflowViolation"));
    assert_eq!(class(&LedgerState::new(), proposal("bob", "bob", "carol", "1", "payment", 2)), Err("CCOtherViolation"));
}

#[test]
fn remote_parties_book_on_node_accounts() {
    let mut state = twig(|_| {});
    run(&mut state, proposal("alice", "alice", "branch2/dave", "2", "payment", 1), 1);
    run(&mut state, proposal("alice", "alice", "trunk/branch/twig/leaf1/erin", "3", "payment", 2), 1);
    let entry = state.transaction(&tx_id(1)).expect("tx").primary().clone();
    assert_eq!(entry.payee, acc("branch"));
    // The remote path is the entry's own field; the user's metadata stays empty.
    assert_eq!(entry.remote.get("branch").map(String::as_str), Some("branch2/dave"));
    assert!(entry.metadata.is_empty());
    let entry = state.transaction(&tx_id(2)).expect("tx").primary().clone();
    assert_eq!((entry.payee, entry.remote.get("leaf1").cloned()), (acc("leaf1"), Some("erin".to_owned())));
    assert_eq!(state.balances(&acc("alice")).completed, amt("-5"));
    state.assert_zero_sum();
}

#[test]
fn validated_expiry_is_clock_driven() {
    let mut state = twig(|c| c.validated_window_s = 300);
    run(&mut state, proposal("alice", "alice", "bob", "1", "credit", 1), 1000);
    assert_eq!(state.due_expiries(1299), vec![]);
    let v = decide(&state, Command::Expire { uuid: tx_id(1) }, &ctx(1299)).expect_err("too early");
    assert_eq!(v.class(), "CCOtherViolation");
    assert_eq!(state.due_expiries(1300), vec![tx_id(1)]);
    run(&mut state, Command::Expire { uuid: tx_id(1) }, 1300);
    let tx = state.transaction(&tx_id(1)).expect("tx");
    assert_eq!((tx.state, tx.version), (State::TimedOut, 1));
    let v = decide(&state, Command::Expire { uuid: tx_id(1) }, &ctx(2000)).expect_err("not validated");
    assert_eq!(v.class(), "WorkflowViolation");
    assert_eq!(state.due_expiries(5000), vec![]);
}

#[test]
fn versions_count_state_changes() {
    let mut state = twig(|_| {});
    run(&mut state, proposal("alice", "alice", "bob", "1", "credit", 1), 1);
    assert_eq!(state.transaction(&tx_id(1)).expect("tx").version, 0);
    run(&mut state, Command::Transition { uuid: tx_id(1), to: State::Pending, actor: acc("alice") }, 2);
    run(&mut state, Command::Transition { uuid: tx_id(1), to: State::Completed, actor: acc("bob") }, 3);
    let tx = state.transaction(&tx_id(1)).expect("tx");
    assert_eq!((tx.state, tx.version), (State::Completed, 2));
    assert_eq!(state.balances(&acc("bob")), Balances { completed: amt("1"), pending: amt("1") });
}

#[test]
fn amounts_and_limits_beyond_the_maximum_are_refused() {
    let max = AMOUNT_MAX_UNITS.to_string();
    let over = format!("{max}.000001");
    let mut state = twig(|_| {});
    // Limits: exactly the maximum is accepted, anything beyond is not.
    run(&mut state, Command::ChangeLimits { id: acc("alice"), min: amt(&format!("-{max}")), max: amt(&max) }, 1);
    run(&mut state, Command::ChangeLimits { id: acc("bob"), min: amt(&format!("-{max}")), max: amt(&max) }, 1);
    for (min, max_) in [(format!("-{over}"), "0".to_owned()), ("0".to_owned(), over.clone())] {
        let v = decide(&state, Command::ChangeLimits { id: acc("carol"), min: amt(&min), max: amt(&max_) }, &ctx(1))
            .expect_err("beyond the maximum");
        assert_eq!(v.class(), "InvalidFieldsViolation", "{v}");
        assert!(v.to_string().contains(&max) || format!("{:?}", v.fields()).contains(&max), "{v:?}");
        let open = Command::OpenAccount {
            id: acc("dave"),
            kind: AccountKind::User { admin: false },
            limits: Limits::new(amt(&min), amt(&max_)).expect("min <= 0 <= max"),
        };
        assert_eq!(decide(&state, open, &ctx(1)).expect_err("beyond").class(), "InvalidFieldsViolation");
    }
    // Quant: the maximum passes, beyond it is refused, whatever the limits.
    let v = decide(&state, proposal("alice", "alice", "bob", &over, "payment", 1), &ctx(1)).expect_err("beyond");
    assert_eq!(v.class(), "InvalidFieldsViolation");
    run(&mut state, proposal("alice", "alice", "bob", &max, "payment", 2), 1);
    assert_eq!(state.balances(&acc("bob")).completed, amt(&max));
}

#[test]
fn unchecked_pending_balances_stop_at_the_balance_maximum() {
    let max = AMOUNT_MAX_UNITS.to_string();
    let mut state = twig(|c| c.validate_pending = false);
    for id in ["alice", "bob"] {
        run(&mut state, Command::ChangeLimits { id: acc(id), min: amt(&format!("-{max}")), max: amt(&max) }, 1);
    }
    let per_balance = BALANCE_MAX_UNITS / AMOUNT_MAX_UNITS;
    let mut refused = None;
    for n in 0..=u128::try_from(per_balance).expect("positive") {
        let bill = proposal("bob", "alice", "bob", &max, "bill", n + 1);
        match decide(&state, bill.clone(), &ctx(1)) {
            Ok(_) => {
                run(&mut state, bill, 1);
                run(&mut state, Command::Transition { uuid: tx_id(n + 1), to: State::Pending, actor: acc("bob") }, 1);
            }
            Err(v) => {
                refused = Some((n, v));
                break;
            }
        }
    }
    let (n, v) = refused.expect("refused before the balance maximum");
    assert_eq!(n, u128::try_from(per_balance).expect("positive"), "{v}");
    assert_eq!(v.class(), "InvalidFieldsViolation");
    assert_eq!(state.balances(&acc("bob")).pending, Amount::from_units(BALANCE_MAX_UNITS));
}
