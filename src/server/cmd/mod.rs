//! One request, from its parsed form to its answer: one file per request
//! kind, as mini-redis's `cmd/`. A handler sees the board and the caller
//! ([`Context`]), never the socket, so each can be tested without one; the
//! serve loop sends what they return.
//!
//! - `poll`: `_:`, the plain board.
//! - `update`: `NAME: STATUS`, staged and answered with the board once durable.
//! - `snapshot`: `_:@board`, the board with ages, sequence number and publisher.
//! - `since`: `_:@since EPOCH SEQ`, `unchanged SEQ` or the snapshot.
//! - `clear`: `_:@clear NAME`, staged and answered with the snapshot once durable.

mod clear;
mod poll;
mod since;
mod snapshot;
mod update;

use std::sync::Arc;

use crate::protocol::{self, Limits, Request};
use crate::store::Store;

use super::auth::{Caller, Users};
use super::console::Change;
use super::error::Rejected;

pub(super) use snapshot::{RunInfo, encode as encode_snapshot};

/// What a handler may use: the board, who may change it, and what a
/// snapshot says of this run.
pub(super) struct Context<'a> {
    pub(super) store: &'a mut Store,
    /// With `--auth`, the users table every write is checked against.
    pub(super) users: Option<&'a Users>,
    /// Request and name size limits.
    pub(super) limits: &'a Limits,
    /// Leave out the console lines of changes (`--quiet`).
    pub(super) quiet: bool,
    /// This run's identifier, TTL and publisher, for snapshots.
    pub(super) run: &'a RunInfo,
}

/// What became of a request just parsed.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Answer it now with this.
    ReplyNow(Immediate),
    /// Its change is staged; answer with this once it is durable, and print
    /// the change (if any) then.
    Staged(Answer, Option<Change>),
}

/// A reply sent at once.
#[derive(Debug)]
pub(super) enum Immediate {
    /// The plain board, shared with the store: sent without a copy.
    Board(Arc<Vec<u8>>),
    /// Anything else.
    Bytes(Vec<u8>),
}

/// The reply a staged request gets once its change is durable (or not).
#[derive(Debug)]
pub(super) enum Answer {
    /// The plain board: an update from any client.
    Board,
    /// The snapshot: an extension request.
    Snapshot,
    /// Refused.
    Rejected(Rejected),
}

/// Parses one request frame and hands it to its handler. A bad request is
/// refused and changes nothing.
pub(super) fn handle(
    ctx: &mut Context<'_>,
    frame: &[u8],
    caller: &Caller,
    peer: Option<String>,
) -> Result<Outcome, Rejected> {
    match protocol::parse_request(frame, ctx.limits)? {
        Request::Poll => Ok(poll::handle(ctx)),
        Request::Snapshot => Ok(snapshot::handle(ctx)),
        Request::Since { epoch, seq } => Ok(since::handle(ctx, epoch, seq)),
        Request::Update { name, status } => update::handle(ctx, caller, name, status, peer),
        Request::Clear { name } => clear::handle(ctx, caller, name, peer),
    }
}

/// The console line for a staged change, unless `--quiet`.
fn console_change(
    ctx: &Context<'_>,
    caller: &Caller,
    name: &str,
    status: Option<&str>,
    peer: Option<String>,
) -> Option<Change> {
    (!ctx.quiet).then(|| Change {
        name: name.to_owned(),
        status: status.map(str::to_owned),
        user: match caller {
            Caller::User(user) => Some(user.clone()),
            Caller::Open | Caller::Anonymous => None,
        },
        peer,
    })
}

/// What the handlers' tests share: a board in memory and a users table.
#[cfg(test)]
pub(super) mod testing {
    use std::path::Path;

    use super::*;

    /// A snapshot's view of a run with no TTL and no publisher.
    pub(crate) fn run_info() -> RunInfo {
        RunInfo {
            epoch: "0123456789abcdef".into(),
            ttl_ms: None,
            publish: Vec::new(),
        }
    }

    /// A context over `store`, printing changes (not `--quiet`).
    pub(crate) fn context<'a>(
        store: &'a mut Store,
        users: Option<&'a Users>,
        limits: &'a Limits,
        run: &'a RunInfo,
    ) -> Context<'a> {
        Context {
            store,
            users,
            limits,
            quiet: false,
            run,
        }
    }

    /// `alice` may change `alice` only; `wall` may only read.
    pub(crate) fn users() -> Users {
        let hash = crate::server::auth::hash_password("pw").expect("a hash");
        Users::parse(
            Path::new("users"),
            &format!("alice:{hash}\nwall:{hash}:ro\n"),
        )
        .expect("a valid users file")
    }

    /// Sets `name` to `status` on the board, as a committed update does.
    pub(crate) fn set(store: &mut Store, name: &str, status: &str) {
        store.stage(name, status).expect("staged");
        store.commit().expect("committed");
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::protocol::ProtocolError;

    #[test]
    fn a_bad_request_is_refused_with_the_protocols_error_and_changes_nothing() {
        let mut store = Store::in_memory(10);
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, None, &limits, &run);
        let refused = handle(&mut ctx, b"no colon", &Caller::Open, None);
        assert!(
            matches!(refused, Err(Rejected::Protocol(ProtocolError::NoColon))),
            "{refused:?}"
        );
        assert!(!store.has_staged());
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn each_request_kind_reaches_its_handler() {
        let mut store = Store::in_memory(10);
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, None, &limits, &run);
        assert!(matches!(
            handle(&mut ctx, b"_:", &Caller::Open, None),
            Ok(Outcome::ReplyNow(Immediate::Board(_)))
        ));
        assert!(matches!(
            handle(&mut ctx, b"Jackson: BAD", &Caller::Open, None),
            Ok(Outcome::Staged(Answer::Board, Some(_)))
        ));
        assert!(matches!(
            handle(&mut ctx, b"_:@clear Jackson", &Caller::Open, None),
            Ok(Outcome::Staged(Answer::Snapshot, _))
        ));
        assert!(matches!(
            handle(&mut ctx, b"_:@board", &Caller::Open, None),
            Ok(Outcome::ReplyNow(Immediate::Bytes(_)))
        ));
        assert!(matches!(
            handle(&mut ctx, b"_:@since abc 0", &Caller::Open, None),
            Ok(Outcome::ReplyNow(Immediate::Bytes(_)))
        ));
    }
}
