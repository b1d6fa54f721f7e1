//! The small file-system duties around the log: where it lives by default,
//! its lock, positioned writes, and making a rename durable.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StorageError;

/// The mode of every file the storage layer keeps: the board may hold
/// statuses meant for logged-in users only (`--auth`), so no one but the
/// server's user reads it.
pub(super) const FILE_MODE: u32 = 0o600;

/// The mode of every directory the storage layer creates.
const DIR_MODE: u32 = 0o700;

/// Flags of every open by name. `O_NOFOLLOW`: a symbolic link as the last
/// component fails with `ELOOP` instead of being followed, so a link planted
/// at a state path never makes the server create, truncate or write its
/// target. `O_NONBLOCK`: a FIFO planted there cannot hang the open (it is
/// then refused as not a regular file); for a regular file it changes nothing.
const BY_NAME: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// Opens the file at `path` for reading and writing, creating it if missing:
/// never through a symbolic link, and only a regular file owned by the user
/// this process runs as. Its mode is left alone ([`make_private`] sets it,
/// once the caller knows the file is its own). Also says whether it was created.
pub(super) fn open_private(path: &Path) -> Result<(File, bool), StorageError> {
    let open = |create: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create)
            .mode(FILE_MODE)
            .custom_flags(BY_NAME)
            .open(path)
    };
    let (file, created) = match open(false) {
        Ok(file) => (file, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match open(true) {
            Ok(file) => (file, true),
            // Something appeared there in between: open it by the same rules.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (open(false).map_err(|e| refusal(path, e))?, false)
            }
            Err(e) => return Err(refusal(path, e)),
        },
        Err(e) => return Err(refusal(path, e)),
    };
    let meta = file.metadata().map_err(|source| StorageError::Open {
        path: path.to_owned(),
        source,
    })?;
    check_opened(
        path,
        meta.is_file(),
        meta.uid(),
        crate::sys::effective_uid(),
    )?;
    Ok((file, created))
}

/// Creates a new file at `path`, mode [`FILE_MODE`], for writing: fails if
/// anything is there already (`O_EXCL`), a symbolic link included, which
/// is then named as such.
pub(super) fn create_private(path: &Path) -> Result<File, StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(BY_NAME)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists if is_symlink(path) => StorageError::Symlink {
                path: path.to_owned(),
            },
            _ => StorageError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    if let Err(e) = make_private(path, &file) {
        // Ours since O_EXCL: nothing else is there to keep.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// Sets `file`'s mode to [`FILE_MODE`] if it is not that already, whatever
/// the umask (which can only take bits away, up to leaving a file no one
/// may open); returns the mode it had when it was changed.
pub(super) fn make_private(path: &Path, file: &File) -> Result<Option<u32>, StorageError> {
    let write_error = |source| StorageError::Write {
        path: path.to_owned(),
        source,
    };
    let mode = file.metadata().map_err(write_error)?.mode() & 0o7777;
    if mode == FILE_MODE {
        return Ok(None);
    }
    // fchmod on the open file: the path may name another by now.
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(write_error)?;
    Ok(Some(mode))
}

/// Removes a regular file left at `path` (a compaction a crash interrupted);
/// says whether there was one. Anything else there is refused, not removed:
/// the storage layer never made it.
pub(super) fn remove_stale(path: &Path) -> Result<bool, StorageError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StorageError::Read {
            path: path.to_owned(),
            source,
        }),
        Ok(meta) if meta.file_type().is_symlink() => Err(StorageError::Symlink {
            path: path.to_owned(),
        }),
        Ok(meta) if !meta.is_file() => Err(StorageError::NotRegular {
            path: path.to_owned(),
        }),
        // If it was swapped for a link since, unlink removes the link, not its target.
        Ok(_) => fs::remove_file(path)
            .map(|()| true)
            .map_err(|source| StorageError::Write {
                path: path.to_owned(),
                source,
            }),
    }
}

/// Refuses a name that is taken (a file is about to be moved there: it
/// replaces nothing), naming a symbolic link as such.
pub(super) fn ensure_free(path: &Path) -> Result<(), StorageError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() => Err(StorageError::Symlink {
            path: path.to_owned(),
        }),
        Ok(_) => Err(StorageError::Write {
            path: path.to_owned(),
            source: io::ErrorKind::AlreadyExists.into(),
        }),
        Err(source) => Err(StorageError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Refuses a state file whose directory does not exist: a path given by
/// hand with a typo in it must not quietly start an empty board somewhere
/// new. Only the default location is made ([`prepare_default_path`]).
/// Anything else wrong with the directory is left for the open to report.
pub(super) fn require_dir(path: &Path) -> Result<(), StorageError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::NoDirectory {
                path: path.to_owned(),
                dir: dir.to_owned(),
            }),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Creates `dir` and its missing parents, each mode [`DIR_MODE`] whatever
/// the umask; directories that exist are left as they are (and may be
/// symbolic links: only a path's last component is never followed).
fn create_private_dirs(dir: &Path) -> Result<(), StorageError> {
    if dir.as_os_str().is_empty() || fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dirs(parent)?;
    }
    let create_error = |source| StorageError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        // Made by someone else meanwhile: theirs, left as it is.
        Err(e)
            if e.kind() == io::ErrorKind::AlreadyExists
                && fs::metadata(dir).is_ok_and(|m| m.is_dir()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(create_error(e)),
    }
    // By path, not by descriptor: a directory a umask of 0777 left mode 000
    // cannot be opened to fchmod it. Only what was just made, and no link:
    // whoever could swap it for one could as well have made it first.
    if is_symlink(dir) {
        return Err(StorageError::Symlink {
            path: dir.to_owned(),
        });
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(create_error)
}

