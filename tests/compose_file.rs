//! docker-compose.yml, the Dockerfile and the configuration files must agree with each other.
//!
//! No server and no Docker is needed: the compose file is parsed as YAML and every reference in
//! it (mounted paths, the config file of the `tidemark` command, environment overrides, broker
//! address, health checks) is followed back to the repository. Last, the real configuration is
//! loaded through the library with the compose environment applied, as the container would.
//! Each failure message says which file and which entry disagree with what.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

const COMPOSE: &str = "docker-compose.yml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let path = root().join(COMPOSE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{COMPOSE} is not valid YAML: {e}"))
}

fn services(c: &Value) -> &serde_yaml::Mapping {
    c.get("services")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{COMPOSE}: no `services:` mapping"))
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    services(c)
        .get(name)
        .unwrap_or_else(|| panic!("{COMPOSE}: no service `{name}`"))
}

fn service_names(c: &Value) -> Vec<String> {
    services(c)
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect()
}

/// A scalar as compose reads it (`5432`, `true` and `"x"` are all strings to it).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `command:` / `healthcheck.test:` as a list of words (a string is split on whitespace).
fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        Value::Null => Vec::new(),
        other => scalar(other)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// A service's `environment:`, in either compose syntax (mapping, or list of `KEY=value`).
fn environment(c: &Value, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match service(c, name).get("environment") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_else(|| {
                    panic!("{COMPOSE}: service {name}: environment key {k:?} is not a string")
                });
                let value = scalar(v).unwrap_or_else(|| {
                    panic!(
                        "{COMPOSE}: service {name}: environment {key} has no scalar value ({v:?})"
                    )
                });
                out.insert(key.to_string(), value);
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                let s = scalar(item).unwrap_or_default();
                let (k, v) = s.split_once('=').unwrap_or_else(|| {
                    panic!("{COMPOSE}: service {name}: environment entry `{s}` has no value (KEY=value)")
                });
                out.insert(k.to_string(), v.to_string());
            }
        }
        Some(other) => panic!(
            "{COMPOSE}: service {name}: environment is neither a mapping nor a list: {other:?}"
        ),
    }
    out
}

/// One bind mount: a host path (as written, relative to the compose file) and a container path.
#[derive(Debug, Clone)]
struct Mount {
    source: String,
    target: String,
}

fn is_host_path(s: &str) -> bool {
    s.starts_with("./") || s.starts_with("../") || s.starts_with('/') || s == "." || s == ".."
}

/// The bind mounts of a service (named volumes are skipped).
fn bind_mounts(c: &Value, name: &str) -> Vec<Mount> {
    let Some(Value::Sequence(items)) = service(c, name).get("volumes") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::String(s) => {
                let mut parts = s.splitn(3, ':');
                let source = parts.next().unwrap_or_default();
                let Some(target) = parts.next() else {
                    continue; // an anonymous volume: `/container/path`
                };
                if is_host_path(source) {
                    out.push(Mount {
                        source: source.to_string(),
                        target: target.to_string(),
                    });
                }
            }
            Value::Mapping(_) => {
                if item.get("type").and_then(Value::as_str) == Some("bind") {
                    let source = item
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| {
                            panic!(
                                "{COMPOSE}: service {name}: bind volume without `source`: {item:?}"
                            )
                        });
                    let target = item
                        .get("target")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| {
                            panic!(
                                "{COMPOSE}: service {name}: bind volume without `target`: {item:?}"
                            )
                        });
                    out.push(Mount {
                        source: source.to_string(),
                        target: target.to_string(),
                    });
                }
            }
            other => panic!("{COMPOSE}: service {name}: unreadable volumes entry {other:?}"),
        }
    }
    out
}

/// Removes `.` and resolves `..` without touching the file system (container paths).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The host path (relative to the repository) behind container path `path`, through the
/// longest bind mount that contains it.
fn host_path(mounts: &[Mount], path: &Path) -> Option<PathBuf> {
    let path = normalize(path);
    mounts
        .iter()
        .filter_map(|m| {
            let rest = path.strip_prefix(normalize(Path::new(&m.target))).ok()?;
            Some((m.target.len(), root().join(&m.source).join(rest)))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, p)| normalize(&p))
}

