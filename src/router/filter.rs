//! Row filters: a small predicate language over one row's columns (no arbitrary code).
//!
//! ```text
//! filter   := or
//! or       := and ("or" and)*
//! and      := not ("and" not)*
//! not      := "not" not | "(" filter ")" | test
//! test     := column op literal | column "is" ["not"] "null"
//!           | column ["not"] "in" "(" literal ("," literal)* ")"
//! op       := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal  := 'text' ('' inside for a quote) | number | true | false
//! column   := name | "quoted name"
//! ```
//! Keywords are case-insensitive. Literals are typed by the column: numbers for numeric
//! columns (exact for integers and decimals), text for text, enum, UUID and set columns,
//! `true`/`false` for booleans, `'YYYY-MM-DD'` for dates and `'YYYY-MM-DD HH:MM:SS[.ffffff]'`
//! (UTC, or with `Z`/`+hh:mm` for time-zoned columns) for timestamps. Any other pairing is a
//! configuration error naming the column.
//!
//! # Semantics
//!
//! SQL's three-valued logic: a comparison with NULL is unknown, and a row passes only when
//! the filter is true (`deleted_at is null` tests for NULL). A value the log did not carry
//! (an unchanged TOAST value, or a non-key column of a key-only old row) may be anything:
//! the filter is evaluated for every possibility, and the row passes when it *could* pass,
//! so an event is never dropped for want of a value.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::event::TableSchema;
use crate::value::{ColumnType, Value};

/// A parsed filter, by column names.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr<String>,
}

/// A filter bound to one table shape (columns by index, literals typed).
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledFilter {
    expr: Expr<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr<C> {
    And(Box<Expr<C>>, Box<Expr<C>>),
    Or(Box<Expr<C>>, Box<Expr<C>>),
    Not(Box<Expr<C>>),
    Compare(C, CmpOp, Literal),
    IsNull(C, bool),
    In(C, Vec<Literal>, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Text(String),
    /// A number as written (compared exactly).
    Number(String),
    Bool(bool),
    /// A typed temporal literal (after compilation): the column's own unit.
    Temporal(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Text(String),
    Number(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1
            }
            ')' => {
                out.push(Token::RParen);
                i += 1
            }
            ',' => {
                out.push(Token::Comma);
                i += 1
            }
            '=' => {
                out.push(Token::Op(CmpOp::Eq));
                i += 1
            }
            '!' if b.get(i + 1) == Some(&'=') => {
                out.push(Token::Op(CmpOp::Ne));
                i += 2
            }
            '<' | '>' => {
                let next = b.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => (CmpOp::Le, 2),
                    ('<', Some('>')) => (CmpOp::Ne, 2),
                    ('<', _) => (CmpOp::Lt, 1),
                    (_, Some('=')) => (CmpOp::Ge, 2),
                    _ => (CmpOp::Gt, 1),
                };
                out.push(Token::Op(op));
                i += len
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(format!("a {quote} is not closed")),
                        Some(&q) if q == quote && b.get(i + 1) == Some(&quote) => {
                            s.push(quote);
                            i += 2
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1
                        }
                    }
                }
                out.push(if quote == '\'' {
                    Token::Text(s)
                } else {
                    Token::Ident(s)
                });
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], '.' | 'e' | 'E')) {
                    i += 1;
                }
                let n: String = b[start..i].iter().collect();
                if n.parse::<f64>().is_err() {
                    return Err(format!("`{n}` is not a number"));
                }
                out.push(Token::Number(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < b.len() && (b[i].is_alphanumeric() || matches!(b[i], '_' | '$')) {
                    i += 1;
                }
                out.push(Token::Ident(b[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr<String>, String> {
        let mut e = self.and()?;
        while self.keyword("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr<String>, String> {
        let mut e = self.not()?;
        while self.keyword("and") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr<String>, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            let e = self.or()?;
            return match self.next() {
                Some(Token::RParen) => Ok(e),
                _ => Err("a `(` is not closed".into()),
            };
        }
        self.test()
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Text(s)) => Ok(Literal::Text(s)),
            Some(Token::Number(n)) => Ok(Literal::Number(n)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("null") => {
                Err("compare with NULL by `is null` / `is not null`".into())
            }
            Some(other) => Err(format!("expected a literal, found {other:?}")),
            None => Err("expected a literal at the end".into()),
        }
    }

    fn test(&mut self) -> Result<Expr<String>, String> {
        let column = match self.next() {
            Some(Token::Ident(c)) => c,
            Some(other) => return Err(format!("expected a column name, found {other:?}")),
            None => return Err("expected a column name at the end".into()),
        };
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err(format!(
                    "`{column} is` must be followed by `null` or `not null`"
                ));
            }
            return Ok(Expr::IsNull(column, !negated));
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            if self.next() != Some(Token::LParen) {
                return Err(format!("`{column} in` must be followed by `(`"));
            }
            let mut list = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => list.push(self.literal()?),
                    Some(Token::RParen) => break,
                    _ => return Err(format!("the list after `{column} in` is not closed")),
                }
            }
            return Ok(Expr::In(column, list, negated));
        }
        if negated {
            return Err(format!("`{column} not` must be followed by `in`"));
        }
        match self.next() {
            Some(Token::Op(op)) => Ok(Expr::Compare(column, op, self.literal()?)),
            _ => Err(format!(
                "expected an operator (=, !=, <, <=, >, >=, is, in) after `{column}`"
            )),
        }
    }
}

