//! The registry's state: schemas by id, subjects' versions, compatibility levels, and the
//! Avro compatibility rules (apache-avro's reader/writer check).
//!
//! Confluent's semantics: a schema's id is global (the same schema text under two subjects
//! has one id); registering a schema a subject already holds returns its id without a new
//! version; a new version must be compatible with the subject's latest version (or every
//! version, for the transitive levels) under the subject's level, else the global one.
//! BACKWARD: the new schema reads data written with the old; FORWARD: the old reads the new;
//! FULL: both; NONE: no check.

use std::collections::{BTreeMap, HashMap};

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;

/// An error in Confluent's shape: HTTP status, `error_code`, `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    fn version_not_found(version: &str) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }

    pub fn invalid_schema(why: impl std::fmt::Display) -> Self {
        Self::new(422, 42201, format!("Invalid schema: {why}"))
    }
}

/// A compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => {
                return Err(ApiError::new(
                    422,
                    42203,
                    format!("Invalid compatibility level: {s}"),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    /// Why `new` may not follow `old` under this level (none: it may).
    fn problems(self, old: &Schema, new: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        let backward = matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        );
        let forward = matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        );
        if backward {
            if let Some(why) = cannot_read(old, new) {
                out.push(format!(
                    "the new schema cannot read data written with the old one: {why}"
                ));
            }
        }
        if forward {
            if let Some(why) = cannot_read(new, old) {
                out.push(format!(
                    "the old schema cannot read data written with the new one: {why}"
                ));
            }
        }
        out
    }
}

/// Why a reader of `reader` cannot read every datum of `writer`, if it cannot. apache-avro
/// rates a pair `Partial` when only some data resolve (a union branch or an enum symbol of the
/// writer that the reader lacks: `["null", Row]` whose `Row` changed a field's type is one);
/// Confluent's checker, like Avro's Java one, requires every datum to resolve, so `Partial` is
/// incompatible here too.
fn cannot_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "some data of the writer's schema cannot be resolved: a branch of a union (a nullable \
             record whose fields changed type, say) or an enum symbol has no match in the reader's schema"
                .into(),
        ),
        Err(e) => Some(e.to_string()),
    }
}

/// Which version of a subject: a number, or `latest` (`-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Number(u32),
    Latest,
}

impl VersionRef {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "latest" | "-1" => Ok(VersionRef::Latest),
            n => n
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .map(VersionRef::Number)
                .ok_or_else(|| {
                    ApiError::new(
                        422,
                        42202,
                        format!(
                            "The specified version '{s}' is not a valid version id. Allowed values \
                             are between [1, 2^31-1] and the string \"latest\""
                        ),
                    )
                }),
        }
    }
}

/// One version of a subject, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

pub struct Registry {
    /// Schema text (normalised JSON) and parsed schema; id = index + 1.
    schemas: Vec<(String, Schema)>,
    ids: HashMap<String, u32>,
    /// Each subject's schema ids, version = index + 1.
    subjects: BTreeMap<String, Vec<u32>>,
    global: Level,
    levels: HashMap<String, Level>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            schemas: Vec::new(),
            ids: HashMap::new(),
            subjects: BTreeMap::new(),
            global: Level::Backward,
            levels: HashMap::new(),
        }
    }
}

/// Parses a schema, and its normalised text (JSON re-serialised with sorted keys, so
/// whitespace and key order do not make two schemas differ).
fn parse(text: &str) -> Result<(String, Schema), ApiError> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(ApiError::invalid_schema)?;
    let schema = Schema::parse(&json).map_err(ApiError::invalid_schema)?;
    Ok((json.to_string(), schema))
}

impl Registry {
    pub fn subjects(&self) -> Vec<String> {
        self.subjects.keys().cloned().collect()
    }

