//! `contract:` in a table file: the user's Avro schema of the table's rows (an `.avsc` file,
//! a path relative to the table file). Read and checked here (valid Avro, a record); applied
//! by `crate::schema::contract`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::error::ConfigError;

/// A table's contract: the record schema its rows must conform to.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// The `.avsc` file.
    pub file: PathBuf,
    /// The record schema, as the file holds it.
    pub schema: Json,
}

impl Contract {
    /// Reads the contract `path` names in `table_file` (relative to the table file).
    pub fn load(table_file: &Path, path: &Path) -> Result<Self, ConfigError> {
        let dir = table_file.parent().unwrap_or(Path::new("."));
        let file = dir.join(path);
        let invalid = |m: String| ConfigError::invalid(table_file, "contract", m);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
        let schema: Json = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{} is not JSON: {e}", file.display())))?;
        match apache_avro::Schema::parse(&schema) {
            Ok(apache_avro::Schema::Record(_)) => Ok(Self { file, schema }),
            Ok(other) => Err(invalid(format!(
                "{} is a {:?} schema; a contract is a record (the table's row)",
                file.display(),
                apache_avro::schema::SchemaKind::from(&other)
            ))),
            Err(e) => Err(invalid(format!(
                "{} is not a valid Avro schema: {e}",
                file.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_is_a_valid_record_schema() {
        let dir = tempfile::tempdir().unwrap();
        let table_file = dir.path().join("public.t.yaml");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "ok.avsc",
            r#"{"type": "record", "name": "Row", "fields": [{"name": "id", "type": "long"}]}"#,
        );
        write("str.avsc", r#""string""#);
        write("bad.avsc", r#"{"type": "record", "name": "Row"}"#);
        let c = Contract::load(&table_file, Path::new("ok.avsc")).unwrap();
        assert_eq!(c.schema["name"], "Row");
        for (f, want) in [
            ("str.avsc", "a contract is a record"),
            ("bad.avsc", "not a valid Avro schema"),
            ("none.avsc", "cannot read"),
        ] {
            let e = Contract::load(&table_file, Path::new(f))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("public.t.yaml") && e.contains("contract") && e.contains(want),
                "{e}"
            );
        }
    }
}
