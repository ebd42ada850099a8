//! MySQL's binary DECIMAL format (`decimal2bin`), decoded to exact decimal text.
//!
//! The number is stored as big-endian groups of up to nine decimal digits: the integer
//! part's leading partial group, its full groups, the fraction's full groups, then the
//! fraction's trailing partial group. A partial group of `n` digits takes
//! `DIG2BYTES[n]` bytes. The first byte's top bit is flipped (set = non-negative) and a
//! negative number has every byte inverted, so the bytes sort like the numbers.

use super::reader::{ByteReader, DecodeResult};

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const DIGITS_PER_GROUP: usize = 9;

/// The stored size of a DECIMAL(precision, scale) value.
pub fn binary_size(precision: u8, scale: u8) -> usize {
    let (p, s) = (usize::from(precision), usize::from(scale));
    let intg = p.saturating_sub(s);
    (intg / DIGITS_PER_GROUP) * 4
        + DIG2BYTES[intg % DIGITS_PER_GROUP]
        + (s / DIGITS_PER_GROUP) * 4
        + DIG2BYTES[s % DIGITS_PER_GROUP]
}

/// Decodes one DECIMAL(precision, scale) value to text such as `-12.340`.
pub fn decode(r: &mut ByteReader<'_>, precision: u8, scale: u8) -> DecodeResult<String> {
    if scale > precision || precision > 65 || scale > 38 {
        return Err(r.error(format!(
            "DECIMAL({precision},{scale}) is not a valid declaration"
        )));
    }
    let size = binary_size(precision, scale);
    let offset = r.offset();
    let raw = r.take(size, "DECIMAL value")?;
    if raw.is_empty() {
        return Ok("0".into());
    }
    let negative = raw[0] & 0x80 == 0;
    let mask = if negative { 0xff } else { 0x00 };
    // The byte at `i`, with the sign bit restored and a negative number's bits inverted.
    let byte = |i: usize| -> u8 {
        let b = raw[i] ^ mask;
        if i == 0 {
            b ^ 0x80
        } else {
            b
        }
    };

    let (p, s) = (usize::from(precision), usize::from(scale));
    let intg = p - s;
    // Groups in storage order: integer leading partial, integer full, fraction full,
    // fraction trailing partial.
    let lead = intg % DIGITS_PER_GROUP;
    let trail = s % DIGITS_PER_GROUP;
    let int_groups = usize::from(lead != 0) + intg / DIGITS_PER_GROUP;
    let groups = int_groups + s / DIGITS_PER_GROUP + usize::from(trail != 0);

    // Digits are written straight into the result: sign, integer digits without their
    // leading zeros, '.', fraction digits.
    // Bytes, not chars: a char push costs several times a byte push.
    let mut out = Vec::with_capacity(p + 3);
    if negative {
        out.push(b'-');
    }
    let sign_len = out.len();
    let mut any_nonzero = false;
    let mut at = 0;
    for k in 0..groups {
        let digits = if k == 0 && lead != 0 {
            lead
        } else if k == groups - 1 && trail != 0 {
            trail
        } else {
            DIGITS_PER_GROUP
        };
        let integer = k < int_groups;
        let nbytes = DIG2BYTES[digits];
        let mut value = 0u64;
        for i in at..at + nbytes {
            value = (value << 8) | u64::from(byte(i));
        }
        if value >= POW10[digits] {
            return Err(super::reader::DecodeError {
                what: format!(
                    "DECIMAL({precision},{scale}) group {} holds {value}, more than {digits} digits",
                    k + 1
                ),
                offset: offset + at,
            });
        }
        at += nbytes;
        any_nonzero |= value != 0;
        if k == int_groups {
            if out.len() == sign_len {
                out.push(b'0');
            }
            out.push(b'.');
        }
        // The group's digits, zero-padded to its width.
        let mut text = [b'0'; DIGITS_PER_GROUP];
        let mut rest = value;
        for slot in text[..digits].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let mut first = 0;
        if integer && out.len() == sign_len {
            // Leading zeros of the integer part are dropped.
            while first < digits && text[first] == b'0' {
                first += 1;
            }
        }
        out.extend_from_slice(&text[first..digits]);
    }
    if out.len() == sign_len {
        out.push(b'0');
    }
    if negative && !any_nonzero {
        // Minus zero is zero.
        out.remove(0);
    }
    // Only ASCII digits, '-' and '.' were written.
    String::from_utf8(out).map_err(|_| r.error("DECIMAL digits that are not ASCII"))
}

