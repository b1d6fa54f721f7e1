//! A reply frame as the client parses it: an error, `unchanged SEQ`, a
//! snapshot (`status-board 1` and its header, then timed entries) or the
//! original's board of `- NAME: STATUS` lines. What parses encodes back, with
//! the server's own encoders, to a reply that parses to the same thing; the
//! one exception is a `\r` that ends a line, which `str::lines` takes as
//! part of the line end once it is written with its `\n`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::protocol::{
    ERROR_PREFIX, Entry, ExtendedReply, Snapshot, UNCHANGED_PREFIX, encode_entry,
    encode_snapshot_header, encode_timed_entry, parse_board, parse_extended_reply,
};

/// A field that ends a line, as it reads back once written with its `\n`.
fn line_end(field: &str) -> String {
    field.strip_suffix('\r').unwrap_or(field).to_owned()
}

fn check_entry(entry: &Entry) {
    assert!(!entry.name.contains(':'), "a name ends at the first ':'");
    assert!(entry.status.starts_with(':'));
    assert!(!entry.name.contains('\n') && !entry.status.contains('\n'));
}

fn encode_board(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        encode_entry(&mut out, &entry.name, &entry.status);
    }
    out
}

fn read_back_board(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| Entry {
            status: line_end(&e.status),
            ..e.clone()
        })
        .collect()
}

fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    encode_snapshot_header(&mut out, &snapshot.header);
    for entry in &snapshot.entries {
        let at = entry.set_at_ms.expect("a snapshot's entries have times");
        encode_timed_entry(&mut out, at, &entry.name, &entry.status);
    }
    out
}

fn read_back_snapshot(snapshot: &Snapshot) -> Snapshot {
    let mut again = snapshot.clone();
    again.header.epoch = line_end(&again.header.epoch);
    again.header.publish = again.header.publish.iter().map(|p| line_end(p)).collect();
    again.entries = read_back_board(&again.entries);
    again
}

fuzz_target!(|frame: &[u8]| {
    if let Ok(text) = std::str::from_utf8(frame) {
        // The original's board, as the one-shot client reads it.
        if let Ok(entries) = parse_board(text) {
            entries.iter().for_each(check_entry);
            assert_eq!(entries.len(), text.lines().count());
            let again = parse_board(std::str::from_utf8(&encode_board(&entries)).unwrap());
            assert_eq!(again, Ok(read_back_board(&entries)));
        }
    }
    let Ok(reply) = parse_extended_reply(frame) else {
        return;
    };
    let (encoded, expected) = match &reply {
        ExtendedReply::Error(message) => (
            format!("{ERROR_PREFIX}{message}").into_bytes(),
            reply.clone(),
        ),
        ExtendedReply::Unchanged { seq } => (
            format!("{UNCHANGED_PREFIX}{seq}").into_bytes(),
            reply.clone(),
        ),
        ExtendedReply::Board(entries) => {
            entries.iter().for_each(check_entry);
            assert!(entries.iter().all(|e| e.set_at_ms.is_none()));
            (
                encode_board(entries),
                ExtendedReply::Board(read_back_board(entries)),
            )
        }
        ExtendedReply::Snapshot(snapshot) => {
            snapshot.entries.iter().for_each(check_entry);
            (
                encode_snapshot(snapshot),
                ExtendedReply::Snapshot(read_back_snapshot(snapshot)),
            )
        }
    };
    assert_eq!(
        parse_extended_reply(&encoded),
        Ok(expected),
        "{:?} re-encoded as {:?}",
        String::from_utf8_lossy(frame),
        String::from_utf8_lossy(&encoded)
    );
});
