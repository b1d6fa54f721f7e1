//! The systemd unit in `contrib/`, and the LAN variant its comment describes
//! (the `systemctl edit` lines merged in):
//!
//! - `systemd-analyze verify` is clean once the man page is where the
//!   unit's install steps put it (and is not without it);
//! - `systemd-analyze security` scores each 2.0 or lower;
//! - the server serves with each one's command line inside the sandbox it
//!   sets, as far as a test can tell with no systemd running: under strace,
//!   with the unit's umask, open-file limits and no new privileges (and the
//!   kernel's W^X lock where it has one), it binds, answers, logs a user in
//!   (argon2), raises its open-file limit, keeps its state in
//!   StateDirectory, and makes only the system calls, sockets, writes and
//!   memory mappings the unit allows.
//!
//! Where systemd-analyze, strace or man is missing the tests are reported
//! as ignored, with the reason (under `CI=true`, failed).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit as the repository ships it.
const UNIT: &str = include_str!("../contrib/status-board.service");

/// Where the unit's install steps put the server.
const INSTALLED_AT: &str = "/usr/local/bin/status_server";

/// The highest `systemd-analyze security` exposure allowed (it says "OK" up to 3.9).
const MAX_EXPOSURE: f64 = 2.0;

const BINARY: &str = env!("CARGO_BIN_EXE_status_server");

fn main() {
    let missing = [
        ("systemd-analyze", "--version"),
        ("strace", "-V"),
        ("man", "--version"),
    ]
    .into_iter()
    .find_map(
        |(program, arg)| match Command::new(program).arg(arg).output() {
            Ok(_) => None,
            Err(e) => Some(format!("cannot run {program}: {e}")),
        },
    );
    let tests: Vec<common::Needing> = vec![
        (
            "the_unit_verifies_once_its_man_page_is_installed_as_its_steps_say",
            Box::new(the_unit_verifies_once_its_man_page_is_installed_as_its_steps_say),
        ),
        (
            "the_unit_and_its_lan_variant_score_2_or_lower",
            Box::new(the_unit_and_its_lan_variant_score_2_or_lower),
        ),
        (
            "the_units_command_lines_serve_inside_their_sandbox",
            Box::new(the_units_command_lines_serve_inside_their_sandbox),
        ),
    ];
    common::run_needing(
        "systemd",
        missing,
        "It needs systemd-analyze, strace and man (apt-get install systemd strace man-db).",
        tests,
    )
}

/// The unit, and its LAN variant, with the server built here.
fn units() -> Vec<(&'static str, String)> {
    let lan = with_drop_in(UNIT, &documented_drop_in());
    vec![("loopback", UNIT), ("lan", &lan)]
        .into_iter()
        .map(|(variant, text)| (variant, text.replace(INSTALLED_AT, BINARY)))
        .collect()
}

/// The lines the unit's comment says to add with `systemctl edit`.
fn documented_drop_in() -> Vec<String> {
    let lines: Vec<String> = UNIT
        .lines()
        .skip_while(|line| !line.contains("systemctl edit status-board"))
        .skip(1)
        .map_while(|line| line.strip_prefix("#        "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("[Service]"),
        "the unit's comment shows a drop-in: {lines:?}"
    );
    lines
}

/// `unit` with the `[Service]` lines of `drop_in` read after its own, as
/// systemd reads a drop-in: list settings add to the unit's, and an empty
/// `KEY=` first clears what the unit set.
fn with_drop_in(unit: &str, drop_in: &[String]) -> String {
    let added: String = drop_in[1..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    let at = unit.find("\n[Install]").expect("an [Install] section") + 1;
    format!("{}{added}\n{}", &unit[..at], &unit[at..])
}

/// Writes `text` as `status-board.service` in `dir`.
fn write_unit(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("status-board.service");
    std::fs::write(&path, text).expect("write the unit");
    path
}

/// `systemd-analyze verify` of `unit` with `man` looking in `manpath`:
/// whether it is clean, and what it said.
fn verify(unit: &Path, manpath: &Path) -> (bool, String) {
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .env("MANPATH", manpath)
        .output()
        .expect("systemd-analyze verify");
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success() && said.is_empty(), said)
}

fn the_unit_verifies_once_its_man_page_is_installed_as_its_steps_say() -> Result<(), String> {
    // The install step that writes the man page, run into a stand-in for /.
    let target = UNIT
        .lines()
        .find_map(|line| {
            line.trim_start_matches('#')
                .trim()
                .strip_prefix("status_server --generate man > ")
        })
        .ok_or("no install step writes the man page")?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let page = root.path().join(target.trim_start_matches('/'));
    let section = page.parent().ok_or("a man1 directory")?;
    let manpath = section.parent().ok_or("a man directory")?;
    assert!(
        section.ends_with("man1") && manpath.ends_with("share/man"),
        "where man looks for a page of section 1: {target}"
    );
    std::fs::create_dir_all(section).map_err(|e| e.to_string())?;
    let generated = Command::new(BINARY)
        .args(["--generate", "man"])
        .output()
        .map_err(|e| e.to_string())?;
    assert!(generated.status.success(), "{generated:?}");
    std::fs::write(&page, &generated.stdout).map_err(|e| e.to_string())?;
    let nothing = root.path().join("no-pages");
    std::fs::create_dir(&nothing).map_err(|e| e.to_string())?;
    for (variant, text) in units() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let unit = write_unit(dir.path(), &text);
        let (clean, said) = verify(&unit, &nothing);
        assert!(
            !clean && said.contains("man status_server(1)"),
            "{variant}: without the page, verify says so: {said}"
        );
        let (clean, said) = verify(&unit, manpath);
        assert!(clean, "{variant}: systemd-analyze verify: {said}");
    }
    Ok(())
}

