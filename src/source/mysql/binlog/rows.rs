//! Rows events (WRITE/UPDATE/DELETE, v1 as MariaDB writes them and v2 as MySQL does): the
//! row images of one table, decoded column by column against that table's TABLE_MAP.
//!
//! A rows event holds whole rows only and is at most a few kilobytes unless one row is
//! larger, so decoding one event at a time keeps memory bounded whatever the size of the
//! transaction.

use super::charset::CharsetMap;
use super::reader::{ByteReader, DecodeResult};
use super::row_value::{self, Notice};
use super::table_map::TableMap;
use crate::event::Row;
use crate::value::Value;

pub const WRITE_ROWS_V1: u8 = 23;
pub const UPDATE_ROWS_V1: u8 = 24;
pub const DELETE_ROWS_V1: u8 = 25;
pub const WRITE_ROWS: u8 = 30;
pub const UPDATE_ROWS: u8 = 31;
pub const DELETE_ROWS: u8 = 32;
/// MySQL's update with partial JSON after images (`binlog_row_value_options=PARTIAL_JSON`).
pub const PARTIAL_UPDATE_ROWS: u8 = 39;

/// The kind of a rows event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Insert,
    Update,
    Delete,
}

impl RowsKind {
    /// The kind and whether it is a v2 event (with the extra-data block).
    pub fn of(event_type: u8) -> Option<(Self, bool)> {
        Some(match event_type {
            WRITE_ROWS_V1 => (RowsKind::Insert, false),
            UPDATE_ROWS_V1 => (RowsKind::Update, false),
            DELETE_ROWS_V1 => (RowsKind::Delete, false),
            WRITE_ROWS => (RowsKind::Insert, true),
            UPDATE_ROWS => (RowsKind::Update, true),
            DELETE_ROWS => (RowsKind::Delete, true),
            PARTIAL_UPDATE_ROWS => (RowsKind::Update, true),
            _ => return None,
        })
    }
}

/// The header of a rows event, enough to find its TABLE_MAP.
pub fn table_id(body: &[u8]) -> DecodeResult<u64> {
    ByteReader::new(body).uint_le(6, "table id")
}

/// One changed row: the before image (updates, deletes) and the after image (inserts,
/// updates). Columns the event does not carry are [`Value::Unavailable`].
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub before: Option<Row>,
    pub after: Option<Row>,
}

/// Decodes every row of a rows event body against `table`. `partial` marks a
/// PARTIAL_UPDATE_ROWS event, whose after images may hold JSON diffs.
#[allow(clippy::too_many_arguments)]
pub fn decode(
    body: &[u8],
    kind: RowsKind,
    v2: bool,
    partial: bool,
    table: &TableMap,
    charsets: &CharsetMap,
    notices: &mut Vec<(usize, Notice)>,
) -> DecodeResult<Vec<RowChange>> {
    let mut r = ByteReader::new(body);
    r.skip(6, "table id")?;
    r.skip(2, "flags")?;
    if v2 {
        let extra = r.u16_le("extra data length")?;
        let extra = usize::from(extra)
            .checked_sub(2)
            .ok_or_else(|| r.error(format!("extra data length {extra} is below 2")))?;
        r.skip(extra, "extra data")?;
    }
    let count = r.lenenc("column count")?;
    if count != table.columns.len() as u64 {
        return Err(r.error(format!(
            "the rows event has {count} columns but the TABLE_MAP of {}.{} has {}",
            table.schema,
            table.table,
            table.columns.len()
        )));
    }
    let n = table.columns.len();
    let present_before = bitmap(&mut r, n, "columns-present bitmap")?;
    let present_after = if kind == RowsKind::Update {
        bitmap(&mut r, n, "after-image columns-present bitmap")?
    } else {
        present_before.clone()
    };
    let mut rows = Vec::new();
    while !r.is_empty() {
        let row_start = r.offset();
        let change = match kind {
            RowsKind::Insert => RowChange {
                before: None,
                after: Some(image(
                    &mut r,
                    &present_after,
                    table,
                    charsets,
                    notices,
                    None,
                )?),
            },
            RowsKind::Delete => RowChange {
                before: Some(image(
                    &mut r,
                    &present_before,
                    table,
                    charsets,
                    notices,
                    None,
                )?),
                after: None,
            },
            RowsKind::Update => {
                let before = image(&mut r, &present_before, table, charsets, notices, None)?;
                let partial_json = if partial {
                    partial_json_columns(&mut r, table)?
                } else {
                    Vec::new()
                };
                let base = (!partial_json.is_empty())
                    .then_some((before.as_slice(), partial_json.as_slice()));
                let after = image(&mut r, &present_after, table, charsets, notices, base)?;
                RowChange {
                    before: Some(before),
                    after: Some(after),
                }
            }
        };
        if r.offset() == row_start {
            // Found by fuzzing: a row that takes no bytes would repeat forever.
            return Err(r.error("a row image that takes no bytes"));
        }
        rows.push(change);
    }
    Ok(rows)
}

