//! Filtered, sorted, paged listings of transactions and entries
//! (the reference's `/transactions` and `/entries`).

use ledger::{AccountId, Amount, Entry, State, Transaction, TxId};

use crate::fold::{ix, Projections, TxRec, NO_SLOT};

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
    /// `validated` transactions (not yet confirmed) exist only for their
    /// author: with `Some(account)` only that account's are listed; `None`
    /// lists all of them (admins).
    pub validated_author: Option<AccountId>,
    /// Match nothing at all (a `states` filter that named no known state).
    pub nothing: bool,
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

/// An account filter resolved to a slot.
#[derive(Clone, Copy)]
enum Party {
    /// No filter.
    Any,
    /// This slot.
    Slot(u32),
    /// An account that does not exist: matches no entry.
    Nobody,
}

impl Party {
    fn holds(self, slot: u32) -> bool {
        match self {
            Party::Any => true,
            Party::Slot(s) => s == slot,
            Party::Nobody => false,
        }
    }
}

/// One entry of a stored transaction, with parties as slots.
struct EntryView<'a> {
    payer: u32,
    payee: u32,
    quant: Amount,
    description: &'a str,
}

struct Matcher<'q> {
    query: &'q Query,
    payer: Party,
    payee: Party,
    involving: Party,
    /// Author as a slot when it is an account, else compared by id.
    author: Party,
    description: Option<String>,
    /// The only author whose validated transactions are listed.
    validated_author: Party,
}

impl<'q> Matcher<'q> {
    fn new(p: &Projections, query: &'q Query) -> Self {
        let party = |id: &Option<AccountId>| match id {
            None => Party::Any,
            Some(id) => p.index_of(id).map_or(Party::Nobody, Party::Slot),
        };
        Self {
            query,
            payer: party(&query.payer),
            payee: party(&query.payee),
            involving: party(&query.involving),
            author: party(&query.author),
            description: query.description.as_ref().map(|d| d.to_lowercase()),
            validated_author: party(&query.validated_author),
        }
    }

    fn transaction(&self, p: &Projections, tx: &TxRec) -> bool {
        let q = self.query;
        let author_slot = p.author_slot(tx);
        let written = p.written_of(tx);
        let author = match (self.author, author_slot) {
            (Party::Any, _) => true,
            (_, NO_SLOT) => q.author.as_ref().is_some_and(|a| a == p.author_of(tx)),
            (party, slot) => party.holds(slot),
        };
        let visible = tx.state != State::Validated
            || match (self.validated_author, author_slot) {
                (Party::Any, _) => true,
                (_, NO_SLOT) => q.validated_author.as_ref().is_some_and(|a| a == p.author_of(tx)),
                (party, slot) => party.holds(slot),
            };
        !q.nothing
            && visible
            && (q.states.is_empty() || q.states.contains(&tx.state))
            && (q.workflows.is_empty() || {
                let id = p.workflow_id_of(tx);
                q.workflows.iter().any(|w| w == id)
            })
            && author
            && q.since_unix_s.is_none_or(|s| written >= s)
            && q.until_unix_s.is_none_or(|u| written <= u)
    }

    fn entry(&self, e: &EntryView<'_>) -> bool {
        self.payer.holds(e.payer)
            && self.payee.holds(e.payee)
            && (self.involving.holds(e.payer) || self.involving.holds(e.payee))
            && self.description.as_ref().is_none_or(|d| e.description.to_lowercase().contains(d.as_str()))
    }

    fn key(&self, p: &Projections, tx: &TxRec, index: usize, quant: Amount) -> Key {
        match self.query.sort {
            Sort::Written => (p.written_of(tx), Amount::ZERO, tx.uuid, index),
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
        let named = [&query.payer, &query.payee, &query.involving].into_iter().flatten();
        let accounts = named.map(|id| self.index_of(id)).collect::<Option<Vec<u32>>>()?;
        if accounts.is_empty() {
            return Some((0..u32::try_from(self.txs.len()).expect("slots are u32")).collect());
        }
        let lists = self.lists();
        accounts.into_iter().map(|a| lists.of(a)).min_by_key(|list| list.len()).map(<[u32]>::to_vec)
    }

    /// The entries of a stored transaction, primary first.
    fn entry_views<'a>(&'a self, tx: &'a TxRec) -> impl Iterator<Item = EntryView<'a>> + 'a {
        let extra = self.extra_of(tx);
        let primary = EntryView {
            payer: tx.payer,
            payee: tx.payee,
            quant: self.quant_of(tx),
            description: extra.map_or("", |x| x.description),
        };
        let more = extra.into_iter().flat_map(|x| x.more()).map(|e| EntryView {
            payer: e.payer,
            payee: e.payee,
            quant: e.quant,
            description: e.description.as_str(),
        });
        std::iter::once(primary).chain(more)
    }

    /// Matching transactions (current version and state), sorted and paged.
    pub fn transactions(&self, query: &Query) -> Page<&Transaction> {
        let matcher = Matcher::new(self, query);
        let mut hits = Vec::new();
        for slot in self.candidates(query).unwrap_or_default() {
            let tx = &self.txs[ix(slot)];
            if matcher.transaction(self, tx) && self.entry_views(tx).any(|e| matcher.entry(&e)) {
                hits.push((matcher.key(self, tx, 0, self.quant_of(tx)), slot));
            }
        }
        let Page { items, total } = page(hits, query);
        Page { items: items.into_iter().map(|slot| self.tx_ref(slot)).collect(), total }
    }

    /// Matching entries with their transactions, sorted and paged.
    pub fn entries(&self, query: &Query) -> Page<EntryRow<'_>> {
        let matcher = Matcher::new(self, query);
        let mut hits = Vec::new();
        for slot in self.candidates(query).unwrap_or_default() {
            let tx = &self.txs[ix(slot)];
            if !matcher.transaction(self, tx) {
                continue;
            }
            for (index, entry) in self.entry_views(tx).enumerate() {
                if matcher.entry(&entry) {
                    hits.push((matcher.key(self, tx, index, entry.quant), (slot, index)));
                }
            }
        }
        let Page { items, total } = page(hits, query);
        let items = items
            .into_iter()
            .map(|(slot, index)| {
                let transaction = self.tx_ref(slot);
                EntryRow { transaction, index, entry: &transaction.entries[index] }
            })
            .collect();
        Page { items, total }
    }
}
