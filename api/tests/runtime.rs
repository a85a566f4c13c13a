//! The writer runtime with a toy machine: group commit, durability before
//! answers, refusals that write nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use api::runtime::{replay_journal, Machine, Publisher, WriteError, Writer, WriterObserver, WriterState};
use api::store::{Follow, FollowError, FollowStep};
use journal::{Journal, Options};

/// A balance that may not go below zero; events are the deltas. With
/// `durable`, what is published, it resumes from the durable total after
/// records it did not decide.
struct Counter {
    total: i64,
    durable: Option<Published>,
}

/// What a publisher published: (seq, delta).
type Published = Arc<Mutex<Vec<(u64, i64)>>>;

/// Collects what was published, with seqs.
struct Collect {
    published: Arc<Mutex<Vec<(u64, i64)>>>,
}

impl Machine for Counter {
    type Command = i64;
    type Event = i64;
    type Output = i64;
    type Rejection = i64;

    fn decide(&mut self, delta: i64, _now_us: u64) -> Result<(Vec<i64>, i64), i64> {
        if self.total + delta < 0 {
            return Err(self.total);
        }
        self.total += delta;
        Ok((vec![delta], self.total))
    }

    fn encode(&self, event: &i64) -> Vec<u8> {
        event.to_le_bytes().to_vec()
    }

    fn resume(&mut self, head: &journal::Head) {
        let Some(durable) = &self.durable else { return };
        let published = durable.lock().unwrap();
        assert_eq!(published.last().map_or(0, |(seq, _)| *seq), head.seq, "resumed where the read side is");
        self.total = published.iter().map(|(_, d)| d).sum();
    }
}

impl Publisher<i64> for Collect {
    fn publish(&mut self, first_seq: u64, _head: &journal::Head, events: Vec<i64>) {
        let mut published = self.published.lock().unwrap();
        for (offset, event) in (0u64..).zip(events) {
            published.push((first_seq + offset, event));
        }
    }
}

#[derive(Default)]
struct Batches {
    batches: AtomicUsize,
    events: AtomicUsize,
}

