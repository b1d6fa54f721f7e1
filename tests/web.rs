//! status_web over plain HTTP, against the real binaries: the board as
//! JSON, the event stream, posts and their refusals, logins forwarded, and a
//! gateway that keeps serving while the server is away or a peer misbehaves.
//! The page in a real browser is `tests/browser.rs`.
//!
//! A hostile peer on the network (docs/WEB.md, Exposure): connections that
//! send nothing or half a request, more of them than there are descriptors,
//! requests that name another host (DNS rebinding), and responses a browser
//! must not sniff.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::{Child, Command};
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
    fn command(endpoint: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_status_web"));
        command
            .args(["--endpoint", endpoint, "--listen", "127.0.0.1:0"])
            .args(extra);
        command
    }

    fn start(endpoint: &str, extra: &[&str]) -> Web {
        Web::spawn(Web::command(endpoint, extra))
    }

    fn spawn(mut command: Command) -> Web {
        let (child, stdout, stderr) = spawn_piped(&mut command);
        let address = common::web_address(&stdout);
        Web {
            child,
            address,
            stdout,
            stderr,
        }
    }

    fn socket_address(&self) -> SocketAddr {
        self.address.parse().expect("an address")
    }

    fn port(&self) -> u16 {
        self.socket_address().port()
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
        Response::parse(&raw)
    }

    /// A request's response head, on its own connection: for the event
    /// stream, which never ends.
    fn head_of(&self, request: &str) -> Response {
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let head = read_until(&mut reader, str::is_empty).join("\r\n");
        Response::parse(head.as_bytes())
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

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw).into_owned();
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

    fn nosniff(&self) -> bool {
        self.head
            .lines()
            .any(|line| line == "x-content-type-options: nosniff")
    }
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

impl Web {
    /// Once the gateway has the board: the server was heard.
    fn wait_live(&self) {
        live_board(&mut self.events());
    }
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
    web.wait_live();
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

// ---- a hostile peer ----

/// Where the attacks come from, so that they are not the test's own requests.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The bound for connections the gateway must close: its head timeout (10 s) and then some.
const CLOSED_WITHIN: Duration = Duration::from_secs(60);

/// A connection to `to` from `source`: std cannot bind before it connects.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 address: {to}")
    };
    let address = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let (from, target) = (address(source, 0), address(*to.ip(), to.port()));
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket, owned by the TcpStream once connected (closed here
    // otherwise); the addresses live on this stack for the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let bound = libc::bind(fd, (&raw const from).cast(), length);
        let connected = bound == 0 && libc::connect(fd, (&raw const target).cast(), length) == 0;
        if !connected {
            let error = std::io::Error::last_os_error();
            libc::close(fd);
            panic!("connect from {source} to {to}: {error}");
        }
        TcpStream::from_raw_fd(fd)
    }
}

