//! The Community Exchange System's export (`--format ces`), as IntegralCES's
//! importer `ces_import4ces` reads it (michielbdejong/ices, commit
//! 674041831fc3c0fa9474e55fbf196ddd34ac7590; docs/OPERATIONS.md maps it
//! field by field and says where this reading differs or guesses).
//!
//! Three files, told apart by their header: `users.csv` (one row a CES user
//! and account), `transactions.csv` (one row a trade, oldest first) and,
//! optionally, `balances.csv` (each account's balance at the export, checked
//! against the replayed trades). An account id is the CES account number, the
//! exchange's four-letter code and four digits (`HORA0746`); `HORA0000` is the
//! exchange's administration account, which receives the levies.
//!
//! A trade: the buyer pays the seller `buyer_amount` (in a trade between two
//! exchanges, the local side's amount; the other side is a virtual account
//! per remote exchange, `HORA` + its code, as IntegralCES names them); each
//! local side's levy (`buyer_levy`, `seller_levy`) is a payment of its own
//! from that side to the administration account, as CES charges them.

use std::collections::{BTreeSet, HashMap};

use ledger::{AccountId, Amount, Limits};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{
    parse_quant, read_rows, unique_ids, AccountPlan, Clock, CsvRow, DeclaredBalance, Format, ImportError, PaymentPlan,
    Plan, RowRef,
};

const USER_COLUMNS: &[&str] = &["uid", "usertype", "locked", "debit_limit", "credit_limit"];
const TRADE_COLUMNS: &[&str] =
    &["buyer", "seller", "buyer_amount", "seller_amount", "buyer_levy", "seller_levy", "description", "date_entered"];
const BALANCE_COLUMNS: &[&str] = &["uid", "balance"];
/// Columns of the older CES export (settings.csv, users.csv, trades.csv with
/// capitalised headers, as IntegralCES read it until 2015).
const OLDER_COLUMNS: &[&str] = &["UID", "DebLimit", "CredLimit", "Buyer", "Seller", "DateEntered", "Amount"];

/// Parses a `--utc-offset` value, `+HH:MM` or `-HH:MM`, into seconds.
pub fn parse_utc_offset(text: &str) -> Result<i32, String> {
    UtcOffset::parse(text, format_description!("[offset_hour sign:mandatory]:[offset_minute]"))
        .map(UtcOffset::whole_seconds)
        .ok()
        // The zones of the world lie between -12:00 and +14:00.
        .filter(|s| (-12 * 3600..=14 * 3600).contains(s))
        .ok_or_else(|| format!("{text:?} is not an offset from UTC such as +02:00 or -05:30"))
}

/// One row's fields by column name, trimmed (as IntegralCES trims them).
struct Cells<'a> {
    row: &'a RowRef,
    header: &'a HashMap<String, usize>,
    fields: &'a [String],
}

impl<'a> Cells<'a> {
    fn get(&self, name: &str) -> &'a str {
        self.header.get(name).and_then(|i| self.fields.get(*i)).map_or("", |f| f.trim())
    }

    /// An amount that may be zero but not negative.
    fn nonnegative(&self, name: &str) -> Result<Amount, ImportError> {
        let amount = self.signed(name)?;
        if amount.is_negative() {
            return Err(self.row.error(format!("{name} {} is negative", self.get(name))));
        }
        Ok(amount)
    }

    fn signed(&self, name: &str) -> Result<Amount, ImportError> {
        let text = self.get(name);
        let amount: Amount = text.parse().map_err(|_| self.row.error(format!("{name} {text:?} is not an amount")))?;
        if !amount.within_max() {
            return Err(self.row.error(format!("{name} {text} is beyond ccnode's largest amount")));
        }
        Ok(amount)
    }

    fn positive(&self, name: &str) -> Result<Amount, ImportError> {
        parse_quant(self.row, name, self.get(name))
    }
}

/// A file's rows, each with where it came from.
struct Table {
    header: HashMap<String, usize>,
    rows: Vec<(RowRef, Vec<String>)>,
}

