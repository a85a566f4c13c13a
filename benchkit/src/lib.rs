//! What every bench of the workspace shares (a dev-dependency only, no
//! dependencies of its own): the machine-readable `figure` lines, CPU time and
//! memory read from `/proc` (so the figures hold on a busy machine), a seeded
//! xorshift generator (the same inputs on every run, no `rand` in the loop),
//! nearest-rank percentiles, and the command line and child `ccnode` of the
//! benches that drive the real binary.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A bench's name, the second field of its figure lines.
#[derive(Debug, Clone, Copy)]
pub struct Bench(pub &'static str);

impl Bench {
    /// One machine-readable line per figure (`figure<TAB>bench<TAB>name<TAB>value<TAB>unit`),
    /// for `benches/compare.py`; docs/BENCHMARKS.md says which figures each bench prints.
    pub fn figure(&self, name: &str, value: f64, unit: &str) {
        println!("{}", self.figure_line(name, value, unit));
    }

    /// The line [`Bench::figure`] prints, without its newline.
    pub fn figure_line(&self, name: &str, value: f64, unit: &str) -> String {
        format!("figure\t{}\t{name}\t{value}\t{unit}", self.0)
    }
}

/// CPU time of the calling thread, ns (`/proc/thread-self/schedstat`; 0 where it cannot be read).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of this whole process (all threads), ns, in steps of 10 ms (0 where it cannot be read).
pub fn process_cpu_ns() -> u64 {
    cpu_ns("self").unwrap_or(0)
}

/// Linux reports process CPU time in USER_HZ ticks, 100 per second on every architecture it runs on here.
const NS_PER_TICK: u64 = 10_000_000;

/// User plus system CPU time of process `pid` (`self` for this one), ns, from
/// `/proc/<pid>/stat` (utime and stime, fields 14 and 15, in ticks of 10 ms).
pub fn cpu_ns(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name, which may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * NS_PER_TICK)
}

/// A field of `/proc/<pid>/status` in kB (`VmHWM`: peak RSS, `VmRSS`), `pid` `self` for this process.
pub fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift
/// generators, scrambled", 2016): the same sequence for the same seed on
/// every run and machine. The seed must not be 0.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (not 0: the sequence of 0 is all zeros).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (slightly biased when `n` is not a power of two, which a bench does not mind).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index below `n`, as [`Rng::below`].
    pub fn index(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).expect("usize fits u64");
        usize::try_from(self.below(n64)).expect("below n")
    }
}

/// The `per_mille`-th per-mille of sorted latencies (nearest rank; zero when there are none).
pub fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * per_mille / 1000).min(sorted.len() - 1)]
}

/// The command line of a bench that drives the real binary: `--name value` flags and `--quick`.
#[derive(Debug, Clone)]
pub struct Args(Vec<String>);

impl Args {
    /// This process's arguments.
    pub fn from_env() -> Args {
        Args(std::env::args().collect())
    }

    /// The value after flag `name`, if given.
    pub fn flag(&self, name: &str) -> Option<String> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).cloned()
    }

    /// The value after flag `name` parsed, or `default` when it is missing or does not parse.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.flag(name).and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// Whether the lone flag `name` (e.g. `--quick`) is given.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// The `ccnode` binary: `--ccnode PATH`, else `$CARGO_TARGET_DIR/release/ccnode`, else `target/release/ccnode`.
    pub fn ccnode(&self) -> PathBuf {
        self.flag("--ccnode").map(PathBuf::from).unwrap_or_else(|| {
            let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
            PathBuf::from(target).join("release/ccnode")
        })
    }
}

/// Where a bench makes its data: `$CCNODE_BENCH_DIR`, else the current directory (a real disk, not tmpfs).
pub fn bench_dir() -> PathBuf {
    std::env::var("CCNODE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("."))
}

/// Spawns `command` (a `ccnode serve`) with its stdout piped and waits for the
/// line it prints once it listens; the child and that line's last word (its URL).
pub fn spawn_listening(command: &mut Command) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| {
        panic!("starting {:?} ({e}); build it with cargo build --release --bin ccnode", command.get_program())
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let url = line.split_whitespace().last().expect("the listening line ends with the address").to_owned();
    (child, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_lines_have_five_tab_separated_fields() {
        let line = Bench("journal").figure_line("append_p99_us", 12.5, "us");
        assert_eq!(line, "figure\tjournal\tappend_p99_us\t12.5\tus");
    }

    #[test]
    fn the_generator_gives_xorshift64_star() {
        // Worked by hand from the recurrence: seed 1 -> x = 1 ^ (1 << 25) = 0x2000001,
        // then x ^= x >> 27 (no change); times the multiplier.
        let mut rng = Rng::new(1);
        assert_eq!(rng.next_u64(), 0x0200_0001u64.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        assert!((0..100).all(|_| a.below(7) == b.below(7)));
        assert!((0..100).all(|_| Rng::new(9).index(3) < 3));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 500), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 990), Duration::from_millis(99));
        assert_eq!(percentile(&ms, 1000), Duration::from_millis(100));
        assert_eq!(percentile(&[], 990), Duration::ZERO);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let thread_start = thread_cpu_ns();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_ns() > thread_start);
        assert!(process_cpu_ns() > 0);
        assert!(status_kb("self", "VmHWM").is_some_and(|kb| kb > 0));
        assert_eq!(status_kb("self", "NoSuchField"), None);
    }

    #[test]
    fn flags_are_read_after_their_name() {
        let args = Args(["bench", "--seconds", "3", "--quick", "--rounds", "x"].map(str::to_owned).to_vec());
        assert_eq!(args.flag("--seconds").as_deref(), Some("3"));
        assert_eq!(args.parsed("--seconds", 10u64), 3);
        assert_eq!(args.parsed("--rounds", 2u64), 2, "a value that does not parse keeps the default");
        assert_eq!(args.parsed("--missing", 7u64), 7);
        assert!(args.has("--quick") && !args.has("--slow"));
        assert_eq!(args.flag("--rounds").as_deref(), Some("x"));
    }

    #[test]
    fn a_spawned_server_is_waited_for_until_it_prints_its_address() {
        let (mut child, url) =
            spawn_listening(Command::new("sh").args(["-c", "echo 'ccnode listening on http://127.0.0.1:9'; sleep 5"]));
        assert_eq!(url, "http://127.0.0.1:9");
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
