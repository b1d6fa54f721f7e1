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
            "error: forbidden: anonymous clients may only read",
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

/// A server with `--auth` (alice) and a publisher, and the publisher's endpoint.
fn with_publisher(users: &UsersFile) -> (Server, String) {
    let server = auth_server(users, &["--publish", "tcp://127.0.0.1:*"]);
    let snapshot = server.request_text_as("alice", PASSWORD, "_:@board");
    let publisher = snapshot
        .lines()
        .find_map(|line| line.strip_prefix("publish "))
        .expect("the snapshot names the publisher")
        .to_owned();
    (server, publisher)
}

#[test]
fn the_publisher_wants_the_same_login() {
    let users = UsersFile::new(&["alice"]);
    let (_server, publisher) = with_publisher(&users);
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

// ---- logins on a terminal, and servers that change under a client ----

/// How long a login may take on a busy machine: an argon2 check, made by
/// the server's checkers at a lower priority, in tests run side by side
/// (and beside whatever else the machine runs). A bound, not a measure.
const LOGIN_BOUND: Duration = Duration::from_secs(30);

/// The client on a pseudo-terminal of kind `term`, with no password from
/// the environment; unless `args` say, each try waits 10 s, longer than a
/// login check usually takes even on a busy machine. Each wait for output
/// is bounded by [`LOGIN_BOUND`].
fn on_a_terminal(args: &[&str], term: &str) -> rexpect::session::PtySession {
    let mut command = client(args);
    if !args.contains(&"--timeout") {
        command.args(["--timeout", "10000"]);
    }
    command.env("TERM", term);
    let bound = u64::try_from(LOGIN_BOUND.as_millis()).expect("fits");
    rexpect::session::spawn_command(command, Some(bound)).expect("spawn on a pty")
}

/// Lines of a child's stream, each awaited up to [`LOGIN_BOUND`]: in these
/// tests every restart of the server costs a login check.
struct Said(std::sync::mpsc::Receiver<String>);

impl Said {
    fn from(stream: impl std::io::Read + Send + 'static) -> Said {
        use std::io::BufRead;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Said(rx)
    }

    /// The first line from now on that contains `part`.
    fn find(&self, part: &str) -> String {
        let deadline = Instant::now() + LOGIN_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(part) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {part:?} within {LOGIN_BOUND:?}: {e}"),
            }
        }
    }
}

/// Spawns `command` killed on drop, its stdout and stderr read as [`Said`].
fn spawn_said(command: &mut Command) -> (Running, Said, Said) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = Said::from(child.stdout.take().expect("piped stdout"));
    let err = Said::from(child.stderr.take().expect("piped stderr"));
    (Running(child), out, err)
}

/// Both ways rustyline reads: raw mode (`xterm`) and plain cooked reads (`dumb`).
const TERMS: [&str; 2] = ["xterm", "dumb"];

/// Waits for the end of the session; its exit code.
fn exit_code(mut session: rexpect::session::PtySession) -> (i32, String) {
    let rest = session.exp_eof().expect("exits");
    match session.process().wait().expect("status") {
        rexpect::process::WaitStatus::Exited(_, code) => (code, rest),
        other => panic!("unexpected {other:?}: {rest}"),
    }
}

#[test]
fn on_a_terminal_the_name_logs_in_and_the_typed_status_is_posted_after_the_password() {
    for term in TERMS {
        let users = UsersFile::new(&["alice"]);
        let server = auth_server(&users, &[]);
        let mut session = on_a_terminal(&["alice", "--endpoint", &server.endpoint], term);
        session.exp_string("alice: ").expect("the prompt");
        session.send_line("in a meeting").expect("type");
        session
            .exp_string("wants a login: log in as 'alice'")
            .expect("told why");
        session
            .exp_string(&format!("Password for 'alice' at {}: ", server.endpoint))
            .expect("asked");
        session.send_line("wrong").expect("a wrong password");
        session
            .exp_string("refused the login of 'alice' (wrong user or password)")
            .expect("refused, said");
        session
            .exp_string("Password for 'alice'")
            .expect("asked again");
        session.send_line(PASSWORD).expect("the password");
        let shown = session
            .exp_string("- alice: in a meeting")
            .expect("the typed status, posted");
        assert!(!shown.contains(PASSWORD), "TERM={term}: echoed: {shown}");
        session.exp_string("alice: ").expect("the prompt again");
        session.send_line("back").expect("type again");
        session
            .exp_string("- alice: back")
            .expect("posted with the same login, not asked again");
        session.send_control('d').expect("Ctrl-D");
        let (code, rest) = exit_code(session);
        assert_eq!(code, 0, "TERM={term}: {rest}");
        assert_eq!(
            server.request_text_as("alice", PASSWORD, "_:"),
            "- alice: back\n"
        );
    }
}

