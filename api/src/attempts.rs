//! Named attempts of state changes between ccnode neighbours, and the
//! changes left in doubt (issue 13). Pure: no I/O, no clock.
//!
//! A state change crossing a link is an attempt: the sender names it
//! (`cc-attempt`) and the incarnation it runs in (`cc-boot`). When the next
//! node does not answer in time, the sender cannot know whether it wrote the
//! change: the change is *in doubt*. The sender keeps its reservation (and
//! no expiry touches the transaction) until it learns the outcome from the
//! neighbour's link feed, asked with a *fence*: the attempts in doubt, and
//! the sender's incarnation. Before it answers, the neighbour
//! ([`Attempts::fence`]) makes every fenced attempt it never received dead,
//! so no late or duplicated copy of it can be written afterwards, and
//! refuses every attempt of an earlier incarnation of the sender. The feed
//! it then serves is final for those attempts: a version there was written
//! (the sender copies it), a version missing never will be (the sender drops
//! its reservation).
//!
//! An attempt the neighbour is still writing, or that is in doubt at the
//! neighbour itself (its own next node did not answer), is not final yet:
//! the fence answers [`Fence::NotYet`] and the sender asks again later. A
//! node that restarted knows none of the attempts it had received; it
//! answers a fence naming an attempt it does not know only once it has
//! reconciled its other links since it started (the caller passes
//! `settled`), so that whatever it had passed on before a crash is in its
//! own journal or fenced at its next node by then.

use std::collections::{HashMap, VecDeque};

use ledger::{AccountId, TxId};

/// Most finished attempts remembered per neighbour (older ones are
/// forgotten first; a copy arriving later than that is caught by the link
/// hash when anything else crossed the link meanwhile).
pub const FINISHED_MAX: usize = 16_384;

/// Most attempts one fence may name.
pub const FENCE_IDS_MAX: usize = 256;

/// Longest attempt or incarnation name accepted.
pub const ATTEMPT_NAME_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Being written now.
    Running,
    /// Answered in doubt: this node's own next node did not answer in time.
    InDoubt,
    /// Written, refused, or fenced: final.
    Done,
}

#[derive(Debug)]
struct Attempt {
    uuid: Option<TxId>,
    boot: String,
    status: Status,
}

#[derive(Debug, Default)]
struct Link {
    /// The sender's incarnation its last fence named.
    boot: Option<String>,
    attempts: HashMap<String, Attempt>,
    /// Finished attempts, oldest first (evicted beyond [`FINISHED_MAX`]).
    finished: VecDeque<String>,
}

impl Link {
    fn finish(&mut self, attempt: &str) {
        if let Some(a) = self.attempts.get_mut(attempt) {
            if a.status != Status::Done {
                a.status = Status::Done;
                self.finished.push_back(attempt.to_owned());
            }
        }
        while self.finished.len() > FINISHED_MAX {
            if let Some(old) = self.finished.pop_front() {
                self.attempts.remove(&old);
            }
        }
    }
}

/// Whether a received attempt may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// A new attempt: write it.
    Go,
    /// This attempt was received before (a duplicate) or fenced: nothing is written.
    Seen,
    /// The sender has restarted since it sent this attempt: nothing is written.
    StaleBoot,
}

/// A fence's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// Every fenced attempt is final here: the feed served now says what was written.
    Final,
    /// Not final yet (why): ask again later.
    NotYet(&'static str),
}

/// The attempts received from each neighbour.
#[derive(Debug, Default)]
pub struct Attempts {
    links: HashMap<AccountId, Link>,
}

impl Attempts {
    /// Attempt `attempt` of `peer`'s incarnation `boot`, changing `uuid`, arrived.
    pub fn begin(&mut self, peer: &AccountId, attempt: &str, boot: &str, uuid: TxId) -> Begin {
        let link = self.links.entry(peer.clone()).or_default();
        if link.boot.as_deref().is_some_and(|b| b != boot) {
            return Begin::StaleBoot;
        }
        if link.attempts.contains_key(attempt) {
            return Begin::Seen;
        }
        link.attempts
            .insert(attempt.to_owned(), Attempt { uuid: Some(uuid), boot: boot.to_owned(), status: Status::Running });
        Begin::Go
    }

    /// The attempt ended: written or refused (`in_doubt` false), or answered
    /// in doubt because this node's next node did not answer (until
    /// [`Attempts::settle`]).
    pub fn end(&mut self, peer: &AccountId, attempt: &str, in_doubt: bool) {
        let Some(link) = self.links.get_mut(peer) else { return };
        if in_doubt {
            if let Some(a) = link.attempts.get_mut(attempt) {
                a.status = Status::InDoubt;
            }
        } else {
            link.finish(attempt);
        }
    }

