//! TABLE_MAP events: which table a following rows event is about, and its shape.
//!
//! With `binlog_row_metadata=FULL` the event's optional metadata carries column names,
//! the primary key, signedness, character sets and ENUM/SET labels, so no DDL parser and no
//! catalog query is needed: the shape of a table at any point of the binlog is the shape its
//! last TABLE_MAP event describes. The optional metadata format is MySQL's
//! (`Table_map_log_event::Optional_metadata_field_type`), written the same way by MariaDB
//! 10.5+, except that MariaDB counts GEOMETRY columns among the character columns.

use super::column_type::BinlogType;
use super::reader::{ByteReader, DecodeResult};

/// One column as a TABLE_MAP event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    /// Empty when the server does not log column names (`binlog_row_metadata=MINIMAL`).
    pub name: String,
    pub ty: BinlogType,
    pub nullable: bool,
    pub unsigned: bool,
    /// Collation id of a character, ENUM or SET column.
    pub collation: Option<u32>,
    /// ENUM or SET labels, as raw bytes in the column's character set.
    pub labels: Vec<Vec<u8>>,
    /// GEOMETRY subtype code (0 geometry, 1 point, ...).
    pub geometry_type: Option<u64>,
}

impl ColumnMeta {
    /// A column `c` of binlog type `code` with metadata `meta`, for tests.
    #[cfg(test)]
    pub fn for_test(code: u8, meta: u16, unsigned: bool, collation: Option<u32>) -> Self {
        Self {
            name: "c".into(),
            ty: BinlogType {
                code,
                wire_code: code,
                meta,
            },
            nullable: true,
            unsigned,
            collation,
            labels: Vec::new(),
            geometry_type: None,
        }
    }
}

/// A decoded TABLE_MAP event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub table_id: u64,
    pub schema: String,
    pub table: String,
    pub columns: Vec<ColumnMeta>,
    /// Primary key columns (indices), in key order.
    pub primary_key: Vec<usize>,
    /// Whether the event carried column names (FULL metadata).
    pub has_names: bool,
}

mod field {
    pub const SIGNEDNESS: u8 = 1;
    pub const DEFAULT_CHARSET: u8 = 2;
    pub const COLUMN_CHARSET: u8 = 3;
    pub const COLUMN_NAME: u8 = 4;
    pub const SET_STR_VALUE: u8 = 5;
    pub const ENUM_STR_VALUE: u8 = 6;
    pub const GEOMETRY_TYPE: u8 = 7;
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
    pub const ENUM_AND_SET_DEFAULT_CHARSET: u8 = 10;
    pub const ENUM_AND_SET_COLUMN_CHARSET: u8 = 11;
}

impl TableMap {
    /// Decodes a TABLE_MAP event body (after the common header, without the checksum).
    /// `mariadb` selects MariaDB's counting of character columns.
    pub fn decode(body: &[u8], mariadb: bool) -> DecodeResult<Self> {
        let mut r = ByteReader::new(body);
        let table_id = r.uint_le(6, "table id")?;
        r.skip(2, "flags")?;
        let schema = name(&mut r, "schema name")?;
        let table = name(&mut r, "table name")?;
        let count = r.lenenc("column count")?;
        let count = usize::try_from(count)
            .ok()
            .filter(|c| *c >= 1 && *c <= r.remaining() && *c <= 4096)
            .ok_or_else(|| r.error(format!("column count {count} is impossible")))?;
        let types = r.take(count, "column types")?;
        let meta = r.lenenc_bytes("column metadata")?;
        let mut mr = ByteReader::new(meta);
        let mut columns = Vec::with_capacity(count);
        for (i, wire) in types.iter().enumerate() {
            let ty = BinlogType::read(*wire, &mut mr)
                .map_err(|e| r.error(format!("metadata of column {}: {}", i + 1, e.what)))?;
            columns.push(ColumnMeta {
                name: String::new(),
                ty,
                nullable: true,
                unsigned: false,
                collation: None,
                labels: Vec::new(),
                geometry_type: None,
            });
        }
        let nulls = r.take(count.div_ceil(8), "null bitmap")?;
        for (i, c) in columns.iter_mut().enumerate() {
            c.nullable = nulls[i / 8] & (1 << (i % 8)) != 0;
        }
        let mut map = TableMap {
            table_id,
            schema,
            table,
            columns,
            primary_key: Vec::new(),
            has_names: false,
        };
        while !r.is_empty() {
            let kind = r.u8("optional metadata type")?;
            let value = r.lenenc_bytes("optional metadata value")?;
            map.apply_optional(kind, value, mariadb)
                .map_err(|e| r.error(format!("optional metadata field {kind}: {}", e.what)))?;
        }
        Ok(map)
    }

