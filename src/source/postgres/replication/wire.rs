//! The bytes of PostgreSQL's frontend/backend protocol that a logical replication session
//! reads and writes: message framing, `ErrorResponse` fields, and the replication
//! sub-protocol inside `CopyData` (XLogData, primary keepalive, standby status update).
//!
//! Protocol reference: "Frontend/Backend Protocol", sections "Message Formats" and
//! "Streaming Replication Protocol" of the PostgreSQL documentation.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{ServerError, WireError};

/// The largest backend message accepted (a guard against a corrupt length, not a limit a real
/// server reaches: one pgoutput message holds one row, and a row is at most about 1 GB).
const MAX_MESSAGE: usize = 1 << 30;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// One backend message: its type byte and its body (without the length).
#[derive(Debug)]
pub struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

/// Splits the next whole message off the front of `buf`; `None` while it is incomplete.
pub fn next_frame(buf: &mut BytesMut) -> Result<Option<Frame>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(WireError::Protocol(format!(
            "message of type '{}' with an impossible length {len}",
            tag.escape_ascii()
        )));
    }
    if buf.len() < 1 + len {
        // Make room for the rest at once (one allocation, not one per read).
        buf.reserve(1 + len - buf.len());
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(Frame {
        tag,
        body: buf.split_to(len - 4).freeze(),
    }))
}

/// What the server sends inside `CopyData` during replication.
#[derive(Debug, PartialEq)]
pub enum CopyData {
    /// `w`: WAL data (for logical replication, one pgoutput message).
    XLogData { wal_start: u64, data: Bytes },
    /// `k`: the server's sent position; `reply_requested` asks for a status update now.
    KeepAlive { wal_end: u64, reply_requested: bool },
}

pub fn parse_copy_data(mut body: Bytes) -> Result<CopyData, WireError> {
    let short = |what: &str| WireError::Protocol(format!("{what} message too short"));
    if body.is_empty() {
        return Err(short("CopyData"));
    }
    match body.get_u8() {
        b'w' => {
            if body.len() < 24 {
                return Err(short("XLogData"));
            }
            let wal_start = body.get_u64();
            let _wal_end = body.get_u64();
            let _sent_at = body.get_i64();
            Ok(CopyData::XLogData {
                wal_start,
                data: body,
            })
        }
        b'k' => {
            if body.len() < 17 {
                return Err(short("keepalive"));
            }
            let wal_end = body.get_u64();
            let _sent_at = body.get_i64();
            Ok(CopyData::KeepAlive {
                wal_end,
                reply_requested: body.get_u8() == 1,
            })
        }
        other => Err(WireError::Protocol(format!(
            "unknown replication message type '{}' in CopyData",
            other.escape_ascii()
        ))),
    }
}

/// Appends a standby status update (`r` in `CopyData`) reporting `lsn` as written, flushed
/// and applied: tidemark reports only positions whose every event Kafka acknowledged.
pub fn put_status_update(out: &mut BytesMut, lsn: u64, now_unix_micros: i64, reply: bool) {
    out.put_u8(b'd');
    out.put_u32(4 + 1 + 8 * 4 + 1);
    out.put_u8(b'r');
    out.put_u64(lsn);
    out.put_u64(lsn);
    out.put_u64(lsn);
    out.put_i64(now_unix_micros - PG_EPOCH_OFFSET_MICROS);
    out.put_u8(u8::from(reply));
}

/// Appends `CopyDone`.
pub fn put_copy_done(out: &mut BytesMut) {
    out.put_u8(b'c');
    out.put_u32(4);
}

/// Appends `Terminate`.
pub fn put_terminate(out: &mut BytesMut) {
    out.put_u8(b'X');
    out.put_u32(4);
}

