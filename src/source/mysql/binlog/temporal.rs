//! MySQL temporal values in the binlog: DATE, TIME, DATETIME, TIMESTAMP in both the current
//! (5.6+, "2" suffix, fractional seconds) and the legacy formats, and YEAR.
//!
//! Zero and partial dates (`0000-00-00`, `2024-00-10`) are not calendar dates; they decode
//! as [`Temporal::Zero`] and the caller decides (tidemark emits null and warns once per
//! column, as documented in the README). TIMESTAMP is seconds since the epoch in UTC, so it
//! is exact whatever the server's time zone; DATETIME has no zone.

use chrono::NaiveDate;

use super::reader::{ByteReader, DecodeResult};
use crate::value::MICROS_PER_DAY;

/// A decoded temporal value, or a zero date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    /// Days since 1970-01-01.
    Date(i32),
    /// Signed microseconds (TIME is a duration of up to ±838:59:59).
    Time(i64),
    /// Microseconds since 1970-01-01 00:00:00, no zone.
    DateTime(i64),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
    /// A zero or partial date the calendar cannot hold; the text MySQL would show.
    Zero(&'static str),
}

pub const ZERO_DATE: &str = "0000-00-00";
pub const ZERO_DATETIME: &str = "0000-00-00 00:00:00";

/// Days since 1970-01-01 of a calendar date; `None` for zero and partial dates.
pub fn days(year: u32, month: u32, day: u32) -> Option<i32> {
    if month == 0 || day == 0 {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// Fractional seconds stored after the integer part: `(fsp + 1) / 2` big-endian bytes.
fn fraction(r: &mut ByteReader<'_>, fsp: u16) -> DecodeResult<i64> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => r.uint_be(1, "fractional seconds")? as i64 * 10_000,
        3 | 4 => r.uint_be(2, "fractional seconds")? as i64 * 100,
        5 | 6 => r.uint_be(3, "fractional seconds")? as i64,
        _ => return Err(r.error(format!("fractional second precision {fsp} is above 6"))),
    })
}

fn check_fraction(r: &ByteReader<'_>, micros: i64) -> DecodeResult<i64> {
    if (0..1_000_000).contains(&micros) {
        Ok(micros)
    } else {
        Err(r.error(format!("fractional part {micros} is not below one second")))
    }
}

/// DATE (3 bytes little-endian: day 5 bits, month 4 bits, year 15 bits).
pub fn date(r: &mut ByteReader<'_>) -> DecodeResult<Temporal> {
    let v = r.uint_le(3, "DATE value")? as u32;
    let (day, month, year) = (v & 31, (v >> 5) & 15, v >> 9);
    Ok(days(year, month, day).map_or(Temporal::Zero(ZERO_DATE), Temporal::Date))
}

/// DATETIME2: 5 bytes big-endian with offset 0x8000000000, then the fraction.
pub fn datetime2(r: &mut ByteReader<'_>, fsp: u16) -> DecodeResult<Temporal> {
    let packed = r.uint_be(5, "DATETIME value")? as i64 - 0x80_0000_0000;
    let frac = fraction(r, fsp)?;
    let frac = check_fraction(r, frac)?;
    if packed < 0 {
        return Err(r.error("negative DATETIME"));
    }
    let ymd = packed >> 17;
    let (ym, day) = (ymd >> 5, (ymd & 31) as u32);
    let (year, month) = ((ym / 13) as u32, (ym % 13) as u32);
    let hms = packed & 0x1ffff;
    let (hour, minute, second) = (hms >> 12, (hms >> 6) & 63, hms & 63);
    datetime_of(r, year, month, day, hour, minute, second, frac)
}

#[allow(clippy::too_many_arguments)]
fn datetime_of(
    r: &ByteReader<'_>,
    year: u32,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    frac: i64,
) -> DecodeResult<Temporal> {
    if hour > 23 || minute > 59 || second > 59 {
        return Err(r.error(format!(
            "time of day {hour}:{minute}:{second} is out of range"
        )));
    }
    Ok(match days(year, month, day) {
        Some(d) => Temporal::DateTime(
            i64::from(d) * MICROS_PER_DAY + (hour * 3600 + minute * 60 + second) * 1_000_000 + frac,
        ),
        None => Temporal::Zero(ZERO_DATETIME),
    })
}

/// TIMESTAMP2: 4 bytes big-endian seconds since the epoch, then the fraction. Zero is the
/// zero timestamp.
pub fn timestamp2(r: &mut ByteReader<'_>, fsp: u16) -> DecodeResult<Temporal> {
    let secs = r.uint_be(4, "TIMESTAMP value")? as i64;
    let frac = fraction(r, fsp)?;
    let frac = check_fraction(r, frac)?;
    if secs == 0 && frac == 0 {
        return Ok(Temporal::Zero(ZERO_DATETIME));
    }
    Ok(Temporal::Timestamp(secs * 1_000_000 + frac))
}

