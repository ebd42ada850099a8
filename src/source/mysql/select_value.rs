//! One column value of a snapshot chunk, as the server sends it in the binary protocol (a
//! prepared `SELECT`), decoded into the same [`Value`] that [`super::binlog::row_value`] makes of the
//! same value in the binlog: the snapshot's `op=r` rows and the stream's changes must agree
//! value for value (the interleaver matches keys by value, and consumers compare them).
//!
//! What makes them agree: the session reads with `time_zone = '+00:00'` (TIMESTAMP arrives as
//! UTC, as the binlog stores it) and `character_set_results = NULL` (text arrives as the
//! column's own bytes, decoded by the same charset code as the binlog's), FLOAT and DOUBLE
//! arrive as binary floats (the text protocol would round FLOAT), DECIMAL as the server's
//! exact text (the binlog decoder writes the same digits), zero dates become null through the
//! same rule, and MySQL's JSON text is re-written compactly as the binary-JSON decoder writes it
//! (MariaDB's JSON is text and passes through as text). The column metadata comes from `information_schema`, mapped to the types a
//! TABLE_MAP event would carry ([`super::snapshot`]), so the table shape matches too.

use mysql_async::Value as Wire;

use super::binlog::charset::{self, CharsetMap};
use super::binlog::column_type as t;
use super::binlog::row_value::{label_text, temporal_value, text_value, Notice};
use super::binlog::table_map::ColumnMeta;
use super::binlog::temporal::{self, Temporal};
use crate::value::{JsonText, Value, MICROS_PER_DAY};

