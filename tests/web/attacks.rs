//! A hostile peer on the network (docs/WEB.md, Exposure): garbage and half
//! requests, connections that send nothing or drip a header, more of them
//! than there are descriptors, requests that name another host (DNS
//! rebinding), and responses a browser must not sniff.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::zmtp::{ATTACKER, connect_from};
use crate::common::{self, Response, Server, Web, live_board, next_event, read_until};

/// A connection to the gateway's `port` from [`ATTACKER`], so that it is not
/// one of the test's own.
fn attacker(port: u16) -> TcpStream {
    connect_from(ATTACKER, port).expect("a connection from the attacker's address")
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

/// The bound for connections the gateway must close: its head timeout (10 s) and then some.
const CLOSED_WITHIN: Duration = Duration::from_secs(60);

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
    let to = web.port();
    let started = Instant::now();
    // Fifty that send nothing, fifty that stop in the middle of a header.
    let mut attackers: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut stream = attacker(to);
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
        let mut stream = attacker(to);
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
    let mut kept = BufReader::new(attacker(to));
    let request = format!("GET /nowhere HTTP/1.1\r\nHost: {}\r\n\r\n", web.address);
    kept.get_mut()
        .write_all(request.as_bytes())
        .expect("a request");
    let head = read_until(&mut kept, str::is_empty);
    assert!(head[0].contains(" 404 "), "{head:?}");
    // A form that never arrives after its head.
    let mut slow_form = attacker(to);
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

    let to = web.port();
    let began = Instant::now();
    let attackers: Vec<TcpStream> = (0..ATTACKERS).map(|_| attacker(to)).collect();
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
