//! ccnode's journal kept in PostgreSQL.
//!
//! The same records as the segment files (`journal::Journal`): seq,
//! recorded_at_us, prev_hash, hash and payload, hashed with
//! `journal::record_hash` from `journal::genesis_hash(identity)`, so a
//! journal moves between the two stores with every hash intact. It
//! implements `journal::Store`.
//!
//! - **Schema.** ccnode creates and migrates its tables (`ccnode_schema`
//!   holds the version; see [`SCHEMA`]). `ccnode_journal` is append-only: a
//!   trigger refuses `UPDATE`, `DELETE` and `TRUNCATE`.
//! - **Durability.** One batch is one statement, so one transaction, with
//!   `synchronous_commit = on` for the session: `append_batch` returns `Ok`
//!   only once PostgreSQL has flushed the commit (and, when the operator
//!   configured synchronous standbys, once they have it too).
//! - **Verification on read.** Every record read is checked by
//!   `journal::ChainCheck` (seq, link, time, recomputed hash): a row altered
//!   with SQL is an error naming its seq wherever it is read.
//! - **One writer.** A writer holds a session advisory lock for the life of
//!   its connection and, on taking it, raises the generation of the lease
//!   row `ccnode_writer`. Each batch's statement updates that row only where
//!   the generation is still its own, and inserts nothing otherwise: a writer
//!   whose lease another took cannot write after the other started (fencing).
//! - **Standing by.** [`PgJournal::open_standby`] opens a follower when
//!   another node holds the lock; [`PgJournal::follow`] re-reads the head and
//!   takes the lock and a new lease generation once it is free, and also
//!   brings back a writer whose append failed (its database went away): it
//!   connects again and takes the lease anew. [`PgJournal::records_after`]
//!   reads what the follower has not folded yet, checked against the last
//!   record it holds.

mod conn;
mod error;
mod schema;

use std::collections::VecDeque;
use std::time::Duration;

use journal::{BatchAck, ChainCheck, Hash, Head, Record};
use postgres::{Client, IsolationLevel, Row};

use crate::conn::Conn;

pub use error::{describe, AppendError, OpenError, ReadError};
pub use schema::{SCHEMA, SCHEMA_VERSION};

/// The session advisory lock a writer holds (per database): "ccnode" and 1.
pub const WRITER_LOCK_KEY: i64 = 0x6363_6e6f_6465_0001;
/// The transaction advisory lock that serialises schema migrations.
pub const MIGRATION_LOCK_KEY: i64 = 0x6363_6e6f_6465_0002;
/// Records a writer reads back through the chain check when it opens (the
/// file journal's checkpoint interval: it rehashes at most as many).
pub const VERIFIED_AT_OPEN: u64 = journal::CHECKPOINT_INTERVAL_RECORDS;
/// Pause between tries of a held writer lock.
const LOCK_RETRY: Duration = Duration::from_millis(20);
/// Records fetched per round trip when reading.
pub const READ_CHUNK_RECORDS: i64 = 1024;

/// Whether `text` names a PostgreSQL store (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The URL without its password, for logs and errors.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let redacted_authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    if rest.contains('/') {
        format!("{scheme}://{redacted_authority}/{tail}")
    } else {
        format!("{scheme}://{redacted_authority}")
    }
}

/// The journal in a PostgreSQL database.
///
/// Its connection lives on a thread of its own (see `conn`), so a
/// `PgJournal` may be used from any thread, inside an async runtime too.
pub struct PgJournal {
    /// `None` while a follower is disconnected (see `follow`).
    conn: Option<Conn>,
    url: String,
    identity: String,
    genesis: Hash,
    head: Head,
    /// The lease generation this writer holds; `None` when read-only.
    generation: Option<i64>,
    poisoned: bool,
}