/// Decodes one value of column `col`; the error names what did not fit.
pub fn decode(
    wire: Wire,
    col: &ColumnMeta,
    charsets: &CharsetMap,
    notices: &mut Vec<Notice>,
) -> Result<Value, String> {
    let unexpected = |w: &Wire| {
        format!(
            "column `{}` ({}): the server sent {w:?}",
            col.name,
            t::type_name(col.ty.code)
        )
    };
    if let Wire::NULL = wire {
        return Ok(Value::Null);
    }
    Ok(match col.ty.code {
        t::TINY | t::SHORT | t::INT24 | t::LONG | t::YEAR => match wire {
            Wire::Int(i) => Value::Int(i),
            Wire::UInt(u) => Value::Int(i64::try_from(u).map_err(|_| unexpected(&wire))?),
            w => return Err(unexpected(&w)),
        },
        t::LONGLONG if col.unsigned => match wire {
            Wire::UInt(u) => Value::UInt(u),
            Wire::Int(i) => Value::UInt(u64::try_from(i).map_err(|_| unexpected(&wire))?),
            w => return Err(unexpected(&w)),
        },
        t::LONGLONG => match wire {
            Wire::Int(i) => Value::Int(i),
            Wire::UInt(u) => Value::Int(i64::try_from(u).map_err(|_| unexpected(&wire))?),
            w => return Err(unexpected(&w)),
        },
        t::FLOAT => match wire {
            Wire::Float(f) => Value::Float32(f),
            w => return Err(unexpected(&w)),
        },
        t::DOUBLE => match wire {
            Wire::Double(d) => Value::Float64(d),
            w => return Err(unexpected(&w)),
        },
        t::NEWDECIMAL => {
            match wire {
                Wire::Bytes(b) => Value::Decimal(String::from_utf8(b).map_err(|e| {
                    format!("column `{}`: DECIMAL text is not ASCII: {e}", col.name)
                })?),
                w => return Err(unexpected(&w)),
            }
        }
        t::DATE | t::NEWDATE => match wire {
            Wire::Date(y, m, d, ..) => temporal_value(
                temporal::days(u32::from(y), u32::from(m), u32::from(d))
                    .map_or(Temporal::Zero(temporal::ZERO_DATE), Temporal::Date),
                notices,
            ),
            w => return Err(unexpected(&w)),
        },
        t::DATETIME | t::DATETIME2 | t::TIMESTAMP | t::TIMESTAMP2 => match wire {
            Wire::Date(y, mo, d, h, mi, s, us) => {
                let at = temporal::days(u32::from(y), u32::from(mo), u32::from(d)).map(|days| {
                    i64::from(days) * MICROS_PER_DAY
                        + (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000
                        + i64::from(us)
                });
                let tz = matches!(col.ty.code, t::TIMESTAMP | t::TIMESTAMP2);
                temporal_value(
                    match at {
                        None => Temporal::Zero(temporal::ZERO_DATETIME),
                        Some(us) if tz => Temporal::Timestamp(us),
                        Some(us) => Temporal::DateTime(us),
                    },
                    notices,
                )
            }
            w => return Err(unexpected(&w)),
        },
        t::TIME | t::TIME2 => match wire {
            Wire::Time(negative, days, h, m, s, us) => {
                let micros = ((i64::from(days) * 24 + i64::from(h)) * 3600
                    + i64::from(m) * 60
                    + i64::from(s))
                    * 1_000_000
                    + i64::from(us);
                Value::Time(if negative { -micros } else { micros })
            }
            w => return Err(unexpected(&w)),
        },
        _ => {
            let Wire::Bytes(raw) = wire else {
                return Err(unexpected(&wire));
            };
            bytes_value(raw, col, charsets, notices)?
        }
    })
}

/// Columns the binary protocol sends as bytes.
fn bytes_value(
    mut raw: Vec<u8>,
    col: &ColumnMeta,
    charsets: &CharsetMap,
    notices: &mut Vec<Notice>,
) -> Result<Value, String> {
    Ok(match col.ty.code {
        t::BIT => {
            let (bytes, bits) = (col.ty.meta >> 8, col.ty.meta & 0xff);
            if bytes == 0 && bits == 1 {
                Value::Bool(raw.last().is_some_and(|b| b & 1 == 1))
            } else {
                Value::Bytes(raw)
            }
        }
        t::STRING
            if charset::Charset::Binary
                == super::binlog::row_value::column_charset(col, charsets) =>
        {
            // BINARY(n): the server pads to n bytes; so does the binlog decoder.
            if raw.len() < usize::from(col.ty.meta) {
                raw.resize(usize::from(col.ty.meta), 0);
            }
            Value::Bytes(raw)
        }
        _ if col.ty.is_character(false) => text_value(&raw, col, charsets, notices)?,
        t::JSON => {
            // MySQL's JSON type: the server writes `{"a": [1, 2]}`, the binlog decoder (from
            // the binary form) `{"a":[1,2]}`; re-written compactly, members in the server's
            // order, they agree.
            let doc: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| format!("column `{}`: JSON: {e}", col.name))?;
            Value::Json(
                JsonText::parse(doc.to_string())
                    .map_err(|e| format!("column `{}`: JSON: {e}", col.name))?,
            )
        }
        t::ENUM => Value::Enum(label_text(&raw, col, charsets)),
        t::SET => Value::Text(label_text(&raw, col, charsets)),
        t::GEOMETRY => {
            if raw.len() < 4 {
                return Err(format!(
                    "column `{}`: GEOMETRY value shorter than its SRID",
                    col.name
                ));
            }
            Value::Geometry {
                srid: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
                wkb: raw[4..].to_vec(),
            }
        }
        other => {
            return Err(format!(
                "column `{}` has type {} ({other}), which the snapshot cannot read",
                col.name,
                t::type_name(other)
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(code: u8, meta: u16, unsigned: bool, collation: Option<u32>) -> ColumnMeta {
        ColumnMeta::for_test(code, meta, unsigned, collation)
    }

    fn dec(c: &ColumnMeta, w: Wire) -> Value {
        decode(w, c, &CharsetMap::default(), &mut Vec::new()).unwrap()
    }

    #[test]
    fn numbers_keep_width_and_sign() {
        assert_eq!(
            dec(&col(t::TINY, 0, false, None), Wire::Int(-128)),
            Value::Int(-128)
        );
        assert_eq!(
            dec(&col(t::LONG, 0, true, None), Wire::UInt(4_294_967_295)),
            Value::Int(4_294_967_295)
        );
        assert_eq!(
            dec(&col(t::LONGLONG, 0, true, None), Wire::UInt(u64::MAX)),
            Value::UInt(u64::MAX)
        );
        assert_eq!(
            dec(&col(t::FLOAT, 4, false, None), Wire::Float(1.1)),
            Value::Float32(1.1)
        );
        assert_eq!(
            dec(
                &col(t::NEWDECIMAL, 10 << 8 | 2, false, None),
                Wire::Bytes(b"-0.50".to_vec())
            ),
            Value::Decimal("-0.50".into())
        );
        assert!(decode(
            Wire::Double(1.0),
            &col(t::LONG, 0, false, None),
            &CharsetMap::default(),
            &mut Vec::new()
        )
        .is_err());
    }

    #[test]
    fn temporals_match_the_binlog_decoder() {
        let mut notices = Vec::new();
        let c = col(t::TIMESTAMP2, 6, false, None);
        let v = decode(
            Wire::Date(1970, 1, 2, 0, 0, 1, 5),
            &c,
            &CharsetMap::default(),
            &mut notices,
        )
        .unwrap();
        assert_eq!(v, Value::TimestampTz(MICROS_PER_DAY + 1_000_005));
        let zero = decode(
            Wire::Date(0, 0, 0, 0, 0, 0, 0),
            &c,
            &CharsetMap::default(),
            &mut notices,
        )
        .unwrap();
        assert_eq!((zero, notices.len()), (Value::Null, 1));
        assert_eq!(
            dec(
                &col(t::TIME2, 0, false, None),
                Wire::Time(true, 1, 2, 0, 0, 0)
            ),
            Value::Time(-(26 * 3600) * 1_000_000)
        );
        assert_eq!(
            dec(
                &col(t::NEWDATE, 0, false, None),
                Wire::Date(1970, 1, 11, 0, 0, 0, 0)
            ),
            Value::Date(10)
        );
    }

    #[test]
    fn bytes_by_type_and_charset() {
        assert_eq!(
            dec(&col(t::BIT, 1, false, None), Wire::Bytes(vec![1])),
            Value::Bool(true)
        );
        assert_eq!(
            dec(
                &col(t::BIT, 1 << 8 | 2, false, None),
                Wire::Bytes(vec![1, 2])
            ),
            Value::Bytes(vec![1, 2])
        );
        assert_eq!(
            dec(&col(t::STRING, 4, false, Some(63)), Wire::Bytes(vec![1])),
            Value::Bytes(vec![1, 0, 0, 0])
        );
        assert_eq!(
            dec(
                &col(t::VARCHAR, 40, false, Some(45)),
                Wire::Bytes("é".into())
            ),
            Value::Text("é".into())
        );
        // latin1 (collation 8) as Windows-1252, like the binlog decoder.
        assert_eq!(
            dec(
                &col(t::VARCHAR, 40, false, Some(8)),
                Wire::Bytes(vec![0x80])
            ),
            Value::Text("€".into())
        );
        assert_eq!(
            dec(
                &col(t::ENUM, 1, false, Some(45)),
                Wire::Bytes(b"b".to_vec())
            ),
            Value::Enum("b".into())
        );
        assert_eq!(
            dec(
                &col(t::SET, 1, false, Some(45)),
                Wire::Bytes(b"a,c".to_vec())
            ),
            Value::Text("a,c".into())
        );
        let json = dec(
            &col(t::JSON, 4, false, None),
            Wire::Bytes(br#"{"b": [1, "ab"], "a": 2.5}"#.to_vec()),
        );
        let compact = JsonText::parse(r#"{"b":[1,"ab"],"a":2.5}"#.into()).unwrap();
        assert_eq!(json, Value::Json(compact));
        assert_eq!(
            dec(
                &col(t::GEOMETRY, 4, false, None),
                Wire::Bytes(vec![1, 0, 0, 0, 9])
            ),
            Value::Geometry {
                srid: 1,
                wkb: vec![9]
            }
        );
    }
}
