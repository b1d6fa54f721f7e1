//! `Transfer-Encoding: chunked`, decoded as the bytes come (etcd frames
//! its answers, and every line of a watch, this way).

use super::http::{HttpError, MAX_HEAD, find};

/// Decodes `Transfer-Encoding: chunked` as the bytes come.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    /// Bytes left of the chunk being read, then its CRLF.
    left: usize,
    /// The CRLF after a chunk's data is still to come.
    crlf: bool,
    /// The last (empty) chunk's size line was read: trailers follow.
    last: bool,
    /// ... and the empty line after them: the body is complete.
    finished: bool,
}

impl Chunks {
    pub(super) fn done(&self) -> bool {
        self.finished
    }

    /// Decodes what it can of `input` into `out`; returns the bytes used.
    pub(super) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut used = 0;
        while !self.finished && used < input.len() {
            let rest = &input[used..];
            if self.last {
                // Trailers (etcd sends gRPC's on error answers), then an empty line.
                let Some(end) = find(rest, b"\r\n") else {
                    if rest.len() > MAX_HEAD {
                        return Err(HttpError::Malformed("trailer too long"));
                    }
                    break;
                };
                used += end + 2;
                self.finished = end == 0;
            } else if self.left > 0 {
                let take = self.left.min(rest.len());
                out.extend_from_slice(&rest[..take]);
                self.left -= take;
                used += take;
                if self.left == 0 {
                    self.crlf = true;
                }
            } else if self.crlf {
                if rest.len() < 2 {
                    break;
                }
                if &rest[..2] != b"\r\n" {
                    return Err(HttpError::Malformed("chunk without its CRLF"));
                }
                self.crlf = false;
                used += 2;
            } else {
                let Some(end) = find(rest, b"\r\n") else {
                    if rest.len() > 1024 {
                        return Err(HttpError::Malformed("chunk size line too long"));
                    }
                    break;
                };
                let line = std::str::from_utf8(&rest[..end])
                    .map_err(|_| HttpError::Malformed("chunk size"))?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| HttpError::Malformed("chunk size"))?;
                used += end + 2;
                if size == 0 {
                    self.last = true;
                } else {
                    self.left = size;
                }
            }
        }
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_decode_across_any_split() {
        let plain = &b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"[..];
        let trailers = &b"5\r\nhello\r\n7\r\n, world\r\n0\r\nGrpc-Trailer: x\r\n\r\n"[..];
        for (wire, split) in [plain, trailers]
            .into_iter()
            .flat_map(|wire| (0..wire.len()).map(move |split| (wire, split)))
        {
            let mut chunks = Chunks::default();
            let mut out = Vec::new();
            let mut pending = wire[..split].to_vec();
            let used = chunks.feed(&pending, &mut out).expect("first part");
            pending.drain(..used);
            pending.extend_from_slice(&wire[split..]);
            let used = chunks.feed(&pending, &mut out).expect("second part");
            assert_eq!(used, pending.len(), "split at {split}");
            assert!(chunks.done());
            assert_eq!(out, b"hello, world");
        }
    }

    #[test]
    fn bad_chunk_sizes_are_errors_not_panics() {
        for wire in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"ffffffffffffffffffffff\r\n",
        ] {
            let mut out = Vec::new();
            assert!(Chunks::default().feed(wire, &mut out).is_err());
        }
    }
}
