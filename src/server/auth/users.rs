//! The users file of `--auth`: who may log in, with what, and which names
//! each may set and clear.
//!
//! ```text
//! # NAME:PASSWORD-HASH[:RIGHTS]     RIGHTS: self (default) | ro | self,GLOB,...
//! alice:$argon2id$v=19$m=19456,t=2,p=1$...
//! ci:$argon2id$...:self,build-*
//! wall:$argon2id$...:ro
//! robot:curve:Z85PUBLICKEY:self
//! ```

use std::collections::HashMap;

use crate::secret_file::{SecretFileError, read_private};
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Why the users file cannot be used; the server refuses to start (or keeps
/// the table it had, on a reload).
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file cannot be read, or others could read the password hashes.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// A line that is not a user.
    #[error("the users file {} line {line}: {why}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// No hash could be made for the decoy (no randomness from the system).
    #[error("cannot make a password hash: {0}")]
    Hash(String),
    /// The same user twice.
    #[error("the users file {} names '{user}' twice, on lines {first} and {line}", .path.display())]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// Who.
        user: String,
        /// Where first.
        first: usize,
        /// Where again.
        line: usize,
    },
}

/// How a user proves who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password, kept as its argon2id PHC string.
    Password(String),
    /// A CURVE public key (login by key, like SSH's authorized_keys).
    CurveKey([u8; 32]),
}

/// Which names a user may set and clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rights {
    /// None: polls, snapshots and the publisher only.
    ReadOnly,
    /// Their own name (`self`) and any name one of the globs matches.
    Names {
        /// `self`: the name equal to the user name.
        own: bool,
        /// More names, with `*` and `?`.
        globs: Vec<String>,
    },
}

/// One line of the users file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// How the user logs in.
    pub credential: Credential,
    /// What they may change.
    pub rights: Rights,
}

/// The users file as the server holds it.
#[derive(Debug, Clone)]
pub(crate) struct Users {
    by_name: HashMap<String, User>,
    /// A hash of nothing anyone knows, verified for unknown users, so that a
    /// refusal takes the same time whether the user exists or not.
    decoy: String,
}

impl Users {
    /// Reads and checks the users file: private, well formed, no user twice.
    pub(crate) fn load(path: &Path) -> Result<Users, UsersError> {
        let text = read_private(path, "the users file")?;
        Users::parse(path, &text)
    }

