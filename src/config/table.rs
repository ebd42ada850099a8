//! `configs/tables/<connector>/<schema>.<table>.yaml`: one table's routing settings.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The topic, instead of `<topic_prefix>.<schema>.<table>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Message key columns, instead of the primary key (required for a table without one).
    #[serde(default)]
    pub key: Option<Vec<String>>,
}
