//! Moving a community's history onto a new node (issue 12, item 4):
//! `ccnode import --data DIR --format ccnode|komunitin|ces FILE…`.
//!
//! Reading and checking the files is pure ([`parse_csv`], [`plan`]): a file
//! with a bad row is refused naming its file and line before anything runs.
//! Writing goes through the ordinary writer of a node started on a fresh
//! directory beside `DIR`, with a clock set to each row's original time, so
//! imported transactions are ordinary events written by `decide` (limits are
//! checked as they are replayed) and `/account/history` and
//! `/account/balance?at=` answer for the original dates. The directory is
//! renamed to `DIR` only when every row is in; a refusal removes it, so
//! nothing is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ledger::{AccountId, AccountKind, AccountStatus, Amount, Command, Limits, Proposal, TxId, WorkflowId};

use crate::app::describe_write_error;
use crate::machine::NodeCommand;
use crate::metrics::Metrics;
use crate::node::{Node, StartOptions};

pub mod ces;
pub use ces::parse_utc_offset;

/// Why an import was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("reading {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file's header is not one of the format's.
    #[error("{file}: not {expected} (header {header:?})")]
    UnknownFile {
        /// The file.
        file: String,
        /// Its first line.
        header: String,
        /// The files the format has.
        expected: &'static str,
    },
    /// A row is bad.
    #[error("{file} line {line}: {reason}")]
    Row {
        /// The file.
        file: String,
        /// Its line (the header is line 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Something other than a row: no accounts file, a directory in use.
    #[error("{0}")]
    Refused(String),
    /// The node could not start or stop.
    #[error("the new node: {0}")]
    Node(String),
}

/// Where a row came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    /// File name as given.
    pub file: String,
    /// Line of the row's start (the header is line 1).
    pub line: usize,
}

impl RowRef {
    fn error(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Row { file: self.file.clone(), line: self.line, reason: reason.into() }
    }
}

/// A CSV row: the line it starts on, and its fields.
pub type CsvRow = (usize, Vec<String>);

/// Parses RFC 4180 CSV (quoted fields with `""`, CRLF or LF, line breaks
/// inside quotes) into rows; a malformed one is `(line, reason)`.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRow>, (usize, String)> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            '"' => return Err((line, "a quote inside an unquoted field".to_owned())),
            ',' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
                rows.push((start, std::mem::take(&mut row)));
                line += 1;
                start = line;
                any = false;
            }
            _ if was_quoted => return Err((line, "text after a closing quote".to_owned())),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err((start, "a quoted field is not closed".to_owned()));
    }
    if any {
        row.push(field);
        rows.push((start, row));
    }
    Ok(rows)
}

/// The export's defence against spreadsheet formulas, undone.
fn unguard(text: &str) -> String {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// The formats `ccnode import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ccnode's own CSV exports (`GET /admin/export/accounts`, `GET /admin/export/transactions`).
    Ccnode,
    /// Komunitin's community migration bundle: its `members.csv` and
    /// `transfers.csv` (community-exchange-network/komunitin,
    /// `shared/migration/FORMAT.md`).
    Komunitin,
    /// The Community Exchange System's export as IntegralCES's importer reads
    /// it: `users.csv`, `transactions.csv`, optionally `balances.csv` (see
    /// [`ces`] and docs/OPERATIONS.md).
    Ces {
        /// The offset of the export's zone-less times from UTC, in seconds.
        utc_offset_seconds: i32,
    },
}

impl Format {
    /// Its name, as marked on imported entries.
    pub fn name(self) -> &'static str {
        match self {
            Format::Ccnode => "ccnode",
            Format::Komunitin => "komunitin",
            Format::Ces { .. } => "ces",
        }
    }

    /// The files it has, for a refusal of one that is not.
    fn files(self) -> &'static str {
        match self {
            Format::Ccnode => "a ccnode accounts or transactions export",
            Format::Komunitin => "a Komunitin members.csv or transfers.csv",
            Format::Ces { .. } => "a CES users.csv, transactions.csv or balances.csv",
        }
    }

    fn unknown_file(self, file: &str, header: &[String]) -> ImportError {
        ImportError::UnknownFile { file: file.to_owned(), header: header.join(","), expected: self.files() }
    }
}