impl std::fmt::Debug for PgJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJournal")
            .field("url", &redacted(&self.url))
            .field("identity", &self.identity)
            .field("head", &self.head)
            .field("generation", &self.generation)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl PgJournal {
    /// Opens the journal for `identity` in the database at `url` for writing,
    /// creating the schema and the journal when missing. Fails with
    /// `OpenError::Locked` when another writer holds the lock.
    pub fn open_or_create(url: &str, identity: &str) -> Result<PgJournal, OpenError> {
        PgJournal::open_writer(url, identity)
    }

    /// Opens the journal for a node that stands by (`--standby`): the writer
    /// when no other node holds the lock (as `open_or_create`), else a
    /// follower, which takes no lock and reads what the writer appends;
    /// [`PgJournal::follow`] keeps it up to date and makes it the writer
    /// once the lock is free.
    pub fn open_standby(url: &str, identity: &str) -> Result<PgJournal, OpenError> {
        check_identity(identity)?;
        let conn = Conn::open(url)?;
        conn.run(schema::migrate)?;
        if conn.run(try_writer_lock)? {
            return PgJournal::writer_on(conn, url, identity);
        }
        let genesis = journal::genesis_hash(identity);
        let mut journal = PgJournal {
            conn: Some(conn),
            url: url.to_owned(),
            identity: identity.to_owned(),
            genesis,
            head: Head { seq: 0, hash: genesis, recorded_at_us: 0 },
            generation: None,
            poisoned: false,
        };
        journal.head = journal.read_follower_head()?;
        tracing::info!(store = %redacted(url), head = journal.head.seq, "another node writes this journal: following it");
        Ok(journal)
    }

    fn open_writer(url: &str, identity: &str) -> Result<PgJournal, OpenError> {
        check_identity(identity)?;
        let conn = Conn::open(url)?;
        conn.run(schema::migrate)?;
        let started = std::time::Instant::now();
        // A writer that just closed its connection may hold the lock until
        // its backend exits: wait a little, as the file journal does.
        while !conn.run(try_writer_lock)? {
            if started.elapsed() >= journal::LOCK_WAIT {
                return Err(OpenError::Locked { url: redacted(url), holder: conn.run(holder) });
            }
            std::thread::sleep(LOCK_RETRY);
        }
        PgJournal::writer_on(conn, url, identity)
    }

    /// The writer on `conn`, which holds the lock: takes the lease (a new
    /// generation), creates the identity row when missing and checks the tail.
    fn writer_on(conn: Conn, url: &str, identity: &str) -> Result<PgJournal, OpenError> {
        let owned_identity = identity.to_owned();
        let (generation, head, inserted, durable) = conn.run(move |client| take_lease(client, &owned_identity))?;
        if inserted {
            tracing::info!(store = %redacted(url), identity, "created a journal in PostgreSQL");
        }
        warn_unless_durable(url, durable);
        tracing::info!(store = %redacted(url), generation, head = head.seq, "holding the journal's writer lease");
        let journal = PgJournal {
            conn: Some(conn),
            url: url.to_owned(),
            identity: identity.to_owned(),
            genesis: journal::genesis_hash(identity),
            head,
            generation: Some(generation),
            poisoned: false,
        };
        journal.check_tail()?;
        Ok(journal)
    }

    /// One step of a node that does not write: a standby, or a writer whose
    /// append failed (a database that went away). It lets a failed writer's
    /// connection go (and with it the lock), connects again when there is no
    /// connection, and takes the writer lock and lease when no other node
    /// holds them: `Ok(true)`, this handle is the writer now, under a new
    /// lease generation (so nothing an old connection might still send can
    /// commit). Otherwise it re-reads the head (`Ok(false)`). An error (the
    /// database unreachable) leaves the handle without a connection, for the
    /// next step.
    ///
    /// Unlike `open_or_create`, it does not read the tail back: the caller
    /// reads every record after the last one it holds with
    /// [`PgJournal::records_after`], which checks them against it.
    pub fn follow(&mut self) -> Result<bool, OpenError> {
        if self.is_writer() {
            return Ok(true);
        }
        if self.generation.is_some() || self.poisoned {
            self.disconnect();
        }
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.url)?);
        }
        let stepped = self.follow_connected();
        if stepped.is_err() {
            self.disconnect();
        }
        stepped
    }

    /// Lets the connection go, and with it the writer lock if this handle
    /// held it: the next [`PgJournal::follow`] connects again. Does not wait
    /// for a connection blocked on a server that is gone.
    pub fn disconnect(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.abandon();
        }
        self.generation = None;
        self.poisoned = false;
    }

    fn follow_connected(&mut self) -> Result<bool, OpenError> {
        let conn = self.conn.as_ref().expect("connected by the caller");
        if conn.run(try_writer_lock)? {
            conn.run(schema::migrate)?;
            let identity = self.identity.clone();
            let (generation, head, _, durable) = conn.run(move |client| take_lease(client, &identity))?;
            warn_unless_durable(&self.url, durable);
            tracing::info!(store = %redacted(&self.url), generation, head = head.seq, "took the journal's writer lease");
            self.generation = Some(generation);
            self.head = head;
            return Ok(true);
        }
        self.head = self.read_follower_head()?;
        Ok(false)
    }

    /// The head as a follower sees it, after checking that the journal (if
    /// there is one yet) is this node's.
    fn read_follower_head(&self) -> Result<Head, OpenError> {
        let (identity, genesis) = (self.identity.clone(), self.genesis);
        let conn = self.conn.as_ref().ok_or_else(|| OpenError::Thread("not connected".to_owned()))?;
        conn.run(move |client| {
            if let Some((found, _)) = read_meta(client)? {
                if found != identity {
                    return Err(OpenError::IdentityMismatch { expected: identity, found });
                }
            }
            read_head(client, genesis)
        })
    }

    /// Whether this handle holds the writer's lease (and no append failed since).
    pub fn is_writer(&self) -> bool {
        self.generation.is_some() && !self.poisoned
    }

    /// Records after `after`, a record the caller already holds (one it
    /// acknowledged or folded), up to the head as last read and at most
    /// `max`, each checked against the chain from `after`: the first must
    /// name `after.hash` as its predecessor. A journal that no longer holds
    /// `after` as it was (fewer records, or another hash at its seq when it
    /// is the head) is an error naming the seq.
    pub fn records_after(&self, after: Head, max: u64) -> Result<Records<'_>, ReadError> {
        if after.seq > self.head.seq {
            let kind = journal::CorruptionKind::MissingRecords { head: self.head.seq };
            return Err(ReadError::Corrupt { seq: self.head.seq + 1, kind });
        }
        if after.seq == self.head.seq {
            if after.hash != self.head.hash {
                let kind = journal::CorruptionKind::Checkpoint { expected: after.hash };
                return Err(ReadError::Corrupt { seq: after.seq, kind });
            }
            return Ok(Records { journal: self, next: 1, end: 0, buffer: VecDeque::new(), check: None });
        }
        let end = self.head.seq.min(after.seq.saturating_add(max.max(1)));
        let check = Some(ChainCheck::after(after));
        Ok(Records { journal: self, next: after.seq + 1, end, buffer: VecDeque::new(), check })
    }

    fn connection(&self) -> Result<&Conn, ReadError> {
        self.conn.as_ref().ok_or(ReadError::Disconnected)
    }

    /// Reads the last `VERIFIED_AT_OPEN` records through the chain check: a
    /// writer refuses a recently damaged journal, as the file journal
    /// rehashes from its newest checkpoint (at most as far back) on open.
    /// The whole chain is `ccnode journal verify`'s.
    fn check_tail(&self) -> Result<(), OpenError> {
        if self.head.seq == 0 {
            return Ok(());
        }
        let from = self.head.seq.saturating_sub(VERIFIED_AT_OPEN) + 1;
        let records =
            self.range(from, self.head.seq).map_err(|e| OpenError::BadRow { seq: from, what: e.to_string() })?;
        for record in records {
            match record {
                Ok(_) => {}
                Err(ReadError::Corrupt { seq, kind }) => return Err(OpenError::Corrupt { seq, kind }),
                Err(ReadError::Row { seq, what }) => return Err(OpenError::BadRow { seq, what }),
                Err(ReadError::Db(e)) => return Err(OpenError::Db(e)),
                Err(other) => return Err(OpenError::BadRow { seq: from, what: other.to_string() }),
            }
        }
        Ok(())
    }

    /// Opens for reading only: takes no lock, changes nothing. Appends fail
    /// with `AppendError::ReadOnly`; `refresh` follows a writer.
    pub fn open_read_only(url: &str) -> Result<PgJournal, OpenError> {
        let conn = Conn::open(url)?;
        let redacted_url = redacted(url);
        let (identity, genesis, head) = conn.run(move |client| {
            match schema::version(client)? {
                None => return Err(OpenError::NotFound { url: redacted_url }),
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(OpenError::SchemaTooNew { found: v, known: SCHEMA_VERSION })
                }
                Some(v) if v < SCHEMA_VERSION => {
                    return Err(OpenError::SchemaTooOld { found: v, known: SCHEMA_VERSION })
                }
                Some(_) => {}
            }
            client.batch_execute("SET default_transaction_read_only = on")?;
            let (identity, genesis) = read_meta(client)?.ok_or(OpenError::NotFound { url: redacted_url })?;
            let head = read_head(client, genesis)?;
            Ok((identity, genesis, head))
        })?;
        Ok(PgJournal {
            conn: Some(conn),
            url: url.to_owned(),
            identity,
            genesis,
            head,
            generation: None,
            poisoned: false,
        })
    }

    /// Whether the database at `url` holds no journal records (no schema, or
    /// an empty journal table): what `migrate-store` requires of a target
    /// (an identity row alone is checked when the target is opened).
    pub fn is_empty_at(url: &str) -> Result<bool, OpenError> {
        let conn = Conn::open(url)?;
        conn.run(|client| {
            if schema::version(client)?.is_none() {
                return Ok(true);
            }
            let row = client.query_one("SELECT EXISTS (SELECT 1 FROM ccnode_journal)", &[])?;
            Ok(!row.get::<_, bool>(0))
        })
    }

    /// Re-reads the head: a read-only handle follows the writer with it.
    pub fn refresh(&mut self) -> Result<Head, ReadError> {
        let last = self.head;
        let genesis = self.genesis;
        let head = self.connection()?.run(move |client| read_head(client, genesis)).map_err(|e| match e {
            OpenError::Db(e) => ReadError::Db(e),
            OpenError::Corrupt { seq, kind } => ReadError::Corrupt { seq, kind },
            other => ReadError::Row { seq: last.seq, what: other.to_string() },
        })?;
        if head.seq < last.seq {
            return Err(ReadError::Row { seq: last.seq, what: format!("the journal now ends at seq {}", head.seq) });
        }
        self.head = head;
        Ok(head)
    }

    /// The lease generation held by this writer (`None` when read-only).
    pub fn generation(&self) -> Option<i64> {
        self.generation
    }

    /// The database URL, without its password.
    pub fn location(&self) -> String {
        redacted(&self.url)
    }

    /// The journal's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The `prev_hash` of record 1.
    pub fn genesis(&self) -> Hash {
        self.genesis
    }

    /// The last acknowledged record (as of open, the last append or `refresh`).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Appends `payloads` as one batch stamped `recorded_at_us` (raised to
    /// the head's time if earlier), in one transaction that commits only
    /// while this writer's lease generation is current.
    pub fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        recorded_at_us: u64,
        payloads: &[P],
    ) -> Result<BatchAck, AppendError> {
        let Some(generation) = self.generation else { return Err(AppendError::ReadOnly) };
        if self.poisoned {
            return Err(AppendError::Poisoned);
        }
        journal::check_batch(payloads).map_err(AppendError::Batch)?;
        let recorded_at_us = recorded_at_us.max(self.head.recorded_at_us);
        let first_seq = self.head.seq + 1;
        let mut rows = BatchRows {
            seqs: Vec::with_capacity(payloads.len()),
            prev_hashes: Vec::with_capacity(payloads.len()),
            hashes: Vec::with_capacity(payloads.len()),
            payloads: Vec::with_capacity(payloads.len()),
        };
        let mut head = self.head;
        for payload in payloads {
            let payload = payload.as_ref();
            let seq = head.seq + 1;
            let hash = journal::record_hash(&head.hash, seq, recorded_at_us, payload);
            rows.seqs.push(to_i64(seq)?);
            rows.prev_hashes.push(head.hash.0.to_vec());
            rows.hashes.push(hash.0.to_vec());
            rows.payloads.push(payload.to_vec());
            head = Head { seq, hash, recorded_at_us };
        }
        let last_seq = to_i64(head.seq)?;
        let at = to_i64(recorded_at_us)?;
        let expected = journal_len(payloads.len());
        let Some(conn) = self.conn.as_ref() else { return Err(AppendError::Poisoned) };
        let written = conn.run(move |client| {
            // One statement is one transaction: the lease check and the rows
            // commit together or not at all.
            let written = client.execute(
                "WITH lease AS (UPDATE ccnode_writer SET head_seq = $2 WHERE generation = $1 RETURNING 1) \
                 INSERT INTO ccnode_journal (seq, recorded_at_us, prev_hash, hash, payload) \
                 SELECT r.seq, $3, r.prev_hash, r.hash, r.payload \
                 FROM unnest($4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[]) AS r(seq, prev_hash, hash, payload) \
                 WHERE EXISTS (SELECT 1 FROM lease)",
                &[&generation, &last_seq, &at, &rows.seqs, &rows.prev_hashes, &rows.hashes, &rows.payloads],
            );
            match written {
                Ok(0) => Err(AppendError::Fenced { generation, holder: holder(client) }),
                Ok(n) if n == expected => Ok(()),
                Ok(n) => Err(AppendError::Partial { expected: rows.seqs.len(), written: n }),
                Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    Err(AppendError::Conflict { first_seq })
                }
                Err(e) => Err(AppendError::Db(e)),
            }
        });
        match written {
            Ok(()) => {
                self.head = head;
                Ok(BatchAck { first_seq, head })
            }
            Err(e) => {
                // The outcome of a failed statement may be unknown (a cut
                // connection during commit): write nothing more until reopened.
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Iterates records `from..=to`, both within the head, each checked
    /// against its predecessor and rehashed.
    pub fn range(&self, from: u64, to: u64) -> Result<Records<'_>, ReadError> {
        for seq in [from, to] {
            if seq == 0 || seq > self.head.seq {
                return Err(ReadError::OutOfRange { seq, head: self.head.seq });
            }
        }
        if from > to {
            return Err(ReadError::OutOfRange { seq: from, head: to });
        }
        Ok(Records { journal: self, next: from, end: to, buffer: VecDeque::new(), check: None })
    }

    /// Iterates records `from..=head`.
    pub fn iter_from(&self, from: u64) -> Result<Records<'_>, ReadError> {
        if from == self.head.seq + 1 || (self.head.seq == 0 && from <= 1) {
            return Ok(Records { journal: self, next: 1, end: 0, buffer: VecDeque::new(), check: None });
        }
        self.range(from, self.head.seq)
    }

    /// Reads record `seq`.
    pub fn read(&self, seq: u64) -> Result<Record, ReadError> {
        let mut records = self.range(seq, seq)?;
        records.next().expect("a range of one seq within the head yields one item")
    }

    /// Up to `READ_CHUNK_RECORDS` records from `from`, at most to `to`, unchecked.
    fn fetch(&self, from: u64, to: u64) -> Result<Vec<Record>, ReadError> {
        let (from, to) = (to_i64_read(from)?, to_i64_read(to)?);
        self.connection()?.run(move |client| {
            let rows = client.query(
                "SELECT seq, recorded_at_us, prev_hash, hash, payload FROM ccnode_journal \
                 WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                &[&from, &to, &READ_CHUNK_RECORDS],
            )?;
            rows.iter().map(to_record).collect()
        })
    }
}

