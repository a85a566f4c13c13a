//! The PostgreSQL journal against a real PostgreSQL (a throwaway cluster of
//! the distribution's package, installed when absent): the store contract
//! that the segment files also pass, atomic batches, fencing, and damage
//! made with SQL found by the chain check, naming the seq.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use journal::{CorruptionKind, Head, Journal, Record, Store};
use pgcluster::Cluster;
use pgjournal::{AppendError, OpenError, PgJournal, ReadError};

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A new empty database in the shared cluster.
fn database() -> String {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    Cluster::shared().create_database(&format!("it_{}_{n}", std::process::id()))
}

fn db_name(url: &str) -> &str {
    url.rsplit('/').next().expect("a database in the url")
}

fn payload(seq: u64) -> Vec<u8> {
    format!("payload {seq} ").repeat(usize::try_from(seq % 7).expect("small") + 1).into_bytes()
}

/// The contract every store keeps, run on one given empty.
fn contract<S: Store>(store: &mut S, identity: &str) -> Vec<Record> {
    assert_eq!(store.identity(), identity);
    assert_eq!(store.genesis(), journal::genesis_hash(identity));
    assert_eq!(store.head(), Head { seq: 0, hash: store.genesis(), recorded_at_us: 0 });
    assert_eq!(store.iter_from(1).expect("empty iteration").count(), 0);
    assert!(store.range(1, 1).is_err(), "nothing to read in an empty journal");

    let ack = store.append_batch_at(1_000, &[payload(1)]).expect("a batch of one");
    assert_eq!(ack.first_seq, 1);
    assert_eq!(ack.head.seq, 1);
    let batch: Vec<Vec<u8>> = (2..=40).map(payload).collect();
    let ack = store.append_batch_at(2_000, &batch).expect("a batch of 39");
    assert_eq!((ack.first_seq, ack.head.seq, ack.head.recorded_at_us), (2, 40, 2_000));
    // A time earlier than the head's is raised to it.
    let ack = store.append_batch_at(1_500, &[payload(41)]).expect("a late batch");
    assert_eq!(ack.head.recorded_at_us, 2_000);
    assert_eq!(store.head(), ack.head);
    assert!(store.append_batch_at(3_000, &Vec::<Vec<u8>>::new()).is_err(), "an empty batch is refused");
    let too_big = vec![vec![0u8; journal::MAX_PAYLOAD_BYTES + 1]];
    assert!(store.append_batch_at(3_000, &too_big).is_err(), "an oversize payload is refused");
    assert_eq!(store.head(), ack.head, "refused batches change nothing");

    let all: Vec<Record> = store.iter_from(1).expect("iterate").collect::<Result<_, _>>().expect("sound records");
    assert_eq!(all.len(), 41);
    let mut prev = store.genesis();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, u64::try_from(i).expect("small") + 1);
        assert_eq!(r.prev_hash, prev);
        assert!(r.hash_is_valid());
        assert_eq!(r.payload, payload(r.seq));
        prev = r.hash;
    }
    let middle: Vec<Record> = store.range(10, 20).expect("range").collect::<Result<_, _>>().expect("sound");
    assert_eq!(middle, all[9..20].to_vec());
    assert_eq!(store.read(41).expect("read the head"), all[40]);
    assert_eq!(store.iter_from(42).expect("after the head").count(), 0);
    assert!(store.range(0, 3).is_err() && store.range(3, 42).is_err() && store.range(5, 4).is_err());
    all
}

#[test]
fn both_stores_keep_the_contract_with_the_same_records_and_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files =
        Journal::create(&dir.path().join("journal"), "village", journal::Options::default()).expect("create");
    let from_files = contract(&mut files, "village");

    let url = database();
    let mut pg = PgJournal::open_or_create(&url, "village").expect("open a new database");
    let from_pg = contract(&mut pg, "village");
    assert_eq!(from_pg, from_files, "the same batches at the same times make the same records in both stores");
    drop(pg);

    let pg = PgJournal::open_or_create(&url, "village").expect("reopen");
    assert_eq!(pg.head(), files.head(), "a reopened journal has the same head");
    let again: Vec<Record> = pg.iter_from(1).expect("iterate").collect::<Result<_, _>>().expect("sound");
    assert_eq!(again, from_files);
}

