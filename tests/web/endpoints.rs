//! What the gateway serves: the board as JSON (as the client prints it), the
//! event stream, posts and their refusals, logins forwarded, the page, a
//! server that is away, and a clean end on a signal.

use std::time::{Duration, Instant};

use crate::common::{
    self, PASSWORD, REPLY_TIMEOUT, Server, UsersFile, Web, live_board, next_event, run_client,
};
use crate::set;

#[test]
fn board_json_is_what_the_client_prints_with_json() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    set(&server, "alice", "in a meeting");
    set(&server, "bob", "out");
    let web = Web::start(&server.endpoint, &[]);
    let mut events = web.events();
    live_board(&mut events);
    let response = web.get("/board.json");
    assert_eq!(response.status, 200);
    assert!(response.head.contains("content-type: application/json"));
    let ours: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
    let (code, printed, stderr) = run_client(
        &[
            "--endpoint",
            &server.endpoint,
            "_",
            "--json",
            "--count",
            "1",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let theirs: serde_json::Value = serde_json::from_str(printed.trim()).expect("JSON");
    let without_ages = |v: &serde_json::Value| {
        let mut v = v.clone();
        for entry in v["entries"].as_array_mut().expect("entries") {
            entry.as_object_mut().expect("an object").remove("age_s");
        }
        v
    };
    assert_eq!(without_ages(&ours), without_ages(&theirs));
    assert_eq!(ours["seq"], 2);
    assert_eq!(ours["entries"][0]["status"], "in a meeting");
}

#[test]
fn events_are_the_board_then_each_change_and_a_heartbeat_every_second() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*", "--ttl", "1h"]);
    set(&server, "alice", "here");
    let web = Web::start(&server.endpoint, &[]);
    let mut events = web.events();
    let board = live_board(&mut events);
    assert_eq!(board["entries"][0]["name"], "alice");
    let heartbeat = next_event(&mut events, "hb");
    let server_now = heartbeat["server_now_ms"]
        .as_u64()
        .expect("the server's clock");
    assert!(server_now.abs_diff(common::now_ms()) < 60_000);
    set(&server, "bob", "in a meeting");
    let change = next_event(&mut events, "set");
    assert_eq!(change["name"], "bob");
    assert_eq!(change["status"], "in a meeting");
    assert_eq!(change["seq"], board["seq"].as_u64().unwrap_or(0) + 1);
    let (code, _, stderr) = run_client(
        &["--endpoint", &server.endpoint, "bob", "--clear", "-q"],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let removal = next_event(&mut events, "del");
    assert_eq!(
        (removal["name"].as_str(), removal["why"].as_str()),
        (Some("bob"), Some("cleared"))
    );
    let started = Instant::now();
    let live = next_event(&mut events, "hb");
    assert_eq!(live["state"], "live");
    assert_eq!(live["feed"], "pushed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a heartbeat every second"
    );
}

#[test]
fn a_post_sets_the_status_and_bad_ones_get_the_reason_and_a_4xx() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*", "--max-request", "40"]);
    let web = Web::start(&server.endpoint, &[]);
    let ok = web.post("name=carol&status=at+the+dentist", "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body, "- carol: at the dentist\n");
    assert_eq!(
        server.request_text("_:"),
        "- carol: at the dentist\n",
        "the server has it"
    );

    let refused = |form: &str, headers: &str, code: u16, reason: &str| {
        let response = web.post(form, headers);
        assert_eq!(response.status, code, "{form}: {}", response.body);
        assert!(
            response.body.starts_with("error: ") && response.body.contains(reason),
            "{form}: {}",
            response.body
        );
    };
    refused("name=carol", "", 400, "give a status");
    refused("status=x", "", 400, "give a name");
    refused("name=_&status=x", "", 400, "only reads");
    refused("name=a%3Ab&status=x", "", 400, "contains ':'");
    refused("name=dave&status=one%0Atwo", "", 400, "the status");
    refused(
        "name=dave&status=far+too+long+for+forty+bytes+of+request",
        "",
        413,
        "error: too-long: request is",
    );
    refused(
        "name=dave&status=x",
        "Origin: http://elsewhere.example\r\n",
        403,
        "another site",
    );
    refused(
        "name=dave&status=x",
        "Authorization: Bearer abc\r\n",
        400,
        "not HTTP Basic",
    );
    let huge = format!("name=dave&status={}", "x".repeat(100_000));
    assert_eq!(web.post(&huge, "").status, 413);
    let wrong_type = web.exchange(&format!(
        "POST /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
        web.address
    ));
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.body);
    assert_eq!(
        server.request_text("_:"),
        "- carol: at the dentist\n",
        "nothing else stored"
    );
}

