//! status_web over plain HTTP, against the real binaries: the board as
//! JSON, the event stream, posts and their refusals, logins forwarded, and a
//! gateway that keeps serving while the server is away or a peer misbehaves.
//! The page in a real browser is `tests/browser.rs`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Lines, PASSWORD, REPLY_TIMEOUT, Server, UsersFile, run_client, spawn_piped};

/// A running `status_web` on a free loopback port, killed on drop.
struct Web {
    child: Child,
    address: String,
    stdout: Lines,
    stderr: Lines,
}

impl Web {
    fn start(endpoint: &str, extra: &[&str]) -> Web {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_status_web"));
        command
            .args(["--endpoint", endpoint, "--listen", "127.0.0.1:0"])
            .args(extra);
        let (child, stdout, stderr) = spawn_piped(&mut command);
        let address = common::web_address(&stdout);
        Web {
            child,
            address,
            stdout,
            stderr,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.address).expect("connect to status_web");
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("timeout");
        stream
    }

    /// One request on its own connection: the status code, head and body.
    fn exchange(&self, request: &str) -> Response {
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the response");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {text:?}"));
        Response {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    fn get(&self, path: &str) -> Response {
        self.exchange(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        ))
    }

    fn post(&self, form: &str, extra_headers: &str) -> Response {
        self.exchange(&format!(
            "POST /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra_headers}\r\n{form}",
            self.address,
            form.len()
        ))
    }

    /// The event stream: its lines, read as they come.
    fn events(&self) -> BufReader<TcpStream> {
        let mut stream = self.connect();
        let request = format!(
            "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.address
        );
        stream.write_all(request.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let head = read_until(&mut reader, |line| line.is_empty());
        assert!(head[0].contains(" 200 "), "{head:?}");
        assert!(
            head.iter()
                .any(|h| h.eq_ignore_ascii_case("content-type: text/event-stream")),
            "{head:?}"
        );
        reader
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Lines (without their ends, chunk sizes left in) until one satisfies `done`.
fn read_until(reader: &mut impl BufRead, done: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = reader
            .read_line(&mut line)
            .expect("a line within the bound");
        assert!(read > 0, "the stream ended: {lines:?}");
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        let finished = done(&line);
        lines.push(line);
        if finished {
            return lines;
        }
    }
}

/// The board once the gateway says the server is live: events are read
/// until a heartbeat says so, and the last board before it is returned.
fn live_board(reader: &mut impl BufRead) -> serde_json::Value {
    let mut board = serde_json::Value::Null;
    loop {
        let kind = read_until(reader, |line| line.starts_with("event: "));
        let kind = kind.last().map(|l| l["event: ".len()..].to_owned());
        let data = read_until(reader, |line| line.starts_with("data: "));
        let line = data.last().expect("a data line");
        let value: serde_json::Value = serde_json::from_str(&line["data: ".len()..]).expect("JSON");
        match kind.as_deref() {
            Some("board") => board = value,
            Some("hb") if value["state"] == "live" => return board,
            _ => {}
        }
    }
}

/// The next event named `kind` on the stream, as JSON.
fn next_event(reader: &mut impl BufRead, kind: &str) -> serde_json::Value {
    let wanted = format!("event: {kind}");
    read_until(reader, |line| line == wanted);
    let data = read_until(reader, |line| line.starts_with("data: "));
    let line = data.last().expect("a data line");
    serde_json::from_str(&line["data: ".len()..]).expect("JSON data")
}

fn set(server: &Server, name: &str, text: &str) {
    let (code, _, stderr) = run_client(
        &["--endpoint", &server.endpoint, name, "--set", text, "-q"],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
}

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
        400,
        "the limit is 40",
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
    assert_eq!(forged.body, "error: user 'bob' may not set 'alice'\n");

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
    let mut heartbeat = next_event(&mut events, "hb");
    while heartbeat["state"] != "stale" {
        assert_eq!(heartbeat["state"], "connecting");
        heartbeat = next_event(&mut events, "hb");
    }
    assert!(heartbeat["stale_since_ms"].as_u64().is_some());
    let post = web.post("name=erin&status=x", "");
    assert_eq!(post.status, 503, "{}", post.body);
    assert!(
        post.body.starts_with("error: nothing listens"),
        "{}",
        post.body
    );
    web.stderr.find("nothing listens");
}

#[test]
fn garbage_and_half_requests_leave_it_serving() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let web = Web::start(&server.endpoint, &[]);
    // Bytes that are not HTTP, a request cut short, a header far too long.
    let mut idle = web.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x")
        .expect("a half request");
    let mut junk = web.connect();
    junk.write_all(&[0xff; 4096]).expect("junk");
    let long = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let mut huge = web.connect();
    let _ = huge.write_all(long.as_bytes()); // it may hang up before all is sent
    assert_eq!(web.get("/nowhere").status, 404);
    assert_eq!(web.post("name=frank&status=fine", "").status, 200);
    assert_eq!(web.get("/board.json").status, 200);
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
        common::send_signal(&web.child, signal);
        let status = common::wait_timeout(&mut web.child, common::EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("status_web did not exit on signal {signal}"));
        assert_eq!(status.code(), Some(0), "signal {signal}");
        web.stdout.find("status_web: stopped");
    }
}
