//! Prometheus metrics: requests, latencies, batch sizes, fsync time, journal head.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::runtime::WriterObserver;

/// Labels of an HTTP request. Static strings, so recording a request that
/// was seen before allocates nothing ([`route_label`], [`method_label`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route, e.g. `/transaction/{uuid}`.
    pub route: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a request latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route.
    pub route: &'static str,
}

/// The label of a matched route: the router's own template (a finite set),
/// interned once per template for the life of the process.
pub fn route_label(route: &str) -> &'static str {
    static ROUTES: std::sync::LazyLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(known) = ROUTES.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(route) {
        return known;
    }
    let mut routes = ROUTES.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = routes.get(route) {
        return known;
    }
    let interned: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(interned);
    interned
}

/// The label of an HTTP method: its name for the standard ones, `other` else
/// (a client must not grow the label set).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// All metrics of a node.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    batch_commands: Histogram,
    batch_events: Histogram,
    fsync_seconds: Histogram,
    journal_head: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ccnode");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        let batch_commands = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register("writer_batch_commands", "Commands per group-committed batch", batch_commands.clone());
        let batch_events = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register("writer_batch_events", "Journal records per group-committed batch", batch_events.clone());
        let fsync_seconds = Histogram::new(exponential_buckets(0.000_01, 2.0, 18));
        registry.register("journal_append_seconds", "Time to write and fdatasync one batch", fsync_seconds.clone());
        let journal_head = Gauge::<u64, AtomicU64>::default();
        registry.register("journal_head_seq", "Seq of the last durable journal record", journal_head.clone());
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            batch_commands,
            batch_events,
            fsync_seconds,
            journal_head,
        }
    }

    /// Records one finished request (labels from [`route_label`] and [`method_label`]).
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { route, method, status }).inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(seconds);
    }

    /// Sets the journal head (at start, before any batch).
    pub fn set_head(&self, seq: u64) {
        self.journal_head.set(seq);
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock is never poisoned");
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

impl WriterObserver for Metrics {
    fn batch(&self, commands: usize, events: usize, fsync_seconds: f64, head_seq: u64) {
        self.batch_commands.observe(to_f64(commands));
        self.batch_events.observe(to_f64(events));
        self.fsync_seconds.observe(fsync_seconds);
        self.journal_head.set(head_seq);
    }

    fn followed(&self, _records: usize, head_seq: u64) {
        self.journal_head.set(head_seq);
    }
}

fn to_f64(n: usize) -> f64 {
    // Batch sizes are far below 2^52: exact.
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}
