//! The node runtime: one writer owns the journal and the mutable state.
//!
//! Commands arrive over a bounded channel. The *decider* thread takes as many
//! as are waiting (up to `BATCH_COMMANDS_MAX`), decides each against the state
//! left by the ones before it, and hands the batch to the *appender* thread,
//! which appends all its events with one `fdatasync` (group commit), publishes
//! them to the read side, and only then answers every command of the batch.
//! While the appender syncs batch n the decider already decides batch n+1, so
//! the CPU work overlaps the disk wait. Batches reach the disk, the read side
//! and the clients strictly in order; refused commands are answered after
//! their batch too, so no answer ever depends on state that might not become
//! durable. If an append fails, every later batch is refused: the state they
//! were decided against may not be on disk, and a restart rebuilds it.
//!
//! Both are plain threads, not tokio tasks: `fdatasync` blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use journal::{Record, Store};

use crate::store::NodeStore;
use tokio::sync::{mpsc, oneshot};

/// Most commands decided and committed in one batch.
pub const BATCH_COMMANDS_MAX: usize = 1024;
/// Commands that may wait for the writer before senders are slowed down.
pub const QUEUE_COMMANDS_MAX: usize = 4096;
/// Decided batches that may wait for the appender (one syncing, this many queued).
pub const DECIDED_BATCHES_MAX: usize = 1;

/// What `Machine::decide` returns: the events to record and the answer, or a refusal.
pub type Decision<M> = Result<(Vec<<M as Machine>::Event>, <M as Machine>::Output), <M as Machine>::Rejection>;

/// The state machine the decider drives. `decide` both decides and applies
/// to the machine's own state.
pub trait Machine: Send + 'static {
    /// A request to change the ledger.
    type Command: Send + 'static;
    /// What the journal records.
    type Event: Send + 'static;
    /// What a successful command answers.
    type Output: Send + 'static;
    /// Why a command was refused (it changed nothing).
    type Rejection: Send + 'static;

    /// Decides `command` at `now_us` against the current state; on success the
    /// events are already applied to the machine's state.
    fn decide(&mut self, command: Self::Command, now_us: u64) -> Decision<Self>
    where
        Self: Sized;

    /// The journal payload of an event.
    fn encode(&self, event: &Self::Event) -> Vec<u8>;

    /// Told of each payload right after its command was decided, in journal
    /// order, with the time its batch will be recorded at: a machine that
    /// follows the hash chain (the Merkle tree over it) predicts each
    /// record's hash here, before the batch is on disk.
    fn encoded(&mut self, _payload: &[u8], _now_us: u64) {}

    /// The hash the journal's head will have once every payload told to
    /// `encoded` is appended, if the machine predicts it; the appender checks it.
    fn predicted_head(&self) -> Option<[u8; 32]> {
        None
    }
}

/// Makes durable events visible to readers, on the appender thread.
pub trait Publisher<E>: Send + 'static {
    /// `first_seq` is the journal seq of `events[0]`; `head` is the batch's
    /// last record (all were recorded at `head.recorded_at_us`).
    fn publish(&mut self, first_seq: u64, head: &journal::Head, events: Vec<E>);

    /// The machine predicted another head hash than the journal wrote (a
    /// bug): whatever relies on the prediction must stop trusting it.
    fn prediction_failed(&mut self, _seq: u64) {}
}

/// Why a command got no decision.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<R> {
    /// The ledger refused the command; nothing was written.
    #[error("refused")]
    Rejected(R),
    /// The journal could not make the batch durable; the node stops writing until restarted.
    #[error("journal write failed: {0}")]
    Journal(String),
    /// The writer is not running (shutting down, or stopped after a failure).
    #[error("the ledger writer is not running")]
    Unavailable,
    /// The node started read-only (its journal holds a record the read model
    /// cannot fold); the reason names the record.
    #[error("{0}")]
    ReadOnly(String),
}

type Answer<M> = Result<<M as Machine>::Output, WriteError<<M as Machine>::Rejection>>;
type Reply<M> = oneshot::Sender<Answer<M>>;

struct Envelope<M: Machine> {
    command: M::Command,
    reply: Reply<M>,
}

/// A decided batch on its way to the disk.
struct Decided<M: Machine> {
    now_us: u64,
    commands: usize,
    events: Vec<M::Event>,
    payloads: Vec<Vec<u8>>,
    answers: Vec<(Reply<M>, Answer<M>)>,
    predicted_head: Option<[u8; 32]>,
}