    /// Parses the text of a users file read from `path`.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Users, UsersError> {
        let (by_name, cost) = Users::parse_lines(path, text)?;
        // The decoy costs what every hash in the file costs: an unknown user
        // is refused in the same time as a known one with a wrong password.
        let params = cost.unwrap_or_default();
        let secret = random_bytes().map_err(UsersError::Hash)?;
        let decoy = hash_with(&secret, params).map_err(UsersError::Hash)?;
        Ok(Users { by_name, decoy })
    }

    /// Checks every line of a users file, and returns its users and the cost
    /// of its password hashes (all the same, or an error); `None` if it has no
    /// password. Everything [`Users::parse`] does but the decoy hash, which
    /// takes a tenth of a second: the fuzz target of this parser calls this.
    pub(crate) fn parse_lines(
        path: &Path,
        text: &str,
    ) -> Result<(HashMap<String, User>, Option<argon2::Params>), UsersError> {
        let mut by_name = HashMap::new();
        let mut lines_of = HashMap::new();
        // The argon2 parameters of the first password hash, and its line.
        let mut cost: Option<(argon2::Params, usize)> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |why: String| UsersError::Malformed {
                path: path.to_owned(),
                line: index + 1,
                why,
            };
            let (name, user) = parse_line(line).map_err(malformed)?;
            if let Credential::Password(phc) = &user.credential {
                let params = params_of(phc).map_err(malformed)?;
                match &cost {
                    None => cost = Some((params, index + 1)),
                    Some((first, line)) if !same_cost(first, &params) => {
                        return Err(malformed(format!(
                            "the password hash costs {}, line {line}'s costs {}; every hash must \
                             cost the same, so that a refusal takes as long for every user \
                             (make them with status_server --hash-password)",
                            describe(&params),
                            describe(first)
                        )));
                    }
                    Some(_) => {}
                }
            }
            if let Some(first) = lines_of.insert(name.clone(), index + 1) {
                return Err(UsersError::Duplicate {
                    path: path.to_owned(),
                    user: name,
                    first,
                    line: index + 1,
                });
            }
            by_name.insert(name, user);
        }
        Ok((by_name, cost.map(|(params, _)| params)))
    }

    /// How many users there are.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// `1 user`, `3 users`: how many, for the log.
    pub(crate) fn count(&self) -> String {
        match self.len() {
            1 => "1 user".to_owned(),
            n => format!("{n} users"),
        }
    }

    /// How many users log in with a password (not a CURVE key).
    pub(crate) fn password_users(&self) -> usize {
        self.by_name
            .values()
            .filter(|u| matches!(u.credential, Credential::Password(_)))
            .count()
    }

    /// Whether `password` is `user`'s. Takes the same time for an unknown
    /// user (a decoy hash of the same cost is verified), so names cannot be
    /// probed by timing.
    pub(crate) fn check_password(&self, user: &str, password: &[u8]) -> bool {
        match self.by_name.get(user).map(|u| &u.credential) {
            Some(Credential::Password(phc)) => verify(phc, password),
            // A key user, or nobody: spend the same time, then refuse.
            _ => {
                verify(&self.decoy, password);
                false
            }
        }
    }

    /// The user whose CURVE key this is.
    pub(crate) fn user_with_key(&self, key: &[u8]) -> Option<&str> {
        self.by_name
            .iter()
            .find_map(|(name, user)| match &user.credential {
                Credential::CurveKey(k) if k[..] == *key => Some(name.as_str()),
                _ => None,
            })
    }

    /// Whether `user` may set or clear `name`, by the current table.
    pub(crate) fn may_change(&self, user: &str, name: &str) -> bool {
        match self.by_name.get(user).map(|u| &u.rights) {
            Some(Rights::Names { own, globs }) => {
                (*own && user == name) || globs.iter().any(|glob| glob_matches(glob, name))
            }
            Some(Rights::ReadOnly) | None => false,
        }
    }
}

/// `NAME:HASH[:RIGHTS]` or `NAME:curve:KEY[:RIGHTS]`.
fn parse_line(line: &str) -> Result<(String, User), String> {
    let (name, rest) = line
        .split_once(':')
        .ok_or("expected NAME:PASSWORD-HASH[:RIGHTS]")?;
    crate::protocol::check_name(name, &crate::protocol::Limits::UNLIMITED)
        .map_err(|e| format!("user name {name:?}: {e}"))?;
    if name == crate::protocol::POLL_NAME {
        return Err("'_' is the watchers' name, not a user".into());
    }
    let (credential, rights) = match rest.strip_prefix("curve:") {
        // A Z85 key is 40 characters, and ':' is one of them.
        Some(key) => {
            let (z85, rights) = key
                .split_at_checked(40)
                .ok_or("a CURVE key is 40 Z85 characters")?;
            let key =
                crate::curve::decode_key(z85).map_err(|why| format!("the CURVE key: {why}"))?;
            let rights = match rights {
                "" => None,
                more => Some(more.strip_prefix(':').ok_or("expected ':' after the key")?),
            };
            (Credential::CurveKey(key), rights)
        }
        None => {
            let (hash, rights) = match rest.split_once(':') {
                Some((hash, rights)) => (hash, Some(rights)),
                None => (rest, None),
            };
            let parsed = PasswordHash::new(hash)
                .map_err(|e| format!("the password hash is not a PHC string ({e})"))?;
            if parsed.algorithm.as_str() != "argon2id" {
                return Err(format!(
                    "the password hash is {}, not argon2id; make one with status_server --hash-password",
                    parsed.algorithm
                ));
            }
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err("the password hash has no salt or no hash; make one with \
                            status_server --hash-password"
                    .into());
            }
            // argon2 0.5 multiplies p by 8 before it checks p, which
            // overflows for p ≥ 2^29 (a panic where overflow is checked):
            // refused here first. Found by fuzz/fuzz_targets/users.rs.
            if let Some(p) = parsed.params.get_decimal("p")
                && p > argon2::Params::MAX_P_COST
            {
                return Err(format!(
                    "the password hash has bad argon2 parameters (p={p}: at most {} lanes)",
                    argon2::Params::MAX_P_COST
                ));
            }
            argon2::Params::try_from(&parsed)
                .map_err(|e| format!("the password hash has bad argon2 parameters ({e})"))?;
            (Credential::Password(hash.to_owned()), rights)
        }
    };
    let rights = parse_rights(rights.unwrap_or("self"))?;
    Ok((name.to_owned(), User { credential, rights }))
}

