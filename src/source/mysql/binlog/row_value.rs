//! One column value of a row image, decoded from its binlog bytes by the column's TABLE_MAP
//! type, metadata, signedness and character set, into tidemark's [`Value`].
//!
//! Exactness: integers keep their sign and width (BIGINT UNSIGNED up to 2^64-1), DECIMAL keeps
//! its digits, times keep microseconds, TIME may be negative or above 24 hours, TIMESTAMP is
//! UTC. BIT(1) is a boolean and wider BITs are big-endian bytes; SET is its members joined by
//! `,`; ENUM is its label; BINARY(n) is padded back to n bytes with zeros (the binlog strips
//! them, SELECT does not); GEOMETRY is SRID + WKB. Zero dates become null (see
//! [`super::temporal`]).

use super::charset::{self, Charset, CharsetMap};
use super::column_type as t;
use super::reader::{ByteReader, DecodeResult};
use super::table_map::ColumnMeta;
use super::temporal::{self, Temporal};
use crate::value::{JsonText, Value};

/// What decoding a value noticed that the caller should tell the user about once per column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notice {
    /// A zero or partial date was emitted as null.
    ZeroDate(&'static str),
    /// Text in a charset tidemark does not decode was emitted as bytes.
    UndecodedCharset(String),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::ZeroDate(text) => write!(f, "zero or partial date {text} emitted as null"),
            Notice::UndecodedCharset(cs) => {
                write!(
                    f,
                    "text in charset {cs}, which tidemark does not decode, emitted as bytes"
                )
            }
        }
    }
}

