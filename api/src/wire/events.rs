//! A JSON view of ledger events, for the event feed (`GET /replay/events`)
//! and `ccnode replay --format json`. Amounts are strings (exact decimal
//! text), hashes hex. Key hashes are never shown (the raw payload still
//! carries them).

use ledger::{Account, AccountKind, AccountStatus, Entry, Event, Limits, NodeConfig, Transaction};
use serde_json::{json, Value};

pub use ledger::ratchet::hex;

/// Limits as `{"min": "-10", "max": "10"}`.
pub fn limits_json(limits: &Limits) -> Value {
    json!({ "min": limits.min().to_string(), "max": limits.max().to_string() })
}

fn kind_name(kind: &AccountKind) -> &'static str {
    match kind {
        AccountKind::User { admin: true } => "admin",
        AccountKind::User { admin: false } => "user",
        AccountKind::Leafward => "leafward",
        AccountKind::Trunkward => "trunkward",
    }
}

fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Blocked => "blocked",
    }
}

/// An account's configuration.
pub fn account_json(account: &Account) -> Value {
    json!({
        "id": account.id.as_str(),
        "kind": kind_name(&account.kind),
        "status": status_name(account.status),
        "limits": limits_json(&account.limits),
    })
}

fn config_json(config: &NodeConfig) -> Value {
    let workflows: Vec<&str> = config.workflows.iter().map(|w| w.id.as_str()).collect();
    json!({
        "name": config.name.as_str(),
        "validated_window_s": config.validated_window_s,
        "validate_pending": config.validate_pending,
        "zero_payments_allowed": config.zero_payments_allowed,
        "workflows": workflows,
    })
}

fn entry_json(entry: &Entry) -> Value {
    json!({
        "payer": entry.payer.as_str(),
        "payee": entry.payee.as_str(),
        "quant": entry.quant.to_string(),
        "description": entry.description,
        // As event format v1 stores it: remote paths under the party's id.
        "metadata": entry.stored_map(),
    })
}

/// A transaction as stored (workflow by id).
pub fn transaction_json(tx: &Transaction) -> Value {
    transaction_named_json(tx, tx.workflow.id.as_str())
}

fn transaction_named_json<W>(tx: &Transaction<W>, workflow: &str) -> Value {
    let entries: Vec<Value> = tx.entries.iter().map(entry_json).collect();
    json!({
        "uuid": tx.uuid.to_string(),
        "version": tx.version,
        "state": tx.state.name(),
        "workflow": workflow,
        "author": tx.author.as_str(),
        "written_unix_s": tx.written_unix_s,
        "entries": entries,
    })
}