fn the_unit_and_its_lan_variant_score_2_or_lower() -> Result<(), String> {
    for (variant, text) in units() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let unit = write_unit(dir.path(), &text);
        // --threshold is in tenths: exit 1 above it.
        let output = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(&unit)
            .output()
            .map_err(|e| e.to_string())?;
        let report = String::from_utf8_lossy(&output.stdout);
        let overall = report
            .lines()
            .find_map(|line| {
                line.split_once("Overall exposure level for status-board.service: ")
                    .map(|(_, rest)| rest)
            })
            .ok_or_else(|| format!("{variant}: no overall level in {report}"))?;
        let score: f64 = overall
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{variant}: not a score: {overall}"))?;
        eprintln!("{variant}: exposure {overall}");
        assert!(
            score <= MAX_EXPOSURE && output.status.success(),
            "{variant}: exposure {overall}, over {MAX_EXPOSURE}:\n{report}"
        );
    }
    Ok(())
}

/// The value of `key=` in the unit's `[Service]` section (the last, as systemd reads it).
fn setting<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .rev()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .find(|value| !value.is_empty())
}

/// The server traced with strace (one file a thread, in `traces`), under
/// what the unit sets that a process can set for itself: its umask, its
/// open-file limits (the hard one no higher than this test's), no new
/// privileges, and the kernel's W^X lock (PR_SET_MDWE, Linux 6.3+) where
/// there is one. Killed on drop, by its own pid: strace would leave it running.
struct Sandboxed {
    server: common::Server,
    pid: i32,
}

impl Sandboxed {
    fn start(unit: &str, args: &[String], traces: &Path) -> Sandboxed {
        let umask = u32::from_str_radix(setting(unit, "UMask").expect("UMask="), 8)
            .expect("an octal umask");
        let (soft, hard) = setting(unit, "LimitNOFILE")
            .and_then(|limits| limits.split_once(':'))
            .and_then(|(soft, hard)| Some((soft.parse::<u64>().ok()?, hard.parse::<u64>().ok()?)))
            .expect("LimitNOFILE=SOFT:HARD");
        let mut command = Command::new("strace");
        command
            .args(["-ff", "-qq", "-s", "4096", "-o"])
            .arg(traces.join("trace"))
            .arg("--")
            .arg(BINARY)
            .args(args)
            // As systemd starts it: none of this test's environment
            // (cargo's LD_LIBRARY_PATH, say), a plain PATH.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(std::process::Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls
        // (umask, getrlimit, setrlimit, prctl), touching only locals.
        unsafe {
            command.pre_exec(move || {
                libc::umask(umask);
                let mut now = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let hard = hard.min(now.rlim_max);
                let limits = libc::rlimit {
                    rlim_cur: soft.min(hard),
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limits) != 0
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: refused by older kernels.
                libc::prctl(65, 1, 0, 0, 0);
                Ok(())
            });
        }
        let server = common::Server::spawn(&mut command);
        let children = format!("/proc/{0}/task/{0}/children", server.child.id());
        let pid = std::fs::read_to_string(&children)
            .unwrap_or_else(|e| panic!("{children}: {e}"))
            .trim()
            .parse()
            .expect("strace runs the server as its one child");
        Sandboxed { server, pid }
    }

