//! MySQL's binary JSON format (`json_binary.h`, MySQL 5.7+), decoded to JSON text.
//!
//! A value is a type byte followed by its data. Objects and arrays come in a small (16-bit
//! counts and offsets) and a large (32-bit) form: element count, total size, then key
//! entries (offset, length) for objects, then value entries (type, offset or inlined value),
//! offsets being relative to the start of the container. Literals and 16-bit integers (and
//! 32-bit ones in the large form) are inlined in their entry. Scalars: int16..uint64, double,
//! string (variable-length length, 7 bits a byte), and "opaque" values that carry a MySQL
//! column type (DECIMAL, DATE, TIME, DATETIME, TIMESTAMP, or raw bytes).
//! MariaDB stores JSON as text and never uses this format.

use std::fmt::Write as _;

use super::column_type as t;
use super::reader::{ByteReader, DecodeError, DecodeResult};

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0a;
const DOUBLE: u8 = 0x0b;
const STRING: u8 = 0x0c;
const OPAQUE: u8 = 0x0f;

const MAX_DEPTH: usize = 150;

/// Decodes a whole binary JSON document to JSON text. An empty document is JSON `null`.
pub fn to_json_text(doc: &[u8]) -> DecodeResult<String> {
    let mut out = String::with_capacity(doc.len() * 2);
    if doc.is_empty() {
        out.push_str("null");
        return Ok(out);
    }
    let ty = doc[0];
    write_value(ty, &doc[1..], &mut out, 0).map_err(|e| DecodeError {
        what: format!("binary JSON: {}", e.what),
        offset: e.offset + 1,
    })?;
    Ok(out)
}

fn err(what: impl Into<String>, offset: usize) -> DecodeError {
    DecodeError {
        what: what.into(),
        offset,
    }
}

/// Writes the value of type `ty` whose data starts at `data[0]`.
fn write_value(ty: u8, data: &[u8], out: &mut String, depth: usize) -> DecodeResult<()> {
    if depth > MAX_DEPTH {
        return Err(err("nested deeper than 150 levels", 0));
    }
    let mut r = ByteReader::new(data);
    match ty {
        SMALL_OBJECT | LARGE_OBJECT => write_container(data, ty == LARGE_OBJECT, true, out, depth),
        SMALL_ARRAY | LARGE_ARRAY => write_container(data, ty == LARGE_ARRAY, false, out, depth),
        LITERAL => write_literal(r.u8("literal")?, out),
        INT16 => {
            let _ = write!(out, "{}", r.uint_le(2, "int16")? as u16 as i16);
            Ok(())
        }
        UINT16 => {
            let _ = write!(out, "{}", r.uint_le(2, "uint16")?);
            Ok(())
        }
        INT32 => {
            let _ = write!(out, "{}", r.u32_le("int32")? as i32);
            Ok(())
        }
        UINT32 => {
            let _ = write!(out, "{}", r.u32_le("uint32")?);
            Ok(())
        }
        INT64 => {
            let _ = write!(out, "{}", r.u64_le("int64")? as i64);
            Ok(())
        }
        UINT64 => {
            let _ = write!(out, "{}", r.u64_le("uint64")?);
            Ok(())
        }
        DOUBLE => {
            let f = f64::from_bits(r.u64_le("double")?);
            match serde_json::Number::from_f64(f) {
                Some(n) => out.push_str(&n.to_string()),
                None => return Err(r.error(format!("double {f} is not a JSON number"))),
            }
            Ok(())
        }
        STRING => {
            let len = var_len(&mut r)?;
            let bytes = r.take(len, "string")?;
            let s = std::str::from_utf8(bytes).map_err(|_| r.error("string is not UTF-8"))?;
            push_json_string(s, out);
            Ok(())
        }
        OPAQUE => {
            let field_type = r.u8("opaque type")?;
            let len = var_len(&mut r)?;
            let bytes = r.take(len, "opaque value")?;
            write_opaque(field_type, bytes, out).map_err(|e| err(e.what, e.offset + r.offset()))
        }
        other => Err(r.error(format!("unknown value type {other:#04x}"))),
    }
}

fn write_literal(v: u8, out: &mut String) -> DecodeResult<()> {
    out.push_str(match v {
        0 => "null",
        1 => "true",
        2 => "false",
        other => return Err(err(format!("unknown literal {other}"), 0)),
    });
    Ok(())
}

/// A length stored 7 bits a byte, low bits first, at most 5 bytes.
fn var_len(r: &mut ByteReader<'_>) -> DecodeResult<usize> {
    let mut len: u64 = 0;
    for i in 0..5 {
        let b = r.u8("length")?;
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(len).map_err(|_| r.error("length overflows"));
        }
    }
    Err(r.error("length longer than 5 bytes"))
}

