//! The chunk's SQL: key bounds as bound parameters of the right kind (integers as integers,
//! DECIMAL through `CAST(? AS DECIMAL(p,s))`, binary strings as bytes, others as text),
//! composite keys as index-range conditions, and the key's text form for the next chunk's
//! bound. Pure: unit-tested without a server.

use mysql_async::Value as Wire;

use super::super::binlog::column_type as t;
use super::super::binlog::table_map::ColumnMeta;
use super::catalog::TablePlan;
use crate::error::{Error, Result};
use crate::snapshot::driver::ChunkRequest;
use crate::value::Value;

/// How a key column's bound is written and bound.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyKind {
    Int,
    Float,
    /// `CAST(? AS DECIMAL(p,s))`.
    Decimal(u16, u16),
    /// Text form is hex.
    Binary,
    Text,
}

/// The chunk's statement and its parameters (`ctx` says which connector and table, for
/// errors).
pub fn chunk_query(
    plan: &TablePlan,
    request: &ChunkRequest,
    ctx: &dyn Fn(&str) -> String,
) -> Result<(String, Vec<Wire>)> {
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    let bound =
        |values: &[String], strict: &str, last: &str, params: &mut Vec<Wire>| -> Result<String> {
            if values.len() != plan.key_names.len() {
                return Err(Error::definite(ctx(&format!(
                    "a key bound has {} values, the primary key {} columns",
                    values.len(),
                    plan.key_names.len()
                ))));
            }
            let mut wires = Vec::new();
            for (v, kind) in values.iter().zip(&plan.key_kinds) {
                wires.push(bind(v, kind).map_err(|e| Error::definite(ctx(&e)))?);
            }
            Ok(tuple_condition(
                &plan.key_names,
                &plan.key_kinds,
                &wires,
                strict,
                last,
                params,
            ))
        };
    match (&request.after, &request.from) {
        (Some(after), _) => conditions.push(bound(after, ">", ">", &mut params)?),
        (None, Some(from)) => conditions.push(bound(from, ">", ">=", &mut params)?),
        (None, None) => {}
    }
    if let Some(to) = &request.to {
        conditions.push(bound(to, "<", "<=", &mut params)?);
    }
    if let Some(condition) = &request.condition {
        conditions.push(format!("({condition})"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    Ok((
        format!(
            "{}{filter} ORDER BY {} LIMIT {}",
            plan.select_from,
            plan.key_names.join(", "),
            request.limit
        ),
        params,
    ))
}

/// `(k1, .., kn) <op> (v1, .., vn)` as `k1 <strict> v1 OR (k1 = v1 AND k2 <strict> v2) OR ..`,
/// the last column compared with `last`; pushes the parameters in order.
pub fn tuple_condition(
    names: &[String],
    kinds: &[KeyKind],
    values: &[Wire],
    strict: &str,
    last: &str,
    params: &mut Vec<Wire>,
) -> String {
    let placeholder = |kind: &KeyKind| match kind {
        KeyKind::Decimal(p, s) => format!("CAST(? AS DECIMAL({p},{s}))"),
        _ => "?".to_string(),
    };
    let n = names.len();
    let mut terms = Vec::with_capacity(n);
    for i in 0..n {
        let mut parts = Vec::with_capacity(i + 1);
        for j in 0..i {
            parts.push(format!("{} = {}", names[j], placeholder(&kinds[j])));
            params.push(values[j].clone());
        }
        let op = if i + 1 == n { last } else { strict };
        parts.push(format!("{} {op} {}", names[i], placeholder(&kinds[i])));
        params.push(values[i].clone());
        terms.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", terms.join(" OR "))
}

/// A key bound's text as a parameter of its column's kind.
pub fn bind(text: &str, kind: &KeyKind) -> std::result::Result<Wire, String> {
    Ok(match kind {
        KeyKind::Int => match text.trim().parse::<i64>() {
            Ok(i) => Wire::Int(i),
            Err(_) => Wire::UInt(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("key bound `{text}` is not an integer"))?,
            ),
        },
        KeyKind::Float => Wire::Double(
            text.trim()
                .parse::<f64>()
                .map_err(|_| format!("key bound `{text}` is not a number"))?,
        ),
        KeyKind::Binary => Wire::Bytes(
            hex_decode(text)
                .ok_or_else(|| format!("key bound `{text}` of a binary key column is not hex"))?,
        ),
        KeyKind::Decimal(..) | KeyKind::Text => Wire::Bytes(text.as_bytes().to_vec()),
    })
}

pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().trim_start_matches("0x");
    if t.len() % 2 != 0 {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The text of a key value as the server sent it (dates and times in the form the server
/// parses back).
pub fn wire_text(w: &Wire, col: &ColumnMeta) -> String {
    match w {
        Wire::NULL => String::new(),
        Wire::Int(i) => i.to_string(),
        Wire::UInt(u) => u.to_string(),
        Wire::Float(f) => f.to_string(),
        Wire::Double(d) => d.to_string(),
        Wire::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Wire::Date(y, m, d, ..) if matches!(col.ty.code, t::DATE | t::NEWDATE) => {
            format!("{y:04}-{m:02}-{d:02}")
        }
        Wire::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Wire::Time(neg, days, h, m, s, us) => format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*days) * 24 + u64::from(*h)
        ),
    }
}

/// The stored text of a key value: decoded text for character columns (the wire has the
/// column's charset), hex for binary ones, the server's text otherwise.
pub fn key_bound_text(v: &Value, wire_text: String) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        _ => wire_text,
    }
}

/// Whether a statement failed because the table's columns are not what its plan says (a
/// column dropped or renamed since: ER_BAD_FIELD_ERROR).
pub fn is_shape_error(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1054)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_bounds_expand_to_index_ranges() {
        let names = vec!["`a`".to_string(), "`b`".to_string()];
        let kinds = vec![KeyKind::Int, KeyKind::Decimal(10, 2)];
        let values = vec![Wire::Int(1), Wire::Bytes(b"2.50".to_vec())];
        let mut params = Vec::new();
        let sql = tuple_condition(&names, &kinds, &values, ">", ">", &mut params);
        assert_eq!(
            sql,
            "((`a` > ?) OR (`a` = ? AND `b` > CAST(? AS DECIMAL(10,2))))"
        );
        assert_eq!(
            params,
            vec![Wire::Int(1), Wire::Int(1), Wire::Bytes(b"2.50".to_vec())]
        );
        let mut params = Vec::new();
        assert_eq!(
            tuple_condition(
                &names[..1],
                &kinds[..1],
                &values[..1],
                "<",
                "<=",
                &mut params
            ),
            "((`a` <= ?))"
        );
    }

    #[test]
    fn bounds_bind_by_kind() {
        assert_eq!(
            bind("18446744073709551615", &KeyKind::Int).unwrap(),
            Wire::UInt(u64::MAX)
        );
        assert_eq!(bind("-5", &KeyKind::Int).unwrap(), Wire::Int(-5));
        assert!(bind("x", &KeyKind::Int).is_err());
        assert_eq!(
            bind("00ff", &KeyKind::Binary).unwrap(),
            Wire::Bytes(vec![0, 255])
        );
        assert!(bind("0f0", &KeyKind::Binary).is_err());
        assert_eq!(
            key_bound_text(&Value::Bytes(vec![0, 255]), String::new()),
            "00ff"
        );
    }

    #[test]
    fn wire_text_is_what_the_server_parses() {
        let c = |code| ColumnMeta::for_test(code, 0, false, None);
        assert_eq!(
            wire_text(&Wire::Date(2024, 2, 3, 0, 0, 0, 0), &c(t::NEWDATE)),
            "2024-02-03"
        );
        assert_eq!(
            wire_text(&Wire::Date(2024, 2, 3, 4, 5, 6, 7), &c(t::DATETIME2)),
            "2024-02-03 04:05:06.000007"
        );
        assert_eq!(
            wire_text(&Wire::Time(true, 1, 2, 3, 4, 0), &c(t::TIME2)),
            "-26:03:04.000000"
        );
    }
}
