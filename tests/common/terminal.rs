//! A program on a pseudo-terminal, as a person runs it (rexpect), and what
//! it may write there.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::process::Command;
use std::time::Duration;

use rexpect::session::PtySession;

/// Both ways rustyline reads: raw mode (`xterm`) and plain cooked reads (`dumb`).
pub const TERMS: [&str; 2] = ["xterm", "dumb"];

/// How long each wait for a program's output on a terminal may take.
const TERMINAL_BOUND: Duration = Duration::from_secs(10);

/// A program on a pseudo-terminal of kind `term`, as a person runs it.
pub fn on_a_terminal(command: Command, term: &str) -> PtySession {
    on_a_terminal_within(command, term, TERMINAL_BOUND)
}

/// [`on_a_terminal`], each wait for output bounded by `bound`.
pub fn on_a_terminal_within(mut command: Command, term: &str, bound: Duration) -> PtySession {
    command.env("TERM", term);
    let bound = u64::try_from(bound.as_millis()).expect("fits");
    rexpect::session::spawn_command(command, Some(bound)).expect("spawn on a pty")
}

/// Waits for the end of the session: its exit code, and what it wrote
/// since the last thing awaited.
pub fn exit_code(mut session: PtySession) -> (i32, String) {
    let rest = session.exp_eof().expect("exits");
    match session.process().wait().expect("status") {
        rexpect::process::WaitStatus::Exited(_, code) => (code, rest),
        other => panic!("unexpected {other:?}: {rest}"),
    }
}

/// Waits for the end of the session and checks it ended cleanly with exit 0.
pub fn assert_leaves_cleanly(session: PtySession, term: &str) {
    let (code, rest) = exit_code(session);
    assert!(
        !rest.contains("panicked") && !rest.contains("backtrace"),
        "TERM={term}: {rest}"
    );
    assert_eq!(code, 0, "TERM={term}: {rest}");
}

/// Ctrl-C, as a person stops a watcher, and its end.
pub fn stop(mut session: PtySession) {
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

/// What rexpect read from a terminal, as the bytes the program wrote
/// (rexpect hands each byte over as one `char`).
pub fn terminal_bytes(read: &str) -> Vec<u8> {
    read.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("one byte per char"))
        .collect()
}

/// The terminal's text as it shows it: decoded as UTF-8, without the CSI
/// escape sequences and CRs.
pub fn shown(read: &str) -> String {
    let bytes = terminal_bytes(read);
    let text = String::from_utf8_lossy(&bytes);
    let mut plain = String::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find('\u{1b}') {
        plain.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        // CSI: ESC [ parameters final-byte.
        let end = after
            .strip_prefix('[')
            .and_then(|r| r.find(|c: char| ('@'..='~').contains(&c)).map(|e| e + 2))
            .unwrap_or(0);
        rest = &after[end..];
    }
    plain.push_str(rest);
    plain.replace('\r', "")
}

/// Panics unless `bytes`, which a program wrote, are UTF-8 with no control
/// character but newlines, a CR only before a newline (a terminal's CRLF),
/// and an ESC only where it starts one of `own`: no BEL, DEL, NUL, no C1
/// control, no sequence a server chose.
pub fn assert_nothing_raw(what: &str, bytes: &[u8], own: &[&str]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for (at, c) in text.char_indices() {
        let rest = &text[at..];
        let allowed = match c {
            '\n' => true,
            '\r' => rest[1..].starts_with('\n'),
            '\u{1b}' => own.iter().any(|sequence| rest.starts_with(sequence)),
            c => !c.is_control(),
        };
        assert!(
            allowed,
            "{what}: {c:?} at byte {at}, in {:?}",
            &text[at.saturating_sub(20)..]
        );
    }
}