/// An account to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPlan {
    /// Where it came from.
    pub row: RowRef,
    /// Its id.
    pub id: AccountId,
    /// An operator.
    pub admin: bool,
    /// Blocked (set after its history is in).
    pub blocked: bool,
    /// Its limits.
    pub limits: Limits,
}

/// A balance a file declares, checked against the replayed history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredBalance {
    /// The row that declares it.
    pub row: RowRef,
    /// The account.
    pub id: AccountId,
    /// Its balance once every payment is in.
    pub balance: Amount,
    /// Accounts whose replayed balances count toward it too (a CES exchange's
    /// one virtual user, which the import splits per remote exchange).
    pub with: Vec<AccountId>,
}

/// A payment to replay at its original time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPlan {
    /// Where it came from.
    pub row: RowRef,
    /// Original time, unix microseconds (strictly increasing over the plan).
    pub at_us: u64,
    /// The original transaction (kept for its primary entry).
    pub uuid: Option<TxId>,
    /// Payer.
    pub payer: AccountId,
    /// Payee.
    pub payee: AccountId,
    /// Amount.
    pub quant: Amount,
    /// Description.
    pub description: String,
    /// Marks: `imported`, `imported_uuid`, `imported_entry`, `imported_type`.
    pub metadata: BTreeMap<String, String>,
}

/// What an import will do, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Accounts, in file order.
    pub accounts: Vec<AccountPlan>,
    /// Completed payments, oldest first.
    pub payments: Vec<PaymentPlan>,
    /// Rows of transactions not completed (left out).
    pub skipped: usize,
    /// Balances the files declare.
    pub declared: Vec<DeclaredBalance>,
}

const ACCOUNT_COLUMNS: &[&str] = &["id", "kind", "status", "min", "max"];
const TRANSACTION_COLUMNS: &[&str] =
    &["written", "uuid", "version", "state", "type", "author", "entry", "payer", "payee", "quant", "description"];

