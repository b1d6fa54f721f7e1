//! `_:@clear NAME`: checked against the caller's rights, staged for the next
//! write, and answered with the snapshot once durable.

use super::super::auth::Caller;
use super::super::error::Rejected;
use super::{Answer, Context, Outcome, console_change};

/// Stages the removal of a name the caller may change; refuses any other,
/// changing nothing. A name not there is no error: the board is as asked.
pub(super) fn handle(
    ctx: &mut Context<'_>,
    caller: &Caller,
    name: &str,
    peer: Option<String>,
) -> Result<Outcome, Rejected> {
    caller.may_change(ctx.users, "clear", name)?;
    let was_there = ctx.store.contains(name);
    ctx.store
        .stage_clear(name)
        .map_err(|err| Rejected::unstored(&err))?;
    // A clear of a name that is not there changes nothing worth a line.
    let change = console_change(ctx, caller, name, None, peer).filter(|_| was_there);
    Ok(Outcome::Staged(Answer::Snapshot, change))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::protocol::Limits;
    use crate::server::auth::Forbidden;
    use crate::store::Store;

    #[test]
    fn a_clear_of_a_name_not_there_is_answered_and_prints_nothing() {
        let mut store = Store::in_memory(10);
        set(&mut store, "Jackson", ": I'm BAD");
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, None, &limits, &run);
        let outcome = handle(&mut ctx, &Caller::Open, "nobody", None);
        assert!(
            matches!(outcome, Ok(Outcome::Staged(Answer::Snapshot, None))),
            "{outcome:?}"
        );
        store.commit().expect("committed");
        assert!(store.contains("Jackson"), "the rest of the board stays");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_clear_removes_the_name_once_written_and_says_so() {
        let mut store = Store::in_memory(10);
        set(&mut store, "Jackson", ": I'm BAD");
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, None, &limits, &run);
        let outcome = handle(&mut ctx, &Caller::Open, "Jackson", None);
        let Ok(Outcome::Staged(Answer::Snapshot, Some(change))) = outcome else {
            panic!("staged with a line: {outcome:?}");
        };
        assert_eq!((change.name.as_str(), change.status), ("Jackson", None));
        store.commit().expect("committed");
        assert!(!store.contains("Jackson"));
    }

    #[test]
    fn a_clear_the_caller_may_not_make_is_refused_and_changes_nothing() {
        let mut store = Store::in_memory(10);
        set(&mut store, "bob", ": here");
        let users = users();
        let (limits, run) = (Limits::default(), run_info());
        let mut ctx = context(&mut store, Some(&users), &limits, &run);
        let refused = handle(&mut ctx, &Caller::User("alice".into()), "bob", None);
        assert!(
            matches!(
                &refused,
                Err(Rejected::Forbidden(Forbidden::NotTheirs {
                    verb: "clear",
                    ..
                }))
            ),
            "{refused:?}"
        );
        assert!(matches!(
            handle(&mut ctx, &Caller::Anonymous, "bob", None),
            Err(Rejected::Forbidden(Forbidden::Anonymous))
        ));
        assert!(!store.has_staged());
        store.commit().expect("committed");
        assert!(store.contains("bob"));
    }
}
