//! A real process appends in a loop and is SIGKILLed at a random moment:
//! every seq it reported as acknowledged must survive, and the chain verifies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use journal::{verify_dir, Journal, Options, VerifyOptions};
use rand::Rng;

use crate::{read_all, seeded_rng};

#[test]
fn acknowledged_records_survive_sigkill() {
    let (mut rng, _) = seeded_rng("JOURNAL_KILL_SEED");
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let child_seed: u64 = rng.gen();
        let run_for = Duration::from_millis(rng.gen_range(30..400));
        let mut child = Command::new(env!("CARGO_BIN_EXE_journal-kill-writer"))
            .arg(dir.path())
            .arg(child_seed.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("acked ") {
                    if tx.send(seq.parse::<u64>().expect("a seq")).is_err() {
                        break;
                    }
                }
            }
        });
        let started = Instant::now();
        let mut acked = 0u64;
        while started.elapsed() < run_for {
            if let Ok(seq) = rx.recv_timeout(Duration::from_millis(5)) {
                acked = acked.max(seq);
            }
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        reader.join().unwrap();
        acked = rx.try_iter().fold(acked, u64::max);

        let journal = Journal::open(dir.path(), Options::default()).unwrap();
        assert!(
            journal.head().seq >= acked,
            "round {round}: acknowledged seq {acked} lost, head is {}",
            journal.head().seq
        );
        for record in read_all(&journal) {
            assert_eq!(record.payload, expected_payload(record.seq), "round {round}: seq {}", record.seq);
        }
        drop(journal);
        let report = verify_dir(dir.path(), VerifyOptions::default(), &mut |_| {}).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problem);
        eprintln!("round {round}: killed after {run_for:?} with {acked} acknowledged, head {}", report.last_seq);
    }
}

/// Must match `src/bin/kill_writer.rs`.
fn expected_payload(seq: u64) -> Vec<u8> {
    let len = usize::try_from(16 + seq % 240).unwrap();
    seq.to_le_bytes().iter().copied().cycle().take(len).collect()
}
