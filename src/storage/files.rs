//! The small file-system duties around the log: where it lives by default,
//! its lock, positioned writes, and making a rename durable.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::StorageError;

/// Opens the log for positioned writes (records go at its logical end, not its size).
pub(super) fn open_write(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| StorageError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Takes the lock beside the state file; it stays put when compaction renames the log.
pub(super) fn lock(path: &Path) -> Result<File, StorageError> {
    let lock_path = sibling(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StorageError::Open {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: path.to_owned(),
            lock: lock_path,
        }),
        Err(fs::TryLockError::Error(source)) => Err(StorageError::Open {
            path: lock_path,
            source,
        }),
    }
}

/// Makes a rename or a new file in `path`'s directory durable.
pub(super) fn sync_dir(path: &Path) -> Result<(), StorageError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Sync {
            path: dir.to_owned(),
            source,
        })
}

/// A file's device and inode: which file it is, whatever its path says now.
pub(super) fn identity(file: &File) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// `path` with `suffix` appended to its file name.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The default state file of a server listening on `endpoint` (its first):
/// `$XDG_STATE_HOME/status-board/tcp-ADDRESS-PORT.log` (or
/// `~/.local/state/...`) for TCP, named after the endpoint for other
/// transports. A board kept by an older version under `port-PORT.log` (keyed
/// by the port alone) is read and kept there, so none is lost on upgrade.
pub(crate) fn default_path(endpoint: &str) -> Result<PathBuf, StorageError> {
    let (key, legacy) = state_key(endpoint)?;
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".local/state"))
            .ok_or(StorageError::NoDefaultDir)?,
    };
    let dir = base.join("status-board");
    let path = dir.join(format!("{key}.log"));
    match legacy.map(|old| dir.join(format!("{old}.log"))) {
        Some(old) if !path.exists() && old.exists() => Ok(old),
        _ => Ok(path),
    }
}

/// What names the default state file: the TCP address and port (and the
/// name an older version used, the port alone), or the whole endpoint for
/// other transports. A port picked at random (`0`, `*`) names nothing stable.
fn state_key(endpoint: &str) -> Result<(String, Option<String>), StorageError> {
    let safe = |text: &str| -> String {
        text.chars()
            .map(|c| match c {
                c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => c,
                _ => '_',
            })
            .collect()
    };
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return Ok((safe(endpoint), None));
    };
    let (host, port) = rest.rsplit_once(':').unwrap_or(("", rest));
    match port.parse::<u16>() {
        Ok(port) if port != 0 => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok((
                format!("tcp-{}-{port}", safe(host)),
                Some(format!("port-{port}")),
            ))
        }
        _ => Err(StorageError::NoStableKey(endpoint.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_key_is_the_address_and_port_or_the_endpoint() {
        let key = |endpoint| state_key(endpoint).ok();
        let tcp = |key: &str, port: u16| Some((key.to_owned(), Some(format!("port-{port}"))));
        assert_eq!(key("tcp://0.0.0.0:2345"), tcp("tcp-0.0.0.0-2345", 2345));
        assert_eq!(key("tcp://127.0.0.2:2345"), tcp("tcp-127.0.0.2-2345", 2345));
        assert_eq!(key("tcp://[::1]:2345"), tcp("tcp-__1-2345", 2345));
        assert_eq!(
            key("ipc:///tmp/status.sock"),
            Some(("ipc____tmp_status.sock".to_owned(), None))
        );
        for random in ["tcp://127.0.0.1:0", "tcp://127.0.0.1:*"] {
            assert!(
                matches!(state_key(random), Err(StorageError::NoStableKey(_))),
                "{random}"
            );
        }
    }
}
