#!/usr/bin/env bash
# vpmu-emu CI: vpmu inside unicorn-engine, real A64 guest programs, exact counts.
#
# Runs from the repository root on a fresh Debian machine as root. Installs what it needs
# (skipping what is present): cmake and libclang-dev (unicorn-engine-sys builds unicorn's C
# library, ~90 s on 2 cores), binutils-aarch64-linux-gnu (the guests' assembler, used by
# emu/build.rs). NEVER libunicorn-dev: its pkg-config file would make the build link Debian's
# older C library behind the 2.1.5 bindings. qemu-system-arm is optional: when present, the
# speed smoke run also measures QEMU.
#
# Environment: SPEED_SCALE for the speed smoke run (default 0.05; 1 for the README's table).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
start=$SECONDS

check() { printf 'emu: %-60s %s\n' "$1" "$2"; }

# ------------------------------------------------------------------------------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v aarch64-linux-gnu-as >/dev/null || missing+=(binutils-aarch64-linux-gnu)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
check "tools: cmake, libclang-dev, aarch64-linux-gnu-as" "ok (installed: ${missing[*]:-none})"
if dpkg -s libunicorn-dev >/dev/null 2>&1; then
    check "libunicorn-dev must not be installed" "FAIL (apt-get remove libunicorn-dev)"
    exit 1
fi
check "libunicorn-dev absent" "ok"

# ------------------------------------------------------------------------------------------
# The published crate must not depend on GPL code: no unicorn anywhere in its tree.
if cargo tree -p vpmu --all-features -e normal,build,dev --prefix none | grep -qi unicorn; then
    check "cargo tree -p vpmu: no unicorn" "FAIL"
    exit 1
fi
check "cargo tree -p vpmu: no unicorn" "ok"

# ------------------------------------------------------------------------------------------
# Release profile throughout: one build of unicorn's C library serves tests, lints and
# examples.
cargo build -p vpmu-emu --release --all-targets
check "build (release, unicorn C library included)" "ok ($((SECONDS - start)) s so far)"

cargo clippy -p vpmu-emu --release --all-targets -- -D warnings
check "clippy -D warnings" "ok"
cargo fmt -p vpmu-emu -- --check
check "rustfmt" "ok"

cargo test -p vpmu-emu --release 2>&1 | tee /tmp/vpmu-emu-test.log | grep -E '^test |test result' || true
if ! grep -q 'test result: ok. [1-9]' /tmp/vpmu-emu-test.log || grep -q 'FAILED\|panicked' /tmp/vpmu-emu-test.log; then
    tail -n 60 /tmp/vpmu-emu-test.log
    check "guest programs (cargo test -p vpmu-emu)" "FAIL"
    exit 1
fi
check "guest programs (cargo test -p vpmu-emu)" "ok"

timeout 120 cargo run -q -p vpmu-emu --release --example perf_stat
check "demo: perf stat of a guest, exact" "ok"

SPEED_SCALE=${SPEED_SCALE:-0.05} timeout 600 cargo run -q -p vpmu-emu --release --example speed
check "speed table (smoke, SPEED_SCALE=${SPEED_SCALE:-0.05})" "ok"

check "all passed" "$((SECONDS - start)) s"