#[test]
fn reads_cross_chunk_boundaries_and_follow_a_writer() {
    let url = database();
    let mut writer = PgJournal::open_or_create(&url, "chunks").expect("open");
    let total = u64::try_from(pgjournal::READ_CHUNK_RECORDS).expect("positive") * 2 + 17;
    let payloads: Vec<Vec<u8>> = (1..=total).map(payload).collect();
    writer.append_batch_at(5, &payloads[..1000]).expect("first batch");
    let mut reader = PgJournal::open_read_only(&url).expect("a read-only handle");
    assert_eq!(reader.head().seq, 1000);
    assert!(matches!(reader.append_batch_at(6, &[b"x"]), Err(AppendError::ReadOnly)));
    writer.append_batch_at(6, &payloads[1000..]).expect("second batch");
    assert_eq!(reader.head().seq, 1000, "a read-only head moves only on refresh");
    assert_eq!(reader.refresh().expect("refresh"), writer.head());
    let mut count = 0;
    for (i, record) in reader.range(3, total).expect("range").enumerate() {
        let record = record.expect("sound");
        assert_eq!(record.seq, u64::try_from(i).expect("small") + 3);
        count += 1;
    }
    assert_eq!(count, total - 2);
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let url = database();
    drop(PgJournal::open_or_create(&url, "schema").expect("create"));
    drop(PgJournal::open_or_create(&url, "schema").expect("reopen: nothing to migrate"));
    let mut admin = Cluster::shared().connect(db_name(&url));
    let versions: Vec<i32> = admin
        .query("SELECT version FROM ccnode_schema ORDER BY version", &[])
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![pgjournal::SCHEMA_VERSION]);
    admin.execute("INSERT INTO ccnode_schema (version) VALUES (99)", &[]).expect("a future version");
    assert!(matches!(PgJournal::open_or_create(&url, "schema"), Err(OpenError::SchemaTooNew { found: 99, .. })));
    assert!(matches!(PgJournal::open_read_only(&url), Err(OpenError::SchemaTooNew { found: 99, .. })));
}

#[test]
fn another_node_and_an_empty_database_are_refused() {
    let url = database();
    assert!(matches!(PgJournal::open_read_only(&url), Err(OpenError::NotFound { .. })));
    assert!(PgJournal::is_empty_at(&url).expect("ask"));
    let mut pg = PgJournal::open_or_create(&url, "one").expect("create");
    assert!(PgJournal::is_empty_at(&url).expect("ask"), "a journal with no records is still an empty target");
    pg.append_batch_at(1, &[b"a"]).expect("append");
    drop(pg);
    assert!(!PgJournal::is_empty_at(&url).expect("ask"));
    match PgJournal::open_or_create(&url, "two") {
        Err(OpenError::IdentityMismatch { expected, found }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("two", "one"))
        }
        other => panic!("expected an identity mismatch, got {other:?}"),
    }
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/nothing", Cluster::shared().port());
    assert!(matches!(PgJournal::open_or_create(&unreachable, "one"), Err(OpenError::Connect { .. })));
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
    let url = database();
    let mut first = PgJournal::open_or_create(&url, "single").expect("first writer");
    match PgJournal::open_or_create(&url, "single") {
        Err(OpenError::Locked { holder, .. }) => assert!(holder.contains("generation 1"), "{holder}"),
        other => panic!("a second writer must be refused, got {other:?}"),
    }
    first.append_batch_at(1, &[b"still the writer"]).expect("the first keeps writing");
    drop(first);
    let second = PgJournal::open_or_create(&url, "single").expect("the lock is free once the first is gone");
    assert_eq!(second.generation(), Some(2));
    assert_eq!(second.head().seq, 1);
}

