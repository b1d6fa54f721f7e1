//! CURVE key pairs (encryption and login by key): made, kept in a private
//! file, read back. Both programs use it: the server for its own pair
//! (`--curve-keygen FILE`, `--curve-secret FILE`), the client for its pair in
//! `~/.config/status-board/curve.key` (`status_client --curve-keygen`).
//!
//! The file is a ZeroMQ certificate's two lines:
//!
//! ```text
//! # status-board CURVE key pair: keep this file private
//! public-key = "Z85 (40 characters)"
//! secret-key = "Z85 (40 characters)"
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::secret_file::{SecretFileError, read_private};

/// What a build without CURVE says when asked for it.
pub const UNAVAILABLE: &str = "this build has no CURVE (its libzmq was built without libsodium); \
     build with the system's libzmq instead: apt-get install libzmq3-dev, then \
     cargo build --release --config .cargo/curve.toml (docs/SECURITY.md)";

/// Whether this build's libzmq can do CURVE.
pub fn available() -> bool {
    zmq::has("curve").unwrap_or(false)
}

/// Why a key pair cannot be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum CurveError {
    /// The vendored libzmq has no CURVE.
    #[error("{UNAVAILABLE}")]
    Unavailable,
    /// libzmq could not make a key pair.
    #[error("cannot make a CURVE key pair")]
    Generate(#[source] zmq::Error),
    /// The file is there already: never overwrite a key.
    #[error("{} exists already; a key pair is never overwritten", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Writing a new key pair failed.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The file cannot be read, or others could read the secret key.
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    /// Not a key pair file.
    #[error("{} is not a CURVE key pair file: {why}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// A CURVE key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The public key, which others are given.
    pub public: [u8; 32],
    /// The secret key, which never leaves its file and this process.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key, not even in a debug print.
        f.debug_struct("KeyPair")
            .field("public", &self.public_z85())
            .finish()
    }
}

impl KeyPair {
    /// A new key pair from libzmq (libsodium's randomness).
    pub(crate) fn generate() -> Result<KeyPair, CurveError> {
        if !available() {
            return Err(CurveError::Unavailable);
        }
        let pair = zmq::CurveKeyPair::new().map_err(CurveError::Generate)?;
        Ok(KeyPair {
            public: pair.public_key,
            secret: pair.secret_key,
        })
    }

    /// Makes a key pair and writes it to a new file that only its owner can read.
    pub fn write_new(path: &Path) -> Result<KeyPair, CurveError> {
        let pair = KeyPair::generate()?;
        let io = |source| CurveError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CurveError::Exists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        let text = format!(
            "# status-board CURVE key pair: keep this file private\n\
             public-key = \"{}\"\nsecret-key = \"{}\"\n",
            pair.public_z85(),
            encode(&pair.secret)
        );
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(pair)
    }

    /// Reads a key pair file, which only its owner may read.
    pub(crate) fn read(path: &Path) -> Result<KeyPair, CurveError> {
        if !available() {
            return Err(CurveError::Unavailable);
        }
        let text = read_private(path, "")?;
        KeyPair::parse(&text).map_err(|why| CurveError::Malformed {
            path: path.to_owned(),
            why,
        })
    }

    /// A key pair from the text of its file, or what is wrong with it. No
    /// libzmq with CURVE needed: only its Z85 decoder.
    pub(crate) fn parse(text: &str) -> Result<KeyPair, String> {
        let key = |name: &str| -> Result<[u8; 32], String> {
            let value = text
                .lines()
                .filter_map(|line| line.trim().split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().trim_matches('"'))
                .ok_or_else(|| format!("no {name} line"))?;
            decode_key(value).map_err(|why| format!("{name}: {why}"))
        };
        Ok(KeyPair {
            public: key("public-key")?,
            secret: key("secret-key")?,
        })
    }

    /// The public key in Z85, as people pass it around.
    pub fn public_z85(&self) -> String {
        encode(&self.public)
    }
}

