//! Keeping a typer's status on a board that expires statuses (`--ttl`).
//!
//! A server with a TTL removes a status nobody has posted again within it,
//! and says the TTL in its snapshot header. A person at the prompt, or a
//! feed that stays open, means their status to stand while they are there:
//! a [`Refresher`] posts it again, on a thread and a connection of its own,
//! once a third of the TTL has passed since it was set (two thirds of it
//! are left for a slow server or a busy machine), and says so once.
//!
//! Every post of the client's own status goes through [`Own`]: its lock
//! keeps a refresh of an older status from landing after a newer one, and
//! it knows what the client last posted. The refresher looks before it
//! posts: a status changed or removed elsewhere (another terminal, `--clear`)
//! is left alone, and said.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::protocol::{self, ERROR_PREFIX, ExtendedReply, SNAPSHOT_REQUEST};
use crate::shutdown::Shutdown;
use crate::side_thread::SideThread;
use crate::visible::visible;

use super::request::Client;
use super::request_error::RequestError;
use super::say::Say;

/// How long a refresher waits before asking again when the server did not
/// answer its look at the board.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Against a server that did not announce a TTL: how long before a new post
/// asks again (the server may have restarted with one). An idle typer costs
/// nothing.
const RELEARN_AFTER: Duration = Duration::from_secs(60);

/// How often a status is posted again on a server whose TTL is `ttl`.
fn every(ttl: Duration) -> Duration {
    ttl / 3
}

/// The status this client last posted, and the lock every post of it takes.
#[derive(Clone, Default)]
pub(super) struct Own(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    /// The text last posted, while it is ours to keep fresh.
    text: Option<String>,
    /// Posts made so far: a refresh is for the post it looked at.
    posts: u64,
    /// The TTL said to the user, so that it is said once.
    told: Option<Duration>,
}

/// A post of the client's own status in progress: no refresh lands meanwhile.
pub(super) struct Posting<'a>(MutexGuard<'a, Kept>);

impl Posting<'_> {
    /// The server took `text`: it is now the status to keep fresh.
    pub(super) fn posted(&mut self, text: &str) {
        self.0.text = Some(text.to_owned());
        self.0.posts += 1;
    }
}

impl Own {
    /// Takes the lock for one post; hold it until the reply is in.
    pub(super) fn posting(&self) -> Posting<'_> {
        Posting(self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        // A panicking holder leaves the data as it was: still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was last posted, and the number of that post.
    fn current(&self) -> (Option<String>, u64) {
        let kept = self.lock();
        (kept.text.clone(), kept.posts)
    }

    /// Stops keeping post `posts` fresh, unless another came since.
    fn forget(&self, posts: u64) {
        let mut kept = self.lock();
        if kept.posts == posts {
            kept.text = None;
        }
    }
}

/// The thread that keeps the client's own status from expiring; stopped on drop.
pub(super) struct Refresher {
    _thread: SideThread,
}

impl Refresher {
    /// Starts keeping `name`'s status in `own` fresh, through `client`;
    /// `say` tells the user, `to_stop` how they stop it (`Ctrl-D to stop`).
    /// Fails only if the system cannot start a thread.
    pub(super) fn start(
        client: Client,
        name: &str,
        own: Own,
        say: Say,
        to_stop: &'static str,
    ) -> std::io::Result<Refresher> {
        let name = name.to_owned();
        let thread = SideThread::spawn("refresher", move |stop: &Shutdown| {
            Work {
                client,
                name,
                own,
                say,
                to_stop,
                stop: stop.clone(),
                ttl: None,
                seen_posts: 0,
                next_look: None,
                looked_at: None,
            }
            .run()
        })?;
        Ok(Refresher { _thread: thread })
    }
}

/// The refresher's thread and what it knows.
struct Work {
    client: Client,
    name: String,
    own: Own,
    say: Say,
    to_stop: &'static str,
    stop: Shutdown,
    /// The server's TTL, as last announced.
    ttl: Option<Duration>,
    /// The post last seen: a new one is a refresh in itself.
    seen_posts: u64,
    /// When to look at the board next; `None`: at the next post.
    next_look: Option<Instant>,
    /// When it last looked.
    looked_at: Option<Instant>,
}

/// What a look at the board found.
enum Found {
    /// Keep looking at this time; `None`: at the next post.
    LookAt(Option<Instant>),
    /// The server will never say a TTL (the original): stop for good.
    Never,
}

impl Work {
    fn run(&mut self) {
        while !self.stop.is_triggered() {
            let (text, posts) = self.own.current();
            let Some(text) = text else {
                self.stop.sleep(Shutdown::CHECK_EVERY);
                continue;
            };
            if posts != self.seen_posts {
                self.seen_posts = posts;
                self.next_look = self.after_a_post();
            }
            let due = self.next_look.is_some_and(|at| at <= Instant::now());
            if !due {
                self.stop.sleep(Shutdown::CHECK_EVERY);
                continue;
            }
            match self.look(&text, posts) {
                Found::LookAt(at) => self.next_look = at,
                Found::Never => return,
            }
        }
    }

