//! `try_apply` refuses every event that does not fit the state with the
//! `Finding` naming it, before anything changes: one crafted sequence per
//! kind, then a property test over random events, most of them impossible.

use ledger::*;
use projections::{Finding, FindingKind, Projections};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::{acc, limits, tx_id};

fn config(validate_pending: bool) -> NodeConfig {
    let mut config = NodeConfig::new(NodeName::new("raw").expect("name"));
    config.validate_pending = validate_pending;
    config
}

fn open(id: &str, kind: AccountKind, limits: Limits) -> Event {
    Event::AccountOpened { account: Account { id: acc(id), kind, limits, status: AccountStatus::Active } }
}

fn user(id: &str) -> Event {
    open(id, AccountKind::User { admin: false }, limits(-10, 10))
}

fn peer(id: &str) -> Event {
    let peer = Peer { account: acc(id), url: format!("https://{id}.test"), rate: Rate::ONE, initial_hash: "0".into() };
    Event::PeerConnected { peer }
}

fn entry(payer: &str, payee: &str, quant: Amount) -> Entry {
    Entry {
        payer: acc(payer),
        payee: acc(payee),
        quant,
        description: String::new(),
        metadata: Default::default(),
        remote: Default::default(),
    }
}

fn proposed(n: u128, state: State, entries: Vec<Entry>) -> Event {
    let transaction = Transaction {
        uuid: tx_id(n),
        version: 1,
        state,
        workflow: Workflow::from_code("_P+PC-PE-PE+").expect("code"),
        author: entries.first().map_or_else(|| acc("a"), |e| e.payer.clone()),
        written_unix_s: 1,
        entries,
    };
    Event::TransactionProposed { transaction }
}

/// The workflow [`proposed_ref`] names: not the one of [`proposed`], which
/// a format-1 proposal of the base embeds (and so defines).
fn immediate() -> Workflow {
    Workflow::from_code("_C-").expect("code")
}

/// As [`proposed`], in event format 2, under [`immediate`] named by hash.
fn proposed_ref(n: u128, state: State, entries: Vec<Entry>) -> Event {
    let Event::TransactionProposed { transaction } = proposed(n, state, entries) else { unreachable!() };
    Event::TransactionProposedRef { transaction: transaction.with_workflow(WorkflowRef::of(&immediate())) }
}

fn defined() -> Event {
    Event::WorkflowDefined { workflow: immediate() }
}

fn pay(n: u128, payer: &str, payee: &str, units: i64) -> Event {
    proposed(n, State::Completed, vec![entry(payer, payee, Amount::from_units(units))])
}

fn moved(n: u128, from: State, to: State, version: u32) -> Event {
    Event::TransactionTransitioned { uuid: tx_id(n), from, to, actor: acc("a"), version, at_unix_s: 2 }
}

/// A node (`validate_pending` as asked) with users a, b, c (±10), the node
/// accounts n (connected) and t (trunkward, not connected), the node's key
/// [1; 32], and transaction 1 (a pays b 1, pending).
fn base(validate_pending: bool) -> Projections {
    let mut p = Projections::new();
    for event in &base_events(validate_pending) {
        let seq = p.seq() + 1;
        p.try_apply(seq, seq, event).expect("the base folds");
    }
    p
}

/// Applies `events` after the base at the next seqs; the last must be
/// refused with `kind`, leaving the projections as they were before it.
fn refused(mut p: Projections, events: &[Event], kind: FindingKind) {
    let (last, before) = events.split_last().expect("an event to refuse");
    for event in before {
        let seq = p.seq() + 1;
        p.try_apply(seq, seq, event).expect("folds before the refused event");
    }
    let copy = p.clone();
    let seq = p.seq() + 1;
    assert_eq!(p.try_apply(seq, seq, last), Err(Finding { seq, kind }));
    assert!(p == copy, "a refused event changes nothing");
    assert_eq!(p.seq(), seq - 1);
    p.assert_invariants();
}

