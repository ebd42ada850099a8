//! A table's plan from the catalog: its shape from `information_schema`, mapped to what a
//! TABLE_MAP event carries (type codes, metadata, signedness, collations, ENUM/SET labels,
//! primary key) and turned into the event schema by the binlog decoder's own `table_schema`,
//! the key columns and how each key bound is bound.

use std::sync::Arc;

use super::super::binlog::charset::CharsetMap;
use super::super::binlog::column_type::{self as t, BinlogType};
use super::super::binlog::table_map::{ColumnMeta, TableMap};
use super::super::decoder::table_schema;
use super::super::setup::quote_ident;
use super::chunk_sql::KeyKind;
use super::MysqlBackend;
use crate::error::{Error, Result};
use crate::event::{TableId, TableSchema};
use crate::snapshot::backend::Planned;

pub struct TablePlan {
    pub schema: Arc<TableSchema>,
    pub columns: Vec<ColumnMeta>,
    /// Per column: its place in the key, if it is a key column.
    pub key_slot: Vec<Option<usize>>,
    pub key_kinds: Vec<KeyKind>,
    /// `SELECT cols FROM db.t`.
    pub select_from: String,
    /// Quoted key column names.
    pub key_names: Vec<String>,
}

impl MysqlBackend {
    /// Plans `table` from `information_schema` unless it is planned: `Some` when planned now.
    pub(super) async fn make_plan(&mut self, table: &TableId) -> Result<Option<Planned>> {
        if self.plans.contains_key(table) {
            return Ok(None);
        }
        type ColumnRow = (
            String,
            String,
            String,
            String,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u32>,
        );
        let rows: Vec<ColumnRow> = self
            .catalog(
                "SELECT c.COLUMN_NAME, LOWER(c.DATA_TYPE), c.COLUMN_TYPE, c.IS_NULLABLE, c.CHARACTER_OCTET_LENGTH, \
                 c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, k.ID \
                 FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS k \
                 ON k.COLLATION_NAME = c.COLLATION_NAME \
                 WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION",
                (table.schema.clone(), table.table.clone()),
                table,
                "reading its columns",
            )
            .await?;
        if rows.is_empty() {
            return Err(Error::definite(self.ctx(table, "the table does not exist")));
        }
        let mut columns = Vec::with_capacity(rows.len());
        for (name, data_type, column_type, nullable, octets, precision, scale, fsp, collation) in
            rows
        {
            let meta = column_meta(
                &data_type,
                &column_type,
                octets,
                precision,
                scale,
                fsp,
                self.mariadb,
            )
            .map_err(|e| Error::definite(self.ctx(table, &format!("column `{name}`: {e}"))))?;
            let (code, meta, unsigned, labels) = meta;
            let binary_type = matches!(
                data_type.as_str(),
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            );
            columns.push(ColumnMeta {
                name,
                ty: BinlogType {
                    code,
                    wire_code: code,
                    meta,
                },
                nullable: nullable.eq_ignore_ascii_case("YES"),
                unsigned,
                collation: collation.or(binary_type.then_some(63)),
                labels,
                geometry_type: None,
            });
        }
        let key_names: Vec<String> = self
            .catalog(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
                (table.schema.clone(), table.table.clone()),
                table,
                "reading its primary key",
            )
            .await?;
        let key_columns: Vec<usize> = key_names
            .iter()
            .filter_map(|k| columns.iter().position(|c| &c.name == k))
            .collect();
        if key_columns.is_empty() {
            return Err(Error::definite(self.ctx(
                table,
                "the table has no primary key, which the chunked snapshot orders and resumes by; \
                 add one, or set `snapshot: {mode: never}` in the connector file",
            )));
        }
        let mut key_kinds = Vec::new();
        for i in &key_columns {
            let c = &columns[*i];
            key_kinds.push(key_kind(c, &self.charsets).ok_or_else(|| {
                Error::definite(self.ctx(
                    table,
                    &format!(
                        "its primary key column `{}` is a {}, which the chunked snapshot cannot order by \
                         (set `snapshot: {{mode: never}}` in the connector file)",
                        c.name,
                        t::type_name(c.ty.code)
                    ),
                ))
            })?);
        }
        let estimate: Option<u64> = self
            .catalog::<Option<u64>, _>(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (table.schema.clone(), table.table.clone()),
                table,
                "reading its row estimate",
            )
            .await?
            .into_iter()
            .next()
            .flatten();
        let map = TableMap {
            table_id: 0,
            schema: table.schema.clone(),
            table: table.table.clone(),
            columns,
            primary_key: key_columns.clone(),
            has_names: true,
        };
        let schema = Arc::new(table_schema(table, &map, &self.charsets));
        let select_list = map
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let select_from = format!(
            "SELECT {select_list} FROM {}.{}",
            quote_ident(&table.schema),
            quote_ident(&table.table)
        );
        self.plans.insert(
            table.clone(),
            TablePlan {
                schema,
                key_names: key_columns
                    .iter()
                    .map(|i| quote_ident(&map.columns[*i].name))
                    .collect(),
                key_slot: (0..map.columns.len())
                    .map(|i| key_columns.iter().position(|k| *k == i))
                    .collect(),
                columns: map.columns,
                key_kinds,
                select_from,
            },
        );
        Ok(Some(Planned {
            key_columns,
            estimate: estimate.unwrap_or(0) as f64,
        }))
    }
}