impl Table {
    fn new(file: &str, header: &[String], body: Vec<CsvRow>) -> Table {
        let header = header.iter().enumerate().map(|(i, h)| (h.trim().to_owned(), i)).collect();
        let rows = body.into_iter().map(|(line, fields)| (RowRef { file: file.to_owned(), line }, fields)).collect();
        Table { header, rows }
    }

    fn has(&self, columns: &[&str]) -> bool {
        columns.iter().all(|c| self.header.contains_key(*c))
    }

    fn cells(&self) -> impl Iterator<Item = Cells<'_>> {
        self.rows.iter().map(|(row, fields)| Cells { row, header: &self.header, fields })
    }
}

/// The unlimited side of a limit: ccnode's largest amount.
fn unlimited() -> Limits {
    Limits::new(-Amount::max_value(), Amount::max_value()).expect("-max <= 0 <= max")
}

/// A trade's side in this exchange's ledger.
enum Side {
    /// An account of users.csv.
    Local(AccountId),
    /// A user of another exchange, represented by that exchange's virtual account.
    Remote { account: AccountId, uid: String },
}

impl Side {
    fn account(&self) -> &AccountId {
        match self {
            Side::Local(id) | Side::Remote { account: id, .. } => id,
        }
    }
}

/// What the trades are checked against: the exchange and its accounts.
struct Exchange {
    code: String,
    ids: BTreeSet<AccountId>,
    /// Virtual accounts opened for remote exchanges, in the order first met.
    virtuals: Vec<AccountPlan>,
}

impl Exchange {
    fn side(&mut self, cells: &Cells<'_>, column: &str) -> Result<Side, ImportError> {
        let uid = cells.get(column);
        let prefix = uid.get(..4).filter(|_| uid.len() > 4).ok_or_else(|| {
            cells.row.error(format!("{column} {uid:?} is not a CES account number (an exchange code and a number)"))
        })?;
        if prefix.eq_ignore_ascii_case(&self.code) {
            return match AccountId::new(uid) {
                Ok(id) if self.ids.contains(&id) => Ok(Side::Local(id)),
                _ => Err(cells.row.error(format!("{column} {uid} is not in users.csv"))),
            };
        }
        let name = format!("{}{prefix}", self.code);
        let account = AccountId::new(&name).map_err(|_| {
            cells.row.error(format!("{column} {uid}: exchange code {prefix:?} cannot name a virtual account"))
        })?;
        if self.ids.contains(&account) {
            return Err(cells.row.error(format!(
                "{column} {uid}: the virtual account {name} for exchange {prefix} is also a user in users.csv"
            )));
        }
        if !self.virtuals.iter().any(|v| v.id == account) {
            self.virtuals.push(AccountPlan {
                row: cells.row.clone(),
                id: account.clone(),
                admin: false,
                blocked: false,
                limits: unlimited(),
            });
        }
        Ok(Side::Remote { account, uid: uid.to_owned() })
    }
}