/// A batch's columns, owned so they can go to the connection's thread.
struct BatchRows {
    seqs: Vec<i64>,
    prev_hashes: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
    payloads: Vec<Vec<u8>>,
}

/// Takes the lease (a new generation) and creates the journal's identity
/// row when missing; the lock is already held. Returns the generation, the
/// head, whether the journal was created and whether the server fsyncs.
fn take_lease(client: &mut Client, identity: &str) -> Result<(i64, Head, bool, bool), OpenError> {
    let me = format!("pid {} (backend {})", std::process::id(), backend_pid(client)?);
    let generation: i64 = client
        .query_one(
            "INSERT INTO ccnode_writer (singleton, generation, holder, since, head_seq) \
             VALUES (true, 1, $1, now(), 0) \
             ON CONFLICT (singleton) DO UPDATE SET generation = ccnode_writer.generation + 1, \
             holder = EXCLUDED.holder, since = now() RETURNING generation",
            &[&me],
        )?
        .get(0);
    let genesis = journal::genesis_hash(identity);
    let inserted = client.execute(
        "INSERT INTO ccnode_journal_meta (singleton, identity, genesis) VALUES (true, $1, $2) \
         ON CONFLICT (singleton) DO NOTHING",
        &[&identity, &genesis.0.as_slice()],
    )? == 1;
    let Some((found, _)) = read_meta(client)? else {
        return Err(OpenError::BadMeta("the identity row vanished".to_owned()));
    };
    if found != identity {
        return Err(OpenError::IdentityMismatch { expected: identity.to_owned(), found });
    }
    let durable = client.query_one("SHOW fsync", &[]).map_or(true, |row| row.get::<_, String>(0) == "on");
    let head = read_head(client, genesis)?;
    Ok((generation, head, inserted, durable))
}

