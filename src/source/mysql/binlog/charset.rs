//! Character sets of string columns: collation id (from the TABLE_MAP event) to the bytes'
//! encoding, and decoding to text.
//!
//! The collation-to-charset map is read from the server at connect time
//! (`information_schema.COLLATIONS`), so every collation the server knows is covered; the
//! built-in map below covers the common ones for decoding without a server (tests).

use std::collections::HashMap;

/// How a column's bytes are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb4, utf8mb3 and ascii: UTF-8 bytes.
    Utf8,
    /// MySQL's latin1, which is Windows-1252 with the five unassigned bytes mapped to C1
    /// controls.
    Latin1,
    /// The binary "charset": values are bytes, not text.
    Binary,
    /// UCS-2 / UTF-16 big-endian.
    Utf16Be,
    Utf16Le,
    /// UTF-32 big-endian.
    Utf32Be,
    /// Any other charset (its name): carried as bytes, with a warning naming the column.
    Other(String),
}

impl Charset {
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => Charset::Utf8,
            "latin1" => Charset::Latin1,
            "binary" => Charset::Binary,
            "ucs2" | "utf16" => Charset::Utf16Be,
            "utf16le" => Charset::Utf16Le,
            "utf32" => Charset::Utf32Be,
            other => Charset::Other(other.to_string()),
        }
    }
}

/// Collation id to charset.
///
/// Looked up for every character value of every row, so ids below 4,096 (every
/// collation MySQL 8 and MariaDB 11 define) sit in a table indexed by id; a hash lookup per
/// value cost 2% of the instructions per change of a MariaDB stream (BENCHMARKS.md, session 19).
#[derive(Debug, Clone)]
pub struct CharsetMap {
    dense: Vec<Option<Charset>>,
    sparse: HashMap<u32, Charset>,
}

/// Collation ids below this are kept in the dense table.
const DENSE_IDS: u32 = 4096;

impl Default for CharsetMap {
    fn default() -> Self {
        let mut map = Self {
            dense: Vec::new(),
            sparse: HashMap::new(),
        };
        let ranges: &[(std::ops::RangeInclusive<u32>, Charset)] = &[
            (63..=63, Charset::Binary),
            (45..=46, Charset::Utf8),
            (224..=247, Charset::Utf8),
            (255..=323, Charset::Utf8),
            (33..=33, Charset::Utf8),
            (83..=83, Charset::Utf8),
            (192..=215, Charset::Utf8),
            (223..=223, Charset::Utf8),
            (11..=11, Charset::Utf8),
            (65..=65, Charset::Utf8),
            (5..=5, Charset::Latin1),
            (8..=8, Charset::Latin1),
            (15..=15, Charset::Latin1),
            (31..=31, Charset::Latin1),
            (47..=49, Charset::Latin1),
            (94..=94, Charset::Latin1),
        ];
        for (range, cs) in ranges {
            for id in range.clone() {
                map.insert(id, cs.clone());
            }
        }
        map
    }
}

impl CharsetMap {
    /// A map from `(collation id, charset name)` rows, on top of the built-in one.
    pub fn from_rows(rows: impl IntoIterator<Item = (u32, String)>) -> Self {
        let mut map = Self::default();
        for (id, name) in rows {
            map.insert(id, Charset::from_name(&name));
        }
        map
    }

    fn insert(&mut self, id: u32, charset: Charset) {
        if id < DENSE_IDS {
            let at = id as usize;
            if self.dense.len() <= at {
                self.dense.resize(at + 1, None);
            }
            self.dense[at] = Some(charset);
        } else {
            self.sparse.insert(id, charset);
        }
    }

    pub fn get(&self, collation: u32) -> Charset {
        let known = if collation < DENSE_IDS {
            self.dense.get(collation as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(&collation)
        };
        known
            .cloned()
            .unwrap_or_else(|| Charset::Other(format!("collation {collation}")))
    }
}

const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// Decodes text bytes; `None` when the bytes are not valid in the charset (or it is
/// [`Charset::Binary`] / [`Charset::Other`], which are not text).
pub fn decode(bytes: &[u8], charset: &Charset) -> Option<String> {
    match charset {
        Charset::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Charset::Latin1 => Some(
            bytes
                .iter()
                .map(|b| match b {
                    0x80..=0x9f => WINDOWS_1252_HIGH[usize::from(b - 0x80)],
                    _ => char::from(*b),
                })
                .collect(),
        ),
        Charset::Utf16Be | Charset::Utf16Le => {
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes.chunks_exact(2).map(|c| {
                if *charset == Charset::Utf16Be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Charset::Utf32Be => {
            if bytes.len() % 4 != 0 {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        Charset::Binary | Charset::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_windows_1252() {
        assert_eq!(
            decode(&[0x63, 0x61, 0x66, 0xe9, 0x80], &Charset::Latin1).unwrap(),
            "café€"
        );
        assert_eq!(decode(&[0x81], &Charset::Latin1).unwrap(), "\u{81}");
    }

    #[test]
    fn utf8_and_wide() {
        assert_eq!(decode("a😀".as_bytes(), &Charset::Utf8).unwrap(), "a😀");
        assert_eq!(decode(&[0xff], &Charset::Utf8), None);
        assert_eq!(
            decode(&[0, 0x41, 0xd8, 0x3d, 0xde, 0x00], &Charset::Utf16Be).unwrap(),
            "A😀"
        );
        assert_eq!(decode(&[0x41, 0], &Charset::Utf16Le).unwrap(), "A");
        assert_eq!(
            decode(&[0, 1, 0xf6, 0x00], &Charset::Utf32Be).unwrap(),
            "😀"
        );
        assert_eq!(decode(b"x", &Charset::Binary), None);
    }

    #[test]
    fn map_defaults_and_server_rows() {
        let m = CharsetMap::from_rows([
            (2048, "utf8mb4".to_string()),
            (28, "gbk".to_string()),
            (70_000, "latin1".to_string()),
        ]);
        assert_eq!(m.get(45), Charset::Utf8);
        // Above the dense table, and ids no row names.
        assert_eq!(m.get(70_000), Charset::Latin1);
        assert_eq!(m.get(4000), Charset::Other("collation 4000".into()));
        assert_eq!(m.get(80_000), Charset::Other("collation 80000".into()));
        assert_eq!(m.get(8), Charset::Latin1);
        assert_eq!(m.get(63), Charset::Binary);
        assert_eq!(m.get(2048), Charset::Utf8);
        assert_eq!(m.get(28), Charset::Other("gbk".into()));
    }
}
