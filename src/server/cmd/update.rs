//! `NAME: STATUS`: checked against the caller's rights, staged for the next
//! write, and answered with the board once durable.

use crate::store::UpdateError;

use super::super::auth::Caller;
use super::super::error::Rejected;
use super::{Answer, Context, Outcome, console_change};

/// Stages an update the caller may make; refuses any other, changing nothing.
pub(super) fn handle(
    ctx: &mut Context<'_>,
    caller: &Caller,
    name: &str,
    status: &str,
    peer: Option<String>,
) -> Result<Outcome, Rejected> {
    caller.may_change(ctx.users, "set", name)?;
    match ctx.store.stage(name, status) {
        Ok(()) => {}
        Err(UpdateError::Board(err)) => return Err(err.into()),
        Err(UpdateError::Storage(err)) => return Err(Rejected::unstored(&err)),
    }
    let change = console_change(ctx, caller, name, Some(status), peer);
    Ok(Outcome::Staged(Answer::Board, change))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::protocol::Limits;
    use crate::server::auth::Forbidden;
    use crate::store::{BoardError, Store};

    #[test]
    fn an_update_the_caller_may_not_make_is_refused_and_changes_nothing() {
        let mut store = Store::in_memory(10);
        set(&mut store, "bob", ": before");
        let seq = store.seq();
        let users = users();
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, Some(&users), &limits, &run);
        let not_theirs = |user: &str, name: &str| Forbidden::NotTheirs {
            user: user.into(),
            verb: "set",
            name: name.into(),
        };
        for (caller, name, why) in [
            (
                Caller::User("alice".into()),
                "bob",
                not_theirs("alice", "bob"),
            ),
            (
                Caller::User("wall".into()),
                "wall",
                not_theirs("wall", "wall"),
            ),
            (Caller::Anonymous, "anyone", Forbidden::Anonymous),
        ] {
            match handle(&mut ctx, &caller, name, ": after", None) {
                Err(Rejected::Forbidden(refused)) => assert_eq!(refused, why),
                other => panic!("{caller:?} setting {name}: {other:?}"),
            }
        }
        assert!(!store.has_staged(), "nothing staged");
        store.commit().expect("committed");
        assert_eq!(store.seq(), seq, "the board did not move");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn an_allowed_update_is_staged_and_printed_once_stored() {
        let mut store = Store::in_memory(10);
        let users = users();
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, Some(&users), &limits, &run);
        let alice = Caller::User("alice".into());
        let outcome = handle(&mut ctx, &alice, "alice", ": here", Some("10.0.0.1".into()));
        let Ok(Outcome::Staged(Answer::Board, Some(change))) = outcome else {
            panic!("staged, answered with the board: {outcome:?}");
        };
        assert_eq!(change.status.as_deref(), Some(": here"));
        assert_eq!(change.user.as_deref(), Some("alice"));
        assert_eq!(change.peer.as_deref(), Some("10.0.0.1"));
        assert!(
            !store.contains("alice"),
            "not on the board before its write"
        );
        store.commit().expect("committed");
        assert!(store.contains("alice"));
    }

    #[test]
    fn an_update_past_a_full_board_is_refused_and_quiet_prints_nothing() {
        let mut store = Store::in_memory(1);
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, None, &limits, &run);
        ctx.quiet = true;
        assert!(matches!(
            handle(&mut ctx, &Caller::Open, "first", ": 1", None),
            Ok(Outcome::Staged(Answer::Board, None))
        ));
        assert!(matches!(
            handle(&mut ctx, &Caller::Open, "second", ": 2", None),
            Err(Rejected::Board(BoardError::Full { .. }))
        ));
        store.commit().expect("committed");
        assert!(store.contains("first") && !store.contains("second"));
    }
}
