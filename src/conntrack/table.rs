//! The live conntrack table: every entry the kernel reported, indexed by what identifies it (the
//! kernel's id where known, else the original tuple and zone), kept current by events and
//! replaced whole by a resync dump. Pure: events come in as values from the sources.
//!
//! Rows live in one vector (compact, quick to scan and sort); the indexes map to positions, and a
//! removal moves the last row into the hole. Positions therefore change with every change to the
//! table: views ([`Table::sorted`]) hold positions valid for one [`Table::generation`], and
//! anything kept across changes should hold an [`EntryKey`] and find it again
//! ([`Table::position`]).
//!
//! Each row remembers the generation it was inserted at and last changed at, so a screen can make
//! new and changed entries stand out without a clock, and an insertion serial that orders rows
//! whose sort keys tie, so that equal rows keep their place from one frame to the next.

use super::filter::Filter;
use super::{CtEvent, CtEventKind, Entry, EntryKey, State, Status};
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::cmp::Ordering;
use std::fmt;
use std::hash::BuildHasher;
use std::hash::Hash;
use std::net::IpAddr;

/// What an event did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new row (also for an update of an entry the table did not have).
    Inserted,
    /// An existing row changed.
    Updated,
    /// An update that changed nothing.
    Unchanged,
    Removed,
    /// A destroy of an entry the table did not have: not an error (it may have been created and
    /// destroyed between dumps).
    Ignored,
}

/// What a resync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resync {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

/// An entry with its history in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub entry: Entry,
    /// The generation the entry appeared at.
    pub born: u64,
    /// The generation it last changed at (`born` if never).
    pub changed: u64,
    /// Insertion order, unique per row: ties in sorting go by it.
    pub serial: u64,
}

/// The columns rows sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Proto,
    /// TCP's states in their life-cycle order, then other protocols' by name, then stateless
    /// entries by user-land state.
    State,
    /// Original source address, then source port; IPv4 before IPv6.
    Src,
    /// Original destination address, then destination port.
    Dst,
    Sport,
    Dport,
    /// The reply tuple's source, then its source port: who really answers (after DNAT).
    Reply,
    Timeout,
    /// Unreplied first, then replied, then assured; the other status bits break ties.
    Flags,
    Mark,
    Zone,
    /// Both directions together; entries without counters last.
    Packets,
    Bytes,
    /// Youngest first (latest start); entries without a start time last.
    Age,
    /// Insertion order: oldest row first.
    Arrival,
}

impl SortKey {
    /// Every key, in the order of the Conntrack screen's columns (its `s` key steps through
    /// them so).
    pub const ALL: [SortKey; 15] = [
        SortKey::Proto,
        SortKey::State,
        SortKey::Src,
        SortKey::Sport,
        SortKey::Dst,
        SortKey::Dport,
        SortKey::Reply,
        SortKey::Timeout,
        SortKey::Flags,
        SortKey::Mark,
        SortKey::Zone,
        SortKey::Packets,
        SortKey::Bytes,
        SortKey::Age,
        SortKey::Arrival,
    ];
}

/// What to group rows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// The state column ([`Entry::state_label`]).
    State,
    Proto,
    /// Original source address (top talkers).
    Src,
    /// Destination port with its protocol (`443/tcp`); entries without ports by protocol.
    Dport,
}

/// One group: its label, how many entries, and their packets and bytes in both directions (0
/// where accounting is off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub label: String,
    pub count: usize,
    pub packets: u64,
    pub bytes: u64,
}

/// Counts for the summary strip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub by_state: Vec<Group>,
    pub by_proto: Vec<Group>,
}

/// A hash index from a row's key (or id) to its position. It stores positions only, the keys
/// staying in the rows: 5 bytes a bucket where a map holding copies of the keys took ~57, which
/// at 250,000 entries (524,288 buckets) is 2.6 MB instead of 30.
#[derive(Clone)]
struct PosIndex<K> {
    table: HashTable<u32>,
    key: fn(&Entry) -> K,
}

impl<K: Hash + Eq + fmt::Debug> fmt::Debug for PosIndex<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PosIndex({} positions)", self.table.len())
    }
}

impl<K: Hash + Eq> PosIndex<K> {
    fn new(key: fn(&Entry) -> K) -> PosIndex<K> {
        PosIndex {
            table: HashTable::new(),
            key,
        }
    }

