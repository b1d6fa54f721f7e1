//! A board as JSON for scripts: one document per line, its strings carried
//! exactly and escaped so that a terminal showing it obeys none of them.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::display_status;
use crate::client::mirror::Mirror;
use crate::protocol::Entry;

/// Writes one board as one line of JSON: `{"entries":[{"name":…,"status":…}]}`.
pub fn write_json(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| serde_json::json!({ "name": e.name, "status": display_status(&e.status) }))
        .collect();
    write_json_line(out, &serde_json::json!({ "entries": entries }))
}

/// Writes `document` as one line of compact JSON that a terminal can show
/// safely: see [`TerminalSafe`].
fn write_json_line(out: &mut impl Write, document: &serde_json::Value) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, TerminalSafe);
    document.serialize(&mut serializer)?;
    writeln!(out)
}

/// serde_json's compact form, except that DEL and the C1 controls
/// (U+0080–U+009F) in strings are written as `\u00XX` escapes: serde_json
/// escapes only C0 and writes those as they are, and some terminals obey
/// U+009B like `ESC [`. The document is the same JSON, with the same strings.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        // C0 never reaches a fragment (serde_json escapes it first): what is
        // a control here is DEL or C1.
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| c.is_control()) {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Writes a watched board as one line of JSON. With our server each entry
/// also has `set_at` (RFC 3339, the server's clock) and `age_s`, and the
/// document has the board's `seq` (and `stale_since` while a gateway says
/// its board may be old); with the original, only names and statuses.
pub fn write_mirror_json(out: &mut impl Write, mirror: &Mirror) -> io::Result<()> {
    let entries: Vec<serde_json::Value> = mirror
        .entries()
        .map(|(name, entry)| {
            let mut value = serde_json::json!({
                "name": name,
                "status": display_status(&entry.status),
            });
            if let (Some(at), Some(age)) = (entry.set_at_ms, mirror.age(entry)) {
                if let Some(set_at) = rfc3339_millis(at) {
                    value["set_at"] = set_at.into();
                }
                value["age_s"] = age.as_secs().into();
            }
            value
        })
        .collect();
    let mut document = match mirror.is_original() {
        true => serde_json::json!({ "entries": entries }),
        false => serde_json::json!({ "seq": mirror.seq, "entries": entries }),
    };
    // Only while the server says its board may be old (a gateway without
    // its cluster's quorum): RFC 3339, as `set_at`.
    if let Some(since) = mirror.stale_since_ms.and_then(rfc3339_millis) {
        document["stale_since"] = since.into();
    }
    write_json_line(out, &document)
}

/// A server's time (ms since the Unix epoch) in RFC 3339, or `None` past the
/// year 9999, which RFC 3339 cannot write: humantime's `Display` then fails,
/// and `to_string` would panic on a time any server may send.
pub(super) fn rfc3339_millis(at_ms: u64) -> Option<String> {
    use std::fmt::Write as _;
    let at = UNIX_EPOCH.checked_add(Duration::from_millis(at_ms))?;
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_millis(at)).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_one_line_and_escapes() {
        let mut out = Vec::new();
        let entries = vec![Entry {
            name: "a\"b".into(),
            status: ": x\\y".into(),
            set_at_ms: None,
        }];
        write_json(&mut out, &entries).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"entries\":[{\"name\":\"a\\\"b\",\"status\":\"x\\\\y\"}]}\n"
        );
    }

    #[test]
    fn json_escapes_del_and_c1_too_and_carries_them_exactly() {
        let status = ": \x1b]52;c;aGk=\x07 \u{9b}2J \u{85} \x7f \r 王";
        let entries = vec![Entry {
            name: "\u{9b}n".into(),
            status: status.into(),
            set_at_ms: None,
        }];
        let mut out = Vec::new();
        write_json(&mut out, &entries).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.trim_end().chars().any(char::is_control),
            "nothing raw: {text:?}"
        );
        assert!(text.contains("\\u009b2J \\u0085 \\u007f"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["entries"][0]["name"], "\u{9b}n");
        assert_eq!(back["entries"][0]["status"], display_status(status));
    }

    #[test]
    fn a_time_past_the_year_9999_is_left_out_of_json_not_a_panic() {
        use crate::protocol::{Snapshot, SnapshotHeader};
        // Found by fuzz/fuzz_targets/render.rs: humantime writes no year
        // past 9999, and `to_string` panicked on its error.
        let entry = |name: &str, set_at_ms| Entry {
            name: name.into(),
            status: ": x".into(),
            set_at_ms: Some(set_at_ms),
        };
        let mirror = Mirror::new(Snapshot {
            header: SnapshotHeader {
                epoch: "e1".into(),
                seq: 1,
                now_ms: 1_700_000_000_000,
                ..SnapshotHeader::default()
            },
            entries: vec![
                entry("far", 253_402_300_800_000),
                entry("last", 253_402_300_799_999),
                entry("max", u64::MAX),
            ],
        });
        let mut out = Vec::new();
        write_mirror_json(&mut out, &mirror).unwrap();
        let document: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let entries = document["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert!(entries[0].get("set_at").is_none(), "{document}");
        assert!(entries[2].get("set_at").is_none(), "{document}");
        assert_eq!(entries[1]["set_at"], "9999-12-31T23:59:59.999Z");
        assert!(entries.iter().all(|e| e["age_s"].is_u64()), "{document}");
    }
}
