//! Costs of the transparency-log primitives (issue 11's benchmarks): building
//! the RFC 6962 tree over N journal records, inclusion and consistency proofs
//! at that size, signing and verifying a checkpoint, and what a witness does
//! before it cosigns (check the signature and a consistency proof, then
//! cosign), plus the balances tree of a ledger's accounts.
//!
//! ```sh
//! cargo bench -p tlog --bench tlog                       # 10,000,000 leaves, 100,000 accounts
//! cargo bench -p tlog --bench tlog -- --leaves 1000000 --accounts 10000 --seconds 2
//! ```
//!
//! One thread throughout. Each figure is printed as a table row and as a
//! machine-readable `figure` line (docs/BENCHMARKS.md).

use std::time::{Duration, Instant};

use benchkit::Rng;
use tlog::balances::{BalanceLeaf, BalanceTree};
use tlog::checkpoint::{Checkpoint, LinkLine};
use tlog::merkle::{verify_consistency, verify_inclusion, Tree};
use tlog::note::{Note, NoteSigner};

const BENCH: benchkit::Bench = benchkit::Bench("tlog");

struct Options {
    leaves: u64,
    accounts: usize,
    seconds: f64,
}

fn options() -> Options {
    let mut o = Options { leaves: 10_000_000, accounts: 100_000, seconds: 3.0 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--leaves" => o.leaves = value().parse().expect("--leaves N"),
            "--accounts" => o.accounts = value().parse().expect("--accounts N"),
            "--seconds" => o.seconds = value().parse().expect("--seconds S"),
            "--bench" => {}
            other => panic!("unknown argument {other} (--leaves N, --accounts N, --seconds S)"),
        }
    }
    o
}

/// Runs `op` repeatedly for about `seconds`; returns operations per second
/// and the mean time of one.
fn rate(seconds: f64, mut op: impl FnMut()) -> (f64, Duration) {
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            op();
        }
        n += 64;
    }
    let elapsed = start.elapsed();
    (n as f64 / elapsed.as_secs_f64(), elapsed.div_f64(n as f64))
}

fn chain_hash(i: u64) -> [u8; 32] {
    // Stands in for a record's blake3 chain hash: 32 bytes that differ per record.
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&i.to_le_bytes());
    h[8..16].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    h
}

