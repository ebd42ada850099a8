//! The configuration as the container loads it: overrides name existing connectors, brokers
//! point at a compose listener, and the real files load through the library with the compose
//! environment, reaching the right services with the right credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::databases::{mysql_command, server_option};
use crate::model::*;

#[test]
fn connector_overrides_name_existing_connector_files() {
    let c = compose();
    let env = environment(&c, "tidemark");
    let connectors = root().join("connectors");
    let mut seen = 0;
    for var in env.keys() {
        let Some(rest) = var.strip_prefix("TIDEMARK__CONNECTORS__") else {
            continue;
        };
        seen += 1;
        let name = rest
            .split("__")
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| panic!("{COMPOSE}: service tidemark: {var} names no connector"));
        assert!(
            rest.len() > name.len() + 2,
            "{COMPOSE}: service tidemark: {var} names connector {name} but no key under it"
        );
        let lower = name.to_lowercase();
        // The loader maps '-' in a file name to '_' in the variable name.
        let candidates: Vec<PathBuf> = [lower.clone(), lower.replace('_', "-")]
            .iter()
            .flat_map(|n| ["yaml", "yml"].map(|ext| connectors.join(format!("{n}.{ext}"))))
            .collect();
        assert!(
            candidates.iter().any(|p| p.is_file()),
            "{COMPOSE}: service tidemark sets {var}, but there is no connector file {} (looked for {})",
            connectors.join(format!("{lower}.yaml")).display(),
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    assert!(
        seen > 0,
        "{COMPOSE}: service tidemark sets no TIDEMARK__CONNECTORS__<NAME>__... variable, so the demo \
         connector would connect to the host of connectors/demo.yaml instead of the postgres service"
    );
}

#[test]
fn kafka_brokers_point_at_a_compose_listener() {
    let c = compose();
    let env = environment(&c, "tidemark");
    let brokers = env.get("TIDEMARK__KAFKA__BROKERS").unwrap_or_else(|| {
        panic!("{COMPOSE}: service tidemark does not set TIDEMARK__KAFKA__BROKERS")
    });
    let names = service_names(&c);
    for broker in brokers.split(',').map(str::trim) {
        let (host, port) = broker.rsplit_once(':').unwrap_or_else(|| {
            panic!("{COMPOSE}: TIDEMARK__KAFKA__BROKERS entry `{broker}` is not host:port")
        });
        assert!(
            names.iter().any(|n| n == host),
            "{COMPOSE}: TIDEMARK__KAFKA__BROKERS names host `{host}`, which is not a service; \
             services are {names:?}"
        );
        let kenv = environment(&c, host);
        let advertised = kenv.get("KAFKA_ADVERTISED_LISTENERS").unwrap_or_else(|| {
            panic!("{COMPOSE}: service {host} (a broker of TIDEMARK__KAFKA__BROKERS) sets no KAFKA_ADVERTISED_LISTENERS")
        });
        let advertised_addrs: Vec<&str> = advertised
            .split(',')
            .filter_map(|l| l.trim().split_once("://").map(|(_, a)| a))
            .collect();
        assert!(
            advertised_addrs.contains(&broker),
            "{COMPOSE}: TIDEMARK__KAFKA__BROKERS is `{brokers}`, but service {host} advertises \
             KAFKA_ADVERTISED_LISTENERS={advertised}, which has no listener at {broker}"
        );
        if let Some(listeners) = kenv.get("KAFKA_LISTENERS") {
            let ports: Vec<&str> = listeners
                .split(',')
                .filter_map(|l| l.trim().rsplit_once(':').map(|(_, p)| p))
                .collect();
            assert!(
                ports.contains(&port),
                "{COMPOSE}: TIDEMARK__KAFKA__BROKERS uses port {port} of service {host}, but its \
                 KAFKA_LISTENERS={listeners} listens on ports {ports:?}"
            );
        }
    }
}

#[test]
fn configuration_loads_with_the_compose_environment() {
    let c = compose();
    let env = environment(&c, "tidemark");
    let config = tidemark_config_arg(&c);
    let mounts = bind_mounts(&c, "tidemark");
    let host_config = host_path(&mounts, Path::new(&config))
        .unwrap_or_else(|| panic!("{COMPOSE}: --config {config} is not under a bind mount"));

    // Passwords named by `password_env` resolve from the environment the loader is given: the
    // compose values (and compose must set them).
    let connectors = root().join("connectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&connectors)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", connectors.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let v: Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Some(var) = v
            .get("connection")
            .and_then(|c| c.get("password_env"))
            .and_then(Value::as_str)
        {
            assert!(
                env.contains_key(var),
                "{}: connection.password_env is {var}, but service tidemark in {COMPOSE} does not set {var}",
                file.display()
            );
        }
    }

    let vars: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let settings = tidemark::config::load(&host_config, vars).unwrap_or_else(|e| {
        panic!("the configuration does not load with the environment of service tidemark in {COMPOSE}: {e}")
    });

    assert_eq!(
        settings.daemon.kafka.brokers.as_deref(),
        env.get("TIDEMARK__KAFKA__BROKERS").map(String::as_str),
        "kafka.brokers after the overrides differs from TIDEMARK__KAFKA__BROKERS in {COMPOSE}"
    );

    let demo = settings
        .connectors
        .iter()
        .find(|c| c.name == "demo")
        .unwrap_or_else(|| {
            panic!(
                "no connector `demo` after loading {}; connectors: {:?}",
                host_config.display(),
                settings
                    .connectors
                    .iter()
                    .map(|c| &c.name)
                    .collect::<Vec<_>>()
            )
        });
    let pg_env = environment(&c, "postgres");
    let expect_host = env
        .get("TIDEMARK__CONNECTORS__DEMO__CONNECTION__HOST")
        .unwrap_or_else(|| panic!("{COMPOSE}: service tidemark does not set TIDEMARK__CONNECTORS__DEMO__CONNECTION__HOST"));
    assert_eq!(
        &demo.connection.host, expect_host,
        "connector demo: connection.host after the overrides differs from {COMPOSE}"
    );
    assert!(
        service_names(&c).contains(&demo.connection.host),
        "connector demo connects to host {}, which is not a service of {COMPOSE}",
        demo.connection.host
    );
    // The postgres image listens on 5432 unless its command sets another port.
    let pg_cmd = words(
        service(&c, "postgres")
            .get("command")
            .unwrap_or(&Value::Null),
    );
    let pg_port: u16 = pg_cmd
        .iter()
        .find_map(|w| w.strip_prefix("port="))
        .map(|p| p.parse().expect("postgres port= is not a number"))
        .unwrap_or(5432);
    assert_eq!(
        demo.connection.port, pg_port,
        "connector demo connects to port {}, but service postgres listens on {pg_port}",
        demo.connection.port
    );
    if let Some(p) = env.get("TIDEMARK__CONNECTORS__DEMO__CONNECTION__PORT") {
        assert_eq!(
            demo.connection.port.to_string(),
            *p,
            "connector demo: connection.port after the overrides differs from {COMPOSE}"
        );
    }
    for (what, got, var) in [
        ("database", demo.connection.database.as_str(), "POSTGRES_DB"),
        ("user", demo.connection.user.as_str(), "POSTGRES_USER"),
        (
            "password",
            demo.connection.password.expose(),
            "POSTGRES_PASSWORD",
        ),
    ] {
        if let Some(want) = pg_env.get(var) {
            assert!(
                got == want.as_str(),
                "connector demo: connection.{what} is {}, but service postgres is set up with {var}={}",
                if what == "password" { "(hidden)" } else { got },
                if what == "password" { "(hidden)" } else { want }
            );
        }
    }
    // Every enabled connector must reach a container: a host left at the file's 127.0.0.1 is the
    // tidemark container itself.
    for conn in settings.connectors.iter().filter(|c| c.enabled) {
        assert!(
            service_names(&c).contains(&conn.connection.host),
            "connector {} ({}) connects to host {} inside the tidemark container, which is not a \
             service of {COMPOSE}; set TIDEMARK__CONNECTORS__{}__CONNECTION__HOST",
            conn.name,
            conn.file.display(),
            conn.connection.host,
            conn.name.to_uppercase().replace('-', "_")
        );
    }

    check_demo_mysql(&c, &env, &settings);

    if let Some(store) = env.get("TIDEMARK__OFFSETS__STORE") {
        let got = format!("{:?}", settings.position_store).to_lowercase();
        assert_eq!(
            &got, store,
            "position store after the overrides differs from TIDEMARK__OFFSETS__STORE in {COMPOSE}"
        );
    }
}

/// connectors/demo_mysql.yaml, after the compose overrides, against service mysql.
pub fn check_demo_mysql(
    c: &Value,
    env: &BTreeMap<String, String>,
    settings: &tidemark::config::Settings,
) {
    let demo = settings
        .connectors
        .iter()
        .find(|c| c.name == "demo_mysql")
        .unwrap_or_else(|| {
            panic!(
                "no connector `demo_mysql` after loading the configuration; connectors: {:?}",
                settings
                    .connectors
                    .iter()
                    .map(|c| &c.name)
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(
        demo.kind(),
        tidemark::config::SourceKind::Mysql,
        "connector demo_mysql ({}) is not `kind: mysql`",
        demo.file.display()
    );
    let expect_host = env
        .get("TIDEMARK__CONNECTORS__DEMO_MYSQL__CONNECTION__HOST")
        .unwrap_or_else(|| {
            panic!("{COMPOSE}: service tidemark does not set TIDEMARK__CONNECTORS__DEMO_MYSQL__CONNECTION__HOST")
        });
    assert_eq!(
        &demo.connection.host, expect_host,
        "connector demo_mysql: connection.host after the overrides differs from {COMPOSE}"
    );
    assert_eq!(
        demo.connection.host, "mysql",
        "connector demo_mysql connects to host {}, not to service mysql of {COMPOSE}",
        demo.connection.host
    );
    // The mariadb image listens on 3306 unless its command sets another port.
    let cmd = mysql_command(c);
    let port: u16 = server_option(&cmd, "port")
        .map(|p| p.parse().expect("mysql --port= is not a number"))
        .unwrap_or(3306);
    assert_eq!(
        demo.connection.port, port,
        "connector demo_mysql connects to port {}, but service mysql listens on {port}",
        demo.connection.port
    );
    if let Some(p) = env.get("TIDEMARK__CONNECTORS__DEMO_MYSQL__CONNECTION__PORT") {
        assert_eq!(
            demo.connection.port.to_string(),
            *p,
            "connector demo_mysql: connection.port after the overrides differs from {COMPOSE}"
        );
    }
    let my_env = environment(c, "mysql");
    for (what, got, var) in [
        (
            "database",
            demo.connection.database.as_str(),
            "MARIADB_DATABASE",
        ),
        ("user", demo.connection.user.as_str(), "MARIADB_USER"),
        (
            "password",
            demo.connection.password.expose(),
            "MARIADB_PASSWORD",
        ),
    ] {
        let want = my_env.get(var).unwrap_or_else(|| {
            panic!("{COMPOSE}: service mysql does not set {var}; connector demo_mysql relies on it")
        });
        assert!(
            got == want.as_str(),
            "connector demo_mysql: connection.{what} is {}, but service mysql is set up with {var}={}",
            if what == "password" { "(hidden)" } else { got },
            if what == "password" { "(hidden)" } else { want }
        );
    }
    let server_id: u32 = server_option(&cmd, "server-id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let tidemark::config::SourceSettings::Mysql(my) = &demo.source else {
        panic!("connector demo_mysql has no mysql settings");
    };
    assert_ne!(
        my.server_id, server_id,
        "connector demo_mysql: mysql.server_id {} is service mysql's own --server-id",
        my.server_id
    );
    for t in &demo.tables {
        assert_eq!(
            t.id.schema, demo.connection.database,
            "connector demo_mysql captures {}.{}, outside its database {}",
            t.id.schema, t.id.table, demo.connection.database
        );
    }
}