    fn indices(&self, pick: impl Fn(&ColumnMeta) -> bool) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|i| pick(&self.columns[*i]))
            .collect()
    }

    fn apply_optional(&mut self, kind: u8, value: &[u8], mariadb: bool) -> DecodeResult<()> {
        let mut v = ByteReader::new(value);
        match kind {
            field::SIGNEDNESS => {
                for (k, i) in self.indices(|c| c.ty.is_numeric()).into_iter().enumerate() {
                    let byte = value.get(k / 8).copied().unwrap_or(0);
                    self.columns[i].unsigned = byte & (0x80 >> (k % 8)) != 0;
                }
            }
            field::DEFAULT_CHARSET | field::ENUM_AND_SET_DEFAULT_CHARSET => {
                let targets = if kind == field::DEFAULT_CHARSET {
                    self.indices(|c| c.ty.is_character(mariadb))
                } else {
                    self.indices(|c| c.ty.is_enum_or_set())
                };
                let default = collation(&mut v)?;
                for i in &targets {
                    self.columns[*i].collation = Some(default);
                }
                while !v.is_empty() {
                    let k = v.lenenc("column index")?;
                    let c = collation(&mut v)?;
                    let i = usize::try_from(k)
                        .ok()
                        .and_then(|k| targets.get(k))
                        .ok_or_else(|| {
                            v.error(format!("charset for column #{k} of {}", targets.len()))
                        })?;
                    self.columns[*i].collation = Some(c);
                }
            }
            field::COLUMN_CHARSET | field::ENUM_AND_SET_COLUMN_CHARSET => {
                let targets = if kind == field::COLUMN_CHARSET {
                    self.indices(|c| c.ty.is_character(mariadb))
                } else {
                    self.indices(|c| c.ty.is_enum_or_set())
                };
                for i in targets {
                    self.columns[i].collation = Some(collation(&mut v)?);
                }
            }
            field::COLUMN_NAME => {
                for c in self.columns.iter_mut() {
                    let raw = v.lenenc_bytes("column name")?;
                    c.name = String::from_utf8_lossy(raw).into_owned();
                }
                self.has_names = true;
            }
            field::SET_STR_VALUE | field::ENUM_STR_VALUE => {
                let code = if kind == field::SET_STR_VALUE {
                    super::column_type::SET
                } else {
                    super::column_type::ENUM
                };
                for i in self.indices(|c| c.ty.code == code) {
                    let n = v.lenenc("label count")?;
                    if n > v.remaining() as u64 {
                        return Err(v.error(format!("{n} labels cannot fit")));
                    }
                    let mut labels = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        labels.push(v.lenenc_bytes("label")?.to_vec());
                    }
                    self.columns[i].labels = labels;
                }
            }
            field::GEOMETRY_TYPE => {
                for i in self.indices(|c| c.ty.code == super::column_type::GEOMETRY) {
                    self.columns[i].geometry_type = Some(v.lenenc("geometry type")?);
                }
            }
            field::SIMPLE_PRIMARY_KEY | field::PRIMARY_KEY_WITH_PREFIX => {
                let mut key = Vec::new();
                while !v.is_empty() {
                    let i = v.lenenc("primary key column")?;
                    if kind == field::PRIMARY_KEY_WITH_PREFIX {
                        v.lenenc("primary key prefix")?;
                    }
                    let i = usize::try_from(i)
                        .ok()
                        .filter(|i| *i < self.columns.len())
                        .ok_or_else(|| v.error(format!("primary key column {i} does not exist")))?;
                    key.push(i);
                }
                self.primary_key = key;
            }
            // Column visibility and fields of newer servers do not change decoding.
            _ => {}
        }
        Ok(())
    }
}