/// A CES time: `YYYY-MM-DD HH:MM:SS` (MySQL's DATETIME, no zone: read at
/// `offset`) or RFC 3339; unix microseconds.
fn original_time(text: &str, offset: UtcOffset) -> Option<u64> {
    let local = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = match PrimitiveDateTime::parse(text, local) {
        Ok(t) => t.assume_offset(offset),
        Err(_) => OffsetDateTime::parse(text, &Rfc3339).ok()?,
    };
    u64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// Reads and checks a CES export.
pub(super) fn plan(files: &[(String, String)], now_us: u64, utc_offset_seconds: i32) -> Result<Plan, ImportError> {
    let format = Format::Ces { utc_offset_seconds };
    let offset = UtcOffset::from_whole_seconds(utc_offset_seconds)
        .map_err(|_| ImportError::Refused(format!("a UTC offset of {utc_offset_seconds} seconds is out of range")))?;
    let (mut users, mut trades, mut balances) = (Vec::new(), Vec::new(), Vec::new());
    for (file, text) in files {
        let (header, body) = read_rows(format, file, text)?;
        let table = Table::new(file, &header, body);
        if table.has(USER_COLUMNS) {
            users.push(table);
        } else if table.has(TRADE_COLUMNS) {
            trades.push(table);
        } else if table.has(BALANCE_COLUMNS) {
            balances.push(table);
        } else if OLDER_COLUMNS.iter().any(|c| table.header.contains_key(*c)) {
            return Err(ImportError::Refused(format!(
                "{file}: the older CES export (capitalised columns such as UID, DebLimit, Buyer, DateEntered) is \
                 not read: give the users.csv and transactions.csv of the current one (docs/OPERATIONS.md)"
            )));
        } else {
            return Err(format.unknown_file(file, &header));
        }
    }
    let (mut accounts, vir) = plan_users(&users)?;
    let Some(first) = accounts.first() else {
        return Err(ImportError::Refused("no accounts: give the export's users.csv too".into()));
    };
    let mut exchange =
        Exchange { code: first.id.as_str()[..4].to_owned(), ids: unique_ids(&accounts)?, virtuals: Vec::new() };
    let payments = plan_trades(&trades, &mut exchange, offset, now_us)?;
    let declared = plan_balances(&balances, &exchange, &vir)?;
    accounts.append(&mut exchange.virtuals);
    Ok(Plan { accounts, payments, skipped: 0, declared })
}

/// users.csv: the accounts, and which of them are CES virtual users (`vir`).
fn plan_users(tables: &[Table]) -> Result<(Vec<AccountPlan>, Vec<AccountId>), ImportError> {
    let mut accounts: Vec<AccountPlan> = Vec::new();
    let mut vir = Vec::new();
    for cells in tables.iter().flat_map(Table::cells) {
        let uid = cells.get("uid");
        let id = AccountId::new(uid)
            .ok()
            .filter(|_| uid.len() > 4)
            .ok_or_else(|| cells.row.error(format!("uid {uid:?} is not a CES account number")))?;
        if let Some(first) = accounts.first() {
            let code = &first.id.as_str()[..4];
            if !uid.starts_with(code) {
                return Err(cells.row.error(format!(
                    "uid {uid} is not of exchange {code} ({} line {})",
                    first.row.file, first.row.line
                )));
            }
        }
        let admin = match cells.get("usertype") {
            "adm" => true,
            "ind" | "org" | "fam" | "com" | "pub" => false,
            "vir" => {
                vir.push(id.clone());
                false
            }
            other => {
                return Err(cells
                    .row
                    .error(format!("usertype {other:?} is not one of adm, ind, org, fam, com, pub, vir")))
            }
        };
        let locked = cells.get("locked");
        let blocked = locked
            .parse::<i64>()
            .map_err(|_| cells.row.error(format!("locked {locked:?} is not a number (0 is not locked)")))?
            != 0;
        // CES limits are magnitudes; 0 is no limit.
        let bound = |name: &str| -> Result<Amount, ImportError> {
            let limit = cells.nonnegative(name)?;
            Ok(if limit.is_zero() { Amount::max_value() } else { limit })
        };
        let limits = Limits::new(-bound("debit_limit")?, bound("credit_limit")?)
            .map_err(|_| cells.row.error("limits must satisfy -debit_limit <= 0 <= credit_limit"))?;
        accounts.push(AccountPlan { row: cells.row.clone(), id, admin, blocked, limits });
    }
    Ok((accounts, vir))
}

/// transactions.csv: each trade a payment from buyer to seller, and a levy
/// payment to the administration account for each local side that paid one.
fn plan_trades(
    tables: &[Table],
    exchange: &mut Exchange,
    offset: UtcOffset,
    now_us: u64,
) -> Result<Vec<PaymentPlan>, ImportError> {
    let admin = AccountId::new(&format!("{}0000", exchange.code)).map_err(|e| ImportError::Refused(e.to_string()))?;
    let mut clock = Clock::default();
    let mut payments = Vec::new();
    for cells in tables.iter().flat_map(Table::cells) {
        let when = cells.get("date_entered");
        let original = original_time(when, offset).ok_or_else(|| {
            cells.row.error(format!("date_entered {when:?} is not a time (YYYY-MM-DD HH:MM:SS or RFC 3339)"))
        })?;
        let buyer = exchange.side(&cells, "buyer")?;
        let seller = exchange.side(&cells, "seller")?;
        let quant = match (&buyer, &seller) {
            (Side::Remote { .. }, Side::Remote { .. }) => {
                return Err(cells.row.error(format!(
                    "neither buyer {} nor seller {} is of exchange {}",
                    cells.get("buyer"),
                    cells.get("seller"),
                    exchange.code
                )))
            }
            (Side::Local(_), Side::Local(_)) => {
                let (bought, sold) = (cells.positive("buyer_amount")?, cells.positive("seller_amount")?);
                if bought != sold {
                    return Err(cells.row.error(format!(
                        "buyer_amount {bought} and seller_amount {sold} differ in a trade within the exchange"
                    )));
                }
                bought
            }
            // The local side's amount, in this exchange's currency.
            (Side::Local(_), Side::Remote { .. }) => cells.positive("buyer_amount")?,
            (Side::Remote { .. }, Side::Local(_)) => cells.positive("seller_amount")?,
        };
        let mut entry = |kind: &str, payer: &AccountId, payee: &AccountId, quant: Amount, description: String| {
            let at_us = clock.next_at(cells.row, "date_entered", when, original, now_us)?;
            let mut metadata = std::collections::BTreeMap::new();
            metadata.insert("imported".to_owned(), "ces".to_owned());
            metadata.insert("imported_entry".to_owned(), kind.to_owned());
            for (column, key) in
                [("txid", "imported_txid"), ("type", "imported_type"), ("entered_by", "imported_entered_by")]
            {
                if !cells.get(column).is_empty() {
                    metadata.insert(key.to_owned(), cells.get(column).to_owned());
                }
            }
            for (side, key) in [(&buyer, "imported_remote_buyer"), (&seller, "imported_remote_seller")] {
                if let Side::Remote { uid, .. } = side {
                    metadata.insert(key.to_owned(), uid.clone());
                }
            }
            payments.push(PaymentPlan {
                row: cells.row.clone(),
                at_us,
                uuid: None,
                payer: payer.clone(),
                payee: payee.clone(),
                quant,
                description,
                metadata,
            });
            Ok::<(), ImportError>(())
        };
        entry("trade", buyer.account(), seller.account(), quant, cells.get("description").to_owned())?;
        for (side, column, kind, description) in [
            (&buyer, "buyer_levy", "buyer_levy", "the buyer's levy"),
            (&seller, "seller_levy", "seller_levy", "the seller's levy"),
        ] {
            // A remote side's levy is its own exchange's; the administration
            // account's own levy would be paid to itself.
            let Side::Local(payer) = side else { continue };
            let levy = cells.nonnegative(column)?;
            if levy.is_zero() || *payer == admin {
                continue;
            }
            if !exchange.ids.contains(&admin) {
                return Err(cells.row.error(format!(
                    "{column} {levy} goes to the exchange's administration account {admin}, which is not in users.csv"
                )));
            }
            entry(kind, payer, &admin, levy, description.to_owned())?;
        }
    }
    Ok(payments)
}

/// balances.csv: the balance of each account it names, once every trade is in.
fn plan_balances(
    tables: &[Table],
    exchange: &Exchange,
    vir: &[AccountId],
) -> Result<Vec<DeclaredBalance>, ImportError> {
    let mut declared: Vec<DeclaredBalance> = Vec::new();
    for cells in tables.iter().flat_map(Table::cells) {
        let uid = cells.get("uid");
        let id = AccountId::new(uid)
            .ok()
            .filter(|id| exchange.ids.contains(id))
            .ok_or_else(|| cells.row.error(format!("uid {uid:?} is not in users.csv")))?;
        if declared.iter().any(|d| d.id == id) {
            return Err(cells.row.error(format!("uid {uid} appears twice")));
        }
        // CES keeps all trade with other exchanges on the exchange's one virtual
        // user; the import splits it per remote exchange.
        let with = if vir.contains(&id) {
            if vir.len() > 1 {
                return Err(cells.row.error(format!(
                    "users.csv has {} vir accounts: which carries the trade with other exchanges is not known; \
                     leave their rows out of balances.csv",
                    vir.len()
                )));
            }
            exchange.virtuals.iter().map(|v| v.id.clone()).collect()
        } else {
            Vec::new()
        };
        declared.push(DeclaredBalance { row: cells.row.clone(), id, balance: cells.signed("balance")?, with });
    }
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000_000;
    const USERS: &str = "uid,firstname,usertype,locked,debit_limit,credit_limit\n\
                         HORA0000,Admin,adm,0,0,0\n\
                         HORA0001,Ana,ind,0,50.00,200\n\
                         HORA0002,Bo,fam,1,0.00,0\n\
                         HORAVIRT,Virtual,vir,0,0,0\n";
    const HEADER: &str = "txid,type,buyer,seller,buyer_amount,seller_amount,buyer_levy,seller_levy,description,date_entered,entered_by\n";

    fn plan_of(trades: &str, balances: &str) -> Result<Plan, ImportError> {
        let mut files = vec![
            ("users.csv".to_owned(), USERS.to_owned()),
            ("transactions.csv".to_owned(), format!("{HEADER}{trades}")),
        ];
        if !balances.is_empty() {
            files.push(("balances.csv".to_owned(), format!("uid,balance\n{balances}")));
        }
        plan(&files, NOW, 7200)
    }

    #[test]
    fn utc_offsets_parse_or_are_refused() {
        assert_eq!(parse_utc_offset("+02:00"), Ok(7200));
        assert_eq!(parse_utc_offset("-05:30"), Ok(-19800));
        assert!(parse_utc_offset("2").is_err());
        assert!(parse_utc_offset("+25:00").is_err());
    }

    #[test]
    fn users_become_accounts_with_their_limits() {
        let plan = plan_of("", "").expect("plans");
        let ids: Vec<&str> = plan.accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["HORA0000", "HORA0001", "HORA0002", "HORAVIRT"]);
        assert!(plan.accounts[0].admin && !plan.accounts[1].admin);
        assert_eq!(plan.accounts[1].limits, Limits::new(Amount::from_units(-50), Amount::from_units(200)).unwrap());
        assert_eq!(plan.accounts[2].limits, unlimited(), "0 is no limit");
        assert!(plan.accounts[2].blocked && !plan.accounts[1].blocked);
    }

    #[test]
    fn a_local_trade_pays_the_seller_and_each_levy_the_administration() {
        let plan = plan_of("7,sess,HORA0001,HORA0002,10.00,10.00,0.20,0.20,bread,2025-02-01 12:00:00,HORA0002\n", "")
            .expect("plans");
        let entries: Vec<(&str, &str, String, &str)> = plan
            .payments
            .iter()
            .map(|p| (p.payer.as_str(), p.payee.as_str(), p.quant.to_string(), p.metadata["imported_entry"].as_str()))
            .collect();
        assert_eq!(
            entries,
            [
                ("HORA0001", "HORA0002", "10".to_owned(), "trade"),
                ("HORA0001", "HORA0000", "0.2".to_owned(), "buyer_levy"),
                ("HORA0002", "HORA0000", "0.2".to_owned(), "seller_levy"),
            ]
        );
        // 12:00 at +02:00 is 10:00 UTC; the levies a microsecond apart after it.
        let at = original_time("2025-02-01T10:00:00Z", UtcOffset::UTC).expect("a time");
        assert_eq!(at, 1_738_404_000_000_000);
        assert_eq!(plan.payments.iter().map(|p| p.at_us).collect::<Vec<_>>(), [at, at + 1, at + 2]);
        assert_eq!(plan.payments[0].metadata["imported_txid"], "7");
        assert_eq!(plan.payments[0].metadata["imported_entered_by"], "HORA0002");
    }

    #[test]
    fn a_trade_with_another_exchange_goes_through_its_virtual_account() {
        let rows = "1,dess,NET21234,HORA0001,9,4.5,0.5,0.09,eggs,2025-02-01 12:00:00,NET21234\n\
                    2,dess,HORA0001,NET25678,3,6,0.06,1,jam,2025-02-02 12:00:00,NET25678\n";
        let plan = plan_of(rows, "HORAVIRT,-1.5\nHORA0001,1.35\n").expect("plans");
        assert_eq!(plan.accounts.last().map(|a| (a.id.as_str(), a.limits)), Some(("HORANET2", unlimited())));
        let first = &plan.payments[0];
        assert_eq!(
            (first.payer.as_str(), first.payee.as_str(), first.quant.to_string()),
            ("HORANET2", "HORA0001", "4.5".into())
        );
        assert_eq!(first.metadata["imported_remote_buyer"], "NET21234");
        // The remote buyer's levy is its own exchange's: only the seller's is paid here.
        assert_eq!(plan.payments[1].metadata["imported_entry"], "seller_levy");
        assert_eq!(plan.payments[2].quant, Amount::from_units(3), "the local buyer's amount");
        let virt = plan.declared.iter().find(|d| d.id.as_str() == "HORAVIRT").expect("declared");
        assert_eq!(
            virt.with,
            [AccountId::new("HORANET2").unwrap()],
            "the one vir user stands for the virtual accounts"
        );
    }

    #[test]
    fn bad_rows_are_named() {
        let good = "1,sess,HORA0001,HORA0002,5,5,0,0,x,2025-02-01 12:00:00,HORA0002\n";
        let cases = [
            (
                format!("{good}2,sess,HORA0001,HORA0002,5,5,0,0,x,2025-01-01 12:00:00,HORA0002\n"),
                3,
                "goes back in time",
            ),
            (
                "1,sess,HORA0001,HORA0009,5,5,0,0,x,2025-02-01 12:00:00,x\n".to_owned(),
                2,
                "HORA0009 is not in users.csv",
            ),
            ("1,sess,HORA0001,HORA0002,5;0,5,0,0,x,2025-02-01 12:00:00,x\n".to_owned(), 2, "is not an amount"),
            ("1,sess,HORA0001,HORA0002,5,6,0,0,x,2025-02-01 12:00:00,x\n".to_owned(), 2, "differ"),
            ("1,sess,HORA0001,HORA0002,5,5,-1,0,x,2025-02-01 12:00:00,x\n".to_owned(), 2, "negative"),
            ("1,sess,HORA0001,HORA0002,5,5,0,0,x,01/02/2025,x\n".to_owned(), 2, "is not a time"),
            ("1,sess,HORA0001,HORA0002,5,5,0,0,x,2099-01-01 00:00:00,x\n".to_owned(), 2, "not in the past"),
            ("1,dess,NET21234,NET25678,5,5,0,0,x,2025-02-01 12:00:00,x\n".to_owned(), 2, "neither buyer"),
        ];
        for (rows, line, words) in cases {
            match plan_of(&rows, "") {
                Err(ImportError::Row { file, line: l, reason }) => {
                    assert_eq!((file.as_str(), l), ("transactions.csv", line), "{reason}");
                    assert!(reason.contains(words), "{words}: {reason}");
                }
                other => panic!("{rows}: {other:?}"),
            }
        }
        assert!(matches!(plan_of("", "HORA0009,1\n"), Err(ImportError::Row { line: 2, .. })));
        let older = vec![("trades.csv".to_owned(), "ID,Buyer,Seller,Amount,DateEntered\n".to_owned())];
        assert!(matches!(plan(&older, NOW, 0), Err(ImportError::Refused(r)) if r.contains("older CES export")));
    }

    #[test]
    fn a_levy_needs_the_administration_account() {
        let files = vec![
            (
                "u.csv".to_owned(),
                "uid,usertype,locked,debit_limit,credit_limit\nHORA0001,ind,0,0,0\nHORA0002,ind,0,0,0\n".to_owned(),
            ),
            ("t.csv".to_owned(), format!("{HEADER}1,sess,HORA0001,HORA0002,5,5,0.1,0,x,2025-02-01 12:00:00,x\n")),
        ];
        match plan(&files, NOW, 0) {
            Err(ImportError::Row { line: 2, reason, .. }) => assert!(reason.contains("HORA0000"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