/// Where each wanted column is, if the header has them all (in any order, among others).
fn columns(header: &[String], wanted: &[&'static str]) -> Option<HashMap<&'static str, usize>> {
    wanted.iter().map(|name| header.iter().position(|h| h.trim() == *name).map(|i| (*name, i))).collect()
}

fn parse_time_us(text: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

const KOMUNITIN_MEMBER_COLUMNS: &[&str] =
    &["code", "type", "status", "account.balance", "account.creditLimit", "account.maximumBalance"];
const KOMUNITIN_TRANSFER_COLUMNS: &[&str] = &[
    "sourceKey",
    "payerAccountCode",
    "payeeAccountCode",
    "initiatorUser",
    "amount",
    "description",
    "createdAt",
    "updatedAt",
];

/// Reads and checks `files` (name, text) in `format`, against `now_us`.
pub fn plan(format: Format, files: &[(String, String)], now_us: u64) -> Result<Plan, ImportError> {
    match format {
        Format::Ccnode => plan_ccnode(files, now_us),
        Format::Komunitin => plan_komunitin(files, now_us),
        Format::Ces { utc_offset_seconds } => ces::plan(files, now_us, utc_offset_seconds),
    }
}

/// A file's header and rows, refused when a row has more or fewer fields.
fn read_rows(format: Format, file: &str, text: &str) -> Result<(Vec<String>, Vec<CsvRow>), ImportError> {
    let rows = parse_csv(text.strip_prefix('\u{feff}').unwrap_or(text)).map_err(|(line, reason)| ImportError::Row {
        file: file.to_owned(),
        line,
        reason,
    })?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(format.unknown_file(file, &[]));
    };
    let body: Vec<CsvRow> = rows.filter(|(_, r)| !(r.len() == 1 && r[0].is_empty())).collect();
    if let Some((line, row)) = body.iter().find(|(_, r)| r.len() != header.len()) {
        let reason = format!("{} fields where the header has {}", row.len(), header.len());
        return Err(ImportError::Row { file: file.to_owned(), line: *line, reason });
    }
    Ok((header, body))
}

/// Times must not go back and must be past; rows of one instant are spaced by a microsecond.
#[derive(Debug, Default)]
struct Clock {
    /// (original time of the previous row, the time it is written at)
    last: Option<(u64, u64)>,
}

impl Clock {
    fn next(&mut self, row: &RowRef, field: &str, text: &str, now_us: u64) -> Result<u64, ImportError> {
        let original =
            parse_time_us(text).ok_or_else(|| row.error(format!("{field} {text:?} is not an RFC 3339 time")))?;
        self.next_at(row, field, text, original, now_us)
    }

    /// The time to write a row at, given its original time (`text` as the file has it).
    fn next_at(
        &mut self,
        row: &RowRef,
        field: &str,
        text: &str,
        original: u64,
        now_us: u64,
    ) -> Result<u64, ImportError> {
        let at_us = match self.last {
            Some((previous, _)) if original < previous => {
                return Err(row.error(format!("{field} {text} goes back in time")));
            }
            Some((_, written_at)) => original.max(written_at + 1),
            None => original,
        };
        if at_us >= now_us {
            return Err(row.error(format!("{field} {text} is not in the past")));
        }
        self.last = Some((original, at_us));
        Ok(at_us)
    }
}

fn parse_quant(row: &RowRef, field: &str, text: &str) -> Result<Amount, ImportError> {
    let quant: Amount = text.trim().parse().map_err(|_| row.error(format!("{field} {text:?} is not an amount")))?;
    if !quant.is_positive() || !quant.within_max() {
        return Err(row.error(format!("{field} {text} is not a positive amount within bounds")));
    }
    Ok(quant)
}

fn unique_ids(accounts: &[AccountPlan]) -> Result<BTreeSet<AccountId>, ImportError> {
    let mut ids = BTreeSet::new();
    for account in accounts {
        if !ids.insert(account.id.clone()) {
            return Err(account.row.error(format!("account {} appears twice", account.id.as_str())));
        }
    }
    Ok(ids)
}

type Rows = Vec<(RowRef, Vec<String>, HashMap<&'static str, usize>)>;

fn plan_ccnode(files: &[(String, String)], now_us: u64) -> Result<Plan, ImportError> {
    let format = Format::Ccnode;
    let mut accounts: Vec<AccountPlan> = Vec::new();
    let mut entries: Rows = Vec::new();
    for (file, text) in files {
        let (header, body) = read_rows(format, file, text)?;
        if let Some(at) = columns(&header, ACCOUNT_COLUMNS) {
            for (line, row) in body {
                let row_ref = RowRef { file: file.clone(), line };
                accounts.push(account_row(&row_ref, &row, &at)?);
            }
        } else if let Some(at) = columns(&header, TRANSACTION_COLUMNS) {
            for (line, row) in body {
                entries.push((RowRef { file: file.clone(), line }, row, at.clone()));
            }
        } else {
            return Err(format.unknown_file(file, &header));
        }
    }
    if accounts.is_empty() {
        return Err(ImportError::Refused(
            "no accounts: give the accounts export (id,kind,status,min,max,…) too".into(),
        ));
    }
    let ids = unique_ids(&accounts)?;
    let mut payments = Vec::new();
    let mut skipped = 0;
    let mut clock = Clock::default();
    for (row_ref, row, at) in &entries {
        let cell = |name: &str| -> Result<&str, ImportError> {
            at.get(name)
                .and_then(|i| row.get(*i))
                .map(String::as_str)
                .ok_or_else(|| row_ref.error(format!("no {name} column in this row")))
        };
        let at_us = clock.next(row_ref, "written", cell("written")?, now_us)?;
        if cell("state")? != "completed" {
            skipped += 1;
            continue;
        }
        let account = |name: &str| -> Result<AccountId, ImportError> {
            let text = unguard(cell(name)?);
            let id =
                AccountId::new(&text).map_err(|_| row_ref.error(format!("{name} {text:?} is not an account id")))?;
            if !ids.contains(&id) {
                return Err(row_ref.error(format!("{name} {text} is not in the accounts file")));
            }
            Ok(id)
        };
        let (payer, payee) = (account("payer")?, account("payee")?);
        let quant = parse_quant(row_ref, "quant", cell("quant")?)?;
        let entry = cell("entry")?;
        let original = cell("uuid")?;
        let uuid =
            uuid::Uuid::parse_str(original).map_err(|_| row_ref.error(format!("uuid {original:?} is not a uuid")))?;
        let mut metadata = BTreeMap::new();
        metadata.insert("imported".to_owned(), format.name().to_owned());
        metadata.insert("imported_uuid".to_owned(), uuid.to_string());
        metadata.insert("imported_entry".to_owned(), entry.to_owned());
        metadata.insert("imported_type".to_owned(), cell("type")?.to_owned());
        payments.push(PaymentPlan {
            row: row_ref.clone(),
            at_us,
            // The primary entry keeps its transaction's uuid; a fee entry is its own payment.
            uuid: (entry == "0").then_some(TxId(uuid)),
            payer,
            payee,
            quant,
            description: unguard(cell("description")?),
            metadata,
        });
    }
    Ok(Plan { accounts, payments, skipped, declared: Vec::new() })
}

/// Komunitin's bundle: `members.csv` (members and their accounts) and
/// `transfers.csv` (the complete committed history); its other files
/// (community, users, categories, posts) hold nothing a ledger keeps.
fn plan_komunitin(files: &[(String, String)], now_us: u64) -> Result<Plan, ImportError> {
    let format = Format::Komunitin;
    let mut accounts: Vec<AccountPlan> = Vec::new();
    let mut transfers: Rows = Vec::new();
    let mut without_account = BTreeSet::new();
    let mut declared = Vec::new();
    for (file, text) in files {
        let (header, body) = read_rows(format, file, text)?;
        if let Some(at) = columns(&header, KOMUNITIN_MEMBER_COLUMNS) {
            for (line, row) in body {
                let row_ref = RowRef { file: file.clone(), line };
                let cell = |name: &str| at.get(name).and_then(|i| row.get(*i)).map_or("", String::as_str);
                let code = cell("code");
                let id =
                    AccountId::new(code).map_err(|_| row_ref.error(format!("code {code:?} is not an account id")))?;
                let blocked = match cell("status") {
                    "active" => false,
                    "disabled" | "suspended" | "deleted" => true,
                    // Komunitin gives these members no account.
                    "draft" | "pending" => {
                        without_account.insert(id);
                        continue;
                    }
                    other => return Err(row_ref.error(format!("status {other:?} is not a Komunitin member status"))),
                };
                let amount = |name: &str| -> Result<Amount, ImportError> {
                    let text = cell(name);
                    text.trim().parse().map_err(|_| row_ref.error(format!("{name} {text:?} is not an amount")))
                };
                let credit = amount("account.creditLimit")?;
                if credit.is_negative() {
                    return Err(row_ref.error("account.creditLimit must not be negative"));
                }
                // A blank maximum is unlimited: the largest limit ccnode holds.
                let max = match cell("account.maximumBalance").trim() {
                    "" => Amount::max_value(),
                    _ => amount("account.maximumBalance")?,
                };
                let limits = Limits::new(-credit, max)
                    .map_err(|_| row_ref.error("limits must satisfy -creditLimit <= 0 <= maximumBalance"))?;
                let balance = amount("account.balance")?;
                declared.push(DeclaredBalance { row: row_ref.clone(), id: id.clone(), balance, with: Vec::new() });
                accounts.push(AccountPlan { row: row_ref, id, admin: false, blocked, limits });
            }
        } else if let Some(at) = columns(&header, KOMUNITIN_TRANSFER_COLUMNS) {
            for (line, row) in body {
                transfers.push((RowRef { file: file.clone(), line }, row, at.clone()));
            }
        } else {
            return Err(format.unknown_file(file, &header));
        }
    }
    if accounts.is_empty() {
        return Err(ImportError::Refused("no accounts: give the bundle's members.csv too".into()));
    }
    let ids = unique_ids(&accounts)?;
    let mut clock = Clock::default();
    let mut payments = Vec::new();
    let mut keys = BTreeSet::new();
    for (row_ref, row, at) in &transfers {
        let cell = |name: &str| at.get(name).and_then(|i| row.get(*i)).map_or("", String::as_str);
        // A committed transfer took effect when it was last updated (committed).
        let at_us = clock.next(row_ref, "updatedAt", cell("updatedAt"), now_us)?;
        let account = |name: &str| -> Result<AccountId, ImportError> {
            let code = cell(name);
            let id =
                AccountId::new(code).map_err(|_| row_ref.error(format!("{name} {code:?} is not an account id")))?;
            if !ids.contains(&id) {
                let why = if without_account.contains(&id) {
                    "a member without an account (draft or pending)"
                } else {
                    "not in members.csv"
                };
                return Err(row_ref.error(format!("{name} {code} is {why}")));
            }
            Ok(id)
        };
        let (payer, payee) = (account("payerAccountCode")?, account("payeeAccountCode")?);
        let quant = parse_quant(row_ref, "amount", cell("amount"))?;
        let key = cell("sourceKey");
        if key.is_empty() || !keys.insert(key.to_owned()) {
            return Err(row_ref.error(format!("sourceKey {key:?} is empty or not unique")));
        }
        let mut metadata = BTreeMap::new();
        metadata.insert("imported".to_owned(), Format::Komunitin.name().to_owned());
        metadata.insert("imported_source_key".to_owned(), key.to_owned());
        metadata.insert("imported_initiator".to_owned(), cell("initiatorUser").to_owned());
        metadata.insert("imported_created_at".to_owned(), cell("createdAt").to_owned());
        payments.push(PaymentPlan {
            row: row_ref.clone(),
            at_us,
            uuid: None,
            payer,
            payee,
            quant,
            description: cell("description").to_owned(),
            metadata,
        });
    }
    Ok(Plan { accounts, payments, skipped: 0, declared })
}

fn account_row(
    row_ref: &RowRef,
    row: &[String],
    at: &HashMap<&'static str, usize>,
) -> Result<AccountPlan, ImportError> {
    let cell = |name: &str| -> Result<&str, ImportError> {
        at.get(name)
            .and_then(|i| row.get(*i))
            .map(String::as_str)
            .ok_or_else(|| row_ref.error(format!("no {name} column in this row")))
    };
    let id_text = cell("id")?;
    let id = AccountId::new(id_text).map_err(|_| row_ref.error(format!("id {id_text:?} is not an account id")))?;
    let admin = match cell("kind")? {
        "member" => false,
        "admin" => true,
        "node" => return Err(row_ref.error("a node account (a federation link) is not imported: graft it again")),
        other => return Err(row_ref.error(format!("kind {other:?} is not member or admin"))),
    };
    let blocked = match cell("status")? {
        "active" => false,
        "blocked" => true,
        other => return Err(row_ref.error(format!("status {other:?} is not active or blocked"))),
    };
    let amount = |name: &str| -> Result<Amount, ImportError> {
        let text = cell(name)?;
        text.trim().parse().map_err(|_| row_ref.error(format!("{name} {text:?} is not an amount")))
    };
    let limits = Limits::new(amount("min")?, amount("max")?)
        .map_err(|_| row_ref.error("limits must satisfy min <= 0 <= max"))?;
    Ok(AccountPlan { row: row_ref.clone(), id, admin, blocked, limits })
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Accounts opened.
    pub accounts: usize,
    /// Payments written.
    pub payments: usize,
    /// Rows of transactions not completed, left out.
    pub skipped: usize,
    /// The new key of each account (printed once; only hashes are stored).
    pub keys: Vec<(String, String)>,
}

static IMPORT_NOW_US: AtomicU64 = AtomicU64::new(0);

/// The import's clock: the original time of the row being written.
fn import_clock() -> u64 {
    match IMPORT_NOW_US.load(Ordering::Relaxed) {
        0 => journal::now_us(),
        t => t,
    }
}

/// A directory that may become the new node's: absent, or empty.
fn check_target(dir: &Path) -> Result<(), ImportError> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImportError::Refused(format!("{}: {e}", dir.display()))),
        Ok(true) => Ok(()),
        Ok(false) => Err(ImportError::Refused(format!(
            "{} is not empty: an import makes a new node; give a new directory",
            dir.display()
        ))),
    }
}

