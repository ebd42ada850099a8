//! Typed column values and column types, shared by every source and stage.
//!
//! Owns: the in-memory representation of one column value and of one column's type, and the
//! exact JSON rendering of a value (used by the Debezium JSON envelope).
//! Must not: know any source's wire format (sources convert into these types) or any sink.
//!
//! Exactness rules: integers stay integers (unsigned 64-bit too), decimals keep their digits
//! as written by the database, times keep microseconds, JSON stays the JSON text the database
//! produced, binary is base64 in JSON.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{Datelike, NaiveDate};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::value::RawValue;

/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;
/// PostgreSQL's `infinity` timestamp, and ours.
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// PostgreSQL's `-infinity` timestamp, and ours.
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;
/// PostgreSQL's `infinity` date, and ours.
pub const DATE_INFINITY: i32 = i32::MAX;
/// PostgreSQL's `-infinity` date, and ours.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;

/// The JSON string that stands for a value the log did not carry (PostgreSQL's unchanged
/// TOAST value when no old tuple holds it). Never rendered as null, so a consumer can tell
/// "unchanged and unknown" from "set to NULL".
pub const UNAVAILABLE_VALUE_MARKER: &str = "__tidemark_unavailable_value";

/// One column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any signed integer up to 64 bits.
    Int(i64),
    /// Unsigned 64-bit integers (MySQL `BIGINT UNSIGNED`).
    UInt(u64),
    Float32(f32),
    Float64(f64),
    /// Exact decimal digits as the database wrote them (`-12.3400`), or `NaN`, `Infinity`,
    /// `-Infinity`.
    Decimal(String),
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01; [`DATE_INFINITY`] / [`DATE_NEG_INFINITY`] for the infinities.
    Date(i32),
    /// Microseconds since midnight (`24:00:00` is allowed). MySQL `TIME` is a signed duration
    /// of up to 838:59:59: it may be negative or above a day.
    Time(i64),
    /// Microseconds since midnight and the UTC offset in seconds (east positive).
    TimeTz {
        micros: i64,
        offset_seconds: i32,
    },
    /// A timestamp without time zone, microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// An instant, microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// An interval kept in its three independent parts, as PostgreSQL does.
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
    /// A UUID in its canonical lower-case text form.
    Uuid(String),
    /// JSON text exactly as the database produced it.
    Json(JsonText),
    Array(Vec<Value>),
    /// An enum label.
    Enum(String),
    /// A spatial value: SRID and the OGC well-known binary (MySQL `GEOMETRY` and subtypes).
    Geometry {
        srid: u32,
        wkb: Vec<u8>,
    },
    /// A value the log did not carry (see [`UNAVAILABLE_VALUE_MARKER`]).
    Unavailable,
}

/// JSON text exactly as the database produced it (compared by its text).
#[derive(Debug, Clone)]
pub struct JsonText(pub Box<RawValue>);

impl JsonText {
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(JsonText)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// The type of one column, as far as tidemark needs it (rendering, keys, later Avro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Bool,
    Int16,
    Int32,
    Int64,
    UInt64,
    Float32,
    Float64,
    /// `precision`/`scale` when the column declares them.
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Text,
    Bytes,
    /// A MySQL `BIT(n)` with n > 1: values are [`Value::Bytes`], big-endian as MySQL stores
    /// them (written as [`ColumnType::Bytes`] is, except by the `debezium` value profile).
    Bits {
        length: u32,
    },
    /// A PostgreSQL `bit(n)` / `varbit(n)`: values are [`Value::Text`] of `0`s and `1`s
    /// (written as text, except by the `debezium` value profile). `length`: n, when declared.
    BitString {
        length: Option<u32>,
        varying: bool,
    },
    Date,
    /// A time of day (MySQL: a signed duration); `precision`: the fractional-second digits
    /// the column declares, when known.
    Time {
        precision: Option<u8>,
    },
    TimeTz,
    /// A timestamp without time zone; `precision` as for [`ColumnType::Time`].
    Timestamp {
        precision: Option<u8>,
    },
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Array(Box<ColumnType>),
    Enum {
        name: String,
        labels: Vec<String>,
    },
    /// A MySQL `SET`: values are the chosen members joined by `,` in declaration order.
    Set {
        labels: Vec<String>,
    },
    /// A spatial type (`name` is the database's: `geometry`, `point`, ...).
    Geometry {
        name: String,
    },
    /// A type tidemark does not model: values are carried as text. `name` is the database's.
    Other(String),
}