/// Takes the lock beside the state file; it stays put when compaction renames the log.
pub(super) fn lock(path: &Path) -> Result<File, StorageError> {
    let lock_path = sibling(path, ".lock");
    let (file, _) = open_private(&lock_path)?;
    // Whoever can open the lock can hold it and keep the server from starting.
    make_private(&lock_path, &file)?;
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
///
/// The directory is followed if it is a link: it is a path's directory, not
/// its last component, and an operator may keep the state on another disk.
pub(super) fn sync_dir(path: &Path) -> Result<(), StorageError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Sync {
            path: dir.to_owned(),
            source,
        })
}

/// Whether `path` names a symbolic link itself.
pub(super) fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The error of an open by name: a link refused by `O_NOFOLLOW` is named as such.
fn refusal(path: &Path, source: io::Error) -> StorageError {
    if source.raw_os_error() == Some(libc::ELOOP) && is_symlink(path) {
        StorageError::Symlink {
            path: path.to_owned(),
        }
    } else {
        StorageError::Open {
            path: path.to_owned(),
            source,
        }
    }
}

/// Refuses an opened file that is not a regular file owned by `uid`: a FIFO
/// or a device is no log, and a file another user owns (planted in a shared
/// directory, say) could be read by that user whatever its mode now.
fn check_opened(path: &Path, regular: bool, owner: u32, uid: u32) -> Result<(), StorageError> {
    if !regular {
        return Err(StorageError::NotRegular {
            path: path.to_owned(),
        });
    }
    if owner != uid {
        return Err(StorageError::NotOwned {
            path: path.to_owned(),
            owner,
            uid,
        });
    }
    Ok(())
}

/// A file's device and inode: which file it is, whatever its path says now.
pub(super) fn identity(file: &File) -> std::io::Result<(u64, u64)> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// `path` with `suffix` appended to its file name.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The default state file of a server listening on `endpoint` (its first),
/// its directory made (mode [`DIR_MODE`]) if missing:
/// `$XDG_STATE_HOME/status-board/tcp-ADDRESS-PORT.log` (or
/// `~/.local/state/...`) for TCP, named after the endpoint for other
/// transports. A board kept by an older version under `port-PORT.log` (keyed
/// by the port alone) is read and kept there, so none is lost on upgrade.
///
/// The one place directories are made: the default location is the
/// server's own, while a `--state` path is the operator's, whose directory
/// must exist ([`require_dir`]).
pub(crate) fn prepare_default_path(endpoint: &str) -> Result<PathBuf, StorageError> {
    let (key, legacy) = state_key(endpoint)?;
    let base =
        crate::xdg::base_dir("XDG_STATE_HOME", ".local/state").ok_or(StorageError::NoDefaultDir)?;
    let dir = base.join("status-board");
    create_private_dirs(&dir)?;
    let path = dir.join(format!("{key}.log"));
    match legacy.map(|old| dir.join(format!("{old}.log"))) {
        Some(old) if !occupied(&path) && occupied(&old) => Ok(old),
        _ => Ok(path),
    }
}

/// Whether anything is at `path`, a symbolic link included (then refused at open).
fn occupied(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
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
    if !endpoint.starts_with("tcp://") {
        return Ok((safe(endpoint), None));
    }
    let (host, port) = crate::endpoint::split_tcp_endpoint(endpoint).unwrap_or(("", ""));
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok((
            format!("tcp-{}-{port}", safe(host)),
            Some(format!("port-{port}")),
        )),
        _ => Err(StorageError::NoStableKey(endpoint.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_of_this_user_is_taken() {
        let path = Path::new("board.log");
        assert!(check_opened(path, true, 1000, 1000).is_ok());
        assert!(matches!(
            check_opened(path, false, 1000, 1000),
            Err(StorageError::NotRegular { .. })
        ));
        let refused = check_opened(path, true, 1000, 0).map_err(|e| e.to_string());
        assert_eq!(
            refused,
            Err(
                "board.log belongs to uid 1000, not to uid 0 that runs this server; \
                 refusing it (chown it, or choose another --state)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_link_is_never_followed_nor_its_target_made() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let opened = open_private(&link).map(|_| ()).map_err(|e| e.to_string());
        let says = format!(
            "{} is a symbolic link; refusing to follow it",
            link.display()
        );
        assert_eq!(opened, Err(says.clone()));
        let created = create_private(&link).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(created, Err(says.clone()));
        assert_eq!(
            remove_stale(&link).map_err(|e| e.to_string()),
            Err(says.clone())
        );
        assert_eq!(ensure_free(&link).map_err(|e| e.to_string()), Err(says));
        assert!(!target.exists(), "the target was not created");
        assert!(is_symlink(&link), "the link was not removed");
    }

    #[test]
    fn files_are_made_0600_and_directories_0700() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dirs(&nested).unwrap();
        for made in [dir.path().join("a"), nested.clone()] {
            let mode = fs::metadata(&made).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
        let path = nested.join("board.log");
        let (file, created) = open_private(&path).unwrap();
        assert!(created);
        assert_eq!(
            make_private(&path, &file).unwrap(),
            None,
            "0600 from the start (umask 022)"
        );
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .unwrap();
        let (again, created) = open_private(&path).unwrap();
        assert!(!created);
        assert_eq!(make_private(&path, &again).unwrap(), Some(0o644));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
    }

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
