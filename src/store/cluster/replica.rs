//! The gateway's copy of the board in etcd's terms: which key holds which
//! name, what each value says, the revision the copy is at, and the
//! transactions that change it. No threads and no network: what the
//! watcher brings is applied here, and tested here.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::board::Board;
use crate::etcd::{Compare, Header, KeyValue, Op, WatchEvent};
use crate::protocol::Removal;

use super::Health;

/// The longest name taken from etcd: the longest any gateway may allow
/// (`--max-name`); each gateway checks its own limit on what it is sent.
const MAX_NAME: usize = 65_535;

/// Puts per transaction: etcd takes 128 operations at most by default, and a
/// put may come with the delete of its removal marker.
pub(super) const PUTS_PER_TXN: usize = 60;

/// A name's value in etcd.
#[derive(Debug, Serialize, Deserialize)]
struct NameValue {
    status: String,
    set_at_ms: u64,
}

/// A removal marker's value in etcd.
#[derive(Debug, Serialize, Deserialize)]
struct RemovedValue {
    why: String,
    at_ms: u64,
}

/// A write to make: one transaction.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub(super) compare: Vec<Compare>,
    pub(super) ops: Vec<Op>,
}

/// The copy's etcd facts, beside the board itself.
#[derive(Debug)]
pub(super) struct Replica {
    names_prefix: Vec<u8>,
    removed_prefix: Vec<u8>,
    /// Each name's last modification, for an expiry's transaction.
    mod_revisions: HashMap<String, i64>,
    /// Names with a removal marker in etcd.
    markers: HashSet<String>,
    /// The revision the copy is current to.
    pub(super) revision: i64,
}

impl Replica {
    /// The copy of the board under `prefix`, empty until loaded.
    pub(super) fn new(prefix: &[u8]) -> Replica {
        Replica {
            names_prefix: [prefix, b"names/"].concat(),
            removed_prefix: [prefix, b"removed/"].concat(),
            mod_revisions: HashMap::new(),
            markers: HashSet::new(),
            revision: 0,
        }
    }

    /// The key of a name's status.
    pub(super) fn name_key(&self, name: &str) -> Vec<u8> {
        [&self.names_prefix[..], name.as_bytes()].concat()
    }

    fn removed_key(&self, name: &str) -> Vec<u8> {
        [&self.removed_prefix[..], name.as_bytes()].concat()
    }

    /// A put of `name`'s status, as it is kept in etcd.
    pub(super) fn put(&self, name: &str, status: &str, set_at_ms: u64) -> Op {
        let value = NameValue {
            status: status.to_owned(),
            set_at_ms,
        };
        Op::Put {
            key: self.name_key(name),
            value: serde_json::to_vec(&value).unwrap_or_default(),
        }
    }

    /// A put of `name`'s status (and the delete of its removal marker).
    pub(super) fn set_ops(&self, name: &str, status: &str, set_at_ms: u64) -> Vec<Op> {
        let mut ops = vec![self.put(name, status, set_at_ms)];
        if self.markers.contains(name) {
            ops.push(Op::Delete {
                key: self.removed_key(name),
            });
        }
        ops
    }

    /// The transaction that removes `name`: a clear if it is there at all, an
    /// expiry only if nobody changed it since the copy saw it.
    pub(super) fn removal(&self, name: &str, why: Removal, at_ms: u64) -> Txn {
        let key = self.name_key(name);
        let compare = match (why, self.mod_revisions.get(name)) {
            (Removal::Expired, Some(&revision)) => Compare::ModRevision {
                key: key.clone(),
                revision,
            },
            _ => Compare::Exists { key: key.clone() },
        };
        let marker = RemovedValue {
            why: why.as_str().to_owned(),
            at_ms,
        };
        Txn {
            compare: vec![compare],
            ops: vec![
                Op::Delete { key },
                Op::Put {
                    key: self.removed_key(name),
                    value: serde_json::to_vec(&marker).unwrap_or_default(),
                },
            ],
        }
    }

    /// Replaces the copy with what a range found.
    pub(super) fn load(&mut self, board: &mut Board, header: Header, kvs: Vec<KeyValue>) -> Health {
        let recording = board.records_changes();
        let mut fresh = Board::new(board.max_entries());
        self.mod_revisions.clear();
        self.markers.clear();
        // etcd sorts by create_revision only, not stably: names created in
        // one transaction are put in key order here, as the watch applies them.
        let mut kvs = kvs;
        kvs.sort_by(|a, b| (a.create_revision, &a.key).cmp(&(b.create_revision, &b.key)));
        for kv in &kvs {
            if let Some(name) = self.name_of(&kv.key, true) {
                if let Some(value) = parse_status(&kv.value) {
                    fresh.apply_set(&name, &value.status, value.set_at_ms);
                    self.mod_revisions.insert(name, kv.mod_revision);
                }
            } else if let Some(name) = self.name_of(&kv.key, false) {
                self.markers.insert(name);
            }
        }
        let revision = header.revision.max(self.revision);
        fresh.set_seq(u64::try_from(revision).unwrap_or(0));
        if recording {
            fresh.record_changes();
        }
        *board = fresh;
        self.revision = revision;
        Health::Loaded {
            names: board.len(),
            revision,
        }
    }