impl journal::Store for PgJournal {
    type AppendError = AppendError;
    type ReadError = ReadError;
    type Records<'a> = Records<'a>;

    fn identity(&self) -> &str {
        PgJournal::identity(self)
    }

    fn genesis(&self) -> Hash {
        PgJournal::genesis(self)
    }

    fn head(&self) -> Head {
        PgJournal::head(self)
    }

    fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        recorded_at_us: u64,
        payloads: &[P],
    ) -> Result<BatchAck, AppendError> {
        PgJournal::append_batch_at(self, recorded_at_us, payloads)
    }

    fn range(&self, from: u64, to: u64) -> Result<Records<'_>, ReadError> {
        PgJournal::range(self, from, to)
    }

    fn iter_from(&self, from: u64) -> Result<Records<'_>, ReadError> {
        PgJournal::iter_from(self, from)
    }

    fn read(&self, seq: u64) -> Result<Record, ReadError> {
        PgJournal::read(self, seq)
    }
}

/// Records in seq order, fetched `READ_CHUNK_RECORDS` at a time, each
/// checked by `journal::ChainCheck`.
#[derive(Debug)]
pub struct Records<'a> {
    journal: &'a PgJournal,
    next: u64,
    end: u64,
    buffer: VecDeque<Record>,
    /// Set once the record before `next` is known.
    check: Option<ChainCheck>,
}

