//! Logins refused, and the files behind logins: a wrong password and an
//! unknown user refused alike, no login, a login where none is taken; users
//! files reloaded all or nothing, refused when others can read them; the
//! password file.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::common::{
    self, EXIT_LOGIN, PASSWORD, Server, UsersFile, client, run_command, run_server, server_command,
    write_private,
};
use crate::{auth_server, run_as};

/// How long one verification of `hash` takes here, at the least: the
/// shortest of three (a busy machine only makes one longer).
fn one_verification(hash: &str) -> Duration {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let hash = PasswordHash::new(hash).expect("a PHC string");
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let _ = argon2::Argon2::default().verify_password(b"not it", &hash);
            started.elapsed()
        })
        .min()
        .expect("three verifications")
}

#[test]
fn a_wrong_password_and_an_unknown_user_are_refused_alike_and_at_once() {
    // A hash dearer than the default (19 MiB, 16 passes, not 2): a refusal
    // then takes long enough to show whether a password was verified at
    // all, and the decoy verified for an unknown user costs what the
    // file's hashes cost.
    let params = argon2::Params::new(19_456, 16, 1, None).expect("params");
    let hash = common::hash_at_cost(PASSWORD, params);
    let users = UsersFile::hashed(&["alice"], &hash);
    let server = auth_server(&users, &[]);
    let verification = one_verification(&hash);
    let mut refusals = Vec::new();
    for (user, password) in [("alice", "wrong"), ("mallory", PASSWORD)] {
        let started = Instant::now();
        // A long timeout: the refusal must come from the handshake, not from silence.
        let (code, stdout, stderr) = run_as(
            Some(password),
            &server.endpoint,
            &[user, "--set", "x", "--timeout", "30000"],
        );
        let took = started.elapsed();
        assert_eq!(code, Some(EXIT_LOGIN), "{user}: {stderr}");
        assert!(took < Duration::from_secs(10), "{user}: took {took:?}");
        // Not a speed test: a bound below, which a busy machine cannot
        // break. A third, for a verification here that a busy moment
        // lengthened (without any, a refusal takes a tenth of one).
        assert!(
            took >= verification / 3,
            "{user}: refused in {took:?}, under a third of one verification ({verification:?}): \
             a refusal without an argon2 check tells who is a user"
        );
        let logged = server.stderr.find("refused the login of");
        let alike = |text: &str| text.replace(user, "USER");
        refusals.push((code, stdout, alike(&stderr), alike(&logged)));
        eprintln!("{user}: refused in {took:?}; one verification takes {verification:?}");
    }
    assert_eq!(
        refusals[0], refusals[1],
        "nothing tells a wrong password from an unknown user: exit code, output, log"
    );
    let (_, stdout, said, logged) = &refusals[0];
    assert_eq!(stdout, "", "{said}");
    assert!(
        said.contains("refused the login of 'USER' (wrong user or password)"),
        "{said}"
    );
    assert!(
        logged.contains("refused the login of 'USER' from 127.0.0.1: wrong user or password"),
        "{logged}"
    );
    assert_eq!(
        server.request_text_as("alice", PASSWORD, "_:"),
        "",
        "no write went through"
    );
}

#[test]
fn no_login_on_a_login_endpoint_is_said_and_exits_4_in_every_mode() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    for (args, stdin) in [
        (vec!["alice", "--set", "x"], ""),
        (vec!["alice"], "piped line\n"),
        (vec!["_", "--count", "1"], ""),
    ] {
        let mut command = client(&args);
        command.args(["--endpoint", &server.endpoint, "--timeout", "30000"]);
        let started = Instant::now();
        let (code, _, stderr) = run_command(&mut command, stdin);
        assert_eq!(code, Some(EXIT_LOGIN), "{args:?}: {stderr}");
        assert!(stderr.contains("wants a login"), "{args:?}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
}

#[test]
fn a_login_to_an_open_server_is_refused_with_advice() {
    let server = Server::start(&["--quiet"]);
    let (code, _, stderr) = run_as(Some(PASSWORD), &server.endpoint, &["alice", "--set", "x"]);
    assert_eq!(code, Some(EXIT_LOGIN));
    assert!(stderr.contains("does not take this login"), "{stderr}");
    assert_eq!(server.request_text("_:"), "");
}

#[test]
fn sighup_reloads_the_users_all_or_nothing() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    let (code, _, _) = run_as(Some(PASSWORD), &server.endpoint, &["bob", "--set", "x"]);
    assert_eq!(code, Some(EXIT_LOGIN), "bob is not a user yet");

    users.write(&["alice", "bob"]);
    common::send_signal(&server.child, libc::SIGHUP);
    server.stderr.find("reloaded");
    let (code, _, stderr) = run_as(Some(PASSWORD), &server.endpoint, &["bob", "--set", "x"]);
    assert_eq!(code, Some(0), "bob can write once added: {stderr}");

    // A broken file keeps the table from before, whole: bob stays, nobody new.
    write_private(&users.path, "alice:not-a-hash\ncarol\n");
    common::send_signal(&server.child, libc::SIGHUP);
    let warning = server.stderr.find("kept the users from before");
    assert!(
        warning.contains("kept the users from before") && warning.contains("line 1"),
        "{warning}"
    );
    let (code, _, stderr) = run_as(Some(PASSWORD), &server.endpoint, &["bob", "--set", "y"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(server.request_text_as("bob", PASSWORD, "_:"), "- bob: y\n");
}

#[test]
fn a_users_file_others_can_read_or_that_is_malformed_stops_the_start() {
    let users = UsersFile::new(&["alice"]);
    let start = || {
        let args = [
            "--in-memory",
            "--bind",
            "tcp://127.0.0.1:*",
            "--auth",
            users.path(),
        ];
        run_server(&args)
    };
    std::fs::set_permissions(&users.path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, stderr) = start();
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("mode 0644") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    write_private(&users.path, "# users\nalice:$argon2id$nonsense\n");
    let (code, _, stderr) = start();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn hash_password_makes_a_line_that_logs_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, hash, stderr) = run_command(server_command().arg("--hash-password"), "s3cret\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let path = dir.path().join("users");
    write_private(&path, &format!("dora:{}", hash.trim()));
    let server = Server::start(&["--auth", path.to_str().expect("UTF-8"), "--quiet"]);
    let (code, _, stderr) = run_as(Some("s3cret"), &server.endpoint, &["dora", "--set", "in"]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_password_file_is_used_only_when_its_owner_alone_can_read_it() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    let config = tempfile::tempdir().expect("temp dir");
    let file = config.path().join("status-board/password");
    std::fs::create_dir_all(file.parent().expect("a directory")).expect("mkdir");
    let run = || {
        let mut command = client(&["alice", "--set", "from the file"]);
        command
            .args(["--endpoint", &server.endpoint])
            .env("XDG_CONFIG_HOME", config.path());
        run_command(&mut command, "")
    };
    write_private(&file, &format!("{PASSWORD}\n"));
    let (code, stdout, stderr) = run();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- alice: from the file\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, stderr) = run();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("mode 0644") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}