fn key_kind(c: &ColumnMeta, charsets: &CharsetMap) -> Option<KeyKind> {
    Some(match c.ty.code {
        t::TINY | t::SHORT | t::INT24 | t::LONG | t::LONGLONG | t::YEAR => KeyKind::Int,
        t::FLOAT | t::DOUBLE => KeyKind::Float,
        t::NEWDECIMAL => KeyKind::Decimal(c.ty.meta >> 8, c.ty.meta & 0xff),
        _ if c.ty.is_character(false) => {
            match super::super::binlog::row_value::column_charset(c, charsets) {
                super::super::binlog::charset::Charset::Binary
                | super::super::binlog::charset::Charset::Other(_) => KeyKind::Binary,
                _ => KeyKind::Text,
            }
        }
        t::DATE
        | t::NEWDATE
        | t::TIME
        | t::TIME2
        | t::DATETIME
        | t::DATETIME2
        | t::TIMESTAMP
        | t::TIMESTAMP2 => KeyKind::Text,
        _ => return None,
    })
}

type Meta = (u8, u16, bool, Vec<Vec<u8>>);

/// A column's TABLE_MAP type code, metadata, signedness and ENUM/SET labels, from
/// `information_schema.COLUMNS`.
fn column_meta(
    data_type: &str,
    column_type: &str,
    octets: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
    fsp: Option<u64>,
    mariadb: bool,
) -> std::result::Result<Meta, String> {
    let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
    let octets16 = u16::try_from(octets.unwrap_or(0)).unwrap_or(u16::MAX);
    let fsp = fsp.unwrap_or(0) as u16;
    let pack = |n: u16| (t::BLOB, n, false, Vec::new());
    Ok(match data_type {
        "tinyint" => (t::TINY, 0, unsigned, Vec::new()),
        "smallint" => (t::SHORT, 0, unsigned, Vec::new()),
        "mediumint" => (t::INT24, 0, unsigned, Vec::new()),
        "int" | "integer" => (t::LONG, 0, unsigned, Vec::new()),
        "bigint" => (t::LONGLONG, 0, unsigned, Vec::new()),
        "float" => (t::FLOAT, 4, unsigned, Vec::new()),
        "double" | "real" | "double precision" => (t::DOUBLE, 8, unsigned, Vec::new()),
        "decimal" | "numeric" => {
            let p = precision.unwrap_or(10) as u16;
            let s = scale.unwrap_or(0) as u16;
            (t::NEWDECIMAL, p << 8 | s, unsigned, Vec::new())
        }
        "year" => (t::YEAR, 0, false, Vec::new()),
        "date" => (t::NEWDATE, 0, false, Vec::new()),
        "time" => (t::TIME2, fsp, false, Vec::new()),
        "datetime" => (t::DATETIME2, fsp, false, Vec::new()),
        "timestamp" => (t::TIMESTAMP2, fsp, false, Vec::new()),
        "bit" => {
            let m = precision.unwrap_or(1) as u16;
            (t::BIT, (m / 8) << 8 | (m % 8), false, Vec::new())
        }
        "char" | "binary" => (t::STRING, octets16, false, Vec::new()),
        "varchar" | "varbinary" => (t::VARCHAR, octets16, false, Vec::new()),
        "tinytext" | "tinyblob" => pack(1),
        "text" | "blob" => pack(2),
        "mediumtext" | "mediumblob" => pack(3),
        "longtext" | "longblob" => pack(4),
        // MariaDB's JSON is LONGTEXT (and information_schema says so); MySQL's is binary JSON.
        "json" if mariadb => pack(4),
        "json" => (t::JSON, 4, false, Vec::new()),
        "enum" | "set" => {
            let labels = parse_labels(column_type).ok_or_else(|| format!("cannot read the labels of `{column_type}`"))?;
            let bytes = if data_type == "enum" {
                if labels.len() > 255 { 2 } else { 1 }
            } else {
                labels.len().div_ceil(8).clamp(1, 8) as u16
            };
            let code = if data_type == "enum" { t::ENUM } else { t::SET };
            (code, bytes, false, labels)
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon"
        | "geometrycollection" | "geomcollection" => (t::GEOMETRY, 4, false, Vec::new()),
        other => {
            return Err(format!(
                "type `{other}` cannot be read by the snapshot yet (set `snapshot: {{mode: never}}` in the connector file)"
            ))
        }
    })
}

/// The labels of `enum('a','b''c')` / `set(...)` as written in `COLUMN_TYPE`.
fn parse_labels(column_type: &str) -> Option<Vec<Vec<u8>>> {
    let open = column_type.find('(')?;
    let inner = column_type.get(open + 1..column_type.rfind(')')?)?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        match chars.next() {
            None => break,
            Some(',') | Some(' ') => continue,
            Some('\'') => {
                let mut label = String::new();
                loop {
                    match chars.next()? {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            label.push('\'');
                        }
                        '\'' => break,
                        '\\' => label.push(chars.next()?),
                        c => label.push(c),
                    }
                }
                labels.push(label.into_bytes());
            }
            Some(_) => return None,
        }
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_types_from_information_schema() {
        assert_eq!(
            parse_labels("enum('a','b''c','d\\\\e')").unwrap(),
            vec![b"a".to_vec(), b"b'c".to_vec(), b"d\\e".to_vec()]
        );
        assert_eq!(
            column_meta(
                "decimal",
                "decimal(10,2)",
                None,
                Some(10),
                Some(2),
                None,
                true
            )
            .unwrap()
            .1,
            10 << 8 | 2
        );
        assert_eq!(
            column_meta("bit", "bit(10)", None, Some(10), None, None, true)
                .unwrap()
                .1,
            1 << 8 | 2
        );
        assert_eq!(
            column_meta("json", "longtext", None, None, None, None, true)
                .unwrap()
                .0,
            t::BLOB
        );
        assert_eq!(
            column_meta("json", "json", None, None, None, None, false)
                .unwrap()
                .0,
            t::JSON
        );
        assert!(column_meta("inet6", "inet6", None, None, None, None, true).is_err());
        let (_, meta, unsigned, _) = column_meta(
            "bigint",
            "bigint(20) unsigned",
            None,
            Some(20),
            Some(0),
            None,
            true,
        )
        .unwrap();
        assert_eq!((meta, unsigned), (0, true));
    }
}
