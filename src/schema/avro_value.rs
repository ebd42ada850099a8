//! tidemark values as Avro values of the schemas of [`super::avro_schema`], checked on the
//! way: a value that its column's schema cannot hold (a NaN in a `decimal`, more digits than its
//! precision, an integer out of an `int`'s range, a NULL in a column that is not nullable, the
//! unchanged-TOAST marker in a column that is not text or binary) is an error naming the
//! column, which the table's `on_error` policy then handles.

use apache_avro::types::Value as Avro;
use apache_avro::Decimal;

use crate::event::ColumnDef;
use crate::value::{render_text, text_form, ColumnType, Value, UNAVAILABLE_VALUE_MARKER};

/// Why a value does not fit its column's Avro schema.
fn misfit(column: &ColumnDef, why: impl std::fmt::Display) -> String {
    format!("column `{}`: {why}", column.name)
}

/// The big-endian two's complement bytes of the integer whose decimal digits are `digits`
/// (no sign, no point), negated when `negative`: the unscaled value of an Avro decimal.
fn twos_complement(digits: &str, negative: bool) -> Vec<u8> {
    // Base 10 to base 256 by repeated division of the digit string.
    let mut number: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    let mut bytes = Vec::new();
    while number.iter().any(|d| *d != 0) {
        let mut rem: u32 = 0;
        let mut next = Vec::with_capacity(number.len());
        for d in &number {
            let cur = rem * 10 + u32::from(*d);
            let q = cur / 256;
            rem = cur % 256;
            if !next.is_empty() || q != 0 {
                next.push(q as u8);
            }
        }
        bytes.push(rem as u8);
        number = next;
    }
    bytes.reverse();
    if bytes.is_empty() {
        bytes.push(0);
    }
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    if negative {
        // Two's complement: invert and add one.
        for b in bytes.iter_mut() {
            *b = !*b;
        }
        for b in bytes.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        // Drop a redundant leading 0xFF (the next byte already carries the sign).
        while bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0x80 != 0 {
            bytes.remove(0);
        }
    }
    bytes
}

/// The unscaled digits of decimal text at `scale`, checked against `precision`.
pub fn decimal_unscaled(text: &str, precision: u32, scale: u32) -> Result<Vec<u8>, String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "`{text}` is not a decimal number (a decimal schema holds no NaN or infinity)"
        ));
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > scale as usize {
        return Err(format!("`{text}` has more than {scale} decimal places"));
    }
    let mut digits = String::with_capacity(int.len() + scale as usize);
    digits.push_str(int.trim_start_matches('0'));
    digits.push_str(frac_trimmed);
    digits.extend(std::iter::repeat_n(
        '0',
        scale as usize - frac_trimmed.len(),
    ));
    let significant = digits.trim_start_matches('0');
    if significant.len() > precision as usize {
        return Err(format!("`{text}` has more than {precision} digits"));
    }
    // Up to 38 digits fit an i128: its bytes, without the long division.
    if significant.len() <= 38 {
        let mut n: i128 = 0;
        for d in significant.bytes() {
            n = n * 10 + i128::from(d - b'0');
        }
        return Ok(minimal_twos_complement(if negative { -n } else { n }));
    }
    Ok(twos_complement(significant, negative))
}

