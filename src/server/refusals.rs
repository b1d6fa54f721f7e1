//! Says when clients are turned away because the server has no file
//! descriptor left for their connection (EMFILE, ENFILE): libzmq drops them
//! without a word, so a thread watches the server socket's monitor for
//! failed accepts and logs them, at most once every ten seconds.

use crate::server::log::log_err;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;

use super::side_thread::SideThread;
use super::{ServerError, socket_error};

/// At most one line this often, however many connections are refused.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The watching thread; stopped and joined on drop, before the context ends.
pub(super) struct RefusalWatch {
    _thread: SideThread,
}

impl RefusalWatch {
    /// Watches `socket`'s accepts; `limit` is the open-file limit, for the line.
    pub(super) fn start(
        context: &zmq::Context,
        socket: &zmq::Socket,
        limit: Option<u64>,
    ) -> Result<RefusalWatch, ServerError> {
        let endpoint = "inproc://status-server-accepts";
        socket
            .monitor(endpoint, zmq_sys::ZMQ_EVENT_ACCEPT_FAILED as i32)
            .map_err(socket_error("monitor the server socket"))?;
        let monitor = context
            .socket(zmq::PAIR)
            .map_err(socket_error("create the accept monitor"))?;
        monitor
            .set_linger(0)
            .map_err(socket_error("set LINGER on the accept monitor"))?;
        monitor
            .connect(endpoint)
            .map_err(socket_error("connect the accept monitor"))?;
        SideThread::spawn("accepts", move |stop| watch(&monitor, limit, stop))
            .map(|thread| RefusalWatch { _thread: thread })
    }
}

fn watch(monitor: &zmq::Socket, limit: Option<u64>, stop: &AtomicBool) {
    let mut refused = 0u64;
    let mut last_said: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        match monitor.poll(zmq::POLLIN, Shutdown::CHECK_EVERY_MS.into()) {
            Ok(0) | Err(zmq::Error::EINTR) => {}
            Ok(_) => {
                while let Ok(event) = monitor.recv_multipart(zmq::DONTWAIT) {
                    // First frame: the event (u16) and its value (u32), here an errno.
                    let errno = event
                        .first()
                        .and_then(|f| f.get(2..6))
                        .map(|v| i32::from_ne_bytes([v[0], v[1], v[2], v[3]]));
                    if matches!(errno, Some(libc::EMFILE | libc::ENFILE)) {
                        refused += 1;
                    }
                }
            }
            Err(_) => return,
        }
        if refused > 0 && last_said.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            let limit = limit.map_or_else(|| "?".to_owned(), |l| l.to_string());
            log_err!(
                "warning: turned away client connections ({refused} tries): too many open files \
                 (limit {limit}); raise the hard limit: ulimit -Hn, or LimitNOFILE= in a systemd unit"
            );
            refused = 0;
            last_said = Some(Instant::now());
        }
    }
}