/// Ten to the power of a group's digit count.
const POW10: [u64; DIGITS_PER_GROUP + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes decimal text the way MySQL does (the inverse of [`decode`]), for tests.
    pub(crate) fn encode(text: &str, precision: u8, scale: u8) -> Vec<u8> {
        let negative = text.starts_with('-');
        let text = text.trim_start_matches('-');
        let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
        let (p, s) = (usize::from(precision), usize::from(scale));
        let intg = p - s;
        let int_part = int_part.trim_start_matches('0');
        let int_padded = format!("{int_part:0>intg$}");
        let frac_padded = format!("{frac_part:0<s$}");
        let mut out = Vec::new();
        let mut push = |digits: &str| {
            if digits.is_empty() {
                return;
            }
            let n = DIG2BYTES[digits.len()];
            let v: u64 = digits.parse().unwrap();
            for i in (0..n).rev() {
                out.push((v >> (8 * i)) as u8);
            }
        };
        let lead = intg % 9;
        push(&int_padded[..lead]);
        for chunk in int_padded.as_bytes()[lead..].chunks(9) {
            push(std::str::from_utf8(chunk).unwrap());
        }
        for chunk in frac_padded.as_bytes().chunks(9) {
            push(std::str::from_utf8(chunk).unwrap());
        }
        out[0] ^= 0x80;
        if negative {
            for b in out.iter_mut() {
                *b ^= 0xff;
            }
        }
        out
    }

    fn round_trip(text: &str, p: u8, s: u8) -> String {
        let bytes = encode(text, p, s);
        assert_eq!(bytes.len(), binary_size(p, s), "{text} ({p},{s})");
        decode(&mut ByteReader::new(&bytes), p, s).unwrap()
    }

    #[test]
    fn mysql_manual_example() {
        // The manual's example: 1234567890.1234 as DECIMAL(14,4).
        let b = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(
            decode(&mut ByteReader::new(&b), 14, 4).unwrap(),
            "1234567890.1234"
        );
        // And -1234567890.1234.
        let n: Vec<u8> = b.iter().map(|x| !x).collect();
        assert_eq!(
            decode(&mut ByteReader::new(&n), 14, 4).unwrap(),
            "-1234567890.1234"
        );
    }

    #[test]
    fn round_trips() {
        assert_eq!(round_trip("0.00", 10, 2), "0.00");
        assert_eq!(round_trip("-0.01", 10, 2), "-0.01");
        assert_eq!(round_trip("12345678.90", 10, 2), "12345678.90");
        assert_eq!(round_trip("7", 1, 0), "7");
        assert_eq!(round_trip("0.5", 1, 1), "0.5");
        let max = format!("{}.{}", "9".repeat(35), "9".repeat(30));
        assert_eq!(round_trip(&max, 65, 30), max);
        assert_eq!(round_trip(&format!("-{max}"), 65, 30), format!("-{max}"));
        assert_eq!(
            round_trip("-123456789012345678", 18, 0),
            "-123456789012345678"
        );
    }

    proptest::proptest! {
        /// Any value of any declaration comes back as the text MySQL would print.
        #[test]
        fn decodes_what_mysql_encodes(
            precision in 1u8..=65,
            scale_pick in 0u8..=38,
            int_digits in "[0-9]{0,65}",
            frac_digits in "[0-9]{0,38}",
            negative in proptest::bool::ANY,
        ) {
            let scale = scale_pick.min(precision);
            let intg = usize::from(precision - scale);
            let int_part = int_digits[..int_digits.len().min(intg)].trim_start_matches('0');
            let frac_part = &frac_digits[..frac_digits.len().min(usize::from(scale))];
            // MySQL prints every fraction digit of the scale, and no leading zeros.
            let int_text = if int_part.is_empty() { "0" } else { int_part };
            let frac_text = format!("{frac_part:0<width$}", width = usize::from(scale));
            let unsigned = if scale == 0 {
                int_text.to_string()
            } else {
                format!("{int_text}.{frac_text}")
            };
            let is_zero = unsigned.bytes().all(|b| b == b'0' || b == b'.');
            let text = if negative && !is_zero { format!("-{unsigned}") } else { unsigned };
            proptest::prop_assert_eq!(round_trip(&text, precision, scale), text);
        }
    }

    #[test]
    fn bad_bytes_are_errors() {
        // A 4-byte group holding 999999999 + 1.
        let mut b = vec![0x80 | 0x3b, 0x9a, 0xca, 0x00];
        assert!(decode(&mut ByteReader::new(&b), 9, 0).is_err());
        b.truncate(2);
        assert!(decode(&mut ByteReader::new(&b), 9, 0).is_err());
        assert!(decode(&mut ByteReader::new(&[0x80]), 70, 0).is_err());
    }
}
