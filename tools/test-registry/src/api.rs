//! The REST endpoints Confluent's clients and tidemark use, over [`Registry`]:
//!
//! | Method and path | Answer |
//! |---|---|
//! | `GET /subjects` | subject names |
//! | `GET /subjects/{s}/versions` | version numbers |
//! | `POST /subjects/{s}/versions` `{"schema": ...}` | `{"id": n}` (409 incompatible, 422 invalid) |
//! | `GET /subjects/{s}/versions/{v or latest}` | `{"subject","version","id","schema"}` |
//! | `GET /subjects/{s}/versions/{v}/schema` | the schema itself |
//! | `POST /subjects/{s}` `{"schema": ...}` | the version holding the schema (404 40403 if none) |
//! | `DELETE /subjects/{s}` | the deleted versions |
//! | `GET /schemas/ids/{id}` | `{"schema": ...}` |
//! | `GET /schemas/ids/{id}/schema`, `GET /schemas/types` | the schema itself; `["AVRO"]` |
//! | `POST /compatibility/subjects/{s}/versions[/{v}]` | `{"is_compatible": b}` (`?verbose=true`: `messages`) |
//! | `GET`/`PUT /config`, `GET`/`PUT`/`DELETE /config/{s}` | `{"compatibilityLevel": ...}` / `{"compatibility": ...}` |
//!
//! Errors are `{"error_code": n, "message": "..."}` with Confluent's codes.

use serde_json::{json, Value};

use crate::registry::{ApiError, Level, Registry, VersionRef};

/// One request: method, path (without the query), query, body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The status and JSON body of the answer.
pub fn handle(registry: &mut Registry, req: &Request<'_>) -> (u16, Value) {
    match route(registry, req) {
        Ok(v) => (200, v),
        Err(e) => (
            e.status,
            json!({"error_code": e.code, "message": e.message}),
        ),
    }
}

/// Percent-decodes one path segment (subjects may hold any character).
fn decode(segment: &str) -> String {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn body_json(req: &Request<'_>) -> Result<Value, ApiError> {
    serde_json::from_slice(req.body)
        .map_err(|e| ApiError::new(422, 42201, format!("Invalid request body: {e}")))
}

/// The `schema` of a registration or check body (only Avro).
fn schema_of(req: &Request<'_>) -> Result<String, ApiError> {
    let body = body_json(req)?;
    if let Some(t) = body.get("schemaType").and_then(Value::as_str) {
        if !t.eq_ignore_ascii_case("AVRO") {
            return Err(ApiError::invalid_schema(format!(
                "schemaType {t} is not supported by the test registry (Avro only)"
            )));
        }
    }
    body.get("schema")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::new(422, 42201, "Invalid request body: no `schema` string"))
}

fn not_found() -> ApiError {
    ApiError::new(404, 404, "HTTP 404 Not Found")
}

