//! The run's trace: one line per event, stamped with simulated time. Every
//! line feeds a running hash (two runs of a seed must give the same one); the
//! lines are kept whole on request (`--trace`, the determinism test) and the
//! last ones always, for the report of a failure.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Lines kept for a failure's report when the whole trace is not.
pub const TAIL_LINES: usize = 60;

#[derive(Debug)]
struct Lines {
    start: tokio::time::Instant,
    all: Option<Vec<String>>,
    tail: VecDeque<String>,
    hash: u64,
    count: u64,
    print: bool,
}

/// Shared by the network and the simulation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Trace(Arc<Mutex<Lines>>);

impl Trace {
    /// A trace that keeps every line if `keep`, and prints each if `print`.
    pub fn new(keep: bool, print: bool) -> Trace {
        Trace(Arc::new(Mutex::new(Lines {
            start: tokio::time::Instant::now(),
            all: keep.then(Vec::new),
            tail: VecDeque::new(),
            hash: 0xcbf2_9ce4_8422_2325,
            count: 0,
            print,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends one event.
    pub fn line(&self, text: impl AsRef<str>) {
        let mut lines = self.lock();
        let elapsed = lines.start.elapsed();
        let line = format!("{:>7}.{:03} {}", elapsed.as_secs(), elapsed.subsec_millis(), text.as_ref());
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            // FNV-1a, 64 bits.
            lines.hash = (lines.hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        lines.count += 1;
        if lines.print {
            println!("{line}");
        }
        if lines.tail.len() == TAIL_LINES {
            lines.tail.pop_front();
        }
        lines.tail.push_back(line.clone());
        if let Some(all) = &mut lines.all {
            all.push(line);
        }
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.lock().hash
    }

    /// Lines so far.
    pub fn count(&self) -> u64 {
        self.lock().count
    }

    /// Every line, if kept.
    pub fn lines(&self) -> Option<Vec<String>> {
        self.lock().all.clone()
    }

    /// The last lines.
    pub fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }
}
