use super::board::{Reply, parse_reply};
use super::name::does_not_show;
use super::*;
use proptest::prelude::*;

fn parse(text: &str) -> Result<Request<'_>, ProtocolError> {
    parse_request(text.as_bytes(), &Limits::default())
}

#[test]
fn names_that_do_not_show_what_they_hold_are_refused() {
    for name in [
        "\u{202e}ecila",
        "al\u{200b}ice",
        "\u{200b}",
        "\u{2060}",
        "\u{feff}bob",
        "\u{3164}",
        "\u{3164}\u{3164}",
        "a\u{200d}b",
        "\u{2066}bob\u{2069}",
        "bob\u{e0041}",
        "\u{a0}",
        "\u{3000}",
        "\u{2800}",
        "x\u{fe0f}",
    ] {
        let err = parse(&format!("{name}: hi")).expect_err(name);
        assert!(
            matches!(err, ProtocolError::InvisibleChar { .. }),
            "{name:?}: {err}"
        );
        assert!(err.to_string().contains("U+"), "{err}");
    }
    for name in [" alice", "alice ", " "] {
        assert_eq!(parse(&format!("{name}: hi")), Err(ProtocolError::EdgeSpace));
    }
    for name in [
        "王小明",
        "José",
        "Jose\u{301}",
        "Zoë",
        "bob smith",
        "Ölçer-42",
        "العربية",
    ] {
        assert!(
            matches!(parse(&format!("{name}: hi")), Ok(Request::Update { .. })),
            "{name:?}"
        );
        assert_eq!(check_name(name, &Limits::default()), Ok(()), "{name:?}");
    }
    // What a state file holds from before these rules still reads back.
    assert_eq!(check_stored_name("\u{202e}ecila"), Ok(()));
}

#[test]
fn the_table_of_characters_that_do_not_show_is_sorted_and_exact() {
    let hidden: Vec<u32> = (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|&c| does_not_show(c))
        .map(u32::from)
        .collect();
    // Spot checks on both sides of every kind of range.
    for inside in [
        0xA0, 0xAD, 0x200B, 0x200F, 0x202E, 0x2060, 0x206F, 0xFEFF, 0xE0FFF,
    ] {
        assert!(hidden.contains(&inside), "U+{inside:04X}");
    }
    for outside in [
        0x20, 0x41, 0xE9, 0x2010, 0x2030, 0x2070, 0x3001, 0xFF21, 0x1F600,
    ] {
        assert!(!hidden.contains(&outside), "U+{outside:04X}");
    }
}

#[test]
fn status_keeps_its_colon_as_the_original_stores_it() {
    assert_eq!(
        parse("Jackson: I'm BAD"),
        Ok(Request::Update {
            name: "Jackson",
            status: ": I'm BAD"
        })
    );
}

#[test]
fn name_ends_at_the_first_colon() {
    assert_eq!(
        parse("ci:build: green"),
        Ok(Request::Update {
            name: "ci",
            status: ":build: green"
        })
    );
}

#[test]
fn empty_status_is_just_the_colon() {
    assert_eq!(
        parse("bob:"),
        Ok(Request::Update {
            name: "bob",
            status: ":"
        })
    );
}

#[test]
fn underscore_is_a_poll_whatever_follows() {
    assert_eq!(parse("_:"), Ok(Request::Poll));
    assert_eq!(parse("_: anything at all"), Ok(Request::Poll));
    assert_eq!(parse("_:\nnot checked"), Ok(Request::Poll));
}

#[test]
fn extension_requests_parse() {
    assert_eq!(parse("_:@board"), Ok(Request::Snapshot));
    assert_eq!(
        parse("_:@since a1b2 42"),
        Ok(Request::Since {
            epoch: "a1b2",
            seq: 42
        })
    );
    assert_eq!(
        parse("_:@clear Jan Jansen"),
        Ok(Request::Clear { name: "Jan Jansen" })
    );
    for bad in [
        "_:@",
        "_:@nope",
        "_:@board x",
        "_:@since",
        "_:@since a1",
        "_:@since a1 x",
        "_:@since a-1 3",
        "_:@clear _",
    ] {
        assert!(
            matches!(parse(bad), Err(ProtocolError::UnknownExtension(_))),
            "{bad}"
        );
    }
    assert_eq!(parse("_:@clear "), Err(ProtocolError::EmptyName));
    assert!(matches!(
        parse("_:@clear a\nb"),
        Err(ProtocolError::ControlChar { .. })
    ));
}

