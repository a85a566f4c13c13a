//! Property tests of the link reconciliation state machine over random pairs
//! of link sequences (seed from REPLAY_SEED, printed on failure).

mod common;

use ledger::{State, TxId};
use md5::Digest;
use rand::Rng;
use replay::reconcile::{apply, dedup, reconcile, LinkVersion, Verdict};

const CASES: usize = 500;

/// A ratchet of `n` written versions following `from` (or the link's start).
fn extend(rng: &mut impl Rng, from: &[LinkVersion], n: usize, salt: u8) -> Vec<LinkVersion> {
    let mut out = from.to_vec();
    for _ in 0..n {
        let (prev_md5, prev_b3) = out.last().map_or(([0u8; 16], [0u8; 32]), |v| (v.md5, v.blake3));
        let new_tx = out.is_empty() || rng.gen_bool(0.5);
        let (uuid, version) = match out.last() {
            Some(last) if !new_tx => (last.uuid, last.version + 1),
            _ => (TxId(uuid::Uuid::from_u128(rng.gen())), 1),
        };
        let state = State::ALL[rng.gen_range(0..State::ALL.len())];
        let mut b3 = blake3::Hasher::new();
        b3.update(&prev_b3).update(uuid.0.as_bytes()).update(&version.to_le_bytes()).update(&[salt]);
        let mut md5 = md5::Md5::new();
        md5.update(prev_md5);
        md5.update(uuid.0.as_bytes());
        md5.update(version.to_le_bytes());
        md5.update([salt]);
        out.push(LinkVersion { uuid, version, state, md5: md5.finalize().into(), blake3: *b3.finalize().as_bytes() });
    }
    out
}

/// Re-delivers random earlier versions (identical copies) at random later places.
fn with_duplicates(rng: &mut impl Rng, seq: &[LinkVersion]) -> Vec<LinkVersion> {
    let mut out = seq.to_vec();
    if seq.is_empty() {
        return out;
    }
    for _ in 0..rng.gen_range(0..4) {
        let from = rng.gen_range(0..out.len());
        let to = rng.gen_range(from + 1..=out.len());
        let copy = out[from].clone();
        out.insert(to, copy);
    }
    out
}

/// Repairs until in sync; returns the number of steps, or the divergence.
fn repair(ours: &mut Vec<LinkVersion>, theirs: &mut Vec<LinkVersion>) -> Result<usize, Box<Verdict>> {
    for step in 0..3 {
        match reconcile(ours, theirs) {
            Verdict::InSync => return Ok(step),
            Verdict::PeerBehind { missing } => {
                apply(theirs, &missing);
            }
            Verdict::WeAreBehind { missing } => {
                apply(ours, &missing);
            }
            diverged @ Verdict::Diverged { .. } => return Err(Box::new(diverged)),
        }
    }
    panic!("repair did not converge in 3 steps");
}

#[test]
fn equal_sequences_are_in_sync_with_or_without_duplicates() {
    let mut s = common::Seeded::new();
    for _ in 0..CASES {
        let n = s.rng.gen_range(0..40);
        let seq = extend(&mut s.rng, &[], n, 0);
        assert_eq!(reconcile(&seq, &seq), Verdict::InSync);
        let dup = with_duplicates(&mut s.rng, &seq);
        assert_eq!(reconcile(&dup, &seq), Verdict::InSync);
        assert_eq!(reconcile(&seq, &dup), Verdict::InSync);
    }
}

#[test]
fn a_prefix_either_way_names_exactly_the_missing_versions_and_repair_converges() {
    let mut s = common::Seeded::new();
    for _ in 0..CASES {
        let common_len = s.rng.gen_range(0..30);
        let extra = s.rng.gen_range(1..30);
        let short = extend(&mut s.rng, &[], common_len, 0);
        let long = extend(&mut s.rng, &short, extra, 0);
        let tail = long[common_len..].to_vec();
        let (short_d, long_d) = (with_duplicates(&mut s.rng, &short), with_duplicates(&mut s.rng, &long));

        let verdict = reconcile(&long_d, &short_d);
        assert_eq!(verdict, Verdict::PeerBehind { missing: tail.clone() });
        assert_eq!(verdict.missing_count(), extra);
        assert_eq!(reconcile(&short_d, &long_d), Verdict::WeAreBehind { missing: tail.clone() });

        // We are behind: one repair step, then in sync; repeating the repair is a no-op.
        let (mut ours, mut theirs) = (short_d.clone(), long_d.clone());
        assert_eq!(repair(&mut ours, &mut theirs), Ok(1));
        assert_eq!(dedup(&ours), long);
        assert_eq!(apply(&mut ours, &tail), 0, "applying the same repair twice appends nothing");
        assert_eq!(reconcile(&ours, &theirs), Verdict::InSync);

        // The peer is behind: symmetric.
        let (mut ours, mut theirs) = (long_d, short_d);
        assert_eq!(repair(&mut ours, &mut theirs), Ok(1));
        assert_eq!(dedup(&theirs), long);
    }
}

#[test]
fn divergence_at_a_random_point_is_reported_with_both_records_and_never_repaired() {
    let mut s = common::Seeded::new();
    for _ in 0..CASES {
        let at = s.rng.gen_range(0..30);
        let prefix = extend(&mut s.rng, &[], at, 0);
        let (n1, n2) = (s.rng.gen_range(1..10), s.rng.gen_range(1..10));
        let ours = extend(&mut s.rng, &prefix, n1, 1);
        let theirs = extend(&mut s.rng, &prefix, n2, 2);
        let (ours_d, theirs_d) = (with_duplicates(&mut s.rng, &ours), with_duplicates(&mut s.rng, &theirs));
        let expected = Verdict::Diverged { index: at, ours: ours[at].clone(), theirs: theirs[at].clone() };
        assert_eq!(reconcile(&ours_d, &theirs_d), expected);
        let (mut o, mut t) = (ours_d.clone(), theirs_d.clone());
        assert_eq!(repair(&mut o, &mut t), Err(Box::new(expected)));
        assert_eq!((o, t), (ours_d, theirs_d), "a divergence changes nothing");
    }
}

#[test]
fn the_same_version_with_another_hash_is_a_divergence_not_a_duplicate() {
    let mut s = common::Seeded::new();
    for _ in 0..CASES {
        let n = s.rng.gen_range(1..20);
        let seq = extend(&mut s.rng, &[], n, 0);
        let i = s.rng.gen_range(0..seq.len());
        let mut forged = seq.clone();
        forged[i].blake3[s.rng.gen_range(0..32)] ^= 1;
        match reconcile(&seq, &forged) {
            Verdict::Diverged { index, ours, theirs } => {
                assert_eq!(index, i);
                assert_eq!((ours, theirs), (seq[i].clone(), forged[i].clone()));
            }
            other => panic!("expected a divergence at {i}, got {other:?}"),
        }
    }
}
