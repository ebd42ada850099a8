//! The `debezium` profile in JSON, as Kafka Connect's JsonConverter writes it: Connect values
//! as JSON (bytes in base64, NaN and the infinities as strings, as Jackson quotes them), and
//! Connect types as the converter's schema objects (`json-schema`).

use base64::Engine as _;
use serde_json::{json, Value as Json};

use super::types::{ConnectType, Shape};
use super::ConnectValue;

/// Appends the scalar or array value `v` as JSON (structs: see [`write_typed`]).
fn write_scalar(out: &mut Vec<u8>, v: &ConnectValue<'_>) {
    let float = |out: &mut Vec<u8>, f: f64| {
        if f.is_finite() {
            // Writing a number into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &f);
        } else {
            let text = if f.is_nan() {
                "\"NaN\""
            } else if f > 0.0 {
                "\"Infinity\""
            } else {
                "\"-Infinity\""
            };
            out.extend_from_slice(text.as_bytes());
        }
    };
    match v {
        ConnectValue::Null | ConnectValue::Struct(_) => out.extend_from_slice(b"null"),
        ConnectValue::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        ConnectValue::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        ConnectValue::Float32(f) if f.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        ConnectValue::Float32(f) => float(out, f64::from(*f)),
        ConnectValue::Float64(f) => float(out, *f),
        ConnectValue::String(s) => {
            let _ = serde_json::to_writer(&mut *out, s.as_ref());
        }
        ConnectValue::Bytes(b) => {
            out.push(b'"');
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .as_bytes(),
            );
            out.push(b'"');
        }
        ConnectValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(out, item);
            }
            out.push(b']');
        }
    }
}

/// Appends `v`, a value of type `t`, as JSON: a struct as an object of its fields by name.
pub fn write_value(out: &mut Vec<u8>, t: &ConnectType, v: &ConnectValue<'_>) {
    match (&t.shape, v) {
        (Shape::Struct(fields), ConnectValue::Struct(values)) => {
            out.push(b'{');
            for (i, (f, v)) in fields.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, f.name);
                out.push(b':');
                write_scalar(out, v);
            }
            out.push(b'}');
        }
        (Shape::Array(item), ConnectValue::Array(items)) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, v);
            }
            out.push(b']');
        }
        _ => write_scalar(out, v),
    }
}

/// The JsonConverter schema object of `t` (without `optional` and `field`, which the
/// caller sets).
pub fn connect_schema(t: &ConnectType) -> Json {
    let mut s = match &t.shape {
        Shape::Scalar(s) => json!({ "type": s.connect_name() }),
        Shape::Array(item) => {
            let mut items = connect_schema(item);
            items["optional"] = json!(true);
            json!({ "type": "array", "items": items })
        }
        Shape::Struct(fields) => json!({
            "type": "struct",
            "fields": fields.iter().map(|f| json!({
                "type": f.ty.connect_name(), "optional": f.optional, "field": f.name
            })).collect::<Vec<_>>()
        }),
    };
    if let Some(name) = t.name {
        s["name"] = json!(name);
        s["version"] = json!(1);
    }
    if !t.parameters.is_empty() {
        let params: serde_json::Map<String, Json> = t
            .parameters
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        s["parameters"] = Json::Object(params);
    }
    s
}
