//! Schema-only types: what each answer of `/openapi.json` looks like.
//!
//! Most answers are built as `serde_json::Value`; these structs only describe
//! them (they are never built), so that every 2xx and every error answer of
//! the document has a content schema a schema-driven client can check
//! (`api/tests/schema.rs` checks real answers against them; `.ci/schemathesis.sh`
//! fuzzes the running node with them).
//!
//! Amounts are exact decimals of at most six places ([`Amount`] in answers,
//! [`AmountIn`] in request bodies), never floats.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::wire::amount_schema::AMOUNT_NUMBER_BOUND;
pub use crate::wire::amount_schema::{Amount, AmountIn, AMOUNT_STRING_PATTERN};
use crate::wire::{EntryFullJson, EntryJson, TransactionJson};

/// Pattern of an account id, node name or workflow id in request bodies
/// (the server accepts any 1 to 64 visible ASCII characters for some of them;
/// the schema asks for the portable subset).
pub const ID_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";
/// Pattern of an account path: ids separated by `/` (a trailing `/` names a node).
pub const PATH_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}/?$";
/// Pattern of a uuid.
pub const UUID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A soft limit in `PATCH /admin/accounts/{id}`: an amount as [`AmountIn`],
/// or `"none"` to remove it.
#[derive(Debug)]
pub struct WarnLevelIn;

impl PartialSchema for WarnLevelIn {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("A soft limit: an exact decimal (as `AmountIn`), or \"none\" to remove it."))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .multiple_of(Some(0.000_001))
                    .minimum(Some(-AMOUNT_NUMBER_BOUND))
                    .maximum(Some(AMOUNT_NUMBER_BOUND)),
            )
            .item(
                ObjectBuilder::new().schema_type(Type::String).pattern(Some("^(none|-?[0-9]{1,19}(\\.[0-9]{1,6})?)$")),
            )
            .examples([serde_json::json!(-40), serde_json::json!("none")])
            .into()
    }
}

impl ToSchema for WarnLevelIn {}

/// One Credit Commons error: `class`, the answering `node` (absent from a
/// neighbour's relayed error only when that neighbour left it out), and the
/// class's own fields (`fields`, `type`, `id`, `message`, `limit`, ...).
#[derive(Debug)]
pub struct ErrorObject;

impl PartialSchema for ErrorObject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("One Credit Commons error: its class, the node that raised it, and the class's fields."))
            .property(
                "class",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .examples([serde_json::json!("InvalidFieldsViolation")]),
            )
            .required("class")
            .property("node", ObjectBuilder::new().schema_type(Type::String))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

impl ToSchema for ErrorObject {}

/// Every error answer (4xx and 5xx): `{"errors": [ErrorObject, ...]}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// One error or more, the first being the cause.
    #[schema(min_items = 1)]
    errors: Vec<ErrorObject>,
}

// ---------------------------------------------------------------------------
// Answers: `{data, meta?, links?}`

/// `OPTIONS /`: `{data: {operationId: [method, path]}}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PermittedEndpoints {
    /// Operation id → `[method, path]`.
    data: BTreeMap<String, Vec<String>>,
}

/// `GET /about` data of a ccnode.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct About {
    /// Format version of this node's wire (`"0"`).
    format: String,
    /// Conversion rate (this node's unit per root unit).
    rate: f64,
    /// The node's name.
    name: String,
    /// Seconds a validated transaction waits for confirmation.
    validated_window: u64,
    /// Accounts here.
    accounts: u64,
    /// Transactions here.
    transactions: u64,
}

/// `GET /about`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AboutAnswer {
    /// The node's facts (another node's, as it answered, when `node_path` names one).
    data: About,
}

/// A workflow as `GET /workflows` shows it (0.8.x fields plus `home` and `code`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WorkflowOut {
    /// Workflow id (`pay`, `credit`, `bill`, ...).
    id: String,
    /// Label.
    label: String,
    /// Summary.
    summary: String,
    /// `bill`, `credit` or `3rdparty`.
    direction: String,
    /// `{state, ...}` of creation.
    #[schema(value_type = Object)]
    creation: (),
    /// `{from: {to: {actors, ...}}}`.
    #[schema(value_type = Object)]
    states: (),
    /// Offered for new transactions.
    active: bool,
    /// Not offered (the reference's name).
    disabled: Option<bool>,
    /// The node whose workflow it is.
    home: String,
    /// 0.9.x code.
    code: Option<String>,
}

