#!/usr/bin/env bash
# CI for hyp/: builds the EL2 hypervisor and its EL1 test guest, boots the guest under it on
# 1 and 2 CPUs, then Debian's arm64 Linux with perf: under the hypervisor (perf stat, perf
# record) and, under -icount shift=0, directly on QEMU's PMU and under the hypervisor, whose
# user-space instruction counts of the known loop must be equal. One line per check; exits
# non-zero on any failed or missing check.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t0=$(date +%s)
fail=0
pass() { echo "hyp: ok   $*"; }
bad() { echo "hyp: FAIL $*"; fail=1; }

# --- tools ---------------------------------------------------------------------------------
need=()
for p in qemu-system-arm gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu cpio; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" || { echo "hyp: FAIL apt-get install ${need[*]}"; exit 1; }
fi
rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-none-softfloat || rustup target add aarch64-unknown-none-softfloat

# --- build ---------------------------------------------------------------------------------
target=aarch64-unknown-none-softfloat
hyp=$root/hyp/target/$target/release/vpmu-hyp
t=$root/hyp/target
g=$root/hyp/guests/target/$target/release/vpmu-hyp-guest
build() { # crate, features
  (cd "$1" && cargo build --release -j2 -q --features "$2")
}
# The pass-through baseline of the EL2 cost figure first (same output paths: copied away).
if build hyp passthrough && cp "$hyp" "$t/vpmu-hyp-passthrough" &&
  build hyp null-trap && cp "$hyp" "$t/vpmu-hyp-null-trap" &&
  build hyp/guests measure-only && aarch64-linux-gnu-objcopy -O binary "$g" "$t/guest-measure.bin"; then
  pass "build the pass-through baseline"
else
  bad "build the pass-through baseline"
fi
# baremetal/: the runtime both share with hw/qemu-test (its .cargo/config.toml builds for aarch64).
for crate in hyp hyp/guests baremetal; do
  if (cd "$crate" && cargo clippy --release -j2 -q --all-features -- -D warnings && cargo fmt --check); then
    pass "clippy -D warnings, fmt: $crate"
  else
    bad "clippy -D warnings, fmt: $crate"
  fi
done
if (cd hyp && cargo test -q -j2 --lib --target x86_64-unknown-linux-gnu) >"$t/fdt-test.log" 2>&1; then
  pass "host tests (DTB rewrite): $(grep -a 'test result' "$t/fdt-test.log" | head -n1)"
else
  bad "host tests (DTB rewrite): $(tail -n5 "$t/fdt-test.log")"
fi
guest=$t/guest.bin
if build hyp "" && build hyp/guests exact && aarch64-linux-gnu-objcopy -O binary "$g" "$guest"; then
  pass "build the hypervisor and the test guest"
else
  bad "build the hypervisor and the test guest"
fi
[ "$fail" = 0 ] || { echo "hyp: FAILED (build)"; exit 1; }

qargs=(-M virt,virtualization=on,gic-version=3 -m 1G -nographic -no-reboot -kernel "$hyp")

# --- the EL1 test guest --------------------------------------------------------------------
checks1=(pmcr-n undef-pmevcntr-n sw-incr pmselr-pmxevcntr chain
  el0-denied-pmccntr el0-denied-pmevcntr el0-denied-pmswinc el0-en-pmcr el0-en-pmevcntr-write
  el0-sw-pmswinc el0-sw-pmccntr el0-cr-pmccntr el0-cr-pmevcntr el0-er-pmevcntr el0-er-pmevcntr-write
  overflow-irq timer-irq lr-queue
  inst-retired-loop cycles-equal-instructions pmccntr-around-nop overflow-exact overflow-irq-physical chain-real-events)
checks2=("${checks1[@]}" cpu1-up cpu1-pmcr-reset cpu1-overflow-irq cpu1-timer-irq cpu1-sgi cpu1-pmu-private sgi-to-cpu1 cpu0-pmu-private)
for run in max:1 max:2 cortex-a57:2; do
  cpu=${run%:*} smp=${run#*:}
  log=$root/hyp/target/guest-$cpu-smp$smp.log
  timeout 60 qemu-system-aarch64 "${qargs[@]}" -cpu "$cpu" -smp "$smp" -icount shift=0 -device loader,file="$guest",addr=0x40400000,force-raw=on >"$log" 2>&1
  if [ "$smp" = 1 ]; then list=("${checks1[@]}"); else list=("${checks2[@]}"); fi
  for c in "${list[@]}"; do
    line=$(grep -a "check $c: " "$log" | head -n1 | tr -d '\r')
    case "$line" in
      *": ok "*) pass "guest $cpu smp=$smp $c" ;;
      "") bad "guest $cpu smp=$smp $c: missing" ;;
      *) bad "guest $cpu smp=$smp ${line#*check }" ;;
    esac
  done
  grep -aq "check .*: FAIL" "$log" && bad "guest $cpu smp=$smp: $(grep -a 'check .*: FAIL' "$log" | head -n3 | tr -d '\r')"
  grep -aq "summary: .* 0 failed" "$log" && pass "guest $cpu smp=$smp summary" || bad "guest $cpu smp=$smp summary"
  grep -aq "stats: trapped PMU accesses" "$log" && pass "guest $cpu smp=$smp hypervisor statistics" || bad "guest $cpu smp=$smp hypervisor statistics"
  grep -a "measure " "$log" | tr -d '\r' | sed "s/^\[guest\] /hyp: info guest $cpu smp=$smp /"