/// Observations of the writer, for metrics.
pub trait WriterObserver: Send + Sync + 'static {
    /// A batch was committed: commands in it, events appended, fsync time, new head seq.
    fn batch(&self, commands: usize, events: usize, fsync_seconds: f64, head_seq: u64);
}

/// Sends commands to the writer. Cheap to clone.
pub struct Handle<M: Machine> {
    sender: mpsc::Sender<Envelope<M>>,
    failed: Arc<AtomicBool>,
}

impl<M: Machine> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle { sender: self.sender.clone(), failed: Arc::clone(&self.failed) }
    }
}

impl<M: Machine> std::fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("failed", &self.failed.load(Ordering::Relaxed)).finish()
    }
}

impl<M: Machine> Handle<M> {
    /// Submits a command and waits until it is durable (or refused).
    pub async fn submit(&self, command: M::Command) -> Result<M::Output, WriteError<M::Rejection>> {
        if self.failed.load(Ordering::Acquire) {
            return Err(WriteError::Unavailable);
        }
        let (reply, answer) = oneshot::channel();
        self.sender.send(Envelope { command, reply }).await.map_err(|_| WriteError::Unavailable)?;
        answer.await.unwrap_or(Err(WriteError::Unavailable))
    }

    /// Submits commands in order without waiting between them, so they share
    /// batches, and waits for every answer. Later commands are decided after
    /// earlier ones, exactly as if submitted one by one.
    pub async fn submit_all(&self, commands: Vec<M::Command>) -> Vec<Result<M::Output, WriteError<M::Rejection>>> {
        let mut answers = Vec::with_capacity(commands.len());
        let mut waiting = Vec::with_capacity(commands.len());
        for command in commands {
            if self.failed.load(Ordering::Acquire) {
                break;
            }
            let (reply, answer) = oneshot::channel();
            if self.sender.send(Envelope { command, reply }).await.is_err() {
                break;
            }
            waiting.push(answer);
        }
        for answer in waiting {
            answers.push(answer.await.unwrap_or(Err(WriteError::Unavailable)));
        }
        answers
    }

    /// Whether the writer stopped after a failed journal write.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// The running writer threads, appending to a store `S` (the node's is
/// whichever backend it was started on).
#[derive(Debug)]
pub struct Writer<S = NodeStore> {
    decider: std::thread::JoinHandle<()>,
    appender: std::thread::JoinHandle<S>,
}

impl<S: Store + 'static> Writer<S> {
    /// Starts the writer. It runs until every `Handle` is dropped, then
    /// finishes the commands already queued and returns the journal.
    pub fn start<M: Machine, P: Publisher<M::Event>>(
        machine: M,
        publisher: P,
        journal: S,
        clock: fn() -> u64,
        observer: Arc<dyn WriterObserver>,
    ) -> (Writer<S>, Handle<M>) {
        let (sender, receiver) = mpsc::channel(QUEUE_COMMANDS_MAX);
        let (to_appender, from_decider) = std::sync::mpsc::sync_channel(DECIDED_BATCHES_MAX);
        let failed = Arc::new(AtomicBool::new(false));
        let decider = Decider {
            machine,
            receiver,
            clock,
            last_us: journal.head().recorded_at_us,
            failed: Arc::clone(&failed),
            to_appender,
        };
        let appender = Appender { journal, publisher, observer, failed: Arc::clone(&failed), from_decider };
        let decider = std::thread::Builder::new()
            .name("ccnode-decider".to_owned())
            .spawn(move || decider.run())
            .expect("spawn the decider thread");
        let appender = std::thread::Builder::new()
            .name("ccnode-appender".to_owned())
            .spawn(move || appender.run())
            .expect("spawn the appender thread");
        (Writer { decider, appender }, Handle { sender, failed })
    }

    /// Waits for the writer to finish (after all handles are dropped) and returns the journal.
    pub fn join(self) -> S {
        self.decider.join().expect("the decider thread does not panic");
        self.appender.join().expect("the appender thread does not panic")
    }
}

struct Decider<M: Machine> {
    machine: M,
    receiver: mpsc::Receiver<Envelope<M>>,
    clock: fn() -> u64,
    last_us: u64,
    failed: Arc<AtomicBool>,
    to_appender: std::sync::mpsc::SyncSender<Decided<M>>,
}

