//! Configuration errors: each names the file, the key path and, where known, the line.

use std::fmt;
use std::path::PathBuf;

/// Where in a configuration file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key is unknown, missing, or of the wrong type, or a value is out of range.
    #[error("{}", InvalidDisplay { file, key, location, message })]
    Invalid {
        file: PathBuf,
        /// Dotted key path (`kafka.brokers`, `tables[2]`), or empty for the whole file.
        key: String,
        location: Option<Location>,
        message: String,
    },
}

struct InvalidDisplay<'a> {
    file: &'a PathBuf,
    key: &'a String,
    location: &'a Option<Location>,
    message: &'a String,
}

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": at `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    pub fn invalid(
        file: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.into(),
            key: key.into(),
            location: None,
            message: message.into(),
        }
    }
}
