//! What is wrong with an event that the projections refuse to fold.
//!
//! [`crate::Projections::try_apply`] checks every event against the state
//! before changing anything, and refuses one that `ledger::decide` could not
//! have produced with a [`Finding`] naming its seq. The auditor (`replay`)
//! reports these; the node stops folding at the first one and starts
//! read-only.

use ledger::{Amount, State};

/// What is wrong at one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {kind}")]
pub struct Finding {
    /// The journal seq of the event.
    pub seq: u64,
    /// What.
    pub kind: FindingKind,
}

/// The kinds of event that do not fit the state they are folded into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FindingKind {
    /// A signed checkpoint that is misplaced, malformed, wrongly signed or
    /// whose root is not the journal's (found by `replay`'s signature fold,
    /// which has the chain hashes and verifies signatures).
    #[error("bad checkpoint: {detail}")]
    BadCheckpoint {
        /// What is wrong.
        detail: String,
    },
    /// A key rotation from a key that is not the node's current key, or not signed by it.
    #[error("node key rotated from a key that is not the node's")]
    KeyRotationFromWrongKey,
    /// A checkpoint that is not the record right after the records it covers, or does not grow.
    #[error("checkpoint of size {size} here (it must be record size + 1, after the checkpoint of size {last})")]
    CheckpointOutOfOrder {
        /// Its size.
        size: u64,
        /// The previous checkpoint's size.
        last: u64,
    },
    /// An event before `NodeInitialised`.
    #[error("event before the node was initialised")]
    NotInitialised,
    /// A second `NodeInitialised`.
    #[error("node initialised twice")]
    InitialisedTwice,
    /// `NodeConfigured` with another name.
    #[error("node name changed from {from} to {to}")]
    NameChanged {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// An account opened twice.
    #[error("account {account} opened twice")]
    AccountOpenedTwice {
        /// Which.
        account: String,
    },
    /// A second trunkward account.
    #[error("account {account} is a second trunkward account")]
    SecondTrunkward {
        /// Which.
        account: String,
    },
    /// An event names an account that is not open.
    #[error("unknown account {account}")]
    UnknownAccount {
        /// Which.
        account: String,
    },
    /// Peer facts on a user account.
    #[error("peer facts on user account {account}")]
    PeerOnUserAccount {
        /// Which.
        account: String,
    },
    /// A link fact (ratchet, key, cosignature, dialect, closing) of a
    /// neighbour with no peer facts.
    #[error("ratchet of {account}, which is not a connected peer")]
    NotAPeer {
        /// Which.
        account: String,
    },
    /// A transaction without entries.
    #[error("transaction {uuid} has no entries")]
    NoEntries {
        /// Which.
        uuid: String,
    },
    /// A transaction proposed twice.
    #[error("transaction {uuid} proposed twice")]
    DuplicateTransaction {
        /// Which.
        uuid: String,
    },
    /// A format-2 proposal naming a workflow no `WorkflowDefined` defined.
    #[error("transaction {uuid} names workflow {workflow}, which was never defined")]
    UndefinedWorkflow {
        /// Which transaction.
        uuid: String,
        /// The workflow id it names.
        workflow: String,
    },
    /// A transition of a transaction never proposed.
    #[error("transition of unknown transaction {uuid}")]
    UnknownTransaction {
        /// Which.
        uuid: String,
    },
    /// A transition from a state the transaction is not in.
    #[error("transaction {uuid} moves from {claimed} but is {actual}")]
    StaleState {
        /// Which.
        uuid: String,
        /// State the event says it leaves.
        claimed: State,
        /// State it is in.
        actual: State,
    },
    /// A version that is not the next one.
    #[error("transaction {uuid} jumps from version {current} to {claimed}")]
    VersionSkip {
        /// Which.
        uuid: String,
        /// Current version.
        current: u32,
        /// Version the event claims.
        claimed: u32,
    },
    /// A balance beyond what an [`Amount`] holds exactly (a 96-bit mantissa
    /// at six decimals, about 7.9·10^22 units): an older version could
    /// journal such a booking, `decide` no longer can.
    #[error("balance of {account} overflows")]
    Overflow {
        /// Which.
        account: String,
    },
    /// A running trade total (gross in, gross out or volume) beyond 128 bits
    /// of micro-units.
    #[error("the {which} trade totals of {account} would overflow 128 bits")]
    TotalsOverflow {
        /// Which account.
        account: String,
        /// `completed` or `pending`.
        which: &'static str,
    },
    /// More accounts or transactions than the projections number (2^32 − 1).
    #[error("more than 2^32 - 1 {what}")]
    TooMany {
        /// `accounts` or `transactions`.
        what: &'static str,
    },
    /// A booking moved a balance out of its limits, as `ledger::check_limits`
    /// defines it (see `ledger::limit_broken`).
    #[error("{which} balance of {account} moved by {change} to {balance}, outside its limits [{min}, {max}]")]
    LimitBroken {
        /// Which account.
        account: String,
        /// `completed` or `pending`.
        which: &'static str,
        /// The change this event made.
        change: Amount,
        /// The balance after it.
        balance: Amount,
        /// Lower limit in force.
        min: Amount,
        /// Upper limit in force.
        max: Amount,
    },
    /// The ledger does not sum to zero after this event. The booking rule
    /// (each entry moves its quant from payer to payee) makes this impossible
    /// for any event; the auditor still checks the sums it reports.
    #[error("balances do not sum to zero: completed {completed}, pending {pending}")]
    NotZeroSum {
        /// Sum of completed balances.
        completed: Amount,
        /// Sum of pending balances.
        pending: Amount,
    },
    /// A seq that does not follow the last one folded.
    #[error("seq does not follow the last applied seq {last}")]
    SeqNotIncreasing {
        /// The last applied seq.
        last: u64,
    },
}