fn bitmap(r: &mut ByteReader<'_>, n: usize, what: &str) -> DecodeResult<Vec<bool>> {
    let bytes = r.take(n.div_ceil(8), what)?;
    Ok((0..n).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect())
}

/// The shared-image header of a partial update's after image: value options, then (with
/// PARTIAL_JSON_UPDATES) one bit per JSON column of the table saying whether its value is a
/// diff. Returns per column whether it is a diff.
fn partial_json_columns(r: &mut ByteReader<'_>, table: &TableMap) -> DecodeResult<Vec<bool>> {
    let options = r.lenenc("value options")?;
    let mut out = vec![false; table.columns.len()];
    if options & 1 == 0 {
        return Ok(out);
    }
    let json: Vec<usize> = (0..table.columns.len())
        .filter(|i| table.columns[*i].ty.code == super::column_type::JSON)
        .collect();
    let bits = r.take(json.len().div_ceil(8), "partial JSON bitmap")?;
    for (k, i) in json.into_iter().enumerate() {
        out[i] = bits[k / 8] & (1 << (k % 8)) != 0;
    }
    Ok(out)
}

fn image(
    r: &mut ByteReader<'_>,
    present: &[bool],
    table: &TableMap,
    charsets: &CharsetMap,
    notices: &mut Vec<(usize, Notice)>,
    partial: Option<(&[Value], &[bool])>,
) -> DecodeResult<Row> {
    let present_count = present.iter().filter(|p| **p).count();
    let nulls = r.take(present_count.div_ceil(8), "null bitmap")?;
    let mut row = Vec::with_capacity(present.len());
    let mut k = 0;
    let mut found = Vec::new();
    for (i, col) in table.columns.iter().enumerate() {
        if !present[i] {
            row.push(Value::Unavailable);
            continue;
        }
        let is_null = nulls[k / 8] & (1 << (k % 8)) != 0;
        k += 1;
        if is_null {
            row.push(Value::Null);
            continue;
        }
        let at = r.offset();
        let diff_base = partial
            .filter(|(_, cols)| cols[i])
            .map(|(before, _)| &before[i]);
        let decoded = match diff_base {
            Some(base) => json_diff_value(r, col, base),
            None => row_value::decode(r, col, charsets, &mut found),
        };
        let v = decoded.map_err(|e| {
            let name = if col.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                format!("`{}`", col.name)
            };
            super::reader::DecodeError {
                what: format!(
                    "{}.{} column {name} ({}): {}",
                    table.schema,
                    table.table,
                    col.ty.name(),
                    e.what
                ),
                offset: e.offset.max(at),
            }
        })?;
        notices.extend(found.drain(..).map(|n| (i, n)));
        row.push(v);
    }
    Ok(row)
}

