//! Golden fixtures: the encoded bytes are a compatibility promise.
//! `UPDATE_GOLDEN=1 cargo test -p ledger golden` rewrites the fixture;
//! otherwise any difference fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ledger::*;

use crate::{acc, amt, limits, tx_id, wid};

const FIXTURE: &str = "tests/fixtures/events-v1.bin";

/// `payment`, `bill` and `credit` as ccnode first shipped them (2026-11).
fn first_shipped_workflows() -> Vec<Workflow> {
    [
        ("payment", "Immediate payment", "_C-"),
        ("bill", "Bill: payee requests, payer signs", "_P+PC-PE-PE+"),
        ("credit", "Credit: payer proposes, payee signs", "|P-PC+PE-CE0"),
    ]
    .into_iter()
    .map(|(id, label, code)| {
        let mut w = Workflow::from_code(code).expect("code");
        w.id = wid(id);
        w.label = label.to_owned();
        w
    })
    .collect()
}

/// One event of every kind, with fixed values.
fn samples() -> Vec<Event> {
    let mut config = NodeConfig::new(NodeName::new("twig").expect("name"));
    // The fixture was written when these three were the whole default set;
    // their definitions are frozen here (the shipped set has changed since).
    config.workflows = first_shipped_workflows();
    let credit = config.workflows.iter().find(|w| w.id == wid("credit")).cloned().expect("credit");
    let transaction = Transaction {
        uuid: tx_id(0x3d8e_bb9f_6a29_42cb_9d39_9ee0_a6bf_7f1c),
        version: 0,
        state: State::Validated,
        workflow: credit,
        author: acc("alice"),
        written_unix_s: 1_700_000_000,
        entries: vec![
            Entry {
                payer: acc("alice"),
                payee: acc("branch"),
                quant: amt("14"),
                description: "test long distance for 3 from leaf".to_owned(),
                metadata: BTreeMap::new(),
                // Stored in format v1's one map under the party's id, as the fixture holds it.
                remote: BTreeMap::from([("branch".to_owned(), "branch2/bob".to_owned())]),
            },
            Entry {
                payer: acc("alice"),
                payee: acc("admin"),
                quant: amt("0.000001"),
                description: "fee".to_owned(),
                metadata: BTreeMap::new(),
                remote: BTreeMap::new(),
            },
        ],
    };
    let initialised = Event::NodeInitialised { config: config.clone() };
    config.validate_pending = false;
    config.workflows.push(Workflow::from_code("_C0CE-PE0CX-").expect("code"));
    vec![
        initialised,
        Event::NodeConfigured { config },
        Event::AccountOpened {
            account: Account {
                id: acc("alice"),
                kind: AccountKind::User { admin: true },
                limits: limits("-10.5", "1000000"),
                status: AccountStatus::Active,
            },
        },
        Event::AccountOpened {
            account: Account {
                id: acc("branch"),
                kind: AccountKind::Trunkward,
                limits: limits("-1", "1"),
                status: AccountStatus::Active,
            },
        },
        Event::AccountLimitsChanged { id: acc("alice"), limits: limits("-0.000001", "0") },
        Event::AccountStatusChanged { id: acc("alice"), status: AccountStatus::Blocked },
        Event::AccountKeyChanged { id: acc("alice"), key_hash: KeyHash { salt: [7; 16], hash: [0xab; 32] } },
        Event::PeerConnected {
            peer: Peer {
                account: acc("branch"),
                url: "https://branch.example/cc/".to_owned(),
                rate: Rate::new(rust_decimal::Decimal::new(25, 1)).expect("rate"),
                initial_hash: "trunk".to_owned(),
            },
        },
        Event::TransactionProposed { transaction },
        Event::TransactionTransitioned {
            uuid: tx_id(1),
            from: State::Pending,
            to: State::Completed,
            actor: acc("bob"),
            version: 2,
            at_unix_s: 1_700_000_300,
        },
        Event::TransactionExpired { uuid: tx_id(u128::MAX), version: 1, at_unix_s: u64::MAX },
    ]
}

/// Fixture layout: per event, a u32 little-endian length then the bytes,
/// in format 1 (every fixture but `events-v2.bin`).
fn blob(events: &[Event]) -> Vec<u8> {
    blob_with(events, encode_event_v1)
}

