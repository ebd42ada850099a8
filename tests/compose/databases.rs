//! The source databases: PostgreSQL with logical WAL, MariaDB 10.5+ with a full row binlog,
//! a health check that waits for the real server, and the demo schema.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::model::*;

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
pub fn server_option(cmd: &[String], name: &str) -> Option<String> {
    let norm = |s: &str| s.replace('_', "-").to_ascii_lowercase();
    let want = norm(name);
    cmd.iter().rev().find_map(|w| {
        let w = w.strip_prefix("--")?;
        let (k, v) = w.split_once('=').unwrap_or((w, ""));
        (norm(k) == want).then(|| v.to_string())
    })
}

pub fn mysql_command(c: &Value) -> Vec<String> {
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
