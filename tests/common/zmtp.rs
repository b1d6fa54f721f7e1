//! An attacker on loopback: its TCP connections from 127.0.0.2 (to the
//! server, or to the web gateway), ZMTP 3.0 spoken by hand (what a peer that
//! does not play by libzmq's rules sends: the attack tests and the harness's
//! attack section), and a flood of junk logins.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where the attacks come from, so that a defence per address tells them
/// from the test's own requests.
pub const ATTACKER: &str = "127.0.0.2";

/// A TCP connection from `source` (an address of this host, 127.0.0.2 for
/// an attacker) to `port` on 127.0.0.1, with a small receive buffer so
/// that what it does not read stays on the server's side.
pub fn connect_from(source: &str, port: u16) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_recv_buffer_size(4096)?;
    // The port is picked at connect, not at bind: a bind to port 0 searches
    // for a port no socket holds, slow with thousands in TIME_WAIT.
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a live socket, and an int option with its size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
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

/// PLAIN's HELLO with a user and a password.
pub fn hello(user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![u8::try_from(user.len()).expect("short user")];
    body.extend_from_slice(user.as_bytes());
    body.push(u8::try_from(password.len()).expect("short password"));
    body.extend_from_slice(password.as_bytes());
    command("HELLO", &body)
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

/// Junk PLAIN logins from [`ATTACKER`], as fast as two threads can send them:
/// each connection sends its greeting and HELLO in one write, then hangs up
/// at once, or (`Stay`) waits for its answer while hundreds more are sent.
pub struct Flood {
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Whether a flooding connection hangs up at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUp {
    /// As soon as its HELLO is written: its login outlives it.
    AtOnce,
    /// Not before 256 more are sent: its login is alive while it waits.
    Stay,
}

impl Flood {
    /// Floods `port` for `duration`; returns once the first thousand are sent.
    pub fn start(port: u16, duration: Duration, hang_up: HangUp) -> Flood {
        use std::sync::atomic::{AtomicU64, Ordering};
        let sent = std::sync::Arc::new(AtomicU64::new(0));
        let threads = (0..2)
            .map(|_| {
                let sent = std::sync::Arc::clone(&sent);
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut junk = greeting("PLAIN");
                    junk.extend(hello("mallory", "not the password"));
                    let mut waiting = std::collections::VecDeque::new();
                    while started.elapsed() < duration {
                        if let Ok(mut stream) = connect_from(ATTACKER, port)
                            && stream.write_all(&junk).is_ok()
                        {
                            sent.fetch_add(1, Ordering::Relaxed);
                            if hang_up == HangUp::Stay {
                                waiting.push_back(stream);
                                if waiting.len() > 256 {
                                    waiting.pop_front();
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let flood = Flood { sent, threads };
        let started = Instant::now();
        while flood.sent.load(Ordering::Relaxed) < 1_000 {
            assert!(started.elapsed() < duration, "the flood never got going");
            std::thread::yield_now();
        }
        flood
    }

    pub fn is_on(&self) -> bool {
        self.threads.iter().any(|t| !t.is_finished())
    }

    /// Waits for the end; how many logins were sent.
    pub fn finish(self) -> u64 {
        for thread in self.threads {
            thread.join().expect("the flood");
        }
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}
