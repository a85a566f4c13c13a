//! The connection, on a thread of its own.
//!
//! The sync `postgres` client drives each call with a runtime of its own,
//! which tokio refuses to start on a thread that is already inside a
//! runtime (the node starts up and shuts down inside one). So the client
//! lives on a dedicated thread and every use of it, its drop included, runs
//! there: a caller sends a job and waits for its answer on a plain channel,
//! which works from any thread.

use std::sync::mpsc::{channel, sync_channel, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::{Client, NoTls};

use crate::error::OpenError;
use crate::redacted;

type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// A connection owned by its thread.
pub(crate) struct Conn {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Conn {
    /// Connects on a new thread; `synchronous_commit` is set `on` for the session.
    pub(crate) fn open(url: &str) -> Result<Conn, OpenError> {
        let (jobs, incoming) = channel::<Job>();
        let (ready, connected) = sync_channel::<Result<(), OpenError>>(1);
        let url = url.to_owned();
        let thread = std::thread::Builder::new()
            .name("ccnode-postgres".to_owned())
            .spawn(move || {
                let mut client = match connect(&url) {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = incoming.recv() {
                    job(&mut client);
                }
                // The client closes here, on this thread; so the session's
                // advisory lock is released before `Conn::drop` returns.
                drop(client);
            })
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        let conn = Conn { jobs: Some(jobs), thread: Some(thread) };
        connected.recv().map_err(|_| OpenError::Thread("the connection thread stopped".to_owned()))??;
        Ok(conn)
    }

    /// Runs `job` with the client and returns its answer.
    pub(crate) fn run<R: Send + 'static>(&self, job: impl FnOnce(&mut Client) -> R + Send + 'static) -> R {
        let (answer, answered) = sync_channel(1);
        let jobs = self.jobs.as_ref().expect("jobs are sent only while the connection is open");
        jobs.send(Box::new(move |client: &mut Client| {
            let _ = answer.send(job(client));
        }))
        .expect("the connection thread runs while the connection is open");
        answered.recv().expect("the connection thread answers every job (a panic there is a bug)")
    }
}

impl Conn {
    /// Lets the connection go without waiting for its thread: for a
    /// connection that failed, whose thread may still be blocked on a socket
    /// to a server that is gone. The thread closes the client when its call
    /// returns.
    pub(crate) fn abandon(mut self) {
        drop(self.jobs.take());
        drop(self.thread.take());
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long a connection attempt may take unless the URL says
/// (`connect_timeout=`): a node that lost its database tries again soon.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalives on the node's side, so that a database machine that
/// vanished is noticed in about 20 seconds rather than hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(3);
const KEEPALIVE_RETRIES: u32 = 3;

fn connect(url: &str) -> Result<Client, OpenError> {
    let bad = |source| OpenError::Connect { url: redacted(url), source };
    let mut config: postgres::Config = url.parse().map_err(bad)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // The client's default idle time is two hours; a URL's own settings win.
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
    let mut client = config.connect(NoTls).map_err(bad)?;
    // An acknowledged batch must be flushed, whatever the database's default.
    client.batch_execute("SET synchronous_commit = on; SET application_name = 'ccnode'")?;
    Ok(client)
}
