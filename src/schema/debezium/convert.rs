//! tidemark values as the Connect values of their `debezium`-profile types ([`ConnectType`]).
//!
//! A value its type cannot hold (a NaN in a `precise` decimal, more digits than the column's
//! precision, the unchanged-TOAST marker in a column that is neither text nor binary) is an
//! error naming the column; the table's `on_error` policy then handles the event.

use std::borrow::Cow;

use super::text;
use super::types::{ConnectType, Conversion, Scalar, Shape};
use crate::config::DecimalHandling;
use crate::schema::avro_value::{decimal_unscaled, value_kind};
use crate::value::{
    render_text, Value, MICROS_PER_DAY, TIMESTAMP_INFINITY, TIMESTAMP_NEG_INFINITY,
};

/// Debezium's placeholder for a value the log did not carry (its
/// `unavailable.value.placeholder` default).
pub const DEBEZIUM_UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";

/// Days per month in Debezium's `MicroDuration` (365.25 / 12).
const DAYS_PER_MONTH: f64 = 30.4375;

/// A Kafka Connect value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectValue<'a> {
    Null,
    Boolean(bool),
    /// Any Connect integer type.
    Int(i64),
    Float32(f32),
    Float64(f64),
    String(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Array(Vec<ConnectValue<'a>>),
    /// Field values in the struct type's field order.
    Struct(Vec<ConnectValue<'a>>),
}

/// `v` of a column of Connect type `t`; the error says why it does not fit (the caller adds
/// the column's name).
pub fn convert<'a>(t: &ConnectType, v: &'a Value) -> Result<ConnectValue<'a>, String> {
    use ConnectValue as C;
    let misfit = || {
        format!(
            "a {} value where {} was expected",
            value_kind(v),
            t.name.unwrap_or(match &t.shape {
                Shape::Scalar(s) => s.connect_name(),
                Shape::Array(_) => "an array",
                Shape::Struct(_) => "a struct",
            })
        )
    };
    if matches!(v, Value::Null) {
        return Ok(C::Null);
    }
    if matches!(v, Value::Unavailable) {
        return match t.shape {
            Shape::Scalar(Scalar::String) => Ok(C::String(DEBEZIUM_UNAVAILABLE_VALUE.into())),
            Shape::Scalar(Scalar::Bytes) => {
                Ok(C::Bytes(DEBEZIUM_UNAVAILABLE_VALUE.as_bytes().into()))
            }
            _ => Err(
                "the log did not carry this value (an unchanged TOAST value) and its type \
                 has no placeholder: set REPLICA IDENTITY FULL on the table"
                    .into(),
            ),
        };
    }
    Ok(match (t.conversion, v) {
        (Conversion::Same, Value::Bool(b)) => C::Boolean(*b),
        (Conversion::Same, Value::Int(i)) => C::Int(*i),
        (Conversion::Same, Value::Float32(f)) => C::Float32(*f),
        (Conversion::Same, Value::Float64(f)) => C::Float64(*f),
        (Conversion::Same, Value::Bytes(b)) => C::Bytes(Cow::Borrowed(b)),
        (
            Conversion::Same | Conversion::JsonText,
            Value::Text(s) | Value::Enum(s) | Value::Uuid(s) | Value::Decimal(s),
        ) => C::String(Cow::Borrowed(s)),
        (Conversion::JsonText | Conversion::Same, Value::Json(j)) => C::String(j.get().into()),
        (Conversion::Date, Value::Date(d)) => C::Int(i64::from(*d)),
        (Conversion::TimeMillis, Value::Time(t)) => C::Int(t.div_euclid(1000)),
        (Conversion::TimeMicros, Value::Time(t)) => C::Int(*t),
        (Conversion::TimestampMillis, Value::Timestamp(t)) => C::Int(match *t {
            TIMESTAMP_INFINITY | TIMESTAMP_NEG_INFINITY => *t,
            t => t.div_euclid(1000),
        }),
        (Conversion::TimestampMicros, Value::Timestamp(t)) => C::Int(*t),
        (Conversion::ZonedTimestamp, Value::TimestampTz(_)) => {
            C::String(trim_fraction(render_text(v).unwrap_or_default()).into())
        }
        (
            Conversion::ZonedTime,
            Value::TimeTz {
                micros,
                offset_seconds,
            },
        ) => {
            let utc = (micros - i64::from(*offset_seconds) * 1_000_000).rem_euclid(MICROS_PER_DAY);
            let text = render_text(&Value::TimeTz {
                micros: utc,
                offset_seconds: 0,
            });
            C::String(trim_fraction(text.unwrap_or_default()).into())
        }
        (
            Conversion::MicroDuration,
            Value::Interval {
                months,
                days,
                micros,
            },
        ) => C::Int(micro_duration(*months, *days, *micros)),
        (Conversion::DecimalBytes { precision, scale }, Value::Decimal(d)) => {
            C::Bytes(decimal_unscaled(d, precision, scale)?.into())
        }
        (Conversion::DecimalBytes { .. }, Value::UInt(u)) => {
            C::Bytes(decimal_unscaled(&u.to_string(), 20, 0)?.into())
        }
        (Conversion::DecimalString, Value::Decimal(d)) => C::String(Cow::Borrowed(d)),
        (Conversion::DecimalDouble, Value::Decimal(d)) => C::Float64(decimal_double(d)?),
        (Conversion::VariableScaleDecimal, Value::Decimal(d)) => {
            let scale = d.split_once('.').map_or(0, |(_, f)| f.len());
            let scale = u32::try_from(scale).map_err(|_| format!("`{d}` has too many digits"))?;
            C::Struct(vec![
                C::Int(i64::from(scale)),
                C::Bytes(decimal_unscaled(d, u32::MAX, scale)?.into()),
            ])
        }
        (Conversion::Money(handling), Value::Text(s)) => {
            let digits = text::money_digits(s)?;
            match handling {
                DecimalHandling::Precise => {
                    C::Bytes(decimal_unscaled(&digits, u32::MAX, 2)?.into())
                }
                DecimalHandling::String => C::String(digits.into()),
                DecimalHandling::Double => C::Float64(decimal_double(&digits)?),
            }
        }
        (Conversion::Hstore, Value::Text(s)) => C::String(text::hstore_json(s)?.into()),
        (Conversion::Point, Value::Text(s)) => {
            let (x, y) = text::point(s)?;
            C::Struct(vec![
                C::Float64(x),
                C::Float64(y),
                C::Bytes(point_wkb(x, y).into()),
                C::Null,
            ])
        }
        (Conversion::Geometry, Value::Geometry { srid, wkb }) => {
            C::Struct(vec![C::Bytes(Cow::Borrowed(wkb)), C::Int(i64::from(*srid))])
        }
        (Conversion::BitsLittleEndian, Value::Bytes(b)) => {
            C::Bytes(b.iter().rev().copied().collect::<Vec<u8>>().into())
        }
        (Conversion::BitStringLittleEndian { bytes }, Value::Text(s)) => {
            C::Bytes(text::bit_string_little_endian(s, bytes)?.into())
        }
        (Conversion::BitStringBool, Value::Text(s)) => C::Boolean(match s.as_str() {
            "1" => true,
            "0" => false,
            _ => return Err(format!("`{s}` is not a one-bit string")),
        }),
        (Conversion::Array, Value::Array(items)) => {
            let Shape::Array(item) = &t.shape else {
                return Err(misfit());
            };
            C::Array(
                items
                    .iter()
                    .map(|i| convert(item, i))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => return Err(misfit()),
    })
}

/// Debezium's `MicroDuration` of a PostgreSQL interval: months of 30.4375 days, computed in
/// doubles from hours, minutes and seconds as Debezium does, so the results agree.
fn micro_duration(months: i32, days: i32, micros: i64) -> i64 {
    let hours = micros / 3_600_000_000;
    let minutes = (micros % 3_600_000_000) / 60_000_000;
    let seconds = (micros % 60_000_000) as f64 / 1e6;
    let days = f64::from(months) * DAYS_PER_MONTH + f64::from(days);
    let total = ((days * 24.0 + hours as f64) * 60.0 + minutes as f64) * 60.0 + seconds;
    (total * 1e6) as i64
}

fn decimal_double(d: &str) -> Result<f64, String> {
    match d {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => d
            .parse()
            .map_err(|_| format!("`{d}` is not a decimal number")),
    }
}

/// The WKB of a point, as Debezium builds it: little-endian, type 1, x, y.
fn point_wkb(x: f64, y: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(21);
    out.push(1);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&x.to_le_bytes());
    out.extend_from_slice(&y.to_le_bytes());
    out
}

/// ISO 8601 text with the fraction's trailing zeros removed (`12:00:00.500000Z` becomes
/// `12:00:00.5Z`), as Java's ISO formatter writes it.
fn trim_fraction(mut text: String) -> String {
    let Some(dot) = text.rfind('.') else {
        return text;
    };
    let end = text[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(text.len(), |i| dot + 1 + i);
    let digits = text[dot + 1..end].trim_end_matches('0').len();
    let cut = if digits == 0 { dot } else { dot + 1 + digits };
    text.replace_range(cut..end, "");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{ColumnType, JsonText};

    fn pg(t: ColumnType, v: &Value) -> ConnectValue<'_> {
        convert(&ConnectType::of(&t, false, DecimalHandling::Precise), v).unwrap()
    }

    #[test]
    fn temporal_values_in_debeziums_units() {
        let ts = |p| ColumnType::Timestamp { precision: p };
        assert_eq!(
            pg(ColumnType::Date, &Value::Date(19_000)),
            ConnectValue::Int(19_000)
        );
        assert_eq!(
            pg(ts(Some(3)), &Value::Timestamp(1_700_000_000_123_000)),
            ConnectValue::Int(1_700_000_000_123)
        );
        assert_eq!(
            pg(ts(None), &Value::Timestamp(-1)),
            ConnectValue::Int(-1),
            "micro timestamps keep their microseconds"
        );
        assert_eq!(
            pg(
                ColumnType::Time { precision: Some(2) },
                &Value::Time(3_600_000_000 + 120_000)
            ),
            ConnectValue::Int(3_600_120)
        );
        assert_eq!(
            pg(ColumnType::TimestampTz, &Value::TimestampTz(1_500_000)),
            ConnectValue::String("1970-01-01T00:00:01.5Z".into())
        );
        assert_eq!(
            pg(ColumnType::TimestampTz, &Value::TimestampTz(0)),
            ConnectValue::String("1970-01-01T00:00:00Z".into())
        );
        assert_eq!(
            pg(
                ColumnType::TimeTz,
                &Value::TimeTz {
                    micros: 3_600_000_000,
                    offset_seconds: 7200
                }
            ),
            ConnectValue::String("23:00:00Z".into())
        );
        // 1 mon 2 days 03:04:05.5 as Debezium computes it.
        let months = 30.4375_f64 + 2.0;
        let expected = ((((months * 24.0 + 3.0) * 60.0 + 4.0) * 60.0 + 5.5) * 1e6) as i64;
        assert_eq!(
            pg(
                ColumnType::Interval,
                &Value::Interval {
                    months: 1,
                    days: 2,
                    micros: 11_045_500_000
                }
            ),
            ConnectValue::Int(expected)
        );
    }

    #[test]
    fn decimals_bits_and_text_types() {
        let d = ColumnType::Decimal {
            precision: Some(6),
            scale: Some(2),
        };
        assert_eq!(
            pg(d.clone(), &Value::Decimal("-1.5".into())),
            ConnectValue::Bytes(vec![0xFF, 0x6A].into()) // -150
        );
        assert!(convert(
            &ConnectType::of(&d, false, DecimalHandling::Precise),
            &Value::Decimal("NaN".into())
        )
        .is_err());
        let free = ColumnType::Decimal {
            precision: None,
            scale: None,
        };
        assert_eq!(
            pg(free, &Value::Decimal("12.340".into())),
            ConnectValue::Struct(vec![
                ConnectValue::Int(3),
                ConnectValue::Bytes(vec![0x30, 0x34].into()) // 12340
            ])
        );
        assert_eq!(
            pg(
                ColumnType::Other("money".into()),
                &Value::Text("-$1,234.50".into())
            ),
            ConnectValue::Bytes(vec![0xFE, 0x1D, 0xC6].into()) // -123450
        );
        assert_eq!(
            convert(
                &ConnectType::of(
                    &ColumnType::Bits { length: 12 },
                    true,
                    DecimalHandling::Precise
                ),
                &Value::Bytes(vec![0x0A, 0xBC])
            )
            .unwrap(),
            ConnectValue::Bytes(vec![0xBC, 0x0A].into())
        );
        assert_eq!(
            pg(
                ColumnType::BitString {
                    length: Some(10),
                    varying: false
                },
                &Value::Text("1000000001".into())
            ),
            ConnectValue::Bytes(vec![0x01, 0x02].into())
        );
        let json = Value::Json(JsonText::parse("{\"a\": 1}".into()).unwrap());
        assert_eq!(
            pg(ColumnType::Json, &json),
            ConnectValue::String("{\"a\": 1}".into())
        );
        assert_eq!(
            pg(ColumnType::Text, &Value::Unavailable),
            ConnectValue::String(DEBEZIUM_UNAVAILABLE_VALUE.into())
        );
        assert!(convert(
            &ConnectType::of(&ColumnType::Int32, false, DecimalHandling::Precise),
            &Value::Unavailable
        )
        .is_err());
    }

    #[test]
    fn decimal_handling_string_and_double() {
        let d = ColumnType::Decimal {
            precision: Some(6),
            scale: Some(2),
        };
        let v = Value::Decimal("-1.50".into());
        let s = ConnectType::of(&d, true, DecimalHandling::String);
        assert_eq!(
            convert(&s, &v).unwrap(),
            ConnectValue::String("-1.50".into())
        );
        let f = ConnectType::of(&d, true, DecimalHandling::Double);
        assert_eq!(convert(&f, &v).unwrap(), ConnectValue::Float64(-1.5));
        let nan = Value::Decimal("NaN".into());
        assert!(matches!(convert(&f, &nan).unwrap(), ConnectValue::Float64(x) if x.is_nan()));
        let money = ConnectType::of(
            &ColumnType::Other("money".into()),
            false,
            DecimalHandling::String,
        );
        assert_eq!(
            convert(&money, &Value::Text("$1,000.25".into())).unwrap(),
            ConnectValue::String("1000.25".into())
        );
    }

    #[test]
    fn fractions_lose_trailing_zeros_only() {
        assert_eq!(trim_fraction("10:00:00.120000Z".into()), "10:00:00.12Z");
        assert_eq!(trim_fraction("10:00:00.000000Z".into()), "10:00:00Z");
        assert_eq!(trim_fraction("10:00:00Z".into()), "10:00:00Z");
        assert_eq!(trim_fraction("infinity".into()), "infinity");
    }
}
