//! A request frame as the server parses it, under the default limits and
//! with none. An accepted request means what its bytes say: it encodes back
//! to the same bytes (but a number, as its canonical digits, and a space
//! after `_:@board`), and the default
//! limits accept a subset of what no limits accept, with the same meaning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::protocol::{
    self, Field, Limits, POLL_NAME, Request, SNAPSHOT_REQUEST, check_line, check_name,
    check_stored_name, format_clear, format_since, parse_request,
};

fuzz_target!(|frame: &[u8]| {
    let unlimited = parse_request(frame, &Limits::UNLIMITED);
    let limited = parse_request(frame, &Limits::default());
    if let Ok(request) = limited {
        assert_eq!(unlimited, Ok(request), "the limits only refuse more");
        assert!(frame.len() <= protocol::DEFAULT_MAX_REQUEST);
    }
    let Ok(request) = unlimited else { return };
    let text = std::str::from_utf8(frame).expect("an accepted request is UTF-8");
    match request {
        Request::Poll => assert!(text.starts_with("_:") && !text.starts_with("_:@")),
        Request::Update { name, status } => {
            assert_eq!(
                format!("{name}{status}"),
                text,
                "re-encodes to the same bytes"
            );
            assert!(check_name(name, &Limits::UNLIMITED).is_ok());
            assert!(name != POLL_NAME && !name.contains(':'));
            assert!(status.starts_with(':'));
            assert!(check_line(status, Field::Status).is_ok());
            assert!(!name.chars().chain(status.chars()).any(char::is_control));
        }
        // `_:@board ` (a space, no argument) is taken as `_:@board` too: the
        // one request whose bytes are not all its meaning, and harmless.
        Request::Snapshot => assert!(text == SNAPSHOT_REQUEST || text == "_:@board "),
        Request::Since { epoch, seq } => {
            let again = format_since(epoch, seq);
            assert_eq!(
                parse_request(again.as_bytes(), &Limits::UNLIMITED),
                Ok(request),
                "re-encodes to a request of the same meaning"
            );
            // u64's parser takes `+7` and `007` as 7: the canonical digits
            // are the same request, and every other byte is kept.
            let (prefix, digits) = text.rsplit_once(' ').expect("a space before SEQ");
            assert_eq!(format!("{prefix} {seq}"), again);
            assert_eq!(digits.trim_start_matches('+').parse::<u64>(), Ok(seq));
            assert!(!epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        Request::Clear { name } => {
            assert_eq!(format_clear(name), text, "re-encodes to the same bytes");
            assert!(check_stored_name(name).is_ok() && name != POLL_NAME);
        }
    }
});
