//! A gateway of a cluster that cannot reach its store's quorum marks its
//! snapshots `stale SINCE_MS`: a watcher says so, and says when it is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::Watcher;
use crate::fake_server::stale_gateway;

#[test]
fn a_watcher_says_when_the_board_is_stale_and_when_it_is_current_again() {
    let stale = Arc::new(AtomicBool::new(true));
    let (endpoint, _) = stale_gateway(Arc::clone(&stale));
    let watcher = Watcher::start(&endpoint, &["--interval", "0.2"]);
    let board = watcher.next("the first board");
    assert_eq!(board["entries"][0]["name"], "alice", "{board}");
    let since = board["stale_since"]
        .as_str()
        .expect("stale_since, RFC 3339");
    assert!(since.ends_with('Z') && since.contains('T'), "{board}");
    let said = watcher.err.find_within("stale:", Duration::from_secs(10));
    assert!(
        said.starts_with(&format!(
            "status_client: {endpoint}: stale: the server cannot reach its cluster since "
        )) && said.ends_with("— the board may be old"),
        "{said}"
    );
    stale.store(false, Ordering::SeqCst);
    watcher
        .err
        .find_within("the board is current again", Duration::from_secs(10));
    // Boards still queued from before may be stale; the next ones are not.
    let deadline = Instant::now() + Duration::from_secs(10);
    let current = loop {
        let line = watcher.out.next("a current board");
        if !line.contains("stale_since") {
            break line;
        }
        assert!(Instant::now() < deadline, "still stale: {line}");
    };
    assert!(current.contains("alice"), "{current}");
    watcher.stop();
}
