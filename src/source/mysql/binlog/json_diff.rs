//! MySQL's partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`): the after image of
//! a JSON column is a list of diffs against the before image instead of the whole document.
//!
//! Each diff is an operation byte (0 replace, 1 insert, 2 remove), a JSON path (length-encoded
//! text such as `$.a[2]."b c"`), and for replace and insert a length-encoded binary JSON
//! value. tidemark applies the diffs to the before image's document and emits the whole
//! new document, so consumers never see a diff. Object members keep MySQL's order (by key
//! length, then bytes), so a partially updated document prints like a fully logged one.

use serde_json::{Map, Value as Json};

use super::reader::{ByteReader, DecodeError, DecodeResult};

const REPLACE: u8 = 0;
const INSERT: u8 = 1;
const REMOVE: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Leg {
    Key(String),
    Index(Index),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    /// `[n]`
    From(usize),
    /// `[last]` / `[last-n]`
    FromLast(usize),
}

fn parse_path(path: &str) -> Result<Vec<Leg>, String> {
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or("a path starts with `$`")?;
    let b = rest.as_bytes();
    let mut legs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'.' => {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    // A quoted key: a JSON string literal.
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= b.len() {
                        return Err("unterminated quoted key".into());
                    }
                    i += 1;
                    let key: String = serde_json::from_str(&rest[start..i])
                        .map_err(|e| format!("quoted key: {e}"))?;
                    legs.push(Leg::Key(key));
                } else {
                    let start = i;
                    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                        i += 1;
                    }
                    let key = rest[start..i].trim();
                    if key.is_empty() || key == "*" {
                        return Err(format!("unsupported member `{key}`"));
                    }
                    legs.push(Leg::Key(key.to_string()));
                }
            }
            b'[' => {
                let end = rest[i..].find(']').ok_or("unterminated array index")? + i;
                let inner = rest[i + 1..end].trim();
                let index = if let Some(tail) = inner.strip_prefix("last") {
                    let tail = tail.trim();
                    if tail.is_empty() {
                        Index::FromLast(0)
                    } else {
                        let n = tail.strip_prefix('-').ok_or("bad [last-n]")?.trim();
                        Index::FromLast(n.parse().map_err(|_| format!("bad index `{inner}`"))?)
                    }
                } else {
                    Index::From(inner.parse().map_err(|_| format!("bad index `{inner}`"))?)
                };
                legs.push(Leg::Index(index));
                i = end + 1;
            }
            other => return Err(format!("unexpected `{}` in the path", other as char)),
        }
    }
    Ok(legs)
}

fn resolve(index: Index, len: usize) -> Option<usize> {
    match index {
        Index::From(n) => Some(n),
        Index::FromLast(n) => len.checked_sub(1)?.checked_sub(n),
    }
}

fn step<'a>(v: &'a mut Json, leg: &Leg) -> Option<&'a mut Json> {
    match (v, leg) {
        (Json::Object(m), Leg::Key(k)) => m.get_mut(k),
        (Json::Array(a), Leg::Index(i)) => {
            let len = a.len();
            a.get_mut(resolve(*i, len)?)
        }
        _ => None,
    }
}

/// MySQL's binary object order: shorter keys first, then by bytes.
fn insert_sorted(m: &mut Map<String, Json>, key: String, value: Json) {
    let mut entries: Vec<(String, Json)> = std::mem::take(m).into_iter().collect();
    let at = entries
        .iter()
        .position(|(k, _)| (k.len(), k.as_bytes()) > (key.len(), key.as_bytes()))
        .unwrap_or(entries.len());
    entries.insert(at, (key, value));
    *m = entries.into_iter().collect();
}

fn apply_one(root: &mut Json, op: u8, legs: &[Leg], value: Option<Json>) -> Result<(), String> {
    let Some((last, parents)) = legs.split_last() else {
        return match (op, value) {
            (REPLACE, Some(v)) => {
                *root = v;
                Ok(())
            }
            _ => Err("only replace applies to the whole document".into()),
        };
    };
    let mut parent = root;
    for leg in parents {
        parent = step(parent, leg).ok_or_else(|| format!("the path does not exist at {leg:?}"))?;
    }
    match (op, parent, last, value) {
        (REPLACE, p, leg, Some(v)) => {
            *step(p, leg).ok_or("replace of a missing value")? = v;
        }
        (INSERT, Json::Object(m), Leg::Key(k), Some(v)) => {
            if m.contains_key(k) {
                *m.get_mut(k).ok_or("insert")? = v;
            } else {
                insert_sorted(m, k.clone(), v);
            }
        }
        (INSERT, Json::Array(a), Leg::Index(i), Some(v)) => {
            // As JSON_ARRAY_INSERT: `[last]` is the current last element, inserted before.
            let at = resolve(*i, a.len()).unwrap_or(0).min(a.len());
            a.insert(at, v);
        }
        (REMOVE, Json::Object(m), Leg::Key(k), None) => {
            m.shift_remove(k).ok_or("remove of a missing member")?;
        }
        (REMOVE, Json::Array(a), Leg::Index(i), None) => {
            let at = resolve(*i, a.len())
                .filter(|at| *at < a.len())
                .ok_or("remove of a missing element")?;
            a.remove(at);
        }
        (op, _, leg, _) => return Err(format!("operation {op} does not apply at {leg:?}")),
    }
    Ok(())
}

