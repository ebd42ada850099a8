//! The relation cache: pgoutput `Relation` messages -> [`TableSchema`]s, and tuples -> rows.
//!
//! Owns: what each relation OID means right now (its columns and their types, its primary
//! key, whether it is captured). A `Relation` message precedes the first change of a
//! relation in a session and follows every schema change, so the cache is always current.

use std::collections::HashSet;
use std::sync::Arc;

use tokio_postgres::Client;

use super::error::classify_postgres;
use super::pgoutput::{RelationColumn, TupleValue};
use super::setup::primary_key_columns;
use super::text_value;
use super::types::TypeResolver;
use crate::error::{Error, Result};
use crate::event::{ColumnDef, Row, TableId, TableSchema};
use crate::value::{ColumnType, Value};

pub struct Relation {
    pub schema: Arc<TableSchema>,
    /// Whether the connector captures this table.
    pub captured: bool,
}

#[derive(Default)]
pub struct Relations {
    by_oid: foldhash::HashMap<u32, Relation>,
    types: TypeResolver,
    warned_columns: HashSet<(TableId, String)>,
}

impl Relations {
    pub fn get(&self, oid: u32) -> Option<&Relation> {
        self.by_oid.get(&oid)
    }

    /// A `Type` message: a user type may have changed (new enum label): forget it.
    pub fn forget_type(&mut self, oid: u32) {
        self.types = TypeResolver::default();
        tracing::debug!(oid, "type changed; type cache cleared");
    }

    /// Records a `Relation` message: from here on the stream's tuples of `oid` are decoded
    /// with this shape (and only a `Relation` message changes it).
    pub async fn update(
        &mut self,
        client: &Client,
        oid: u32,
        id: TableId,
        columns: &[RelationColumn],
        captured: bool,
    ) -> Result<&Relation> {
        let schema = self.shape(client, oid, id, columns, captured).await?;
        if let Some(old) = self.by_oid.get(&oid) {
            if old.schema.columns != schema.columns {
                tracing::info!(table = %schema.id, columns = schema.columns.len(), "table schema changed");
            }
        }
        self.by_oid.insert(oid, Relation { schema, captured });
        Ok(&self.by_oid[&oid])
    }

    /// The shape of relation `oid` with `columns` (types resolved, primary key read), without
    /// recording it: the snapshot plans its chunks with the catalog's current shape, which may
    /// be ahead of the stream's.
    pub async fn shape(
        &mut self,
        client: &Client,
        oid: u32,
        id: TableId,
        columns: &[RelationColumn],
        captured: bool,
    ) -> Result<Arc<TableSchema>> {
        let ctx = || format!("reading the catalog for table {id}");
        let mut defs = Vec::with_capacity(columns.len());
        for c in columns {
            let t = self
                .types
                .resolve(client, c.type_oid, c.type_modifier)
                .await
                .map_err(|e| classify_postgres(ctx(), e))?;
            if let ColumnType::Other(name) = &t {
                if captured && self.warned_columns.insert((id.clone(), c.name.clone())) {
                    tracing::warn!(
                        table = %id, column = %c.name, pg_type = %name,
                        "column type is not modelled by tidemark; its values are sent as text"
                    );
                }
            }
            defs.push(ColumnDef {
                name: c.name.clone(),
                column_type: t,
                nullable: true,
            });
        }
        let mut pk_names = if captured {
            primary_key_columns(client, oid)
                .await
                .map_err(|e| classify_postgres(ctx(), e))?
        } else {
            Vec::new()
        };
        if captured
            && pk_names.is_empty()
            && !relation_exists(client, oid)
                .await
                .map_err(|e| classify_postgres(ctx(), e))?
        {
            // The stream is behind a DROP TABLE (perhaps the table was created again since,
            // under a new OID): the catalog no longer knows this relation's key, but the
            // Relation message marks its replica identity columns, which are the primary key
            // under the default identity.
            pk_names = columns
                .iter()
                .filter(|c| c.is_key)
                .map(|c| c.name.clone())
                .collect();
            tracing::warn!(table = %id, oid, key = %pk_names.join(", "),
                "the table was dropped after these changes (the stream is behind); its key is taken from the replication stream's key columns");
        }
        let primary_key = pk_names
            .iter()
            .filter_map(|n| defs.iter().position(|d| &d.name == n))
            .collect();
        Ok(Arc::new(TableSchema {
            id,
            columns: defs,
            primary_key,
        }))
    }
}

