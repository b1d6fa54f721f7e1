//! The globs of a users file's rights (`build-*`, `deploy-?`) matched against
//! the names peers send: the same answers as the textbook definition, in
//! time linear in the name for each `*` (no backtracking blow-up).
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::server::auth::glob_matches;

/// `*` any run of characters, `?` one, by dynamic programming over both.
fn reference(glob: &[char], name: &[char]) -> bool {
    // matches[j]: whether the glob so far matches name[..j].
    let mut matches = vec![false; name.len() + 1];
    matches[0] = true;
    for &g in glob {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            next[j] = match g {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                _ => j > 0 && matches[j - 1] && (g == '?' || g == name[j - 1]),
            };
        }
        matches = next;
    }
    matches[name.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (glob, name) = text.split_once('\n').unwrap_or((text, ""));
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    assert_eq!(
        glob_matches(glob, name),
        reference(&g, &n),
        "{glob:?} ~ {name:?}"
    );
});