    fn hash(k: &K) -> u64 {
        FxBuildHasher.hash_one(k)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes: a 4-byte position and a control byte per bucket, at most 7/8 of buckets full.
    fn heap_bytes(&self) -> usize {
        self.table.capacity() * 8 / 7 * 5
    }

    fn get(&self, rows: &[Row], k: &K) -> Option<u32> {
        let key = self.key;
        self.table
            .find(Self::hash(k), |&p| key(&rows[p as usize].entry) == *k)
            .copied()
    }

    /// Index `pos` under `k`, which no other row holds; `rows` must hold every indexed row.
    fn insert(&mut self, rows: &[Row], k: &K, pos: u32) {
        let key = self.key;
        self.table.insert_unique(Self::hash(k), pos, |&p| {
            Self::hash(&key(&rows[p as usize].entry))
        });
    }

    /// Forget `pos`, indexed under `k`.
    fn remove(&mut self, k: &K, pos: u32) {
        if let Ok(slot) = self.table.find_entry(Self::hash(k), |&p| p == pos) {
            slot.remove();
        }
    }

    /// The row indexed under `k` moved from `from` to `to`.
    fn repoint(&mut self, k: &K, from: u32, to: u32) {
        if let Some(p) = self.table.find_mut(Self::hash(k), |&p| p == from) {
            *p = to;
        }
    }

    fn reserve(&mut self, n: usize, rows: &[Row]) {
        let key = self.key;
        self.table
            .reserve(n, |&p| Self::hash(&key(&rows[p as usize].entry)));
    }
}

fn entry_id(e: &Entry) -> u32 {
    e.id
}

/// What a re-read compares to find an update: the state and the reply/assured flags.
fn noted_state(e: &Entry) -> (Option<&State>, u32) {
    (
        e.state.as_ref(),
        e.status.0 & (Status::SEEN_REPLY | Status::ASSURED),
    )
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Table {
    rows: Vec<Row>,
    by_key: PosIndex<EntryKey>,
    /// Rows with a non-zero id only.
    by_id: PosIndex<u32>,
    generation: u64,
    serial: u64,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            rows: Vec::new(),
            by_key: PosIndex::new(Entry::key),
            by_id: PosIndex::new(entry_id),
            generation: 0,
            serial: 0,
        }
    }
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// A table holding a dump.
    pub fn from_dump(dump: Vec<Entry>) -> Table {
        let mut t = Table::new();
        t.replace_all(dump);
        t
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bumped by every change; positions are valid within one generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every row, in storage order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn get(&self, pos: u32) -> Option<&Row> {
        self.rows.get(pos as usize)
    }

    /// Roughly how many bytes the table holds on the heap: its rows (with the entries' own
    /// strings) and its two indexes. For the memory-per-entry figure.
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.rows.iter().map(|r| r.entry.heap_bytes()).sum();
        self.rows.capacity() * std::mem::size_of::<Row>()
            + strings
            + self.by_key.heap_bytes()
            + self.by_id.heap_bytes()
    }

    /// Where the entry with this key is now.
    pub fn position(&self, key: &EntryKey) -> Option<u32> {
        self.by_key.get(&self.rows, key)
    }

    /// Where the entry with this kernel id is now (ids are non-zero).
    pub fn position_of_id(&self, id: u32) -> Option<u32> {
        if id == 0 {
            return None;
        }
        self.by_id.get(&self.rows, &id)
    }

    /// The row of an entry as an event names it: by id when it has one the table knows, else by
    /// its key.
    fn find(&self, e: &Entry) -> Option<u32> {
        self.position_of_id(e.id)
            .or_else(|| self.position(&e.key()))
    }

    /// Apply one event, in the order the kernel sent it.
    pub fn apply(&mut self, ev: CtEvent) -> Applied {
        match ev {
            CtEvent {
                kind: CtEventKind::New | CtEventKind::Update,
                entry: e,
            } => self.upsert(e),
            CtEvent {
                kind: CtEventKind::Destroy,
                entry: e,
            } => match self.find(&e) {
                Some(pos) => {
                    self.generation += 1;
                    self.remove_at(pos);
                    Applied::Removed
                }
                None => Applied::Ignored,
            },
        }
    }