impl WriterObserver for Batches {
    fn batch(&self, _commands: usize, events: usize, _fsync_seconds: f64, _head_seq: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_are_group_committed_and_durable_when_answered() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(dir.path(), "runtime-test", Options::default()).unwrap();
    let published = Arc::new(Mutex::new(Vec::new()));
    let observer = Arc::new(Batches::default());
    let machine = Counter { total: 0, durable: None };
    let publisher = Collect { published: Arc::clone(&published) };
    let (writer, handle) = Writer::start(machine, publisher, journal, journal::now_us, observer.clone());

    let mut tasks = Vec::new();
    for task in 0..16i64 {
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..100i64 {
                // Mostly deposits, some withdrawals that may be refused.
                let delta = if (task + i) % 5 == 0 { -7 } else { 3 };
                match handle.submit(delta).await {
                    Ok(_) => accepted.push(delta),
                    Err(WriteError::Rejected(total)) => assert!(total + delta < 0),
                    Err(other) => panic!("unexpected {other}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.extend(task.await.unwrap());
    }
    drop(handle);
    let journal = writer.join();

    let events = observer.events.load(Ordering::Relaxed);
    let batches = observer.batches.load(Ordering::Relaxed);
    assert_eq!(events, accepted.len());
    assert!(batches < events, "group commit: {batches} batches for {events} events");
    assert_eq!(published.lock().unwrap().len(), accepted.len());

    // Everything answered is in the journal, in the order it was published.
    drop(journal);
    let journal = Journal::open(dir.path(), Options::default()).unwrap();
    let mut replayed = Vec::new();
    let head = replay_journal(&journal, |record| {
        replayed.push((record.seq, i64::from_le_bytes(record.payload[..].try_into().unwrap())));
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(head, u64::try_from(accepted.len()).unwrap());
    assert_eq!(replayed, *published.lock().unwrap());
    let mut sorted_replayed: Vec<i64> = replayed.iter().map(|(_, d)| *d).collect();
    let mut sorted_accepted = accepted.clone();
    sorted_replayed.sort_unstable();
    sorted_accepted.sort_unstable();
    assert_eq!(sorted_replayed, sorted_accepted);
    // The invariant held at every step.
    let mut running = 0;
    for (_, delta) in &replayed {
        running += delta;
        assert!(running >= 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_all_decides_in_order_and_shares_batches() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(dir.path(), "runtime-test", Options::default()).unwrap();
    let published = Arc::new(Mutex::new(Vec::new()));
    let observer = Arc::new(Batches::default());
    let publisher = Collect { published: Arc::clone(&published) };
    let (writer, handle) =
        Writer::start(Counter { total: 0, durable: None }, publisher, journal, journal::now_us, observer.clone());
    let mut commands = vec![5, -3, -3];
    commands.extend(std::iter::repeat_n(1, 500));
    let answers = handle.submit_all(commands).await;
    assert_eq!(answers.len(), 503);
    assert!(matches!(answers[0], Ok(5)));
    assert!(matches!(answers[1], Ok(2)));
    assert!(matches!(answers[2], Err(WriteError::Rejected(2))), "decided after the first two");
    assert!(matches!(answers[502], Ok(502)));
    drop(handle);
    let _journal = writer.join();
    assert_eq!(published.lock().unwrap().len(), 502);
    assert!(observer.batches.load(Ordering::Relaxed) < 100, "commands sent together share batches");
}

/// Records the thread that committed each batch, with its command count.
#[derive(Default)]
struct Threads {
    batches: Mutex<Vec<(String, usize)>>,
}

impl WriterObserver for Threads {
    fn batch(&self, commands: usize, _events: usize, _fsync_seconds: f64, _head_seq: u64) {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        self.batches.lock().unwrap().push((thread, commands));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_command_is_appended_by_the_decider_and_a_crowd_by_the_appender() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(dir.path(), "runtime-test", Options::default()).unwrap();
    let published = Arc::new(Mutex::new(Vec::new()));
    let observer = Arc::new(Threads::default());
    let publisher = Collect { published: Arc::clone(&published) };
    let (writer, handle) =
        Writer::start(Counter { total: 0, durable: None }, publisher, journal, journal::now_us, observer.clone());
    // One command at a time: each finds the appender idle.
    for i in 1..=5i64 {
        assert_eq!(handle.submit(1).await.unwrap(), i);
        assert_eq!(published.lock().unwrap().len(), usize::try_from(i).unwrap(), "published before the answer");
    }
    let lone = observer.batches.lock().unwrap().clone();
    assert_eq!(lone.len(), 5);
    for (thread, commands) in &lone {
        assert_eq!((thread.as_str(), *commands), ("ccnode-decider", 1), "a lone command skips the hand-off");
    }
    // Many at once: batches of several commands go to the appender thread.
    let answers = handle.submit_all(vec![1; 2000]).await;
    assert!(answers.iter().all(Result::is_ok));
    drop(handle);
    let journal = writer.join();
    let batches = observer.batches.lock().unwrap().clone();
    let crowd = &batches[5..];
    assert_eq!(crowd.iter().map(|(_, c)| c).sum::<usize>(), 2000);
    for (thread, commands) in crowd {
        if *commands > api::runtime::INLINE_COMMANDS_MAX {
            assert_eq!(thread, "ccnode-appender", "a batch of {commands} is overlapped with the next decision");
        }
    }
    assert!(crowd.iter().any(|(thread, _)| thread == "ccnode-appender"));
    // Whichever thread appended, the journal holds every record in the order published.
    assert_eq!(journal.head().seq, 2005);
    let mut replayed = Vec::new();
    replay_journal(&journal, |record| {
        replayed.push((record.seq, i64::from_le_bytes(record.payload[..].try_into().unwrap())));
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(replayed, *published.lock().unwrap());
}

/// A journal whose appends fail while `down` is set, as a database that went
/// away: the first failing batch is written all the same when
/// `commit_anyway` is set (a commit whose answer was lost), and `follow`
/// takes it back once `down` is clear.
struct Flaky {
    inner: Journal,
    down: Arc<AtomicBool>,
    commit_anyway: Arc<AtomicBool>,
    writer: bool,
}

impl journal::Store for Flaky {
    type AppendError = std::io::Error;
    type ReadError = journal::ReadError;
    type Records<'a> = journal::RecordIter<'a>;

    fn identity(&self) -> &str {
        self.inner.identity()
    }

    fn genesis(&self) -> journal::Hash {
        self.inner.genesis()
    }

    fn head(&self) -> journal::Head {
        self.inner.head()
    }

    fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        at: u64,
        payloads: &[P],
    ) -> Result<journal::BatchAck, std::io::Error> {
        if !self.writer {
            return Err(std::io::Error::other("not the writer"));
        }
        if self.down.load(Ordering::SeqCst) {
            self.writer = false;
            if self.commit_anyway.swap(false, Ordering::SeqCst) {
                self.inner.append_batch_at(at, payloads).map_err(std::io::Error::other)?;
            }
            return Err(std::io::Error::other("the store went away"));
        }
        self.inner.append_batch_at(at, payloads).map_err(std::io::Error::other)
    }

    fn range(&self, from: u64, to: u64) -> Result<journal::RecordIter<'_>, journal::ReadError> {
        self.inner.range(from, to)
    }

    fn iter_from(&self, from: u64) -> Result<journal::RecordIter<'_>, journal::ReadError> {
        self.inner.iter_from(from)
    }
}

impl Follow for Flaky {
    fn is_writer(&self) -> bool {
        self.writer
    }

    fn can_follow(&self) -> bool {
        true
    }

    fn follow(&mut self, after: journal::Head, max: usize) -> Result<FollowStep, FollowError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(FollowError::Unreachable("still away".into()));
        }
        self.writer = true;
        let records: Vec<journal::Record> = self
            .inner
            .iter_from(after.seq + 1)
            .map_err(|e| FollowError::Diverged(e.to_string()))?
            .take(max)
            .collect::<Result<_, _>>()
            .map_err(|e| FollowError::Diverged(e.to_string()))?;
        if records.first().is_some_and(|r| r.prev_hash != after.hash) {
            return Err(FollowError::Diverged("not the chain published".into()));
        }
        let more = records.last().map_or(after.seq, |r| r.seq) < self.inner.head().seq;
        Ok(FollowStep { records, writer: true, more })
    }
}

impl Collect {
    fn fold(&mut self, records: &[journal::Record]) {
        let mut published = self.published.lock().unwrap();
        for r in records {
            published.push((r.seq, i64::from_le_bytes(r.payload[..].try_into().unwrap())));
        }
    }
}

struct Following(Collect);

impl Publisher<i64> for Following {
    fn publish(&mut self, first_seq: u64, head: &journal::Head, events: Vec<i64>) {
        self.0.publish(first_seq, head, events);
    }

    fn follow(&mut self, records: &[journal::Record]) -> Result<(), String> {
        self.0.fold(records);
        Ok(())
    }
}

/// A store that fails under the writer refuses writes while it is away
/// (`NotWriting`, with the reason), and once it is back the writer folds
/// what it holds past the last answer (here a batch whose commit was not
/// acknowledged), resumes from there and writes again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_comes_back_is_written_again_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (down, commit_anyway) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let inner = Journal::create(dir.path(), "runtime-test", Options::default()).unwrap();
    let store = Flaky { inner, down: Arc::clone(&down), commit_anyway: Arc::clone(&commit_anyway), writer: true };
    let published = Arc::new(Mutex::new(Vec::new()));
    let machine = Counter { total: 0, durable: Some(Arc::clone(&published)) };
    let publisher = Following(Collect { published: Arc::clone(&published) });
    let observer = Arc::new(Batches::default());
    let (writer, handle) = Writer::start(machine, publisher, store, journal::now_us, observer);
    assert_eq!(handle.state(), WriterState::Writing);
    for delta in [5, 7] {
        handle.submit(delta).await.expect("written");
    }

    down.store(true, Ordering::SeqCst);
    commit_anyway.store(true, Ordering::SeqCst);
    assert!(
        matches!(handle.submit(11).await, Err(WriteError::Journal(_))),
        "the batch that failed is not acknowledged"
    );
    assert!(matches!(handle.state(), WriterState::Following(_)), "{:?}", handle.state());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match handle.submit(1).await {
            Err(WriteError::NotWriting(why)) if why.contains("cannot be reached") => break,
            Err(WriteError::NotWriting(_)) => {}
            other => panic!("no write while the store is away: {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "the writer never said the store is unreachable");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(published.lock().unwrap().len(), 2, "nothing is published while the store is away");

    down.store(false, Ordering::SeqCst);
    let writing = tokio::time::timeout(std::time::Duration::from_secs(10), handle.writing());
    assert!(writing.await.expect("the writer resumes within seconds"), "the writer runs");
    assert_eq!(handle.state(), WriterState::Writing);
    assert_eq!(
        *published.lock().unwrap(),
        vec![(1, 5), (2, 7), (3, 11)],
        "the batch committed without an answer was folded from the store"
    );

    // Away again, and this time the failed batch (+100, decided) is not written.
    down.store(true, Ordering::SeqCst);
    assert!(matches!(handle.submit(100).await, Err(WriteError::Journal(_))));
    down.store(false, Ordering::SeqCst);
    let writing = tokio::time::timeout(std::time::Duration::from_secs(10), handle.writing());
    assert!(writing.await.expect("the writer resumes within seconds"), "the writer runs");
    assert_eq!(published.lock().unwrap().len(), 3, "nothing of the lost batch");
    // The machine resumed from the durable total (23), not from what it decided (123).
    assert!(matches!(handle.submit(-23).await, Ok(0)), "decided against 5 + 7 + 11");
    assert!(matches!(handle.submit(-1).await, Err(WriteError::Rejected(0))));
    drop(handle);
    let store = writer.join();
    let replayed: Vec<(u64, i64)> = store
        .inner
        .iter_from(1)
        .unwrap()
        .map(|r| r.map(|r| (r.seq, i64::from_le_bytes(r.payload[..].try_into().unwrap()))).unwrap())
        .collect();
    assert_eq!(replayed, *published.lock().unwrap(), "published is exactly what the store holds");
    assert_eq!(replayed.len(), 4);
}
