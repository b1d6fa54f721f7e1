//! ZeroMQ's socket monitor (`zmq_socket_monitor`): its messages read in one
//! place, for the server's connection watch and the client's handshakes.

/// One monitor message: what happened, and its value (a descriptor, an
/// errno or a protocol error code, as the event says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonitorEvent {
    /// One of libzmq's `ZMQ_EVENT_*`.
    pub(crate) event: u32,
    /// The event's value.
    pub(crate) value: u32,
}

impl MonitorEvent {
    /// The event of a monitor message, whose first frame is the event (u16)
    /// then its value (u32), in the machine's byte order; `None` if the
    /// frame is too short.
    pub(crate) fn parse(frames: &[Vec<u8>]) -> Option<MonitorEvent> {
        let first = frames.first()?;
        let event = first.get(..2)?;
        let value = first.get(2..6)?;
        Some(MonitorEvent {
            event: u32::from(u16::from_ne_bytes([event[0], event[1]])),
            value: u32::from_ne_bytes([value[0], value[1], value[2], value[3]]),
        })
    }

    /// The next event waiting on `monitor`, if any, without waiting.
    pub(crate) fn next(monitor: &zmq::Socket) -> Option<MonitorEvent> {
        monitor
            .recv_multipart(zmq::DONTWAIT)
            .ok()
            .and_then(|frames| MonitorEvent::parse(&frames))
    }

    /// The value as a descriptor or an errno (both fit an `i32`).
    pub(crate) fn value_i32(self) -> Option<i32> {
        i32::try_from(self.value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_and_its_value_are_read_and_a_short_frame_is_none() {
        let mut frame = (zmq_sys::ZMQ_EVENT_ACCEPTED as u16).to_ne_bytes().to_vec();
        frame.extend_from_slice(&7u32.to_ne_bytes());
        let event = MonitorEvent::parse(&[frame, b"tcp://127.0.0.1:1".to_vec()]);
        assert_eq!(
            event,
            Some(MonitorEvent {
                event: zmq_sys::ZMQ_EVENT_ACCEPTED,
                value: 7
            })
        );
        assert_eq!(event.and_then(MonitorEvent::value_i32), Some(7));
        assert_eq!(MonitorEvent::parse(&[vec![1, 0, 0]]), None);
        assert_eq!(MonitorEvent::parse(&[]), None);
    }
}