    fn upsert(&mut self, e: Entry) -> Applied {
        let mut pos = self.find(&e);
        // Another row holding this key or id (the kernel reused a tuple whose destroy event was
        // lost) gives way to the newer report.
        let key = e.key();
        if let Some(other) = self.position(&key)
            && Some(other) != pos
        {
            self.evict(other, &mut pos);
        }
        if let Some(other) = self.position_of_id(e.id)
            && Some(other) != pos
        {
            self.evict(other, &mut pos);
        }
        let Some(pos) = pos else {
            self.generation += 1;
            self.serial += 1;
            let pos = self.rows.len() as u32;
            let id = e.id;
            self.rows.push(Row {
                entry: e,
                born: self.generation,
                changed: self.generation,
                serial: self.serial,
            });
            self.by_key.insert(&self.rows, &key, pos);
            if id != 0 {
                self.by_id.insert(&self.rows, &id, pos);
            }
            return Applied::Inserted;
        };
        if self.rows[pos as usize].entry == e {
            return Applied::Unchanged;
        }
        self.generation += 1;
        let row = &mut self.rows[pos as usize];
        let (old_key, old_id, id) = (row.entry.key(), row.entry.id, e.id);
        row.entry = e;
        row.changed = self.generation;
        if old_key != key {
            self.by_key.remove(&old_key, pos);
            self.by_key.insert(&self.rows, &key, pos);
        }
        if old_id != id {
            if old_id != 0 {
                self.by_id.remove(&old_id, pos);
            }
            if id != 0 {
                self.by_id.insert(&self.rows, &id, pos);
            }
        }
        Applied::Updated
    }

    /// Remove the row at `victim`, keeping `pos` pointing at the same row.
    fn evict(&mut self, victim: u32, pos: &mut Option<u32>) {
        let last = self.rows.len() as u32 - 1;
        self.generation += 1;
        self.remove_at(victim);
        if *pos == Some(last) {
            *pos = Some(victim);
        }
    }

    /// Remove the row at `pos`, moving the last row into its place.
    fn remove_at(&mut self, pos: u32) {
        let e = &self.rows[pos as usize].entry;
        self.by_key.remove(&e.key(), pos);
        if e.id != 0 {
            self.by_id.remove(&e.id, pos);
        }
        self.rows.swap_remove(pos as usize);
        if let Some(moved) = self.rows.get(pos as usize) {
            let from = self.rows.len() as u32;
            self.by_key.repoint(&moved.entry.key(), from, pos);
            if moved.entry.id != 0 {
                self.by_id.repoint(&moved.entry.id, from, pos);
            }
        }
    }

    /// Replace everything with a fresh dump (after lost events, or a refresh from /proc). Rows
    /// that were already there keep their birth and serial, and count as changed only if they
    /// differ; a later duplicate in the dump wins.
    pub fn replace_all(&mut self, dump: Vec<Entry>) -> Resync {
        self.replace_all_noting(dump, &mut |_, _| {})
    }

