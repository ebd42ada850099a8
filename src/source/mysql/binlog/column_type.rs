//! Binlog column type codes (`enum_field_types`) and the per-type metadata a TABLE_MAP event
//! carries for each column.

use super::reader::{ByteReader, DecodeResult};

pub const DECIMAL: u8 = 0;
pub const TINY: u8 = 1;
pub const SHORT: u8 = 2;
pub const LONG: u8 = 3;
pub const FLOAT: u8 = 4;
pub const DOUBLE: u8 = 5;
pub const NULL: u8 = 6;
pub const TIMESTAMP: u8 = 7;
pub const LONGLONG: u8 = 8;
pub const INT24: u8 = 9;
pub const DATE: u8 = 10;
pub const TIME: u8 = 11;
pub const DATETIME: u8 = 12;
pub const YEAR: u8 = 13;
pub const NEWDATE: u8 = 14;
pub const VARCHAR: u8 = 15;
pub const BIT: u8 = 16;
pub const TIMESTAMP2: u8 = 17;
pub const DATETIME2: u8 = 18;
pub const TIME2: u8 = 19;
pub const JSON: u8 = 245;
pub const NEWDECIMAL: u8 = 246;
pub const ENUM: u8 = 247;
pub const SET: u8 = 248;
pub const TINY_BLOB: u8 = 249;
pub const MEDIUM_BLOB: u8 = 250;
pub const LONG_BLOB: u8 = 251;
pub const BLOB: u8 = 252;
pub const VAR_STRING: u8 = 253;
pub const STRING: u8 = 254;
pub const GEOMETRY: u8 = 255;

/// The SQL-ish name of a binlog type, for messages.
pub fn type_name(code: u8) -> &'static str {
    match code {
        DECIMAL => "DECIMAL(old)",
        TINY => "TINYINT",
        SHORT => "SMALLINT",
        LONG => "INT",
        FLOAT => "FLOAT",
        DOUBLE => "DOUBLE",
        NULL => "NULL",
        TIMESTAMP | TIMESTAMP2 => "TIMESTAMP",
        LONGLONG => "BIGINT",
        INT24 => "MEDIUMINT",
        DATE | NEWDATE => "DATE",
        TIME | TIME2 => "TIME",
        DATETIME | DATETIME2 => "DATETIME",
        YEAR => "YEAR",
        VARCHAR | VAR_STRING => "VARCHAR",
        BIT => "BIT",
        JSON => "JSON",
        NEWDECIMAL => "DECIMAL",
        ENUM => "ENUM",
        SET => "SET",
        TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | BLOB => "BLOB",
        STRING => "CHAR",
        GEOMETRY => "GEOMETRY",
        _ => "unknown",
    }
}

/// One column's type as the binlog describes it: the real type (CHAR columns that are really
/// ENUM or SET are resolved) and its decoded metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinlogType {
    /// The real type code (`ENUM`/`SET` instead of `STRING` where the metadata says so;
    /// `NEWDATE` for `DATE`).
    pub code: u8,
    /// The type code as written in the event.
    pub wire_code: u8,
    /// Metadata, decoded per type:
    /// FLOAT/DOUBLE/BLOB/JSON/GEOMETRY: pack length; VARCHAR/STRING: maximum length in bytes;
    /// ENUM/SET: storage bytes; NEWDECIMAL: `precision << 8 | scale`; BIT: `bytes << 8 | bits`;
    /// TIME2/DATETIME2/TIMESTAMP2: fractional digits.
    pub meta: u16,
}

impl BinlogType {
    /// Reads the metadata of a column of wire type `wire_code` from the TABLE_MAP metadata
    /// block.
    pub fn read(wire_code: u8, r: &mut ByteReader<'_>) -> DecodeResult<Self> {
        let what = "column metadata";
        let (code, meta) = match wire_code {
            FLOAT | DOUBLE | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | JSON | GEOMETRY
            | TIME2 | DATETIME2 | TIMESTAMP2 => (wire_code, u16::from(r.u8(what)?)),
            VARCHAR | BIT => (wire_code, r.u16_le(what)?),
            NEWDECIMAL => {
                let precision = r.u8(what)?;
                let scale = r.u8(what)?;
                (wire_code, u16::from(precision) << 8 | u16::from(scale))
            }
            STRING | ENUM | SET => {
                let byte0 = r.u8(what)?;
                let byte1 = r.u8(what)?;
                if byte0 == 0 {
                    (STRING, u16::from(byte1))
                } else if (byte0 & 0x30) != 0x30 {
                    // A CHAR longer than 255 bytes: two high bits of the length live in byte0.
                    let len = u16::from(byte1) | (u16::from((byte0 & 0x30) ^ 0x30) << 4);
                    (byte0 | 0x30, len)
                } else {
                    (byte0, u16::from(byte1))
                }
            }
            DATE => (NEWDATE, 0),
            _ => (wire_code, 0),
        };
        if matches!(wire_code, STRING | ENUM | SET) && !matches!(code, STRING | ENUM | SET) {
            return Err(r.error(format!(
                "a CHAR column declares real type {code}, expected CHAR, ENUM or SET"
            )));
        }
        Ok(Self {
            code,
            wire_code,
            meta,
        })
    }

    /// Whether the signedness bitmap has a bit for this column.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.code,
            TINY | SHORT | INT24 | LONG | LONGLONG | NEWDECIMAL | FLOAT | DOUBLE
        )
    }

    /// Whether the character-set lists count this column. MariaDB counts GEOMETRY too (with
    /// the binary collation); MySQL does not.
    pub fn is_character(&self, mariadb: bool) -> bool {
        matches!(
            self.code,
            STRING | VAR_STRING | VARCHAR | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB
        ) || (mariadb && self.code == GEOMETRY)
    }

    pub fn is_enum_or_set(&self) -> bool {
        matches!(self.code, ENUM | SET)
    }

    pub fn name(&self) -> &'static str {
        type_name(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(code: u8, bytes: &[u8]) -> BinlogType {
        BinlogType::read(code, &mut ByteReader::new(bytes)).unwrap()
    }

    #[test]
    fn string_metadata_resolves_real_types_and_long_char() {
        assert_eq!(read(STRING, &[0xf7, 0x01]).code, ENUM);
        assert_eq!(read(STRING, &[0xf8, 0x02]).code, SET);
        let c = read(STRING, &[0xfe, 0x0c]);
        assert_eq!((c.code, c.meta), (STRING, 12));
        // CHAR(255) in utf8mb4: 1020 bytes = 0x3fc -> byte0 = 0xfe ^ (0x300 >> 4) = 0xce.
        let c = read(STRING, &[0xce, 0xfc]);
        assert_eq!((c.code, c.meta), (STRING, 1020));
        assert!(BinlogType::read(STRING, &mut ByteReader::new(&[0x0f, 0x01])).is_err());
    }

    #[test]
    fn fixed_metadata_sizes() {
        assert_eq!(read(VARCHAR, &[0x10, 0x01]).meta, 272);
        assert_eq!(read(NEWDECIMAL, &[10, 2]).meta, 10 << 8 | 2);
        assert_eq!(read(DATETIME2, &[6]).meta, 6);
        assert_eq!(read(LONG, &[]).meta, 0);
        assert_eq!(read(DATE, &[]).code, NEWDATE);
        assert!(BinlogType::read(VARCHAR, &mut ByteReader::new(&[1])).is_err());
    }
}
