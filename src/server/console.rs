//! The server's console, every line's format in one place: the start-up
//! text, the original's `received` lines on stdout, and everything else on
//! stderr, one line each. With `--log-time` every line but the first
//! (`Waiting for clients…`, which scripts wait for) starts with an RFC 3339
//! time, and updates say the peer's address.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use crate::storage::Fsync;
use crate::store::{Event, Health, Store, names};
use crate::sys::OpenFiles;

use super::Server;
use super::config::{Config, Listen, RESERVED_FDS, StateConfig, beyond_loopback};

static TIMESTAMPS: AtomicBool = AtomicBool::new(false);

/// Turns the timestamps (and the peers' addresses) on or off.
pub(super) fn set_detailed(on: bool) {
    TIMESTAMPS.store(on, Ordering::Relaxed);
}

/// Whether lines carry times and peers (`--log-time`).
pub(super) fn detailed() -> bool {
    TIMESTAMPS.load(Ordering::Relaxed)
}

/// The start of a line: the time and a space, or nothing.
pub(super) fn stamp() -> String {
    match detailed() {
        true => format!("{} ", humantime::format_rfc3339_millis(SystemTime::now())),
        false => String::new(),
    }
}

/// `eprintln!` for the server's log: stamped with `--log-time`.
macro_rules! log_err {
    ($($arg:tt)*) => {
        eprintln!("{}{}", $crate::server::console::stamp(), format_args!($($arg)*))
    };
}
pub(super) use log_err;

/// Prints where the server listens, publishes and keeps its state.
pub(super) fn announce(server: &Server) {
    let config = &server.config;
    for endpoint in &server.bound {
        println!("{}", waiting_line(&config.listen, endpoint));
    }
    log_err!("{}", server.state_line);
    log_err!("{}", settings_line(config));
    if let Some(open_files) = &server.open_files {
        log_err!("{}", open_files_line(open_files));
    }
    for endpoint in server.publisher.iter().flat_map(|p| &p.endpoints) {
        log_err!("Publishing changes on '{endpoint}'.");
    }
    let Some(logins) = &server.logins else {
        return;
    };
    let users = logins.users.current();
    log_err!(
        "Logins: {} from {}; read-only without login on: {}.",
        users.count(),
        logins.path.display(),
        match config.anonymous.is_empty() {
            true => "none".to_owned(),
            false => config.anonymous.join(", "),
        }
    );
    if let Some(pair) = &logins.curve {
        log_err!(
            "CURVE: encrypted, logins by key; this server's public key is {}.",
            pair.public_z85()
        );
        let by_password = users.password_users();
        if by_password > 0 {
            log_err!(
                "warning: {} a password, which CURVE cannot check: they cannot log in \
                 until they have a curve: key",
                match by_password {
                    1 => "1 user has".to_owned(),
                    n => format!("{n} users have"),
                }
            );
        }
        return;
    }
    let mut exposed = beyond_loopback(&config.listen.endpoints())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    exposed.extend(
        beyond_loopback(&config.publish)
            .into_iter()
            .map(str::to_owned),
    );
    if !exposed.is_empty() {
        log_err!(
            "warning: PLAIN logins send passwords in clear on {}; keep them on loopback, \
             behind an encrypted tunnel, or use CURVE (--curve-secret)",
            exposed.join(", ")
        );
    }
}

/// The line the server prints once it listens; the original's for `PORT HOST`.
fn waiting_line(listen: &Listen, bound: &str) -> String {
    match listen {
        Listen::PortHost { host, .. } => {
            let port = crate::endpoint::split_tcp_endpoint(bound).map_or(bound, |(_, port)| port);
            format!("Waiting for clients on port '{port}' on host '{host}'.")
        }
        Listen::Endpoints(_) => format!("Waiting for clients on '{bound}'."),
    }
}

/// An update etcd did not take: the details to the log, the client is told
/// only that the board is read-only.
pub(super) fn not_stored_in_cluster(why: &str) {
    log_err!(
        "not stored: etcd did not take it ({}); its client was told the board is read-only",
        crate::visible::visible(why)
    );
}

/// The start-up line for a board kept in an etcd cluster.
pub(super) fn cluster_line(cluster: &crate::store::ClusterConfig, count: usize) -> String {
    format!(
        "State: etcd at {}, prefix {:?} ({} loaded); updates acknowledged once a majority has them.",
        cluster.urls.join(","),
        cluster.prefix,
        names(count)
    )
}

/// The line after `--import`.
pub(super) fn imported_line(path: &Path, imported: &crate::store::Imported) -> String {
    format!(
        "Imported {}: {} added, {} already on the board kept.",
        path.display(),
        names(imported.added),
        names(imported.kept)
    )
}

/// The start-up line for a board kept in memory only.
pub(super) const IN_MEMORY_LINE: &str =
    "State: in memory only (--in-memory); the board is lost when the server stops.";

/// The start-up line for a board kept in a state file.
pub(super) fn state_file_line(path: &Path, restored: usize, fsync: &Fsync) -> String {
    format!(
        "State: {} ({} restored, fsync {fsync}).",
        path.display(),
        names(restored),
    )
}

/// The start-up line with the settings an operator checks.
fn settings_line(config: &Config) -> String {
    let storage = match &config.state {
        StateConfig::InMemory => "in memory".to_owned(),
        StateConfig::Cluster { cluster, .. } => format!("etcd prefix {:?}", cluster.prefix),
        StateConfig::File { options, .. } => format!(
            "fsync {}, compact past {} bytes",
            options.fsync, options.compact_at
        ),
    };
    let ttl = config.ttl.map_or_else(
        || "none".to_owned(),
        |ttl| humantime::format_duration(ttl).to_string(),
    );
    let publish = match config.publish.is_empty() {
        true => "off".to_owned(),
        false => config.publish.join(", "),
    };
    format!(
        "Settings: {storage}; ttl {ttl}; publish {publish}; requests up to {} bytes, \
         names up to {} bytes, at most {}.",
        config.limits.max_request,
        config.limits.max_name,
        names(config.max_entries)
    )
}