fn write_container(
    data: &[u8],
    large: bool,
    object: bool,
    out: &mut String,
    depth: usize,
) -> DecodeResult<()> {
    let w = if large { 4 } else { 2 };
    let mut r = ByteReader::new(data);
    let count = r.uint_le(w, "element count")? as usize;
    let size = r.uint_le(w, "container size")? as usize;
    if size > data.len() {
        return Err(r.error(format!(
            "container size {size} exceeds the {} bytes there",
            data.len()
        )));
    }
    let data = &data[..size];
    let header = 2 * w + count * (if object { w + 2 } else { 0 }) + count * (1 + w);
    if header > size {
        return Err(r.error(format!("{count} entries do not fit in {size} bytes")));
    }
    let key_entries = 2 * w;
    let value_entries = key_entries + if object { count * (w + 2) } else { 0 };
    out.push(if object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        if object {
            let mut k = ByteReader::new(&data[key_entries + i * (w + 2)..]);
            let off = k.uint_le(w, "key offset")? as usize;
            let len = k.uint_le(2, "key length")? as usize;
            let key = data
                .get(off..off + len)
                .ok_or_else(|| err(format!("key {i} lies outside its object"), key_entries))?;
            let key = std::str::from_utf8(key).map_err(|_| err("key is not UTF-8", off))?;
            push_json_string(key, out);
            out.push(':');
        }
        let entry_at = value_entries + i * (1 + w);
        let mut e = ByteReader::new(&data[entry_at..]);
        let ty = e.u8("value type")?;
        let inlined =
            matches!(ty, LITERAL | INT16 | UINT16) || (large && matches!(ty, INT32 | UINT32));
        if inlined {
            let bytes = e.take(w, "inlined value")?;
            write_value(ty, bytes, out, depth + 1).map_err(|x| err(x.what, entry_at + 1))?;
        } else {
            let off = e.uint_le(w, "value offset")? as usize;
            if off < header || off >= size {
                return Err(err(
                    format!("value {i} offset {off} lies outside its container"),
                    entry_at,
                ));
            }
            write_value(ty, &data[off..], out, depth + 1)
                .map_err(|x| err(x.what, off + x.offset))?;
        }
    }
    out.push(if object { '}' } else { ']' });
    Ok(())
}

fn push_json_string(s: &str, out: &mut String) {
    // serde_json's escaping of a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Opaque values: MySQL renders DECIMAL as a number and temporal types as quoted strings;
/// anything else as `"base64:typeNN:..."`.
fn write_opaque(field_type: u8, bytes: &[u8], out: &mut String) -> DecodeResult<()> {
    let mut r = ByteReader::new(bytes);
    match field_type {
        t::NEWDECIMAL => {
            let precision = r.u8("decimal precision")?;
            let scale = r.u8("decimal scale")?;
            out.push_str(&super::decimal::decode(&mut r, precision, scale)?);
        }
        t::DATE | t::NEWDATE | t::DATETIME | t::TIMESTAMP | t::DATETIME2 | t::TIMESTAMP2 => {
            let packed = r.u64_le("packed datetime")? as i64;
            let text = packed_datetime(packed, field_type == t::DATE || field_type == t::NEWDATE);
            push_json_string(&text, out);
        }
        t::TIME | t::TIME2 => {
            let packed = r.u64_le("packed time")? as i64;
            push_json_string(&packed_time(packed), out);
        }
        other => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            push_json_string(&format!("base64:type{other}:{b64}"), out);
        }
    }
    Ok(())
}

/// MySQL's in-memory packed DATETIME (`TIME_to_longlong_datetime_packed`).
fn packed_datetime(packed: i64, date_only: bool) -> String {
    let abs = packed.unsigned_abs();
    let frac = abs % (1 << 24);
    let ymdhms = abs >> 24;
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    let (year, month, day) = (ym / 13, ym % 13, ymd % (1 << 5));
    let (h, m, s) = (hms >> 12, (hms >> 6) % (1 << 6), hms % (1 << 6));
    if date_only {
        return format!("{year:04}-{month:02}-{day:02}");
    }
    let mut text = format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}");
    if frac != 0 {
        let _ = write!(text, ".{frac:06}");
    }
    text
}