impl<M: Machine> Decider<M> {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH_COMMANDS_MAX);
        while let Some(first) = self.receiver.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_COMMANDS_MAX {
                match self.receiver.try_recv() {
                    Ok(envelope) => batch.push(envelope),
                    Err(_) => break,
                }
            }
            if self.failed.load(Ordering::Acquire) {
                for envelope in batch.drain(..) {
                    let _ = envelope.reply.send(Err(WriteError::Unavailable));
                }
                continue;
            }
            // Timestamps never go backwards, whatever the clock does.
            let now_us = (self.clock)().max(self.last_us);
            self.last_us = now_us;
            let commands = batch.len();
            let mut events = Vec::new();
            let mut payloads = Vec::new();
            let mut answers = Vec::with_capacity(commands);
            for envelope in batch.drain(..) {
                let answer = match self.machine.decide(envelope.command, now_us) {
                    Ok((new_events, output)) => {
                        for event in &new_events {
                            let payload = self.machine.encode(event);
                            self.machine.encoded(&payload, now_us);
                            payloads.push(payload);
                        }
                        events.extend(new_events);
                        Ok(output)
                    }
                    Err(rejection) => Err(WriteError::Rejected(rejection)),
                };
                answers.push((envelope.reply, answer));
            }
            let predicted_head = self.machine.predicted_head();
            let decided = Decided { now_us, commands, events, payloads, answers, predicted_head };
            if let Err(std::sync::mpsc::SendError(decided)) = self.to_appender.send(decided) {
                // The appender is gone (it only stops when this thread does): answer no.
                for (reply, _) in decided.answers {
                    let _ = reply.send(Err(WriteError::Unavailable));
                }
            }
        }
    }
}

struct Appender<M: Machine, P, S> {
    journal: S,
    publisher: P,
    observer: Arc<dyn WriterObserver>,
    failed: Arc<AtomicBool>,
    from_decider: std::sync::mpsc::Receiver<Decided<M>>,
}

impl<M: Machine, P: Publisher<M::Event>, S: Store> Appender<M, P, S> {
    fn run(mut self) -> S {
        while let Ok(decided) = self.from_decider.recv() {
            self.commit(decided);
        }
        self.journal
    }

    fn commit(&mut self, decided: Decided<M>) {
        let Decided { now_us, commands, events, payloads, answers, predicted_head } = decided;
        if self.failed.load(Ordering::Acquire) {
            // Decided against state that includes a batch that never became durable.
            for (reply, _) in answers {
                let _ = reply.send(Err(WriteError::Unavailable));
            }
            return;
        }
        if !events.is_empty() {
            let started = Instant::now();
            match self.journal.append_batch_at(now_us, &payloads) {
                Ok(ack) => {
                    let fsync_seconds = started.elapsed().as_secs_f64();
                    let count = events.len();
                    assert_eq!(ack.head.seq - ack.first_seq + 1, u64::try_from(count).expect("usize fits u64"));
                    if predicted_head.is_some_and(|h| h != ack.head.hash.0) {
                        tracing::error!(seq = ack.head.seq, "the predicted journal hash differs from the one written");
                        self.publisher.prediction_failed(ack.head.seq);
                    }
                    self.publisher.publish(ack.first_seq, &ack.head, events);
                    self.observer.batch(commands, count, fsync_seconds, ack.head.seq);
                }
                Err(error) => {
                    // The decider's state now holds events that may not be on disk: stop
                    // writing. A restart rebuilds the state from the journal.
                    tracing::error!(%error, "journal write failed; the node stops accepting writes until restarted");
                    self.failed.store(true, Ordering::Release);
                    for (reply, answer) in answers {
                        let failure = match answer {
                            Ok(_) => Err(WriteError::Journal(error.to_string())),
                            Err(_) => Err(WriteError::Unavailable),
                        };
                        let _ = reply.send(failure);
                    }
                    return;
                }
            }
        }
        for (reply, answer) in answers {
            // A caller that gave up waiting is no reason to stop.
            let _ = reply.send(answer);
        }
    }
}

/// Replays every record of `journal` through `apply`, in order: how the
/// writer's state and the read side are rebuilt at start.
pub fn replay_journal<S: Store, E>(
    journal: &S,
    mut apply: impl FnMut(&Record) -> Result<(), E>,
) -> Result<u64, ReplayError<E>> {
    let head = journal.head().seq;
    if head == 0 {
        return Ok(0);
    }
    for record in journal.iter_from(1).map_err(|e| ReplayError::Journal(e.to_string()))? {
        let record = record.map_err(|e| ReplayError::Journal(e.to_string()))?;
        apply(&record).map_err(|e| ReplayError::Apply { seq: record.seq, error: e })?;
    }
    Ok(head)
}

/// Failure to rebuild state from the journal.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    /// A record could not be read.
    #[error("reading the journal: {0}")]
    Journal(String),
    /// A record could not be applied.
    #[error("applying journal record {seq} failed")]
    Apply {
        /// The record.
        seq: u64,
        /// Why.
        error: E,
    },
}
