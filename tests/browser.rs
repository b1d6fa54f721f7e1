//! status_web in a real browser: each `tests/browser/*.test.mjs` runs under
//! `node --test`, driving Debian's Chromium with playwright-core against the
//! real binaries, whose paths it gets from STATUS_SERVER, STATUS_CLIENT and
//! STATUS_WEB. Screenshots go to `target/tmp/browser/`.
//!
//! It needs node, `npm ci --prefix tests/browser` (playwright-core) and
//! Chromium; without them the tests are reported as ignored, with the reason
//! (under `CI=true`, failed).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

fn main() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = match () {
        _ if Command::new("node").arg("--version").output().is_err() => {
            Some("cannot run node".to_owned())
        }
        _ if !Path::new(DIR).join("node_modules/playwright-core").is_dir() => {
            Some("playwright-core is not installed in tests/browser/node_modules".to_owned())
        }
        _ if !Path::new(&chromium).exists() => Some(format!("no Chromium at {chromium}")),
        _ => None,
    };
    let tests = suites()
        .into_iter()
        .map(|file| {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".test.mjs"))
                .unwrap_or("browser")
                .replace('-', "_");
            let name: &'static str = Box::leak(name.into_boxed_str());
            let test: common::Needing = (name, Box::new(move || run(&file)));
            test
        })
        .collect();
    common::run_needing(
        "browser",
        missing,
        "They need node, `npm ci --prefix tests/browser`, and Chromium \
         (apt-get install --no-install-recommends chromium, or CHROMIUM=/path).",
        tests,
    )
}

/// The test files, in name order.
fn suites() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_str().is_some_and(|p| p.ends_with(".test.mjs")))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs one file under `node --test`; its TAP report is the failure's text.
fn run(file: &Path) -> Result<(), String> {
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let output = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=tap"])
        .arg(file)
        .current_dir(DIR)
        .env("STATUS_SERVER", env!("CARGO_BIN_EXE_status_server"))
        .env("STATUS_CLIENT", env!("CARGO_BIN_EXE_status_client"))
        .env("STATUS_WEB", env!("CARGO_BIN_EXE_status_web"))
        .env("SCREENSHOT_DIR", &screenshots)
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    let failed =
        !output.status.success() || !report.contains("# fail 0") || report.contains("# pass 0\n");
    // Said on success too: a wall-screen page is judged by eye as well.
    eprintln!("screenshots: {}", screenshots.display());
    match failed {
        false => Ok(()),
        true => Err(format!(
            "node --test {} failed:\n{report}\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}
