//! How a client shows a board: the original's text block, JSON for scripts,
//! or a terminal screen redrawn in place.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use super::mirror::{MARK_FOR, Mirror};
use crate::protocol::Entry;

/// The status as a person typed it: without the protocol's `:` and the space after it.
pub fn display_status(status: &str) -> &str {
    let text = status.strip_prefix(':').unwrap_or(status);
    text.strip_prefix(' ').unwrap_or(text)
}

/// Writes the original client's block: `----------------- N`, the board, a blank line.
pub fn write_block(out: &mut impl Write, count: u64, board: &str) -> io::Result<()> {
    // print("-----------------", count); print(states)
    writeln!(out, "----------------- {count}\n{board}")
}

/// Writes one board as one line of JSON: `{"entries":[{"name":…,"status":…}]}`.
pub fn write_json(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| serde_json::json!({ "name": e.name, "status": display_status(&e.status) }))
        .collect();
    serde_json::to_writer(&mut *out, &serde_json::json!({ "entries": entries }))?;
    writeln!(out)
}

/// Writes a watched board as one line of JSON. With our server each entry
/// also has `set_at` (RFC 3339, the server's clock) and `age_s`, and the
/// document has the board's `seq`; with the original, only names and statuses.
pub fn write_mirror_json(out: &mut impl Write, mirror: &Mirror) -> io::Result<()> {
    let entries: Vec<serde_json::Value> = mirror
        .entries()
        .map(|(name, entry)| {
            let mut value = serde_json::json!({
                "name": name,
                "status": display_status(&entry.status),
            });
            if let (Some(at), Some(age)) = (entry.set_at_ms, mirror.age(entry)) {
                let set_at = UNIX_EPOCH + Duration::from_millis(at);
                value["set_at"] = humantime::format_rfc3339_millis(set_at).to_string().into();
                value["age_s"] = age.as_secs().into();
            }
            value
        })
        .collect();
    let document = match mirror.is_original() {
        true => serde_json::json!({ "entries": entries }),
        false => serde_json::json!({ "seq": mirror.seq, "entries": entries }),
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)
}

/// An age as a person reads it: `just now`, `42 s ago`, `3 min ago`, `5 h ago`, `2 days ago`.
pub fn format_age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..5 => "just now".into(),
        5..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..172_800 => "1 day ago".into(),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// SGR sequences for the screen, or nothing at all under `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colors unless `NO_COLOR` is set to anything but the empty string (no-color.org).
    pub fn from_env() -> Style {
        Style {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// `text` in the SGR style `code` (`1;31`: bold red), or as it is under `NO_COLOR`.
    pub fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Redraws the whole screen: a title line, then one line per entry with its
/// age (when the server says it), `*` in front of what changed in the last
/// [`MARK_FOR`], then the names that just left.
///
/// Each line clears to its end and the rest of the screen is cleared after the
/// last, so nothing flickers and nothing stale stays behind.
pub fn write_screen(
    out: &mut impl Write,
    mirror: &mut Mirror,
    title: &str,
    style: Style,
) -> io::Result<()> {
    const EOL: &str = "\x1b[K\n";
    write!(out, "\x1b[H{}{EOL}{EOL}", style.paint("1", title))?;
    let width = mirror
        .entries()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    // Ages line up after the longest status, unless that one is very long.
    let status_width = mirror
        .entries()
        .map(|(_, entry)| display_status(&entry.status).chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut lines = Vec::new();
    for (name, entry) in mirror.entries() {
        let fresh = entry.changed.is_some_and(|at| at.elapsed() < MARK_FOR);
        let mark = if fresh { "*" } else { " " };
        let status = display_status(&entry.status);
        let text = format!("{mark} {name:<width$}  {status:<status_width$}");
        let text = if fresh {
            style.paint("1;32", &text)
        } else {
            text
        };
        let age = mirror
            .age(entry)
            .map(|age| format!("  {}", style.paint("2", &format_age(age))))
            .unwrap_or_default();
        lines.push(format!("{text}{age}"));
    }
    if lines.is_empty() {
        lines.push(style.paint("2", "  (the board is empty)"));
    }
    for line in lines {
        write!(out, "{line}{EOL}")?;
    }
    let departures = mirror.recent_departures();
    if !departures.is_empty() {
        write!(out, "{EOL}")?;
    }
    for gone in departures {
        let line = format!(
            "- {} {} {}",
            gone.name,
            gone.why.as_str(),
            format_age(gone.seen.elapsed())
        );
        write!(out, "{}{EOL}", style.paint("2", &line))?;
    }
    // Clear whatever an earlier, longer board left below.
    write!(out, "\x1b[J")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_status_drops_colon_and_one_space() {
        assert_eq!(display_status(": in a meeting"), "in a meeting");
        assert_eq!(display_status(":  two spaces"), " two spaces");
        assert_eq!(display_status(":tight"), "tight");
        assert_eq!(display_status(":"), "");
    }

    #[test]
    fn block_is_the_originals_print_output() {
        let mut out = Vec::new();
        write_block(&mut out, 0, "- Jackson: I'm BAD\n").unwrap();
        assert_eq!(out, b"----------------- 0\n- Jackson: I'm BAD\n\n");
    }

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
    fn ages_read_as_a_person_says_them() {
        let s = Duration::from_secs;
        assert_eq!(format_age(s(0)), "just now");
        assert_eq!(format_age(s(42)), "42 s ago");
        assert_eq!(format_age(s(3 * 60 + 59)), "3 min ago");
        assert_eq!(format_age(s(5 * 3600)), "5 h ago");
        assert_eq!(format_age(s(86_400 + 5)), "1 day ago");
        assert_eq!(format_age(s(3 * 86_400)), "3 days ago");
    }
}
