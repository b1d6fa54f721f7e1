//! The real `status_server` against a hostile peer on loopback: raw ZMTP
//! from 127.0.0.2 that never reads what it asked for, floods of logins, and
//! more connections than the server has descriptors for. Each test says what
//! the attack cost before its defence, bounds what it may cost now, and
//! checks that the attack did its work (a defence that was never tested
//! proves nothing).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Server;

/// ZMTP 3.0 spoken by hand: what a peer that does not play by libzmq's rules sends.
mod zmtp {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// A TCP connection from `source` (an address of this host, 127.0.0.2 for
    /// an attacker) to `port` on 127.0.0.1, with a small receive buffer so
    /// that what it does not read stays on the server's side.
    pub fn connect_from(source: &str, port: u16) -> io::Result<TcpStream> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_recv_buffer_size(4096)?;
        let from: SocketAddr = format!("{source}:0").parse().map_err(io::Error::other)?;
        socket.bind(&from.into())?;
        let to: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(io::Error::other)?;
        socket.connect_timeout(&to.into(), Duration::from_secs(10))?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The 64-byte greeting of a client using `mechanism` (NULL, PLAIN).
    pub fn greeting(mechanism: &str) -> Vec<u8> {
        let mut out = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0];
        let mut name = [0u8; 20];
        name[..mechanism.len()].copy_from_slice(mechanism.as_bytes());
        out.extend_from_slice(&name);
        out.push(0); // as-server: no
        out.extend_from_slice(&[0; 31]);
        out
    }

    /// A command frame: `name` then `body`.
    pub fn command(name: &str, body: &[u8]) -> Vec<u8> {
        let mut payload = vec![u8::try_from(name.len()).expect("short name")];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(body);
        let mut out = match u8::try_from(payload.len()) {
            Ok(size) => vec![0x04, size],
            Err(_) => {
                let mut long = vec![0x06];
                long.extend_from_slice(&(payload.len() as u64).to_be_bytes());
                long
            }
        };
        out.extend_from_slice(&payload);
        out
    }

    /// READY (NULL) or INITIATE (PLAIN) metadata: the socket type.
    pub fn metadata(socket_type: &str) -> Vec<u8> {
        let mut body = vec![11];
        body.extend_from_slice(b"Socket-Type");
        body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
        body.extend_from_slice(socket_type.as_bytes());
        body
    }

    /// One message frame; `more` when another frame of the message follows.
    pub fn frame(body: &[u8], more: bool) -> Vec<u8> {
        let more = u8::from(more);
        let mut out = match u8::try_from(body.len()) {
            Ok(size) => vec![more, size],
            Err(_) => {
                let mut long = vec![0x02 | more];
                long.extend_from_slice(&(body.len() as u64).to_be_bytes());
                long
            }
        };
        out.extend_from_slice(body);
        out
    }

    /// A request as a REQ socket frames it: an empty delimiter, then the body.
    pub fn request(body: &[u8]) -> Vec<u8> {
        let mut out = frame(b"", true);
        out.extend(frame(body, false));
        out
    }

    /// Reads one frame's flags and body.
    fn read_frame(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
        let mut flags = [0u8; 1];
        stream.read_exact(&mut flags)?;
        let size = match flags[0] & 0x02 {
            0 => {
                let mut size = [0u8; 1];
                stream.read_exact(&mut size)?;
                usize::from(size[0])
            }
            _ => {
                let mut size = [0u8; 8];
                stream.read_exact(&mut size)?;
                usize::try_from(u64::from_be_bytes(size)).map_err(io::Error::other)?
            }
        };
        if size > 1 << 20 {
            return Err(io::Error::other("a frame over 1 MiB during the handshake"));
        }
        let mut body = vec![0; size];
        stream.read_exact(&mut body)?;
        Ok((flags[0], body))
    }

    /// A NULL handshake as `socket_type`, up to the server's READY.
    pub fn handshake_null(stream: &mut TcpStream, socket_type: &str) -> io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut hello = greeting("NULL");
        hello.extend(command("READY", &metadata(socket_type)));
        stream.write_all(&hello)?;
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs)?;
        let (flags, body) = read_frame(stream)?;
        match flags & 0x04 != 0 && body.starts_with(b"\x05READY") {
            true => Ok(()),
            false => Err(io::Error::other(format!("no READY: {body:?}"))),
        }
    }
}

/// Resident memory of a process now, in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Fills a server with `entries` names of `status_len`-byte statuses; the board's size.
fn fill(server: &Server, entries: usize, status_len: usize) -> usize {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
    socket.connect(&server.endpoint).expect("connect");
    let status = "s".repeat(status_len);
    let mut board = 0;
    for i in 0..entries {
        socket
            .send(format!("n{i:04}: {status}").as_bytes(), 0)
            .expect("send");
        board = socket.recv_bytes(0).expect("the board").len();
    }
    board
}