/// `GET /workflows`: `{data: {hash: workflow}}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WorkflowsAnswer {
    /// Reference workflow hash → workflow.
    data: BTreeMap<String, WorkflowOut>,
}

/// `{data: [string]}`: `/absolutepath` (trunk first) and `/account/names`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NamesAnswer {
    /// Names or paths.
    data: Vec<String>,
}

/// `GET /handshake`: `{data: {node: status}}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HandshakeAnswer {
    /// Neighbour → `ok` or an error class.
    data: BTreeMap<String, String>,
}

/// Trade statistics of one account.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TradeStats {
    /// Balance.
    balance: Amount,
    /// Transactions.
    trades: u64,
    /// Entries.
    entries: u64,
    /// Received.
    gross_in: Amount,
    /// Paid.
    gross_out: Amount,
    /// Distinct trading partners.
    partners: u64,
    /// gross_in + gross_out.
    volume: Amount,
}

/// Statistics of completed transactions, and of pending ones including completed.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountSummary {
    /// Completed only.
    completed: TradeStats,
    /// Pending and completed.
    pending: TradeStats,
}

/// `GET /account/summary`: `{data: {account: summary}}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SummaryAnswer {
    /// Account → summary.
    data: BTreeMap<String, AccountSummary>,
}

/// Balance limits.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LimitsOut {
    /// Lower limit (≤ 0).
    min: Amount,
    /// Upper limit (≥ 0).
    max: Amount,
}

/// `GET /account/limits`: `{data: {account: {min, max}}}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LimitsAnswer {
    /// Account → limits.
    data: BTreeMap<String, LimitsOut>,
}

/// `/account/history` meta.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HistoryMeta {
    /// Lowest balance shown.
    min: Amount,
    /// Highest balance shown.
    max: Amount,
    /// Points shown.
    points: u64,
    /// First point, `Y-m-d H:i:s`.
    start: Option<String>,
    /// Last point.
    end: Option<String>,
}

/// `GET /account/history`: `{data: {"Y-m-d H:i:s": balance}, meta}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HistoryAnswer {
    /// Instant → completed balance.
    data: BTreeMap<String, Amount>,
    /// Range of the points.
    meta: HistoryMeta,
}

/// `/account/balance` data.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BalanceOut {
    /// Account id.
    account: String,
    /// Completed balance.
    balance: Amount,
    /// Pending balance (now only).
    pending: Option<Amount>,
    /// The journal seq it stood at (now or `at=seq`).
    seq: Option<u64>,
    /// The instant asked (`at=RFC 3339`).
    at: Option<String>,
}

/// `GET /account/balance`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BalanceAnswer {
    /// The balance.
    data: BalanceOut,
}

/// `meta` of `POST /transaction`: the transitions of this transaction.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct OwnTransitions {
    /// Target state → `/transaction/{uuid}/{state}`.
    transitions: BTreeMap<String, String>,
}

/// `POST /transaction`: `{data: Transaction, meta: {transitions: {state: path}}}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewTransactionAnswer {
    /// The transaction as written.
    data: TransactionJson,
    /// What the caller may do next.
    meta: OwnTransitions,
}

/// `meta.transitions` keyed by uuid.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct KeyedTransitions {
    /// Uuid → target state → path.
    transitions: BTreeMap<String, BTreeMap<String, String>>,
}

/// `GET /transaction/{uuid}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TransactionAnswer {
    /// The transaction.
    data: TransactionJson,
    /// What the caller may do next.
    meta: KeyedTransitions,
}

/// Paging links (relative URLs).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PageLinks {
    /// First page.
    first: String,
    /// Previous page.
    prev: Option<String>,
    /// Next page.
    next: Option<String>,
    /// Last page.
    last: String,
}

/// `/transactions` meta.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TransactionsMeta {
    /// Matches over all pages.
    number_of_results: u64,
    /// 1-based page.
    current_page: u64,
    /// Uuid → target state → path.
    transitions: BTreeMap<String, BTreeMap<String, String>>,
}

