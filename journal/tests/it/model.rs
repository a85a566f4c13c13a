//! The journal behaves like a `Vec<payload>` with a valid chain, across
//! random batches and reopens.

use journal::{verify_dir, Journal, VerifyOptions};
use proptest::prelude::*;

use crate::{payloads, read_all, small_options};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Vec<u8>>),
    Reopen,
    ReadRange(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..12).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::ReadRange(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn journal_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), "model-node", small_options()).unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            match op {
                Op::Append(batch) => {
                    let ack = journal.append_batch(&batch).unwrap();
                    prop_assert_eq!(ack.first_seq, model.len() as u64 + 1);
                    model.extend(batch);
                    prop_assert_eq!(ack.head.seq, model.len() as u64);
                }
                Op::Reopen => {
                    let head = journal.head();
                    drop(journal);
                    journal = Journal::open(dir.path(), small_options()).unwrap();
                    prop_assert_eq!(journal.head(), head);
                }
                Op::ReadRange(a, b) => {
                    if model.is_empty() { continue; }
                    let len = model.len() as u64;
                    let from = u64::from(a) % len + 1;
                    let to = from + u64::from(b) % (len - from + 1);
                    let got: Vec<Vec<u8>> = journal.range(from, to).unwrap().map(|r| r.unwrap().payload).collect();
                    let want = &model[usize::try_from(from - 1).unwrap()..usize::try_from(to).unwrap()];
                    prop_assert_eq!(got, want.to_vec());
                }
            }
            prop_assert_eq!(journal.head().seq, model.len() as u64);
        }
        prop_assert_eq!(payloads(&journal), model.clone());
        let records = read_all(&journal);
        let mut prev = journal.genesis();
        for (idx, record) in records.iter().enumerate() {
            prop_assert_eq!(record.seq, idx as u64 + 1);
            prop_assert_eq!(record.prev_hash, prev);
            prop_assert!(record.hash_is_valid());
            prev = record.hash;
        }
        drop(journal);
        for threads in [1, 3] {
            let report = verify_dir(dir.path(), VerifyOptions { threads, ..VerifyOptions::default() }, &mut |_| {}).unwrap();
            prop_assert!(report.is_ok(), "{:?}", report.problem);
            prop_assert_eq!(report.records_verified, model.len() as u64);
            prop_assert_eq!(report.last_hash, prev);
        }
        let reopened = Journal::open(dir.path(), small_options()).unwrap();
        prop_assert_eq!(payloads(&reopened), model);
    }
}
