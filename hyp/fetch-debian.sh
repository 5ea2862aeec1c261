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

get() { # download packages (name without arch) not already here
  local p
  for p in "$@"; do
    ls "${p}"_*_arm64.deb "${p}"_*_all.deb >/dev/null 2>&1 && continue
    apt-get download -q "$p:arm64" >&2 || apt-get download -q "$p" >&2
  done
}
extract() {
  local d
  for d in *.deb; do
    [ -e "$cache/root/.done-$d" ] && continue
    dpkg-deb -x "$d" "$cache/root"
    touch "$cache/root/.done-$d"
  done
}
get "$kpkg" linux-perf busybox-static
extract

# perf's shared libraries: resolve NEEDED through the packages' Depends, a few levels deep.
perf_bin=$cache/root/usr/bin/perf
for _round in 1 2 3 4 5 6; do
  missing=()
  mapfile -t needed < <(
    { echo "$perf_bin"; find "$cache/root/lib" "$cache/root/usr/lib" -name '*.so*' -type f 2>/dev/null; } |
      xargs aarch64-linux-gnu-readelf -d 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
  for so in "${needed[@]}"; do
    if ! find "$cache/root/lib" "$cache/root/usr/lib" -name "$so" 2>/dev/null | grep -q .; then missing+=("$so"); fi
  done
  [ ${#missing[@]} -eq 0 ] && break
  # Next level: the library Depends of every package we have.
  deps=$(for d in ./*.deb; do dpkg-deb -f "$d" Depends 2>/dev/null; done | tr ',' '\n' |
    sed 's/([^)]*)//g; s/|.*//; s/:any//; s/ //g' | grep -E '^(lib|zlib)' | sort -u)
  before=$(ls ./*.deb | wc -l)
  # shellcheck disable=SC2086
  get $deps
  extract
  [ "$(ls ./*.deb | wc -l)" -gt "$before" ] || { echo "fetch-debian: unresolved: ${missing[*]}" >&2; exit 1; }
done
echo "$abi" > "$cache/abi"
echo "$cache/root/boot/vmlinuz-$abi"
