//! What the programs' command lines share: shell completions and a man
//! page, generated from their clap definitions (`--generate WHAT`), how a
//! watcher's `--interval` is read, the defaults they share (the server's
//! port and host, the environment variables), and the exit code after Ctrl-C.
//!
//! The man page is clap_mangen's but for two sections written here: its
//! SYNOPSIS lists flags without their values (`[--state]`), and its
//! DESCRIPTION fills the examples and tables of the long help into running
//! text. Ours gives every flag its value (`[--state PATH]`, `[--bind
//! ENDPOINT]...`), one form per mode (`--hash-password` alone), and keeps
//! each indented block of the help verbatim, line for line, as `--help`
//! shows it.

use std::io::Write;
use std::time::Duration;

use clap::{Arg, ArgAction};

/// The exit code of every program that Ctrl-C or SIGTERM cut short (128 +
/// SIGINT, as a shell reports it). Each program's other codes are its own,
/// in its `--help`; the library returns errors and never picks a code.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The port a server listens on, and a client or the gateway asks, unless told otherwise.
pub const DEFAULT_PORT: u16 = 2345;

/// The host a server listens on, and a client or the gateway asks, unless told otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// `tcp://127.0.0.1:2345`: the endpoint of [`DEFAULT_HOST`] and [`DEFAULT_PORT`].
pub fn default_endpoint() -> String {
    format!("tcp://{DEFAULT_HOST}:{DEFAULT_PORT}")
}

/// The environment variable naming the server's endpoint, for the client and the gateway.
pub const ENDPOINT_ENV: &str = "STATUS_BOARD_ENDPOINT";

/// The value of the environment variable `key`, `None` when it is unset or
/// empty. A value that is not UTF-8 is an error that names the variable:
/// taken for unset, it would send a client to the default server unsaid.
pub fn env_text(key: &str) -> Result<Option<String>, String> {
    env_value(key, std::env::var(key))
}

/// [`env_text`] of a value already looked up (the tests cannot set the
/// environment: other threads read it).
fn env_value(
    key: &str,
    value: Result<String, std::env::VarError>,
) -> Result<Option<String>, String> {
    match value {
        Ok(text) if text.is_empty() => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("{key} is not UTF-8: set it to text, or unset it"))
        }
    }
}

/// `--interval SECONDS`: fractions allowed, from a millisecond to a day.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if !(0.001..=86_400.0).contains(&seconds) {
        return Err("must be between 0.001 and 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// What `--generate` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// Bash completions.
    Bash,
    /// Zsh completions.
    Zsh,
    /// Fish completions.
    Fish,
    /// A man page (roff).
    Man,
}

/// Writes `what` for the program `command` describes to stdout.
pub fn generate(mut command: clap::Command, what: Generated) -> Result<(), String> {
    let name = command.get_name().to_owned();
    let mut out = std::io::stdout().lock();
    let shell = match what {
        Generated::Bash => clap_complete::Shell::Bash,
        Generated::Zsh => clap_complete::Shell::Zsh,
        Generated::Fish => clap_complete::Shell::Fish,
        Generated::Man => {
            return write_man_page(command, &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the man page: {e}"));
        }
    };
    clap_complete::generate(shell, &mut command, name, &mut out);
    out.flush()
        .map_err(|e| format!("cannot write the completions: {e}"))
}

/// The man page of the program `command` describes (see the module's notes).
fn write_man_page(mut command: clap::Command, out: &mut impl Write) -> std::io::Result<()> {
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    // Left-aligned and never hyphenated, as --help reads: a justified line
    // spreads its words apart, and a flag split at a hyphen cannot be found.
    out.write_all(b".ad l\n.nh\n.nr HY 0\n")?;
    man.render_name_section(out)?;
    out.write_all(synopsis(&command).as_bytes())?;
    out.write_all(description(&command).as_bytes())?;
    man.render_options_section(out)?;
    if command.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// `.SH SYNOPSIS`: the usual form with every option and its value, then a
/// form of its own for each option that is a mode by itself (clap's
/// `exclusive`, such as `--generate WHAT`). `--help` and `--version` are
/// left to OPTIONS. Each `[--flag VALUE]` is one unbreakable word (`\~`).
fn synopsis(command: &clap::Command) -> String {
    let name = roff_escape(command.get_name());
    let shown = |arg: &&Arg| {
        !arg.is_hide_set()
            && !matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
    };
    let (modes, options): (Vec<&Arg>, Vec<&Arg>) = command
        .get_arguments()
        .filter(shown)
        .filter(|arg| !arg.is_positional())
        .partition(|arg| arg.is_exclusive_set());
    let mut usual: Vec<String> = options
        .iter()
        .map(|arg| format!("[{}]{}", synopsis_word(arg), repeats(arg)))
        .collect();
    usual.extend(command.get_positionals().filter(shown).map(|arg| {
        let word = format!("\\fI{}\\fR", roff_escape(&value_name(arg)));
        match arg.is_required_set() {
            true => word,
            false => format!("[{word}]"),
        }
    }));
    let forms = std::iter::once(usual)
        .chain(modes.iter().map(|arg| vec![synopsis_word(arg)]))
        .map(|words| format!(".SY {name}\n{}\n.YS\n", words.join("\n")));
    format!(".SH SYNOPSIS\n{}", forms.collect::<String>())
}

/// An option as it is typed, value included: `\fB\-\-state\fR\~\fIPATH\fR`.
fn synopsis_word(arg: &Arg) -> String {
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => {
            format!("\\fB\\-{short}\\fR|\\fB\\-\\-{}\\fR", roff_escape(long))
        }
        (Some(short), None) => format!("\\fB\\-{short}\\fR"),
        (None, long) => format!("\\fB\\-\\-{}\\fR", roff_escape(long.unwrap_or_default())),
    };
    match arg.get_num_args().is_some_and(|n| n.takes_values()) {
        true => format!("{flag}\\~\\fI{}\\fR", roff_escape(&value_name(arg))),
        false => flag,
    }
}

/// `...` after an option that may be given more than once.
fn repeats(arg: &Arg) -> &'static str {
    match arg.get_action() {
        // `\&`: not the end of a sentence, which roff would follow with two spaces.
        ArgAction::Append | ArgAction::Count => "...\\&",
        _ => "",
    }
}

