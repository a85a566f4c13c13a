//! Audit bundles: round trip, the golden fixture that pins the format, and
//! damage anywhere in a bundle (every single-byte flip, every truncation).

mod common;

use std::path::Path;

use journal::Journal;
use rand::Rng;
use replay::bundle::{audit_reader, RECORD_FIXED_BYTES};
use replay::{audit_file, export_to_file, AuditError};

const FIXTURE: &str = "tests/fixtures/golden-v1.ccaudit";

fn export(data: &Path, until: Option<u64>) -> Vec<u8> {
    let journal = Journal::open_read_only(&data.join("journal")).expect("open");
    let out = data.join("bundle.ccaudit");
    export_to_file(&journal, until, &out, &mut |_| {}).expect("export");
    std::fs::read(&out).expect("read bundle")
}

fn audit_bytes(bytes: &[u8]) -> Result<replay::AuditSummary, AuditError> {
    audit_reader(bytes, u64::try_from(bytes.len()).expect("fits"), &mut |_| {})
}

/// Byte ranges of each record in a bundle: (seq, start, end).
fn record_ranges(bytes: &[u8]) -> Vec<(u64, usize, usize)> {
    let identity_len = usize::try_from(u32::from_le_bytes(bytes[12..16].try_into().expect("4"))).expect("fits");
    let mut pos = 16 + identity_len + 32;
    let count = u64::from_le_bytes(bytes[pos..pos + 8].try_into().expect("8"));
    pos += 8;
    let checkpoints = usize::try_from(u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4"))).expect("fits");
    pos += 4 + checkpoints * 40;
    let mut out = Vec::new();
    for seq in 1..=count {
        let len_at = pos + RECORD_FIXED_BYTES - 4;
        let len = usize::try_from(u32::from_le_bytes(bytes[len_at..len_at + 4].try_into().expect("4"))).expect("fits");
        out.push((seq, pos, pos + RECORD_FIXED_BYTES + len));
        pos += RECORD_FIXED_BYTES + len;
    }
    out
}

#[test]
fn export_then_audit_recomputes_the_same_ledger() {
    let mut s = common::Seeded::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let options = replay::synth::SynthOptions {
        events: 500,
        seed: s.seed,
        accounts: 8,
        batch: 5,
        journal: journal::Options { checkpoint_interval_records: 32, ..Default::default() },
        ..Default::default()
    };
    let (head, state) = replay::synth::write_payments_journal(&dir.path().join("journal"), &options).expect("journal");
    let summary = audit_bytes(&export(dir.path(), None)).expect("audit");
    assert_eq!((summary.records, summary.head_seq, summary.head_hash), (head.seq, head.seq, head.hash));
    let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
    assert!(journal.checkpoints().len() >= 10, "the journal has checkpoints to check");
    assert_eq!(summary.checkpoints, journal.checkpoints().len());
    assert_eq!(summary.accounts, 8);
    assert!(summary.sums.completed.is_zero() && summary.sums.pending.is_zero());
    assert_eq!(summary.transactions.iter().map(|(_, n)| *n).sum::<u64>(), state.transactions_written);
    // The auditor's balances are the generator's.
    let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
    let point = replay::state_at(&journal, replay::Until::Head, &mut |_| {}).expect("replay");
    for account in point.projections.accounts() {
        assert_eq!(point.projections.balances(&account.id), state.balances_of(&account.id), "{}", account.id);
    }

    // A prefix: records and checkpoints up to the seq only.
    let until = s.rng.gen_range(0..=head.seq);
    let summary = audit_bytes(&export(dir.path(), Some(until))).expect("audit prefix");
    assert_eq!(summary.records, until);
    assert_eq!(summary.checkpoints, journal.checkpoints().iter().filter(|c| c.seq <= until).count());
    let expected = if until == 0 { journal.genesis() } else { journal.read(until).expect("record").hash };
    assert_eq!(summary.head_hash, expected);
}

/// `payment`, `bill`, `credit`, `pay`, `3rdparty` as ccnode first shipped them (2026-11).
fn first_shipped_workflows() -> Vec<ledger::Workflow> {
    [
        ("payment", "Immediate payment", "_C-"),
        ("bill", "Bill: payee requests, payer signs", "_P+PC-PE-PE+"),
        ("credit", "Credit: payer proposes, payee signs", "|P-PC+PE-CE0"),
        ("pay", "Pay: payer pays, completes at once; an admin may erase", "_C-CE0"),
        ("3rdparty", "Third party: an admin records it, completes at once", "_C0"),
    ]
    .into_iter()
    .map(|(id, label, code)| {
        let mut w = ledger::Workflow::from_code(code).expect("code");
        w.id = ledger::WorkflowId::new(id).expect("id");
        w.label = label.to_owned();
        w
    })
    .collect()
}

/// The golden fixture pins the byte format: a fixed synthetic journal
/// exports to exactly these bytes, and the fixture audits to a pinned head.
/// `REPLAY_BLESS=1` rewrites it after a deliberate format change.
#[test]
fn the_golden_bundle_is_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = replay::synth::SynthOptions {
        node: "golden".to_owned(),
        events: 40,
        seed: 2026,
        accounts: 4,
        batch: 4,
        start_us: 1_796_000_000_000_000,
        journal: journal::Options { checkpoint_interval_records: 16, ..Default::default() },
        // The workflows the fixture was written with (ccnode's first shipped set), frozen here.
        workflows: Some(first_shipped_workflows()),
        // Written before event format 2: the format-1 reader must keep reading it.
        event_format: ledger::EVENT_FORMAT_V1,
        ..Default::default()
    };
    replay::synth::write_payments_journal(&dir.path().join("journal"), &options).expect("journal");
    let bytes = export(dir.path(), None);
    if std::env::var_os("REPLAY_BLESS").is_some() {
        std::fs::write(FIXTURE, &bytes).expect("bless");
    }
    let golden = std::fs::read(FIXTURE).expect("fixture (REPLAY_BLESS=1 to create)");
    assert_eq!(bytes, golden, "the bundle format changed; bump BUNDLE_VERSION");
    assert_eq!(&golden[..8], b"CCNAUDIT");
    assert_eq!(&golden[8..12], &1u32.to_le_bytes());
    let summary = audit_file(Path::new(FIXTURE), &mut |_| {}).expect("the fixture audits");
    assert_eq!((summary.identity.as_str(), summary.records, summary.checkpoints), ("golden", 40, 2));
    assert_eq!(summary.head_hash.to_hex(), GOLDEN_HEAD);
}