/// `self` | `ro` | `self,GLOB,...` (a list of `self` and globs).
fn parse_rights(text: &str) -> Result<Rights, String> {
    if text == "ro" {
        return Ok(Rights::ReadOnly);
    }
    let mut own = false;
    let mut globs = Vec::new();
    for part in text.split(',') {
        match part {
            "self" => own = true,
            "ro" => return Err("'ro' stands alone: a read-only user changes nothing".into()),
            "" => return Err(format!("empty right in {text:?}")),
            glob => {
                crate::protocol::check_name(glob, &crate::protocol::Limits::UNLIMITED)
                    .map_err(|e| format!("right {glob:?}: {e}"))?;
                globs.push(glob.to_owned());
            }
        }
    }
    Ok(Rights::Names { own, globs })
}

/// Whether `name` matches `glob`: `*` any run of characters, `?` one.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    // Greedy with one backtrack point: the last `*` seen.
    let (mut g, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, n));
                g += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match star {
                Some((star_g, star_n)) => {
                    g = star_g + 1;
                    n = star_n + 1;
                    star = Some((star_g, star_n + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// The argon2id PHC string of `password`, with a fresh random salt and the
/// crate's default cost (19 MiB, 2 passes: OWASP's recommendation).
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_with(password.as_bytes(), argon2::Params::default())
}

/// The argon2id PHC string of `password` at the cost `params`.
fn hash_with(password: &[u8], params: argon2::Params) -> Result<String, String> {
    let mut salt = [0; 16];
    OsRng.try_fill_bytes(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// The cost of a PHC string already checked by [`parse_line`].
fn params_of(phc: &str) -> Result<argon2::Params, String> {
    let hash = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    argon2::Params::try_from(&hash).map_err(|e| e.to_string())
}

/// Whether two hashes take the same time to verify: memory, passes, lanes
/// and output length.
fn same_cost(a: &argon2::Params, b: &argon2::Params) -> bool {
    let output = |p: &argon2::Params| p.output_len().unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
    (a.m_cost(), a.t_cost(), a.p_cost(), output(a))
        == (b.m_cost(), b.t_cost(), b.p_cost(), output(b))
}

/// `m=19456,t=2,p=1`, as a PHC string says it.
fn describe(params: &argon2::Params) -> String {
    format!(
        "m={},t={},p={}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    )
}

/// Whether `password` matches the PHC string `phc` (checked at load); the
/// cost is the hash's own.
fn verify(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| Argon2::default().verify_password(password, &hash).is_ok())
}

/// 16 bytes nobody knows, for the decoy's password.
fn random_bytes() -> Result<[u8; 16], String> {
    let mut bytes = [0; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn parse(text: &str) -> Result<Users, UsersError> {
        Users::parse(Path::new("users"), text)
    }

    #[test]
    fn globs_match_as_a_shell_does() {
        for (glob, name, matches) in [
            ("build-*", "build-42", true),
            ("build-*", "build-", true),
            ("build-*", "buil", false),
            ("*-ci", "main-ci", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxxc", false),
            ("alice", "alice", true),
            ("alice", "alice2", false),
            ("*", "", true),
        ] {
            assert_eq!(glob_matches(glob, name), matches, "{glob} ~ {name}");
        }
    }

    #[test]
    fn rights_follow_the_file() {
        let hash = hash_password("pw").expect("hash");
        let users = parse(&format!(
            "# a comment\n\nalice:{hash}\nci:{hash}:self,build-*\nwall:{hash}:ro\nbot:{hash}:deploy-?\n"
        ))
        .expect("valid");
        assert_eq!(users.len(), 4);
        assert!(users.may_change("alice", "alice"));
        assert!(!users.may_change("alice", "bob"));
        assert!(users.may_change("ci", "ci") && users.may_change("ci", "build-7"));
        assert!(!users.may_change("ci", "alice"));
        assert!(!users.may_change("wall", "wall"));
        assert!(users.may_change("bot", "deploy-1") && !users.may_change("bot", "bot"));
        assert!(
            !users.may_change("mallory", "mallory"),
            "unknown users change nothing"
        );
        assert!(users.check_password("alice", b"pw"));
        assert!(!users.check_password("alice", b"wrong"));
        assert!(!users.check_password("mallory", b"pw"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let hash = hash_password("pw").expect("hash");
        for (text, says) in [
            ("alice".to_owned(), "line 1: expected NAME:"),
            (
                "alice:plaintext".to_owned(),
                "line 1: the password hash is not a PHC string",
            ),
            (
                "alice:$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
                "not argon2id",
            ),
            (
                format!("\n# x\nalice:{hash}:ro,self"),
                "line 3: 'ro' stands alone",
            ),
            (format!("alice:{hash}:self,,x"), "empty right"),
            (format!("_:{hash}"), "watchers' name"),
            ("alice:$argon2id$nonsense".to_owned(), "no salt or no hash"),
            ("bob:curve:short".to_owned(), "40 Z85 characters"),
            (
                // p × 8 overflows u32 inside argon2: a panic with overflow
                // checks, "memory cost too small" without them.
                "alice:$argon2id$v=19$m=19456,t=2,p=555555551$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                    .to_owned(),
                "p=555555551: at most 16777215 lanes",
            ),
        ] {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn hashes_of_another_cost_are_refused_and_the_decoy_costs_the_same() {
        let cheap_params = || argon2::Params::new(8192, 1, 1, None).expect("params");
        let cheap = hash_with(b"pw", cheap_params()).expect("hash");
        let usual = hash_password("pw").expect("hash");
        let err = parse(&format!("# users\nalice:{cheap}\nbob:{usual}\n"))
            .expect_err("two costs")
            .to_string();
        assert!(
            err.contains(
                "line 3: the password hash costs m=19456,t=2,p=1, line 2's costs m=8192,t=1,p=1"
            ),
            "{err}"
        );
        let again = hash_with(b"other", cheap_params()).expect("hash");
        let users = parse(&format!("alice:{cheap}\nbob:{again}\n")).expect("one cost");
        let decoy = params_of(&users.decoy).expect("the decoy is a PHC string");
        assert!(same_cost(&decoy, &cheap_params()), "{}", users.decoy);
        assert!(users.check_password("bob", b"other") && !users.check_password("carol", b"pw"));
    }

    #[test]
    fn a_user_named_twice_is_refused() {
        let hash = hash_password("pw").expect("hash");
        let err = parse(&format!("alice:{hash}\nbob:{hash}\nalice:{hash}:ro\n"))
            .expect_err("duplicate")
            .to_string();
        assert!(
            err.contains("names 'alice' twice, on lines 1 and 3"),
            "{err}"
        );
    }

    #[test]
    fn curve_keys_are_users_too() {
        let key = [7u8; 32];
        let z85 = zmq::z85_encode(&key).expect("z85");
        let users = parse(&format!("robot:curve:{z85}:self,robot-*\n")).expect("valid");
        assert_eq!(users.user_with_key(&key), Some("robot"));
        assert_eq!(users.user_with_key(&[8; 32]), None);
        assert!(users.may_change("robot", "robot-2"));
        assert!(
            !users.check_password("robot", b""),
            "no password for a key user"
        );
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("users");
        let hash = hash_password("pw").expect("hash");
        fs::write(&path, format!("alice:{hash}\n")).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = Users::load(&path).expect_err("exposed").to_string();
        assert!(
            err.contains("mode 0640") && err.contains("chmod 600"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(Users::load(&path).expect("private").len(), 1);
    }
}
