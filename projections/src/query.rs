//! Filtered, sorted, paged listings of transactions and entries
//! (the reference's `/transactions` and `/entries`).

use ledger::{AccountId, Amount, Entry, State, Transaction, TxId};

use crate::fold::{ix, Projections};

/// Sort order of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// By `written_unix_s` (the reference's default, `sort=written`).
    #[default]
    Written,
    /// By version.
    Version,
    /// By quant: the primary entry's for transactions, the entry's own for entries.
    Quant,
}

/// Filters, order and page of a listing. Transaction-level filters
/// (`author`, `states`, `workflows`, `since_unix_s`, `until_unix_s`) apply
/// to the transaction; entry-level ones (`payer`, `payee`, `involving`,
/// `description`) must all hold for one same entry. A transaction matches
/// when its filters hold and at least one of its entries matches; an entry
/// row matches when its transaction's filters hold and the entry matches.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Entry payer.
    pub payer: Option<AccountId>,
    /// Entry payee.
    pub payee: Option<AccountId>,
    /// Entry payer or payee.
    pub involving: Option<AccountId>,
    /// Transaction author (the reference's `scribe`).
    pub author: Option<AccountId>,
    /// Case-insensitive substring of the entry's description.
    pub description: Option<String>,
    /// Any of these states; empty = any.
    pub states: Vec<State>,
    /// Any of these workflow ids (the reference's `type`); empty = any.
    pub workflows: Vec<String>,
    /// `written_unix_s >= since`, inclusive.
    pub since_unix_s: Option<u64>,
    /// `written_unix_s <= until`, inclusive.
    pub until_unix_s: Option<u64>,
    /// Sort key; ties are broken by uuid (then entry index).
    pub sort: Sort,
    /// Reverse the whole order (tie-breaks included).
    pub descending: bool,
    /// Rows skipped.
    pub offset: usize,
    /// Most rows returned; 0 means no limit.
    pub limit: usize,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Matching rows over all pages.
    pub total: usize,
}

/// One entry with its transaction (the reference's `EntryFull`).
#[derive(Debug, Clone)]
pub struct EntryRow<'a> {
    /// The transaction holding the entry.
    pub transaction: &'a Transaction,
    /// Position in `transaction.entries`; 0 is the primary entry.
    pub index: usize,
    /// The entry.
    pub entry: &'a Entry,
}

/// Sort key: (number, amount, uuid, entry index); unique per row.
type Key = (u64, Amount, TxId, usize);

struct Matcher<'q> {
    query: &'q Query,
    description: Option<String>,
}

impl<'q> Matcher<'q> {
    fn new(query: &'q Query) -> Self {
        Self { query, description: query.description.as_ref().map(|d| d.to_lowercase()) }
    }

    fn transaction(&self, tx: &Transaction) -> bool {
        let q = self.query;
        (q.states.is_empty() || q.states.contains(&tx.state))
            && (q.workflows.is_empty() || q.workflows.iter().any(|w| w == tx.workflow.id.as_str()))
            && q.author.as_ref().is_none_or(|a| *a == tx.author)
            && q.since_unix_s.is_none_or(|s| tx.written_unix_s >= s)
            && q.until_unix_s.is_none_or(|u| tx.written_unix_s <= u)
    }

    fn entry(&self, e: &Entry) -> bool {
        let q = self.query;
        q.payer.as_ref().is_none_or(|p| *p == e.payer)
            && q.payee.as_ref().is_none_or(|p| *p == e.payee)
            && q.involving.as_ref().is_none_or(|a| *a == e.payer || *a == e.payee)
            && self.description.as_ref().is_none_or(|d| e.description.to_lowercase().contains(d.as_str()))
    }

    fn key(&self, tx: &Transaction, index: usize, quant: Amount) -> Key {
        match self.query.sort {
            Sort::Written => (tx.written_unix_s, Amount::ZERO, tx.uuid, index),
            Sort::Version => (u64::from(tx.version), Amount::ZERO, tx.uuid, index),
            Sort::Quant => (0, quant, tx.uuid, index),
        }
    }
}

fn page<T>(mut hits: Vec<(Key, T)>, query: &Query) -> Page<T> {
    if query.descending {
        hits.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
    } else {
        hits.sort_unstable_by_key(|h| h.0);
    }
    let total = hits.len();
    let limit = if query.limit == 0 { usize::MAX } else { query.limit };
    let items = hits.into_iter().skip(query.offset).take(limit).map(|(_, t)| t).collect();
    Page { items, total }
}

impl Projections {
    /// Transaction slots that can match: the shortest per-account list among
    /// the named entry-level accounts, else all. `None` when a named account
    /// does not exist (nothing can match).
    fn candidates(&self, query: &Query) -> Option<Vec<u32>> {
        let mut best: Option<&Vec<u32>> = None;
        for id in [&query.payer, &query.payee, &query.involving].into_iter().flatten() {
            let list = &self.slots[ix(self.index_of(id)?)].txs;
            if best.is_none_or(|b| list.len() < b.len()) {
                best = Some(list);
            }
        }
        Some(match best {
            Some(list) => list.clone(),
            None => (0..u32::try_from(self.txs.len()).expect("slots are u32")).collect(),
        })
    }

    /// Matching transactions (current version and state), sorted and paged.
    pub fn transactions(&self, query: &Query) -> Page<&Transaction> {
        let matcher = Matcher::new(query);
        let mut hits = Vec::new();
        for slot in self.candidates(query).unwrap_or_default() {
            let tx = &self.txs[ix(slot)];
            if matcher.transaction(tx) && tx.entries.iter().any(|e| matcher.entry(e)) {
                hits.push((matcher.key(tx, 0, tx.primary().quant), tx));
            }
        }
        page(hits, query)
    }

    /// Matching entries with their transactions, sorted and paged.
    pub fn entries(&self, query: &Query) -> Page<EntryRow<'_>> {
        let matcher = Matcher::new(query);
        let mut hits = Vec::new();
        for slot in self.candidates(query).unwrap_or_default() {
            let tx = &self.txs[ix(slot)];
            if !matcher.transaction(tx) {
                continue;
            }
            for (index, entry) in tx.entries.iter().enumerate() {
                if matcher.entry(entry) {
                    hits.push((matcher.key(tx, index, entry.quant), EntryRow { transaction: tx, index, entry }));
                }
            }
        }
        page(hits, query)
    }
}