#[test]
fn the_node_is_initialised_once_first_and_keeps_its_name() {
    refused(Projections::new(), &[user("a")], FindingKind::NotInitialised);
    refused(base(false), &[Event::NodeInitialised { config: config(false) }], FindingKind::InitialisedTwice);
    let renamed = NodeConfig::new(NodeName::new("other").expect("name"));
    refused(
        base(false),
        &[Event::NodeConfigured { config: renamed }],
        FindingKind::NameChanged { from: "raw".into(), to: "other".into() },
    );
}

#[test]
fn accounts_are_opened_once_with_one_trunkward_and_known_where_named() {
    refused(base(false), &[user("a")], FindingKind::AccountOpenedTwice { account: "a".into() });
    let second = open("t2", AccountKind::Trunkward, limits(-1, 1));
    refused(base(false), &[second], FindingKind::SecondTrunkward { account: "t2".into() });
    let ghost = || FindingKind::UnknownAccount { account: "ghost".into() };
    for event in [
        Event::AccountStatusChanged { id: acc("ghost"), status: AccountStatus::Blocked },
        Event::AccountLimitsChanged { id: acc("ghost"), limits: limits(-1, 1) },
        Event::WarnLimitsChanged { id: acc("ghost"), warn_min: None, warn_max: None },
        Event::FeesConfigured {
            policy: Some(ledger::federation::FeePolicy {
                account: acc("ghost"),
                fixed: Amount::ZERO,
                percent: Amount::ZERO,
            }),
        },
        peer("ghost"),
        pay(2, "a", "ghost", 1),
        pay(2, "ghost", "a", 1),
        proposed(2, State::Completed, vec![entry("a", "b", Amount::from_units(1)), entry("c", "ghost", Amount::ZERO)]),
    ] {
        refused(base(false), &[event], ghost());
    }
}

#[test]
fn peer_facts_are_on_node_accounts_and_link_facts_on_connected_peers() {
    refused(base(false), &[peer("a")], FindingKind::PeerOnUserAccount { account: "a".into() });
    let not_a_peer = |id: &str| FindingKind::NotAPeer { account: id.into() };
    for id in ["t", "a", "ghost"] {
        let events = [
            Event::RatchetAdvanced { peer: acc(id), uuid: tx_id(1), version: 2, md5: "00".into(), blake3: [0; 32] },
            Event::PeerKeySet { peer: acc(id), origin: "o".into(), public_key: [2; 32] },
            Event::CheckpointCosigned { peer: acc(id), size: 1, signature: "s".into() },
            Event::WitnessCosigned { peer: acc(id), size: 1, root: [0; 32] },
            Event::LinkDialectSet { account: acc(id), dialect: Dialect::Komunitin },
            Event::LinkClosed { peer: acc(id), evidence: "{}".into() },
            Event::LinkReopened { peer: acc(id) },
        ];
        for event in events {
            refused(base(false), &[event], not_a_peer(id));
        }
    }
}

#[test]
fn transactions_are_proposed_once_with_entries_and_move_from_their_state_by_one_version() {
    refused(
        base(false),
        &[proposed(2, State::Completed, Vec::new())],
        FindingKind::NoEntries { uuid: tx_id(2).to_string() },
    );
    refused(base(false), &[pay(1, "a", "b", 1)], FindingKind::DuplicateTransaction { uuid: tx_id(1).to_string() });
    let unknown = || FindingKind::UnknownTransaction { uuid: tx_id(9).to_string() };
    for event in [
        moved(9, State::Pending, State::Completed, 2),
        Event::TransactionExpired { uuid: tx_id(9), version: 2, at_unix_s: 2 },
        Event::LinkAttached {
            uuid: tx_id(9),
            link: ledger::federation::Link { upstream: None, downstream: None, trunkward_quants: Vec::new() },
        },
        Event::LinkReconciled { peer: acc("n"), uuid: tx_id(9), version: 1 },
        Event::WarnLimitCrossed {
            id: acc("a"),
            uuid: tx_id(9),
            below: true,
            limit: Amount::ZERO,
            balance: Amount::ZERO,
        },
    ] {
        refused(base(false), &[event], unknown());
    }
    refused(
        base(false),
        &[moved(1, State::Completed, State::Erased, 2)],
        FindingKind::StaleState { uuid: tx_id(1).to_string(), claimed: State::Completed, actual: State::Pending },
    );
    refused(
        base(false),
        &[Event::TransactionExpired { uuid: tx_id(1), version: 2, at_unix_s: 2 }],
        FindingKind::StaleState { uuid: tx_id(1).to_string(), claimed: State::Validated, actual: State::Pending },
    );
    refused(
        base(false),
        &[moved(1, State::Pending, State::Completed, 3)],
        FindingKind::VersionSkip { uuid: tx_id(1).to_string(), current: 1, claimed: 3 },
    );
}

