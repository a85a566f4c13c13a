//! Accounts, transactions, entries, states and the node configuration.

use std::collections::BTreeMap;
use std::fmt;

use bincode::{Decode, Encode};

use crate::amount::{Amount, Rate};
use crate::ids::{AccountId, NodeName, TxId, WorkflowId};
use crate::workflow::Workflow;

/// Seconds since the Unix epoch, UTC. The core never reads a clock; the
/// shell passes `now` in [`crate::Context`].
pub type UnixSeconds = u64;

/// Default life of a validated (unconfirmed) transaction: node.ini's
/// `validated_window = 300`.
pub const VALIDATED_WINDOW_DEFAULT_S: u64 = 300;
/// Longest entry description, in bytes.
pub const DESCRIPTION_LENGTH_MAX_BYTES: usize = 1024;
/// Most metadata keys on one entry.
pub const METADATA_KEYS_MAX: usize = 32;
/// Longest metadata key or value, in bytes.
pub const METADATA_TEXT_LENGTH_MAX_BYTES: usize = 1024;

/// Balance limits; `min ≤ 0 ≤ max` always ("limits straddle zero"), also
/// when decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode)]
pub struct Limits {
    min: Amount,
    max: Amount,
}

/// Limits that do not straddle zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits min {min} max {max} do not satisfy min <= 0 <= max")]
pub struct LimitsError {
    /// Refused minimum.
    pub min: Amount,
    /// Refused maximum.
    pub max: Amount,
}

impl Limits {
    /// Checks `min ≤ 0 ≤ max`.
    pub fn new(min: Amount, max: Amount) -> Result<Self, LimitsError> {
        if min.is_positive() || max.is_negative() {
            return Err(LimitsError { min, max });
        }
        Ok(Self { min, max })
    }

    /// The lowest balance allowed.
    pub fn min(&self) -> Amount {
        self.min
    }

    /// The highest balance allowed.
    pub fn max(&self) -> Amount {
        self.max
    }
}

impl<Context> Decode<Context> for Limits {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let min = Amount::decode(decoder)?;
        let max = Amount::decode(decoder)?;
        Limits::new(min, max).map_err(|e| bincode::error::DecodeError::OtherString(e.to_string()))
    }
}
bincode::impl_borrow_decode!(Limits);

/// Whether an account may trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum AccountStatus {
    /// May propose and act on transactions.
    Active,
    /// Refused as a party, author or actor of new writes.
    Blocked,
}

/// What an account stands for.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum AccountKind {
    /// A leaf account for an end user.
    User {
        /// Admins may make any transition a workflow allows.
        admin: bool,
    },
    /// A child node, leafward; its id is the child's node name.
    Leafward,
    /// The parent node, trunkward: the balance-of-trade account. At most one.
    Trunkward,
}

/// An account's configuration (balances live in [`crate::LedgerState`]).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Account {
    /// Unique on this node.
    pub id: AccountId,
    /// User or node account.
    pub kind: AccountKind,
    /// Balance limits.
    pub limits: Limits,
    /// Active or blocked.
    pub status: AccountStatus,
}

impl Account {
    /// True for a user account with the admin flag.
    pub fn is_admin(&self) -> bool {
        matches!(self.kind, AccountKind::User { admin: true })
    }
}

/// A salted hash of an account's key. The ledger never sees the key: the
/// shell hashes it (blake3 or argon2, its choice) and passes only these bytes.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct KeyHash {
    /// Random salt.
    pub salt: [u8; 16],
    /// Hash of salt ‖ key.
    pub hash: [u8; 32],
}

/// A transaction's state. 0.8.x long names and 0.9.x letters.
///
/// `X` is read as `timedout` (the 0.8 storage enum's last value): a terminal
/// state that, like `erased`, removes the transaction from balances. The
/// clock moves validated transactions there; codes such as `CX+` let a party
/// void ("scrub") a completed one. See docs/PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum State {
    /// `V`: built and checked, awaiting the creator's confirmation.
    Validated,
    /// `P`: written, awaiting signature; counts in pending balances.
    Pending,
    /// `C`: written and final; counts in completed and pending balances.
    Completed,
    /// `E`: erased; counts nowhere.
    Erased,
    /// `X`: timed out or scrubbed; counts nowhere.
    TimedOut,
}

impl State {
    /// Every state, for tables and generators.
    pub const ALL: [State; 5] = [State::Validated, State::Pending, State::Completed, State::Erased, State::TimedOut];

