//! Issue 11, items 7 and 8, with the real binary: two ccnodes grafted with
//! each other's keys sign every request between them (RFC 9421, Ed25519)
//! and pay across; a request on that link without a valid, fresh signature
//! by the link's key is refused and changes nothing; an independent Python
//! signer (no code shared with ccnode) is accepted; a node that lies about
//! its history is refused a cosignature and its link is closed as diverged;
//! and a node reaches its parent over `https://` with a private CA.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::node::Server;
use crate::{arg, ccnode, stdout};

const LINK_HASH: &str = "graft-trunk-twig";

fn text(server: &Server, path: &str) -> String {
    reqwest::blocking::get(format!("{}{path}", server.url)).expect("GET").text().expect("text")
}

fn vkey(server: &Server) -> String {
    text(server, "/node/key").trim().to_owned()
}

/// The node's Ed25519 seed (base64), from its key file: only the test,
/// playing the node, reads it.
fn seed(data: &Path) -> String {
    let file = std::fs::read_to_string(data.join("node.key")).expect("node.key");
    file.lines().nth(1).expect("seed line").to_owned()
}

fn head(server: &Server) -> u64 {
    let (status, v) = server.call(Method::GET, "/replay/events?limit=1", "admin", None);
    assert_eq!(status, StatusCode::OK, "{v}");
    v["meta"]["head"]["seq"].as_u64().expect("head seq")
}

fn serve_args<'a>(data: &'a Path, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["serve", "--data", arg(data), "--listen", "127.0.0.1:0", "--name", name];
    args.extend_from_slice(extra);
    args
}

/// Starts `trunk`, then `twig` whose parent it is (given on twig's command
/// line with `--trunkward-public-key`), grafted on trunk with twig's key.
/// `trunk_url` is how twig reaches trunk (a TLS proxy's URL, for instance).
/// Both sign a checkpoint every `checkpoint_interval` seconds ("0": none).
fn keyed_pair(
    dirs: &[tempfile::TempDir; 2],
    trunk_url: Option<&dyn Fn(&Server) -> String>,
    twig_extra: &[&str],
    envs: &[(&str, &str)],
    checkpoint_interval: &str,
) -> (Server, Server) {
    let trunk =
        Server::spawn_env(&serve_args(dirs[0].path(), "trunk", &["--checkpoint-interval", checkpoint_interval]), envs);
    let trunk_key = vkey(&trunk);
    let url = trunk_url.map_or_else(|| trunk.url.clone(), |f| f(&trunk));
    let mut extra = vec![
        "--checkpoint-interval",
        checkpoint_interval,
        "--trunkward-name",
        "trunk",
        "--trunkward-url",
        url.as_str(),
        "--trunkward-last-hash",
        LINK_HASH,
        "--trunkward-public-key",
        trunk_key.as_str(),
    ];
    extra.extend_from_slice(twig_extra);
    let twig = Server::spawn_env(&serve_args(dirs[1].path(), "twig", &extra), envs);
    let body = json!({"id": "twig", "url": twig.url, "min": -1000, "max": 1000, "last_hash": LINK_HASH,
                      "public_key": vkey(&twig)});
    let (status, v) = trunk.call(Method::POST, "/admin/nodes", "admin", Some(body));
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["dialect"], "ccnode", "{v}");
    twig.open("alice", -1000, 1000);
    trunk.open("bob", -1000, 1000);
    (trunk, twig)
}