/// The status of `name` on the board at `endpoint`, with a bounded wait.
fn status_of(endpoint: &str, name: &str) -> Option<String> {
    let reply = common::request_parts_within(endpoint, &[b"_:"], Duration::from_secs(10))?;
    let text = String::from_utf8(reply).ok()?;
    let prefix = format!("- {name}: ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn replies_nobody_reads_do_not_pin_copies_of_the_board() {
    // Before: a 2 MB board took the server from 8 MiB to 856 MiB in one
    // second, each unread reply holding its own copy of the board.
    let server = Server::start(&["--quiet"]);
    let board = fill(&server, 500, 4000);
    assert!(board > 1_900_000, "a 2 MB board: {board}");
    let before = rss_kib(&server);
    let mut stream = zmtp::connect_from("127.0.0.2", server.port()).expect("connect");
    zmtp::handshake_null(&mut stream, "DEALER").expect("handshake");
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .expect("write timeout");
    // Updates that change the board, each followed by a poll whose reply
    // (the whole board) is never read.
    let started = Instant::now();
    let (mut pending, mut offset, mut pairs, mut peak) = (Vec::new(), 0, 0u64, before);
    let mut last_sample = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if offset == pending.len() {
            pairs += 1;
            pending = zmtp::request(format!("hostile: {pairs}").as_bytes());
            pending.extend(zmtp::request(b"_:"));
            offset = 0;
        }
        match stream.write(&pending[offset..]) {
            Ok(n) => {
                offset += n;
                if offset == pending.len() {
                    // One pair a round: each reply then holds a board of its
                    // own (a batch of pairs would share a few), the worst case.
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("the server dropped the attacker after {pairs} pairs: {e}"),
        }
        if last_sample.elapsed() > Duration::from_millis(100) {
            peak = peak.max(rss_kib(&server));
            last_sample = Instant::now();
        }
    }
    peak = peak.max(rss_kib(&server));
    // The attack did its work: the server took thousands of updates from a
    // peer that read nothing, and others are still answered.
    let reached: u64 = status_of(&server.endpoint, "hostile")
        .expect("the server answers others during the attack")
        .parse()
        .expect("a number");
    assert!(
        reached >= 1_000,
        "the server took only {reached} of {pairs} pipelined updates"
    );
    let bound_kib = (64 * 1024).max(16 * board as u64 / 1024);
    assert!(
        peak - before < bound_kib,
        "RSS grew from {before} KiB to {peak} KiB ({reached} updates, board {board} B)"
    );
    eprintln!(
        "unread replies: RSS {before} KiB before, {peak} KiB at peak, {reached} updates taken"
    );
    // It comes back once the peer leaves.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = rss_kib(&server);
    while now > before + 16 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now = rss_kib(&server);
    }
    assert!(
        now <= before + 16 * 1024,
        "RSS stayed at {now} KiB after the attacker left ({before} KiB before)"
    );
}

#[test]
fn a_subscriber_that_never_reads_costs_a_bounded_queue() {
    // Before: 50 000 queued changes per subscriber, 200 MB at 4 KB each.
    let server = Server::start(&["--quiet", "--publish", "tcp://127.0.0.1:*"]);
    let publisher = common::snapshot(&server.endpoint).header.publish[0].clone();
    let port: u16 = publisher
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let mut stream = zmtp::connect_from("127.0.0.2", port).expect("connect");
    zmtp::handshake_null(&mut stream, "SUB").expect("handshake");
    // Subscribe to everything, then never read again.
    stream
        .write_all(&zmtp::frame(b"\x01", false))
        .expect("subscribe");
    let before = rss_kib(&server);
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
    socket.connect(&server.endpoint).expect("connect");
    let status = "p".repeat(4000);
    let mut peak = before;
    for i in 0..20_000 {
        socket
            .send(format!("n{}: {i} {status}", i % 50).as_bytes(), 0)
            .expect("send");
        socket.recv_bytes(0).expect("the board");
        if i % 500 == 0 {
            peak = peak.max(rss_kib(&server));
        }
    }
    peak = peak.max(rss_kib(&server));
    // The stalled subscriber got some of it: it was subscribed.
    let mut first = [0u8; 64];
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let got = stream
        .read(&mut first)
        .expect("something was published to it");
    assert!(got > 0);
    assert!(
        peak - before < 64 * 1024,
        "RSS grew from {before} KiB to {peak} KiB with a subscriber that never reads"
    );
    eprintln!("stalled subscriber: RSS {before} KiB before, {peak} KiB at peak");
}
