//! The Credit Commons domain, pure: identifiers, paths, amounts, accounts,
//! transactions, workflows, the event vocabulary with its byte encoding, a
//! minimal state fold and the `decide` rules. No I/O, no clock, no JSON.

pub mod amount;
pub mod decide;
pub mod event;
pub mod federation;
pub mod ids;
pub mod model;
pub mod path;
pub mod ratchet;
pub mod state;
pub mod violation;
pub mod warn;
pub mod workflow;

pub use amount::{Amount, AmountError, Rate, AMOUNT_MAX_UNITS, BALANCE_MAX_UNITS};
pub use decide::{
    allowed_actors, check_limits, decide, is_expired, is_expired_at, limit_broken, Command, Context, LimitSide,
    Proposal,
};
pub use event::{
    decode_event, encode_event, encode_event_v1, node_key_rotation_message, DecodeError, Event, EVENT_FORMAT_V1,
    EVENT_FORMAT_VERSION,
};
pub use ids::{AccountId, NameError, NodeName, TxId, WorkflowId};
pub use model::{
    Account, AccountKind, AccountStatus, Dialect, Entry, KeyHash, Limits, NodeConfig, Peer, State, Transaction,
    UnixSeconds, WorkflowRef,
};
pub use path::{resolve, route, Resolution, Route};
pub use state::{balance_deltas, resolve_workflow, Balances, LedgerState, LedgerView};
pub use violation::{FieldValue, Violation};
pub use workflow::{Actor, Direction, Workflow, WorkflowError};