impl Records<'_> {
    fn next_record(&mut self) -> Result<Record, ReadError> {
        if self.check.is_none() {
            // Link the first record to its predecessor (the genesis for seq 1).
            self.check = Some(if self.next == 1 {
                ChainCheck::from_genesis(self.journal.genesis)
            } else {
                let before = self.journal.fetch(self.next - 1, self.next - 1)?.pop();
                let before = before.ok_or(ReadError::Corrupt { seq: self.next - 1, kind: missing(self.next) })?;
                ChainCheck::after(Head { seq: before.seq, hash: before.hash, recorded_at_us: before.recorded_at_us })
            });
        }
        if self.buffer.is_empty() {
            self.buffer.extend(self.journal.fetch(self.next, self.end)?);
        }
        let check = self.check.as_mut().expect("set above");
        let Some(record) = self.buffer.pop_front() else {
            return Err(ReadError::Corrupt { seq: self.next, kind: missing(self.end + 1) });
        };
        let seq = if record.seq == self.next { record.seq } else { self.next };
        check.check(&record).map_err(|kind| ReadError::Corrupt { seq, kind })?;
        Ok(record)
    }
}

/// The kind of a record missing before `found` (a dense chain has it).
fn missing(found: u64) -> journal::CorruptionKind {
    journal::CorruptionKind::SeqGap { found }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next > self.end {
            return None;
        }
        let item = self.next_record();
        match item {
            Ok(_) => self.next += 1,
            // Stop after an error: what follows cannot be trusted.
            Err(_) => self.end = 0,
        }
        Some(item)
    }
}

