//! MySQL 8's TRANSACTION_PAYLOAD_EVENT (`binlog_transaction_compression=ON`): one whole
//! transaction's events, compressed together.
//!
//! The body is a header of fields, each `type, length, value` as length-encoded integers
//! (1 payload size, 2 compression type: 0 zstd / 255 none, 3 uncompressed size; unknown
//! fields are skipped by their length), ended by field type 0, then the payload. The payload
//! decompresses to a sequence of ordinary events (19-byte header + body) without checksums.
//!
//! The payload is read as a stream ([`PayloadStream`]): zstd decompresses it piece by piece,
//! and one event at a time is handed on, so tidemark's memory for a compressed transaction is
//! the compressed event plus zstd's window, whatever its uncompressed size. (The client
//! library, `mysql_async`, decompresses the payload whole itself and yields its events after
//! the payload event; the decoder checks each of those against this stream and decodes it
//! there, one at a time: see `decoder.rs`.)

use std::io::Read;

use super::reader::{ByteReader, DecodeError, DecodeResult};

pub const ZSTD: u64 = 0;
pub const NONE: u64 = 255;
/// The largest decompressed transaction tidemark accepts (1 GiB).
pub const MAX_UNCOMPRESSED: u64 = 1 << 30;

const HEADER_LEN: usize = 19;

/// One event from inside a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerEvent {
    pub event_type: u8,
    pub timestamp: u32,
    pub server_id: u32,
    pub log_pos: u32,
    pub flags: u16,
    pub body: Vec<u8>,
}

/// The events of one payload, read one at a time.
pub struct PayloadStream {
    reader: Box<dyn Read + Send>,
    /// Uncompressed bytes still to come.
    remaining: u64,
    /// Where the payload starts in the event body (for error offsets).
    at: usize,
}

impl std::fmt::Debug for PayloadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadStream")
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl PayloadStream {
    /// Parses the header of a TRANSACTION_PAYLOAD body and starts reading its events.
    pub fn open(body: &[u8]) -> DecodeResult<Self> {
        let mut r = ByteReader::new(body);
        let mut size = None;
        let mut compression = None;
        let mut uncompressed = None;
        loop {
            let field = r.lenenc("payload header field")?;
            if field == 0 {
                break;
            }
            let len = r.lenenc_len("payload header field length")?;
            let value = r.take(len, "payload header field value")?;
            let mut v = ByteReader::new(value);
            match field {
                1 => size = Some(v.lenenc("payload size")?),
                2 => compression = Some(v.lenenc("compression type")?),
                3 => uncompressed = Some(v.lenenc("uncompressed size")?),
                _ => {}
            }
        }
        let size = size.ok_or_else(|| r.error("payload header without a payload size"))?;
        let compression =
            compression.ok_or_else(|| r.error("payload header without a compression type"))?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= r.remaining())
            .ok_or_else(|| {
                r.error(format!(
                    "payload size {size} exceeds the {} bytes left",
                    r.remaining()
                ))
            })?;
        let at = r.offset();
        let payload = r.take(size, "payload")?.to_vec();
        let (reader, remaining): (Box<dyn Read + Send>, u64) = match compression {
            NONE => (Box::new(std::io::Cursor::new(payload)), size as u64),
            ZSTD => {
                let declared = uncompressed
                    .ok_or_else(|| r.error("zstd payload without an uncompressed size"))?;
                if declared > MAX_UNCOMPRESSED {
                    return Err(r.error(format!(
                        "the transaction declares {declared} uncompressed bytes, more than tidemark decodes ({MAX_UNCOMPRESSED})"
                    )));
                }
                let decoder = zstd::stream::read::Decoder::new(std::io::Cursor::new(payload))
                    .map_err(|e| DecodeError {
                        what: format!("zstd payload cannot be read: {e}"),
                        offset: at,
                    })?;
                (Box::new(decoder), declared)
            }
            other => return Err(r.error(format!("unknown compression type {other}"))),
        };
        Ok(Self {
            reader,
            remaining,
            at,
        })
    }

    /// Whether every event of the payload has been read.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> DecodeResult<()> {
        let at = self.at;
        self.reader.read_exact(buf).map_err(|e| DecodeError {
            what: format!("inside the payload, {what}: {e}"),
            offset: at,
        })
    }

    /// The next event, or `None` after the last one (which must end exactly at the declared
    /// uncompressed size).
    pub fn next_event(&mut self) -> DecodeResult<Option<InnerEvent>> {
        if self.remaining == 0 {
            let mut extra = [0u8; 1];
            let more = self.reader.read(&mut extra).unwrap_or(0);
            if more > 0 {
                return Err(DecodeError {
                    what: "the payload holds more bytes than its header declares".into(),
                    offset: self.at,
                });
            }
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        self.fill(&mut header, "an event header")?;
        let mut h = ByteReader::new(&header);
        let timestamp = h.u32_le("event timestamp")?;
        let event_type = h.u8("event type")?;
        let server_id = h.u32_le("server id")?;
        let size = h.u32_le("event size")? as usize;
        let log_pos = h.u32_le("log position")?;
        let flags = h.u16_le("flags")?;
        let body_len = size.checked_sub(HEADER_LEN).ok_or_else(|| DecodeError {
            what: format!("inside the payload, an event declares size {size}, below its header"),
            offset: self.at,
        })?;
        if size as u64 > self.remaining {
            return Err(DecodeError {
                what: format!(
                    "inside the payload, an event of {size} bytes runs past the declared end ({} bytes left)",
                    self.remaining
                ),
                offset: self.at,
            });
        }
        if event_type == super::events::TRANSACTION_PAYLOAD {
            return Err(DecodeError {
                what: "a transaction payload inside a transaction payload".into(),
                offset: self.at,
            });
        }
        // Grown as bytes arrive (not allocated at the declared size, which comes from the
        // data).
        let mut body = Vec::new();
        let read = (&mut self.reader)
            .take(body_len as u64)
            .read_to_end(&mut body)
            .map_err(|e| DecodeError {
                what: format!("inside the payload, an event body: {e}"),
                offset: self.at,
            })?;
        if read != body_len {
            return Err(DecodeError {
                what: format!(
                    "inside the payload, an event body ends after {read} of {body_len} bytes"
                ),
                offset: self.at,
            });
        }
        self.remaining -= size as u64;
        Ok(Some(InnerEvent {
            event_type,
            timestamp,
            server_id,
            log_pos,
            flags,
            body,
        }))
    }
}

