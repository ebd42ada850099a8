//! PostgreSQL's text forms of the types tidemark carries as text (`money`, `hstore`, `point`,
//! bit strings), read into what the `debezium` profile writes for them.

/// The digits of a `money` value (`$1,234.56`, `-$1,234.56`, `($5.00)`) as decimal text
/// (`-1234.56`). The server's `lc_monetary` must write `.` as the decimal point (the C and
/// English locales do); a value with another is refused, not misread.
pub fn money_digits(text: &str) -> Result<String, String> {
    let negative = text.contains('-') || text.starts_with('(');
    let mut out = String::with_capacity(text.len());
    if negative {
        out.push('-');
    }
    let mut seen_digit = false;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                seen_digit = true;
                out.push(c);
            }
            '.' => out.push('.'),
            ',' | '$' | '-' | '(' | ')' | ' ' => {}
            c if c.is_alphabetic() || !c.is_ascii() => {} // a currency symbol
            _ => return Err(format!("`{text}` is not a money value")),
        }
    }
    // A group separator after the point means the point is not the decimal point.
    let misread = match (text.rfind('.'), text.rfind(',')) {
        (Some(point), Some(comma)) => comma > point,
        _ => false,
    };
    if !seen_digit || misread || out.matches('.').count() > 1 {
        return Err(format!(
            "`{text}` is not a money value with `.` as its decimal point (set lc_monetary to C or an English locale)"
        ));
    }
    Ok(out)
}

/// One `"..."`-quoted hstore token starting at `s[0] == '"'`: its text and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"')?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 2..])),
            c => out.push(c),
        }
    }
    None
}

/// An `hstore` value's text (`"a"=>"1", "b"=>NULL`) as a JSON object (`{"a":"1","b":null}`),
/// its pairs in the server's order.
pub fn hstore_json(text: &str) -> Result<String, String> {
    let bad = || format!("`{text}` is not an hstore value");
    let mut out = String::from("{");
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = quoted(rest).ok_or_else(bad)?;
        let after = after.trim_start().strip_prefix("=>").ok_or_else(bad)?;
        let after = after.trim_start();
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(key).to_string());
        out.push(':');
        rest = match after.strip_prefix("NULL") {
            Some(a) => {
                out.push_str("null");
                a
            }
            None => {
                let (v, a) = quoted(after).ok_or_else(bad)?;
                out.push_str(&serde_json::Value::String(v).to_string());
                a
            }
        };
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out.push('}');
    Ok(out)
}

/// A `point`'s text (`(1.5,-2)`) as x and y.
pub fn point(text: &str) -> Result<(f64, f64), String> {
    let bad = || format!("`{text}` is not a point");
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (x, y) = inner.split_once(',').ok_or_else(bad)?;
    Ok((
        x.trim().parse().map_err(|_| bad())?,
        y.trim().parse().map_err(|_| bad())?,
    ))
}

/// A bit string's text (`0101`, first bit most significant) as the little-endian bytes of
/// its number, at least `min_bytes` long (Debezium's `Bits`).
pub fn bit_string_little_endian(text: &str, min_bytes: u32) -> Result<Vec<u8>, String> {
    let len = text.len();
    let mut out = vec![0u8; len.div_ceil(8).max(min_bytes as usize)];
    for (i, c) in text.bytes().enumerate() {
        let bit = len - 1 - i;
        match c {
            b'1' => out[bit / 8] |= 1 << (bit % 8),
            b'0' => {}
            _ => return Err(format!("`{text}` is not a bit string")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_c_locale_forms() {
        assert_eq!(money_digits("$1,234.56").unwrap(), "1234.56");
        assert_eq!(money_digits("-$0.50").unwrap(), "-0.50");
        assert_eq!(money_digits("($5.00)").unwrap(), "-5.00");
        assert!(money_digits("1.234,56 €").is_err());
        assert!(money_digits("$").is_err());
    }

    #[test]
    fn hstore_pairs_become_a_json_object() {
        assert_eq!(
            hstore_json(r#""a"=>"1", "b \"q\""=>NULL, "c"=>"x,y""#).unwrap(),
            r#"{"a":"1","b \"q\"":null,"c":"x,y"}"#
        );
        assert_eq!(hstore_json("").unwrap(), "{}");
        assert!(hstore_json(r#""a"=>"#).is_err());
    }

    #[test]
    fn points_and_bits() {
        assert_eq!(point("(1.5,-2)").unwrap(), (1.5, -2.0));
        assert!(point("1,2").is_err());
        assert_eq!(bit_string_little_endian("101", 1).unwrap(), [5]);
        assert_eq!(bit_string_little_endian("0", 2).unwrap(), [0, 0]);
        assert_eq!(bit_string_little_endian("100000000", 0).unwrap(), [0, 1]);
        assert!(bit_string_little_endian("12", 1).is_err());
    }
}
