//! The services: the ones tidemark's configuration needs exist, start in order (healthy
//! first), and give tidemark time to stop.

use serde_yaml::Value;

use crate::model::*;

#[test]
fn services_exist() {
    let c = compose();
    let names = service_names(&c);
    for wanted in ["postgres", "mysql", "kafka", "schema-registry", "tidemark"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{COMPOSE}: service `{wanted}` is missing; services are {names:?}"
        );
    }
}

#[test]
fn tidemark_waits_for_every_server_it_uses() {
    let c = compose();
    let env = environment(&c, "tidemark");
    let mut used: Vec<String> = env
        .iter()
        .filter(|(k, _)| {
            k.starts_with("TIDEMARK__CONNECTORS__") && k.ends_with("__CONNECTION__HOST")
        })
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(brokers) = env.get("TIDEMARK__KAFKA__BROKERS") {
        used.extend(
            brokers
                .split(',')
                .filter_map(|b| b.trim().rsplit_once(':').map(|(h, _)| h.to_string())),
        );
    }
    if let Some(url) = env.get("TIDEMARK__SCHEMA_REGISTRY__URL") {
        let host = url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .split([':', '/'])
            .next()
            .unwrap_or_default();
        used.push(host.to_string());
    }
    for wanted in ["postgres", "mysql", "kafka", "schema-registry"] {
        assert!(
            used.iter().any(|u| u == wanted),
            "{COMPOSE}: service tidemark is not pointed at service {wanted} (no \
             TIDEMARK__CONNECTORS__<NAME>__CONNECTION__HOST, TIDEMARK__KAFKA__BROKERS or \
             TIDEMARK__SCHEMA_REGISTRY__URL names it)"
        );
    }
    let deps = service(&c, "tidemark").get("depends_on");
    for host in used {
        let condition = deps
            .and_then(|d| d.get(host.as_str()))
            .and_then(|d| d.get("condition"))
            .and_then(Value::as_str);
        assert_eq!(
            condition,
            Some("service_healthy"),
            "{COMPOSE}: service tidemark connects to {host} but does not depend on it with \
             `condition: service_healthy`"
        );
    }
}

#[test]
fn depends_on_waits_for_healthy_services() {
    let c = compose();
    for name in service_names(&c) {
        let Some(deps) = service(&c, &name).get("depends_on") else {
            continue;
        };
        let deps = match deps {
            Value::Mapping(m) => m,
            other => panic!(
                "{COMPOSE}: service {name} uses the short depends_on syntax ({other:?}), which waits \
                 only until the container starts; use `<service>: {{condition: service_healthy}}`"
            ),
        };
        for (dep, spec) in deps {
            let dep = dep.as_str().unwrap_or_default();
            let condition = spec
                .get("condition")
                .and_then(Value::as_str)
                .unwrap_or("(none)");
            assert_eq!(
                condition, "service_healthy",
                "{COMPOSE}: service {name} depends on {dep} with condition {condition}, expected service_healthy"
            );
            let target = services(&c).get(dep).unwrap_or_else(|| {
                panic!("{COMPOSE}: service {name} depends on {dep}, which is not a service")
            });
            let hc = target.get("healthcheck");
            let test = hc
                .and_then(|h| h.get("test"))
                .map(words)
                .unwrap_or_default();
            let disabled = hc
                .and_then(|h| h.get("disable"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || test.first().map(String::as_str) == Some("NONE");
            assert!(
                !test.is_empty() && !disabled,
                "{COMPOSE}: service {name} waits for {dep} to be healthy, but {dep} has no \
                 healthcheck.test, so it never becomes healthy"
            );
        }
    }
}

/// Compose kills a container `stop_grace_period` after SIGTERM (10 s by default): tidemark must
/// get longer than its own `shutdown_timeout_ms` to drain and commit.
#[test]
fn tidemark_gets_longer_to_stop_than_its_shutdown_timeout() {
    let c = compose();
    let grace = service(&c, "tidemark")
        .get("stop_grace_period")
        .and_then(Value::as_str)
        .unwrap_or("10s");
    let seconds: u64 = grace
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!("{COMPOSE}: tidemark's stop_grace_period {grace:?} is not `<n>s`")
        });
    let settings = tidemark::config::load(
        &root().join("configs/tidemark.yaml"),
        std::iter::empty::<(String, String)>(),
    );
    let timeout_ms = settings.map_or(30_000, |s| s.daemon.shutdown_timeout_ms);
    assert!(
        seconds * 1000 > timeout_ms,
        "{COMPOSE}: tidemark's stop_grace_period ({grace}) must exceed shutdown_timeout_ms ({timeout_ms} ms)"
    );
}

/// Under `restart: unless-stopped`, a definite error must not become a crash loop: the
/// process stays up and unhealthy (its error in the admin API), and the healthcheck asks the
/// admin API of the same configuration the service runs.
#[test]
fn tidemark_is_health_checked_through_its_admin_api_and_does_not_crash_loop() {
    let c = compose();
    let t = service(&c, "tidemark");
    let test = words(&t["healthcheck"]["test"]);
    let command = words(&t["command"]);
    assert!(
        test.iter().any(|w| w == "tidemark") && test.iter().any(|w| w == "health"),
        "{COMPOSE}: tidemark's healthcheck.test should run `tidemark health`; it is {test:?}"
    );
    let config_of = |words: &[String]| {
        words
            .iter()
            .position(|w| w == "--config")
            .and_then(|i| words.get(i + 1).cloned())
    };
    assert_eq!(
        config_of(&test),
        config_of(&command),
        "{COMPOSE}: the healthcheck must read the configuration the service runs"
    );
    let env = environment(&c, "tidemark");
    let settings = tidemark::config::load(&root().join("configs/tidemark.yaml"), env)
        .unwrap_or_else(|e| panic!("configs/tidemark.yaml with {COMPOSE}'s environment: {e}"));
    let admin = settings.admin.as_ref().unwrap_or_else(|| {
        panic!("configs/tidemark.yaml: the admin API is off, so the healthcheck cannot pass")
    });
    assert!(
        admin.listen.ip().is_loopback() || admin.token.is_some(),
        "the healthcheck runs inside the container: loopback is enough"
    );
    assert!(
        settings.keep_running_on_failure,
        "configs/tidemark.yaml: on_connector_failure must keep the process running under \
         `restart: unless-stopped` (a definite error would otherwise restart it in a loop)"
    );
}
