//! MariaDB's compressed binlog events (`log_bin_compress=ON`): QUERY_COMPRESSED (165) and the
//! compressed rows events (166-168 for v1, 169-171 for v2).
//!
//! The event keeps its usual header fields and compresses only the variable part: the
//! statement text of a query, the rows after the columns-present bitmaps of a rows event.
//! That part starts with one byte `0x80 | algorithm << 4 | n` (algorithm 0 = zlib), then the
//! uncompressed length in `n` big-endian bytes, then the zlib stream. tidemark rebuilds the
//! uncompressed event body and decodes it like any other.

use std::io::Read as _;

use super::events::QUERY;
use super::reader::{ByteReader, DecodeError, DecodeResult};
use super::rows;

pub const QUERY_COMPRESSED: u8 = 165;
/// The largest decompressed part tidemark accepts (1 GiB).
const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// The event type a compressed event stands for.
pub fn uncompressed_type(event_type: u8) -> Option<u8> {
    Some(match event_type {
        QUERY_COMPRESSED => QUERY,
        166 => rows::WRITE_ROWS_V1,
        167 => rows::UPDATE_ROWS_V1,
        168 => rows::DELETE_ROWS_V1,
        169 => rows::WRITE_ROWS,
        170 => rows::UPDATE_ROWS,
        171 => rows::DELETE_ROWS,
        _ => return None,
    })
}

/// Decompresses `data` (header byte, length, zlib stream).
fn inflate(r: &ByteReader<'_>, data: &[u8]) -> DecodeResult<Vec<u8>> {
    let mut h = ByteReader::new(data);
    let header = h.u8("compression header")?;
    let algorithm = (header >> 4) & 0x07;
    let n = usize::from(header & 0x07);
    if header & 0x80 == 0 || algorithm != 0 || !(1..=4).contains(&n) {
        return Err(r.error(format!(
            "compression header {header:#04x} is not zlib with a 1..4 byte length"
        )));
    }
    let len = h.uint_be(n, "uncompressed length")?;
    if len > MAX_UNCOMPRESSED {
        return Err(r.error(format!(
            "uncompressed length {len} is more than tidemark decodes"
        )));
    }
    let mut out = Vec::with_capacity(len as usize);
    flate2::read::ZlibDecoder::new(h.rest())
        .take(len + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError {
            what: format!("zlib stream does not decompress: {e}"),
            offset: r.offset() + h.offset(),
        })?;
    if out.len() as u64 != len {
        return Err(r.error(format!(
            "decompressed {} bytes, the header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

/// The uncompressed body of a compressed event of type `event_type`.
pub fn uncompress(event_type: u8, body: &[u8]) -> DecodeResult<Vec<u8>> {
    let mut r = ByteReader::new(body);
    if event_type == QUERY_COMPRESSED {
        r.skip(8, "thread id and execution time")?;
        let db_len = r.u8("database name length")?;
        r.skip(2, "error code")?;
        let status_len = r.u16_le("status variables length")?;
        r.skip(usize::from(status_len), "status variables")?;
        r.skip(usize::from(db_len) + 1, "database name")?;
    } else {
        let ty = uncompressed_type(event_type)
            .ok_or_else(|| r.error(format!("event type {event_type} is not compressed")))?;
        let (kind, v2) = rows::RowsKind::of(ty).ok_or_else(|| r.error("not a rows event"))?;
        r.skip(8, "table id and flags")?;
        if v2 {
            let extra = usize::from(r.u16_le("extra data length")?);
            r.skip(extra.saturating_sub(2), "extra data")?;
        }
        let columns = r.lenenc("column count")?;
        let bitmap = usize::try_from(columns.div_ceil(8)).map_err(|_| r.error("column count"))?;
        r.skip(bitmap, "columns-present bitmap")?;
        if kind == rows::RowsKind::Update {
            r.skip(bitmap, "after-image columns-present bitmap")?;
        }
    }
    let head = &body[..r.offset()];
    let mut out = head.to_vec();
    out.extend(inflate(&r, r.rest())?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn compress(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        let z = e.finish().unwrap();
        let mut out = vec![0x80 | 2];
        out.extend((data.len() as u16).to_be_bytes());
        out.extend(z);
        out
    }

    #[test]
    fn compressed_query_and_rows() {
        let mut q = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0];
        q.extend(b"db\0");
        let head = q.clone();
        q.extend(compress(b"ALTER TABLE t ADD c INT"));
        let plain = uncompress(QUERY_COMPRESSED, &q).unwrap();
        assert_eq!(&plain[..head.len()], &head[..]);
        assert_eq!(&plain[head.len()..], b"ALTER TABLE t ADD c INT");

        let rows_head = vec![42, 0, 0, 0, 0, 0, 1, 0, 3, 0b111, 0b111];
        let mut ev = rows_head.clone();
        ev.extend(compress(b"row bytes"));
        let plain = uncompress(167, &ev).unwrap();
        assert_eq!(plain, [rows_head, b"row bytes".to_vec()].concat());
    }

    #[test]
    fn bad_compressed_parts_are_errors() {
        let head = vec![42, 0, 0, 0, 0, 0, 1, 0, 1, 0b1];
        let mut ev = head.clone();
        ev.extend(compress(b"some rows"));
        for cut in 0..ev.len() {
            assert!(uncompress(166, &ev[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_len = ev.clone();
        wrong_len[head.len() + 2] += 1;
        assert!(uncompress(166, &wrong_len).is_err());
        let mut not_zlib = ev.clone();
        not_zlib[head.len()] = 0x80 | 0x10 | 2;
        assert!(uncompress(166, &not_zlib).is_err());
        assert!(uncompress(23, &ev).is_err());
    }
}
