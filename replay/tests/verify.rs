//! `verify_data_dir`: sound directories pass; damage, bad events, broken
//! limits and a disagreeing snapshot are each named precisely.

mod common;

use journal::{Journal, Options};
use ledger::{
    encode_event, encode_event_v1, Account, AccountId, AccountKind, AccountStatus, Amount, Entry, Event, Limits,
    NodeConfig, NodeName, State, Transaction, TxId, Workflow,
};
use projections::SnapshotStore;
use rand::Rng;
use replay::{verify_data_dir, FindingKind, VerifyFailure};

fn run(dir: &std::path::Path) -> replay::VerifyOutcome {
    verify_data_dir(dir, &mut |_| {}).expect("verify runs")
}

fn save_snapshot(data: &std::path::Path, until: u64) {
    let journal = Journal::open_read_only(&data.join("journal")).expect("open");
    let point = replay::state_at(&journal, replay::Until::Seq(until), &mut |_| {}).expect("replay");
    let store = SnapshotStore::open(&data.join("projections")).expect("store");
    store.save(&point.projections, journal.genesis().0, point.hash.0).expect("save");
}

#[test]
fn a_sound_directory_passes_with_and_without_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = common::journal(dir.path(), 300, 11);
    let outcome = run(dir.path());
    assert_eq!(outcome.failure, None);
    assert_eq!((outcome.records, outcome.head_seq), (head.seq, head.seq));
    assert_eq!(outcome.snapshot, "no snapshot directory");
    assert_eq!(outcome.accounts, 6);

    save_snapshot(dir.path(), head.seq);
    let outcome = run(dir.path());
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.snapshot, format!("matches the journal at seq {}", head.seq));

    // A stale snapshot (the node crashed before saving again) is compared at its own seq.
    save_snapshot(dir.path(), 123);
    let outcome = run(dir.path());
    assert_eq!((outcome.failure, outcome.snapshot), (None, "matches the journal at seq 123".to_owned()));
}

#[test]
fn a_flipped_byte_in_any_record_is_reported_with_its_seq() {
    let mut s = common::Seeded::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let head = common::journal(dir.path(), 200, s.seed);
    let seq = s.rng.gen_range(1..=head.seq);
    let (segment, offset) = common::payload_offset(&dir.path().join("journal"), seq);
    common::flip(&segment, offset + 2);
    match run(dir.path()).failure {
        Some(VerifyFailure::Chain { seq: found, .. }) => assert_eq!(found, seq),
        other => panic!("expected chain damage at {seq}, got {other:?}"),
    }
}

#[test]
fn a_snapshot_that_disagrees_with_the_journal_names_the_first_difference() {
    // Two ledgers of the same node name: the snapshot of one, tagged with the
    // other's hash at the same seq, is "the stored snapshot" of the other.
    let (real, other) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    common::journal(real.path(), 100, 1);
    common::journal(other.path(), 100, 2);
    let seq = 60;
    let real_journal = Journal::open_read_only(&real.path().join("journal")).expect("open");
    let other_journal = Journal::open_read_only(&other.path().join("journal")).expect("open");
    let forged = replay::state_at(&other_journal, replay::Until::Seq(seq), &mut |_| {}).expect("replay").projections;
    let store = SnapshotStore::open(&real.path().join("projections")).expect("store");
    store.save(&forged, real_journal.genesis().0, real_journal.read(seq).expect("record").hash.0).expect("save");
    drop(store);
    match run(real.path()).failure {
        Some(VerifyFailure::Snapshot { seq: at, detail }) => {
            assert_eq!(at, seq);
            assert!(detail.starts_with("account u") && detail.contains("in the journal"), "{detail}");
        }
        other => panic!("expected a snapshot difference, got {other:?}"),
    }

    // A snapshot taken at another history's hash is named too.
    let store = SnapshotStore::open(&real.path().join("projections")).expect("store");
    store.save(&forged, real_journal.genesis().0, [7; 32]).expect("save");
    drop(store);
    match run(real.path()).failure {
        Some(VerifyFailure::Snapshot { seq: at, detail }) => {
            assert_eq!(at, seq);
            assert!(detail.contains("taken at hash 0707"), "{detail}");
        }
        other => panic!("expected a snapshot hash mismatch, got {other:?}"),
    }
}

fn id(s: &str) -> AccountId {
    AccountId::new(s).expect("id")
}

/// A journal written without `decide`: events a node would never write.
fn raw_journal(dir: &std::path::Path, events: &[Vec<u8>]) {
    let mut journal = Journal::create(&dir.join("journal"), "raw", Options::default()).expect("create");
    journal.append_batch_at(1_790_000_000_000_000, events).expect("append");
}

fn setup() -> Vec<Vec<u8>> {
    let mut out =
        vec![encode_event(&Event::NodeInitialised { config: NodeConfig::new(NodeName::new("raw").expect("name")) })];
    for name in ["a", "b"] {
        let limits = Limits::new(Amount::from_units(-10), Amount::from_units(10)).expect("limits");
        let account =
            Account { id: id(name), kind: AccountKind::User { admin: false }, limits, status: AccountStatus::Active };
        out.push(encode_event(&Event::AccountOpened { account }));
    }
    out
}

