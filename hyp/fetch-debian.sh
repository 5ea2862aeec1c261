#!/usr/bin/env bash
# Fetches Debian 12's arm64 kernel, busybox-static, linux-perf and the shared libraries perf
# needs (resolved from the ELF NEEDED entries), and extracts them under hyp/.cache/.
# Needs: apt with the arm64 architecture (done here), dpkg-deb, aarch64-linux-gnu-readelf.
# Prints the kernel Image path on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${HYP_CACHE:-$here/.cache}
mkdir -p "$cache/debs" "$cache/root"
cd "$cache/debs"

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -q >&2
fi
if ! apt-cache show linux-image-arm64:arm64 >/dev/null 2>&1; then apt-get update -q >&2; fi

# The kernel ABI from the archive: linux-image-arm64 depends on linux-image-<abi>-arm64.
abi_pkg=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\)\(:arm64\)\?$/\1/p' | head -n1)
[ -n "$abi_pkg" ] || { echo "fetch-debian: cannot find the kernel ABI" >&2; exit 1; }
kpkg=${abi_pkg}-unsigned
abi=${abi_pkg#linux-image-}

get() { # download the packages (names without arch) not already here, in one apt-get call
  local p want=()
  for p in "$@"; do
    compgen -G "${p}_*.deb" >/dev/null || want+=("$p:arm64")
  done
  [ ${#want[@]} -eq 0 ] || apt-get download -q "${want[@]}" >&2
}
extract() {
  local d
  for d in *.deb; do
    [ -e "$cache/root/.done-$d" ] && continue
    dpkg-deb -x "$d" "$cache/root"
    touch "$cache/root/.done-$d"
  done
}
find_so() {
  find "$cache/root/lib/aarch64-linux-gnu" "$cache/root/usr/lib/aarch64-linux-gnu" -maxdepth 1 -name "$1" 2>/dev/null | head -n1
}
# The shared libraries perf needs: its NEEDED closure; an unresolved name is looked for in
# the library Depends of the packages we have, a level at a time.
missing_sonames() {
  local todo=("$cache/root/usr/bin/perf") f so src
  declare -A seen=()
  while [ ${#todo[@]} -gt 0 ]; do
    f=${todo[0]}
    todo=("${todo[@]:1}")
    for so in $(aarch64-linux-gnu-readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [ -n "${seen[$so]:-}" ] && continue
      seen[$so]=1
      src=$(find_so "$so")
      if [ -n "$src" ]; then todo+=("$src"); else echo "$so"; fi
    done
  done
}
get "$kpkg" linux-perf busybox-static
extract
for _round in 1 2 3 4 5 6; do
  missing=$(missing_sonames | grep -v '^ld-linux-aarch64.so.1$' || true)
  [ -z "$missing" ] && break
  deps=$(for d in *.deb; do dpkg-deb -f "$d" Depends 2>/dev/null; done | tr ',' '\n' |
    sed 's/([^)]*)//g; s/|.*//; s/:any//; s/ //g' | grep -E '^(lib|zlib)' | sort -u)
  before=$(ls *.deb | wc -l)
  # shellcheck disable=SC2086
  get $deps
  extract
  [ "$(ls *.deb | wc -l)" -gt "$before" ] || { echo "fetch-debian: unresolved: $missing" >&2; exit 1; }
done
[ -z "$(missing_sonames | grep -v '^ld-linux-aarch64.so.1$' || true)" ] || { echo "fetch-debian: unresolved libraries" >&2; exit 1; }
echo "$abi" > "$cache/abi"
echo "$cache/root/boot/vmlinuz-$abi"
