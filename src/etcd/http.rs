//! A small HTTP/1.1 client for etcd's JSON gateway: POST a JSON body and read
//! the answer, or a stream of answers (a watch), over one kept-alive
//! connection. Every read and write has a deadline: a member that stops
//! answering (paused, cut off) costs a bounded wait, never a hang.
//!
//! Written here rather than taken from a crate: etcd needs POST with a
//! Content-Length, chunked and sized answers, and a stream read line by line
//! with a poll for the stop flag between reads — about as much code as
//! configuring a client crate for it, and nothing new to build.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::chunks::Chunks;
use super::transport::{Transport, secure};

/// Largest answer taken: a range of the biggest board (100 000 names of 4 KB,
/// base64 and JSON around them) fits; a peer sending more is cut off.
const MAX_BODY: usize = 1 << 30;

/// Largest head (status line and headers) taken.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// One line of a stream longer than this ends the stream (a watch answer is
/// one line; a big board's resync is a range, not a watch line).
const MAX_LINE: usize = 256 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// Connecting, writing or reading failed, or the peer closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// No answer before the deadline.
    #[error("no answer in time")]
    TimedOut,
    /// The peer said something that is not HTTP as we speak it.
    #[error("not an HTTP answer: {0}")]
    Malformed(&'static str),
    /// An answer with a status other than 200; its body says why.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The body, as text (etcd's JSON error).
        body: String,
    },
}

/// `http://HOST:PORT` or `https://HOST:PORT` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// As given, for messages.
    pub(crate) text: String,
    /// `HOST:PORT`, for the Host header and the resolver.
    authority: String,
    /// `https://`: TLS, the host checked against the member's certificate.
    pub(crate) tls: bool,
}

impl Url {
    /// Parses `http://HOST:PORT` or `https://HOST:PORT` (a trailing `/` is allowed).
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        let (rest, tls) = if let Some(rest) = text.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (rest, true)
        } else {
            return Err(format!("{text}: not an http(s)://HOST:PORT URL"));
        };
        let authority = rest.trim_end_matches('/');
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || authority.contains('/') || authority.contains('@') {
            return Err(format!("{text}: not an http(s)://HOST:PORT URL"));
        }
        Ok(Url {
            text: text.to_owned(),
            authority: authority.to_owned(),
            tls,
        })
    }

    /// The host, as a certificate names it (an IP address without brackets).
    #[cfg_attr(not(feature = "etcd-tls"), allow(dead_code))]
    pub(super) fn host(&self) -> &str {
        let host = self
            .authority
            .rsplit_once(':')
            .map_or(self.authority.as_str(), |(host, _)| host);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.authority.to_socket_addrs()?.collect())
    }
}

/// An answer with status 200.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Vec<u8>,
}

/// One kept-alive connection to one etcd member.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: Transport,
    host: String,
    /// Bytes read past the last answer's end (none, with a well-behaved peer).
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects, trying each address the host resolves to, each within
    /// `timeout`; over TLS for an `https://` URL (the handshake happens with
    /// the first request, under its deadline).
    pub(crate) fn open(
        url: &Url,
        tls: Option<&super::tls::Tls>,
        timeout: Duration,
    ) -> Result<Connection, HttpError> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "resolves to no address");
        for address in url.addresses()? {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(stream) => {
                    // Small requests answered at once: no Nagle delay.
                    stream.set_nodelay(true)?;
                    return Ok(Connection {
                        stream: secure(url, tls, stream)?,
                        host: url.authority.clone(),
                        buffer: Vec::new(),
                    });
                }
                Err(err) => last = err,
            }
        }
        Err(HttpError::Io(last))
    }

    /// POSTs `body` to `path` and reads the whole answer, all by `deadline`.
    pub(crate) fn post(
        &mut self,
        path: &str,
        body: &[u8],
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<Answer, HttpError> {
        self.send(path, body, token, deadline)?;
        let head = self.read_head(deadline)?;
        let mut out = Vec::new();
        match head.framing {
            Framing::Length(length) => {
                if length > MAX_BODY {
                    return Err(HttpError::Malformed("answer too large"));
                }
                while self.buffer.len() < length {
                    self.fill(deadline)?;
                }
                out.extend(self.buffer.drain(..length));
            }
            Framing::Chunked => {
                let mut chunks = Chunks::default();
                loop {
                    let used = chunks.feed(&self.buffer, &mut out)?;
                    self.buffer.drain(..used);
                    if chunks.done() {
                        break;
                    }
                    if out.len() > MAX_BODY {
                        return Err(HttpError::Malformed("answer too large"));
                    }
                    self.fill(deadline)?;
                }
            }
        }
        if head.status != 200 {
            return Err(HttpError::Status {
                status: head.status,
                body: String::from_utf8_lossy(&out).into_owned(),
            });
        }
        Ok(Answer { body: out })
    }

    /// POSTs `body` to `path` and turns the connection into a stream of
    /// lines (etcd's watch: one JSON answer a line), once its head is read.
    pub(crate) fn stream(
        mut self,
        path: &str,
        body: &[u8],
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<Stream, HttpError> {
        self.send(path, body, token, deadline)?;
        let head = self.read_head(deadline)?;
        if head.status != 200 {
            // An error answer is short; read it for its text.
            let mut text = std::mem::take(&mut self.buffer);
            let _ = self
                .stream
                .tcp()
                .set_read_timeout(Some(Duration::from_millis(200)));
            let _ = (&mut self.stream).take(4096).read_to_end(&mut text);
            return Err(HttpError::Status {
                status: head.status,
                body: String::from_utf8_lossy(&text).into_owned(),
            });
        }
        Ok(Stream {
            chunked: matches!(head.framing, Framing::Chunked),
            chunks: Chunks::default(),
            decoded: Vec::new(),
            connection: self,
        })
    }

    fn send(
        &mut self,
        path: &str,
        body: &[u8],
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<(), HttpError> {
        let mut request = Vec::with_capacity(body.len() + 200);
        let _ = write!(
            request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(token) = token {
            // etcd takes the token as it is, not as `Bearer …`.
            let _ = write!(request, "Authorization: {token}\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        self.stream
            .tcp()
            .set_write_timeout(Some(remaining(deadline)?))?;
        self.stream.write_all(&request).map_err(timed)?;
        Ok(())
    }

    /// Reads more bytes into the buffer, waiting until `deadline` at most.
    fn fill(&mut self, deadline: Instant) -> Result<(), HttpError> {
        self.stream
            .tcp()
            .set_read_timeout(Some(remaining(deadline)?))?;
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).map_err(timed)?;
        if read == 0 {
            return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    fn read_head(&mut self, deadline: Instant) -> Result<Head, HttpError> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = parse_head(&self.buffer[..end + 4])?;
                self.buffer.drain(..end + 4);
                return Ok(head);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(HttpError::Malformed("head too large"));
            }
            self.fill(deadline)?;
        }
    }
}

/// How long until `deadline`, or a time-out if it has passed.
fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HttpError::TimedOut);
    }
    Ok(left)
}

