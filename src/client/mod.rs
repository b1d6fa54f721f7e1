//! `status_client`: post a status, or watch the board.
//!
//! Output is the Python original's (`----------------- N` and the board) or,
//! with `--json`, one JSON document per board. [`run`] ends with a
//! [`RunError`]; the program picks its exit code from it: exit codes are the
//! binaries', never the library's.
//!
//! This file is the public face only; each module uses only those listed
//! before it (and the crate's), never one that uses it back:
//!
//! - `say`: what the client says on stderr, [`visible`](crate::visible::visible).
//! - `login`: who to log in as on a server with `--auth`, and the password;
//!   [`LoginError`].
//! - `probe`: what is at an endpoint whose handshake ended with no reason said.
//! - `request_error`: [`RequestError`], what a request can fail with.
//! - `endpoints`: [`Endpoints`], the servers to ask and the one in use:
//!   failing over from one to the next.
//! - `request`: one request, one reply, never an endless wait (Lazy Pirate).
//! - `link`: a connection that rides out the server's absence (and its
//!   restarts with or without logins), for long-running feeds.
//! - `mirror`: a watcher's copy of the board (the Clone pattern).
//! - `render`: a board as the original's block, as JSON, or as a screen.
//! - `subscription`: a SUB socket on the server's publisher.
//! - `follow`: keeping a copy of the board in step: pushed changes or polls
//!   (also `status_web`'s); [`follow::FollowError`].
//! - `refresh`: a typer's status kept from expiring on a server with `--ttl`.
//! - `courier`: interactive mode's delivery of a status typed while the server was away.
//! - `options`: what the user asked for, the mode it means, statuses as posted.
//! - `session`: one run's connection and output, and [`RunError`].
//! - `watcher`: the watch mode: the board on a terminal, or as the original prints it.
//! - `modes`: [`run`], and the modes that post: one-shot, clear, piped, interactive.
//!
//! Whatever came from a server (a board, an `error:` reply, a line quoted in
//! an error) or from the environment (an endpoint) reaches the terminal
//! [`visible`](crate::visible::visible): boards through `render`, what is
//! said on stderr through [`eprintln_visible`].

mod courier;
pub mod endpoints;
pub mod follow;
pub mod link;
mod login;
pub mod mirror;
mod modes;
mod options;
mod probe;
mod refresh;
pub mod render;
pub mod request;
mod request_error;
mod say;
mod session;
mod subscription;
mod watcher;

pub use endpoints::Endpoints;
pub use login::{Login, LoginError, curve_keygen};
pub use modes::run;
pub use options::Options;
pub use request::{DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS};
pub use request_error::RequestError;
pub use say::eprintln_visible;
pub use session::RunError;