    /// Applies one watch answer's events, revision by revision.
    pub(super) fn apply(&mut self, board: &mut Board, events: &[WatchEvent]) {
        let mut i = 0;
        while i < events.len() {
            let revision = events[i].kv.mod_revision;
            let end = events[i..]
                .iter()
                .position(|e| e.kv.mod_revision != revision)
                .map_or(events.len(), |n| i + n);
            let group = &events[i..end];
            i = end;
            if revision <= self.revision {
                continue; // seen already (a watch restarted a little early)
            }
            // The removal markers of this revision first: they say why.
            let mut why: HashMap<String, (Removal, u64)> = HashMap::new();
            for event in group {
                if let Some(name) = self.name_of(&event.kv.key, false) {
                    if event.is_delete() {
                        self.markers.remove(&name);
                    } else {
                        if let Some(value) = parse_value::<RemovedValue>(&event.kv.value) {
                            let removal = match value.why.as_str() {
                                "expired" => Removal::Expired,
                                _ => Removal::Cleared,
                            };
                            why.insert(name.clone(), (removal, value.at_ms));
                        }
                        self.markers.insert(name);
                    }
                }
            }
            board.number_as(u64::try_from(revision).unwrap_or(0));
            // Names created in one transaction share their create_revision:
            // they go on the board in key order, as a load sorts them.
            let mut group: Vec<&WatchEvent> = group.iter().collect();
            group.sort_by(|a, b| {
                let created = |e: &WatchEvent| !e.is_delete() && e.kv.create_revision == revision;
                (created(a), &a.kv.key).cmp(&(created(b), &b.kv.key))
            });
            for event in group {
                let Some(name) = self.name_of(&event.kv.key, true) else {
                    continue;
                };
                if event.is_delete() {
                    self.mod_revisions.remove(&name);
                    let (removal, at_ms) = why
                        .get(&name)
                        .copied()
                        .unwrap_or((Removal::Cleared, crate::clock::now_ms()));
                    board.remove(&name, u64::MAX, removal, at_ms);
                } else if let Some(value) = parse_status(&event.kv.value) {
                    // Anything under the prefix may be written by anyone with
                    // etcd's keys: a value that is not a status is skipped.
                    board.apply_set(&name, &value.status, value.set_at_ms);
                    self.mod_revisions.insert(name, revision);
                }
            }
            self.revision = revision;
        }
    }

    /// The name a key is about, if it is a name key (or a marker key), and a
    /// name the board can show.
    fn name_of(&self, key: &[u8], names: bool) -> Option<String> {
        let prefix = if names {
            &self.names_prefix
        } else {
            &self.removed_prefix
        };
        let name = std::str::from_utf8(key.strip_prefix(&prefix[..])?).ok()?;
        // Anyone with etcd's rights may write under the prefix: a name is
        // shown only if a gateway would have taken it (no name that lies).
        let limits = crate::protocol::Limits {
            max_name: MAX_NAME,
            ..crate::protocol::Limits::default()
        };
        crate::protocol::check_name(name, &limits)
            .ok()
            .map(|()| name.to_owned())
    }

    /// Joins consecutive unconditional transactions whose keys do not meet
    /// (etcd takes a key once per transaction), up to the size etcd takes.
    pub(super) fn merge(txns: impl Iterator<Item = Txn>) -> Vec<Txn> {
        let mut merged: Vec<Txn> = Vec::new();
        let mut keys: HashSet<Vec<u8>> = HashSet::new();
        for txn in txns {
            let joins = merged.last().is_some_and(|last| {
                last.compare.is_empty()
                    && txn.compare.is_empty()
                    && last.ops.len() + txn.ops.len() <= 2 * PUTS_PER_TXN
                    && txn.ops.iter().all(|op| !keys.contains(op.key()))
            });
            if !joins {
                keys.clear();
            }
            keys.extend(txn.ops.iter().map(|op| op.key().to_vec()));
            match merged.last_mut() {
                Some(last) if joins => last.ops.extend(txn.ops),
                _ => merged.push(txn),
            }
        }
        merged
    }

