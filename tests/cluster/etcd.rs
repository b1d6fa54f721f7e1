//! A real etcd cluster on loopback: three members, each in its own temporary
//! directory with its log there, on free ports, their peer traffic through
//! [`Network`]'s proxies; killed, paused, resumed, restarted and asked who
//! leads. Every member is killed on drop, even on a panic, and a failing
//! test prints every member's log.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::peers::Network;
use crate::common::{Running, free_port, run_with_input, send_signal};

pub const ETCD: &str = "/usr/bin/etcd";
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// Bounds a member's start (a first election included) and a leader's election.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a start is tried again when a port picked free was taken meanwhile.
const START_TRIES: usize = 5;

/// Why the etcd tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    [ETCD, ETCDCTL]
        .into_iter()
        .find(|program| !Path::new(program).exists())
        .map(|program| format!("{program} is not installed"))
}

pub const HELP: &str = "They need etcd 3.4 or later at /usr/bin/etcd and /usr/bin/etcdctl \
(Debian: apt-get install --no-install-recommends etcd-server etcd-client).";

/// One member: its directory, ports and process.
pub struct Member {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub client_port: u16,
    /// Where it listens for peers (its proxy forwards there).
    peer_port: u16,
    /// Its Raft id, as etcd writes it in JSON (decimal).
    pub id: String,
    child: Option<Running>,
    /// Its log lines as they come (they also go to `log`).
    lines: Option<Receiver<String>>,
    /// Paused with SIGSTOP.
    paused: bool,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Whether it runs and is not paused: it can answer.
    pub fn answers(&self) -> bool {
        self.child.is_some() && !self.paused
    }
}

pub struct Cluster {
    pub members: Vec<Member>,
    pub network: Network,
    token: String,
}

impl Cluster {
    /// Three members, started and agreed on a leader.
    pub fn start() -> Cluster {
        Cluster::start_with(3)
    }

    pub fn start_with(size: usize) -> Cluster {
        let network = Network::start(size);
        let token = format!("status-board-test-{}-{}", std::process::id(), free_port());
        let members = (0..size)
            .map(|i| Member {
                name: format!("m{}", i + 1),
                dir: tempfile::tempdir().expect("a member's temp dir"),
                client_port: 0,
                peer_port: 0,
                id: String::new(),
                child: None,
                lines: None,
                paused: false,
            })
            .collect();
        let mut cluster = Cluster {
            members,
            network,
            token,
        };
        for attempt in 1..=START_TRIES {
            match cluster.try_start() {
                Ok(()) => break,
                Err(why) if attempt < START_TRIES && why.contains("address already in use") => {
                    eprintln!("etcd start, attempt {attempt}: {why}; again on other ports");
                    cluster.kill_all_and_wipe();
                }
                Err(why) => panic!("the etcd cluster did not start: {why}"),
            }
        }
        for i in 0..size {
            let status = cluster
                .status(i)
                .unwrap_or_else(|| panic!("{} answers no status", cluster.members[i].name));
            cluster.members[i].id = status.member_id;
        }
        cluster.leader();
        cluster
    }

    fn try_start(&mut self) -> Result<(), String> {
        for (i, member) in self.members.iter_mut().enumerate() {
            member.client_port = free_port();
            member.peer_port = free_port();
            self.network.set_target(i, member.peer_port);
        }
        for i in 0..self.members.len() {
            self.spawn(i, "new");
        }
        for i in 0..self.members.len() {
            self.wait_ready(i)?;
        }
        Ok(())
    }

    fn kill_all_and_wipe(&mut self) {
        for (i, member) in self.members.iter_mut().enumerate() {
            member.child = None;
            member.lines = None;
            self.network.set_pid(i, None);
            let _ = std::fs::remove_dir_all(member.dir.path().join("data"));
        }
    }

    /// `--initial-cluster`: every member at its proxy.
    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .zip(&self.network.proxy_ports)
            .map(|(m, port)| format!("{}=http://127.0.0.1:{port}", m.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts member `i` (`state`: `new` or `existing`); its data directory
    /// decides whether etcd reads the initial flags at all.
    fn spawn(&mut self, i: usize, state: &str) {
        let initial_cluster = self.initial_cluster();
        let proxy = self.network.proxy_ports[i];
        let member = &mut self.members[i];
        let client = member.client_url();
        let data = member.dir.path().join("data");
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(member.log_path())
            .expect("open the member's log");
        let _ = writeln!(log, "===== start {} ({state}) =====", member.name);
        let mut command = Command::new(ETCD);
        command
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", member.peer_port))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{proxy}"))
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            // Off by default in 3.4: without it an isolated member inflates
            // the term and forces an election when it rejoins.
            .arg("--pre-vote=true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn etcd");
        let stderr = child.stderr.take().expect("piped stderr");
        member.lines = Some(tee(stderr, log));
        self.network.set_pid(i, Some(child.id()));
        member.child = Some(Running(child));
        member.paused = false;
    }