    /// This node's own doubt about `uuid` is over: the attempts it had
    /// answered in doubt for it are final.
    pub fn settle(&mut self, uuid: TxId) {
        for link in self.links.values_mut() {
            let settled: Vec<String> = link
                .attempts
                .iter()
                .filter(|(_, a)| a.status == Status::InDoubt && a.uuid == Some(uuid))
                .map(|(id, _)| id.clone())
                .collect();
            for id in settled {
                link.finish(&id);
            }
        }
    }

    /// Whether any attempt is answered in doubt here now.
    pub fn any_in_doubt(&self) -> bool {
        self.links.values().any(|l| l.attempts.values().any(|a| a.status == Status::InDoubt))
    }

    /// `peer`, in its incarnation `boot`, fences `ids` before reading its
    /// link feed. `settled`: this node has reconciled every link since it
    /// started. Nothing changes unless the answer is [`Fence::Final`].
    pub fn fence(&mut self, peer: &AccountId, boot: &str, ids: &[String], settled: bool) -> Fence {
        let link = self.links.entry(peer.clone()).or_default();
        let open = |a: &Attempt| a.status != Status::Done;
        if link.attempts.values().any(|a| open(a) && a.boot != boot) {
            return Fence::NotYet("a change from the caller's earlier start is still being written here");
        }
        // The first fence of this caller since this node started stands for
        // attempts this node may have received before it restarted, and
        // passed on, without a record now (the caller names those it still
        // doubts; a new incarnation of the caller no longer names its
        // earlier ones): final only once this node's other links are
        // reconciled (found by the simulator, seed 7979). Later fences are
        // final at once for attempts never received: they never arrived.
        if link.boot.is_none() && !settled {
            return Fence::NotYet("this node has not reconciled its other links since it started");
        }
        for id in ids {
            if link.attempts.get(id).is_some_and(&open) {
                return Fence::NotYet("a fenced change is still being written or is in doubt here");
            }
        }
        for id in ids {
            if !link.attempts.contains_key(id) {
                link.attempts
                    .insert(id.clone(), Attempt { uuid: None, boot: boot.to_owned(), status: Status::Running });
                link.finish(id);
            }
        }
        link.boot = Some(boot.to_owned());
        Fence::Final
    }
}

/// Whether `text` may name an attempt or an incarnation.
pub fn valid_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= ATTEMPT_NAME_MAX && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The changes this node left in doubt, per neighbour: `(uuid, target
/// state, attempt)`, until a fenced reconciliation with that neighbour
/// settles them.
#[derive(Debug, Default)]
pub struct Doubts {
    links: HashMap<AccountId, Vec<(TxId, ledger::State, String)>>,
}

impl Doubts {
    /// The change of `uuid` to `to`, attempt `attempt`, sent to `peer`, is in doubt.
    pub fn add(&mut self, peer: &AccountId, uuid: TxId, to: ledger::State, attempt: String) {
        self.links.entry(peer.clone()).or_default().push((uuid, to, attempt));
    }

    /// The changes in doubt with `peer`, oldest first, at most [`FENCE_IDS_MAX`].
    pub fn on(&self, peer: &AccountId) -> Vec<(TxId, ledger::State, String)> {
        self.links.get(peer).map(|v| v.iter().take(FENCE_IDS_MAX).cloned().collect()).unwrap_or_default()
    }

    /// These changes with `peer` are settled.
    pub fn remove(&mut self, peer: &AccountId, attempts: &[String]) {
        if let Some(v) = self.links.get_mut(peer) {
            v.retain(|(_, _, a)| !attempts.contains(a));
            if v.is_empty() {
                self.links.remove(peer);
            }
        }
    }

    /// How many changes are in doubt with `peer`.
    pub fn count(&self, peer: &AccountId) -> usize {
        self.links.get(peer).map_or(0, Vec::len)
    }