#[test]
fn with_logins_a_posts_basic_credentials_are_the_users_login() {
    let users = UsersFile::new(&["alice", "bob"]);
    let anonymous = format!("tcp://127.0.0.1:{}", common::free_port());
    let server = Server::start(&["--auth", users.path(), "--anonymous", &anonymous]);
    let web = Web::start(
        &server.endpoint,
        &["--read-endpoint", &anonymous, "--interval", "0.2"],
    );
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Authorization: Basic {token}\r\n")
    };
    let as_bob = basic("bob", PASSWORD);

    let forged = web.post("name=alice&status=forged", &as_bob);
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(
        forged.body,
        "error: forbidden: user 'bob' may not set 'alice'\n"
    );

    let own = web.post("status=logged+in", &as_bob);
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body, "- bob: logged in\n", "the name is the user's");

    let anonymous_post = web.post("name=bob&status=x", "");
    assert_eq!(anonymous_post.status, 401, "{}", anonymous_post.body);
    assert!(
        anonymous_post
            .head
            .contains("www-authenticate: basic realm=\"status-board\"")
    );
    assert!(anonymous_post.body.contains("wants a login"));

    let wrong = web.post("status=x", &basic("bob", "not the password"));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(
        wrong.body.contains("refused the login of 'bob'"),
        "{}",
        wrong.body
    );

    // The gateway reads the board anonymously (it has no rights of its
    // own), by polls: the publisher wants a login.
    let mut events = web.events();
    let mut board = live_board(&mut events);
    while board["entries"][0].is_null() {
        board = next_event(&mut events, "board");
    }
    assert_eq!(board["entries"][0]["status"], "logged in");
}

#[test]
fn it_serves_the_page_and_says_the_server_is_away_while_it_is() {
    let dead = format!("tcp://127.0.0.1:{}", common::free_port());
    let web = Web::start(&dead, &["--timeout", "200", "--retries", "1"]);
    let page = web.get("/");
    assert_eq!(page.status, 200);
    assert!(page.head.contains("content-type: text/html"));
    assert!(
        page.head
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(page.body.contains("<title>Status board</title>"));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "nothing from elsewhere"
    );
    let mut events = web.events();
    // Tried and failed: never heard, so nothing to call stale, and no
    // board to serve as if it were the board.
    web.stderr.find("nothing listens");
    for _ in 0..2 {
        let heartbeat = next_event(&mut events, "hb");
        assert_eq!(heartbeat["state"], "connecting", "{heartbeat}");
        assert!(heartbeat["stale_since_ms"].is_null(), "{heartbeat}");
        assert!(heartbeat["logins"].is_null(), "not known: {heartbeat}");
    }
    let board = web.get("/board.json");
    assert_eq!(board.status, 503, "{}", board.body);
    assert!(
        board
            .body
            .starts_with("error: no contact with the status server yet"),
        "{}",
        board.body
    );
    let post = web.post("name=erin&status=x", "");
    assert_eq!(post.status, 503, "{}", post.body);
    assert!(
        post.body.starts_with("error: nothing listens"),
        "{}",
        post.body
    );
}

/// The first heartbeat that says whether the server wants logins.
fn logins_said(web: &Web) -> serde_json::Value {
    let mut events = web.events();
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "the gateway never said");
        let heartbeat = next_event(&mut events, "hb");
        if !heartbeat["logins"].is_null() {
            return heartbeat["logins"].clone();
        }
    }
}

#[test]
fn the_heartbeat_says_whether_posts_want_a_login_before_any_post() {
    let users = UsersFile::new(&["alice"]);
    let anonymous = format!("tcp://127.0.0.1:{}", common::free_port());
    let with_auth = Server::start(&["--auth", users.path(), "--anonymous", &anonymous]);
    let web = Web::start(
        &with_auth.endpoint,
        &["--read-endpoint", &anonymous, "--interval", "0.2"],
    );
    assert_eq!(logins_said(&web), true);

    let open = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let web = Web::start(&open.endpoint, &[]);
    assert_eq!(logins_said(&web), false);
}

#[test]
fn the_server_binary_links_no_async_runtime() {
    let read = |path: &str| std::fs::read(path).expect("the binary");
    let has = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let web = read(env!("CARGO_BIN_EXE_status_web"));
    assert!(
        has(&web, b"tokio"),
        "the check itself finds tokio where it is"
    );
    for binary in [
        env!("CARGO_BIN_EXE_status_server"),
        env!("CARGO_BIN_EXE_status_client"),
    ] {
        assert!(!has(&read(binary), b"tokio"), "{binary} links tokio");
    }
}

#[test]
fn ctrl_c_and_sigterm_end_it_cleanly_with_viewers_connected() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut web = Web::start(&server.endpoint, &[]);
        let mut events = web.events();
        live_board(&mut events);
        let code = common::stop_with(&mut web.child, signal);
        assert_eq!(code, Some(0), "signal {signal}");
        web.stdout.find("status_web: stopped");
    }
}