#[test]
fn the_originals_own_requests_keep_their_meaning() {
    // What the Python client sends: a poll, and updates, also to odd names.
    assert_eq!(parse("_:"), Ok(Request::Poll));
    assert_eq!(parse("_: @board"), Ok(Request::Poll));
    assert!(matches!(parse("@board: x"), Ok(Request::Update { .. })));
}

#[test]
fn extended_replies_from_either_server() {
    assert_eq!(
        parse_extended_reply(b"unchanged 17"),
        Ok(ExtendedReply::Unchanged { seq: 17 })
    );
    // The original answers every extension with its plain board.
    assert_eq!(
        parse_extended_reply(b"- a: x\n"),
        Ok(ExtendedReply::Board(vec![Entry {
            name: "a".into(),
            status: ": x".into(),
            set_at_ms: None
        }]))
    );
    assert_eq!(parse_extended_reply(b""), Ok(ExtendedReply::Board(vec![])));
    assert_eq!(
        parse_extended_reply(b"error: no"),
        Ok(ExtendedReply::Error("no".into()))
    );
    assert!(parse_extended_reply(b"status-board 1\nseq 1\n\n").is_err());
    assert!(parse_extended_reply(b"status-board 1\nepoch e\nseq 1\n\nbad line\n").is_err());
}

#[test]
fn names_that_only_start_with_underscore_are_names() {
    assert_eq!(
        parse("_x: hi"),
        Ok(Request::Update {
            name: "_x",
            status: ": hi"
        })
    );
}

#[test]
fn no_colon_is_rejected() {
    assert_eq!(parse("Jackson"), Err(ProtocolError::NoColon));
    assert_eq!(parse("_"), Err(ProtocolError::NoColon));
    assert_eq!(parse(""), Err(ProtocolError::NoColon));
}

#[test]
fn empty_name_is_rejected() {
    assert_eq!(parse(": hello"), Err(ProtocolError::EmptyName));
}

#[test]
fn non_utf8_is_rejected_with_its_offset() {
    let err = parse_request(b"bob: \xff\xfe", &Limits::default());
    assert_eq!(err, Err(ProtocolError::NotUtf8 { offset: 5 }));
}

#[test]
fn control_characters_are_rejected_in_status() {
    for (text, found) in [
        ("bob: a\nb", '\n'),
        ("bob: a\rb", '\r'),
        ("bob: a\0b", '\0'),
        ("bob: a\tb", '\t'),
        ("bob: a\x1bb", '\x1b'),
        ("bob: a\x7fb", '\x7f'),
        ("bob: a\u{85}b", '\u{85}'),
    ] {
        assert_eq!(
            parse(text),
            Err(ProtocolError::ControlChar {
                field: Field::Status,
                found,
                offset: 3
            }),
            "{text:?}"
        );
    }
}

#[test]
fn control_characters_are_rejected_in_name() {
    assert_eq!(
        parse("b\nob: hi"),
        Err(ProtocolError::ControlChar {
            field: Field::Name,
            found: '\n',
            offset: 1
        })
    );
}

#[test]
fn a_newline_cannot_forge_a_board_line() {
    assert!(parse("eve: ok\n- boss: eve is fired").is_err());
}

#[test]
fn size_limit_is_checked_before_anything_else() {
    let limits = Limits {
        max_request: 8,
        max_name: 64,
    };
    assert_eq!(
        parse_request(b"bob: 1234", &limits).err(),
        Some(ProtocolError::TooLarge { size: 9, limit: 8 })
    );
    assert!(parse_request(b"bob: 123", &limits).is_ok());
}