/// TIME2: 3 bytes big-endian with offset 0x800000 (hours 10 bits, minutes 6, seconds 6),
/// then the fraction; negative values borrow from the integer part (MySQL's
/// `my_time_packed_from_binary`).
pub fn time2(r: &mut ByteReader<'_>, fsp: u16) -> DecodeResult<Temporal> {
    let packed: i64 = match fsp {
        0 => (r.uint_be(3, "TIME value")? as i64 - 0x80_0000) << 24,
        1 | 2 => {
            let mut int = r.uint_be(3, "TIME value")? as i64 - 0x80_0000;
            let mut frac = r.uint_be(1, "fractional seconds")? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = r.uint_be(3, "TIME value")? as i64 - 0x80_0000;
            let mut frac = r.uint_be(2, "fractional seconds")? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        5 | 6 => r.uint_be(6, "TIME value")? as i64 - 0x8000_0000_0000,
        _ => return Err(r.error(format!("fractional second precision {fsp} is above 6"))),
    };
    let negative = packed < 0;
    let abs = packed.unsigned_abs();
    let hms = abs >> 24;
    let frac = (abs & 0xff_ffff) as i64;
    let (hour, minute, second) = ((hms >> 12) % 1024, (hms >> 6) % 64, hms % 64);
    if minute > 59 || second > 59 || frac >= 1_000_000 {
        return Err(r.error(format!(
            "TIME {hour}:{minute}:{second}.{frac} is out of range"
        )));
    }
    let micros = ((hour * 3600 + minute * 60 + second) as i64) * 1_000_000 + frac;
    Ok(Temporal::Time(if negative { -micros } else { micros }))
}

/// Legacy TIME (before 5.6): 3 bytes little-endian signed `HHMMSS`.
pub fn time_legacy(r: &mut ByteReader<'_>) -> DecodeResult<Temporal> {
    let raw = r.uint_le(3, "TIME value")? as i64;
    let v = if raw & 0x80_0000 != 0 {
        raw - 0x100_0000
    } else {
        raw
    };
    let abs = v.abs();
    let (h, m, s) = (abs / 10_000, (abs / 100) % 100, abs % 100);
    if m > 59 || s > 59 {
        return Err(r.error(format!("TIME {v} is out of range")));
    }
    let micros = (h * 3600 + m * 60 + s) * 1_000_000;
    Ok(Temporal::Time(if v < 0 { -micros } else { micros }))
}

/// Legacy DATETIME (before 5.6): 8 bytes little-endian `YYYYMMDDhhmmss`.
pub fn datetime_legacy(r: &mut ByteReader<'_>) -> DecodeResult<Temporal> {
    let v = r.u64_le("DATETIME value")?;
    let (d, t) = (v / 1_000_000, v % 1_000_000);
    let (year, month, day) = (
        (d / 10_000) as u32,
        ((d / 100) % 100) as u32,
        (d % 100) as u32,
    );
    let (h, m, s) = (
        (t / 10_000) as i64,
        ((t / 100) % 100) as i64,
        (t % 100) as i64,
    );
    datetime_of(r, year, month, day, h, m, s, 0)
}

/// Legacy TIMESTAMP (before 5.6): 4 bytes little-endian seconds.
pub fn timestamp_legacy(r: &mut ByteReader<'_>) -> DecodeResult<Temporal> {
    let secs = i64::from(r.u32_le("TIMESTAMP value")?);
    if secs == 0 {
        return Ok(Temporal::Zero(ZERO_DATETIME));
    }
    Ok(Temporal::Timestamp(secs * 1_000_000))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes TIME2 the way MySQL does (`my_time_packed_to_binary`), for tests.
    pub(crate) fn encode_time2(micros: i64, fsp: u16) -> Vec<u8> {
        let abs = micros.unsigned_abs() as i64;
        let (secs, frac) = (abs / 1_000_000, abs % 1_000_000);
        let hms = ((secs / 3600) << 12) | (((secs / 60) % 60) << 6) | (secs % 60);
        let mut packed = (hms << 24) + frac;
        if micros < 0 {
            packed = -packed;
        }
        let int = (packed >> 24) + 0x80_0000; // arithmetic shift keeps the borrow
        let frac_part = packed % (1 << 24); // C's truncating remainder, as MySQL

        let mut out = vec![(int >> 16) as u8, (int >> 8) as u8, int as u8];
        match fsp {
            0 => {}
            1 | 2 => out.push((frac_part / 10_000) as i8 as u8),
            3 | 4 => out.extend(((frac_part / 100) as i16 as u16).to_be_bytes()),
            _ => {
                let v = packed + 0x8000_0000_0000;
                return v.to_be_bytes()[2..].to_vec();
            }
        }
        out
    }

    /// Encodes DATETIME2 (fsp 6), for tests.
    pub(crate) fn encode_datetime2(
        y: i64,
        mo: i64,
        d: i64,
        h: i64,
        mi: i64,
        s: i64,
        us: i64,
    ) -> Vec<u8> {
        let ymd = ((y * 13 + mo) << 5) | d;
        let hms = (h << 12) | (mi << 6) | s;
        let packed = ((ymd << 17) | hms) + 0x80_0000_0000;
        let mut out = packed.to_be_bytes()[3..].to_vec();
        out.extend(&(us as u32).to_be_bytes()[1..]);
        out
    }

    fn time2(bytes: &[u8], fsp: u16) -> Temporal {
        super::time2(&mut ByteReader::new(bytes), fsp).unwrap()
    }

    #[test]
    fn time2_known_bytes() {
        // 00:00:00 and -00:00:01 (fsp 0), from MySQL's documented offset encoding.
        assert_eq!(time2(&[0x80, 0x00, 0x00], 0), Temporal::Time(0));
        assert_eq!(time2(&[0x7f, 0xff, 0xff], 0), Temporal::Time(-1_000_000));
        // 838:59:59
        let max = (838 * 3600 + 59 * 60 + 59) * 1_000_000;
        assert_eq!(time2(&encode_time2(max, 0), 0), Temporal::Time(max));
    }

    #[test]
    fn time2_round_trips_every_precision() {
        let values = [
            0,
            1,
            -1,
            -500_000,
            -1_500_000,
            3_723_000_001,
            -3_723_000_001,
            (838 * 3600 + 59 * 60 + 59) * 1_000_000 + 999_999,
            -((838 * 3600 + 59 * 60 + 59) * 1_000_000 + 999_999),
        ];
        for fsp in 0..=6u16 {
            let unit = 10i64.pow(6 - u32::from(fsp));
            for v in values {
                let v = v / unit * unit;
                assert_eq!(
                    time2(&encode_time2(v, fsp), fsp),
                    Temporal::Time(v),
                    "{v} fsp {fsp}"
                );
            }
        }
    }

    #[test]
    fn datetime2_and_zero() {
        let b = encode_datetime2(2024, 2, 29, 23, 59, 58, 123_456);
        let t = datetime2(&mut ByteReader::new(&b), 6).unwrap();
        let expect = i64::from(days(2024, 2, 29).unwrap()) * MICROS_PER_DAY
            + (23 * 3600 + 59 * 60 + 58) * 1_000_000
            + 123_456;
        assert_eq!(t, Temporal::DateTime(expect));
        let z = encode_datetime2(0, 0, 0, 0, 0, 0, 0);
        assert_eq!(
            datetime2(&mut ByteReader::new(&z), 6).unwrap(),
            Temporal::Zero(ZERO_DATETIME)
        );
        let y0 = encode_datetime2(0, 1, 1, 0, 0, 0, 0);
        assert!(matches!(
            datetime2(&mut ByteReader::new(&y0), 6).unwrap(),
            Temporal::DateTime(_)
        ));
    }

    #[test]
    fn dates_and_legacy() {
        let v: u32 = (2024 << 9) | (12 << 5) | 31;
        let b = v.to_le_bytes();
        assert_eq!(
            date(&mut ByteReader::new(&b[..3])).unwrap(),
            Temporal::Date(days(2024, 12, 31).unwrap())
        );
        assert_eq!(
            date(&mut ByteReader::new(&[0, 0, 0])).unwrap(),
            Temporal::Zero(ZERO_DATE)
        );
        let neg = (-12_345i32 as u32).to_le_bytes();
        assert_eq!(
            time_legacy(&mut ByteReader::new(&neg[..3])).unwrap(),
            Temporal::Time(-(3600 + 23 * 60 + 45) * 1_000_000)
        );
        let dt = 20240102030405u64.to_le_bytes();
        assert!(matches!(
            datetime_legacy(&mut ByteReader::new(&dt)).unwrap(),
            Temporal::DateTime(_)
        ));
        assert_eq!(
            timestamp2(&mut ByteReader::new(&[0, 0, 0, 1, 0, 0, 1]), 6).unwrap(),
            Temporal::Timestamp(1_000_001)
        );
        assert_eq!(
            timestamp2(&mut ByteReader::new(&[0, 0, 0, 0]), 0).unwrap(),
            Temporal::Zero(ZERO_DATETIME)
        );
        assert!(timestamp2(&mut ByteReader::new(&[0, 0, 0, 1, 0xff, 0xff, 0xff]), 6).is_err());
    }
}
