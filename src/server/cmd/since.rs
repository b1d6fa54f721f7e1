//! `_:@since EPOCH SEQ`: `unchanged SEQ` while the caller's board is this
//! run's latest, the snapshot otherwise (a new run, or changes since).

use crate::protocol::UNCHANGED_PREFIX;

use super::snapshot::encode;
use super::{Context, Immediate, Outcome};

/// Answers `since`, at once.
pub(super) fn handle(ctx: &Context<'_>, epoch: &str, seq: u64) -> Outcome {
    // A stale gateway always answers with the snapshot: it says so there.
    let current = ctx.store.stale_since_ms().is_none();
    let reply = if current && epoch == ctx.run.epoch && seq == ctx.store.seq() {
        format!("{UNCHANGED_PREFIX}{seq}").into_bytes()
    } else {
        encode(ctx.store, ctx.run)
    };
    Outcome::ReplyNow(Immediate::Bytes(reply))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::protocol::{ExtendedReply, Limits, parse_extended_reply};
    use crate::store::Store;

    fn reply(outcome: Outcome) -> ExtendedReply {
        let Outcome::ReplyNow(Immediate::Bytes(bytes)) = outcome else {
            panic!("since is answered at once");
        };
        parse_extended_reply(&bytes).expect("a reply")
    }

    #[test]
    fn unchanged_while_the_callers_board_is_the_latest_of_this_run() {
        let mut store = Store::in_memory(10);
        set(&mut store, "Jackson", ": I'm BAD");
        let seq = store.seq();
        let (limits, run) = (Limits::default(), run_info());
        let ctx = context(&mut store, None, &limits, &run);
        assert_eq!(
            reply(handle(&ctx, &run.epoch, seq)),
            ExtendedReply::Unchanged { seq }
        );
        for (epoch, behind) in [(run.epoch.as_str(), seq - 1), ("otherrun", seq)] {
            let ExtendedReply::Snapshot(snapshot) = reply(handle(&ctx, epoch, behind)) else {
                panic!("a caller behind gets the snapshot ({epoch} {behind})");
            };
            assert_eq!(snapshot.header.seq, seq);
            assert_eq!(snapshot.entries.len(), 1);
        }
    }
}
