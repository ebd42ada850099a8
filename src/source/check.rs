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

pub fn item(status: CheckStatus, what: impl Into<String>, fix: impl Into<String>) -> CheckItem {
    CheckItem {
        status,
        what: what.into(),
        fix: fix.into(),
    }
}