/// `GET /transactions`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TransactionsAnswer {
    /// One page.
    data: Vec<TransactionJson>,
    /// Counts and transitions.
    meta: TransactionsMeta,
    /// Paging.
    links: PageLinks,
}

/// `/entries` meta.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PageMeta {
    /// Matches over all pages.
    number_of_results: u64,
    /// 1-based page.
    current_page: u64,
}

/// `GET /entries`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EntriesAnswer {
    /// One page.
    data: Vec<EntryFullJson>,
    /// Counts.
    meta: PageMeta,
    /// Paging.
    links: PageLinks,
}

/// `GET /entries/{uuid}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TransactionEntriesAnswer {
    /// The transaction's entries, the primary first.
    data: Vec<EntryFullJson>,
}

/// A local account as the admin routes show it.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountOut {
    /// Id.
    id: String,
    /// Lower limit.
    min: Amount,
    /// Upper limit.
    max: Amount,
    /// Administers the node.
    admin: bool,
    /// `active` or `blocked`.
    #[schema(pattern = "^(active|blocked)$")]
    status: String,
}

/// `POST /admin/accounts`, `PATCH /admin/accounts/{id}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountAnswer {
    /// The account as it now is.
    data: AccountOut,
}

/// A connected child node.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ChildOut {
    /// Its name.
    id: String,
    /// Its URL.
    url: String,
    /// Lower limit of its account.
    min: Amount,
    /// Upper limit.
    max: Amount,
    /// `reference`, `ccnode` or `komunitin`.
    dialect: String,
    /// The neighbour's checkpoint key as given (`null` when none).
    public_key: Option<String>,
}

/// `POST /admin/nodes`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ChildAnswer {
    /// The child.
    data: ChildOut,
}

/// The parent node as set.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TrunkwardOut {
    /// Its name.
    name: String,
    /// Its URL.
    url: String,
    /// Conversion rate, as a decimal string.
    rate: String,
    /// Lower limit of the balance-of-trade account.
    min: Amount,
    /// Upper limit.
    max: Amount,
    /// `reference`, `ccnode` or `komunitin`.
    dialect: String,
    /// The neighbour's checkpoint key as given (`null` when none).
    public_key: Option<String>,
}

/// `PUT /admin/trunkward`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TrunkwardAnswer {
    /// The parent.
    data: TrunkwardOut,
}

/// One neighbour and its link.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NodeOut {
    /// `trunkward` or `leafward`.
    kind: Option<String>,
    /// Its URL.
    url: Option<String>,
    /// Conversion rate, as a decimal string.
    rate: Option<String>,
    /// The link's md5 ratchet head.
    last_hash: String,
    /// The link's blake3 head (hex).
    blake3: String,
    /// Versions written on the link.
    versions: u64,
    /// Completed balance of its account here.
    balance: Amount,
    /// `reference`, `ccnode` or `komunitin`.
    dialect: String,
    /// While the link is closed after a divergence: the evidence (else null).
    #[schema(value_type = Option<Object>)]
    closed: Option<serde_json::Value>,
    /// Changes this node sent on the link that are in doubt (the neighbour
    /// did not answer in time) until a reconciliation settles them.
    in_doubt: u64,
}

/// `GET /admin/nodes`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NodesAnswer {
    /// Neighbour → link.
    data: BTreeMap<String, NodeOut>,
}

/// The fee policy set.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FeesOut {
    /// Account fees are paid to.
    account: String,
    /// Fixed fee.
    fixed: Amount,
    /// Percentage.
    percent: Amount,
}

/// `PUT /admin/fees`: the policy, or `null` when charging stopped.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FeesAnswer {
    /// The policy.
    data: Option<FeesOut>,
}

/// `POST /transaction/relay`: the entries added on the way (fees), paths as the caller reads them.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct RelayAnswer {
    /// Additional entries.
    data: Vec<EntryJson>,
}

/// One version of a link.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LinkVersionOut {
    /// Transaction uuid.
    uuid: String,
    /// Its version.
    version: u64,
    /// State letter.
    state: String,
    /// md5 ratchet hash after it (hex).
    md5: String,
    /// blake3 ratchet hash after it (hex).
    blake3: String,
}

