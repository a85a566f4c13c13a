//! Neighbours as witnesses (issue 11, item 4), this node's side: it asks
//! each neighbour whose key it knows to cosign its latest checkpoint
//! (C2SP tlog-witness `add-checkpoint`, with `cosignature/v1`) and records
//! the cosignatures that verify. Witnessing for the neighbours (their keys,
//! `POST /witness/add-checkpoint`) is in `routes::witness`.

use ledger::AccountId;
use tlog::{KeyType, Note, VerifierKey};

use crate::app::AppState;
use crate::machine::NodeCommand;

/// Asks every neighbour whose key is known to cosign this node's latest
/// checkpoint (if it has not yet) and records the cosignatures, every
/// `interval` until `stop` changes.
pub async fn cosign_loop(state: AppState, interval: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if state.writing() {
            collect_once(&state).await;
        }
    }
}

/// One pass of [`cosign_loop`].
pub async fn collect_once(state: &AppState) {
    let (size, note, asks) = {
        let read = state.read();
        let Some((size, note)) = read.latest_checkpoint() else { return };
        let have = read.cosignatures_at(size);
        let asks: Vec<_> = read
            .projections
            .facts()
            .peer_keys
            .iter()
            .filter(|(peer, _)| !have.iter().any(|(p, _)| p == *peer))
            .filter_map(|(peer, (origin, key))| {
                let url = read.projections.peer(peer)?.url.clone();
                let old = read.projections.facts().cosigned_by.get(peer).copied().unwrap_or(0);
                Some((peer.clone(), origin.clone(), *key, url, old))
            })
            .collect();
        (size, note.to_owned(), asks)
    };
    for (peer, origin, key, url, old) in asks {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else { continue };
        let Ok(cosigner) = VerifierKey::new(&origin, KeyType::CosignatureV1, key) else { continue };
        let mut old = old;
        for _attempt in 0..2 {
            match ask(state, &url, old, size, &note).await {
                Ok(Asked::Lines(lines)) => {
                    record(state, &peer, size, &note, &cosigner, &lines).await;
                    break;
                }
                Ok(Asked::Conflict(their)) if their <= size && their != old => old = their,
                Ok(Asked::Conflict(_)) => break,
                Err(error) => {
                    tracing::warn!(peer = %peer, %error, "the neighbour did not cosign");
                    break;
                }
            }
        }
    }
}

enum Asked {
    Lines(String),
    Conflict(u64),
}

async fn ask(state: &AppState, url: &str, old: u64, size: u64, note: &str) -> Result<Asked, String> {
    let proof = {
        let tree = state.tree();
        let tree = crate::merkle::read(&tree);
        let tree = tree.tree().map_err(|e| e.to_string())?;
        tree.consistency_proof(old, size).map_err(|e| e.to_string())?
    };
    let mut body = format!("old {old}\n");
    for h in &proof {
        body.push_str(&tlog::b64(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    let target = format!("{}/witness/add-checkpoint", url.trim_end_matches('/'));
    // Through the one door to neighbours, signed like every node-to-node request.
    let request = crate::peer_client::PeerRequest::new(reqwest::Method::POST, target)
        .header("cc-node", state.name())
        .text(body)
        .signed(true);
    let answer = state.peers().send(request).await.map_err(|e| e.to_string())?;
    let text = answer.body;
    match answer.status {
        200 => Ok(Asked::Lines(text)),
        409 => text.trim().parse().map(Asked::Conflict).map_err(|_| format!("409 without a size: {text}")),
        other => Err(format!("{other}: {}", text.chars().take(300).collect::<String>())),
    }
}

async fn record(state: &AppState, peer: &AccountId, size: u64, note: &str, cosigner: &VerifierKey, lines: &str) {
    let Ok(signatures) = tlog::note::parse_signature_lines(lines) else {
        tracing::warn!(peer = %peer, "a neighbour answered malformed cosignature lines");
        return;
    };
    let Ok(text) = Note::parse(note.as_bytes()).map(|n| n.text) else { return };
    for signature in signatures {
        if signature.name != cosigner.name || signature.key_id != cosigner.key_id {
            continue;
        }
        if !cosigner.verifies(&text, &signature.signature) {
            tracing::warn!(peer = %peer, "a neighbour's cosignature does not verify");
            return;
        }
        let command = NodeCommand::RecordCosignature { peer: peer.clone(), size, signature: signature.line() };
        if let Err(error) = state.submit(command).await {
            tracing::warn!(error = %crate::app::describe_write_error(&error), "the cosignature was not recorded");
        }
        return;
    }
}