    /// The neighbours with a change in doubt.
    pub fn peers(&self) -> Vec<AccountId> {
        let mut peers: Vec<AccountId> = self.links.keys().cloned().collect();
        peers.sort();
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> AccountId {
        AccountId::new("child").expect("id")
    }

    fn tx(n: u128) -> TxId {
        TxId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn an_attempt_is_written_once_and_a_copy_is_refused() {
        let mut a = Attempts::default();
        assert_eq!(a.begin(&peer(), "a1", "b1", tx(1)), Begin::Go);
        assert_eq!(a.begin(&peer(), "a1", "b1", tx(1)), Begin::Seen, "a copy while the first is written");
        a.end(&peer(), "a1", false);
        assert_eq!(a.begin(&peer(), "a1", "b1", tx(1)), Begin::Seen, "a copy after it was answered");
        assert_eq!(a.begin(&peer(), "a2", "b1", tx(1)), Begin::Go, "a new attempt");
    }

    #[test]
    fn a_fenced_attempt_that_never_arrived_is_dead() {
        let mut a = Attempts::default();
        assert_eq!(a.fence(&peer(), "b1", &["lost".to_owned()], true), Fence::Final);
        assert_eq!(a.begin(&peer(), "lost", "b1", tx(1)), Begin::Seen, "arriving after the fence, it is refused");
    }

    #[test]
    fn a_fence_is_not_final_while_the_attempt_is_written_or_in_doubt() {
        let mut a = Attempts::default();
        assert_eq!(a.begin(&peer(), "a1", "b1", tx(1)), Begin::Go);
        assert!(matches!(a.fence(&peer(), "b1", &["a1".to_owned()], true), Fence::NotYet(_)));
        a.end(&peer(), "a1", true);
        assert!(a.any_in_doubt());
        assert!(matches!(a.fence(&peer(), "b1", &["a1".to_owned()], true), Fence::NotYet(_)), "in doubt here");
        a.settle(tx(2));
        assert!(matches!(a.fence(&peer(), "b1", &["a1".to_owned()], true), Fence::NotYet(_)), "another tx settled");
        a.settle(tx(1));
        assert!(!a.any_in_doubt());
        assert_eq!(a.fence(&peer(), "b1", &["a1".to_owned()], true), Fence::Final);
    }

    #[test]
    fn after_a_restart_an_unknown_attempt_waits_for_every_link_to_be_reconciled() {
        let mut a = Attempts::default();
        assert!(matches!(a.fence(&peer(), "b1", &["x".to_owned()], false), Fence::NotYet(_)));
        assert_eq!(a.begin(&peer(), "x", "b1", tx(1)), Begin::Go, "a refused fence changed nothing");
        let mut b = Attempts::default();
        assert!(
            matches!(b.fence(&peer(), "b1", &[], false), Fence::NotYet(_)),
            "a first fence of an incarnation stands for every attempt of the earlier ones"
        );
        assert_eq!(b.fence(&peer(), "b1", &[], true), Fence::Final);
        assert_eq!(b.fence(&peer(), "b1", &[], false), Fence::Final, "the same incarnation naming nothing");
    }

    #[test]
    fn a_fence_from_a_new_incarnation_refuses_the_old_ones_attempts() {
        let mut a = Attempts::default();
        assert_eq!(a.begin(&peer(), "a1", "old", tx(1)), Begin::Go);
        assert!(matches!(a.fence(&peer(), "new", &[], true), Fence::NotYet(_)), "the old one's attempt is running");
        a.end(&peer(), "a1", false);
        assert_eq!(a.fence(&peer(), "new", &[], true), Fence::Final);
        assert_eq!(a.begin(&peer(), "a2", "old", tx(2)), Begin::StaleBoot, "a late attempt of the old incarnation");
        assert_eq!(a.begin(&peer(), "a3", "new", tx(2)), Begin::Go);
    }

    #[test]
    fn finished_attempts_are_bounded() {
        let mut a = Attempts::default();
        for i in 0..(FINISHED_MAX + 10) {
            let id = format!("a{i}");
            assert_eq!(a.begin(&peer(), &id, "b", tx(1)), Begin::Go);
            a.end(&peer(), &id, false);
        }
        let link = a.links.get(&peer()).expect("link");
        assert_eq!(link.attempts.len(), FINISHED_MAX);
        assert_eq!(a.begin(&peer(), "a0", "b", tx(1)), Begin::Go, "the oldest is forgotten");
        assert_eq!(a.begin(&peer(), &format!("a{}", FINISHED_MAX + 9), "b", tx(1)), Begin::Seen);
    }

    #[test]
    fn doubts_are_kept_per_neighbour_until_removed() {
        let mut d = Doubts::default();
        d.add(&peer(), tx(1), ledger::State::Completed, "a1".into());
        d.add(&peer(), tx(2), ledger::State::Completed, "a2".into());
        assert_eq!(d.count(&peer()), 2);
        assert_eq!(d.peers(), vec![peer()]);
        d.remove(&peer(), &["a1".to_owned()]);
        assert_eq!(d.on(&peer()).len(), 1);
        d.remove(&peer(), &["a2".to_owned()]);
        assert!(d.peers().is_empty());
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("0f9c-aa"));
        assert!(!valid_name(""));
        assert!(!valid_name("a,b"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
