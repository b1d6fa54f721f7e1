//! `status_client`: post your status, or watch the board.

// The library's `sys` holds every C call; a program has none of its own.
#![deny(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use status_board::cli::{self, EXIT_INTERRUPTED};
use status_board::client::{
    self, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, Endpoints, LoginError, Options, RequestError,
    RunError, eprintln_visible,
};
use status_board::protocol::POLL_NAME;
use status_board::shutdown::{Hangup, Shutdown};
use status_board::visible::visible;

/// Posts your status to a status board server, or watches the board.
///
/// Modes:
///   interactive  a NAME, stdin a terminal: type a status at the `NAME: ` prompt,
///                see the board after each line; Ctrl-D or Ctrl-C to leave
///                  status_client alice
///   piped        a NAME, stdin a pipe or file: each line is one update, no prompts
///                  tail -f build.log | grep --line-buffered RESULT | status_client ci
///   one-shot     --set TEXT: post one status, print the board, exit
///                  status_client ci --set "build #42 green"
///                --clear: remove your entry, print the board, exit
///                  status_client ci --clear
///   watch        the name `_`: show the board as it changes; on a terminal it
///                is redrawn in place with ages (NO_COLOR turns colors off),
///                otherwise printed as the original does. Changes are pushed
///                when the server publishes them; otherwise it polls every
///                --interval seconds (a few bytes while nothing changes)
///                  status_client _ --interval 0.5
///
/// Every request waits --timeout ms for a reply and is sent again on a fresh
/// connection up to --retries times in all; a watcher, a pipe and the prompt
/// keep trying until the server is back, also when it comes back with logins
/// turned on or off (the status typed meanwhile is kept, and sent then).
///
/// Several servers of one board (gateways of a cluster): repeat --endpoint,
/// or list them in STATUS_BOARD_ENDPOINT with commas. A try that gets no reply,
/// or finds nothing listening, goes to the next one, and the client stays
/// with the one that answers; stderr says so (now using B (A: no reply in
/// 2500 ms)). The tries are spread over the servers in turn, at least one
/// each: with one of two servers down, a --set still gets through. A refusal
/// (error: ...) is an answer, except error: unavailable (a gateway that cannot
/// reach its cluster's quorum did not take the update): it is sent to the next
/// server once. A watcher moves on too when the publisher it follows stops
/// its heartbeats.
///
/// An empty or blank status (--set "", a blank piped line) is refused: --clear
/// removes a status, --allow-empty posts an empty one. At the prompt an empty
/// line shows the board again and posts nothing.
///
/// On a server with --ttl, the status you typed (interactive, or a pipe that
/// stays open) is posted again every third of the TTL so that it does not
/// expire while you are there; changed or cleared elsewhere, it is left alone.
///
/// What a server sends is shown with its control characters as escapes
/// (\x1b, \r, \u{9b}), so that no status can set the window title, write
/// the clipboard or clear the screen; --json carries them exactly, escaped
/// as JSON. Bytes that are not UTF-8 show as U+FFFD.
///
/// Exit codes:
///   0    done: one-shot posted or cleared, end of input, --count reached, Ctrl-D,
///        or Ctrl-C at the status prompt or in watch mode
///   1    the server refused an update (an `error: ...` reply), a piped line was
///        refused (by the server, or not UTF-8, empty, longer than 1 MiB), cannot
///        --clear (the original server), or sent a reply that is not a board;
///        or the client itself failed (stdout closed, a thread that cannot start)
///   2    usage: bad arguments, a name or text the protocol cannot carry, an
///        empty status, an invalid endpoint, a host name that does not resolve,
///        unreadable input
///   3    no reply from the server after every try, nothing listens, or the
///        endpoint is not a status server's (not ZeroMQ, or its publisher)
///   4    the server refused the login, or wants one that was not given (or
///        takes none); a watcher at an endpoint that wants a login
///   130  Ctrl-C or SIGTERM before a one-shot or piped update was answered,
///        or at a password prompt
///
/// Defaults from the environment, for people and scripts who set them once
/// (arguments win): STATUS_BOARD_NAME (the NAME; else `_`, a watcher) and
/// STATUS_BOARD_ENDPOINT (the server, or several separated by commas, when
/// neither PORT/HOST nor --endpoint is given).
///
/// Logins (a server with --auth): --user USER, or STATUS_BOARD_USER, or the
/// NAME once a password is given; the password from STATUS_BOARD_PASSWORD,
/// else ~/.config/status-board/password (mode 0600), else a prompt. On a
/// terminal (interactive, --set, --clear) the NAME logs in when the server
/// turns out to want a login: the password is asked for, with no echo, and
/// what you typed is sent then; a refused password is asked again (3 tries).
/// A watcher with no user reads anonymously: at a server's --anonymous
/// endpoint (it names it at start), or give --user for a read-only user.
#[derive(Debug, Parser)]
#[command(name = "status_client", version, verbatim_doc_comment)]
struct Args {
    /// Your name, or `_` to watch the board [default: STATUS_BOARD_NAME, or _]
    name: Option<String>,