/// The type as a person reads it in an error: `int32`, `decimal(10,2)`, `timestamp(3)`,
/// `text[]`, `enum mood`.
impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with = |f: &mut std::fmt::Formatter<'_>, name: &str, n: Option<String>| match n {
            Some(n) => write!(f, "{name}({n})"),
            None => f.write_str(name),
        };
        match self {
            ColumnType::Bool => f.write_str("boolean"),
            ColumnType::Int16 => f.write_str("int16"),
            ColumnType::Int32 => f.write_str("int32"),
            ColumnType::Int64 => f.write_str("int64"),
            ColumnType::UInt64 => f.write_str("unsigned int64"),
            ColumnType::Float32 => f.write_str("float32"),
            ColumnType::Float64 => f.write_str("float64"),
            ColumnType::Decimal { precision, scale } => with(
                f,
                "decimal",
                precision.map(|p| format!("{p},{}", scale.unwrap_or(0))),
            ),
            ColumnType::Text => f.write_str("text"),
            ColumnType::Bytes => f.write_str("binary"),
            ColumnType::Bits { length } => write!(f, "bit({length})"),
            ColumnType::BitString { length, varying } => with(
                f,
                if *varying { "varbit" } else { "bit" },
                length.map(|n| n.to_string()),
            ),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Time { precision } => with(f, "time", precision.map(|p| p.to_string())),
            ColumnType::TimeTz => f.write_str("timetz"),
            ColumnType::Timestamp { precision } => {
                with(f, "timestamp", precision.map(|p| p.to_string()))
            }
            ColumnType::TimestampTz => f.write_str("timestamptz"),
            ColumnType::Interval => f.write_str("interval"),
            ColumnType::Uuid => f.write_str("uuid"),
            ColumnType::Json => f.write_str("json"),
            ColumnType::Array(item) => write!(f, "{item}[]"),
            ColumnType::Enum { name, .. } => write!(f, "enum {name}"),
            ColumnType::Set { .. } => f.write_str("set"),
            ColumnType::Geometry { name } => f.write_str(name),
            ColumnType::Other(name) => f.write_str(name),
        }
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

fn format_date(days: i32, out: &mut String) {
    match days {
        DATE_INFINITY => out.push_str("infinity"),
        DATE_NEG_INFINITY => out.push_str("-infinity"),
        _ => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            match epoch.checked_add_signed(chrono::Duration::days(i64::from(days))) {
                Some(d) => push_ymd(d.year(), d.month(), d.day(), out),
                None => {
                    let _ = write!(out, "{days}d");
                }
            }
        }
    }
}

fn push_ymd(year: i32, month: u32, day: u32, out: &mut String) {
    // ISO 8601 with an expanded year outside 0000..=9999 (proleptic Gregorian, 0 = 1 BC).
    if (0..=9999).contains(&year) {
        push_padded(out, year as u64, 4);
        out.push('-');
        push_padded(out, u64::from(month), 2);
        out.push('-');
        push_padded(out, u64::from(day), 2);
    } else if year < 0 {
        let _ = write!(out, "-{:06}-{month:02}-{day:02}", -i64::from(year));
    } else {
        let _ = write!(out, "+{year:06}-{month:02}-{day:02}");
    }
}

fn format_time_of_day(micros: i64, out: &mut String) {
    if micros < 0 {
        out.push('-');
    }
    let abs = micros.unsigned_abs();
    let secs = abs / 1_000_000;
    let frac = abs % 1_000_000;
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, (secs / 60) % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
    if frac != 0 {
        out.push('.');
        push_padded(out, frac, 6);
    }
}