    /// Transactions for a batch of changes in order: puts together, each
    /// removal its own (it has its own condition), a new transaction where
    /// a name comes again (etcd takes a key once per transaction).
    pub(super) fn batch(changes: Vec<(String, Vec<Op>, Option<Txn>)>) -> Vec<Txn> {
        let mut txns = Vec::new();
        let mut puts = Txn {
            compare: Vec::new(),
            ops: Vec::new(),
        };
        let mut names = HashSet::new();
        let mut count = 0;
        for (name, ops, removal) in changes {
            let flush = removal.is_some() || names.contains(&name) || count >= PUTS_PER_TXN;
            if flush && !puts.ops.is_empty() {
                txns.push(std::mem::replace(
                    &mut puts,
                    Txn {
                        compare: Vec::new(),
                        ops: Vec::new(),
                    },
                ));
                names.clear();
                count = 0;
            }
            if let Some(removal) = removal {
                txns.push(removal);
                continue;
            }
            names.insert(name);
            count += 1;
            puts.ops.extend(ops);
        }
        txns.push(puts);
        txns.retain(|t| !t.ops.is_empty());
        txns
    }
}

/// Parses a value written under the prefix; `None` if it is not ours.
fn parse_value<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// A status value, if it is one the board can show: it starts with `:` and
/// holds no control character (a newline would forge a board line).
fn parse_status(bytes: &[u8]) -> Option<NameValue> {
    let value: NameValue = parse_value(bytes)?;
    let fits = value.status.starts_with(':')
        && crate::protocol::check_line(&value.status, crate::protocol::Field::Status).is_ok();
    fits.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str) -> (String, Vec<Op>, Option<Txn>) {
        let key = format!("/p/names/{name}").into_bytes();
        (
            name.to_owned(),
            vec![Op::Put {
                key,
                value: b"{}".to_vec(),
            }],
            None,
        )
    }

    #[test]
    fn a_batch_puts_together_until_a_name_comes_again_or_a_removal() {
        let removal = Txn {
            compare: vec![Compare::Exists {
                key: b"/p/names/b".to_vec(),
            }],
            ops: vec![Op::Delete {
                key: b"/p/names/b".to_vec(),
            }],
        };
        let txns = Replica::batch(vec![
            put("a"),
            put("b"),
            put("a"),
            ("b".into(), Vec::new(), Some(removal)),
            put("c"),
        ]);
        let sizes: Vec<(usize, usize)> = txns
            .iter()
            .map(|t| (t.compare.len(), t.ops.len()))
            .collect();
        assert_eq!(sizes, [(0, 2), (0, 1), (1, 1), (0, 1)]);
    }

    fn kv(key: &str, value: &str, create: i64, modified: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modified,
            value: value.as_bytes().to_vec(),
        }
    }

    fn event(kind: &str, key: &str, value: &str, revision: i64) -> WatchEvent {
        WatchEvent {
            kind: kind.into(),
            kv: kv(key, value, 0, revision),
        }
    }

    fn status(text: &str, at: u64) -> String {
        format!(r#"{{"status":": {text}","set_at_ms":{at}}}"#)
    }

    fn header(revision: i64) -> Header {
        Header {
            revision,
            ..Header::default()
        }
    }

    /// A copy loaded with a, b (b with a removal marker left from before).
    fn loaded() -> (Replica, Board) {
        let mut replica = Replica::new(b"/p/");
        let mut board = Board::new(10);
        board.record_changes();
        let health = replica.load(
            &mut board,
            header(20),
            vec![
                kv("/p/names/a", &status("one", 1), 3, 7),
                kv("/p/removed/c", r#"{"why":"cleared","at_ms":5}"#, 4, 4),
                kv("/p/names/b", &status("two", 2), 5, 5),
            ],
        );
        assert_eq!(
            health,
            Health::Loaded {
                names: 2,
                revision: 20
            }
        );
        (replica, board)
    }

    #[test]
    fn a_load_keeps_the_order_of_creation_and_numbers_the_board_with_the_revision() {
        let (replica, mut board) = loaded();
        assert_eq!(board.encoded(), b"- a: one\n- b: two\n");
        assert_eq!(board.seq(), 20);
        assert!(board.take_changes().is_empty(), "a load publishes nothing");
        assert!(board.records_changes(), "and keeps recording");
        assert_eq!(replica.revision, 20);
    }

    #[test]
    fn a_removal_says_why_from_the_marker_of_its_revision_and_numbers_with_it() {
        let (mut replica, mut board) = loaded();
        replica.apply(
            &mut board,
            &[
                event("", "/p/names/c", &status("three", 30), 21),
                event("DELETE", "/p/removed/c", "", 21),
                event("DELETE", "/p/names/a", "", 25),
                event("", "/p/removed/a", r#"{"why":"expired","at_ms":99}"#, 25),
            ],
        );
        assert_eq!(board.encoded(), b"- b: two\n- c: three\n");
        let changes = board.take_changes();
        let seen: Vec<(u64, u64, &str)> = changes
            .iter()
            .map(|c| (c.prev, c.seq, c.name.as_str()))
            .collect();
        assert_eq!(seen, [(20, 21, "c"), (21, 25, "a")]);
        assert_eq!(
            changes[1].kind,
            crate::board::ChangeKind::Removed {
                why: Removal::Expired,
                at_ms: 99
            }
        );
        // c's marker went with the put; a's came with the delete.
        assert!(
            replica.set_ops("c", ": x", 1).len() == 1,
            "no marker to delete"
        );
        assert_eq!(
            replica.set_ops("a", ": x", 1).len(),
            2,
            "its marker goes too"
        );
    }

    #[test]
    fn old_revisions_foreign_values_and_names_the_board_refuses_are_skipped() {
        let (mut replica, mut board) = loaded();
        replica.apply(
            &mut board,
            &[
                event("", "/p/names/a", &status("old", 9), 19),
                event("", "/p/names/junk", "not json", 21),
                event("", "/p/names/\u{202e}ecila", &status("liar", 9), 21),
                event("", "/p/other", &status("x", 9), 21),
                event(
                    "",
                    "/p/names/forger",
                    r#"{"status":": x\n- admin: y","set_at_ms":1}"#,
                    21,
                ),
                event(
                    "",
                    "/p/names/glued",
                    r#"{"status":"no colon","set_at_ms":1}"#,
                    21,
                ),
            ],
        );
        assert_eq!(board.encoded(), b"- a: one\n- b: two\n");
        assert_eq!(replica.revision, 21);
    }

    #[test]
    fn an_expiry_holds_only_if_nobody_changed_the_name_a_clear_if_it_is_there() {
        let (replica, _) = loaded();
        let expiry = replica.removal("a", Removal::Expired, 50);
        assert_eq!(
            expiry.compare,
            [Compare::ModRevision {
                key: b"/p/names/a".to_vec(),
                revision: 7
            }]
        );
        let clear = replica.removal("a", Removal::Cleared, 50);
        assert_eq!(
            clear.compare,
            [Compare::Exists {
                key: b"/p/names/a".to_vec()
            }]
        );
        assert_eq!(clear.ops.len(), 2, "the delete and its marker");
    }

    #[test]
    fn names_created_in_one_revision_are_in_key_order_whether_watched_or_loaded() {
        let created = |key: &str, value: &str| WatchEvent {
            kind: String::new(),
            kv: kv(key, value, 30, 30),
        };
        let (mut watched, mut board) = loaded();
        watched.apply(
            &mut board,
            &[
                created("/p/names/zed", &status("z", 1)),
                created("/p/names/abe", &status("a", 1)),
            ],
        );
        let mut fresh = Replica::new(b"/p/");
        let mut loaded_board = Board::new(10);
        fresh.load(
            &mut loaded_board,
            header(30),
            vec![
                kv("/p/names/zed", &status("z", 1), 30, 30),
                kv("/p/names/a", &status("one", 1), 3, 7),
                kv("/p/names/abe", &status("a", 1), 30, 30),
                kv("/p/names/b", &status("two", 2), 5, 5),
            ],
        );
        assert_eq!(board.encoded(), loaded_board.encoded());
        assert_eq!(board.encoded(), b"- a: one\n- b: two\n- abe: a\n- zed: z\n");
    }

    #[test]
    fn queued_puts_merge_into_one_transaction_unless_a_key_comes_again_or_a_condition() {
        let puts = |names: &[&str]| Txn {
            compare: Vec::new(),
            ops: names
                .iter()
                .map(|n| Op::Put {
                    key: n.as_bytes().to_vec(),
                    value: Vec::new(),
                })
                .collect(),
        };
        let conditional = Txn {
            compare: vec![Compare::Exists { key: b"x".to_vec() }],
            ops: vec![Op::Delete { key: b"x".to_vec() }],
        };
        let merged = Replica::merge(
            [
                puts(&["a", "b"]),
                puts(&["c"]),
                puts(&["a"]),
                conditional,
                puts(&["d"]),
                puts(&["e"]),
            ]
            .into_iter(),
        );
        let sizes: Vec<(usize, usize)> = merged
            .iter()
            .map(|t| (t.compare.len(), t.ops.len()))
            .collect();
        assert_eq!(sizes, [(0, 3), (0, 1), (1, 1), (0, 2)]);
    }
}
