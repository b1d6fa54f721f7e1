//! CURVE (encryption, logins by key) with the real binaries.
//!
//! The default build's vendored libzmq has no CURVE: there, the tests check
//! that every `--curve-*` option is refused with one line saying how to get
//! the CURVE build, and the CURVE tests are reported as ignored. In the CURVE
//! build (`--config .cargo/curve.toml`) it is the other way round. CI runs
//! both, with `STATUS_BOARD_EXPECT_CURVE=1` in the CURVE build's run, so that
//! a CURVE build that lost CURVE fails rather than skips.

mod common;

use std::process::Command;

use common::{CountingProxy, EXIT_LOGIN, Server, client, run_command, run_server};
use libtest_mimic::{Arguments, Failed, Trial};

/// Tests for the CURVE build.
const WITH_CURVE: [(&str, fn()); 3] = [
    (
        "a_key_user_sets_their_name_encrypted_and_nothing_else",
        a_key_user_sets_their_name_encrypted_and_nothing_else,
    ),
    (
        "an_unknown_key_is_refused_at_once",
        an_unknown_key_is_refused_at_once,
    ),
    (
        "keys_are_made_private_and_never_overwritten",
        keys_are_made_private_and_never_overwritten,
    ),
];

/// Tests for the default build.
const WITHOUT_CURVE: [(&str, fn()); 1] = [(
    "every_curve_option_is_refused_with_the_way_to_the_curve_build",
    every_curve_option_is_refused_with_the_way_to_the_curve_build,
)];

fn main() {
    let arguments = Arguments::from_args();
    let curve = status_board::curve::available();
    let expected = std::env::var("STATUS_BOARD_EXPECT_CURVE").is_ok_and(|v| v == "1");
    if !curve {
        eprintln!(
            "\ncurve: this build has no CURVE, so its CURVE tests {}; \
             the CURVE build runs them: cargo test --release --config .cargo/curve.toml \
             --target-dir target/curve (after apt-get install libzmq3-dev)\n",
            if expected {
                "FAIL (STATUS_BOARD_EXPECT_CURVE=1)"
            } else {
                "are ignored"
            }
        );
    }
    let trial = |name: &str, test: fn(), runs: bool| {
        Trial::test(name, move || {
            if expected && !curve {
                return Err(Failed::from(
                    "STATUS_BOARD_EXPECT_CURVE=1, and libzmq has no CURVE",
                ));
            }
            test();
            Ok(())
        })
        .with_ignored_flag(!runs)
    };
    let mut trials: Vec<Trial> = WITH_CURVE
        .into_iter()
        .map(|(name, test)| trial(name, test, curve || expected))
        .collect();
    trials.extend(
        WITHOUT_CURVE
            .into_iter()
            .map(|(name, test)| trial(name, test, !curve && !expected)),
    );
    libtest_mimic::run(&arguments, trials).exit();
}

/// A home of its own for a client (its `~/.config/status-board/curve.key`).
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().expect("temp dir"))
    }

    /// The client with this home, and these arguments.
    fn client(&self, args: &[&str]) -> Command {
        let mut command = client(args);
        command.env("XDG_CONFIG_HOME", self.0.path().join(".config"));
        command
    }

    /// `status_client --curve-keygen`: the public key.
    fn keygen(&self) -> String {
        let (code, stdout, stderr) = run_command(&mut self.client(&["--curve-keygen"]), "");
        assert_eq!(code, Some(0), "{stderr}");
        stdout.trim().to_owned()
    }
}

/// A CURVE server whose users file holds `lines` (`NAME:curve:KEY[:RIGHTS]`);
/// its public key.
fn curve_server(dir: &tempfile::TempDir, lines: &[String]) -> (Server, String) {
    let key_file = dir.path().join("server.key");
    let (code, stdout, stderr) = run_server(&["--curve-keygen", key_file.to_str().expect("UTF-8")]);
    assert_eq!(code, Some(0), "{stderr}");
    let public = stdout.trim().to_owned();
    let users = dir.path().join("users");
    common::write_private(&users, &lines.join("\n"));
    let server = Server::start(&[
        "--auth",
        users.to_str().expect("UTF-8"),
        "--curve-secret",
        key_file.to_str().expect("UTF-8"),
        "--quiet",
    ]);
    (server, public)
}

