//! A TCP proxy that counts (and may keep) the bytes each way: what a poll
//! costs on the wire, ZeroMQ framing included, and what an eavesdropper sees.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::thread;
use std::time::{Duration, Instant};

use super::process::{EXIT_TIMEOUT, run_with_input};
use super::status_client::client;

/// A TCP proxy in front of a port that counts the bytes each way: what a poll
/// costs on the wire, ZeroMQ framing included.
pub struct CountingProxy {
    /// Where clients connect instead of the server.
    pub endpoint: String,
    counters: std::sync::Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Client to server, server to client.
    bytes: [std::sync::atomic::AtomicU64; 2],
    /// Copying threads still running: two per connection.
    open_pipes: std::sync::atomic::AtomicUsize,
    /// Connections taken so far.
    connections: std::sync::atomic::AtomicUsize,
    /// Every byte copied, both ways, in the order copied, when recording.
    wire: Option<std::sync::Mutex<Vec<u8>>>,
}

impl CountingProxy {
    /// A proxy to `127.0.0.1:target_port` on a free loopback port.
    pub fn start(target_port: u16) -> CountingProxy {
        CountingProxy::with(target_port, Counters::default())
    }

    /// A proxy that also keeps every byte it copies, for [`CountingProxy::wire`].
    pub fn recording(target_port: u16) -> CountingProxy {
        let counters = Counters {
            wire: Some(std::sync::Mutex::new(Vec::new())),
            ..Counters::default()
        };
        CountingProxy::with(target_port, counters)
    }

    fn with(target_port: u16, counters: Counters) -> CountingProxy {
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let counters = Arc::new(counters);
        let shared = Arc::clone(&counters);
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target_port)) else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                // Counted before the connection: a waiter never sees it half open.
                shared.open_pipes.fetch_add(2, Ordering::SeqCst);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                for (direction, from, to) in [(0, &client, &server), (1, &server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        shared.open_pipes.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    };
                    let counters = Arc::clone(&shared);
                    thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buffer = vec![0; 64 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            counters.bytes[direction].fetch_add(n as u64, Ordering::SeqCst);
                            if let Some(Ok(mut wire)) = counters.wire.as_ref().map(|w| w.lock()) {
                                wire.extend_from_slice(&buffer[..n]);
                            }
                        }
                        // Closing both ways ends the other direction's copy too.
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        counters.open_pipes.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        });
        CountingProxy {
            endpoint: format!("tcp://127.0.0.1:{port}"),
            counters,
        }
    }

    /// Bytes copied so far, both ways.
    pub fn total(&self) -> u64 {
        use std::sync::atomic::Ordering;
        self.counters
            .bytes
            .iter()
            .map(|b| b.load(Ordering::SeqCst))
            .sum()
    }

    /// Every byte copied so far, both ways: what an eavesdropper sees.
    pub fn wire(&self) -> Vec<u8> {
        match &self.counters.wire {
            Some(wire) => wire.lock().map(|wire| wire.clone()).unwrap_or_default(),
            None => panic!("this proxy does not record: start it with CountingProxy::recording"),
        }
    }

    /// Bytes copied both ways once every connection has closed (a client that
    /// has exited: its last bytes may still be in the copy).
    pub fn total_when_closed(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while self.counters.connections.load(Ordering::SeqCst) == 0
            || self.counters.open_pipes.load(Ordering::SeqCst) > 0
        {
            assert!(
                Instant::now() < deadline,
                "a proxied connection never closed"
            );
            thread::sleep(Duration::from_millis(5));
        }
        self.total()
    }
}

/// Wire bytes, both ways, of the real watcher polling the server on `port`
/// every 10 ms until it has printed `count` boards (as JSON), then exiting.
pub fn polling_watcher_bytes(port: u16, count: u64) -> u64 {
    let proxy = CountingProxy::start(port);
    let count_text = count.to_string();
    let output = run_with_input(
        &mut client(&[
            "_",
            "--endpoint",
            &proxy.endpoint,
            "--json",
            "--interval",
            "0.01",
            "--count",
            &count_text,
        ]),
        "",
        EXIT_TIMEOUT,
    );
    assert!(output.status.success(), "{output:?}");
    let boards = String::from_utf8_lossy(&output.stdout).lines().count();
    assert_eq!(boards as u64, count, "{output:?}");
    proxy.total_when_closed()
}