/// A 32-byte key from its 40 Z85 characters.
///
/// Decoded here, not by libzmq: the zmq crate's `z85_decode` leaks the copy
/// of its input on every call, ignores libzmq's refusal of a group past
/// 2^32 (and answers zeros), and not every libzmq refuses a character
/// outside the alphabet. Each key thus has one text, the one encoding gives.
pub fn decode_key(z85: &str) -> Result<[u8; 32], String> {
    if z85.len() != 40 {
        return Err(format!("a key is 40 Z85 characters, not {}", z85.len()));
    }
    if let Some(bad) = z85.chars().find(|c| !Z85_ALPHABET.contains(*c)) {
        return Err(format!("{bad:?} is not a Z85 character"));
    }
    let mut key = [0; 32];
    // Each 5 characters, base 85 with the most significant first, are 4 bytes.
    for (group, bytes) in z85.as_bytes().chunks_exact(5).zip(key.chunks_exact_mut(4)) {
        let value = group.iter().fold(0u64, |value, &c| {
            // Every character is in the alphabet, checked above.
            let digit = Z85_ALPHABET.bytes().position(|a| a == c).unwrap_or(0);
            value * 85 + digit as u64
        });
        let value = u32::try_from(value)
            .map_err(|_| format!("{:?} is past 2^32, not Z85", String::from_utf8_lossy(group)))?;
        bytes.copy_from_slice(&value.to_be_bytes());
    }
    Ok(key)
}

/// The 85 characters of Z85 (ZeroMQ RFC 32).
const Z85_ALPHABET: &str =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

fn encode(key: &[u8; 32]) -> String {
    // 32 bytes is a multiple of 4, the one thing Z85 asks.
    zmq::z85_encode(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_round_trip_through_z85() {
        let key = [0x5a; 32];
        assert_eq!(decode_key(&encode(&key)), Ok(key));
        assert!(decode_key("short").is_err());
        assert!(decode_key(&"~".repeat(40)).is_err());
    }

    #[test]
    fn keys_decode_as_libzmq_encodes_them_and_a_group_past_2_32_is_refused() {
        // ZeroMQ RFC 32's example.
        let hello = [0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b];
        let mut key = [0; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = hello[i % 8];
        }
        assert_eq!(encode(&key), "HelloWorld".repeat(4));
        assert_eq!(decode_key(&"HelloWorld".repeat(4)), Ok(key));
        for fill in [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff] {
            let mut key = [fill; 32];
            key[31] ^= 0x5a;
            assert_eq!(decode_key(&encode(&key)), Ok(key));
        }
        // 85^5 - 1 does not fit 4 bytes. libzmq refuses it, but the zmq crate
        // ignored the refusal and answered zeros for that group and the rest.
        let past = format!("{}{}", "#".repeat(5), "0".repeat(35));
        let err = decode_key(&past).expect_err("past 2^32");
        assert!(err.contains("past 2^32"), "{err}");
        assert_eq!(
            decode_key(&format!("%nSc0{}", "0".repeat(35))).map(|k| k[..4].to_vec()),
            Ok(vec![0xff; 4])
        );
    }

    #[test]
    fn a_pair_is_written_privately_read_back_and_never_overwritten() {
        if !available() {
            // The vendored build: the refusal is the behaviour to check.
            let dir = tempfile::tempdir().expect("temp dir");
            let err = KeyPair::write_new(&dir.path().join("k")).expect_err("no CURVE");
            assert!(err.to_string().contains("libzmq3-dev"), "{err}");
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/curve.key");
        let pair = KeyPair::write_new(&path).expect("written");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(KeyPair::read(&path).expect("read back"), pair);
        assert!(matches!(
            KeyPair::write_new(&path),
            Err(CurveError::Exists { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            KeyPair::read(&path),
            Err(CurveError::Secret(SecretFileError::Exposed { .. }))
        ));
    }
}