impl Filter {
    /// Parses a filter; the error says what is wrong where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser {
            tokens: tokens(text)?,
            at: 0,
        };
        if p.tokens.is_empty() {
            return Err("the filter is empty".into());
        }
        let expr = p.or()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected {t:?} after a complete filter"));
        }
        Ok(Self { expr })
    }

    /// The column names the filter reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        collect_columns(&self.expr, &mut out);
        out
    }

    /// Binds the filter to a table shape. The error names the column at fault.
    pub fn compile(&self, schema: &TableSchema) -> Result<CompiledFilter, String> {
        Ok(CompiledFilter {
            expr: compile_expr(&self.expr, schema)?,
        })
    }
}

fn collect_columns<'a>(e: &'a Expr<String>, out: &mut Vec<&'a str>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            collect_columns(a, out);
            collect_columns(b, out)
        }
        Expr::Not(a) => collect_columns(a, out),
        Expr::Compare(c, ..) | Expr::IsNull(c, _) | Expr::In(c, ..) => {
            if !out.contains(&c.as_str()) {
                out.push(c)
            }
        }
    }
}

fn compile_expr(e: &Expr<String>, schema: &TableSchema) -> Result<Expr<usize>, String> {
    // Exact, else the one column equal but for ASCII case (as SQL's unquoted names match).
    let column = |name: &str| {
        schema
            .column_index(name)
            .or_else(|| {
                let mut same = schema
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.name.eq_ignore_ascii_case(name));
                match (same.next(), same.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            })
            .ok_or_else(|| format!("column `{name}` is not a column of table {}", schema.id))
    };
    Ok(match e {
        Expr::And(a, b) => Expr::And(
            Box::new(compile_expr(a, schema)?),
            Box::new(compile_expr(b, schema)?),
        ),
        Expr::Or(a, b) => Expr::Or(
            Box::new(compile_expr(a, schema)?),
            Box::new(compile_expr(b, schema)?),
        ),
        Expr::Not(a) => Expr::Not(Box::new(compile_expr(a, schema)?)),
        Expr::IsNull(c, is) => Expr::IsNull(column(c)?, *is),
        Expr::Compare(c, op, lit) => {
            let i = column(c)?;
            Expr::Compare(i, *op, typed(c, &schema.columns[i].column_type, lit, *op)?)
        }
        Expr::In(c, list, negated) => {
            let i = column(c)?;
            let t = &schema.columns[i].column_type;
            let list = list
                .iter()
                .map(|l| typed(c, t, l, CmpOp::Eq))
                .collect::<Result<_, _>>()?;
            Expr::In(i, list, *negated)
        }
    })
}

