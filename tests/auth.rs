//! Logins (`--auth`) with the real binaries: who may change what, read-only
//! endpoints and users, refused logins, the publisher, SIGHUP reloads.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{EXIT_TIMEOUT, PASSWORD, Server, UsersFile, client, run_command, write_private};

/// Exit code of a refused or missing login.
const EXIT_LOGIN: i32 = 4;

/// A server with `--auth` and `extra` arguments.
fn auth_server(users: &UsersFile, extra: &[&str]) -> Server {
    let mut args = vec!["--auth", users.path(), "--quiet"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Runs the client against `endpoint` with `password` in the environment.
fn run_as(password: Option<&str>, endpoint: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = client(args);
    command.args(["--endpoint", endpoint]);
    if let Some(password) = password {
        command.env("STATUS_BOARD_PASSWORD", password);
    }
    run_command(&mut command, "")
}

#[test]
fn each_user_sets_their_own_name_and_what_their_globs_grant() {
    let users = UsersFile::new(&["alice", "ci:self,build-*"]);
    let server = auth_server(&users, &[]);
    let (code, stdout, stderr) = run_as(
        Some(PASSWORD),
        &server.endpoint,
        &["alice", "--set", "in a meeting"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- alice: in a meeting\n");
    let (code, _, stderr) = run_as(Some(PASSWORD), &server.endpoint, &["ci", "--set", "green"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run_as(
        Some(PASSWORD),
        &server.endpoint,
        &["build-42", "--user", "ci", "--set", "passed"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = run_as(Some(PASSWORD), &server.endpoint, &["alice", "--clear"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- ci: green\n- build-42: passed\n");
}

#[test]
fn nobody_changes_a_name_that_is_not_theirs() {
    let users = UsersFile::new(&["alice", "bob", "ci:self,build-*"]);
    let server = auth_server(&users, &[]);
    let (code, _, _) = run_as(Some(PASSWORD), &server.endpoint, &["bob", "--set", "here"]);
    assert_eq!(code, Some(0));
    for (args, says) in [
        (
            vec!["bob", "--user", "alice", "--set", "hacked by alice"],
            "user 'alice' may not set 'bob'",
        ),
        (
            vec!["bob", "--user", "alice", "--clear"],
            "user 'alice' may not clear 'bob'",
        ),
        (
            vec!["deploy-1", "--user", "ci", "--set", "x"],
            "user 'ci' may not set 'deploy-1'",
        ),
    ] {
        let (code, stdout, stderr) = run_as(Some(PASSWORD), &server.endpoint, &args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stdout, "");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let (code, stdout, _) = run_as(
        Some(PASSWORD),
        &server.endpoint,
        &["_", "--user", "alice", "--count", "1", "--json"],
    );
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(doc["entries"].as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(doc["entries"][0]["status"], "here", "{doc}");
    let (_, _, log) = server.stop_with_output(libc::SIGTERM);
    let refusals = log
        .iter()
        .filter(|l| l.contains("rejected request: user '"))
        .count();
    assert_eq!(refusals, 3, "each refusal is logged with its user: {log:?}");
}

#[test]
fn a_read_only_user_watches_and_changes_nothing() {
    let users = UsersFile::new(&["wall:ro", "alice"]);
    let server = auth_server(&users, &[]);
    run_as(Some(PASSWORD), &server.endpoint, &["alice", "--set", "x"]);
    let (code, _, stderr) = run_as(Some(PASSWORD), &server.endpoint, &["wall", "--set", "mine"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("user 'wall' may not set 'wall'"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run_as(
        Some(PASSWORD),
        &server.endpoint,
        &["_", "--user", "wall", "--count", "1"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("- alice: x"), "{stdout}");
}

#[test]
fn anonymous_endpoints_read_and_refuse_every_write() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &["--anonymous", "tcp://127.0.0.1:*"]);
    let anonymous =
        common::endpoint_from_waiting_line(&server.stdout.next("the anonymous endpoint"));
    run_as(Some(PASSWORD), &server.endpoint, &["alice", "--set", "x"]);
    assert_eq!(common::request_text(&anonymous, "_:"), "- alice: x\n");
    assert_eq!(common::snapshot(&anonymous).entries.len(), 1);
    for write in ["alice: anonymous", "mallory: hi", "_:@clear alice"] {
        assert_eq!(
            common::request_text(&anonymous, write),
            "error: anonymous clients may only read",
            "{write}"
        );
    }
    let (code, stdout, _) = run_as(None, &anonymous, &["_", "--count", "1"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("- alice: x"), "{stdout}");
    // And the anonymous endpoint takes no login: that would be a mistake to say.
    let (code, _, stderr) = run_as(Some(PASSWORD), &anonymous, &["alice", "--set", "y"]);
    assert_eq!(code, Some(EXIT_LOGIN));
    assert!(stderr.contains("does not take this login"), "{stderr}");
}

#[test]
fn a_wrong_password_and_an_unknown_user_are_refused_alike_and_at_once() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    let mut messages = Vec::new();
    for (user, password) in [("alice", "wrong"), ("mallory", PASSWORD)] {
        let started = Instant::now();
        // A long timeout: the refusal must come from the handshake, not from silence.
        let (code, stdout, stderr) = run_as(
            Some(password),
            &server.endpoint,
            &[user, "--set", "x", "--timeout", "30000"],
        );
        assert_eq!(code, Some(EXIT_LOGIN), "{user}: {stderr}");
        assert_eq!(stdout, "");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{user}: took {:?}",
            started.elapsed()
        );
        messages.push(stderr.replace(user, "USER"));
    }
    assert_eq!(
        messages[0], messages[1],
        "nothing tells a wrong password from an unknown user"
    );
    assert!(
        messages[0].contains("refused the login of 'USER' (wrong user or password)"),
        "{}",
        messages[0]
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

/// A SUB socket on `publisher`, logged in as alice if `login`, with a monitor
/// of its handshakes.
fn subscribe(context: &zmq::Context, publisher: &str, login: bool) -> (zmq::Socket, zmq::Socket) {
    let socket = context.socket(zmq::SUB).expect("SUB");
    socket.set_linger(0).expect("LINGER");
    socket.set_subscribe(b"").expect("subscribe");
    if login {
        socket.set_plain_username(Some("alice")).expect("user");
        socket.set_plain_password(Some(PASSWORD)).expect("password");
    }
    let watch = format!("inproc://auth-test-monitor-{login}");
    socket
        .monitor(&watch, zmq::SocketEvent::ALL as i32)
        .expect("monitor");
    let monitor = context.socket(zmq::PAIR).expect("PAIR");
    monitor.connect(&watch).expect("connect the monitor");
    socket.connect(publisher).expect("connect");
    (socket, monitor)
}

/// The next handshake outcome the monitor reports.
fn handshake(monitor: &zmq::Socket) -> zmq::SocketEvent {
    monitor.set_rcvtimeo(10_000).expect("RCVTIMEO");
    loop {
        let frames = monitor.recv_multipart(0).expect("a monitor event");
        let event = zmq::SocketEvent::from_raw(u16::from_ne_bytes([frames[0][0], frames[0][1]]));
        if matches!(
            event,
            zmq::SocketEvent::HANDSHAKE_SUCCEEDED
                | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH
                | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL
                | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL
        ) {
            return event;
        }
    }
}

#[test]
fn the_publisher_wants_the_same_login() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &["--publish", "tcp://127.0.0.1:*"]);
    let snapshot = server.request_text_as("alice", PASSWORD, "_:@board");
    let publisher = snapshot
        .lines()
        .find_map(|line| line.strip_prefix("publish "))
        .expect("the snapshot names the publisher")
        .to_owned();
    let context = zmq::Context::new();
    let (with_login, monitor) = subscribe(&context, &publisher, true);
    assert_eq!(handshake(&monitor), zmq::SocketEvent::HANDSHAKE_SUCCEEDED);
    with_login.set_rcvtimeo(10_000).expect("RCVTIMEO");
    let heartbeat = with_login.recv_bytes(0).expect("a heartbeat");
    assert!(heartbeat.starts_with(b"hb "), "{heartbeat:?}");
    let (_without, monitor) = subscribe(&context, &publisher, false);
    assert_ne!(handshake(&monitor), zmq::SocketEvent::HANDSHAKE_SUCCEEDED);
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

/// Runs the server once to completion: exit code and stderr.
fn server_refuses(args: &[&str]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_command(
        Command::new(env!("CARGO_BIN_EXE_status_server")).args(args),
        "",
    );
    (code, stderr)
}

#[test]
fn a_users_file_others_can_read_or_that_is_malformed_stops_the_start() {
    let users = UsersFile::new(&["alice"]);
    std::fs::set_permissions(&users.path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, stderr) = server_refuses(&[
        "--in-memory",
        "--bind",
        "tcp://127.0.0.1:*",
        "--auth",
        users.path(),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("mode 0644") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    write_private(&users.path, "# users\nalice:$argon2id$nonsense\n");
    let (code, stderr) = server_refuses(&[
        "--in-memory",
        "--bind",
        "tcp://127.0.0.1:*",
        "--auth",
        users.path(),
    ]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn hash_password_makes_a_line_that_logs_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = common::run_with_input(
        Command::new(env!("CARGO_BIN_EXE_status_server")).arg("--hash-password"),
        "s3cret\n",
        EXIT_TIMEOUT,
    );
    assert!(output.status.success(), "{output:?}");
    let hash = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let path = dir.path().join("users");
    write_private(&path, &format!("dora:{}", hash.trim()));
    let server = Server::start(&["--auth", path.to_str().expect("UTF-8"), "--quiet"]);
    let (code, _, stderr) = run_as(Some("s3cret"), &server.endpoint, &["dora", "--set", "in"]);
    assert_eq!(code, Some(0), "{stderr}");
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
