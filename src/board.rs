//! The board: name → status in first-seen order, kept as its own reply.
//!
//! Every request is answered with the whole board, and polls far outnumber
//! updates, so the board *is* its encoded reply: one `- NAME STATUS\n` line
//! per entry in one buffer, sent as it is. Beside it, per entry, where its
//! line starts and when it was set, and a hash table of entry numbers that
//! hashes the names inside the buffer. No name or status is stored twice:
//! at 100 000 entries the board takes about 60 bytes an entry beyond the
//! 40 of its reply (docs/BENCHMARKS.md). An update rewrites its one line;
//! the snapshot's timed lines are written out when asked, not kept.
//!
//! Every change is numbered, so a watcher can ask whether it missed one, and
//! can be recorded for the publisher.

use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::protocol::{self, Removal};

/// A number of names as a person says it: `1 name`, `0 names`, `3 names`.
/// The one wording of every count of names the server prints or replies.
pub(crate) fn names(count: usize) -> String {
    match count {
        1 => "1 name".to_owned(),
        n => format!("{n} names"),
    }
}

/// Why an update was refused; its text becomes the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BoardError {
    /// A new name arrived when the board already holds `limit` names.
    #[error("board is full ({}); existing names can still update", names(*.limit))]
    Full {
        /// Names allowed.
        limit: usize,
    },
}

/// A status and when it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// The status including its leading `:`, as on the wire.
    pub(crate) text: String,
    /// When it was last set, in milliseconds since the Unix epoch.
    pub(crate) set_at_ms: u64,
}

/// One entry as the board holds it, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryRef<'a> {
    /// Who.
    pub(crate) name: &'a str,
    /// The status including its leading `:`.
    pub(crate) status: &'a str,
    /// When it was last set, in milliseconds since the Unix epoch.
    pub(crate) set_at_ms: u64,
}

/// A change as the publisher sends it: what happened to whom, and its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The board's sequence number after this change.
    pub(crate) seq: u64,
    /// The board's sequence number before it: `seq - 1` on a single server;
    /// on a gateway the revision of the change before (revisions jump, and
    /// several changes share one).
    pub(crate) prev: u64,
    /// Who.
    pub(crate) name: String,
    /// What: the new status and its time, or a removal and when.
    pub(crate) kind: ChangeKind,
}

/// What a [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Set (or refreshed) to this status at this time.
    Set(Status),
    /// Removed at this time, for this reason.
    Removed {
        /// Why.
        why: Removal,
        /// When, in ms since the Unix epoch.
        at_ms: u64,
    },
}

/// Where each entry's line is, in board order: the lines themselves live in
/// one buffer, so that the buffer is the reply.
#[derive(Debug, Clone, Default)]
struct Lines {
    /// One `- NAME STATUS\n` line per entry, in board order: the reply.
    /// Shared with libzmq while a reply is being sent (no copy); a change
    /// then copies it first, so a reply in flight never changes.
    bytes: Arc<Vec<u8>>,
    /// Where each entry's line starts in `bytes`.
    starts: Vec<usize>,
}

impl Lines {
    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Where entry `i`'s line, `- NAME STATUS\n`, lies in `bytes`.
    fn range(&self, i: usize) -> Range<usize> {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.bytes.len());
        self.starts[i]..end
    }

    fn line(&self, i: usize) -> &[u8] {
        &self.bytes[self.range(i)]
    }

    /// Where entry `i`'s name lies: after `- `, up to the `:` of its status.
    fn name_range(&self, i: usize) -> Range<usize> {
        let line = self.line(i);
        // A name holds no ':' (the protocol's rule), and the status begins with one.
        let colon = line[2..]
            .iter()
            .position(|&b| b == b':')
            .map_or(line.len() - 1, |at| at + 2);
        self.starts[i] + 2..self.starts[i] + colon
    }

    /// Where entry `i`'s status lies: from its `:` to the line's end.
    fn status_range(&self, i: usize) -> Range<usize> {
        self.name_range(i).end..self.range(i).end - 1
    }

    fn name(&self, i: usize) -> &[u8] {
        &self.bytes[self.name_range(i)]
    }

    /// Entry `i`'s name and status, as text.
    fn entry(&self, i: usize) -> (&str, &str) {
        // Only valid UTF-8 is ever written to the board (checked on the way in).
        let text =
            |range: Range<usize>| std::str::from_utf8(&self.bytes[range]).unwrap_or_default();
        (text(self.name_range(i)), text(self.status_range(i)))
    }

    fn push(&mut self, name: &str, status: &str) {
        self.starts.push(self.bytes.len());
        protocol::encode_entry(Arc::make_mut(&mut self.bytes), name, status);
    }

    /// Puts `status` in place of entry `i`'s, moving the lines after it.
    fn replace_status(&mut self, i: usize, status: &str) {
        let old = self.status_range(i);
        let old_len = old.len();
        let bytes = Arc::make_mut(&mut self.bytes);
        if old_len == status.len() {
            bytes[old].copy_from_slice(status.as_bytes());
            return;
        }
        bytes.splice(old, status.bytes());
        for start in &mut self.starts[i + 1..] {
            *start = *start + status.len() - old_len;
        }
    }

    /// Takes entry `i`'s line out, moving the lines after it.
    fn remove(&mut self, i: usize) {
        let line = self.range(i);
        let len = line.len();
        Arc::make_mut(&mut self.bytes).drain(line);
        self.starts.remove(i);
        for later in &mut self.starts[i..] {
            *later -= len;
        }
    }
}

