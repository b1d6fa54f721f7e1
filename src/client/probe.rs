//! What is at an endpoint, when a handshake ends with no reason said.
//!
//! libzmq's monitor says "handshake failed, no detail" both for a peer that
//! does not speak ZeroMQ and for a ZeroMQ peer with other security that
//! closed first (it read our mechanism before we read its own); and it says
//! nothing at all of a peer whose kind of socket does not go with ours (a
//! publisher). Two small looks tell them apart for certain:
//!
//! - [`greeting`] reads the peer's ZMTP greeting, which names its security
//!   mechanism, without ever sending ours: the peer sends the rest of its
//!   greeting once it has our signature and major version (ZMTP 3, 23/ZMTP).
//! - [`is_publisher`] opens a subscriber there: only a PUB socket finishes
//!   that handshake.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::monitor::MonitorEvent;

use super::login::Login;

/// How long a look waits: on a network a peer answers in a round trip or two.
pub(super) const PROBE_WAIT: Duration = Duration::from_secs(1);

/// What a peer's greeting says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Greeting {
    /// A ZMTP 3 peer with this security mechanism (`NULL`, `PLAIN`, `CURVE`).
    Mechanism(String),
    /// Bytes that are not a ZMTP greeting.
    NotZeroMq,
    /// Nothing to tell: no connection, silence, or a transport not looked at.
    Unknown,
}

/// The security mechanism a client with `login` speaks.
pub(super) fn mechanism(login: Option<&Login>) -> &'static str {
    match login {
        None => "NULL",
        Some(Login::Plain { .. }) => "PLAIN",
        Some(Login::Curve { .. }) => "CURVE",
    }
}

/// The signature of a versioned ZMTP peer, then major version 3: enough for
/// the peer to send its whole greeting, too little for it to read ours.
const SIGNATURE_AND_MAJOR: [u8; 11] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3];

/// Bytes of a ZMTP 3 greeting; its mechanism is bytes 12 to 31.
const GREETING_LEN: usize = 64;

/// Reads the greeting of the peer at `endpoint` (`tcp://` or `ipc://`).
pub(super) fn greeting(endpoint: &str) -> Greeting {
    let deadline = Instant::now() + PROBE_WAIT;
    let read = if let Some(path) = endpoint.strip_prefix("ipc://") {
        std::os::unix::net::UnixStream::connect(path).and_then(|mut stream| {
            stream.set_read_timeout(Some(PROBE_WAIT))?;
            stream.set_write_timeout(Some(PROBE_WAIT))?;
            exchange(&mut stream, deadline)
        })
    } else {
        let Some((host, port)) = crate::endpoint::tcp_host_port(endpoint) else {
            return Greeting::Unknown;
        };
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return Greeting::Unknown;
        };
        let address = std::net::SocketAddr::new(ip, port);
        std::net::TcpStream::connect_timeout(&address, PROBE_WAIT).and_then(|mut stream| {
            stream.set_read_timeout(Some(PROBE_WAIT))?;
            stream.set_write_timeout(Some(PROBE_WAIT))?;
            exchange(&mut stream, deadline)
        })
    };
    match read {
        Ok(bytes) => parse_greeting(&bytes),
        Err(_) => Greeting::Unknown,
    }
}