/// Checks that `lit` can be compared with a column of type `t` and converts temporal text.
fn typed(column: &str, t: &ColumnType, lit: &Literal, op: CmpOp) -> Result<Literal, String> {
    let mismatch = |what: &str| {
        Err(format!(
            "column `{column}` ({t}) cannot be compared with {what} {lit:?}"
        ))
    };
    match (t, lit) {
        (
            ColumnType::Int16
            | ColumnType::Int32
            | ColumnType::Int64
            | ColumnType::UInt64
            | ColumnType::Float32
            | ColumnType::Float64
            | ColumnType::Decimal { .. },
            Literal::Number(_),
        ) => Ok(lit.clone()),
        (
            ColumnType::Text
            | ColumnType::Uuid
            | ColumnType::Enum { .. }
            | ColumnType::Set { .. }
            | ColumnType::Other(_),
            Literal::Text(_),
        ) => Ok(lit.clone()),
        (ColumnType::Bool, Literal::Bool(_)) => {
            if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                Ok(lit.clone())
            } else {
                Err(format!(
                    "column `{column}` is boolean: compare it with = or != only"
                ))
            }
        }
        (ColumnType::Date, Literal::Text(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                Literal::Temporal((d - epoch).num_days())
            })
            .map_err(|_| format!("column `{column}` is a date: write the literal as 'YYYY-MM-DD'")),
        (ColumnType::Timestamp { .. } | ColumnType::TimestampTz, Literal::Text(s)) => parse_timestamp(s)
            .map(Literal::Temporal)
            .ok_or_else(|| {
                format!(
                    "column `{column}` is a timestamp: write the literal as 'YYYY-MM-DD HH:MM:SS[.ffffff]' \
                     (UTC), or with Z or +hh:mm"
                )
            }),
        (_, Literal::Number(_)) => mismatch("the number"),
        (_, Literal::Bool(_)) => mismatch("the boolean"),
        _ => mismatch("the text"),
    }
}

/// Microseconds since the epoch of a timestamp literal (naive ones are UTC).
fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_micros());
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, format) {
            return d
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_micros());
        }
    }
    None
}

/// The possible truth values of a (sub-)filter, as a set: SQL's true, false and unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Possible(u8);

const T: u8 = 1;
const F: u8 = 2;
const U: u8 = 4;

impl Possible {
    const ANY: Possible = Possible(T | F | U);

    fn of(b: Option<bool>) -> Self {
        Possible(match b {
            Some(true) => T,
            Some(false) => F,
            None => U,
        })
    }

    fn each(self) -> impl Iterator<Item = u8> {
        [T, F, U].into_iter().filter(move |v| self.0 & v != 0)
    }

    fn combine(self, other: Possible, f: fn(u8, u8) -> u8) -> Possible {
        let mut out = 0;
        for a in self.each() {
            for b in other.each() {
                out |= f(a, b);
            }
        }
        Possible(out)
    }
}

fn kleene_and(a: u8, b: u8) -> u8 {
    if a == F || b == F {
        F
    } else if a == U || b == U {
        U
    } else {
        T
    }
}

fn kleene_or(a: u8, b: u8) -> u8 {
    if a == T || b == T {
        T
    } else if a == U || b == U {
        U
    } else {
        F
    }
}

impl CompiledFilter {
    /// Whether `row` could pass. `known(i)` says whether column `i`'s value was carried by
    /// the log (a key-only old row carries only the key).
    pub fn could_pass(&self, row: &[Value], known: impl Fn(usize) -> bool) -> bool {
        eval(&self.expr, row, &known).0 & T != 0
    }
}