/// `/replay/link/{node}` meta.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LinkMeta {
    /// Versions on the link.
    count: u64,
    /// The md5 head.
    head: String,
}

/// `GET /replay/link/{node}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LinkFeedAnswer {
    /// One page of versions.
    data: Vec<LinkVersionOut>,
    /// Count and head.
    meta: LinkMeta,
}

/// A reconciliation report.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReconcileOut {
    /// The neighbour.
    node: String,
    /// `in_sync`, `we_are_behind`, `peer_behind`, `diverged` or `not_reconciled`.
    verdict: String,
    /// Versions on our side.
    ours: Option<u64>,
    /// Versions on theirs.
    theirs: Option<u64>,
    /// Versions the other side lacks.
    missing: Option<u64>,
    /// Versions copied here.
    applied: Option<u64>,
    /// Why the link diverged.
    #[schema(value_type = Option<Object>)]
    evidence: Option<()>,
    /// The link's dialect when it is not reconciled.
    dialect: Option<String>,
}

/// `POST /replay/reconcile/{node}`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReconcileAnswer {
    /// The report.
    data: ReconcileOut,
}

/// `POST /admin/nodes/{node}/reopen` data.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReopenOut {
    /// The neighbour named.
    node: String,
    /// Whether the link was closed.
    was_closed: bool,
}

/// `POST /admin/nodes/{node}/reopen`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReopenAnswer {
    /// What changed.
    data: ReopenOut,
}

/// One journal record.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EventRecord {
    /// Sequence number (from 1).
    seq: u64,
    /// RFC 3339.
    recorded_at: String,
    /// Unix µs.
    recorded_at_us: u64,
    /// Previous record's hash (hex).
    prev_hash: String,
    /// This record's hash (hex).
    hash: String,
    /// The payload (hex).
    payload: String,
    /// The decoded event (`null` when it does not decode; see `decode_error`).
    #[schema(value_type = Option<Object>)]
    event: Option<()>,
    /// Why the payload did not decode.
    decode_error: Option<String>,
}

/// The journal head.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct JournalHead {
    /// Last durable seq.
    seq: u64,
    /// Its hash (hex).
    hash: String,
}

/// `/replay/events` meta.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EventsMeta {
    /// The durable head.
    head: JournalHead,
    /// The journal's identity.
    identity: String,
    /// Its genesis hash (hex).
    genesis: String,
}

/// `GET /replay/events` (without `follow`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EventsAnswer {
    /// Records after `after`.
    data: Vec<EventRecord>,
    /// Head, identity, genesis.
    meta: EventsMeta,
}

/// `GET /proof/inclusion`: an RFC 9162 audit path and the checkpoint it leads to.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct InclusionProof {
    /// `inclusion`.
    r#type: String,
    /// The journal record (from 1).
    seq: u64,
    /// The checkpoint's tree size.
    size: u64,
    /// `seq - 1`.
    leaf_index: u64,
    /// Base64 `SHA-256(0x00 ‖ the record's chain hash)`.
    leaf_hash: String,
    /// Base64 root (the checkpoint's).
    root: String,
    /// Base64 hashes, nearest sibling first.
    proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note).
    checkpoint: String,
}

/// `GET /proof/consistency`: an RFC 9162 consistency proof between two checkpoints.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ConsistencyProof {
    /// `consistency`.
    r#type: String,
    /// The older size.
    from: u64,
    /// The newer size.
    to: u64,
    /// Base64 hashes.
    proof: Vec<String>,
    /// The older signed checkpoint.
    from_checkpoint: String,
    /// The newer signed checkpoint.
    to_checkpoint: String,
}

/// An account's leaf of the balances tree (micro-units as decimal integers).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BalanceLeafJson {
    /// The account id.
    account: String,
    /// Completed balance, micro-units.
    balance_micros: String,
    /// Lower limit, micro-units.
    min_micros: String,
    /// Upper limit, micro-units.
    max_micros: String,
}

/// A sibling in a balance proof.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SumNodeJson {
    /// Base64 hash.
    hash: String,
    /// Sum of the balances under it, micro-units.
    sum_micros: String,
}

