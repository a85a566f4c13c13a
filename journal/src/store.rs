//! The journal's contract, whichever backend keeps the records.
//!
//! `Journal` (segment files) implements [`Store`]; so does the PostgreSQL
//! backend in the `pgjournal` crate. Everything above the journal (the
//! writer, the folds, verification, migration between stores) can be written
//! once against this trait. A backend must keep exactly the records this
//! crate defines: dense seqs from 1, `prev_hash` the predecessor's `hash`
//! (the genesis hash of the identity for seq 1), times that never decrease,
//! and `hash = record_hash(prev_hash, seq, recorded_at_us, payload)`, so a
//! journal copied from one store to another keeps every hash.

use crate::error::CorruptionKind;
use crate::format::{record_hash, Checkpoint, Hash, Record};
use crate::journal::{now_us, BatchAck, Head};

/// An append-only, hash-chained log of opaque payloads with one writer.
pub trait Store: Send {
    /// Why a batch was not appended (nothing of it is acknowledged).
    type AppendError: std::error::Error + Send + Sync + 'static;
    /// Why records could not be read, or fail their checks.
    type ReadError: std::error::Error + Send + Sync + 'static;
    /// Records in seq order; the first error ends the iteration.
    type Records<'a>: Iterator<Item = Result<Record, Self::ReadError>>
    where
        Self: 'a;

    /// The node identity the journal was created for.
    fn identity(&self) -> &str;

    /// The `prev_hash` of record 1.
    fn genesis(&self) -> Hash;

    /// The last acknowledged record (seq 0 and the genesis hash when empty).
    fn head(&self) -> Head;

    /// Appends `payloads` as one batch stamped `recorded_at_us` (raised to the
    /// head's time if earlier) and returns only once the whole batch is
    /// durable; a batch is all-or-nothing.
    fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        recorded_at_us: u64,
        payloads: &[P],
    ) -> Result<BatchAck, Self::AppendError>;

    /// As `append_batch_at`, stamped with the current time.
    fn append_batch<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<BatchAck, Self::AppendError> {
        self.append_batch_at(now_us(), payloads)
    }

    /// Iterates records `from..=to`, both within the head.
    fn range(&self, from: u64, to: u64) -> Result<Self::Records<'_>, Self::ReadError>;

    /// Iterates records `from..=head` (nothing when `from` is the head + 1).
    fn iter_from(&self, from: u64) -> Result<Self::Records<'_>, Self::ReadError>;

    /// Reads record `seq`.
    fn read(&self, seq: u64) -> Result<Record, Self::ReadError> {
        let mut records = self.range(seq, seq)?;
        records.next().expect("a range of one seq within the head yields one item")
    }

    /// The trusted `seq:hash` marks the store keeps beside its records (the
    /// segment files' derived checkpoints index), oldest first; a store that
    /// keeps none (a database) has none.
    fn checkpoints(&self) -> &[Checkpoint] {
        &[]
    }
}

impl Store for crate::Journal {
    type AppendError = crate::AppendError;
    type ReadError = crate::ReadError;
    type Records<'a> = crate::RecordIter<'a>;

    fn identity(&self) -> &str {
        crate::Journal::identity(self)
    }

    fn genesis(&self) -> Hash {
        crate::Journal::genesis(self)
    }

    fn head(&self) -> Head {
        crate::Journal::head(self)
    }

    fn append_batch_at<P: AsRef<[u8]>>(
        &mut self,
        recorded_at_us: u64,
        payloads: &[P],
    ) -> Result<BatchAck, crate::AppendError> {
        crate::Journal::append_batch_at(self, recorded_at_us, payloads)
    }

    fn range(&self, from: u64, to: u64) -> Result<crate::RecordIter<'_>, crate::ReadError> {
        crate::Journal::range(self, from, to)
    }

    fn iter_from(&self, from: u64) -> Result<crate::RecordIter<'_>, crate::ReadError> {
        crate::Journal::iter_from(self, from)
    }

    fn read(&self, seq: u64) -> Result<Record, crate::ReadError> {
        crate::Journal::read(self, seq)
    }

    fn checkpoints(&self) -> &[Checkpoint] {
        crate::Journal::checkpoints(self)
    }
}

/// Checks records one after the other against the chain rules: the seq
/// that follows, the link to the previous hash, a time that does not go
/// back, and the recomputed hash. A store that has no framing of its own
/// (a database) runs every record it reads through this; verification and
/// migration between stores do too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCheck {
    last: Head,
}

impl ChainCheck {
    /// A chain that starts at `genesis` (the next record must be seq 1).
    pub fn from_genesis(genesis: Hash) -> ChainCheck {
        ChainCheck { last: Head { seq: 0, hash: genesis, recorded_at_us: 0 } }
    }

    /// A chain that continues after a trusted record.
    pub fn after(last: Head) -> ChainCheck {
        ChainCheck { last }
    }

    /// The last record accepted (or the starting point).
    pub fn last(&self) -> Head {
        self.last
    }

    /// Accepts `record` if it follows the last one, else says what is wrong
    /// (and stays where it was).
    pub fn check(&mut self, record: &Record) -> Result<(), CorruptionKind> {
        if record.seq != self.last.seq + 1 {
            return Err(CorruptionKind::SeqGap { found: record.seq });
        }
        if record.prev_hash != self.last.hash {
            return Err(CorruptionKind::ChainLink { expected: self.last.hash, found: record.prev_hash });
        }
        if record.recorded_at_us < self.last.recorded_at_us {
            return Err(CorruptionKind::TimeWentBack);
        }
        if record_hash(&record.prev_hash, record.seq, record.recorded_at_us, &record.payload) != record.hash {
            return Err(CorruptionKind::Hash);
        }
        self.last = Head { seq: record.seq, hash: record.hash, recorded_at_us: record.recorded_at_us };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::genesis_hash;

    fn record(prev: &Head, payload: &[u8], at: u64) -> Record {
        let seq = prev.seq + 1;
        let hash = record_hash(&prev.hash, seq, at, payload);
        Record { seq, recorded_at_us: at, prev_hash: prev.hash, hash, payload: payload.to_vec() }
    }

    #[test]
    fn the_chain_check_accepts_a_chain_and_names_each_fault() {
        let genesis = genesis_hash("node");
        let mut check = ChainCheck::from_genesis(genesis);
        let first = record(&check.last(), b"one", 10);
        check.check(&first).expect("record 1 follows genesis");
        let head = check.last();
        assert_eq!(head.seq, 1);

        let good = record(&head, b"two", 10);
        let mut skipped = good.clone();
        skipped.seq = 3;
        assert_eq!(check.check(&skipped), Err(CorruptionKind::SeqGap { found: 3 }));
        let mut unlinked = good.clone();
        unlinked.prev_hash = genesis;
        assert_eq!(check.check(&unlinked), Err(CorruptionKind::ChainLink { expected: head.hash, found: genesis }));
        let earlier = record(&head, b"two", 9);
        assert_eq!(check.check(&earlier), Err(CorruptionKind::TimeWentBack));
        let mut altered = good.clone();
        altered.payload = b"tw0".to_vec();
        assert_eq!(check.check(&altered), Err(CorruptionKind::Hash));
        assert_eq!(check.last(), head, "a refused record leaves the check where it was");
        check.check(&good).expect("the good record still follows");
        assert_eq!(check.last().seq, 2);
    }
}
