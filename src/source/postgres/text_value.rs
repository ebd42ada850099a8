//! PostgreSQL text output -> typed [`Value`].
//!
//! Owns: parsing each supported type's text form, as pgoutput sends it on a session with
//! `DateStyle=ISO`, `IntervalStyle=iso_8601`, `TimeZone=UTC`, `bytea_output=hex` and
//! `extra_float_digits=3` (the replication connection sets these at startup, so the server's
//! own defaults do not matter). Must not: guess: text that does not parse is an error naming
//! the type and the text.

use chrono::NaiveDate;

use crate::value::{
    ColumnType, JsonText, Value, DATE_INFINITY, DATE_NEG_INFINITY, MICROS_PER_DAY,
    TIMESTAMP_INFINITY, TIMESTAMP_NEG_INFINITY,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {type_name} value {text:?}: {reason}")]
pub struct ValueError {
    pub type_name: String,
    pub text: String,
    pub reason: String,
}

fn err(t: &ColumnType, text: &str, reason: impl Into<String>) -> ValueError {
    let mut shown: String = text.chars().take(80).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    ValueError {
        type_name: t.to_string(),
        text: shown,
        reason: reason.into(),
    }
}

/// Parses the text form of a value of type `t`.
pub fn parse(t: &ColumnType, text: &str) -> Result<Value, ValueError> {
    let e = |reason: &str| err(t, text, reason);
    Ok(match t {
        ColumnType::Bool => match text {
            "t" | "true" => Value::Bool(true),
            "f" | "false" => Value::Bool(false),
            _ => return Err(e("expected t or f")),
        },
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            Value::Int(text.parse().map_err(|_| e("not an integer"))?)
        }
        ColumnType::UInt64 => Value::UInt(text.parse().map_err(|_| e("not an integer"))?),
        ColumnType::Float32 => Value::Float32(text.parse().map_err(|_| e("not a number"))?),
        ColumnType::Float64 => Value::Float64(text.parse().map_err(|_| e("not a number"))?),
        ColumnType::Decimal { .. } => {
            if is_decimal(text) || matches!(text, "NaN" | "Infinity" | "-Infinity") {
                Value::Decimal(text.to_string())
            } else {
                return Err(e("not a decimal number"));
            }
        }
        ColumnType::Text
        | ColumnType::Other(_)
        | ColumnType::BitString { .. }
        | ColumnType::Set { .. }
        | ColumnType::Geometry { .. } => Value::Text(text.to_string()),
        ColumnType::Enum { .. } => Value::Enum(text.to_string()),
        ColumnType::Bytes | ColumnType::Bits { .. } => {
            Value::Bytes(parse_bytea(text).ok_or_else(|| e("not hex bytea"))?)
        }
        ColumnType::Date => Value::Date(parse_date(text).ok_or_else(|| e("not an ISO date"))?),
        ColumnType::Time { .. } => {
            Value::Time(parse_time(text).ok_or_else(|| e("not HH:MM:SS[.f]"))?)
        }
        ColumnType::TimeTz => {
            let split = text.rfind(['+', '-']).ok_or_else(|| e("no UTC offset"))?;
            let micros = parse_time(&text[..split]).ok_or_else(|| e("bad time"))?;
            let offset_seconds = parse_offset(&text[split..]).ok_or_else(|| e("bad offset"))?;
            Value::TimeTz {
                micros,
                offset_seconds,
            }
        }
        ColumnType::Timestamp { .. } => {
            Value::Timestamp(parse_timestamp(text, false).ok_or_else(|| e("not an ISO timestamp"))?)
        }
        ColumnType::TimestampTz => Value::TimestampTz(
            parse_timestamp(text, true).ok_or_else(|| e("not an ISO timestamp with offset"))?,
        ),
        ColumnType::Interval => {
            let (months, days, micros) =
                parse_iso_interval(text).ok_or_else(|| e("not an ISO 8601 interval"))?;
            Value::Interval {
                months,
                days,
                micros,
            }
        }
        ColumnType::Uuid => {
            if text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                Value::Uuid(text.to_ascii_lowercase())
            } else {
                return Err(e("not a UUID"));
            }
        }
        ColumnType::Json => Value::Json(
            JsonText::parse(text.to_string()).map_err(|x| e(&format!("not JSON: {x}")))?,
        ),
        ColumnType::Array(elem) => parse_array(elem, text)?,
    })
}

fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn strip_bc(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    }
}

fn days_from_ymd(year: i32, month: u32, day: u32) -> Option<i32> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// `YYYY-MM-DD` (year may be longer), optional ` BC`; `infinity`, `-infinity`.
pub fn parse_date(text: &str) -> Option<i32> {
    match text {
        "infinity" => return Some(DATE_INFINITY),
        "-infinity" => return Some(DATE_NEG_INFINITY),
        _ => {}
    }
    let (text, bc) = strip_bc(text);
    parse_ymd(text, bc)
}

fn parse_ymd(text: &str, bc: bool) -> Option<i32> {
    // The common shape (a four-digit year), read in place.
    if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *text.as_bytes() {
        let y = four_digits([y0, y1, y2, y3])?;
        let year = if bc { 1 - y } else { y };
        let month = u32::try_from(four_digits([b'0', b'0', m0, m1])?).ok()?;
        let day = u32::try_from(four_digits([b'0', b'0', d0, d1])?).ok()?;
        return days_from_ymd_fast(year, month, day);
    }
    let mut parts = text.splitn(3, '-');
    let y: i32 = digits(parts.next()?)?;
    let m: u32 = digits(parts.next()?)?;
    let d: u32 = digits(parts.next()?)?;
    // Year 1 BC is astronomical year 0.
    let year = if bc { 1 - y } else { y };
    days_from_ymd(year, m, d)
}