/// The ordered name → status map, kept as its encoded reply.
#[derive(Debug, Clone)]
pub(crate) struct Board {
    lines: Lines,
    /// When each entry's status was set, in board order.
    set_at: Vec<u64>,
    /// Entry numbers, found by the hash of their name (read from `lines`).
    index: HashTable<usize>,
    /// Seeded per process: names come from peers, who must not pick collisions.
    hasher: RandomState,
    max_entries: usize,
    /// Bytes of every name and status: what a compacted state file is sized by.
    content_bytes: usize,
    /// Counts every change (a refresh too: it moves the status's time).
    seq: u64,
    /// On a gateway, the etcd revision the next changes carry instead of a count.
    revision: Option<u64>,
    /// Changes not yet taken by the publisher; `None` when nobody publishes.
    changes: Option<Vec<Change>>,
}

impl Board {
    /// An empty board that holds at most `max_entries` names.
    pub(crate) fn new(max_entries: usize) -> Self {
        Board {
            lines: Lines::default(),
            set_at: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            max_entries,
            content_bytes: 0,
            seq: 0,
            revision: None,
            changes: None,
        }
    }

    /// Makes room for about `names` names whose lines take `bytes` in all
    /// (at most the board's limit), so that a replay does not grow the
    /// table step by step: each growth reads every name again, from all
    /// over memory.
    pub(crate) fn reserve(&mut self, names: usize, bytes: usize) {
        let names = names.min(self.max_entries);
        Arc::make_mut(&mut self.lines.bytes).reserve(bytes);
        self.lines.starts.reserve(names);
        self.set_at.reserve(names);
        let Board {
            index,
            lines,
            hasher,
            ..
        } = self;
        index.reserve(names, |&k| hasher.hash_one(lines.name(k)));
    }

