//! The JSON shapes on the wire (Credit Commons 0.8.x) and their conversions.
//!
//! Amounts travel as JSON numbers, written from the exact decimal text (never
//! through a float), and are read from a number or a string.

use std::collections::BTreeMap;

use ledger::{Amount, Entry, State, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

pub mod events;
pub mod workflow;

/// `Y-m-d H:i:s` in UTC, as the reference writes `written` and history keys.
pub fn format_datetime(unix_s: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(unix_s)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// RFC 3339 for ccnode's own fields.
pub fn format_rfc3339(unix_us: u64) -> String {
    let nanos = i128::from(unix_us) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 instant into unix µs (instants before 1970 are refused).
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// An amount as a JSON number token.
pub fn amount_json(amount: Amount) -> Box<RawValue> {
    RawValue::from_string(amount.to_string()).expect("an amount's canonical text is a JSON number")
}

/// An amount as a `serde_json::Value` (a number; exact for up to 15 significant digits, else a string).
pub fn amount_value(amount: Amount) -> Value {
    decimal_value(&amount.to_string())
}

/// A canonical decimal text as a JSON number when it survives the round
/// trip exactly, else as a string (as [`amount_value`]; also for totals).
pub fn decimal_value(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.as_number().is_some_and(|n| n.to_string() == text))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// The OpenAPI schemas of amounts (schema-only types, never built): the
/// shapes here use them, and `schema` re-exports them for its answers.
pub mod amount_schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    /// Pattern of an amount sent as a string.
    pub const AMOUNT_STRING_PATTERN: &str = "^-?[0-9]{1,19}(\\.[0-9]{1,6})?$";
    /// Pattern of an amount the server writes as a string (more than 15 significant digits).
    const AMOUNT_OUT_STRING_PATTERN: &str = "^-?[0-9]{1,20}(\\.[0-9]{1,6})?$";
    /// Largest magnitude of an amount sent as a JSON number in the schema: twelve
    /// integer digits and six decimals stay within a double's 15 exact digits...
    /// almost; the server reads the number's text, not a double, so nothing is lost.
    pub(crate) const AMOUNT_NUMBER_BOUND: f64 = 999_999_999_999.0;

    /// An amount in an answer: a JSON number written from the exact decimal (at
    /// most 6 decimal places, never an exponent), or, beyond 15 significant
    /// digits, a numeric string. The schema bounds the number but does not state
    /// `multipleOf`, because validators that divide doubles (Python's
    /// `jsonschema`) refuse exact decimals such as `434708.285488`; the places
    /// are checked by `api/tests/schema.rs` on the JSON text.
    #[derive(Debug)]
    pub struct Amount;

    impl PartialSchema for Amount {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .description(Some(
                    "An exact decimal with at most 6 decimal places: a JSON number (never with an exponent), or a numeric \
                     string when it has more than 15 significant digits.",
                ))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Number)
                        .format(Some(SchemaFormat::Custom("decimal6".to_owned())))
                        .minimum(Some(-1e20))
                        .maximum(Some(1e20)),
                )
                .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(AMOUNT_OUT_STRING_PATTERN)))
                .examples([serde_json::json!(12.5)])
                .into()
        }
    }

    impl ToSchema for Amount {}

    /// An amount in a request body: a JSON number that is a multiple of
    /// 0.000001 written without an exponent, or a numeric string
    /// (`"12.5"`). More than six decimal places, an exponent, or text that is not
    /// a plain decimal is refused with `InvalidFieldsViolation`.
    #[derive(Debug)]
    pub struct AmountIn;

    impl PartialSchema for AmountIn {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .description(Some(
                    "An exact decimal with at most 6 decimal places: a JSON number written without an exponent, or a \
                     numeric string such as \"12.5\". More places, an exponent or other text is refused (400).",
                ))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Number)
                        .multiple_of(Some(0.000_001))
                        .minimum(Some(-AMOUNT_NUMBER_BOUND))
                        .maximum(Some(AMOUNT_NUMBER_BOUND)),
                )
                .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(AMOUNT_STRING_PATTERN)))
                .examples([serde_json::json!(10), serde_json::json!("2.5")])
                .into()
        }
    }

    impl ToSchema for AmountIn {}
}

/// Reads an amount from a JSON number or string: at most 6 decimals, no
/// exponent games, magnitude at most `ledger::AMOUNT_MAX_UNITS` (every
/// amount a client sends is a quant, a limit or a fee; `decide` checks the
/// bound again).
pub fn parse_amount(field: &str, raw: &RawValue) -> Result<Amount, ApiError> {
    let text = raw.get().trim();
    let text = match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => s,
        Ok(Value::Number(_)) => text.to_owned(),
        _ => return Err(ApiError::invalid_field(field, "expected a number")),
    };
    let amount = text.parse::<Amount>().map_err(|e| ApiError::invalid_field(field, e.to_string()))?;
    if !amount.within_max() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} exceeds the maximum amount of {} units", ledger::AMOUNT_MAX_UNITS),
        ));
    }
    Ok(amount)
}

