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
