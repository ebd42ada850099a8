//! Reads a `format: avro` topic as a consumer of Confluent's wire format does: the magic byte,
//! the schema id, the writer schema fetched by that id from the (test) registry, the datum
//! decoded with apache-avro. Values come back in a JSON form for comparisons (see [`to_json`]),
//! and the raw records are kept for the independent decoder (`tests/shared/avro_decode.py`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Names, ResolvedSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use base64::Engine as _;
use rdkafka::Message;
use serde_json::{json, Value as Json};

use crate::common::*;

pub fn registry_url() -> String {
    std::env::var("TIDEMARK_TEST_SCHEMA_REGISTRY_URL")
        .expect("TIDEMARK_TEST_SCHEMA_REGISTRY_URL (run `. target/dev-env/env` after scripts/dev-env.sh up)")
}

/// The daemon-file lines of the avro format against the test registry.
pub fn avro_daemon_yaml(extra: &str) -> String {
    format!(
        "format: avro\nschema_registry:\n  url: {}\n{extra}",
        registry_url()
    )
}

pub fn registry() -> tidemark::schema::registry::RegistryClient {
    tidemark::schema::registry::RegistryClient::new(&tidemark::config::RegistrySettings {
        url: registry_url(),
        compatibility: None,
        subject_strategy: Default::default(),
        auth: tidemark::config::RegistryAuth::None,
        ca_file: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

/// One record of an Avro topic.
#[derive(Debug, Clone)]
pub struct AvroMsg {
    /// The schema id of the value (none for a tombstone).
    pub value_id: Option<u32>,
    pub key: Option<Json>,
    pub value: Option<Json>,
    /// The value as produced (for the independent decoder).
    pub raw_value: Option<Vec<u8>>,
}

/// Schemas by id, fetched once each.
#[derive(Default)]
pub struct Schemas(HashMap<u32, Schema>);

impl Schemas {
    pub async fn get(&mut self, id: u32) -> &Schema {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(id) {
            let text = registry().schema(id).await.unwrap();
            slot.insert(Schema::parse_str(&text).unwrap_or_else(|e| panic!("schema {id}: {e}")));
        }
        &self.0[&id]
    }

    /// Decodes a framed datum: its schema id and its value in JSON form.
    pub async fn decode(&mut self, framed: &[u8]) -> (u32, Json) {
        assert!(
            framed.len() >= 5,
            "a record shorter than the wire format's header"
        );
        assert_eq!(framed[0], 0, "magic byte");
        let id = u32::from_be_bytes(framed[1..5].try_into().unwrap());
        let schema = self.get(id).await.clone();
        let mut datum = &framed[5..];
        let value = GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut datum)
            .unwrap_or_else(|e| panic!("decoding a record of schema {id}: {e}"));
        assert!(datum.is_empty(), "{} bytes after the datum", datum.len());
        let names: Names = ResolvedSchema::try_from(&schema)
            .unwrap()
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        (id, to_json(&value, &schema, &names))
    }
}

/// Reads `topic` from the start until `n` records came (or `timeout`), decoding each.
pub async fn consume_avro(topic: &str, n: usize, timeout: Duration) -> Vec<AvroMsg> {
    let consumer = consumer_from_start(&kafka_brokers(), topic);
    let start = Instant::now();
    let mut raw = Vec::new();
    while raw.len() < n && start.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => raw.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec))),
            Some(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
            None => {}
        }
    }
    let mut schemas = Schemas::default();
    let mut out = Vec::new();
    for (k, v) in raw {
        let key = match &k {
            Some(b) => Some(schemas.decode(b).await.1),
            None => None,
        };
        let (value_id, value) = match &v {
            Some(b) => {
                let (id, j) = schemas.decode(b).await;
                (Some(id), Some(j))
            }
            None => (None, None),
        };
        out.push(AvroMsg {
            value_id,
            key,
            value,
            raw_value: v,
        });
    }
    out
}

/// The scale of a decimal schema (through a union's non-null branch).
fn scale_of(schema: &Schema) -> Option<usize> {
    match schema {
        Schema::Decimal(d) => Some(d.scale),
        _ => None,
    }
}

/// A decoded value in JSON, exact: integers and temporal values as their Avro numbers (days,
/// microseconds), decimals as their text at the schema's scale, bytes in base64, floats that
/// JSON cannot hold as `"NaN"`/`"Infinity"`/`"-Infinity"`, unions as their branch's value,
/// records as objects. `names` resolves the schema's references to named types.
pub fn to_json(value: &Avro, schema: &Schema, names: &Names) -> Json {
    if let Schema::Ref { name } = schema {
        let named = names
            .get(name)
            .unwrap_or_else(|| panic!("no type named {name:?}"));
        return to_json(value, named, names);
    }
    match (value, schema) {
        (Avro::Union(i, v), Schema::Union(u)) => to_json(v, &u.variants()[*i as usize], names),
        (Avro::Record(fields), Schema::Record(r)) => Json::Object(
            fields
                .iter()
                .zip(&r.fields)
                .map(|((n, v), f)| (n.clone(), to_json(v, &f.schema, names)))
                .collect(),
        ),
        (Avro::Array(items), Schema::Array(a)) => {
            Json::Array(items.iter().map(|i| to_json(i, &a.items, names)).collect())
        }
        (Avro::Decimal(d), s) => {
            let bytes: Vec<u8> = d.try_into().unwrap();
            decimal_text(&bytes, scale_of(s).unwrap_or(0)).into()
        }
        (Avro::Null, _) => Json::Null,
        (Avro::Boolean(b), _) => json!(b),
        (Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i), _) => json!(i),
        (
            Avro::Long(i)
            | Avro::TimeMicros(i)
            | Avro::TimestampMicros(i)
            | Avro::TimestampMillis(i)
            | Avro::LocalTimestampMicros(i)
            | Avro::LocalTimestampMillis(i),
            _,
        ) => json!(i),
        (Avro::Float(f), _) => float(f64::from(*f)),
        (Avro::Double(f), _) => float(*f),
        (Avro::String(s), _) => json!(s),
        (Avro::Uuid(u), _) => json!(u.to_string()),
        (Avro::Bytes(b) | Avro::Fixed(_, b), _) => {
            json!(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Avro::Enum(_, s), _) => json!(s),
        (other, s) => panic!("a decoded {other:?} under schema {s:?}"),
    }
}

