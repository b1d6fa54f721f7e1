//! A watcher's copy of the board, kept in step with the server.
//!
//! This is the client half of the Clone pattern (ZeroMQ guide, chapter 5):
//! subscribe to the publisher first, then take a snapshot, which carries the
//! number of its last change. Published changes at or below that number are
//! already in it and are dropped; the next one must be exactly one more. A
//! gap, or a change from another server run (epoch), means something was
//! missed: the watcher takes a fresh snapshot.

use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::clock::now_ms;
use crate::protocol::{Entry, Event, Notice, Removal, Snapshot, SnapshotHeader};

/// How long a change stays marked on a terminal watcher.
pub(crate) const MARK_FOR: Duration = Duration::from_secs(10);

/// One name on the mirrored board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorEntry {
    /// The status including its leading `:`.
    pub status: String,
    /// When it was set, by the server's clock (ms since the Unix epoch);
    /// `None` from the original server, which does not say.
    pub set_at_ms: Option<u64>,
    /// When this watcher saw it change; `None` if it was already there.
    pub changed: Option<Instant>,
}

/// A name that left the board, shown for `MARK_FOR` where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// Who.
    pub name: String,
    /// Why.
    pub why: Removal,
    /// When this watcher saw it.
    pub seen: Instant,
    /// Its place in board order when it left: a screen shows it there.
    pub place: usize,
}

/// What applying a published message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The board changed.
    Changed,
    /// Nothing to do: already in the snapshot, or a heartbeat in step.
    Ignored,
    /// Something was missed, or the server restarted: take a fresh snapshot.
    Gap,
}

/// The board as our server last described it, with its place in the change stream.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The server run this board came from.
    pub epoch: String,
    /// The number of the last change applied.
    pub seq: u64,
    /// Where the server publishes changes.
    pub publish: Vec<String>,
    /// Since when (the server's clock, ms since the Unix epoch) the server,
    /// a gateway of a cluster, cannot reach its store's quorum, as its last
    /// snapshot said: the board may be old.
    pub stale_since_ms: Option<u64>,
    entries: IndexMap<String, MirrorEntry>,
    departures: Vec<Departure>,
    /// Server clock minus ours, in ms, so that ages do not depend on our clock.
    clock_offset_ms: i64,
    /// Whether a board is in: later ones mark what they change.
    filled: bool,
}

impl Mirror {
    /// A mirror of a snapshot, taken just now.
    pub fn new(snapshot: Snapshot) -> Mirror {
        let mut mirror = Mirror::empty();
        mirror.reset(snapshot);
        mirror
    }

    /// A mirror with no board in it yet.
    pub fn empty() -> Mirror {
        Mirror {
            epoch: String::new(),
            seq: 0,
            publish: Vec::new(),
            stale_since_ms: None,
            entries: IndexMap::new(),
            departures: Vec::new(),
            clock_offset_ms: 0,
            filled: false,
        }
    }

    /// Takes a snapshot in; after the first, entries that differ from before
    /// are marked changed. Whether the board differs from before (the first
    /// one always does).
    pub(crate) fn reset(&mut self, snapshot: Snapshot) -> bool {
        let differs = self.replace(snapshot, self.filled);
        let first = !self.filled;
        self.filled = true;
        differs || first
    }

    /// Takes the original server's plain board in (no times, no numbers), as `Mirror::reset`.
    pub fn reset_original(&mut self, entries: Vec<Entry>) -> bool {
        self.reset(Self::as_snapshot(entries))
    }

    fn as_snapshot(entries: Vec<Entry>) -> Snapshot {
        Snapshot {
            header: SnapshotHeader {
                now_ms: now_ms(),
                ..SnapshotHeader::default()
            },
            entries,
        }
    }

    /// Whether a board has come in yet.
    pub fn has_board(&self) -> bool {
        self.filled
    }

    /// Whether this board came from the original server (no epoch, no ages).
    pub fn is_original(&self) -> bool {
        self.epoch.is_empty()
    }