fn eval(e: &Expr<usize>, row: &[Value], known: &dyn Fn(usize) -> bool) -> Possible {
    let value = |i: usize| -> Option<&Value> {
        match row.get(i) {
            Some(Value::Unavailable) | None => None,
            Some(_) if !known(i) => None,
            Some(v) => Some(v),
        }
    };
    match e {
        Expr::And(a, b) => eval(a, row, known).combine(eval(b, row, known), kleene_and),
        Expr::Or(a, b) => eval(a, row, known).combine(eval(b, row, known), kleene_or),
        Expr::Not(a) => {
            let p = eval(a, row, known);
            let mut out = 0;
            for v in p.each() {
                out |= match v {
                    T => F,
                    F => T,
                    _ => U,
                };
            }
            Possible(out)
        }
        Expr::IsNull(i, is) => match value(*i) {
            None => Possible::ANY,
            Some(v) => Possible::of(Some(v.is_null() == *is)),
        },
        Expr::Compare(i, op, lit) => match value(*i) {
            None => Possible::ANY,
            Some(v) => Possible::of(compare(v, lit).map(|o| holds(*op, o))),
        },
        Expr::In(i, list, negated) => match value(*i) {
            None => Possible::ANY,
            Some(Value::Null) => Possible::of(None),
            Some(v) => {
                let found = list.iter().any(|l| compare(v, l) == Some(Ordering::Equal));
                Possible::of(Some(found != *negated))
            }
        },
    }
}

fn holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// The order of a value against a literal of its column's kind; `None` for NULL (and for
/// values a literal cannot order, such as NaN).
fn compare(v: &Value, lit: &Literal) -> Option<Ordering> {
    match (v, lit) {
        (Value::Int(a), Literal::Number(n)) => compare_decimal(&a.to_string(), n),
        (Value::UInt(a), Literal::Number(n)) => compare_decimal(&a.to_string(), n),
        (Value::Decimal(a), Literal::Number(n)) => compare_decimal(a, n),
        (Value::Float32(a), Literal::Number(n)) => f64::from(*a).partial_cmp(&n.parse().ok()?),
        (Value::Float64(a), Literal::Number(n)) => a.partial_cmp(&n.parse().ok()?),
        (
            Value::Text(a) | Value::Enum(a) | Value::Uuid(a) | Value::Decimal(a),
            Literal::Text(b),
        ) => Some(a.as_str().cmp(b.as_str())),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Date(d), Literal::Temporal(t)) => Some(i64::from(*d).cmp(t)),
        (Value::Timestamp(a) | Value::TimestampTz(a), Literal::Temporal(t)) => Some(a.cmp(t)),
        _ => None,
    }
}