fn blob_with(events: &[Event], encode: fn(&Event) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let bytes = encode(e);
        out.extend_from_slice(&u32::try_from(bytes.len()).expect("small event").to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn split(mut blob: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !blob.is_empty() {
        let (len, rest) = blob.split_at(4);
        let len = usize::try_from(u32::from_le_bytes(len.try_into().expect("4 bytes"))).expect("fits");
        let (event, rest) = rest.split_at(len);
        out.push(event);
        blob = rest;
    }
    out
}

#[test]
fn golden_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let expected = blob(&samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, samples());
}

#[test]
fn pinned_small_encodings() {
    // Hand-checked bytes: version 1, variant 4 (AccountStatusChanged),
    // string "bob" (len 3), variant 1 (Blocked).
    let e = Event::AccountStatusChanged { id: acc("bob"), status: AccountStatus::Blocked };
    assert_eq!(encode_event_v1(&e), vec![1, 4, 3, b'b', b'o', b'b', 1]);
    // Format 2 encodes it the same after its version byte.
    assert_eq!(encode_event(&e), vec![2, 4, 3, b'b', b'o', b'b', 1]);
}

#[test]
fn decoding_refuses_bad_bytes() {
    let good = encode_event_v1(&samples()[5]);
    assert!(matches!(decode_event(&[]), Err(DecodeError::Empty)));
    let mut v3 = good.clone();
    v3[0] = 3;
    assert!(matches!(decode_event(&v3), Err(DecodeError::UnknownVersion { version: 3 })));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(decode_event(&trailing), Err(DecodeError::TrailingBytes { trailing: 1 })));
    assert!(matches!(decode_event(&good[..good.len() - 1]), Err(DecodeError::Body(_))));
    assert!(matches!(decode_event(&[1, 200]), Err(DecodeError::Body(_))));
    // An invalid account id ("a/b") is refused by the checking decoder.
    assert!(matches!(decode_event(&[1, 4, 3, b'a', b'/', b'b', 1]), Err(DecodeError::Body(_))));
    // A proposed transaction with no entries decodes but is refused.
    let Event::TransactionProposed { mut transaction } = samples()[8].clone() else { panic!("sample 8 is a proposal") };
    transaction.entries.clear();
    let empty = encode_event_v1(&Event::TransactionProposed { transaction: transaction.clone() });
    assert!(matches!(decode_event(&empty), Err(DecodeError::Invalid { .. })));
    let empty = encode_event(&Event::TransactionProposedRef { transaction: transaction.to_ref() });
    assert!(matches!(decode_event(&empty), Err(DecodeError::Invalid { .. })));
    // Amount -1.0 (mantissa -10, scale 1) is not canonical.
    let limits_changed = [1u8, 3, 1, b'a', 19, 1, 0, 0];
    assert!(matches!(decode_event(&limits_changed), Err(DecodeError::Body(_))));
}

const FEDERATION_FIXTURE: &str = "tests/fixtures/events-v1-federation.bin";

/// The events federation added (appended variants 10–13 of format version 1;
/// the older fixture above is untouched by them).
fn federation_samples() -> Vec<Event> {
    vec![
        Event::LinkAttached {
            uuid: tx_id(0x3d8e_bb9f_6a29_42cb_9d39_9ee0_a6bf_7f1c),
            link: ledger::federation::Link {
                upstream: Some(acc("branch")),
                downstream: None,
                trunkward_quants: vec![Some(amt("14")), None, Some(amt("0.000001"))],
            },
        },
        Event::RatchetAdvanced {
            peer: acc("branch"),
            uuid: tx_id(2),
            version: 1,
            md5: "15bfc7d0cff9160fe34cf541b7da56c3".to_owned(),
            blake3: [0x5a; 32],
        },
        Event::FeesConfigured {
            policy: Some(ledger::federation::FeePolicy { account: acc("admin"), fixed: amt("1"), percent: amt("0.5") }),
        },
        Event::FeesConfigured { policy: None },
        Event::LinkReconciled { peer: acc("branch"), uuid: tx_id(3), version: 2 },
    ]
}