const GOLDEN_HEAD: &str = include_str!("fixtures/golden-v1.head");

/// The same payments in event format 1 and 2 audit and replay to the same
/// ledger: the same accounts, balances, and every transaction equal,
/// workflow definition included (format 2 names it, the fold puts it back).
/// The format-2 journal has one more record per workflow used (its
/// definition).
#[test]
fn format_1_and_format_2_journals_of_the_same_payments_audit_alike() {
    let s = common::Seeded::new();
    let mut runs = Vec::new();
    for event_format in [ledger::EVENT_FORMAT_V1, ledger::EVENT_FORMAT_VERSION] {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = replay::synth::SynthOptions {
            // The same payments: format 2 adds the definitions of payment and bill.
            events: if event_format == ledger::EVENT_FORMAT_V1 { 2_000 } else { 2_002 },
            seed: s.seed,
            accounts: 12,
            // One command per batch, so record times (which decide sees) do
            // not depend on how many records a command takes.
            batch: 1,
            event_format,
            ..Default::default()
        };
        replay::synth::write_payments_journal(&dir.path().join("journal"), &options).expect("journal");
        let bytes = export(dir.path(), None);
        let summary = audit_bytes(&bytes).expect("audit");
        let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
        let point = replay::state_at(&journal, replay::Until::Head, &mut |_| {}).expect("replay");
        runs.push((summary, point.projections));
    }
    let ((v1, p1), (v2, p2)) = (&runs[0], &runs[1]);
    assert_eq!((v1.accounts, v1.transactions, v1.bookings), (v2.accounts, v2.transactions, v2.bookings));
    assert_eq!(v2.records, v1.records + 2, "format 2 journals the definitions of payment and bill once");
    let all = projections::Query::default();
    let (t1, t2) = (p1.transactions(&all).items, p2.transactions(&all).items);
    assert!(t1.len() > 100, "the journals hold transactions to compare");
    assert_eq!(t1.len(), t2.len());
    for (a, b) in t1.iter().zip(&t2) {
        assert_eq!(a, b, "every transaction, workflow included");
    }
    for account in p1.accounts() {
        assert_eq!(p1.balances(&account.id), p2.balances(&account.id), "balances of {}", account.id);
    }
}

#[test]
fn every_single_byte_flip_is_caught_and_flips_in_a_record_name_its_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::journal(dir.path(), 30, 5);
    let bytes = export(dir.path(), None);
    assert!(audit_bytes(&bytes).is_ok());
    let ranges = record_ranges(&bytes);
    for offset in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[offset] ^= 0x01;
        let error = match audit_bytes(&damaged) {
            Ok(_) => panic!("a flip at byte {offset} went unnoticed"),
            Err(e) => e,
        };
        if let Some(&(seq, _, _)) = ranges.iter().find(|(_, start, end)| (*start..*end).contains(&offset)) {
            assert_eq!(error.seq(), Some(seq), "flip at byte {offset} (record {seq}): {error}");
        }
    }
}

#[test]
fn every_truncation_and_any_trailing_garbage_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::journal(dir.path(), 12, 9);
    let bytes = export(dir.path(), None);
    for len in 0..bytes.len() {
        assert!(audit_bytes(&bytes[..len]).is_err(), "truncated to {len} bytes went unnoticed");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(audit_bytes(&longer), Err(AuditError::Damage(_))));
}

#[test]
fn a_damaged_journal_is_not_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::journal(dir.path(), 50, 4);
    let (segment, offset) = common::payload_offset(&dir.path().join("journal"), 20);
    // Damage the payload and fix the frame checksum, so only the hash is wrong.
    let mut seg = std::fs::read(&segment).expect("segment");
    seg[offset] ^= 0x04;
    let body = offset - journal::BODY_FIXED_BYTES;
    let body_len = usize::try_from(u32::from_le_bytes(seg[body - 12..body - 8].try_into().expect("4"))).expect("fits");
    let crc = crc32c(&seg[body..body + body_len]);
    seg[body - 4..body].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, seg).expect("write");
    let journal = Journal::open_read_only(&dir.path().join("journal")).expect("open");
    match export_to_file(&journal, None, &dir.path().join("out"), &mut |_| {}) {
        Err(replay::bundle::ExportError::Tampered { seq }) => assert_eq!(seq, 20),
        other => panic!("expected a refusal at seq 20, got {other:?}"),
    }
}

/// CRC-32C (Castagnoli), bitwise: enough for one test frame.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
