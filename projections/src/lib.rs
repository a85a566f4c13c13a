//! Read models folded from ledger events.
//!
//! [`Projections`] is a pure, in-memory fold of [`ledger::Event`]s tagged with
//! their journal seq and record time: accounts, balances (completed and
//! pending), transactions by uuid, entries per account, trade stats, and a
//! per-account timeline of the completed balance answering historical
//! queries in O(log n). [`store`] persists snapshots in a file as derived
//! data, always checked against (and rebuildable from) the journal.

pub mod facts;
mod finding;
mod fold;
mod query;
pub mod store;
mod tables;

pub use facts::{is_proof_bookkeeping, Crossing, NodeFacts};
pub use finding::{Finding, FindingKind};
pub use fold::{books_balances, AccountStats, Projections, TimelinePoint, Total, TradeStats, Unfoldable};
pub use ledger::Balances;
pub use query::{EntryRow, Page, Query, Sort};
pub use store::{load_or_rebuild, LoadError, LoadReport, SnapshotStore, StoreError};