#[test]
fn golden_federation_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FEDERATION_FIXTURE);
    let expected = blob(&federation_samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {FEDERATION_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, federation_samples());
    // Variant indices are the promise: 10, 11, 12 after the version byte.
    let firsts: Vec<u8> = split(&stored).iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![10, 11, 12, 12, 13]);
}

const KOMUNITIN_FIXTURE: &str = "tests/fixtures/events-v1-komunitin.bin";

/// The link dialect (appended variant 14 of format version 1).
fn komunitin_samples() -> Vec<Event> {
    vec![
        Event::LinkDialectSet { account: acc("branch2"), dialect: Dialect::Komunitin },
        Event::LinkDialectSet { account: acc("branch"), dialect: Dialect::Ccnode },
    ]
}

#[test]
fn golden_komunitin_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(KOMUNITIN_FIXTURE);
    let expected = blob(&komunitin_samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {KOMUNITIN_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, komunitin_samples());
    // Hand-checked: version 1, variant 14, "branch2" (len 7), Komunitin = 1.
    assert_eq!(encode_event_v1(&komunitin_samples()[0]), [&[1u8, 14, 7][..], b"branch2", &[1]].concat());
    let firsts: Vec<u8> = split(&stored).iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![14, 14]);
}

const REFERENCE_FIXTURE: &str = "tests/fixtures/events-v1-reference.bin";

/// Issue 17: the real reference's dialect is `Dialect` variant 2, appended
/// (variant 0, once named `Reference`, is `Ccnode`: same bytes, same meaning).
#[test]
fn golden_reference_dialect_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_FIXTURE);
    let samples = vec![Event::LinkDialectSet { account: acc("trunk"), dialect: Dialect::Reference }];
    let expected = blob(&samples);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {REFERENCE_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, samples);
    // Hand-checked: version 1, variant 14, "trunk" (len 5), Reference = 2.
    assert_eq!(encode_event_v1(&samples[0]), [&[1u8, 14, 5][..], b"trunk", &[2]].concat());
    let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(names, ["ccnode", "komunitin", "reference"], "encoding order");
}

const LINKS_FIXTURE: &str = "tests/fixtures/events-v1-links.bin";

/// Issue 10, item 2: a link closed after a divergence and reopened are
/// events (appended variants 15 and 16 of format version 1).
fn links_samples() -> Vec<Event> {
    vec![
        Event::LinkClosed { peer: acc("trunk"), evidence: r#"{"ours":"a","theirs":"b"}"#.to_owned() },
        Event::LinkReopened { peer: acc("trunk") },
    ]
}

#[test]
fn golden_link_closure_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(LINKS_FIXTURE);
    let expected = blob(&links_samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {LINKS_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, links_samples());
    // Hand-checked: version 1, variant 16, "trunk" (len 5).
    assert_eq!(encode_event_v1(&links_samples()[1]), [&[1u8, 16, 5][..], b"trunk"].concat());
    let firsts: Vec<u8> = split(&stored).iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![15, 16]);
}

/// Issue 16, item 4: remote paths are the entry's own field in memory, while
/// format v1 keeps its one map (remote paths under the party's id). Encoding
/// merges the two, decoding gives the party keys back to `remote`, and the
/// bytes are exactly those the v1 fixture pins (`golden_event_bytes`).
#[test]
fn remote_paths_and_user_metadata_are_apart_in_memory_and_one_map_on_disk() {
    let entry = Entry {
        payer: acc("alice"),
        payee: acc("branch"),
        quant: amt("2"),
        description: "d".to_owned(),
        metadata: BTreeMap::from([("order".to_owned(), "A-1".to_owned())]),
        remote: BTreeMap::from([("branch".to_owned(), "branch2/bob".to_owned())]),
    };
    let stored = entry.stored_map();
    assert_eq!(stored.len(), 2);
    let as_v1 = Entry { metadata: stored, remote: BTreeMap::new(), ..entry.clone() };
    let a = bincode::encode_to_vec(&entry, bincode::config::standard()).expect("encode");
    let b = bincode::encode_to_vec(&as_v1, bincode::config::standard()).expect("encode");
    assert_eq!(a, b, "one map on disk");
    let (back, _): (Entry, usize) = bincode::decode_from_slice(&a, bincode::config::standard()).expect("decode");
    assert_eq!(back, entry, "apart again in memory");
    // An old event whose user metadata named a party reads that key as the
    // party's path, as it was always shown; `decide` now refuses such keys.
    let (old, _): (Entry, usize) = bincode::decode_from_slice(&b, bincode::config::standard()).expect("decode");
    assert_eq!(old.remote.get("branch").map(String::as_str), Some("branch2/bob"));
    assert_eq!(old.metadata.get("order").map(String::as_str), Some("A-1"));
}