#[test]
fn a_format_2_proposal_names_a_workflow_defined_before_it() {
    let pay = || proposed_ref(2, State::Completed, vec![entry("a", "b", Amount::from_units(1))]);
    let undefined = FindingKind::UndefinedWorkflow { uuid: tx_id(2).to_string(), workflow: immediate().id.to_string() };
    refused(base(false), &[pay()], undefined);
    // Defined first, it folds, and reads back with the definition in place.
    let mut p = base(false);
    for event in [defined(), pay()] {
        let seq = p.seq() + 1;
        p.try_apply(seq, seq, &event).expect("folds");
    }
    assert_eq!(p.transaction(&tx_id(2)).expect("proposed").workflow, immediate());
    // Format 2 refuses what format 1 does: here a second proposal of the same uuid.
    refused(p, &[pay()], FindingKind::DuplicateTransaction { uuid: tx_id(2).to_string() });
}

#[test]
fn a_booking_beyond_a_limit_names_the_lowest_account_id_pending_first() {
    let broken = |account: &str, which, change: i64, balance: i64| FindingKind::LimitBroken {
        account: account.into(),
        which,
        change: Amount::from_units(change),
        balance: Amount::from_units(balance),
        min: Amount::from_units(-10),
        max: Amount::from_units(10),
    };
    // b (payee, +11) and c (payer, -11) both break: b is named.
    refused(base(false), &[pay(2, "c", "b", 11)], broken("b", "completed", 11, 11));
    refused(base(false), &[pay(2, "b", "c", 11)], broken("b", "completed", -11, -11));
    // Pending balances are limited only with validate_pending; then first.
    refused(base(true), &[pay(2, "c", "b", 10)], broken("b", "pending", 10, 11));
    let pending = proposed(2, State::Pending, vec![entry("a", "c", Amount::from_units(10))]);
    refused(base(true), std::slice::from_ref(&pending), broken("a", "pending", -10, -11));
    let mut p = base(false);
    p.try_apply(10, 10, &pending).expect("pending balances are not limited without validate_pending");
    // Completing it takes a's completed balance to -10: within. A transition
    // is checked as a proposal is: completing transaction 1 would take it to -11.
    p.try_apply(11, 11, &moved(2, State::Pending, State::Completed, 2)).expect("within the limits");
    refused(p, &[moved(1, State::Pending, State::Completed, 2)], broken("a", "completed", -1, -11));
    // Limits tightened below a balance do not refuse a booking that moves it back.
    let mut p = base(false);
    p.try_apply(10, 10, &pay(2, "c", "a", 8)).expect("within");
    p.try_apply(11, 11, &Event::AccountLimitsChanged { id: acc("a"), limits: limits(-1, 1) }).expect("limits");
    p.try_apply(12, 12, &pay(3, "a", "c", 2)).expect("back towards the limits");
    refused(
        p,
        &[pay(4, "c", "a", 1)],
        FindingKind::LimitBroken {
            account: "a".into(),
            which: "completed",
            change: Amount::from_units(1),
            balance: Amount::from_units(7),
            min: Amount::from_units(-1),
            max: Amount::from_units(1),
        },
    );
}