/// One event: `{"type": "<variant>", ...fields}`.
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::NodeInitialised { config } => json!({"type": "NodeInitialised", "config": config_json(config)}),
        Event::NodeConfigured { config } => json!({"type": "NodeConfigured", "config": config_json(config)}),
        Event::AccountOpened { account } => json!({"type": "AccountOpened", "account": account_json(account)}),
        Event::AccountLimitsChanged { id, limits } => {
            json!({"type": "AccountLimitsChanged", "id": id.as_str(), "limits": limits_json(limits)})
        }
        Event::AccountStatusChanged { id, status } => {
            json!({"type": "AccountStatusChanged", "id": id.as_str(), "status": status_name(*status)})
        }
        Event::AccountKeyChanged { id, .. } => json!({"type": "AccountKeyChanged", "id": id.as_str()}),
        Event::PeerConnected { peer } => json!({
            "type": "PeerConnected",
            "account": peer.account.as_str(),
            "url": peer.url,
            "rate": peer.rate.as_decimal().to_string(),
            "initial_hash": peer.initial_hash,
        }),
        Event::LinkAttached { uuid, link } => {
            let quants: Vec<Value> =
                link.trunkward_quants.iter().map(|q| q.map_or(Value::Null, |q| Value::String(q.to_string()))).collect();
            json!({
                "type": "LinkAttached",
                "uuid": uuid.to_string(),
                "upstream": link.upstream.as_ref().map(|a| a.as_str()),
                "downstream": link.downstream.as_ref().map(|a| a.as_str()),
                "trunkward_quants": quants,
            })
        }
        Event::RatchetAdvanced { peer, uuid, version, md5, blake3 } => json!({
            "type": "RatchetAdvanced",
            "peer": peer.as_str(),
            "uuid": uuid.to_string(),
            "version": version,
            "md5": md5,
            "blake3": hex(blake3),
        }),
        Event::LinkReconciled { peer, uuid, version } => json!({
            "type": "LinkReconciled",
            "peer": peer.as_str(),
            "uuid": uuid.to_string(),
            "version": version,
        }),
        Event::WarnLimitsChanged { id, warn_min, warn_max } => json!({
            "type": "WarnLimitsChanged",
            "id": id.as_str(),
            "warn_min": warn_min.map(|a| a.to_string()),
            "warn_max": warn_max.map(|a| a.to_string()),
        }),
        Event::WarnLimitCrossed { id, uuid, below, limit, balance } => json!({
            "type": "WarnLimitCrossed",
            "id": id.as_str(),
            "uuid": uuid.to_string(),
            "below": below,
            "limit": limit.to_string(),
            "balance": balance.to_string(),
        }),
        Event::NodeKeySet { public_key } => json!({
            "type": "NodeKeySet",
            "public_key": hex(public_key),
        }),
        Event::NodeKeyRotated { old, new, signature } => json!({
            "type": "NodeKeyRotated",
            "old": hex(old),
            "new": hex(new),
            "signature": hex(signature),
        }),
        Event::PeerKeySet { peer, origin, public_key } => json!({
            "type": "PeerKeySet",
            "peer": peer.as_str(),
            "origin": origin,
            "public_key": hex(public_key),
        }),
        Event::WitnessCosigned { peer, size, root } => json!({
            "type": "WitnessCosigned",
            "peer": peer.as_str(),
            "size": size,
            "root": hex(root),
        }),
        Event::CheckpointCosigned { peer, size, signature } => json!({
            "type": "CheckpointCosigned",
            "peer": peer.as_str(),
            "size": size,
            "signature": signature,
        }),
        Event::CheckpointSigned { size, note } => json!({
            "type": "CheckpointSigned",
            "size": size,
            "note": note,
        }),
        Event::LinkDialectSet { account, dialect } => json!({
            "type": "LinkDialectSet",
            "account": account.as_str(),
            "dialect": dialect.name(),
        }),
        Event::LinkClosed { peer, evidence } => json!({
            "type": "LinkClosed",
            "peer": peer.as_str(),
            "evidence": serde_json::from_str::<serde_json::Value>(evidence).unwrap_or_else(|_| json!(evidence)),
        }),
        Event::LinkReopened { peer } => json!({
            "type": "LinkReopened",
            "peer": peer.as_str(),
        }),
        Event::FeesConfigured { policy } => json!({
            "type": "FeesConfigured",
            "policy": policy.as_ref().map(|p| json!({
                "account": p.account.as_str(),
                "fixed": p.fixed.to_string(),
                "percent": p.percent.to_string(),
            })),
        }),
        Event::TransactionProposed { transaction } => {
            json!({"type": "TransactionProposed", "transaction": transaction_json(transaction)})
        }
        // Format 2's proposal reads as format 1's: one event type for
        // scripts, with the content hash of the workflow it names.
        Event::TransactionProposedRef { transaction } => {
            let mut tx = transaction_named_json(transaction, transaction.workflow.id.as_str());
            tx["workflow_hash"] = Value::String(hex(&transaction.workflow.hash));
            json!({"type": "TransactionProposed", "transaction": tx})
        }
        Event::WorkflowDefined { workflow } => json!({
            "type": "WorkflowDefined",
            "workflow": {
                "id": workflow.id.as_str(),
                "label": workflow.label,
                "active": workflow.active,
                "hash": hex(&workflow.content_hash()),
            },
        }),
        Event::TransactionTransitioned { uuid, from, to, actor, version, at_unix_s } => json!({
            "type": "TransactionTransitioned",
            "uuid": uuid.to_string(),
            "from": from.name(),
            "to": to.name(),
            "actor": actor.as_str(),
            "version": version,
            "at_unix_s": at_unix_s,
        }),
        Event::TransactionExpired { uuid, version, at_unix_s } => json!({
            "type": "TransactionExpired",
            "uuid": uuid.to_string(),
            "version": version,
            "at_unix_s": at_unix_s,
        }),
    }
}