fn describe_mounts(mounts: &[Mount]) -> String {
    if mounts.is_empty() {
        return "(no bind mounts)".into();
    }
    mounts
        .iter()
        .map(|m| format!("{}:{}", m.source, m.target))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The container path of the config file in the tidemark service's command.
fn tidemark_config_arg(c: &Value) -> String {
    let cmd = words(
        service(c, "tidemark")
            .get("command")
            .unwrap_or(&Value::Null),
    );
    assert!(
        !cmd.is_empty(),
        "{COMPOSE}: service tidemark has no `command:`; it should be [\"run\", \"--config\", <path>]"
    );
    for (i, w) in cmd.iter().enumerate() {
        if let Some(p) = w.strip_prefix("--config=") {
            return p.to_string();
        }
        if w == "--config" || w == "-c" {
            return cmd.get(i + 1).cloned().unwrap_or_else(|| {
                panic!("{COMPOSE}: service tidemark: command {cmd:?} ends with {w} and no path")
            });
        }
    }
    panic!("{COMPOSE}: service tidemark: command {cmd:?} has no --config <path>");
}

#[test]
fn services_exist() {
    let c = compose();
    let names = service_names(&c);
    for wanted in ["postgres", "mysql", "kafka", "tidemark"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{COMPOSE}: service `{wanted}` is missing; services are {names:?}"
        );
    }
}

#[test]
fn bind_mounted_host_paths_exist() {
    let c = compose();
    for name in service_names(&c) {
        for m in bind_mounts(&c, &name) {
            if m.source.starts_with('/') {
                continue; // an absolute host path is the host's business, not the repository's
            }
            let host = root().join(&m.source);
            assert!(
                host.exists(),
                "{COMPOSE}: service {name} mounts `{}` at {}, but {} does not exist in the repository",
                m.source,
                m.target,
                host.display()
            );
        }
    }
}

#[test]
fn tidemark_command_names_a_mounted_config_file() {
    let c = compose();
    let config = tidemark_config_arg(&c);
    let mounts = bind_mounts(&c, "tidemark");
    let host = host_path(&mounts, Path::new(&config)).unwrap_or_else(|| {
        panic!(
            "{COMPOSE}: service tidemark runs with --config {config}, but no bind mount covers that \
             path; mounts: {}",
            describe_mounts(&mounts)
        )
    });
    assert!(
        host.is_file(),
        "{COMPOSE}: service tidemark runs with --config {config}, which is mounted from {}, but that \
         file does not exist",
        host.display()
    );
}

#[test]
fn config_directories_are_mounted_in_the_container() {
    // connectors_dir and tables_dir are relative to the config file: inside the container they
    // must land on mounted directories, or the daemon starts with no connectors.
    let c = compose();
    let config = PathBuf::from(tidemark_config_arg(&c));
    let mounts = bind_mounts(&c, "tidemark");
    let host_config = host_path(&mounts, &config).unwrap_or_else(|| {
        panic!(
            "{COMPOSE}: --config {} is not under a bind mount",
            config.display()
        )
    });
    let daemon: tidemark::config::DaemonConfig =
        tidemark::config::loader::load_file(&host_config, &[]).unwrap_or_else(|e| panic!("{e}"));
    let dir = config.parent().unwrap_or(Path::new("/"));
    for (key, rel) in [
        ("connectors_dir", &daemon.connectors_dir),
        ("tables_dir", &daemon.tables_dir),
    ] {
        let in_container = normalize(&dir.join(rel));
        let host = host_path(&mounts, &in_container).unwrap_or_else(|| {
            panic!(
                "{}: {key} `{}` is {} inside the tidemark container, which no bind mount of {COMPOSE} \
                 covers; mounts: {}",
                host_config.display(),
                rel.display(),
                in_container.display(),
                describe_mounts(&mounts)
            )
        });
        // tables_dir may legitimately be absent (every table gets the defaults).
        if key == "connectors_dir" {
            assert!(
                host.is_dir(),
                "{}: {key} `{}` is {} in the container, mounted from {}, which is not a directory",
                host_config.display(),
                rel.display(),
                in_container.display(),
                host.display()
            );
        }
    }
}

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
fn postgres_runs_with_logical_wal() {
    let c = compose();
    let cmd = words(
        service(&c, "postgres")
            .get("command")
            .unwrap_or(&Value::Null),
    );
    assert!(
        cmd.iter().any(|w| w == "wal_level=logical" || w == "--wal_level=logical"),
        "{COMPOSE}: service postgres runs with command {cmd:?}, which does not set wal_level=logical \
         (add `-c wal_level=logical`): logical replication needs it"
    );
}