/// Appends `v` in decimal, zero-padded to at least `width` digits (the hot path of every
/// date and time value; `write!` costs several times more).
fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

fn format_offset(offset_seconds: i32, out: &mut String) {
    if offset_seconds == 0 {
        out.push('Z');
        return;
    }
    let sign = if offset_seconds < 0 { '-' } else { '+' };
    let abs = offset_seconds.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, (abs / 60) % 60);
    if abs % 60 != 0 {
        let _ = write!(out, ":{:02}", abs % 60);
    }
}

fn format_timestamp(micros: i64, utc: bool, out: &mut String) {
    match micros {
        TIMESTAMP_INFINITY => out.push_str("infinity"),
        TIMESTAMP_NEG_INFINITY => out.push_str("-infinity"),
        _ => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let in_day = micros.rem_euclid(MICROS_PER_DAY);
            match i32::try_from(days) {
                Ok(d) => format_date(d, out),
                Err(_) => {
                    let _ = write!(out, "{micros}us");
                    return;
                }
            }
            out.push('T');
            format_time_of_day(in_day, out);
            if utc {
                out.push('Z');
            }
        }
    }
}

/// ISO 8601 duration with each part kept: `P1Y2M3DT4H5M6.000007S`, parts may be negative.
fn format_interval(months: i32, days: i32, micros: i64, out: &mut String) {
    out.push('P');
    let (years, months) = (months / 12, months % 12);
    if years != 0 {
        let _ = write!(out, "{years}Y");
    }
    if months != 0 {
        let _ = write!(out, "{months}M");
    }
    if days != 0 {
        let _ = write!(out, "{days}D");
    }
    if micros != 0 {
        out.push('T');
        let neg = micros < 0;
        let abs = micros.unsigned_abs();
        let (hours, rem) = (abs / 3_600_000_000, abs % 3_600_000_000);
        let (minutes, rem) = (rem / 60_000_000, rem % 60_000_000);
        let (seconds, frac) = (rem / 1_000_000, rem % 1_000_000);
        let sign = if neg { "-" } else { "" };
        if hours != 0 {
            let _ = write!(out, "{sign}{hours}H");
        }
        if minutes != 0 {
            let _ = write!(out, "{sign}{minutes}M");
        }
        if seconds != 0 || frac != 0 {
            if frac != 0 {
                let _ = write!(out, "{sign}{seconds}.{frac:06}S");
            } else {
                let _ = write!(out, "{sign}{seconds}S");
            }
        }
    }
    if out.ends_with('P') {
        out.push_str("T0S");
    }
}

/// A value as plain text: the text itself for text-like values, the number's digits, the
/// JSON text, base64 for binary, ISO 8601 for temporal values; `None` for NULL and for a
/// value the log did not carry. Used where a value becomes a header, a key, a topic name or
/// the input of a hash.
pub fn text_form(value: &Value) -> Option<String> {
    match value {
        Value::Null | Value::Unavailable => None,
        Value::Text(s) | Value::Decimal(s) | Value::Uuid(s) | Value::Enum(s) => Some(s.clone()),
        Value::Json(j) => Some(j.get().to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            if let Some(t) = render_text(other) {
                return Some(t);
            }
            match serde_json::to_value(other).ok()? {
                serde_json::Value::String(s) => Some(s),
                v => Some(v.to_string()),
            }
        }
    }
}

/// The text used for a value in JSON where it is rendered as a string.
pub fn render_text(value: &Value) -> Option<String> {
    let mut out = String::new();
    render_text_into(value, &mut out).then_some(out)
}

