//! `status_client`: post a status or read the board (minimal until issue 3).

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use status_board::client::{Client, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS};
use status_board::protocol::{self, POLL_NAME, POLL_REQUEST};
use status_board::shutdown::Shutdown;

/// Posts a status to the board, or reads it with the name `_`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Your name, or `_` to read the board once
    #[arg(default_value = POLL_NAME)]
    name: String,
    /// Server TCP port
    #[arg(default_value_t = 2345)]
    port: u16,
    /// Server host
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Status to post (otherwise one per line from stdin)
    #[arg(long)]
    set: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let endpoint = protocol::tcp_endpoint(&args.host, args.port);
    let shutdown = Shutdown::new();
    let mut client = Client::new(
        &endpoint,
        Duration::from_millis(DEFAULT_TIMEOUT_MS),
        DEFAULT_RETRIES,
    );
    let requests: Vec<String> = if args.name == POLL_NAME {
        vec![POLL_REQUEST.to_owned()]
    } else if let Some(text) = &args.set {
        vec![protocol::format_update(&args.name, text)]
    } else {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .map(|line| protocol::format_update(&args.name, &line))
            .collect()
    };
    for request in requests {
        match client.request(request.as_bytes(), &shutdown) {
            Ok(reply) => print!("{}", String::from_utf8_lossy(&reply)),
            Err(err) => {
                eprintln!("status_client: error: {}", status_board::error_chain(&err));
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
