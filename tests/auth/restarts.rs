//! Servers that change under a running client: restarted without `--auth`,
//! then with it again; a typer, a pipe and a watcher each ride through.

use std::process::Stdio;

use crate::common::{
    self, EXIT_TIMEOUT, Lines, PASSWORD, Running, Server, UsersFile, client, exit_code, spawn_piped,
};
use crate::{LOGIN_BOUND, on_a_terminal};

/// The wait of each try of a client that rides through restarts: longer
/// than a login check on a busy machine (argon2), which every try makes
/// anew. A restart is seen at once (connection refused), not by this.
const TRY_MS: &str = "4000";

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
    let (pipe, pipe_out, pipe_err) = spawn_piped(
        client(&["alice", &port, "--timeout", TRY_MS])
            .env("STATUS_BOARD_PASSWORD", PASSWORD)
            .stdin(Stdio::piped()),
    );
    let mut pipe = Running(pipe);
    let mut stdin = pipe.stdin.take().expect("piped stdin");
    let (watcher, watch_out, watch_err) = spawn_piped(
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
    let mut watcher = Running(watcher);
    // Every restart costs a login check: each line is awaited up to LOGIN_BOUND.
    let find = |lines: &Lines, part: &str| lines.find_within(part, LOGIN_BOUND);
    stdin.write_all(b"one\n").expect("write");
    find(&pipe_out, "- alice: one");
    find(&watch_out, "\"one\"");

    drop(first);
    let open = server_on(&port, None);
    stdin
        .write_all(b"two\n")
        .expect("write while logins are off");
    let said = find(&pipe_err, "does not take this login now");
    assert!(said.contains("still trying"), "{said}");
    find(&watch_err, "does not take this login now");
    assert_eq!(open.request_text("_:"), "");

    drop(open);
    let again = server_on(&port, Some(&users));
    find(&pipe_out, "- alice: two");
    find(&pipe_err, "answers again");
    find(&watch_out, "\"two\"");
    drop(stdin);
    let status = common::wait_timeout(&mut pipe, EXIT_TIMEOUT).expect("the pipe ends");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        again.request_text_as("alice", PASSWORD, "_:"),
        "- alice: two\n"
    );
    assert_eq!(common::stop_with(&mut watcher, libc::SIGINT), Some(0));
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
