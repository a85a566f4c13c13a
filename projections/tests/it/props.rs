//! Property tests over random command sequences: commands go through
//! `ledger::decide` against a `LedgerState`; accepted events are folded into
//! projections, whose answers are checked against independent recordings.

use std::collections::BTreeMap;

use ledger::*;
use projections::store::{decode_snapshot, encode_snapshot};
use projections::{Projections, Query};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::tx_id;

/// Users opened at the start; ids `u0..`.
const USERS: usize = 6;
/// Users that may be opened later, by an `Open` op.
const LATE_USERS: usize = 3;
const ALL_USERS: usize = USERS + LATE_USERS;
const WORKFLOWS: [&str; 5] = ["payment", "bill", "credit", "|P-PC+CX+", "_C0CE-PE0CX-"];
const UUIDS: u8 = 64;

#[derive(Debug, Clone)]
enum Op {
    Propose {
        author: usize,
        payer: usize,
        payee: usize,
        quant: Amount,
        workflow: usize,
        uuid: u8,
    },
    Transition {
        uuid: u8,
        to: usize,
        actor: usize,
    },
    Expire {
        uuid: u8,
    },
    Open {
        id: usize,
        min: i64,
        max: i64,
    },
    ChangeLimits {
        id: usize,
        min: i64,
        max: i64,
    },
    ChangeStatus {
        id: usize,
        blocked: bool,
    },
    /// Advance the clock by this many seconds (0 keeps several events in one µs).
    Tick {
        secs: u16,
    },
}

fn user(i: usize) -> AccountId {
    AccountId::new(&format!("u{i}")).expect("id")
}

fn party(i: usize) -> String {
    match i {
        i if i < ALL_USERS => format!("u{i}"),
        i if i == ALL_USERS => "branch2/x".to_owned(),
        _ => "twig/nobody".to_owned(),
    }
}

