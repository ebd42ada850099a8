#!/usr/bin/env bash
# The one test command of tidemark: local servers, build, every test.
#
#   scripts/test.sh [ARGS...]     ARGS go to the test runner (a filter, --release, -- --nocapture, ...)
#
# 1. scripts/dev-env.sh up: installs what is missing (PostgreSQL and MariaDB from apt, the tansu
#    broker with cargo install, about 13 min once, cached in ~/.cache/tidemark/tools) and starts
#    them on loopback (55432, 53306, 59092), data under target/dev-env/
# 2. scripts/lint.sh: the house rules (cargo fmt --check, clippy -D warnings, rustdoc -D warnings,
#    the fuzz targets compile); skip with TIDEMARK_TEST_LINT=0 while iterating (CI never does)
# 3. sources target/dev-env/env (TIDEMARK_TEST_PG_URL, TIDEMARK_TEST_MYSQL_URL, TIDEMARK_TEST_KAFKA_BROKERS, ...)
# 4. builds and runs every test target: `cargo nextest run --workspace --lib --bins --tests --no-fail-fast`
#    when cargo-nextest is installed, else `cargo test` with the same arguments
#    (neither runs doctests; tidemark has none)
#
# The exit status is the test runner's. The servers keep running afterwards, so the next run
# starts in seconds; stop them with `scripts/dev-env.sh down`, or set TIDEMARK_TEST_DOWN=1 to
# have this script stop them when the tests are done.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

START=$SECONDS
PHASE_START=$SECONDS
PHASES=()

header() {
    PHASE_START=$SECONDS
    printf '\n==> %s\n' "$*"
}
# done_phase NAME: record how long the current phase took.
done_phase() {
    local took=$((SECONDS - PHASE_START))
    PHASES+=("$(printf '%-10s %5ss' "$1" "$took")")
    printf '==> %s: %ss\n' "$1" "$took"
}
summary() {
    printf '\n==> summary\n'
    local p
    for p in "${PHASES[@]}"; do
        printf '    %s\n' "$p"
    done
    printf '    %-10s %5ss\n' total "$((SECONDS - START))"
}

command -v cargo >/dev/null || {
    echo "test.sh: cargo not found; install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
}

header "local servers (scripts/dev-env.sh up)"
scripts/dev-env.sh up
# shellcheck source=/dev/null
. target/dev-env/env
done_phase dev-env

if [[ ${TIDEMARK_TEST_LINT:-1} != 0 ]]; then
    header "house rules (scripts/lint.sh)"
    scripts/lint.sh
    done_phase lint
fi

# Library, binary and integration tests (benches/ are driven by scripts/bench.sh instead).
TARGETS=(--workspace --lib --bins --tests)
if cargo nextest --version >/dev/null 2>&1; then
    BUILD=(cargo nextest run "${TARGETS[@]}")
    RUNNER=(cargo nextest run "${TARGETS[@]}" --no-fail-fast)
else
    BUILD=(cargo test "${TARGETS[@]}")
    RUNNER=(cargo test "${TARGETS[@]}" --no-fail-fast)
fi

rc=0
header "build (${BUILD[*]} --no-run${*:+ $*})"
"${BUILD[@]}" --no-run "$@" || rc=$?
done_phase build

if ((rc == 0)); then
    header "tests (${RUNNER[*]}${*:+ $*})"
    "${RUNNER[@]}" "$@" || rc=$?
    done_phase tests
fi

if [[ ${TIDEMARK_TEST_DOWN:-0} == 1 ]]; then
    header "stopping the local servers (TIDEMARK_TEST_DOWN=1)"
    scripts/dev-env.sh down || echo "test.sh: warning: scripts/dev-env.sh down failed" >&2
    done_phase dev-down
else
    printf '\n(the local servers keep running: scripts/dev-env.sh status | down)\n'
fi

summary
if ((rc == 0)); then
    echo "==> PASS"
else
    echo "==> FAIL (exit $rc)"
fi
exit "$rc"
