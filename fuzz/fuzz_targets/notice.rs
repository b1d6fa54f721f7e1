//! A published change as a follower parses it (`set|del|hb|rev EPOCH SEQ AT …`):
//! what parses encodes back to a frame that parses to the same notice, and
//! to the very same bytes when its numbers were written canonically (and a
//! heartbeat has nothing after its time, and a revision no newline at its end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::protocol::{Event, encode_notice, encode_revision, parse_notice};

/// A set's name has no colon, and its status starts with one.
fn sound(event: Event<'_>) -> bool {
    match event {
        Event::Set { name, status } => !name.contains(':') && status.starts_with(':'),
        _ => true,
    }
}

fuzz_target!(|frame: &[u8]| {
    let Ok(notice) = parse_notice(frame) else {
        return;
    };
    assert!(!notice.epoch.contains(' '), "the epoch is one word");
    assert!(sound(notice.event));
    let mut encoded = Vec::new();
    encode_notice(&mut encoded, &notice);
    if let Event::Revision { prev, changes } = notice.event {
        assert!(prev < notice.seq, "a revision comes after its previous one");
        let listed: Vec<Event<'_>> = changes.iter().collect();
        assert_eq!(listed.len(), changes.len());
        for change in &listed {
            assert!(matches!(change, Event::Set { .. } | Event::Removed { .. }));
            assert!(sound(*change));
        }
        // What a gateway writes from the same changes is what is re-encoded.
        let mut written = Vec::new();
        encode_revision(&mut written, notice.epoch, notice.seq, notice.at_ms, prev, &listed);
        assert_eq!(written, encoded);
    }
    assert_eq!(parse_notice(&encoded), Ok(notice), "round trip");
    // `+7` and `007` parse as 7; written as `7`, the rest is byte for byte.
    let canonical =
        |word: &[u8]| word.first() != Some(&b'+') && !(word.len() > 1 && word[0] == b'0');
    let revision = matches!(notice.event, Event::Revision { .. });
    // A revision's numbers are on its first line, the fifth its previous one.
    let head = match revision {
        true => frame.split(|&b| b == b'\n').next().unwrap_or_default(),
        false => frame,
    };
    let mut words = head.splitn(5, |&b| b == b' ');
    let (_, _, seq, at) = (words.next(), words.next(), words.next(), words.next());
    let fifth = words.next();
    let written_as_encoded = match notice.event {
        // A heartbeat's words after the fourth are a later version's: ignored.
        Event::Heartbeat => fifth.is_none(),
        // A newline at a revision's end is dropped.
        Event::Revision { .. } => fifth.is_some_and(canonical) && !frame.ends_with(b"\n"),
        _ => true,
    };
    if seq.is_some_and(canonical) && at.is_some_and(canonical) && written_as_encoded {
        assert_eq!(encoded, frame, "re-encodes to the same bytes");
    }
});
