//! A table's contract (`contract:` in its file): the user's Avro record schema of its rows.
//!
//! The registered value schema is the envelope around the contract's record (its own names,
//! fields, types and defaults), so consumers read exactly the contract. The table must keep to
//! it, checked at two moments:
//!
//! - per table shape ([`ContractPlan::new`]): every column the messages carry must be a field
//!   of the contract (by its Avro name), and every contract field that is no column must have
//!   a default (written as that default). A shape that breaks this makes each of its events a
//!   violation ([`crate::error::EventFault::Validation`]) under the table's `on_error`.
//! - per event ([`ContractPlan::write_row`]): each value is resolved into its field's type
//!   (Avro's promotions allowed: an `int` column into a `long` field, a string into an `enum`
//!   whose symbols hold it); a value that does not resolve (another type, a label the enum
//!   lacks, a NULL in a field that is not nullable) is a violation naming the column. A
//!   violating event is never produced to the table's topic.
//!
//! For an outbox table in the avro format, the contract is the payload's schema: each
//! payload (JSON) is resolved into it ([`ContractPlan::write_payload`]).

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde_json::Value as Json;

use super::avro_schema::avro_name;
use super::avro_value::field;
use crate::config::Contract;
use crate::event::{Row, TableSchema};

/// Where each contract field's value comes from.
#[derive(Debug, Clone)]
enum Source {
    /// The table's column at this index.
    Column(usize),
    /// No column: the field's default.
    Default(Avro),
}

/// A contract applied to one table shape.
#[derive(Debug, Clone)]
pub struct ContractPlan {
    schema: Schema,
    /// The contract's record schema (JSON), for the envelope.
    pub record: Json,
    fields: Vec<(String, Schema, Source)>,
    file: String,
    /// The contract has no `fixed` type (nor apache-avro's `big-decimal`), whose encoding needs
    /// the schema: its resolved values are written by [`super::avro_binary`], without building
    /// apache-avro's writer (which resolves the schema's names) per event.
    schema_less: bool,
}

/// Whether a schema (JSON) holds a type whose binary encoding the value alone does not give.
fn needs_schema_to_write(schema: &Json) -> bool {
    match schema {
        Json::Object(m) => {
            m.get("type").and_then(Json::as_str) == Some("fixed")
                || m.get("logicalType").and_then(Json::as_str) == Some("big-decimal")
                || m.values().any(needs_schema_to_write)
        }
        Json::Array(items) => items.iter().any(needs_schema_to_write),
        _ => false,
    }
}

fn unwrap_union(v: Avro) -> Avro {
    match v {
        Avro::Union(_, inner) => *inner,
        other => other,
    }
}

impl ContractPlan {
    /// The plan of `contract` for rows of `table`; an error says which column or field breaks it.
    pub fn new(contract: &Contract, table: Option<&TableSchema>) -> Result<Self, String> {
        let file = contract.file.display().to_string();
        let schema = Schema::parse(&contract.schema)
            .map_err(|e| format!("contract {file} is not a valid Avro schema: {e}"))?;
        let Schema::Record(record) = &schema else {
            return Err(format!("contract {file} is not a record schema"));
        };
        let mut fields = Vec::new();
        for f in &record.fields {
            let column =
                table.and_then(|t| t.columns.iter().position(|c| avro_name(&c.name) == f.name));
            let source = match (column, &f.default) {
                (Some(i), _) => Source::Column(i),
                (None, Some(default)) => Source::Default(
                    Avro::try_from(default.clone())
                        .and_then(|v| v.resolve_schemata(&f.schema, vec![&schema]))
                        .map_err(|e| format!("contract {file}: the default of field `{}` does not fit its type: {e}", f.name))?,
                ),
                (None, None) if table.is_none() => Source::Default(Avro::Null),
                (None, None) => {
                    return Err(format!(
                        "contract {file}: field `{}` is no column of the table and has no default",
                        f.name
                    ))
                }
            };
            fields.push((f.name.clone(), f.schema.clone(), source));
        }
        if let Some(t) = table {
            for c in &t.columns {
                if !record.fields.iter().any(|f| f.name == avro_name(&c.name)) {
                    return Err(format!(
                        "column `{}` is not in the contract {file} (add it to the contract, or leave it \
                         out of the messages with `columns.exclude`)",
                        c.name
                    ));
                }
            }
        }
        Ok(Self {
            record: contract.schema.clone(),
            schema_less: !needs_schema_to_write(&contract.schema),
            schema,
            fields,
            file,
        })
    }