    /// Starts keeping a record of changes for [`Board::take_changes`].
    pub(crate) fn record_changes(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    /// Whether changes are recorded for the publisher.
    pub(crate) fn records_changes(&self) -> bool {
        self.changes.is_some()
    }

    /// The changes since the last call, oldest first.
    pub(crate) fn take_changes(&mut self) -> Vec<Change> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The number of the last change.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Numbers the changes from now on with `revision` (an etcd revision,
    /// which several changes may share) rather than counting them.
    pub(crate) fn number_as(&mut self, revision: u64) {
        self.revision = Some(revision);
    }

    /// Sets the board's sequence number without a change (a gateway's copy,
    /// rebuilt at an etcd revision).
    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Counts a change; records it (built only then) if anyone publishes.
    fn changed(&mut self, name: &str, kind: impl FnOnce() -> ChangeKind) {
        let prev = self.seq;
        self.seq = self.revision.unwrap_or(prev + 1);
        if let Some(changes) = &mut self.changes {
            changes.push(Change {
                seq: self.seq,
                prev,
                name: name.to_owned(),
                kind: kind(),
            });
        }
    }

    /// The entry number of `name`, if it is on the board.
    fn find(&self, name: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(name.as_bytes());
        self.index
            .find(hash, |&i| self.lines.name(i) == name.as_bytes())
            .copied()
    }

    /// Whether `name` may be set: an existing name always, a new one while there
    /// is room beside `also_new` other new names waiting to be set with it.
    pub(crate) fn check_room(&self, name: &str, also_new: usize) -> Result<(), BoardError> {
        if self.len() + also_new >= self.max_entries && !self.contains(name) {
            return Err(BoardError::Full {
                limit: self.max_entries,
            });
        }
        Ok(())
    }

    /// Sets `name`'s status (which starts with `:`) at `set_at_ms`; a new name
    /// goes last. For changes already stored (replayed, or durable now): room
    /// was checked with [`Board::check_room`] before they were stored.
    pub(crate) fn apply_set(&mut self, name: &str, status: &str, set_at_ms: u64) {
        self.put(name, status, set_at_ms);
        self.changed(name, || {
            ChangeKind::Set(Status {
                text: status.to_owned(),
                set_at_ms,
            })
        });
    }

    fn put(&mut self, name: &str, status: &str, set_at_ms: u64) {
        let Board {
            index,
            lines,
            hasher,
            ..
        } = self;
        let new = lines.len();
        // One probe finds the name or its place: a replay of a million names
        // is bound by these lookups' cache misses.
        let hash = hasher.hash_one(name.as_bytes());
        let found = match index.entry(
            hash,
            |&k| lines.name(k) == name.as_bytes(),
            |&k| hasher.hash_one(lines.name(k)),
        ) {
            hashbrown::hash_table::Entry::Occupied(entry) => Some(*entry.get()),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert(new);
                None
            }
        };
        let Some(i) = found else {
            self.lines.push(name, status);
            self.set_at.push(set_at_ms);
            self.content_bytes += name.len() + status.len();
            return;
        };
        self.set_at[i] = set_at_ms;
        let (_, current) = self.lines.entry(i);
        let old_len = current.len();
        if current != status {
            self.content_bytes = self.content_bytes - old_len + status.len();
            self.lines.replace_status(i, status);
        }
    }

    /// Removes `name` if its status was set no later than `set_by_ms`; says
    /// whether it did. The condition lets an expiry decided on an old status
    /// leave a refresh that was stored before it alone, in replay too.
    pub(crate) fn remove(&mut self, name: &str, set_by_ms: u64, why: Removal, at_ms: u64) -> bool {
        let Some(i) = self.find(name).filter(|&i| self.set_at[i] <= set_by_ms) else {
            return false;
        };
        let hash = self.hasher.hash_one(name.as_bytes());
        if let Ok(found) = self.index.find_entry(hash, |&k| k == i) {
            found.remove();
        }
        // Keeps the others' order: the entries after it move up one. O(n),
        // and removals are rare next to updates.
        for k in self.index.iter_mut() {
            if *k > i {
                *k -= 1;
            }
        }
        self.content_bytes -= self.lines.line(i).len() - 3;
        self.lines.remove(i);
        self.set_at.remove(i);
        self.changed(name, || ChangeKind::Removed { why, at_ms });
        true
    }

    /// Names whose status was set at or before `cutoff_ms`, with that time.
    pub(crate) fn set_no_later_than(&self, cutoff_ms: u64) -> Vec<(String, u64)> {
        self.iter()
            .filter(|e| e.set_at_ms <= cutoff_ms)
            .map(|e| (e.name.to_owned(), e.set_at_ms))
            .collect()
    }

    /// The oldest time among statuses set after `after_ms`, if any.
    pub(crate) fn oldest_after(&self, after_ms: u64) -> Option<u64> {
        self.set_at
            .iter()
            .copied()
            .filter(|&at| at > after_ms)
            .min()
    }

    /// Appends the snapshot's entry lines, `SET_AT_MS NAME STATUS\n`, to `out`.
    pub(crate) fn write_timed(&self, out: &mut Vec<u8>) {
        out.reserve(self.lines.bytes.len() + self.len() * 12);
        for (i, &set_at_ms) in self.set_at.iter().enumerate() {
            // `- NAME STATUS\n` becomes `SET_AT_MS NAME STATUS\n`.
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{set_at_ms}");
            out.extend_from_slice(&self.lines.line(i)[1..]);
        }
    }

    /// The reply for the current board: one `- NAME STATUS\n` line per entry
    /// (tests read it; the server sends [`Board::shared_reply`]).
    #[cfg(test)]
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.lines.bytes
    }