    /// [`Table::replace_all`], telling `note` what the dump says happened since the table
    /// before it, as the events that would have said so: `New` for an entry it did not have,
    /// `Destroy` (with the entry as it was) for one the dump no longer holds, and `Update` for
    /// one whose state or reply/assured flags differ (counters and timeouts change with every
    /// packet and are not worth an event). The news come in dump order, the destroys after.
    pub fn replace_all_noting(
        &mut self,
        dump: Vec<Entry>,
        note: &mut dyn FnMut(CtEventKind, &Entry),
    ) -> Resync {
        self.generation += 1;
        let generation = self.generation;
        let old_rows = std::mem::take(&mut self.rows);
        let old_key = std::mem::replace(&mut self.by_key, PosIndex::new(Entry::key));
        let old_id = std::mem::replace(&mut self.by_id, PosIndex::new(entry_id));
        let mut taken = vec![false; old_rows.len()];
        let mut stats = Resync::default();
        self.rows.reserve(dump.len());
        self.by_key.reserve(dump.len(), &self.rows);
        self.by_id.reserve(dump.len(), &self.rows);
        for e in dump {
            let key = e.key();
            if let Some(dup) = self.by_key.get(&self.rows, &key) {
                // The same connection twice in one dump: keep the later report.
                let row = &mut self.rows[dup as usize];
                let (old, id) = (row.entry.id, e.id);
                if row.entry != e {
                    row.entry = e;
                    if row.changed != generation {
                        row.changed = generation;
                        if row.born != generation {
                            stats.changed += 1;
                        }
                    }
                }
                if old != id {
                    if old != 0 {
                        self.by_id.remove(&old, dup);
                    }
                    if id != 0 && self.by_id.get(&self.rows, &id).is_none() {
                        self.by_id.insert(&self.rows, &id, dup);
                    }
                }
                continue;
            }
            let old = (e.id != 0)
                .then(|| old_id.get(&old_rows, &e.id))
                .flatten()
                .or_else(|| old_key.get(&old_rows, &key))
                .filter(|&p| !taken[p as usize]);
            let row = match old {
                Some(p) => {
                    taken[p as usize] = true;
                    let prev = &old_rows[p as usize];
                    let changed = if prev.entry == e {
                        prev.changed
                    } else {
                        stats.changed += 1;
                        if noted_state(&prev.entry) != noted_state(&e) {
                            note(CtEventKind::Update, &e);
                        }
                        generation
                    };
                    Row {
                        entry: e,
                        born: prev.born,
                        changed,
                        serial: prev.serial,
                    }
                }
                None => {
                    stats.added += 1;
                    note(CtEventKind::New, &e);
                    self.serial += 1;
                    Row {
                        entry: e,
                        born: generation,
                        changed: generation,
                        serial: self.serial,
                    }
                }
            };
            let pos = self.rows.len() as u32;
            let id = row.entry.id;
            self.rows.push(row);
            self.by_key.insert(&self.rows, &key, pos);
            if id != 0 && self.by_id.get(&self.rows, &id).is_none() {
                self.by_id.insert(&self.rows, &id, pos);
            }
        }
        stats.removed = taken.iter().filter(|t| !**t).count();
        if stats.removed > 0 {
            for (row, _) in old_rows.iter().zip(&taken).filter(|(_, t)| !**t) {
                note(CtEventKind::Destroy, &row.entry);
            }
        }
        stats
    }

    /// Positions of the rows passing `filter` (all without one), ordered by `key`; `reverse`
    /// flips the order of the key, while rows whose keys tie stay in arrival order either way.
    /// Valid for the current generation.
    pub fn sorted(&self, key: SortKey, reverse: bool, filter: Option<&Filter>) -> Vec<u32> {
        let mut keyed: Vec<Keyed> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| filter.is_none_or(|f| f.matches(&r.entry)))
            .map(|(i, r)| {
                let (class, hi, lo) = sort_key(r, key);
                Keyed {
                    class,
                    hi,
                    lo,
                    serial: r.serial,
                    pos: i as u32,
                }
            })
            .collect();
        keyed.sort_unstable_by(|a, b| {
            let o = (a.class, a.hi, a.lo).cmp(&(b.class, b.hi, b.lo));
            let o = if reverse { o.reverse() } else { o };
            o.then(a.serial.cmp(&b.serial))
        });
        keyed.into_iter().map(|k| k.pos).collect()
    }

    /// Positions of the rows passing `filter`, in storage order.
    pub fn matching(&self, filter: &Filter) -> Vec<u32> {
        (0..self.rows.len() as u32)
            .filter(|&i| filter.matches(&self.rows[i as usize].entry))
            .collect()
    }

    /// Rows grouped, largest group first (then most bytes, then by label).
    pub fn group_by(&self, key: GroupKey, filter: Option<&Filter>) -> Vec<Group> {
        let rows = self
            .rows
            .iter()
            .map(|r| &r.entry)
            .filter(|e| filter.is_none_or(|f| f.matches(e)));
        match key {
            GroupKey::State => group(rows, |e| e.state_label(), |s| s.to_string()),
            GroupKey::Proto => group(rows, |e| e.proto, |p| p.name()),
            GroupKey::Src => group(rows, |e| e.orig.src, |a| a.to_string()),
            GroupKey::Dport => group(
                rows,
                |e| (e.proto, e.orig.dport),
                |(p, d)| match d {
                    Some(d) => format!("{d}/{}", p.name()),
                    None => p.name(),
                },
            ),
        }
    }

    /// Counts per state and per protocol, for the summary strip.
    pub fn summary(&self) -> Summary {
        Summary {
            total: self.rows.len(),
            by_state: self.group_by(GroupKey::State, None),
            by_proto: self.group_by(GroupKey::Proto, None),
        }
    }
}