fn check_identity(identity: &str) -> Result<(), OpenError> {
    if identity.is_empty() || identity.len() > journal::IDENTITY_BYTES_MAX {
        return Err(OpenError::BadIdentity { len: identity.len(), max: journal::IDENTITY_BYTES_MAX });
    }
    Ok(())
}

/// Tries the writer's session lock once.
fn try_writer_lock(client: &mut Client) -> Result<bool, postgres::Error> {
    Ok(client.query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])?.get(0))
}

fn backend_pid(client: &mut Client) -> Result<i32, postgres::Error> {
    Ok(client.query_one("SELECT pg_backend_pid()", &[])?.get(0))
}

/// Who holds the lease, for error messages.
fn holder(client: &mut Client) -> String {
    client.query_opt("SELECT holder, generation FROM ccnode_writer", &[]).ok().flatten().map_or_else(
        || "unknown".to_owned(),
        |row| format!("{} (generation {})", row.get::<_, String>(0), row.get::<_, i64>(1)),
    )
}

fn read_meta(client: &mut Client) -> Result<Option<(String, Hash)>, OpenError> {
    let Some(row) = client.query_opt("SELECT identity, genesis FROM ccnode_journal_meta", &[])? else {
        return Ok(None);
    };
    let identity: String = row.get(0);
    let genesis = hash_of(row.get(1)).ok_or_else(|| OpenError::BadMeta("the genesis is not 32 bytes".into()))?;
    if genesis != journal::genesis_hash(&identity) {
        return Err(OpenError::BadMeta(format!("the genesis is not the hash of the identity {identity:?}")));
    }
    Ok(Some((identity, genesis)))
}

