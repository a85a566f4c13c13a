//! Two small open-addressing hash tables sized for tens of millions of
//! entries: the transaction index (uuid → transaction slot, 8 bytes per
//! bucket, the uuid itself stays in the transaction record) and the pair
//! table (account pair → entry counts per stats class, 16 bytes per bucket).
//! Linear probing, power-of-two capacity, load at most 3/4, no removal
//! (transactions are never removed; a pair whose counts fall to zero keeps
//! its bucket).

use std::hash::BuildHasher;

use ledger::TxId;

/// Smallest capacity (buckets) of a non-empty table.
const MIN_BUCKETS: usize = 16;

fn needs_growth(len: usize, buckets: usize) -> bool {
    // load > 3/4 after one more insert
    (len + 1) * 4 > buckets * 3
}

/// uuid → transaction slot. Each bucket is `tag << 32 | (slot + 1)`, 0 when
/// empty; `tag` is the high half of the uuid's keyed (SipHash-1-3) hash, and
/// the bucket index is derived from `tag` alone so growing needs no rehash of
/// uuids. A tag match is confirmed against the stored transaction's uuid.
///
/// The key is random per table and kept with it in a snapshot, so a loaded
/// table is the saved one, not rebuilt.
#[derive(Debug, Clone)]
pub(crate) struct TxIndex {
    buckets: Vec<u64>,
    len: usize,
    /// Keyed per table: transaction uuids are chosen by clients.
    key: (u64, u64),
}

impl Default for TxIndex {
    fn default() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        Self { buckets: Vec::new(), len: 0, key: (random.hash_one(1u8), random.hash_one(2u8)) }
    }
}

impl TxIndex {
    fn tag(&self, uuid: &TxId) -> u32 {
        let hash = siphasher::sip::SipHasher13::new_with_keys(self.key.0, self.key.1).hash(uuid.0.as_bytes());
        u32::try_from(hash >> 32).expect("high half fits in u32")
    }

    /// Its key, buckets and length, as a snapshot stores them.
    pub(crate) fn raw(&self) -> ((u64, u64), &[u64], usize) {
        (self.key, &self.buckets, self.len)
    }

    /// A table from its key and buckets (a snapshot's): `None` unless the
    /// buckets are a power of two (or none), at most 3/4 full, and name
    /// slots below `txs` only. Whether each uuid sits where its hash says is
    /// not checked here (the snapshot's checksum covers it).
    pub(crate) fn from_raw(key: (u64, u64), buckets: Vec<u64>, txs: usize) -> Option<Self> {
        if !(buckets.is_empty() || buckets.len().is_power_of_two() && buckets.len() >= MIN_BUCKETS) {
            return None;
        }
        let mut len = 0usize;
        for &bucket in &buckets {
            if bucket != 0 {
                let slot = bucket & 0xFFFF_FFFF;
                if slot == 0 || slot > u64::try_from(txs).ok()? {
                    return None;
                }
                len += 1;
            }
        }
        if len != txs || (len > 0 && len * 4 > buckets.len() * 3) {
            return None;
        }
        Some(Self { buckets, len, key })
    }

    fn home(tag: u32, mask: usize) -> usize {
        // Fibonacci spread of the tag, then the table's bits.
        let spread = u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        usize::try_from(spread).expect("u32 fits in usize") & mask
    }

