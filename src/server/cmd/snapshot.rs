//! `_:@board`: the snapshot, the board with each entry's age, its sequence
//! number, and where changes are published; also the answer to a clear and
//! to a `since` that is behind.

use crate::protocol::{self, SnapshotHeader};
use crate::store::Store;

use super::{Context, Immediate, Outcome};

/// What a snapshot says of this run of the server.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    /// This run's identifier, in every snapshot and published change.
    pub(crate) epoch: String,
    /// `--ttl` in ms.
    pub(crate) ttl_ms: Option<u64>,
    /// Where changes are published (`--publish`); none if they are not.
    pub(crate) publish: Vec<String>,
}

/// Answers `_:@board`: the snapshot, at once.
pub(super) fn handle(ctx: &Context<'_>) -> Outcome {
    Outcome::ReplyNow(Immediate::Bytes(encode(ctx.store, ctx.run)))
}

/// The snapshot reply: header, then one timed line per entry.
pub(crate) fn encode(store: &Store, run: &RunInfo) -> Vec<u8> {
    let header = SnapshotHeader {
        epoch: run.epoch.clone(),
        seq: store.seq(),
        now_ms: store.now_ms(),
        publish: run.publish.clone(),
        ttl_ms: run.ttl_ms,
        // A gateway without an etcd quorum: the board may be old.
        stale_since_ms: store.stale_since_ms(),
    };
    // Written for this reply only: the board keeps no second copy.
    let mut out = Vec::new();
    protocol::encode_snapshot_header(&mut out, &header);
    store.write_timed(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::protocol::{ExtendedReply, Limits, parse_extended_reply};

    #[test]
    fn a_snapshot_says_the_run_the_sequence_number_and_each_entrys_time() {
        let mut store = Store::in_memory(10);
        set(&mut store, "Jackson", ": I'm BAD");
        let limits = Limits::default();
        let run = RunInfo {
            ttl_ms: Some(60_000),
            publish: vec!["tcp://127.0.0.1:5555".into()],
            ..run_info()
        };
        let ctx = context(&mut store, None, &limits, &run);
        let Outcome::ReplyNow(Immediate::Bytes(reply)) = handle(&ctx) else {
            panic!("a snapshot is answered at once");
        };
        let Ok(ExtendedReply::Snapshot(snapshot)) = parse_extended_reply(&reply) else {
            panic!("not a snapshot: {:?}", String::from_utf8_lossy(&reply));
        };
        assert_eq!(snapshot.header.epoch, run.epoch);
        assert_eq!(snapshot.header.seq, store.seq());
        assert_eq!(snapshot.header.ttl_ms, Some(60_000));
        assert_eq!(snapshot.header.publish, run.publish);
        assert_eq!(snapshot.entries.len(), 1);
        assert_eq!(snapshot.entries[0].name, "Jackson");
        assert_eq!(snapshot.entries[0].status, ": I'm BAD");
        assert!(snapshot.entries[0].set_at_ms.is_some());
    }
}
