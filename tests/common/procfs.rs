//! What Linux's /proc says of a child: its memory and CPU time. A figure
//! that cannot be read fails the test that asked, saying why: a bound on
//! memory that is never checked proves nothing.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::process::Child;
use std::time::Duration;

/// A `KEY:   N kB` figure of `/proc/PID/status`, in KiB.
fn status_kib(child: &Child, key: &str) -> u64 {
    let path = format!("/proc/{}/status", child.id());
    let status =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} figure in {path}"))
}

/// Peak resident memory of a process in KiB (`VmHWM`).
pub fn peak_rss_kib(child: &Child) -> u64 {
    status_kib(child, "VmHWM")
}

/// Resident memory of a process now, in KiB (`VmRSS`).
pub fn rss_kib(child: &Child) -> u64 {
    status_kib(child, "VmRSS")
}

/// CPU time the process has used, user and system.
pub fn cpu_time(child: &Child) -> Duration {
    let path = format!("/proc/{}/stat", child.id());
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a command name")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}