    fn versions_of(&self, subject: &str) -> Result<&Vec<u32>, ApiError> {
        self.subjects
            .get(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, ApiError> {
        Ok((1..=self.versions_of(subject)?.len() as u32).collect())
    }

    pub fn version(&self, subject: &str, v: VersionRef) -> Result<Found, ApiError> {
        let ids = self.versions_of(subject)?;
        let (version, id) = match v {
            VersionRef::Latest => ids
                .last()
                .map(|id| (ids.len() as u32, *id))
                .ok_or_else(|| ApiError::version_not_found("latest"))?,
            VersionRef::Number(n) => ids
                .get(n as usize - 1)
                .map(|id| (n, *id))
                .ok_or_else(|| ApiError::version_not_found(&n.to_string()))?,
        };
        Ok(Found {
            subject: subject.to_string(),
            version,
            id,
            schema: self.schema(id)?.to_string(),
        })
    }

    pub fn schema(&self, id: u32) -> Result<&str, ApiError> {
        self.schemas
            .get((id as usize).wrapping_sub(1))
            .map(|(t, _)| t.as_str())
            .ok_or_else(|| ApiError::new(404, 40403, "Schema not found"))
    }

    /// The subject's level: its own, else the global one.
    pub fn level(&self, subject: Option<&str>) -> Level {
        subject
            .and_then(|s| self.levels.get(s).copied())
            .unwrap_or(self.global)
    }

    pub fn subject_level(&self, subject: &str) -> Option<Level> {
        self.levels.get(subject).copied()
    }

    pub fn set_level(&mut self, subject: Option<&str>, level: Level) {
        match subject {
            Some(s) => {
                self.levels.insert(s.to_string(), level);
            }
            None => self.global = level,
        }
    }

    pub fn delete_level(&mut self, subject: &str) -> Option<Level> {
        self.levels.remove(subject)
    }

    /// The version of `subject` that holds exactly `text`.
    pub fn lookup(&self, subject: &str, text: &str) -> Result<Found, ApiError> {
        let ids = self.versions_of(subject)?;
        let (norm, _) = parse(text)?;
        let id = self
            .ids
            .get(&norm)
            .copied()
            .ok_or_else(|| ApiError::new(404, 40403, "Schema not found"))?;
        let version = ids
            .iter()
            .position(|i| *i == id)
            .ok_or_else(|| ApiError::new(404, 40403, "Schema not found"))?;
        self.version(subject, VersionRef::Number(version as u32 + 1))
    }

    /// Why `text` may not be registered under `subject` against `against` (every version for
    /// a transitive level, else the latest); empty when it may.
    pub fn check(
        &self,
        subject: &str,
        against: Option<VersionRef>,
        text: &str,
    ) -> Result<Vec<String>, ApiError> {
        let (_, new) = parse(text)?;
        let level = self.level(Some(subject));
        // Confluent: against a version (`latest` included) of a subject that does not exist,
        // 404 40401; against "every version" of it, compatible.
        let Some(ids) = self.subjects.get(subject) else {
            return match against {
                Some(_) => Err(ApiError::subject_not_found(subject)),
                None => Ok(Vec::new()),
            };
        };
        let olds: Vec<u32> = match against {
            Some(VersionRef::Number(n)) => vec![self.version(subject, VersionRef::Number(n))?.id],
            _ if level.transitive() => ids.clone(),
            _ => ids.last().copied().into_iter().collect(),
        };
        let mut out = Vec::new();
        for id in olds {
            let old = &self.schemas[id as usize - 1].1;
            for p in level.problems(old, &new) {
                out.push(format!("against schema id {id}: {p}"));
            }
        }
        Ok(out)
    }

    /// Registers `text` under `subject`: its id (the existing one if the subject holds it).
    pub fn register(&mut self, subject: &str, text: &str) -> Result<u32, ApiError> {
        let (norm, schema) = parse(text)?;
        if let Some(id) = self.ids.get(&norm) {
            if self
                .subjects
                .get(subject)
                .is_some_and(|ids| ids.contains(id))
            {
                return Ok(*id);
            }
        }
        let problems = self.check(subject, None, text)?;
        if !problems.is_empty() {
            return Err(ApiError::new(
                409,
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", \
                     details: [{}]",
                    problems.join("; ")
                ),
            ));
        }
        let id = match self.ids.get(&norm) {
            Some(id) => *id,
            None => {
                self.schemas.push((norm.clone(), schema));
                let id = self.schemas.len() as u32;
                self.ids.insert(norm, id);
                id
            }
        };
        self.subjects
            .entry(subject.to_string())
            .or_default()
            .push(id);
        Ok(id)
    }

    /// Deletes a subject (ids stay resolvable); its former versions.
    pub fn delete_subject(&mut self, subject: &str) -> Result<Vec<u32>, ApiError> {
        let ids = self
            .subjects
            .remove(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        self.levels.remove(subject);
        Ok((1..=ids.len() as u32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> String {
        format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#)
    }

    #[test]
    fn ids_are_global_and_registering_again_adds_no_version() {
        let mut r = Registry::default();
        let a = record(r#"{"name":"id","type":"long"}"#);
        assert_eq!(r.register("s-value", &a), Ok(1));
        assert_eq!(r.register("s-value", &a), Ok(1));
        assert_eq!(r.register("t-value", &format!(" {a} ")), Ok(1));
        assert_eq!(r.versions("s-value"), Ok(vec![1]));
        assert_eq!(r.lookup("t-value", &a).map(|f| f.version), Ok(1));
        assert_eq!(r.schema(2).unwrap_err().code, 40403);
        assert_eq!(r.versions("nope").unwrap_err().code, 40401);
        assert_eq!(r.register("s", "{").unwrap_err().code, 42201);
    }

    #[test]
    fn backward_forward_full_and_transitive() {
        let v1 = record(r#"{"name":"id","type":"long"}"#);
        let added_optional = record(
            r#"{"name":"id","type":"long"},{"name":"n","type":["null","string"],"default":null}"#,
        );
        let added_required = record(r#"{"name":"id","type":"long"},{"name":"n","type":"string"}"#);
        let retyped = record(r#"{"name":"id","type":"string"}"#);

        let mut r = Registry::default();
        r.register("b", &v1).unwrap();
        // BACKWARD (the default): a new optional field reads old data; a required one cannot.
        assert!(r.check("b", None, &added_optional).unwrap().is_empty());
        assert!(!r.check("b", None, &added_required).unwrap().is_empty());
        let err = r.register("b", &retyped).unwrap_err();
        assert_eq!((err.status, err.code), (409, 409));
        assert_eq!(r.register("b", &added_optional), Ok(2));

        // FORWARD: the old schema must read the new data: dropping a field without a default
        // from the reader's view is fine, adding a required field is fine too.
        r.set_level(Some("f"), Level::Forward);
        r.register("f", &v1).unwrap();
        assert!(r.check("f", None, &added_required).unwrap().is_empty());
        assert!(!r.check("f", None, &retyped).unwrap().is_empty());

        // FULL: both ways.
        r.set_level(Some("u"), Level::Full);
        r.register("u", &v1).unwrap();
        assert!(!r.check("u", None, &added_required).unwrap().is_empty());
        assert!(r.check("u", None, &added_optional).unwrap().is_empty());

        // Transitive: every version, not only the latest.
        r.set_level(Some("t"), Level::BackwardTransitive);
        r.set_level(Some("n"), Level::None);
        for s in ["t", "n"] {
            r.register(s, &v1).unwrap();
        }
        // NONE lets anything through; then the latest is a string id.
        r.register("n", &retyped).unwrap();
        r.set_level(Some("n"), Level::Backward);
        let v3_string_and_n = record(
            r#"{"name":"id","type":"string"},{"name":"n","type":["null","string"],"default":null}"#,
        );
        assert!(r.check("n", None, &v3_string_and_n).unwrap().is_empty());
        r.set_level(Some("n"), Level::BackwardTransitive);
        assert!(!r.check("n", None, &v3_string_and_n).unwrap().is_empty());
        assert_eq!(r.level(Some("zz")), Level::Backward);
        assert_eq!(Level::parse("full_transitive"), Ok(Level::FullTransitive));
        assert_eq!(Level::parse("SIDEWAYS").unwrap_err().code, 42203);
    }

    #[test]
    fn a_changed_field_inside_a_nullable_record_is_incompatible() {
        let envelope = |qty: &str| {
            format!(
                r#"{{"type":"record","name":"E","fields":[{{"name":"after","type":["null",
                {{"type":"record","name":"V","fields":[{{"name":"qty","type":"{qty}"}}]}}],"default":null}}]}}"#
            )
        };
        let mut r = Registry::default();
        r.register("e", &envelope("int")).unwrap();
        // apache-avro rates this pair Partial (the null branch still resolves): incompatible.
        let problems = r.check("e", None, &envelope("string")).unwrap();
        assert!(problems.iter().any(|p| p.contains("union")), "{problems:?}");
        // A promotion (int to long) inside the nullable record is fine.
        assert!(r.check("e", None, &envelope("long")).unwrap().is_empty());
    }
}
