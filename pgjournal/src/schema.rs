//! The tables ccnode keeps in its database, and their migrations.
//!
//! `ccnode_schema` holds one row per applied version. Each migration runs
//! in one transaction under a transaction advisory lock, so two ccnodes
//! starting on a new database at once apply it once. Versions are only
//! ever appended; a database of a newer version than this build knows is
//! refused.

use postgres::Client;

use crate::error::OpenError;
use crate::MIGRATION_LOCK_KEY;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
pub const SCHEMA: &[&str] = &[
    // Version 1: the journal, its identity and the writer's lease.
    r"
CREATE TABLE ccnode_journal_meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    identity text NOT NULL CHECK (octet_length(identity) BETWEEN 1 AND 255),
    genesis bytea NOT NULL CHECK (octet_length(genesis) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ccnode_journal (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    recorded_at_us bigint NOT NULL CHECK (recorded_at_us >= 0),
    prev_hash bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    payload bytea NOT NULL
);
CREATE TABLE ccnode_writer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL,
    holder text NOT NULL,
    since timestamptz NOT NULL,
    head_seq bigint NOT NULL
);
CREATE FUNCTION ccnode_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ccnode_journal is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER ccnode_journal_no_change BEFORE UPDATE OR DELETE ON ccnode_journal
    FOR EACH ROW EXECUTE FUNCTION ccnode_journal_append_only();
CREATE TRIGGER ccnode_journal_no_truncate BEFORE TRUNCATE ON ccnode_journal
    FOR EACH STATEMENT EXECUTE FUNCTION ccnode_journal_append_only();
",
];

const _: () = assert!(SCHEMA.len() == SCHEMA_VERSION as usize);

/// The schema version of the database, `None` when ccnode never created one there.
pub(crate) fn version(client: &mut Client) -> Result<Option<i32>, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('ccnode_schema') IS NOT NULL", &[])?.get(0);
    if !exists {
        return Ok(None);
    }
    Ok(client.query_one("SELECT max(version) FROM ccnode_schema", &[])?.get(0))
}

/// Brings the schema to `SCHEMA_VERSION`.
pub(crate) fn migrate(client: &mut Client) -> Result<(), OpenError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ccnode_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let current: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM ccnode_schema", &[])?.get(0);
    if current > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew { found: current, known: SCHEMA_VERSION });
    }
    for (index, step) in SCHEMA.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
        let to = i32::try_from(index + 1).expect("few migrations");
        tx.batch_execute(step)?;
        tx.execute("INSERT INTO ccnode_schema (version) VALUES ($1)", &[&to])?;
        tracing::info!(version = to, "migrated the journal's PostgreSQL schema");
    }
    tx.commit()?;
    Ok(())
}