/// The fewest big-endian two's complement bytes that hold `n`.
fn minimal_twos_complement(n: i128) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let sign = if n < 0 { 0xFF } else { 0x00 };
    let mut start = 0;
    // Drop a leading sign byte while the next byte still carries the sign.
    while start + 1 < bytes.len()
        && bytes[start] == sign
        && (bytes[start + 1] & 0x80) == (sign & 0x80)
    {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// One value of a column whose type is `t`, not null.
fn plain(column: &ColumnDef, t: &ColumnType, v: &Value) -> Result<Avro, String> {
    let int32 = |i: i64| {
        i32::try_from(i).map_err(|_| misfit(column, format!("{i} does not fit an Avro int")))
    };
    let text = |v: &Value| text_form(v).or_else(|| render_text(v)).unwrap_or_default();
    Ok(match (t, v) {
        (ColumnType::Bool, Value::Bool(b)) => Avro::Boolean(*b),
        (ColumnType::Int16 | ColumnType::Int32, Value::Int(i)) => Avro::Int(int32(*i)?),
        (ColumnType::Int64, Value::Int(i)) => Avro::Long(*i),
        (ColumnType::UInt64, Value::UInt(u)) => {
            Avro::Decimal(Decimal::from(twos_complement(&u.to_string(), false)))
        }
        (ColumnType::Float32, Value::Float32(f)) => Avro::Float(*f),
        (ColumnType::Float64, Value::Float64(f)) => Avro::Double(*f),
        (
            ColumnType::Decimal {
                precision: Some(p),
                scale,
            },
            Value::Decimal(d),
        ) => Avro::Decimal(Decimal::from(
            decimal_unscaled(d, *p, scale.unwrap_or(0)).map_err(|e| misfit(column, e))?,
        )),
        (ColumnType::Bytes | ColumnType::Bits { .. }, Value::Bytes(b)) => Avro::Bytes(b.clone()),
        (ColumnType::Date, Value::Date(d)) => Avro::Date(*d),
        (ColumnType::Time { .. }, Value::Time(t)) => Avro::TimeMicros(*t),
        (ColumnType::Timestamp { .. }, Value::Timestamp(t)) => Avro::LocalTimestampMicros(*t),
        (ColumnType::TimestampTz, Value::TimestampTz(t)) => Avro::TimestampMicros(*t),
        (ColumnType::Uuid, Value::Uuid(u)) => Avro::Uuid(
            u.parse()
                .map_err(|e| misfit(column, format!("`{u}` is not a UUID: {e}")))?,
        ),
        (ColumnType::Array(item), Value::Array(items)) => Avro::Array(
            items
                .iter()
                .map(|i| match i {
                    Value::Null => Ok(Avro::Union(0, Box::new(Avro::Null))),
                    other => Ok(Avro::Union(1, Box::new(plain(column, item, other)?))),
                })
                .collect::<Result<_, String>>()?,
        ),
        (ColumnType::Geometry { .. }, Value::Geometry { srid, wkb }) => Avro::Record(vec![
            ("wkb".into(), Avro::Bytes(wkb.clone())),
            (
                "srid".into(),
                Avro::Union(
                    1,
                    Box::new(Avro::Int(i32::try_from(*srid).map_err(|_| {
                        misfit(column, format!("SRID {srid} does not fit an Avro int"))
                    })?)),
                ),
            ),
        ]),
        (t, v)
            if super::avro_schema::carried_as_text(t)
                && !matches!(
                    v,
                    Value::Bytes(_) | Value::Array(_) | Value::Geometry { .. }
                ) =>
        {
            Avro::String(text(v))
        }
        (t, v) => {
            return Err(misfit(
                column,
                format!("a {} value in a {t} column", value_kind(v)),
            ))
        }
    })
}

/// What kind of value `v` is, for errors (`text`, `temporal`, ...).
pub fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::UInt(_) => "integer",
        Value::Float32(_) | Value::Float64(_) => "floating-point",
        Value::Decimal(_) => "decimal",
        Value::Text(_) | Value::Enum(_) | Value::Uuid(_) => "text",
        Value::Bytes(_) => "binary",
        Value::Json(_) => "JSON",
        Value::Array(_) => "array",
        Value::Geometry { .. } => "geometry",
        Value::Unavailable => "not-in-the-log",
        _ => "temporal",
    }
}