thread_local! {
    /// Where [`Value`]'s `Serialize` renders temporal values: no allocation per value.
    static TEXT_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Appends the text of a temporal value to `out`; `false` for other values.
pub fn render_text_into(value: &Value, out: &mut String) -> bool {
    match value {
        Value::Date(d) => format_date(*d, out),
        Value::Time(t) => format_time_of_day(*t, out),
        Value::TimeTz {
            micros,
            offset_seconds,
        } => {
            format_time_of_day(*micros, out);
            format_offset(*offset_seconds, out);
        }
        Value::Timestamp(t) => format_timestamp(*t, false, out),
        Value::TimestampTz(t) => format_timestamp(*t, true, out),
        Value::Interval {
            months,
            days,
            micros,
        } => format_interval(*months, *days, *micros, out),
        _ => return false,
    }
    true
}

fn serialize_float<S: Serializer>(f: f64, s: S) -> Result<S::Ok, S::Error> {
    if f.is_nan() {
        s.serialize_str("NaN")
    } else if f.is_infinite() {
        s.serialize_str(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        s.serialize_f64(f)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float32(f) => {
                if f.is_finite() {
                    s.serialize_f32(*f)
                } else {
                    serialize_float(f64::from(*f), s)
                }
            }
            Value::Float64(f) => serialize_float(*f, s),
            Value::Decimal(d) => s.serialize_str(d),
            Value::Text(t) | Value::Uuid(t) | Value::Enum(t) => s.serialize_str(t),
            Value::Bytes(b) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Json(raw) => raw.0.serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Unavailable => s.serialize_str(UNAVAILABLE_VALUE_MARKER),
            Value::Geometry { srid, wkb } => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry(
                    "wkb",
                    &base64::engine::general_purpose::STANDARD.encode(wkb),
                )?;
                m.serialize_entry("srid", srid)?;
                m.end()
            }
            Value::Date(_)
            | Value::Time(_)
            | Value::TimeTz { .. }
            | Value::Timestamp(_)
            | Value::TimestampTz(_)
            | Value::Interval { .. } => TEXT_BUFFER.with_borrow_mut(|out| {
                out.clear();
                render_text_into(self, out);
                s.serialize_str(out)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn integers_stay_exact() {
        assert_eq!(json(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(json(&Value::UInt(u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn floats_and_specials() {
        assert_eq!(json(&Value::Float64(f64::NAN)), "\"NaN\"");
        assert_eq!(json(&Value::Float64(f64::NEG_INFINITY)), "\"-Infinity\"");
        assert_eq!(json(&Value::Float32(0.1)), "0.1");
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(json(&Value::Date(0)), "\"1970-01-01\"");
        assert_eq!(json(&Value::Date(-1)), "\"1969-12-31\"");
        assert_eq!(json(&Value::Date(DATE_INFINITY)), "\"infinity\"");
        assert_eq!(
            json(&Value::TimestampTz(-1)),
            "\"1969-12-31T23:59:59.999999Z\""
        );
        assert_eq!(
            json(&Value::Timestamp(1_500_000)),
            "\"1970-01-01T00:00:01.500000\""
        );
        // year 10000
        let d = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap();
        let days = (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32;
        assert_eq!(json(&Value::Date(days)), "\"+010000-01-01\"");
    }

    #[test]
    fn times_and_intervals() {
        assert_eq!(json(&Value::Time(MICROS_PER_DAY)), "\"24:00:00\"");
        assert_eq!(
            json(&Value::TimeTz {
                micros: 3_723_000_001,
                offset_seconds: -(5 * 3600 + 30 * 60)
            }),
            "\"01:02:03.000001-05:30\""
        );
        assert_eq!(
            json(&Value::Interval {
                months: 14,
                days: 3,
                micros: -(4 * 3_600_000_000 + 5_000_007)
            }),
            "\"P1Y2M3DT-4H-5.000007S\""
        );
        assert_eq!(
            json(&Value::Interval {
                months: 0,
                days: 0,
                micros: 0
            }),
            "\"PT0S\""
        );
    }

    #[test]
    fn binary_json_and_marker() {
        assert_eq!(json(&Value::Bytes(vec![0, 255])), "\"AP8=\"");
        let raw = RawValue::from_string("{\"a\": [1, 2.50]}".into()).unwrap();
        assert_eq!(json(&Value::Json(JsonText(raw))), "{\"a\": [1, 2.50]}");
        assert_eq!(
            json(&Value::Unavailable),
            format!("\"{UNAVAILABLE_VALUE_MARKER}\"")
        );
    }
}