/// Pays, retrying while the link is briefly busy (a reconciliation pass).
fn pay(server: &Server, payer: &str, payee: &str, quant: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = json!({"payer": payer, "payee": payee, "quant": quant, "description": "x", "type": "pay"});
        let (status, v) = server.call(Method::POST, "/transaction", payer, Some(body));
        if status == StatusCode::CREATED {
            return;
        }
        let busy = v["errors"][0]["class"] == "LinkBusyFailure";
        assert!(busy && Instant::now() < deadline, "{payer} -> {payee}: {status} {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn balance(server: &Server, node: &str, account: &str) -> rust_decimal::Decimal {
    server.balances(node).into_iter().find(|(a, _)| a == account).map(|(_, b)| b).unwrap_or_default()
}

fn python_with_cryptography() {
    let has = || Command::new("python3").args(["-c", "import cryptography"]).status().is_ok_and(|s| s.success());
    if !has() {
        crate::apt_install(&["python3-cryptography"]);
        assert!(has(), "python3-cryptography installed, but python3 cannot import cryptography");
    }
}

/// The independent signer's headers for a request.
fn py_sign(
    seed: &str,
    keyid: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    offset: i64,
) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/verifier/httpsig_signer.py");
    let mut command = Command::new("python3");
    command.arg(&script).args([seed, keyid, method, url]);
    for (n, v) in headers {
        command.arg("--header").arg(format!("{n}:{v}"));
    }
    command.arg("--body").arg(body).arg("--created-offset").arg(offset.to_string());
    let out = command.output().expect("python3 runs");
    assert!(out.status.success(), "signer failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON headers");
    v.as_object().expect("object").iter().map(|(k, v)| (k.clone(), v.as_str().expect("str").to_owned())).collect()
}

