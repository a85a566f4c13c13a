//! The node runtime: one writer owns the journal and the mutable state.
//!
//! Commands arrive over a bounded channel. The *decider* thread takes as many
//! as are waiting (up to `BATCH_COMMANDS_MAX`), decides each against the state
//! left by the ones before it, and hands the batch to the *appender* thread,
//! which appends all its events with one `fdatasync` (group commit), publishes
//! them to the read side, and only then answers every command of the batch.
//! While the appender syncs batch n the decider already decides batch n+1, so
//! the CPU work overlaps the disk wait. A small batch (at most
//! `INLINE_COMMANDS_MAX` commands) that finds no batch in the appender's hands
//! is appended by the decider itself, on its own thread: there is nothing to
//! overlap then, and a lone payment is spared a thread hand-off (a wake-up of
//! the appender, a VM exit on this machine) on its way to the disk. Batches reach the disk, the read side
//! and the clients strictly in order; refused commands are answered after
//! their batch too, so no answer ever depends on state that might not become
//! durable. If an append fails, every later batch is refused: the state they
//! were decided against may not be on disk.
//!
//! Not writing ([`WriterState::Following`]): a standby whose store another
//! node writes, or a writer whose store failed an append and can be taken
//! back (a database, [`Follow`]). Writes are refused then, and every
//! `FOLLOW_POLL` the appender asks the store for the records after the last
//! one published, checked against it, folds them into the read side, and
//! tries to become the writer; once it is and has folded the whole tail, it
//! tells the decider to forget what it decided that never became durable
//! (`Machine::resume`) and writing goes on, without a restart. Segment files
//! cannot be taken back: a failed append stops the writer until restart
//! ([`WriterState::Stopped`]).
//!
//! Both are plain threads, not tokio tasks: `fdatasync` blocks.
//!
//! The deterministic simulator (`sim/`, issue 13) runs the same decider and
//! appender code inline instead ([`Writer::start_inline`]): `submit` decides,
//! appends and publishes its batch in the caller's task, so a single-threaded
//! runtime with a paused clock orders every write by the seed alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use journal::{Head, Record, Store};

use crate::store::{Follow, FollowError, NodeStore};
use tokio::sync::{mpsc, oneshot, watch};

/// Most commands decided and committed in one batch.
pub const BATCH_COMMANDS_MAX: usize = 1024;
/// Commands that may wait for the writer before senders are slowed down.
pub const QUEUE_COMMANDS_MAX: usize = 4096;
/// Decided batches that may wait for the appender (one syncing, this many queued).
pub const DECIDED_BATCHES_MAX: usize = 1;
/// Most commands in a batch the decider appends itself when the appender
/// has none in hand (larger ones go to the appender so that the next batch
/// is decided while this one syncs).
pub const INLINE_COMMANDS_MAX: usize = 1;
/// How often a writer that does not write asks its store for new records
/// and for the writer's lease.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Most records folded per step while following (then the next step at once).
pub const FOLLOW_CHUNK_RECORDS: usize = 4096;

/// Where the decider reads the time (unix µs): `journal::now_us` in
/// production, the simulated clock in the simulator.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

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

    /// Writing resumes after `head`: the read side holds every record up to
    /// it, some of which this machine did not decide (another node's, or a
    /// batch of its own whose append failed but committed), and what it
    /// decided that never became durable is gone. Called on the decider
    /// thread before the first decision after a take-over or a recovery.
    fn resume(&mut self, _head: &Head) {}
}

/// Makes durable events visible to readers, on the appender thread.
pub trait Publisher<E>: Send + 'static {
    /// `first_seq` is the journal seq of `events[0]`; `head` is the batch's
    /// last record (all were recorded at `head.recorded_at_us`).
    fn publish(&mut self, first_seq: u64, head: &Head, events: Vec<E>);

    /// The machine predicted another head hash than the journal wrote (a
    /// bug): whatever relies on the prediction must stop trusting it.
    fn prediction_failed(&mut self, _seq: u64) {}

    /// Folds records read from the store while not writing (each checked
    /// against the chain from the last one published); an error stops the
    /// writer for good.
    fn follow(&mut self, _records: &[Record]) -> Result<(), String> {
        Err("this node cannot fold records it did not write".to_owned())
    }

    /// An append failed after `acked`, the last record published: whatever
    /// the machine predicted past it will not be.
    fn writer_stopped(&mut self, _acked: &Head) {}
}