/// Balances beyond what an amount holds and totals beyond 128 bits (what an
/// older version could journal).
#[test]
fn figures_that_do_not_fit_are_refused() {
    let wide: Amount = "7000000000000000000000000".parse().expect("7e24");
    let mut p = Projections::new();
    let setup = [
        Event::NodeInitialised { config: config(false) },
        open("a", AccountKind::User { admin: false }, Limits::new(-wide, wide).expect("limits")),
        open("b", AccountKind::User { admin: false }, Limits::new(-wide, wide).expect("limits")),
    ];
    for (seq, event) in (1..).zip(&setup) {
        p.try_apply(seq, seq, event).expect("setup");
    }
    let big: Amount = "50000000000000000000000".parse().expect("5e22");
    let payment = |n| proposed(n, State::Completed, vec![entry("a", "b", big)]);
    // The payee's balance is checked first, as the auditor always named it.
    refused(p.clone(), &[payment(1), payment(2)], FindingKind::Overflow { account: "b".into() });
    // Self-entries move both gross totals and no balance: 2,200 of the
    // largest amount pass 2^127 micro-units.
    let largest = Amount::from_decimal(rust_decimal::Decimal::MAX).expect("an amount");
    let selfish = proposed(3, State::Completed, vec![entry("a", "a", largest); 2_200]);
    refused(p, &[selfish], FindingKind::TotalsOverflow { account: "a".into(), which: "completed" });
}

#[test]
fn keys_rotate_from_the_nodes_key_and_checkpoints_grow_in_place() {
    let rotate = |old| Event::NodeKeyRotated { old, new: [3; 32], signature: [0; 64] };
    refused(base(false), &[rotate([2; 32])], FindingKind::KeyRotationFromWrongKey);
    refused(base(false), &[rotate([1; 32]), rotate([1; 32])], FindingKind::KeyRotationFromWrongKey);
    // The base has 9 records: a checkpoint of size 9 is record 10.
    let signed = |size| Event::CheckpointSigned { size, note: String::new() };
    refused(base(false), &[signed(8)], FindingKind::CheckpointOutOfOrder { size: 8, last: 0 });
    refused(base(false), &[signed(10)], FindingKind::CheckpointOutOfOrder { size: 10, last: 0 });
    let mut p = base(false);
    p.try_apply(10, 10, &signed(9)).expect("in place");
    refused(
        p,
        &[Event::FeesConfigured { policy: None }, signed(9)],
        FindingKind::CheckpointOutOfOrder { size: 9, last: 9 },
    );
    let witness = |size| Event::WitnessCosigned { peer: acc("n"), size, root: [0; 32] };
    refused(base(false), &[witness(5), witness(5)], FindingKind::CheckpointOutOfOrder { size: 5, last: 5 });
    refused(base(false), &[witness(0)], FindingKind::CheckpointOutOfOrder { size: 0, last: 0 });
}

#[test]
fn seqs_strictly_increase() {
    let mut p = base(false);
    let copy = p.clone();
    let found = p.try_apply(9, 9, &Event::FeesConfigured { policy: None }).expect_err("seq 9 again");
    assert_eq!(found, Finding { seq: 9, kind: FindingKind::SeqNotIncreasing { last: 9 } });
    assert!(p == copy);
    p.try_apply(20, 20, &Event::FeesConfigured { policy: None }).expect("a gap is allowed");
}

// Random events over a small world, most of them impossible: whatever
// `try_apply` refuses leaves the projections equal to a copy taken before;
// whatever it accepts, `LedgerState` (which panics on what does not fit)
// folds too, and the two agree on every balance.

const IDS: [&str; 6] = ["a", "b", "c", "n", "t", "ghost"];

fn id_of(i: usize) -> AccountId {
    acc(IDS[i % IDS.len()])
}

fn quant() -> impl Strategy<Value = Amount> {
    prop_oneof![
        8 => (0i64..15).prop_map(Amount::from_units),
        1 => Just("50000000000000000000000".parse().expect("5e22")),
    ]
}

fn state() -> impl Strategy<Value = State> {
    (0..State::ALL.len()).prop_map(|i| State::ALL[i])
}

