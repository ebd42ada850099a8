//! The `debezium` profile in Avro, as Confluent's AvroConverter writes Connect data: `int16`
//! as `int` with `connect.type`, Debezium's semantic names as `connect.name` (with
//! `connect.version` and `connect.parameters`), Connect `Decimal` as `bytes` with the
//! `decimal` logical type (precision 64 where the column declares none, as the converter
//! does), structs as records named after their Connect name, optional fields as
//! `["null", T]` unions.

use std::collections::HashSet;

use apache_avro::types::Value as Avro;
use serde_json::{json, Map, Value as Json};

use super::types::{ConnectType, Scalar, Shape, DECIMAL};
use super::ConnectValue;

/// The precision AvroConverter gives a `Decimal` without `connect.decimal.precision`.
const DEFAULT_DECIMAL_PRECISION: u32 = 64;

fn scalar(s: Scalar) -> Json {
    match s {
        Scalar::Boolean => json!("boolean"),
        Scalar::Int16 => json!({ "type": "int", "connect.type": "int16" }),
        Scalar::Int32 => json!("int"),
        Scalar::Int64 => json!("long"),
        Scalar::Float32 => json!("float"),
        Scalar::Float64 => json!("double"),
        Scalar::String => json!("string"),
        Scalar::Bytes => json!("bytes"),
    }
}

/// The Avro schema of `t`. A record already defined in this schema (`defined`) is referred
/// to by its full name.
pub fn schema(t: &ConnectType, defined: &mut HashSet<&'static str>) -> Json {
    let mut s = match &t.shape {
        Shape::Scalar(s) => scalar(*s),
        Shape::Array(item) => {
            return json!({ "type": "array", "items": ["null", schema(item, defined)] })
        }
        Shape::Struct(fields) => {
            let full = t.name.unwrap_or("Struct");
            if !defined.insert(full) {
                return json!(full);
            }
            let (namespace, name) = full.rsplit_once('.').unwrap_or(("", full));
            let fields: Vec<Json> = fields
                .iter()
                .map(|f| {
                    if f.optional {
                        json!({ "name": f.name, "type": ["null", scalar(f.ty)], "default": null })
                    } else {
                        json!({ "name": f.name, "type": scalar(f.ty) })
                    }
                })
                .collect();
            json!({ "type": "record", "name": name, "namespace": namespace, "fields": fields })
        }
    };
    let Some(name) = t.name else { return s };
    if let Json::String(ty) = s {
        s = json!({ "type": ty });
    }
    let Some(m) = s.as_object_mut() else { return s };
    m.insert("connect.version".into(), json!(1));
    m.insert("connect.name".into(), json!(name));
    if !t.parameters.is_empty() {
        let params: Map<String, Json> = t
            .parameters
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        m.insert("connect.parameters".into(), Json::Object(params));
    }
    if name == DECIMAL {
        m.insert("logicalType".into(), json!("decimal"));
        m.insert(
            "precision".into(),
            json!(t.decimal_precision().unwrap_or(DEFAULT_DECIMAL_PRECISION)),
        );
        m.insert("scale".into(), json!(t.decimal_scale().unwrap_or(0)));
    }
    s
}

fn scalar_value(s: Scalar, v: &ConnectValue<'_>) -> Result<Avro, String> {
    let int = |i: i64| i32::try_from(i).map_err(|_| format!("{i} does not fit an Avro int"));
    Ok(match (s, v) {
        (Scalar::Boolean, ConnectValue::Boolean(b)) => Avro::Boolean(*b),
        (Scalar::Int16 | Scalar::Int32, ConnectValue::Int(i)) => Avro::Int(int(*i)?),
        (Scalar::Int64, ConnectValue::Int(i)) => Avro::Long(*i),
        (Scalar::Float32, ConnectValue::Float32(f)) => Avro::Float(*f),
        (Scalar::Float64, ConnectValue::Float64(f)) => Avro::Double(*f),
        (Scalar::String, ConnectValue::String(t)) => Avro::String(t.to_string()),
        (Scalar::Bytes, ConnectValue::Bytes(b)) => Avro::Bytes(b.to_vec()),
        (s, v) => return Err(format!("a {v:?} value in a {} field", s.connect_name())),
    })
}

fn optional(v: Result<Avro, String>, is_null: bool) -> Result<Avro, String> {
    if is_null {
        Ok(Avro::Union(0, Box::new(Avro::Null)))
    } else {
        Ok(Avro::Union(1, Box::new(v?)))
    }
}

/// `v`, a value of type `t` (not null), as the Avro value of [`schema`]`(t)`.
pub fn value(t: &ConnectType, v: &ConnectValue<'_>) -> Result<Avro, String> {
    match (&t.shape, v) {
        (Shape::Scalar(s), v) => scalar_value(*s, v),
        (Shape::Array(item), ConnectValue::Array(items)) => Ok(Avro::Array(
            items
                .iter()
                .map(|i| {
                    let null = matches!(i, ConnectValue::Null);
                    optional(if null { Ok(Avro::Null) } else { value(item, i) }, null)
                })
                .collect::<Result<_, _>>()?,
        )),
        (Shape::Struct(fields), ConnectValue::Struct(values)) => Ok(Avro::Record(
            fields
                .iter()
                .zip(values)
                .map(|(f, v)| {
                    let null = matches!(v, ConnectValue::Null);
                    let field = if f.optional {
                        optional(
                            if null {
                                Ok(Avro::Null)
                            } else {
                                scalar_value(f.ty, v)
                            },
                            null,
                        )
                    } else if null {
                        Err(format!("field `{}` is null", f.name))
                    } else {
                        scalar_value(f.ty, v)
                    };
                    field.map(|a| (f.name.to_string(), a))
                })
                .collect::<Result<_, _>>()?,
        )),
        (_, v) => Err(format!("a {v:?} value where {:?} was expected", t.shape)),
    }
}
