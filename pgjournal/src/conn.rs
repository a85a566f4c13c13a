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

impl Drop for Conn {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connect(url: &str) -> Result<Client, OpenError> {
    let mut client = Client::connect(url, NoTls).map_err(|source| OpenError::Connect { url: redacted(url), source })?;
    // An acknowledged batch must be flushed, whatever the database's default.
    client.batch_execute("SET synchronous_commit = on; SET application_name = 'ccnode'")?;
    Ok(client)
}
