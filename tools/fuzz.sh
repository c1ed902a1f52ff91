#!/usr/bin/env bash
# Runs one libFuzzer target for a while: tools/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#        tools/fuzz.sh all SECONDS     (every target in turn, SECONDS each)
#        tools/fuzz.sh list
#
# Targets: fuzz_pth fuzz_pickle fuzz_safetensors fuzz_vocab fuzz_tokenizer fuzz_state fuzz_chat.
# Builds build-fuzz with clang (-fsanitize=fuzzer,address,undefined; the library with fuzzer-no-link), writes the
# seed corpora from tests/fixtures (fuzz_seeds), then fuzzes ONE process (no -jobs/-workers: the machine is
# shared) with the target's dictionary from fuzz/dict. Memory is bounded: -rss_limit_mb and -malloc_limit_mb make
# a single allocation of more than 256 MiB a finding, since no seed-sized input may legitimately need that much;
# an input that takes more than 10 s is a finding too (a hang).
#
# Left behind in build-fuzz/ (ignored by git):
#   corpus/TARGET/   the growing corpus, reused by the next run
#   crashes/TARGET/  crash-*, leak-*, oom-*, timeout-* inputs: each one becomes a regression test (tests/regress)
#   logs/TARGET.log  the libFuzzer output; the summary line at the end gives executions, cov, ft and corpus size
# Environment: RWKV_FUZZ_BUILD (default build-fuzz), RWKV_FUZZ_NO_BUILD=1 (use the binaries as built), RWKV_VOCAB
# (vocabulary for fuzz_tokenizer), CC/CXX.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(fuzz_pth fuzz_pickle fuzz_safetensors fuzz_vocab fuzz_tokenizer fuzz_state fuzz_chat)
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
if [ "$1" = list ]; then printf '%s\n' "${targets[@]}"; exit 0; fi
target=$1
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))

build=${RWKV_FUZZ_BUILD:-build-fuzz}
if [ "$target" = all ]; then
    for t in "${targets[@]}"; do "$0" "$t" "$seconds" "$@" || echo "fuzz.sh: $t stopped with status $?"; done
    exit 0
fi

max_len=8192
case $target in
    fuzz_pth | fuzz_pickle | fuzz_safetensors) dict=${target#fuzz_} ;;
    fuzz_vocab) dict=vocab; max_len=16384 ;;
    fuzz_tokenizer) dict=tokenizer; max_len=4096 ;;
    fuzz_state) dict=state; max_len=2048 ;;
    fuzz_chat) dict=chat; max_len=4096 ;;
    *) echo "fuzz.sh: unknown target '$target' (tools/fuzz.sh list)" >&2; exit 2 ;;
esac

CC=${CC:-clang}
CXX=${CXX:-clang++}
if [ ! -f "$build/build.ninja" ]; then
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$CC" \
        -DCMAKE_CXX_COMPILER="$CXX" -DRWKV_CUDA=OFF -DRWKV_BUILD_FUZZERS=ON -DRWKV_BUILD_TESTS=OFF \
        -DRWKV_BUILD_TOOLS=OFF >/dev/null
fi
# RWKV_FUZZ_NO_BUILD=1 fuzzes the binaries already in $build (when the tree does not build at the moment).
[ "${RWKV_FUZZ_NO_BUILD:-0}" = 1 ] || cmake --build "$build" -j 2 --target "$target" fuzz_seeds

rm -rf "$build/seeds"
"$build/bin/fuzz_seeds" "$build/seeds"
mkdir -p "$build/corpus/$target" "$build/crashes/$target" "$build/logs" "$build/seeds/$target"
dict_args=()
[ -f "fuzz/dict/$dict.dict" ] && dict_args=(-dict="fuzz/dict/$dict.dict")
# Regression inputs are replayed first: tests/regress/fuzz_TARGET holds raw inputs of this target, and
# tests/regress/{pth,safetensors,vocab} hold whole files, which are these targets' inputs too.
regress=()
[ -d "tests/regress/$target" ] && regress+=("tests/regress/$target")
case $target in
    fuzz_pth | fuzz_safetensors | fuzz_vocab) [ -d "tests/regress/$dict" ] && regress+=("tests/regress/$dict") ;;
esac

log="$build/logs/$target.log"
echo "fuzz.sh: $target for ${seconds}s, log $log"
set +e
"$build/bin/$target" "$build/corpus/$target" "$build/seeds/$target" "${regress[@]}" "${dict_args[@]}" \
    -max_len="$max_len" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
    -print_final_stats=1 -artifact_prefix="$build/crashes/$target/" "$@" >"$log" 2>&1
status=$?
set -e
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)" "$log" | tail -n 2
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
n_crashes=$(find "$build/crashes/$target" -type f | wc -l)
echo "fuzz.sh: $target exited with $status; $n_crashes input(s) in $build/crashes/$target"
if [ $status -ne 0 ]; then tail -n 40 "$log"; fi
exit $status
