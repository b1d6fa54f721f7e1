//! The record format: one checksummed record per change, and how to read it back.
//!
//! A record is `len: u32 LE`, `crc32: u32 LE` (of the length bytes and the
//! payload), then the payload: `kind: u8`, `at_ms: u64 LE`, `name_len: u16 LE`,
//! the name, the status. `docs/STORAGE.md` has the long form.

use crate::protocol::{self, Field};

use super::StorageError;

/// First bytes of every state file: what it is and which format version.
pub const MAGIC: &[u8; 8] = b"SBLOG01\n";

/// Bytes before a record's payload: its length and checksum.
pub(super) const RECORD_HEADER: usize = 8;

/// Payload bytes before the name: kind, time, name length.
pub(super) const FIXED_PAYLOAD: usize = 1 + 8 + 2;

/// Record kind: set a status.
const KIND_SET: u8 = 1;

/// Record kind: remove a name if its status was set no later than the record's time.
const KIND_REMOVE: u8 = 2;

/// Why a record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The file ends inside the record.
    #[error("record cut short")]
    Truncated,
    /// The length field cannot be right.
    #[error("impossible record length")]
    BadLength,
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    BadChecksum,
    /// A record kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A checksummed record whose name or status breaks the protocol's rules.
    #[error("invalid name or status")]
    BadContents,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// Set or remove.
    pub(crate) kind: RecordKind,
    /// The name set or removed.
    pub(crate) name: &'a str,
    /// Its status, including the leading `:`; empty for a removal.
    pub(crate) status: &'a str,
    /// Set: when. Remove: only a status set no later than this goes. In
    /// milliseconds since the Unix epoch.
    pub(crate) set_at_ms: u64,
}

/// What a record does to the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// Sets a status.
    Set,
    /// Removes a name (`--clear`, or expiry).
    Remove,
}

impl<'a> Record<'a> {
    /// A record that sets `name` to `status` (with its leading `:`) at `set_at_ms`.
    pub(crate) fn set(name: &'a str, status: &'a str, set_at_ms: u64) -> Record<'a> {
        Record {
            kind: RecordKind::Set,
            name,
            status,
            set_at_ms,
        }
    }
}

/// Appends `record` to `out`, encoded as the log keeps it.
pub(crate) fn encode_record(out: &mut Vec<u8>, record: &Record<'_>) -> Result<(), StorageError> {
    let kind = match record.kind {
        RecordKind::Set => KIND_SET,
        RecordKind::Remove => KIND_REMOVE,
    };
    encode(out, kind, record.name, record.status, record.set_at_ms)
}

/// Appends one set record to `out`.
pub fn encode_set(
    out: &mut Vec<u8>,
    name: &str,
    status: &str,
    set_at_ms: u64,
) -> Result<(), StorageError> {
    encode(out, KIND_SET, name, status, set_at_ms)
}

/// Appends one remove record to `out`: `name` goes if set no later than `set_by_ms`.
pub(crate) fn encode_remove(
    out: &mut Vec<u8>,
    name: &str,
    set_by_ms: u64,
) -> Result<(), StorageError> {
    encode(out, KIND_REMOVE, name, "", set_by_ms)
}