fn name(r: &mut ByteReader<'_>, what: &str) -> DecodeResult<String> {
    let len = r.u8(what)?;
    let raw = r.take(usize::from(len), what)?;
    r.skip(1, what)?;
    Ok(String::from_utf8_lossy(raw).into_owned())
}

fn collation(v: &mut ByteReader<'_>) -> DecodeResult<u32> {
    let c = v.lenenc("collation id")?;
    u32::try_from(c).map_err(|_| v.error(format!("collation id {c} is out of range")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::column_type as t;
    use super::*;

    /// Builds a TABLE_MAP body: id 42, `db`.`tbl`.
    pub(crate) fn body(
        types: &[u8],
        meta: &[u8],
        nulls: &[u8],
        optional: &[(u8, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = vec![42, 0, 0, 0, 0, 0, 1, 0];
        b.extend([2, b'd', b'b', 0, 3, b't', b'b', b'l', 0]);
        b.push(types.len() as u8);
        b.extend(types);
        b.push(meta.len() as u8);
        b.extend(meta);
        b.extend(nulls);
        for (k, v) in optional {
            b.push(*k);
            b.push(v.len() as u8);
            b.extend(v);
        }
        b
    }

    fn names(names: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in names {
            v.push(n.len() as u8);
            v.extend(n.as_bytes());
        }
        v
    }

    #[test]
    fn full_metadata() {
        // id INT UNSIGNED PK, e ENUM('a','b'), v VARCHAR(10) latin1, g GEOMETRY, d DECIMAL(10,2)
        let types = [t::LONG, t::STRING, t::VARCHAR, t::GEOMETRY, t::NEWDECIMAL];
        let meta = [0xf7, 0x01, 10, 0, 4, 10, 2];
        let optional = vec![
            (field::SIGNEDNESS, vec![0b1000_0000]),
            // utf8mb4 default, character column #0 (v) is latin1 (8); MariaDB counts g as #1.
            (field::DEFAULT_CHARSET, vec![45, 0, 8, 1, 63]),
            (field::COLUMN_NAME, names(&["id", "e", "v", "g", "d"])),
            (field::ENUM_STR_VALUE, vec![2, 1, b'a', 1, b'b']),
            (field::GEOMETRY_TYPE, vec![1]),
            (field::SIMPLE_PRIMARY_KEY, vec![0]),
            (field::ENUM_AND_SET_DEFAULT_CHARSET, vec![45]),
        ];
        let m = TableMap::decode(&body(&types, &meta, &[0b11110], &optional), true).unwrap();
        assert_eq!(m.table_id, 42);
        assert_eq!((m.schema.as_str(), m.table.as_str()), ("db", "tbl"));
        assert!(m.has_names);
        let c = &m.columns;
        assert_eq!(c[0].name, "id");
        assert!(c[0].unsigned && !c[0].nullable);
        assert!(!c[4].unsigned && c[4].nullable);
        assert_eq!(c[1].ty.code, t::ENUM);
        assert_eq!(c[1].labels, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(c[1].collation, Some(45));
        assert_eq!(c[2].collation, Some(8));
        assert_eq!(c[3].collation, Some(63));
        assert_eq!(c[3].geometry_type, Some(1));
        assert_eq!(m.primary_key, vec![0]);
    }

    #[test]
    fn malformed_table_maps_are_errors() {
        let good = body(&[t::LONG], &[], &[0], &[]);
        for cut in 0..good.len() - 1 {
            assert!(
                TableMap::decode(&good[..cut], false).is_err(),
                "cut at {cut}"
            );
        }
        // A primary key naming a column that does not exist.
        let bad = body(
            &[t::LONG],
            &[],
            &[0],
            &[(field::SIMPLE_PRIMARY_KEY, vec![3])],
        );
        let e = TableMap::decode(&bad, false).unwrap_err();
        assert!(e.what.contains("primary key"), "{e}");
    }
}
