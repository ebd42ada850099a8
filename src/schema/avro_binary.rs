//! Avro's binary encoding of values that mirror their schema, written without the schema.
//!
//! [`super::avro_value`] builds every value in the exact shape of its schema: a union as
//! `Union(branch, value)`, a record as its fields in schema order, a decimal as `bytes`. Such
//! a value carries all that the binary encoding needs (the Avro specification's "Binary
//! Encoding": zig-zag varints, length-prefixed bytes and strings, blocked arrays, records as
//! their fields in order), so writing it needs no schema lookup: one pass, no allocation
//! beyond the output buffer. apache-avro's own writer resolves named types on every call,
//! which would cost more than the rest of the event's encoding.
//!
//! A UUID is written as its string form (the `uuid` logical type on `string`, the only one
//! tidemark's schemas use) and a big-decimal is refused (tidemark's schemas have none); the
//! unit test of [`super::avro_value`] checks the output against apache-avro's for a row of
//! every type.

use apache_avro::types::Value as Avro;

/// Appends a zig-zag varint `long`.
pub fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends length-prefixed bytes (a `bytes` or `string`).
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Appends the binary encoding of `value`.
pub fn write(out: &mut Vec<u8>, value: &Avro) -> Result<(), String> {
    match value {
        Avro::Null => {}
        Avro::Boolean(b) => out.push(u8::from(*b)),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => write_long(out, i64::from(*i)),
        Avro::Long(i)
        | Avro::TimeMicros(i)
        | Avro::TimestampMillis(i)
        | Avro::TimestampMicros(i)
        | Avro::TimestampNanos(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::LocalTimestampMicros(i)
        | Avro::LocalTimestampNanos(i) => write_long(out, *i),
        Avro::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
        Avro::Double(f) => out.extend_from_slice(&f.to_le_bytes()),
        Avro::Bytes(b) => write_bytes(out, b),
        Avro::String(s) => write_bytes(out, s.as_bytes()),
        Avro::Uuid(u) => write_bytes(out, u.hyphenated().to_string().as_bytes()),
        Avro::Decimal(d) => {
            let bytes: Vec<u8> = d
                .try_into()
                .map_err(|e| format!("a decimal's bytes: {e}"))?;
            write_bytes(out, &bytes);
        }
        Avro::BigDecimal(_) => {
            return Err("a big-decimal needs its schema to be written".into());
        }
        Avro::Fixed(_, b) => out.extend_from_slice(b),
        Avro::Enum(i, _) => write_long(out, i64::from(*i)),
        Avro::Union(i, v) => {
            write_long(out, i64::from(*i));
            write(out, v)?;
        }
        Avro::Array(items) => {
            if !items.is_empty() {
                write_long(out, items.len() as i64);
                for i in items {
                    write(out, i)?;
                }
            }
            out.push(0);
        }
        Avro::Map(entries) => {
            if !entries.is_empty() {
                write_long(out, entries.len() as i64);
                for (k, v) in entries {
                    write_bytes(out, k.as_bytes());
                    write(out, v)?;
                }
            }
            out.push(0);
        }
        Avro::Record(fields) => {
            for (_, v) in fields {
                write(out, v)?;
            }
        }
        Avro::Duration(d) => {
            for part in [
                u32::from(d.months()),
                u32::from(d.days()),
                u32::from(d.millis()),
            ] {
                out.extend_from_slice(&part.to_le_bytes());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_are_zig_zag_varints() {
        let enc = |v: i64| {
            let mut out = Vec::new();
            write_long(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(-1), [1]);
        assert_eq!(enc(1), [2]);
        assert_eq!(enc(-64), [127]);
        assert_eq!(enc(64), [0x80, 1]);
        assert_eq!(enc(i64::MAX).len(), 10);
        let mut min = vec![0xFF; 9];
        min.push(1);
        assert_eq!(enc(i64::MIN), min);
    }
}
