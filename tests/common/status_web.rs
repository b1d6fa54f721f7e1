//! `status_web` as a child process, spoken to over plain HTTP/1.1 on a
//! connection of its own per request (and its event stream, read as it comes).

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use super::process::{Lines, REPLY_TIMEOUT, Running, spawn_piped};

/// The HTTP address `status_web` says it serves on: it prints
/// `status_web: serving http://ADDRESS/ …` once it listens.
pub fn web_address(stdout: &Lines) -> String {
    let line = stdout.find("status_web: serving http://");
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an address in the serving line")
        .to_owned()
}

/// A running `status_web` on a free loopback port, killed on drop.
pub struct Web {
    pub child: Running,
    pub address: String,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Web {
    pub fn command(endpoint: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_status_web"));
        command
            .args(["--endpoint", endpoint, "--listen", "127.0.0.1:0"])
            .args(extra);
        command
    }

    pub fn start(endpoint: &str, extra: &[&str]) -> Web {
        Web::spawn(Web::command(endpoint, extra))
    }

    pub fn spawn(mut command: Command) -> Web {
        let (child, stdout, stderr) = spawn_piped(&mut command);
        let address = web_address(&stdout);
        Web {
            child: Running(child),
            address,
            stdout,
            stderr,
        }
    }

    pub fn socket_address(&self) -> SocketAddr {
        self.address.parse().expect("an address")
    }

    pub fn port(&self) -> u16 {
        self.socket_address().port()
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.address).expect("connect to status_web");
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("timeout");
        stream
    }

    /// One request on its own connection: the status code, head and body.
    pub fn exchange(&self, request: &str) -> Response {
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the response");
        Response::parse(&raw)
    }

    /// A request's response head, on its own connection: for the event
    /// stream, which never ends.
    pub fn head_of(&self, request: &str) -> Response {
        let mut stream = self.connect();
        stream.write_all(request.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let head = read_until(&mut reader, str::is_empty).join("\r\n");
        Response::parse(head.as_bytes())
    }

    pub fn get(&self, path: &str) -> Response {
        self.exchange(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        ))
    }

    pub fn post(&self, form: &str, extra_headers: &str) -> Response {
        self.exchange(&format!(
            "POST /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra_headers}\r\n{form}",
            self.address,
            form.len()
        ))
    }

    /// The event stream: its lines, read as they come.
    pub fn events(&self) -> BufReader<TcpStream> {
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

    /// Once the gateway has the board: the server was heard.
    pub fn wait_live(&self) {
        live_board(&mut self.events());
    }
}

/// An HTTP response: its status code, its head in lower case, its body.
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn parse(raw: &[u8]) -> Response {
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

    pub fn nosniff(&self) -> bool {
        self.head
            .lines()
            .any(|line| line == "x-content-type-options: nosniff")
    }
}

/// Lines (without their ends, chunk sizes left in) until one satisfies `done`.
pub fn read_until(reader: &mut impl BufRead, done: impl Fn(&str) -> bool) -> Vec<String> {
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
pub fn live_board(reader: &mut impl BufRead) -> serde_json::Value {
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
pub fn next_event(reader: &mut impl BufRead, kind: &str) -> serde_json::Value {
    let wanted = format!("event: {kind}");
    read_until(reader, |line| line == wanted);
    let data = read_until(reader, |line| line.starts_with("data: "));
    let line = data.last().expect("a data line");
    serde_json::from_str(&line["data: ".len()..]).expect("JSON data")
}
