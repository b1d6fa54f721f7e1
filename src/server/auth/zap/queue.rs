//! The logins waiting for their password to be checked: bounded, fair
//! between source addresses, and never older than a handshake may be.
//!
//! A password check costs an argon2 verification (~25–50 ms of a core), so a
//! peer that sends junk logins faster than they are checked must not build a
//! queue that everyone else waits behind. Each source address (an IPv6 /64)
//! has a short queue of its own; the checkers take one login per address in
//! turn, so a flooding address delays another's login by one verification
//! at most. When an address's queue is full its oldest login is turned away
//! unverified; when all queues together are full, the longest loses its
//! oldest. A login older than a handshake may take ([`HANDSHAKE_MS`]) has
//! lost its connection already: it is dropped unverified.
//!
//! [`HANDSHAKE_MS`]: crate::server::config::HANDSHAKE_MS

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A PLAIN login waiting for its password to be verified.
#[derive(Debug)]
pub(super) struct Login {
    /// The ZAP pipe of the connection's session, where the answer goes.
    pub(super) reply_to: Vec<u8>,
    /// The request's id, returned in the answer.
    pub(super) request_id: Vec<u8>,
    /// The user name as sent (not always UTF-8: then no user has it).
    pub(super) user: Vec<u8>,
    /// The password as sent.
    pub(super) password: Vec<u8>,
    /// The peer's address, for the log.
    pub(super) address: String,
    /// Who gets a turn: the address, or its /64 for IPv6.
    pub(super) source: Source,
    /// When the handler received it.
    pub(super) arrived: Instant,
}

/// What a login is queued under: an IPv4 address, or an IPv6 /64 (one host
/// may hold a whole /64, and an attacker on it as many addresses).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Source {
    Ip(IpAddr),
    /// No address: an `ipc://` peer, or a TCP peer that hung up before libzmq
    /// asked for its address. All such logins share one turn.
    Unknown,
}

impl Source {
    /// The source of a peer `address` as ZAP gives it (`127.0.0.2`, `::1`, ``).
    pub(super) fn of(address: &str) -> Source {
        match address.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Source::Ip(IpAddr::V6(prefix.into()))
                }
            },
            Ok(v4) => Source::Ip(v4),
            Err(_) => Source::Unknown,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Ip(IpAddr::V6(prefix)) => write!(f, "{prefix}/64"),
            Source::Ip(IpAddr::V4(address)) => write!(f, "{address}"),
            Source::Unknown => f.write_str("peers without an address"),
        }
    }
}

/// How much the queue holds, and for how long.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Logins waiting from one source.
    pub(super) per_source: usize,
    /// Logins waiting in all.
    pub(super) total: usize,
    /// Older than this, a login's connection is gone.
    pub(super) max_age: Duration,
}

/// What the queue dropped unverified since last asked, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Dropped {
    /// Turned away because their source (or everyone) had too many waiting.
    pub(super) crowded: u64,
    /// Older than a handshake may take.
    pub(super) expired: u64,
    /// The source that lost the most to crowding, and how many.
    pub(super) worst: Option<(Source, u64)>,
}

/// The logins waiting, per source, and whose turn is next.
#[derive(Debug)]
pub(super) struct LoginQueue {
    waiting: HashMap<Source, VecDeque<Login>>,
    /// Every source with a login waiting, once, in turn order.
    turns: VecDeque<Source>,
    len: usize,
    limits: Limits,
    crowded_by: HashMap<Source, u64>,
    dropped: Dropped,
}

impl LoginQueue {
    pub(super) fn new(limits: Limits) -> LoginQueue {
        LoginQueue {
            waiting: HashMap::new(),
            turns: VecDeque::new(),
            len: 0,
            limits,
            crowded_by: HashMap::new(),
            dropped: Dropped::default(),
        }
    }

    /// Logins waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queues `login`; returns the login turned away to make room for it,
    /// if any, which should be answered "try again" (its connection may be
    /// a real client's).
    pub(super) fn push(&mut self, login: Login) -> Option<Login> {
        let source = login.source.clone();
        let queue = self.waiting.entry(source.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(source.clone());
        }
        queue.push_back(login);
        self.len += 1;
        let crowded = if queue.len() > self.limits.per_source {
            Some(source)
        } else if self.len > self.limits.total {
            self.waiting
                .iter()
                .max_by_key(|(_, queue)| queue.len())
                .map(|(source, _)| source.clone())
        } else {
            None
        };
        let turned_away = self.pop_oldest(&crowded?)?;
        self.dropped.crowded += 1;
        *self
            .crowded_by
            .entry(turned_away.source.clone())
            .or_default() += 1;
        Some(turned_away)
    }

