#!/usr/bin/env bash
# vpmu-hw CI: fmt, clippy (host and aarch64; also baremetal/, the runtime the EL2 test binary
# shares with hyp/), host tests on the simulated PMU, the bare-metal build, docs, the no-panic
# link check, and the EL2 test binary on QEMU's physical PMU under -cpu max and -cpu cortex-a57
# (both with -icount shift=0).
#
# Runs from the repo root on a fresh Debian machine as root: installs what is missing itself
# (apt: qemu-system-arm; rustup: the aarch64-unknown-none-softfloat target, rustfmt, clippy).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-none-softfloat
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
# Every check the QEMU binary must print as "ok <name>: ...".
QEMU_CHECKS=(
    inst_retired_exact el2_not_counted cycles_equal_instructions inst_retired_accumulates
    el_filter overflow_exact overflow_not_early chain_across_wrap read_while_put
    two_vcpus_no_leak release_stops pmceid_from_physical vcpu_migrates_between_cpus hpmn_partition pmu_irq_at_el2
)

step() { printf '\n==== hw: %s ====\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------------------------
step "tools"
if ! command -v qemu-system-aarch64 >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends qemu-system-arm
fi
installed=$(rustup component list --installed)
for c in rustfmt clippy; do
    grep -q "^$c-" <<<"$installed" || rustup component add "$c"
done
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
qemu-system-aarch64 --version | head -n1
rustc --version

# --------------------------------------------------------------------------------------------
step "fmt"
cargo fmt -p vpmu-hw -- --check
cargo fmt --manifest-path hw/qemu-test/Cargo.toml -- --check
cargo fmt --manifest-path hw/no-panic/Cargo.toml -- --check
cargo fmt --manifest-path baremetal/Cargo.toml -- --check
ok "fmt"

step "clippy (host, and $TARGET where the MRS/MSR module is compiled)"
cargo clippy -j2 -p vpmu-hw --all-targets -- -D warnings
cargo clippy -j2 -p vpmu-hw --target "$TARGET" -- -D warnings
cargo clippy -j2 --manifest-path hw/qemu-test/Cargo.toml --target "$TARGET" -- -D warnings
cargo clippy -j2 --manifest-path hw/no-panic/Cargo.toml --target "$TARGET" --release -- -D warnings
cargo clippy -j2 --manifest-path baremetal/Cargo.toml --target "$TARGET" -- -D warnings
ok "clippy"

step "host tests: the backend on the simulated PMU, against SoftBackend"
cargo test -j2 -p vpmu-hw
ok "cargo test -p vpmu-hw"

step "no_std build for $TARGET"
cargo build -j2 -p vpmu-hw --target "$TARGET"
ok "build $TARGET"

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc -j2 -p vpmu-hw --no-deps
ok "doc"

step "no-panic: link-time proof for the backend's entry points (release, overflow checks on)"
cargo build -j2 --release --manifest-path hw/no-panic/Cargo.toml --target "$TARGET"
ok "no-panic"

# --------------------------------------------------------------------------------------------
step "QEMU: the EL2 test binary on the physical PMU"
cargo build -j2 --release --manifest-path hw/qemu-test/Cargo.toml --target "$TARGET"
elf=hw/qemu-test/target/$TARGET/release/vpmu-hw-qemu-test
for cpu in max cortex-a57; do
    log=$(mktemp)
    rc=0
    timeout "$QEMU_TIMEOUT" qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -smp 2 -cpu "$cpu" -icount shift=0 \
        -m 128M -nographic -no-reboot -kernel "$elf" >"$log" 2>&1 || rc=$?
    sed "s/^/  [$cpu] /" "$log"
    ((rc == 0)) || fail "qemu -cpu $cpu exited with $rc (124: timeout)"
    if grep -q '^FAIL' "$log"; then
        fail "qemu -cpu $cpu: a check failed (see above)"
    fi
    for c in "${QEMU_CHECKS[@]}"; do
        grep -q "^ok $c:" "$log" || fail "qemu -cpu $cpu: check $c missing"
    done
    grep -q '^done: all checks passed' "$log" || fail "qemu -cpu $cpu: no final 'done' line"
    ok "qemu -cpu $cpu: ${#QEMU_CHECKS[@]} checks"
    rm -f "$log"
done

step "vpmu-hw CI passed"
