//! The node runtime: one writer thread owns the journal and the mutable state.
//!
//! Commands arrive over a bounded channel. The writer takes as many as are
//! waiting (up to `BATCH_COMMANDS_MAX`), decides each against the state left by
//! the ones before it, appends all their events with one `fdatasync` (group
//! commit), publishes them to the read side, and only then answers every
//! command of the batch. Refused commands are answered after the batch too, so
//! no answer ever depends on state that might not become durable.
//!
//! The writer is a plain thread, not a tokio task: `fdatasync` blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use journal::{Journal, Record};
use tokio::sync::{mpsc, oneshot};

/// Most commands decided and committed in one batch.
pub const BATCH_COMMANDS_MAX: usize = 1024;
/// Commands that may wait for the writer before senders are slowed down.
pub const QUEUE_COMMANDS_MAX: usize = 4096;

/// What `Machine::decide` returns: the events to record and the answer, or a refusal.
pub type Decision<M> = Result<(Vec<<M as Machine>::Event>, <M as Machine>::Output), <M as Machine>::Rejection>;

/// The state machine the writer drives. `decide` both decides and applies to
/// the writer's own state; `publish` applies durable events to the read side.
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
    /// events are already applied to the writer's state.
    fn decide(&mut self, command: Self::Command, now_us: u64) -> Decision<Self>
    where
        Self: Sized;

    /// The journal payload of an event.
    fn encode(&self, event: &Self::Event) -> Vec<u8>;

    /// Makes durable events visible to readers. `first_seq` is the journal
    /// seq of `events[0]`; all were recorded at `recorded_at_us`.
    fn publish(&mut self, first_seq: u64, recorded_at_us: u64, events: Vec<Self::Event>);
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
}

type Reply<M> = oneshot::Sender<Result<<M as Machine>::Output, WriteError<<M as Machine>::Rejection>>>;

struct Envelope<M: Machine> {
    command: M::Command,
    reply: Reply<M>,
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

    /// Whether the writer stopped after a failed journal write.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// The running writer thread.
#[derive(Debug)]
pub struct Writer {
    thread: std::thread::JoinHandle<Journal>,
}

impl Writer {
    /// Starts the writer thread. It runs until every `Handle` is dropped, then
    /// finishes the commands already queued and returns the journal.
    pub fn start<M: Machine>(
        machine: M,
        journal: Journal,
        clock: fn() -> u64,
        observer: Arc<dyn WriterObserver>,
    ) -> (Writer, Handle<M>) {
        let (sender, receiver) = mpsc::channel(QUEUE_COMMANDS_MAX);
        let failed = Arc::new(AtomicBool::new(false));
        let state = WriterState { machine, journal, receiver, clock, observer, failed: Arc::clone(&failed) };
        let thread = std::thread::Builder::new()
            .name("ccnode-writer".to_owned())
            .spawn(move || state.run())
            .expect("spawn the writer thread");
        (Writer { thread }, Handle { sender, failed })
    }

    /// Waits for the writer to finish (after all handles are dropped) and returns the journal.
    pub fn join(self) -> Journal {
        self.thread.join().expect("the writer thread does not panic")
    }
}

struct WriterState<M: Machine> {
    machine: M,
    journal: Journal,
    receiver: mpsc::Receiver<Envelope<M>>,
    clock: fn() -> u64,
    observer: Arc<dyn WriterObserver>,
    failed: Arc<AtomicBool>,
}

impl<M: Machine> WriterState<M> {
    fn run(mut self) -> Journal {
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
            self.commit(&mut batch);
        }
        self.journal
    }

    fn commit(&mut self, batch: &mut Vec<Envelope<M>>) {
        let commands = batch.len();
        let now_us = (self.clock)().max(self.journal.head().recorded_at_us);
        let mut events = Vec::new();
        let mut answers = Vec::with_capacity(commands);
        for envelope in batch.drain(..) {
            let answer = match self.machine.decide(envelope.command, now_us) {
                Ok((new_events, output)) => {
                    events.extend(new_events);
                    Ok(output)
                }
                Err(rejection) => Err(WriteError::Rejected(rejection)),
            };
            answers.push((envelope.reply, answer));
        }
        if !events.is_empty() {
            let payloads: Vec<Vec<u8>> = events.iter().map(|e| self.machine.encode(e)).collect();
            let started = Instant::now();
            match self.journal.append_batch_at(now_us, &payloads) {
                Ok(ack) => {
                    let fsync_seconds = started.elapsed().as_secs_f64();
                    let count = events.len();
                    assert_eq!(ack.head.seq - ack.first_seq + 1, u64::try_from(count).expect("usize fits u64"));
                    self.machine.publish(ack.first_seq, ack.head.recorded_at_us, events);
                    self.observer.batch(commands, count, fsync_seconds, ack.head.seq);
                }
                Err(error) => {
                    // The writer's state now holds events that may not be on disk: stop
                    // writing. A restart rebuilds the state from the journal.
                    tracing::error!(%error, "journal write failed; the node stops accepting writes until restarted");
                    self.failed.store(true, Ordering::Release);
                    for (reply, answer) in answers {
                        let failure = match answer {
                            Ok(_) => Err(WriteError::Journal(error.to_string())),
                            Err(rejected) => Err(rejected),
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
pub fn replay_journal<E>(
    journal: &Journal,
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