/// Applies the diffs in `bytes` to the JSON document `base` and returns the new document.
pub fn apply(base: &str, bytes: &[u8]) -> DecodeResult<String> {
    let mut doc: Json = serde_json::from_str(base).map_err(|e| DecodeError {
        what: format!("the before image's JSON does not parse: {e}"),
        offset: 0,
    })?;
    let mut r = ByteReader::new(bytes);
    while !r.is_empty() {
        let at = r.offset();
        let op = r.u8("JSON diff operation")?;
        if op > REMOVE {
            return Err(DecodeError {
                what: format!("unknown JSON diff operation {op}"),
                offset: at,
            });
        }
        let path = r.lenenc_bytes("JSON diff path")?;
        let path = std::str::from_utf8(path).map_err(|_| r.error("JSON diff path is not UTF-8"))?;
        let value = if op == REMOVE {
            None
        } else {
            let raw = r.lenenc_bytes("JSON diff value")?;
            let text = super::json_binary::to_json_text(raw)?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| r.error(format!("JSON diff value: {e}")))?,
            )
        };
        let legs = parse_path(path).map_err(|e| DecodeError {
            what: format!("JSON diff path `{path}`: {e}"),
            offset: at,
        })?;
        apply_one(&mut doc, op, &legs, value).map_err(|e| DecodeError {
            what: format!("JSON diff at `{path}`: {e}"),
            offset: at,
        })?;
    }
    serde_json::to_string(&doc).map_err(|e| r.error(format!("JSON: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::json_binary::tests::encode;
    use super::*;

    pub(crate) fn diff(op: u8, path: &str, value: Option<serde_json::Value>) -> Vec<u8> {
        let mut b = vec![op, path.len() as u8];
        b.extend(path.as_bytes());
        if let Some(v) = value {
            let doc = encode(&v);
            b.push(doc.len() as u8);
            b.extend(doc);
        }
        b
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("$").unwrap(), vec![]);
        assert_eq!(
            parse_path(r#"$.a[2]."b c"[last-1]"#).unwrap(),
            vec![
                Leg::Key("a".into()),
                Leg::Index(Index::From(2)),
                Leg::Key("b c".into()),
                Leg::Index(Index::FromLast(1))
            ]
        );
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$.*").is_err());
        assert!(parse_path("$[x]").is_err());
        assert!(parse_path(r#"$."open"#).is_err());
    }

    #[test]
    fn replace_insert_remove() {
        let base = r#"{"a":1,"b":[1,2],"zz":{"q":null}}"#;
        let mut d = diff(REPLACE, "$.a", Some(serde_json::json!(5)));
        d.extend(diff(INSERT, "$.b[1]", Some(serde_json::json!("x"))));
        d.extend(diff(INSERT, "$.c", Some(serde_json::json!(true))));
        d.extend(diff(REMOVE, "$.b[0]", None));
        d.extend(diff(REPLACE, "$.zz.q", Some(serde_json::json!([1]))));
        d.extend(diff(INSERT, "$.b[last]", Some(serde_json::json!(9))));
        // MySQL order: a, b, c (length 1) before zz (length 2).
        assert_eq!(
            apply(base, &d).unwrap(),
            r#"{"a":5,"b":["x",9,2],"c":true,"zz":{"q":[1]}}"#
        );
        assert_eq!(
            apply(
                "[1]",
                &diff(REPLACE, "$", Some(serde_json::json!({"k": 1})))
            )
            .unwrap(),
            r#"{"k":1}"#
        );
    }

    #[test]
    fn diffs_that_do_not_apply_are_errors() {
        assert!(apply(
            "{}",
            &diff(REPLACE, "$.missing", Some(serde_json::json!(1)))
        )
        .is_err());
        assert!(apply("[1]", &diff(REMOVE, "$[3]", None)).is_err());
        assert!(apply("{}", &diff(REMOVE, "$", None)).is_err());
        assert!(apply("{}", &[7, 1, b'$']).is_err());
        let good = diff(INSERT, "$.k", Some(serde_json::json!("v")));
        for cut in 1..good.len() {
            assert!(apply("{}", &good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(apply("not json", &good).is_err());
    }
}
