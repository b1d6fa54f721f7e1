//! The users file of `--auth`, parsed as the server does but without the
//! decoy hash (which takes a tenth of a second). An accepted file names each
//! user once, by a name a client could set (no control or invisible
//! character, no ':', no edge space, not `_`), with rights of such names;
//! and each user written back as a line reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::fuzz_api::{encode_key, parse_users};
use status_board::protocol::{Limits, POLL_NAME, check_name};
use status_board::server::auth::{Credential, Rights, User};

/// `user` as a line of the users file.
fn line_of(name: &str, user: &User) -> String {
    let rights = match &user.rights {
        Rights::ReadOnly => "ro".to_owned(),
        Rights::Names { own, globs } => {
            let own = own.then_some("self".to_owned());
            own.into_iter()
                .chain(globs.iter().cloned())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    match &user.credential {
        Credential::Password(phc) => format!("{name}:{phc}:{rights}"),
        Credential::CurveKey(key) => format!("{name}:curve:{}:{rights}", encode_key(key)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(users) = parse_users(text) else { return };
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(users.len(), lines, "one user a line, none twice");
    for (name, user) in &users {
        assert!(check_name(name, &Limits::UNLIMITED).is_ok(), "{name:?}");
        assert!(name != POLL_NAME && !name.chars().any(char::is_control));
        if let Rights::Names { own, globs } = &user.rights {
            assert!(
                *own || !globs.is_empty(),
                "a user who may change nothing is ro"
            );
            for glob in globs {
                assert!(check_name(glob, &Limits::UNLIMITED).is_ok(), "{glob:?}");
            }
        }
        if let Credential::Password(phc) = &user.credential {
            assert!(phc.starts_with("$argon2id$") && !phc.contains(':'));
        }
        let line = line_of(name, user);
        let again = parse_users(&line).expect("a user written back reads back");
        assert_eq!(again.get(name), Some(user), "{line:?}");
    }
});