#[test]
fn set_on_a_terminal_asks_for_the_password_and_posts() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    let mut session = on_a_terminal(
        &[
            "alice",
            "--endpoint",
            &server.endpoint,
            "--set",
            "in a meeting",
        ],
        "xterm",
    );
    session.exp_string("Password for 'alice'").expect("asked");
    session.send_line(PASSWORD).expect("the password");
    session.exp_string("- alice: in a meeting").expect("posted");
    let (code, rest) = exit_code(session);
    assert_eq!(code, 0, "{rest}");
}

#[test]
fn ctrl_c_at_the_password_prompt_says_interrupted_and_exits_130() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    for (args, typed) in [
        (vec!["alice", "--set", "x"], None),
        (vec!["alice"], Some("x")),
        (vec!["_", "--user", "alice", "--count", "1"], None),
    ] {
        let mut all = args.clone();
        all.extend(["--endpoint", &server.endpoint]);
        let mut session = on_a_terminal(&all, "xterm");
        if let Some(typed) = typed {
            session.exp_string("alice: ").expect("the prompt");
            session.send_line(typed).expect("type");
        }
        session.exp_string("Password for 'alice'").expect("asked");
        session.send_control('c').expect("Ctrl-C");
        let (code, rest) = exit_code(session);
        assert_eq!(code, 130, "{args:?}: {rest}");
        assert!(
            rest.contains("status_client: interrupted"),
            "{args:?}: {rest}"
        );
        assert!(!rest.contains("no password"), "{args:?}: {rest}");
    }
    assert_eq!(server.request_text_as("alice", PASSWORD, "_:"), "");
}