done

# The baselines: the same timing loops, the two registers forwarded to the physical PMU
# (pass-through), or the access skipped at once (the bare trap round trip).
for variant in passthrough null-trap; do
  base=$(timeout 60 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max -m 1G -nographic -no-reboot -icount shift=0 \
    -kernel "$t/vpmu-hyp-$variant" -device loader,file="$t/guest-measure.bin",addr=0x40400000,force-raw=on 2>&1 | grep -a "measure " | tr -d '\r')
  [ "$(echo "$base" | grep -c measure)" = 2 ] && echo "$base" | sed "s/^\[guest\] /hyp: info $variant baseline /" || bad "$variant baseline measurement"
done

# --- Linux ---------------------------------------------------------------------------------
loops=5000000
want_insns=$((2 * loops + 5))
if ! hyp/fetch-debian.sh >"$root/hyp/target/fetch.log" 2>&1; then
  bad "fetch Debian packages: $(tail -n3 "$root/hyp/target/fetch.log")"
  echo "hyp: FAILED"
  exit 1
fi
pass "fetch Debian arm64 packages (kernel $(cat hyp/.cache/abi))"
LOOPS=$loops hyp/linux/mk-initramfs.sh hyp/.cache/initramfs.cpio.gz 2>/dev/null && pass "initramfs" || bad "initramfs"

stat_of() { grep -a "vpmu-linux: stat $2 " "$1" | head -n1 | awk '{print $4}' | tr -d '\r'; }
linux() { # name, run-linux.sh args
  local name=$1
  shift
  local log=$root/hyp/target/linux-$name.log
  hyp/run-linux.sh --timeout 400 "$@" >"$log" 2>&1
  if grep -aq "vpmu-linux: done" "$log"; then pass "linux $name: booted, perf ran"; else bad "linux $name: did not finish ($(grep -a -m1 -E 'panic|FATAL' "$log" | tr -d '\r'))"; fi
}

# 1. Under the hypervisor, 2 CPUs, no icount: perf stat counts, perf record gets samples.
linux hyp-smp2 --smp 2
log=$root/hyp/target/linux-hyp-smp2.log
ins=$(stat_of "$log" instructions:u)
cyc=$(stat_of "$log" cycles:u)
[ "${cyc:-0}" -gt 0 ] 2>/dev/null && pass "linux hyp-smp2 perf stat cycles:u $cyc" || bad "linux hyp-smp2 perf stat cycles:u '${cyc}'"
n=$(grep -a "vpmu-linux: record samples" "$log" | awk '{print $4}' | tr -d '\r')
[ "${n:-0}" -gt 10 ] 2>/dev/null && pass "linux hyp-smp2 perf record samples $n" || bad "linux hyp-smp2 perf record samples '${n}'"
grep -a "stats: vPMU interrupts injected" "$log" | grep -aq "injected [1-9]" && pass "linux hyp-smp2 vPMU interrupts injected" || bad "linux hyp-smp2 vPMU interrupts injected"
grep -aq "stats:   PMCR_EL0" "$log" && pass "linux hyp-smp2 statistics at power-off" || bad "linux hyp-smp2 statistics at power-off"

# 2. The differential under -icount shift=0: the same kernel on QEMU's own PMU, then under vpmu.
linux direct-icount --direct --icount
linux hyp-icount --icount
d=$(stat_of "$root/hyp/target/linux-direct-icount.log" instructions:u)
h=$(stat_of "$root/hyp/target/linux-hyp-icount.log" instructions:u)
[ "$d" = "$want_insns" ] && pass "linux direct-icount instructions:u $d (2 * $loops + 5)" || bad "linux direct-icount instructions:u '$d', want $want_insns"
[ -n "$h" ] && [ "$h" = "$d" ] && pass "linux hyp-icount instructions:u $h == direct $d" || bad "linux hyp-icount instructions:u '$h' != direct '$d'"
hc=$(stat_of "$root/hyp/target/linux-hyp-icount.log" cycles:u)
dc=$(stat_of "$root/hyp/target/linux-direct-icount.log" cycles:u)
[ -n "$hc" ] && [ "$hc" = "$dc" ] && pass "linux hyp-icount cycles:u $hc == direct $dc" || bad "linux hyp-icount cycles:u '$hc' != direct '$dc'"
for name in direct-icount hyp-icount; do
  n=$(grep -a "vpmu-linux: record samples" "$root/hyp/target/linux-$name.log" | awk '{print $4}' | tr -d '\r')
  [ "${n:-0}" -gt 10 ] 2>/dev/null && pass "linux $name perf record samples $n" || bad "linux $name perf record samples '${n}'"
done
# With sleep=off the run is deterministic: vpmu must deliver every overflow as QEMU's PMU does.
hs=$(grep -a "vpmu-linux: record samples" "$root/hyp/target/linux-hyp-icount.log" | awk '{print $4}' | tr -d '\r')
ds=$(grep -a "vpmu-linux: record samples" "$root/hyp/target/linux-direct-icount.log" | awk '{print $4}' | tr -d '\r')
[ -n "$hs" ] && [ "$hs" = "$ds" ] && pass "linux hyp-icount perf record samples $hs == direct $ds" || bad "linux hyp-icount perf record samples '$hs' != direct '$ds'"

echo "hyp: $(( $(date +%s) - t0 )) s"
if [ "$fail" = 0 ]; then echo "hyp: PASSED"; else echo "hyp: FAILED"; exit 1; fi
