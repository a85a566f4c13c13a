//! The simulated network: every request between nodes, and every client
//! request to a node, is a task on the simulator's single-threaded runtime
//! that reaches the receiving node's real axum `Router` (no sockets). The
//! seed's network decides, per message, whether it is dropped (the request,
//! or the answer after the receiver acted on it), delayed, delivered twice,
//! or slower than the sender's timeout; partitioned links refuse at once.
//! A crashed node's tasks are aborted, and what it still had in flight
//! reaches nobody (each node incarnation has its own client).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use api::peer_client::{PeerAnswer, PeerClient, PeerRequest, Unreachable};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use futures_util::future::BoxFuture;
use rand::rngs::StdRng;
use rand::Rng;
use tower::ServiceExt;

use crate::trace::Trace;

/// Per-message fault probabilities, chosen by the seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetFaults {
    /// A request is lost before it arrives.
    pub drop_request: f64,
    /// An answer is lost after the receiver acted on the request.
    pub drop_answer: f64,
    /// A request is delivered a second time, later.
    pub duplicate: f64,
    /// A request is delivered after the sender's timeout.
    pub slow: f64,
    /// Most delay of a request and of its answer (each uniform up to it).
    pub delay_max: Duration,
}

#[derive(Debug)]
struct Host {
    incarnation: u64,
    router: Router,
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    hosts: BTreeMap<String, Host>,
    /// Incarnation of each node that ever ran (a crashed one's stays, bumped at restart).
    alive: BTreeMap<String, Option<u64>>,
    cut: BTreeSet<(String, String)>,
    faults: NetFaults,
    /// Whether faults apply (off while the simulator heals everything).
    faulty: bool,
    tasks: BTreeMap<String, Vec<tokio::task::AbortHandle>>,
    messages: u64,
}

/// The network of one simulation.
#[derive(Debug)]
pub struct Net {
    state: Mutex<State>,
    trace: Trace,
    timeout: Duration,
}

