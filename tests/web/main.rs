//! status_web over plain HTTP, against the real binaries. The page in a real
//! browser is `tests/browser.rs`. One file a subject:
//!
//! - `endpoints`: the board as JSON, the event stream, posts and their
//!   refusals, logins forwarded, a gateway that keeps serving while the
//!   server is away, and its end;
//! - `attacks`: a hostile peer on the network (docs/WEB.md, Exposure):
//!   connections that send nothing or half a request, more of them than
//!   there are descriptors, requests that name another host (DNS
//!   rebinding), and responses a browser must not sniff;
//! - `failover`: several servers of one board, the first one lost;
//! - `stale`: a gateway of a cluster that says its board may be old.

#[path = "../common/mod.rs"]
mod common;

#[path = "../client/fake_server.rs"]
mod fake_server;

mod attacks;
mod endpoints;
mod failover;
mod stale;

use common::{Server, run_client};

/// Sets `name`'s status on `server` with the real client.
fn set(server: &Server, name: &str, text: &str) {
    let (code, _, stderr) = run_client(
        &["--endpoint", &server.endpoint, name, "--set", text, "-q"],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
}