#[test]
fn a_standby_follows_the_writer_and_takes_over_with_everything_acknowledged() {
    let url = database();
    let mut first = PgJournal::open_or_create(&url, "standby").expect("first writer");
    first.append_batch_at(1, &[b"one", b"two"]).expect("append");
    let mut standby = PgJournal::open_standby(&url, "standby").expect("a follower while the lock is held");
    assert!(!standby.is_writer());
    assert_eq!(standby.generation(), None);
    assert_eq!(standby.head().seq, 2);
    let start = Head { seq: 0, hash: standby.genesis(), recorded_at_us: 0 };
    let folded: Vec<Record> =
        standby.records_after(start, 100).expect("read").collect::<Result<_, _>>().expect("sound");
    assert_eq!(folded.len(), 2);
    assert!(matches!(standby.append_batch_at(2, &[b"no"]), Err(AppendError::ReadOnly)), "a follower cannot append");

    let ack = first.append_batch_at(2, &[b"three"]).expect("the writer goes on while the standby follows");
    assert!(!standby.follow().expect("a step"), "the writer still holds the lock");
    assert_eq!(standby.head(), ack.head, "the follower sees the new head");
    let after = Head { seq: 2, hash: folded[1].hash, recorded_at_us: folded[1].recorded_at_us };
    let tail: Vec<Record> = standby.records_after(after, 100).expect("read").collect::<Result<_, _>>().expect("sound");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].payload, b"three");
    // A record the journal does not hold as the follower does is refused, naming the seq.
    let forged = Head { hash: journal::Hash([7; 32]), ..after };
    let refused = standby.records_after(forged, 100).expect("in range").next().expect("one item");
    assert!(
        matches!(refused, Err(ReadError::Corrupt { seq: 3, kind: CorruptionKind::ChainLink { .. } })),
        "{refused:?}"
    );
    let head = Head { seq: 3, hash: tail[0].hash, recorded_at_us: tail[0].recorded_at_us };
    let forged_head = Head { hash: journal::Hash([7; 32]), ..head };
    assert!(matches!(standby.records_after(forged_head, 100), Err(ReadError::Corrupt { seq: 3, .. })));
    let beyond = Head { seq: 4, ..head };
    assert!(matches!(standby.records_after(beyond, 100), Err(ReadError::Corrupt { seq: 4, .. })));

    drop(first);
    pgcluster::wait_until(Duration::from_secs(30), "the standby to take the lock", || {
        standby.follow().expect("a step")
    });
    assert!(standby.is_writer());
    assert_eq!(standby.generation(), Some(2), "a new lease generation");
    assert_eq!(standby.head(), ack.head, "the standby starts at the last acknowledged record");
    assert_eq!(standby.records_after(head, 100).expect("nothing after").count(), 0);
    let ack = standby.append_batch_at(3, &[b"four"]).expect("the new writer appends");
    assert_eq!(ack.first_seq, 4);
}

