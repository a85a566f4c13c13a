//! `state_at` (what `ccnode replay --until` prints) against the projections'
//! own historical queries, at random past points (seed from REPLAY_SEED).

mod common;

use journal::Journal;
use ledger::Amount;
use rand::Rng;
use replay::{state_at, ReplayError, Until};

#[test]
fn replay_until_a_seq_or_an_instant_agrees_with_the_balance_timeline() {
    let mut s = common::Seeded::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let head = common::journal(dir.path(), 400, s.seed);
    let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
    let full = state_at(&journal, Until::Head, &mut |_| {}).expect("full replay").projections;
    assert_eq!(full.seq(), head.seq);
    let records: Vec<journal::Record> = journal.iter_from(1).expect("iter").map(|r| r.expect("record")).collect();
    for _ in 0..60 {
        let seq = s.rng.gen_range(0..=head.seq);
        let point = state_at(&journal, Until::Seq(seq), &mut |_| {}).expect("replay");
        assert_eq!(point.seq, seq);
        let expected = full.balances_at_seq(seq);
        let got: std::collections::BTreeMap<_, _> = point
            .projections
            .accounts()
            .map(|a| (a.id.clone(), point.projections.balances(&a.id).unwrap_or_default().completed))
            .collect();
        assert_eq!(got, expected, "balances at seq {seq}");
        for account in full.accounts() {
            assert_eq!(
                point.projections.balances(&account.id).map(|b| b.completed),
                full.balance_at_seq(&account.id, seq)
            );
        }

        // An instant: a record's time, or between two records' times.
        let record = &records[s.rng.gen_range(0..records.len())];
        let at_us = record.recorded_at_us + s.rng.gen_range(0..2);
        let point = state_at(&journal, Until::Time(at_us), &mut |_| {}).expect("replay to an instant");
        let last = records.iter().filter(|r| r.recorded_at_us <= at_us).map(|r| r.seq).max().unwrap_or(0);
        assert_eq!(point.seq, last, "the last record at or before the instant");
        for account in full.accounts() {
            let replayed = point.projections.balances(&account.id).map(|b| b.completed);
            assert_eq!(replayed, full.balance_at_time(&account.id, at_us), "{} at {at_us}", account.id);
        }
    }
    let total: Amount =
        full.balances_at_seq(head.seq).values().fold(Amount::ZERO, |a, b| a.checked_add(*b).expect("sum"));
    assert!(total.is_zero());
}

#[test]
fn a_seq_beyond_the_head_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = common::journal(dir.path(), 30, 3);
    let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
    match state_at(&journal, Until::Seq(head.seq + 1), &mut |_| {}) {
        Err(ReplayError::BeyondHead { seq, head: h }) => assert_eq!((seq, h), (head.seq + 1, head.seq)),
        other => panic!("expected BeyondHead, got {other:?}"),
    }
    let empty = state_at(&journal, Until::Seq(0), &mut |_| {}).expect("seq 0");
    assert_eq!((empty.seq, empty.hash, empty.projections.account_count()), (0, journal.genesis(), 0));
}
