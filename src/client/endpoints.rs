//! The servers a client may ask, in the order given, and the one it asks
//! now: the one home of failing over, for every mode of `status_client`
//! and for `status_web` (`--endpoint A --endpoint B`, or
//! `STATUS_BOARD_ENDPOINT=A,B`).
//!
//! A client asks the endpoint in use until it fails to answer (a timeout, a
//! refused connection, a gateway without quorum), then the next, in a
//! rotation; it stays with the one that answers. A request's tries are
//! spread over the endpoints, and are never fewer than there are endpoints:
//! with two servers and one of them dead, a request reaches the other
//! whatever `--retries` says. Each move is said on stderr, once, with why.

use std::fmt;

use super::say::eprintln_visible;

/// The servers to ask, and which one is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Never empty.
    list: Vec<String>,
    /// Index into `list` of the one in use.
    current: usize,
}

impl Endpoints {
    /// The endpoints in the order given; `None` if there are none.
    pub fn new(list: Vec<String>) -> Option<Endpoints> {
        (!list.is_empty()).then_some(Endpoints { list, current: 0 })
    }

    /// One endpoint: no failing over, as before there were several.
    pub fn one(endpoint: &str) -> Endpoints {
        Endpoints {
            list: vec![endpoint.to_owned()],
            current: 0,
        }
    }

    /// A comma-separated list as the environment gives it
    /// (`STATUS_BOARD_ENDPOINT=tcp://a:2345,tcp://b:2345`): each one
    /// trimmed, empty ones dropped. An `ipc://` path with a comma in it
    /// cannot be given this way (`--endpoint` takes it).
    pub fn split_list(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|endpoint| !endpoint.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The endpoint in use.
    pub fn current(&self) -> &str {
        // `list` is never empty and `current` always within it.
        &self.list[self.current]
    }

    /// Every endpoint, in the order given.
    pub fn all(&self) -> &[String] {
        &self.list
    }

    /// Whether there is another to fail over to.
    pub fn several(&self) -> bool {
        self.list.len() > 1
    }

    /// The tries a request makes for `retries` asked: never fewer than the
    /// endpoints, so that each is asked at least once.
    pub fn tries(&self, retries: u32) -> u32 {
        let endpoints = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        retries.max(endpoints).max(1)
    }

    /// Moves to the next endpoint, the first after the last; says so on
    /// stderr as `PROGRAM: now using NEXT (PREVIOUS: WHY)`. Nothing to do
    /// (and `false`) with one endpoint.
    pub fn fail_over(&mut self, program: &str, why: impl fmt::Display) -> bool {
        if !self.several() {
            return false;
        }
        let previous = self.current;
        self.current = (self.current + 1) % self.list.len();
        // Endpoints may come from the environment; `why` may quote a server.
        eprintln_visible(format_args!(
            "{program}: now using {} ({}: {why})",
            self.current(),
            self.list[previous]
        ));
        true
    }
}

impl From<&str> for Endpoints {
    fn from(endpoint: &str) -> Endpoints {
        Endpoints::one(endpoint)
    }
}

impl From<&String> for Endpoints {
    fn from(endpoint: &String) -> Endpoints {
        Endpoints::one(endpoint)
    }
}

/// Every endpoint, `A, B, C`, for what is said about all of them.
impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_from_the_environment_is_split_at_commas_and_trimmed() {
        assert_eq!(
            Endpoints::split_list(" tcp://a:1, tcp://b:2 ,,ipc:///x "),
            ["tcp://a:1", "tcp://b:2", "ipc:///x"]
        );
        assert!(Endpoints::split_list(" , ").is_empty());
        assert_eq!(Endpoints::new(Vec::new()), None);
    }

    #[test]
    fn failing_over_rotates_and_every_endpoint_gets_a_try() {
        let list = ["tcp://a:1", "tcp://b:2", "tcp://c:3"].map(str::to_owned);
        let mut endpoints = Endpoints::new(list.to_vec()).expect("three");
        assert_eq!(endpoints.current(), "tcp://a:1");
        assert!(endpoints.fail_over("test", "no reply"));
        assert_eq!(endpoints.current(), "tcp://b:2");
        endpoints.fail_over("test", "no reply");
        endpoints.fail_over("test", "no reply");
        assert_eq!(endpoints.current(), "tcp://a:1", "round again");
        assert_eq!(endpoints.tries(1), 3, "each one asked once");
        assert_eq!(endpoints.tries(5), 5);
        assert_eq!(endpoints.to_string(), "tcp://a:1, tcp://b:2, tcp://c:3");
        let mut one = Endpoints::one("tcp://a:1");
        assert!(!one.fail_over("test", "no reply"), "nowhere to go");
        assert_eq!((one.current(), one.tries(3)), ("tcp://a:1", 3));
    }
}
