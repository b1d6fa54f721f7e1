//! The checker over a run's history: every write as it was invoked and how
//! it ended (acknowledged with its reply, refused, timed out), the final
//! boards, and what each watcher saw (published notices and heartbeats,
//! snapshot headers). A run passes when no acknowledged write is lost and
//! each watcher's sequence only rises.
//!
//! A refused or timed-out write is indeterminate: the gateway may have given
//! up while etcd went on to commit it, so it may or may not be on the board;
//! only acknowledged writes must be there.

use std::collections::HashMap;
use std::time::Instant;

/// How one write ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A board came back: the reply.
    Acknowledged(String),
    /// An `error: …` came back.
    Refused(String),
    /// Nothing came back in time.
    TimedOut,
}

/// One write: `NAME{status}` sent to `endpoint`.
#[derive(Debug, Clone)]
pub struct Op {
    pub name: String,
    /// With its leading `:`, as on the board (`: n=7`).
    pub status: String,
    /// Rises with each write of one name (one writer a name).
    pub number: u64,
    pub endpoint: String,
    pub invoked: Instant,
    pub completed: Instant,
    pub outcome: Outcome,
}

impl Op {
    /// The line the board shows for this write.
    pub fn line(&self) -> String {
        format!("- {}{}", self.name, self.status)
    }

    pub fn acknowledged(&self) -> bool {
        matches!(self.outcome, Outcome::Acknowledged(_))
    }
}

/// A board reply's entries: name and status (with its `:`), in order.
pub fn board_entries(board: &str) -> Vec<(String, String)> {
    board
        .lines()
        .filter_map(|line| {
            let entry = line.strip_prefix("- ")?;
            let colon = entry.find(':')?;
            Some((entry[..colon].to_owned(), entry[colon..].to_owned()))
        })
        .collect()
}

/// What is wrong with `ops` against the `board` read after them all: an
/// acknowledged reply without its write; a name whose acknowledged write was
/// lost (on the board: nothing, or a write older than its last acknowledged
/// one); a status nobody wrote. Empty when the history holds.
pub fn lost_writes(ops: &[Op], board: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut by_name: HashMap<&str, Vec<&Op>> = HashMap::new();
    for op in ops {
        by_name.entry(&op.name).or_default().push(op);
        if let Outcome::Acknowledged(reply) = &op.outcome
            && !reply.lines().any(|l| l == op.line())
        {
            wrong.push(format!(
                "{:?} was acknowledged with a board without it: {reply:?}",
                op.line()
            ));
        }
    }
    let on_board: HashMap<String, String> = board_entries(board).into_iter().collect();
    for (name, ops) in &by_name {
        let last_acknowledged = ops
            .iter()
            .filter(|op| op.acknowledged())
            .map(|op| op.number)
            .max();
        let shown = on_board.get(*name);
        let written = shown.and_then(|status| ops.iter().find(|op| &op.status == status));
        match (last_acknowledged, shown, written) {
            (Some(last), None, _) => wrong.push(format!(
                "{name}: acknowledged n={last}, but the name is not on the board"
            )),
            (_, Some(status), None) => wrong.push(format!(
                "{name}: the board shows {status:?}, which nobody wrote"
            )),
            (Some(last), Some(status), Some(op)) if op.number < last => wrong.push(format!(
                "{name}: acknowledged write {last} lost; the board shows the older {status:?}"
            )),
            _ => {}
        }
    }
    wrong
}

/// Something a watcher saw that carries the board's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A published change: `rev EPOCH SEQ AT PREV` (PREV: the revision
    /// published before), or `set|del EPOCH SEQ AT …` (several of which
    /// may share a revision).
    Notice {
        epoch: String,
        seq: u64,
        prev: Option<u64>,
    },
    /// A heartbeat: `hb EPOCH SEQ AT`.
    Heartbeat { epoch: String, seq: u64 },
    /// A snapshot's header (`_:@board`).
    Snapshot { epoch: String, seq: u64 },
}

impl Seen {
    fn epoch(&self) -> &str {
        match self {
            Seen::Notice { epoch, .. }
            | Seen::Heartbeat { epoch, .. }
            | Seen::Snapshot { epoch, .. } => epoch,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Seen::Notice { seq, .. } | Seen::Heartbeat { seq, .. } | Seen::Snapshot { seq, .. } => {
                *seq
            }
        }
    }
}

