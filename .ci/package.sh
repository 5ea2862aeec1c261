#!/usr/bin/env bash
# vpmu as it is published, on the oldest Rust it claims, with every feature combination:
#
# - package: `cargo package -p vpmu`, the .crate unpacked into a directory outside the
#   repository (so no workspace, no fuzz/, nothing uncommitted), and its tests run there, as a
#   distribution runs them;
# - MSRV: the library builds with Rust 1.81 (Cargo.toml's rust-version), with every feature on
#   the host and no_std on thumbv7em-none-eabi. Tests, examples and benches need 1.88 (their
#   dev-dependencies do: see the README), which this script does not install;
# - features: every combination of the optional features of Cargo.toml's [features] builds
#   (`cargo check` of the library), and the no_std-capable ones on thumbv7em-none-eabi too.
#
# Runs from the repository root on a fresh machine; installs what is missing itself (the 1.81
# toolchain with rustup's minimal profile, the thumbv7em-none-eabi target for it and for the
# default toolchain). Prints one line per check; a failed check prints the end of its log and
# stops the script with a non-zero status.
#
# Environment:
#   PACKAGE_ALLOW_DIRTY=1   package uncommitted changes too (a work tree; CI's clone is clean)
set -euo pipefail
cd "$(dirname "$0")/.."

CRATE=vpmu
MSRV=1.81
NO_STD_TARGET=thumbv7em-none-eabi
# At most two jobs: the CI machine has two cores (and the development machine is shared).
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export CARGO_TERM_COLOR=never

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
log="$scratch/log"
script_start=$SECONDS

# check NAME COMMAND...: runs one command (not a shell function: `set -e` does not reach into
# one called as a condition) and prints one line for it.
check() {
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$log" 2>&1; then
        printf 'ok    %-78s %4ds\n' "$name" $((SECONDS - start))
    else
        printf 'FAIL  %s\n      command: %s\n' "$name" "$*"
        tail -n 60 "$log" | sed 's/^/      | /'
        exit 1
    fi
}

fail() {
    printf 'FAIL  %s\n' "$*"
    exit 1
}

