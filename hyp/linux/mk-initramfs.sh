#!/usr/bin/env bash
# Builds the test initramfs (cpio.gz) from the packages fetch-debian.sh extracted: busybox,
# perf and exactly the shared libraries perf needs (its NEEDED closure), the known loop and
# /init. Usage: mk-initramfs.sh OUT.cpio.gz
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${HYP_CACHE:-$here/../.cache}
root=$cache/root
out=$(realpath -m "$1")
loops=${LOOPS:-5000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,lib/aarch64-linux-gnu,usr/bin,proc,sys,dev,tmp}
cp "$root/bin/busybox" "$work/bin/busybox"
cp "$root/usr/bin/perf" "$work/usr/bin/perf"
install -m 755 "$here/init" "$work/init"
aarch64-linux-gnu-gcc -nostdlib -static -DLOOPS="$loops" -o "$work/loop" "$here/loop.S"
cp -L "$root/lib/ld-linux-aarch64.so.1" "$work/lib/" 2>/dev/null ||
  cp -L "$root/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" "$work/lib/"
# The NEEDED closure of perf.
todo=("$work/usr/bin/perf")
declare -A seen=()
while [ ${#todo[@]} -gt 0 ]; do
  f=${todo[0]}
  todo=("${todo[@]:1}")
  for so in $(aarch64-linux-gnu-readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -n "${seen[$so]:-}" ] && continue
    seen[$so]=1
    [ "$so" = ld-linux-aarch64.so.1 ] && continue
    src=$(find "$root/lib/aarch64-linux-gnu" "$root/usr/lib/aarch64-linux-gnu" -maxdepth 1 -name "$so" 2>/dev/null | head -n1)
    [ -n "$src" ] || { echo "mk-initramfs: $so not found" >&2; exit 1; }
    cp -L "$src" "$work/lib/aarch64-linux-gnu/$so"
    todo+=("$work/lib/aarch64-linux-gnu/$so")
  done
done
echo "mk-initramfs: ${#seen[@]} shared libraries" >&2
(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$out"
ls -la "$out" >&2