fn payment(quant: i64, payer: &str) -> Vec<u8> {
    let entry = Entry {
        payer: id(payer),
        payee: id(if payer == "a" { "b" } else { "a" }),
        quant: Amount::from_units(quant),
        description: String::new(),
        metadata: Default::default(),
        remote: Default::default(),
    };
    let transaction = Transaction {
        uuid: TxId(uuid::Uuid::from_u128(
            u128::try_from(quant).expect("positive") + if payer == "a" { 0 } else { 1000 },
        )),
        version: 1,
        state: State::Completed,
        workflow: Workflow::from_code("_C-").expect("code"),
        author: id(payer),
        written_unix_s: 0,
        entries: vec![entry],
    };
    encode_event_v1(&Event::TransactionProposed { transaction })
}

#[test]
fn a_payment_beyond_a_limit_is_named_with_seq_and_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut events = setup();
    events.push(payment(6, "a"));
    events.push(payment(5, "a")); // a: -11 < -10
    raw_journal(dir.path(), &events);
    match run(dir.path()).failure {
        Some(VerifyFailure::Ledger(finding)) => {
            assert_eq!(finding.seq, 5);
            match finding.kind {
                FindingKind::LimitBroken { account, balance, .. } => {
                    assert_eq!((account.as_str(), balance), ("a", Amount::from_units(-11)));
                }
                other => panic!("expected a limit finding, got {other:?}"),
            }
        }
        other => panic!("expected a ledger finding, got {other:?}"),
    }
}

#[test]
fn undecodable_and_impossible_events_are_findings_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut events = setup();
    events.push(vec![1, 255, 255, 255]);
    raw_journal(dir.path(), &events);
    assert!(matches!(run(dir.path()).failure, Some(VerifyFailure::Decode { seq: 4, .. })));

    let dir = tempfile::tempdir().expect("tempdir");
    let mut events = setup();
    events.push(encode_event(&Event::AccountStatusChanged { id: id("ghost"), status: AccountStatus::Blocked }));
    raw_journal(dir.path(), &events);
    match run(dir.path()).failure {
        Some(VerifyFailure::Ledger(f)) => {
            assert_eq!((f.seq, f.kind), (4, FindingKind::UnknownAccount { account: "ghost".into() }))
        }
        other => panic!("expected unknown account, got {other:?}"),
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut events = setup();
    events.push(payment(3, "b"));
    events.push(payment(3, "b")); // the same uuid twice
    raw_journal(dir.path(), &events);
    match run(dir.path()).failure {
        Some(VerifyFailure::Ledger(f)) => {
            assert_eq!(f.seq, 5);
            assert!(matches!(f.kind, FindingKind::DuplicateTransaction { .. }), "{:?}", f.kind);
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

#[test]
fn a_missing_journal_cannot_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(verify_data_dir(dir.path(), &mut |_| {}).is_err());
}

#[test]
fn balances_beyond_exact_decimal_range_are_an_overflow_finding() {
    let big: Amount = "50000000000000000000000".parse().expect("amount");
    let huge: Amount = "7000000000000000000000000".parse().expect("amount");
    let mut events =
        vec![encode_event(&Event::NodeInitialised { config: NodeConfig::new(NodeName::new("raw").expect("name")) })];
    for name in ["a", "b"] {
        let limits = Limits::new(Amount::ZERO.checked_sub(huge).expect("neg"), huge).expect("limits");
        let account =
            Account { id: id(name), kind: AccountKind::User { admin: false }, limits, status: AccountStatus::Active };
        events.push(encode_event(&Event::AccountOpened { account }));
    }
    for n in 0..2u128 {
        let entry = Entry {
            payer: id("a"),
            payee: id("b"),
            quant: big,
            description: String::new(),
            metadata: Default::default(),
            remote: Default::default(),
        };
        let transaction = Transaction {
            uuid: TxId(uuid::Uuid::from_u128(n)),
            version: 1,
            state: State::Completed,
            workflow: Workflow::from_code("_C-").expect("code"),
            author: id("a"),
            written_unix_s: 0,
            entries: vec![entry],
        };
        events.push(encode_event_v1(&Event::TransactionProposed { transaction }));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    raw_journal(dir.path(), &events);
    match run(dir.path()).failure {
        Some(VerifyFailure::Ledger(f)) => {
            assert_eq!((f.seq, f.kind), (5, FindingKind::Overflow { account: "b".into() }))
        }
        other => panic!("expected an overflow at seq 5, got {other:?}"),
    }
}

/// `verify_store` (any `journal::Store`, used for PostgreSQL) agrees with
/// `verify_data_dir` on segment files: the same outcome and the same snapshot
/// comparison (damage in segment files is refused when they are opened; in
/// a database it is found by reading, tested in `tests/e2e/postgres.rs`).
#[test]
fn verify_store_agrees_with_verify_data_dir() {
    let s = common::Seeded::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let head = common::journal(dir.path(), 250, s.seed);
    save_snapshot(dir.path(), 120);
    let by_store = |dir: &std::path::Path| {
        let journal = Journal::open_read_only(&dir.join("journal")).expect("open");
        replay::verify_store(&journal, dir, &mut |_| {}).expect("verify runs")
    };
    let (files, store) = (run(dir.path()), by_store(dir.path()));
    assert_eq!(store.failure, None);
    assert_eq!(
        (store.records, store.head_seq, &store.head_hash, store.accounts, store.transactions, &store.snapshot),
        (files.records, files.head_seq, &files.head_hash, files.accounts, files.transactions, &files.snapshot)
    );
    assert_eq!(store.snapshot, "matches the journal at seq 120");
    assert_eq!(store.head_seq, head.seq, "seed {}", s.seed);
}
