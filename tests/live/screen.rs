//! The watcher on a terminal: redrawn in place from the top, changes marked,
//! colours unless NO_COLOR, stale while the server is away, fitted to the
//! terminal's size (and redrawn when it changes).

use std::time::{Duration, Instant};

use rexpect::session::PtySession;

use crate::common::{self, Server, client, exit_code, free_port, shown, stop};
use crate::publishing;

#[test]
fn a_terminal_watcher_redraws_in_place_marks_changes_and_respects_no_color() {
    for no_color in [false, true] {
        let server = publishing(&[]);
        server.request_text("alice: in a meeting");
        let mut command = client(&["_", "--endpoint", &server.endpoint]);
        if no_color {
            command.env("NO_COLOR", "1");
        } else {
            command.env_remove("NO_COLOR");
        }
        let mut session = common::on_a_terminal(command, "xterm");
        let mut seen = session.exp_string("live").expect("the title says live");
        seen += &session.exp_string("just now").expect("an age");
        server.request_text("bob: lunch");
        seen += &session.exp_string("* bob").expect("bob, marked as changed");
        seen += &session.exp_string("lunch").expect("bob's status");
        // Redrawn from the top each time, never scrolled.
        assert!(seen.matches("\x1b[H").count() >= 2, "{seen:?}");
        assert!(!seen.contains("-----------------"), "{seen:?}");
        let colored = seen.contains("\x1b[1;32m");
        assert_eq!(colored, !no_color, "NO_COLOR={no_color}: {seen:?}");
        session.send_control('c').expect("Ctrl-C");
        let (code, rest) = exit_code(session);
        assert_eq!(code, 0, "{rest}");
    }
}

#[test]
fn a_terminal_watcher_says_stale_while_the_server_is_away_and_live_once_it_is_back() {
    let (port, publish) = (free_port().to_string(), free_port());
    let publish = format!("tcp://127.0.0.1:{publish}");
    let args = [
        port.as_str(),
        "--in-memory",
        "--publish",
        &publish,
        "--quiet",
    ];
    let first = Server::start_raw(&args);
    first.request_text("alice: here");
    let mut command = client(&["_", &port, "--timeout", "300"]);
    command.env("NO_COLOR", "1");
    let mut session = common::on_a_terminal(command, "xterm");
    session.exp_string("live").expect("the title says live");
    // A change pushed and shown: the watcher has heard its publisher.
    first.request_text("bob: pushed");
    session.exp_string("pushed").expect("the pushed change");
    drop(first);
    session
        .exp_string("stale: no contact for")
        .expect("the title says stale within the publisher's silence and a try");
    let seen = session
        .exp_string("pushed")
        .expect("the last board is kept");
    assert!(!seen.contains("live"), "{seen:?}");
    let _second = Server::start_raw(&args);
    session
        .exp_string("live")
        .expect("live again once the server is back");
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

#[test]
fn a_terminal_watcher_started_against_a_dead_server_says_no_contact_yet_until_it_has() {
    let port = free_port().to_string();
    let mut command = client(&["_", &port, "--timeout", "300"]);
    command.env("NO_COLOR", "1");
    let mut session = common::on_a_terminal(command, "xterm");
    let screen = next_screen_with(&mut session, "no contact yet (trying for");
    assert!(
        screen.contains("(no contact yet: the board is not known)"),
        "not an empty board: {screen}"
    );
    assert!(
        !screen.contains("board is empty") && !screen.contains("stale"),
        "{screen}"
    );
    let _server = Server::start_raw(&[&port, "--in-memory", "--quiet"]);
    let screen = next_screen_with(&mut session, "(the board is empty)");
    assert!(!screen.contains("no contact"), "{screen}");
    stop(session);
}

#[test]
fn a_board_taller_and_wider_than_the_terminal_fits_it_without_scrolling() {
    let server = publishing(&[]);
    for i in 0..18 {
        server.request_text(&format!("user{i:02}: status {i}"));
    }
    server.request_text(&format!("wide: {}", "w".repeat(120)));
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    command
        .env("NO_COLOR", "1")
        .env("LINES", "12")
        .env("COLUMNS", "80");
    let mut session = common::on_a_terminal(command, "xterm");
    let screen = next_screen_with(&mut session, "and 11 more");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines.len() <= 12,
        "{} lines on a 12-line terminal: {screen}",
        lines.len()
    );
    for line in &lines {
        assert!(line.chars().count() < 80, "wider than 80 cells: {line:?}");
    }
    // The youngest first: `wide` was set last.
    assert!(screen.contains("wwww"), "{screen}");
    assert!(
        !screen.contains(&"w".repeat(100)),
        "the wide status is cut: {screen}"
    );
    let names = (0..18)
        .filter(|i| screen.contains(&format!("user{i:02}")))
        .count();
    assert_eq!(names, 7, "only what fits: {screen}");
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

#[test]
fn a_resized_terminal_is_redrawn_to_fit() {
    use std::os::fd::AsRawFd;
    let server = publishing(&[]);
    for i in 0..18 {
        server.request_text(&format!("user{i:02}: status {i}"));
    }
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    command
        .env("NO_COLOR", "1")
        .env_remove("LINES")
        .env_remove("COLUMNS");
    let mut session = common::on_a_terminal(command, "xterm");
    let set_size = |session: &PtySession, rows: u16, cols: u16| {
        let master = session.process().get_file_handle().expect("the pty");
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize it is given; the kernel then
        // sends SIGWINCH to the program on the terminal.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    };
    set_size(&session, 40, 80);
    session.exp_string("user17").expect("40 rows: every name");
    // Too narrow for two columns.
    set_size(&session, 12, 50);
    session
        .exp_string("and 10 more")
        .expect("12 rows: as many as fit, and the count of the rest");
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

/// The next whole screen the watcher draws that contains `wanted`, as
/// shown (each screen starts at the top, `ESC [H`, and ends clearing the
/// rest, `ESC [J`). Screens come at least every second: the ages move.
fn next_screen_with(session: &mut PtySession, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no screen with {wanted:?} in 30 s"
        );
        let drawn = session.exp_string("\u{1b}[J").expect("a screen");
        let screen = shown(drawn.rsplit("\u{1b}[H").next().unwrap_or_default());
        if screen.contains(wanted) {
            return screen;
        }
    }
}

/// The watcher on a pty of `columns` × `lines`, without colours.
fn on_a_terminal_of(server: &Server, columns: u16, lines: u16) -> PtySession {
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    command
        .env("NO_COLOR", "1")
        .env("LINES", lines.to_string())
        .env("COLUMNS", columns.to_string());
    common::on_a_terminal(command, "xterm")
}

#[test]
fn a_wide_terminal_shows_a_long_status_whole() {
    let server = publishing(&[]);
    let long = "back at desk, reviewing PR #1234 for the storage layer rewrite, then lunch at noon";
    server.request_text("bob: here");
    server.request_text(&format!("alice: {long}"));
    let mut session = on_a_terminal_of(&server, 220, 24);
    let screen = next_screen_with(&mut session, "alice");
    let line = screen
        .lines()
        .find(|l| l.contains("alice"))
        .expect("alice's line");
    assert!(line.contains(long), "cut on 220 columns: {line:?}");
    assert!(screen.lines().all(|l| l.chars().count() < 220), "{screen}");
    // Ages line up after the longest status.
    let ages: Vec<usize> = screen
        .lines()
        .filter_map(|l| l.find("just now").map(|at| l[..at].chars().count()))
        .collect();
    assert_eq!(ages.len(), 2, "{screen}");
    assert_eq!(ages[0], ages[1], "{screen}");
    stop(session);
}

#[test]
fn a_wide_terminal_shows_more_names_than_lines_in_columns() {
    let server = publishing(&[]);
    for i in 0..60 {
        server.request_text(&format!("user{i:02}: working on item {i}"));
    }
    let mut session = on_a_terminal_of(&server, 220, 24);
    let screen = next_screen_with(&mut session, "60 names");
    assert!(!screen.contains("more"), "every name fits: {screen}");
    for i in 0..60 {
        assert!(
            screen.contains(&format!("user{i:02}  working on item {i} ")),
            "user{i:02}: {screen}"
        );
    }
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() <= 24, "{screen}");
    assert!(lines.iter().all(|l| l.chars().count() < 220), "{screen}");
    // Columns: the first name line holds three names.
    assert_eq!(lines[2].matches("user").count(), 3, "{screen}");
    stop(session);
}

