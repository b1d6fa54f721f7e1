//! The board: name → status in first-seen order, with its reply cached.
//!
//! Every request is answered with the whole board, and polls far outnumber
//! updates, so the encoded reply is kept and only rebuilt after a change that
//! cannot be appended to it. Every change is numbered, so a watcher can ask
//! whether it missed one, and can be recorded for the publisher.

use indexmap::IndexMap;

use crate::protocol::{self, Removal};

/// Default largest number of names on a board.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Why an update was refused; its text becomes the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// A new name arrived when the board already holds `limit` names.
    #[error("board is full ({limit} names); existing names can still update")]
    Full {
        /// Names allowed.
        limit: usize,
    },
}

/// A status and when it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The status including its leading `:`, as on the wire.
    pub text: String,
    /// When it was last set, in milliseconds since the Unix epoch.
    pub set_at_ms: u64,
}

/// A change as the publisher sends it: what happened to whom, and its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The board's sequence number after this change.
    pub seq: u64,
    /// Who.
    pub name: String,
    /// What: the new status and its time, or a removal and when.
    pub kind: ChangeKind,
}

/// What a [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
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

/// The ordered name → status map and its encoded reply.
#[derive(Debug, Clone)]
pub struct Board {
    entries: IndexMap<String, Status>,
    max_entries: usize,
    /// Bytes of every name and status: what a compacted state file is sized by.
    content_bytes: usize,
    /// The reply for the current entries, valid unless `stale`.
    encoded: Vec<u8>,
    stale: bool,
    /// Counts every change (a refresh too: it moves the status's time).
    seq: u64,
    /// The snapshot's entry lines and the `seq` they were built at.
    timed: Option<(u64, Vec<u8>)>,
    /// Changes not yet taken by the publisher; `None` when nobody publishes.
    changes: Option<Vec<Change>>,
}

impl Board {
    /// An empty board that holds at most `max_entries` names.
    pub fn new(max_entries: usize) -> Self {
        Board {
            entries: IndexMap::new(),
            max_entries,
            content_bytes: 0,
            encoded: Vec::new(),
            stale: false,
            seq: 0,
            timed: None,
            changes: None,
        }
    }