/// The value of a mariadbd command-line option (`--binlog-format=ROW`, `--binlog_format=ROW`),
/// `Some("")` for a bare flag (`--log-bin`), `None` when absent. The last occurrence wins, as for
/// the server.
fn server_option(cmd: &[String], name: &str) -> Option<String> {
    let norm = |s: &str| s.replace('_', "-").to_ascii_lowercase();
    let want = norm(name);
    cmd.iter().rev().find_map(|w| {
        let w = w.strip_prefix("--")?;
        let (k, v) = w.split_once('=').unwrap_or((w, ""));
        (norm(k) == want).then(|| v.to_string())
    })
}

fn mysql_command(c: &Value) -> Vec<String> {
    words(service(c, "mysql").get("command").unwrap_or(&Value::Null))
}

#[test]
fn mysql_is_mariadb_10_5_or_later() {
    let c = compose();
    let image = service(&c, "mysql")
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{COMPOSE}: service mysql has no `image:`"));
    let tag = image.strip_prefix("mariadb:").unwrap_or_else(|| {
        panic!("{COMPOSE}: service mysql uses image `{image}`; the demo expects the official `mariadb:<version>` image (its entrypoint runs docker/mysql-init/ and ships healthcheck.sh)")
    });
    let mut parts = tag.split(['.', '-']).map(|p| p.parse::<u32>());
    let version = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => panic!(
            "{COMPOSE}: service mysql uses image `{image}`; pin a version tag such as mariadb:10.11"
        ),
    };
    assert!(
        version >= (10, 5),
        "{COMPOSE}: service mysql uses image `{image}`; tidemark needs MariaDB 10.5+ \
         (binlog_row_metadata=FULL)"
    );
}

#[test]
fn mysql_runs_with_a_full_row_binlog() {
    let c = compose();
    let cmd = mysql_command(&c);
    assert!(
        server_option(&cmd, "log-bin").is_some(),
        "{COMPOSE}: service mysql runs with command {cmd:?}, which does not turn the binary log on \
         (add `--log-bin=mysql-bin`)"
    );
    let server_id = server_option(&cmd, "server-id").unwrap_or_default();
    assert!(
        server_id.parse::<u32>().is_ok_and(|id| id > 0),
        "{COMPOSE}: service mysql runs with command {cmd:?}, which sets no `--server-id=<n>` (n > 0); \
         a server with binary logging needs one"
    );
    for (option, want) in [
        ("binlog-format", "ROW"),
        ("binlog-row-image", "FULL"),
        ("binlog-row-metadata", "FULL"),
    ] {
        let have = server_option(&cmd, option);
        assert!(
            have.as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case(want)),
            "{COMPOSE}: service mysql runs with command {cmd:?}, where {option} is {}; tidemark \
             needs `--{option}={want}`",
            have.as_deref().unwrap_or("not set")
        );
    }
    if let Some(v) = server_option(&cmd, "log-bin-compress") {
        assert!(
            !(v.is_empty() || v.eq_ignore_ascii_case("ON") || v == "1"),
            "{COMPOSE}: service mysql runs with --log-bin-compress, which tidemark does not decode yet"
        );
    }
}

