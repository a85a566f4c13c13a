//! Test harness for `tests/it/kill.rs`: appends batches to the journal in
//! `DIR` forever and prints `acked SEQ` after each acknowledged batch.
//! Usage: `journal-kill-writer DIR SEED`.

use std::io::Write;

use journal::{Journal, Options};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: journal-kill-writer DIR SEED"));
    let mut state: u64 = args.next().and_then(|s| s.parse().ok()).expect("usage: journal-kill-writer DIR SEED");
    let mut journal =
        Journal::open_or_create(&dir, "kill-node", Options { segment_bytes: 64 << 10, ..Options::default() })
            .expect("open the journal");
    let mut stdout = std::io::stdout().lock();
    loop {
        // xorshift: batch sizes vary from 1 to 64 records.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let records = 1 + state % 64;
        let first = journal.head().seq + 1;
        let batch: Vec<Vec<u8>> = (first..first + records).map(payload).collect();
        let ack = journal.append_batch(&batch).expect("append");
        writeln!(stdout, "acked {}", ack.head.seq).expect("report");
        stdout.flush().expect("report");
    }
}

/// Must match `expected_payload` in `tests/it/kill.rs`.
fn payload(seq: u64) -> Vec<u8> {
    let len = usize::try_from(16 + seq % 240).expect("small");
    seq.to_le_bytes().iter().copied().cycle().take(len).collect()
}