fn main() {
    let o = options();
    println!("tlog bench: {} leaves, {} accounts, {} s per measure, one thread", o.leaves, o.accounts, o.seconds);
    println!("| measure | result |");
    println!("|---|---|");

    // The tree, as the node keeps it: leaf n = record n's chain hash.
    let start = Instant::now();
    let mut tree = Tree::new();
    for i in 0..o.leaves {
        tree.push_data(&chain_hash(i));
    }
    let build = start.elapsed();
    let append_rate = o.leaves as f64 / build.as_secs_f64();
    println!("| append {} leaves | {:.2} s = {:.0} leaves/s |", o.leaves, build.as_secs_f64(), append_rate);
    BENCH.figure("append_leaves_per_s", append_rate, "leaves/s");

    let size = tree.len();
    let root = tree.root();
    let mut rng = Rng::new(0x5EED_0000_0000_0001);

    let (inc_rate, inc_mean) = rate(o.seconds, || {
        let index = rng.below(size);
        let proof = tree.inclusion_proof(index, size).expect("in range");
        std::hint::black_box(proof);
    });
    println!("| inclusion proof, random leaf, size {size} | {inc_rate:.0}/s ({:.2} µs) |", micros(inc_mean));
    BENCH.figure("inclusion_proofs_per_s", inc_rate, "proofs/s");

    // Proofs at an earlier size (a checkpoint older than the head) cost the
    // incomplete right edge's hashing too.
    let earlier = size - size / 3 - 1;
    let (inc_old_rate, inc_old_mean) = rate(o.seconds, || {
        let index = rng.below(earlier);
        std::hint::black_box(tree.inclusion_proof(index, earlier).expect("in range"));
    });
    println!("| inclusion proof at an earlier size {earlier} | {inc_old_rate:.0}/s ({:.2} µs) |", micros(inc_old_mean));
    BENCH.figure("inclusion_proofs_earlier_size_per_s", inc_old_rate, "proofs/s");

    let index = rng.below(size);
    let proof = tree.inclusion_proof(index, size).expect("in range");
    let leaf = tlog::merkle::leaf_hash(&chain_hash(index));
    let (ver_rate, ver_mean) = rate(o.seconds, || {
        verify_inclusion(index, size, &leaf, &proof, &root).expect("valid proof");
    });
    println!("| verify an inclusion proof ({} hashes) | {ver_rate:.0}/s ({:.2} µs) |", proof.len(), micros(ver_mean));
    BENCH.figure("inclusion_verify_per_s", ver_rate, "proofs/s");

    let (con_rate, con_mean) = rate(o.seconds, || {
        let from = 1 + rng.below(size - 1);
        std::hint::black_box(tree.consistency_proof(from, size).expect("in range"));
    });
    println!("| consistency proof, random size → {size} | {con_rate:.0}/s ({:.2} µs) |", micros(con_mean));
    BENCH.figure("consistency_proofs_per_s", con_rate, "proofs/s");

    // A checkpoint as a node signs it, with three link lines.
    let signer = NoteSigner::new("ccnode.test/trunk", &[7u8; 32]).expect("valid name");
    let witness = NoteSigner::new("ccnode.test/branch", &[9u8; 32]).expect("valid name");
    let links = (0..3)
        .map(|i| LinkLine { neighbour: format!("neighbour{i}"), version: 1000 + i, head: chain_hash(i) })
        .collect();
    let checkpoint = Checkpoint::ccnode("ccnode.test/trunk", size, root, chain_hash(42), links);
    let text = checkpoint.text();

    let (sign_rate, sign_mean) = rate(o.seconds, || {
        std::hint::black_box(signer.sign(&text));
    });
    println!("| sign a checkpoint (Ed25519 note signature) | {sign_rate:.0}/s ({:.1} µs) |", micros(sign_mean));
    BENCH.figure("checkpoint_sign_us", micros(sign_mean), "us");

    let signed = Note { text: text.clone(), signatures: vec![signer.sign(&text)] }.encode();
    let trusted = [signer.verifier_key()];
    let (cv_rate, cv_mean) = rate(o.seconds, || {
        let note = Note::parse(signed.as_bytes()).expect("parses");
        note.verify(&trusted).expect("verifies");
    });
    println!("| parse and verify a signed checkpoint | {cv_rate:.0}/s ({:.1} µs) |", micros(cv_mean));
    BENCH.figure("checkpoint_verify_us", micros(cv_mean), "us");

    // What a witness does before it answers: the signature, the consistency
    // proof from the size it last cosigned (a third of the tree back), then
    // its cosignature.
    let last = size - size / 3;
    let last_root = tree.root_at(last).expect("in range");
    let consistency = tree.consistency_proof(last, size).expect("in range");
    let (w_rate, w_mean) = rate(o.seconds, || {
        let note = Note::parse(signed.as_bytes()).expect("parses");
        note.verify(&trusted).expect("verifies");
        let cp = Checkpoint::parse(&note.text).expect("a checkpoint");
        verify_consistency(last, cp.size, &last_root, &cp.root, &consistency).expect("consistent");
        std::hint::black_box(witness.cosign(&note.text, 1_700_000_000));
    });
    println!(
        "| witness: verify signature + consistency proof ({} hashes) + cosign | {w_rate:.0}/s ({:.1} µs) |",
        consistency.len(),
        micros(w_mean)
    );
    BENCH.figure("witness_cosign_us", micros(w_mean), "us");

    // The balances tree of a ledger: N accounts summing to zero.
    let mut leaves: Vec<BalanceLeaf> = (0..o.accounts)
        .map(|i| BalanceLeaf {
            account: format!("member{i:07}"),
            balance: (rng.below(2_000_000) as i128) - 1_000_000,
            min: -1_000_000_000,
            max: 1_000_000_000,
        })
        .collect();
    let total: i128 = leaves.iter().map(|l| l.balance).sum();
    leaves.push(BalanceLeaf {
        account: "zz-balancing".into(),
        balance: -total,
        min: i128::MIN / 4,
        max: i128::MAX / 4,
    });
    let start = Instant::now();
    let balances = BalanceTree::build(leaves).expect("sums to zero");
    let commitment = balances.commitment().expect("sums to zero");
    let bt = start.elapsed();
    println!("| build the balances tree of {} accounts and its commitment | {:.1} ms |", o.accounts + 1, millis(bt));
    BENCH.figure("balances_tree_build_ms", millis(bt), "ms");

    let accounts = o.accounts as u64;
    let (bp_rate, bp_mean) = rate(o.seconds, || {
        let name = format!("member{:07}", rng.below(accounts));
        std::hint::black_box(balances.proof(&name).expect("present"));
    });
    println!("| balance proof of a random account | {bp_rate:.0}/s ({:.1} µs) |", micros(bp_mean));
    BENCH.figure("balance_proofs_per_s", bp_rate, "proofs/s");

    let proof = balances.proof("member0000001").expect("present");
    let (bv_rate, bv_mean) = rate(o.seconds, || proof.verify(&commitment).expect("verifies"));
    println!("| verify a balance proof | {bv_rate:.0}/s ({:.1} µs) |", micros(bv_mean));
    BENCH.figure("balance_verify_per_s", bv_rate, "proofs/s");
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