/// Decodes one non-null value. `mariadb` tells how JSON columns are stored (MariaDB: text).
pub fn decode(
    r: &mut ByteReader<'_>,
    col: &ColumnMeta,
    charsets: &CharsetMap,
    notices: &mut Vec<Notice>,
) -> DecodeResult<Value> {
    let meta = col.ty.meta;
    let u = col.unsigned;
    Ok(match col.ty.code {
        t::TINY => {
            let v = r.uint_le(1, "TINYINT")?;
            Value::Int(if u {
                v as i64
            } else {
                i64::from(v as u8 as i8)
            })
        }
        t::SHORT => {
            let v = r.uint_le(2, "SMALLINT")?;
            Value::Int(if u {
                v as i64
            } else {
                i64::from(v as u16 as i16)
            })
        }
        t::INT24 => {
            let v = r.uint_le(3, "MEDIUMINT")? as i64;
            // Sign-extend 24 bits.
            Value::Int(if !u && v & 0x80_0000 != 0 {
                v - 0x100_0000
            } else {
                v
            })
        }
        t::LONG => {
            let v = r.uint_le(4, "INT")?;
            Value::Int(if u {
                v as i64
            } else {
                i64::from(v as u32 as i32)
            })
        }
        t::LONGLONG => {
            let v = r.u64_le("BIGINT")?;
            if u {
                Value::UInt(v)
            } else {
                Value::Int(v as i64)
            }
        }
        t::FLOAT => Value::Float32(f32::from_bits(r.u32_le("FLOAT")?)),
        t::DOUBLE => Value::Float64(f64::from_bits(r.u64_le("DOUBLE")?)),
        t::NEWDECIMAL => Value::Decimal(super::decimal::decode(r, (meta >> 8) as u8, meta as u8)?),
        t::YEAR => {
            let v = r.u8("YEAR")?;
            Value::Int(if v == 0 { 0 } else { 1900 + i64::from(v) })
        }
        t::NEWDATE | t::DATE => temporal_value(temporal::date(r)?, notices),
        t::TIME2 => temporal_value(temporal::time2(r, meta)?, notices),
        t::TIME => temporal_value(temporal::time_legacy(r)?, notices),
        t::DATETIME2 => temporal_value(temporal::datetime2(r, meta)?, notices),
        t::DATETIME => temporal_value(temporal::datetime_legacy(r)?, notices),
        t::TIMESTAMP2 => temporal_value(temporal::timestamp2(r, meta)?, notices),
        t::TIMESTAMP => temporal_value(temporal::timestamp_legacy(r)?, notices),
        t::BIT => {
            let (bytes, bits) = (usize::from(meta >> 8), usize::from(meta & 0xff));
            let n = bytes + usize::from(bits > 0);
            let raw = r.take(n, "BIT")?;
            if bytes == 0 && bits == 1 {
                Value::Bool(raw[0] & 1 == 1)
            } else {
                Value::Bytes(raw.to_vec())
            }
        }
        t::VARCHAR | t::VAR_STRING => {
            let len_bytes = if meta > 255 { 2 } else { 1 };
            let len = r.uint_le(len_bytes, "string length")? as usize;
            let raw = r.take(len, "string")?;
            text(raw, col, charsets, notices, r)?
        }
        t::STRING => {
            let len_bytes = if meta > 255 { 2 } else { 1 };
            let len = r.uint_le(len_bytes, "string length")? as usize;
            let raw = r.take(len, "string")?;
            match column_charset(col, charsets) {
                Charset::Binary => {
                    // BINARY(n): the binlog strips the trailing zero bytes.
                    let mut b = raw.to_vec();
                    if b.len() < usize::from(meta) {
                        b.resize(usize::from(meta), 0);
                    }
                    Value::Bytes(b)
                }
                _ => text(raw, col, charsets, notices, r)?,
            }
        }
        t::BLOB | t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB => {
            let len = r.uint_le(pack_len(r, meta)?, "BLOB length")? as usize;
            let raw = r.take(len, "BLOB")?;
            text(raw, col, charsets, notices, r)?
        }
        t::JSON => {
            let len = r.uint_le(pack_len(r, meta)?, "JSON length")? as usize;
            let at = r.offset();
            let raw = r.take(len, "JSON")?;
            let json =
                super::json_binary::to_json_text(raw).map_err(|e| super::reader::DecodeError {
                    what: e.what,
                    offset: at + e.offset,
                })?;
            Value::Json(JsonText::parse(json).map_err(|e| r.error(format!("JSON: {e}")))?)
        }
        t::GEOMETRY => {
            let len = r.uint_le(pack_len(r, meta)?, "GEOMETRY length")? as usize;
            let raw = r.take(len, "GEOMETRY")?;
            if raw.len() < 4 {
                return Err(r.error("GEOMETRY value shorter than its SRID"));
            }
            Value::Geometry {
                srid: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
                wkb: raw[4..].to_vec(),
            }
        }
        t::ENUM => {
            let n = r.uint_le(usize::from(meta.clamp(1, 2)), "ENUM index")? as usize;
            if n == 0 {
                // The "error value" MySQL stores for an invalid ENUM in non-strict mode.
                Value::Enum(String::new())
            } else {
                let label = col.labels.get(n - 1).ok_or_else(|| {
                    r.error(format!(
                        "ENUM index {n} but the column has {} labels",
                        col.labels.len()
                    ))
                })?;
                Value::Enum(label_text(label, col, charsets))
            }
        }
        t::SET => {
            let n = usize::from(meta).clamp(1, 8);
            let bits = r.uint_le(n, "SET bits")?;
            let mut members = Vec::new();
            for i in 0..64 {
                if bits & (1u64 << i) != 0 {
                    let label = col.labels.get(i).ok_or_else(|| {
                        r.error(format!(
                            "SET bit {i} but the column has {} members",
                            col.labels.len()
                        ))
                    })?;
                    members.push(label_text(label, col, charsets));
                }
            }
            Value::Text(members.join(","))
        }
        other => {
            return Err(r.error(format!(
                "column `{}` has binlog type {other} ({}), which tidemark cannot decode",
                col.name,
                t::type_name(other)
            )))
        }
    })
}

fn pack_len(r: &ByteReader<'_>, meta: u16) -> DecodeResult<usize> {
    match meta {
        1..=4 => Ok(usize::from(meta)),
        _ => Err(r.error(format!("length prefix of {meta} bytes"))),
    }
}