/// `GET /proof/balance`: an account's leaf in a checkpoint's balances tree.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BalanceProofJson {
    /// `balance`.
    r#type: String,
    /// The checkpoint's tree size.
    size: u64,
    /// The account's position (ids in byte order).
    index: u64,
    /// Accounts in the tree.
    count: u64,
    /// The leaf.
    leaf: BalanceLeafJson,
    /// Siblings, nearest first.
    path: Vec<SumNodeJson>,
    /// The signed checkpoint.
    checkpoint: String,
}

/// `GET /statement`: a member's balance at the latest checkpoint, provable offline.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Statement {
    /// `ccnode-statement/v1`.
    r#type: String,
    /// The checkpoints' origin (the node key's name).
    origin: String,
    /// The account.
    account: String,
    /// Completed balance (decimal text).
    balance: String,
    /// Lower limit (decimal text).
    min: String,
    /// Upper limit (decimal text).
    max: String,
    /// The checkpoint's tree size.
    size: u64,
    /// The signed checkpoint.
    checkpoint: String,
    /// The proof of the balance and limits.
    balance_proof: BalanceProofJson,
}

/// The checkpoint `POST /admin/checkpoint` signed (or the latest).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CheckpointMadeData {
    /// Its tree size.
    size: u64,
    /// The signed note.
    checkpoint: String,
}

/// `POST /admin/checkpoint`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CheckpointMade {
    /// The checkpoint.
    data: CheckpointMadeData,
}

/// Both verifier keys of a rotation.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct KeyRotatedData {
    /// The key until now.
    old: String,
    /// The key from now on.
    new: String,
}

/// `PUT /admin/nodes/{node}/key`: the neighbour and its key.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PeerKeyData {
    /// The neighbour's node account.
    node: String,
    /// Its verifier key.
    public_key: String,
}

/// `PUT /admin/nodes/{node}/key`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PeerKeyAnswer {
    /// The key recorded.
    data: PeerKeyData,
}

/// `POST /admin/node/key`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct KeyRotated {
    /// Both keys.
    data: KeyRotatedData,
}

/// Gives every error answer of every operation the shared [`ErrorBody`]
/// schema, and lists the errors every route may answer: 400 (a malformed
/// header, query, path or body), 404 (an unknown `cc-user`), 401 (a wrong
/// key), 413 (a body over 64 KiB, on routes with a body), 500 (the writer
/// failed) and 503 (a neighbour did not answer, or the node is stopping).
#[derive(Debug)]
pub struct ErrorResponses;

/// The statuses any route may answer besides its own.
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "InvalidFieldsViolation: a malformed header, query, path or body"),
    ("401", "PasswordViolation: wrong key for cc-user"),
    ("404", "DoesNotExistViolation: unknown cc-user (or what the path names)"),
    ("500", "CCFailure: the node could not complete the request"),
    ("503", "UnavailableNodeFailure (a neighbour asked on the way did not answer) or CCFailure (not taking writes)"),
];

/// Statuses of routes that write.
const WRITE_ERRORS: &[(&str, &str)] = &[("413", "InvalidFieldsViolation: the body is over 64 KiB")];

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::content::ContentBuilder;
        let error_content = || {
            ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))).build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.options, false),
            ];
            for (operation, writes) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                if path == "/openapi.json" || path == "/metrics" {
                    continue;
                }
                let extra = if writes { WRITE_ERRORS } else { &[] };
                for (status, description) in COMMON_ERRORS.iter().chain(extra) {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(*description).build()));
                }
                for (status, response) in operation.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (is_error, response) {
                        response.content.insert("application/json".to_owned(), error_content());
                    }
                }
            }
        }
    }
}

/// `POST /admin/nodes/{node}/rotate` data.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct RotateOut {
    /// The neighbour named.
    node: String,
    /// Always true.
    rotated: bool,
}

/// `POST /admin/nodes/{node}/rotate`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct RotateAnswer {
    /// What changed.
    data: RotateOut,
}