    /// The 0.9.x letter.
    pub fn letter(self) -> char {
        match self {
            State::Validated => 'V',
            State::Pending => 'P',
            State::Completed => 'C',
            State::Erased => 'E',
            State::TimedOut => 'X',
        }
    }

    /// Parses a 0.9.x letter.
    pub fn from_letter(c: char) -> Option<State> {
        State::ALL.into_iter().find(|s| s.letter() == c)
    }

    /// The 0.8.x name.
    pub fn name(self) -> &'static str {
        match self {
            State::Validated => "validated",
            State::Pending => "pending",
            State::Completed => "completed",
            State::Erased => "erased",
            State::TimedOut => "timedout",
        }
    }

    /// Parses a 0.8.x name or a 0.9.x letter.
    pub fn parse(s: &str) -> Option<State> {
        let mut chars = s.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return State::from_letter(c);
        }
        State::ALL.into_iter().find(|st| st.name() == s)
    }

    /// Counts toward completed balances.
    pub fn counts_completed(self) -> bool {
        self == State::Completed
    }

    /// Counts toward pending balances (which include completed ones).
    pub fn counts_pending(self) -> bool {
        matches!(self, State::Pending | State::Completed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One movement of value between two accounts of this node.
///
/// When a party is remote, `payer`/`payee` is the adjacent node's account and
/// `remote[<that account id>]` holds the remote relative path. User metadata
/// lives apart, in `metadata`, and may not use a party's id as a key
/// (`decide` refuses it), so it can never change how a party is shown.
///
/// Event format v1 stores both in one map, as the reference does (remote
/// paths under the party's id): `Encode` writes the union, `Decode` gives
/// the keys naming the entry's payer or payee to `remote`. The bytes are
/// those of format v1, pinned by the golden fixtures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who pays.
    pub payer: AccountId,
    /// Who is paid.
    pub payee: AccountId,
    /// How much, strictly positive unless zero payments are allowed.
    pub quant: Amount,
    /// Free text.
    pub description: String,
    /// The user's ordered string map; JSON values are the api crate's business.
    pub metadata: BTreeMap<String, String>,
    /// A remote party's path beyond this node, keyed by its node account's id.
    pub remote: BTreeMap<String, String>,
}

impl Entry {
    /// The one map format v1 stores: the user's metadata and the remote paths.
    pub fn stored_map(&self) -> BTreeMap<String, String> {
        let mut map = self.metadata.clone();
        map.extend(self.remote.iter().map(|(k, v)| (k.clone(), v.clone())));
        map
    }

    /// Splits a stored map: the keys naming `payer` or `payee` are remote paths.
    pub fn split_stored(
        payer: &AccountId,
        payee: &AccountId,
        map: BTreeMap<String, String>,
    ) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        map.into_iter().partition(|(k, _)| k != payer.as_str() && k != payee.as_str())
    }
}

impl Encode for Entry {
    fn encode<E: bincode::enc::Encoder>(&self, encoder: &mut E) -> Result<(), bincode::error::EncodeError> {
        self.payer.encode(encoder)?;
        self.payee.encode(encoder)?;
        self.quant.encode(encoder)?;
        self.description.encode(encoder)?;
        self.stored_map().encode(encoder)
    }
}

impl<Context> Decode<Context> for Entry {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let payer = AccountId::decode(decoder)?;
        let payee = AccountId::decode(decoder)?;
        let quant = Amount::decode(decoder)?;
        let description = crate::ids::decode_string(decoder)?;
        let map = BTreeMap::<String, String>::decode(decoder)?;
        let (metadata, remote) = Entry::split_stored(&payer, &payee, map);
        Ok(Entry { payer, payee, quant, description, metadata, remote })
    }
}
bincode::impl_borrow_decode!(Entry);

/// A Credit Commons transaction as this node stores it.
///
/// `W` is how it holds its workflow: the definition itself (the default, as
/// every reader sees a transaction), or a [`WorkflowRef`] to a definition
/// journaled earlier (as a format-2 `TransactionProposedRef` event carries it).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Transaction<W = Workflow> {
    /// Universal id.
    pub uuid: TxId,
    /// Number of state changes so far (validated = 0).
    pub version: u32,
    /// Current state.
    pub state: State,
    /// The workflow, fixed at proposal so that later workflow edits never
    /// change what an existing transaction allows.
    pub workflow: W,
    /// Who created it.
    pub author: AccountId,
    /// When it was proposed.
    pub written_unix_s: UnixSeconds,
    /// The first entry is primary; the rest are additional (fees).
    pub entries: Vec<Entry>,
}

