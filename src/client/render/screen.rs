//! The watcher's terminal screen: the board redrawn in place, in columns
//! that fit the window, with ages, fresh changes marked and names that just
//! left shown where they were.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use super::cells::{cells, fit, pad};
use super::{display_status, format_age};
use crate::client::mirror::{Departure, MARK_FOR, Mirror};
use crate::protocol::Removal;
use crate::visible::visible;

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
    pub(crate) fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The size of a terminal, in rows and cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenSize {
    /// Lines.
    pub rows: usize,
    /// Cells per line.
    pub cols: usize,
}

impl ScreenSize {
    /// `LINES` and `COLUMNS` where set (as curses reads them), else what the
    /// terminal on stdout says, else 24 × 80. Read at each redraw, so a
    /// resized window is followed within a second.
    pub(crate) fn of_stdout() -> ScreenSize {
        let env = |key| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        let (tty_rows, tty_cols) = crate::sys::terminal_size().map_or((0, 0), |(rows, cols)| {
            (usize::from(rows), usize::from(cols))
        });
        let pick = |env: Option<usize>, tty: usize, default: usize| {
            env.or((tty > 0).then_some(tty)).unwrap_or(default)
        };
        ScreenSize {
            rows: pick(env("LINES"), tty_rows, 24),
            cols: pick(env("COLUMNS"), tty_cols, 80),
        }
    }
}

/// How long a change keeps its row on a screen too small for every name:
/// what changed in the last minute takes the place of the oldest rows.
const KEEP_SHOWN_FOR: Duration = Duration::from_secs(60);

/// Cells between two columns of names.
const COLUMN_GAP: usize = 3;

/// The widest a name's column gets; a longer name is cut.
const NAME_CELLS: usize = 24;

/// Fewer cells than this for a status (when statuses are that long), and
/// the names are not split into more columns.
const STATUS_CELLS: usize = 24;

/// One line of the board on a screen: an entry, or a name that just left.
struct Row<'a> {
    name: Cow<'a, str>,
    /// The status, or for a name that left, `left` or `expired`.
    status: Cow<'a, str>,
    /// How long ago it was set, or for a name that left, how long ago it left.
    age: String,
    /// Changed within [`MARK_FOR`]: marked `*`.
    fresh: bool,
    /// Left the board: marked `-`, dimmed.
    gone: bool,
    /// When this watcher saw it change, if it did.
    changed: Option<Instant>,
    /// When the server set it, by its clock.
    set_at_ms: Option<u64>,
}

