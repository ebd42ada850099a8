//! Column masks: `redact`, `hash` (HMAC-SHA256 under the daemon's salt) and `truncate`.
//!
//! A mask changes a value, never its absence: NULL stays NULL and a value the log did not
//! carry stays unavailable (masking the marker would invent a value). A hashed value is the
//! lower-case hex HMAC-SHA256 of the value's text (see [`crate::value::text_form`]) under the
//! salt, so equal values hash equally across tables and restarts (keys keep compacting,
//! joins keep working) while the salt keeps dictionary attacks out.

use hmac::Mac;

use crate::config::table::Mask;
use crate::config::Secret;
use crate::event::ColumnDef;
use crate::value::{text_form, ColumnType, Value};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A mask ready to apply (the salt's HMAC state prepared once).
#[derive(Clone)]
pub enum CompiledMask {
    Redact(Option<String>),
    Hash(HmacSha256),
    Truncate(usize),
}

impl CompiledMask {
    /// Prepares `mask` for column `column`; the error says why the pair does not fit.
    pub fn new(mask: &Mask, column: &ColumnDef, salt: Option<&Secret>) -> Result<Self, String> {
        Ok(match mask {
            Mask::Redact(text) => CompiledMask::Redact(text.clone()),
            Mask::Hash => {
                let salt = salt.ok_or_else(|| {
                    "a `hash` mask needs the salt: set router.hash_salt_env or router.hash_salt_file \
                     in the daemon file"
                        .to_string()
                })?;
                CompiledMask::Hash(
                    HmacSha256::new_from_slice(salt.expose().as_bytes())
                        .map_err(|e| format!("the hash salt cannot key HMAC-SHA256: {e}"))?,
                )
            }
            Mask::Truncate(n) => match column.column_type {
                ColumnType::Text | ColumnType::Bytes | ColumnType::Other(_) => {
                    CompiledMask::Truncate(*n)
                }
                ref t => {
                    return Err(format!(
                        "`truncate` applies to text and binary columns; column `{}` is {t:?}",
                        column.name
                    ))
                }
            },
        })
    }

    /// The column as the messages describe it once masked.
    pub fn masked_column(&self, column: &ColumnDef) -> ColumnDef {
        match self {
            CompiledMask::Redact(text) => ColumnDef {
                name: column.name.clone(),
                column_type: ColumnType::Text,
                nullable: column.nullable || text.is_none(),
            },
            CompiledMask::Hash(_) => ColumnDef {
                name: column.name.clone(),
                column_type: ColumnType::Text,
                nullable: column.nullable,
            },
            CompiledMask::Truncate(_) => column.clone(),
        }
    }

    /// Masks one value in place.
    pub fn apply(&self, value: &mut Value) {
        if matches!(value, Value::Null | Value::Unavailable) {
            return;
        }
        match self {
            CompiledMask::Redact(text) => {
                *value = text
                    .as_ref()
                    .map_or(Value::Null, |t| Value::Text(t.clone()))
            }
            CompiledMask::Hash(mac) => {
                let mut mac = mac.clone();
                match &*value {
                    Value::Bytes(b) => mac.update(b),
                    other => mac.update(text_form(other).unwrap_or_default().as_bytes()),
                }
                *value = Value::Text(hex(&mac.finalize().into_bytes()));
            }
            CompiledMask::Truncate(n) => match value {
                Value::Text(s) => {
                    if let Some((cut, _)) = s.char_indices().nth(*n) {
                        s.truncate(cut);
                    }
                }
                Value::Bytes(b) => b.truncate(*n),
                _ => {}
            },
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: ColumnType) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            column_type: t,
            nullable: false,
        }
    }

    #[test]
    fn hash_is_hmac_sha256_hex_of_the_text() {
        let salt = Secret::new("key");
        let m = CompiledMask::new(&Mask::Hash, &col(ColumnType::Text), Some(&salt)).unwrap();
        let mut v = Value::Text("The quick brown fox jumps over the lazy dog".into());
        m.apply(&mut v);
        // RFC 4231-style reference value (HMAC-SHA256, key "key").
        assert_eq!(
            v,
            Value::Text("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8".into())
        );
        let mut n = Value::Int(42);
        let mut t = Value::Text("42".into());
        m.apply(&mut n);
        m.apply(&mut t);
        assert_eq!(n, t, "a value hashes by its text");
        let mut null = Value::Null;
        m.apply(&mut null);
        assert_eq!(null, Value::Null);
        assert!(CompiledMask::new(&Mask::Hash, &col(ColumnType::Text), None)
            .err()
            .unwrap()
            .contains("hash_salt_env"));
    }

    #[test]
    fn redact_and_truncate() {
        let mut v = Value::Text("secret".into());
        CompiledMask::Redact(Some("***".into())).apply(&mut v);
        assert_eq!(v, Value::Text("***".into()));
        CompiledMask::Redact(None).apply(&mut v);
        assert_eq!(v, Value::Null);
        let t = CompiledMask::new(&Mask::Truncate(3), &col(ColumnType::Text), None).unwrap();
        let mut v = Value::Text("héllo".into());
        t.apply(&mut v);
        assert_eq!(v, Value::Text("hél".into()));
        let mut short = Value::Text("hi".into());
        t.apply(&mut short);
        assert_eq!(short, Value::Text("hi".into()));
        assert!(CompiledMask::new(&Mask::Truncate(3), &col(ColumnType::Int32), None).is_err());
        let mut u = Value::Unavailable;
        CompiledMask::Redact(None).apply(&mut u);
        assert_eq!(u, Value::Unavailable);
    }
}
