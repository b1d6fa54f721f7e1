//! Sending the board as a reply without copying it.
//!
//! The board is its own encoded reply (`board.rs`), held in a reference-
//! counted buffer. A reply hands libzmq one more reference instead of a copy
//! (`zmq_msg_init_data` with a function that drops it), and the board copies
//! its buffer before a change only while a reply still holds it. rust-zmq
//! has no safe way to build such a message, hence this one `unsafe` place.

use std::ffi::c_void;
use std::sync::Arc;

/// The server socket as libzmq knows it, for the one send rust-zmq cannot make.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawSocket(*mut c_void);

impl RawSocket {
    /// The raw handle of `socket`, which must outlive every use of it.
    pub(super) fn of(socket: &mut zmq::Socket) -> RawSocket {
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
pub(super) fn send_shared(socket: RawSocket, body: Arc<Vec<u8>>) -> Result<(), zmq::Error> {
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