impl<'a> Row<'a> {
    /// The board's entries, with the names that just left in their old places.
    fn all(mirror: &'a Mirror) -> Vec<Row<'a>> {
        // What the server sent, made visible once, before any width is
        // counted: columns line up on what the terminal shows.
        let mut rows: Vec<Row<'a>> = mirror
            .entries()
            .map(|(name, entry)| Row {
                name: visible(name),
                status: visible(display_status(&entry.status)),
                age: mirror.age(entry).map(format_age).unwrap_or_default(),
                fresh: entry.changed.is_some_and(|at| at.elapsed() < MARK_FOR),
                gone: false,
                changed: entry.changed,
                set_at_ms: entry.set_at_ms,
            })
            .collect();
        let mut gone: Vec<&Departure> = mirror.recent_departures().collect();
        gone.sort_by_key(|d| d.place);
        for departure in gone {
            let why = match departure.why {
                Removal::Expired => "expired",
                Removal::Cleared => "left",
            };
            let row = Row {
                name: visible(&departure.name),
                status: Cow::Borrowed(why),
                age: format_age(departure.seen.elapsed()),
                fresh: false,
                gone: true,
                changed: Some(departure.seen),
                set_at_ms: None,
            };
            rows.insert(departure.place.min(rows.len()), row);
        }
        rows
    }

    /// When it changed, if within [`KEEP_SHOWN_FOR`].
    fn recently_changed(&self) -> Option<Instant> {
        self.changed.filter(|at| at.elapsed() < KEEP_SHOWN_FOR)
    }
}

/// How the rows are laid out: columns of `height` lines, each `width` cells.
struct Layout {
    columns: usize,
    width: usize,
    height: usize,
    name_width: usize,
    status_width: usize,
    age_width: usize,
}

impl Layout {
    /// The fewest columns (1 on most screens) that show every row with room
    /// for their statuses, in `room` cells by `lines`; when even the most
    /// such columns are too few, those, and the last line says how many more.
    fn choose(rows: &[Row<'_>], room: usize, lines: usize) -> Layout {
        let name_width = rows
            .iter()
            .map(|r| cells(&r.name))
            .max()
            .unwrap_or(0)
            .min(NAME_CELLS);
        let age_width = rows.iter().map(|r| cells(&r.age)).max().unwrap_or(0);
        let longest = rows.iter().map(|r| cells(&r.status)).max().unwrap_or(0);
        // Mark, name, status and age, each but the mark after two spaces.
        let fixed = 2 + name_width + 2 + if age_width > 0 { 2 + age_width } else { 0 };
        let width = |columns: usize| room.saturating_sub(COLUMN_GAP * (columns - 1)) / columns;
        let status_room = |columns: usize| width(columns).saturating_sub(fixed);
        let wanted = longest.clamp(1, STATUS_CELLS);
        let most = (2..=rows.len().max(1))
            .take_while(|&columns| status_room(columns) >= wanted)
            .last()
            .unwrap_or(1);
        let columns = (1..=most)
            .find(|&columns| rows.len().div_ceil(columns) <= lines)
            .unwrap_or(most);
        let height = match rows.len() <= columns * lines {
            true => rows.len().div_ceil(columns),
            false => lines,
        };
        Layout {
            columns,
            width: width(columns),
            height,
            name_width,
            // Ages line up after the longest status, unless that one is
            // longer than the line: then statuses are cut.
            status_width: longest.min(status_room(columns).max(8)),
            age_width,
        }
    }

    /// Rows that fit, in board order: all, or when there are more, first
    /// those changed within [`KEEP_SHOWN_FOR`] (the latest first), then the
    /// most recently set; and how many are left out.
    fn pick<'r, 'a>(&self, rows: &'r [Row<'a>]) -> (Vec<&'r Row<'a>>, usize) {
        let slots = self.columns * self.height;
        if rows.len() <= slots {
            return (rows.iter().collect(), 0);
        }
        let shown = slots.saturating_sub(1);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| {
            let (first, second) = (&rows[a], &rows[b]);
            match (first.recently_changed(), second.recently_changed()) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                // The youngest first; the original server's (no times) in board order.
                (None, None) => second.set_at_ms.cmp(&first.set_at_ms).then(a.cmp(&b)),
            }
        });
        order.truncate(shown);
        order.sort_unstable();
        (
            order.into_iter().map(|i| &rows[i]).collect(),
            rows.len() - shown,
        )
    }

    /// One row as the cells of its column.
    fn cell(&self, row: &Row<'_>, style: Style) -> String {
        let mark = match (row.gone, row.fresh) {
            (true, _) => "-",
            (false, true) => "*",
            (false, false) => " ",
        };
        let (name, _) = fit(&row.name, self.name_width);
        let (status, _) = fit(&row.status, self.status_width);
        let status = match self.age_width {
            0 => status,
            _ => pad(&status, self.status_width),
        };
        let text = format!("{mark} {}  {status}", pad(&name, self.name_width));
        let text = match (row.gone, row.fresh) {
            (true, _) => style.paint("2", &text),
            (false, true) => style.paint("1;32", &text),
            (false, false) => text,
        };
        match row.age.is_empty() {
            true => text,
            false => format!("{text}  {}", style.paint("2", &row.age)),
        }
    }
}