metadata=$(cargo metadata --no-deps --format-version 1)
target_dir=$(sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' <<<"$metadata")
[[ -n $target_dir ]] || fail "cargo metadata names no target directory"
pkgid=$(cargo pkgid -p "$CRATE")
version=${pkgid##*[@#]}

# ---- MSRV claim: Cargo.toml says what this script checks ------------------------------------
# (the [package] table is the first one in the root Cargo.toml)
grep -qx "rust-version = \"$MSRV\"" Cargo.toml || fail "Cargo.toml's rust-version is not $MSRV: update MSRV here and the README"
printf 'ok    %-78s %4ds\n' "Cargo.toml: rust-version = \"$MSRV\"" 0

# ---- toolchains ----------------------------------------------------------------------------
# Only what is missing: a machine that has it all needs no network here.
if ! rustup run "$MSRV" rustc --version >/dev/null 2>&1; then
    check "install toolchain $MSRV (minimal profile)" rustup toolchain install "$MSRV" --profile minimal
fi
if ! rustup target list --toolchain "$MSRV" --installed | grep -qx "$NO_STD_TARGET"; then
    check "install target $NO_STD_TARGET for $MSRV" rustup target add --toolchain "$MSRV" "$NO_STD_TARGET"
fi
if ! rustup target list --installed | grep -qx "$NO_STD_TARGET"; then
    check "install target $NO_STD_TARGET" rustup target add "$NO_STD_TARGET"
fi

# ---- the package ---------------------------------------------------------------------------
package_args=(-p "$CRATE" --no-verify)
# --no-verify: cargo's own verification builds the unpacked library with default features;
# the test run below builds and tests it with all of them.
[[ ${PACKAGE_ALLOW_DIRTY:-0} == 1 ]] && package_args+=(--allow-dirty)
check "cargo package ${package_args[*]}" cargo package "${package_args[@]}"
crate_file="$target_dir/package/$CRATE-$version.crate"
[[ -f $crate_file ]] || fail "cargo package left no $crate_file"

# What `include` must bring, the fuzz corpus through the tests/corpus link among it; and what it
# must leave out: the fuzz crate (cargo never packs a package of its own), the test that checks
# it, the CI scripts.
listing=$(tar tzf "$crate_file")
for f in Cargo.toml Cargo.lock README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE src/lib.rs \
    tests/common/fuzz_check/mod.rs tests/fuzz_corpus.rs; do
    grep -qx "$CRATE-$version/$f" <<<"$listing" || fail "the .crate has no $f"
done
for d in fuzz/corpus/*/; do
    t=$(basename "$d")
    grep -q "^$CRATE-$version/tests/corpus/$t/." <<<"$listing" || fail "the .crate has no corpus for the fuzz target $t (tests/corpus/$t/)"
done
if grep -E "^$CRATE-$version/((fuzz|\.ci|no-panic)/|tests/fuzz_targets\.rs$)" <<<"$listing"; then
    fail "the .crate holds files it should not (above)"
fi
printf 'ok    %-78s %4ds\n' "the .crate holds what it must ($(wc -l <<<"$listing") files, $(du -k "$crate_file" | cut -f1) KiB)" 0

unpacked="$scratch/$CRATE-$version"
# --touch: the .crate's files all carry one fixed old date, and cargo judges a local crate's
# freshness by date, so without it a second run would reuse the first one's test binaries
# (which would even look for their files in the first run's directory: CARGO_MANIFEST_DIR).
tar -xzf "$crate_file" -C "$scratch" --touch
# Cargo must see the unpacked crate as a workspace of its own, not a member of one above it.
root=$(cd "$unpacked" && cargo locate-project --workspace --message-format plain)
[[ $root == "$unpacked/Cargo.toml" ]] || fail "the unpacked crate belongs to the workspace $root"
# A target directory of its own, kept between runs for the dependencies. Not the repository's:
# cargo names a workspace root's outputs by its path relative to the workspace, the same for
# the unpacked crate and the repository's, so the two would overwrite each other's outputs and
# each reuse the other's.
check "unpacked .crate: cargo test --all-features (outside the repository)" \
    env -C "$unpacked" CARGO_TARGET_DIR="$target_dir/package-test" cargo test --all-features

# ---- MSRV ----------------------------------------------------------------------------------
# -p: the workspace's other members need not build with the MSRV; --lib: the dev-dependencies do
# not (see the README). A target directory of its own, so that the toolchains do not take turns
# overwriting the same outputs.
msrv_target="$target_dir/msrv-$MSRV"
check "MSRV: cargo +$MSRV build -p $CRATE --lib --all-features" \
    cargo "+$MSRV" build -p "$CRATE" --lib --all-features --target-dir "$msrv_target"
check "MSRV: cargo +$MSRV build -p $CRATE --lib --no-default-features --target $NO_STD_TARGET" \
    cargo "+$MSRV" build -p "$CRATE" --lib --no-default-features --target "$NO_STD_TARGET" --target-dir "$msrv_target"

# ---- every feature combination -------------------------------------------------------------
# The features, from Cargo.toml's [features] table (so a new one joins the loop by itself).
mapfile -t features < <(sed -n '/^\[features\]/,/^\[/{/^\([a-z0-9_-]*\) = \[.*/s//\1/p}' Cargo.toml | grep -vx default)
((${#features[@]} > 0)) || fail "no features found in Cargo.toml"
# Features that turn std on (`perf = ["std", ...]`): with one of them, a combination with std and
# the same one without it are one build, checked once.
implies_std=()
for f in "${features[@]}"; do
    grep -qE "^$f = \[.*\"std\"" Cargo.toml && implies_std+=("$f")
done
# The features a no_std target can have: those that neither are std nor turn it on.
# The repository's own target directory: what the other CI steps built serves here.
powerset_target="$target_dir"
has() { [[ ",$list," == *",$1,"* ]]; } # is feature $1 in the combination $list?
n=${#features[@]}
checked=0
no_std_checked=0
for ((mask = 0; mask < 1 << n; mask++)); do
    set=()
    for ((i = 0; i < n; i++)); do
        ((mask >> i & 1)) && set+=("${features[i]}")
    done
    list=$(IFS=,; echo "${set[*]}")
    needs_std=0
    for f in "${implies_std[@]}"; do has "$f" && needs_std=1; done
    if ((needs_std)) && ! has std; then
        continue # the same build as this set plus std
    fi
    check "features: cargo check -p $CRATE --lib --no-default-features --features '$list'" \
        cargo check -p "$CRATE" --lib --no-default-features --features "$list" --target-dir "$powerset_target"
    checked=$((checked + 1))
    if ((!needs_std)) && ! has std && [[ -n $list ]]; then
        check "features: the same, no_std, --target $NO_STD_TARGET" \
            cargo check -p "$CRATE" --lib --no-default-features --features "$list" --target "$NO_STD_TARGET" --target-dir "$powerset_target"
        no_std_checked=$((no_std_checked + 1))
    fi
done

printf '\npackage.sh passed in %ds: the .crate'"'"'s tests, MSRV %s (host, all features; %s, no_std), %d feature combinations (%d of them on %s too)\n' \
    $((SECONDS - script_start)) "$MSRV" "$NO_STD_TARGET" "$checked" "$no_std_checked" "$NO_STD_TARGET"