/// What the writer does now (`Handle::state`, `GET /admin/health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterState {
    /// Deciding and appending.
    Writing,
    /// Not writing, and folding what the store holds until it can: another
    /// node writes the journal (a standby), or the store failed and is being
    /// reconnected. Says why.
    Following(String),
    /// Not writing until restarted: a failed append on a store that cannot
    /// be taken back, or a store that no longer holds what was acknowledged.
    Stopped(String),
}

impl WriterState {
    /// A short name: `writing`, `following` or `stopped`.
    pub fn name(&self) -> &'static str {
        match self {
            WriterState::Writing => "writing",
            WriterState::Following(_) => "following",
            WriterState::Stopped(_) => "stopped",
        }
    }

    /// Why writes are refused (`None` while writing).
    pub fn reason(&self) -> Option<&str> {
        match self {
            WriterState::Writing => None,
            WriterState::Following(why) | WriterState::Stopped(why) => Some(why),
        }
    }
}

/// The state, with the epoch of writing it belongs to: every take-over or
/// recovery starts a new epoch, and batches decided in an older one are refused.
#[derive(Debug, Clone)]
struct Status {
    state: WriterState,
    epoch: u64,
}

/// Why a command got no decision.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<R> {
    /// The ledger refused the command; nothing was written.
    #[error("refused")]
    Rejected(R),
    /// The journal could not make the batch durable: whether it holds the
    /// batch is unknown until the store is read again.
    #[error("journal write failed: {0}")]
    Journal(String),
    /// The writer is not running (shutting down).
    #[error("the ledger writer is not running")]
    Unavailable,
    /// The node started read-only (its journal holds a record the read model
    /// cannot fold); the reason names the record.
    #[error("{0}")]
    ReadOnly(String),
    /// The writer does not write at the moment ([`WriterState::Following`]
    /// or [`WriterState::Stopped`]); the reason says why.
    #[error("{0}")]
    NotWriting(String),
}

type Answer<M> = Result<<M as Machine>::Output, WriteError<<M as Machine>::Rejection>>;
type Reply<M> = oneshot::Sender<Answer<M>>;

struct Envelope<M: Machine> {
    command: M::Command,
    reply: Reply<M>,
}

/// A decided batch on its way to the disk.
struct Decided<M: Machine> {
    epoch: u64,
    now_us: u64,
    commands: usize,
    events: Vec<M::Event>,
    payloads: Vec<Vec<u8>>,
    answers: Vec<(Reply<M>, Answer<M>)>,
    predicted_head: Option<[u8; 32]>,
}

/// Writing resumes in `epoch` after `head`: from the appender to the decider.
#[derive(Debug, Clone, Copy)]
struct Resume {
    epoch: u64,
    head: Head,
}

/// Observations of the writer, for metrics.
pub trait WriterObserver: Send + Sync + 'static {
    /// A batch was committed: commands in it, events appended, fsync time, new head seq.
    fn batch(&self, commands: usize, events: usize, fsync_seconds: f64, head_seq: u64);

    /// Records were folded from the store while not writing; the head is now `head_seq`.
    fn followed(&self, _records: usize, _head_seq: u64) {}
}

/// Sends commands to the writer. Cheap to clone.
pub struct Handle<M: Machine> {
    route: Route<M>,
    status: watch::Receiver<Status>,
}

/// How a command reaches the writer.
enum Route<M: Machine> {
    /// Over the channel to the decider thread.
    Threads(mpsc::Sender<Envelope<M>>),
    /// Decided and committed in the caller's task ([`Writer::start_inline`]).
    Inline(Arc<std::sync::Mutex<dyn Step<M>>>),
}

impl<M: Machine> Clone for Route<M> {
    fn clone(&self) -> Self {
        match self {
            Route::Threads(sender) => Route::Threads(sender.clone()),
            Route::Inline(step) => Route::Inline(Arc::clone(step)),
        }
    }
}

/// One batch through the decider and the appender, without threads.
trait Step<M: Machine>: Send {
    fn step(&mut self, batch: Vec<Envelope<M>>);
}

impl<M: Machine> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle { route: self.route.clone(), status: self.status.clone() }
    }
}

impl<M: Machine> std::fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("state", &self.status.borrow().state).finish()
    }
}

