//! `status_server`: the status board server, a drop-in for the Python original.

use std::process::ExitCode;

use clap::Parser;
use clap::builder::TypedValueParser;
use status_board::board::DEFAULT_MAX_ENTRIES;
use status_board::protocol::{DEFAULT_MAX_NAME, DEFAULT_MAX_REQUEST, Limits};
use status_board::server::{self, Config, Listen};
use status_board::shutdown::Shutdown;

/// Keeps a name → status board and answers every request with the whole board.
///
/// Wire-compatible with the Python original: a request `NAME: STATUS` stores a
/// status, `_:` polls; every reply is the board, one `- NAME: STATUS` line per
/// name. Bad requests get a one-line `error: ...` reply and change nothing.
///
/// Examples:
///   status_server                          # tcp://127.0.0.1:2345
///   status_server 5555 0.0.0.0             # tcp://0.0.0.0:5555
///   status_server --bind ipc:///tmp/status.sock --bind tcp://127.0.0.1:2345
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// TCP port to listen on (0 picks a free one)
    #[arg(default_value_t = 2345)]
    port: u16,

    /// Interface address to listen on, IPv4 or IPv6
    #[arg(default_value = "127.0.0.1")]
    host: String,

    /// Listen on a ZeroMQ endpoint instead of PORT/HOST (repeatable), e.g. tcp://0.0.0.0:2345, ipc:///tmp/status.sock
    #[arg(long = "bind", value_name = "ENDPOINT", conflicts_with_all = ["port", "host"])]
    bind: Vec<String>,

    /// Do not print a line for every update
    #[arg(short, long)]
    quiet: bool,

    /// Most names the board holds; a new name past it gets an error reply, existing names still update
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    max_entries: usize,

    /// Longest name, in bytes of UTF-8
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_NAME,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    max_name: usize,

    /// Largest request, in bytes; up to 64 KiB more gets an error reply, anything larger is dropped unread
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REQUEST,
          value_parser = clap::value_parser!(u64).range(3..).map(|n| n as usize))]
    max_request: usize,
}

impl Args {
    fn into_config(self) -> Config {
        let listen = if self.bind.is_empty() {
            Listen::PortHost {
                port: self.port,
                host: self.host,
            }
        } else {
            Listen::Endpoints(self.bind)
        };
        Config {
            listen,
            limits: Limits {
                max_request: self.max_request,
                max_name: self.max_name,
            },
            max_entries: self.max_entries,
            quiet: self.quiet,
        }
    }
}

fn main() -> ExitCode {
    let config = Args::parse().into_config();
    let result = Shutdown::on_signals()
        .map_err(|e| format!("cannot handle Ctrl-C: {}", status_board::error_chain(&e)))
        .and_then(|shutdown| {
            server::run(&config, &shutdown).map_err(|e| status_board::error_chain(&e))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("status_server: error: {message}");
            ExitCode::FAILURE
        }
    }
}
