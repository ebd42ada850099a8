//! `tidemark check`: validates the configuration and each source's prerequisites.

use crate::config::{self, SinkKind};
use crate::source::check::{CheckItem, CheckStatus};
use std::path::Path;

pub async fn check(config_path: &Path, offline: bool) -> i32 {
    let settings = match config::load(config_path, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL  configuration: {e}");
            return 2;
        }
    };
    println!(
        "ok    configuration: {} and {} connector file(s)",
        config_path.display(),
        settings.connectors.len()
    );
    if offline {
        return 0;
    }
    let mut failed = false;
    for c in &settings.connectors {
        println!("connector {} ({}):", c.name, c.file.display());
        if !c.enabled {
            println!("  skip  disabled");
            continue;
        }
        match crate::source::check(c, settings.daemon.kafka.compact_topics).await {
            Ok(items) => {
                failed |= print_items(items);
                failed |= check_table_files(c).await;
            }
            Err(e) => {
                println!("  FAIL  {e}");
                failed = true;
            }
        }
    }
    if settings.daemon.sink == SinkKind::Kafka {
        failed |= super::check_kafka::check(&settings).await;
    }
    failed |= check_registry(&settings).await;
    if failed {
        1
    } else {
        0
    }
}

/// The schema registry, when a table is in the avro format: it answers, and takes tidemark's
/// credentials. `true` when it does not.
async fn check_registry(settings: &config::Settings) -> bool {
    let uses_avro = settings.daemon.format == config::Format::Avro
        || settings
            .connectors
            .iter()
            .flat_map(|c| &c.tables)
            .any(|t| t.config.format == Some(config::Format::Avro));
    let Some(registry) = settings.schema_registry.as_ref().filter(|_| uses_avro) else {
        return false;
    };
    let answer = match crate::schema::registry::RegistryClient::new(registry) {
        Ok(client) => client.default_level().await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(level) => {
            println!(
                "ok    schema registry at {}: default compatibility {level}",
                registry.url
            );
            false
        }
        Err(e) => {
            println!("FAIL  schema registry at {}: {e}", registry.url);
            true
        }
    }
}

/// The table files' column names against the live tables; `true` when one is missing.
async fn check_table_files(c: &config::ConnectorConfig) -> bool {
    match crate::source::table_columns(c).await {
        Ok(live) => {
            let problems = crate::router::check_columns(c, &live);
            if problems.is_empty() {
                println!("  ok    the table files name only existing columns");
            }
            for p in &problems {
                println!("  FAIL  {p}");
                println!("        fix: correct the table file, or add the column to the table");
            }
            !problems.is_empty()
        }
        Err(e) => {
            println!("  FAIL  reading the tables' columns: {e}");
            true
        }
    }
}

/// Prints check items; true when any failed.
fn print_items(items: Vec<CheckItem>) -> bool {
    let mut failed = false;
    for item in items {
        failed |= print_item(&item, "  ");
    }
    failed
}

/// Prints one check item under `indent`; true when it failed.
pub fn print_item(item: &CheckItem, indent: &str) -> bool {
    let tag = match item.status {
        CheckStatus::Ok => "ok  ",
        CheckStatus::Warn => "WARN",
        CheckStatus::Fail => "FAIL",
    };
    println!("{indent}{tag}  {}", item.what);
    if !item.fix.is_empty() {
        println!("{indent}      fix: {}", item.fix);
    }
    item.status == CheckStatus::Fail
}