/// One column's value as the field of a row record: a union branch when the column is
/// nullable. The unchanged-TOAST marker goes into text and binary columns only.
pub fn field(column: &ColumnDef, v: &Value) -> Result<Avro, String> {
    let value = match v {
        Value::Null if column.nullable => return Ok(Avro::Union(0, Box::new(Avro::Null))),
        Value::Null => return Err(misfit(column, "NULL in a column that is not nullable")),
        Value::Unavailable => match column.column_type {
            ColumnType::Text | ColumnType::Json | ColumnType::Other(_) => {
                Avro::String(UNAVAILABLE_VALUE_MARKER.into())
            }
            ColumnType::Bytes => Avro::Bytes(UNAVAILABLE_VALUE_MARKER.as_bytes().to_vec()),
            ref t => {
                return Err(misfit(
                    column,
                    format!("the log did not carry this {t} value (an unchanged TOAST value): set REPLICA IDENTITY FULL"),
                ))
            }
        },
        v => plain(column, &column.column_type, v)?,
    };
    Ok(if column.nullable {
        Avro::Union(1, Box::new(value))
    } else {
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{TableId, TableSchema};
    use crate::schema::avro_schema;
    use crate::value::JsonText;
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::writer::datum::GenericDatumWriter;
    use apache_avro::Schema;
    use std::sync::Arc;

    #[test]
    fn the_i128_path_agrees_with_the_long_division() {
        for text in [
            "0",
            "1",
            "127",
            "128",
            "255",
            "256",
            "32767",
            "32768",
            "65535",
            "99999999999999999999",
            "12345678901234567890123456789012345678",
        ] {
            for negative in [false, true] {
                let n: i128 = text.parse().unwrap();
                assert_eq!(
                    minimal_twos_complement(if negative { -n } else { n }),
                    twos_complement(text, negative && n != 0),
                    "{}{text}",
                    if negative { "-" } else { "" }
                );
            }
        }
    }

    #[test]
    fn decimal_bytes_are_twos_complement() {
        assert_eq!(twos_complement("0", false), [0]);
        assert_eq!(twos_complement("127", false), [127]);
        assert_eq!(twos_complement("128", false), [0, 128]);
        assert_eq!(twos_complement("1", true), [0xFF]);
        assert_eq!(twos_complement("128", true), [0x80]);
        assert_eq!(twos_complement("129", true), [0xFF, 0x7F]);
        assert_eq!(twos_complement("65536", false), [1, 0, 0]);
        assert_eq!(
            decimal_unscaled("-12.3400", 10, 4).unwrap(),
            twos_complement("123400", true)
        );
        assert_eq!(decimal_unscaled("1.5", 4, 2).unwrap(), [0, 150]);
        assert_eq!(decimal_unscaled("0.00", 4, 2).unwrap(), [0]);
        assert!(decimal_unscaled("NaN", 10, 2)
            .unwrap_err()
            .contains("not a decimal"));
        assert!(decimal_unscaled("1.234", 10, 2)
            .unwrap_err()
            .contains("decimal places"));
        assert!(decimal_unscaled("12345.6", 5, 1)
            .unwrap_err()
            .contains("5 digits"));
        // A 65-digit MySQL decimal.
        let big = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
        let bytes = decimal_unscaled(&big, 65, 30).unwrap();
        assert!(bytes.len() <= 28 && bytes[0] & 0x80 != 0);
    }

    #[test]
    fn a_row_of_every_type_encodes_and_decodes_under_its_schema() {
        use ColumnType as T;
        let cols: Vec<(&str, T, Value)> = vec![
            ("id", T::Int64, Value::Int(i64::MIN)),
            ("b", T::Bool, Value::Bool(true)),
            ("i2", T::Int16, Value::Int(-32768)),
            ("u8", T::UInt64, Value::UInt(u64::MAX)),
            ("f4", T::Float32, Value::Float32(1.5)),
            ("f8", T::Float64, Value::Float64(f64::NAN)),
            (
                "num",
                T::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
                Value::Decimal("-1234.5".into()),
            ),
            (
                "num_any",
                T::Decimal {
                    precision: None,
                    scale: None,
                },
                Value::Decimal("NaN".into()),
            ),
            ("tx", T::Text, Value::Text("héllo".into())),
            ("by", T::Bytes, Value::Bytes(vec![0, 255])),
            ("d", T::Date, Value::Date(-1)),
            ("t", T::Time { precision: None }, Value::Time(-1)),
            (
                "ttz",
                T::TimeTz,
                Value::TimeTz {
                    micros: 1,
                    offset_seconds: 3600,
                },
            ),
            (
                "ts",
                T::Timestamp { precision: None },
                Value::Timestamp(i64::MAX),
            ),
            (
                "tstz",
                T::TimestampTz,
                Value::TimestampTz(1_700_000_000_000_000),
            ),
            (
                "iv",
                T::Interval,
                Value::Interval {
                    months: 1,
                    days: 2,
                    micros: 3,
                },
            ),
            (
                "u",
                T::Uuid,
                Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
            ),
            (
                "j",
                T::Json,
                Value::Json(JsonText::parse(r#"{"a": 1}"#.into()).unwrap()),
            ),
            (
                "arr",
                T::Array(Box::new(T::Int32)),
                Value::Array(vec![Value::Int(1), Value::Null]),
            ),
            (
                "mood",
                T::Enum {
                    name: "m".into(),
                    labels: vec!["ok".into()],
                },
                Value::Enum("ok".into()),
            ),
            (
                "g",
                T::Geometry {
                    name: "point".into(),
                },
                Value::Geometry {
                    srid: 4326,
                    wkb: vec![1, 2],
                },
            ),
            ("toast", T::Text, Value::Unavailable),
            ("n", T::Int32, Value::Null),
        ];
        let table = Arc::new(TableSchema {
            id: TableId::new("public", "t"),
            columns: cols
                .iter()
                .enumerate()
                .map(|(i, (n, t, _))| ColumnDef {
                    name: n.to_string(),
                    column_type: t.clone(),
                    nullable: i > 0,
                })
                .collect(),
            primary_key: vec![0],
        });
        let route = crate::test_fixtures::route(
            "tm.public.t",
            table.clone(),
            vec![0],
            crate::config::Format::Json,
        );
        let envelope =
            Schema::parse(&avro_schema::value_schema(&route, "postgresql").unwrap()).unwrap();
        let Schema::Record(record) = &envelope else {
            panic!("a record")
        };
        let Schema::Union(before) = &record.fields[0].schema else {
            panic!("a union")
        };
        let row_schema = before.variants()[1].clone();
        let row = Avro::Record(
            table
                .columns
                .iter()
                .zip(&cols)
                .map(|(c, (_, _, v))| (avro_schema::avro_name(&c.name), field(c, v).unwrap()))
                .collect(),
        );
        let bytes = GenericDatumWriter::builder(&row_schema)
            .build()
            .unwrap()
            .write_value_to_vec(row)
            .unwrap_or_else(|e| panic!("{e}"));
        // The schema-less writer of the avro format writes the same bytes.
        let mut mine = Vec::new();
        for (c, (_, _, v)) in table.columns.iter().zip(&cols) {
            crate::schema::avro_binary::write(&mut mine, &field(c, v).unwrap()).unwrap();
        }
        assert_eq!(mine, bytes);
        let back = GenericDatumReader::builder(&row_schema)
            .build()
            .unwrap()
            .read_value(&mut bytes.as_slice())
            .unwrap();
        let Avro::Record(fields) = back else {
            panic!("a record")
        };
        let get = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("id"), Avro::Long(i64::MIN));
        assert_eq!(
            get("u8"),
            Avro::Union(
                1,
                Box::new(Avro::Decimal(Decimal::from(vec![
                    0, 255, 255, 255, 255, 255, 255, 255, 255
                ])))
            )
        );
        assert_eq!(
            get("num_any"),
            Avro::Union(1, Box::new(Avro::String("NaN".into())))
        );
        assert_eq!(
            get("j"),
            Avro::Union(1, Box::new(Avro::String(r#"{"a": 1}"#.into())))
        );
        assert_eq!(
            get("toast"),
            Avro::Union(1, Box::new(Avro::String(UNAVAILABLE_VALUE_MARKER.into())))
        );
        assert_eq!(get("n"), Avro::Union(0, Box::new(Avro::Null)));
        assert_eq!(
            get("ts"),
            Avro::Union(1, Box::new(Avro::LocalTimestampMicros(i64::MAX)))
        );
        assert_eq!(
            get("ttz"),
            Avro::Union(1, Box::new(Avro::String("00:00:00.000001+01:00".into())))
        );
    }

    #[test]
    fn misfits_name_the_column() {
        let col = |t: ColumnType, nullable| ColumnDef {
            name: "c".into(),
            column_type: t,
            nullable,
        };
        let dec = ColumnType::Decimal {
            precision: Some(5),
            scale: Some(2),
        };
        let e = field(&col(dec, true), &Value::Decimal("NaN".into())).unwrap_err();
        assert!(
            e.starts_with("column `c`: ") && e.contains("not a decimal"),
            "{e}"
        );
        let e = field(&col(ColumnType::Int32, false), &Value::Null).unwrap_err();
        assert!(e.contains("not nullable"), "{e}");
        let e = field(&col(ColumnType::Int32, true), &Value::Int(1 << 40)).unwrap_err();
        assert!(e.contains("does not fit an Avro int"), "{e}");
        let e = field(&col(ColumnType::Int32, true), &Value::Unavailable).unwrap_err();
        assert!(e.contains("REPLICA IDENTITY FULL"), "{e}");
        let e = field(&col(ColumnType::Date, true), &Value::Text("x".into())).unwrap_err();
        assert!(e.contains("a text value in a date column"), "{e}");
    }
}
