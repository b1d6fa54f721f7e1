//! The server's console: what its log says, how signals end it, a start it
//! refuses in one line, and `--hash-password` on a terminal.

use std::process::Command;
use std::time::Duration;

use crate::common::{self, Server, run_server};

#[test]
fn quiet_leaves_out_received_lines() {
    let server = Server::start(&["--quiet"]);
    server.request_text("a: 1");
    server.request_text("_:");
    let (status, stdout, _) = server.stop_with_output(libc::SIGINT);
    assert_eq!(status.code(), Some(0));
    // Everything it printed, up to its exit: the Waiting line was read already.
    assert_eq!(stdout, Vec::<String>::new());
}

#[test]
fn sigint_and_sigterm_exit_zero_promptly() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let server = Server::start(&[]);
        server.request_text("a: 1");
        let (status, took) = server.stop(signal);
        assert_eq!(status.code(), Some(0), "signal {signal}");
        assert!(
            took < Duration::from_secs(3),
            "signal {signal} took {took:?}"
        );
    }
}

#[test]
fn an_address_in_use_is_one_line_and_exit_1() {
    let first = Server::start(&[]);
    let (code, _, stderr) = run_server(&["--in-memory", "--bind", &first.endpoint]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("cannot bind") && stderr.contains("in use"),
        "{stderr:?}"
    );
}

#[test]
fn an_invalid_endpoint_is_one_line_and_exit_1() {
    for endpoint in ["nonsense", "tcp://no-such-interface:1", "foo://x"] {
        let (code, _, stderr) = run_server(&["--in-memory", "--bind", endpoint]);
        assert_eq!(code, Some(1), "{endpoint}");
        assert_eq!(stderr.lines().count(), 1, "{endpoint}: {stderr:?}");
        assert!(
            stderr.contains(&format!("cannot bind {endpoint}")),
            "{stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr:?}");
    }
}

/// Whether `line` starts with an RFC 3339 time and a space.
fn stamped(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(time, _)| humantime::parse_rfc3339(time).is_ok())
}

#[test]
fn the_log_says_settings_peers_times_expiries_clears_and_the_stop() {
    let server = Server::start(&["--log-time", "--ttl", "1s"]);
    let state = server.stderr.next("the state line");
    assert!(
        stamped(&state) && state.contains("State: in memory"),
        "{state}"
    );
    let settings = server.stderr.next("the settings line");
    assert!(
        stamped(&settings)
            && settings.contains("ttl 1s")
            && settings.ends_with("at most 100000 names."),
        "{settings}"
    );
    server.request_text("a: 1");
    let received = server.stdout.next("the received line");
    assert!(stamped(&received), "{received}");
    assert!(
        received.ends_with("received name: 'a' status: ': 1' from 127.0.0.1"),
        "{received}"
    );
    // A clear of a name that is not there changes nothing: no line for it.
    server.request_text("_:@clear nobody");
    server.request_text("b: 2");
    server.request_text("_:@clear b");
    let next = server.stdout.next("the next line");
    assert!(next.contains("received name: 'b'"), "{next}");
    let cleared = server.stdout.next("the clear");
    assert!(cleared.contains("cleared name: 'b'"), "{cleared}");
    let expired = server.stderr.find("expired name: 'a'");
    assert!(
        stamped(&expired) && expired.contains("not refreshed for"),
        "{expired}"
    );
    let (status, _, log) = server.stop_with_output(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    let stopped = log.last().expect("a last line");
    assert!(
        stamped(stopped)
            && stopped.ends_with(
                "Stopped: 0 names on the board, gone with the server (--in-memory: nothing on disk)."
            ),
        "{log:?}"
    );
}

/// How a terminal is left after a prompt, as `stty -a` lists it: a person's
/// terminal reads lines (`icanon`) and shows what is typed (`echo`).
const TERMINAL_AS_A_PERSON_HAS_IT: &str = "icanon echo";

/// `status_server --hash-password` on a pseudo-terminal set as a person's
/// (rexpect starts it without echo), run by `sh`, which then says the exit
/// code and how the terminal is left (a prompt killed in the middle leaves
/// `-icanon -echo`).
fn hash_password_on_a_terminal() -> rexpect::session::PtySession {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        r#"stty icanon echo; "$0" --hash-password; echo "exit $?";
           stty -a | tr ' ' '\n' | grep -x -E -e '-?(icanon|echo)' | paste -s -d ' '"#,
        env!("CARGO_BIN_EXE_status_server"),
    ]);
    common::on_a_terminal(command, "xterm")
}

/// What is left of the session: what the program said after the last
/// input, its exit code, and the terminal's echo setting as `stty` says it.
fn said_exit_and_echo(session: &mut rexpect::session::PtySession) -> (String, String, String) {
    let said = session.exp_string("exit ").expect("the exit code");
    let rest = session.exp_eof().expect("the end");
    let mut lines = rest.lines().map(str::trim);
    let code = lines.next().expect("a code").to_owned();
    let echo = lines.next().expect("stty's flags").to_owned();
    (said.trim().to_owned(), code, echo)
}

#[test]
fn hash_password_on_a_terminal_asks_twice_without_echo() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let mut session = hash_password_on_a_terminal();
    let mut shown = session.exp_string("Password: ").expect("first prompt");
    session.send_line("s3cret pass").expect("type");
    shown += &session
        .exp_string("Password again: ")
        .expect("second prompt");
    session.send_line("s3cret pass").expect("type again");
    shown += &session.exp_string("$argon2id$").expect("the hash");
    let hash = format!("$argon2id${}", session.exp_string("\r\n").expect("its end"));
    assert!(!shown.contains("s3cret"), "echoed: {shown:?}");
    let parsed = PasswordHash::new(&hash).expect("a PHC string");
    assert!(
        argon2::Argon2::default()
            .verify_password(b"s3cret pass", &parsed)
            .is_ok(),
        "the hash is of the password typed: {hash}"
    );
    let (_, code, echo) = said_exit_and_echo(&mut session);
    assert_eq!(
        (code.as_str(), echo.as_str()),
        ("0", TERMINAL_AS_A_PERSON_HAS_IT)
    );
}

#[test]
fn hash_password_on_a_terminal_refuses_two_passwords_that_differ() {
    let mut session = hash_password_on_a_terminal();
    session.exp_string("Password: ").expect("first prompt");
    session.send_line("s3cret").expect("type");
    session
        .exp_string("Password again: ")
        .expect("second prompt");
    session.send_line("s3crte").expect("a typo");
    let (said, code, echo) = said_exit_and_echo(&mut session);
    assert_eq!(
        said,
        "status_server: error: the two passwords differ; nothing was printed (run it again)"
    );
    assert_eq!(
        (code.as_str(), echo.as_str()),
        ("1", TERMINAL_AS_A_PERSON_HAS_IT)
    );
}

#[test]
fn ctrl_c_at_the_hash_password_prompt_says_interrupted_and_gives_the_echo_back() {
    for at_second in [false, true] {
        let mut session = hash_password_on_a_terminal();
        session.exp_string("Password: ").expect("first prompt");
        if at_second {
            session.send_line("s3cret").expect("type");
            session
                .exp_string("Password again: ")
                .expect("second prompt");
        }
        session.send("half").expect("type half");
        session.send_control('c').expect("Ctrl-C");
        let (said, code, echo) = said_exit_and_echo(&mut session);
        assert_eq!(said, "status_server: interrupted");
        assert_eq!(code, "130", "at the second prompt: {at_second}");
        assert_eq!(echo, TERMINAL_AS_A_PERSON_HAS_IT, "the terminal as it was");
    }
}
