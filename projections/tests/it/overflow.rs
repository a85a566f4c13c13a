//! Issue 16 item 3: bounds that make overflow impossible. Random sequences
//! of maximal payments, accepted by `decide`, always fold; an event beyond
//! the bounds (as an older version could journal) is refused by
//! `try_apply` naming its seq, leaving the projections as they were.

use ledger::*;
use projections::{FindingKind, Projections, Total};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::{acc, proposal, tx_id};

const USERS: usize = 4;
const WORKFLOWS: [&str; 3] = ["payment", "bill", "credit"];

#[derive(Debug, Clone)]
enum Op {
    Pay { payer: usize, payee: usize, workflow: usize, less: i64 },
    Move { tx: usize, to: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS, 0..USERS, 0..WORKFLOWS.len(), prop_oneof![Just(0i64), 0i64..1_000_000])
            .prop_map(|(payer, payee, workflow, less)| Op::Pay { payer, payee, workflow, less }),
        2 => (0..64usize, 0..5usize).prop_map(|(tx, to)| Op::Move { tx, to }),
    ]
}

fn user(i: usize) -> String {
    if i == 0 {
        "admin".to_owned()
    } else {
        format!("u{i}")
    }
}

/// A node whose users have the widest limits allowed, every payment of
/// (nearly) the maximum amount.
fn node(validate_pending: bool) -> (LedgerState, Projections, u64) {
    let mut config = NodeConfig::new(NodeName::new("wide").expect("name"));
    config.validate_pending = validate_pending;
    let max = Amount::from_units(AMOUNT_MAX_UNITS);
    let mut commands = vec![Command::InitialiseNode { config }];
    for i in 0..USERS {
        let kind = AccountKind::User { admin: i == 0 };
        let limits = Limits::new(-max, max).expect("limits");
        commands.push(Command::OpenAccount { id: acc(&user(i)), kind, limits });
    }
    let (mut state, mut proj, mut seq) = (LedgerState::new(), Projections::new(), 0);
    for command in commands {
        let events = decide(&state, command, &Context { now_unix_s: 1, fresh_uuid: tx_id(1) }).expect("set up");
        for event in &events {
            seq += 1;
            state.apply(event);
            proj.try_apply(seq, seq, event).expect("folds");
        }
    }
    (state, proj, seq)
}

fn config() -> Config {
    Config { cases: 48, rng_seed: RngSeed::Fixed(0x16_0003), failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    /// Whatever `decide` accepts, the projections fold; volumes grow past
    /// what an `Amount` holds without overflowing.
    #[test]
    fn maximal_payments_never_make_the_fold_fail(
        validate_pending in any::<bool>(),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let (mut state, mut proj, mut seq) = node(validate_pending);
        let mut uuids = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            let n = u128::try_from(n).expect("small") + 100;
            let command = match op {
                Op::Pay { payer, payee, workflow, less } => {
                    let quant = Amount::from_units(AMOUNT_MAX_UNITS).checked_sub(Amount::from_micros(*less)).expect("fits");
                    let author = if WORKFLOWS[*workflow] == "bill" { user(*payee) } else { user(*payer) };
                    uuids.push(tx_id(n));
                    proposal(&author, &user(*payer), &user(*payee), &quant.to_string(), WORKFLOWS[*workflow], n, "max")
                }
                Op::Move { tx, to } if !uuids.is_empty() => {
                    let uuid = uuids[tx % uuids.len()];
                    Command::Transition { uuid, to: State::ALL[*to], actor: acc("admin") }
                }
                Op::Move { .. } => continue,
            };
            let Ok(events) = decide(&state, command, &Context { now_unix_s: 2, fresh_uuid: tx_id(n) }) else { continue };
            for event in &events {
                seq += 1;
                state.apply(event);
                let folded = proj.try_apply(seq, seq, event);
                prop_assert!(folded.is_ok(), "{folded:?}");
            }
            proj.assert_invariants();
        }
        for i in 0..USERS {
            let stats = proj.stats(&acc(&user(i))).expect("open");
            for class in [&stats.completed, &stats.pending] {
                prop_assert_eq!(class.volume.micros(), class.gross_in.micros() + class.gross_out.micros());
                prop_assert!(class.balance.within_balance_max());
            }
        }
    }
}

/// The events of issue 16: a 10^23 payment cannot be folded (its balance
/// is beyond what an amount holds) and is refused without a change; two
/// 4·10^22 payments inside ±5·10^22 limits now fold, the volume of 8·10^22
/// being a 128-bit total.
#[test]
fn events_of_older_versions_beyond_the_bounds_are_refused_by_seq() {
    let mut proj = Projections::new();
    let mut seq = 0;
    let mut apply = |proj: &mut Projections, event: Event| {
        seq += 1;
        proj.try_apply(seq, seq, &event).map(|()| seq)
    };
    apply(&mut proj, Event::NodeInitialised { config: NodeConfig::new(NodeName::new("old").expect("name")) })
        .expect("init");
    let wide: Amount = "50000000000000000000000".parse().expect("5e22");
    for id in ["a", "b"] {
        let account = Account {
            id: acc(id),
            kind: AccountKind::User { admin: false },
            limits: Limits::new(-wide, wide).expect("limits"),
            status: AccountStatus::Active,
        };
        apply(&mut proj, Event::AccountOpened { account }).expect("open");
    }
    let workflow = Workflow::from_code("_C-").expect("code");
    let payment = |n: u128, payer: &str, payee: &str, quant: &str| Event::TransactionProposed {
        transaction: Transaction {
            uuid: tx_id(n),
            version: 1,
            state: State::Completed,
            workflow: workflow.clone(),
            author: acc(payer),
            written_unix_s: 1,
            entries: vec![Entry {
                payer: acc(payer),
                payee: acc(payee),
                quant: quant.parse().expect("quant"),
                description: String::new(),
                metadata: Default::default(),
                remote: Default::default(),
            }],
        },
    };
    apply(&mut proj, payment(1, "a", "b", "40000000000000000000000")).expect("4e22 folds");
    apply(&mut proj, payment(2, "b", "a", "40000000000000000000000")).expect("the second 4e22 folds too");
    let b = proj.stats(&acc("b")).expect("open").completed.clone();
    assert_eq!(b.volume, Total::from_micros(80_000_000_000_000_000_000_000_000_000));
    assert_eq!(b.volume.to_string(), "80000000000000000000000");
    let before = proj.clone();
    let refused = apply(&mut proj, payment(3, "a", "b", "100000000000000000000000")).expect_err("1e23 does not fold");
    assert_eq!(refused.seq, 6);
    assert_eq!(refused.kind, FindingKind::Overflow { account: "b".to_owned() });
    assert!(refused.to_string().starts_with("seq 6: "), "{refused}");
    assert!(proj == before, "a refused event changes nothing");
    assert_eq!(proj.seq(), 5);
}

#[test]
fn totals_print_as_canonical_decimals() {
    for (micros, text) in [(0, "0"), (1, "0.000001"), (-1_500_000, "-1.5"), (120_000, "0.12"), (7_000_000, "7")] {
        assert_eq!(Total::from_micros(micros).to_string(), text);
        assert_eq!(Total::from(text.parse::<Amount>().expect("amount")), Total::from_micros(micros));
    }
    assert_eq!(Total::from_micros(i128::MAX).to_string(), "170141183460469231731687303715884.105727");
}