fn route(r: &mut Registry, req: &Request<'_>) -> Result<Value, ApiError> {
    let segments: Vec<String> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let verbose = req.query.split('&').any(|kv| kv == "verbose=true");
    let default_to_global = req.query.split('&').any(|kv| kv == "defaultToGlobal=true");
    match (req.method, seg.as_slice()) {
        ("GET", []) => Ok(json!({})),
        ("GET", ["subjects"]) => Ok(json!(r.subjects())),
        ("GET", ["schemas", "types"]) => Ok(json!(["AVRO"])),
        ("GET", ["schemas", "ids", id]) => {
            let id = id.parse().map_err(|_| not_found())?;
            Ok(json!({"schema": r.schema(id)?}))
        }
        ("GET", ["schemas", "ids", id, "schema"]) => {
            let id = id.parse().map_err(|_| not_found())?;
            serde_json::from_str(r.schema(id)?).map_err(ApiError::invalid_schema)
        }
        ("GET", ["subjects", s, "versions"]) => Ok(json!(r.versions(s)?)),
        ("POST", ["subjects", s, "versions"]) => {
            let schema = schema_of(req)?;
            Ok(json!({"id": r.register(s, &schema)?}))
        }
        ("GET", ["subjects", s, "versions", v]) => {
            let f = r.version(s, VersionRef::parse(v)?)?;
            Ok(json!({"subject": f.subject, "version": f.version, "id": f.id, "schema": f.schema}))
        }
        ("GET", ["subjects", s, "versions", v, "schema"]) => {
            let f = r.version(s, VersionRef::parse(v)?)?;
            serde_json::from_str(&f.schema).map_err(ApiError::invalid_schema)
        }
        ("POST", ["subjects", s]) => {
            let f = r.lookup(s, &schema_of(req)?)?;
            Ok(json!({"subject": f.subject, "version": f.version, "id": f.id, "schema": f.schema}))
        }
        ("DELETE", ["subjects", s]) => Ok(json!(r.delete_subject(s)?)),
        ("POST", ["compatibility", "subjects", s, "versions", rest @ ..]) => {
            let against = match rest {
                [] => None,
                [v] => Some(VersionRef::parse(v)?),
                _ => return Err(not_found()),
            };
            let problems = r.check(s, against, &schema_of(req)?)?;
            let mut answer = json!({"is_compatible": problems.is_empty()});
            if verbose {
                answer["messages"] = json!(problems);
            }
            Ok(answer)
        }
        ("GET", ["config"]) => Ok(json!({"compatibilityLevel": r.level(None).as_str()})),
        ("GET", ["config", s]) => match r.subject_level(s) {
            Some(l) => Ok(json!({"compatibilityLevel": l.as_str()})),
            None if default_to_global => Ok(json!({"compatibilityLevel": r.level(None).as_str()})),
            None => Err(ApiError::new(
                404,
                40408,
                format!("Subject '{s}' does not have subject-level compatibility configured"),
            )),
        },
        ("PUT", ["config", rest @ ..]) if rest.len() <= 1 => {
            let body = body_json(req)?;
            let level = body
                .get("compatibility")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::new(422, 42203, "Invalid compatibility level: missing"))?;
            let level = Level::parse(level)?;
            r.set_level(rest.first().copied(), level);
            Ok(json!({"compatibility": level.as_str()}))
        }
        ("DELETE", ["config", s]) => match r.delete_level(s) {
            Some(l) => Ok(json!({"compatibilityLevel": l.as_str()})),
            None => Err(ApiError::new(
                404,
                40401,
                format!("Subject '{s}' not found."),
            )),
        },
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(r: &mut Registry, method: &str, path: &str, body: Value) -> (u16, Value) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let body = body.to_string();
        handle(
            r,
            &Request {
                method,
                path,
                query,
                body: body.as_bytes(),
            },
        )
    }

    #[test]
    fn the_endpoints_answer_in_confluents_shapes() {
        let mut r = Registry::default();
        let v1 = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}"#;
        let (s, b) = call(
            &mut r,
            "POST",
            "/subjects/a%2Fb-value/versions",
            json!({"schema": v1}),
        );
        assert_eq!((s, b), (200, json!({"id": 1})));
        assert_eq!(
            call(&mut r, "GET", "/subjects", json!(null)).1,
            json!(["a/b-value"])
        );
        let (_, latest) = call(
            &mut r,
            "GET",
            "/subjects/a%2Fb-value/versions/latest",
            json!(null),
        );
        assert_eq!(latest["version"], 1);
        assert_eq!(latest["id"], 1);
        let (_, by_id) = call(&mut r, "GET", "/schemas/ids/1", json!(null));
        assert!(by_id["schema"].as_str().unwrap().contains("\"R\""));
        let bad = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"string"}]}"#;
        let (s, b) = call(
            &mut r,
            "POST",
            "/compatibility/subjects/a%2Fb-value/versions/latest?verbose=true",
            json!({"schema": bad}),
        );
        assert_eq!(s, 200);
        assert_eq!(b["is_compatible"], false);
        assert!(!b["messages"].as_array().unwrap().is_empty());
        let (s, b) = call(
            &mut r,
            "POST",
            "/subjects/a%2Fb-value/versions",
            json!({"schema": bad}),
        );
        assert_eq!((s, b["error_code"].clone()), (409, json!(409)));
        let (s, b) = call(
            &mut r,
            "POST",
            "/compatibility/subjects/new-value/versions/latest",
            json!({"schema": v1}),
        );
        assert_eq!((s, b["error_code"].clone()), (404, json!(40401)));
        let (s, b) = call(
            &mut r,
            "POST",
            "/subjects/x/versions",
            json!({"schema": "{"}),
        );
        assert_eq!((s, b["error_code"].clone()), (422, json!(42201)));
        let (s, b) = call(&mut r, "GET", "/subjects/nope/versions", json!(null));
        assert_eq!((s, b["error_code"].clone()), (404, json!(40401)));
        let (s, b) = call(&mut r, "GET", "/config/a%2Fb-value", json!(null));
        assert_eq!((s, b["error_code"].clone()), (404, json!(40408)));
        let (s, b) = call(
            &mut r,
            "PUT",
            "/config/a%2Fb-value",
            json!({"compatibility": "NONE"}),
        );
        assert_eq!((s, b), (200, json!({"compatibility": "NONE"})));
        let (s, b) = call(
            &mut r,
            "POST",
            "/subjects/a%2Fb-value/versions",
            json!({"schema": bad}),
        );
        assert_eq!((s, b), (200, json!({"id": 2})));
        assert_eq!(
            call(
                &mut r,
                "POST",
                "/subjects/a%2Fb-value",
                json!({"schema": v1})
            )
            .1["version"],
            1
        );
        assert_eq!(
            call(&mut r, "GET", "/config", json!(null)).1,
            json!({"compatibilityLevel": "BACKWARD"})
        );
        let (s, _) = call(&mut r, "GET", "/nothing/here", json!(null));
        assert_eq!(s, 404);
    }
}