pub fn temporal_value(t: Temporal, notices: &mut Vec<Notice>) -> Value {
    match t {
        Temporal::Date(d) => Value::Date(d),
        Temporal::Time(us) => Value::Time(us),
        Temporal::DateTime(us) => Value::Timestamp(us),
        Temporal::Timestamp(us) => Value::TimestampTz(us),
        Temporal::Zero(text) => {
            notices.push(Notice::ZeroDate(text));
            Value::Null
        }
    }
}

pub fn column_charset(col: &ColumnMeta, charsets: &CharsetMap) -> Charset {
    match col.collation {
        Some(c) => charsets.get(c),
        // Without charset metadata a BLOB is bytes and a string is assumed UTF-8.
        None if matches!(
            col.ty.code,
            t::BLOB | t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB
        ) =>
        {
            Charset::Binary
        }
        None => Charset::Utf8,
    }
}

fn text(
    raw: &[u8],
    col: &ColumnMeta,
    charsets: &CharsetMap,
    notices: &mut Vec<Notice>,
    r: &ByteReader<'_>,
) -> DecodeResult<Value> {
    text_value(raw, col, charsets, notices).map_err(|e| r.error(e))
}

/// A character or binary column's bytes as the column's charset makes them: text, or bytes
/// for binary columns and charsets tidemark does not decode. Shared with the snapshot's
/// reader, so both give the same value for the same bytes.
pub fn text_value(
    raw: &[u8],
    col: &ColumnMeta,
    charsets: &CharsetMap,
    notices: &mut Vec<Notice>,
) -> Result<Value, String> {
    let cs = column_charset(col, charsets);
    match &cs {
        Charset::Binary => Ok(Value::Bytes(raw.to_vec())),
        Charset::Other(name) => {
            notices.push(Notice::UndecodedCharset(name.clone()));
            Ok(Value::Bytes(raw.to_vec()))
        }
        _ => charset::decode(raw, &cs).map(Value::Text).ok_or_else(|| {
            format!(
                "column `{}`: {} bytes are not valid {cs:?} text",
                col.name,
                raw.len()
            )
        }),
    }
}

