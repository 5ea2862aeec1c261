#!/usr/bin/env bash
# Boots Debian 12's arm64 Linux under vpmu-hyp on QEMU and runs perf in the guest.
#
#   hyp/run-linux.sh [--direct] [--icount] [--smp N] [--timeout S] [-- extra QEMU args]
#
# --direct: the same kernel and initramfs without the hypervisor, on QEMU's own PMU (the
# reference for the differential check). --icount: -icount shift=0,sleep=off (exact
# instruction counts; sleep=off keeps host time out of the guest's idle periods, which made
# the end of perf record, and so its sample count, vary between runs). Needs (Debian 12): qemu-system-arm gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
# cpio, Rust with the aarch64-unknown-none-softfloat target; fetches the Debian packages on
# first use (hyp/.cache). IMAGE_ADDR (default 0x40400000) moves the kernel without a rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${HYP_CACHE:-$here/.cache}
direct=0 icount=() smp=1 tmo=${TIMEOUT:-300}
while [ $# -gt 0 ]; do
  case "$1" in
    --direct) direct=1 ;;
    --icount) icount=(-icount shift=0,sleep=off) ;;
    --smp) smp=$2; shift ;;
    --timeout) tmo=$2; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--direct] [--icount] [--smp N] [--timeout S] [-- QEMU args]" >&2; exit 2 ;;
  esac
  shift
done
image_addr=${IMAGE_ADDR:-0x40400000}
initrd_addr=0x48000000

kernel=$("$here/fetch-debian.sh" | tail -n1)
initrd=$cache/initramfs.cpio.gz
if [ ! -s "$initrd" ] || [ "$here/linux/init" -nt "$initrd" ] || [ "$here/linux/loop.S" -nt "$initrd" ]; then
  "$here/linux/mk-initramfs.sh" "$initrd"
fi
append="console=ttyAMA0 rdinit=/init panic=-1 ${APPEND:-}"
common=(-M virt,virtualization=on,gic-version=3 -cpu max -m 1G -smp "$smp" -nographic -no-reboot "${icount[@]}")
if [ "$direct" = 1 ]; then
  # QEMU's own Linux boot: the kernel at EL2, QEMU's PMU directly.
  exec timeout "$tmo" qemu-system-aarch64 "${common[@]}" -kernel "$kernel" -initrd "$initrd" -append "$append" "$@"
fi
(cd "$here" && cargo build --release -j2 -q)
hyp=$here/target/aarch64-unknown-none-softfloat/release/vpmu-hyp
end=$(printf '0x%x' $((initrd_addr + $(stat -c %s "$initrd"))))
exec timeout "$tmo" qemu-system-aarch64 "${common[@]}" -kernel "$hyp" -append "$append" \
  -device loader,file="$kernel",addr="$image_addr",force-raw=on \
  -device loader,file="$initrd",addr="$initrd_addr",force-raw=on \
  -device loader,addr=0x40100000,data="$image_addr",data-len=8 \
  -device loader,addr=0x40100008,data="$initrd_addr",data-len=8 \
  -device loader,addr=0x40100010,data="$end",data-len=8 "$@"
