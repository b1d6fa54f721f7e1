//! A cluster on etcd: updates and polls through a gateway
//! (`status_server --etcd`) against the single server, and how long writes
//! stop when the etcd leader or a gateway is killed.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::load::{PirateWriter, load, poll_request, update_request};
use crate::process::{cpu_time, output_within, with_cpu, with_server_cpu};
use crate::stats::{interleaved, median, millis};
use crate::targets::etcd::{ETCD, EtcdCluster, Gateway, missing, put_load};
use crate::targets::ours::{ours, ours_on, prefilled_state};

/// How long the failover writer waits for a reply before it gives the
/// request up and sends the next on a fresh socket (to the next endpoint).
const PIRATE_TIMEOUT: Duration = Duration::from_millis(300);

/// How long writes may stay stopped before a kill is counted as never
/// recovered from: it bounds a hang, it measures nothing.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);

/// Lets a gateway bind anywhere free.
const ANY_PORT: &str = "tcp://127.0.0.1:*";

pub fn cluster(s: &Settings, out: &mut String) {
    writeln!(out, "## A cluster on etcd\n").ok();
    if let Some(why) = missing() {
        writeln!(out, "Skipped: {why}.\n").ok();
        eprintln!("cluster: skipped: {why}");
        return;
    }
    let version = output_within(
        Command::new(ETCD).arg("--version"),
        b"",
        Duration::from_secs(10),
    )
    .and_then(|text| {
        let version = text.lines().next()?.strip_prefix("etcd Version: ")?;
        Some(format!("etcd {version}"))
    })
    .unwrap_or_else(|| "etcd".into());
    let mut cluster = EtcdCluster::start();
    writeln!(
        out,
        "Three members of {version} on loopback (`--heartbeat-interval 100 --election-timeout 1000 \
         --pre-vote=true`), each in its own directory on this machine's disk, and gateways \
         (`status_server --etcd`, all three members' URLs) in front of them. The single server \
         has a state file on the same disk.\n"
    )
    .ok();
    updates(s, &mut cluster, out);
    polls(s, &cluster, out);
    writeln!(
        out,
        "Failover: a writer posts updates one after another (`bench-failover: update N`), \
         giving a request up after {} ms without a reply and sending the next on a fresh socket \
         (Lazy Pirate), to the other gateway if it has two. Time from the `kill -9` to the \
         acknowledgement of the first update sent after it, in ms; the killed process is \
         started again after each kill, and the next kill waits until the cluster is healthy \
         (every member follows one leader) and updates go through.\n\n\
         | killed | kills | p50 ms | max ms | new leader elected, p50 ms | requests timed out / refused per kill | never recovered |\n\
         | --- | --- | --- | --- | --- | --- | --- |",
        PIRATE_TIMEOUT.as_millis()
    )
    .ok();
    let kills = if s.smoke { 1 } else { 10 };
    leader_failover(kills, &mut cluster, out);
    gateway_failover(kills, &cluster, out);
    writeln!(out).ok();
}