/// Decodes the header, decompresses the payload and splits it into events (all at once: for
/// tests and the fuzz target; the stream reads [`PayloadStream`] one event at a time).
pub fn decode(body: &[u8]) -> DecodeResult<Vec<InnerEvent>> {
    let mut stream = PayloadStream::open(body)?;
    let mut out = Vec::new();
    while let Some(e) = stream.next_event()? {
        out.push(e);
    }
    Ok(out)
}

/// Splits concatenated events (no checksums) into [`InnerEvent`]s.
pub fn split(data: &[u8]) -> DecodeResult<Vec<InnerEvent>> {
    let mut stream = PayloadStream {
        reader: Box::new(std::io::Cursor::new(data.to_vec())),
        remaining: data.len() as u64,
        at: 0,
    };
    let mut out = Vec::new();
    while let Some(e) = stream.next_event()? {
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn event_bytes(event_type: u8, body: &[u8]) -> Vec<u8> {
        let mut b = 1_700_000_000u32.to_le_bytes().to_vec();
        b.push(event_type);
        b.extend(1u32.to_le_bytes());
        b.extend(((HEADER_LEN + body.len()) as u32).to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend(body);
        b
    }

    /// A TRANSACTION_PAYLOAD body as MySQL writes it, for tests.
    pub(crate) fn payload_body(events: &[Vec<u8>], compression: u64) -> Vec<u8> {
        let raw: Vec<u8> = events.concat();
        let payload = if compression == ZSTD {
            zstd::bulk::compress(&raw, 3).unwrap()
        } else {
            raw.clone()
        };
        let mut b = Vec::new();
        let field = |b: &mut Vec<u8>, t: u8, v: u64| {
            let enc: Vec<u8> = if v < 251 {
                vec![v as u8]
            } else if v < 1 << 16 {
                let mut e = vec![0xfc];
                e.extend((v as u16).to_le_bytes());
                e
            } else {
                let mut e = vec![0xfe];
                e.extend(v.to_le_bytes());
                e
            };
            b.push(t);
            b.push(enc.len() as u8);
            b.extend(enc);
        };
        field(&mut b, 2, compression);
        field(&mut b, 3, raw.len() as u64);
        field(&mut b, 9, 7); // an unknown field, skipped
        field(&mut b, 1, payload.len() as u64);
        b.push(0);
        b.extend(payload);
        b
    }

    #[test]
    fn zstd_and_uncompressed_payloads_split_into_events() {
        let events = vec![
            event_bytes(2, b"BEGIN-ish"),
            event_bytes(16, &7u64.to_le_bytes()),
        ];
        for c in [ZSTD, NONE] {
            let inner = decode(&payload_body(&events, c)).unwrap();
            assert_eq!(inner.len(), 2);
            assert_eq!(inner[0].event_type, 2);
            assert_eq!(inner[0].body, b"BEGIN-ish");
            assert_eq!(inner[1].body, 7u64.to_le_bytes());
        }
    }

    #[test]
    fn bad_payloads_are_errors() {
        let events = vec![event_bytes(16, &7u64.to_le_bytes())];
        let good = payload_body(&events, ZSTD);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut corrupt = good.clone();
        let magic = corrupt
            .windows(4)
            .position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
            .unwrap();
        corrupt[magic] ^= 0xff;
        assert!(decode(&corrupt).is_err());
        let mut unknown = payload_body(&events, NONE);
        unknown[2] = 7; // compression type 7
        assert!(decode(&unknown)
            .unwrap_err()
            .what
            .contains("compression type 7"));
        // A declared size beyond the limit is refused before allocating.
        let mut huge = vec![2, 1, 0, 3, 9, 0xfe];
        huge.extend((MAX_UNCOMPRESSED + 1).to_le_bytes());
        huge.extend([1, 1, 0, 0]);
        assert!(decode(&huge)
            .unwrap_err()
            .what
            .contains("more than tidemark decodes"));
        // An event inside that claims to be shorter than its header.
        let mut short = event_bytes(16, &[]);
        short[9] = 3;
        assert!(split(&short).is_err());
    }
}
