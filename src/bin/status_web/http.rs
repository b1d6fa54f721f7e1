//! The HTTP side: the application (`app.rs`) served by axum on a
//! two-thread tokio runtime, on a thread of its own, with a heartbeat to
//! every viewer. Connections are accepted and bounded in `accept.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::accept;
use crate::app::{AppState, app};
use crate::connections::Connections;
use crate::error::WebError;

/// How often every viewer gets a heartbeat: the server's clock, and a sign of life
/// for the page's watchdog.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Threads of the runtime: a thousand viewers idle between events.
const WORKERS: usize = 2;

/// The running HTTP side; dropping it stops and joins it.
pub(super) struct Http {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Http {
    /// Listens on `address` and serves `state` from a thread of its own,
    /// with at most `connections` open at once; and says where it listens
    /// (port 0 picks one).
    pub(super) fn start(
        address: SocketAddr,
        state: AppState,
        connections: usize,
    ) -> Result<(Http, SocketAddr), WebError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(WebError::Runtime)?;
        let (stop, stopped) = oneshot::channel();
        let listen_error = |source| WebError::Listen { address, source };
        let (listener, listening) = {
            let _entered = runtime.enter();
            let listener = accept::listen(address).map_err(listen_error)?;
            let listening = listener.local_addr().map_err(listen_error)?;
            (listener, listening)
        };
        let thread = spawn("http", move || {
            runtime.block_on(serve(listener, state, connections, stopped));
            // Event streams never end by themselves: do not wait for them.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
        let http = Http {
            stop: Some(stop),
            thread: Some(thread),
        };
        Ok((http, listening))
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves until `stopped`, with a heartbeat to every viewer.
async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    connections: usize,
    stopped: oneshot::Receiver<()>,
) {
    let gateway = Arc::clone(&state.gateway);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            gateway.heartbeat();
        }
    });
    tokio::select! {
        () = accept::accept_loop(listener, app(state), Connections::new(connections)) => {}
        _ = stopped => {}
    }
}

/// Runs `body` on a named thread; joined by the caller.
fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, WebError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(WebError::Runtime)
}
