#!/usr/bin/env bash
# The house rules, checked by CI on every run (scripts/test.sh calls this first):
#   1. cargo fmt --check                                  formatting
#   2. cargo clippy --workspace --all-targets -D warnings lints, with Cargo.toml's [lints]
#                                                         (unsafe_code forbidden, unwrap_used denied
#                                                         outside tests)
#   3. RUSTDOCFLAGS="-D warnings" cargo doc --no-deps     the module docs build without a warning
#   4. cargo check of fuzz/ (both fuzz targets)           the fuzz harnesses keep compiling
# Exits non-zero at the first rule broken, naming it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

step() {
    printf -- '--> %s\n' "$*"
}
fail() {
    echo "lint.sh: FAILED: $*" >&2
    exit 1
}

step "cargo fmt --check"
cargo fmt --all --check || fail "formatting (run \`cargo fmt\`)"

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings || fail "clippy"

step "cargo doc --no-deps (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --lib || fail "documentation warnings"

# The fuzz crate is its own workspace (libfuzzer-sys stays out of the main build); it shares the
# main target directory so the dependencies checked by clippy above are reused.
step "cargo check of fuzz/ (fuzz targets mysql_rows, pgoutput)"
CARGO_TARGET_DIR="$ROOT/target" cargo check --manifest-path fuzz/Cargo.toml --bins --locked ||
    fail "the fuzz targets do not compile"

echo "lint.sh: ok"