/// Sends our signature and reads what comes back, up to a greeting's
/// length, until the peer closes or `deadline`.
fn exchange(stream: &mut (impl Read + Write), deadline: Instant) -> std::io::Result<Vec<u8>> {
    stream.write_all(&SIGNATURE_AND_MAJOR)?;
    let mut bytes = Vec::with_capacity(GREETING_LEN);
    let mut buffer = [0u8; GREETING_LEN];
    while bytes.len() < GREETING_LEN && Instant::now() < deadline {
        match stream.read(&mut buffer[..GREETING_LEN - bytes.len()]) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A peer that has said something and then nothing more: judge that.
            Err(_) if !bytes.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(bytes)
}

/// What `bytes`, the start of a peer's answer, say about it.
fn parse_greeting(bytes: &[u8]) -> Greeting {
    if bytes.is_empty() {
        return Greeting::Unknown;
    }
    // A ZMTP signature: 0xFF, eight bytes, and a last one with its low bit set.
    let signature_so_far = bytes[0] == 0xFF && bytes.get(9).is_none_or(|b| b & 1 == 1);
    if !signature_so_far {
        return Greeting::NotZeroMq;
    }
    match bytes.get(12..32) {
        Some(name) if bytes[10] >= 3 => {
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            Greeting::Mechanism(String::from_utf8_lossy(name).into_owned())
        }
        Some(_) => Greeting::NotZeroMq,
        None => Greeting::Unknown,
    }
}

/// Whether the endpoint is a publisher: a subscriber, logged in as `login`,
/// finishes its handshake there (only PUB sockets take one) within
/// [`PROBE_WAIT`]. libzmq's events do not carry the peer's kind of socket.
pub(super) fn is_publisher(context: &zmq::Context, endpoint: &str, login: Option<&Login>) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    let probe = || -> Result<bool, zmq::Error> {
        let socket = context.socket(zmq::SUB)?;
        socket.set_linger(0)?;
        socket.set_ipv6(true)?;
        if let Some(login) = login {
            login.apply(&socket)?;
        }
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let number = PROBES.fetch_add(1, Ordering::Relaxed);
        let watch = format!("inproc://status-client-probe-{number}");
        socket.monitor(
            &watch,
            zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED as i32
                | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as i32
                | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as i32
                | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH as i32
                | zmq_sys::ZMQ_EVENT_DISCONNECTED as i32,
        )?;
        let monitor = context.socket(zmq::PAIR)?;
        monitor.set_linger(0)?;
        let wait_ms = i32::try_from(PROBE_WAIT.as_millis()).unwrap_or(i32::MAX);
        monitor.set_rcvtimeo(wait_ms)?;
        monitor.connect(&watch)?;
        socket.connect(endpoint)?;
        let frames = match monitor.recv_multipart(0) {
            Ok(frames) => frames,
            Err(zmq::Error::EAGAIN) => return Ok(false),
            Err(e) => return Err(e),
        };
        let event = MonitorEvent::parse(&frames).map(|happened| happened.event);
        Ok(event == Some(zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
    };
    probe().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zmtp(mechanism: &str) -> Vec<u8> {
        let mut out = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0];
        let mut name = [0u8; 20];
        name[..mechanism.len()].copy_from_slice(mechanism.as_bytes());
        out.extend_from_slice(&name);
        out.extend_from_slice(&[0; 32]);
        out
    }

    #[test]
    fn a_greeting_names_its_mechanism_and_anything_else_is_not_zeromq() {
        assert_eq!(
            parse_greeting(&zmtp("PLAIN")),
            Greeting::Mechanism("PLAIN".into())
        );
        assert_eq!(
            parse_greeting(&zmtp("NULL")),
            Greeting::Mechanism("NULL".into())
        );
        assert_eq!(
            parse_greeting(b"HTTP/1.1 400 Bad Request\r\n"),
            Greeting::NotZeroMq
        );
        assert_eq!(
            parse_greeting(b"SSH-2.0-OpenSSH_9.6\r\n"),
            Greeting::NotZeroMq
        );
        assert_eq!(
            parse_greeting(&zmtp("PLAIN")[..11]),
            Greeting::Unknown,
            "cut short"
        );
        assert_eq!(parse_greeting(b""), Greeting::Unknown);
        let mut zmtp2 = zmtp("NULL");
        zmtp2[10] = 1;
        assert_eq!(parse_greeting(&zmtp2), Greeting::NotZeroMq, "not ZMTP 3");
    }

    #[test]
    fn a_live_peer_is_read_without_it_reading_our_mechanism() {
        let context = zmq::Context::new();
        let server = context.socket(zmq::REP).expect("REP");
        server.set_linger(0).expect("LINGER");
        server.set_plain_server(true).expect("PLAIN server");
        server.bind("tcp://127.0.0.1:*").expect("bind");
        let endpoint = server
            .get_last_endpoint()
            .expect("endpoint")
            .expect("UTF-8");
        assert_eq!(greeting(&endpoint), Greeting::Mechanism("PLAIN".into()));
        let publisher = context.socket(zmq::PUB).expect("PUB");
        publisher.set_linger(0).expect("LINGER");
        publisher.bind("tcp://127.0.0.1:*").expect("bind");
        let at = publisher
            .get_last_endpoint()
            .expect("endpoint")
            .expect("UTF-8");
        assert!(is_publisher(&context, &at, None));
        assert!(!is_publisher(&context, &endpoint, None));
    }
}
