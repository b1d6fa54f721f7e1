//! A real etcd cluster on loopback and the gateways in front of it
//! (`status_server --etcd`): three members, each in its own temporary
//! directory on free ports, killed and restarted, asked who leads.
//!
//! The members talk to each other directly (no proxy in between): the
//! figures are etcd's own, its fsync of the WAL on every commit included.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::Settings;
use crate::common;
use crate::process::cpu_time;
use crate::stats::Sample;

pub const ETCD: &str = "/usr/bin/etcd";

/// Bounds a cluster's start (its first election included), a restarted
/// member's return and a leader's election: they bound a hang, they measure
/// nothing.
const READY_BOUND: Duration = Duration::from_secs(30);

/// Starts tried on fresh ports when one fails (a port picked free may have
/// been taken meanwhile by someone else on this machine).
const START_TRIES: usize = 3;

/// Why the cluster cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    (!std::path::Path::new(ETCD).exists()).then(|| {
        format!("{ETCD} is not installed (Debian: apt-get install etcd-server; CI has it)")
    })
}

/// One member: its process (killed on drop, before its directory goes).
struct Member {
    child: Option<common::Running>,
    dir: tempfile::TempDir,
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Its Raft id as etcd's JSON writes it (decimal).
    id: String,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// Three etcd members on loopback; every one killed on drop.
pub struct EtcdCluster {
    members: Vec<Member>,
    token: String,
}

/// What a member's `/v3/maintenance/status` says.
struct Status {
    member_id: String,
    /// The leader's id; empty or "0" when it knows none.
    leader: String,
}

impl EtcdCluster {
    /// Three members, started, with a leader all of them follow.
    pub fn start() -> EtcdCluster {
        let mut why = String::new();
        for _ in 0..START_TRIES {
            let mut cluster = EtcdCluster {
                members: (1..=3)
                    .map(|i| Member {
                        child: None,
                        dir: tempfile::tempdir().expect("a member's temp dir"),
                        name: format!("m{i}"),
                        client_port: common::free_port(),
                        peer_port: common::free_port(),
                        id: String::new(),
                    })
                    .collect(),
                token: format!(
                    "status-board-bench-{}-{}",
                    std::process::id(),
                    common::free_port()
                ),
            };
            for i in 0..3 {
                cluster.spawn(i, "new");
            }
            match cluster.wait_healthy() {
                Ok(()) => return cluster,
                Err(e) => why = e,
            }
        }
        panic!("the etcd cluster did not start in {START_TRIES} tries: {why}");
    }

    /// `--etcd`'s value: every member's client URL.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.members.iter().map(Member::client_url).collect();
        urls.join(",")
    }