    /// Waits for member `i`'s "ready to serve client requests" (after it has
    /// joined a cluster that has a leader).
    fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let member = &self.members[i];
        let lines = member.lines.as_ref().expect("a started member");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("ready to serve client requests") => return Ok(()),
                Ok(line) if line.contains("address already in use") => {
                    return Err(format!("{}: {line}", member.name));
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{} not ready within {START_TIMEOUT:?}",
                        member.name
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} exited before it was ready", member.name));
                }
            }
        }
    }

    /// `http://127.0.0.1:C1,…` for `members`.
    pub fn urls_of(&self, members: &[usize]) -> String {
        members
            .iter()
            .map(|&i| self.members[i].client_url())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every member's client URL, comma-separated (`--etcd`'s value).
    pub fn urls(&self) -> String {
        self.urls_of(&(0..self.members.len()).collect::<Vec<_>>())
    }

    /// kill -9 of member `i`; returns when it is gone.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.members[i].child.take().expect("a running member");
        let _ = child.kill();
        let _ = child.wait();
        self.members[i].lines = None;
        self.network.set_pid(i, None);
    }

    /// Starts member `i` again on its data directory and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "kill it first");
        self.spawn(i, "existing");
        self.wait_ready(i)
            .unwrap_or_else(|why| panic!("restart of {}: {why}", self.members[i].name));
    }

    /// SIGSTOP: it holds its sockets and answers nothing.
    pub fn pause(&mut self, i: usize) {
        let member = &mut self.members[i];
        send_signal(
            member.child.as_ref().expect("a running member"),
            libc::SIGSTOP,
        );
        member.paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        let member = &mut self.members[i];
        send_signal(
            member.child.as_ref().expect("a running member"),
            libc::SIGCONT,
        );
        member.paused = false;
    }

    /// Member `i`'s `/v3/maintenance/status` through etcd's JSON gateway;
    /// `None` if it does not answer within a second.
    pub fn status(&self, i: usize) -> Option<Status> {
        let reply = post_json(self.members[i].client_port, "/v3/maintenance/status", "{}")?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        Some(Status {
            member_id: text(&reply["header"]["member_id"])?,
            leader: text(&reply["leader"]).unwrap_or_default(),
        })
    }

    /// The member a majority of members follow, once they agree on one;
    /// panics (saying what each said) if they do not within [`LEADER_TIMEOUT`].
    pub fn leader(&self) -> usize {
        self.leader_among(&(0..self.members.len()).collect::<Vec<_>>())
    }

    /// The leader that a majority of the whole cluster, asked among
    /// `members`, agree on.
    pub fn leader_among(&self, members: &[usize]) -> usize {
        let quorum = self.members.len() / 2 + 1;
        let deadline = Instant::now() + LEADER_TIMEOUT;
        loop {
            let statuses: Vec<(usize, Option<Status>)> = members
                .iter()
                .filter(|&&i| self.members[i].answers())
                .map(|&i| (i, self.status(i)))
                .collect();
            for (_, status) in &statuses {
                let Some(status) = status else { continue };
                let agreeing = statuses
                    .iter()
                    .filter(|(_, s)| s.as_ref().is_some_and(|s| s.leader == status.leader))
                    .count();
                let leader = self.members.iter().position(|m| m.id == status.leader);
                if let Some(leader) = leader
                    && agreeing >= quorum
                    && members.contains(&leader)
                {
                    return leader;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader agreed by {quorum} members within {LEADER_TIMEOUT:?}: {statuses:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs etcdctl against `members` with `args`; its stdout, or a panic
    /// with its stderr.
    pub fn etcdctl(&self, members: &[usize], args: &[&str]) -> String {
        self.etcdctl_with_input(members, args, "")
    }

    /// [`Cluster::etcdctl`] with `input` on its stdin (`etcdctl txn`).
    pub fn etcdctl_with_input(&self, members: &[usize], args: &[&str], input: &str) -> String {
        let output = run_with_input(
            Command::new(ETCDCTL)
                .env("ETCDCTL_API", "3")
                .arg("--endpoints")
                .arg(self.urls_of(members))
                .args(["--command-timeout", "5s"])
                .args(args),
            input,
            Duration::from_secs(10),
        );
        assert!(output.status.success(), "etcdctl {args:?}: {output:?}");
        String::from_utf8(output.stdout).expect("UTF-8 from etcdctl")
    }

    /// The last `count` lines of every member's log.
    pub fn logs(&self, count: usize) -> String {
        let mut all = String::new();
        for member in &self.members {
            let text = std::fs::read_to_string(member.log_path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(count)..];
            all.push_str(&format!(
                "----- {} ({}), last {} lines -----\n{}\n",
                member.name,
                member.log_path().display(),
                tail.len(),
                tail.join("\n")
            ));
        }
        all
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.logs(60));
        }
        // Running kills each member; a paused one dies of SIGKILL too.
    }
}

/// What `/v3/maintenance/status` says.
#[derive(Debug, Clone)]
pub struct Status {
    pub member_id: String,
    /// The leader's id; empty or "0" when it knows none.
    pub leader: String,
}

/// Copies a member's stderr into its log file and hands each line on.
fn tee(stream: impl Read + Send + 'static, mut log: File) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            // The receiver may be gone (the test no longer waits): keep logging.
            let _ = tx.send(line);
        }
    });
    rx
}

/// POSTs `body` to etcd's JSON gateway at `port`; the reply as JSON, or
/// `None` if none comes within a second (a paused or dead member).
pub fn post_json(port: u16, path: &str, body: &str) -> Option<serde_json::Value> {
    let timeout = Duration::from_secs(1);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    let reply = String::from_utf8(reply).ok()?;
    let (head, json) = reply.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(json).ok()
}
