//! The threads that check passwords: a small pool, each at a lower priority
//! than the serve loop, taking logins from the shared [`LoginQueue`] and
//! sending each verdict back to the ZAP handler (libzmq sockets are not to be
//! shared between threads, so only the handler answers libzmq).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::queue::{Login, LoginQueue};
use crate::server::auth::{SharedUsers, Users};
use crate::server::error::{ServerError, socket_error};
use crate::shutdown::Shutdown;
use crate::side_thread::SideThread;

/// Where verdicts go to the handler.
pub(super) const VERDICTS_ENDPOINT: &str = "inproc://status-server-zap-verdicts";

/// How much lower than the serve loop the checkers run (nice steps): under a
/// flood of logins the serve loop has the cores first. Five steps give the
/// checkers a third of a busy core's share (ten would give a tenth, and a
/// login on a machine busy with other work would take a second).
const NICE: i32 = 5;

/// The queue and the signal that it has work.
#[derive(Debug)]
pub(super) struct Waiting {
    queue: Mutex<LoginQueue>,
    ready: Condvar,
}

impl Waiting {
    pub(super) fn new(queue: LoginQueue) -> Arc<Waiting> {
        Arc::new(Waiting {
            queue: Mutex::new(queue),
            ready: Condvar::new(),
        })
    }

    /// The queue, locked; a checker that panicked left it usable.
    pub(super) fn lock(&self) -> MutexGuard<'_, LoginQueue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes a checker: there is a login to verify.
    pub(super) fn notify(&self) {
        self.ready.notify_one();
    }

    /// The next login to verify, waiting for one; `None` once `stop` is raised.
    fn take(&self, stop: &Shutdown) -> Option<Login> {
        let mut queue = self.lock();
        loop {
            if stop.is_triggered() {
                return None;
            }
            if let Some(login) = queue.next(Instant::now()) {
                return Some(login);
            }
            queue = self
                .ready
                .wait_timeout(queue, Shutdown::CHECK_EVERY)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(queue, _)| queue);
        }
    }
}

/// How many checkers: one per core, at least 1 and at most 4 (each holds
/// the hash's memory, 19 MiB at the default cost, while it verifies).
pub(super) fn pool_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

/// Starts a checker that sends its verdicts on a socket of `context`.
pub(super) fn start(
    context: &zmq::Context,
    waiting: Arc<Waiting>,
    users: SharedUsers,
) -> Result<SideThread, ServerError> {
    let verdicts = context
        .socket(zmq::PUSH)
        .map_err(socket_error("create a verdict socket"))?;
    verdicts
        .set_linger(0)
        .map_err(socket_error("set LINGER on a verdict socket"))?;
    verdicts
        .connect(VERDICTS_ENDPOINT)
        .map_err(socket_error("connect a verdict socket"))?;
    SideThread::spawn("login-check", move |stop| {
        crate::sys::lower_thread_priority(NICE);
        while let Some(login) = waiting.take(stop) {
            let accepted = check(&login, &users.current());
            let verdict = [
                login.reply_to,
                login.request_id,
                if accepted {
                    b"200".to_vec()
                } else {
                    b"400".to_vec()
                },
                login.user,
                login.address.into_bytes(),
            ];
            // The handler's socket lives as long as this thread; a send can
            // fail only as the server stops, when no answer matters.
            let _ = verdicts.send_multipart(verdict, 0);
        }
    })
    .map_err(|source| ServerError::Thread {
        name: "login-check",
        source,
    })
}

/// Whether the login's password is its user's (an argon2 verification).
pub(super) fn check(login: &Login, users: &Users) -> bool {
    // A user name that is not UTF-8 is nobody's: the decoy is verified.
    let user = std::str::from_utf8(&login.user).unwrap_or("");
    users.check_password(user, &login.password)
}