fn float(f: f64) -> Json {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(f)
    }
}

/// The text of a big-endian two's complement unscaled integer at `scale`.
pub fn decimal_text(bytes: &[u8], scale: usize) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mag: Vec<u8> = if negative {
        // Two's complement: invert and add one.
        let mut v: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in v.iter_mut().rev() {
            let (x, carry) = b.overflowing_add(1);
            *b = x;
            if !carry {
                break;
            }
        }
        v
    } else {
        bytes.to_vec()
    };
    // Base 256 to base 10.
    let mut digits = vec![0u8];
    for byte in mag {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            let x = u32::from(*d) * 256 + carry;
            *d = (x % 10) as u8;
            carry = x / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() <= scale {
        digits.push(0);
    }
    let text: String = digits.iter().rev().map(|d| (b'0' + d) as char).collect();
    let (int, frac) = text.split_at(text.len() - scale);
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let sign = if negative { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Checks the `after` rows of `read` (row `i` keyed `{"id": i + 1}`) against the json format's
/// rows `json_after(i)`: every column equal, but for the columns `avro_forms[i]` names, whose
/// Avro form differs (dates and times as numbers, JSON as text), which must equal those; one
/// value schema for all; and fastavro reads the same values.
pub fn assert_rows_match(
    read: &[AvroMsg],
    json_after: impl Fn(usize) -> Json,
    avro_forms: &[Json],
) {
    for (i, special) in avro_forms.iter().enumerate() {
        let got = read[i].value.as_ref().unwrap()["after"].clone();
        let want = json_after(i);
        for (k, v) in want.as_object().unwrap() {
            let v = special.get(k).unwrap_or(v);
            assert_eq!(
                &got[k], v,
                "avro row {i} column {k}: got {} want {v}",
                got[k]
            );
        }
        assert_eq!(
            got.as_object().unwrap().len(),
            want.as_object().unwrap().len()
        );
        assert_eq!(read[i].key, Some(json!({"id": i + 1})));
    }
    assert!(
        read.iter().all(|m| m.value_id == read[0].value_id),
        "one value schema for one table shape"
    );
    assert_fastavro_agrees(read);
}

/// Where `ours` and fastavro's `theirs` (floats tagged `"f:<repr>"`) differ, if they do.
fn difference(ours: &Json, theirs: &Json, path: &str) -> Option<String> {
    match (ours, theirs) {
        (Json::Number(n), Json::String(t)) if t.starts_with("f:") => {
            let want: f64 = t[2..].parse().unwrap();
            (n.as_f64() != Some(want)).then(|| format!("{path}: {n} against fastavro's {want:e}"))
        }
        (Json::Object(a), Json::Object(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{path}: {} fields against fastavro's {}",
                    a.len(),
                    b.len()
                ));
            }
            a.iter().find_map(|(k, v)| match b.get(k) {
                Some(w) => difference(v, w, &format!("{path}.{k}")),
                None => Some(format!("{path}.{k}: fastavro has no such field")),
            })
        }
        (Json::Array(a), Json::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| difference(v, w, &format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => {
            let cut = |j: &Json| j.to_string().chars().take(200).collect::<String>();
            Some(format!("{path}: {} against fastavro's {}", cut(a), cut(b)))
        }
    }
}

/// Decodes the values of `msgs` with fastavro (`tests/shared/avro_decode.py`: each record with
/// the schema it fetches by id from the registry) and panics at the first value it reads
/// otherwise than apache-avro did.
fn assert_fastavro_agrees(msgs: &[AvroMsg]) {
    let theirs = decode_with_fastavro(msgs);
    let ours: Vec<&Json> = msgs.iter().filter_map(|m| m.value.as_ref()).collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "fastavro decoded another number of records"
    );
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if let Some(d) = difference(a, b, &format!("record {i}")) {
            panic!("fastavro reads another value: {d}");
        }
    }
}

/// Writes the raw records of `msgs` for `tests/shared/avro_decode.py` and runs it: fastavro
/// decodes each record with the schema it fetches by id from the registry, and prints JSON
/// lines of the same form as [`to_json`]. Returns the values it decoded, in order.
fn decode_with_fastavro(msgs: &[AvroMsg]) -> Vec<Json> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.jsonl");
    let lines: Vec<String> = msgs
        .iter()
        .filter_map(|m| m.raw_value.as_ref())
        .map(|v| json!(base64::engine::general_purpose::STANDARD.encode(v)).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shared/avro_decode.py");
    let python = std::env::var("TIDEMARK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(registry_url())
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}\n(scripts/dev-env.sh up installs fastavro and sets TIDEMARK_TEST_PYTHON)",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
