//! The writer runtime with a toy machine: group commit, durability before
//! answers, refusals that write nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use api::runtime::{replay_journal, Machine, Publisher, WriteError, Writer, WriterObserver};
use journal::{Journal, Options};

/// A balance that may not go below zero; events are the deltas.
struct Counter {
    total: i64,
}

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
    let machine = Counter { total: 0 };
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
    let (writer, handle) = Writer::start(Counter { total: 0 }, publisher, journal, journal::now_us, observer.clone());
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
