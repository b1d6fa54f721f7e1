//! What the gateway knows of the board, shared between the thread that
//! follows the server and the HTTP side, and the events it sends viewers.
//!
//! Every event is encoded once, as the bytes of one Server-Sent Event, and
//! the same bytes go to every viewer: a thousand viewers cost a thousand
//! reference counts, not a thousand encodings.

use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use status_board::client::follow::{Change, How, What};
use status_board::client::mirror::{Applied, Mirror};
use status_board::client::render::{display_status, write_mirror_json};

/// Events a viewer may fall behind by before it is sent a fresh board instead.
const BACKLOG: usize = 4096;

/// Whether the gateway hears from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No board yet.
    Connecting,
    /// The server answers.
    Live(How),
    /// The server stopped answering; it was last heard at this time (ms
    /// since the Unix epoch, our clock).
    Stale {
        /// When it was last heard.
        since_ms: u64,
    },
}

struct Shared {
    mirror: Mirror,
    reach: Reach,
    /// Whether the server wants a login for posts; `None` until known.
    logins: Option<bool>,
}

/// The board as the gateway last heard it, and the viewers' event stream.
pub struct Gateway {
    shared: Mutex<Shared>,
    events: broadcast::Sender<Bytes>,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            shared: Mutex::new(Shared {
                mirror: Mirror::empty(),
                reach: Reach::Connecting,
                logins: None,
            }),
            events: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Gateway {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere while holding it leaves a board that is still a board.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new viewer: the board as it is now (and a heartbeat for the clock),
    /// and every event after it.
    pub fn subscribe(&self) -> (Bytes, broadcast::Receiver<Bytes>) {
        // Under the lock: no event can fall between the board and the stream.
        let shared = self.lock();
        let receiver = self.events.subscribe();
        let mut first = board_event(&shared);
        first.extend_from_slice(&heartbeat_event(&shared));
        (Bytes::from(first), receiver)
    }

    /// One published change, as the follower applied it to `follower`'s mirror.
    pub fn change(&self, change: &Change, follower: &Mirror) {
        let mut shared = self.lock();
        let epoch = shared.mirror.epoch.clone();
        if shared.mirror.apply(&change.notice(&epoch)) != Applied::Changed {
            // Not the next one for our copy: take the follower's whole.
            return self.replace(shared, follower);
        }
        let data = match &change.what {
            What::Set(status) => json!({
                "seq": change.seq,
                "name": change.name,
                "status": display_status(status),
                "set_at_ms": change.at_ms,
            }),
            What::Removed(why) => json!({
                "seq": change.seq,
                "name": change.name,
                "why": why.as_str(),
                "at_ms": change.at_ms,
            }),
        };
        let kind = match change.what {
            What::Set(_) => "set",
            What::Removed(_) => "del",
        };
        self.send(&shared, sse(kind, &data));
    }

    /// A whole board came in that differs from ours.
    pub fn board(&self, follower: &Mirror) {
        self.replace(self.lock(), follower);
    }

    fn replace(&self, mut shared: MutexGuard<'_, Shared>, follower: &Mirror) {
        shared.mirror = follower.clone();
        let event = board_event(&shared);
        self.send(&shared, event);
    }

    /// Whether the server answers; a change is told to viewers at once.
    pub fn reach(&self, reach: Reach) {
        let mut shared = self.lock();
        if shared.reach == reach {
            return;
        }
        shared.reach = reach;
        self.send(&shared, heartbeat_event(&shared));
    }

    /// Since when the server (a gateway of a cluster) says its board may
    /// be old, as its last snapshot said; a change is told to viewers at once.
    pub fn cluster_stale(&self, since_ms: Option<u64>) {
        let mut shared = self.lock();
        if shared.mirror.stale_since_ms == since_ms {
            return;
        }
        shared.mirror.stale_since_ms = since_ms;
        self.send(&shared, heartbeat_event(&shared));
    }

    /// What is known of whether the server wants a login for posts: the
    /// page shows its login fields from the start when it does. `None`
    /// (no answer) changes nothing.
    pub fn logins(&self, wanted: Option<bool>) {
        let mut shared = self.lock();
        if wanted.is_none() || shared.logins == wanted {
            return;
        }
        shared.logins = wanted;
        self.send(&shared, heartbeat_event(&shared));
    }

    /// The heartbeat every viewer gets every second: the server's clock for
    /// ages, and whether the server answers.
    pub fn heartbeat(&self) {
        let shared = self.lock();
        self.send(&shared, heartbeat_event(&shared));
    }

    /// The board as `status_client _ --json` prints it; `None` before the
    /// server was first heard, as that prints no board then either.
    pub fn board_json(&self) -> Option<Vec<u8>> {
        let shared = self.lock();
        if !shared.mirror.has_board() {
            return None;
        }
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = write_mirror_json(&mut out, &shared.mirror);
        Some(out)
    }

    /// Sent under the lock, so that events keep the order of the board's changes.
    fn send(&self, _order: &Shared, event: Vec<u8>) {
        // No viewers is not an error.
        let _ = self.events.send(Bytes::from(event));
    }
}

/// The whole board: `event: board`.
fn board_event(shared: &Shared) -> Vec<u8> {
    let mirror = &shared.mirror;
    let entries: Vec<Value> = mirror
        .entries()
        .map(|(name, entry)| {
            json!({
                "name": name,
                "status": display_status(&entry.status),
                "set_at_ms": entry.set_at_ms,
            })
        })
        .collect();
    // Names that left lately, and why: a poll's board does not say.
    let departed: Vec<Value> = mirror
        .recent_departures()
        .map(|gone| json!({ "name": gone.name, "why": gone.why.as_str() }))
        .collect();
    let data = json!({
        "epoch": mirror.epoch,
        "seq": mirror.seq,
        "original": mirror.has_board() && mirror.is_original(),
        "entries": entries,
        "departed": departed,
    });
    sse("board", &data)
}

/// `event: hb`: the server's clock and whether it answers.
fn heartbeat_event(shared: &Shared) -> Vec<u8> {
    let (state, feed, since) = match shared.reach {
        Reach::Connecting => ("connecting", None, None),
        Reach::Live(how) => ("live", Some(how), None),
        Reach::Stale { since_ms } => ("stale", None, Some(since_ms)),
    };
    let feed = feed.map(|how| match how {
        How::Live => "pushed",
        How::Since => "polled",
        How::Original => "polled (original server)",
    });
    let data = json!({
        "server_now_ms": shared.mirror.server_now_ms(),
        "seq": shared.mirror.seq,
        "state": state,
        "feed": feed,
        "stale_since_ms": since,
        "cluster_stale_since_ms": shared.mirror.stale_since_ms,
        "logins": shared.logins,
    });
    sse("hb", &data)
}

/// One Server-Sent Event: its name and one line of JSON.
fn sse(kind: &str, data: &Value) -> Vec<u8> {
    // serde_json escapes newlines inside strings: the data is one line.
    format!("event: {kind}\ndata: {data}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use status_board::protocol::{Entry, Removal, Snapshot, SnapshotHeader};

    fn mirror(seq: u64, names: &[(&str, &str)]) -> Mirror {
        Mirror::new(Snapshot {
            header: SnapshotHeader {
                epoch: "e1".into(),
                seq,
                now_ms: 1_000,
                ..SnapshotHeader::default()
            },
            entries: names
                .iter()
                .map(|(name, status)| Entry {
                    name: (*name).into(),
                    status: (*status).into(),
                    set_at_ms: Some(500),
                })
                .collect(),
        })
    }

    fn next(receiver: &mut broadcast::Receiver<Bytes>) -> String {
        let bytes = receiver.try_recv().expect("an event");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[test]
    fn a_viewer_gets_the_board_then_each_change_as_one_event() {
        let gateway = Gateway::default();
        let follower = mirror(1, &[("alice", ": in a meeting")]);
        gateway.board(&follower);
        let (first, mut events) = gateway.subscribe();
        let first = String::from_utf8(first.to_vec()).unwrap();
        assert!(first.starts_with("event: board\ndata: {"), "{first}");
        assert!(first.contains(r#""name":"alice","status":"in a meeting""#));
        assert!(first.contains("\n\nevent: hb\ndata: {"), "{first}");

        let set = Change {
            seq: 2,
            at_ms: 900,
            name: "bob".into(),
            what: What::Set(": out\nforged".into()),
        };
        gateway.change(&set, &follower);
        let event = next(&mut events);
        assert_eq!(event.matches('\n').count(), 3, "one data line: {event:?}");
        assert!(event.starts_with("event: set\ndata: "));
        assert!(event.contains(r#""name":"bob","status":"out\nforged","set_at_ms":900"#));

        let gone = Change {
            seq: 3,
            at_ms: 950,
            name: "alice".into(),
            what: What::Removed(Removal::Expired),
        };
        gateway.change(&gone, &follower);
        assert!(next(&mut events).contains(r#""why":"expired""#));
        let json = String::from_utf8(gateway.board_json().expect("a board")).unwrap();
        assert!(
            json.starts_with(r#"{"seq":3,"entries":[{"name":"bob""#),
            "{json}"
        );
    }

    #[test]
    fn a_change_out_of_step_sends_the_followers_whole_board() {
        let gateway = Gateway::default();
        let (_, mut events) = gateway.subscribe();
        let follower = mirror(7, &[("carol", ": here")]);
        let change = Change {
            seq: 7,
            at_ms: 1,
            name: "carol".into(),
            what: What::Set(": here".into()),
        };
        gateway.change(&change, &follower);
        let event = next(&mut events);
        assert!(event.starts_with("event: board\n"), "{event}");
        assert!(event.contains(r#""seq":7"#));
    }

    #[test]
    fn whether_logins_are_wanted_is_told_once_known_and_an_unknown_board_is_not_served() {
        let gateway = Gateway::default();
        assert!(
            gateway.board_json().is_none(),
            "no board before the server is heard"
        );
        let (first, mut events) = gateway.subscribe();
        assert!(String::from_utf8_lossy(&first).contains(r#""logins":null"#));
        gateway.logins(None);
        gateway.logins(Some(true));
        gateway.logins(Some(true));
        assert!(next(&mut events).contains(r#""logins":true"#));
        assert!(events.try_recv().is_err(), "told once");
    }

    #[test]
    fn a_board_says_which_names_left_and_why() {
        let gateway = Gateway::default();
        let mut follower = mirror(1, &[("a", ": 1"), ("b", ": 2")]);
        follower.apply(
            &Change {
                seq: 2,
                at_ms: 900,
                name: "a".into(),
                what: What::Removed(Removal::Expired),
            }
            .notice("e1"),
        );
        gateway.board(&follower);
        let (first, _) = gateway.subscribe();
        let first = String::from_utf8(first.to_vec()).unwrap();
        assert!(
            first.contains(r#""departed":[{"name":"a","why":"expired"}]"#),
            "{first}"
        );
    }

    #[test]
    fn reach_is_told_once_per_change() {
        let gateway = Gateway::default();
        let (_, mut events) = gateway.subscribe();
        gateway.reach(Reach::Live(How::Live));
        gateway.reach(Reach::Live(How::Live));
        gateway.reach(Reach::Stale { since_ms: 42 });
        assert!(next(&mut events).contains(r#""state":"live""#));
        let stale = next(&mut events);
        assert!(stale.contains(r#""state":"stale""#) && stale.contains(r#""stale_since_ms":42"#));
        assert!(events.try_recv().is_err(), "nothing more");
    }
}
