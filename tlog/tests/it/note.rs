use tlog::note::*;

use crate::fixture;

/// C2SP signed-note's example: the verifier key parses, re-encodes byte for
/// byte and verifies the example note; any flipped byte breaks it.
#[test]
fn c2sp_signed_note_example() {
    let v = fixture("signed-note-vectors.json");
    let ex = &v["c2sp_example"];
    let vkey = VerifierKey::parse(ex["vkey"].as_str().expect("s")).expect("vkey parses");
    assert_eq!(vkey.to_string(), ex["vkey"].as_str().expect("s"));
    assert_eq!(vkey.key_id, 0x530d903a);
    let text = ex["note"].as_str().expect("s");
    let note = Note::parse(text.as_bytes()).expect("note parses");
    assert_eq!(note.text, "This is an example message.\n");
    assert_eq!(note.encode(), text);
    assert_eq!(note.verify(std::slice::from_ref(&vkey)).expect("verifies").len(), 1);
    every_flip_fails(text.as_bytes(), &[vkey]);
}

/// Flipping any single byte of a signed note makes it fail to parse, to
/// verify, or loses the signature of one of `keys` (a renamed signature is
/// an unknown one, ignored as the spec says).
pub fn every_flip_fails(bytes: &[u8], keys: &[VerifierKey]) {
    let all_signed =
        |b: &[u8]| Note::parse(b).and_then(|n| n.verify(keys)).is_ok_and(|signed| signed.len() == keys.len());
    assert!(all_signed(bytes));
    for i in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[i] ^= 0x01;
        assert!(!all_signed(&bad), "byte {i} flipped still verifies");
    }
}

fn peter_seed() -> [u8; 32] {
    let v = fixture("signed-note-vectors.json");
    let skey = v["go_peter_neumann"]["skey"].as_str().expect("s");
    let b64 = skey.splitn(5, '+').nth(4).expect("part");
    let bytes = tlog::unb64(b64).expect("b64");
    assert_eq!(bytes[0], 0x01);
    bytes[1..].try_into().expect("32 bytes")
}

/// Go's sumdb/note TestSign: from the same seed we sign the same text to the
/// same note, byte for byte (Ed25519 is deterministic), and derive the same vkey.
#[test]
fn go_sumdb_note_signature_reproduced() {
    let v = fixture("signed-note-vectors.json");
    let p = &v["go_peter_neumann"];
    let signer = NoteSigner::new("PeterNeumann", &peter_seed()).expect("signer");
    assert_eq!(signer.verifier_key().to_string(), p["vkey"].as_str().expect("s"));
    let text = p["text"].as_str().expect("s");
    let note = Note { text: text.to_owned(), signatures: vec![signer.sign(text)] };
    assert_eq!(note.encode(), p["signed"].as_str().expect("s"));
    let vkey = VerifierKey::parse(p["vkey"].as_str().expect("s")).expect("vkey");
    Note::parse(p["signed"].as_str().expect("s").as_bytes()).expect("parses").verify(&[vkey]).expect("verifies");
    for bad in p["bad_vkeys"].as_array().expect("a") {
        assert!(VerifierKey::parse(bad.as_str().expect("s")).is_err(), "{bad}");
    }
}

/// A key that did not sign is not trusted: a note signed only by another
/// key is refused; an unknown signature next to a good one is ignored.
#[test]
fn another_key_is_refused_and_unknown_signatures_ignored() {
    let v = fixture("signed-note-vectors.json");
    let p = &v["go_peter_neumann"];
    let enoch = VerifierKey::parse(p["enoch_vkey"].as_str().expect("s")).expect("vkey");
    let note = Note::parse(p["signed"].as_str().expect("s").as_bytes()).expect("parses");
    assert!(matches!(note.verify(std::slice::from_ref(&enoch)), Err(NoteError::NoTrustedSignature { .. })));
    // Same name and id as Peter's but a different key: the signature fails, not ignored.
    let other = NoteSigner::new("PeterNeumann", &[9; 32]).expect("signer");
    let mut impostor = VerifierKey::parse(p["vkey"].as_str().expect("s")).expect("vkey");
    impostor.key = other.verifier_key().key;
    assert!(matches!(note.verify(&[impostor]), Err(NoteError::BadSignature { .. })));
    let peter = VerifierKey::parse(p["vkey"].as_str().expect("s")).expect("vkey");
    let mut two = note.clone();
    two.signatures.push(other.sign(&note.text));
    let mut renamed = other.sign(&note.text);
    renamed.name = "Someone".into();
    two.signatures.push(renamed);
    assert_eq!(two.verify(&[peter, enoch]).expect("verifies").len(), 1);
}

