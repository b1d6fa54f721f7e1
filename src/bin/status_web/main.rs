//! `status_web`: the status board in a browser.
//!
//! Each module uses only those listed before it, never one that uses it back:
//!
//! - `error`: [`error::Refusal`], a request refused with its HTTP code, and
//!   [`error::WebError`], why the gateway stopped (its exit code is `main`'s).
//! - `connections`, `hosts`: what a peer on the network may do: connections
//!   under a cap, and the names served.
//! - `gateway`: the board as the gateway knows it, and the events viewers get.
//! - `form`: what a post says, checked as text (no axum: `fuzz/` includes
//!   it by path); `post`: a status posted from the web, with the browser's login.
//! - `app`: the one router: the routes, the page (`page.html`), the event
//!   stream, the Host check and `nosniff`; [`app::AppState`], what they share.
//! - `accept`: connections accepted with timeouts, each served by the router.
//! - `http`: the router on tokio, on a thread of its own.
//! - `run`: the gateway's main thread, a watcher of the server (the client's
//!   `Follower`), and the HTTP side started beside it.
//!
//! These live here, not in the library, so that only this program links an
//! async runtime.

// The library's `sys` holds every C call; a program has none of its own.
#![deny(unsafe_code)]

mod accept;
mod app;
mod connections;
mod error;
mod form;
mod gateway;
mod hosts;
mod http;
mod post;
mod run;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use error::WebError;
use run::{DEFAULT_LISTEN, Options};
use status_board::cli::EXIT_INTERRUPTED;
use status_board::client::follow::FollowError;
use status_board::client::{
    DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, Endpoints, RequestError, eprintln_visible,
};
use status_board::shutdown::{Hangup, Shutdown};

/// Exit code for bad arguments, an endpoint that cannot be, or an address
/// it cannot listen on.
const EXIT_USAGE: u8 = 2;
/// Exit code when the server refuses the gateway's (anonymous) read.
const EXIT_LOGIN: u8 = 4;

/// Serves the status board to browsers: a wall-screen page that follows
/// every change, the board as JSON, and a form to post a status.
///
///   status_web                                   the server at 127.0.0.1:2345, http://127.0.0.1:8080/
///   status_web --endpoint tcp://board:2345 --listen 0.0.0.0:8080
///
/// Endpoints:
///   GET  /            the page (everything in one document, nothing from elsewhere)
///   GET  /events      Server-Sent Events: the board, each change, a heartbeat every second
///   GET  /board.json  the board as `status_client _ --json` prints it
///   POST /status      a form, status=TEXT and name=NAME:
///                       curl -d name=alice -d status='in a meeting' http://127.0.0.1:8080/status
///
/// It watches the server as `status_client _` does (pushed changes when the
/// server publishes, else polls) and keeps serving while the server is away,
/// saying so on the page. Browsers add no load on the server: it sees one
/// watcher. Given several servers of one board (gateways of a cluster), it
/// reads from and posts to one, and moves to the next when that one does not
/// answer, as status_client does.
///
/// With a server that wants logins (--auth), the gateway has no rights of
/// its own: a post's HTTP Basic credentials (curl -u alice) are the user's
/// login to the server, so only alice sets alice. Give the gateway the
/// server's --anonymous endpoint with --read-endpoint to read the board.
/// Basic credentials cross the network in clear: beyond loopback, put an
/// HTTPS reverse proxy in front of status_web.
///
/// It answers only requests that name it: an IP address, localhost, or a
/// name given with --allow-host (421 for others: DNS rebinding).
#[derive(Debug, Parser)]
#[command(name = "status_web", version, verbatim_doc_comment)]
struct Args {
    /// The status server; repeat it for servers to fail over to, in order
    /// [default: STATUS_BOARD_ENDPOINT (commas between several), or tcp://127.0.0.1:2345]
    #[arg(long, value_name = "ENDPOINT")]
    endpoint: Vec<String>,

    /// Read the board here instead (a server's --anonymous endpoint, when it
    /// wants logins); repeatable as --endpoint
    #[arg(long, value_name = "ENDPOINT")]
    read_endpoint: Vec<String>,

    /// The HTTP address to serve on (port 0: any free port, printed at start)
    #[arg(long, value_name = "ADDRESS:PORT", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Also answer requests for this host name (a reverse proxy's); repeatable
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,

