//! The event vocabulary and its versioned binary encoding.
//!
//! Byte format (a compatibility promise, pinned by golden fixtures):
//! `[version] ++ bincode(event)` with the configuration in
//! [`bincode_config`]: little endian, variable-length integers, and a decode
//! limit of [`EVENT_SIZE_MAX_BYTES`]. Enum variants are their declaration
//! index, so new variants go at the end and existing ones never move.
//!
//! Versions: format 1 embeds the whole workflow in every
//! `TransactionProposed`. Format 2 (written since) journals each definition
//! once (`WorkflowDefined`) and proposes with `TransactionProposedRef`, which
//! names it by id and content hash; a format-2 record never holds a
//! `TransactionProposed` and a format-1 record never holds either new
//! variant. Both are read, so a journal may hold format-1 records followed
//! by format-2 ones.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bincode::{Decode, Encode};

use crate::amount::Amount;
use crate::federation::{FeePolicy, Link};
use crate::ids::{AccountId, TxId};
use crate::model::{
    Account, AccountStatus, Dialect, KeyHash, Limits, NodeConfig, State, Transaction, UnixSeconds, WorkflowRef,
};
use crate::workflow::Workflow;

/// The format version written. Format 2 refers to workflows by id and
/// content hash ([`Event::WorkflowDefined`], [`Event::TransactionProposedRef`])
/// where format 1 embedded the whole definition in every proposal.
pub const EVENT_FORMAT_VERSION: u8 = 2;
/// The first format: every proposal embeds its workflow. Still read.
pub const EVENT_FORMAT_V1: u8 = 1;
/// Largest encoded event, in bytes (the bincode decode limit).
pub const EVENT_SIZE_MAX_BYTES: usize = 1 << 20;