#[test]
fn a_watcher_at_a_login_endpoint_is_told_where_to_watch_instead() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &["--anonymous", "tcp://127.0.0.1:*"]);
    let (code, _, stderr) = run_as(None, &server.endpoint, &["_", "--count", "1"]);
    assert_eq!(code, Some(EXIT_LOGIN), "{stderr}");
    for part in [
        "wants a login",
        "--anonymous",
        "read-only without login on",
        "--user",
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    // Where the server says it, the advice works.
    let line = server.stderr.find("read-only without login on: ");
    assert!(line.contains("tcp://127.0.0.1:*"), "{line}");
    let anonymous =
        common::endpoint_from_waiting_line(&server.stdout.next("the anonymous endpoint"));
    let (code, _, stderr) = run_as(None, &anonymous, &["_", "--count", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// The wait of each try of a client that rides through restarts: longer
/// than a login check on a busy machine (argon2), which every try makes
/// anew. A restart is seen at once (connection refused), not by this.
const TRY_MS: &str = "4000";

/// A child process killed on drop: a test that fails leaves nothing running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on `port` with logins from `users` or none.
fn server_on(port: &str, users: Option<&UsersFile>) -> Server {
    let mut args = vec![port, "--quiet", "--in-memory"];
    if let Some(users) = users {
        args.extend(["--auth", users.path()]);
    }
    Server::start_raw(&args)
}

#[test]
fn an_interactive_typer_rides_through_the_server_turning_logins_off_and_on() {
    let users = UsersFile::new(&["bob"]);
    let port = common::free_port().to_string();
    let first = server_on(&port, Some(&users));
    let mut session = on_a_terminal(
        &["bob", &port, "--timeout", TRY_MS, "--retries", "1"],
        "xterm",
    );
    session.exp_string("bob: ").expect("the prompt");
    session.send_line("first").expect("type");
    session.exp_string("Password for 'bob'").expect("asked");
    session.send_line(PASSWORD).expect("the password");
    session.exp_string("- bob: first").expect("posted");

    // Restarted without --auth: the login no longer fits; the status is kept.
    drop(first);
    let open = server_on(&port, None);
    session
        .send_line("second")
        .expect("type while logins are off");
    session
        .exp_string("does not take this login now (has it restarted without --auth?)")
        .expect("said what happened");
    let said = session
        .exp_string("kept and sent once the server takes your login again")
        .expect("and that it is kept");
    assert!(!said.contains("Password"), "{said}");
    assert_eq!(
        open.request_text("_:"),
        "",
        "nothing went to the open server"
    );

    // With --auth again: the courier's login works, and the status goes.
    drop(open);
    let again = server_on(&port, Some(&users));
    let until_sent = session
        .exp_string("sent \"bob: second\"")
        .expect("sent once a login works");
    assert_eq!(
        until_sent.matches("does not take this login").count(),
        0,
        "said once: {until_sent}"
    );
    session
        .exp_string("- bob: second")
        .expect("the board with it");
    assert_eq!(
        again.request_text_as("bob", PASSWORD, "_:"),
        "- bob: second\n"
    );
    session.send_line("third").expect("type once more");
    session.exp_string("- bob: third").expect("posted at once");
    session.send_control('d').expect("Ctrl-D");
    let (code, rest) = exit_code(session);
    assert_eq!(code, 0, "{rest}");
}

#[test]
fn a_pipe_and_a_watcher_ride_through_the_server_turning_logins_off_and_on() {
    use std::io::Write;
    let users = UsersFile::new(&["alice", "wall:ro"]);
    let port = common::free_port().to_string();
    let first = server_on(&port, Some(&users));
    let (mut pipe, pipe_out, pipe_err) = spawn_said(
        client(&["alice", &port, "--timeout", TRY_MS])
            .env("STATUS_BOARD_PASSWORD", PASSWORD)
            .stdin(std::process::Stdio::piped()),
    );
    let mut stdin = pipe.0.stdin.take().expect("piped stdin");
    let (mut watcher, watch_out, watch_err) = spawn_said(
        client(&[
            "_",
            &port,
            "--user",
            "wall",
            "--json",
            "--interval",
            "0.05",
            "--timeout",
            TRY_MS,
        ])
        .env("STATUS_BOARD_PASSWORD", PASSWORD),
    );
    stdin.write_all(b"one\n").expect("write");
    pipe_out.find("- alice: one");
    watch_out.find("\"one\"");

    drop(first);
    let open = server_on(&port, None);
    stdin
        .write_all(b"two\n")
        .expect("write while logins are off");
    let said = pipe_err.find("does not take this login now");
    assert!(said.contains("still trying"), "{said}");
    watch_err.find("does not take this login now");
    assert_eq!(open.request_text("_:"), "");

    drop(open);
    let again = server_on(&port, Some(&users));
    pipe_out.find("- alice: two");
    pipe_err.find("answers again");
    watch_out.find("\"two\"");
    drop(stdin);
    let status = common::wait_timeout(&mut pipe.0, EXIT_TIMEOUT).expect("the pipe ends");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        again.request_text_as("alice", PASSWORD, "_:"),
        "- alice: two\n"
    );
    common::send_signal(&watcher.0, libc::SIGINT);
    let status = common::wait_timeout(&mut watcher.0, EXIT_TIMEOUT).expect("the watcher stops");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_publisher_that_wants_a_login_is_told_apart_too() {
    let users = UsersFile::new(&["alice"]);
    let (_server, publisher) = with_publisher(&users);
    let started = Instant::now();
    let (code, _, stderr) = run_as(
        Some(PASSWORD),
        &publisher,
        &["alice", "--set", "x", "--timeout", "30000"],
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("is a status server's publisher"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_status_kept_while_the_server_was_away_is_sent_once_logged_in() {
    let users = UsersFile::new(&["bob"]);
    let port = common::free_port().to_string();
    let first = server_on(&port, None);
    let mut session = on_a_terminal(
        &["bob", &port, "--timeout", TRY_MS, "--retries", "1"],
        "xterm",
    );
    session.exp_string("bob: ").expect("the prompt");
    session.send_line("first").expect("type");
    session
        .exp_string("- bob: first")
        .expect("posted, no login wanted");

    drop(first);
    session
        .send_line("second")
        .expect("type while the server is away");
    session
        .exp_string("kept and sent when the server is back")
        .expect("kept");
    // Back with --auth: the courier cannot type a password; it says how.
    let again = server_on(&port, Some(&users));
    session
        .exp_string("wants a login now (has it restarted with --auth?)")
        .expect("said what happened");
    session
        .exp_string("press Enter to log in")
        .expect("and what to do");
    session.send_line("").expect("Enter");
    session.exp_string("Password for 'bob'").expect("asked");
    session.send_line(PASSWORD).expect("the password");
    session
        .exp_string("sent \"bob: second\"")
        .expect("the kept status, sent with the login");
    assert_eq!(
        again.request_text_as("bob", PASSWORD, "_:"),
        "- bob: second\n"
    );
    session.send_control('d').expect("Ctrl-D");
    let (code, rest) = exit_code(session);
    assert_eq!(code, 0, "{rest}");
}

#[test]
fn three_wrong_passwords_at_the_prompt_keep_the_typed_status_for_another_go() {
    let users = UsersFile::new(&["alice"]);
    let server = auth_server(&users, &[]);
    let mut session = on_a_terminal(&["alice", "--endpoint", &server.endpoint], "xterm");
    session.exp_string("alice: ").expect("the prompt");
    session.send_line("kept").expect("type");
    for _ in 0..3 {
        session.exp_string("Password for 'alice'").expect("asked");
        session.send_line("wrong").expect("a wrong password");
    }
    session
        .exp_string("your status is kept: press Enter to log in")
        .expect("not dropped");
    session.send_line("").expect("Enter");
    session
        .exp_string("Password for 'alice'")
        .expect("asked again");
    session.send_line(PASSWORD).expect("the password");
    session.exp_string("sent \"alice: kept\"").expect("sent");
    assert_eq!(
        server.request_text_as("alice", PASSWORD, "_:"),
        "- alice: kept\n"
    );
    session.send_control('d').expect("Ctrl-D");
    let (code, rest) = exit_code(session);
    assert_eq!(code, 0, "{rest}");
}
