//! A server that says its board may be old (a gateway of a cluster without
//! its store's quorum): the page is told in each heartbeat, and
//! `/board.json` says since when.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Web, live_board, next_event};
use crate::fake_server::stale_gateway;

#[test]
fn the_heartbeat_and_board_json_say_while_the_servers_cluster_is_out_of_reach() {
    let stale = Arc::new(AtomicBool::new(true));
    let (gateway, since) = stale_gateway(Arc::clone(&stale));
    let web = Web::start(&gateway, &["--interval", "0.2"]);
    let mut events = web.events();
    let board = live_board(&mut events);
    assert_eq!(board["entries"][0]["name"], "alice", "{board}");
    let heartbeat = next_event(&mut events, "hb");
    assert_eq!(heartbeat["state"], "live", "it answers: {heartbeat}");
    assert_eq!(heartbeat["cluster_stale_since_ms"], since, "{heartbeat}");
    let json: serde_json::Value = serde_json::from_str(&web.get("/board.json").body).expect("JSON");
    assert!(json["stale_since"].as_str().is_some(), "{json}");

    stale.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let heartbeat = next_event(&mut events, "hb");
        if heartbeat["cluster_stale_since_ms"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "still stale: {heartbeat}");
    }
    let json: serde_json::Value = serde_json::from_str(&web.get("/board.json").body).expect("JSON");
    assert!(json.get("stale_since").is_none(), "{json}");
}