impl<M: Machine> Handle<M> {
    /// Submits a command and waits until it is durable (or refused).
    pub async fn submit(&self, command: M::Command) -> Result<M::Output, WriteError<M::Rejection>> {
        self.refused()?;
        let (reply, answer) = oneshot::channel();
        match &self.route {
            Route::Threads(sender) => {
                sender.send(Envelope { command, reply }).await.map_err(|_| WriteError::Unavailable)?;
            }
            Route::Inline(step) => lock_step(step).step(vec![Envelope { command, reply }]),
        }
        answer.await.unwrap_or(Err(WriteError::Unavailable))
    }

    /// Submits commands in order without waiting between them, so they share
    /// batches, and waits for every answer. Later commands are decided after
    /// earlier ones, exactly as if submitted one by one.
    pub async fn submit_all(&self, commands: Vec<M::Command>) -> Vec<Result<M::Output, WriteError<M::Rejection>>> {
        let mut answers = Vec::with_capacity(commands.len());
        let mut waiting = Vec::with_capacity(commands.len());
        match &self.route {
            Route::Inline(step) => {
                if self.refused().is_ok() {
                    let mut batch = Vec::with_capacity(commands.len());
                    for command in commands {
                        let (reply, answer) = oneshot::channel();
                        batch.push(Envelope { command, reply });
                        waiting.push(answer);
                    }
                    lock_step(step).step(batch);
                }
            }
            Route::Threads(sender) => {
                for command in commands {
                    if self.refused().is_err() {
                        break;
                    }
                    let (reply, answer) = oneshot::channel();
                    if sender.send(Envelope { command, reply }).await.is_err() {
                        break;
                    }
                    waiting.push(answer);
                }
            }
        }
        for answer in waiting {
            answers.push(answer.await.unwrap_or(Err(WriteError::Unavailable)));
        }
        answers
    }

    fn refused(&self) -> Result<(), WriteError<M::Rejection>> {
        match self.status.borrow().state.reason() {
            None => Ok(()),
            Some(why) => Err(WriteError::NotWriting(why.to_owned())),
        }
    }

    /// What the writer does now.
    pub fn state(&self) -> WriterState {
        self.status.borrow().state.clone()
    }

    /// Resolves to `true` once the writer writes (at once if it does), or to
    /// `false` when it has stopped running. Holds no sender: waiting does not
    /// keep the writer from shutting down.
    pub fn writing(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let mut status = self.status.clone();
        async move { status.wait_for(|s| s.state == WriterState::Writing).await.is_ok() }
    }
}

fn lock_step<'a, M: Machine>(
    step: &'a std::sync::Mutex<dyn Step<M> + 'static>,
) -> std::sync::MutexGuard<'a, dyn Step<M> + 'static> {
    // A poisoned lock still holds a consistent writer: a panic in a step
    // aborts a release build, and a test's panic ends the test.
    step.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running writer threads, appending to a store `S` (the node's is
/// whichever backend it was started on), or the inline writer.
pub struct Writer<S = NodeStore> {
    kind: WriterKind<S>,
}

enum WriterKind<S> {
    Threads {
        decider: std::thread::JoinHandle<()>,
        /// The appender thread gives back the appender it shared with the decider.
        appender: std::thread::JoinHandle<Box<dyn FnOnce() -> Option<S> + Send>>,
    },
    /// Gives the journal back once every handle is gone.
    Inline(Box<dyn FnOnce() -> Option<S> + Send>),
}

impl<S> std::fmt::Debug for Writer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            WriterKind::Threads { .. } => "threads",
            WriterKind::Inline(_) => "inline",
        };
        f.debug_struct("Writer").field("kind", &kind).finish()
    }
}

/// The decider and the appender of an inline writer.
struct Inline<M: Machine, P, S> {
    decider: Decider<M>,
    appender: Appender<M, P, S>,
}

impl<M: Machine, P: Publisher<M::Event>, S: Follow + 'static> Step<M> for Inline<M, P, S> {
    fn step(&mut self, mut batch: Vec<Envelope<M>>) {
        if let Some(decided) = self.decider.decide_batch(&mut batch) {
            self.appender.commit(decided);
        }
    }
}

