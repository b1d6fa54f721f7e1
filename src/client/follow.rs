//! Keeping a copy of the board in step with the server, for every watcher:
//! the terminal's (`status_client _`) and the web gateway (`status_web`).
//!
//! It keeps up in the best way the server offers: changes pushed by its
//! publisher (the Clone pattern: subscribe, then snapshot, then apply each
//! next change), else `_:@since` polls that cost a few bytes while nothing
//! changes, else (the original server) a whole board per poll.
//!
//! A [`Follower`] is pulled: each [`Follower::next`] returns one [`Step`],
//! so the terminal draws, and the gateway tells its viewers, as they see fit.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::{
    self, Event, ExtendedReply, Notice, POLL_REQUEST, ProtocolError, Removal, SNAPSHOT_REQUEST,
};
use crate::shutdown::Shutdown;

use super::link::Link;
use super::mirror::{self, Applied, Mirror};
use super::request_error::RequestError;
use super::say::eprintln_visible;
use super::subscription::Subscription;

/// A publisher silent this long is presumed gone; it sends a heartbeat every second.
const SILENCE: Duration = Duration::from_secs(3);

/// Why a follower cannot go on: what its caller decides about (a watcher
/// ends; the web gateway starts again, but for a login).
///
/// An absent server is not one: a [`Follower`] rides that out
/// ([`Step::Away`]).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A request failed in a way that waiting does not mend (a login, a bad
    /// endpoint, a socket), or a wait for changes failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The reply is neither a board nor an error.
    #[error("the reply from {endpoint} is not a status board")]
    BadReply {
        /// Who sent it.
        endpoint: String,
        /// What is wrong with it.
        source: ProtocolError,
    },
}

/// What one pull of a [`Follower`] brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// One published change, now applied to the mirror.
    Changed(Change),
    /// A whole board came in: the first, one after a gap or a restart that
    /// differs from the last, or a poll's answer (`changed` says whether it
    /// differs from the board before); or a cluster's revision, whose
    /// changes came together, was applied.
    Board {
        /// Whether the mirror differs from what the last step showed.
        changed: bool,
    },
    /// Nothing new for a moment (at most `Shutdown::CHECK_EVERY`): time to
    /// redraw ages, or to look at the terminal's size.
    Idle,
    /// The server did not answer a round of tries; it is asked again at the next pull.
    Away,
}

/// One published change, as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its number in the server run.
    pub seq: u64,
    /// When the server made it (ms since the Unix epoch, server's clock).
    pub at_ms: u64,
    /// Whose entry.
    pub name: String,
    /// What became of it.
    pub what: What,
}

/// What a published change did to a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// It now has this status (with its leading `:`).
    Set(String),
    /// It left the board.
    Removed(Removal),
}

impl Change {
    fn of(notice: &Notice<'_>) -> Option<Change> {
        let (name, what) = match notice.event {
            Event::Set { name, status } => (name, What::Set(status.to_owned())),
            Event::Removed { name, why } => (name, What::Removed(why)),
            // Several changes at once: told as a whole board.
            Event::Heartbeat | Event::Revision { .. } => return None,
        };
        Some(Change {
            seq: notice.seq,
            at_ms: notice.at_ms,
            name: name.to_owned(),
            what,
        })
    }

    /// The change as published in the server run `epoch`, to apply to another mirror.
    pub fn notice<'a>(&'a self, epoch: &'a str) -> Notice<'a> {
        let name = self.name.as_str();
        let event = match &self.what {
            What::Set(status) => Event::Set { name, status },
            What::Removed(why) => Event::Removed { name, why: *why },
        };
        Notice {
            epoch,
            seq: self.seq,
            at_ms: self.at_ms,
            event,
        }
    }
}

/// How a follower keeps up, for a title line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Changes pushed by the publisher.
    Live,
    /// `_:@since` polls.
    Since,
    /// The original server: whole boards polled.
    Original,
}

/// How a follower keeps up with the board.
enum Feed {
    /// Changes pushed by the server's publisher.
    Live(Subscription),
    /// `_:@since EPOCH SEQ` every interval: a few bytes while nothing changes.
    Since,
    /// The original server: `_:` every interval, the whole board each time.
    Original,
}

/// A copy of the board and how it is kept in step with the server.
pub struct Follower {
    link: Link,
    /// Time between polls, when the server does not publish.
    interval: Duration,
    mirror: Mirror,
    feed: Feed,
    /// A snapshot is due: at the start, after a gap, after subscribing.
    want_snapshot: bool,
    /// Published messages received and not yet applied.
    received: VecDeque<Vec<u8>>,
    /// Publishers that never spoke to us: not tried again.
    silent: HashSet<String>,
    next_poll: Instant,
    /// The mirror changed since the last step that said so.
    unreported: bool,
    /// The publisher went silent after it had spoken: the server is out of
    /// touch, before a round of requests can say so.
    publisher_lost: bool,
    /// The server has answered a request, board or not.
    answered: bool,
}

