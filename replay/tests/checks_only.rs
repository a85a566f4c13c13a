//! The audit's fold (`Projections::checks_only`) is the node's fold: over
//! the same events it refuses exactly what the full projections refuse, with
//! the same findings, and ends with the same accounts, balances and
//! transaction states; it only keeps fewer read models.

mod common;

use journal::Journal;
use ledger::{decode_event, Amount, Event};
use projections::Projections;
use rand::Rng;

#[test]
fn the_checks_only_fold_refuses_and_keeps_what_the_full_fold_does() {
    let mut s = common::Seeded::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let options = replay::synth::SynthOptions {
        events: 3_000,
        seed: s.seed,
        accounts: 12,
        batch: 7,
        limit_units: 300,
        ..Default::default()
    };
    replay::synth::write_payments_journal(&dir.path().join("journal"), &options).expect("journal");
    let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
    let records: Vec<(u64, u64, Event)> = journal
        .iter_from(1)
        .expect("iter")
        .map(|r| {
            let r = r.expect("record");
            (r.seq, r.recorded_at_us, decode_event(&r.payload).expect("event"))
        })
        .collect();

    let (mut full, mut audit) = (Projections::new(), Projections::checks_only());
    assert!(audit.is_checks_only() && !full.is_checks_only());
    let mut refused = 0;
    for (i, (seq, at_us, event)) in records.iter().enumerate() {
        // Before each real event, events already folded (again) and tampered
        // ones: both folds must refuse them with the same finding.
        let folded: Vec<&Event> = records[..i]
            .iter()
            .map(|(_, _, e)| e)
            .filter(|e| matches!(e, Event::TransactionProposedRef { .. } | Event::TransactionTransitioned { .. }))
            .collect();
        for _ in 0..2.min(folded.len()) {
            let other = folded[s.rng.gen_range(0..folded.len())];
            for bad in [other.clone(), tampered(other)] {
                let (a, b) = (full.try_apply(*seq, *at_us, &bad), audit.try_apply(*seq, *at_us, &bad));
                assert!(a.is_err(), "seq {seq}: {bad:?} was accepted");
                assert_eq!(a, b, "seq {seq}: {bad:?}");
                refused += 1;
            }
        }
        assert_eq!(full.try_apply(*seq, *at_us, event), Ok(()), "seq {seq}");
        assert_eq!(audit.try_apply(*seq, *at_us, event), Ok(()), "seq {seq}");
    }
    assert!(refused > 1_000, "{refused} refused events were compared");
    finish(&full, &audit);
    // Read models it does not keep.
    let busy = full.accounts().find(|a| full.timeline(&a.id).is_some_and(|t| !t.is_empty())).expect("a busy account");
    assert_eq!(audit.timeline(&busy.id), Some(vec![]));
    assert_eq!(audit.stats(&busy.id).expect("account").completed.trades, 0);
    assert!(full.stats(&busy.id).expect("account").completed.trades > 0);
    assert_ne!(full, audit);
}

fn finish(full: &Projections, audit: &Projections) {
    audit.assert_invariants();
    assert_eq!((full.seq(), full.account_count()), (audit.seq(), audit.account_count()));
    for account in full.accounts() {
        assert_eq!(audit.account(&account.id), Some(account));
        assert_eq!(full.balances(&account.id), audit.balances(&account.id), "{}", account.id);
    }
    assert_eq!(full.transactions_by_state(), audit.transactions_by_state());
    assert_eq!(full.balance_sums(), audit.balance_sums());
    assert_eq!(full.transaction_count(), audit.transaction_count());
}

/// The event as a new, completed transaction beyond every limit (a proposal) or its version moved
/// on (a transition): what a tampered journal would hold.
fn tampered(event: &Event) -> Event {
    let mut event = event.clone();
    match &mut event {
        Event::TransactionProposedRef { transaction } => {
            transaction.uuid = ledger::TxId(uuid::Uuid::from_u128(rand::random()));
            transaction.state = ledger::State::Completed; // booked, so limit-checked
            for entry in &mut transaction.entries {
                entry.quant = Amount::from_units(10_000); // beyond every limit
            }
        }
        Event::TransactionTransitioned { version, .. } => *version += 1,
        _ => {}
    }
    event
}
