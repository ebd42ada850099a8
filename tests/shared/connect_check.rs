//! Checks a `format: json-schema` message as Kafka Connect's JsonConverter would read it: the
//! payload conforms to the schema beside it (types, optional fields, no field the schema
//! lacks, base64 bytes, array items, nested structs).

use base64::Engine as _;
use serde_json::Value as Json;

/// Why `value` does not conform to the Connect `schema` (at `path`), if it does not.
pub fn conforms(schema: &Json, value: &Json, path: &str) -> Result<(), String> {
    if value.is_null() {
        return if schema["optional"] == Json::Bool(true) {
            Ok(())
        } else {
            Err(format!("{path}: null in a required field ({schema})"))
        };
    }
    let ty = schema["type"].as_str().unwrap_or("?");
    let fits = |lo: i64, hi: i64| value.as_i64().is_some_and(|v| v >= lo && v <= hi);
    let ok = match ty {
        "int8" => fits(i8::MIN.into(), i8::MAX.into()),
        "int16" => fits(i16::MIN.into(), i16::MAX.into()),
        "int32" => fits(i32::MIN.into(), i32::MAX.into()),
        "int64" => value.is_i64(),
        // Jackson (JsonConverter) writes NaN and the infinities as these strings.
        "float" | "double" => {
            value.is_number() || matches!(value.as_str(), Some("NaN" | "Infinity" | "-Infinity"))
        }
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "bytes" => value
            .as_str()
            .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok()),
        "array" => {
            let Some(items) = value.as_array() else {
                return Err(format!("{path}: not an array: {value}"));
            };
            for (i, item) in items.iter().enumerate() {
                conforms(&schema["items"], item, &format!("{path}[{i}]"))?;
            }
            true
        }
        "struct" => {
            let Some(obj) = value.as_object() else {
                return Err(format!("{path}: not an object: {value}"));
            };
            let fields = schema["fields"].as_array().cloned().unwrap_or_default();
            for f in &fields {
                let name = f["field"].as_str().unwrap_or("?");
                conforms(
                    f,
                    obj.get(name).unwrap_or(&Json::Null),
                    &format!("{path}.{name}"),
                )?;
            }
            for k in obj.keys() {
                if !fields.iter().any(|f| f["field"] == Json::String(k.clone())) {
                    return Err(format!("{path}: field {k} is not in the schema"));
                }
            }
            true
        }
        other => return Err(format!("{path}: unknown schema type {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{path}: {value} is not a Connect {ty} ({schema})"))
    }
}

/// Asserts that a wrapped message (`{"schema", "payload"}`) conforms, and returns its payload.
pub fn payload_of(wrapped: &Json) -> Json {
    let obj = wrapped.as_object().expect("a wrapped message is an object");
    let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["payload", "schema"], "wrapper keys: {wrapped}");
    if let Err(e) = conforms(&wrapped["schema"], &wrapped["payload"], "$") {
        panic!("{e}\nmessage: {wrapped}");
    }
    wrapped["payload"].clone()
}

/// Asserts that every wrapped key and value of `messages` conforms, and that each row (the
/// `after` image) equals `want(i)` but for the JSON columns `json_columns`, which carry the JSON
/// text as a string (Connect's `io.debezium.data.Json`).
pub fn assert_rows_conform(
    messages: &[crate::common::Msg],
    want: impl Fn(usize) -> Json,
    json_columns: &[&str],
) {
    for (i, m) in messages.iter().enumerate() {
        payload_of(m.key.as_ref().expect("a key"));
        let value = payload_of(m.value.as_ref().expect("a value"));
        let after = &value["after"];
        let expected = want(i);
        for (k, v) in expected.as_object().expect("a row") {
            if json_columns.contains(&k.as_str()) && after[k].is_string() {
                let text = after[k].as_str().unwrap_or_default();
                let parsed: Json = serde_json::from_str(text).expect("JSON text");
                assert_eq!(&parsed, v, "row {i} column {k}");
            } else if let (Some(d), Some(u)) = (
                decimal_of(m.value.as_ref().expect("a value"), k),
                v.as_u64(),
            ) {
                // An unsigned integer written as a Connect Decimal of scale 0.
                assert_eq!(d.to_string(), u.to_string(), "row {i} column {k}");
            } else {
                assert_eq!(&after[k], v, "row {i} column {k}");
            }
        }
    }
}

/// The integer a Connect `Decimal` of scale 0 in the wrapped message's `after[column]` holds
/// (base64 of big-endian two's complement), when its schema says the column is one.
fn decimal_of(wrapped: &Json, column: &str) -> Option<u128> {
    let after_schema = wrapped["schema"]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["field"] == "after")?;
    let field = after_schema["fields"]
        .as_array()?
        .iter()
        .find(|f| f["field"] == column)?;
    if field["name"] != "org.apache.kafka.connect.data.Decimal" {
        return None;
    }
    let text = wrapped["payload"]["after"][column].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Some(
        bytes
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
    )
}

/// Asserts that the JSON row `got` has exactly the columns of `want`, each equal (`what` names
/// the row in the failure).
pub fn assert_row_equals(got: &Json, want: &Json, what: &str) {
    for (k, v) in want.as_object().expect("a row") {
        assert_eq!(&got[k], v, "{what}: column {k}: got {} want {v}", got[k]);
    }
    assert_eq!(
        got.as_object().map(|o| o.len()),
        want.as_object().map(|o| o.len()),
        "{what}: {got}"
    );
}