#[test]
fn mysql_healthcheck_waits_for_the_real_server() {
    let c = compose();
    let hc = service(&c, "mysql").get("healthcheck").unwrap_or_else(|| {
        panic!("{COMPOSE}: service mysql has no healthcheck, so tidemark cannot wait for it")
    });
    let test = words(hc.get("test").unwrap_or(&Value::Null));
    // ["CMD", "healthcheck.sh", ...] or ["CMD-SHELL", "healthcheck.sh ..."]: split every word.
    let test: Vec<String> = test
        .iter()
        .flat_map(|w| w.split_whitespace().map(str::to_string))
        .collect();
    assert!(
        test.iter().any(|w| w.ends_with("healthcheck.sh")),
        "{COMPOSE}: service mysql has healthcheck.test {test:?}; use the image's \
         `healthcheck.sh --connect --innodb_initialized`"
    );
    // --connect goes over TCP, which the entrypoint's temporary init server (--skip-networking)
    // does not offer: the service turns healthy only after docker/mysql-init/ has run.
    for flag in ["--connect", "--innodb_initialized"] {
        assert!(
            test.iter().any(|w| w == flag),
            "{COMPOSE}: service mysql has healthcheck.test {test:?}, without {flag}"
        );
    }
}

#[test]
fn mysql_init_scripts_are_mounted_and_create_the_demo() {
    let c = compose();
    let mounts = bind_mounts(&c, "mysql");
    let init_dir =
        host_path(&mounts, Path::new("/docker-entrypoint-initdb.d")).unwrap_or_else(|| {
            panic!(
            "{COMPOSE}: service mysql mounts nothing at /docker-entrypoint-initdb.d; mounts: {}",
            describe_mounts(&mounts)
        )
        });
    let demo = init_dir.join("01-demo.sql");
    assert!(
        demo.is_file(),
        "{COMPOSE}: service mysql's /docker-entrypoint-initdb.d is {}, which has no 01-demo.sql",
        init_dir.display()
    );
    let mut sql = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&init_dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", init_dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("sql"))
        .collect();
    files.sort();
    for f in &files {
        sql.push_str(
            &std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
        );
        sql.push('\n');
    }
    // Statements without comments, upper-case, whitespace collapsed.
    let statements: Vec<String> = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect();

    let env = environment(&c, "mysql");
    let database = env
        .get("MARIADB_DATABASE")
        .unwrap_or_else(|| panic!("{COMPOSE}: service mysql sets no MARIADB_DATABASE"))
        .to_uppercase();
    let user = env
        .get("MARIADB_USER")
        .unwrap_or_else(|| panic!("{COMPOSE}: service mysql sets no MARIADB_USER"))
        .to_uppercase();

    // Every table of connectors/demo_mysql.yaml is created in MARIADB_DATABASE.
    let connector = root().join("connectors/demo_mysql.yaml");
    let v: Value = serde_yaml::from_str(
        &std::fs::read_to_string(&connector)
            .unwrap_or_else(|e| panic!("{}: {e}", connector.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", connector.display()));
    let tables: Vec<String> = v
        .get("tables")
        .and_then(Value::as_sequence)
        .map(|t| t.iter().filter_map(scalar).collect())
        .unwrap_or_default();
    assert!(!tables.is_empty(), "{}: no tables", connector.display());
    for t in &tables {
        let (db, table) = t.split_once('.').unwrap_or_else(|| {
            panic!("{}: table `{t}` is not database.table", connector.display())
        });
        assert_eq!(
            db.to_uppercase(),
            database,
            "{}: table `{t}` is not in the database MARIADB_DATABASE of service mysql",
            connector.display()
        );
        let table = table.to_uppercase();
        let created = statements.iter().any(|s| {
            s.strip_prefix("CREATE TABLE ")
                .map(|rest| rest.trim_start_matches("IF NOT EXISTS "))
                .and_then(|rest| rest.split([' ', '(']).next())
                .map(|name| name.replace('`', ""))
                .is_some_and(|name| name == table || name == format!("{database}.{table}"))
        });
        assert!(
            created,
            "{}: no CREATE TABLE for `{t}` (a table of {}) in the .sql files",
            init_dir.display(),
            connector.display()
        );
    }

    // The binlog privileges for MARIADB_USER (the entrypoint grants it only its database).
    let grant = statements
        .iter()
        .find(|s| {
            s.starts_with("GRANT ")
                && s.contains(" ON *.* TO ")
                && s.replace(['\'', '`', '"'], "")
                    .contains(&format!(" TO {user}@"))
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: no `GRANT ... ON *.* TO '{}'@'%'` in the .sql files",
                init_dir.display(),
                user.to_lowercase()
            )
        });
    for privilege in ["REPLICATION SLAVE", "BINLOG MONITOR", "SELECT"] {
        assert!(
            grant.contains(privilege),
            "{}: `{grant}` lacks {privilege} (see README.md, MySQL / MariaDB prerequisites)",
            init_dir.display()
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
    for wanted in ["postgres", "mysql", "kafka"] {
        assert!(
            used.iter().any(|u| u == wanted),
            "{COMPOSE}: service tidemark is not pointed at service {wanted} (no \
             TIDEMARK__CONNECTORS__<NAME>__CONNECTION__HOST or TIDEMARK__KAFKA__BROKERS names it)"
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

/// The tidemark service's build context directory and Dockerfile.
fn build_context(c: &Value) -> (PathBuf, PathBuf) {
    let build = service(c, "tidemark").get("build").unwrap_or_else(|| {
        panic!("{COMPOSE}: service tidemark has no `build:`; the compose file builds it from the repository")
    });
    let (context, dockerfile) = match build {
        Value::Mapping(_) => (
            build.get("context").and_then(Value::as_str).unwrap_or("."),
            build
                .get("dockerfile")
                .and_then(Value::as_str)
                .unwrap_or("Dockerfile"),
        ),
        other => (other.as_str().unwrap_or("."), "Dockerfile"),
    };
    let context = normalize(&root().join(context));
    let dockerfile = context.join(dockerfile);
    (context, dockerfile)
}

#[test]
fn dockerfile_final_stage_runs_as_non_root() {
    let c = compose();
    let (_, dockerfile) = build_context(&c);
    let text = std::fs::read_to_string(&dockerfile).unwrap_or_else(|e| {
        panic!(
            "{COMPOSE}: service tidemark builds from {}, which cannot be read: {e}",
            dockerfile.display()
        )
    });
    let instructions: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let is = |l: &str, word: &str| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    let last_from = instructions
        .iter()
        .rposition(|(_, l)| is(l, "FROM"))
        .unwrap_or_else(|| panic!("{}: no FROM instruction", dockerfile.display()));
    let (from_line, _) = &instructions[last_from];
    let user = instructions[last_from..]
        .iter()
        .rfind(|(_, l)| is(l, "USER"))
        .unwrap_or_else(|| {
            panic!(
                "{}: the final stage (FROM at line {from_line}) has no USER instruction, so the \
                 daemon runs as root",
                dockerfile.display()
            )
        });
    let who = user
        .1
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default();
    assert!(
        !who.is_empty() && who != "root" && who != "0",
        "{}:{}: the final stage's USER is `{who}`; it must be a non-root user",
        dockerfile.display(),
        user.0
    );
}

#[test]
fn build_context_contains_cargo_lock() {
    let c = compose();
    let (context, dockerfile) = build_context(&c);
    let lock = context.join("Cargo.lock");
    assert!(
        lock.is_file(),
        "{COMPOSE}: service tidemark builds from {}, which has no Cargo.lock ({} builds with --locked)",
        context.display(),
        dockerfile.display()
    );
    let ignore = context.join(".dockerignore");
    if let Ok(text) = std::fs::read_to_string(&ignore) {
        for (i, line) in text.lines().enumerate() {
            let p = line.trim().trim_start_matches('/');
            assert!(
                !matches!(p, "Cargo.lock" | "*.lock" | "*" | "**" | "Cargo.*"),
                "{}:{}: `{}` keeps Cargo.lock out of the build context",
                ignore.display(),
                i + 1,
                line.trim()
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

    // Passwords named by `password_env` are read from the process environment: give them the
    // compose values (and insist that compose sets them).
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
            let value = env.get(var).unwrap_or_else(|| {
                panic!(
                    "{}: connection.password_env is {var}, but service tidemark in {COMPOSE} does not set {var}",
                    file.display()
                )
            });
            std::env::set_var(var, value);
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
fn check_demo_mysql(
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
        demo.kind,
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
    assert_ne!(
        demo.mysql.server_id, server_id,
        "connector demo_mysql: mysql.server_id {} is service mysql's own --server-id",
        demo.mysql.server_id
    );
    for t in &demo.tables {
        assert_eq!(
            t.id.schema, demo.connection.database,
            "connector demo_mysql captures {}.{}, outside its database {}",
            t.id.schema, t.id.table, demo.connection.database
        );
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