    /// Appends a row as the contract's record; an error names the column that violates it.
    pub fn write_row(
        &self,
        out: &mut Vec<u8>,
        table: &TableSchema,
        row: &Row,
    ) -> Result<(), String> {
        let mut record = Vec::with_capacity(self.fields.len());
        for (name, field_schema, source) in &self.fields {
            let value = match source {
                Source::Default(v) => v.clone(),
                Source::Column(i) => {
                    let (Some(column), Some(v)) = (table.columns.get(*i), row.get(*i)) else {
                        return Err(format!(
                            "contract {}: field `{name}` has no value",
                            self.file
                        ));
                    };
                    let derived = unwrap_union(field(column, v)?);
                    let is_null = matches!(derived, Avro::Null);
                    derived
                        .resolve_schemata(field_schema, vec![&self.schema])
                        .map_err(|e| {
                            if is_null {
                                format!(
                                    "column `{}`: NULL, but the contract {} requires field `{name}`",
                                    column.name, self.file
                                )
                            } else {
                                format!(
                                    "column `{}`: the value does not fit the contract {}'s field `{name}`: {e}",
                                    column.name, self.file
                                )
                            }
                        })?
                }
            };
            record.push((name.clone(), value));
        }
        self.write(out, &Avro::Record(record))
    }

    /// Appends an outbox payload (JSON text) as the contract's record.
    pub fn write_payload(&self, out: &mut Vec<u8>, payload: &[u8]) -> Result<(), String> {
        let json: Json =
            serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
        let value = Avro::try_from(json)
            .and_then(|v| v.resolve_schemata(&self.schema, vec![&self.schema]))
            .map_err(|e| format!("the payload does not fit the contract {}: {e}", self.file))?;
        self.write(out, &value)
    }

    /// Appends a value of the contract's record, resolved into its schema: written alone
    /// (unions and enums carry their indexes, records their fields in order), or by
    /// apache-avro's writer when the contract holds a `fixed`, whose size only the schema says.
    fn write(&self, out: &mut Vec<u8>, value: &Avro) -> Result<(), String> {
        if self.schema_less {
            return super::avro_binary::write(out, value)
                .map_err(|e| format!("contract {}: {e}", self.file));
        }
        apache_avro::writer::datum::GenericDatumWriter::builder(&self.schema)
            .build()
            .and_then(|w| w.write_value_ref(out, value))
            .map(|_| ())
            .map_err(|e| format!("contract {}: {e}", self.file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{column, table};
    use crate::value::{ColumnType, Value};
    use apache_avro::reader::datum::GenericDatumReader;
    use serde_json::json;

    fn contract(schema: Json) -> Contract {
        Contract {
            file: "orders.avsc".into(),
            schema,
        }
    }

    fn orders() -> Contract {
        contract(json!({
            "type": "record", "name": "Order", "namespace": "shop",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["new", "paid"]}},
                {"name": "note", "type": ["null", "string"], "default": null},
                {"name": "channel", "type": "string", "default": "web"}
            ]
        }))
    }

    fn shape() -> std::sync::Arc<TableSchema> {
        table(
            "shop",
            "orders",
            vec![
                column("id", ColumnType::Int32, false),
                column("status", ColumnType::Text, true),
                column("note", ColumnType::Text, true),
            ],
            vec![0],
        )
    }