    /// Whether any entry differs, or the order.
    fn replace(&mut self, snapshot: Snapshot, mark: bool) -> bool {
        let now = Instant::now();
        let mut differs = snapshot.entries.len() != self.entries.len();
        let header = snapshot.header;
        self.clock_offset_ms = offset(header.now_ms);
        let mut entries = IndexMap::with_capacity(snapshot.entries.len());
        for Entry {
            name,
            status,
            set_at_ms,
        } in snapshot.entries
        {
            let same_place = self.entries.get_index_of(&name) == Some(entries.len());
            let changed = match self.entries.get(&name) {
                Some(old) if old.status == status && old.set_at_ms == set_at_ms => {
                    differs |= !same_place;
                    old.changed
                }
                Some(_) => {
                    differs = true;
                    Some(now)
                }
                None => {
                    differs = true;
                    mark.then_some(now)
                }
            };
            entries.insert(
                name,
                MirrorEntry {
                    status,
                    set_at_ms,
                    changed,
                },
            );
        }
        if mark {
            // A name missing from a later board left it in between: a poll
            // does not say why, the server's TTL and clock do.
            for (place, (name, old)) in self.entries.iter().enumerate() {
                if !entries.contains_key(name) {
                    let why = why_gone(old, header.ttl_ms, header.now_ms);
                    self.departures.push(Departure {
                        name: name.clone(),
                        why,
                        seen: now,
                        place,
                    });
                }
            }
        }
        // A name back on the board is no longer gone.
        self.departures
            .retain(|d| !entries.contains_key(&d.name) && d.seen.elapsed() < MARK_FOR);
        self.entries = entries;
        self.epoch = header.epoch;
        self.seq = header.seq;
        self.publish = header.publish;
        self.stale_since_ms = header.stale_since_ms;
        differs
    }

    /// Applies one published message, if it is the next one: a `set` or
    /// `del` numbered one past ours, or a `rev` whose previous number is
    /// ours (or below ours: nothing was published between it and it, so a
    /// snapshot taken between the two is at the same board).
    pub fn apply(&mut self, notice: &Notice<'_>) -> Applied {
        if notice.epoch != self.epoch {
            return Applied::Gap;
        }
        if let Event::Heartbeat = notice.event {
            self.clock_offset_ms = offset(notice.at_ms);
            // It carries the last change's number: beyond ours means we missed it.
            return if notice.seq > self.seq {
                Applied::Gap
            } else {
                Applied::Ignored
            };
        }
        if notice.seq <= self.seq {
            return Applied::Ignored;
        }
        let next = match notice.event {
            Event::Revision { prev, .. } => prev <= self.seq,
            _ => notice.seq == self.seq + 1,
        };
        if !next {
            return Applied::Gap;
        }
        self.seq = notice.seq;
        match notice.event {
            Event::Revision { changes, .. } => {
                for change in changes.iter() {
                    self.apply_change(change, notice.at_ms);
                }
            }
            event => self.apply_change(event, notice.at_ms),
        }
        Applied::Changed
    }

    /// Applies one change made at `at_ms` by the server's clock.
    fn apply_change(&mut self, event: Event<'_>, at_ms: u64) {
        let now = Instant::now();
        match event {
            Event::Set { name, status } => {
                let entry = MirrorEntry {
                    status: status.to_owned(),
                    set_at_ms: Some(at_ms),
                    changed: Some(now),
                };
                self.departures.retain(|d| d.name != name);
                self.entries.insert(name.to_owned(), entry);
            }
            Event::Removed { name, why } => {
                let place = self.entries.get_index_of(name);
                self.entries.shift_remove(name);
                // Bounded: only the last MARK_FOR's are kept.
                self.departures
                    .retain(|d| d.seen.elapsed() < MARK_FOR && d.name != name);
                self.departures.push(Departure {
                    name: name.to_owned(),
                    why,
                    seen: now,
                    place: place.unwrap_or(self.entries.len()),
                });
            }
            // Not changes: a revision's lines are only sets and removals.
            Event::Heartbeat | Event::Revision { .. } => {}
        }
    }

