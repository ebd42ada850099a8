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

/// The final stage's instructions of the Dockerfile compose builds: (line number, text), with
/// continuation lines joined.
fn final_stage() -> (PathBuf, Vec<(usize, String)>) {
    let (_, dockerfile) = build_context(&compose());
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let mut instructions: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('#') || (l.is_empty() && !open) {
            continue;
        }
        let body = l.trim_end_matches('\\').trim();
        match instructions.last_mut() {
            Some((_, last)) if open => {
                last.push(' ');
                last.push_str(body);
            }
            _ => instructions.push((i + 1, body.to_string())),
        }
        open = l.ends_with('\\');
    }
    let from = instructions
        .iter()
        .rposition(|(_, l)| l.starts_with("FROM "))
        .expect("a FROM");
    (dockerfile, instructions.split_off(from))
}

/// The file position store's default directory (`offsets.path: ../positions`, relative to the
/// daemon file the image's CMD names) is a declared volume that the image's user owns: a
/// container with `offsets.store: file` can write its positions, and they outlive it.
#[test]
fn the_default_positions_directory_is_a_volume_the_user_owns() {
    let (dockerfile, stage) = final_stage();
    let cmd = &stage
        .iter()
        .find(|(_, l)| l.starts_with("CMD "))
        .expect("a CMD")
        .1;
    let args: Vec<String> =
        serde_json::from_str(cmd.trim_start_matches("CMD ")).expect("CMD as a JSON array");
    let config = args
        .iter()
        .skip_while(|a| *a != "--config")
        .nth(1)
        .expect("CMD names --config");
    let config_dir = std::path::Path::new(config).parent().unwrap();
    let positions = normalize(&config_dir.join("../positions"));
    let positions = positions.to_str().unwrap();
    let user = stage
        .iter()
        .rfind(|(_, l)| l.starts_with("USER "))
        .map(|(_, l)| l[5..].trim().to_string())
        .expect("a USER");
    let volume = stage
        .iter()
        .find(|(_, l)| l.starts_with("VOLUME ") && l.contains(&format!("\"{positions}\"")));
    assert!(
        volume.is_some(),
        "{}: no VOLUME [\"{positions}\"] in the final stage (offsets.path's default for {config})",
        dockerfile.display()
    );
    let owned = stage.iter().any(|(_, l)| {
        l.starts_with("RUN ")
            && l.contains(&format!("chown {user}:{user} {positions}"))
            && l.contains("mkdir -p")
    });
    assert!(
        owned,
        "{}: the final stage does not create {positions} and chown it to {user}",
        dockerfile.display()
    );
}