/// When the gateway closed `stream` (what it sent before is read and
/// dropped), or `None` if it is still open at `deadline`.
fn closed_by(stream: &mut TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buffer = [0; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        match stream.read(&mut buffer) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(Instant::now());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Whether the gateway has closed `stream`, without waiting.
fn is_closed(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let closed = match stream.peek(&mut [0; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

#[test]
fn silent_half_sent_and_idle_connections_are_closed_but_event_streams_stay() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let web = Web::start(&server.endpoint, &[]);
    let mut viewer = web.events();
    live_board(&mut viewer);
    let to = web.socket_address();
    let started = Instant::now();
    // Fifty that send nothing, fifty that stop in the middle of a header.
    let mut attackers: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut stream = connect_from(ATTACKER, to);
            if i % 2 == 1 {
                stream
                    .write_all(b"GET /board.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .expect("half a header");
            }
            stream
        })
        .collect();
    // A header sent a byte every 200 ms: always busy, never done. The
    // deadline is for the whole head, not for a silence.
    let dripping = std::thread::spawn(move || {
        let mut stream = connect_from(ATTACKER, to);
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Drip: ")
            .expect("a head begun");
        let began = Instant::now();
        while stream.write_all(b"a").is_ok() && began.elapsed() < CLOSED_WITHIN {
            std::thread::sleep(Duration::from_millis(200));
        }
        began.elapsed()
    });
    // A kept-alive connection, answered once, then silent: hyper's head
    // timer runs while it waits for the next request too.
    let mut kept = BufReader::new(connect_from(ATTACKER, to));
    let request = format!("GET /nowhere HTTP/1.1\r\nHost: {}\r\n\r\n", web.address);
    kept.get_mut()
        .write_all(request.as_bytes())
        .expect("a request");
    let head = read_until(&mut kept, str::is_empty);
    assert!(head[0].contains(" 404 "), "{head:?}");
    // A form that never arrives after its head.
    let mut slow_form = connect_from(ATTACKER, to);
    let post = format!(
        "POST /status HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\nname=mallory",
        web.address
    );
    slow_form.write_all(post.as_bytes()).expect("a head");

    let deadline = started + CLOSED_WITHIN;
    let mut slowest = Duration::ZERO;
    for (i, attacker) in attackers.iter_mut().enumerate() {
        let closed = closed_by(attacker, deadline)
            .unwrap_or_else(|| panic!("attacker {i} still open after {CLOSED_WITHIN:?}"));
        slowest = slowest.max(closed - started);
    }
    let idle = closed_by(kept.get_mut(), deadline).expect("the idle kept-alive connection closed");
    let mut answer = Vec::new();
    slow_form
        .set_read_timeout(Some(CLOSED_WITHIN))
        .expect("timeout");
    let _ = slow_form.read_to_end(&mut answer);
    let answer = Response::parse(&answer);
    assert_eq!(answer.status, 408, "{}", answer.body);
    assert!(answer.body.contains("did not arrive"), "{}", answer.body);
    assert!(answer.nosniff(), "{}", answer.head);
    let dripped = dripping.join().expect("the dripping thread");
    assert!(dripped < CLOSED_WITHIN, "a header dripped for {dripped:?}");
    eprintln!(
        "closed: 100 silent or half-sent by {slowest:?}, a dripping head after {dripped:?}, \
         an idle kept-alive one by {:?}",
        idle - started
    );

    // The viewer outlived them all (an event stream is never idle), and
    // the gateway still answers.
    assert!(started.elapsed() > slowest);
    let heartbeat = next_event(&mut viewer, "hb");
    assert_eq!(heartbeat["state"], "live");
    assert_eq!(web.get("/board.json").status, 200);
}

#[test]
fn with_1024_descriptors_1100_idle_connections_leave_room_for_a_request_a_post_and_a_viewer() {
    const LIMIT: u64 = 1024;
    const ATTACKERS: usize = 1100;
    common::raise_own_open_file_limit(ATTACKERS as u64 + 512);
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let mut command = Web::command(&server.endpoint, &[]);
    common::limit_open_files(&mut command, LIMIT, Some(LIMIT));
    let web = Web::spawn(command);
    let line = web.stdout.find("connections at once");
    assert!(
        line.contains("up to 896 connections at once (the open-file limit is 1024; raise"),
        "{line}"
    );
    let mut viewer = web.events();
    live_board(&mut viewer);

    let to = web.socket_address();
    let began = Instant::now();
    let attackers: Vec<TcpStream> = (0..ATTACKERS).map(|_| connect_from(ATTACKER, to)).collect();
    let started = Instant::now();
    let mut stream = web.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "GET /board.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        web.address
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the board within 30 s");
    let board = Response::parse(&raw);
    let took = started.elapsed();
    assert_eq!(board.status, 200, "{}", board.body);
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Before the first attacker's head timeout (10 s) could have made room:
    // the room was made by closing idle connections for it.
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "the board came {:?} after the attack began",
        began.elapsed()
    );

    // Room was made by closing the connections idle the longest, never the viewer's.
    let closed = attackers.iter().filter(|s| is_closed(s)).count();
    assert!(closed >= ATTACKERS - 896, "only {closed} closed");
    let post = web.post("name=alice&status=under+siege", "");
    assert_eq!(
        post.status, 200,
        "a post's sockets come from the reserve: {}",
        post.body
    );
    let change = next_event(&mut viewer, "set");
    assert_eq!(change["status"], "under siege");
    eprintln!(
        "{ATTACKERS} idle connections opened in {:?}: the board in {took:?}; {closed} of them \
         closed for room",
        started - began
    );
}

#[test]
fn only_requests_that_name_a_served_host_are_answered_on_every_path() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let web = Web::start(
        &server.endpoint,
        &["--allow-host", "Board.Example", "--allow-host", "status"],
    );
    web.wait_live();
    let port = web.port();
    let form = "name=mallory&status=rebound";
    let request = |method: &str, path: &str, host: &str| {
        let origin = format!("http://{host}");
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
    };
    // A page at http://evil.example:PORT whose name now resolves to us: its
    // Origin matches its Host, as a rebinding page's does.
    let evil = format!("evil.example:{port}");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/events"),
        ("GET", "/board.json"),
        ("POST", "/status"),
        ("GET", "/nowhere"),
        ("DELETE", "/status"),
    ] {
        let refused = web.exchange(&request(method, path, &evil));
        assert_eq!(refused.status, 421, "{method} {path}: {}", refused.body);
        assert!(refused.nosniff(), "{method} {path}: {}", refused.head);
        assert!(
            refused.body.contains("this is not evil.example")
                && refused.body.contains("localhost and board.example, status")
                && refused.body.contains("--allow-host NAME"),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        server.request_text("_:"),
        "",
        "the rebound post stored nothing"
    );
    let full_url = format!(
        "GET http://{evil}/board.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        web.address
    );
    assert_eq!(
        web.exchange(&full_url).status,
        421,
        "a full URL names a host too"
    );

    // IP addresses (any: rebinding needs a name), localhost, and the names given.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("[::1]:{port}"),
        "10.9.8.7:80".to_owned(),
        format!("localhost:{port}"),
        "LocalHost".to_owned(),
        format!("board.example:{port}"),
        "BOARD.EXAMPLE.".to_owned(),
        "status:8080".to_owned(),
    ] {
        let answered = web.exchange(&request("GET", "/board.json", &host));
        assert_eq!(answered.status, 200, "{host}: {}", answered.body);
    }
    let proxied = format!("board.example:{port}");
    let events = web.head_of(&format!("GET /events HTTP/1.1\r\nHost: {proxied}\r\n\r\n"));
    assert_eq!(events.status, 200, "{}", events.head);
    let posted = web.exchange(&request("POST", "/status", &proxied));
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(server.request_text("_:"), "- mallory: rebound\n");

    // HTTP/1.1 wants one Host.
    let without = web.exchange("GET /board.json HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(without.status, 400, "{}", without.body);
    assert!(without.body.contains("Host"), "{}", without.body);
    let twice = web.exchange(&format!(
        "GET /board.json HTTP/1.1\r\nHost: localhost\r\nHost: {evil}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(twice.status, 400, "{}", twice.body);

    // Without --allow-host, the name is another site's.
    let plain = Web::start(&server.endpoint, &[]);
    let refused = plain.exchange(&request(
        "GET",
        "/board.json",
        &format!("board.example:{}", plain.port()),
    ));
    assert_eq!(refused.status, 421, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("answers to IP addresses and localhost."),
        "{}",
        refused.body
    );

    // --allow-host takes a name, not a URL or an address with a port.
    let (code, _, stderr) = common::run_command(
        Command::new(env!("CARGO_BIN_EXE_status_web")).args([
            "--allow-host",
            "board.example:8080",
            "--listen",
            "127.0.0.1:0",
        ]),
        "",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--allow-host \"board.example:8080\": give a host name"),
        "{stderr}"
    );
}

#[test]
fn every_response_says_nosniff_and_the_page_keeps_its_policy_and_isolates_text() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let web = Web::start(&server.endpoint, &[]);
    web.wait_live();
    let page = web.get("/");
    assert!(
        page.head
            .contains("content-security-policy: default-src 'none'"),
        "{}",
        page.head
    );
    assert!(
        page.body
            .contains(".name, .status { unicode-bidi: isolate; }"),
        "names and statuses are bidi-isolated"
    );
    let form = |text: &str| {
        format!(
            "POST /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            web.address,
            text.len()
        )
    };
    let events = web.head_of(&format!(
        "GET /events HTTP/1.1\r\nHost: {}\r\n\r\n",
        web.address
    ));
    let kinds = [
        ("the page", page),
        ("the board", web.get("/board.json")),
        ("the event stream", events),
        ("a post", web.post("name=nina&status=here", "")),
        ("no status", web.post("name=nina", "")),
        (
            "another site",
            web.post("name=nina&status=x", "Origin: http://elsewhere.example\r\n"),
        ),
        ("too large", web.post(&"x".repeat(100_000), "")),
        ("not a form", web.exchange(&form("abc"))),
        ("no such path", web.get("/nowhere")),
        (
            "no such method",
            web.exchange(&format!(
                "PUT /board.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                web.address
            )),
        ),
        (
            "another host",
            web.exchange("GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        ),
        (
            "no host",
            web.exchange("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
        ),
    ];
    let mut codes = Vec::new();
    for (kind, response) in &kinds {
        assert!(response.nosniff(), "{kind}: {}", response.head);
        codes.push(response.status);
    }
    assert_eq!(
        codes,
        [200, 200, 200, 200, 400, 403, 413, 415, 404, 405, 421, 400]
    );
}
