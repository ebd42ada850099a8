//! `tidemark check`'s Kafka part: the brokers answer with the configured security
//! (`kafka.client`), and the topics tidemark will write are fit for it: each table's topic
//! (compacted when `kafka.compact_topics`, so deletes' tombstones make it converge to the
//! table), and the positions topic of the Kafka position store (compacted, else positions
//! expire with its retention). A topic that does not exist yet is fine when tidemark creates
//! it (`kafka.create_topics`).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::{PositionStoreKind, Settings};
use crate::router::Router;
use crate::source::check::{CheckItem, CheckStatus};

/// What the brokers say about one topic: its partition count, and its `cleanup.policy`
/// (`None` when unreadable).
struct TopicFacts {
    partitions: usize,
    cleanup_policy: Option<String>,
}

/// Checks the sink; prints its findings; `true` when one failed.
pub async fn check(settings: &Settings) -> bool {
    let k = &settings.daemon.kafka;
    let brokers = k.brokers.clone().unwrap_or_default();
    let client = k.client_config();
    let wanted = topics(settings);
    let names: Vec<String> = wanted.iter().map(|(t, _)| t.clone()).collect();
    let metadata = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client.create()?;
        let m = consumer.fetch_metadata(None, Duration::from_secs(10))?;
        let existing: HashMap<String, usize> = m
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect();
        Ok::<_, rdkafka::error::KafkaError>((m.brokers().len(), existing))
    })
    .await;
    let (count, existing) = match metadata {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            println!("FAIL  Kafka at {brokers}: {e}");
            println!("        fix: check kafka.brokers and kafka.client (security.protocol, ssl.*, sasl.*), and that the brokers run");
            return true;
        }
        Err(e) => {
            println!("FAIL  Kafka at {brokers}: {e}");
            return true;
        }
    };
    println!("ok    Kafka at {brokers}: {count} broker(s)");
    let policies = cleanup_policies(settings, &names, &existing).await;
    let mut failed = false;
    for (topic, role) in &wanted {
        let facts = existing.get(topic).map(|&partitions| TopicFacts {
            partitions,
            cleanup_policy: policies.get(topic).cloned(),
        });
        let item = judge(settings, topic, *role, facts.as_ref());
        failed |= crate::cli::check::print_item(&item, "");
    }
    failed
}

/// What a topic is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A table's changes (compacted when `kafka.compact_topics`).
    Table,
    /// The Kafka position store's topic (always compacted).
    Positions,
}

/// The topics tidemark writes that the configuration names (outbox topics come from the
/// rows, so they are not known here).
fn topics(settings: &Settings) -> Vec<(String, Role)> {
    let mut out: Vec<(String, Role)> = Vec::new();
    for c in settings.connectors.iter().filter(|c| c.enabled) {
        let Ok(router) = Router::new(
            std::sync::Arc::new(c.clone()),
            &settings.daemon,
            settings.hash_salt.clone(),
        ) else {
            // The configuration check above has already reported it.
            continue;
        };
        for t in router.configured_topics() {
            if !out.iter().any(|(o, _)| *o == t) {
                out.push((t, Role::Table));
            }
        }
    }
    if settings.position_store == PositionStoreKind::Kafka {
        out.push((settings.daemon.offsets.topic.clone(), Role::Positions));
    }
    out
}

/// The `cleanup.policy` of each existing topic among `names` (where the brokers say).
async fn cleanup_policies(
    settings: &Settings,
    names: &[String],
    existing: &HashMap<String, usize>,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let present: Vec<&String> = names.iter().filter(|n| existing.contains_key(*n)).collect();
    if present.is_empty() {
        return out;
    }
    let admin: AdminClient<DefaultClientContext> =
        match settings.daemon.kafka.client_config().create() {
            Ok(a) => a,
            Err(_) => return out,
        };
    let resources: Vec<ResourceSpecifier<'_>> = present
        .iter()
        .map(|n| ResourceSpecifier::Topic(n.as_str()))
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    if let Ok(results) = admin.describe_configs(&resources, &opts).await {
        for (name, result) in present.iter().zip(results) {
            if let Some(policy) = result
                .ok()
                .and_then(|r| r.get("cleanup.policy").and_then(|e| e.value.clone()))
            {
                out.insert((*name).clone(), policy);
            }
        }
    }
    out
}

/// The verdict on one topic.
fn judge(settings: &Settings, topic: &str, role: Role, facts: Option<&TopicFacts>) -> CheckItem {
    let k = &settings.daemon.kafka;
    let want_compact = match role {
        Role::Table => k.compact_topics,
        Role::Positions => true,
    };
    let what = match role {
        Role::Table => format!("topic {topic}"),
        Role::Positions => format!("positions topic {topic}"),
    };
    let Some(facts) = facts else {
        let creates = match role {
            Role::Table => k.create_topics,
            // The position store always creates its topic.
            Role::Positions => true,
        };
        return if creates {
            CheckItem {
                status: CheckStatus::Ok,
                what: format!(
                    "{what}: created at the first start{}",
                    if want_compact { " (compacted)" } else { "" }
                ),
                fix: String::new(),
            }
        } else {
            CheckItem {
                status: CheckStatus::Warn,
                what: format!("{what} does not exist, and kafka.create_topics is off"),
                fix: "create it (cleanup.policy=compact), or set kafka.create_topics: true; \
                      producing to it works only where the brokers create topics on first use"
                    .into(),
            }
        };
    };
    match facts.cleanup_policy.as_deref() {
        Some(p) if want_compact && !p.contains("compact") => CheckItem {
            status: CheckStatus::Warn,
            what: format!("{what} has cleanup.policy={p}, not compact"),
            fix: match role {
                Role::Table => "its records expire with the topic's retention and deletes never \
                                remove a key: set cleanup.policy=compact on it (or kafka.compact_topics: false to say it is meant)"
                    .into(),
                Role::Positions => "positions expire with its retention, and a connector idle that long \
                                    finds none: set cleanup.policy=compact on it"
                    .into(),
            },
        },
        None => CheckItem {
            status: CheckStatus::Warn,
            what: format!(
                "{what}: {} partition(s); the brokers did not tell its cleanup.policy",
                facts.partitions
            ),
            fix: if want_compact {
                "it should be compact".into()
            } else {
                String::new()
            },
        },
        Some(p) => CheckItem {
            status: CheckStatus::Ok,
            what: format!("{what}: {} partition(s), cleanup.policy={p}", facts.partitions),
            fix: String::new(),
        },
    }
}