#[test]
fn name_limit_counts_bytes() {
    let limits = Limits {
        max_request: 4096,
        max_name: 4,
    };
    assert!(parse_request("abcd: x".as_bytes(), &limits).is_ok());
    assert_eq!(
        parse_request("abcde: x".as_bytes(), &limits),
        Err(ProtocolError::NameTooLong { len: 5, limit: 4 })
    );
    assert_eq!(
        parse_request("ééé: x".as_bytes(), &limits),
        Err(ProtocolError::NameTooLong { len: 6, limit: 4 })
    );
}

#[test]
fn error_replies_start_with_the_prefix_and_say_what_is_expected() {
    let text = format_error(ProtocolError::NoColon.refusal(), &ProtocolError::NoColon);
    assert!(text.starts_with("error: invalid: "), "{text}");
    assert!(text.contains("NAME: STATUS"), "{text}");
}

#[test]
fn a_refusal_word_comes_first_and_reads_back() {
    let too_long = ProtocolError::TooLarge { size: 9, limit: 8 };
    let text = format_error(too_long.refusal(), &too_long);
    assert_eq!(text, format!("error: too-long: {too_long}"));
    let after_prefix = text.strip_prefix(ERROR_PREFIX).expect("the prefix");
    assert_eq!(
        Refusal::parse(after_prefix),
        (Some(Refusal::TooLong), too_long.to_string().as_str())
    );
    for refusal in [
        Refusal::Invalid,
        Refusal::TooLong,
        Refusal::Full,
        Refusal::Forbidden,
        Refusal::Unavailable,
    ] {
        let text = format!("{}: why", refusal.word());
        assert_eq!(Refusal::parse(&text), (Some(refusal), "why"));
    }
    // The original server, or an older one of ours: no word, the text whole.
    assert_eq!(
        Refusal::parse("user 'bob' may not set 'alice'"),
        (None, "user 'bob' may not set 'alice'")
    );
    assert_eq!(Refusal::parse("name: thing"), (None, "name: thing"));
}

#[test]
fn every_error_message_is_one_line() {
    let errors = [
        ProtocolError::TooLarge { size: 9, limit: 8 },
        ProtocolError::Multipart { parts: 2 },
        ProtocolError::NotUtf8 { offset: 0 },
        ProtocolError::NoColon,
        ProtocolError::EmptyName,
        ProtocolError::NameTooLong { len: 9, limit: 8 },
        ProtocolError::ControlChar {
            field: Field::Status,
            found: '\n',
            offset: 0,
        },
    ];
    for err in errors {
        let text = format_error(err.refusal(), &err);
        assert!(!text.contains('\n'), "{text:?}");
    }
}

#[test]
fn board_lines_are_dash_name_status() {
    let mut out = Vec::new();
    encode_entry(&mut out, "Jackson", ": I'm BAD");
    encode_entry(&mut out, "Madonna", ": I am a material girl");
    assert_eq!(
        out,
        b"- Jackson: I'm BAD\n- Madonna: I am a material girl\n"
    );
}

#[test]
fn empty_board_parses_as_no_entries() {
    assert_eq!(parse_reply(b""), Ok(Reply::Board(vec![])));
}

#[test]
fn error_reply_parses_as_error() {
    assert_eq!(
        parse_reply(b"error: name is empty"),
        Ok(Reply::Error("name is empty".into()))
    );
}

#[test]
fn malformed_board_line_is_reported() {
    assert!(matches!(
        parse_reply(b"- ok: fine\nnonsense\n"),
        Err(ProtocolError::BadBoardLine { line: 2, .. })
    ));
}

/// A name a client may send: no colon, no control characters, not `_`,
/// nothing that does not show, no space at either end.
fn valid_name() -> impl Strategy<Value = String> {
    "[^:\\p{Cc}]{1,16}".prop_filter("a name that can be set", |n| {
        n != POLL_NAME && !n.chars().any(does_not_show) && !n.starts_with(' ') && !n.ends_with(' ')
    })
}

/// A line a user may type: any printable text, colons included.
fn valid_text() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{0,64}"
}