/// Writes `plan` as the history of a new node `name` in `data_dir`.
/// Nothing is left in `data_dir` unless every row is written.
pub async fn run(plan: &Plan, data_dir: &Path, name: &str) -> Result<Report, ImportError> {
    check_target(data_dir)?;
    let parent = data_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let leaf = data_dir.file_name().map_or_else(|| "ccnode-data".into(), |n| n.to_string_lossy().into_owned());
    let staging: PathBuf = parent.join(format!(".{leaf}.importing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    // The new node's data is as private as a served node's (0700).
    for dir in [staging.clone(), crate::app::journal_dir(&staging), crate::app::projections_dir(&staging)] {
        journal::create_private_dir_all(&dir).map_err(|e| ImportError::Refused(format!("{}: {e}", dir.display())))?;
    }
    let result = write(plan, &staging, name).await;
    match result {
        Ok(report) => {
            if data_dir.exists() {
                std::fs::remove_dir(data_dir)
                    .map_err(|e| ImportError::Refused(format!("{}: {e}", data_dir.display())))?;
            }
            std::fs::rename(&staging, data_dir).map_err(|e| {
                let _ = std::fs::remove_dir_all(&staging);
                ImportError::Refused(format!("moving the new node to {}: {e}", data_dir.display()))
            })?;
            Ok(report)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

async fn write(plan: &Plan, dir: &Path, name: &str) -> Result<Report, ImportError> {
    let first_us = plan.payments.first().map_or_else(journal::now_us, |p| p.at_us);
    // The node and its accounts exist a second before the first payment.
    IMPORT_NOW_US.store(first_us.saturating_sub(1_000_000).max(1), Ordering::Relaxed);
    let options = StartOptions {
        reconcile_interval: std::time::Duration::from_secs(60),
        clock: import_clock,
        // No checkpoint is signed while the history is replayed; the node signs them once it serves.
        checkpoint_interval: std::time::Duration::ZERO,
        checkpoint_records: 0,
        snapshot_every: 0,
        ..StartOptions::new(dir, name)
    };
    let node = Node::start(options, Arc::new(Metrics::new())).await.map_err(|e| ImportError::Node(e.to_string()))?;
    let state = node.state();
    let outcome = async {
        let mut report = Report { skipped: plan.skipped, ..Report::default() };
        for account in &plan.accounts {
            let key = uuid::Uuid::new_v4().simple().to_string();
            let command = NodeCommand::OpenAccount {
                id: account.id.clone(),
                kind: AccountKind::User { admin: account.admin },
                limits: account.limits,
                key_hash: crate::auth::new_key_hash(&key),
            };
            state.submit(command).await.map_err(|e| account.row.error(describe_write_error(&e)))?;
            report.keys.push((account.id.as_str().to_owned(), key));
            report.accounts += 1;
        }
        let workflow = WorkflowId::new("pay").map_err(|e| ImportError::Refused(e.to_string()))?;
        for payment in &plan.payments {
            IMPORT_NOW_US.store(payment.at_us, Ordering::Relaxed);
            let proposal = Proposal {
                author: payment.payer.clone(),
                payer: payment.payer.as_str().to_owned(),
                payee: payment.payee.as_str().to_owned(),
                quant: payment.quant,
                description: payment.description.clone(),
                metadata: payment.metadata.clone(),
                workflow: workflow.clone(),
                uuid: payment.uuid,
            };
            state
                .submit(NodeCommand::Ledger(Command::ProposeTransaction(proposal)))
                .await
                .map_err(|e| payment.row.error(describe_write_error(&e)))?;
            report.payments += 1;
        }
        let last = plan.payments.last().map_or(first_us, |p| p.at_us);
        IMPORT_NOW_US.store(last + 1, Ordering::Relaxed);
        for account in plan.accounts.iter().filter(|a| a.blocked) {
            let command = Command::ChangeStatus { id: account.id.clone(), status: AccountStatus::Blocked };
            state
                .submit(NodeCommand::Ledger(command))
                .await
                .map_err(|e| account.row.error(describe_write_error(&e)))?;
        }
        // A format that declares balances: the history must add up to them.
        for declared in &plan.declared {
            let read = state.read();
            let balance = |id: &AccountId| read.projections.balances(id).unwrap_or_default().completed;
            let mut replayed = balance(&declared.id);
            for other in &declared.with {
                replayed = replayed.checked_add(balance(other)).map_err(|e| declared.row.error(e.to_string()))?;
            }
            if replayed != declared.balance {
                let id = declared.id.as_str();
                let whose = if declared.with.is_empty() {
                    "its transfers".to_owned()
                } else {
                    let with: Vec<&str> = declared.with.iter().map(AccountId::as_str).collect();
                    format!("the transfers of {id} and of the virtual accounts {}", with.join(", "))
                };
                return Err(declared.row.error(format!(
                    "the declared balance {} of {id} is not what {whose} add up to ({replayed})",
                    declared.balance
                )));
            }
        }
        Ok::<Report, ImportError>(report)
    }
    .await;
    drop(state);
    tokio::task::spawn_blocking(move || node.shutdown()).await.map_err(|e| ImportError::Node(e.to_string()))?;
    IMPORT_NOW_US.store(0, Ordering::Relaxed);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNTS: &str =
        "id,kind,status,min,max,balance\r\nalice,member,active,-50,100,0\r\nbob,member,blocked,-100,100,0\r\n";
    const NOW: u64 = 1_800_000_000_000_000;

    fn files(transactions: &str) -> Vec<(String, String)> {
        vec![("accounts.csv".into(), ACCOUNTS.into()), ("transactions.csv".into(), transactions.into())]
    }

    const HEADER: &str = "written,uuid,version,state,type,author,entry,payer,payee,quant,description\r\n";

    fn row(written: &str, state: &str, payer: &str, quant: &str, description: &str) -> String {
        format!("{written},0b3a6e2c-6a0e-4a7e-9b55-8d5c7e9f0a11,1,{state},pay,{payer},0,{payer},bob,{quant},{description}\r\n")
    }

    #[test]
    fn csv_fields_quotes_and_line_breaks() {
        let rows = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",x\n").expect("parses");
        assert_eq!(rows[0], (1, vec!["a".to_owned(), "b,c".to_owned(), "say \"hi\"".to_owned()]));
        assert_eq!(rows[1], (2, vec!["two\nlines".to_owned(), "x".to_owned()]));
        assert!(parse_csv("a,\"b\n").is_err());
        assert!(parse_csv("a,b\"c\n").is_err());
    }

    #[test]
    fn a_good_file_plans_accounts_and_payments_in_order() {
        let text = format!(
            "{HEADER}{}{}{}",
            row("2025-01-01T10:00:00Z", "completed", "alice", "5", "bread"),
            row("2025-01-01T10:00:00Z", "completed", "alice", "2.5", "\"'=cmd\""),
            row("2025-01-02T10:00:00Z", "pending", "alice", "1", "later"),
        );
        let plan = plan(Format::Ccnode, &files(&text), NOW).expect("plans");
        assert_eq!(plan.accounts.len(), 2);
        assert!(plan.accounts[1].blocked);
        assert_eq!(plan.payments.len(), 2);
        assert_eq!(plan.skipped, 1);
        assert_eq!(plan.payments[1].at_us, plan.payments[0].at_us + 1, "one second, spaced by a microsecond");
        assert_eq!(plan.payments[1].description, "=cmd", "the formula guard is undone");
        assert_eq!(plan.payments[0].metadata["imported"], "ccnode");
    }

    #[test]
    fn bad_rows_are_named() {
        let cases = [
            (
                row("2025-01-02T10:00:00Z", "completed", "alice", "5", "x")
                    + &row("2025-01-01T10:00:00Z", "completed", "alice", "5", "y"),
                3,
                "back in time",
            ),
            (row("2025-01-01T10:00:00Z", "completed", "carol", "5", "x"), 2, "not in the accounts file"),
            (row("2025-01-01T10:00:00Z", "completed", "alice", "\"5,0\"", "x"), 2, "not an amount"),
            (row("2025-01-01T10:00:00Z", "completed", "alice", "5,0", "x"), 2, "12 fields where the header has 11"),
            (row("2025-01-01T10:00:00Z", "completed", "alice", "five", "x"), 2, "not an amount"),
            (row("2025-01-01T10:00:00Z", "completed", "alice", "-5", "x"), 2, "not a positive amount"),
            (row("2099-01-01T10:00:00Z", "completed", "alice", "5", "x"), 2, "not in the past"),
            (row("yesterday", "completed", "alice", "5", "x"), 2, "not an RFC 3339 time"),
        ];
        for (rows, line, words) in cases {
            let text = format!("{HEADER}{rows}");
            match plan(Format::Ccnode, &files(&text), NOW) {
                Err(ImportError::Row { file, line: l, reason }) => {
                    assert_eq!((file.as_str(), l), ("transactions.csv", line), "{reason}");
                    assert!(reason.contains(words), "{reason}");
                }
                other => panic!("{rows}: {other:?}"),
            }
        }
        let bad_accounts = vec![("a.csv".to_owned(), "id,kind,status,min,max\nalice,member,active,5,100\n".to_owned())];
        assert!(matches!(plan(Format::Ccnode, &bad_accounts, NOW), Err(ImportError::Row { line: 2, .. })));
        let unknown = vec![("x.csv".to_owned(), "foo,bar\n1,2\n".to_owned())];
        assert!(matches!(plan(Format::Ccnode, &unknown, NOW), Err(ImportError::UnknownFile { .. })));
    }
}
