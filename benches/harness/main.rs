//! The benchmark harness: `cargo bench --bench harness` prints markdown tables.
//!
//! Every figure is measured side by side in one run, interleaved, median of
//! several runs: our server, the libzmq floor (a bare REP socket in a child
//! process that answers with a fixed reply of the same size), the Python
//! original (when python3 and pyzmq are there) and Redis (when installed).
//! `-- --smoke` runs every section briefly so that CI keeps the harness alive;
//! its figures mean nothing. `-- --only=NAME[,NAME…]` runs some sections.
//! No figure is ever asserted.
//!
//! # Layout
//!
//! - `main.rs`: the settings, the arguments, a watchdog; runs the sections.
//! - `load.rs`: the load generator (closed-loop REQ clients, one update at a
//!   time, background polls); every receive bounded.
//! - `stats.rs`: samples, medians, percentiles, interleaved runs, table cells.
//! - `process.rs`: child processes, their lines, their memory and CPU.
//! - `targets/`: what is measured: ours, the libzmq floor, the Python
//!   original, Redis, the web gateway, an etcd cluster and its gateways.
//! - `sections/`: one file per section of the report (the list is
//!   `sections::ALL`).

#[path = "../../tests/common/mod.rs"]
mod common;

mod load;
mod process;
mod sections;
mod stats;
mod targets;

use std::fmt::Write as _;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use targets::floor::{SERVE_FLOOR, SERVE_FLOOR_PUB, serve_floor, serve_floor_pub};

/// How long and how often to measure.
pub struct Settings {
    pub smoke: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub repeats: usize,
    pub clients: Vec<usize>,
    pub boards: Vec<usize>,
    pub one_shots: usize,
    pub memory_entries: usize,
    /// The longest a section may run before the harness gives up on it.
    pub section_bound: Duration,
}

impl Settings {
    fn from_args() -> Settings {
        let smoke = std::env::args().any(|a| a == "--smoke");
        let full = Settings {
            smoke,
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            repeats: 3,
            clients: vec![1, 4, 16],
            boards: vec![1, 1_000, 10_000],
            one_shots: 40,
            memory_entries: 100_000,
            section_bound: Duration::from_secs(1_800),
        };
        match smoke {
            true => Settings {
                duration: Duration::from_millis(150),
                warmup: Duration::from_millis(30),
                repeats: 1,
                one_shots: 3,
                section_bound: Duration::from_secs(300),
                ..full
            },
            false => full,
        }
    }
}

/// The sections named by `--only=polls,updates` or `--only=polls --only=updates`
/// (empty: all); exits with the list of names if one is unknown.
fn only() -> Vec<String> {
    let only: Vec<String> = std::env::args()
        .filter_map(|a| a.strip_prefix("--only=").map(str::to_owned))
        .flat_map(|list| list.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let names: Vec<&str> = sections::ALL.iter().map(|(name, _)| *name).collect();
    if let Some(unknown) = only.iter().find(|o| !names.contains(&o.as_str())) {
        eprintln!(
            "harness: no section {unknown:?}; the sections: {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    only
}

/// The bound of last resort: every wait in the harness has its own bound,
/// but should a section still run past `section_bound`, the watchdog says
/// which, kills the harness's children and exits non-zero, so that a hang in
/// CI's smoke run is a failure that names its place. Send it each section's
/// name as it starts.
fn watchdog(bound: Duration) -> mpsc::Sender<&'static str> {
    let (tx, rx) = mpsc::channel::<&'static str>();
    thread::spawn(move || {
        let mut current = rx.recv().ok();
        let mut deadline = Instant::now() + bound;
        while let Some(section) = current {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(next) => (current, deadline) = (Some(next), Instant::now() + bound),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!("harness: the {section} section ran past {bound:?}: giving up");
                    process::kill_children();
                    std::process::exit(3);
                }
            }
        }
    });
    tx
}

fn main() {
    if let Some(file) =
        std::env::args().find_map(|a| a.strip_prefix(SERVE_FLOOR).map(str::to_owned))
    {
        return serve_floor(&file);
    }
    if std::env::args().any(|a| a == SERVE_FLOOR_PUB) {
        return serve_floor_pub();
    }
    let s = Settings::from_args();
    let only = only();
    let mut out = String::new();
    writeln!(
        out,
        "# status-board benchmarks{}\n\n{} cores; {} s per run after {} ms warm-up, median of {} interleaved runs.\n",
        if s.smoke { " (smoke run: figures mean nothing)" } else { "" },
        thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        s.duration.as_secs_f64(),
        s.warmup.as_millis(),
        s.repeats
    )
    .ok();
    // Each section is printed as it is done: a later failure keeps the earlier figures.
    print!("{out}");
    let watchdog = watchdog(s.section_bound);
    for (name, section) in sections::ALL {
        if only.is_empty() || only.iter().any(|o| o == name) {
            let _ = watchdog.send(name);
            let started = Instant::now();
            let mut part = String::new();
            section(&s, &mut part);
            print!("{part}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
        }
    }
}