impl<S: Follow + 'static> Writer<S> {
    /// Starts the writer. It runs until every `Handle` is dropped, then
    /// finishes the commands already queued and returns the journal. The
    /// publisher has published every record up to the journal's head; a
    /// journal that is not the writer (a standby's) starts following.
    pub fn start<M: Machine, P: Publisher<M::Event>>(
        machine: M,
        publisher: P,
        journal: S,
        clock: fn() -> u64,
        observer: Arc<dyn WriterObserver>,
    ) -> (Writer<S>, Handle<M>) {
        Writer::start_with(machine, publisher, journal, Arc::new(clock), observer, false)
    }

    /// As [`Writer::start`] without threads: each `submit` decides, appends
    /// and publishes its batch in the caller's task (the simulator's
    /// deterministic writer). A journal that is not the writer is refused
    /// writes for good (an inline writer does not follow).
    pub fn start_inline<M: Machine, P: Publisher<M::Event>>(
        machine: M,
        publisher: P,
        journal: S,
        clock: Clock,
        observer: Arc<dyn WriterObserver>,
    ) -> (Writer<S>, Handle<M>) {
        Writer::start_with(machine, publisher, journal, clock, observer, true)
    }

    /// [`Writer::start`] with any clock, on threads or inline.
    pub fn start_with<M: Machine, P: Publisher<M::Event>>(
        machine: M,
        publisher: P,
        journal: S,
        clock: Clock,
        observer: Arc<dyn WriterObserver>,
        inline: bool,
    ) -> (Writer<S>, Handle<M>) {
        let (sender, receiver) = mpsc::channel(QUEUE_COMMANDS_MAX);
        let (to_appender, from_decider) = std::sync::mpsc::sync_channel(DECIDED_BATCHES_MAX);
        let (resumes, resumed) = std::sync::mpsc::channel();
        let state = if journal.is_writer() { WriterState::Writing } else { WriterState::Following(STANDBY.to_owned()) };
        let (status, status_rx) = watch::channel(Status { state, epoch: 0 });
        let decider = Decider {
            machine,
            receiver,
            clock,
            last_us: journal.head().recorded_at_us,
            status: status_rx.clone(),
            epoch: 0,
            resumed,
            to_appender,
        };
        let acked = journal.head();
        let appender = Appender {
            journal,
            publisher,
            observer,
            status,
            resumes,
            epoch: 0,
            acked,
            unreachable: false,
            machine: std::marker::PhantomData,
        };
        if inline {
            drop(sender);
            let inline = Arc::new(std::sync::Mutex::new(Inline { decider, appender }));
            let step: Arc<std::sync::Mutex<dyn Step<M>>> = inline.clone();
            let join = Box::new(move || {
                let inline = Arc::try_unwrap(inline).ok()?;
                Some(inline.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).appender.journal)
            });
            return (
                Writer { kind: WriterKind::Inline(join) },
                Handle { route: Route::Inline(step), status: status_rx },
            );
        }
        let shared = Shared { appender: Arc::new(std::sync::Mutex::new(appender)), in_flight: Arc::default() };
        let for_decider = shared.clone();
        let decider = std::thread::Builder::new()
            .name("ccnode-decider".to_owned())
            .spawn(move || decider.run(&for_decider))
            .expect("spawn the decider thread");
        let appender = std::thread::Builder::new()
            .name("ccnode-appender".to_owned())
            .spawn(move || {
                let appender = Appender::run(shared, from_decider);
                let join: Box<dyn FnOnce() -> Option<S> + Send> = Box::new(move || {
                    let appender = Arc::try_unwrap(appender).ok()?;
                    Some(appender.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).journal)
                });
                join
            })
            .expect("spawn the appender thread");
        (
            Writer { kind: WriterKind::Threads { decider, appender } },
            Handle { route: Route::Threads(sender), status: status_rx },
        )
    }

    /// Waits for the writer to finish (after all handles are dropped) and returns the journal.
    ///
    /// # Panics
    /// An inline writer whose handles are not all dropped yet.
    pub fn join(self) -> S {
        match self.kind {
            WriterKind::Threads { decider, appender } => {
                decider.join().expect("the decider thread does not panic");
                let join = appender.join().expect("the appender thread does not panic");
                // Both threads have ended: the appender is no longer shared.
                join().expect("the decider thread let go of the appender")
            }
            WriterKind::Inline(join) => join().expect("every handle of an inline writer is dropped before join"),
        }
    }
}

/// Why a standby refuses writes.
const STANDBY: &str =
    "this node is a standby: another node writes the journal; it takes over when that node's lock is released";

struct Decider<M: Machine> {
    machine: M,
    receiver: mpsc::Receiver<Envelope<M>>,
    clock: Clock,
    last_us: u64,
    status: watch::Receiver<Status>,
    /// The epoch this machine's state belongs to.
    epoch: u64,
    resumed: std::sync::mpsc::Receiver<Resume>,
    /// A batch for the appender thread, or `None`: look at the state again.
    to_appender: std::sync::mpsc::SyncSender<Option<Decided<M>>>,
}

