//! `_:`: the poll, answered at once with the plain board, shared with the
//! store rather than copied.

use super::{Context, Immediate, Outcome};

/// Answers a poll: the board as it is now.
pub(super) fn handle(ctx: &Context<'_>) -> Outcome {
    Outcome::ReplyNow(Immediate::Board(ctx.store.shared_reply()))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::protocol::{Entry, Limits, parse_board};
    use crate::store::Store;

    #[test]
    fn a_poll_returns_the_board_and_changes_nothing() {
        let mut store = Store::in_memory(10);
        set(&mut store, "Jackson", ": I'm BAD");
        set(&mut store, "Ruby", ": around");
        let seq = store.seq();
        let (limits, run) = (Limits::default(), run_info());
        let ctx = context(&mut store, None, &limits, &run);
        let Outcome::ReplyNow(Immediate::Board(board)) = handle(&ctx) else {
            panic!("a poll is answered at once with the board");
        };
        let text = std::str::from_utf8(&board).expect("UTF-8");
        let entries = parse_board(text).expect("a board");
        let names: Vec<_> = entries.iter().map(|e: &Entry| e.name.as_str()).collect();
        assert_eq!(names, ["Jackson", "Ruby"], "{text:?}");
        assert_eq!(entries[0].status, ": I'm BAD");
        assert_eq!(store.seq(), seq, "a poll changes nothing");
        assert!(!store.has_staged());
    }
}
