//! Endpoints and their host names: `tcp://HOST:PORT` built, split and
//! resolved in one place, so that a name that does not resolve is said as
//! such by every program, where libzmq would say "No such device" or retry
//! in silence.

/// The TCP endpoint for a host and port, bracketing an IPv6 address.
pub fn tcp_endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    }
}

/// A host name that resolves to no address: said as such, not as the
/// "connection refused" or "No such device" libzmq would report later.
#[derive(Debug, thiserror::Error)]
#[error("the host name '{host}' does not resolve")]
pub struct ResolveError {
    /// The name as given.
    pub(crate) host: String,
    /// What the resolver said.
    #[source]
    pub(crate) source: std::io::Error,
}

/// Whether `host` is an address (or `*`), which needs no resolving.
fn is_address(host: &str) -> bool {
    host == "*" || host.parse::<std::net::IpAddr>().is_ok()
}

/// The TCP endpoint for a host and port, with a host name (`localhost`)
/// resolved to an address first: libzmq binds only to addresses and
/// interface names, and connecting to a name may pick an address family the
/// server does not listen on. IPv4 is preferred, as the original uses it.
pub fn resolve_tcp_endpoint(host: &str, port: u16) -> Result<String, ResolveError> {
    use std::net::ToSocketAddrs;
    if is_address(host) {
        return Ok(tcp_endpoint(host, port));
    }
    let unresolved = |source| ResolveError {
        host: host.to_owned(),
        source,
    };
    let addresses: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(unresolved)?
        .collect();
    let chosen = addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .ok_or_else(|| unresolved(std::io::Error::other("it has no address")))?;
    Ok(tcp_endpoint(&chosen.ip().to_string(), port))
}

/// The host and port of a `tcp://HOST:PORT` endpoint, as written: a
/// `SOURCE;` prefix (`tcp://SOURCE;HOST:PORT` connects from SOURCE) left out,
/// an IPv6 address without its brackets, `*` kept for any host or any port.
/// `None` for other transports, or without a `:PORT`.
///
/// The one place the shape of a TCP endpoint is read: resolving, the
/// loopback check, and the default state file's name all start here.
pub(crate) fn split_tcp_endpoint(endpoint: &str) -> Option<(&str, &str)> {
    let rest = endpoint.strip_prefix("tcp://")?;
    let rest = rest.rsplit_once(';').map_or(rest, |(_, host)| host);
    let (host, port) = rest.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

/// The host and numeric port of a `tcp://HOST:PORT` endpoint (see
/// [`split_tcp_endpoint`]); `None` for other transports, or a port that is
/// not a number (`*`), which needs no resolving.
pub(crate) fn tcp_host_port(endpoint: &str) -> Option<(&str, u16)> {
    let (host, port) = split_tcp_endpoint(endpoint)?;
    Some((host, port.parse().ok()?))
}

/// An endpoint to connect to, with its host name resolved as
/// [`resolve_tcp_endpoint`] does (a `tcp://` endpoint with a name; any other
/// is returned as it is). A name that does not resolve is said now, where
/// libzmq would only retry in silence.
pub fn resolve_endpoint(endpoint: &str) -> Result<String, ResolveError> {
    match tcp_host_port(endpoint) {
        Some((host, port)) if !is_address(host) => {
            let resolved = resolve_tcp_endpoint(host, port)?;
            // `tcp://SOURCE;HOST:PORT`: the source stays as given.
            Ok(match endpoint.rsplit_once(';') {
                Some((source, _)) => format!("{source};{}", resolved.trim_start_matches("tcp://")),
                None => resolved,
            })
        }
        _ => Ok(endpoint.to_owned()),
    }
}

/// Why a `tcp://` endpoint that libzmq could not bind names no device: its
/// host is a name that does not resolve (libzmq binds addresses and
/// interface names, and says only "No such device").
pub(crate) fn unresolved_bind_host(endpoint: &str) -> Option<ResolveError> {
    let (host, port) = tcp_host_port(endpoint)?;
    if is_address(host) {
        return None;
    }
    resolve_tcp_endpoint(host, port).err()
}

/// Whether an endpoint names an IPv6 address, which libzmq must be told about.
pub(crate) fn is_ipv6_endpoint(endpoint: &str) -> bool {
    endpoint.contains('[')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_host_name_is_resolved_and_one_that_does_not_resolve_is_said() {
        assert_eq!(
            resolve_endpoint("tcp://localhost:2345").expect("localhost resolves"),
            "tcp://127.0.0.1:2345"
        );
        assert_eq!(
            resolve_endpoint("tcp://127.0.0.2;localhost:2345").expect("resolves"),
            "tcp://127.0.0.2;127.0.0.1:2345",
            "the source address stays as given"
        );
        for unchanged in [
            "tcp://127.0.0.1:2345",
            "tcp://[::1]:2345",
            "ipc:///tmp/status.sock",
            "nonsense",
        ] {
            assert_eq!(resolve_endpoint(unchanged).expect(unchanged), unchanged);
        }
        let err = resolve_endpoint("tcp://nonexistent.invalid:2345").expect_err("does not resolve");
        assert_eq!(err.host, "nonexistent.invalid");
        assert!(err.to_string().contains("does not resolve"), "{err}");
        assert_eq!(tcp_host_port("tcp://[::1]:7"), Some(("::1", 7)));
        assert!(unresolved_bind_host("tcp://nosuchhost.invalid:7").is_some());
        assert!(unresolved_bind_host("tcp://127.0.0.1:7").is_none());
        assert!(unresolved_bind_host("tcp://*:7").is_none());
    }

    #[test]
    fn a_tcp_endpoint_splits_into_host_and_port_as_written() {
        for (endpoint, parts) in [
            ("tcp://127.0.0.1:2345", Some(("127.0.0.1", "2345"))),
            ("tcp://localhost:0", Some(("localhost", "0"))),
            ("tcp://[::1]:2345", Some(("::1", "2345"))),
            ("tcp://[::1]:*", Some(("::1", "*"))),
            ("tcp://*:2345", Some(("*", "2345"))),
            ("tcp://*:*", Some(("*", "*"))),
            (
                "tcp://127.0.0.2;127.0.0.1:2345",
                Some(("127.0.0.1", "2345")),
            ),
            ("tcp://127.0.0.2:0;[::1]:7", Some(("::1", "7"))),
            ("tcp://eth0:2345", Some(("eth0", "2345"))),
            ("tcp://nohost", None),
            ("ipc:///tmp/status.sock", None),
            ("inproc://x:1", None),
            ("", None),
        ] {
            assert_eq!(split_tcp_endpoint(endpoint), parts, "{endpoint}");
        }
        assert_eq!(tcp_host_port("tcp://[::1]:*"), None, "any port: no number");
        assert_eq!(tcp_host_port("tcp://h:99999"), None, "not a port");
    }
}
