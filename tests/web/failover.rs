//! A gateway given several servers of one board (`--endpoint A --endpoint B`):
//! it goes on serving the board, and posting, from the next when the one in
//! use is lost.

use std::time::Duration;

use crate::common::{EXIT_TIMEOUT, Server, Web, live_board, next_event, send_signal, wait_timeout};
use crate::set;

#[test]
fn with_two_endpoints_it_serves_the_board_after_the_first_server_is_killed() {
    let mut first = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let second = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    // The same board on both, as gateways of one cluster would serve.
    for server in [&first, &second] {
        set(server, "alice", "here");
    }
    let web = Web::start(&first.endpoint, &["--endpoint", &second.endpoint]);
    let mut events = web.events();
    let board = live_board(&mut events);
    assert_eq!(board["entries"][0]["name"], "alice", "{board}");

    send_signal(&first.child, libc::SIGKILL);
    wait_timeout(&mut first.child, EXIT_TIMEOUT).expect("gone after SIGKILL");
    set(&second, "bob", "on the second");
    web.stderr.find_within(
        &format!(
            "status_web: now using {} ({}:",
            second.endpoint, first.endpoint
        ),
        Duration::from_secs(30),
    );
    // The board from the second comes whole, with what was posted there.
    loop {
        let board = next_event(&mut events, "board");
        if board["entries"].to_string().contains("on the second") {
            break;
        }
    }
    let response = web.get("/board.json");
    assert_eq!(response.status, 200, "{}", response.body);
    let served: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
    let names: Vec<&str> = served["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["alice", "bob"], "{served}");

    // A post goes to the server that answers.
    let post = web.post("name=carol&status=posted+from+the+web", "");
    assert_eq!(post.status, 200, "{}", post.body);
    assert!(
        second
            .request_text("_:")
            .contains("- carol: posted from the web"),
        "the post reached the second"
    );
}