#[test]
fn a_writer_whose_database_restarted_takes_its_lease_again() {
    let cluster = Cluster::start();
    let url = cluster.create_database("restarted");
    let mut writer = PgJournal::open_or_create(&url, "restarted").expect("writer");
    let acked = writer.append_batch_at(1, &[b"one", b"two"]).expect("append").head;
    cluster.stop();
    assert!(writer.append_batch_at(2, &[b"lost"]).is_err(), "no database, no append");
    assert!(!writer.is_writer(), "a failed append ends the writer's turn");
    assert!(writer.follow().is_err(), "the database is still down");
    assert!(writer.follow().is_err(), "and still");
    cluster.start_server();
    assert!(writer.follow().expect("the database is back"), "nobody else holds the lock: the writer takes it again");
    assert_eq!(writer.generation(), Some(2), "under a new lease generation");
    assert_eq!(writer.head(), acked, "the batch refused while the database was down is not there");
    assert_eq!(writer.records_after(acked, 100).expect("nothing after").count(), 0);
    let ack = writer.append_batch_at(3, &[b"three"]).expect("it writes again without being reopened");
    assert_eq!(ack.first_seq, 3);
    drop(writer);
    let reader = PgJournal::open_read_only(&url).expect("read");
    let all: Vec<Vec<u8>> = reader.iter_from(1).expect("read").map(|r| r.expect("sound").payload).collect();
    assert_eq!(all, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

#[test]
fn a_writer_whose_lease_was_taken_cannot_append() {
    let url = database();
    let mut old = PgJournal::open_or_create(&url, "fenced").expect("writer");
    old.append_batch_at(1, &[b"before"]).expect("append");
    // Another writer takes the lease (here by SQL, as a writer on a promoted
    // replica would, where the old session's advisory lock does not exist).
    let mut admin = Cluster::shared().connect(db_name(&url));
    admin
        .execute("UPDATE ccnode_writer SET generation = generation + 1, holder = 'the new writer'", &[])
        .expect("steal");
    match old.append_batch_at(2, &[b"after"]) {
        Err(AppendError::Fenced { generation: 1, holder }) => assert!(holder.contains("the new writer"), "{holder}"),
        other => panic!("a fenced writer must not append, got {other:?}"),
    }
    assert!(matches!(old.append_batch_at(3, &[b"again"]), Err(AppendError::Poisoned)));
    let count: i64 = admin.query_one("SELECT count(*) FROM ccnode_journal", &[]).expect("count").get(0);
    assert_eq!(count, 1, "nothing of the fenced batches was written");

    // And a writer whose connection was cut: a new writer takes the lock and
    // writes; the old one cannot write any more.
    let mut cut = PgJournal::open_or_create(
        &{
            drop(old);
            url.clone()
        },
        "fenced",
    )
    .expect("a writer again");
    let pid: i32 = admin
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'ccnode' AND datname = $1",
            &[&db_name(&url)],
        )
        .expect("its backend")
        .get(0);
    admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).expect("cut its connection");
    let mut new = PgJournal::open_or_create(&url, "fenced").expect("the lock went with the connection");
    new.append_batch_at(4, &[b"the new writer's"]).expect("the new writer appends");
    assert!(cut.append_batch_at(5, &[b"the old writer's"]).is_err(), "the cut writer cannot append");
    let rows: Vec<Vec<u8>> = admin
        .query("SELECT payload FROM ccnode_journal ORDER BY seq", &[])
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, vec![b"before".to_vec(), b"the new writer's".to_vec()]);
}

#[test]
fn a_batch_cut_off_by_a_server_crash_is_all_or_nothing() {
    let cluster = Cluster::start();
    let url = cluster.create_database("torn");
    let mut pg = PgJournal::open_or_create(&url, "torn").expect("open");
    pg.append_batch_at(1, &[b"acknowledged"]).expect("append");
    let before = pg.head();
    // A big batch in flight when the server stops as in a crash.
    let big: Vec<Vec<u8>> = (0..20_000).map(|i| vec![u8::try_from(i % 251).expect("small"); 1024]).collect();
    let writer = std::thread::spawn(move || {
        let result = pg.append_batch_at(2, &big);
        (result.map(|ack| ack.head), pg)
    });
    std::thread::sleep(Duration::from_millis(150));
    cluster.stop();
    let (result, mut pg) = writer.join().expect("writer thread");
    assert!(pg.append_batch_at(3, &[b"x"]).is_err(), "after a failed or cut write nothing more is written");
    cluster.start_server();
    let reopened = PgJournal::open_or_create(&url, "torn").expect("reopen after the crash");
    match result {
        Ok(head) => assert_eq!(reopened.head(), head, "an acknowledged batch survives the crash"),
        Err(_) => assert!(
            reopened.head() == before || reopened.head().seq == before.seq + 20_000,
            "an unacknowledged batch is wholly there or wholly absent, found head {:?}",
            reopened.head()
        ),
    }
    let sound = reopened.iter_from(1).expect("iterate").collect::<Result<Vec<_>, _>>().expect("the chain is sound");
    assert_eq!(u64::try_from(sound.len()).expect("small"), reopened.head().seq);
}

