//! Who may change what: each user their own name and what their globs
//! grant, read-only users, anonymous endpoints that only read, and a
//! publisher that wants the same login.

use std::time::{Duration, Instant};

use crate::common::{
    self, EXIT_LOGIN, PASSWORD, Server, UsersFile, handshake, heartbeat, monitored_subscriber,
};
use crate::{auth_server, run_as};

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
    let login = Some(("alice", PASSWORD));
    let (with_login, monitor) = monitored_subscriber(&context, &publisher, login);
    assert_eq!(handshake(&monitor), zmq::SocketEvent::HANDSHAKE_SUCCEEDED);
    heartbeat(&with_login);
    let (_without, monitor) = monitored_subscriber(&context, &publisher, None);
    assert_ne!(handshake(&monitor), zmq::SocketEvent::HANDSHAKE_SUCCEEDED);
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