/// The appender, shared by the decider thread (which appends small batches
/// itself when the appender has none in hand) and the appender thread.
struct Shared<M: Machine, P, S> {
    appender: Arc<std::sync::Mutex<Appender<M, P, S>>>,
    /// Batches sent to the appender thread and not yet committed. Only the
    /// decider raises it; the appender lowers it, holding the appender's
    /// lock, once a batch is committed, so a decider that reads 0 and then
    /// takes the lock appends after every batch sent before.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl<M: Machine, P, S> Clone for Shared<M, P, S> {
    fn clone(&self) -> Self {
        Shared { appender: Arc::clone(&self.appender), in_flight: Arc::clone(&self.in_flight) }
    }
}

fn lock_appender<M: Machine, P, S>(
    appender: &std::sync::Mutex<Appender<M, P, S>>,
) -> std::sync::MutexGuard<'_, Appender<M, P, S>> {
    // As `lock_step`: a panic while appending aborts a release build.
    appender.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<M: Machine> Decider<M> {
    fn run<P: Publisher<M::Event>, S: Follow>(mut self, shared: &Shared<M, P, S>) {
        use std::sync::atomic::Ordering;
        let mut batch = Vec::with_capacity(BATCH_COMMANDS_MAX);
        while let Some(first) = self.receiver.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_COMMANDS_MAX {
                match self.receiver.try_recv() {
                    Ok(envelope) => batch.push(envelope),
                    Err(_) => break,
                }
            }
            let Some(decided) = self.decide_batch(&mut batch) else { continue };
            if decided.commands <= INLINE_COMMANDS_MAX && shared.in_flight.load(Ordering::Acquire) == 0 {
                // Nothing to overlap: append it here rather than wake the appender.
                lock_appender(&shared.appender).commit(decided);
                if self.status.borrow().state != WriterState::Writing {
                    // The append failed: the appender thread, waiting for a
                    // batch, must start following the store. A full channel
                    // holds a batch that wakes it all the same.
                    let _ = self.to_appender.try_send(None);
                }
                continue;
            }
            shared.in_flight.fetch_add(1, Ordering::AcqRel);
            if let Err(std::sync::mpsc::SendError(decided)) = self.to_appender.send(Some(decided)) {
                let Some(decided) = decided else { unreachable!("a batch was sent") };
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                // The appender is gone (it only stops when this thread does): answer no.
                for (reply, _) in decided.answers {
                    let _ = reply.send(Err(WriteError::Unavailable));
                }
            }
        }
    }

    /// Decides `batch` (emptying it) against the state left by the ones
    /// before; `None` when the writer does not write (every command is
    /// answered so already).
    fn decide_batch(&mut self, batch: &mut Vec<Envelope<M>>) -> Option<Decided<M>> {
        {
            // The status first: the appender sends a resume before it says
            // it writes, so one that says so finds the resume below.
            let status = self.status.borrow().clone();
            for resume in self.resumed.try_iter() {
                self.machine.resume(&resume.head);
                self.epoch = resume.epoch;
                self.last_us = self.last_us.max(resume.head.recorded_at_us);
            }
            if status.state != WriterState::Writing || status.epoch != self.epoch {
                let why = status.state.reason().unwrap_or("the writer is resuming").to_owned();
                for envelope in batch.drain(..) {
                    let _ = envelope.reply.send(Err(WriteError::NotWriting(why.clone())));
                }
                return None;
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
            Some(Decided { epoch: self.epoch, now_us, commands, events, payloads, answers, predicted_head })
        }
    }
}

struct Appender<M: Machine, P, S> {
    journal: S,
    publisher: P,
    observer: Arc<dyn WriterObserver>,
    status: watch::Sender<Status>,
    resumes: std::sync::mpsc::Sender<Resume>,
    /// The epoch batches must have been decided in to be appended.
    epoch: u64,
    /// The last record published to the read side.
    acked: Head,
    /// Whether the store's being unreachable was logged (once per outage).
    unreachable: bool,
    /// The machine whose batches it commits.
    machine: std::marker::PhantomData<fn(M)>,
}

