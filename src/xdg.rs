//! The XDG base directories (`XDG_CONFIG_HOME`, `XDG_STATE_HOME`): where
//! the client finds its password and key pair, and the server keeps its
//! state by default.

use std::ffi::OsString;
use std::path::PathBuf;

/// `$VAR`, or `$HOME/UNDER` when `VAR` is unset or empty (the base
/// directory spec's rule); `None` when `HOME` is unset or empty too.
pub(crate) fn base_dir(var: &str, under_home: &str) -> Option<PathBuf> {
    from(std::env::var_os(var), std::env::var_os("HOME"), under_home)
}

/// [`base_dir`] of the values given, so that tests need not set the
/// process's environment (shared by every test thread).
fn from(value: Option<OsString>, home: Option<OsString>, under_home: &str) -> Option<PathBuf> {
    let set = |v: &OsString| !v.is_empty();
    value.filter(set).map(PathBuf::from).or_else(|| {
        home.filter(set)
            .map(|home| PathBuf::from(home).join(under_home))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> Option<OsString> {
        Some(OsString::from(text))
    }

    #[test]
    fn a_set_value_wins() {
        assert_eq!(
            from(os("/x/config"), os("/home/a"), ".config"),
            Some(PathBuf::from("/x/config"))
        );
    }

    #[test]
    fn an_empty_or_unset_value_means_under_home() {
        let under = Some(PathBuf::from("/home/a/.local/state"));
        assert_eq!(from(os(""), os("/home/a"), ".local/state"), under);
        assert_eq!(from(None, os("/home/a"), ".local/state"), under);
    }

    #[test]
    fn no_home_means_none() {
        assert_eq!(from(None, None, ".config"), None);
        assert_eq!(from(os(""), os(""), ".config"), None);
    }
}