/// The fields of an `ErrorResponse` or `NoticeResponse` body.
pub fn parse_error_fields(body: &[u8]) -> ServerError {
    let mut e = ServerError::default();
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let value = String::from_utf8_lossy(&tail[..end]).into_owned();
        match kind {
            b'V' => e.severity = value,
            b'S' if e.severity.is_empty() => e.severity = value,
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    e
}

/// Reads a big-endian i32 from the front of `body` (authentication request codes).
pub fn take_i32(body: &mut Bytes) -> Result<i32, WireError> {
    if body.len() < 4 {
        return Err(WireError::Protocol(
            "authentication request too short".into(),
        ));
    }
    Ok(body.get_i32())
}

/// The null-terminated strings of a SASL mechanism list.
pub fn cstrings(body: &[u8]) -> Vec<String> {
    body.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn frames_split_only_when_whole() {
        let mut bytes = frame(b'd', b"wxyz");
        bytes.extend(frame(b'Z', b"I"));
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.put_u8(*b);
            let got = next_frame(&mut buf).unwrap();
            match i {
                8 => assert_eq!(
                    got.map(|f| (f.tag, f.body)),
                    Some((b'd', Bytes::from_static(b"wxyz")))
                ),
                14 => assert_eq!(
                    got.map(|f| (f.tag, f.body)),
                    Some((b'Z', Bytes::from_static(b"I")))
                ),
                _ => assert!(got.is_none(), "byte {i}"),
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn an_impossible_length_is_an_error_not_a_wait() {
        let mut buf = BytesMut::from(&[b'd', 0, 0, 0, 2][..]);
        assert!(matches!(next_frame(&mut buf), Err(WireError::Protocol(_))));
        let mut buf = BytesMut::from(&[b'd', 0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(next_frame(&mut buf), Err(WireError::Protocol(_))));
    }

    #[test]
    fn xlogdata_and_keepalive_are_read_and_short_ones_refused() {
        let mut w = vec![b'w'];
        w.extend(0x0100_u64.to_be_bytes());
        w.extend(0x0200_u64.to_be_bytes());
        w.extend(7_i64.to_be_bytes());
        w.extend(b"B...");
        assert_eq!(
            parse_copy_data(Bytes::from(w)).unwrap(),
            CopyData::XLogData {
                wal_start: 0x0100,
                data: Bytes::from_static(b"B...")
            }
        );
        let mut k = vec![b'k'];
        k.extend(0x0300_u64.to_be_bytes());
        k.extend(7_i64.to_be_bytes());
        k.push(1);
        assert_eq!(
            parse_copy_data(Bytes::from(k)).unwrap(),
            CopyData::KeepAlive {
                wal_end: 0x0300,
                reply_requested: true
            }
        );
        for short in [&b"w123"[..], b"k1", b"", b"q"] {
            assert!(parse_copy_data(Bytes::copy_from_slice(short)).is_err());
        }
    }

    #[test]
    fn a_status_update_reports_the_position_three_times_in_pg_time() {
        let mut out = BytesMut::new();
        put_status_update(&mut out, 0x0A0B, PG_EPOCH_OFFSET_MICROS + 5, true);
        let mut f = next_frame(&mut out).unwrap().unwrap();
        assert_eq!(f.tag, b'd');
        assert_eq!(f.body.len(), 34);
        assert_eq!(f.body.get_u8(), b'r');
        for _ in 0..3 {
            assert_eq!(f.body.get_u64(), 0x0A0B);
        }
        assert_eq!(f.body.get_i64(), 5);
        assert_eq!(f.body.get_u8(), 1);
    }

    #[test]
    fn error_fields_are_read_by_their_codes() {
        let body =
            b"SERROR\0VERROR\0C55006\0Mreplication slot \"s\" is active for PID 7\0Dmore\0\0";
        let e = parse_error_fields(body);
        assert_eq!(e.severity, "ERROR");
        assert_eq!(e.code, "55006");
        assert_eq!(e.message, "replication slot \"s\" is active for PID 7");
        assert_eq!(e.detail.as_deref(), Some("more"));
        // Cut short: what is there is kept.
        assert_eq!(parse_error_fields(b"C08006").code, "08006");
    }
}
