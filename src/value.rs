//! Typed column values and column types, shared by every source and stage.
//!
//! Owns: the in-memory representation of one column value and of one column's type, and the
//! exact JSON rendering of a value (used by the Debezium JSON envelope).
//! Must not: know any source's wire format (sources convert into these types) or any sink.
//!
//! Exactness rules: integers stay integers (unsigned 64-bit too), decimals keep their digits
//! as written by the database, times keep microseconds, JSON stays the JSON text the database
//! produced, binary is base64 in JSON.

use std::io::Write as _;

use base64::Engine as _;
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

// The temporal formatters below write ASCII bytes: straight into a JSON message (no text
// buffer, no escape scan, no second copy), or into a `String` through `render_text_into`.

fn format_date(days: i32, out: &mut Vec<u8>) {
    match days {
        DATE_INFINITY => out.extend_from_slice(b"infinity"),
        DATE_NEG_INFINITY => out.extend_from_slice(b"-infinity"),
        _ => {
            let (year, month, day) = civil_from_days(i64::from(days));
            push_ymd(year, month, day, out);
        }
    }
}

/// The proleptic Gregorian year, month (1-12) and day (1-31) `days` after 1970-01-01: Howard
/// Hinnant's `civil_from_days`, integer arithmetic only and exact for every `i32` day count
/// (a date library's checked arithmetic cost several times more per value; BENCHMARKS.md,
/// session 19). Days count in eras of 400 years (146,097 days) from 0000-03-01, so that the
/// leap day ends each era's year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March .. 11 = February
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The ASCII digit of `v`'s ones.
fn digit(v: u64) -> u8 {
    b'0' + (v % 10) as u8
}

fn push_ymd(year: i64, month: u32, day: u32, out: &mut Vec<u8>) {
    let (m, d) = (u64::from(month), u64::from(day));
    // ISO 8601 with an expanded year outside 0000..=9999 (proleptic Gregorian, 0 = 1 BC).
    if let Ok(y @ 0..=9999) = u64::try_from(year) {
        out.extend_from_slice(&[
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(d / 10),
            digit(d),
        ]);
    } else {
        out.push(if year < 0 { b'-' } else { b'+' });
        push_padded(out, year.unsigned_abs(), 6);
        out.extend_from_slice(&[b'-', digit(m / 10), digit(m), b'-', digit(d / 10), digit(d)]);
    }
}

fn format_time_of_day(micros: i64, out: &mut Vec<u8>) {
    if micros < 0 {
        out.push(b'-');
    }
    let abs = micros.unsigned_abs();
    let secs = abs / 1_000_000;
    let frac = abs % 1_000_000;
    let hours = secs / 3600;
    if hours < 100 {
        out.extend_from_slice(&[digit(hours / 10), digit(hours)]);
    } else {
        push_padded(out, hours, 2); // a MySQL TIME duration
    }
    let (minutes, seconds) = ((secs / 60) % 60, secs % 60);
    out.extend_from_slice(&[
        b':',
        digit(minutes / 10),
        digit(minutes),
        b':',
        digit(seconds / 10),
        digit(seconds),
    ]);
    if frac != 0 {
        out.extend_from_slice(&[
            b'.',
            digit(frac / 100_000),
            digit(frac / 10_000),
            digit(frac / 1_000),
            digit(frac / 100),
            digit(frac / 10),
            digit(frac),
        ]);
    }
}

/// Appends `v` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v).as_bytes();
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(digits);
}

fn format_offset(offset_seconds: i32, out: &mut Vec<u8>) {
    if offset_seconds == 0 {
        out.push(b'Z');
        return;
    }
    let sign = if offset_seconds < 0 { '-' } else { '+' };
    let abs = offset_seconds.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, (abs / 60) % 60);
    if abs % 60 != 0 {
        let _ = write!(out, ":{:02}", abs % 60);
    }
}

fn format_timestamp(micros: i64, utc: bool, out: &mut Vec<u8>) {
    match micros {
        TIMESTAMP_INFINITY => out.extend_from_slice(b"infinity"),
        TIMESTAMP_NEG_INFINITY => out.extend_from_slice(b"-infinity"),
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
            out.push(b'T');
            format_time_of_day(in_day, out);
            if utc {
                out.push(b'Z');
            }
        }
    }
}

/// ISO 8601 duration with each part kept: `P1Y2M3DT4H5M6.000007S`, parts may be negative.
fn format_interval(months: i32, days: i32, micros: i64, out: &mut Vec<u8>) {
    out.push(b'P');
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
        out.push(b'T');
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
    if out.last() == Some(&b'P') {
        out.extend_from_slice(b"T0S");
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
    static TEXT_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Appends the text of a temporal value to `out`; `false` for other values.
pub fn render_text_into(value: &Value, out: &mut String) -> bool {
    let mut bytes = std::mem::take(out).into_bytes();
    let rendered = render_text_bytes(value, &mut bytes);
    // Only ASCII was appended to valid UTF-8.
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    rendered
}

/// Appends the text of a temporal value to `out` (ASCII, nothing to escape in JSON); `false`
/// for other values.
pub fn render_text_bytes(value: &Value, out: &mut Vec<u8>) -> bool {
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
                render_text_bytes(self, out);
                s.serialize_str(&String::from_utf8_lossy(out))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    fn json(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    proptest::proptest! {
        /// The integer calendar agrees with chrono's over chrono's whole range.
        #[test]
        fn civil_from_days_matches_chrono(days in -95_000_000i64..95_000_000) {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            let d = epoch + chrono::Duration::days(days);
            proptest::prop_assert_eq!(
                civil_from_days(days),
                (i64::from(d.year()), d.month(), d.day())
            );
        }
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(-719_469), (0, 2, 29));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(i64::from(i32::MAX)), (5_881_580, 7, 11));
        assert_eq!(
            civil_from_days(i64::from(i32::MIN + 1)),
            (-5_877_641, 6, 24)
        );
        // PostgreSQL's last date (5874897-12-31) in full, and a date before year 1.
        let date = |days| render_text(&Value::Date(days)).unwrap();
        assert_eq!(date(2_145_042_905), "+5874897-12-31");
        assert_eq!(date(-719_469), "0000-02-29");
        assert_eq!(date(-719_469 - 366), "-000001-02-28");
        assert_eq!(date(2_932_896), "9999-12-31");
        assert_eq!(date(2_932_897), "+010000-01-01");
        let mut out = Vec::new();
        push_padded(&mut out, 7, 2);
        push_padded(&mut out, 123_456, 6);
        push_padded(&mut out, 42, 6);
        push_padded(&mut out, u64::MAX, 2);
        assert_eq!(out, format!("07123456000042{}", u64::MAX).into_bytes());
        // A MySQL TIME duration over 99 hours, negative, with a fraction.
        assert_eq!(
            render_text(&Value::Time(-(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 5)).unwrap(),
            "-838:59:59.000005"
        );
        // Text already in the string stays.
        let mut text = "at ".to_string();
        assert!(render_text_into(&Value::Timestamp(0), &mut text));
        assert_eq!(text, "at 1970-01-01T00:00:00");
        assert!(!render_text_into(&Value::Int(1), &mut text));
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
