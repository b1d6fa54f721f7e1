//! What the harness measures, and measures against: our server, the libzmq
//! floor, the Python original, Redis, the web gateway, and an etcd
//! cluster with the board's gateways in front of it.

pub mod etcd;
pub mod floor;
pub mod gateway;
pub mod ours;
pub mod python;
pub mod redis;
