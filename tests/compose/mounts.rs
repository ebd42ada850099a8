//! Bind mounts: every host path exists, and the container sees the configuration where
//! tidemark's command and its config file look for it.

use std::path::{Path, PathBuf};

use crate::model::*;

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