fn a_key_user_sets_their_name_encrypted_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let robot = Home::new();
    let key = robot.keygen();
    let (server, public) = curve_server(&dir, &[format!("robot:curve:{key}:self,robot-*")]);
    // Through a proxy that keeps every byte: what an eavesdropper would see.
    let port: u16 = server.port();
    let proxy = CountingProxy::recording(port);
    let set = |name: &str, text: &str| {
        let mut command = robot.client(&[name, "--set", text, "--server-key", &public]);
        command.args(["--endpoint", &proxy.endpoint]);
        run_command(&mut command, "")
    };
    let (code, stdout, stderr) = set("robot", "secret plans");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- robot: secret plans\n");
    let (code, _, stderr) = set("robot-2", "also mine");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = set("alice", "not mine");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("user 'robot' may not set 'alice'"),
        "{stderr}"
    );
    proxy.total_when_closed();
    let wire = proxy.wire();
    assert!(wire.len() > 200, "{} bytes went through", wire.len());
    for clear in ["secret plans", "robot", "alice"] {
        assert!(
            !wire.windows(clear.len()).any(|w| w == clear.as_bytes()),
            "{clear:?} crossed the wire in clear"
        );
    }
    // A PLAIN login to a CURVE endpoint is not taken, and says so.
    let mut command = robot.client(&["robot", "--set", "x"]);
    command
        .args(["--endpoint", &server.endpoint])
        .env("STATUS_BOARD_PASSWORD", "anything");
    let (code, _, stderr) = run_command(&mut command, "");
    assert_eq!(code, Some(EXIT_LOGIN), "{stderr}");
}

fn an_unknown_key_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let known = Home::new();
    let key = known.keygen();
    let (server, public) = curve_server(&dir, &[format!("robot:curve:{key}")]);
    let stranger = Home::new();
    let theirs = stranger.keygen();
    let mut command = stranger.client(&["robot", "--set", "x", "--server-key", &public]);
    command.args(["--endpoint", &server.endpoint, "--timeout", "30000"]);
    let started = std::time::Instant::now();
    let (code, _, stderr) = run_command(&mut command, "");
    assert_eq!(code, Some(EXIT_LOGIN), "{stderr}");
    assert!(
        stderr.contains(&format!("refused the login of the key {theirs}")),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

fn keys_are_made_private_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let key = home.keygen();
    assert_eq!(key.len(), 40, "{key}");
    let file = home.0.path().join(".config/status-board/curve.key");
    let mode = std::fs::metadata(&file)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (code, _, stderr) = run_command(&mut home.client(&["--curve-keygen"]), "");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("never overwritten"), "{stderr}");
}

fn every_curve_option_is_refused_with_the_way_to_the_curve_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("server.key");
    let key = key.to_str().expect("UTF-8");
    let users = dir.path().join("users");
    common::write_private(&users, "");
    let home = Home::new();
    for (what, (code, _, stderr), exit) in [
        (
            "server --curve-keygen",
            run_server(&["--curve-keygen", key]),
            1,
        ),
        (
            "server --curve-secret",
            run_server(&[
                "--in-memory",
                "--auth",
                users.to_str().expect("UTF-8"),
                "--curve-secret",
                key,
            ]),
            1,
        ),
        (
            "client --curve-keygen",
            run_command(&mut home.client(&["--curve-keygen"]), ""),
            2,
        ),
        (
            "client --server-key",
            run_command(
                &mut home.client(&["alice", "--set", "x", "--server-key", &"a".repeat(40)]),
                "",
            ),
            2,
        ),
    ] {
        assert_eq!(code, Some(exit), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        assert!(
            stderr.contains("libzmq3-dev") && stderr.contains(".cargo/curve.toml"),
            "{what}: {stderr}"
        );
    }
}
