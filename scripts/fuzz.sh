#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (a workspace of its own), as scripts/test.sh runs them:
# each a fixed number of runs from a fixed seed over the corpus kept in the repo
# (fuzz/corpus/<target>, fuzz/regressions/<target>): the same mutations and run count every
# time (coverage can differ a little between runs: the decoders' HashMaps are randomly
# seeded, and coverage steers libFuzzer). New inputs go to a temporary directory, never
# into the repo.
#
# Stable Rust: `cargo fuzz --sanitizer none`. cargo-fuzz's default, AddressSanitizer,
# needs nightly's -Zsanitizer; without it libFuzzer's coverage instrumentation builds on
# stable (no RUSTC_BOOTSTRAP), and the decoders are safe Rust, so panics, failed
# assertions and overflow checks are what a target finds.
#
# A crash fails the run; its input is in fuzz/artifacts/<target>/. Fix the code, move the
# input to fuzz/regressions/<target>/ and add a #[test] beside the decoder that feeds it
# (crates/model/src/canonical.rs has one).
#
#   scripts/fuzz.sh                    every target, as CI runs them
#   scripts/fuzz.sh TARGET [SECONDS]   one target for longer, from a random seed
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs per target: 35-45 s each on the CI machine (measured; a busy machine takes longer,
# a deterministic run does not do less).
declare -A runs=(
    [dtma_stdio]=2000000
    [mcp_body]=3000000
    [catalog_spec]=2500000
    [canonical_json]=5000000
)
seed=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo fuzz has no --locked: refuse a fuzz/Cargo.lock that is out of date this way.
cargo fetch --locked --manifest-path fuzz/Cargo.toml --target x86_64-unknown-linux-gnu
fuzz=(cargo fuzz run --sanitizer none --target-dir target/fuzz)
cargo fuzz build --sanitizer none --target-dir target/fuzz

new=$(mktemp -d /tmp/toolbelt-fuzz.XXXXXX)
trap 'rm -rf "$new"' EXIT
run() { # target, libFuzzer options...
    local t=$1
    shift
    mkdir -p "$new/$t" "fuzz/regressions/$t"
    local start=$SECONDS
    "${fuzz[@]}" "$t" "$new/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
        -max_len=4096 -timeout=10 -print_final_stats=1 "$@" 2>"$new/$t.log" \
        || { tail -n 40 "$new/$t.log" >&2; echo "fuzz target $t failed" >&2; return 1; }
    printf '%-16s %5ss  %s\n' "$t" "$((SECONDS - start))" \
        "$(grep -m1 -o 'Done [0-9]* runs' "$new/$t.log")"
}

if [ $# -gt 0 ]; then
    run "$1" -max_total_time="${2:-600}"
    exit
fi
for t in dtma_stdio mcp_body catalog_spec canonical_json; do
    run "$t" -runs="${runs[$t]}" -seed=$seed
done
