#!/usr/bin/env bash
# The Linux perf backend (`--features perf`): lints, its tests against the running kernel
# (a real SIGTRAP among them), its doctests, the docs, and one run of the perf_irq bench.
#
# Needs Linux with perf events open to this process (root, or kernel.perf_event_paranoid
# <= 2 for the user-time events the tests use). No hardware PMU is needed: the tests count
# software events (task-clock, page-faults...) and check hardware events against what the
# kernel says. Runs from the repository root; installs only rustup components it lacks.
#
# Environment:
#   PERF_BENCH_MEASURE=1   also measure the bench (release build, ~10 s of measurement)
# .ci/run has already run fmt, clippy and every test with all features, and the docs: this
# script adds what only the perf feature alone shows (its clippy, that no perf test was
# skipped, the bench in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
check() {
    local name=$1
    shift
    local log
    log=$(mktemp)
    local start=$SECONDS
    if "$@" >"$log" 2>&1; then
        echo "ok   $name ($((SECONDS - start)) s)"
    else
        echo "FAIL $name ($((SECONDS - start)) s)"
        tail -n 60 "$log"
        fail=1
    fi
    rm -f "$log"
}

command -v cargo >/dev/null || { echo "FAIL cargo is not installed"; exit 1; }
if command -v rustup >/dev/null; then
    installed=$(rustup component list --installed)
    for c in clippy rustfmt; do
        grep -q "^$c-" <<<"$installed" || rustup component add "$c" >/dev/null
    done
fi

echo "host: $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), perf_event_paranoid = $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?'), uid $(id -u)"

check "clippy --features perf (no other feature)" cargo clippy -j2 --all-targets --features perf -- -D warnings
# A test that skips (perf closed here) says SKIPPED: that is a failure for this script, whose
# point is to run them.
check "perf_backend ran every test (none skipped)" bash -c '! cargo test -j2 --features perf --test perf_backend -- --nocapture 2>&1 | grep -q SKIPPED'
check "bench perf_irq runs once (test mode)" cargo test -j2 --features perf --bench perf_irq
if [[ ${PERF_BENCH_MEASURE:-0} == 1 ]]; then
    check "bench perf_irq (measured)" cargo bench -j2 --features perf --bench perf_irq -- --measurement-time 10
    grep -h '"estimate"' -A0 target/criterion/perf_irq/*/new/estimates.json 2>/dev/null | head -1 || true
fi

if ((fail)); then
    echo "perf: FAILED"
    exit 1
fi
echo "perf: all checks passed"