    /// Entries in board order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &MirrorEntry)> {
        self.entries.iter().map(|(n, e)| (n.as_str(), e))
    }

    /// Names that left the board within `MARK_FOR`, in the order they left.
    pub fn recent_departures(&self) -> impl Iterator<Item = &Departure> {
        self.departures
            .iter()
            .filter(|d| d.seen.elapsed() < MARK_FOR)
    }

    /// Now by the server's clock (ms since the Unix epoch), as of its last word.
    pub fn server_now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.clock_offset_ms)
    }

    /// How long ago the server set a status, by the server's clock; `None`
    /// from the original server.
    pub(crate) fn age(&self, entry: &MirrorEntry) -> Option<Duration> {
        let set_at = entry.set_at_ms?;
        Some(Duration::from_millis(
            self.server_now_ms().saturating_sub(set_at),
        ))
    }

    /// The board as the original protocol prints it: `- NAME STATUS` lines.
    pub(crate) fn plain(&self) -> String {
        let mut out = Vec::new();
        for (name, entry) in &self.entries {
            crate::protocol::encode_entry(&mut out, name, &entry.status);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Why `old` is missing from a board taken at `server_now_ms`: its time ran
/// out under the server's `ttl_ms`, or its owner cleared it.
fn why_gone(old: &MirrorEntry, ttl_ms: Option<u64>, server_now_ms: u64) -> Removal {
    match (ttl_ms, old.set_at_ms) {
        (Some(ttl), Some(set_at)) if set_at.saturating_add(ttl) <= server_now_ms => {
            Removal::Expired
        }
        _ => Removal::Cleared,
    }
}

/// Server clock minus ours, given the server's time just received.
fn offset(server_now_ms: u64) -> i64 {
    let ours = now_ms();
    i64::try_from(i128::from(server_now_ms) - i128::from(ours)).unwrap_or(0)
}

/// The endpoint to subscribe to: one of `published` on the transport we reach
/// the server by, with a wildcard host (`0.0.0.0`, `*`, `::`) replaced by the
/// server's host.
pub(crate) fn publisher_endpoint(server: &str, published: &[String]) -> Option<String> {
    let transport = |e: &str| e.split_once("://").map(|(t, _)| t.to_owned());
    let chosen = published
        .iter()
        .find(|p| transport(p) == transport(server))
        .or_else(|| published.first())?;
    let Some(rest) = chosen.strip_prefix("tcp://") else {
        return Some(chosen.clone());
    };
    let (host, port) = rest.rsplit_once(':')?;
    let wildcard = matches!(host, "0.0.0.0" | "*" | "[::]" | "[::ffff:0.0.0.0]");
    let server_host = server
        .strip_prefix("tcp://")
        .and_then(|r| r.rsplit_once(':'))
        .map(|(h, _)| h);
    match server_host {
        Some(server_host) if wildcard => Some(format!("tcp://{server_host}:{port}")),
        _ => Some(chosen.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(seq: u64, entries: &[(&str, &str, u64)]) -> Snapshot {
        Snapshot {
            header: SnapshotHeader {
                epoch: "e1".into(),
                seq,
                now_ms: now_ms(),
                publish: vec![],
                ttl_ms: None,
                stale_since_ms: None,
            },
            entries: entries
                .iter()
                .map(|(n, s, at)| Entry {
                    name: (*n).into(),
                    status: (*s).into(),
                    set_at_ms: Some(*at),
                })
                .collect(),
        }
    }

    fn set<'a>(seq: u64, name: &'a str, status: &'a str) -> Notice<'a> {
        Notice {
            epoch: "e1",
            seq,
            at_ms: 5,
            event: Event::Set { name, status },
        }
    }

    #[test]
    fn changes_in_the_snapshot_are_dropped_and_the_next_applied() {
        let mut mirror = Mirror::new(snapshot(5, &[("a", ": 1", 1)]));
        assert_eq!(mirror.apply(&set(4, "a", ": old")), Applied::Ignored);
        assert_eq!(mirror.apply(&set(5, "a", ": 1")), Applied::Ignored);
        assert_eq!(mirror.apply(&set(6, "b", ": 2")), Applied::Changed);
        assert_eq!(
            mirror.apply(&set(6, "b", ": 2")),
            Applied::Ignored,
            "a duplicate"
        );
        assert_eq!(mirror.plain(), "- a: 1\n- b: 2\n");
        assert_eq!(mirror.seq, 6);
    }

    #[test]
    fn a_gap_another_epoch_or_a_heartbeat_ahead_asks_for_a_snapshot() {
        let mut mirror = Mirror::new(snapshot(5, &[]));
        assert_eq!(mirror.apply(&set(7, "a", ": 1")), Applied::Gap);
        let mut other = set(6, "a", ": 1");
        other.epoch = "e2";
        assert_eq!(mirror.apply(&other), Applied::Gap);
        let heartbeat = |seq| Notice {
            epoch: "e1",
            seq,
            at_ms: now_ms(),
            event: Event::Heartbeat,
        };
        assert_eq!(mirror.apply(&heartbeat(5)), Applied::Ignored);
        assert_eq!(mirror.apply(&heartbeat(6)), Applied::Gap);
        assert_eq!(mirror.seq, 5, "nothing applied past a gap");
    }

    /// A `rev` notice as a gateway publishes it, parsed.
    fn revision(frame: &str) -> Notice<'_> {
        crate::protocol::parse_notice(frame.as_bytes()).expect("a rev notice")
    }

    #[test]
    fn a_revision_after_ours_applies_whole_though_its_number_jumps() {
        let mut mirror = Mirror::new(snapshot(10, &[("a", ": 1", 1), ("b", ": 2", 1)]));
        let frame = "rev e1 17 50 10\nset c: 3\ndel cleared a\nset b: two";
        assert_eq!(mirror.apply(&revision(frame)), Applied::Changed);
        assert_eq!(mirror.seq, 17, "the revision's number, not one more");
        assert_eq!(mirror.plain(), "- b: two\n- c: 3\n", "all three changes");
        let gone: Vec<&str> = mirror
            .recent_departures()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(gone, ["a"]);
        // The next one names 17 as its previous: in step, though 18..=29 never came.
        assert_eq!(
            mirror.apply(&revision("rev e1 30 60 17\nset a: back")),
            Applied::Changed
        );
        assert_eq!(mirror.plain(), "- b: two\n- c: 3\n- a: back\n");
        // A heartbeat at the last published number is in step.
        let heartbeat = Notice {
            epoch: "e1",
            seq: 30,
            at_ms: now_ms(),
            event: Event::Heartbeat,
        };
        assert_eq!(mirror.apply(&heartbeat), Applied::Ignored);
    }

    #[test]
    fn a_revision_whose_previous_we_lack_is_a_gap_and_an_old_one_is_ignored() {
        let mut mirror = Mirror::new(snapshot(10, &[("a", ": 1", 1)]));
        assert_eq!(
            mirror.apply(&revision("rev e1 20 50 15\nset b: 2")),
            Applied::Gap,
            "15 was published and never came"
        );
        assert_eq!(mirror.seq, 10, "nothing applied past a gap");
        assert_eq!(
            mirror.apply(&revision("rev e1 10 50 4\nset a: old")),
            Applied::Ignored
        );
        assert_eq!(
            mirror.apply(&revision("rev e1 9 50 4\nset a: older")),
            Applied::Ignored
        );
        assert_eq!(mirror.plain(), "- a: 1\n");
        // A snapshot taken at 12, between 10 (published) and 20: in step with 20.
        let mut later = Mirror::new(snapshot(12, &[("a", ": 1", 1)]));
        assert_eq!(
            later.apply(&revision("rev e1 20 50 10\nset b: 2")),
            Applied::Changed
        );
        assert_eq!(later.plain(), "- a: 1\n- b: 2\n");
        let mut other = Mirror::new(snapshot(10, &[]));
        assert_eq!(
            other.apply(&revision("rev e2 20 50 10\nset b: 2")),
            Applied::Gap,
            "another epoch"
        );
    }

    #[test]
    fn removal_keeps_order_and_is_remembered_for_a_while() {
        let mut mirror = Mirror::new(snapshot(1, &[("a", ": 1", 1), ("b", ": 2", 1)]));
        let removed = Notice {
            epoch: "e1",
            seq: 2,
            at_ms: 9,
            event: Event::Removed {
                name: "a",
                why: Removal::Expired,
            },
        };
        assert_eq!(mirror.apply(&removed), Applied::Changed);
        assert_eq!(mirror.plain(), "- b: 2\n");
        let gone: Vec<&Departure> = mirror.recent_departures().collect();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].place, 0, "where it was");
        assert_eq!(
            (gone[0].name.as_str(), gone[0].why),
            ("a", Removal::Expired)
        );
    }

    #[test]
    fn a_name_missing_from_a_later_board_left_expired_past_the_ttl_else_cleared() {
        let mut first = snapshot(
            1,
            &[("a", ": 1", 1_000), ("b", ": 2", 5_000), ("c", ": 3", 1)],
        );
        first.header.ttl_ms = Some(10_000);
        let mut mirror = Mirror::new(first);
        let mut later = snapshot(4, &[("c", ": 3", 1)]);
        later.header.ttl_ms = Some(10_000);
        // a was set 10 s before the server's now: its time ran out; b's had not.
        later.header.now_ms = 11_000;
        mirror.reset(later);
        let gone: Vec<(&str, Removal, usize)> = mirror
            .recent_departures()
            .map(|d| (d.name.as_str(), d.why, d.place))
            .collect();
        assert_eq!(
            gone,
            [("a", Removal::Expired, 0), ("b", Removal::Cleared, 1)]
        );
        // Back on the board: no longer gone.
        mirror.reset(snapshot(5, &[("c", ": 3", 1), ("a", ": again", 12_000)]));
        let gone: Vec<&str> = mirror
            .recent_departures()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(gone, ["b"]);
    }

    #[test]
    fn a_fresh_snapshot_marks_only_what_differs() {
        let mut mirror = Mirror::new(snapshot(1, &[("a", ": 1", 1), ("b", ": 2", 1)]));
        assert!(mirror.entries().all(|(_, e)| e.changed.is_none()));
        mirror.reset(snapshot(9, &[("a", ": 1", 1), ("c", ": 3", 2)]));
        let marked: Vec<&str> = mirror
            .entries()
            .filter(|(_, e)| e.changed.is_some())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(marked, ["c"]);
        assert_eq!(mirror.plain(), "- a: 1\n- c: 3\n");
    }

    #[test]
    fn reset_says_whether_the_board_differs() {
        let mut mirror = Mirror::empty();
        assert!(
            mirror.reset(snapshot(1, &[])),
            "the first board, even empty"
        );
        assert!(!mirror.reset(snapshot(1, &[])));
        assert!(mirror.reset(snapshot(2, &[("a", ": 1", 1), ("b", ": 2", 1)])));
        assert!(!mirror.reset(snapshot(2, &[("a", ": 1", 1), ("b", ": 2", 1)])));
        assert!(
            mirror.reset(snapshot(3, &[("a", ": 1", 2), ("b", ": 2", 1)])),
            "a new time"
        );
        assert!(
            mirror.reset(snapshot(4, &[("b", ": 2", 1), ("a", ": 1", 2)])),
            "the order"
        );
        assert!(mirror.reset(snapshot(5, &[("b", ": 2", 1)])), "one fewer");
    }

    #[test]
    fn a_first_board_marks_nothing_from_either_server() {
        let mut ours = Mirror::empty();
        ours.reset(snapshot(1, &[("a", ": 1", 1)]));
        let mut original = Mirror::empty();
        let plain = |status: &str| Entry {
            name: "a".into(),
            status: status.into(),
            set_at_ms: None,
        };
        original.reset_original(vec![plain(": 1")]);
        assert!(original.is_original() && !ours.is_original());
        for mirror in [&ours, &original] {
            assert!(mirror.entries().all(|(_, e)| e.changed.is_none()));
        }
        original.reset_original(vec![plain(": 2")]);
        assert!(original.entries().all(|(_, e)| e.changed.is_some()));
    }

    #[test]
    fn ages_follow_the_servers_clock() {
        let mut snap = snapshot(1, &[("a", ": 1", 1_000_000)]);
        snap.header.now_ms = 1_000_000 + 180_000; // the server says: 3 min later
        let mirror = Mirror::new(snap);
        let (_, entry) = mirror.entries().next().unwrap();
        let age = mirror.age(entry).map(|a| a.as_secs()).unwrap_or(0);
        assert!((179..=182).contains(&age), "{age}");
    }

    #[test]
    fn the_publisher_is_found_on_the_servers_host() {
        let published = vec!["tcp://0.0.0.0:2346".to_owned()];
        assert_eq!(
            publisher_endpoint("tcp://board.example:2345", &published).as_deref(),
            Some("tcp://board.example:2346")
        );
        let specific = vec!["ipc:///tmp/x".to_owned(), "tcp://10.0.0.5:2346".to_owned()];
        assert_eq!(
            publisher_endpoint("tcp://10.0.0.5:2345", &specific).as_deref(),
            Some("tcp://10.0.0.5:2346")
        );
        assert_eq!(
            publisher_endpoint("ipc:///tmp/s", &specific).as_deref(),
            Some("ipc:///tmp/x")
        );
        assert_eq!(publisher_endpoint("tcp://h:1", &[]), None);
    }
}
