//! A board from a server, however hostile, as the client shows it: the
//! original's text block, JSON for scripts, and the terminal screen. Nothing
//! a server sends reaches the terminal as a control character (the screen's
//! own CSI sequences aside); JSON is one line that reads back to the board;
//! the screen never scrolls and, 80 columns or more, no line is too wide.
//! The first two bytes are the screen's rows and columns; the rest a reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::client::mirror::Mirror;
use status_board::client::render::{
    ScreenSize, Style, display_status, write_block, write_json, write_mirror_json, write_screen,
};
use status_board::protocol::{ExtendedReply, parse_extended_reply};
use unicode_width::UnicodeWidthChar;

/// `out` without the screen's CSI sequences (`ESC [ … final`), as lines.
fn shown_lines(out: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = out;
    while let Some(at) = rest.find("\x1b[") {
        text.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| ('@'..='~').contains(&c))
            .map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    text.push_str(rest);
    text.split('\n').map(str::to_owned).collect()
}

fn assert_no_control(text: &str, but: &[char]) {
    let found = text.chars().find(|c| c.is_control() && !but.contains(c));
    assert!(found.is_none(), "control character {found:?} in {text:?}");
}

/// One JSON document on one line, its names and statuses those of `board`.
fn check_json(out: &[u8], board: &[(String, String)]) -> serde_json::Value {
    let text = std::str::from_utf8(out).expect("JSON is UTF-8");
    let line = text.strip_suffix('\n').expect("a line");
    assert_no_control(line, &[]);
    let document: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
    let entries = document["entries"].as_array().expect("entries");
    let read: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(read, board, "JSON carries the board exactly");
    document
}

fn check_screen(mirror: &mut Mirror, size: ScreenSize) {
    let mut out = Vec::new();
    write_screen(&mut out, mirror, "status board", style(), size).unwrap();
    let out = String::from_utf8(out).expect("the screen is UTF-8");
    let lines = shown_lines(&out);
    for line in &lines {
        assert_no_control(line, &[]);
    }
    if size.rows >= 4 {
        assert!(
            lines.len() - 1 < size.rows,
            "{} lines on {} rows",
            lines.len() - 1,
            size.rows
        );
    }
    if size.cols >= 80 {
        for line in &lines {
            let cells: usize = line.chars().map(|c| c.width().unwrap_or(0)).sum();
            assert!(
                cells < size.cols,
                "{cells} cells on {} columns: {line:?}",
                size.cols
            );
        }
    }
}

fn style() -> Style {
    Style::from_env()
}

fuzz_target!(|data: &[u8]| {
    let [rows, cols, frame @ ..] = data else {
        return;
    };
    let size = ScreenSize {
        rows: usize::from(*rows),
        cols: usize::from(*cols) * 2,
    };
    let Ok(reply) = parse_extended_reply(frame) else {
        return;
    };
    let mut mirror = match reply {
        ExtendedReply::Board(entries) => {
            let board: Vec<(String, String)> = entries
                .iter()
                .map(|e| (e.name.clone(), display_status(&e.status).to_owned()))
                .collect();
            let mut out = Vec::new();
            write_json(&mut out, &entries).unwrap();
            check_json(&out, &board);
            let text = std::str::from_utf8(frame).unwrap();
            let mut out = Vec::new();
            write_block(&mut out, 7, text).unwrap();
            let out = String::from_utf8(out).unwrap();
            assert_no_control(&out, &['\n']);
            assert!(out.starts_with("----------------- 7\n"));
            let mut mirror = Mirror::empty();
            mirror.reset_original(entries);
            mirror
        }
        ExtendedReply::Snapshot(snapshot) => Mirror::new(snapshot),
        ExtendedReply::Unchanged { .. } | ExtendedReply::Error(_) => return,
    };
    let board: Vec<(String, String)> = mirror
        .entries()
        .map(|(name, e)| (name.to_owned(), display_status(&e.status).to_owned()))
        .collect();
    let mut out = Vec::new();
    write_mirror_json(&mut out, &mirror).unwrap();
    check_json(&out, &board);
    check_screen(&mut mirror, size);
});
