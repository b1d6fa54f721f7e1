//! Logins typed at a terminal: the password asked after the status is
//! typed, never echoed, asked again when wrong, Ctrl-C at its prompt.

use crate::common::{PASSWORD, TERMS, UsersFile, exit_code};
use crate::{auth_server, on_a_terminal};

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