/// A partial JSON value: the diffs applied to the before image's document.
fn json_diff_value(
    r: &mut ByteReader<'_>,
    col: &super::table_map::ColumnMeta,
    base: &Value,
) -> DecodeResult<Value> {
    let n = usize::from(col.ty.meta.clamp(1, 4));
    let len = r.uint_le(n, "JSON diff length")? as usize;
    let at = r.offset();
    let diffs = r.take(len, "JSON diffs")?;
    let Value::Json(base) = base else {
        return Err(r.error(format!(
            "a JSON diff needs the before image's document, which is {base:?}"
        )));
    };
    let text =
        super::json_diff::apply(base.get(), diffs).map_err(|e| super::reader::DecodeError {
            what: e.what,
            offset: at + e.offset,
        })?;
    crate::value::JsonText::parse(text)
        .map(Value::Json)
        .map_err(|e| r.error(format!("JSON: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::column_type as t;
    use super::super::table_map::{tests::body as table_body, TableMap};
    use super::*;

    /// [`decode`] with the default charset map, notices discarded.
    fn decode_plain(
        body: &[u8],
        kind: RowsKind,
        v2: bool,
        partial: bool,
        tm: &TableMap,
    ) -> DecodeResult<Vec<RowChange>> {
        decode(
            body,
            kind,
            v2,
            partial,
            tm,
            &CharsetMap::default(),
            &mut Vec::new(),
        )
    }

    fn table() -> TableMap {
        // id INT PK, name VARCHAR(20) utf8mb4, amount DECIMAL(10,2)
        let names = {
            let mut v = Vec::new();
            for n in ["id", "name", "amount"] {
                v.push(n.len() as u8);
                v.extend(n.as_bytes());
            }
            v
        };
        let b = table_body(
            &[t::LONG, t::VARCHAR, t::NEWDECIMAL],
            &[80, 0, 10, 2],
            &[0b110],
            &[(2, vec![45]), (4, names), (8, vec![0])],
        );
        TableMap::decode(&b, true).unwrap()
    }

    pub(crate) fn row_bytes(id: i32, name: Option<&str>, amount: &str) -> Vec<u8> {
        let mut b = vec![if name.is_none() { 0b010 } else { 0 }];
        b.extend(id.to_le_bytes());
        if let Some(n) = name {
            b.push(n.len() as u8);
            b.extend(n.as_bytes());
        }
        b.extend(super::super::decimal::tests::encode(amount, 10, 2));
        b
    }

    pub(crate) fn event(kind: RowsKind, v2: bool, rows: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![42, 0, 0, 0, 0, 0, 1, 0];
        if v2 {
            b.extend([2, 0]);
        }
        b.push(3);
        b.push(0b111);
        if kind == RowsKind::Update {
            b.push(0b111);
        }
        for r in rows {
            b.extend(r);
        }
        b
    }

    #[test]
    fn insert_update_delete() {
        let tm = table();
        let cs = CharsetMap::default();
        let mut notices = Vec::new();
        let ins = event(
            RowsKind::Insert,
            true,
            &[
                row_bytes(1, Some("ä"), "1.50"),
                row_bytes(-2, None, "-0.01"),
            ],
        );
        let rows = decode(&ins, RowsKind::Insert, true, false, &tm, &cs, &mut notices).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].after.as_ref().unwrap(),
            &vec![
                Value::Int(1),
                Value::Text("ä".into()),
                Value::Decimal("1.50".into())
            ]
        );
        assert_eq!(rows[1].after.as_ref().unwrap()[1], Value::Null);
        assert_eq!(rows[1].after.as_ref().unwrap()[0], Value::Int(-2));

        let upd = event(
            RowsKind::Update,
            false,
            &[
                row_bytes(1, Some("a"), "1.00"),
                row_bytes(1, Some("b"), "2.00"),
            ],
        );
        let rows = decode(&upd, RowsKind::Update, false, false, &tm, &cs, &mut notices).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].before.as_ref().unwrap()[1], Value::Text("a".into()));
        assert_eq!(rows[0].after.as_ref().unwrap()[1], Value::Text("b".into()));

        let del = event(RowsKind::Delete, false, &[row_bytes(7, Some("z"), "0.00")]);
        let rows = decode(&del, RowsKind::Delete, false, false, &tm, &cs, &mut notices).unwrap();
        assert!(rows[0].after.is_none());
        assert_eq!(rows[0].before.as_ref().unwrap()[0], Value::Int(7));
    }

    #[test]
    fn minimal_image_marks_missing_columns_unavailable() {
        let tm = table();
        let mut b = vec![42, 0, 0, 0, 0, 0, 1, 0, 3, 0b001, 0];
        b.extend(5i32.to_le_bytes());
        let rows = decode_plain(&b, RowsKind::Delete, false, false, &tm).unwrap();
        assert_eq!(
            rows[0].before.as_ref().unwrap(),
            &vec![Value::Int(5), Value::Unavailable, Value::Unavailable]
        );
    }

    #[test]
    fn truncated_and_mismatched_events_are_errors_naming_the_column() {
        let tm = table();
        let ins = event(RowsKind::Insert, true, &[row_bytes(1, Some("abc"), "1.50")]);
        for cut in 0..ins.len() {
            // Cutting right after the bitmaps leaves zero rows, which is valid.
            if cut == 12 {
                continue;
            }
            assert!(
                decode_plain(&ins[..cut], RowsKind::Insert, true, false, &tm).is_err(),
                "cut at {cut}"
            );
        }
        let e =
            decode_plain(&ins[..ins.len() - 1], RowsKind::Insert, true, false, &tm).unwrap_err();
        assert!(e.what.contains("`amount`"), "{e}");
        let mut wrong = ins.clone();
        wrong[10] = 4;
        assert!(decode_plain(&wrong, RowsKind::Insert, true, false, &tm).is_err());
    }

    #[test]
    fn partial_json_update_applies_diffs_to_the_before_image() {
        use super::super::json_binary::tests::encode as jsonb;
        use super::super::json_diff::tests::diff;
        // id INT PK, j JSON (pack length 4)
        let names = vec![2, b'i', b'd', 1, b'j'];
        let b = table_body(
            &[t::LONG, t::JSON],
            &[4],
            &[0b10],
            &[(4, names), (8, vec![0])],
        );
        let tm = TableMap::decode(&b, false).unwrap();
        let before_doc = jsonb(&serde_json::json!({"a": 1, "b": [1, 2]}));
        let mut row_before = vec![0u8];
        row_before.extend(9i32.to_le_bytes());
        row_before.extend((before_doc.len() as u32).to_le_bytes());
        row_before.extend(&before_doc);
        let diffs = [
            diff(0, "$.a", Some(serde_json::json!(2))),
            diff(2, "$.b[0]", None),
        ]
        .concat();
        let mut row_after = vec![1u8, 0b1, 0u8]; // value options PARTIAL_JSON, partial bit for j, null bitmap
        row_after.extend(9i32.to_le_bytes());
        row_after.extend((diffs.len() as u32).to_le_bytes());
        row_after.extend(&diffs);
        let mut ev = vec![42, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2, 0b11, 0b11];
        ev.extend(&row_before);
        ev.extend(&row_after);
        let rows = decode_plain(&ev, RowsKind::Update, true, true, &tm).unwrap();
        match &rows[0].after.as_ref().unwrap()[1] {
            Value::Json(j) => assert_eq!(j.get(), r#"{"a":2,"b":[2]}"#),
            other => panic!("{other:?}"),
        }
        // Without the PARTIAL_JSON option the after image is a whole document.
        let mut whole = vec![0u8, 0u8];
        whole.extend(9i32.to_le_bytes());
        whole.extend((before_doc.len() as u32).to_le_bytes());
        whole.extend(&before_doc);
        let mut ev2 = vec![42, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2, 0b11, 0b11];
        ev2.extend(&row_before);
        ev2.extend(&whole);
        let rows = decode_plain(&ev2, RowsKind::Update, true, true, &tm).unwrap();
        assert_eq!(rows[0].after, rows[0].before);
    }
}
