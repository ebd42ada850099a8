//! Topic templates: `{prefix}.{schema}.{table}`, with `{connector}` and `{db}` too, and (in
//! an outbox table's template) `{<column>}` for a column's value.
//!
//! A template is parsed once (when the configuration is loaded) into literal text and
//! placeholders; filling it in is a concatenation. A filled-in topic must be a valid Kafka
//! topic name: a column value that would make an invalid name is reported, not cleaned up
//! (two values cleaned to one name would merge two aggregates' topics).

/// The placeholders every template may use.
pub const TABLE_PLACEHOLDERS: [&str; 5] = ["prefix", "connector", "db", "schema", "table"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(String),
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values of the table placeholders for one table.
#[derive(Debug, Clone, Copy)]
pub struct TableNames<'a> {
    pub prefix: &'a str,
    pub connector: &'a str,
    pub db: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
}

impl TableNames<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "prefix" => self.prefix,
            "connector" => self.connector,
            "db" => self.db,
            "schema" => self.schema,
            "table" => self.table,
            _ => return None,
        })
    }
}

impl Template {
    /// Parses `text`. `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_alphanumeric() || c == '_' || c == '$' => name.push(c),
                            Some(c) => {
                                return Err(format!(
                                "`{text}`: `{c}` inside a placeholder (a placeholder is {{name}})"
                            ))
                            }
                            None => return Err(format!("`{text}`: a `{{` is not closed")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("`{text}`: an empty placeholder {{}}"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Placeholder(name));
                }
                '}' => return Err(format!("`{text}`: a `}}` without its `{{`")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if parts.is_empty() {
            return Err("the topic template is empty".into());
        }
        Ok(Self { parts })
    }

    /// The placeholders that are not table placeholders (an outbox template's columns).
    pub fn column_placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder(n) if !TABLE_PLACEHOLDERS.contains(&n.as_str()) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Fills in the table placeholders, leaving column placeholders for [`Template::render`].
    pub fn with_table(&self, names: &TableNames<'_>) -> Template {
        let mut parts: Vec<Part> = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            let text = match p {
                Part::Placeholder(n) => match names.get(n) {
                    Some(v) => v.to_string(),
                    None => {
                        parts.push(p.clone());
                        continue;
                    }
                },
                Part::Text(t) => t.clone(),
            };
            match parts.last_mut() {
                Some(Part::Text(prev)) => prev.push_str(&text),
                _ => parts.push(Part::Text(text)),
            }
        }
        Template { parts }
    }

    /// The template's text when it has no placeholder left.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// A connector-wide topic (the dead-letter and transaction topics) from the daemon file's
    /// `key`: `text` with `{prefix}`, `{connector}` and `{db}` filled in.
    pub fn connector_topic(
        key: &str,
        text: &str,
        daemon: &crate::config::DaemonConfig,
        connector: &crate::config::ConnectorConfig,
    ) -> crate::error::Result<std::sync::Arc<str>> {
        use crate::error::Error;
        let template = Template::parse(text).map_err(|e| Error::definite(format!("{key}: {e}")))?;
        let names = TableNames {
            prefix: &daemon.kafka.topic_prefix,
            connector: &connector.name,
            db: &connector.connection.database,
            schema: "",
            table: "",
        };
        template
            .with_table(&names)
            .as_literal()
            .map(std::sync::Arc::from)
            .ok_or_else(|| {
                Error::definite(format!(
                    "{key}: only {{prefix}}, {{connector}} and {{db}} (a table's placeholders have no value here)"
                ))
            })
    }

    /// Fills in every placeholder through `value` (`None`: unknown placeholder, reported).
    pub fn render<'a>(
        &self,
        mut value: impl FnMut(&str) -> Option<std::borrow::Cow<'a, str>>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Placeholder(n) => match value(n) {
                    Some(v) => out.push_str(&v),
                    None => return Err(format!("no value for {{{n}}}")),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> TableNames<'static> {
        TableNames {
            prefix: "tm",
            connector: "c1",
            db: "shop",
            schema: "public",
            table: "orders",
        }
    }

    #[test]
    fn fills_table_placeholders() {
        let t = Template::parse("{prefix}.{db}.{schema}.{table}-{connector}").unwrap();
        assert_eq!(
            t.with_table(&names()).as_literal(),
            Some("tm.shop.public.orders-c1")
        );
        let plain = Template::parse("all.orders").unwrap();
        assert_eq!(plain.with_table(&names()).as_literal(), Some("all.orders"));
    }

    #[test]
    fn leaves_column_placeholders() {
        let t = Template::parse("{prefix}.{aggregate_type}.events").unwrap();
        assert_eq!(
            t.column_placeholders().collect::<Vec<_>>(),
            ["aggregate_type"]
        );
        let filled = t.with_table(&names());
        assert_eq!(filled.as_literal(), None);
        let topic = filled
            .render(|n| (n == "aggregate_type").then(|| "order".into()))
            .unwrap();
        assert_eq!(topic, "tm.order.events");
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in ["{", "a}", "{}", "{a b}", ""] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Template::parse("{{x}}").unwrap().as_literal(), Some("{x}"));
    }
}