fn quant() -> impl Strategy<Value = Amount> {
    prop_oneof![
        (0i64..=8).prop_map(Amount::from_units),
        Just(Amount::from_micros(1)),
        (0i64..=30_000_000).prop_map(Amount::from_micros),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let n = ALL_USERS + 2;
    prop_oneof![
        12 => (0..ALL_USERS + 6, 0..n, 0..n, quant(), 0..WORKFLOWS.len(), 0..UUIDS)
            .prop_map(|(author, payer, payee, quant, workflow, uuid)| Op::Propose { author, payer, payee, quant, workflow, uuid }),
        8 => (0..UUIDS, 0..5usize, 0..ALL_USERS + 12).prop_map(|(uuid, to, actor)| Op::Transition { uuid, to, actor }),
        1 => (0..UUIDS).prop_map(|uuid| Op::Expire { uuid }),
        2 => (USERS..ALL_USERS, -20i64..=0, 0i64..=20).prop_map(|(id, min, max)| Op::Open { id, min, max }),
        1 => (0..ALL_USERS, -20i64..=0, 0i64..=20).prop_map(|(id, min, max)| Op::ChangeLimits { id, min, max }),
        1 => (0..ALL_USERS, prop::bool::weighted(0.3)).prop_map(|(id, blocked)| Op::ChangeStatus { id, blocked }),
        2 => prop_oneof![Just(0u16), 1u16..400].prop_map(|secs| Op::Tick { secs }),
    ]
}

/// Builds the command for `op`. Author and actor indices past the user
/// range pick a role (the workflow's creator, payer, payee, author, admin) so
/// that enough commands are accepted to build history.
fn command(op: &Op, state: &LedgerState) -> Option<Command> {
    let limits = |min: i64, max: i64| Limits::new(Amount::from_units(min), Amount::from_units(max)).expect("straddle");
    Some(match op.clone() {
        Op::Propose { author, payer, payee, quant, workflow, uuid } => Command::ProposeTransaction(Proposal {
            author: user(match author - ALL_USERS.min(author) {
                _ if author < ALL_USERS => author,
                0..=3 => match WORKFLOWS[workflow] {
                    "bill" => payee % ALL_USERS,
                    "_C0CE-PE0CX-" => 0,
                    _ => payer % ALL_USERS,
                },
                4 => payer % ALL_USERS,
                _ => payee % ALL_USERS,
            }),
            payer: party(payer),
            payee: party(payee),
            quant,
            description: format!("d{}", uuid % 3),
            metadata: BTreeMap::new(),
            workflow: WorkflowId::new(WORKFLOWS[workflow]).expect("id"),
            uuid: Some(tx_id(u128::from(uuid))),
        }),
        Op::Transition { uuid, to, actor } => {
            let uuid = pick(state, uuid);
            let actor = match (actor.checked_sub(ALL_USERS).map(|k| k % 4), state.transaction(&uuid)) {
                (None, _) | (Some(_), None) => user(actor % ALL_USERS),
                (Some(0), Some(tx)) => tx.primary().payer.clone(),
                (Some(1), Some(tx)) => tx.primary().payee.clone(),
                (Some(2), Some(tx)) => tx.author.clone(),
                (Some(_), Some(_)) => user(0),
            };
            Command::Transition { uuid, to: State::ALL[to], actor }
        }
        Op::Expire { uuid } => Command::Expire { uuid: pick(state, uuid) },
        Op::Open { id, min, max } => {
            Command::OpenAccount { id: user(id), kind: AccountKind::User { admin: false }, limits: limits(min, max) }
        }
        Op::ChangeLimits { id, min, max } => {
            Command::ChangeLimits { id: user(id), min: Amount::from_units(min), max: Amount::from_units(max) }
        }
        Op::ChangeStatus { id, blocked } => {
            let status = if blocked { AccountStatus::Blocked } else { AccountStatus::Active };
            Command::ChangeStatus { id: user(id), status }
        }
        Op::Tick { .. } => return None,
    })
}

/// Mostly an existing transaction (so transitions meet real states),
/// sometimes a literal uuid that may not exist.
fn pick(state: &LedgerState, n: u8) -> TxId {
    let mut existing: Vec<TxId> = state.transactions().map(|t| t.uuid).collect();
    existing.sort();
    if n.is_multiple_of(8) || existing.is_empty() {
        return tx_id(u128::from(n));
    }
    existing[usize::from(n) % existing.len()]
}

/// Everything recorded while driving a sequence.
struct Run {
    state: LedgerState,
    proj: Projections,
    events: Vec<(u64, u64, Event)>,
    /// Completed balances of open accounts after each seq (index = seq).
    history: Vec<BTreeMap<AccountId, Amount>>,
}

impl Run {
    fn new() -> Self {
        Self { state: LedgerState::new(), proj: Projections::new(), events: Vec::new(), history: vec![BTreeMap::new()] }
    }

    /// Decides `command`, checking that deciding against the projections
    /// agrees with deciding against the ledger state; applies what is accepted.
    fn step(&mut self, command: Command, now: u64) -> bool {
        let ctx = Context { now_unix_s: now, fresh_uuid: tx_id(999) };
        let result = decide(&self.state, command.clone(), &ctx);
        assert_eq!(result, decide(&self.proj, command, &ctx), "projections are an equivalent LedgerView");
        let Ok(events) = result else {
            if std::env::var_os("PROPS_STATS").is_some() {
                eprintln!("refused {}", result.expect_err("refused").class());
            }
            return false;
        };
        assert!(!events.is_empty(), "an accepted command produces events");
        let before = self.completed_and_pending();
        for event in &events {
            let seq = self.proj.seq() + 1;
            // Milliseconds of the ledger clock: events decided in the same
            // second share a record time.
            let at_us = now * 1_000;
            self.state.apply(event);
            self.proj.apply(seq, at_us, event);
            self.proj.assert_invariants();
            self.events.push((seq, at_us, event.clone()));
            self.history
                .push(self.state.accounts().map(|a| (a.id.clone(), self.state.balances(&a.id).completed)).collect());
        }
        for account in self.state.accounts() {
            let now = self.proj.balances(&account.id).expect("open");
            assert_eq!(now, self.state.balances(&account.id), "projections agree with the ledger");
            let old = before.get(&account.id).copied().unwrap_or_default();
            for (o, n) in [(old.completed, now.completed), (old.pending, now.pending)] {
                assert!(n >= o || n >= account.limits.min(), "{} fell to {n} below its min", account.id);
                assert!(n <= o || n <= account.limits.max(), "{} rose to {n} above its max", account.id);
            }
        }
        true
    }

    fn completed_and_pending(&self) -> BTreeMap<AccountId, Balances> {
        self.state.accounts().map(|a| (a.id.clone(), self.state.balances(&a.id))).collect()
    }
}

fn drive(limits: &[(i64, i64)], ops: &[Op]) -> Run {
    let mut run = Run::new();
    let mut config = NodeConfig::new(NodeName::new("twig").expect("name"));
    config.workflows.push(Workflow::from_code("|P-PC+CX+").expect("code"));
    config.workflows.push(Workflow::from_code("_C0CE-PE0CX-").expect("code"));
    let mut now = 1_000;
    assert!(run.step(Command::InitialiseNode { config }, now));
    for (i, (min, max)) in limits.iter().enumerate() {
        let limits = Limits::new(Amount::from_units(*min), Amount::from_units(*max)).expect("limits");
        let kind = AccountKind::User { admin: i == 0 };
        assert!(run.step(Command::OpenAccount { id: user(i), kind, limits }, now));
    }
    let limits = Limits::new(Amount::from_units(-30), Amount::from_units(30)).expect("limits");
    assert!(run.step(
        Command::OpenAccount { id: AccountId::new("branch").expect("id"), kind: AccountKind::Trunkward, limits },
        now
    ));
    for op in ops {
        match command(op, &run.state) {
            Some(command) => {
                let seq = run.proj.seq();
                if !run.step(command, now) {
                    assert_eq!(run.proj.seq(), seq, "a refusal folds nothing");
                }
            }
            None => {
                if let Op::Tick { secs } = op {
                    now += u64::from(*secs);
                }
            }
        }
    }
    run
}

fn config() -> Config {
    Config { cases: 128, rng_seed: RngSeed::Fixed(0x2026_1130), failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_command_sequences_keep_every_projection_consistent(
        limits in proptest::collection::vec((-20i64..=-3, 3i64..=20), USERS),
        ops in proptest::collection::vec(op(), 1..200),
        split in any::<prop::sample::Index>(),
    ) {
        let run = drive(&limits, &ops);
        let head = run.proj.seq();
        if std::env::var_os("PROPS_STATS").is_some() {
            let states: Vec<char> = run.state.transactions().map(|t| t.state.letter()).collect();
            eprintln!("ops {} events {head} accounts {} states {states:?}", ops.len(), run.proj.account_count());
        }

        // All at once equals one at a time.
        let mut all = Projections::new();
        for (seq, at_us, event) in &run.events {
            all.apply(*seq, *at_us, event);
        }
        prop_assert_eq!(&all, &run.proj);

        // Snapshot at a random seq, then the tail, equals the full fold.
        let k = split.index(run.events.len() + 1);
        let mut prefix = Projections::new();
        for (seq, at_us, event) in &run.events[..k] {
            prefix.apply(*seq, *at_us, event);
        }
        let blob = encode_snapshot(&prefix, [7; 32], [8; 32]).expect("encode");
        let (mut restored, seq, _) = decode_snapshot(&blob, [7; 32]).expect("decode");
        prop_assert_eq!(seq, prefix.seq());
        prop_assert_eq!(&restored, &prefix);
        for (seq, at_us, event) in &run.events[k..] {
            restored.apply(*seq, *at_us, event);
        }
        prop_assert_eq!(&restored, &run.proj);

        // Balance at every seq equals the balance recorded while replaying.
        for (seq, expected) in run.history.iter().enumerate() {
            let seq = u64::try_from(seq).expect("small");
            prop_assert_eq!(&run.proj.balances_at_seq(seq), expected);
            for i in 0..ALL_USERS {
                prop_assert_eq!(run.proj.balance_at_seq(&user(i), seq), expected.get(&user(i)).copied());
            }
        }

        // Balance at a time equals the balance at the last seq recorded by then.
        let mut times: Vec<u64> = run.events.iter().flat_map(|(_, at, _)| [at.saturating_sub(1), *at, at + 1]).collect();
        times.dedup();
        for t in times {
            let last_seq = run.events.iter().take_while(|(_, at, _)| *at <= t).last().map_or(0, |(seq, ..)| *seq);
            for i in 0..ALL_USERS {
                prop_assert_eq!(run.proj.balance_at_time(&user(i), t), run.proj.balance_at_seq(&user(i), last_seq));
            }
        }

        // Stats agree with a recount from the transactions.
        for account in run.state.accounts() {
            let stats = run.proj.stats(&account.id).expect("open");
            for (class, counts) in [(&stats.completed, State::counts_completed as fn(State) -> bool), (&stats.pending, State::counts_pending)] {
                let (mut trades, mut entries, mut gross_in, mut gross_out) = (0u64, 0u64, Amount::ZERO, Amount::ZERO);
                let mut partners = std::collections::BTreeSet::new();
                for tx in run.state.transactions().filter(|t| counts(t.state)) {
                    let mut party = false;
                    for e in &tx.entries {
                        if e.payer == account.id {
                            (entries, gross_out, party) = (entries + 1, gross_out.checked_add(e.quant).expect("fits"), true);
                            partners.insert(e.payee.clone());
                        }
                        if e.payee == account.id {
                            (entries, gross_in, party) = (entries + 1, gross_in.checked_add(e.quant).expect("fits"), true);
                            partners.insert(e.payer.clone());
                        }
                    }
                    trades += u64::from(party);
                }
                prop_assert_eq!((class.trades, class.entries, class.gross_in, class.gross_out), (trades, entries, projections::Total::from(gross_in), projections::Total::from(gross_out)));
                prop_assert_eq!(class.partners, u64::try_from(partners.len()).expect("small"));
                prop_assert_eq!(class.volume, gross_in.checked_add(gross_out).expect("fits"));
            }
        }

        // Listings: `involving` finds exactly the transactions with the account in an entry.
        for i in 0..ALL_USERS {
            let id = user(i);
            let page = run.proj.transactions(&Query { involving: Some(id.clone()), ..Query::default() });
            let expected = run.state.transactions().filter(|t| t.entries.iter().any(|e| e.payer == id || e.payee == id)).count();
            prop_assert_eq!(page.total, expected);
        }
        prop_assert_eq!(run.proj.transactions(&Query::default()).total, run.state.transactions().count());
        // The read model has folded exactly the events written, the last one last.
        prop_assert_eq!(Some(head), run.events.last().map(|(seq, ..)| *seq));
        prop_assert_eq!(run.proj.last_at_us(), run.events.last().map_or(0, |(_, at, _)| *at));
    }
}
