//! The findings of `tidemark check` about one source: what is fine, what will fail, and how
//! to fix each. Each source's `setup` module produces them.

/// One line of `tidemark check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    pub status: CheckStatus,
    pub what: String,
    /// How to fix it (empty when fine).
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

/// A table without a primary key under `snapshot.mode: initial`: the chunked snapshot orders
/// and resumes by the key, so start-up refuses it (both sources).
pub fn keyless_initial_snapshot(
    cfg: &crate::config::ConnectorConfig,
    table: &crate::event::TableId,
) -> CheckItem {
    item(
        CheckStatus::Fail,
        format!("table {table} has no primary key: the initial snapshot reads tables in primary-key chunks"),
        format!(
            "add a primary key, or set `snapshot: {{mode: never}}` (or `on_demand`) in {}",
            cfg.file.display()
        ),
    )
}

pub fn item(status: CheckStatus, what: impl Into<String>, fix: impl Into<String>) -> CheckItem {
    CheckItem {
        status,
        what: what.into(),
        fix: fix.into(),
    }
}