    /// Seconds between polls of a server that does not push changes; fractions allowed
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = status_board::cli::parse_interval)]
    interval: Duration,

    /// Milliseconds to wait for each reply
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    /// Tries per request of the watcher before the server counts as away
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES,
          value_parser = clap::value_parser!(u32).range(1..))]
    retries: u32,

    /// Write shell completions or a man page to stdout, and exit
    #[arg(long, value_name = "WHAT", exclusive = true)]
    generate: Option<status_board::cli::Generated>,
}

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        // It may quote an endpoint from the environment, or the server.
        Err((message, code)) => {
            eprintln_visible(format_args!("status_web: {message}"));
            ExitCode::from(code)
        }
    }
}

/// An endpoint with its host name resolved, as `status_client` does: a
/// name that does not resolve is said now, where libzmq would retry it in
/// silence.
fn resolved(endpoint: &str) -> Result<String, String> {
    status_board::endpoint::resolve_endpoint(endpoint).map_err(|e| status_board::error_chain(&e))
}

/// Each of `endpoints` resolved, as [`resolved`].
fn resolved_all(endpoints: &[String]) -> Result<Endpoints, String> {
    let resolved = endpoints
        .iter()
        .map(|e| resolved(e))
        .collect::<Result<Vec<_>, _>>()?;
    Endpoints::new(resolved).ok_or_else(|| "no endpoint given".to_owned())
}

/// Serves until Ctrl-C or SIGTERM; an error is reported once, by `main`.
fn try_main() -> Result<(), (String, u8)> {
    let args = Args::parse();
    let usage = |message: String| (message, EXIT_USAGE);
    if let Some(what) = args.generate {
        return status_board::cli::generate(<Args as clap::CommandFactory>::command(), what)
            .map_err(usage);
    }
    let endpoints = match args.endpoint.is_empty() {
        false => args.endpoint,
        true => status_board::cli::env_text(status_board::cli::ENDPOINT_ENV)
            .map_err(usage)?
            .map(|list| Endpoints::split_list(&list))
            .filter(|list| !list.is_empty())
            .unwrap_or_else(|| vec![status_board::cli::default_endpoint()]),
    };
    let endpoints = resolved_all(&endpoints).map_err(usage)?;
    let read_endpoints = match args.read_endpoint.is_empty() {
        true => None,
        false => Some(resolved_all(&args.read_endpoint).map_err(usage)?),
    };
    let hosts = hosts::Hosts::new(&args.allow_host).map_err(|e| usage(e.to_string()))?;
    let options = Options {
        endpoints,
        read_endpoints,
        listen: args.listen,
        interval: args.interval,
        timeout: Duration::from_millis(args.timeout),
        retries: args.retries,
        hosts,
    };
    let shutdown = Shutdown::on_signals(Hangup::Stops, EXIT_INTERRUPTED).map_err(|e| {
        usage(format!(
            "cannot handle Ctrl-C: {}",
            status_board::error_chain(&e)
        ))
    })?;
    run::run(&options, &shutdown).map_err(|err| (status_board::error_chain(&err), exit_code(&err)))
}

/// The exit code for `err`, as `docs/WEB.md` lists them.
fn exit_code(err: &WebError) -> u8 {
    match err {
        WebError::Watch(FollowError::Request(
            RequestError::LoginWanted { .. }
            | RequestError::LoginRefused { .. }
            | RequestError::LoginUnwanted { .. },
        )) => EXIT_LOGIN,
        // The watcher stops for nothing else but an endpoint libzmq refuses.
        WebError::Watch(_) | WebError::Listen { .. } | WebError::Runtime(_) => EXIT_USAGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_resolved_as_the_client_resolves_it() {
        let unresolved = resolved("tcp://nonexistent.invalid:2345").expect_err("no such name");
        assert!(
            unresolved.contains("the host name 'nonexistent.invalid' does not resolve"),
            "{unresolved}"
        );
        let local = resolved("tcp://localhost:2345").expect("localhost resolves");
        assert!(
            ["tcp://127.0.0.1:2345", "tcp://[::1]:2345"].contains(&local.as_str()),
            "a name becomes its address: {local}"
        );
        for kept in [
            "tcp://127.0.0.1:2345",
            "tcp://[::1]:2345",
            "ipc:///tmp/board",
        ] {
            assert_eq!(resolved(kept).as_deref(), Ok(kept));
        }
    }
}