/// The start-up line: how many clients the open-file limit allows.
fn open_files_line(open_files: &OpenFiles) -> String {
    let clients = open_files.limit.saturating_sub(RESERVED_FDS);
    if open_files.raised() {
        format!(
            "Clients: up to {clients} at once (the open-file limit, raised from {} to {}).",
            open_files.before, open_files.limit
        )
    } else {
        format!(
            "Clients: up to {clients} at once (the open-file limit is {}; raise the hard limit \
             for more: ulimit -Hn, or LimitNOFILE= in a systemd unit).",
            open_files.limit
        )
    }
}

/// The last line, once the server has stopped cleanly.
pub(super) fn stopped(state: &StateConfig, count: usize) {
    let kept = match state {
        StateConfig::InMemory => "gone with the server (--in-memory: nothing on disk)",
        StateConfig::File { .. } => "all of it on disk",
        StateConfig::Cluster { .. } => "all of it in etcd",
    };
    log_err!("Stopped: {} on the board, {kept}.", names(count));
}

/// Prints what the store did on its own.
pub(super) fn log_events(store: &mut Store) {
    for event in store.take_events() {
        match event {
            Event::Expired { name, age } => log_err!(
                "expired name: '{name}': not refreshed for {}",
                humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
            ),
            Event::Reattached { path, names: count } => log_err!(
                "warning: {} was deleted or replaced while in use; wrote the board ({}) to a new file there",
                path.display(),
                names(count)
            ),
            Event::Cluster(Health::Lost(why)) => log_err!(
                "etcd: no quorum ({}): updates refused, polls answered from the copy, marked stale",
                crate::visible::visible(&why)
            ),
            Event::Cluster(Health::Back) => {
                log_err!("etcd: quorum back: updates taken again")
            }
            Event::Cluster(Health::Loaded {
                names: count,
                revision,
            }) => log_err!(
                "etcd: loaded the board again at revision {revision} ({}): watchers start over",
                names(count)
            ),
        }
    }
}

/// A change as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub(super) name: String,
    /// The status set; `None` for a clear.
    pub(super) status: Option<String>,
    /// Who, with `--auth`.
    pub(super) user: Option<String>,
    /// From where (`Peer-Address`), with `--log-time`.
    pub(super) peer: Option<String>,
}

impl Change {
    /// The console line, as the original prints it for a stored update
    /// (`stored`), or says that it could not be stored.
    fn line(&self, stored: bool) -> String {
        let line = match (&self.status, stored) {
            (Some(status), true) => format!("received name: '{}' status: '{status}'", self.name),
            (None, true) => format!("cleared name: '{}'", self.name),
            (Some(status), false) => format!(
                "refused name: '{}' status: '{status}': it could not be stored",
                self.name
            ),
            (None, false) => format!(
                "refused to clear name: '{}': it could not be stored",
                self.name
            ),
        };
        let by = self
            .user
            .as_ref()
            .map(|user| format!(" by user '{user}'"))
            .unwrap_or_default();
        let from = self
            .peer
            .as_ref()
            .map(|peer| format!(" from {peer}"))
            .unwrap_or_default();
        format!("{line}{by}{from}")
    }

    /// Prints [`Change::line`] on stdout, stamped.
    pub(super) fn print(&self, stored: bool) {
        // Errors writing our own log (a closed stdout) must not stop the service.
        let _ = writeln!(std::io::stdout(), "{}{}", stamp(), self.line(stored));
    }
}

/// The line of an update the state file did not take: why, with its causes.
pub(super) fn not_stored(err: &crate::storage::StorageError) {
    log_err!("error: {}", crate::error_chain(err));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_printed_as_the_original_prints_it() {
        let mut change = Change {
            name: "Jackson".into(),
            status: Some(": I'm BAD".into()),
            user: None,
            peer: None,
        };
        assert_eq!(
            change.line(true),
            "received name: 'Jackson' status: ': I'm BAD'"
        );
        assert_eq!(
            change.line(false),
            "refused name: 'Jackson' status: ': I'm BAD': it could not be stored"
        );
        change.user = Some("alice".into());
        change.peer = Some("127.0.0.1".into());
        assert_eq!(
            change.line(true),
            "received name: 'Jackson' status: ': I'm BAD' by user 'alice' from 127.0.0.1"
        );
        change.status = None;
        change.user = None;
        change.peer = None;
        assert_eq!(change.line(true), "cleared name: 'Jackson'");
        assert_eq!(
            change.line(false),
            "refused to clear name: 'Jackson': it could not be stored"
        );
    }

    #[test]
    fn the_waiting_line_is_the_originals_for_port_and_host() {
        for (host, bound, port) in [
            ("127.0.0.1", "tcp://127.0.0.1:40123", "40123"),
            ("::1", "tcp://[::1]:40124", "40124"),
        ] {
            let listen = Listen::PortHost {
                port: 0,
                host: host.into(),
            };
            assert_eq!(
                waiting_line(&listen, bound),
                format!("Waiting for clients on port '{port}' on host '{host}'.")
            );
        }
        let endpoints = Listen::Endpoints(vec!["ipc:///tmp/s".into()]);
        assert_eq!(
            waiting_line(&endpoints, "ipc:///tmp/s"),
            "Waiting for clients on 'ipc:///tmp/s'."
        );
    }
}