fn link(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// What the seed decided for one message.
#[derive(Debug, Clone, Copy)]
struct Fate {
    drop_request: bool,
    drop_answer: bool,
    duplicate: bool,
    there: Duration,
    back: Duration,
}

impl Net {
    /// A network whose senders give up after `timeout`.
    pub fn new(rng: StdRng, faults: NetFaults, timeout: Duration, trace: Trace) -> Net {
        let state = State {
            rng,
            hosts: BTreeMap::new(),
            alive: BTreeMap::new(),
            cut: BTreeSet::new(),
            faults,
            faulty: true,
            tasks: BTreeMap::new(),
            messages: 0,
        };
        Net { state: Mutex::new(state), trace, timeout }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `name` answers at `router` from now on, as incarnation `incarnation`.
    pub fn attach(&self, name: &str, incarnation: u64, router: Router) {
        let mut state = self.lock();
        state.hosts.insert(name.to_owned(), Host { incarnation, router });
        state.alive.insert(name.to_owned(), Some(incarnation));
    }

    /// `name` crashed: it answers nothing, its tasks stop where they are,
    /// and what it had sent reaches nobody.
    pub fn detach(&self, name: &str) {
        let mut state = self.lock();
        state.hosts.remove(name);
        state.alive.insert(name.to_owned(), None);
        for task in state.tasks.remove(name).unwrap_or_default() {
            task.abort();
        }
    }

    /// Registers a task that runs on `name`'s behalf (aborted when it crashes).
    pub fn own(&self, name: &str, task: tokio::task::AbortHandle) {
        let mut state = self.lock();
        let tasks = state.tasks.entry(name.to_owned()).or_default();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Cuts or heals the link between `a` and `b`.
    pub fn set_cut(&self, a: &str, b: &str, cut: bool) {
        let mut state = self.lock();
        if cut {
            state.cut.insert(link(a, b));
        } else {
            state.cut.remove(&link(a, b));
        }
    }

    /// Whether any link is cut.
    pub fn any_cut(&self) -> bool {
        !self.lock().cut.is_empty()
    }

    /// Turns the per-message faults on or off.
    pub fn set_faulty(&self, faulty: bool) {
        self.lock().faulty = faulty;
    }

    /// Messages sent so far.
    pub fn messages(&self) -> u64 {
        self.lock().messages
    }

    /// The client node `from`'s incarnation `incarnation` sends with.
    pub fn client(self: &Arc<Net>, from: &str, incarnation: u64) -> Arc<dyn PeerClient> {
        Arc::new(NodeClient { net: Arc::clone(self), from: from.to_owned(), incarnation })
    }

    fn fate(&self, state: &mut State) -> Fate {
        let faults = state.faults;
        if !state.faulty {
            return Fate {
                drop_request: false,
                drop_answer: false,
                duplicate: false,
                there: Duration::ZERO,
                back: Duration::ZERO,
            };
        }
        let rng = &mut state.rng;
        let max = u64::try_from(faults.delay_max.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut there = Duration::from_micros(rng.gen_range(0..max));
        if rng.gen_bool(faults.slow) {
            there += self.timeout + Duration::from_millis(rng.gen_range(1..2000));
        }
        Fate {
            drop_request: rng.gen_bool(faults.drop_request),
            drop_answer: rng.gen_bool(faults.drop_answer),
            duplicate: rng.gen_bool(faults.duplicate),
            there,
            back: Duration::from_micros(rng.gen_range(0..max)),
        }
    }

    /// Delivers `request` from `from` (incarnation `incarnation`) to the
    /// node its URL names, under the seed's faults; `None` when it never
    /// answers in time (the sender then waits out its timeout).
    async fn carry(
        self: Arc<Net>,
        from: String,
        incarnation: u64,
        request: PeerRequest,
    ) -> Result<PeerAnswer, Unreachable> {
        let rest = request.url.strip_prefix("http://").ok_or_else(|| Unreachable::not_sent("not http"))?;
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let host = host.to_owned();
        let (id, fate, target) = {
            let mut state = self.lock();
            if state.alive.get(&from).copied().flatten() != Some(incarnation) {
                return Err(Unreachable::not_sent("the sender crashed"));
            }
            state.messages += 1;
            let id = state.messages;
            if state.cut.contains(&link(&from, &host)) {
                drop(state);
                self.trace.line(format!("msg {id} {from}->{host} {} {path}: refused, link cut", request.method));
                return Err(Unreachable::not_sent("the link is cut"));
            }
            let fate = self.fate(&mut state);
            let target = state.hosts.get(&host).map(|h| (h.incarnation, h.router.clone()));
            (id, fate, target)
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let method = request.method.clone();
        let Some((target_incarnation, router)) = target else {
            self.trace.line(format!("msg {id} {from}->{host} {method} {path}: no such node up"));
            return Err(Unreachable::not_sent(format!("{host} is down")));
        };
        self.trace.line(format!(
            "msg {id} {from}->{host} {method} {path} there={}ms back={}ms{}{}{}",
            fate.there.as_millis(),
            fate.back.as_millis(),
            if fate.drop_request { " drop-request" } else { "" },
            if fate.drop_answer { " drop-answer" } else { "" },
            if fate.duplicate { " duplicate" } else { "" },
        ));
        if fate.drop_request {
            tokio::time::sleep_until(deadline).await;
            return Err(Unreachable::no_answer("timed out (request lost)"));
        }
        let copies = if fate.duplicate { 2 } else { 1 };
        let mut first = None;
        for copy in 0..copies {
            let net = Arc::clone(&self);
            let (router, request, host2, path2) = (router.clone(), request.clone(), host.clone(), path.clone());
            let there = fate.there + Duration::from_millis(if copy == 0 { 0 } else { 50 });
            let task = tokio::spawn(async move {
                tokio::time::sleep(there).await;
                let up = net.lock().hosts.get(&host2).map(|h| h.incarnation) == Some(target_incarnation);
                if !up {
                    return None;
                }
                let answer = deliver(router, request, &path2).await;
                let why = if answer.status >= 400 { refusal(&answer.body) } else { String::new() };
                net.trace.line(format!("msg {id} copy {copy} at {host2}: {}{why}", answer.status));
                Some(answer)
            });
            self.own(&host, task.abort_handle());
            if copy == 0 {
                first = Some(task);
            }
        }
        let task = first.expect("one copy at least");
        let outcome = tokio::time::timeout_at(deadline, task).await;
        match outcome {
            Ok(Ok(Some(answer))) if !fate.drop_answer => {
                // The answer travels back; it may arrive after the sender gave up.
                if tokio::time::timeout_at(deadline, tokio::time::sleep(fate.back)).await.is_err() {
                    self.trace.line(format!("msg {id} answer late"));
                    return Err(Unreachable::no_answer("timed out"));
                }
                if self.lock().alive.get(&from).copied().flatten() != Some(incarnation) {
                    return Err(Unreachable::not_sent("the sender crashed"));
                }
                Ok(answer)
            }
            Ok(_) => {
                self.trace.line(format!("msg {id} answer lost"));
                tokio::time::sleep_until(deadline).await;
                Err(Unreachable::no_answer("timed out (answer lost)"))
            }
            Err(_) => {
                self.trace.line(format!("msg {id} timed out"));
                Err(Unreachable::no_answer("timed out"))
            }
        }
    }

    /// A client's (a member's or an admin's) request to node `name`, with no
    /// network faults; `None` if the node is down or crashes before answering.
    pub async fn call(self: &Arc<Net>, name: &str, request: Request<Body>) -> Option<(u16, serde_json::Value)> {
        let router = self.lock().hosts.get(name).map(|h| h.router.clone())?;
        let task = tokio::spawn(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.ok()?;
            let value = if bytes.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned().into())
            };
            Some((status, value))
        });
        self.own(name, task.abort_handle());
        task.await.ok().flatten()
    }
}

/// An error answer's class and reason, for the trace.
fn refusal(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let error = &value["errors"][0];
    let reason = error["translated"].as_str().or_else(|| error["message"].as_str()).unwrap_or("");
    format!(" {} {}", error["class"].as_str().unwrap_or("?"), reason.chars().take(80).collect::<String>())
}

async fn deliver(router: Router, request: PeerRequest, path: &str) -> PeerAnswer {
    let mut builder = Request::builder().method(request.method).uri(path);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    if request.body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let http = builder.body(request.body.map_or_else(Body::empty, Body::from)).expect("a request from parts");
    let response = router.oneshot(http).await.expect("infallible");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap_or_default();
    PeerAnswer { status, content_type, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// The network as one node incarnation sees it.
#[derive(Debug)]
struct NodeClient {
    net: Arc<Net>,
    from: String,
    incarnation: u64,
}

impl PeerClient for NodeClient {
    fn send(&self, request: PeerRequest) -> BoxFuture<'_, Result<PeerAnswer, Unreachable>> {
        let net = Arc::clone(&self.net);
        Box::pin(net.carry(self.from.clone(), self.incarnation, request))
    }
}
