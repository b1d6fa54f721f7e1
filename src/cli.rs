//! What the programs' command lines share: shell completions and a man
//! page, generated from their clap definitions (`--generate WHAT`), and
//! how a watcher's `--interval` is read.

use std::io::Write;
use std::time::Duration;

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
            return clap_mangen::Man::new(command)
                .render(&mut out)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the man page: {e}"));
        }
    };
    clap_complete::generate(shell, &mut command, name, &mut out);
    out.flush()
        .map_err(|e| format!("cannot write the completions: {e}"))
}
