use ledger::workflow::{Creation, TransitionRule, WorkflowError};
use ledger::{Actor, Direction, State, Workflow};

#[test]
fn observed_codes_round_trip() {
    for code in ["_C-", "_P+PC-", "|P-PC+CX+", "_C0", "_C0CE-PE0CX-", "|P-PC+PE-CE0", "_P+PC-PE-PE+"] {
        let w = Workflow::from_code(code).expect(code);
        assert_eq!(w.to_code().expect(code), code);
    }
}

#[test]
fn code_reading() {
    let w = Workflow::from_code("|P-PC+CX+").expect("parses");
    assert_eq!(w.creation, Creation { state: State::Pending, confirm: true });
    assert_eq!(w.direction, Direction::Credit);
    let rule = |from, to, actors: Vec<Actor>| TransitionRule { from, to, actors, label: String::new() };
    assert_eq!(
        w.transitions,
        vec![
            rule(State::Pending, State::Completed, vec![Actor::Payee]),
            rule(State::Completed, State::TimedOut, vec![Actor::Payee])
        ]
    );
    let w = Workflow::from_code("_C0CE-PE0CX-").expect("parses");
    assert_eq!(w.direction, Direction::ThirdParty);
    assert_eq!(w.creation, Creation { state: State::Completed, confirm: false });
    assert_eq!(w.rule(State::Pending, State::Erased).map(|r| r.actors.clone()), Some(vec![]));
    let w = Workflow::from_code("_P+PE-PE+").expect("parses");
    assert_eq!(w.direction, Direction::Bill);
    assert_eq!(w.rule(State::Pending, State::Erased).map(|r| r.actors.clone()), Some(vec![Actor::Payer, Actor::Payee]));
}

#[test]
fn bad_codes() {
    for bad in ["", "C-", "_V-", "_E-", "_C", "_C-P", "_C-PC", "_C-PZ-", "_C-PC*", "_C-PV-", "_C-EC-", "XC-"] {
        assert!(Workflow::from_code(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(Workflow::from_code(&format!("_C-{}", "PC-".repeat(30))), Err(WorkflowError::Length { .. })));
}

#[test]
fn author_actor_is_not_expressible_as_code() {
    let mut w = Workflow::from_code("_P-PC+").expect("parses");
    w.transitions[0].actors.push(Actor::Author);
    assert!(matches!(w.to_code(), Err(WorkflowError::NotExpressible { .. })));
}

#[test]
fn state_names_and_letters() {
    for (state, letter, name) in [
        (State::Validated, 'V', "validated"),
        (State::Pending, 'P', "pending"),
        (State::Completed, 'C', "completed"),
        (State::Erased, 'E', "erased"),
        (State::TimedOut, 'X', "timedout"),
    ] {
        assert_eq!((state.letter(), state.name()), (letter, name));
        assert_eq!(State::parse(&letter.to_string()), Some(state));
        assert_eq!(State::parse(name), Some(state));
    }
    assert_eq!(State::parse("init"), None);
    assert_eq!(State::parse("v"), None);
}
