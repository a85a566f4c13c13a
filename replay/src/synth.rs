//! Synthetic journals of payments, for tests and benchmarks: every event is
//! produced by `ledger::decide` against a `ledger::LedgerState`, so the
//! journal is one a real node could have written.

use std::collections::HashMap;
use std::path::Path;

use journal::{Head, Journal};
use ledger::{
    balance_deltas, decide, encode_event, encode_event_v1, resolve_workflow, Account, AccountId, AccountKind, Amount,
    Balances, Command, Context, Event, LedgerView, Limits, NodeConfig, NodeName, Proposal, State, Transaction, TxId,
    Workflow, WorkflowId, EVENT_FORMAT_V1,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Node name (journal identity).
    pub node: String,
    /// User accounts (`u0`, `u1`, …).
    pub accounts: usize,
    /// Events to write in all (at least the setup events).
    pub events: u64,
    /// Random seed.
    pub seed: u64,
    /// Records per journal batch (one recorded time per batch).
    pub batch: usize,
    /// First record time, unix µs.
    pub start_us: u64,
    /// Time between batches, µs.
    pub step_us: u64,
    /// Account limits (±).
    pub limit_units: i64,
    /// Journal options (segment size, checkpoint interval).
    pub journal: journal::Options,
    /// The node's workflows (must include `payment` and `bill`); `None` ships
    /// the defaults. Golden fixtures pin their own.
    pub workflows: Option<Vec<ledger::Workflow>>,
    /// The event format to write: `ledger::EVENT_FORMAT_VERSION`, or
    /// `ledger::EVENT_FORMAT_V1` for a journal as nodes wrote them before
    /// format 2 (each proposal embeds its workflow; no `WorkflowDefined`).
    pub event_format: u8,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            node: "synth".to_owned(),
            accounts: 20,
            events: 1_000,
            seed: 1,
            batch: 16,
            start_us: 1_790_000_000_000_000,
            step_us: 1_000_000,
            limit_units: 500,
            journal: journal::Options::default(),
            workflows: None,
            event_format: ledger::EVENT_FORMAT_VERSION,
        }
    }
}