/// `POST /transaction` body (0.8.x `NewTransaction`; `workflow` is the 0.9.x name of `type`).
/// One of `type` and `workflow` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payer": "alice", "payee": "bob", "quant": 2.5, "description": "bread", "type": "pay", "metadata": {"ref": "x1"}}))]
pub struct NewTransaction {
    /// Payer: a local account id or a path (default the author, for a credit).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}$", example = "alice")]
    pub payer: Option<String>,
    /// Payee: a local account id or a path (default the author, for a bill).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}$", example = "bob")]
    pub payee: Option<String>,
    /// Amount, a number (or numeric string) with at most 6 decimals; positive
    /// unless the node takes zero payments.
    #[schema(value_type = amount_schema::AmountIn)]
    pub quant: Box<RawValue>,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 1000, example = "bread")]
    pub description: String,
    /// Workflow id, e.g. `pay`, `credit`, `bill` (see `GET /workflows`).
    #[serde(rename = "type", default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "pay")]
    pub type_: Option<String>,
    /// Same as `type` (0.9.x name).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "pay")]
    pub workflow: Option<String>,
    /// String key/value pairs kept with the entry (numbers and booleans are kept as text).
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Value>,
    /// Client-chosen uuid (optional).
    #[serde(default)]
    #[schema(pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub uuid: Option<String>,
}

/// Metadata must be a flat object of strings (numbers and booleans are kept as text).
pub fn parse_metadata(value: Option<Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {} // PHP writes an empty object as []
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(ApiError::invalid_field("metadata", "values must be strings")),
                };
                out.insert(k, text);
            }
        }
        Some(_) => return Err(ApiError::invalid_field("metadata", "expected an object of strings")),
    }
    Ok(out)
}

/// One entry as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryJson {
    /// Payee.
    pub payee: String,
    /// Payer.
    pub payer: String,
    /// Amount (JSON number).
    #[schema(value_type = amount_schema::Amount)]
    pub quant: Box<RawValue>,
    /// Description.
    pub description: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Shows a party: its remote path if the entry recorded one, else the local
/// id. Remote paths are the entry's own field, never the user's metadata.
fn party(entry: &Entry, id: &ledger::AccountId) -> String {
    entry.remote.get(id.as_str()).cloned().unwrap_or_else(|| id.to_string())
}

impl EntryJson {
    /// The reference's view of an entry: parties as paths, the user's metadata as given.
    pub fn from_entry(entry: &Entry) -> EntryJson {
        let metadata = entry.metadata.clone();
        EntryJson {
            payee: party(entry, &entry.payee),
            payer: party(entry, &entry.payer),
            quant: amount_json(entry.quant),
            description: entry.description.clone(),
            metadata,
        }
    }
}

/// A transaction as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionJson {
    /// Uuid.
    pub uuid: String,
    /// When it was first written, `Y-m-d H:i:s` UTC.
    pub written: String,
    /// `validated`, `pending`, `completed`, `erased` or `timedout`.
    pub state: String,
    /// Workflow id.
    #[serde(rename = "type")]
    pub type_: String,
    /// Number of state changes written.
    pub version: u32,
    /// Who created it.
    pub author: String,
    /// First entry is the primary one.
    pub entries: Vec<EntryJson>,
}

impl TransactionJson {
    /// From the ledger's transaction.
    pub fn from_tx(tx: &Transaction) -> TransactionJson {
        TransactionJson {
            uuid: tx.uuid.to_string(),
            written: format_datetime(tx.written_unix_s),
            state: tx.state.name().to_owned(),
            type_: tx.workflow.id.to_string(),
            version: tx.version,
            author: tx.author.to_string(),
            entries: tx.entries.iter().map(EntryJson::from_entry).collect(),
        }
    }
}

/// A flat entry (`/entries`): the entry plus its transaction's header.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryFullJson {
    /// Transaction uuid.
    pub uuid: String,
    /// Written.
    pub written: String,
    /// State.
    pub state: String,
    /// Workflow id.
    #[serde(rename = "type")]
    pub type_: String,
    /// Version.
    pub version: u32,
    /// Author.
    pub author: String,
    /// Whether this is the transaction's first entry.
    pub is_primary: bool,
    /// The entry.
    #[serde(flatten)]
    pub entry: EntryJson,
}

impl EntryFullJson {
    /// From a transaction and one of its entries.
    pub fn new(tx: &Transaction, index: usize, entry: &Entry) -> EntryFullJson {
        EntryFullJson {
            uuid: tx.uuid.to_string(),
            written: format_datetime(tx.written_unix_s),
            state: tx.state.name().to_owned(),
            type_: tx.workflow.id.to_string(),
            version: tx.version,
            author: tx.author.to_string(),
            is_primary: index == 0,
            entry: EntryJson::from_entry(entry),
        }
    }
}

/// The response envelope `{data, meta?, links?}`.
pub fn envelope(data: Value, meta: Option<Value>, links: Option<Value>) -> Value {
    let mut map = Map::new();
    map.insert("data".to_owned(), data);
    if let Some(meta) = meta {
        map.insert("meta".to_owned(), meta);
    }
    if let Some(links) = links {
        map.insert("links".to_owned(), links);
    }
    Value::Object(map)
}

/// The state named in a path or query (`pending`, or a 0.9.x letter `P`; `null` = erase a validated one).
pub fn parse_state(text: &str) -> Option<State> {
    if text == "null" {
        return Some(State::Erased);
    }
    State::parse(text)
}