struct Keyed {
    class: u8,
    hi: u128,
    lo: u64,
    serial: u64,
    pos: u32,
}

fn addr_key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (0, u128::from(u32::from(v))),
        IpAddr::V6(v) => (1, u128::from(v)),
    }
}

/// The first 16 bytes of a name, as a number that orders like the text.
fn name_key(s: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

/// `(class, primary, secondary)`: classes put rows without the value after those with it.
fn sort_key(r: &Row, key: SortKey) -> (u8, u128, u64) {
    let e = &r.entry;
    let opt = |v: Option<u64>| match v {
        Some(v) => (0, u128::from(v), 0),
        None => (1, 0, 0),
    };
    match key {
        SortKey::Proto => (0, u128::from(e.proto.0), 0),
        SortKey::State => match &e.state {
            Some(State::Tcp(t)) => (0, *t as u128, 0),
            Some(State::Other(s)) => (1, name_key(s), 0),
            None => (2, name_key(e.ctstate()), 0),
        },
        SortKey::Src => {
            let (c, a) = addr_key(e.orig.src);
            (c, a, u64::from(e.orig.sport.unwrap_or(0)))
        }
        SortKey::Dst => {
            let (c, a) = addr_key(e.orig.dst);
            (c, a, u64::from(e.orig.dport.unwrap_or(0)))
        }
        SortKey::Sport => opt(e.orig.sport.map(u64::from)),
        SortKey::Dport => opt(e.orig.dport.map(u64::from)),
        SortKey::Reply => {
            let (c, a) = addr_key(e.reply.src);
            (c, a, u64::from(e.reply.sport.unwrap_or(0)))
        }
        SortKey::Timeout => (0, u128::from(e.timeout), 0),
        SortKey::Flags => {
            let rank = u128::from(e.status.has(Status::SEEN_REPLY))
                + 2 * u128::from(e.status.has(Status::ASSURED));
            (0, rank, u64::from(e.status.0))
        }
        SortKey::Mark => (0, u128::from(e.mark), 0),
        SortKey::Zone => (0, u128::from(e.zone), 0),
        SortKey::Packets => opt(e.packets()),
        SortKey::Bytes => opt(e.bytes()),
        SortKey::Age => opt(e.start_ns.map(|s| u64::MAX - s)),
        SortKey::Arrival => (0, u128::from(r.serial), 0),
    }
}

#[derive(Default)]
struct Acc {
    count: usize,
    packets: u64,
    bytes: u64,
}

fn group<'a, K: Hash + Eq>(
    rows: impl Iterator<Item = &'a Entry>,
    key: impl Fn(&'a Entry) -> K,
    label: impl Fn(K) -> String,
) -> Vec<Group> {
    let mut m: FxHashMap<K, Acc> = FxHashMap::default();
    for e in rows {
        let a = m.entry(key(e)).or_default();
        a.count += 1;
        a.packets = a.packets.saturating_add(e.packets().unwrap_or(0));
        a.bytes = a.bytes.saturating_add(e.bytes().unwrap_or(0));
    }
    let mut v: Vec<Group> = m
        .into_iter()
        .map(|(k, a)| Group {
            label: label(k),
            count: a.count,
            packets: a.packets,
            bytes: a.bytes,
        })
        .collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.bytes.cmp(&a.bytes))
            .then_with(|| a.label.cmp(&b.label))
    });
    v
}

/// Compare two rows' sort keys (for callers merging views).
pub fn compare(a: &Row, b: &Row, key: SortKey) -> Ordering {
    compare_sorted(a, b, key, false)
}

