//! docker-compose.yml, the Dockerfile and the configuration files must agree with each other.
//!
//! No server and no Docker is needed: the compose file is parsed as YAML and every reference in
//! it (mounted paths, the config file of the `tidemark` command, environment overrides, broker
//! address, health checks) is followed back to the repository. Last, the real configuration is
//! loaded through the library with the compose environment applied, as the container would.
//! Each failure message says which file and which entry disagree with what.

// Tests may unwrap and expect (clippy.toml allows it in #[test] functions; this covers their
// helpers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod configuration;
mod databases;
mod dockerfile;
mod model;
mod mounts;
mod services;
