//! The Python original, when python3 and pyzmq are there.

use crate::common;
use crate::load::{ask, req_socket};
use crate::targets::ours::entry;

pub struct Python {
    pub server: common::PythonServer,
    pub reference: common::Reference,
}

impl Python {
    pub fn start() -> Option<Python> {
        let reference = common::reference_or_skip("benchmark of the Python original")?;
        Some(Python {
            server: common::PythonServer::start(&reference),
            reference,
        })
    }

    /// Adds entries `from..n`, the same as ours (each reply is the whole
    /// board: quadratic, so slow).
    pub fn fill_to(&self, from: usize, n: usize) {
        let context = zmq::Context::new();
        let socket = req_socket(&context, &self.server.endpoint);
        for i in from..n {
            let (name, status) = entry(i);
            ask(&socket, format!("{name}: {status}").as_bytes());
        }
    }
}