/// A publisher's frame as [`Seen`]; `None` for what carries no sequence.
pub fn parse_published(frame: &[u8]) -> Option<Seen> {
    let text = std::str::from_utf8(frame).ok()?;
    let first = text.lines().next()?;
    let words: Vec<&str> = first.split(' ').collect();
    match words.as_slice() {
        ["rev", epoch, seq, _at, prev, ..] => Some(Seen::Notice {
            epoch: (*epoch).to_owned(),
            seq: seq.parse().ok()?,
            prev: Some(prev.parse().ok()?),
        }),
        ["set" | "del", epoch, seq, ..] => Some(Seen::Notice {
            epoch: (*epoch).to_owned(),
            seq: seq.parse().ok()?,
            prev: None,
        }),
        ["hb", epoch, seq, ..] => Some(Seen::Heartbeat {
            epoch: (*epoch).to_owned(),
            seq: seq.parse().ok()?,
        }),
        _ => None,
    }
}

/// What is wrong with one watcher's sequence (one channel: a publisher, or
/// one gateway's snapshots): the epoch changed, the sequence fell, a notice
/// did not move it forward, or a notice's PREV is not the notice before
/// (a gap where there is none, or a jump mistaken for one).
pub fn falling(seen: &[Seen]) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut last: Option<&Seen> = None;
    let mut last_notice: Option<u64> = None;
    for item in seen {
        if let Some(before) = last {
            if before.epoch() != item.epoch() {
                wrong.push(format!("the epoch changed: {before:?} then {item:?}"));
            }
            let rises = match (item, before) {
                // Changes of one revision, published one by one, share it.
                (Seen::Notice { prev: None, .. }, Seen::Notice { prev: None, .. }) => {
                    item.seq() >= before.seq()
                }
                (Seen::Notice { .. }, _) => item.seq() > before.seq(),
                _ => item.seq() >= before.seq(),
            };
            if !rises {
                wrong.push(format!("the sequence fell: {before:?} then {item:?}"));
            }
        }
        if let Seen::Notice {
            seq,
            prev: Some(prev),
            ..
        } = item
        {
            if prev >= seq {
                wrong.push(format!("a notice's PREV is not below its SEQ: {item:?}"));
            }
            if let Some(last_notice) = last_notice
                && *prev != last_notice
            {
                wrong.push(format!(
                    "a notice's PREV is not the notice before ({last_notice}): {item:?}"
                ));
            }
            last_notice = Some(*seq);
        }
        last = Some(item);
    }
    wrong
}

/// The checker's own tests: each kind of violation is caught, and a good
/// history passes. They need no etcd and always run.
pub const TESTS: [(&str, fn()); 9] = [
    (
        "history_a_run_that_keeps_every_acknowledged_write_passes",
        a_run_that_keeps_every_acknowledged_write_passes,
    ),
    (
        "history_a_lost_acknowledged_write_is_caught",
        a_lost_acknowledged_write_is_caught,
    ),
    (
        "history_a_name_gone_from_the_board_is_caught",
        a_name_gone_from_the_board_is_caught,
    ),
    (
        "history_a_status_nobody_wrote_is_caught",
        a_status_nobody_wrote_is_caught,
    ),
    (
        "history_an_acknowledgement_without_its_write_is_caught",
        an_acknowledgement_without_its_write_is_caught,
    ),
    (
        "history_refused_and_timed_out_writes_may_or_may_not_be_there",
        refused_and_timed_out_writes_may_or_may_not_be_there,
    ),
    ("history_a_rising_watcher_passes", a_rising_watcher_passes),
    (
        "history_a_falling_or_repeated_sequence_is_caught",
        a_falling_or_repeated_sequence_is_caught,
    ),
    (
        "history_a_broken_prev_chain_or_a_new_epoch_is_caught",
        a_broken_prev_chain_or_a_new_epoch_is_caught,
    ),
];

/// `n` writes of `name`, outcomes as given.
fn writes(name: &str, outcomes: &[Outcome]) -> Vec<Op> {
    let now = Instant::now();
    let mut board = String::new();
    outcomes
        .iter()
        .enumerate()
        .map(|(n, outcome)| {
            let status = format!(": n={n}");
            board = format!("- {name}{status}\n");
            let outcome = match outcome {
                // An acknowledgement's reply holds its write, as it must.
                Outcome::Acknowledged(_) => Outcome::Acknowledged(board.clone()),
                other => other.clone(),
            };
            Op {
                name: name.to_owned(),
                status,
                number: n as u64,
                endpoint: "tcp://127.0.0.1:1".to_owned(),
                invoked: now,
                completed: now,
                outcome,
            }
        })
        .collect()
}

fn ack() -> Outcome {
    Outcome::Acknowledged(String::new())
}

fn a_run_that_keeps_every_acknowledged_write_passes() {
    let mut ops = writes("w0", &[ack(), ack(), ack()]);
    ops.extend(writes("w1", &[ack(), Outcome::TimedOut]));
    // w1's timed-out write made it: a later write than its last acknowledged one.
    assert_eq!(
        lost_writes(&ops, "- w0: n=2\n- w1: n=1\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        lost_writes(&ops, "- w1: n=0\n- w0: n=2\n"),
        Vec::<String>::new()
    );
}

fn a_lost_acknowledged_write_is_caught() {
    let ops = writes("w0", &[ack(), ack(), ack()]);
    let wrong = lost_writes(&ops, "- w0: n=1\n");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("acknowledged write 2 lost"), "{wrong:?}");
}