/// Four ASCII digits as a number.
fn four_digits(d: [u8; 4]) -> Option<i32> {
    d.iter().try_fold(0i32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i32::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date with a year of at most four digits
/// (either sign), as [`days_from_ymd`] computes them, by the civil-from-days arithmetic
/// instead of building dates (`None` for a day the month does not have).
fn days_from_ymd_fast(year: i32, month: u32, day: u32) -> Option<i32> {
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    let (m, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    i32::try_from(era * 146_097 + day_of_era - 719_468).ok()
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `HH:MM:SS[.ffffff]` -> microseconds since midnight (`24:00:00` allowed).
pub fn parse_time(text: &str) -> Option<i64> {
    // The common shape (two-digit fields, up to six fraction digits), read in place.
    if let [h0, h1, b':', m0, m1, b':', s0, s1, ref rest @ ..] = *text.as_bytes() {
        let two = |a: u8, b: u8| four_digits([b'0', b'0', a, b]).map(i64::from);
        let (h, m, s) = (two(h0, h1)?, two(m0, m1)?, two(s0, s1)?);
        let frac_micros = match rest {
            [] => 0,
            [b'.', f @ ..] if !f.is_empty() && f.len() <= 6 => {
                f.iter().try_fold(0i64, |n, &b| {
                    b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
                })? * 10i64.pow(6 - f.len() as u32)
            }
            _ => return None,
        };
        if h > 24 || m > 59 || s > 60 {
            return None;
        }
        let micros = ((h * 60 + m) * 60 + s) * 1_000_000 + frac_micros;
        return (micros <= MICROS_PER_DAY).then_some(micros);
    }
    let (hms, frac) = match text.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let mut parts = hms.splitn(3, ':');
    let h: i64 = digits(parts.next()?)?;
    let m: i64 = digits(parts.next()?)?;
    let s: i64 = digits(parts.next()?)?;
    if h > 24 || m > 59 || s > 60 {
        return None;
    }
    let frac_micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let v: i64 = f.parse().ok()?;
            v * 10i64.pow(6 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let micros = ((h * 60 + m) * 60 + s) * 1_000_000 + frac_micros;
    (micros <= MICROS_PER_DAY).then_some(micros)
}

/// `+HH`, `+HH:MM`, `+HH:MM:SS` (or `-`) -> seconds east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let mut secs = 0i32;
    for (i, part) in rest.split(':').enumerate() {
        if i > 2 || part.len() != 2 {
            return None;
        }
        let v: i32 = digits(part)?;
        secs += v * [3600, 60, 1][i];
    }
    Some(sign * secs)
}

/// `YYYY-MM-DD HH:MM:SS[.f][+HH[:MM[:SS]]][ BC]` -> microseconds since the epoch (UTC when
/// `with_offset`).
pub fn parse_timestamp(text: &str, with_offset: bool) -> Option<i64> {
    match text {
        "infinity" => return Some(TIMESTAMP_INFINITY),
        "-infinity" => return Some(TIMESTAMP_NEG_INFINITY),
        _ => {}
    }
    let (text, bc) = strip_bc(text);
    let (date, rest) = text.split_once(' ')?;
    let days = parse_ymd(date, bc)?;
    let (time, offset) = if with_offset {
        let split = rest.rfind(['+', '-'])?;
        (&rest[..split], parse_offset(&rest[split..])?)
    } else {
        (rest, 0)
    };
    let micros = parse_time(time)?;
    i64::from(days)
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(micros)?
        .checked_sub(i64::from(offset) * 1_000_000)
}

/// `P[nY][nM][nD][T[nH][nM][n[.f]S]]` with signed parts -> (months, days, micros).
pub fn parse_iso_interval(text: &str) -> Option<(i32, i32, i64)> {
    let mut rest = text.strip_prefix('P')?;
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    let mut in_time = false;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('T') {
            in_time = true;
            rest = r;
            continue;
        }
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let (num, unit) = (&rest[..end], rest.as_bytes()[end]);
        rest = &rest[end + 1..];
        match (in_time, unit) {
            (false, b'Y') => months += num.parse::<i64>().ok()? * 12,
            (false, b'M') => months += num.parse::<i64>().ok()?,
            (false, b'W') => days += num.parse::<i64>().ok()? * 7,
            (false, b'D') => days += num.parse::<i64>().ok()?,
            (true, b'H') => micros += num.parse::<i64>().ok()? * 3_600_000_000,
            (true, b'M') => micros += num.parse::<i64>().ok()? * 60_000_000,
            (true, b'S') => micros += parse_seconds_micros(num)?,
            _ => return None,
        }
    }
    Some((
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        micros,
    ))
}

fn parse_seconds_micros(num: &str) -> Option<i64> {
    let (neg, num) = match num.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, num),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let mut v = digits::<i64>(int)?.checked_mul(1_000_000)?;
    if !frac.is_empty() {
        if frac.len() > 6 {
            return None;
        }
        v += digits::<i64>(frac)? * 10i64.pow(6 - frac.len() as u32);
    }
    Some(if neg { -v } else { v })
}

/// An array literal `{a,"b c",NULL,{1,2}}` (optionally `[l:u]=` dimension decoration).
fn parse_array(elem: &ColumnType, text: &str) -> Result<Value, ValueError> {
    let t = ColumnType::Array(Box::new(elem.clone()));
    let body = if text.starts_with('[') {
        text.split_once('=').map(|(_, b)| b).unwrap_or(text)
    } else {
        text
    };
    let bytes = body.as_bytes();
    let mut pos = 0;
    let v = parse_array_level(elem, body, bytes, &mut pos).map_err(|r| err(&t, text, r))?;
    if pos != bytes.len() {
        return Err(err(&t, text, "trailing characters"));
    }
    Ok(v)
}

fn parse_array_level(
    elem: &ColumnType,
    s: &str,
    b: &[u8],
    pos: &mut usize,
) -> Result<Value, String> {
    if b.get(*pos) != Some(&b'{') {
        return Err(format!("expected '{{' at {pos}"));
    }
    *pos += 1;
    let mut items = Vec::new();
    if b.get(*pos) == Some(&b'}') {
        *pos += 1;
        return Ok(Value::Array(items));
    }
    loop {
        match b.get(*pos) {
            Some(b'{') => items.push(parse_array_level(elem, s, b, pos)?),
            Some(b'"') => {
                *pos += 1;
                let mut out = String::new();
                loop {
                    match b.get(*pos) {
                        Some(b'\\') => {
                            let c = s[*pos + 1..].chars().next().ok_or("dangling escape")?;
                            out.push(c);
                            *pos += 1 + c.len_utf8();
                        }
                        Some(b'"') => {
                            *pos += 1;
                            break;
                        }
                        Some(_) => {
                            let c = s[*pos..].chars().next().ok_or("bad UTF-8")?;
                            out.push(c);
                            *pos += c.len_utf8();
                        }
                        None => return Err("unterminated quoted element".into()),
                    }
                }
                items.push(parse(elem, &out).map_err(|e| e.to_string())?);
            }
            Some(_) => {
                let start = *pos;
                while let Some(&c) = b.get(*pos) {
                    if c == b',' || c == b'}' {
                        break;
                    }
                    *pos += 1;
                }
                let raw = s[start..*pos].trim();
                if raw == "NULL" {
                    items.push(Value::Null);
                } else {
                    items.push(parse(elem, raw).map_err(|e| e.to_string())?);
                }
            }
            None => return Err("unterminated array".into()),
        }
        match b.get(*pos) {
            Some(b',') => *pos += 1,
            Some(b'}') => {
                *pos += 1;
                return Ok(Value::Array(items));
            }
            _ => return Err(format!("expected ',' or '}}' at {pos}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(t: ColumnType, s: &str) -> Value {
        parse(&t, s).unwrap()
    }

    #[test]
    fn scalars() {
        assert_eq!(p(ColumnType::Bool, "t"), Value::Bool(true));
        assert_eq!(
            p(ColumnType::Int64, "-9223372036854775808"),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            p(
                ColumnType::Decimal {
                    precision: None,
                    scale: None
                },
                "-123456789012345678901234567890.000001"
            ),
            Value::Decimal("-123456789012345678901234567890.000001".into())
        );
        assert_eq!(
            p(
                ColumnType::Decimal {
                    precision: None,
                    scale: None
                },
                "NaN"
            ),
            Value::Decimal("NaN".into())
        );
        assert!(parse(
            &ColumnType::Decimal {
                precision: None,
                scale: None
            },
            "1e5"
        )
        .is_err());
        assert!(matches!(p(ColumnType::Float64, "NaN"), Value::Float64(f) if f.is_nan()));
        assert_eq!(
            p(ColumnType::Float64, "-Infinity"),
            Value::Float64(f64::NEG_INFINITY)
        );
        assert_eq!(p(ColumnType::Float32, "1.1"), Value::Float32(1.1));
        assert_eq!(p(ColumnType::Bytes, "\\x00ff"), Value::Bytes(vec![0, 255]));
        assert!(parse(&ColumnType::Bytes, "\\x0").is_err());
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(p(ColumnType::Date, "1970-01-02"), Value::Date(1));
        assert_eq!(p(ColumnType::Date, "infinity"), Value::Date(DATE_INFINITY));
        // 0001-01-01 BC is astronomical year 0
        assert_eq!(parse_date("0001-01-01 BC"), days_from_ymd(0, 1, 1));
        assert_eq!(
            p(ColumnType::Time { precision: None }, "24:00:00"),
            Value::Time(MICROS_PER_DAY)
        );
        assert_eq!(
            p(ColumnType::Time { precision: None }, "00:00:00.5"),
            Value::Time(500_000)
        );
        assert_eq!(
            p(ColumnType::TimeTz, "01:00:00.000001+05:30"),
            Value::TimeTz {
                micros: 3_600_000_001,
                offset_seconds: 19800
            }
        );
        assert_eq!(
            p(ColumnType::TimestampTz, "1969-12-31 23:59:59.999999+00"),
            Value::TimestampTz(-1)
        );
        assert_eq!(
            p(ColumnType::TimestampTz, "1970-01-01 01:00:00+01"),
            Value::TimestampTz(0)
        );
        assert_eq!(
            p(
                ColumnType::Timestamp { precision: None },
                "2200-01-01 00:00:00"
            ),
            Value::Timestamp(i64::from(days_from_ymd(2200, 1, 1).unwrap()) * MICROS_PER_DAY)
        );
        assert_eq!(
            p(ColumnType::Timestamp { precision: None }, "-infinity"),
            Value::Timestamp(TIMESTAMP_NEG_INFINITY)
        );
        assert!(parse(
            &ColumnType::Timestamp { precision: None },
            "2020-13-01 00:00:00"
        )
        .is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(
            p(ColumnType::Interval, "P1Y2M3DT4H5M6.000007S"),
            Value::Interval {
                months: 14,
                days: 3,
                micros: 4 * 3_600_000_000 + 5 * 60_000_000 + 6_000_007
            }
        );
        assert_eq!(
            p(ColumnType::Interval, "P-1Y-2M3DT-4H-5M-6.5S"),
            Value::Interval {
                months: -14,
                days: 3,
                micros: -(4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000)
            }
        );
        assert_eq!(
            p(ColumnType::Interval, "PT0S"),
            Value::Interval {
                months: 0,
                days: 0,
                micros: 0
            }
        );
    }

    #[test]
    fn arrays() {
        let int_arr = ColumnType::Array(Box::new(ColumnType::Int32));
        assert_eq!(
            p(int_arr.clone(), "{1,NULL,-3}"),
            Value::Array(vec![Value::Int(1), Value::Null, Value::Int(-3)])
        );
        assert_eq!(
            p(int_arr.clone(), "{{1,2},{3,4}}"),
            Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Array(vec![Value::Int(3), Value::Int(4)])
            ])
        );
        assert_eq!(p(int_arr.clone(), "{}"), Value::Array(vec![]));
        assert_eq!(
            p(int_arr, "[0:1]={7,8}"),
            Value::Array(vec![Value::Int(7), Value::Int(8)])
        );
        let text_arr = ColumnType::Array(Box::new(ColumnType::Text));
        assert_eq!(
            p(text_arr.clone(), r#"{"a b","q\"uote","NULL",NULL,é🦀}"#),
            Value::Array(vec![
                Value::Text("a b".into()),
                Value::Text("q\"uote".into()),
                Value::Text("NULL".into()),
                Value::Null,
                Value::Text("é🦀".into())
            ])
        );
        assert!(parse(&text_arr, "{a").is_err());
    }

    proptest! {
        /// The in-place date reading agrees with the calendar's (chrono's) for every year of
        /// four digits, either side of year 0, and every month and day number, valid or not.
        #[test]
        fn fast_dates_agree_with_the_calendar(year in -9999i32..=9999, month in 0u32..=13, day in 0u32..=32) {
            prop_assert_eq!(days_from_ymd_fast(year, month, day), days_from_ymd(year, month, day));
            if (0..=9999).contains(&year) {
                let text = format!("{year:04}-{month:02}-{day:02}");
                prop_assert_eq!(parse_date(&text), days_from_ymd(year, month, day));
                let bc = format!("{text} BC");
                prop_assert_eq!(parse_date(&bc), days_from_ymd(1 - year, month, day));
            }
        }

        /// The in-place time reading agrees with the field-by-field one.
        #[test]
        fn fast_times_agree_with_the_fields(h in 0i64..=25, m in 0i64..=60, s in 0i64..=61, frac in proptest::option::of("[0-9]{0,7}")) {
            let text = match &frac {
                Some(f) => format!("{h:02}:{m:02}:{s:02}.{f}"),
                None => format!("{h:02}:{m:02}:{s:02}"),
            };
            let frac_micros = match &frac {
                None => Some(0),
                Some(f) if !f.is_empty() && f.len() <= 6 => Some(f.parse::<i64>().unwrap() * 10i64.pow(6 - f.len() as u32)),
                Some(_) => None,
            };
            let expected = frac_micros
                .filter(|_| h <= 24 && m <= 59 && s <= 60)
                .map(|f| ((h * 60 + m) * 60 + s) * 1_000_000 + f)
                .filter(|&micros| micros <= MICROS_PER_DAY);
            prop_assert_eq!(parse_time(&text), expected);
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            for t in [ColumnType::Date, ColumnType::TimestampTz, ColumnType::Interval,
                      ColumnType::TimeTz, ColumnType::Array(Box::new(ColumnType::Text)),
                      ColumnType::Bytes, ColumnType::Decimal { precision: None, scale: None }] {
                let _ = parse(&t, &s);
            }
        }

        #[test]
        fn timestamps_round_trip(micros in -200_000_000_000_000_000i64..200_000_000_000_000_000i64) {
            let v = Value::TimestampTz(micros);
            let text = crate::value::render_text(&v).unwrap();
            // our ISO rendering -> PostgreSQL-like text
            let pg = text.replace('T', " ").replace('Z', "+00");
            if !pg.starts_with(['+', '-']) {
                prop_assert_eq!(parse(&ColumnType::TimestampTz, &pg).unwrap(), v);
            }
        }
    }
}