    /// The same reply, shared: to be sent without a copy. The board copies
    /// it before its next change if it is still held then.
    pub(crate) fn shared_reply(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.lines.bytes)
    }

    /// Whether `name` is on the board.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Entries in board order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.set_at.iter().enumerate().map(|(i, &set_at_ms)| {
            let (name, status) = self.lines.entry(i);
            EntryRef {
                name,
                status,
                set_at_ms,
            }
        })
    }

    /// Bytes of every name and status together.
    pub(crate) fn content_bytes(&self) -> usize {
        self.content_bytes
    }

    /// Number of names on the board.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// The most names the board takes.
    pub(crate) fn max_entries(&self) -> usize {
        self.max_entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sets a status as the server does: room first, then the change.
    fn set(board: &mut Board, name: &str, status: &str, at: u64) -> Result<(), BoardError> {
        board.check_room(name, 0)?;
        board.apply_set(name, status, at);
        Ok(())
    }

    /// The status of `name`, if on the board.
    fn status_of(board: &Board, name: &str) -> Option<Status> {
        board.iter().find(|e| e.name == name).map(|e| Status {
            text: e.status.to_owned(),
            set_at_ms: e.set_at_ms,
        })
    }

    /// The reply written out from scratch, to check the buffer against.
    fn fresh_encoding(board: &Board) -> Vec<u8> {
        let mut out = Vec::new();
        for e in board.iter() {
            protocol::encode_entry(&mut out, e.name, e.status);
        }
        out
    }

    fn timed(board: &Board) -> Vec<u8> {
        let mut out = Vec::new();
        board.write_timed(&mut out);
        out
    }

    #[test]
    fn empty_board_is_an_empty_reply() {
        assert_eq!(Board::new(10).encoded(), b"");
    }

    #[test]
    fn names_keep_the_order_they_first_appeared_in() {
        let mut board = Board::new(10);
        set(&mut board, "Jackson", ": I'm BAD", 0).unwrap();
        set(&mut board, "Madonna", ": material", 0).unwrap();
        assert_eq!(
            board.encoded(),
            b"- Jackson: I'm BAD\n- Madonna: material\n"
        );
        set(&mut board, "Jackson", ": better", 0).unwrap();
        assert_eq!(board.encoded(), b"- Jackson: better\n- Madonna: material\n");
    }

    #[test]
    fn same_status_again_is_unchanged() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": x", 0).unwrap();
        set(&mut board, "a", ": x", 0).unwrap();
        assert_eq!(board.len(), 1);
        assert_eq!(board.encoded(), b"- a: x\n");
    }

    #[test]
    fn a_full_board_refuses_new_names_but_takes_updates() {
        let mut board = Board::new(2);
        set(&mut board, "a", ": 1", 0).unwrap();
        set(&mut board, "b", ": 2", 0).unwrap();
        assert_eq!(
            set(&mut board, "c", ": 3", 0),
            Err(BoardError::Full { limit: 2 })
        );
        set(&mut board, "a", ": 9", 0).unwrap();
        assert_eq!(board.encoded(), b"- a: 9\n- b: 2\n");
        assert_eq!(status_of(&board, "c"), None);
    }

    #[test]
    fn apply_set_ignores_the_limit_and_keeps_the_time() {
        let mut board = Board::new(1);
        board.apply_set("a", ": 1", 5);
        board.apply_set("b", ": 2", 6);
        assert_eq!(board.len(), 2);
        assert_eq!(status_of(&board, "b").map(|s| s.set_at_ms), Some(6));
        board.apply_set("a", ": 1", 9);
        assert_eq!(board.encoded(), b"- a: 1\n- b: 2\n");
        assert_eq!(
            status_of(&board, "a").map(|s| s.set_at_ms),
            Some(9),
            "a refresh moves the time"
        );
    }

    #[test]
    fn every_change_is_numbered_and_recorded_once_asked() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": 1", 1).unwrap();
        assert_eq!(board.seq(), 1);
        board.record_changes();
        set(&mut board, "a", ": 1", 2).unwrap(); // a refresh moves the time: a change
        set(&mut board, "b", ": 2", 3).unwrap();
        assert!(board.remove("a", 5, Removal::Cleared, 6));
        assert!(
            !board.remove("zz", 5, Removal::Cleared, 6),
            "absent: no change"
        );
        let changes = board.take_changes();
        let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert_eq!(
            changes[2].kind,
            ChangeKind::Removed {
                why: Removal::Cleared,
                at_ms: 6
            }
        );
        assert!(board.take_changes().is_empty());
        assert_eq!(board.encoded(), b"- b: 2\n");
    }

    #[test]
    fn removal_spares_a_status_set_after_its_cutoff() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": old", 100).unwrap();
        set(&mut board, "a", ": refreshed", 200).unwrap();
        assert!(!board.remove("a", 100, Removal::Expired, 300));
        assert_eq!(
            status_of(&board, "a").map(|s| s.text),
            Some(": refreshed".to_owned())
        );
        assert!(board.remove("a", 200, Removal::Expired, 300));
        assert_eq!(board.len(), 0);
        assert_eq!(board.content_bytes(), 0);
    }

    #[test]
    fn expiry_helpers_find_old_statuses() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": 1", 10).unwrap();
        set(&mut board, "b", ": 2", 20).unwrap();
        set(&mut board, "c", ": 3", 30).unwrap();
        assert_eq!(
            board.set_no_later_than(20),
            [("a".into(), 10), ("b".into(), 20)]
        );
        assert_eq!(board.oldest_after(20), Some(30));
        assert_eq!(board.oldest_after(30), None);
    }

    #[test]
    fn timed_lines_follow_every_change() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": 1", 10).unwrap();
        assert_eq!(timed(&board), b"10 a: 1\n");
        set(&mut board, "a", ": 1", 11).unwrap();
        set(&mut board, "b", ": 2", 12).unwrap();
        assert_eq!(timed(&board), b"11 a: 1\n12 b: 2\n");
        board.remove("a", 11, Removal::Cleared, 13);
        assert_eq!(timed(&board), b"12 b: 2\n");
    }

    #[test]
    fn a_reply_in_flight_never_changes() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": 1", 1).unwrap();
        let sent = board.shared_reply();
        set(&mut board, "a", ": 2", 2).unwrap();
        set(&mut board, "b", ": 3", 3).unwrap();
        assert!(board.remove("a", 9, Removal::Cleared, 4));
        assert_eq!(sent.as_slice(), b"- a: 1\n");
        assert_eq!(board.encoded(), b"- b: 3\n");
    }

    #[test]
    fn a_status_of_another_length_moves_the_lines_after_it() {
        let mut board = Board::new(10);
        for (name, status) in [("a", ": 1"), ("bb", ": 22"), ("c", ": 3")] {
            set(&mut board, name, status, 1).unwrap();
        }
        set(&mut board, "a", ": a much longer status", 2).unwrap();
        assert_eq!(
            board.encoded(),
            b"- a: a much longer status\n- bb: 22\n- c: 3\n"
        );
        set(&mut board, "bb", ":", 3).unwrap();
        assert_eq!(
            board.encoded(),
            b"- a: a much longer status\n- bb:\n- c: 3\n"
        );
        assert!(board.contains("c") && board.contains("bb"));
        assert_eq!(
            status_of(&board, "c").map(|s| s.text),
            Some(": 3".to_owned())
        );
        assert_eq!(timed(&board), b"2 a: a much longer status\n3 bb:\n1 c: 3\n");
    }

    proptest! {
        #[test]
        fn the_reply_and_the_index_always_match_the_entries(
            ops in proptest::collection::vec((0u8..6, 0u8..4), 1..40)
        ) {
            let mut board = Board::new(4);
            for (name, status) in ops {
                if status == 3 {
                    board.remove(&format!("n{name}"), u64::MAX, Removal::Cleared, 0);
                } else {
                    let _ = set(&mut board, &format!("n{name}"), &format!(": s{status}"), 0);
                }
                let expected = fresh_encoding(&board);
                prop_assert_eq!(board.encoded(), &expected[..]);
                let bytes: usize = board.iter().map(|e| e.name.len() + e.status.len()).sum();
                prop_assert_eq!(board.content_bytes(), bytes);
                // The index finds every entry at its place, and nothing else.
                for (i, e) in board.iter().enumerate() {
                    prop_assert_eq!(board.find(e.name), Some(i));
                }
                for absent in 0u8..6 {
                    let name = format!("n{absent}");
                    let listed = board.iter().any(|e| e.name == name);
                    prop_assert_eq!(board.contains(&name), listed);
                }
            }
        }
    }
}