    /// The next login to verify: the oldest of the source whose turn it is.
    /// Logins too old to matter are dropped on the way.
    pub(super) fn next(&mut self, now: Instant) -> Option<Login> {
        while let Some(source) = self.turns.pop_front() {
            let Some(login) = self.pop_oldest(&source) else {
                continue;
            };
            if self.waiting.contains_key(&source) {
                self.turns.push_back(source);
            }
            if now.saturating_duration_since(login.arrived) > self.limits.max_age {
                self.dropped.expired += 1;
                continue;
            }
            return Some(login);
        }
        None
    }

    /// What was dropped since the last call.
    pub(super) fn take_dropped(&mut self) -> Dropped {
        let mut dropped = std::mem::take(&mut self.dropped);
        dropped.worst = self.crowded_by.drain().max_by_key(|(_, count)| *count);
        dropped
    }

    /// Takes `source`'s oldest login, forgetting the source once it has none.
    fn pop_oldest(&mut self, source: &Source) -> Option<Login> {
        let queue = self.waiting.get_mut(source)?;
        let login = queue.pop_front()?;
        self.len -= 1;
        if queue.is_empty() {
            self.waiting.remove(source);
            self.turns.retain(|s| s != source);
        }
        Some(login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        per_source: 3,
        total: 5,
        max_age: Duration::from_secs(10),
    };

    fn login(address: &str, user: &str, arrived: Instant) -> Login {
        Login {
            reply_to: vec![1],
            request_id: vec![2],
            user: user.as_bytes().to_vec(),
            password: b"pw".to_vec(),
            address: address.to_owned(),
            source: Source::of(address),
            arrived,
        }
    }

    fn user(login: Option<Login>) -> String {
        login.map_or_else(
            || "none".to_owned(),
            |l| String::from_utf8_lossy(&l.user).into_owned(),
        )
    }

    #[test]
    fn sources_take_turns_and_a_flood_delays_another_by_one() {
        let now = Instant::now();
        let mut queue = LoginQueue::new(LIMITS);
        for i in 0..3 {
            assert!(
                queue
                    .push(login("127.0.0.2", &format!("junk{i}"), now))
                    .is_none()
            );
        }
        assert!(queue.push(login("127.0.0.1", "alice", now)).is_none());
        assert_eq!(user(queue.next(now)), "junk0");
        assert_eq!(
            user(queue.next(now)),
            "alice",
            "next turn is the other source's"
        );
        assert_eq!(user(queue.next(now)), "junk1");
        assert_eq!(user(queue.next(now)), "junk2");
        assert_eq!(user(queue.next(now)), "none");
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_full_source_loses_its_oldest_and_a_full_queue_its_longest() {
        let now = Instant::now();
        let mut queue = LoginQueue::new(LIMITS);
        for i in 0..3 {
            queue.push(login("10.0.0.9", &format!("junk{i}"), now));
        }
        let turned = queue.push(login("10.0.0.9", "junk3", now));
        assert_eq!(user(turned), "junk0", "its own oldest goes");
        queue.push(login("10.0.0.1", "alice", now));
        queue.push(login("10.0.0.2", "bob", now));
        assert_eq!(queue.len(), 5);
        let turned = queue.push(login("10.0.0.3", "carol", now));
        assert_eq!(user(turned), "junk1", "the longest queue pays");
        let dropped = queue.take_dropped();
        assert_eq!(dropped.crowded, 2);
        assert_eq!(dropped.worst, Some((Source::of("10.0.0.9"), 2)));
        let mut order = Vec::new();
        while let Some(next) = queue.next(now) {
            order.push(user(Some(next)));
        }
        assert_eq!(order, ["junk2", "alice", "bob", "carol", "junk3"]);
    }

    #[test]
    fn logins_older_than_a_handshake_are_dropped_unverified() {
        let then = Instant::now();
        let later = then + Duration::from_secs(11);
        let mut queue = LoginQueue::new(LIMITS);
        queue.push(login("127.0.0.2", "stale", then));
        queue.push(login("127.0.0.1", "fresh", later));
        assert_eq!(user(queue.next(later)), "fresh");
        assert_eq!(user(queue.next(later)), "none");
        assert_eq!(queue.take_dropped().expired, 1);
    }

    #[test]
    fn an_ipv6_64_is_one_source() {
        assert_eq!(Source::of("2001:db8::1"), Source::of("2001:db8::ffff:2"));
        assert_ne!(Source::of("2001:db8::1"), Source::of("2001:db8:0:1::1"));
        assert_eq!(Source::of("::ffff:10.0.0.1"), Source::of("10.0.0.1"));
        assert_eq!(Source::of("2001:db8::1").to_string(), "2001:db8::/64");
        assert_eq!(Source::of(""), Source::Unknown);
    }
}
