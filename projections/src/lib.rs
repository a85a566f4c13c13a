//! Read models folded from ledger events.
