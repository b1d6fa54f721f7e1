//! The Python original's programs, extracted from the reference at test time,
//! against our binaries: outputs must match the original's byte for byte.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Lines, PythonServer, Reference, Server, reference_or_skip, run_with_input};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the original client with `lines` on stdin; it crashes at EOF, as it does.
fn python_client(reference: &Reference, name: &str, port: u16, lines: &str) -> String {
    let output = run_with_input(
        Command::new("python3")
            .arg("-u")
            .arg(&reference.client)
            .args([name, &port.to_string(), "127.0.0.1"]),
        lines,
        CLIENT_TIMEOUT,
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .replace(&format!("'{port}'"), "'PORT'")
}

/// Runs the original watcher until it has printed its first board, then stops it.
fn python_watcher(reference: &Reference, port: u16) -> String {
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&reference.client)
        .args(["_", &port.to_string(), "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the Python watcher");
    let lines = Lines::from(child.stdout.take().expect("piped"));
    let mut seen = Vec::new();
    // The board ends with the blank line that print() adds after it.
    loop {
        let line = lines.next("the watcher's first board");
        let done = line.is_empty();
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen.join("\n").replace(&format!("'{port}'"), "'PORT'")
}

/// The whole session of the reference, run by the original client against one server.
fn session(reference: &Reference, port: u16) -> Vec<String> {
    vec![
        python_client(reference, "Jackson", port, "I'm BAD\n"),
        python_client(reference, "Madonna", port, "I am a material girl\n"),
        python_client(reference, "Jackson", port, "still BAD\nI'm BAD\n"),
        python_watcher(reference, port),
    ]
}

#[test]
fn original_client_sees_the_same_against_both_servers() {
    let Some(reference) = reference_or_skip("original_client_sees_the_same_against_both_servers")
    else {
        return;
    };
    let python = PythonServer::start(&reference);
    let expected = session(&reference, python.port);

    let ours = Server::start_raw(&["0", "--in-memory"]);
    let actual = session(&reference, ours.port());
    assert_eq!(actual, expected);

    // Not two equally broken runs: the transcript is the reference's.
    assert_eq!(
        expected[1],
        "Connecting to port 'PORT' of host '127.0.0.1'.\n\
         Madonna: ----------------- 0\n\
         - Jackson: I'm BAD\n\
         - Madonna: I am a material girl\n\
         \n\
         Madonna: "
    );
    assert!(
        expected[3].ends_with(
            "----------------- 0\n- Jackson: I'm BAD\n- Madonna: I am a material girl\n"
        ),
        "{:?}",
        expected[3]
    );

    // The consoles say the same too.
    let settle = Duration::from_millis(300);
    let python_console = python.stdout.drain(settle);
    let our_console = ours.stdout.drain(settle);
    assert_eq!(python_console.len(), 4, "{python_console:?}");
    assert_eq!(our_console, python_console);
}

/// Our client in every non-interactive mode against one server, endpoint normalised.
fn our_client_session(port: u16) -> Vec<String> {
    let port_text = port.to_string();
    let run = |args: &[&str], stdin: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_status_client"));
        command.args(args).args([port_text.as_str(), "127.0.0.1"]);
        let output = run_with_input(&mut command, stdin, CLIENT_TIMEOUT);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        String::from_utf8(output.stdout)
            .expect("UTF-8 output")
            .replace(&format!("'{port}'"), "'PORT'")
    };
    vec![
        run(&["--set", "I'm BAD", "Jackson"], ""),
        run(&["Madonna"], "I am a material girl\nstill material\n"),
        run(&["--json", "--set", "a: colon", "ci"], ""),
        run(&["--interval", "0.05", "--count", "2", "_"], ""),
        run(&["--json", "--count", "1", "_"], ""),
    ]
}

#[test]
fn our_client_sees_the_same_against_both_servers() {
    let Some(reference) = reference_or_skip("our_client_sees_the_same_against_both_servers") else {
        return;
    };
    let python = PythonServer::start(&reference);
    let expected = our_client_session(python.port);
    let ours = Server::start_raw(&["0", "--quiet", "--in-memory"]);
    let actual = our_client_session(ours.port());
    assert_eq!(actual[..4], expected[..4]);

    // The JSON watcher gets ages and the board's number from our server only;
    // against the original it falls back to the plain board.
    let watched = |text: &str| -> serde_json::Value {
        serde_json::from_str(text).expect("one JSON document")
    };
    let (ours_doc, original_doc) = (watched(&actual[4]), watched(&expected[4]));
    assert!(original_doc.get("seq").is_none(), "{original_doc}");
    assert_eq!(ours_doc["seq"], 4, "{ours_doc}");
    let plain = |doc: &serde_json::Value| -> Vec<serde_json::Value> {
        let entries = doc["entries"].as_array().expect("entries");
        entries
            .iter()
            .map(|e| serde_json::json!({"name": e["name"], "status": e["status"]}))
            .collect()
    };
    assert_eq!(plain(&ours_doc), plain(&original_doc));
    assert!(ours_doc["entries"][0]["set_at"].is_string(), "{ours_doc}");

    // And what they say is the board: not two equally broken runs.
    assert_eq!(expected[0], "- Jackson: I'm BAD\n");
    assert_eq!(
        expected[1],
        "----------------- 0\n- Jackson: I'm BAD\n- Madonna: I am a material girl\n\n\
         ----------------- 1\n- Jackson: I'm BAD\n- Madonna: still material\n\n"
    );
    let doc: serde_json::Value = serde_json::from_str(&expected[4]).expect("JSON");
    assert_eq!(
        doc["entries"][2],
        serde_json::json!({"name": "ci", "status": "a: colon"})
    );
    assert!(
        expected[3]
            .starts_with("Connecting to port 'PORT' of host '127.0.0.1'.\n----------------- 0\n")
    );
}