/// Redraws the whole screen of `size`: a title line, then the board, each
/// name with its age (when the server says it), `*` in front of what changed
/// in the last `MARK_FOR`, and names that just left (`-`, `left` or
/// `expired`) where they were, as long.
///
/// It fits: widths are counted in terminal cells, statuses take the width
/// there is (cut with `…` only when longer), names that do not fit one
/// column go into more on a wide screen, and when they do not fit at all the
/// last line says how many more there are, so the screen never scrolls;
/// what changed in the last `KEEP_SHOWN_FOR` stays on it. Each line
/// clears to its end and the rest of the screen is cleared after the last,
/// so nothing flickers and nothing stale stays behind.
pub fn write_screen(
    out: &mut impl Write,
    mirror: &Mirror,
    title: &str,
    style: Style,
    size: ScreenSize,
) -> io::Result<()> {
    const EOL: &str = "\x1b[K\n";
    // The last row stays empty: a newline there would scroll the screen.
    let line_room = size.cols.saturating_sub(1).max(10);
    let (title, _) = fit(title, line_room);
    write!(out, "\x1b[H{}{EOL}", style.paint("1", &title))?;
    // A gateway that cannot reach its cluster: said under the title, in
    // red, for as long as its snapshots say so.
    let stale = super::stale_note(mirror);
    if let Some(note) = &stale {
        let (note, _) = fit(note, line_room);
        write!(out, "{}{EOL}", style.paint("1;31", &note))?;
    }
    write!(out, "{EOL}")?;
    let rows = Row::all(mirror);
    if rows.is_empty() {
        let empty = match mirror.has_board() {
            true => "  (the board is empty)",
            false => "  (no contact yet: the board is not known)",
        };
        let (empty, _) = fit(empty, line_room);
        write!(out, "{}{EOL}", style.paint("2", &empty))?;
        return write!(out, "\x1b[J");
    }
    let lines = size
        .rows
        .saturating_sub(1 + 2 + usize::from(stale.is_some()))
        .max(1);
    let layout = Layout::choose(&rows, line_room, lines);
    let (shown, more) = layout.pick(&rows);
    let mut cells_shown: Vec<String> = shown.iter().map(|r| layout.cell(r, style)).collect();
    if more > 0 {
        cells_shown.push(style.paint("2", &format!("  … and {more} more")));
    }
    for line in 0..layout.height {
        let mut text = String::new();
        let in_line = (0..layout.columns).filter_map(|c| cells_shown.get(c * layout.height + line));
        for (column, cell) in in_line.enumerate() {
            if column > 0 {
                text = pad(&text, column * (layout.width + COLUMN_GAP));
            }
            text.push_str(cell);
        }
        // Never wider than the line, whatever the sums above say.
        let (text, _) = fit(&text, line_room);
        write!(out, "{text}{EOL}")?;
    }
    // Clear whatever an earlier, longer board left below.
    write!(out, "\x1b[J")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Entry;

    /// A screen of `mirror` as the watcher draws it, in colour.
    fn screen(mirror: &mut Mirror, color: bool) -> String {
        let mut out = Vec::new();
        let size = ScreenSize {
            rows: 24,
            cols: 100,
        };
        write_screen(&mut out, mirror, "title", Style { color }, size).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_stale_board_says_so_under_the_title_and_keeps_its_entries() {
        use crate::protocol::{Snapshot, SnapshotHeader};
        let now = crate::clock::now_ms();
        let snapshot = |stale_since_ms| Snapshot {
            header: SnapshotHeader {
                epoch: "c1".into(),
                seq: 1,
                now_ms: now,
                stale_since_ms,
                ..SnapshotHeader::default()
            },
            entries: vec![Entry {
                name: "alice".into(),
                status: ": here".into(),
                set_at_ms: Some(now),
            }],
        };
        let mut mirror = Mirror::new(snapshot(Some(now - 42_000)));
        let drawn = screen(&mut mirror, false);
        let lines: Vec<&str> = drawn.split("\x1b[K\n").collect();
        assert!(lines[0].ends_with("title"), "{drawn:?}");
        assert!(
            lines[1].starts_with("stale: the server cannot reach its cluster since ")
                && lines[1].ends_with("UTC (42 s ago) — the board may be old"),
            "{drawn:?}"
        );
        assert_eq!(lines[2], "", "then the blank line");
        assert!(
            lines[3].contains("alice") && lines[3].contains("here"),
            "{drawn:?}"
        );
        mirror.reset(snapshot(None));
        let drawn = screen(&mut mirror, false);
        assert!(!drawn.contains("stale"), "current again: {drawn:?}");
    }

    #[test]
    fn a_screen_of_a_hostile_board_holds_only_its_own_escapes_and_lines_up() {
        use crate::protocol::{Event, Notice, Snapshot, SnapshotHeader};
        let now = crate::clock::now_ms();
        let entry = |name: &str, status: &str| Entry {
            name: name.into(),
            status: status.into(),
            set_at_ms: Some(now),
        };
        let mut mirror = Mirror::new(Snapshot {
            header: SnapshotHeader {
                epoch: "e1".into(),
                seq: 1,
                now_ms: now,
                ..SnapshotHeader::default()
            },
            entries: vec![
                entry("ev\x1b]0;t\x07il", ": \x1b[2J\u{9b}2J bell\x07 a\rb"),
                entry("bob", ": fine"),
                entry("王", ": wide \u{85}"),
            ],
        });
        let gone = Notice {
            epoch: "e1",
            seq: 2,
            at_ms: now,
            event: Event::Removed {
                name: "gone\x1b[2J",
                why: crate::protocol::Removal::Cleared,
            },
        };
        mirror.apply(&gone);
        let drawn = screen(&mut mirror, true);
        for (at, _) in drawn.match_indices('\x1b') {
            let rest = &drawn[at + 1..];
            let sgr = rest.strip_prefix('[').and_then(|r| {
                let end = r.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
                r[end..].starts_with('m').then_some(())
            });
            let own = ["[H", "[K", "[J"].iter().any(|s| rest.starts_with(s));
            assert!(own || sgr.is_some(), "a foreign escape: {:?}", &rest[..8]);
        }
        assert!(
            !drawn.contains(['\x07', '\r', '\u{9b}', '\u{85}']),
            "{drawn:?}"
        );
        for shown in [
            "ev\\x1b]0;t\\x07il",
            "\\x1b[2J\\u{9b}2J bell\\x07 a\\rb",
            "gone\\x1b[2J",
        ] {
            assert!(drawn.contains(shown), "{shown} in {drawn:?}");
        }
        // Ages line up: the widths counted are those of the escaped text.
        let plain = screen(&mut mirror, false);
        let age_columns: Vec<usize> = plain
            .lines()
            .filter(|line| !line.starts_with("- "))
            .filter_map(|line| line.find("just now").map(|at| cells(&line[..at])))
            .collect();
        assert_eq!(age_columns.len(), 3, "{plain}");
        assert!(age_columns.iter().all(|&c| c == age_columns[0]), "{plain}");
    }

    /// A board of `names` (name, status, set how many ms ago), as first seen.
    fn board(names: &[(&str, &str, u64)]) -> Mirror {
        use crate::protocol::{Snapshot, SnapshotHeader};
        let now = crate::clock::now_ms();
        Mirror::new(Snapshot {
            header: SnapshotHeader {
                epoch: "e1".into(),
                seq: 1,
                now_ms: now,
                ..SnapshotHeader::default()
            },
            entries: names
                .iter()
                .map(|(name, status, ago)| Entry {
                    name: (*name).into(),
                    status: format!(": {status}"),
                    set_at_ms: Some(now - ago),
                })
                .collect(),
        })
    }

    /// The screen's lines as shown on a terminal of `cols` × `rows`, without colours.
    fn drawn(mirror: &Mirror, cols: usize, rows: usize) -> Vec<String> {
        let mut out = Vec::new();
        let size = ScreenSize { rows, cols };
        write_screen(&mut out, mirror, "title", Style { color: false }, size).unwrap();
        let text = String::from_utf8(out).unwrap();
        let text = text.replace("\x1b[H", "").replace("\x1b[J", "");
        text.split("\x1b[K\n").map(str::to_owned).collect()
    }

    #[test]
    fn a_long_status_takes_the_width_there_is() {
        let long = "back at desk, reviewing PR #1234 for the storage layer rewrite";
        let mirror = board(&[("alice", long, 0), ("bob", "here", 0)]);
        let wide = drawn(&mirror, 220, 24);
        assert!(wide.iter().any(|l| l.contains(long)), "{wide:#?}");
        let narrow = drawn(&mirror, 60, 24);
        assert!(narrow.iter().all(|l| cells(l) < 60), "{narrow:#?}");
        assert!(
            narrow
                .iter()
                .any(|l| l.contains("back at desk, rev") && l.contains('…'))
        );
    }

    #[test]
    fn names_that_do_not_fit_the_lines_go_into_columns_on_a_wide_screen() {
        let names: Vec<String> = (0..40).map(|i| format!("user{i:02}")).collect();
        let rows: Vec<(&str, &str, u64)> = names.iter().map(|n| (n.as_str(), "in", 0)).collect();
        let lines = drawn(&board(&rows), 120, 24);
        let body = &lines[2..];
        assert!(body.iter().all(|l| !l.contains("more")), "{lines:#?}");
        assert_eq!(
            body.iter().filter(|l| l.contains("user")).count(),
            20,
            "two columns of 20: {lines:#?}"
        );
        assert!(
            body[0].contains("user00") && body[0].contains("user20"),
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| cells(l) < 120));
        // Too narrow for a second column: as many as fit, and a count.
        let lines = drawn(&board(&rows), 40, 24);
        assert!(
            lines.iter().any(|l| l.contains("… and 20 more")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_recent_change_takes_the_place_of_the_oldest_row() {
        use crate::protocol::{Event, Notice};
        // Ten names, the oldest first, on a screen of 5 lines for names.
        let names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
        let rows: Vec<(&str, &str, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), "x", 60_000 * (10 - i as u64)))
            .collect();
        let mut mirror = board(&rows);
        let shown = |mirror: &Mirror| {
            let lines = drawn(mirror, 40, 8);
            names
                .iter()
                .filter(|n| lines.iter().any(|l| l.contains(&format!(" {n} "))))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(&mirror), ["n6", "n7", "n8", "n9"], "the youngest");
        let change = Notice {
            epoch: "e1",
            seq: 2,
            at_ms: crate::clock::now_ms() - 3_600_000,
            event: Event::Set {
                name: "n0",
                status: ": back",
            },
        };
        mirror.apply(&change);
        assert_eq!(shown(&mirror), ["n0", "n7", "n8", "n9"], "in board order");
        assert!(
            drawn(&mirror, 40, 8)
                .iter()
                .any(|l| l.contains("… and 6 more"))
        );
    }

    #[test]
    fn a_name_that_left_is_shown_where_it_was_and_an_unknown_board_is_not_empty() {
        use crate::protocol::{Event, Notice, Removal};
        let mut mirror = board(&[("a", "1", 0), ("b", "2", 0), ("c", "3", 0)]);
        let gone = Notice {
            epoch: "e1",
            seq: 2,
            at_ms: crate::clock::now_ms(),
            event: Event::Removed {
                name: "b",
                why: Removal::Expired,
            },
        };
        mirror.apply(&gone);
        let lines = drawn(&mirror, 80, 24);
        assert!(lines[3].starts_with("- b  expired"), "{lines:#?}");
        assert!(
            lines[2].contains(" a ") && lines[4].contains(" c "),
            "{lines:#?}"
        );

        let lines = drawn(&Mirror::empty(), 80, 24);
        assert!(
            lines[2].contains("(no contact yet: the board is not known)"),
            "{lines:#?}"
        );
        let lines = drawn(&board(&[]), 80, 24);
        assert!(lines[2].contains("(the board is empty)"), "{lines:#?}");
    }
}
