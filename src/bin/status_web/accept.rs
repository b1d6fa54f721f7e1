//! The accept loop, and each connection served by hyper with the bounds
//! `axum::serve` does not offer (`docs/WEB.md`, Exposure):
//!
//! - at most [`Connections`]' cap open at once, below the open-file limit;
//! - [`HEAD_TIMEOUT`] to send a request head, whether the connection is new
//!   or waits between requests (hyper arms the one timer for both);
//! - [`WRITE_STALL`] for a peer that takes none of the bytes sent to it;
//! - a pause after an accept that fails for want of descriptors, not a spin.
//!
//! Every request goes to the application (`app.rs`), which checks its Host
//! before any route and says `nosniff` on whatever comes back.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Sleep;

use crate::connections::{Connection, Connections, Slot};

/// From a connection's opening, or the end of its last response, to the
/// end of the next request head. It is also the keep-alive idle timeout:
/// hyper starts the same timer when a kept-alive connection waits for its
/// next request. A browser sends its request at once; a peer that sends
/// nothing, or a header a byte at a time, is closed.
pub(super) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A peer that takes none of the bytes sent to it for this long is closed:
/// an event stream nobody reads, a board nobody downloads.
pub(super) const WRITE_STALL: Duration = Duration::from_secs(30);

/// The request line and headers: a browser's are 1–2 KiB; hyper answers 431 beyond.
const MAX_HEAD: usize = 16 * 1024;

/// Bytes hyper buffers per connection, each way: with the cap, what a
/// thousand peers can make the gateway hold.
const MAX_BUFFER: usize = 64 * 1024;

/// After an accept fails for want of a resource (descriptors, memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// Connections the kernel completes and queues for the accept loop: a
/// thousand wall screens reconnecting at once after a restart, where std's
/// 128 would drop the rest's SYNs and make them retry a second later.
const BACKLOG: u32 = 1024;

/// Listens on `address`; in the runtime's context.
pub(super) fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std's bind does: a restarted gateway takes its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Accepts connections for ever, each served by `app` on a task of its own.
pub(super) async fn accept_loop(listener: TcpListener, app: Router, connections: Arc<Connections>) {
    let mut backing_off = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) if is_one_connections_failure(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: accept would fail again at
                // once, and a loop of it would take a core.
                if !backing_off {
                    eprintln!(
                        "status_web: cannot accept connections: {e}; trying again every {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    );
                }
                backing_off = true;
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if backing_off {
            eprintln!("status_web: accepting connections again");
            backing_off = false;
        }
        // At the cap this waits for room; the listen queue holds the rest.
        let slot = connections.admit().await;
        tokio::spawn(serve_connection(stream, app.clone(), slot));
    }
}

/// The peer's own trouble (it hung up before the accept): nothing to wait for.
fn is_one_connections_failure(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Serves one connection until it ends, times out, or is closed for room.
async fn serve_connection(stream: TcpStream, app: Router, slot: Slot) {
    let connection = slot.connection().clone();
    let service =
        hyper::service::service_fn(move |request| answer(app.clone(), connection.clone(), request));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_BUFFER);
    let stream = WriteStall::new(stream, WRITE_STALL);
    let serving = builder.serve_connection(TokioIo::new(stream), service);
    // A connection's errors are its peer's (a timeout, a bad request):
    // nothing for the operator, and not to be printed at a peer's pace.
    tokio::select! {
        _ = serving => {}
        _ = slot.connection().closed() => {}
    }
    drop(slot);
}

/// One request, through `app`, its connection busy meanwhile (not to be
/// closed for room) and known to the handlers (an event stream keeps it busy).
async fn answer(
    app: Router,
    connection: Connection,
    mut request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let _busy = connection.busy();
    request.extensions_mut().insert(connection);
    TowerToHyperService::new(app).call(request).await
}

/// A socket whose writes fail once the peer has taken nothing for `after`.
struct WriteStall<S> {
    stream: S,
    after: Duration,
    /// Started when a write could not proceed; gone with the next that does.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStall<S> {
    fn new(stream: S, after: Duration) -> WriteStall<S> {
        WriteStall {
            stream,
            after,
            stalled: None,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(self.after)));
        // Polling the timer wakes this task when it fires, and the write is tried again.
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took nothing sent to it",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that takes nothing (or everything): a write never proceeds (or always does).
    struct Peer {
        takes: bool,
    }

    impl AsyncWrite for Peer {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            match self.takes {
                true => Poll::Ready(Ok(buf.len())),
                false => Poll::Pending,
            }
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn write(stream: &mut WriteStall<Peer>) -> io::Result<usize> {
        std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, b"event")).await
    }

    #[test]
    fn a_write_the_peer_takes_nothing_of_fails_after_the_stall() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let stall = Duration::from_millis(100);
        runtime.block_on(async {
            let mut taking = WriteStall::new(Peer { takes: true }, stall);
            assert_eq!(write(&mut taking).await.expect("taken"), 5);
            let mut stuck = WriteStall::new(Peer { takes: false }, stall);
            let started = std::time::Instant::now();
            let error = write(&mut stuck).await.expect_err("the peer took nothing");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= stall, "{:?}", started.elapsed());
            // Once the peer takes bytes again, the stall is forgotten.
            stuck.stream.takes = true;
            assert_eq!(write(&mut stuck).await.expect("taken"), 5);
            assert!(stuck.stalled.is_none());
        });
    }
}
