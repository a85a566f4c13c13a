//! Integration tests for the projections crate: one binary.

mod basics;
mod findings;
mod overflow;
mod props;
mod queries;
mod store;

use ledger::*;
use projections::Projections;
use uuid::Uuid;

pub fn acc(s: &str) -> AccountId {
    AccountId::new(s).expect("test account id")
}

pub fn amt(s: &str) -> Amount {
    s.parse().expect("test amount")
}

pub fn tx_id(n: u128) -> TxId {
    TxId(Uuid::from_u128(n))
}

pub fn limits(min: i64, max: i64) -> Limits {
    Limits::new(Amount::from_units(min), Amount::from_units(max)).expect("test limits")
}

/// A ledger driven through `decide`, its events folded into projections as
/// a journal would number and stamp them.
#[derive(Debug)]
pub struct Node {
    pub state: LedgerState,
    pub proj: Projections,
    /// (seq, recorded_at_us, event), seq from 1.
    pub events: Vec<(u64, u64, Event)>,
    pub now_unix_s: u64,
}

impl Node {
    pub fn empty() -> Self {
        Self { state: LedgerState::new(), proj: Projections::new(), events: Vec::new(), now_unix_s: 1_000 }
    }

    /// Node `twig` with users alice, bob, carol (limits ±100), admin `admin`
    /// and the trunkward account `branch`; all default workflows plus two codes.
    pub fn twig() -> Self {
        let mut node = Self::empty();
        let mut config = NodeConfig::new(NodeName::new("twig").expect("name"));
        // These tests fold a `bill` that is pending at once (ccnode's first
        // shipped bill, `_P+PC-PE-PE+`); the reference's bill, which waits in
        // validated first, is covered by ledger's decide tables and the e2e tests.
        for w in config.workflows.iter_mut().filter(|w| w.id.as_str() == "bill") {
            let mut immediate = Workflow::from_code("_P+PC-PE-PE+").expect("code");
            immediate.id = w.id.clone();
            *w = immediate;
        }
        config.workflows.push(Workflow::from_code("|P-PC+CX+").expect("code"));
        config.workflows.push(Workflow::from_code("_C0CE-PE0CX-").expect("code"));
        node.ok(Command::InitialiseNode { config });
        for (id, kind) in [
            ("alice", AccountKind::User { admin: false }),
            ("bob", AccountKind::User { admin: false }),
            ("carol", AccountKind::User { admin: false }),
            ("admin", AccountKind::User { admin: true }),
            ("branch", AccountKind::Trunkward),
        ] {
            node.ok(Command::OpenAccount { id: acc(id), kind, limits: limits(-100, 100) });
        }
        node
    }

    /// The record time of the next event: one second per unix second, plus
    /// the seq so times within a second differ.
    fn at_us(&self, seq: u64) -> u64 {
        self.now_unix_s * 1_000_000 + seq
    }

    pub fn run(&mut self, command: Command) -> Result<Vec<Event>, Violation> {
        let ctx = Context { now_unix_s: self.now_unix_s, fresh_uuid: tx_id(0xffff) };
        let events = decide(&self.state, command, &ctx)?;
        for event in &events {
            let seq = self.proj.seq() + 1;
            let at = self.at_us(seq);
            self.state.apply(event);
            self.proj.apply(seq, at, event);
            self.events.push((seq, at, event.clone()));
        }
        Ok(events)
    }

    pub fn ok(&mut self, command: Command) -> Vec<Event> {
        let shown = format!("{command:?}");
        self.run(command).unwrap_or_else(|v| panic!("{shown} refused: {v}"))
    }

    pub fn propose(&mut self, author: &str, payer: &str, payee: &str, quant: &str, workflow: &str, uuid: u128) {
        self.ok(proposal(author, payer, payee, quant, workflow, uuid, "test"));
    }

    pub fn transition(&mut self, uuid: u128, to: State, actor: &str) {
        self.ok(Command::Transition { uuid: tx_id(uuid), to, actor: acc(actor) });
    }
}

pub fn proposal(
    author: &str,
    payer: &str,
    payee: &str,
    quant: &str,
    workflow: &str,
    uuid: u128,
    description: &str,
) -> Command {
    Command::ProposeTransaction(Proposal {
        author: acc(author),
        payer: payer.to_owned(),
        payee: payee.to_owned(),
        quant: amt(quant),
        description: description.to_owned(),
        metadata: Default::default(),
        workflow: WorkflowId::new(workflow).expect("workflow id"),
        uuid: Some(tx_id(uuid)),
    })
}
