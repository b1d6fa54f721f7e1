//! A published change as a follower parses it (`set|del|hb EPOCH SEQ AT …`):
//! what parses encodes back to a frame that parses to the same notice, and
//! to the very same bytes when its numbers were written canonically (and a
//! heartbeat has nothing after its time).
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::protocol::{Event, encode_notice, parse_notice};

fuzz_target!(|frame: &[u8]| {
    let Ok(notice) = parse_notice(frame) else {
        return;
    };
    assert!(!notice.epoch.contains(' '), "the epoch is one word");
    if let Event::Set { name, status } = notice.event {
        assert!(!name.contains(':') && status.starts_with(':'));
    }
    let mut encoded = Vec::new();
    encode_notice(&mut encoded, &notice);
    assert_eq!(parse_notice(&encoded), Ok(notice), "round trip");
    // `+7` and `007` parse as 7; written as `7`, the rest is byte for byte.
    let canonical =
        |word: &[u8]| word.first() != Some(&b'+') && !(word.len() > 1 && word[0] == b'0');
    let mut words = frame.splitn(5, |&b| b == b' ');
    let (_, _, seq, at) = (words.next(), words.next(), words.next(), words.next());
    // A heartbeat's words after the fourth are a later version's: ignored.
    let ignored = matches!(notice.event, Event::Heartbeat) && words.next().is_some();
    if seq.is_some_and(canonical) && at.is_some_and(canonical) && !ignored {
        assert_eq!(encoded, frame, "re-encodes to the same bytes");
    }
});
