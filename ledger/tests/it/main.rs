//! Integration tests for the ledger crate: one binary.

mod amounts;
mod decide_table;
mod golden;
mod paths;
mod props;
mod ratchet;
mod warn;
mod workflows;

use ledger::*;
use uuid::Uuid;

pub fn acc(s: &str) -> AccountId {
    AccountId::new(s).expect("test account id")
}

pub fn amt(s: &str) -> Amount {
    s.parse().expect("test amount")
}

pub fn wid(s: &str) -> WorkflowId {
    WorkflowId::new(s).expect("test workflow id")
}

pub fn tx_id(n: u128) -> TxId {
    TxId(Uuid::from_u128(n))
}

pub fn ctx(now: u64) -> Context {
    Context { now_unix_s: now, fresh_uuid: tx_id(0xffff) }
}

pub fn limits(min: &str, max: &str) -> Limits {
    Limits::new(amt(min), amt(max)).expect("test limits")
}

/// Decides and applies; panics on refusal.
pub fn run(state: &mut LedgerState, command: Command, now: u64) -> Vec<Event> {
    let events = decide(state, command.clone(), &ctx(now)).unwrap_or_else(|v| panic!("{command:?} refused: {v}"));
    for e in &events {
        state.apply(e);
    }
    events
}

/// A node `twig` with users alice, bob, carol (min -10, max 10), an admin,
/// the trunkward account `branch` and a leafward child `leaf1`.
pub fn twig(config: impl FnOnce(&mut NodeConfig)) -> LedgerState {
    let mut state = LedgerState::new();
    let mut c = NodeConfig::new(NodeName::new("twig").expect("name"));
    c.workflows.push(Workflow::from_code("|P-PC+CX+").expect("code"));
    c.workflows.push(Workflow::from_code("_C0CE-PE0CX-").expect("code"));
    config(&mut c);
    run(&mut state, Command::InitialiseNode { config: c }, 0);
    for (id, kind) in [
        ("alice", AccountKind::User { admin: false }),
        ("bob", AccountKind::User { admin: false }),
        ("carol", AccountKind::User { admin: false }),
        ("admin", AccountKind::User { admin: true }),
        ("branch", AccountKind::Trunkward),
        ("leaf1", AccountKind::Leafward),
    ] {
        run(&mut state, Command::OpenAccount { id: acc(id), kind, limits: limits("-10", "10") }, 0);
    }
    state
}

pub fn proposal(author: &str, payer: &str, payee: &str, quant: &str, workflow: &str, uuid: u128) -> Command {
    Command::ProposeTransaction(Proposal {
        author: acc(author),
        payer: payer.to_owned(),
        payee: payee.to_owned(),
        quant: amt(quant),
        description: "test".to_owned(),
        metadata: Default::default(),
        workflow: wid(workflow),
        uuid: Some(tx_id(uuid)),
    })
}
