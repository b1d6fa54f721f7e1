//! Faults injected on purpose, for tests that must make storage stop or fail
//! at one exact place, with the real binary:
//!
//! `STATUS_BOARD_TEST_FAULTS=hold-compaction-ms=60000,fail-compaction-dir-sync`
//!
//! - `hold-compaction-ms=N`: pause N ms between writing the compaction file
//!   and renaming it over the log (a test kills the server there);
//! - `fail-compaction-dir-sync`: the directory fsync after a compaction's
//!   rename fails, once (a compaction that fails after its rename);
//! - `fail-compaction-identity`: reading which file a compaction wrote (its
//!   device and inode) fails, once;
//! - `hang-fsync`: once the log is open, every fsync of it never returns, as
//!   on a disk that stopped answering (a test then stops the server).
//!
//! Read once, when the log is open; nothing else reads it.

use std::fs::File;
use std::io;
use std::time::Duration;

/// The environment variable that lists the faults.
pub const FAULTS_ENV: &str = "STATUS_BOARD_TEST_FAULTS";

/// The faults asked for; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Faults {
    pub(super) hold_compaction: Option<Duration>,
    pub(super) fail_compaction_dir_sync: bool,
    pub(super) fail_compaction_identity: bool,
    pub(super) hang_fsync: bool,
}

impl Faults {
    /// The faults `FAULTS_ENV` lists; unknown words are said and ignored.
    pub(super) fn from_env() -> Faults {
        std::env::var(FAULTS_ENV)
            .map(|list| Faults::parse(&list))
            .unwrap_or_default()
    }

    fn parse(list: &str) -> Faults {
        let mut faults = Faults::default();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word.split_once('=') {
                Some(("hold-compaction-ms", ms)) if ms.parse::<u64>().is_ok() => {
                    faults.hold_compaction = ms.parse().ok().map(Duration::from_millis);
                }
                None if word == "fail-compaction-dir-sync" => {
                    faults.fail_compaction_dir_sync = true;
                }
                None if word == "fail-compaction-identity" => {
                    faults.fail_compaction_identity = true;
                }
                None if word == "hang-fsync" => faults.hang_fsync = true,
                _ => eprintln!("warning: {FAULTS_ENV}: unknown fault {word:?} ignored"),
            }
        }
        faults
    }
}

/// `file.sync_data()`, which never returns under `hang-fsync`.
pub(super) fn sync_data(file: &File, hang: bool) -> io::Result<()> {
    if hang {
        loop {
            // Woken by nobody: the process ends with this thread parked here.
            std::thread::park();
        }
    }
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_a_list() {
        assert_eq!(Faults::parse(""), Faults::default());
        let faults = Faults::parse(
            "hold-compaction-ms=250, fail-compaction-dir-sync,nonsense,hang-fsync,fail-compaction-identity",
        );
        assert_eq!(faults.hold_compaction, Some(Duration::from_millis(250)));
        assert!(faults.fail_compaction_dir_sync);
        assert!(faults.hang_fsync);
        assert!(faults.fail_compaction_identity);
    }
}
