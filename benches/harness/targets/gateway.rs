//! The web gateway, `status_web`, and what reads it: raw `/events` streams
//! and, when it can run here, headless Chromium.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::process::Spawned;

/// `status_web` for the server at `endpoint`, on a free port: its address and the process.
pub fn start_web(endpoint: &str) -> (String, Spawned) {
    let web = Spawned::start(Command::new(env!("CARGO_BIN_EXE_status_web")).args([
        "--endpoint",
        endpoint,
        "--listen",
        "127.0.0.1:0",
    ]));
    (common::web_address(&web.lines), web)
}

/// An `/events` stream, its response head read; reads bounded to 10 s.
pub fn open_events(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect to status_web");
    write!(stream, "GET /events HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("send");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the response head");
        head.push(byte[0]);
    }
    stream
}

/// The number N after each `"status":"PREFIXN"` in `text`.
pub fn markers(text: &str, prefix: &str) -> Vec<u64> {
    let needle = format!("\"status\":\"{prefix}");
    text.match_indices(&needle)
        .filter_map(|(at, _)| {
            let digits: String = text[at + needle.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Established TCP connections whose local port is `port` (Linux).
pub fn connections_to(port: u16) -> usize {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|row| {
                    let f: Vec<&str> = row.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&port) && f[3] == "01"
                })
                .count()
        })
        .sum()
}

/// Why headless Chromium cannot run here, if it cannot.
pub fn browser_missing() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Some("no playwright-core (npm ci --prefix tests/browser)".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    None
}