    #[test]
    fn rows_are_written_as_the_contract_says() {
        let t = shape();
        let plan = ContractPlan::new(&orders(), Some(&t)).unwrap();
        let mut out = Vec::new();
        plan.write_row(
            &mut out,
            &t,
            &vec![Value::Int(7), Value::Text("paid".into()), Value::Null],
        )
        .unwrap();
        let schema = Schema::parse(&orders().schema).unwrap();
        let back = GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut out.as_slice())
            .unwrap();
        assert_eq!(
            back,
            Avro::Record(vec![
                ("id".into(), Avro::Long(7)),
                ("status".into(), Avro::Enum(1, "paid".into())),
                ("note".into(), Avro::Union(0, Box::new(Avro::Null))),
                ("channel".into(), Avro::String("web".into())),
            ])
        );
    }

    #[test]
    fn violations_name_the_column() {
        let t = shape();
        let plan = ContractPlan::new(&orders(), Some(&t)).unwrap();
        let mut out = Vec::new();
        let e = plan
            .write_row(
                &mut out,
                &t,
                &vec![Value::Int(7), Value::Text("lost".into()), Value::Null],
            )
            .unwrap_err();
        assert!(
            e.contains("column `status`") && e.contains("orders.avsc"),
            "{e}"
        );
        let e = plan
            .write_row(&mut out, &t, &vec![Value::Int(7), Value::Null, Value::Null])
            .unwrap_err();
        assert!(e.contains("column `status`: NULL"), "{e}");
        // A column the contract lacks, and a field with neither column nor default.
        let wider = table(
            "shop",
            "orders",
            vec![
                column("id", ColumnType::Int32, false),
                column("status", ColumnType::Text, true),
                column("secret", ColumnType::Text, true),
            ],
            vec![0],
        );
        let e = ContractPlan::new(&orders(), Some(&wider)).unwrap_err();
        assert!(e.contains("column `secret` is not in the contract"), "{e}");
        let strict = contract(json!({
            "type": "record", "name": "Order",
            "fields": [{"name": "id", "type": "long"}, {"name": "total", "type": "double"}]
        }));
        let e = ContractPlan::new(&strict, Some(&t)).unwrap_err();
        assert!(e.contains("field `total`"), "{e}");
    }

    /// The bytes of apache-avro's writer for `value` of `schema`.
    fn reference(schema: &Json, value: &Avro) -> Vec<u8> {
        let schema = Schema::parse(schema).unwrap();
        let mut out = Vec::new();
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_ref(&mut out, value)
            .unwrap();
        out
    }

    #[test]
    fn the_schema_less_writer_writes_apache_avros_bytes() {
        let rich = contract(json!({
            "type": "record", "name": "Rich", "namespace": "shop",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["new", "paid"]}},
                {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
                {"name": "attrs", "type": {"type": "map", "values": ["null", "long"]}, "default": {}},
                {"name": "inner", "type": ["null", {"type": "record", "name": "Inner",
                    "fields": [{"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}],
                 "default": null},
                {"name": "again", "type": ["null", "Inner"], "default": null}
            ]
        }));
        let plan = ContractPlan::new(&rich, None).unwrap();
        assert!(plan.schema_less);
        // One map entry: the order of a map's entries is its HashMap's.
        let payload = br#"{"id": 3, "status": "paid", "tags": ["a", "b"], "attrs": {"k": 1},
            "inner": {"at": 1700000000000000}, "again": {"at": 5}}"#;
        let mut ours = Vec::new();
        plan.write_payload(&mut ours, payload).unwrap();
        let json: Json = serde_json::from_slice(payload).unwrap();
        let value = Avro::try_from(json)
            .unwrap()
            .resolve_schemata(&plan.schema, vec![&plan.schema])
            .unwrap();
        assert_eq!(ours, reference(&rich.schema, &value));
        // A fixed type takes apache-avro's writer.
        let fixed = contract(json!({
            "type": "record", "name": "F",
            "fields": [{"name": "h", "type": {"type": "fixed", "name": "H", "size": 2}}]
        }));
        assert!(!ContractPlan::new(&fixed, None).unwrap().schema_less);
    }

    #[test]
    fn an_outbox_payload_is_resolved_into_the_contract() {
        let plan = ContractPlan::new(&orders(), None).unwrap();
        let mut out = Vec::new();
        plan.write_payload(
            &mut out,
            br#"{"id": 1, "status": "new", "note": "x", "channel": "app"}"#,
        )
        .unwrap();
        assert!(!out.is_empty());
        let e = plan
            .write_payload(&mut out, br#"{"id": "one", "status": "new"}"#)
            .unwrap_err();
        assert!(e.contains("does not fit the contract"), "{e}");
    }
}