/// Something that happened to the ledger. Events are facts: `apply` never
/// refuses one that `decide` produced.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Event {
    /// The first event of a journal.
    NodeInitialised {
        /// Settings.
        config: NodeConfig,
    },
    /// Settings replaced (the name never changes).
    NodeConfigured {
        /// New settings.
        config: NodeConfig,
    },
    /// A new account.
    AccountOpened {
        /// Its configuration.
        account: Account,
    },
    /// New limits.
    AccountLimitsChanged {
        /// Account.
        id: AccountId,
        /// New limits.
        limits: Limits,
    },
    /// Blocked or unblocked.
    AccountStatusChanged {
        /// Account.
        id: AccountId,
        /// New status.
        status: AccountStatus,
    },
    /// A new key hash (never a key).
    AccountKeyChanged {
        /// Account.
        id: AccountId,
        /// Salted hash.
        key_hash: KeyHash,
    },
    /// A node account got its peer connection facts.
    PeerConnected {
        /// Account, url, rate and initial ratchet hash.
        peer: crate::model::Peer,
    },
    /// A new transaction, whole; its state is `validated` or its workflow's
    /// creation state.
    TransactionProposed {
        /// The transaction.
        transaction: Transaction,
    },
    /// A permitted state change.
    TransactionTransitioned {
        /// Which.
        uuid: TxId,
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Who did it.
        actor: AccountId,
        /// The version after the change.
        version: u32,
        /// When.
        at_unix_s: UnixSeconds,
    },
    /// A validated transaction outlived the validated window.
    TransactionExpired {
        /// Which.
        uuid: TxId,
        /// The version after the change (state becomes timed out).
        version: u32,
        /// When.
        at_unix_s: UnixSeconds,
    },
    /// The transaction just proposed crosses nodes: its neighbours here.
    LinkAttached {
        /// Which.
        uuid: TxId,
        /// Neighbours and trunkward amounts.
        link: Link,
    },
    /// A written version of a shared transaction advanced a link's ratchet.
    RatchetAdvanced {
        /// The neighbour's account.
        peer: AccountId,
        /// Which transaction.
        uuid: TxId,
        /// Its version now.
        version: u32,
        /// The new reference (MD5) hash, lower-case hex.
        md5: String,
        /// The new blake3 hash.
        blake3: [u8; 32],
    },
    /// The fees this node charges on transactions crossing it (`None`: none).
    FeesConfigured {
        /// The policy.
        policy: Option<FeePolicy>,
    },
    /// The transition just before this event was not relayed to us but
    /// copied from a neighbour's link feed, to repair a link.
    LinkReconciled {
        /// The neighbour.
        peer: AccountId,
        /// Which transaction.
        uuid: TxId,
        /// The version repaired.
        version: u32,
    },
    /// A connected neighbour speaks another dialect than ccnode's own
    /// (absent: `Ccnode`). Recorded right after its `PeerConnected`.
    LinkDialectSet {
        /// The neighbour's node account.
        account: AccountId,
        /// Its dialect.
        dialect: Dialect,
    },
    /// The link with a neighbour diverged and is closed: no transaction
    /// crosses it, and no request from the neighbour is served, until
    /// `LinkReopened` (a restart keeps it closed).
    LinkClosed {
        /// The neighbour's node account.
        peer: AccountId,
        /// What was found, as JSON text (shown to admins, `GET /admin/nodes`).
        evidence: String,
    },
    /// A closed link is open again: an admin resolved the divergence, or a
    /// reference link's heads agree again.
    LinkReopened {
        /// The neighbour's node account.
        peer: AccountId,
    },
    /// An account's soft limits (issue 12): crossing one is allowed and
    /// journaled as [`Event::WarnLimitCrossed`]. `None` is no soft limit.
    WarnLimitsChanged {
        /// The account.
        id: AccountId,
        /// Warn below this completed balance.
        warn_min: Option<Amount>,
        /// Warn above this completed balance.
        warn_max: Option<Amount>,
    },
    /// A completed balance went from within an account's soft limits to
    /// beyond one, through the transaction `uuid` (recorded right after it).
    WarnLimitCrossed {
        /// The account.
        id: AccountId,
        /// The transaction that moved it.
        uuid: TxId,
        /// Below `warn_min` (else above `warn_max`).
        below: bool,
        /// The soft limit crossed.
        limit: Amount,
        /// The completed balance after the transaction.
        balance: Amount,
    },
    /// The node's Ed25519 public key, made at first start (the private key
    /// stays in the data directory, never in the journal).
    NodeKeySet {
        /// The 32-byte Ed25519 public key.
        public_key: [u8; 32],
    },
    /// An admin replaced the node's key; the old key signed the change
    /// (`ledger::node_key_rotation_message(old, new)`).
    NodeKeyRotated {
        /// The key until now.
        old: [u8; 32],
        /// The key from now on.
        new: [u8; 32],
        /// Ed25519 signature by `old` over the rotation message.
        signature: [u8; 64],
    },
    /// A signed checkpoint of the journal's first `size` records (a C2SP
    /// signed note: origin, size, root, `balances` and `link` lines, and the
    /// node's signature). Always recorded right after record `size`.
    CheckpointSigned {
        /// Records covered.
        size: u64,
        /// The signed note, as served by `GET /checkpoint`.
        note: String,
    },
    /// A neighbour's checkpoint key, given by an admin: this node witnesses
    /// (cosigns) the neighbour's checkpoints signed by it.
    PeerKeySet {
        /// The neighbour's node account.
        peer: AccountId,
        /// Its checkpoints' origin (the key's name).
        origin: String,
        /// Its Ed25519 public key.
        public_key: [u8; 32],
    },
    /// This node cosigned a neighbour's checkpoint (the witness's record of
    /// the latest tree it vouched for; never a smaller or different one after).
    WitnessCosigned {
        /// The neighbour.
        peer: AccountId,
        /// The tree size cosigned.
        size: u64,
        /// Its root.
        root: [u8; 32],
    },
    /// A neighbour cosigned this node's checkpoint of `size`.
    CheckpointCosigned {
        /// The neighbour.
        peer: AccountId,
        /// The checkpoint's size.
        size: u64,
        /// The `cosignature/v1` signature line (with its newline).
        signature: String,
    },
    /// A workflow definition, journaled once before the first proposal that
    /// refers to it (format 2). Its identity is [`Workflow::content_hash`].
    WorkflowDefined {
        /// The definition.
        workflow: Workflow,
    },
    /// A new transaction whose workflow is a [`WorkflowRef`] to a definition
    /// journaled earlier: format 2's form of [`Event::TransactionProposed`],
    /// which format 2 never writes.
    TransactionProposedRef {
        /// The transaction.
        transaction: Transaction<WorkflowRef>,
    },
}