/// Compare two rows the way [`Table::sorted`] orders them, `reverse` included: a screen that
/// keeps rows the table no longer holds (destroyed entries fading out) merges them in with it.
pub fn compare_sorted(a: &Row, b: &Row, key: SortKey, reverse: bool) -> Ordering {
    let o = sort_key(a, key).cmp(&sort_key(b, key));
    let o = if reverse { o.reverse() } else { o };
    o.then(a.serial.cmp(&b.serial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::TcpState;
    use crate::conntrack::synth;

    fn sample(n: usize) -> Vec<Entry> {
        synth::entries(n)
    }

    /// The table's indexes agree with its rows.
    fn consistent(t: &Table) {
        assert_eq!(t.by_key.len(), t.rows.len());
        for (i, r) in t.rows.iter().enumerate() {
            assert_eq!(t.position(&r.entry.key()), Some(i as u32));
            if r.entry.id != 0 {
                assert_eq!(t.position_of_id(r.entry.id), Some(i as u32));
            }
        }
        assert_eq!(
            t.by_id.len(),
            t.rows.iter().filter(|r| r.entry.id != 0).count()
        );
    }

    #[test]
    fn events_insert_update_and_destroy() {
        let es = sample(50);
        let mut t = Table::new();
        for e in &es {
            assert_eq!(t.apply(CtEvent::new(e.clone())), Applied::Inserted);
        }
        assert_eq!(t.len(), 50);
        let g = t.generation();
        assert_eq!(t.apply(CtEvent::update(es[3].clone())), Applied::Unchanged);
        assert_eq!(t.generation(), g);
        let mut up = es[3].clone();
        up.timeout += 5;
        up.state = Some(State::Tcp(TcpState::TimeWait));
        assert_eq!(t.apply(CtEvent::update(up.clone())), Applied::Updated);
        let row = t.get(t.position(&up.key()).unwrap()).unwrap();
        assert_eq!(row.entry, up);
        assert!(row.changed > row.born);
        assert_eq!(t.apply(CtEvent::destroy(es[0].clone())), Applied::Removed);
        assert_eq!(t.apply(CtEvent::destroy(es[0].clone())), Applied::Ignored);
        assert_eq!(t.len(), 49);
        consistent(&t);
        // Destroy by id alone still finds the row, whatever the tuple says.
        let mut by_id = es[10].clone();
        by_id.orig.sport = Some(1);
        assert_eq!(t.apply(CtEvent::destroy(by_id)), Applied::Removed);
        // An update for an entry never seen is an insertion.
        let mut fresh = es[0].clone();
        fresh.id = 9_999_999;
        assert_eq!(t.apply(CtEvent::update(fresh)), Applied::Inserted);
        consistent(&t);
    }

    #[test]
    fn a_reread_notes_what_changed_as_events() {
        let es = sample(10);
        let mut t = Table::from_dump(es.clone());
        let mut next = es.clone();
        let gone = next.remove(2);
        let mut moved = next[4].clone();
        moved.state = Some(State::Tcp(TcpState::TimeWait));
        next[4] = moved.clone();
        // A timeout alone is no event.
        next[5].timeout += 7;
        let mut fresh = es[0].clone();
        fresh.id = 4_242;
        fresh.orig.sport = Some(1);
        next.push(fresh.clone());
        let mut noted = Vec::new();
        let stats = t.replace_all_noting(next, &mut |k, e| noted.push((k, e.clone())));
        assert_eq!(
            noted,
            [
                (CtEventKind::Update, moved),
                (CtEventKind::New, fresh),
                (CtEventKind::Destroy, gone),
            ]
        );
        assert_eq!((stats.added, stats.removed, stats.changed), (1, 1, 2));
        consistent(&t);
    }

    #[test]
    fn entries_without_ids_go_by_key_and_a_reused_tuple_replaces() {
        let mut es = sample(20);
        for e in &mut es {
            e.id = 0;
        }
        let mut t = Table::from_dump(es.clone());
        consistent(&t);
        assert_eq!(t.apply(CtEvent::destroy(es[5].clone())), Applied::Removed);
        // The same tuple under a new id (its destroy event lost): one row, the newer.
        let mut again = es[7].clone();
        again.id = 42;
        again.timeout = 1;
        assert_eq!(t.apply(CtEvent::new(again.clone())), Applied::Updated);
        assert_eq!(t.len(), 19);
        consistent(&t);
        let mut newer = again.clone();
        newer.id = 43;
        assert_eq!(t.apply(CtEvent::new(newer)), Applied::Updated);
        assert_eq!(t.position_of_id(42), None);
        consistent(&t);
    }

    /// The table's semantics, slowly: a list of entries, searched by id first, then by key.
    #[derive(Default)]
    struct Model(Vec<Entry>);

    impl Model {
        fn find(&self, e: &Entry) -> Option<usize> {
            (e.id != 0)
                .then(|| self.0.iter().position(|m| m.id == e.id))
                .flatten()
                .or_else(|| self.0.iter().position(|m| m.key() == e.key()))
        }
        fn upsert(&mut self, e: Entry) {
            let at = self.find(&e);
            let keep = |m: &Entry, i: usize| {
                Some(i) == at || (m.key() != e.key() && (e.id == 0 || m.id != e.id))
            };
            let mut i = 0;
            let mut at2 = None;
            self.0.retain(|m| {
                let k = keep(m, i);
                if k && Some(i) == at {
                    at2 = Some(m.clone());
                }
                i += 1;
                k
            });
            match at2 {
                Some(old) => {
                    let p = self.0.iter().position(|m| *m == old).unwrap();
                    self.0[p] = e;
                }
                None => self.0.push(e),
            }
        }
        fn destroy(&mut self, e: &Entry) {
            if let Some(i) = self.find(e) {
                self.0.remove(i);
            }
        }
    }

    #[test]
    fn random_event_streams_keep_the_indexes_true() {
        let pool = sample(120);
        let mut t = Table::new();
        let mut model = Model::default();
        let mut x = 7u64;
        for step in 0..6000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut e = pool[(x >> 33) as usize % pool.len()].clone();
            match (x >> 20) % 6 {
                0 => {
                    t.apply(CtEvent::new(e.clone()));
                    model.upsert(e);
                }
                1 => {
                    e.timeout = step as u32;
                    t.apply(CtEvent::update(e.clone()));
                    model.upsert(e);
                }
                2 => {
                    // The tuple again under a new id (its destroy lost).
                    e.id = 1_000_000 + (step % 50) as u32;
                    t.apply(CtEvent::new(e.clone()));
                    model.upsert(e);
                }
                3 => {
                    // Another entry's id with this tuple.
                    e.id = pool[(x >> 40) as usize % pool.len()].id;
                    t.apply(CtEvent::update(e.clone()));
                    model.upsert(e);
                }
                4 => {
                    e.id = 0;
                    t.apply(CtEvent::update(e.clone()));
                    model.upsert(e);
                }
                _ => {
                    t.apply(CtEvent::destroy(e.clone()));
                    model.destroy(&e);
                }
            }
            if step % 500 == 0 {
                consistent(&t);
            }
        }
        consistent(&t);
        assert_eq!(t.len(), model.0.len());
        for m in &model.0 {
            let p = t
                .position(&m.key())
                .expect("the model's entry is in the table");
            assert_eq!(&t.get(p).unwrap().entry, m);
        }
    }

    #[test]
    fn resync_keeps_births_and_counts_changes() {
        let es = sample(100);
        let mut t = Table::from_dump(es[..60].to_vec());
        let born = t.get(t.position(&es[10].key()).unwrap()).unwrap().born;
        let mut dump = es[20..100].to_vec();
        dump[0].timeout += 1; // es[20] changed
        dump.push(es[30].clone()); // a duplicate in the dump
        let r = t.replace_all(dump);
        assert_eq!(
            r,
            Resync {
                added: 40,
                removed: 20,
                changed: 1
            }
        );
        assert_eq!(t.len(), 80);
        assert_eq!(t.position(&es[10].key()), None);
        let kept = t.get(t.position(&es[40].key()).unwrap()).unwrap();
        assert_eq!(kept.born, born, "born in the first dump, like es[10]");
        assert!(kept.changed < t.generation());
        consistent(&t);
    }

    #[test]
    fn sorting_by_every_key_is_ordered_stable_and_reversible() {
        let t = Table::from_dump(sample(3000));
        for key in SortKey::ALL {
            let v = t.sorted(key, false, None);
            assert_eq!(v.len(), 3000);
            for w in v.windows(2) {
                let (a, b) = (t.get(w[0]).unwrap(), t.get(w[1]).unwrap());
                assert_eq!(compare(a, b, key), Ordering::Less, "{key:?}");
            }
            let r = t.sorted(key, true, None);
            for w in r.windows(2) {
                let (a, b) = (t.get(w[0]).unwrap(), t.get(w[1]).unwrap());
                assert_eq!(compare_sorted(a, b, key, true), Ordering::Less, "{key:?}");
                let primary = sort_key(a, key).cmp(&sort_key(b, key));
                assert_ne!(primary, Ordering::Less, "{key:?} reversed");
                if primary == Ordering::Equal {
                    assert!(a.serial < b.serial, "ties keep arrival order");
                }
            }
        }
        let by_timeout = t.sorted(SortKey::Timeout, false, None);
        let first = &t.get(by_timeout[0]).unwrap().entry;
        assert!(t.rows().iter().all(|r| r.entry.timeout >= first.timeout));
    }

    #[test]
    fn sorting_meaningfully() {
        let t = Table::from_dump(sample(2000));
        let names = |key| {
            t.sorted(key, false, None)
                .iter()
                .map(|&p| t.get(p).unwrap().entry.state_label().to_string())
                .collect::<Vec<_>>()
        };
        let states = names(SortKey::State);
        let first_tw = states.iter().position(|s| s == "TIME_WAIT").unwrap();
        let last_syn = states.iter().rposition(|s| s == "SYN_SENT").unwrap();
        assert!(last_syn < first_tw, "TCP states in life-cycle order");
        let src = t.sorted(SortKey::Src, false, None);
        let fam = |p: u32| t.get(p).unwrap().entry.orig.src.is_ipv6();
        assert!(!fam(src[0]) && fam(*src.last().unwrap()));
        let f = Filter::parse("proto=tcp state=ESTABLISHED dport=443").unwrap();
        let v = t.sorted(SortKey::Bytes, true, Some(&f));
        assert_eq!(v.len(), t.matching(&f).len());
        assert!(v.iter().all(|&p| f.matches(&t.get(p).unwrap().entry)));
        let b = |p: u32| t.get(p).unwrap().entry.bytes().unwrap();
        assert!(b(v[0]) >= b(v[v.len() - 1]));
    }

    #[test]
    fn groups_are_top_talkers_first() {
        let es = sample(3000);
        let t = Table::from_dump(es.clone());
        let g = t.group_by(GroupKey::Src, None);
        assert_eq!(g.iter().map(|g| g.count).sum::<usize>(), 3000);
        assert!(g.windows(2).all(|w| w[0].count >= w[1].count));
        assert!(
            g[0].count > 3000 / g.len() * 3,
            "skewed towards a few clients"
        );
        let top = es
            .iter()
            .filter(|e| e.orig.src.to_string() == g[0].label)
            .collect::<Vec<_>>();
        assert_eq!(top.len(), g[0].count);
        assert_eq!(
            top.iter().map(|e| e.bytes().unwrap()).sum::<u64>(),
            g[0].bytes
        );
        let ports = t.group_by(GroupKey::Dport, None);
        assert_eq!(ports[0].label, "443/tcp");
        assert!(ports.iter().any(|g| g.label == "icmp"));
        let f = Filter::parse("proto=udp").unwrap();
        let protos = t.group_by(GroupKey::Proto, Some(&f));
        assert_eq!(protos.len(), 1);
        assert_eq!(protos[0].label, "udp");
        let s = t.summary();
        assert_eq!(s.total, 3000);
        assert_eq!(s.by_state[0].label, "ESTABLISHED");
        assert_eq!(s.by_proto[0].label, "tcp");
        assert!(s.by_state.iter().any(|g| g.label == "NEW"), "unreplied UDP");
        let unreplied = es
            .iter()
            .filter(|e| !e.status.has(Status::SEEN_REPLY) && e.state.is_none())
            .count();
        let new = s.by_state.iter().find(|g| g.label == "NEW").unwrap();
        assert_eq!(new.count, unreplied);
    }

    #[test]
    fn an_id_moving_onto_another_rows_tuple_evicts_that_row() {
        for order in [[0, 1], [1, 0]] {
            let es = sample(2);
            let mut t = Table::from_dump(vec![es[order[0]].clone(), es[order[1]].clone()]);
            // es[0]'s id now reported with es[1]'s tuple.
            let mut moved = es[1].clone();
            moved.id = es[0].id;
            assert_eq!(t.apply(CtEvent::update(moved.clone())), Applied::Updated);
            assert_eq!(t.len(), 1);
            assert_eq!(t.rows()[0].entry, moved);
            consistent(&t);
        }
    }
}