/// A read or write that timed out says so; others stay I/O errors.
fn timed(err: io::Error) -> HttpError {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::TimedOut,
        _ => HttpError::Io(err),
    }
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

struct Head {
    status: u16,
    framing: Framing,
}

enum Framing {
    Length(usize),
    Chunked,
}

fn parse_head(bytes: &[u8]) -> Result<Head, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(HttpError::Malformed("bad status line or headers")),
    }
    let status = response
        .code
        .ok_or(HttpError::Malformed("no status code"))?;
    let mut framing = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if header.value.eq_ignore_ascii_case(b"chunked") {
                framing = Some(Framing::Chunked);
            } else {
                return Err(HttpError::Malformed("unknown transfer encoding"));
            }
        } else if header.name.eq_ignore_ascii_case("content-length") && framing.is_none() {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or(HttpError::Malformed("bad Content-Length"))?;
            framing = Some(Framing::Length(length));
        }
    }
    Ok(Head {
        status,
        // etcd always frames its answers; an unframed one would end at close,
        // which a kept-alive connection cannot tell from a slow peer.
        framing: framing.ok_or(HttpError::Malformed("answer without a length"))?,
    })
}

/// A connection turned into a stream of lines.
#[derive(Debug)]
pub(crate) struct Stream {
    connection: Connection,
    chunked: bool,
    chunks: Chunks,
    /// Body bytes decoded, not yet returned as a line.
    decoded: Vec<u8>,
}

impl Stream {
    /// The next line, without its newline; `Ok(None)` if none came by
    /// `until` (the stream is still open: ask again). The end of the
    /// stream, or a peer that closes, is an error.
    pub(crate) fn next_line(&mut self, until: Instant) -> Result<Option<Vec<u8>>, HttpError> {
        loop {
            if let Some(end) = self.decoded.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.decoded.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.decoded.len() > MAX_LINE {
                return Err(HttpError::Malformed("line too long"));
            }
            if self.chunked && self.chunks.done() {
                return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let buffered = std::mem::take(&mut self.connection.buffer);
            if buffered.is_empty() {
                match self.connection.fill(until) {
                    Ok(()) => {}
                    Err(HttpError::TimedOut) => return Ok(None),
                    Err(err) => return Err(err),
                }
                continue;
            }
            if self.chunked {
                let used = self.chunks.feed(&buffered, &mut self.decoded)?;
                self.connection.buffer = buffered[used..].to_vec();
                if used == 0 {
                    // A partial size line: wait for the rest of it.
                    match self.connection.fill(until) {
                        Ok(()) => {}
                        Err(HttpError::TimedOut) => return Ok(None),
                        Err(err) => return Err(err),
                    }
                }
            } else {
                self.decoded.extend_from_slice(&buffered);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_port_are_taken() {
        assert!(Url::parse("http://127.0.0.1:2379").is_ok());
        let tls = Url::parse("https://[::1]:2379").expect("https");
        assert!(tls.tls);
        assert_eq!(tls.host(), "::1");
        assert!(Url::parse("http://etcd-1.example:2379/").is_ok());
        assert!(Url::parse("http://[::1]:2379").is_ok());
        for bad in [
            "127.0.0.1:2379",
            "http://127.0.0.1",
            "http://user@host:1",
            "http://h:1/x",
            "ftp://h:1",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