    /// When to look after a post: a refresh interval later, or now if the
    /// TTL is not known and was not asked for lately.
    fn after_a_post(&self) -> Option<Instant> {
        let now = Instant::now();
        match self.ttl {
            Some(ttl) => Some(now + every(ttl)),
            None if self
                .looked_at
                .is_none_or(|at| at.elapsed() >= RELEARN_AFTER) =>
            {
                Some(now)
            }
            None => None,
        }
    }

    /// Looks at the board (the snapshot says the TTL and when our status
    /// was set) and posts the status again if a refresh interval has passed.
    fn look(&mut self, text: &str, posts: u64) -> Found {
        let now = Instant::now();
        self.looked_at = Some(now);
        let snapshot = match self.client.request(SNAPSHOT_REQUEST.as_bytes(), &self.stop) {
            Ok(reply) => match protocol::parse_extended_reply(&reply) {
                Ok(ExtendedReply::Snapshot(snapshot)) => snapshot,
                // The original server: no TTL, and no way to say one.
                Ok(ExtendedReply::Board(_)) => return Found::Never,
                Ok(_) | Err(_) => return Found::LookAt(None),
            },
            Err(RequestError::Interrupted) => return Found::Never,
            // Away: the request says so elsewhere; look again soon.
            Err(_) => return Found::LookAt(Some(now + self.retry_after())),
        };
        self.ttl = snapshot.header.ttl_ms.map(Duration::from_millis);
        let Some(ttl) = self.ttl else {
            return Found::LookAt(None);
        };
        let interval = every(ttl);
        self.tell_once(ttl);
        let status = format!(": {text}");
        let entry = snapshot.entries.iter().find(|e| e.name == self.name);
        let set_at_ms = match entry {
            Some(entry) if entry.status == status => entry.set_at_ms.unwrap_or(0),
            Some(_) => {
                return self.let_go(posts, "your status was changed elsewhere");
            }
            None => {
                return self.let_go(
                    posts,
                    "your status is no longer on the board (expired or cleared)",
                );
            }
        };
        let age = Duration::from_millis(snapshot.header.now_ms.saturating_sub(set_at_ms));
        if age < interval {
            return Found::LookAt(Some(now + (interval - age)));
        }
        // Posted again with the lock held, if nothing newer was posted since the look.
        let mut kept = self.own.lock();
        if kept.posts != posts {
            return Found::LookAt(Some(now));
        }
        let request = protocol::format_update(&self.name, text);
        match self.client.request(request.as_bytes(), &self.stop) {
            Ok(reply) if reply.starts_with(ERROR_PREFIX.as_bytes()) => {
                let why = String::from_utf8_lossy(&reply[ERROR_PREFIX.len()..]).into_owned();
                kept.text = None;
                drop(kept);
                (self.say)(format!(
                    "status_client: could not refresh your status: {}; it will expire",
                    visible(&why)
                ));
                Found::LookAt(None)
            }
            Ok(_) => Found::LookAt(Some(Instant::now() + interval)),
            Err(RequestError::Interrupted) => Found::Never,
            Err(_) => Found::LookAt(Some(Instant::now() + self.retry_after())),
        }
    }

    fn retry_after(&self) -> Duration {
        self.ttl
            .map_or(RETRY_AFTER, |ttl| (ttl / 4).min(RETRY_AFTER))
    }

    /// Says how often the status is refreshed, once per TTL announced.
    fn tell_once(&mut self, ttl: Duration) {
        let mut kept = self.own.lock();
        if kept.told == Some(ttl) {
            return;
        }
        kept.told = Some(ttl);
        drop(kept);
        (self.say)(format!(
            "status_client: the server removes a status not posted again within {}: yours is \
             refreshed every {} so that it does not expire; {}",
            humantime::format_duration(ttl),
            humantime::format_duration(every(ttl)),
            self.to_stop
        ));
    }

    /// Stops refreshing post `posts`, saying why; the next post starts again.
    fn let_go(&mut self, posts: u64, why: &str) -> Found {
        self.own.forget(posts);
        (self.say)(format!(
            "status_client: {why}: it is no longer refreshed; post a status to keep it fresh again"
        ));
        Found::LookAt(None)
    }
}
