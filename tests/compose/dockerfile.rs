//! The image: the Dockerfile the compose file builds runs as a non-root user, from a context
//! that holds Cargo.lock.

use std::path::PathBuf;

use serde_yaml::Value;

use crate::model::*;

/// The tidemark service's build context directory and Dockerfile.
pub fn build_context(c: &Value) -> (PathBuf, PathBuf) {
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