#[test]
fn rows_altered_with_sql_are_found_naming_the_seq() {
    let url = database();
    let mut pg = PgJournal::open_or_create(&url, "tamper").expect("open");
    let payloads: Vec<Vec<u8>> = (1..=30).map(payload).collect();
    pg.append_batch_at(7, &payloads).expect("append");
    drop(pg);
    let mut admin = Cluster::shared().connect(db_name(&url));
    // The table refuses changes as it is...
    let refused = admin.execute("UPDATE ccnode_journal SET payload = 'x' WHERE seq = 12", &[]);
    assert!(pgjournal::describe(&refused.expect_err("append-only")).contains("append-only"));
    assert!(admin.execute("DELETE FROM ccnode_journal WHERE seq = 30", &[]).is_err());
    assert!(admin.batch_execute("TRUNCATE ccnode_journal").is_err());

    // ...so a superuser goes around the trigger: each kind of change is found.
    let tamper = |admin: &mut postgres::Client, sql: &str| {
        admin
            .batch_execute(&format!("BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT"))
            .expect("tamper");
    };
    let first_error = |url: &str| -> ReadError {
        let pg = PgJournal::open_read_only(url).expect("open read-only");
        pg.iter_from(1).expect("iterate").find_map(Result::err).expect("the damage is found")
    };
    tamper(&mut admin, "UPDATE ccnode_journal SET payload = 'altered' WHERE seq = 12");
    match first_error(&url) {
        ReadError::Corrupt { seq: 12, kind: CorruptionKind::Hash } => {}
        other => panic!("expected seq 12's hash, got {other}"),
    }
    assert!(
        matches!(
            PgJournal::open_or_create(&url, "tamper"),
            Err(OpenError::Corrupt { seq: 12, kind: CorruptionKind::Hash })
        ),
        "a writer reads its recent records back at open and refuses a damaged one"
    );
    let reader = PgJournal::open_read_only(&url).expect("a reader opens");
    assert!(reader.range(12, 12).expect("range").next().expect("one").is_err(), "any read names it");
    drop(reader);
    tamper(&mut admin, &format!("UPDATE ccnode_journal SET payload = '\\x{}' WHERE seq = 12", hex(&payload(12))));
    assert!(PgJournal::open_read_only(&url).expect("open").iter_from(1).expect("it").all(|r| r.is_ok()), "restored");

    tamper(&mut admin, "UPDATE ccnode_journal SET recorded_at_us = 8 WHERE seq = 20");
    match first_error(&url) {
        ReadError::Corrupt { seq: 20, kind: CorruptionKind::Hash } => {}
        other => panic!("expected seq 20's hash, got {other}"),
    }
    tamper(&mut admin, "UPDATE ccnode_journal SET recorded_at_us = 7 WHERE seq = 20");

    tamper(&mut admin, "DELETE FROM ccnode_journal WHERE seq = 5");
    match first_error(&url) {
        ReadError::Corrupt { seq: 5, kind: CorruptionKind::SeqGap { found: 6 } } => {}
        other => panic!("expected a gap at seq 5, got {other}"),
    }
    tamper(&mut admin, "UPDATE ccnode_journal SET payload = 'end' WHERE seq = 30");
    assert!(
        matches!(PgJournal::open_or_create(&url, "tamper"), Err(OpenError::Corrupt { seq: 30, .. })),
        "a writer refuses a damaged last record"
    );
    // The last record deleted: the lease remembers how far the journal went.
    tamper(&mut admin, "DELETE FROM ccnode_journal WHERE seq = 30");
    for opened in [PgJournal::open_read_only(&url), PgJournal::open_or_create(&url, "tamper")] {
        match opened {
            Err(OpenError::Corrupt { seq: 30, kind: CorruptionKind::MissingRecords { head: 29 } }) => {}
            other => panic!("a journal missing its last record must be refused, got {other:?}"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