    /// Starts member `i`: `state` is `new`, or `existing` on its data
    /// directory (where etcd then ignores the initial flags).
    fn spawn(&mut self, i: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        let member = &mut self.members[i];
        // Its log to a file in its directory: nothing to drain, and there to
        // read when a start fails.
        let log = File::options()
            .create(true)
            .append(true)
            .open(member.dir.path().join("etcd.log"))
            .expect("the member's log");
        let child = Command::new(ETCD)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(member.dir.path().join("data"))
            .args(["--listen-client-urls", &member.client_url()])
            .args(["--advertise-client-urls", &member.client_url()])
            .args(["--listen-peer-urls", &member.peer_url()])
            .args(["--initial-advertise-peer-urls", &member.peer_url()])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            // Off by default in 3.4: a restarted member would otherwise
            // force an election when it rejoins.
            .arg("--pre-vote=true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        member.child = Some(common::Running(child));
    }

    /// Member `i`'s status, or `None` if it does not answer within a second.
    fn status(&self, i: usize) -> Option<Status> {
        let reply = post_json(self.members[i].client_port, "/v3/maintenance/status", "{}")?;
        Some(Status {
            member_id: reply["header"]["member_id"].as_str()?.to_owned(),
            leader: reply["leader"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Waits until every member answers and all follow the same leader;
    /// notes each member's id. `Err` (what went wrong, with the logs' last
    /// lines) if a member exits or [`READY_BOUND`] passes.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_BOUND;
        loop {
            let exited = self.members.iter_mut().find_map(|member| {
                let status = member.child.as_mut()?.try_wait().ok()??;
                Some(format!("{} exited ({status})", member.name))
            });
            if let Some(exited) = exited {
                return Err(format!("{exited}: {}", self.tails()));
            }
            let statuses: Vec<Option<Status>> = (0..3).map(|i| self.status(i)).collect();
            if statuses.iter().all(Option::is_some) {
                let statuses: Vec<Status> = statuses.into_iter().flatten().collect();
                let leader = &statuses[0].leader;
                if !leader.is_empty()
                    && leader != "0"
                    && statuses.iter().all(|s| &s.leader == leader)
                {
                    for (member, status) in self.members.iter_mut().zip(statuses) {
                        member.id = status.member_id;
                    }
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not healthy within {READY_BOUND:?}: {}",
                    self.tails()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The member every member follows (the cluster is healthy).
    pub fn leader(&mut self) -> usize {
        self.wait_healthy()
            .unwrap_or_else(|why| panic!("etcd: {why}"));
        let leader = self.status(0).map(|s| s.leader).unwrap_or_default();
        self.members
            .iter()
            .position(|m| m.id == leader)
            .unwrap_or_else(|| panic!("the leader {leader:?} is no member"))
    }

    /// kill -9 of member `i`; the moment the signal went.
    pub fn kill(&mut self, i: usize) -> Instant {
        let mut child = self.members[i].child.take().expect("a running member");
        let killed_at = Instant::now();
        let _ = child.kill();
        let _ = child.wait();
        killed_at
    }

    /// Once the running members all follow a leader other than member
    /// `old` (killed): when they were seen to, asked every few ms; `None`
    /// if not within [`READY_BOUND`].
    pub fn wait_new_leader(&self, old: usize) -> Option<Instant> {
        let old_id = &self.members[old].id;
        let deadline = Instant::now() + READY_BOUND;
        while Instant::now() < deadline {
            let leaders: Vec<Option<String>> = (0..self.members.len())
                .filter(|&i| self.members[i].child.is_some())
                .map(|i| self.status(i).map(|s| s.leader))
                .collect();
            if let Some(Some(leader)) = leaders.first()
                && leader != old_id
                && !leader.is_empty()
                && leader != "0"
                && leaders.iter().all(|l| l.as_ref() == Some(leader))
            {
                return Some(Instant::now());
            }
            thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Starts member `i` again on its data directory and waits until every
    /// member follows one leader again.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "kill it first");
        self.spawn(i, "existing");
        self.wait_healthy()
            .unwrap_or_else(|why| panic!("etcd restart of m{}: {why}", i + 1));
    }

    /// The CPU time every running member has used so far.
    pub fn cpu_time(&self) -> Duration {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref())
            .map(|c| cpu_time(c))
            .sum()
    }

    /// The last lines of every member's log.
    fn tails(&self) -> String {
        let mut all = String::new();
        for member in &self.members {
            let text =
                std::fs::read_to_string(member.dir.path().join("etcd.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(5)..];
            all.push_str(&format!("\n--- {} ---\n{}", member.name, tail.join("\n")));
        }
        all
    }
}

/// POSTs `body` to `path` of etcd's JSON gateway at `port`: the reply, or
/// `None` if none comes within a second (a dead or electing member).
fn post_json(port: u16, path: &str, body: &str) -> Option<serde_json::Value> {
    let bound = Duration::from_secs(1);
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), bound).ok()?;
    stream.set_read_timeout(Some(bound)).ok()?;
    stream.set_write_timeout(Some(bound)).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reply = Vec::new();
    // One small JSON object; more is not etcd's status.
    stream.take(1 << 16).read_to_end(&mut reply).ok()?;
    let reply = String::from_utf8(reply).ok()?;
    let (head, json) = reply.split_once("\r\n\r\n")?;
    head.split(' ').nth(1).filter(|code| *code == "200")?;
    serde_json::from_str(json).ok()
}

/// `clients` threads each putting its own key to member `i`, one put after
/// another, for the set duration: etcd's own commit through its JSON
/// gateway, the floor under a gateway's update. HTTP/1.0, a fresh
/// connection per put (on loopback, tens of µs of a commit's ms).
pub fn put_load(cluster: &EtcdCluster, i: usize, clients: usize, s: &Settings) -> Sample {
    let port = cluster.members[i].client_port;
    let start = Instant::now();
    let (measure_from, end) = (start + s.warmup, start + s.warmup + s.duration);
    let runs: Vec<(Vec<Duration>, u64)> = thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|k| {
                scope.spawn(move || {
                    let key = BASE64.encode(format!("/bench-etcd-floor/{k}"));
                    let (mut latencies, mut requests) = (Vec::new(), 0);
                    let mut sent = Instant::now();
                    while sent < end {
                        let value = BASE64.encode(format!("update {requests}"));
                        let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
                        let put = post_json(port, "/v3/kv/put", &body);
                        let now = Instant::now();
                        if put.is_some() && sent >= measure_from {
                            latencies.push(now - sent);
                        }
                        requests += 1;
                        sent = now;
                    }
                    (latencies, requests)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a put thread"))
            .collect()
    });
    let requests = runs.iter().map(|(_, n)| n).sum();
    let mut latencies: Vec<Duration> = runs.into_iter().flat_map(|(l, _)| l).collect();
    latencies.sort_unstable();
    Sample::from_sorted(&latencies, s.duration, requests)
}

/// A gateway, `status_server --etcd`, killed on drop.
pub struct Gateway {
    pub server: common::Server,
}

impl Gateway {
    /// A gateway of `cluster` keeping its board under `prefix`, bound at
    /// `bind` (`tcp://127.0.0.1:*` for a free port), with `extra` arguments.
    pub fn start(cluster: &EtcdCluster, prefix: &str, bind: &str, extra: &[&str]) -> Gateway {
        let urls = cluster.urls();
        let mut command = common::server_command();
        command
            .args([
                "--etcd",
                &urls,
                "--etcd-prefix",
                prefix,
                "--bind",
                bind,
                "--quiet",
            ])
            .args(extra)
            .env_remove("STATUS_BOARD_ETCD")
            .stdin(Stdio::null());
        let (child, stdout, stderr) = common::spawn_piped(&mut command);
        let child = common::Running(child);
        // It may name etcd before it says where it waits for clients.
        let waiting = std::panic::catch_unwind(|| stdout.find("Waiting for clients on"))
            .unwrap_or_else(|panic| {
                eprintln!("the gateway did not start: {:?}", stderr.rest());
                std::panic::resume_unwind(panic)
            });
        Gateway {
            server: common::Server {
                child,
                endpoint: common::endpoint_from_waiting_line(&waiting),
                stdout,
                stderr,
            },
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// kill -9; the moment the signal went.
    pub fn kill(mut self) -> Instant {
        let killed_at = Instant::now();
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        killed_at
    }
}
