//! What the harness measures, and measures against: our server, the libzmq
//! floor, the Python original, Redis, and the web gateway.

pub mod floor;
pub mod gateway;
pub mod ours;
pub mod python;
pub mod redis;
