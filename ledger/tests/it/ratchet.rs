//! The link ratchet against the reference's published test vector (cc-protocol.md §4.3).

use ledger::ratchet::{blake3_genesis, blake3_next, link_string, md5_next, HashRow};
use ledger::Amount;

fn rows() -> Vec<(Amount, &'static str)> {
    vec![
        ("14".parse().expect("amount"), "test long distance for 3 from leaf"),
        ("2".parse().expect("amount"), "Payee fee of 1 to twig/admin"),
        ("3".parse().expect("amount"), "Payee fee of 1 to branch/admin"),
        ("1".parse().expect("amount"), "Payee fee of 1 to trunk/admin"),
    ]
}

#[test]
fn the_reference_test_vector_hashes_as_published() {
    let rows: Vec<HashRow<'_>> =
        rows().into_iter().map(|(quant, description)| HashRow { quant, description }).collect();
    let uuid = "3d8ebb9f-6a29-42cb-9d39-9ee0a6bf7f1c";
    assert_eq!(
        link_string("trunk", uuid, "V", &rows, ""),
        "trunk|3d8ebb9f-6a29-42cb-9d39-9ee0a6bf7f1c|V|14|test long distance for 3 from leaf|2|Payee fee of 1 to \
         twig/admin|3|Payee fee of 1 to branch/admin|1|Payee fee of 1 to trunk/admin|"
    );
    assert_eq!(md5_next("trunk", uuid, "V", &rows, ""), "15bfc7d0cff9160fe34cf541b7da56c3");
    assert_eq!(md5_next("trunk", "existing", "V", &rows, ""), "3ced727f8f2df10189520c0dd78e0fad");
}

#[test]
fn every_input_changes_both_chains() {
    let rows: Vec<HashRow<'_>> =
        rows().into_iter().map(|(quant, description)| HashRow { quant, description }).collect();
    let genesis = blake3_genesis("trunk");
    let base_md5 = md5_next("trunk", "u", "C", &rows, "1");
    let base_b3 = blake3_next(&genesis, "u", "C", &rows, "1");
    let mut other_rows = rows.clone();
    other_rows[0].quant = "14.000001".parse().expect("amount");
    let variants = [
        (md5_next("trunk2", "u", "C", &rows, "1"), blake3_next(&blake3_genesis("trunk2"), "u", "C", &rows, "1")),
        (md5_next("trunk", "v", "C", &rows, "1"), blake3_next(&genesis, "v", "C", &rows, "1")),
        (md5_next("trunk", "u", "E", &rows, "1"), blake3_next(&genesis, "u", "E", &rows, "1")),
        (md5_next("trunk", "u", "C", &rows, "2"), blake3_next(&genesis, "u", "C", &rows, "2")),
        (md5_next("trunk", "u", "C", &other_rows, "1"), blake3_next(&genesis, "u", "C", &other_rows, "1")),
        (md5_next("trunk", "u", "C", &rows[..3], "1"), blake3_next(&genesis, "u", "C", &rows[..3], "1")),
    ];
    for (md5, b3) in variants {
        assert_ne!(md5, base_md5);
        assert_ne!(b3, base_b3);
    }
}

/// Komunitin's `makeHash` (credit-commons-controller.ts l.23-32 at a3de3eab):
/// `[lastHash, uuid, state, entries.map(quant|description).join('|'), version].join('|')`
/// is the reference string with the relay's state letter and its `version`
/// text (empty when absent, which leaves a trailing `|`).
#[test]
fn komunitin_vectors_hash_as_komunitin_does() {
    let uuid = "3d8ebb9f-6a29-42cb-9d39-9ee0a6bf7f1c";
    let rows = [HashRow { quant: "0.01".parse().expect("amount"), description: "test long distance for 3 from leaf" }];
    // V1: 3.receive.test.ts asserts this head after the relay (no `version`).
    assert_eq!(
        link_string("trunk", uuid, "V", &rows, ""),
        format!("trunk|{uuid}|V|0.01|test long distance for 3 from leaf|")
    );
    assert_eq!(md5_next("trunk", uuid, "V", &rows, ""), "196bf56fdf9c2b747a20b8604b7b1f61");
    // V2: the same body with `"version": 1`, as Komunitin itself sends.
    assert_eq!(md5_next("trunk", uuid, "V", &rows, "1"), "0468cf7c904eafa6dd59cc295442f8dc");
    // V5: 5.send.test.ts's body with a fixed uuid.
    let rows = [HashRow {
        quant: "0.1".parse().expect("amount"),
        description: "Test transfer from trunk/EXTR0000 to trunk/branch2/TEST0002",
    }];
    assert_eq!(
        md5_next("trunk", "00000000-0000-4000-8000-000000000001", "V", &rows, "1"),
        "fe120d920095a784da76827ac7faad0a"
    );
}

#[test]
fn js_number_text_agrees_only_where_javascript_prints_our_text() {
    use ledger::ratchet::js_number_text_agrees;
    for ok in ["0.01", "14", "0.1", "0.000001", "123456789.123456", "999999999999999", "100000000000000000000"] {
        assert!(js_number_text_agrees(ok.parse().expect("amount")), "{ok}");
    }
    for bad in ["1234567890.123456", "1000000000000000000000", "9999999999999999"] {
        assert!(!js_number_text_agrees(bad.parse().expect("amount")), "{bad}");
    }
}

