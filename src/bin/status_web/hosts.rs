//! The names the gateway answers to. A page of another site can make a
//! browser talk to the gateway by DNS rebinding: `evil.example` resolves to
//! the attacker's server, then to 127.0.0.1, and the page's requests to its
//! own origin reach the gateway, with `Host: evil.example`. Rebinding needs
//! a name the attacker controls: a request that names an IP address, or
//! `localhost`, or a name the operator gave (`--allow-host`, a reverse
//! proxy's), cannot come from such a page. Every other one is refused with
//! 421 Misdirected Request, on every path.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::http::{HeaderMap, Uri, header};

use crate::error::Refusal;

/// The names served besides IP addresses and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    /// Lower case, without a final dot.
    names: Vec<String>,
}

/// Why a name given with `--allow-host` is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--allow-host {0:?}: give a host name (letters, digits, '-' and '.'), without a port or \
     a scheme: --allow-host board.example"
)]
pub struct NotAName(String);

impl Hosts {
    /// Serves IP addresses, `localhost`, and `names`.
    pub fn new(names: &[String]) -> Result<Hosts, NotAName> {
        let names = names
            .iter()
            .map(|name| {
                let normal = normalize(name);
                let is_name = !normal.is_empty()
                    && normal
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                match is_name {
                    true => Ok(normal),
                    false => Err(NotAName(name.clone())),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Hosts { names })
    }

    /// Whether a request naming `host` (a Host header's value: a name or
    /// an address, with or without a port) is for us.
    fn serves(&self, host: &str) -> bool {
        let Some(host) = without_port(host) else {
            return false;
        };
        if host.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return v6.parse::<Ipv6Addr>().is_ok();
        }
        let name = normalize(host);
        name == "localhost" || self.names.contains(&name)
    }

    /// The refusal of a request that is not for us; `None` for one that is.
    ///
    /// HTTP/1.1 wants exactly one Host header (RFC 9112 §3.2): none, two or
    /// an unreadable one is a bad request (400). A request whose target is
    /// a whole URL names its host twice: both must be ours.
    pub fn refusal(&self, uri: &Uri, headers: &HeaderMap) -> Option<Refusal> {
        let mut values = headers.get_all(header::HOST).iter();
        let (Some(host), None) = (values.next(), values.next()) else {
            return Some(Refusal::BadHost(
                "send one Host header: the name of this server",
            ));
        };
        let Ok(host) = host.to_str() else {
            return Some(Refusal::BadHost("the Host header is not readable text"));
        };
        let named = std::iter::once(host).chain(uri.authority().map(|a| a.as_str()));
        for host in named {
            if !self.serves(host) {
                return Some(self.misdirected(host));
            }
        }
        None
    }

    fn misdirected(&self, host: &str) -> Refusal {
        let served = match self.names.is_empty() {
            true => "IP addresses and localhost".to_owned(),
            false => format!("IP addresses, localhost and {}", self.names.join(", ")),
        };
        Refusal::Misdirected {
            host: host.to_owned(),
            served,
        }
    }
}

/// Names compare without case and without the final dot of a fully qualified name.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` without the port; `None` if
/// it is none of these.
fn without_port(value: &str) -> Option<&str> {
    let (host, port) = match value.rfind(':') {
        // A colon inside brackets is the address's own.
        Some(colon) if !value[colon..].contains(']') => (&value[..colon], &value[colon + 1..]),
        _ => (value, "0"),
    };
    let is_port = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    // An IPv6 address must be in brackets: a bare one is not a host.
    let bare_colon = !host.starts_with('[') && host.contains(':');
    match is_port && !host.is_empty() && !bare_colon {
        true => Some(host),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_the_given_names_are_served() {
        let hosts = Hosts::new(&["Board.Example.".to_owned(), "status".to_owned()]).unwrap();
        for ours in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "10.1.2.3:80",
            "[::1]:8080",
            "[::1]",
            "[fe80::1]:1",
            "localhost",
            "LOCALHOST:3000",
            "localhost.:80",
            "board.example",
            "board.example.:443",
            "BOARD.example:8080",
            "status:8080",
        ] {
            assert!(hosts.serves(ours), "{ours}");
        }
        for theirs in [
            "evil.example",
            "evil.example:8080",
            "board.example.evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "2130706433",
            "::1",
            "[::1",
            "[evil]:80",
            "localhost:",
            "localhost:http",
            "localhost:123456",
            ":8080",
            "",
            "user@localhost",
        ] {
            assert!(!hosts.serves(theirs), "{theirs}");
        }
        assert!(!Hosts::default().serves("board.example"));
    }

    #[test]
    fn allow_host_takes_names_only() {
        for bad in [
            "",
            ".",
            "board.example:8080",
            "https://board.example",
            "a b",
            "*",
        ] {
            assert!(Hosts::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_needs_one_host_of_ours_and_a_full_url_must_be_ours_too() {
        let hosts = Hosts::default();
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for value in values {
                map.append(header::HOST, value.parse().unwrap());
            }
            map
        };
        let path: Uri = "/board.json".parse().unwrap();
        let code = |uri: &Uri, values: &[&str]| {
            hosts
                .refusal(uri, &headers(values))
                .map(|refusal| refusal.status().as_u16())
        };
        assert_eq!(code(&path, &["localhost:8080"]), None);
        assert_eq!(code(&path, &["evil.example:8080"]), Some(421));
        assert_eq!(code(&path, &[]), Some(400));
        assert_eq!(code(&path, &["localhost", "localhost"]), Some(400));
        let full: Uri = "http://evil.example/board.json".parse().unwrap();
        assert_eq!(code(&full, &["localhost"]), Some(421));
        let ours: Uri = "http://127.0.0.1:8080/board.json".parse().unwrap();
        assert_eq!(code(&ours, &["localhost"]), None);
    }
}