/// tlog-cosignature's example checkpoint: both signature lines parse and
/// re-encode byte for byte; the witness line is a 72-byte timestamped
/// signature whose time is the one the spec's signed-message example shows.
#[test]
fn c2sp_cosignature_example_lines() {
    let v = fixture("signed-note-vectors.json");
    let c = &v["c2sp_cosigned_checkpoint"];
    let text = c["note"].as_str().expect("s");
    let note = Note::parse(text.as_bytes()).expect("parses");
    assert_eq!(note.encode(), text);
    assert_eq!(note.signatures.len(), 2);
    let w = &note.signatures[1];
    assert_eq!(w.name, "witness.example.com/w1");
    assert_eq!(w.signature.len(), 72);
    let time = u64::from_be_bytes(w.signature[..8].try_into().expect("8"));
    assert_eq!(time, c["cosignature_time"].as_u64().expect("n"));
    assert_eq!(cosignature_message(time, &note.text), c["signed_message"].as_str().expect("s").as_bytes());
}

/// Our cosignatures: type 0x04 key ids, deterministic, verify with the
/// cosigner vkey only (not as a plain note signature), and fail when the
/// timestamp or the checkpoint changes.
#[test]
fn cosignatures_verify_and_bind_time_and_text() {
    let signer = NoteSigner::new("witness.example/w", &peter_seed()).expect("signer");
    let text = "example.com/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
    let cosig = signer.cosign(text, 1_700_000_000);
    assert_eq!(cosig.key_id, key_id("witness.example/w", 0x04, &signer.public_key()));
    assert_ne!(cosig.key_id, signer.verifier_key().key_id);
    let vkey = signer.cosigner_key();
    assert_eq!(VerifierKey::parse(&vkey.to_string()).expect("round trip"), vkey);
    let note = Note { text: text.into(), signatures: vec![signer.sign(text), cosig.clone()] };
    let verified = note.verify(std::slice::from_ref(&vkey)).expect("cosignature verifies");
    assert_eq!(verified[0].kind, KeyType::CosignatureV1);
    assert_eq!(note.cosignature_time(&vkey), Some(1_700_000_000));
    let mut later = cosig.clone();
    later.signature[7] ^= 1;
    let bad = Note { text: text.into(), signatures: vec![later] };
    assert!(matches!(bad.verify(std::slice::from_ref(&vkey)), Err(NoteError::BadSignature { .. })));
    let other = Note { text: text.replace('5', "6"), signatures: vec![cosig] };
    assert!(other.verify(&[vkey]).is_err());
    every_flip_fails(note.encode().as_bytes(), &[signer.verifier_key(), signer.cosigner_key()]);
}

#[test]
fn malformed_notes_and_keys_are_refused() {
    let cases: &[&[u8]] = &[
        b"",
        b"no blank line\n",
        b"text\n\n",
        b"text\n\nnot a signature\n",
        "text\n\n\u{2014} name\n".as_bytes(),
        "text\n\n\u{2014} name AAAA\n".as_bytes(),
        "text\n\n\u{2014} na+me AAAAAAAA\n".as_bytes(),
        "text\n\n\u{2014} name AAAAAAAA".as_bytes(),
        "te\txt\n\n\u{2014} name AAAAAAAA\n".as_bytes(),
        "text\r\n\n\u{2014} name AAAAAAAA\n".as_bytes(),
        b"text\n\n\xff\n",
    ];
    for case in cases {
        assert!(Note::parse(case).is_err(), "{:?}", String::from_utf8_lossy(case));
    }
    for key in [
        "",
        "a+b",
        "a+530d903a",
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k+x",
    ] {
        assert!(VerifierKey::parse(key).is_err(), "{key}");
    }
    // Keys whose base64 holds '+' parse (the split is on the first two '+' only).
    for seed in 0u8..64 {
        let signer = NoteSigner::new("n", &[seed; 32]).expect("signer");
        let text = signer.verifier_key().to_string();
        assert_eq!(VerifierKey::parse(&text).expect("parses"), signer.verifier_key(), "{text}");
    }
    let many = format!("t\n\n{}", "\u{2014} n AAAAAAAA\n".repeat(SIGNATURES_MAX + 1));
    assert_eq!(Note::parse(many.as_bytes()), Err(NoteError::TooManySignatures));
}