fn encode(
    out: &mut Vec<u8>,
    kind: u8,
    name: &str,
    status: &str,
    set_at_ms: u64,
) -> Result<(), StorageError> {
    let payload_len = FIXED_PAYLOAD + name.len() + status.len();
    let too_large = || StorageError::TooLarge {
        name: name.len(),
        record: payload_len,
    };
    let name_len = u16::try_from(name.len()).map_err(|_| too_large())?;
    let len = u32::try_from(payload_len)
        .map_err(|_| too_large())?
        .to_le_bytes();
    let start = out.len();
    out.reserve(RECORD_HEADER + payload_len);
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]); // checksum, filled in below
    out.push(kind);
    out.extend_from_slice(&set_at_ms.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(status.as_bytes());
    let crc = checksum(&len, &out[start + RECORD_HEADER..]);
    out[start + 4..start + RECORD_HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The checksum covers the length too, so a damaged length cannot pass.
fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    #[cfg(test)]
    tests::HASHED.with(|hashed| hashed.set(hashed.get() + (len.len() + payload.len()) as u64));
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads the record at the start of `data`; returns it and its size in bytes.
///
/// The checksum comes after the checks that cost little, so that bytes
/// crafted to claim long records cost close to linear time to read past
/// ([`resync`] says why): the length, the kind and the name length first,
/// then the first control byte in the name and status (a byte below 0x20 or
/// 0x7F is a control character wherever it is in UTF-8, and no name or
/// status holds one), then the checksum, then the rest of the contents.
/// So the reason given for damage is the first of these that fails.
#[inline]
pub(crate) fn decode(data: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    if data.len() < RECORD_HEADER {
        return Err(DecodeError::Truncated);
    }
    let len = le_u32(&data[0..4]) as usize;
    if len < FIXED_PAYLOAD {
        return Err(DecodeError::BadLength);
    }
    let end = RECORD_HEADER
        .checked_add(len)
        .ok_or(DecodeError::BadLength)?;
    if data.len() < end {
        return Err(DecodeError::Truncated);
    }
    let payload = &data[RECORD_HEADER..end];
    let kind = match payload[0] {
        KIND_SET => RecordKind::Set,
        KIND_REMOVE => RecordKind::Remove,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let set_at_ms = le_u64(&payload[1..9]);
    let name_len = le_u16(&payload[9..11]) as usize;
    let rest = &payload[FIXED_PAYLOAD..];
    if name_len > rest.len() {
        return Err(DecodeError::BadLength);
    }
    if rest.iter().any(|&b| b < 0x20 || b == 0x7F) {
        return Err(DecodeError::BadContents);
    }
    if checksum(&data[0..4], payload) != le_u32(&data[4..8]) {
        return Err(DecodeError::BadChecksum);
    }
    let (name, status) = rest.split_at(name_len);
    let name = std::str::from_utf8(name).map_err(|_| DecodeError::BadContents)?;
    let status = std::str::from_utf8(status).map_err(|_| DecodeError::BadContents)?;
    let valid_status = match kind {
        RecordKind::Set => {
            status.starts_with(':') && protocol::check_line(status, Field::Status).is_ok()
        }
        RecordKind::Remove => status.is_empty(),
    };
    let valid =
        protocol::check_stored_name(name).is_ok() && name != protocol::POLL_NAME && valid_status;
    if !valid {
        return Err(DecodeError::BadContents);
    }
    Ok((
        Record {
            kind,
            name,
            status,
            set_at_ms,
        },
        end,
    ))
}

/// The first offset at or after `from` where a valid record starts.
///
/// Names and statuses hold no control characters, and every record header
/// does (its kind byte is 1 or 2), so a record cannot hide in a status.
///
/// Close to linear time, however long the lengths the bytes claim: [`decode`]
/// checksums an offset only if no control byte follows its header within the
/// length it claims, and its scan for one stops at the first. The kind byte
/// of every offset that gets that far is a control byte, which stops the scan
/// of each offset 11 or more bytes before it; so the offsets that scan (or
/// checksum) a given byte start within 11 bytes of each other, and each byte
/// is looked at 11 times at most. (Checksumming first cost the claimed length
/// at every offset: quadratic in a file crafted to claim lengths that fit.)
pub(crate) fn resync(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len()).find(|&offset| decode(&data[offset..]).is_ok())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// Bytes [`checksum`] has hashed on this thread: the work a scan did.
        pub(crate) static HASHED: Cell<u64> = const { Cell::new(0) };
    }

    /// Bytes hashed by `work` on this thread.
    pub(crate) fn bytes_hashed(work: impl FnOnce()) -> u64 {
        let before = HASHED.with(Cell::get);
        work();
        HASHED.with(Cell::get) - before
    }

    pub(crate) fn record(name: &str, status: &str, at: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_set(&mut out, name, status, at).unwrap();
        out
    }

    #[test]
    fn a_record_round_trips() {
        let data = record("alice", ": in a meeting", 1_700_000_000_123);
        let (decoded, size) = decode(&data).unwrap();
        assert_eq!(size, data.len());
        assert_eq!(
            decoded,
            Record {
                kind: RecordKind::Set,
                name: "alice",
                status: ": in a meeting",
                set_at_ms: 1_700_000_000_123
            }
        );
    }

    #[test]
    fn zeroes_are_not_a_record() {
        assert_eq!(decode(&[0; 64]), Err(DecodeError::BadLength));
    }

    fn valid_name() -> impl Strategy<Value = String> {
        "[^:\\p{Cc}]{1,12}".prop_filter("not the poll name", |n| n != "_")
    }

    #[test]
    fn resync_checksums_nothing_where_no_record_can_start() {
        // Look-alike headers claiming 128 KiB each, a status running into
        // the next header: only the valid record at the end is checksummed
        // (checksummed first, each would cost 128 KiB: 1 GiB in all).
        let mut look_alike = Vec::new();
        look_alike.extend_from_slice(&(128u32 << 10).to_le_bytes());
        look_alike.extend_from_slice(&[0xEF; 4]); // a checksum that is wrong
        look_alike.push(KIND_SET);
        look_alike.extend_from_slice(&[0x41; 8]);
        look_alike.extend_from_slice(&1u16.to_le_bytes());
        look_alike.extend_from_slice(b"a: xxxxxxxxxx");
        let mut data = look_alike.repeat(1 << 13); // 32 bytes each: 256 KiB
        let last = data.len();
        data.extend_from_slice(&record("b", ": 2", 2));
        let mut found = None;
        let hashed = bytes_hashed(|| found = resync(&data, 0));
        assert_eq!(found, Some(last));
        assert_eq!(hashed, (data.len() - last - 4) as u64);
    }

    proptest! {
        #[test]
        fn any_record_round_trips(name in valid_name(), text in "[^\\p{Cc}]{0,40}", at in any::<u64>()) {
            let status = format!(":{text}");
            let data = record(&name, &status, at);
            let (decoded, size) = decode(&data).unwrap();
            prop_assert_eq!(size, data.len());
            prop_assert_eq!(decoded, Record { kind: RecordKind::Set, name: &name, status: &status, set_at_ms: at });
        }

        #[test]
        fn any_cut_is_detected(name in valid_name(), text in "[^\\p{Cc}]{0,40}", cut in 0usize..60) {
            let data = record(&name, &format!(":{text}"), 1);
            let cut = cut.min(data.len() - 1);
            prop_assert!(decode(&data[..cut]).is_err());
        }

        #[test]
        fn any_flipped_byte_is_detected(name in valid_name(), text in "[^\\p{Cc}]{0,40}", at in 0usize..60, bit in 0u8..8) {
            let mut data = record(&name, &format!(":{text}"), 1);
            let at = at % data.len();
            data[at] ^= 1 << bit;
            prop_assert!(decode(&data).is_err());
        }
    }
}