    /// Server TCP port [default: 2345]
    port: Option<u16>,

    /// Server host name or address [default: 127.0.0.1]
    host: Option<String>,

    /// Any ZeroMQ endpoint instead of PORT/HOST, e.g. ipc:///tmp/status.sock;
    /// repeat it for servers to fail over to, in order
    #[arg(long, value_name = "ENDPOINT", conflicts_with_all = ["port", "host"])]
    endpoint: Vec<String>,

    /// Post this status once, print the board and exit (it may start with `-`)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    set: Option<String>,

    /// Remove your entry from the board, print the board and exit
    #[arg(long, conflicts_with = "set")]
    clear: bool,

    /// Seconds between polls when watching a server that does not push changes; fractions allowed
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = status_board::cli::parse_interval)]
    interval: Duration,

    /// Stop watching after N boards
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Print each board as one line of JSON: {"seq":…,"entries":[{"name":…,"status":…,"set_at":…,"age_s":…}]}
    #[arg(long)]
    json: bool,

    /// Clean each status before posting it (piped lines, --set, typed lines):
    /// colour and other control sequences dropped, tabs to spaces, bytes that
    /// are not UTF-8 as U+FFFD, cut to what the server takes
    #[arg(long)]
    sanitize: bool,

    /// Post an empty or blank status (--set "", a blank piped line) instead
    /// of refusing it; --clear is how a status is removed
    #[arg(long)]
    allow_empty: bool,

    /// Print nothing on success (one-shot and piped modes)
    #[arg(short, long)]
    quiet: bool,

    /// Milliseconds to wait for each reply
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    /// Tries per request before giving up [default: 3]; a watcher, and a pipe
    /// unless this is given, keep trying until the server is back
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    retries: Option<u32>,

    /// Log in as USER (a server with --auth) [default: STATUS_BOARD_USER, or NAME]
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// The server's CURVE public key (or STATUS_BOARD_SERVER_KEY): log in with
    /// the key pair in ~/.config/status-board/curve.key, encrypted
    #[arg(
        long,
        value_name = "Z85",
        conflicts_with = "user",
        allow_hyphen_values = true
    )]
    server_key: Option<String>,

    /// Write a new key pair to ~/.config/status-board/curve.key (mode 0600),
    /// print its public key (for the server's users file), and exit
    #[arg(long, exclusive = true)]
    curve_keygen: bool,

    /// Write shell completions or a man page to stdout, and exit
    #[arg(long, value_name = "WHAT", exclusive = true)]
    generate: Option<status_board::cli::Generated>,
}