    /// Sends `signal` to the server itself.
    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the server this test started; no memory effects.
        assert_eq!(unsafe { libc::kill(self.pid, signal) }, 0);
    }
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        // Only while strace runs: it outlives the server, so its pid is
        // still the server's (or a zombie's), never another process's.
        if let Ok(None) = self.server.child.try_wait() {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// The system calls `SystemCallFilter=` lets through, expanded with
/// `systemd-analyze syscall-filter` (`~` lines take groups away).
fn allowed_syscalls(unit: &str) -> BTreeSet<String> {
    let listing = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .expect("systemd-analyze syscall-filter");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in listing.lines() {
        match (line.starts_with(char::is_whitespace), line.trim()) {
            (_, "") => {}
            (false, group) => groups.push((group.to_owned(), Vec::new())),
            (true, member) if member.starts_with('#') => {}
            (true, member) => {
                if let Some((_, members)) = groups.last_mut() {
                    members.push(member.to_owned());
                }
            }
        }
    }
    fn expand(name: &str, groups: &[(String, Vec<String>)], into: &mut BTreeSet<String>) {
        match groups.iter().find(|(group, _)| group == name) {
            Some((_, members)) => members.iter().for_each(|m| expand(m, groups, into)),
            None => assert!(!name.starts_with('@'), "unknown group {name}"),
        }
        if !name.starts_with('@') {
            into.insert(name.to_owned());
        }
    }
    let mut allowed = BTreeSet::new();
    for value in unit
        .lines()
        .filter_map(|line| line.strip_prefix("SystemCallFilter="))
    {
        let (deny, names) = match value.strip_prefix('~') {
            Some(names) => (true, names),
            None => (false, value),
        };
        let mut these = BTreeSet::new();
        for name in names.split_whitespace() {
            expand(name, &groups, &mut these);
        }
        match deny {
            true => allowed.retain(|name| !these.contains(name)),
            false => allowed.extend(these),
        }
    }
    assert!(allowed.contains("read"), "{allowed:?}");
    allowed
}

/// One system call of a trace line (`name(args) = result`), or none for
/// strace's own lines (`+++ exited +++`, `--- SIGTERM ---`).
fn call(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.split_once('(')?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some((name, rest))
}

/// The quoted absolute paths among a call's arguments.
fn paths(args: &str) -> Vec<&str> {
    args.split('"')
        .skip(1)
        .step_by(2)
        .filter(|text| text.starts_with('/'))
        .collect()
}

/// What the sandbox would refuse in these traces, one line each.
fn refused_by_the_sandbox(unit: &str, traces: &Path, state_dir: &Path, own: &Path) -> Vec<String> {
    let own = own.to_str().expect("UTF-8");
    let allowed = allowed_syscalls(unit);
    let families: Vec<&str> = setting(unit, "RestrictAddressFamilies")
        .expect("RestrictAddressFamilies=")
        .split_whitespace()
        .collect();
    let state_dir = state_dir.to_str().expect("UTF-8");
    // The calls that name a path: those that may only read it (or write,
    // by their flags), and those that change it.
    const BY_PATH: &str = "open openat openat2 stat lstat newfstatat statx access faccessat \
                           faccessat2 readlink readlinkat";
    const WRITING: &str = "creat mkdir mkdirat rename renameat renameat2 unlink unlinkat link \
                           linkat symlink symlinkat chmod fchmodat truncate chown fchownat lchown";
    let among = |list: &str, name: &str| list.split_whitespace().any(|call| call == name);
    const DEVICES: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
    ];
    let mut refused = Vec::new();
    let files = std::fs::read_dir(traces).expect("the traces");
    for file in files.map(|f| f.expect("a trace").path()) {
        let text = std::fs::read_to_string(&file).expect("read a trace");
        for line in text.lines() {
            let Some((name, args)) = call(line) else {
                continue;
            };
            let mut refuse = |why: &str| refused.push(format!("{why}: {line}"));
            if !allowed.contains(name) {
                refuse("SystemCallFilter=");
            }
            // MemoryDenyWriteExecute=: no mapping both writable and
            // executable, and none made executable afterwards.
            let exec = args.contains("PROT_EXEC");
            if (name == "mmap" && exec && args.contains("PROT_WRITE"))
                || (name.ends_with("mprotect") && exec)
                || (name == "shmat" && args.contains("SHM_EXEC"))
            {
                refuse("MemoryDenyWriteExecute=");
            }
            if matches!(name, "socket" | "socketpair")
                && !families.iter().any(|f| args.starts_with(&format!("{f},")))
            {
                refuse("RestrictAddressFamilies=");
            }
            if !among(BY_PATH, name) && !among(WRITING, name) {
                continue;
            }
            let writes = among(WRITING, name)
                || ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                    .iter()
                    .any(|flag| args.contains(flag));
            for path in paths(args) {
                let in_state = path == state_dir || path.starts_with(&format!("{state_dir}/"));
                if writes && !in_state {
                    refuse("ProtectSystem=strict (writes outside StateDirectory=)");
                }
                if path.starts_with("/dev/") && !DEVICES.contains(&path) {
                    refuse("PrivateDevices=");
                }
                let process = path
                    .strip_prefix("/proc/")
                    .map(|rest| rest.split('/').next().unwrap_or(""));
                if process.is_some_and(|p| {
                    !matches!(p, "self" | "thread-self") && p.parse::<u32>().is_err()
                }) {
                    refuse("ProcSubset=pid");
                }
                // The binary and this test's files stand where systemd's would not.
                let ours = path == BINARY || path.starts_with(&format!("{own}/"));
                if !ours
                    && ["/home/", "/root/", "/run/user/"]
                        .iter()
                        .any(|d| path.starts_with(d))
                {
                    refuse("ProtectHome=");
                }
            }
        }
    }
    refused
}