/// The bytes the old key signs when a node's key is rotated:
/// `"ccnode node key rotation v1\n" ‖ old ‖ new`.
pub fn node_key_rotation_message(old: &[u8; 32], new: &[u8; 32]) -> Vec<u8> {
    let mut message = b"ccnode node key rotation v1\n".to_vec();
    message.extend_from_slice(old);
    message.extend_from_slice(new);
    message
}

/// Why bytes are not an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes.
    #[error("event bytes are empty")]
    Empty,
    /// A version this build does not read.
    #[error("unknown event format version {version}")]
    UnknownVersion {
        /// The leading byte.
        version: u8,
    },
    /// Bytes left over after one event.
    #[error("{trailing} trailing bytes after event")]
    TrailingBytes {
        /// How many.
        trailing: usize,
    },
    /// Well-formed bytes for a value no `decide` can produce.
    #[error("invalid event: {reason}")]
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },
    /// Malformed body.
    #[error("malformed event body: {0}")]
    Body(#[from] bincode::error::DecodeError),
}

/// The pinned bincode configuration, written out so defaults can never
/// change the bytes.
pub fn bincode_config() -> Configuration<LittleEndian, Varint, Limit<EVENT_SIZE_MAX_BYTES>> {
    bincode::config::standard().with_little_endian().with_variable_int_encoding().with_limit::<EVENT_SIZE_MAX_BYTES>()
}

/// Encodes an event as version byte + body, in the format written
/// ([`EVENT_FORMAT_VERSION`]).
///
/// # Panics
///
/// On an [`Event::TransactionProposed`]: format 2 has no such record (a bug
/// in the caller, which should have written [`Event::TransactionProposedRef`]).
pub fn encode_event(event: &Event) -> Vec<u8> {
    assert!(
        !matches!(event, Event::TransactionProposed { .. }),
        "format {EVENT_FORMAT_VERSION} never embeds a workflow: propose with TransactionProposedRef"
    );
    encode_event_as(EVENT_FORMAT_VERSION, event)
}

/// Encodes `event` in format 1, as journals written before format 2 hold
/// it: for golden fixtures and the tests of the format-1 reader.
///
/// # Panics
///
/// On an event format 1 does not have.
pub fn encode_event_v1(event: &Event) -> Vec<u8> {
    assert!(
        !matches!(event, Event::WorkflowDefined { .. } | Event::TransactionProposedRef { .. }),
        "format 1 has no workflow references"
    );
    encode_event_as(EVENT_FORMAT_V1, event)
}

fn encode_event_as(version: u8, event: &Event) -> Vec<u8> {
    let mut bytes = vec![version];
    let body = bincode::encode_to_vec(event, bincode_config()).expect("encoding into a vec cannot fail");
    bytes.extend_from_slice(&body);
    assert!(bytes.len() <= EVENT_SIZE_MAX_BYTES + 1, "event exceeds EVENT_SIZE_MAX_BYTES");
    bytes
}

/// Decodes exactly one event; unknown versions, garbage and trailing bytes
/// are errors, never panics.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != EVENT_FORMAT_VERSION && version != EVENT_FORMAT_V1 {
        return Err(DecodeError::UnknownVersion { version });
    }
    let (event, read) = bincode::decode_from_slice::<Event, _>(body, bincode_config())?;
    let trailing = body.len().saturating_sub(read);
    if trailing != 0 {
        return Err(DecodeError::TrailingBytes { trailing });
    }
    // Each format has its one form of a proposal.
    match (&event, version) {
        (Event::TransactionProposed { .. }, EVENT_FORMAT_VERSION) => {
            return Err(DecodeError::Invalid { reason: "format 2 refers to workflows, it never embeds one" });
        }
        (Event::WorkflowDefined { .. } | Event::TransactionProposedRef { .. }, EVENT_FORMAT_V1) => {
            return Err(DecodeError::Invalid { reason: "format 1 has no workflow references" });
        }
        _ => {}
    }
    let entries = match &event {
        Event::TransactionProposed { transaction } => transaction.entries.len(),
        Event::TransactionProposedRef { transaction } => transaction.entries.len(),
        _ => 1,
    };
    if entries == 0 {
        return Err(DecodeError::Invalid { reason: "transaction without entries" });
    }
    Ok(event)
}