const UI_FIXTURE: &str = "tests/fixtures/events-v1-ui.bin";

/// Soft limits and their crossings (issue 12; appended variants 17 and 18 of
/// format version 1). Regenerate with `UPDATE_GOLDEN=1 cargo test -p ledger
/// --test it golden`; when a merge renumbers these variants, regenerate this
/// fixture and update the indices below, never the older fixtures.
fn ui_samples() -> Vec<Event> {
    let uuid = tx_id(0x0b3a_6e2c_6a0e_4a7e_9b55_8d5c_7e9f_0a11);
    vec![
        Event::WarnLimitsChanged { id: acc("alice"), warn_min: Some(amt("-40")), warn_max: None },
        Event::WarnLimitsChanged { id: acc("bob"), warn_min: None, warn_max: Some(amt("250.5")) },
        Event::WarnLimitCrossed { id: acc("alice"), uuid, below: true, limit: amt("-40"), balance: amt("-41.25") },
    ]
}

#[test]
fn golden_ui_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(UI_FIXTURE);
    let expected = blob(&ui_samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {UI_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, ui_samples());
    let firsts: Vec<u8> = split(&stored).iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![17, 17, 18]);
}

const KEYS_FIXTURE: &str = "tests/fixtures/events-v1-keys.bin";
const WITNESS_FIXTURE: &str = "tests/fixtures/events-v1-witness.bin";

/// Neighbours as witnesses (appended variants 22–24 of format version 1, issue 11).
fn witness_samples() -> Vec<Event> {
    vec![
        Event::PeerKeySet { peer: acc("branch"), origin: "branch".to_owned(), public_key: [0x44; 32] },
        Event::WitnessCosigned { peer: acc("branch"), size: 7, root: [0x55; 32] },
        Event::CheckpointCosigned { peer: acc("branch"), size: 9, signature: "\u{2014} branch AAAA\n".to_owned() },
    ]
}

#[test]
fn golden_witness_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(WITNESS_FIXTURE);
    let expected = blob(&witness_samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {WITNESS_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, witness_samples());
    // Hand-checked: version 1, variant 23, "branch" (len 6), size 7, then the root's 32 bytes.
    assert_eq!(encode_event_v1(&witness_samples()[1]), [&[1u8, 23, 6][..], b"branch", &[7], &[0x55; 32]].concat());
    let firsts: Vec<u8> = split(&stored).iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![22, 23, 24]);
}

/// Node keys and signed checkpoints (appended variants 19–21 of format
/// version 1, issue 11).
fn keys_samples() -> Vec<Event> {
    vec![
        Event::NodeKeySet { public_key: [0x11; 32] },
        Event::NodeKeyRotated { old: [0x11; 32], new: [0x22; 32], signature: [0x33; 64] },
        Event::CheckpointSigned {
            size: 300,
            note: "twig\n300\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nbalances 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u{2014} twig AAAAAA==\n"
                .to_owned(),
        },
    ]
}

#[test]
fn golden_keys_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(KEYS_FIXTURE);
    let expected = blob(&keys_samples());
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {KEYS_FIXTURE}");
    let decoded: Vec<Event> = split(&stored).into_iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, keys_samples());
    // Hand-checked: version 1, variant 19, then the 32 key bytes as they are (arrays have no length).
    assert_eq!(encode_event_v1(&keys_samples()[0]), [&[1u8, 19][..], &[0x11; 32]].concat());
    // Variant 21, size 300 as a varint (251 = u16 follows, little endian), then the note's length and bytes.
    let checkpoint = encode_event_v1(&keys_samples()[2]);
    assert_eq!(checkpoint[..5], [1, 21, 251, 0x2c, 0x01]);
    let firsts: Vec<u8> = split(&stored).iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![19, 20, 21]);
}