impl Args {
    fn into_options(self) -> Result<Options, String> {
        let name = self
            .name
            .map_or_else(|| cli::env_text("STATUS_BOARD_NAME"), |name| Ok(Some(name)))?
            .unwrap_or_else(|| POLL_NAME.to_owned());
        let writes = self.set.is_some() || self.clear;
        if writes && self.port.is_none() && name.parse::<u16>().is_ok() {
            return Err(format!(
                "'{name}' as the NAME looks like a port: did you mean NAME PORT, \
                 as in status_client alice {name} --set ...?"
            ));
        }
        // A host name is resolved here, for every way of giving it: one that
        // does not resolve is said now (libzmq would retry it in silence).
        let unresolved = |e: status_board::endpoint::ResolveError| status_board::error_chain(&e);
        let given = match (self.endpoint.is_empty(), self.port, &self.host) {
            (false, _, _) => self.endpoint,
            (true, None, None) => cli::env_text(cli::ENDPOINT_ENV)?
                .map(|list| Endpoints::split_list(&list))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let (endpoints, greeting) = match Endpoints::new(given) {
            Some(given) => {
                let greeting = match given.all() {
                    [one] => format!("Connecting to '{one}'."),
                    [first, rest @ ..] => format!(
                        "Connecting to '{first}' (then '{}' if it does not answer).",
                        rest.join("', '")
                    ),
                    [] => String::new(),
                };
                let resolved = given
                    .all()
                    .iter()
                    .map(|e| status_board::endpoint::resolve_endpoint(e).map_err(unresolved))
                    .collect::<Result<Vec<String>, String>>()?;
                let endpoints = Endpoints::new(resolved).unwrap_or(given);
                (endpoints, greeting)
            }
            None => {
                let port = self.port.unwrap_or(cli::DEFAULT_PORT);
                let host = self.host.unwrap_or_else(|| cli::DEFAULT_HOST.to_owned());
                let endpoint = status_board::endpoint::resolve_tcp_endpoint(&host, port)
                    .map_err(unresolved)?;
                let greeting = format!("Connecting to port '{port}' of host '{host}'.");
                (Endpoints::one(&endpoint), greeting)
            }
        };
        // Printed as the first line: an endpoint from the environment or a
        // host name shows its control characters as escapes, as all else does.
        let greeting = visible(&greeting).into_owned();
        Ok(Options {
            endpoints,
            name,
            set: self.set,
            clear: self.clear,
            interval: self.interval,
            count: self.count,
            json: self.json,
            quiet: self.quiet,
            timeout: Duration::from_millis(self.timeout),
            retries: self.retries.unwrap_or(DEFAULT_RETRIES),
            retries_given: self.retries.is_some(),
            greeting,
            user: self.user,
            server_key: self.server_key,
            sanitize: self.sanitize,
            allow_empty: self.allow_empty,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = args.generate {
        return match status_board::cli::generate(<Args as clap::CommandFactory>::command(), what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln_visible(format_args!("status_client: {message}"));
                ExitCode::FAILURE
            }
        };
    }
    if args.curve_keygen {
        return match client::curve_keygen() {
            Ok(pair) => {
                println!("{}", pair.public_z85());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln_visible(format_args!(
                    "status_client: {}",
                    status_board::error_chain(&err)
                ));
                ExitCode::from(login_exit_code(&err))
            }
        };
    }
    let options = match args.into_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln_visible(format_args!("status_client: {message}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let shutdown = match Shutdown::on_signals(Hangup::Stops, EXIT_INTERRUPTED) {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln_visible(format_args!(
                "status_client: cannot handle Ctrl-C: {}",
                status_board::error_chain(&e)
            ));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match client::run(&options, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        // An error may quote a server (its `error:` reply) or the environment.
        Err(err) => {
            eprintln_visible(format_args!(
                "status_client: {}",
                status_board::error_chain(&err)
            ));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// Exit code when the server answered `error: …` or with something that is not a board.
const EXIT_REFUSED: u8 = 1;
/// Exit code for bad arguments, a name the protocol cannot carry, or unreadable input.
const EXIT_USAGE: u8 = 2;
/// Exit code when the server did not answer any try.
const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when the server refused the login, or wants one we did not give.
const EXIT_LOGIN: u8 = 4;

/// The exit code for `err`, as `--help` lists them.
fn exit_code(err: &RunError) -> u8 {
    match err {
        RunError::Usage(_) | RunError::Stdin(_) | RunError::Terminal(_) => EXIT_USAGE,
        RunError::Login(err) => login_exit_code(err),
        RunError::Request(err) => request_exit_code(err),
        RunError::WatchWantsLogin { .. } => EXIT_LOGIN,
        RunError::Refused { .. }
        | RunError::LinesRefused { .. }
        | RunError::Unsupported(_)
        | RunError::BadReply { .. }
        | RunError::Stdout(_)
        | RunError::Thread { .. } => EXIT_REFUSED,
    }
}

/// The exit code for a login that could not be made of what was given.
fn login_exit_code(err: &LoginError) -> u8 {
    match err {
        LoginError::Interrupted => EXIT_INTERRUPTED,
        LoginError::ServerKey(_)
        | LoginError::NoHome(_)
        | LoginError::NoKeyPair(_)
        | LoginError::KeyPair(_)
        | LoginError::PasswordFile(_)
        | LoginError::Environment(_)
        | LoginError::NoPassword(_) => EXIT_USAGE,
    }
}

/// The exit code for a request that got no usable reply.
fn request_exit_code(err: &RequestError) -> u8 {
    match err {
        RequestError::Connect { .. } => EXIT_USAGE,
        RequestError::NoReply { .. }
        | RequestError::NothingListens { .. }
        | RequestError::NotZeroMq { .. }
        | RequestError::Publisher { .. } => EXIT_UNREACHABLE,
        RequestError::Interrupted => EXIT_INTERRUPTED,
        RequestError::LoginRefused { .. }
        | RequestError::LoginWanted { .. }
        | RequestError::LoginUnwanted { .. } => EXIT_LOGIN,
        RequestError::Socket { .. } => EXIT_REFUSED,
    }
}