impl<M: Machine, P: Publisher<M::Event>, S: Follow> Appender<M, P, S> {
    /// The appender thread: commits what the decider sends, follows the
    /// store while not writing; returns the appender once the decider is gone.
    /// The receiver is this thread's alone, used outside the lock, so the
    /// decider can append a small batch while this thread waits.
    fn run(
        shared: Shared<M, P, S>,
        from_decider: std::sync::mpsc::Receiver<Option<Decided<M>>>,
    ) -> Arc<std::sync::Mutex<Appender<M, P, S>>> {
        let Shared { appender, in_flight } = shared;
        loop {
            let state = lock_appender(&appender).status.borrow().state.clone();
            let next = match state {
                WriterState::Writing | WriterState::Stopped(_) => {
                    from_decider.recv().map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected)
                }
                WriterState::Following(_) => from_decider.recv_timeout(FOLLOW_POLL),
            };
            match next {
                Ok(Some(decided)) => {
                    let mut guard = lock_appender(&appender);
                    guard.commit(decided);
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                }
                Ok(None) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => lock_appender(&appender).follow(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        appender
    }

    fn set(&self, state: WriterState) {
        let epoch = self.epoch;
        self.status.send_replace(Status { state, epoch });
    }

    fn commit(&mut self, decided: Decided<M>) {
        let Decided { epoch, now_us, commands, events, payloads, answers, predicted_head } = decided;
        let state = self.status.borrow().state.clone();
        if epoch != self.epoch || state != WriterState::Writing {
            // Decided against state that includes a batch that never became
            // durable, or before writing resumed.
            let why = state.reason().unwrap_or("the writer resumed after this was decided").to_owned();
            for (reply, _) in answers {
                let _ = reply.send(Err(WriteError::NotWriting(why.clone())));
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
                    self.acked = ack.head;
                    self.observer.batch(commands, count, fsync_seconds, ack.head.seq);
                }
                Err(error) => {
                    // The decider's state now holds events that may not be on
                    // disk: stop writing, and refuse what it decided since.
                    self.epoch += 1;
                    let state = if self.journal.can_follow() {
                        tracing::error!(%error, acked = self.acked.seq, "journal write failed; writes are refused until the store is back");
                        self.publisher.writer_stopped(&self.acked);
                        WriterState::Following(format!(
                            "the journal's store failed ({error}); writes are refused until it is back, reads are answered"
                        ))
                    } else {
                        tracing::error!(%error, "journal write failed; the node stops accepting writes until restarted");
                        WriterState::Stopped(format!(
                            "the journal could not be written ({error}); the node stopped writing until it is restarted"
                        ))
                    };
                    self.set(state);
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

    /// One round while not writing: fold what the store holds after the last
    /// record published, chunk by chunk, and resume writing once the store
    /// says this is the writer and every record is folded.
    fn follow(&mut self) {
        loop {
            let step = match self.journal.follow(self.acked, FOLLOW_CHUNK_RECORDS) {
                Ok(step) => step,
                Err(FollowError::Unreachable(why)) => {
                    if !self.unreachable {
                        tracing::warn!(%why, "the journal's store cannot be reached; trying again");
                        self.unreachable = true;
                    }
                    self.set(WriterState::Following(format!(
                        "the journal's store cannot be reached ({why}); writes are refused until it is back, reads are answered"
                    )));
                    return;
                }
                Err(FollowError::Diverged(why)) => {
                    tracing::error!(%why, "the journal's store no longer holds what this node folded; it stops writing");
                    self.set(WriterState::Stopped(format!("{why}; the node stopped writing until it is restarted")));
                    return;
                }
            };
            self.unreachable = false;
            if let Some(last) = step.records.last() {
                let head = Head { seq: last.seq, hash: last.hash, recorded_at_us: last.recorded_at_us };
                if let Err(why) = self.publisher.follow(&step.records) {
                    tracing::error!(%why, "a record of the journal cannot be folded; the node stops writing");
                    self.set(WriterState::Stopped(format!("{why}; the node stopped writing until it is restarted")));
                    return;
                }
                self.acked = head;
                self.observer.followed(step.records.len(), head.seq);
            }
            if step.more {
                continue;
            }
            if step.writer {
                self.epoch += 1;
                // The resume first, then the state: see `Decider::run`.
                let _ = self.resumes.send(Resume { epoch: self.epoch, head: self.acked });
                self.set(WriterState::Writing);
                tracing::info!(head = self.acked.seq, "writing the journal");
            } else if self.status.borrow().state.reason() != Some(STANDBY) {
                // The store answers, but another node holds the lock.
                self.set(WriterState::Following(STANDBY.to_owned()));
            }
            return;
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
