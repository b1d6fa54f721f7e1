//! etcd's v3 JSON gateway, as we use it: the requests we build and the
//! answers we read.
//!
//! Keys and values travel in base64; 64-bit integers as strings; a field at
//! its default value is left out (a failed transaction has no `succeeded`, a
//! PUT event no `type`, an empty range no `kvs`), so every field here has a
//! default.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// etcd's base64 of some bytes.
pub(crate) fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The key just past every key that starts with `prefix` (etcd's range end).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // A prefix of only 0xff bytes: to the end of the key space.
    vec![0]
}

/// A number etcd sends as a string (int64, uint64) or, rarely, as a number.
fn number<'de, D: Deserializer<'de>, T: std::str::FromStr + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => text
            .parse()
            .map_err(|_| serde::de::Error::custom("not a number")),
        Value::Number(n) => n
            .to_string()
            .parse()
            .map_err(|_| serde::de::Error::custom("not a number")),
        Value::Null => Ok(T::default()),
        _ => Err(serde::de::Error::custom("not a number")),
    }
}

/// Bytes etcd sends in base64.
fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    BASE64
        .decode(text.as_bytes())
        .map_err(|_| serde::de::Error::custom("not base64"))
}

/// What every answer carries: which cluster, and its revision then.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub(crate) struct Header {
    #[serde(deserialize_with = "number")]
    pub(crate) cluster_id: u64,
    #[serde(deserialize_with = "number")]
    pub(crate) member_id: u64,
    #[serde(deserialize_with = "number")]
    pub(crate) revision: i64,
}

/// A key and its value, with the revisions that made it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct KeyValue {
    #[serde(deserialize_with = "base64_bytes")]
    pub(crate) key: Vec<u8>,
    #[serde(deserialize_with = "number")]
    pub(crate) create_revision: i64,
    #[serde(deserialize_with = "number")]
    pub(crate) mod_revision: i64,
    #[serde(deserialize_with = "base64_bytes")]
    pub(crate) value: Vec<u8>,
}

/// The answer to a range.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RangeAnswer {
    pub(crate) header: Header,
    pub(crate) kvs: Vec<KeyValue>,
    #[serde(deserialize_with = "number")]
    pub(crate) count: i64,
}

/// The answer to a transaction.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TxnAnswer {
    pub(crate) header: Header,
    /// Whether its comparisons held (and so its success branch ran).
    pub(crate) succeeded: bool,
}

/// The answer to an authentication.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthAnswer {
    pub(crate) token: String,
}

/// One change a watch reports.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct WatchEvent {
    /// `DELETE`, or absent for a put.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) kv: KeyValue,
}

impl WatchEvent {
    pub(crate) fn is_delete(&self) -> bool {
        self.kind == "DELETE"
    }
}

/// One answer on a watch stream.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WatchAnswer {
    pub(crate) header: Header,
    pub(crate) created: bool,
    pub(crate) canceled: bool,
    /// Set when the watch asked for a revision compacted away.
    #[serde(deserialize_with = "number")]
    pub(crate) compact_revision: i64,
    pub(crate) cancel_reason: String,
    pub(crate) events: Vec<WatchEvent>,
}

/// A line of the watch stream: an answer, or an error.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WatchLine {
    pub(crate) result: Option<WatchAnswer>,
    pub(crate) error: Option<Value>,
}

/// etcd's error body: `{"error":…,"code":…,"message":…}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// A range over every key under `prefix`, oldest key first.
pub(crate) fn range_prefix(prefix: &[u8], count_only: bool) -> Value {
    json!({
        "key": b64(prefix),
        "range_end": b64(&prefix_end(prefix)),
        "sort_order": "ASCEND",
        "sort_target": "CREATE",
        "count_only": count_only,
    })
}

/// How many keys under `prefix` were last written after revision `after`.
pub(crate) fn count_written_after(prefix: &[u8], after: i64) -> Value {
    json!({
        "key": b64(prefix),
        "range_end": b64(&prefix_end(prefix)),
        // Not count_only: etcd counts before it filters by revision.
        "keys_only": true,
        "limit": "1",
        "min_mod_revision": (after + 1).to_string(),
    })
}

/// A watch of every key under `prefix` from `start` on.
pub(crate) fn watch_prefix(prefix: &[u8], start: i64) -> Value {
    json!({"create_request": {
        "key": b64(prefix),
        "range_end": b64(&prefix_end(prefix)),
        "start_revision": start.to_string(),
        "progress_notify": true,
    }})
}

/// One operation of a transaction's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

impl Op {
    /// The key it writes.
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Compare {
    /// The key was last changed at this revision.
    ModRevision { key: Vec<u8>, revision: i64 },
    /// The key exists.
    Exists { key: Vec<u8> },
    /// The key does not exist.
    Absent { key: Vec<u8> },
}

/// A transaction: if every comparison holds, the operations.
pub(crate) fn txn(compare: &[Compare], success: &[Op]) -> Value {
    let compare: Vec<Value> = compare
        .iter()
        .map(|c| match c {
            Compare::ModRevision { key, revision } => json!({
                "key": b64(key), "target": "MOD", "result": "EQUAL",
                "mod_revision": revision.to_string(),
            }),
            Compare::Exists { key } => json!({
                "key": b64(key), "target": "CREATE", "result": "GREATER",
                "create_revision": "0",
            }),
            Compare::Absent { key } => json!({
                "key": b64(key), "target": "CREATE", "result": "EQUAL",
                "create_revision": "0",
            }),
        })
        .collect();
    let success: Vec<Value> = success
        .iter()
        .map(|op| match op {
            Op::Put { key, value } => {
                json!({"request_put": {"key": b64(key), "value": b64(value)}})
            }
            Op::Delete { key } => json!({"request_delete_range": {"key": b64(key)}}),
        })
        .collect();
    json!({"compare": compare, "success": success, "failure": []})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_end_is_the_next_key_after_every_key_under_it() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn answers_with_their_defaults_left_out_are_read() {
        let txn: TxnAnswer = serde_json::from_str(
            r#"{"header":{"cluster_id":"14841639068965178418","revision":"7"}}"#,
        )
        .expect("txn");
        assert!(!txn.succeeded);
        assert_eq!(txn.header.revision, 7);
        assert_eq!(txn.header.cluster_id, 14841639068965178418);
        let range: RangeAnswer =
            serde_json::from_str(r#"{"header":{"revision":"3"}}"#).expect("range");
        assert!(range.kvs.is_empty());
        let line: WatchLine = serde_json::from_str(
            r#"{"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"L2Ev","mod_revision":"9","value":"eA=="}},{"type":"DELETE","kv":{"key":"L2Iv"}}]}}"#,
        )
        .expect("watch");
        let answer = line.result.expect("result");
        assert!(!answer.events[0].is_delete());
        assert_eq!(answer.events[0].kv.key, b"/a/");
        assert_eq!(answer.events[0].kv.value, b"x");
        assert!(answer.events[1].is_delete());
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(serde_json::from_str::<TxnAnswer>(r#"{"header":{"revision":"x"}}"#).is_err());
        assert!(serde_json::from_str::<KeyValue>(r#"{"key":"!!"}"#).is_err());
    }
}