/// The last record, its hash recomputed, checked against the last seq the
/// writers' lease recorded (one snapshot for both): a journal whose last
/// records were deleted is refused, as a file journal whose checkpoint is
/// beyond its end is.
fn read_head(client: &mut Client, genesis: Hash) -> Result<Head, OpenError> {
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
    let row = tx.query_opt(
        "SELECT seq, recorded_at_us, prev_hash, hash, payload FROM ccnode_journal ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    let written: Option<i64> = tx.query_opt("SELECT head_seq FROM ccnode_writer", &[])?.map(|r| r.get(0));
    tx.commit()?;
    let head = match row {
        None => Head { seq: 0, hash: genesis, recorded_at_us: 0 },
        Some(row) => {
            let record = to_record(&row).map_err(|e| match e {
                ReadError::Row { seq, what } => OpenError::BadRow { seq, what },
                other => OpenError::BadRow { seq: 0, what: other.to_string() },
            })?;
            if !record.hash_is_valid() {
                return Err(OpenError::Corrupt { seq: record.seq, kind: journal::CorruptionKind::Hash });
            }
            Head { seq: record.seq, hash: record.hash, recorded_at_us: record.recorded_at_us }
        }
    };
    let written = written.map_or(0, |w| u64::try_from(w).unwrap_or(0));
    if written > head.seq {
        return Err(OpenError::Corrupt {
            seq: head.seq + 1,
            kind: journal::CorruptionKind::MissingRecords { head: head.seq },
        });
    }
    Ok(head)
}

fn to_record(row: &Row) -> Result<Record, ReadError> {
    let seq: i64 = row.get(0);
    let bad = |what: &str| ReadError::Row { seq: u64::try_from(seq).unwrap_or(0), what: what.to_owned() };
    let seq = u64::try_from(seq).map_err(|_| bad("negative seq"))?;
    let recorded_at_us = u64::try_from(row.get::<_, i64>(1)).map_err(|_| bad("negative recorded_at_us"))?;
    let prev_hash = hash_of(row.get(2)).ok_or_else(|| bad("prev_hash is not 32 bytes"))?;
    let hash = hash_of(row.get(3)).ok_or_else(|| bad("hash is not 32 bytes"))?;
    let payload: Vec<u8> = row.get(4);
    if payload.len() > journal::MAX_PAYLOAD_BYTES {
        return Err(bad("payload larger than the journal allows"));
    }
    Ok(Record { seq, recorded_at_us, prev_hash, hash, payload })
}

fn hash_of(bytes: &[u8]) -> Option<Hash> {
    <[u8; 32]>::try_from(bytes).ok().map(Hash)
}

fn to_i64(value: u64) -> Result<i64, AppendError> {
    i64::try_from(value).map_err(|_| AppendError::OutOfRange { value })
}

fn to_i64_read(value: u64) -> Result<i64, ReadError> {
    i64::try_from(value).map_err(|_| ReadError::OutOfRange { seq: value, head: 0 })
}

fn journal_len(records: usize) -> u64 {
    u64::try_from(records).expect("a batch's length fits in u64")
}

fn warn_unless_durable(url: &str, durable: bool) {
    if !durable {
        tracing::warn!(store = %redacted(url), "the PostgreSQL server runs with fsync off: acknowledged writes can be lost in a crash");
    }
}