/// Decodes one tuple into a row. `old` supplies unchanged TOAST values where it has them;
/// otherwise they become [`Value::Unavailable`].
pub fn decode_row(
    schema: &TableSchema,
    tuple: &[TupleValue],
    old: Option<&Row>,
    position: &dyn std::fmt::Display,
) -> Result<Row> {
    if tuple.len() != schema.columns.len() {
        return Err(Error::definite(format!(
            "table {} at {position}: tuple has {} columns, relation has {}",
            schema.id,
            tuple.len(),
            schema.columns.len()
        ))
        .for_table(&schema.id));
    }
    let mut row = Vec::with_capacity(tuple.len());
    for (i, (v, def)) in tuple.iter().zip(&schema.columns).enumerate() {
        row.push(match v {
            TupleValue::Null => Value::Null,
            TupleValue::UnchangedToast => match old.and_then(|o| o.get(i)) {
                Some(prev) if !matches!(prev, Value::Unavailable | Value::Null) => prev.clone(),
                _ => Value::Unavailable,
            },
            TupleValue::Text(b) => {
                let text = std::str::from_utf8(b).map_err(|e| {
                    Error::definite(format!(
                        "table {} column {} at {position}: value is not UTF-8: {e}",
                        schema.id, def.name
                    ))
                    .for_table(&schema.id)
                })?;
                decode_text(schema, def, text, position)?
            }
            TupleValue::Binary(_) => {
                return Err(Error::definite(format!(
                    "table {} column {} at {position}: binary tuple values were not requested",
                    schema.id, def.name
                ))
                .for_table(&schema.id))
            }
        });
    }
    Ok(row)
}

/// Decodes one column's text value (as the type's output function writes it).
pub fn decode_text(
    schema: &TableSchema,
    def: &crate::event::ColumnDef,
    text: &str,
    position: &dyn std::fmt::Display,
) -> Result<Value> {
    text_value::parse(&def.column_type, text).map_err(|e| {
        Error::definite(format!(
            "table {} column {} at {position}: {e}",
            schema.id, def.name
        ))
        .for_table(&schema.id)
    })
}

/// Decodes a row of text values (`None`: NULL), such as a query returns them.
pub fn decode_text_row<'a>(
    schema: &TableSchema,
    values: impl ExactSizeIterator<Item = Option<&'a str>>,
    position: &dyn std::fmt::Display,
) -> Result<Row> {
    if values.len() != schema.columns.len() {
        return Err(Error::definite(format!(
            "table {} at {position}: row has {} columns, table has {}",
            schema.id,
            values.len(),
            schema.columns.len()
        ))
        .for_table(&schema.id));
    }
    values
        .zip(&schema.columns)
        .map(|(v, def)| match v {
            None => Ok(Value::Null),
            Some(text) => decode_text(schema, def, text, position),
        })
        .collect()
}

/// Whether relation `oid` still exists in the catalog.
async fn relation_exists(
    client: &Client,
    oid: u32,
) -> std::result::Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_class WHERE oid = $1", &[&oid])
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn schema() -> TableSchema {
        TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    column_type: ColumnType::Int32,
                    nullable: false,
                },
                ColumnDef {
                    name: "doc".into(),
                    column_type: ColumnType::Text,
                    nullable: true,
                },
            ],
            primary_key: vec![0],
        }
    }

    #[test]
    fn unchanged_toast_comes_from_old_row_or_marker() {
        let s = schema();
        let tuple = vec![
            TupleValue::Text(Bytes::from_static(b"1")),
            TupleValue::UnchangedToast,
        ];
        let old = vec![Value::Int(1), Value::Text("big".into())];
        assert_eq!(
            decode_row(&s, &tuple, Some(&old), &"0/1").unwrap(),
            vec![Value::Int(1), Value::Text("big".into())]
        );
        assert_eq!(
            decode_row(&s, &tuple, None, &"0/1").unwrap(),
            vec![Value::Int(1), Value::Unavailable]
        );
    }

    #[test]
    fn bad_value_names_table_column_and_position() {
        let s = schema();
        let tuple = vec![TupleValue::Text(Bytes::from_static(b"x")), TupleValue::Null];
        let err = decode_row(&s, &tuple, None, &"0/16B3748")
            .unwrap_err()
            .to_string();
        assert!(err.contains("public.t"), "{err}");
        assert!(err.contains("column id"), "{err}");
        assert!(err.contains("0/16B3748"), "{err}");
    }

    #[test]
    fn column_count_mismatch_is_an_error() {
        let s = schema();
        assert!(decode_row(&s, &[TupleValue::Null], None, &"0/1").is_err());
    }
}