#[test]
fn a_change_to_a_name_that_did_not_fit_brings_it_on_screen_and_it_stays() {
    let server = publishing(&[]);
    for i in 0..30 {
        server.request_text(&format!("user{i:02}: status {i}"));
    }
    let mut session = on_a_terminal_of(&server, 80, 12);
    let before = next_screen_with(&mut session, "more");
    let more = |screen: &str| {
        screen
            .lines()
            .find_map(|l| l.split("… and ").nth(1).map(str::to_owned))
            .unwrap_or_else(|| panic!("no count of the rest: {screen}"))
    };
    let hidden = (0..30)
        .map(|i| format!("user{i:02}"))
        .find(|name| !before.contains(name.as_str()))
        .expect("a name that does not fit");
    server.request_text(&format!("{hidden}: back at my desk"));
    let after = next_screen_with(&mut session, "back at my desk");
    assert!(
        after.contains(&format!("* {hidden}  back at my desk")),
        "marked as changed: {after}"
    );
    assert_eq!(more(&after), more(&before), "as many rows: {after}");
    // The mark goes after 10 s; the row stays (a minute).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "still marked after 30 s");
        let screen = next_screen_with(&mut session, "status board");
        assert!(
            screen.contains(&format!("{hidden}  back at my desk")),
            "{screen}"
        );
        if !screen.contains(&format!("* {hidden}")) {
            break;
        }
    }
    stop(session);
}

#[test]
fn an_expired_name_is_shown_as_expired_where_it_was_pushed_or_polled() {
    for publish in [true, false] {
        let server = match publish {
            true => publishing(&["--ttl", "1s"]),
            false => Server::start(&["--ttl", "1s", "--quiet"]),
        };
        let mut command = client(&["_", "--endpoint", &server.endpoint, "--interval", "0.2"]);
        command.env("NO_COLOR", "1");
        let mut session = common::on_a_terminal(command, "xterm");
        next_screen_with(&mut session, "(the board is empty)");
        server.request_text("erin: on a call");
        next_screen_with(&mut session, "on a call");
        let screen = next_screen_with(&mut session, "expired");
        assert!(
            screen.contains("- erin  expired"),
            "publish={publish}: {screen}"
        );
        assert!(screen.contains("0 names"), "{screen}");
        stop(session);
    }
}