fn the_units_command_lines_serve_inside_their_sandbox() -> Result<(), String> {
    for (variant, unit) in units() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // What systemd makes before it starts the server.
        let state_dir = dir.path().join("state");
        std::fs::create_dir(&state_dir).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let credentials = dir.path().join("credentials");
        std::fs::create_dir(&credentials).map_err(|e| e.to_string())?;
        let hash = status_board::server::auth::hash_password(common::PASSWORD)?;
        let users = credentials.join("users");
        std::fs::write(&users, format!("alice:{hash}\n")).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| e.to_string())?;
        let traces = dir.path().join("traces");
        std::fs::create_dir(&traces).map_err(|e| e.to_string())?;

        let exec = setting(&unit, "ExecStart").expect("ExecStart=");
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some(BINARY), "{variant}");
        let logins = exec.contains("--auth");
        // Its own address on a free port: this test talks over loopback.
        let args: Vec<String> = words
            .map(|word| match word.starts_with("tcp://") {
                true => "tcp://127.0.0.1:*".to_owned(),
                false => word
                    .replace("${STATE_DIRECTORY}", state_dir.to_str().expect("UTF-8"))
                    .replace(
                        "${CREDENTIALS_DIRECTORY}",
                        credentials.to_str().expect("UTF-8"),
                    ),
            })
            .collect();
        assert_eq!(logins, variant == "lan", "the LAN variant wants logins");

        let mut sandboxed = Sandboxed::start(&unit, &args, &traces);
        let server = &sandboxed.server;
        let clients = server.stderr.find("Clients:");
        assert!(
            clients.contains("raised from 1024 to"),
            "{variant}: raises its open-file limit: {clients}"
        );
        let reply = match logins {
            true => server.request_text_as("alice", common::PASSWORD, "alice: in"),
            false => server.request_text("alice: in"),
        };
        assert_eq!(reply, "- alice: in\n", "{variant}");
        if logins {
            sandboxed.signal(libc::SIGHUP);
            let reloaded = server.stderr.find("reloaded");
            assert!(reloaded.contains(": 1 user"), "{variant}: {reloaded}");
        }
        sandboxed.signal(libc::SIGTERM);
        let stopped = server.stderr.find("Stopped:");
        assert_eq!(
            stopped, "Stopped: 1 name on the board, all of it on disk.",
            "{variant}"
        );
        // strace ends with the server, with its exit code.
        let status = common::wait_timeout(&mut sandboxed.server.child, common::EXIT_TIMEOUT)
            .ok_or_else(|| format!("{variant}: no exit after SIGTERM"))?;
        assert_eq!(status.code(), Some(0), "{variant}");
        let state = state_dir.join("board.log");
        let mode = std::fs::metadata(&state)
            .map_err(|e| format!("{variant}: the state in StateDirectory: {e}"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{variant}");

        let refused = refused_by_the_sandbox(&unit, &traces, &state_dir, dir.path());
        assert!(
            refused.is_empty(),
            "{variant}: the sandbox would refuse:\n{}",
            refused.join("\n")
        );
    }
    Ok(())
}
