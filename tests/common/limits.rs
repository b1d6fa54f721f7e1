//! Open-file limits: a child's, set between fork and exec, and this
//! process's own (the attacks need more descriptors than the usual 1 024).

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::process::{Command, Stdio};

use super::status_server::{Server, server_command};

/// Makes `command`'s child start with an open-file limit of `soft` (and
/// `hard`, if given), set between fork and exec.
pub fn limit_open_files(command: &mut Command, soft: u64, hard: Option<u64>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only getrlimit and setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = soft;
            if let Some(hard) = hard {
                limit.rlim_max = hard;
            }
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The open-file limit of this process, raised to at least `wanted` (the
/// attacks need more than the usual 1 024).
pub fn raise_own_open_file_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct that lives here.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur >= wanted {
            return;
        }
        assert!(
            limit.rlim_max >= wanted,
            "this test needs {wanted} descriptors; the hard limit is {}",
            limit.rlim_max
        );
        limit.rlim_cur = wanted;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// The server in memory on a free loopback port, with an open-file limit of
/// `soft` (and `hard`, if given).
pub fn server_with_open_files(soft: u64, hard: Option<u64>) -> Server {
    let mut command = server_command();
    command
        .args(["--bind", "tcp://127.0.0.1:*", "--in-memory", "--quiet"])
        .stdin(Stdio::null());
    limit_open_files(&mut command, soft, hard);
    Server::spawn(&mut command)
}