/// MySQL's in-memory packed TIME (`TIME_to_longlong_time_packed`).
fn packed_time(packed: i64) -> String {
    let abs = packed.unsigned_abs();
    let frac = abs % (1 << 24);
    let hms = abs >> 24;
    let (h, m, s) = (
        (hms >> 12) % (1 << 10),
        (hms >> 6) % (1 << 6),
        hms % (1 << 6),
    );
    let sign = if packed < 0 { "-" } else { "" };
    let mut text = format!("{sign}{h:02}:{m:02}:{s:02}");
    if frac != 0 {
        let _ = write!(text, ".{frac:06}");
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a serde_json value in MySQL's binary format (small containers), for tests.
    pub(crate) fn encode(v: &serde_json::Value) -> Vec<u8> {
        let (ty, data) = encode_value(v);
        let mut out = vec![ty];
        out.extend(data);
        out
    }

    fn encode_value(v: &serde_json::Value) -> (u8, Vec<u8>) {
        use serde_json::Value as J;
        match v {
            J::Null => (LITERAL, vec![0]),
            J::Bool(b) => (LITERAL, vec![if *b { 1 } else { 2 }]),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    (INT64, i.to_le_bytes().to_vec())
                } else if let Some(u) = n.as_u64() {
                    (UINT64, u.to_le_bytes().to_vec())
                } else {
                    (DOUBLE, n.as_f64().unwrap().to_le_bytes().to_vec())
                }
            }
            J::String(s) => {
                let mut d = Vec::new();
                let mut len = s.len();
                loop {
                    let b = (len & 0x7f) as u8;
                    len >>= 7;
                    if len == 0 {
                        d.push(b);
                        break;
                    }
                    d.push(b | 0x80);
                }
                d.extend(s.as_bytes());
                (STRING, d)
            }
            J::Array(items) => (SMALL_ARRAY, container(None, items.iter().collect())),
            J::Object(map) => {
                let keys: Vec<&String> = map.keys().collect();
                (SMALL_OBJECT, container(Some(keys), map.values().collect()))
            }
        }
    }

    fn container(keys: Option<Vec<&String>>, values: Vec<&serde_json::Value>) -> Vec<u8> {
        let n = values.len();
        let header = 4 + keys.as_ref().map_or(0, |_| n * 4) + n * 3;
        let mut tail = Vec::new();
        let mut key_entries = Vec::new();
        if let Some(keys) = &keys {
            for k in keys {
                key_entries.extend(((header + tail.len()) as u16).to_le_bytes());
                key_entries.extend((k.len() as u16).to_le_bytes());
                tail.extend(k.as_bytes());
            }
        }
        let mut value_entries = Vec::new();
        for v in values {
            let (ty, data) = encode_value(v);
            value_entries.push(ty);
            if ty == LITERAL {
                value_entries.extend([data[0], 0]);
            } else {
                value_entries.extend(((header + tail.len()) as u16).to_le_bytes());
                tail.extend(data);
            }
        }
        let size = header + tail.len();
        let mut out = Vec::new();
        out.extend((n as u16).to_le_bytes());
        out.extend((size as u16).to_le_bytes());
        out.extend(key_entries);
        out.extend(value_entries);
        out.extend(tail);
        out
    }

    fn round_trip(text: &str) {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let decoded = to_json_text(&encode(&v)).unwrap();
        let back: serde_json::Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(back, v, "{decoded}");
    }

    #[test]
    fn documents_round_trip() {
        round_trip(
            r#"{"a":1,"b":[true,false,null,"x😀"],"c":{"d":-2.5,"e":18446744073709551615}}"#,
        );
        round_trip("[]");
        round_trip("{}");
        round_trip(r#""just a string""#);
        round_trip("-9223372036854775808");
        assert_eq!(to_json_text(&[]).unwrap(), "null");
    }

    #[test]
    fn hand_written_bytes() {
        // Small array [1, "ab"] with an inlined int16 and a string at offset 10.
        let doc = [
            SMALL_ARRAY,
            2,
            0,
            13,
            0,
            INT16,
            1,
            0,
            STRING,
            10,
            0,
            2,
            b'a',
            b'b',
        ];
        assert_eq!(to_json_text(&doc).unwrap(), r#"[1,"ab"]"#);
        // An opaque DECIMAL(4,2) 12.34 and an opaque DATETIME.
        let dec = super::super::decimal::tests::encode("12.34", 4, 2);
        let mut d = vec![OPAQUE, t::NEWDECIMAL, (dec.len() + 2) as u8, 4, 2];
        d.extend(&dec);
        assert_eq!(to_json_text(&d).unwrap(), "12.34");
        let ymd: i64 = ((2024 * 13 + 5) << 5) | 6;
        let packed: i64 = (((ymd << 17) | (7 << 12) | (8 << 6) | 9) << 24) | 500_000;
        let mut d = vec![OPAQUE, t::DATETIME2, 8];
        d.extend(packed.to_le_bytes());
        assert_eq!(to_json_text(&d).unwrap(), r#""2024-05-06 07:08:09.500000""#);
    }

    #[test]
    fn malformed_documents_are_errors() {
        let doc = encode(&serde_json::json!({"k": [1, 2, "three"]}));
        for cut in 1..doc.len() {
            assert!(to_json_text(&doc[..cut]).is_err(), "cut at {cut}");
        }
        assert!(to_json_text(&[0x42]).is_err());
        assert!(to_json_text(&[LITERAL, 9]).is_err());
        // An offset pointing back into the header.
        assert!(to_json_text(&[SMALL_ARRAY, 1, 0, 8, 0, STRING, 1, 0]).is_err());
    }
}