fn a_name_gone_from_the_board_is_caught() {
    let mut ops = writes("w0", &[ack()]);
    ops.extend(writes("w1", &[ack()]));
    let wrong = lost_writes(&ops, "- w0: n=0\n");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("w1: acknowledged n=0, but the name is not on the board"));
}

fn a_status_nobody_wrote_is_caught() {
    let ops = writes("w0", &[ack(), Outcome::TimedOut]);
    let wrong = lost_writes(&ops, "- w0: n=7\n");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("which nobody wrote"), "{wrong:?}");
}

fn an_acknowledgement_without_its_write_is_caught() {
    let mut ops = writes("w0", &[ack(), ack()]);
    ops[1].outcome = Outcome::Acknowledged("- w0: n=0\n".to_owned());
    let wrong = lost_writes(&ops, "- w0: n=1\n");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].contains("acknowledged with a board without it"),
        "{wrong:?}"
    );
}

fn refused_and_timed_out_writes_may_or_may_not_be_there() {
    let refused = Outcome::Refused("error: unavailable: no quorum".to_owned());
    let ops = writes("w0", &[ack(), refused, Outcome::TimedOut]);
    for board in ["- w0: n=0\n", "- w0: n=1\n", "- w0: n=2\n"] {
        assert_eq!(lost_writes(&ops, board), Vec::<String>::new(), "{board}");
    }
    // A name never acknowledged may be missing altogether.
    let ops = writes("w1", &[Outcome::TimedOut]);
    assert_eq!(lost_writes(&ops, ""), Vec::<String>::new());
}

fn notice(seq: u64, prev: u64) -> Seen {
    Seen::Notice {
        epoch: "etcd-1".to_owned(),
        seq,
        prev: Some(prev),
    }
}

/// A `set`/`del` notice, which does not name the revision before.
fn change(seq: u64) -> Seen {
    Seen::Notice {
        epoch: "etcd-1".to_owned(),
        seq,
        prev: None,
    }
}

fn heartbeat(seq: u64) -> Seen {
    Seen::Heartbeat {
        epoch: "etcd-1".to_owned(),
        seq,
    }
}

fn a_rising_watcher_passes() {
    // Revisions jump (etcd counts every write, other prefixes too): no gap.
    let seen = [
        heartbeat(4),
        notice(9, 4),
        heartbeat(9),
        heartbeat(9),
        notice(15, 9),
    ];
    assert_eq!(falling(&seen), Vec::<String>::new());
    assert_eq!(
        parse_published(b"rev etcd-1 15 1795244024181 9\nset w0: n=3\n"),
        Some(notice(15, 9))
    );
    assert_eq!(
        parse_published(b"hb etcd-1 9 1795244024181"),
        Some(heartbeat(9))
    );
    // One by one, changes of one revision share its number.
    let seen = [heartbeat(4), change(9), change(9), heartbeat(9), change(12)];
    assert_eq!(falling(&seen), Vec::<String>::new());
    assert_eq!(
        parse_published(b"set etcd-1 9 1795244024181 w0: n=3"),
        Some(change(9))
    );
    assert_eq!(
        parse_published(b"del etcd-1 12 1795244024181 cleared w0"),
        Some(change(12))
    );
    let snapshots = [4, 4, 9, 15].map(|seq| Seen::Snapshot {
        epoch: "etcd-1".to_owned(),
        seq,
    });
    assert_eq!(falling(&snapshots), Vec::<String>::new());
}

fn a_falling_or_repeated_sequence_is_caught() {
    let wrong = falling(&[notice(9, 4), heartbeat(8)]);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("fell"), "{wrong:?}");
    let wrong = falling(&[heartbeat(9), notice(9, 4)]);
    assert!(wrong.iter().any(|w| w.contains("fell")), "{wrong:?}");
    // A change after a heartbeat at its revision: published twice, or late.
    let wrong = falling(&[change(9), heartbeat(9), change(9)]);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    let wrong = falling(&[change(9), change(8)]);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    let snapshots = [5, 3].map(|seq| Seen::Snapshot {
        epoch: "etcd-1".to_owned(),
        seq,
    });
    assert_eq!(falling(&snapshots).len(), 1);
}

fn a_broken_prev_chain_or_a_new_epoch_is_caught() {
    let wrong = falling(&[notice(9, 4), notice(15, 12)]);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("not the notice before (9)"), "{wrong:?}");
    let other = Seen::Heartbeat {
        epoch: "etcd-2".to_owned(),
        seq: 20,
    };
    let wrong = falling(&[notice(9, 4), other]);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("epoch changed"), "{wrong:?}");
}
