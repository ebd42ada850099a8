//! MySQL 8's TRANSACTION_PAYLOAD_EVENT (`binlog_transaction_compression=ON`): one whole
//! transaction's events, compressed together.
//!
//! The body is a header of fields, each `type, length, value` as length-encoded integers
//! (1 payload size, 2 compression type: 0 zstd / 255 none, 3 uncompressed size; unknown
//! fields are skipped by their length), ended by field type 0, then the payload. The payload
//! decompresses to a sequence of ordinary events (19-byte header + body) without checksums.
//!
//! A compressed transaction is decompressed whole (the server compressed it whole), so its
//! memory is bounded by the transaction's uncompressed size; [`MAX_UNCOMPRESSED`] refuses
//! absurd declared sizes instead of allocating them.

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

/// Decodes the header, decompresses the payload and splits it into events.
pub fn decode(body: &[u8]) -> DecodeResult<Vec<InnerEvent>> {
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
    let payload = r.take(size, "payload")?;
    let data = match compression {
        NONE => payload.to_vec(),
        ZSTD => {
            let declared =
                uncompressed.ok_or_else(|| r.error("zstd payload without an uncompressed size"))?;
            if declared > MAX_UNCOMPRESSED {
                return Err(r.error(format!(
                    "the transaction declares {declared} uncompressed bytes, more than tidemark decodes ({MAX_UNCOMPRESSED})"
                )));
            }
            let out =
                zstd::bulk::decompress(payload, declared as usize).map_err(|e| DecodeError {
                    what: format!("zstd payload does not decompress: {e}"),
                    offset: at,
                })?;
            if out.len() as u64 != declared {
                return Err(DecodeError {
                    what: format!(
                        "zstd payload decompressed to {} bytes, the header says {declared}",
                        out.len()
                    ),
                    offset: at,
                });
            }
            out
        }
        other => return Err(r.error(format!("unknown compression type {other}"))),
    };
    split(&data).map_err(|e| DecodeError {
        what: format!("inside the decompressed payload: {}", e.what),
        offset: at,
    })
}

/// Splits concatenated events (no checksums) into [`InnerEvent`]s.
pub fn split(data: &[u8]) -> DecodeResult<Vec<InnerEvent>> {
    let mut r = ByteReader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        let start = r.offset();
        let timestamp = r.u32_le("event timestamp")?;
        let event_type = r.u8("event type")?;
        let server_id = r.u32_le("server id")?;
        let size = r.u32_le("event size")? as usize;
        let log_pos = r.u32_le("log position")?;
        let flags = r.u16_le("flags")?;
        let body_len = size.checked_sub(HEADER_LEN).ok_or_else(|| {
            r.error(format!(
                "event at byte {start} declares size {size}, below its header"
            ))
        })?;
        if event_type == super::events::TRANSACTION_PAYLOAD {
            return Err(r.error("a transaction payload inside a transaction payload"));
        }
        let body = r.take(body_len, "event body")?.to_vec();
        out.push(InnerEvent {
            event_type,
            timestamp,
            server_id,
            log_pos,
            flags,
            body,
        });
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
