//! Suites whose real part may be missing (the Python original, root, a
//! browser, systemd-analyze): their own harness (libtest-mimic) decides at run
//! time, and says why a test cannot run.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

/// A test of a suite that needs a part this machine may not have.
pub type Needing = (&'static str, Box<dyn FnOnce() -> Result<(), String> + Send>);

/// Runs `tests` with libtest-mimic (the harness of the suites that decide at
/// run time). When their real part is `missing`, they are reported as
/// ignored and the reason is printed once; under `CI=true` they fail with it.
pub fn run_needing(suite: &str, missing: Option<String>, help: &str, tests: Vec<Needing>) -> ! {
    let arguments = libtest_mimic::Arguments::from_args();
    let required = under_ci();
    if let Some(why) = &missing {
        let what = if required {
            "FAIL (CI=true)"
        } else {
            "are ignored"
        };
        eprintln!("\n{suite}: these tests {what}: {why}\n{help}\n");
    }
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let ignored = missing.is_some() && !required;
            let missing = missing.clone();
            libtest_mimic::Trial::test(name, move || match missing {
                Some(why) => Err(why.into()),
                None => test().map_err(Into::into),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit()
}

/// Whether this run is CI's (`CI=true`), where every part must be there: a
/// test that cannot run its real part fails there, saying why.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