proptest! {
    #[test]
    fn any_valid_update_survives_format_then_parse(name in valid_name(), text in valid_text()) {
        let request = format_update(&name, &text);
        let status = format!(": {text}");
        prop_assert_eq!(
            parse(&request),
            Ok(Request::Update { name: &name, status: &status })
        );
    }

    #[test]
    fn any_valid_board_survives_encode_then_parse(
        rows in proptest::collection::vec((valid_name(), valid_text()), 0..8)
    ) {
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for (name, text) in &rows {
            let status = format!(": {text}");
            encode_entry(&mut out, name, &status);
            expected.push(Entry { name: name.clone(), status, set_at_ms: None });
        }
        prop_assert_eq!(parse_reply(&out), Ok(Reply::Board(expected)));
    }

    #[test]
    fn any_snapshot_survives_encode_then_parse(
        rows in proptest::collection::vec((valid_name(), valid_text(), any::<u64>()), 0..8),
        seq in any::<u64>(),
        ttl in proptest::option::of(any::<u64>()),
        stale in proptest::option::of(any::<u64>()),
    ) {
        let header = SnapshotHeader {
            epoch: "e1".into(),
            seq,
            now_ms: 7,
            publish: vec!["tcp://127.0.0.1:5556".into()],
            ttl_ms: ttl,
            stale_since_ms: stale,
        };
        let mut out = Vec::new();
        encode_snapshot_header(&mut out, &header);
        let mut entries = Vec::new();
        for (name, text, at) in &rows {
            let status = format!(": {text}");
            encode_timed_entry(&mut out, *at, name, &status);
            entries.push(Entry { name: name.clone(), status, set_at_ms: Some(*at) });
        }
        prop_assert_eq!(
            parse_extended_reply(&out),
            Ok(ExtendedReply::Snapshot(Snapshot { header, entries }))
        );
    }

    #[test]
    fn any_notice_survives_encode_then_parse(
        name in valid_name(), text in valid_text(), seq in any::<u64>(), at in any::<u64>(), kind in 0u8..4
    ) {
        let status = format!(": {text}");
        let event = match kind {
            0 => Event::Set { name: &name, status: &status },
            1 => Event::Removed { name: &name, why: Removal::Cleared },
            2 => Event::Removed { name: &name, why: Removal::Expired },
            _ => Event::Heartbeat,
        };
        let notice = Notice { epoch: "abc123", seq, at_ms: at, event };
        let mut out = Vec::new();
        encode_notice(&mut out, &notice);
        prop_assert_eq!(parse_notice(&out), Ok(notice));
    }

    #[test]
    fn any_revision_survives_encode_then_parse(
        rows in proptest::collection::vec((valid_name(), valid_text(), 0u8..3), 0..8),
        prev in 0u64..u64::MAX, jump in 1u64..1_000, at in any::<u64>()
    ) {
        let statuses: Vec<String> = rows.iter().map(|(_, text, _)| format!(": {text}")).collect();
        let events: Vec<Event<'_>> = rows
            .iter()
            .zip(&statuses)
            .map(|((name, _, kind), status)| match kind {
                0 => Event::Set { name, status },
                1 => Event::Removed { name, why: Removal::Cleared },
                _ => Event::Removed { name, why: Removal::Expired },
            })
            .collect();
        let seq = prev.saturating_add(jump);
        let mut out = Vec::new();
        encode_revision(&mut out, "c1", seq, at, prev, &events);
        let notice = parse_notice(&out).expect("parses");
        let Event::Revision { prev: parsed_prev, changes } = notice.event else {
            panic!("a revision: {notice:?}");
        };
        prop_assert_eq!((notice.seq, notice.at_ms, parsed_prev), (seq, at, prev));
        prop_assert_eq!(changes.iter().collect::<Vec<_>>(), events);
        let mut again = Vec::new();
        encode_notice(&mut again, &notice);
        prop_assert_eq!(again, out, "encode_notice writes what encode_revision wrote");
    }

    #[test]
    fn an_accepted_update_is_exactly_its_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        // Never panics, and nothing is lost or invented between frame and entry.
        if let Ok(Request::Update { name, status }) = parse_request(&bytes, &Limits::default()) {
            let rebuilt = format!("{name}{status}");
            prop_assert_eq!(rebuilt.as_bytes(), &bytes[..]);
            prop_assert!(status.starts_with(':'));
        }
    }
}