pub fn label_text(label: &[u8], col: &ColumnMeta, charsets: &CharsetMap) -> String {
    let cs = column_charset(col, charsets);
    charset::decode(label, &cs).unwrap_or_else(|| String::from_utf8_lossy(label).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(code: u8, meta: u16, unsigned: bool, collation: Option<u32>) -> ColumnMeta {
        ColumnMeta {
            labels: vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
            ..ColumnMeta::for_test(code, meta, unsigned, collation)
        }
    }

    fn dec(c: &ColumnMeta, bytes: &[u8]) -> Value {
        let mut r = ByteReader::new(bytes);
        let v = decode(&mut r, c, &CharsetMap::default(), &mut Vec::new()).unwrap();
        assert!(r.is_empty(), "{} bytes left", r.remaining());
        v
    }

    #[test]
    fn integers_signed_and_unsigned() {
        assert_eq!(
            dec(&col(t::TINY, 0, false, None), &[0x80]),
            Value::Int(-128)
        );
        assert_eq!(dec(&col(t::TINY, 0, true, None), &[0xff]), Value::Int(255));
        assert_eq!(
            dec(&col(t::SHORT, 0, false, None), &[0x00, 0x80]),
            Value::Int(-32768)
        );
        assert_eq!(
            dec(&col(t::INT24, 0, false, None), &[0x00, 0x00, 0x80]),
            Value::Int(-8_388_608)
        );
        assert_eq!(
            dec(&col(t::INT24, 0, false, None), &[0xff, 0xff, 0xff]),
            Value::Int(-1)
        );
        assert_eq!(
            dec(&col(t::INT24, 0, true, None), &[0xff, 0xff, 0xff]),
            Value::Int(16_777_215)
        );
        assert_eq!(
            dec(&col(t::LONG, 0, true, None), &[0xff; 4]),
            Value::Int(4_294_967_295)
        );
        assert_eq!(
            dec(&col(t::LONG, 0, false, None), &[0xff; 4]),
            Value::Int(-1)
        );
        assert_eq!(
            dec(&col(t::LONGLONG, 0, true, None), &[0xff; 8]),
            Value::UInt(u64::MAX)
        );
        assert_eq!(
            dec(
                &col(t::LONGLONG, 0, false, None),
                &[0, 0, 0, 0, 0, 0, 0, 0x80]
            ),
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn strings_by_charset() {
        let utf8 = col(t::VARCHAR, 40, false, Some(45));
        assert_eq!(
            dec(&utf8, &[4, 0xf0, 0x9f, 0x98, 0x80]),
            Value::Text("😀".into())
        );
        let latin1 = col(t::VARCHAR, 300, false, Some(8));
        assert_eq!(dec(&latin1, &[2, 0, b'e', 0xe9]), Value::Text("eé".into()));
        let binary = col(t::STRING, 4, false, Some(63));
        assert_eq!(dec(&binary, &[2, 1, 0]), Value::Bytes(vec![1, 0, 0, 0]));
        let blob = col(t::BLOB, 2, false, Some(63));
        assert_eq!(dec(&blob, &[2, 0, 0xff, 0x00]), Value::Bytes(vec![0xff, 0]));
        let bad = col(t::VARCHAR, 40, false, Some(45));
        let e = decode(
            &mut ByteReader::new(&[1, 0xff]),
            &bad,
            &CharsetMap::default(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.what.contains("column `c`"), "{e}");
    }

    #[test]
    fn enum_set_bit_year_geometry() {
        assert_eq!(
            dec(&col(t::ENUM, 1, false, Some(45)), &[2]),
            Value::Enum("b".into())
        );
        assert_eq!(
            dec(&col(t::SET, 1, false, Some(45)), &[0b101]),
            Value::Text("a,c".into())
        );
        assert_eq!(
            dec(&col(t::SET, 1, false, Some(45)), &[0]),
            Value::Text(String::new())
        );
        assert!(decode(
            &mut ByteReader::new(&[9]),
            &col(t::ENUM, 1, false, None),
            &CharsetMap::default(),
            &mut Vec::new()
        )
        .is_err());
        assert_eq!(dec(&col(t::BIT, 1, false, None), &[1]), Value::Bool(true));
        assert_eq!(
            dec(&col(t::BIT, 1 << 8 | 2, false, None), &[0x02, 0x01]),
            Value::Bytes(vec![2, 1])
        );
        assert_eq!(dec(&col(t::YEAR, 0, false, None), &[124]), Value::Int(2024));
        assert_eq!(dec(&col(t::YEAR, 0, false, None), &[0]), Value::Int(0));
        let g = dec(
            &col(t::GEOMETRY, 4, false, None),
            &[6, 0, 0, 0, 0xe6, 0x10, 0, 0, 1, 2],
        );
        assert_eq!(
            g,
            Value::Geometry {
                srid: 4326,
                wkb: vec![1, 2]
            }
        );
    }

    #[test]
    fn zero_dates_become_null_with_a_notice() {
        let mut notices = Vec::new();
        let v = decode(
            &mut ByteReader::new(&[0, 0, 0]),
            &col(t::NEWDATE, 0, false, None),
            &CharsetMap::default(),
            &mut notices,
        )
        .unwrap();
        assert_eq!(v, Value::Null);
        assert_eq!(notices, vec![Notice::ZeroDate("0000-00-00")]);
    }

    #[test]
    fn mysql_json_is_decoded() {
        let doc = super::super::json_binary::tests::encode(&serde_json::json!({"a": [1, "x"]}));
        let mut bytes = vec![doc.len() as u8, 0, 0, 0];
        bytes.extend(&doc);
        match dec(&col(t::JSON, 4, false, None), &bytes) {
            Value::Json(j) => assert_eq!(j.get(), r#"{"a":[1,"x"]}"#),
            other => panic!("{other:?}"),
        }
    }
}
