//! The fsync thread of `--fsync always`: its own unit, as redis keeps `bio.c`
//! beside `aof.c`. The log queues work for it by offset; it wakes the serve
//! loop through a pipe after each sync. And [`until`]: the last fsync of a
//! stop, on a thread of its own, waited for until a deadline only.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Longest a dropped syncer waits for its thread: a disk that does not
/// answer must not hold the process (a stop waits with [`Syncer::stop`]).
const DROP_WAIT: Duration = Duration::from_secs(1);

/// What the server has written and the sync thread should make durable.
#[derive(Debug)]
struct Wanted {
    /// Sync the file up to here.
    offset: u64,
    /// The file to sync (compaction replaces it, only when nothing is in flight).
    file: Arc<File>,
    stop: bool,
    /// Set by the sync thread when an fsync fails; it then stops.
    error: Option<io::Error>,
}

/// State shared with the sync thread.
#[derive(Debug)]
struct SyncShared {
    wanted: Mutex<Wanted>,
    more: Condvar,
    /// Everything before this offset is on disk.
    synced: AtomicU64,
}

/// Forces the log to disk on a thread of its own (`--fsync always`): group
/// commit by offset, as a database log does. The server writes each batch as
/// soon as it has it; the thread syncs up to the newest offset written each
/// time it is behind, so syncs run back to back and each covers every batch
/// written while the previous one ran.
#[derive(Debug)]
pub(super) struct Syncer {
    shared: Arc<SyncShared>,
    /// Readable after each sync: the server's poll waits on it.
    pub(super) wake: io::PipeReader,
    thread: Option<thread::JoinHandle<()>>,
    /// Disconnected once the thread has ended: a join that cannot hang.
    ended: mpsc::Receiver<()>,
}

impl Syncer {
    /// Starts the thread on `file`, whose first `synced` bytes are on disk;
    /// under `hang` (a test's fault) its fsyncs never return.
    pub(super) fn start(file: Arc<File>, synced: u64, hang: bool) -> io::Result<Syncer> {
        let (wake, mut waker) = io::pipe()?;
        let shared = Arc::new(SyncShared {
            wanted: Mutex::new(Wanted {
                offset: synced,
                file,
                stop: false,
                error: None,
            }),
            more: Condvar::new(),
            synced: AtomicU64::new(synced),
        });
        let state = Arc::clone(&shared);
        let (ending, ended) = mpsc::channel::<()>();
        let thread = thread::Builder::new().name("fsync".into()).spawn(move || {
            // Dropped when the thread ends, however it ends.
            let _ending = ending;
            loop {
                let (offset, file) = {
                    let Ok(mut wanted) = state.wanted.lock() else {
                        return;
                    };
                    while wanted.offset <= state.synced.load(Ordering::Acquire) && !wanted.stop {
                        wanted = match state.more.wait(wanted) {
                            Ok(wanted) => wanted,
                            Err(_) => return,
                        };
                    }
                    if wanted.offset <= state.synced.load(Ordering::Acquire) {
                        return; // stopping, and nothing left to sync
                    }
                    (wanted.offset, Arc::clone(&wanted.file))
                };
                match super::faults::sync_data(&file, hang) {
                    Ok(()) => state.synced.store(offset, Ordering::Release),
                    Err(error) => {
                        if let Ok(mut wanted) = state.wanted.lock() {
                            wanted.error = Some(error);
                        }
                        let _ = waker.write_all(&[1]);
                        return;
                    }
                }
                if waker.write_all(&[1]).is_err() {
                    return;
                }
            }
        })?;
        Ok(Syncer {
            shared,
            wake,
            thread: Some(thread),
            ended,
        })
    }

    /// Asks for everything up to `offset` of `file` to be synced.
    pub(super) fn request(&self, offset: u64, file: &Arc<File>) {
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.offset = offset;
            if !Arc::ptr_eq(&wanted.file, file) {
                wanted.file = Arc::clone(file);
            }
        }
        self.shared.more.notify_one();
    }

    pub(super) fn synced(&self) -> u64 {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// Starts over on a new file whose first `offset` bytes are already synced
    /// (after compaction, when nothing is in flight: offsets restart with it).
    pub(super) fn restart(&self, file: &Arc<File>, offset: u64) {
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.file = Arc::clone(file);
            wanted.offset = offset;
            self.shared.synced.store(offset, Ordering::Release);
        }
    }

    /// Consumes the wake-ups that made the pipe readable; returns a failure, if any.
    pub(super) fn take_wakeups(&mut self) -> io::Result<()> {
        let mut bytes = [0; 64];
        // Only called when poll said readable: a byte is there, or the end of the
        // pipe if the thread is gone.
        if self.wake.read(&mut bytes)? == 0 {
            return Err(io::Error::other("the fsync thread has stopped"));
        }
        match self.shared.wanted.lock() {
            Ok(mut wanted) => wanted.error.take().map_or(Ok(()), Err),
            Err(_) => Err(io::Error::other("the fsync thread panicked")),
        }
    }

    /// Tells the thread to sync what is still wanted and end, and waits for
    /// it until `deadline`; `false` if it has not ended by then (its fsync
    /// does not return), and it is left behind. [`Syncer::synced`] still
    /// says how far it got.
    pub(super) fn stop(&mut self, deadline: Instant) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.stop = true;
        }
        self.shared.more.notify_one();
        let left = deadline.saturating_duration_since(Instant::now());
        match self.ended.recv_timeout(left) {
            // Nothing is ever sent: the sender's drop says the thread has ended.
            Err(mpsc::RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = thread.join();
                true
            }
            // Dropping the handle detaches the thread; the process ends it.
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // The thread syncs what is still wanted, then ends.
        self.stop(Instant::now() + DROP_WAIT);
    }
}

/// Runs `work` on a thread of its own and waits for it until `deadline`;
/// `None` if it has not finished by then (it is left running: the process
/// ends it). Where no thread can be started, it runs here, unbounded: the
/// state on disk matters more than the bound.
pub(super) fn until<T, W>(deadline: Instant, work: W) -> Option<T>
where
    T: Send + 'static,
    W: FnOnce() -> T + Send + 'static,
{
    let work = Arc::new(Mutex::new(Some(work)));
    let theirs = Arc::clone(&work);
    let (done, result) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("fsync-close".into())
        .spawn(move || {
            if let Some(work) = theirs.lock().ok().and_then(|mut w| w.take()) {
                let _ = done.send(work());
            }
        });
    if spawned.is_err() {
        return work
            .lock()
            .ok()
            .and_then(|mut w| w.take())
            .map(|work| work());
    }
    result
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()
}