#[test]
fn the_rotation_message_is_pinned() {
    let message = node_key_rotation_message(&[1; 32], &[2; 32]);
    assert_eq!(&message[..28], b"ccnode node key rotation v1\n");
    assert_eq!(message.len(), 28 + 64);
}

const V2_FIXTURE: &str = "tests/fixtures/events-v2.bin";
/// `Workflow::content_hash` of the fixture's `credit` (ccnode's first shipped
/// definition): a workflow's identity in format 2, pinned like its bytes.
const CREDIT_HASH: &str = "8c1cd429dc3ca8c1668d4ae0b69362fb4bc2005c88d63539c3d94a2ab2ae144c";

/// Format 2 (issue 14, item 1): the events of [`samples`], with the one
/// proposal journaled as its workflow's definition (appended variant 25)
/// followed by a proposal naming it by id and hash (variant 26).
fn v2_samples() -> Vec<Event> {
    samples()
        .into_iter()
        .flat_map(|event| match event {
            Event::TransactionProposed { transaction } => vec![
                Event::WorkflowDefined { workflow: transaction.workflow.clone() },
                Event::TransactionProposedRef { transaction: transaction.to_ref() },
            ],
            other => vec![other],
        })
        .collect()
}

#[test]
fn golden_v2_event_bytes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(V2_FIXTURE);
    let expected = blob_with(&v2_samples(), encode_event);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write fixture");
    }
    let stored = std::fs::read(&path).expect("fixture exists; run with UPDATE_GOLDEN=1 to create it");
    assert!(stored == expected, "encoding changed: bytes differ from {V2_FIXTURE}");
    let records = split(&stored);
    let decoded: Vec<Event> = records.iter().map(|b| decode_event(b).expect("fixture decodes")).collect();
    assert_eq!(decoded, v2_samples());
    assert!(records.iter().all(|r| r[0] == 2), "every record is format 2");
    let firsts: Vec<u8> = records.iter().map(|b| b[1]).collect();
    assert_eq!(firsts, vec![0, 1, 2, 2, 3, 4, 5, 6, 25, 26, 8, 9], "variant indices");

    let Event::WorkflowDefined { workflow } = &decoded[8] else { panic!("record 8 defines the workflow") };
    let Event::TransactionProposedRef { transaction } = &decoded[9] else { panic!("record 9 proposes") };
    assert_eq!(ledger::ratchet::hex(&workflow.content_hash()), CREDIT_HASH);
    assert_eq!(transaction.workflow, WorkflowRef { id: wid("credit"), hash: workflow.content_hash() });
    // The proposal is the format-1 one with its workflow named, not copied:
    // the same transaction once the definition is put back.
    let Event::TransactionProposed { transaction: v1 } = &samples()[8] else { panic!("sample 8 is a proposal") };
    assert_eq!(&transaction.clone().with_workflow(workflow.clone()), v1);
    assert!(records[9].len() < split(&blob(&samples()))[8].len(), "smaller than the format-1 proposal");
}

#[test]
fn each_format_has_its_one_form_of_a_proposal() {
    let Event::TransactionProposed { transaction } = samples()[8].clone() else { panic!("sample 8 is a proposal") };
    // A format-1 proposal under a format-2 version byte is refused…
    let mut v1 = encode_event_v1(&Event::TransactionProposed { transaction: transaction.clone() });
    assert!(decode_event(&v1).is_ok());
    v1[0] = 2;
    assert!(matches!(decode_event(&v1), Err(DecodeError::Invalid { .. })));
    // …and format 2's two new variants under format 1's.
    for event in [
        Event::WorkflowDefined { workflow: transaction.workflow.clone() },
        Event::TransactionProposedRef { transaction: transaction.to_ref() },
    ] {
        let mut v2 = encode_event(&event);
        assert_eq!(decode_event(&v2).expect("format 2 reads"), event);
        v2[0] = 1;
        assert!(matches!(decode_event(&v2), Err(DecodeError::Invalid { .. })));
    }
}

#[test]
#[should_panic(expected = "never embeds a workflow")]
fn format_2_never_writes_an_embedded_workflow() {
    let proposal = samples()[8].clone();
    let _ = encode_event(&proposal);
}