/// PHP's `(string)` of a float (precision 14), printed by the reference's
/// `makeHashString()`, against our canonical text. The cases were printed by
/// PHP 8.2.36 (`php -r 'echo 0.00001;'` is `1.0E-5`, `100000000000000.0` is
/// `1.0E+14`, `123456789.123456` is `123456789.12346`).
#[test]
fn php_float_text_agrees_only_where_php_prints_our_text() {
    use ledger::ratchet::php_float_text_agrees;
    for ok in ["0", "7", "2.5", "-2.5", "0.0001", "0.3", "1234567.123456", "12345678.123456", "99999999999999"] {
        assert!(php_float_text_agrees(ok.parse().expect("amount")), "{ok}");
    }
    for bad in ["0.00001", "0.000001", "-0.00005", "100000000000000", "123456789.123456", "99999999999999.5"] {
        assert!(!php_float_text_agrees(bad.parse().expect("amount")), "{bad}");
    }
}

/// The reference's string, MD5'd by PHP 8.2.36 itself: empty initial hash
/// (a link with no `hash_history` row), the long state name, two entries on
/// the link, version 1; then a `pending` version after a seeded hash.
#[test]
fn reference_link_strings_hash_as_php_hashes_them() {
    let uuid = "6f1c2d3e-4a5b-4c6d-8e7f-001122334455";
    let rows = [
        HashRow { quant: "7".parse().expect("amount"), description: "first" },
        HashRow { quant: "0.5".parse().expect("amount"), description: "fee" },
    ];
    assert_eq!(md5_next("", uuid, "completed", &rows, "1"), "d481312287d5d892cc45ee5bb5d616ab");
    let rows = [HashRow { quant: "2.5".parse().expect("amount"), description: "confirm me" }];
    assert_eq!(md5_next("abc", uuid, "pending", &rows, "1"), "5fa59e4faf3e45d54d4449f2f7eb0236");
}

/// A Komunitin child `leaf1` relays 3.receive.test.ts's fixture (one entry,
/// no `version`) with last hash `trunk`: booked at once, and the link head is
/// the hash that test asserts Komunitin holds afterwards.
#[test]
fn a_komunitin_relay_advances_the_link_as_komunitin_does() {
    use crate::{acc, amt, ctx, run, twig, tx_id};
    use ledger::federation::{plan_relay, RelayIn, WireEntry};
    use ledger::{Command, Dialect, LedgerView, Peer, Rate, State, Workflow};
    let mut state = twig(|_| {});
    let peer = Peer { account: acc("leaf1"), url: "http://k/".into(), rate: Rate::ONE, initial_hash: "trunk".into() };
    run(&mut state, Command::ConnectPeer { peer }, 0);
    run(&mut state, Command::SetLinkDialect { account: acc("leaf1"), dialect: Dialect::Komunitin }, 0);
    let uuid = tx_id(0x3d8e_bb9f_6a29_42cb_9d39_9ee0_a6bf_7f1c);
    let relay = RelayIn {
        uuid,
        workflow: Workflow::from_code("_C-").expect("code"),
        entries: vec![WireEntry {
            payer: "twig/leaf1/TEST0001".into(),
            payee: "twig/bob".into(),
            quant: amt("0.01"),
            description: "test long distance for 3 from leaf".into(),
            metadata: Default::default(),
        }],
    };
    let plan = plan_relay(&state, &acc("leaf1"), relay, &ctx(1)).expect("planned");
    assert!(plan.forward.is_none());
    run(&mut state, Command::ProposeTransversal { transaction: plan.transaction, link: plan.link }, 1);
    let to = State::Completed;
    run(&mut state, Command::TransitionRelayed { uuid, to, actor: acc("leaf1"), relay_version: String::new() }, 1);
    assert_eq!(state.ratchet(&acc("leaf1")).expect("ratchet").md5, "196bf56fdf9c2b747a20b8604b7b1f61");
    assert_eq!(state.balances(&acc("bob")).completed, amt("0.01"));
    // No later change crosses a Komunitin link.
    let erase = Command::Transition { uuid, to: State::Erased, actor: acc("admin") };
    assert!(ledger::decide(&state, erase, &ctx(2)).is_err());
    // Only payments that complete at once go to it.
    let bill = crate::proposal("bob", "twig/leaf1/TEST0002", "bob", "1", "bill", 9);
    let Command::ProposeTransaction(p) = bill else { unreachable!() };
    assert!(ledger::federation::plan_origin(&state, &p, &ctx(2)).is_err());
    let pay = crate::proposal("bob", "bob", "twig/leaf1/TEST0002", "1", "payment", 10);
    let Command::ProposeTransaction(p) = pay else { unreachable!() };
    assert!(ledger::federation::plan_origin(&state, &p, &ctx(2)).is_ok());
    // The link has written a version: connecting it anew (which restarts the
    // ratchet at the initial hash) is refused, with any initial hash.
    for initial in ["trunk", "another"] {
        let peer =
            Peer { account: acc("leaf1"), url: "http://k/".into(), rate: Rate::ONE, initial_hash: initial.into() };
        let refused = ledger::decide(&state, Command::ConnectPeer { peer }, &ctx(3)).expect_err("refused");
        assert_eq!(refused.class(), "CCOtherViolation");
    }
}