fn send(url: &str, method: Method, headers: &[(String, String)], body: Option<&str>) -> (StatusCode, Value) {
    let client = reqwest::blocking::Client::new();
    let mut request = client.request(method, url);
    for (n, v) in headers {
        request = request.header(n.as_str(), v.as_str());
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let response = request.send().expect("send");
    let status = response.status();
    let text = response.text().expect("text");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn refused(answer: &(StatusCode, Value), why: &str) {
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{why}: {}", answer.1);
    assert_eq!(answer.1["errors"][0]["class"], "AuthViolation", "{why}: {}", answer.1);
}

/// Two keyed ccnodes pay each other both ways (every request between them
/// is signed: an unsigned one would be refused, as the second half shows);
/// then the link feed and the relay route refuse a request without a
/// signature, with a wrong one, by another key, replayed, too old, or whose
/// body does not match its digest, and change nothing; the independent
/// Python signer's request is accepted.
#[test]
fn keyed_ccnodes_sign_every_request_and_refuse_any_other() {
    python_with_cryptography();
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let (trunk, twig) = keyed_pair(&dirs, None, &[], &[("CCNODE_RECONCILE_INTERVAL", "1")], "0");
    pay(&twig, "alice", "trunk/bob", "5");
    pay(&trunk, "bob", "twig/alice", "2");
    assert_eq!(balance(&trunk, "trunk", "bob"), rust_decimal::Decimal::from(3));
    assert_eq!(balance(&twig, "twig", "alice"), rust_decimal::Decimal::from(-3));

    // The link as trunk sees it: the hash twig would prove.
    let (_, nodes) = trunk.call(Method::GET, "/admin/nodes", "admin", None);
    let last_hash = nodes["data"]["twig"]["last_hash"].as_str().expect("last_hash").to_owned();
    let before = (head(&trunk), balance(&trunk, "trunk", "bob"));
    let feed = format!("{}/replay/link/twig?after=0", trunk.url);
    let relay = format!("{}/transaction/relay", trunk.url);
    let node_headers = [("cc-node", "twig"), ("last-hash", last_hash.as_str())];
    let plain: Vec<(String, String)> = node_headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    let with = |signed: Vec<(String, String)>| plain.iter().cloned().chain(signed).collect::<Vec<_>>();
    let (twig_seed, twig_key) = (seed(dirs[1].path()), vkey(&twig));

    // Unsigned: the last hash alone no longer opens a keyed link.
    refused(&send(&feed, Method::GET, &plain, None), "unsigned feed");
    let body = json!({"uuid": "00000000-0000-4000-8000-000000000001", "entries": []}).to_string();
    refused(&send(&relay, Method::POST, &plain, Some(&body)), "unsigned relay");
    // The 0.8.x pair (cc-user: node, cc-auth: last hash) is no way around it.
    let pair = [("cc-user".to_owned(), "twig".to_owned()), ("cc-auth".to_owned(), last_hash.clone())];
    refused(&send(&relay, Method::POST, &pair, Some(&body)), "unsigned relay with the 0.8 pair");

    // The independent signer, with twig's key: accepted (interop with RFC 9421).
    let good = with(py_sign(&twig_seed, &twig_key, "GET", &feed, &node_headers, "", 0));
    let (status, v) = send(&feed, Method::GET, &good, None);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["meta"]["count"].as_u64() >= Some(2), "{v}");
    // The same request again: a replayed nonce.
    refused(&send(&feed, Method::GET, &good, None), "replayed");
    // Created two minutes ago (outside the 60 s window).
    let old = with(py_sign(&twig_seed, &twig_key, "GET", &feed, &node_headers, "", -120));
    refused(&send(&feed, Method::GET, &old, None), "too old");
    // A wrong signature: another seed under twig's keyid.
    let stranger = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let wrong = with(py_sign(stranger, &twig_key, "GET", &feed, &node_headers, "", 0));
    refused(&send(&feed, Method::GET, &wrong, None), "wrong signature");
    // Another key, named as such.
    let other_key = "twig+00000000+AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==";
    let other = with(py_sign(stranger, other_key, "GET", &feed, &node_headers, "", 0));
    refused(&send(&feed, Method::GET, &other, None), "another key");
    // A signed path used for another path: the signature covers @path.
    let moved = with(py_sign(&twig_seed, &twig_key, "GET", &feed, &node_headers, "", 0));
    refused(&send(&format!("{}/replay/link/twig?after=1", trunk.url), Method::GET, &moved, None), "moved query");
    // A relay whose body is not the signed one.
    let signed_relay = with(py_sign(&twig_seed, &twig_key, "POST", &relay, &node_headers, &body, 0));
    let tampered = body.replace("0001", "0002");
    refused(&send(&relay, Method::POST, &signed_relay, Some(&tampered)), "digest mismatch");

    assert_eq!((head(&trunk), balance(&trunk, "trunk", "bob")), before, "a refused request changed nothing");
    // A cosignature request claiming to come from twig, unsigned (after the
    // check above: twig's checkpoint makes twig ask trunk for a real
    // cosignature in the background, which trunk journals).
    let (status, made) = twig.call(Method::POST, "/admin/checkpoint", "admin", Some(json!({})));
    assert_eq!(status, StatusCode::OK, "{made}");
    let note = text(&twig, "/checkpoint");
    let ask = format!("old 0\n\n{note}");
    let witness = format!("{}/witness/add-checkpoint", trunk.url);
    let claim = [("cc-node".to_owned(), "twig".to_owned())];
    refused(&send(&witness, Method::POST, &claim, Some(&ask)), "unsigned cosignature request");

    // And the link still works for the real neighbour.
    pay(&twig, "alice", "trunk/bob", "1");
    assert_eq!(balance(&trunk, "trunk", "bob"), rust_decimal::Decimal::from(4));
    trunk.stop();
    twig.stop();
}

fn cosigned(node: &Server, key: &str, witness: &str, dir: &Path) -> bool {
    let note = text(node, "/checkpoint");
    let file = dir.join("latest.checkpoint");
    std::fs::write(&file, note).expect("write");
    let out = ccnode(&["proof", "check", "--key", key, "--witness", witness, arg(&file)]);
    out.status.code() == Some(0)
}

/// After twig is made to lie (restarted with a failpoint that rewrites
/// record 1 in its Merkle tree and signs checkpoints of that history with
/// its real key), trunk, which cosigned twig's honest checkpoint, refuses
/// to cosign the lie, and closes the link as diverged with the fork as evidence.
#[test]
fn a_neighbour_refuses_to_cosign_a_lie_and_reports_the_fork() {
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let envs = [("CCNODE_RECONCILE_INTERVAL", "1")];
    let (trunk, twig) = keyed_pair(&dirs, None, &[], &envs, "1");
    pay(&twig, "alice", "trunk/bob", "5");
    let (twig_key, trunk_key) = (vkey(&twig), vkey(&trunk));
    let files = tempfile::tempdir().expect("dir");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cosigned(&twig, &twig_key, &trunk_key, files.path()) {
        assert!(Instant::now() < deadline, "trunk never cosigned twig's honest checkpoint");
        std::thread::sleep(Duration::from_millis(250));
    }
    twig.stop();

    let trunk_url = trunk.url.clone();
    let args = serve_args(dirs[1].path(), "twig", &["--checkpoint-interval", "1"]);
    let liar = Server::spawn_env(&args, &[envs[0], ("CCNODE_FAILPOINT", "lie-about-record-1")]);
    assert_eq!(vkey(&liar), twig_key, "the same key signs the lie");
    liar.open("carol", -10, 10);
    let (status, v) = liar.call(Method::POST, "/admin/checkpoint", "admin", Some(json!({})));
    assert_eq!(status, StatusCode::OK, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let evidence = loop {
        let (_, nodes) = trunk.call(Method::GET, "/admin/nodes", "admin", None);
        if !nodes["data"]["twig"]["closed"].is_null() {
            break nodes["data"]["twig"]["closed"].clone();
        }
        assert!(Instant::now() < deadline, "trunk did not report the fork: {nodes}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(evidence["fork"].as_str().is_some(), "{evidence}");
    assert!(!cosigned(&liar, &twig_key, &trunk_key, files.path()), "the lie was cosigned");
    // The diverged link is closed to traffic.
    let body = json!({"payer": "alice", "payee": "trunk/bob", "quant": "1", "description": "x", "type": "pay"});
    let (status, v) = liar.call(Method::POST, "/transaction", "alice", Some(body));
    assert_ne!(status, StatusCode::CREATED, "{v}");
    assert!(trunk_url.starts_with("http://127.0.0.1:"));
    liar.stop();
    trunk.stop();
}

/// A TLS-terminating proxy on loopback in front of `backend` (host:port),
/// with `cert`/`key` (DER): its port. Runs until the test process ends.
fn tls_proxy(backend: String, cert: Vec<u8>, key: Vec<u8>) -> u16 {
    use tokio_rustls::rustls;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key)),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    port
}

/// twig reaches trunk only through a TLS proxy (`https://127.0.0.1:…`) whose
/// certificate is signed by a CA made here, given with `--peer-ca-file`;
/// keyed and signed as above, the two pay across; a node without the CA
/// cannot reach trunk at all.
#[test]
fn a_node_reaches_its_parent_over_https_with_a_private_ca() {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "ccnode e2e test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).expect("leaf");
    let pem_dir = tempfile::tempdir().expect("dir");
    let ca_file = pem_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");

    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let (cert, key) = (leaf.der().to_vec(), leaf_key.serialize_der());
    let proxied = move |trunk: &Server| {
        let backend = trunk.url.trim_start_matches("http://").to_owned();
        format!("https://127.0.0.1:{}", tls_proxy(backend, cert.clone(), key.clone()))
    };
    let (trunk, twig) = keyed_pair(&dirs, Some(&proxied), &["--peer-ca-file", arg(&ca_file)], &[], "0");
    let (_, nodes) = twig.call(Method::GET, "/admin/nodes", "admin", None);
    let https = nodes["data"]["trunk"]["url"].as_str().expect("url").to_owned();
    assert!(https.starts_with("https://127.0.0.1:"), "{nodes}");
    pay(&twig, "alice", "trunk/bob", "7");
    assert_eq!(balance(&trunk, "trunk", "bob"), rust_decimal::Decimal::from(7));
    pay(&trunk, "bob", "twig/alice", "2");
    assert_eq!(balance(&twig, "twig", "alice"), rust_decimal::Decimal::from(-5));

    // Without the CA, the same URL is refused by TLS: the neighbour is unreachable.
    let lone_dir = tempfile::tempdir().expect("dir");
    let lone = Server::spawn(&serve_args(
        lone_dir.path(),
        "lone",
        &["--trunkward-name", "trunk", "--trunkward-url", https.as_str(), "--trunkward-dialect", "ccnode"],
    ));
    lone.open("dan", -10, 10);
    let body = json!({"payer": "dan", "payee": "trunk/bob", "quant": "1", "description": "x", "type": "pay"});
    let (status, v) = lone.call(Method::POST, "/transaction", "dan", Some(body));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["errors"][0]["class"], "UnavailableNodeFailure", "{v}");
    lone.stop();
    trunk.stop();
    twig.stop();

    // A CA file that is missing, or holds no certificate, stops the start with a clear message.
    let junk = pem_dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    for bad in [pem_dir.path().join("missing.pem"), junk] {
        let data = tempfile::tempdir().expect("dir");
        let out =
            ccnode(&["serve", "--data", arg(data.path()), "--listen", "127.0.0.1:0", "--peer-ca-file", arg(&bad)]);
        assert!(!out.status.success(), "started with {}", bad.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--peer-ca-file"), "{err}");
    }
}