    /// Starts keeping a record of changes for [`Board::take_changes`].
    pub fn record_changes(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    /// The changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The number of the last change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Counts a change; records it (built only then) if anyone publishes.
    fn changed(&mut self, name: &str, kind: impl FnOnce() -> ChangeKind) {
        self.seq += 1;
        if let Some(changes) = &mut self.changes {
            changes.push(Change {
                seq: self.seq,
                name: name.to_owned(),
                kind: kind(),
            });
        }
    }

    /// Whether `name` may be set: an existing name always, a new one while there
    /// is room beside `also_new` other new names waiting to be set with it.
    pub fn check_room(&self, name: &str, also_new: usize) -> Result<(), BoardError> {
        if self.entries.len() + also_new >= self.max_entries && !self.entries.contains_key(name) {
            return Err(BoardError::Full {
                limit: self.max_entries,
            });
        }
        Ok(())
    }

    /// Sets `name`'s status (which starts with `:`) at `set_at_ms`; a new name
    /// goes last. For changes already stored (replayed, or durable now): room
    /// was checked with [`Board::check_room`] before they were stored.
    pub fn apply_set(&mut self, name: &str, status: &str, set_at_ms: u64) {
        self.put(name, status, set_at_ms);
        self.changed(name, || {
            ChangeKind::Set(Status {
                text: status.to_owned(),
                set_at_ms,
            })
        });
    }

    fn put(&mut self, name: &str, status: &str, set_at_ms: u64) {
        if let Some(current) = self.entries.get_mut(name) {
            current.set_at_ms = set_at_ms;
            if current.text == status {
                return;
            }
            self.content_bytes = self.content_bytes - current.text.len() + status.len();
            status.clone_into(&mut current.text);
            // Another line changed length somewhere in the middle: rebuild lazily.
            self.stale = true;
            return;
        }
        let status = Status {
            text: status.to_owned(),
            set_at_ms,
        };
        self.content_bytes += name.len() + status.text.len();
        self.entries.insert(name.to_owned(), status);
        if !self.stale {
            // A new name is the last line: append instead of rebuilding.
            protocol::encode_entry(&mut self.encoded, name, &self.entries[name].text);
        }
    }

    /// Removes `name` if its status was set no later than `set_by_ms`; says
    /// whether it did. The condition lets an expiry decided on an old status
    /// leave a refresh that was stored before it alone, in replay too.
    pub fn remove(&mut self, name: &str, set_by_ms: u64, why: Removal, at_ms: u64) -> bool {
        match self.entries.get(name) {
            Some(status) if status.set_at_ms <= set_by_ms => {}
            _ => return false,
        }
        // Keeps the others' order; O(n), and removals are rare next to updates.
        if let Some(status) = self.entries.shift_remove(name) {
            self.content_bytes -= name.len() + status.text.len();
        }
        self.stale = true;
        self.changed(name, || ChangeKind::Removed { why, at_ms });
        true
    }

    /// Names whose status was set at or before `cutoff_ms`, with that time.
    pub fn set_no_later_than(&self, cutoff_ms: u64) -> Vec<(String, u64)> {
        self.entries
            .iter()
            .filter(|(_, s)| s.set_at_ms <= cutoff_ms)
            .map(|(n, s)| (n.clone(), s.set_at_ms))
            .collect()
    }

    /// The oldest time among statuses set after `after_ms`, if any.
    pub fn oldest_after(&self, after_ms: u64) -> Option<u64> {
        self.entries
            .values()
            .map(|s| s.set_at_ms)
            .filter(|&at| at > after_ms)
            .min()
    }

    /// The snapshot's entry lines, `SET_AT_MS NAME STATUS\n`, for the current board.
    pub fn timed_encoding(&mut self) -> &[u8] {
        let fresh = matches!(&self.timed, Some((seq, _)) if *seq == self.seq);
        if !fresh {
            let mut out = self.timed.take().map(|(_, v)| v).unwrap_or_default();
            out.clear();
            for (name, status) in &self.entries {
                protocol::encode_timed_entry(&mut out, status.set_at_ms, name, &status.text);
            }
            self.timed = Some((self.seq, out));
        }
        self.timed.as_ref().map_or(&[][..], |(_, v)| v.as_slice())
    }

    /// The reply for the current board: one `- NAME STATUS\n` line per entry.
    pub fn encoded(&mut self) -> &[u8] {
        if self.stale {
            self.encoded.clear();
            for (name, status) in &self.entries {
                protocol::encode_entry(&mut self.encoded, name, &status.text);
            }
            self.stale = false;
        }
        &self.encoded
    }

    /// Whether `name` is on the board.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Entries in board order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Status)> {
        self.entries.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// Bytes of every name and status together.
    pub fn content_bytes(&self) -> usize {
        self.content_bytes
    }

    /// Number of names on the board.
    pub fn len(&self) -> usize {
        self.entries.len()
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
    fn status_of<'a>(board: &'a Board, name: &str) -> Option<&'a Status> {
        board.iter().find(|(n, _)| *n == name).map(|(_, s)| s)
    }

    /// The reply written out from scratch, to check the cache against.
    fn fresh_encoding(board: &Board) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, status) in board.iter() {
            protocol::encode_entry(&mut out, name, &status.text);
        }
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
            status_of(&board, "a").map(|s| s.text.as_str()),
            Some(": refreshed")
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
    fn timed_encoding_follows_every_change() {
        let mut board = Board::new(10);
        set(&mut board, "a", ": 1", 10).unwrap();
        assert_eq!(board.timed_encoding(), b"10 a: 1\n");
        set(&mut board, "a", ": 1", 11).unwrap();
        set(&mut board, "b", ": 2", 12).unwrap();
        assert_eq!(board.timed_encoding(), b"11 a: 1\n12 b: 2\n");
        board.remove("a", 11, Removal::Cleared, 13);
        assert_eq!(board.timed_encoding(), b"12 b: 2\n");
    }

    proptest! {
        #[test]
        fn cached_reply_always_matches_the_entries(
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
                let bytes: usize = board.iter().map(|(n, s)| n.len() + s.text.len()).sum();
                prop_assert_eq!(board.content_bytes(), bytes);
            }
        }
    }
}