/// What an option's value or a positional argument is called in the help.
fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

/// `.SH DESCRIPTION` from the long help: paragraphs are filled as text, and
/// each run of indented lines (examples, tables of modes or exit codes) is
/// an example block (`.EX`), kept line for line without its common indent.
fn description(command: &clap::Command) -> String {
    let text = command
        .get_long_about()
        .or_else(|| command.get_about())
        .map(|about| about.to_string())
        .unwrap_or_default();
    let mut roff = String::from(".SH DESCRIPTION\n");
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            block.push(line);
            continue;
        }
        roff.push_str(&example_block(&block));
        block.clear();
        match line.trim().is_empty() {
            true => roff.push_str(".PP\n"),
            false => {
                roff.push_str(&roff_line(line.trim()));
                roff.push('\n');
            }
        }
    }
    roff.push_str(&example_block(&block));
    roff
}

/// Indented help lines as an example block, indented by two as in `--help`
/// whatever their own indent; nothing for no lines.
fn example_block(lines: &[&str]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let indent = lines
        .iter()
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let body: String = lines
        .iter()
        .map(|line| {
            format!(
                "{}\n",
                roff_line(line.get(indent..).unwrap_or(line).trim_end())
            )
        })
        .collect();
    format!(".RS 2\n.EX\n{body}.EE\n.RE\n")
}

/// A line of text that roff prints as it is: never read as a request.
fn roff_line(text: &str) -> String {
    let escaped = roff_escape(text);
    match escaped.starts_with('.') {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

/// Text with the characters roff would read otherwise escaped: a backslash,
/// a hyphen (a minus sign in a flag, so that it can be searched and pasted),
/// and quotes that roff would curl.
fn roff_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '`' => out.push_str("\\(ga"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_environment_value_that_is_not_utf8_is_said_not_taken_for_unset() {
        use std::env::VarError;
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        assert_eq!(super::env_value("K", Ok("v".into())), Ok(Some("v".into())));
        assert_eq!(super::env_value("K", Ok(String::new())), Ok(None));
        assert_eq!(super::env_value("K", Err(VarError::NotPresent)), Ok(None));
        let bad = Err(VarError::NotUnicode(OsString::from_vec(vec![0xff])));
        assert_eq!(
            super::env_value("STATUS_BOARD_ENDPOINT", bad),
            Err("STATUS_BOARD_ENDPOINT is not UTF-8: set it to text, or unset it".into())
        );
    }

    use super::*;

    #[test]
    fn help_text_is_printed_as_it_is_never_read_as_roff() {
        assert_eq!(
            roff_line(r".so /etc/passwd -x 'a' `b` c\d"),
            r"\&.so /etc/passwd \-x \(aqa\(aq \(gab\(ga c\ed"
        );
        assert_eq!(roff_line("a. b"), "a. b");
    }

    #[test]
    fn an_indented_block_keeps_its_lines_and_their_layout() {
        assert_eq!(
            example_block(&["    one  # first", "      two"]),
            ".RS 2\n.EX\none  # first\n  two\n.EE\n.RE\n"
        );
        assert_eq!(example_block(&[]), "");
    }
}