fn event() -> impl Strategy<Value = Event> {
    let ids = 0..IDS.len();
    prop_oneof![
        4 => (0u128..8, state(), prop::collection::vec((ids.clone(), ids.clone(), quant()), 0..3)).prop_map(
            |(n, state, legs)| {
                let entries = legs.into_iter().map(|(p, q, a)| entry(IDS[p], IDS[q], a)).collect();
                proposed(n, state, entries)
            }
        ),
        2 => (0u128..8, state(), prop::collection::vec((ids.clone(), ids.clone(), quant()), 0..3)).prop_map(
            |(n, state, legs)| {
                let entries = legs.into_iter().map(|(p, q, a)| entry(IDS[p], IDS[q], a)).collect();
                proposed_ref(n, state, entries)
            }
        ),
        1 => Just(defined()),
        4 => (0u128..8, state(), state(), 0u32..4).prop_map(|(n, from, to, v)| moved(n, from, to, v)),
        1 => (0u128..8, 0u32..4).prop_map(|(n, version)| Event::TransactionExpired { uuid: tx_id(n), version, at_unix_s: 3 }),
        1 => (ids.clone(), -12i64..0, 0i64..12).prop_map(|(i, min, max)| Event::AccountLimitsChanged { id: id_of(i), limits: limits(min, max) }),
        1 => ids.clone().prop_map(|i| user(IDS[i])),
        1 => ids.clone().prop_map(|i| peer(IDS[i])),
        1 => (ids.clone(), 0u128..8).prop_map(|(i, n)| Event::RatchetAdvanced { peer: id_of(i), uuid: tx_id(n), version: 1, md5: "00".into(), blake3: [0; 32] }),
        1 => (ids.clone(), 0u64..4).prop_map(|(i, size)| Event::WitnessCosigned { peer: id_of(i), size, root: [0; 32] }),
        1 => (0u64..14).prop_map(|size| Event::CheckpointSigned { size, note: String::new() }),
        1 => (1u8..3).prop_map(|k| Event::NodeKeyRotated { old: [k; 32], new: [k + 1; 32], signature: [0; 64] }),
        1 => any::<bool>().prop_map(|v| Event::NodeConfigured { config: config(v) }),
        1 => (ids, 0u128..8).prop_map(|(i, n)| Event::WarnLimitCrossed { id: id_of(i), uuid: tx_id(n), below: true, limit: Amount::ZERO, balance: Amount::ZERO }),
    ]
}

fn props() -> Config {
    Config { cases: 256, rng_seed: RngSeed::Fixed(0x10_0001), failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(props())]

    #[test]
    fn a_refused_event_changes_nothing_and_an_accepted_one_fits_the_ledger(
        validate_pending in any::<bool>(),
        events in prop::collection::vec(event(), 1..120),
    ) {
        let mut p = base(validate_pending);
        let mut state = LedgerState::new();
        let mut replayed = base_events(validate_pending);
        for event in &replayed {
            state.apply(event);
        }
        for event in events {
            let copy = p.clone();
            let seq = p.seq() + 1;
            match p.try_apply(seq, seq, &event) {
                Err(finding) => {
                    prop_assert_eq!(finding.seq, seq);
                    prop_assert!(p == copy, "refused {:?} ({}) changed the projections", event, finding);
                }
                Ok(()) => {
                    state.apply(&event);
                    p.assert_invariants();
                    for account in state.accounts() {
                        prop_assert_eq!(p.balances(&account.id), Some(state.balances(&account.id)));
                    }
                    replayed.push(event);
                }
            }
        }
        // Replaying what was accepted gives the same projections.
        let mut again = Projections::new();
        let mut seq = 0;
        for event in &replayed {
            seq += 1;
            again.try_apply(seq, seq, event).expect("accepted once, accepted again");
        }
        prop_assert!(again == p, "the accepted events fold to the same projections");
    }
}

/// The events of [`base`].
fn base_events(validate_pending: bool) -> Vec<Event> {
    vec![
        Event::NodeInitialised { config: config(validate_pending) },
        user("a"),
        user("b"),
        user("c"),
        open("n", AccountKind::Leafward, limits(-100, 100)),
        open("t", AccountKind::Trunkward, limits(-100, 100)),
        peer("n"),
        Event::NodeKeySet { public_key: [1; 32] },
        proposed(1, State::Pending, vec![entry("a", "b", Amount::from_units(1))]),
    ]
}