/// One account as `GET /admin/accounts` lists it.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountRow {
    /// Its id.
    id: String,
    /// `member`, `admin` or `node` (a neighbour's account).
    #[schema(pattern = "^(member|admin|node)$")]
    kind: String,
    /// Administers the node.
    admin: bool,
    /// `active` or `blocked`.
    #[schema(pattern = "^(active|blocked)$")]
    status: String,
    /// Lower limit.
    min: Amount,
    /// Upper limit.
    max: Amount,
    /// Completed balance.
    balance: Amount,
    /// Balance counting pending transactions too.
    pending: Amount,
    /// Soft minimum, if any.
    warn_min: Option<Amount>,
    /// Soft maximum, if any.
    warn_max: Option<Amount>,
}

/// `GET /admin/accounts`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountListAnswer {
    /// Every local account, by id.
    data: Vec<AccountRow>,
}

/// The journal in `GET /admin/health`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HealthJournal {
    /// Seq of the last durable record.
    head_seq: u64,
    /// When the last record folded into the read model was written (RFC 3339), null on an empty journal.
    last_recorded_at: Option<String>,
    /// Bytes of the journal's files.
    bytes: u64,
}

/// The read model in `GET /admin/health`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HealthProjections {
    /// Seq folded into the read model.
    seq: u64,
    /// Bytes of its snapshot directory (the snapshot file).
    bytes: u64,
    /// How the node started and the last snapshot saved.
    snapshots: HealthSnapshots,
}

/// Projections snapshots in `GET /admin/health`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HealthSnapshots {
    /// The seq of the snapshot the node started from; null when it folded the journal from seq 1.
    loaded_seq: Option<u64>,
    /// Journal records folded at start after that snapshot (or from seq 1).
    folded_at_start: u64,
    /// The seq of the last snapshot saved while running (`--snapshot-every`); null before the first.
    saved_seq: Option<u64>,
}

/// The writer in `GET /admin/health`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HealthWriter {
    /// `writing`; `following` (a standby while another node writes the journal, or a node whose
    /// database is unreachable: it folds the journal as it can and writes again once it may);
    /// `stopped` (until restarted).
    state: String,
    /// Why it does not write (null while writing).
    reason: Option<String>,
}

/// `GET /admin/health` data.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Health {
    /// This node's name.
    name: String,
    /// Whether the node accepts writes.
    writing: bool,
    /// Why it is read-only, if it is.
    read_only: Option<String>,
    /// What the writer does.
    writer: HealthWriter,
    /// The journal.
    journal: HealthJournal,
    /// The read model.
    projections: HealthProjections,
    /// Local accounts.
    accounts: u64,
    /// Transactions.
    transactions: u64,
    /// Neighbour nodes.
    neighbours: Vec<String>,
    /// Links closed after a divergence: `{node: evidence}`.
    #[schema(value_type = Object)]
    closed_links: serde_json::Value,
}

/// `GET /admin/health`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct HealthAnswer {
    /// The node's health.
    data: Health,
}

/// A soft limit crossed, in `GET /admin/warnings` and `GET /account/warnings`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CrossingOut {
    /// The journal record of the crossing.
    seq: u64,
    /// When (RFC 3339).
    at: String,
    /// The account.
    account: String,
    /// The transaction that moved the balance.
    uuid: String,
    /// `below` the soft minimum or `above` the soft maximum.
    #[schema(pattern = "^(below|above)$")]
    side: String,
    /// The soft limit.
    limit: Amount,
    /// The completed balance after the transaction.
    balance: Amount,
}

/// `GET /admin/warnings`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WarningsAnswer {
    /// Every crossing, newest first.
    data: Vec<CrossingOut>,
}

/// An account's soft limits and crossings.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountWarnings {
    /// The account.
    account: String,
    /// Its soft minimum, if any.
    warn_min: Option<Amount>,
    /// Its soft maximum, if any.
    warn_max: Option<Amount>,
    /// Whether its completed balance is beyond one now: `below`, `above` or null.
    #[schema(pattern = "^(below|above)$")]
    beyond: Option<String>,
    /// Its crossings, newest first.
    crossings: Vec<CrossingOut>,
}

/// `GET /account/warnings`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AccountWarningsAnswer {
    /// The account's soft limits.
    data: AccountWarnings,
}