    /// Number of uuids indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slot of `uuid`; `uuid_of(slot)` reads a stored transaction's uuid.
    pub(crate) fn get(&self, uuid: &TxId, uuid_of: impl Fn(u32) -> TxId) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let tag = self.tag(uuid);
        let mask = self.buckets.len() - 1;
        let mut i = Self::home(tag, mask);
        loop {
            let bucket = self.buckets[i];
            if bucket == 0 {
                return None;
            }
            if bucket >> 32 == u64::from(tag) {
                let slot = u32::try_from((bucket & 0xFFFF_FFFF) - 1).expect("slot fits in u32");
                if uuid_of(slot) == *uuid {
                    return Some(slot);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Reads the bucket a lookup of `uuid` starts at, so that a lookup soon
    /// after finds it in the cache; returns it to keep the read.
    pub(crate) fn warm(&self, uuid: &TxId) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        self.buckets[Self::home(self.tag(uuid), self.buckets.len() - 1)]
    }

    /// Makes room for `total` uuids in all without growing again.
    pub(crate) fn reserve(&mut self, total: usize) {
        let mut size = self.buckets.len().max(MIN_BUCKETS);
        while needs_growth(total.saturating_sub(1), size) {
            size *= 2;
        }
        if size > self.buckets.len() {
            let mut buckets = vec![0u64; size];
            for &bucket in self.buckets.iter().filter(|&&b| b != 0) {
                Self::place(&mut buckets, bucket);
            }
            self.buckets = buckets;
        }
    }

    /// Indexes `uuid` at `slot`. The caller checked that `uuid` is absent.
    pub(crate) fn insert(&mut self, uuid: &TxId, slot: u32) {
        if needs_growth(self.len, self.buckets.len()) {
            self.grow();
        }
        let tag = self.tag(uuid);
        let bucket = u64::from(tag) << 32 | (u64::from(slot) + 1);
        Self::place(&mut self.buckets, bucket);
        self.len += 1;
    }

    fn place(buckets: &mut [u64], bucket: u64) {
        let mask = buckets.len() - 1;
        let tag = u32::try_from(bucket >> 32).expect("high half fits in u32");
        let mut i = Self::home(tag, mask);
        while buckets[i] != 0 {
            i = (i + 1) & mask;
        }
        buckets[i] = bucket;
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let mut buckets = vec![0u64; size];
        for &bucket in self.buckets.iter().filter(|&&b| b != 0) {
            Self::place(&mut buckets, bucket);
        }
        self.buckets = buckets;
    }
}

/// Unordered account pair (two different slots) → number of entries between
/// them, per stats class. Keys are `low << 32 | high` with `low < high`, so
/// never 0 (the empty marker). Account slots are assigned by the node, not
/// chosen by clients, so a multiplicative hash suffices.
#[derive(Debug, Clone, Default)]
pub(crate) struct PairTable {
    buckets: Vec<(u64, [u32; 2])>,
    len: usize,
}

impl PairTable {
    /// Its buckets and length, as a snapshot stores them.
    pub(crate) fn raw(&self) -> (&[(u64, [u32; 2])], usize) {
        (&self.buckets, self.len)
    }

    /// A table from its buckets (a snapshot's): `None` unless they are a
    /// power of two (or none), at most 3/4 full, keyed by pairs of two
    /// different slots below `accounts`.
    pub(crate) fn from_raw(buckets: Vec<(u64, [u32; 2])>, accounts: usize) -> Option<Self> {
        if !(buckets.is_empty() || buckets.len().is_power_of_two() && buckets.len() >= MIN_BUCKETS) {
            return None;
        }
        let accounts = u64::try_from(accounts).ok()?;
        let mut len = 0usize;
        for &(key, _) in &buckets {
            if key != 0 {
                let (low, high) = (key >> 32, key & 0xFFFF_FFFF);
                if low >= high || high >= accounts {
                    return None;
                }
                len += 1;
            }
        }
        if len > 0 && len * 4 > buckets.len() * 3 {
            return None;
        }
        Some(Self { buckets, len })
    }

    fn key(a: u32, b: u32) -> u64 {
        debug_assert_ne!(a, b, "a pair of two different accounts");
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        u64::from(low) << 32 | u64::from(high)
    }

    fn home(key: u64, mask: usize) -> usize {
        let spread = (key ^ (key >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        usize::try_from(spread).expect("u32 fits in usize") & mask
    }

    /// The counts of the pair `{a, b}` (`a != b`), inserted as zeros if new.
    pub(crate) fn counts_mut(&mut self, a: u32, b: u32) -> &mut [u32; 2] {
        let key = Self::key(a, b);
        if !self.buckets.is_empty() {
            let mask = self.buckets.len() - 1;
            let mut i = Self::home(key, mask);
            loop {
                match self.buckets[i].0 {
                    0 => break,
                    k if k == key => return &mut self.buckets[i].1,
                    _ => i = (i + 1) & mask,
                }
            }
        }
        if needs_growth(self.len, self.buckets.len()) {
            self.grow();
        }
        self.len += 1;
        let i = Self::place(&mut self.buckets, (key, [0, 0]));
        &mut self.buckets[i].1
    }

    /// Reads the bucket a lookup of `{a, b}` starts at (see [`TxIndex::warm`]).
    pub(crate) fn warm(&self, a: u32, b: u32) -> u64 {
        if self.buckets.is_empty() || a == b {
            return 0;
        }
        self.buckets[Self::home(Self::key(a, b), self.buckets.len() - 1)].0
    }

    /// The counts of the pair `{a, b}`, zeros if never seen.
    #[cfg(test)]
    pub(crate) fn counts(&self, a: u32, b: u32) -> [u32; 2] {
        let key = Self::key(a, b);
        if self.buckets.is_empty() {
            return [0, 0];
        }
        let mask = self.buckets.len() - 1;
        let mut i = Self::home(key, mask);
        loop {
            match self.buckets[i] {
                (0, _) => return [0, 0],
                (k, counts) if k == key => return counts,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn place(buckets: &mut [(u64, [u32; 2])], bucket: (u64, [u32; 2])) -> usize {
        let mask = buckets.len() - 1;
        let mut i = Self::home(bucket.0, mask);
        while buckets[i].0 != 0 {
            i = (i + 1) & mask;
        }
        buckets[i] = bucket;
        i
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let mut buckets = vec![(0u64, [0u32; 2]); size];
        for &bucket in self.buckets.iter().filter(|b| b.0 != 0) {
            Self::place(&mut buckets, bucket);
        }
        self.buckets = buckets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> TxId {
        TxId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_reserved_tx_index_does_not_grow_and_keeps_what_it_held() {
        let mut index = TxIndex::default();
        let uuids: Vec<TxId> = (0..1_000u128).map(|n| uuid(n * 7919)).collect();
        for (slot, u) in (0u32..).zip(&uuids[..100]) {
            index.insert(u, slot);
        }
        index.reserve(1_000);
        let size = index.buckets.len();
        assert!(size * 3 >= 1_000 * 4, "{size} buckets hold 1,000 at load 3/4");
        for (slot, u) in (0u32..).zip(&uuids).skip(100) {
            index.insert(u, slot);
        }
        assert_eq!(index.buckets.len(), size, "no growth after reserving");
        for (slot, u) in (0u32..).zip(&uuids) {
            assert_eq!(index.get(u, |s| uuids[usize::try_from(s).expect("fits")]), Some(slot));
        }
        assert_eq!(index.get(&uuid(1), |s| uuids[usize::try_from(s).expect("fits")]), None);
    }

    #[test]
    fn tx_index_finds_every_uuid_across_growth_and_misses_others() {
        let uuids: Vec<TxId> =
            (0..5_000u128).map(|n| uuid(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))).collect();
        let mut index = TxIndex::default();
        let uuid_of = |slot: u32| uuids[usize::try_from(slot).expect("fits")];
        assert_eq!(index.get(&uuids[0], uuid_of), None);
        for (slot, u) in (0u32..).zip(&uuids) {
            assert_eq!(index.get(u, uuid_of), None);
            index.insert(u, slot);
        }
        assert_eq!(index.len(), uuids.len());
        for (slot, u) in (0u32..).zip(&uuids) {
            assert_eq!(index.get(u, uuid_of), Some(slot));
        }
        assert_eq!(index.get(&uuid(u128::MAX), uuid_of), None);
        let copy = index.clone();
        assert_eq!(copy.get(&uuids[4_999], uuid_of), Some(4_999));
    }

    #[test]
    fn pair_table_counts_unordered_pairs_across_growth() {
        let mut pairs = PairTable::default();
        assert_eq!(pairs.counts(1, 2), [0, 0]);
        for a in 0..100u32 {
            for b in (a + 1)..100 {
                pairs.counts_mut(a, b)[0] += a + b;
                pairs.counts_mut(b, a)[1] += 1;
            }
        }
        assert_eq!(pairs.len, 100 * 99 / 2);
        for a in 0..100u32 {
            for b in 0..100u32 {
                if a != b {
                    assert_eq!(pairs.counts(a, b), [a + b, 1], "{a} {b}");
                }
            }
        }
        assert_eq!(pairs.counts(0, u32::MAX), [0, 0]);
        pairs.counts_mut(u32::MAX - 1, u32::MAX)[0] = 7;
        assert_eq!(pairs.counts(u32::MAX, u32::MAX - 1), [7, 0]);
    }
}
