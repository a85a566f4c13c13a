//! Cost of RFC 9421 request signatures between ccnodes (issue 11, item 7):
//! signing one request (Content-Digest, signature base, Ed25519) and
//! verifying it (the receiver's work, nonce check included), for an empty
//! GET (the link feed) and a relay POST with a 1 KiB body.
//!
//! ```text
//! cargo bench -p api --bench httpsig -- [--iterations 20000]
//! ```
//!
//! Prints a markdown row per case and `figure<TAB>httpsig<TAB>…` lines.

use std::time::Instant;

use api::httpsig::{self, NonceCache, RequestParts};

const BENCH: benchkit::Bench = benchkit::Bench("httpsig");

fn request(method: &str, path: &str, query: Option<&str>) -> RequestParts {
    RequestParts {
        method: method.to_owned(),
        authority: "127.0.0.1:8080".to_owned(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        headers: vec![
            ("cc-node".to_owned(), "branch".to_owned()),
            ("last-hash".to_owned(), "0123456789abcdef0123456789abcdef".to_owned()),
            ("cc-node-trace".to_owned(), "twig>branch>".to_owned()),
        ],
    }
}

fn main() {
    let mut iterations: u32 = 20_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--iterations" {
            iterations = args.next().and_then(|v| v.parse().ok()).expect("--iterations N");
        }
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let verifying = key.verifying_key();
    let keyid = "branch+01234567+AQ";
    let body = "x".repeat(1024);
    println!("| case | sign µs/request | verify µs/request |");
    println!("|---|---:|---:|");
    for (case, method, path, query, body) in [
        ("link_feed_get", "GET", "/replay/link/branch", Some("after=0&limit=10000"), ""),
        ("relay_post_1k", "POST", "/transaction/relay", None, body.as_str()),
    ] {
        let base = request(method, path, query);
        let started = Instant::now();
        let mut signed = Vec::with_capacity(iterations as usize);
        for i in 0..iterations {
            let mut r = base.clone();
            httpsig::sign_ccnode(&mut r, body.as_bytes(), &key, keyid, &format!("n{i}"), 1_000).expect("signs");
            signed.push(r);
        }
        let sign_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        let mut nonces = NonceCache::default();
        let started = Instant::now();
        for r in &signed {
            let digest = r.header("content-digest").expect("digest");
            assert!(httpsig::digest_matches(&digest, body.as_bytes()));
            let verified = httpsig::verify_ccnode(r, &verifying, keyid, 1_000, 60).expect("verifies");
            nonces.check(keyid, &verified.nonce, verified.created, 1_000, 60).expect("fresh");
        }
        let verify_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!("| {case} | {sign_us:.1} | {verify_us:.1} |");
        BENCH.figure(&format!("{case}_sign"), sign_us, "us");
        BENCH.figure(&format!("{case}_verify"), verify_us, "us");
    }
}