impl Follower {
    /// A follower of the server `link` reaches, polling every `interval`
    /// if it must; nothing is asked until the first [`Follower::next`].
    pub fn new(link: Link, interval: Duration) -> Follower {
        Follower {
            link,
            interval,
            mirror: Mirror::empty(),
            feed: Feed::Original,
            want_snapshot: true,
            received: VecDeque::new(),
            silent: HashSet::new(),
            next_poll: Instant::now(),
            unreported: false,
            publisher_lost: false,
            answered: false,
        }
    }

    /// The next step; `None` once `shutdown` is triggered.
    pub fn next(&mut self, shutdown: &Shutdown) -> Result<Option<Step>, FollowError> {
        match self.step(shutdown) {
            // Ctrl-C is how a watcher is stopped.
            Err(FollowError::Request(RequestError::Interrupted)) => Ok(None),
            Ok(_) if shutdown.is_triggered() => Ok(None),
            other => other.map(Some),
        }
    }

    /// The board as it stands.
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// The connection, and whether the server is away.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Whether the server is out of touch: a round went unanswered, or its
    /// publisher, which sends a heartbeat every second, went silent.
    pub fn is_out_of_touch(&self) -> bool {
        self.link.is_away() || self.publisher_lost
    }

    /// Whether the server has answered at least once (with a board, or a
    /// refusal of the request).
    pub(crate) fn has_answered(&self) -> bool {
        self.answered
    }

    /// Whether published changes are queued: the next steps bring them at once.
    pub(crate) fn has_pending(&self) -> bool {
        !self.received.is_empty()
    }

    /// How it keeps up now.
    pub fn how(&self) -> How {
        match self.feed {
            Feed::Live(_) => How::Live,
            Feed::Since => How::Since,
            Feed::Original => How::Original,
        }
    }