/// Why a synthetic journal could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// Journal.
    #[error("journal: {0}")]
    Open(#[from] journal::OpenError),
    /// Journal.
    #[error("journal: {0}")]
    Append(#[from] journal::AppendError),
    /// A setup command was refused.
    #[error("setup refused: {0}")]
    Setup(String),
}

fn id(name: &str) -> AccountId {
    AccountId::new(name).unwrap_or_else(|_| unreachable!("generated ids are valid"))
}

/// Writes a new journal in `dir`: node initialisation, the accounts, then
/// payments (immediate), bills (pending) and bills completed or erased,
/// until `events` events are written. Returns the head and the final state.
/// Memory stays bounded by the open (pending) transactions, so journals of
/// tens of millions of events can be generated.
pub fn write_payments_journal(dir: &Path, options: &SynthOptions) -> Result<(Head, SynthState), SynthError> {
    let mut journal = Journal::create(dir, &options.node, options.journal)?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut state = SynthState::default();
    let mut pending_batch: Vec<Vec<u8>> = Vec::with_capacity(options.batch);
    let mut now_us = options.start_us;
    let mut written = 0u64;
    let mut open_bills: Vec<TxId> = Vec::new();
    let name = NodeName::new(&options.node).map_err(|e| SynthError::Setup(e.to_string()))?;
    let limits = Limits::new(Amount::from_units(-options.limit_units), Amount::from_units(options.limit_units))
        .map_err(|e| SynthError::Setup(e.to_string()))?;
    let mut config = NodeConfig::new(name);
    if let Some(workflows) = &options.workflows {
        config.workflows.clone_from(workflows);
    }
    let mut setup = vec![Command::InitialiseNode { config }];
    for i in 0..options.accounts {
        setup.push(Command::OpenAccount { id: id(&format!("u{i}")), kind: AccountKind::User { admin: false }, limits });
    }
    let payment = WorkflowId::new("payment").map_err(|e| SynthError::Setup(e.to_string()))?;
    let bill = WorkflowId::new("bill").map_err(|e| SynthError::Setup(e.to_string()))?;
    let mut setup = setup.into_iter();
    while written < options.events {
        let ctx = Context { now_unix_s: now_us / 1_000_000, fresh_uuid: TxId(uuid::Uuid::from_u128(rng.gen())) };
        let (command, is_setup) = match setup.next() {
            Some(c) => (c, true),
            None => (random_command(&state, &mut rng, options.accounts, &mut open_bills, &payment, &bill), false),
        };
        let events = match decide(&state, command, &ctx) {
            Ok(events) => events,
            Err(v) if is_setup => return Err(SynthError::Setup(v.to_string())),
            Err(_) => continue, // a limit refused it: like a real node, nothing is written
        };
        for event in events {
            if let Event::TransactionProposedRef { transaction } = &event {
                if matches!(transaction.state, State::Pending | State::Validated) {
                    open_bills.push(transaction.uuid);
                }
            }
            state.apply(&event);
            let record = if options.event_format == EVENT_FORMAT_V1 {
                match &event {
                    Event::WorkflowDefined { .. } => continue,
                    Event::TransactionProposedRef { transaction } => encode_event_v1(&Event::TransactionProposed {
                        transaction: resolve_workflow(&state, transaction),
                    }),
                    other => encode_event_v1(other),
                }
            } else {
                encode_event(&event)
            };
            pending_batch.push(record);
            written += 1;
        }
        if pending_batch.len() >= options.batch || written >= options.events {
            journal.append_batch_at(now_us, &pending_batch)?;
            pending_batch.clear();
            now_us += options.step_us;
        }
    }
    if !pending_batch.is_empty() {
        journal.append_batch_at(now_us, &pending_batch)?;
    }
    Ok((journal.head(), state))
}

fn random_command(
    state: &SynthState,
    rng: &mut StdRng,
    accounts: usize,
    open_bills: &mut Vec<TxId>,
    payment: &WorkflowId,
    bill: &WorkflowId,
) -> Command {
    let roll: u32 = rng.gen_range(0..100);
    if roll < 8 && !open_bills.is_empty() {
        let i = rng.gen_range(0..open_bills.len());
        let uuid = open_bills.swap_remove(i);
        let to = if roll < 6 { State::Completed } else { State::Erased };
        if let Some(tx) = state.transaction(&uuid) {
            if tx.state == State::Validated {
                // The payee confirms its bill; it is then open for signing.
                open_bills.push(uuid);
                return Command::Transition { uuid, to: State::Pending, actor: tx.author.clone() };
            }
            // The payer signs (completes) a bill; the payer erases it where
            // the workflow lets it, else the payee.
            let payer_may = ledger::allowed_actors(tx, to).is_some_and(|a| a.contains(&ledger::Actor::Payer));
            let actor = if to == State::Completed || payer_may { &tx.primary().payer } else { &tx.primary().payee };
            return Command::Transition { uuid, to, actor: actor.clone() };
        }
    }
    let payer = rng.gen_range(0..accounts);
    let mut payee = rng.gen_range(0..accounts.saturating_sub(1).max(1));
    if payee >= payer {
        payee += 1;
    }
    let quant = Amount::from_micros(rng.gen_range(1..100_000_000));
    let (workflow, author) = if roll < 25 { (bill.clone(), payee) } else { (payment.clone(), payer) };
    Command::ProposeTransaction(Proposal {
        author: id(&format!("u{author}")),
        payer: format!("u{payer}"),
        payee: format!("u{payee}"),
        quant,
        description: "synthetic".to_owned(),
        metadata: Default::default(),
        workflow,
        uuid: None,
    })
}

/// A minimal ledger state for generation: `decide` reads it as it would a
/// `LedgerState`, but final transactions are forgotten once booked.
#[derive(Debug, Default)]
pub struct SynthState {
    config: Option<NodeConfig>,
    accounts: HashMap<AccountId, (Account, Balances)>,
    open: HashMap<TxId, Transaction>,
    workflows: HashMap<[u8; 32], Workflow>,
    /// Transactions proposed so far.
    pub transactions_written: u64,
}

impl LedgerView for SynthState {
    fn config(&self) -> Option<&NodeConfig> {
        self.config.as_ref()
    }
    fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id).map(|(a, _)| a)
    }
    fn balances(&self, id: &AccountId) -> Balances {
        self.accounts.get(id).map(|(_, b)| *b).unwrap_or_default()
    }
    fn transaction(&self, uuid: &TxId) -> Option<&Transaction> {
        self.open.get(uuid)
    }
    fn trunkward_account(&self) -> Option<&AccountId> {
        None
    }
    fn workflow(&self, hash: &[u8; 32]) -> Option<&Workflow> {
        self.workflows.get(hash)
    }
}

impl SynthState {
    /// Completed and pending balances of an account.
    pub fn balances_of(&self, id: &AccountId) -> Option<Balances> {
        self.accounts.get(id).map(|(_, b)| *b)
    }

    fn book(&mut self, tx: &Transaction, from: Option<State>, to: State) {
        let Ok(deltas) = balance_deltas(&tx.entries, from, to) else { return };
        for (id, d) in deltas {
            if let Some((_, b)) = self.accounts.get_mut(&id) {
                b.completed = b.completed.checked_add(d.completed).unwrap_or(b.completed);
                b.pending = b.pending.checked_add(d.pending).unwrap_or(b.pending);
            }
        }
    }

    fn apply(&mut self, event: &Event) {
        let is_open = |s: State| matches!(s, State::Pending | State::Validated);
        match event {
            Event::NodeInitialised { config } | Event::NodeConfigured { config } => self.config = Some(config.clone()),
            Event::AccountOpened { account } => {
                self.accounts.insert(account.id.clone(), (account.clone(), Balances::default()));
            }
            Event::WorkflowDefined { workflow } => {
                self.workflows.insert(workflow.content_hash(), workflow.clone());
            }
            Event::TransactionProposedRef { transaction } => {
                let transaction = resolve_workflow(self, transaction);
                self.transactions_written += 1;
                self.book(&transaction, None, transaction.state);
                if is_open(transaction.state) {
                    self.open.insert(transaction.uuid, transaction);
                }
            }
            Event::TransactionTransitioned { uuid, from, to, version, .. } => {
                if let Some(mut tx) = self.open.remove(uuid) {
                    self.book(&tx, Some(*from), *to);
                    tx.state = *to;
                    tx.version = *version;
                    if is_open(*to) {
                        self.open.insert(*uuid, tx);
                    }
                }
            }
            _ => {}
        }
    }
}