/// Compares two decimal numerals exactly (`-12.50` = `-12.5`); `None` when one is not a
/// plain decimal (NaN, infinities, exponents: compared as floats).
fn compare_decimal(a: &str, b: &str) -> Option<Ordering> {
    fn split(s: &str) -> Option<(bool, &str, &str)> {
        let (neg, digits) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let zero = int.is_empty() && frac.is_empty();
        Some((neg && !zero, int, frac))
    }
    let (Some((na, ia, fa)), Some((nb, ib, fb))) = (split(a), split(b)) else {
        let (x, y): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
        return x.partial_cmp(&y);
    };
    let magnitude = ia
        .len()
        .cmp(&ib.len())
        .then_with(|| ia.cmp(ib))
        .then_with(|| fa.cmp(fb));
    Some(match (na, nb) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ColumnDef, TableId};

    fn schema() -> TableSchema {
        let col = |name: &str, t: ColumnType| ColumnDef {
            name: name.into(),
            column_type: t,
            nullable: true,
        };
        TableSchema {
            id: TableId::new("public", "t"),
            columns: vec![
                col("id", ColumnType::Int64),
                col("status", ColumnType::Text),
                col(
                    "amount",
                    ColumnType::Decimal {
                        precision: Some(10),
                        scale: Some(2),
                    },
                ),
                col("done", ColumnType::Bool),
                col("day", ColumnType::Date),
                col("at", ColumnType::TimestampTz),
            ],
            primary_key: vec![0],
        }
    }

    fn passes(filter: &str, row: &[Value]) -> bool {
        Filter::parse(filter)
            .unwrap()
            .compile(&schema())
            .unwrap()
            .could_pass(row, |_| true)
    }

    fn row(status: Option<&str>, amount: &str) -> Vec<Value> {
        vec![
            Value::Int(1),
            status.map_or(Value::Null, |s| Value::Text(s.into())),
            Value::Decimal(amount.into()),
            Value::Bool(true),
            Value::Date(19_000),
            Value::TimestampTz(1_700_000_000_000_000),
        ]
    }

    #[test]
    fn comparisons_and_logic() {
        let r = row(Some("paid"), "12.50");
        assert!(passes("status != 'draft'", &r));
        assert!(!passes("status = 'draft'", &r));
        assert!(passes("amount > 12.4 and amount <= 12.5", &r));
        assert!(passes("amount = 12.500", &r));
        assert!(!passes("amount < -1", &r));
        assert!(passes(
            "STATUS in ('paid', 'sent') AND NOT done = false",
            &r
        ));
        assert!(passes("status not in ('draft')", &r));
        assert!(passes("id = 1 or (status = 'x' and id = 2)", &r));
        assert!(passes(
            "day >= '2022-01-01' and at > '2023-11-14T00:00:00Z'",
            &r
        ));
        assert!(!passes("day < '2022-01-01'", &r));
    }

    #[test]
    fn null_is_unknown_as_in_sql() {
        let r = row(None, "1");
        assert!(!passes("status != 'draft'", &r));
        assert!(!passes("not status = 'draft'", &r));
        assert!(passes("status is null", &r));
        assert!(!passes("status is not null", &r));
        assert!(passes("status is null or status != 'draft'", &r));
    }

    #[test]
    fn an_unknown_value_passes_when_it_could() {
        let mut r = row(Some("draft"), "1");
        r[1] = Value::Unavailable;
        assert!(passes("status != 'draft'", &r));
        assert!(!passes("status != 'draft' and id = 2", &r));
        let f = Filter::parse("status = 'paid'")
            .unwrap()
            .compile(&schema())
            .unwrap();
        let key_only = row(None, "0");
        assert!(f.could_pass(&key_only, |i| i == 0));
        assert!(!f.could_pass(&key_only, |_| true));
    }

    #[test]
    fn errors_name_the_column_or_place() {
        let s = schema();
        let compile = |f: &str| Filter::parse(f).and_then(|f| f.compile(&s)).unwrap_err();
        assert!(compile("nope = 1").contains("`nope`"));
        assert!(compile("status = 1").contains("`status`"));
        assert!(compile("done > true").contains("`done`"));
        assert!(compile("day = 'x'").contains("YYYY-MM-DD"));
        for bad in [
            "",
            "status =",
            "status = 'x",
            "(id = 1",
            "id = 1 id",
            "id == 1",
            "id = null",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Filter::parse("a = 1 and (b is null or c in (1, 2))")
                .unwrap()
                .columns(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(compare_decimal("-0.0", "0"), Some(Ordering::Equal));
        assert_eq!(compare_decimal("10", "9.99"), Some(Ordering::Greater));
        assert_eq!(compare_decimal("-10", "-9.99"), Some(Ordering::Less));
        assert_eq!(
            compare_decimal("12345678901234567890.1", "12345678901234567890.10"),
            Some(Ordering::Equal)
        );
        assert_eq!(compare_decimal("1e3", "999"), Some(Ordering::Greater));
    }
}