impl<W> Transaction<W> {
    /// The primary entry. A transaction always has one.
    pub fn primary(&self) -> &Entry {
        self.entries.first().expect("a transaction always has a primary entry")
    }

    /// The same transaction holding its workflow as `workflow`.
    pub fn with_workflow<V>(self, workflow: V) -> Transaction<V> {
        self.replace_workflow(workflow).0
    }

    /// The same transaction holding its workflow as `workflow`, and the
    /// workflow it held.
    pub fn replace_workflow<V>(self, workflow: V) -> (Transaction<V>, W) {
        let Transaction { uuid, version, state, workflow: old, author, written_unix_s, entries } = self;
        (Transaction { uuid, version, state, workflow, author, written_unix_s, entries }, old)
    }
}

impl Transaction {
    /// The same transaction referring to its workflow by id and content hash.
    pub fn to_ref(&self) -> Transaction<WorkflowRef> {
        let workflow = WorkflowRef::of(&self.workflow);
        Transaction {
            uuid: self.uuid,
            version: self.version,
            state: self.state,
            workflow,
            author: self.author.clone(),
            written_unix_s: self.written_unix_s,
            entries: self.entries.clone(),
        }
    }
}

/// A workflow definition named by its id and the blake3 hash of its
/// encoding ([`Workflow::content_hash`]): what a format-2 proposal carries
/// instead of the definition, which a `WorkflowDefined` event journaled once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
pub struct WorkflowRef {
    /// The workflow's id (for readers of the journal; the hash decides).
    pub id: WorkflowId,
    /// [`Workflow::content_hash`] of the definition.
    pub hash: [u8; 32],
}

impl WorkflowRef {
    /// The reference to `workflow`.
    pub fn of(workflow: &Workflow) -> Self {
        Self { id: workflow.id.clone(), hash: workflow.content_hash() }
    }
}

/// Node-wide settings that decide depends on; journaled so replay decides
/// the same way.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct NodeConfig {
    /// This node's name (a path segment).
    pub name: NodeName,
    /// Seconds a validated transaction lives before it may be expired.
    pub validated_window_s: u64,
    /// Count pending transactions in limit checks (reference default: on).
    pub validate_pending: bool,
    /// Allow `quant == 0`.
    pub zero_payments_allowed: bool,
    /// Workflows offered for new transactions.
    pub workflows: Vec<Workflow>,
}

impl NodeConfig {
    /// Defaults: 300 s window, pending counted, no zero payments, the
    /// shipped workflows.
    pub fn new(name: NodeName) -> Self {
        Self {
            name,
            validated_window_s: VALIDATED_WINDOW_DEFAULT_S,
            validate_pending: true,
            zero_payments_allowed: false,
            workflows: crate::workflow::default_workflows(),
        }
    }
}

/// How a link's neighbour speaks the protocol (docs/PROTOCOL.md, "Dialects").
///
/// The variants are encoded by position (journal format v1): new ones are
/// appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Encode, Decode)]
pub enum Dialect {
    /// ccnode's own protocol between two ccnodes (0.9.x letters): a relay
    /// validates, a PATCH writes, links reconcile through the link feed. A
    /// link journaled before dialects were named has this one.
    #[default]
    Ccnode,
    /// Komunitin's: a relay books at once, no PATCH ever crosses, and the
    /// ratchet advances over the relay body (state `V`, its `version`).
    Komunitin,
    /// The PHP reference node 0.8.5 (cc-server, cc-node): the `cc-user` /
    /// `cc-auth` pair, long state names in PATCH URLs and in the ratchet, an
    /// immediate workflow's relay is its write.
    Reference,
}

impl Dialect {
    /// Every dialect, in encoding order.
    pub const ALL: [Dialect; 3] = [Dialect::Ccnode, Dialect::Komunitin, Dialect::Reference];

    /// Its name in the admin API.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Ccnode => "ccnode",
            Dialect::Komunitin => "komunitin",
            Dialect::Reference => "reference",
        }
    }

    /// Parses an admin API name.
    pub fn parse(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// An adjacent node's connection facts (placeholder until replay exists).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Peer {
    /// The node account the peer trades through.
    pub account: AccountId,
    /// Base URL.
    pub url: String,
    /// Exchange rate with this peer (for the trunkward parent).
    pub rate: Rate,
    /// The ratchet's starting hash, as text.
    pub initial_hash: String,
}