    fn step(&mut self, shutdown: &Shutdown) -> Result<Step, FollowError> {
        loop {
            if let Some(step) = self.apply_received() {
                return Ok(step);
            }
            // A gateway says its board is current again only in a snapshot
            // (a poll's `unchanged` and the publisher do not): while it says
            // stale, one every interval (in place of the `_:@since` poll).
            let stale = self.mirror.stale_since_ms.is_some();
            if stale && matches!(self.feed, Feed::Live(_)) && Instant::now() >= self.next_poll {
                self.want_snapshot = true;
            }
            if self.want_snapshot {
                let Some(reply) = self.fetch(SNAPSHOT_REQUEST, shutdown)? else {
                    return Ok(Step::Away);
                };
                self.want_snapshot = false;
                self.take(reply);
                if self.want_snapshot {
                    continue; // subscribed: the Clone pattern's snapshot comes next
                }
                return Ok(self.report(false));
            }
            if let Feed::Live(sub) = &mut self.feed {
                if sub.receive(&mut self.received)? {
                    self.link.heard();
                    self.publisher_lost = false;
                    continue;
                }
                if self.publisher_silent() {
                    if self.publisher_lost {
                        // Said at once; the round that follows may take its tries.
                        return Ok(Step::Away);
                    }
                    continue;
                }
                return Ok(Step::Idle);
            }
            let left = self.next_poll.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                if !shutdown.sleep(left.min(Shutdown::CHECK_EVERY)) {
                    return Err(RequestError::Interrupted.into());
                }
                return Ok(Step::Idle);
            }
            let request = match self.feed {
                Feed::Since if stale => SNAPSHOT_REQUEST.to_owned(),
                Feed::Since => protocol::format_since(&self.mirror.epoch, self.mirror.seq),
                _ => POLL_REQUEST.to_owned(),
            };
            let Some(reply) = self.fetch(&request, shutdown)? else {
                return Ok(Step::Away);
            };
            self.take(reply);
            if self.want_snapshot {
                continue;
            }
            // A board every interval, as the original prints it, changed or not.
            return Ok(self.report(true));
        }
    }

    /// Applies the next received message that changes the board; on a gap,
    /// drops the rest and asks for a snapshot.
    fn apply_received(&mut self) -> Option<Step> {
        while let Some(frame) = self.received.pop_front() {
            // Not UTF-8 (a foreign publisher): U+FFFD, as in replies.
            let frame = String::from_utf8_lossy(&frame);
            if protocol::heartbeat_stale_since(frame.as_bytes()).is_some()
                && self.mirror.stale_since_ms.is_none()
            {
                // Its gateway lost its etcd quorum: the snapshot says since when.
                self.want_snapshot = true;
            }
            let notice = match protocol::parse_notice(frame.as_bytes()) {
                Ok(notice) => notice,
                Err(err) => {
                    eprintln_visible(format_args!(
                        "{}: ignored a published change: {err}",
                        self.link.program()
                    ));
                    continue;
                }
            };
            match self.mirror.apply(&notice) {
                Applied::Changed => {
                    return Some(match Change::of(&notice) {
                        Some(change) => Step::Changed(change),
                        // A revision: the board as a whole, as after a snapshot.
                        None => Step::Board { changed: true },
                    });
                }
                Applied::Ignored => {}
                Applied::Gap => {
                    self.received.clear();
                    self.want_snapshot = true;
                }
            }
        }
        None
    }

    /// A whole board's step: said when it differs from the last one said, or
    /// always for a poll's answer.
    fn report(&mut self, polled: bool) -> Step {
        let changed = std::mem::take(&mut self.unreported);
        match changed || polled {
            true => Step::Board { changed },
            false => Step::Idle,
        }
    }

    /// One round of `request`: the parsed reply, or `None` if the server is away.
    fn fetch(
        &mut self,
        request: &str,
        shutdown: &Shutdown,
    ) -> Result<Option<ExtendedReply>, FollowError> {
        let Some(reply) = self.link.round(request, shutdown)? else {
            return Ok(None);
        };
        self.answered = true;
        self.publisher_lost = false;
        self.next_poll = Instant::now() + self.interval;
        if let Feed::Live(sub) = &mut self.feed {
            // The server answers: its publisher gets a fresh while to be heard.
            sub.last_heard = Instant::now();
        }
        // Bytes that are not UTF-8 (only a foreign server sends them) show
        // as U+FFFD: one bad byte does not stop the watching.
        let reply = String::from_utf8_lossy(&reply);
        protocol::parse_extended_reply(reply.as_bytes())
            .map(Some)
            .map_err(|source| FollowError::BadReply {
                endpoint: self.link.endpoint().to_owned(),
                source,
            })
    }

    /// Takes a reply in and picks how to follow the board from there.
    fn take(&mut self, reply: ExtendedReply) {
        match reply {
            ExtendedReply::Snapshot(snapshot) => {
                self.unreported |= self.mirror.reset(snapshot);
                self.choose_feed();
            }
            ExtendedReply::Unchanged { .. } => {}
            ExtendedReply::Board(entries) => {
                self.unreported |= self.mirror.reset_original(entries);
                self.feed = Feed::Original;
            }
            // Not our server, and not the original either: fall back to the
            // one request every status server answers.
            ExtendedReply::Error(message) => {
                eprintln_visible(format_args!(
                    "{}: the server refused a snapshot ({message}); polling instead",
                    self.link.program()
                ));
                self.feed = Feed::Original;
            }
        }
    }

    /// Subscribes to the publisher the snapshot names, if any (then a fresh
    /// snapshot is due, the Clone pattern's order); else polls with `_:@since`.
    fn choose_feed(&mut self) {
        let endpoint = mirror::publisher_endpoint(self.link.endpoint(), &self.mirror.publish)
            .filter(|e| !self.silent.contains(e));
        let Some(endpoint) = endpoint else {
            self.feed = Feed::Since;
            return;
        };
        if matches!(&self.feed, Feed::Live(sub) if sub.endpoint == endpoint) {
            return;
        }
        match Subscription::open(&self.link.client, &endpoint) {
            Ok(sub) => {
                self.feed = Feed::Live(sub);
                // Subscribed first: every change after the snapshot is on its way.
                self.want_snapshot = true;
            }
            Err(err) => {
                eprintln_visible(format_args!(
                    "{}: cannot subscribe to {endpoint}: {err}; polling instead",
                    self.link.program()
                ));
                self.silent.insert(endpoint);
                self.feed = Feed::Since;
            }
        }
    }

    /// Whether the publisher has said nothing, not even a heartbeat, for
    /// [`SILENCE`]; if so, what to do next is set.
    fn publisher_silent(&mut self) -> bool {
        let Feed::Live(sub) = &mut self.feed else {
            return false;
        };
        if sub.last_heard.elapsed() < SILENCE {
            return false;
        }
        if !sub.ever_heard && !sub.doubted {
            // Silent from the start: the server may have gone since its
            // snapshot. A request tells; the publisher is given up only if
            // the server answers and it stays silent.
            sub.doubted = true;
            self.want_snapshot = true;
            return true;
        }
        if !sub.ever_heard {
            // Nothing ever came: a firewall, or an address only the server's
            // host can reach. Polling works wherever the server answers.
            eprintln_visible(format_args!(
                "{}: no changes from the publisher at {} in {} s; polling every {} s instead",
                self.link.program(),
                sub.endpoint,
                SILENCE.as_secs(),
                self.interval.as_secs_f64()
            ));
            self.silent.insert(sub.endpoint.clone());
            self.feed = Feed::Since;
            return true;
        }
        // It spoke before and stopped: the server may be gone or restarted.
        // Given others, ask the next at once rather than wait out this
        // one's tries; alone, it is asked again, and waited for.
        sub.last_heard = Instant::now();
        self.want_snapshot = true;
        self.publisher_lost = true;
        self.link.client.fail_over(format_args!(
            "its publisher went silent: no heartbeat in {} s",
            SILENCE.as_secs()
        ));
        true
    }
}
