//! The calls into C that the programs make beyond what std and rust-zmq
//! wrap: the open-file limit, the allocator's tunables, a thread's priority,
//! a socket's peer and its shutdown, the user we act as, the terminal's size,
//! a libzmq option rust-zmq lacks, and the board sent as a reply without a
//! copy. This is the crate's one home for
//! `unsafe`; each block says why it is sound.

use std::ffi::c_void;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

/// The open-file limit a program runs with, and the one it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit now.
    pub limit: u64,
    /// The soft limit before [`raise_open_file_limit`].
    pub before: u64,
}

impl OpenFiles {
    /// Whether the limit was raised.
    pub fn raised(&self) -> bool {
        self.limit > self.before
    }
}

/// Raises the soft open-file limit to the hard one, as Redis does for its
/// maxclients: every client connection is a descriptor, and the common soft
/// limit of 1 024 would turn clients away long before the machine must.
/// `None` when the limit cannot be read.
pub fn raise_open_file_limit() -> Option<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes the struct it is given, which lives here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let before = limit.rlim_cur;
    // No hard limit: the kernel's fs.nr_open (1 Mi by default) is the real one.
    let wanted = match limit.rlim_max {
        libc::RLIM_INFINITY => 1 << 20,
        hard => hard,
    };
    if wanted > before {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads the struct it is given, which lives here.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(OpenFiles {
                limit: wanted,
                before,
            });
        }
    }
    Some(OpenFiles {
        limit: before,
        before,
    })
}

/// Blocks of 1 MiB and more (a 100 000-entry reply is 4 MB) are mapped for
/// themselves and given back when freed. glibc would raise this threshold
/// after the first large block is freed (the state file's bytes, read at
/// start), and from then on every freed reply would stay resident: 4 MB at
/// 100 000 entries, 40 bytes an entry. Below 1 MiB (10 000 entries: 360 KB
/// a reply) blocks still come from the heap and are reused.
pub fn map_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Lowers the calling thread's scheduling priority by `nice` steps (Linux
/// schedules threads one by one, so only this thread is affected): work that
/// an unauthenticated peer can cause then yields the cores to the work of
/// clients already served. Raising one's nice value needs no privilege;
/// failing to is harmless, so it is not reported.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid(2) and setpriority(2) take and return plain integers.
    unsafe {
        let thread = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, thread as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, now + nice);
    }
}

/// The user this process acts as, who owns what it creates.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// The rows and columns of the terminal on standard output; `None` when it
/// is no terminal (or says 0).
pub(crate) fn terminal_size() -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes the winsize it is given, which lives here.
    let asked = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (asked && size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// Shuts a connected socket down both ways, leaving its descriptor to its
/// owner (libzmq), which then sees the connection end and closes it.
pub(crate) fn shut_down_socket(fd: RawFd) {
    // SAFETY: shutdown(2) takes a descriptor number and flags; on a number
    // that is no socket (any more) it fails and changes nothing.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// The peer address of a connected socket.
pub(crate) fn peer_address(fd: RawFd) -> Option<IpAddr> {
    // SAFETY: getpeername(2) writes at most `len` bytes into the storage,
    // which lives here and is zeroed; the family then says which struct it is.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(fd, (&raw mut storage).cast(), &mut len) != 0 {
            return None;
        }
        match i32::from(storage.ss_family) {
            libc::AF_INET => {
                let v4 = &*(&raw const storage).cast::<libc::sockaddr_in>();
                Some(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 => {
                let v6 = &*(&raw const storage).cast::<libc::sockaddr_in6>();
                let address = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
                Some(
                    address
                        .to_ipv4_mapped()
                        .map_or(IpAddr::V6(address), IpAddr::V4),
                )
            }
            _ => None,
        }
    }
}

/// ZMQ_ZAP_ENFORCE_DOMAIN, which rust-zmq does not wrap (it is a draft in zmq.h,
/// and a plain option in libzmq since 4.3).
pub(crate) fn set_zap_enforce_domain(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    const ZMQ_ZAP_ENFORCE_DOMAIN: std::ffi::c_int = 93;
    let on: std::ffi::c_int = 1;
    // SAFETY: a live socket, and a pointer to an int with its size, as
    // zmq_setsockopt(3) takes them for this option.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            ZMQ_ZAP_ENFORCE_DOMAIN,
            (&raw const on).cast(),
            std::mem::size_of::<std::ffi::c_int>(),
        )
    };
    match rc {
        0 => Ok(()),
        // SAFETY: reads the calling thread's errno as libzmq set it.
        _ => Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })),
    }
}

// ---- the board sent as a reply without a copy ----
//
// The board is its own encoded reply (`board.rs`), held in a reference-
// counted buffer. A reply hands libzmq one more reference instead of a copy
// (`zmq_msg_init_data` with a function that drops it), and the board copies
// its buffer before a change only while a reply still holds it. rust-zmq has
// no safe way to build such a message.

/// The server socket as libzmq knows it, for the one send rust-zmq cannot make.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawSocket(*mut c_void);

impl RawSocket {
    /// The raw handle of `socket`, which must outlive every use of it.
    pub(crate) fn of(socket: &mut zmq::Socket) -> RawSocket {
        RawSocket(socket.as_mut_ptr())
    }
}

/// Called by libzmq (on any of its threads) once it no longer needs the data.
unsafe extern "C" fn release(_data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Arc::into_raw` of `send_shared`, and libzmq calls
    // this exactly once per message.
    drop(unsafe { Arc::from_raw(hint.cast_const().cast::<Vec<u8>>()) });
}

/// Sends `body` as the last frame of a message on `socket` without copying it.
pub(crate) fn send_shared(socket: RawSocket, body: Arc<Vec<u8>>) -> Result<(), zmq::Error> {
    let (data, len) = (body.as_ptr().cast_mut().cast::<c_void>(), body.len());
    let hint = Arc::into_raw(body).cast_mut().cast::<c_void>();
    let mut message = zmq_sys::zmq_msg_t::default();
    // SAFETY: `data` stays valid while `hint` holds its Arc; libzmq only reads
    // it, and calls `release` once when done. On a failed init libzmq does not
    // call it, so the reference is dropped here; a failed send is closed, which
    // calls it. `socket` outlives this call (RawSocket::of).
    unsafe {
        if zmq_sys::zmq_msg_init_data(&mut message, data, len, Some(release), hint) != 0 {
            drop(Arc::from_raw(hint.cast_const().cast::<Vec<u8>>()));
            return Err(zmq::Error::from_raw(zmq_sys::zmq_errno()));
        }
        if zmq_sys::zmq_msg_send(&mut message, socket.0, zmq_sys::ZMQ_DONTWAIT as i32) == -1 {
            let error = zmq::Error::from_raw(zmq_sys::zmq_errno());
            zmq_sys::zmq_msg_close(&mut message);
            return Err(error);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_goes_out_whole_and_its_reference_comes_back() {
        let context = zmq::Context::new();
        let mut push = context.socket(zmq::PAIR).expect("PAIR");
        let pull = context.socket(zmq::PAIR).expect("PAIR");
        pull.bind("inproc://reply-test").expect("bind");
        push.connect("inproc://reply-test").expect("connect");
        let board = Arc::new(b"- alice: in a meeting\n".repeat(10_000));
        send_shared(RawSocket::of(&mut push), Arc::clone(&board)).expect("sent");
        let received = pull.recv_bytes(0).expect("received");
        assert_eq!(received, *board);
        // libzmq has let go of its reference once the message was taken.
        assert_eq!(Arc::strong_count(&board), 1);
    }
}
