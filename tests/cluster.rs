//! The board on a real etcd cluster: three etcd members and several
//! `status_server --etcd` gateways on loopback, each on free ports in its own
//! temporary directory, through crashes, pauses and a partition (issue 22).
//!
//! Its own harness (libtest-mimic): without etcd the cluster tests are
//! reported as ignored, with the reason, and fail under `CI=true`. The
//! history checker's own tests need nothing and always run.
//!
//! | module | its job |
//! |---|---|
//! | [`cluster::etcd`] | the etcd members: start, kill, pause, restart, who leads |
//! | [`cluster::peers`] | the proxies between members, to cut one off |
//! | [`cluster::gateway`] | the gateways, their publishers and their boards |
//! | [`cluster::writers`] | writers posting numbered updates, every operation recorded |
//! | [`cluster::history`] | the checker over those operations and what watchers saw |
//! | [`cluster::scenarios`] | the tests themselves |

mod common;

mod cluster {
    pub mod etcd;
    pub mod gateway;
    pub mod history;
    pub mod peers;
    pub mod scenarios;
    pub mod writers;
}

use cluster::{etcd, history, scenarios};

fn main() {
    let arguments = libtest_mimic::Arguments::from_args();
    let missing = etcd::missing();
    let required = common::under_ci();
    if let Some(why) = &missing {
        let what = if required {
            "FAIL (CI=true)"
        } else {
            "are ignored"
        };
        eprintln!("\ncluster: the etcd tests {what}: {why}\n{}\n", etcd::HELP);
    }
    let mut trials: Vec<libtest_mimic::Trial> = history::TESTS
        .into_iter()
        .map(|(name, test)| {
            libtest_mimic::Trial::test(name, move || {
                test();
                Ok(())
            })
        })
        .collect();
    trials.extend(scenarios::TESTS.into_iter().map(|(name, test)| {
        let ignored = missing.is_some() && !required;
        let missing = missing.clone();
        libtest_mimic::Trial::test(name, move || match missing {
            Some(why) => Err(why.into()),
            None => {
                test();
                Ok(())
            }
        })
        .with_ignored_flag(ignored)
    }));
    libtest_mimic::run(&arguments, trials).exit()
}