/// Updates from K clients through a gateway against the single server with
/// `--fsync always` (both acknowledge an update once it is on disk), and
/// against etcd's own puts from as many clients: the floor under a gateway.
fn updates(s: &Settings, cluster: &mut EtcdCluster, out: &mut String) {
    let role = match cluster.leader() {
        0 => "the leader",
        _ => "a follower",
    };
    writeln!(
        out,
        "Updates from K clients, each to its own name: requests/s, latency p50 / p99 / max in µs, \
         and the CPU time per update of every process of the target (the single server; the \
         three etcd members; the gateway and the three members). etcd put: K threads each \
         putting its own key (`POST /v3/kv/put`, HTTP/1.0) to the member the gateway talks to, \
         {role} in this run: etcd's own commit, the floor under a gateway's update.\n\n\
         | K | single `--fsync always` req/s | single µs | etcd put req/s | etcd put µs | gateway req/s | gateway µs | gateway / single | gateway / etcd put | CPU µs: single, etcd put, gateway + etcd |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    .ok();
    let cluster = &*cluster;
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("always.log");
    let single = ours(&[
        "--state",
        state.to_str().expect("UTF-8"),
        "--fsync",
        "always",
    ]);
    let gateway = Gateway::start(cluster, "/bench-updates/", ANY_PORT, &[]);
    let gateway_cpu = || cpu_time(&gateway.server.child) + cluster.cpu_time();
    for &clients in &s.clients {
        let single_run = || {
            with_server_cpu(&single.child, || {
                load(&single.endpoint, clients, &update_request, s)
            })
        };
        let put_run = || with_cpu(|| cluster.cpu_time(), || put_load(cluster, 0, clients, s));
        let gateway_run = || {
            with_cpu(gateway_cpu, || {
                load(gateway.endpoint(), clients, &update_request, s)
            })
        };
        let samples = interleaved(&[&single_run, &put_run, &gateway_run], s.repeats);
        let (single, put, gateway) = (samples[0], samples[1], samples[2]);
        writeln!(
            out,
            "| {clients} | {} | {} | {} | {} | {} | {}, {}, {} |",
            single.cells(),
            put.cells(),
            gateway.cells(),
            gateway.ratio(&single, 2),
            gateway.ratio(&put, 2),
            single.cpu_cell(),
            put.cpu_cell(),
            gateway.cpu_cell()
        )
        .ok();
    }
    writeln!(out).ok();
}

/// `_:` polls through a gateway (answered from its watch-fed copy) against
/// the single server, on the same boards.
fn polls(s: &Settings, cluster: &EtcdCluster, out: &mut String) {
    writeln!(
        out,
        "Polls (`_:`) from K clients, as in the poll section: requests/s and latency p50 / p99 / \
         max in µs. The gateway's board was loaded with `--import` from the single server's \
         state file.\n\n\
         | board | K | single req/s | single µs | gateway req/s | gateway µs | gateway / single |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    )
    .ok();
    let dir = tempfile::tempdir().expect("temp dir");
    for &entries in s.boards.iter().filter(|&&n| n <= 1_000) {
        let state = prefilled_state(dir.path(), entries);
        let single = ours_on(&state, &[]);
        let prefix = format!("/bench-polls-{entries}/");
        // A copy: the single server holds its state file locked.
        let copy = dir.path().join(format!("import-{entries}.log"));
        std::fs::copy(&state, &copy).expect("copy the state file");
        let import = ["--import", copy.to_str().expect("UTF-8")];
        let gateway = Gateway::start(cluster, &prefix, ANY_PORT, &import);
        let (ours, theirs) = (single.request(b"_:"), gateway.server.request(b"_:"));
        let size = match ours.len() == theirs.len() {
            true => format!("{} B", ours.len()),
            false => format!("{} B, gateway {} B", ours.len(), theirs.len()),
        };
        for &clients in &s.clients {
            let samples = interleaved(
                &[
                    &|| load(&single.endpoint, clients, &poll_request, s),
                    &|| load(gateway.endpoint(), clients, &poll_request, s),
                ],
                s.repeats,
            );
            writeln!(
                out,
                "| {entries} ({size}) | {clients} | {} | {} | {} |",
                samples[0].cells(),
                samples[1].cells(),
                samples[1].ratio(&samples[0], 2)
            )
            .ok();
        }
    }
    writeln!(out).ok();
}

/// What a series of kills came to.
#[derive(Default)]
struct Kills {
    /// From each kill to the next acknowledged update.
    recovered: Vec<Duration>,
    /// From each kill to a new leader all running members follow.
    elected: Vec<Duration>,
    never: usize,
    /// The writer's requests timed out, and its updates refused, around the kills.
    timeouts: u64,
    refusals: u64,
    kills: usize,
}

impl Kills {
    /// Once updates go through, `kill` (which returns when it sent the
    /// signal, having waited for what else it wants to time); then the time
    /// until the writer's next acknowledged update.
    fn one(&mut self, writer: &PirateWriter, kill: impl FnOnce(&mut Kills) -> Instant) {
        writer
            .first_ack_sent_after(Instant::now(), FAILOVER_BOUND)
            .expect("updates go through before a kill");
        let before = writer.failures();
        let killed = kill(self);
        match writer.first_ack_sent_after(killed, FAILOVER_BOUND) {
            Some(ack) => self.recovered.push(ack.acked - killed),
            None => self.never += 1,
        }
        let after = writer.failures();
        self.timeouts += after.0 - before.0;
        self.refusals += after.1 - before.1;
        self.kills += 1;
    }

    /// One row of the failover table.
    fn row(self, what: &str, out: &mut String) {
        let recovered = match self.recovered.iter().max() {
            Some(&max) => format!(
                "{} | {} | {}",
                self.recovered.len(),
                millis(median(self.recovered)),
                millis(max)
            ),
            None => "0 | n/a | n/a".into(),
        };
        let elected = match self.elected.is_empty() {
            true => "n/a".into(),
            false => millis(median(self.elected)),
        };
        let per_kill = |n: u64| n as f64 / self.kills.max(1) as f64;
        writeln!(
            out,
            "| {what} | {recovered} | {elected} | {:.1} / {:.1} | {} |",
            per_kill(self.timeouts),
            per_kill(self.refusals),
            self.never
        )
        .ok();
    }
}

/// kill -9 of the etcd leader under a writer through one gateway.
fn leader_failover(kills: usize, cluster: &mut EtcdCluster, out: &mut String) {
    let gateway = Gateway::start(cluster, "/bench-failover/", ANY_PORT, &[]);
    let writer = PirateWriter::start(vec![gateway.endpoint().to_owned()], PIRATE_TIMEOUT);
    let mut result = Kills::default();
    for _ in 0..kills {
        let leader = cluster.leader();
        result.one(&writer, |result| {
            let killed = cluster.kill(leader);
            if let Some(elected) = cluster.wait_new_leader(leader) {
                result.elected.push(elected - killed);
            }
            killed
        });
        cluster.restart(leader);
    }
    result.row("the etcd leader (one gateway)", out);
}

/// kill -9 of the gateway a writer with two endpoints is using.
fn gateway_failover(kills: usize, cluster: &EtcdCluster, out: &mut String) {
    let prefix = "/bench-gateways/";
    let mut gateways: Vec<Option<Gateway>> = (0..2)
        .map(|_| Some(Gateway::start(cluster, prefix, ANY_PORT, &[])))
        .collect();
    let endpoints: Vec<String> = gateways
        .iter()
        .flatten()
        .map(|g| g.endpoint().to_owned())
        .collect();
    let writer = PirateWriter::start(endpoints.clone(), PIRATE_TIMEOUT);
    let mut result = Kills::default();
    for _ in 0..kills {
        let mut at = 0;
        result.one(&writer, |_| {
            at = writer.endpoint();
            gateways[at].take().expect("a running gateway").kill()
        });
        // On the endpoint it had: the writer's list stays right.
        gateways[at] = Some(Gateway::start(cluster, prefix, &endpoints[at], &[]));
    }
    result.row("a gateway (two endpoints)", out);
}
