#!/usr/bin/env bash
# Reproduces the CPU tables of docs/performance.md ("## rwkv-bench"): builds rwkv-bench in Release with the CPU
# backend only, measures the streaming-read bandwidth, then runs rwkv-bench on the synthetic 0.1b and 1.5b models.
# Each table is printed and saved as markdown and JSON (bench/schema.json) under the output directory, with the
# environment (CPU, flags, commit, build type, date) in every JSON object.
#
#   bench/run_cpu_tables.sh [--quick] [--out DIR] [--build DIR] [--threads N]
#
#   --quick     small sizes (a few minutes on 2 cores): checks the pipeline, not for publishing
#   --out DIR   where the results go (default: BUILD_DIR/bench-results/cpu-<UTC date>)
#   --build DIR the build directory (default: build-release)
#   --threads N the multi-threaded column (default: all cores; a 1-thread row is always included)
#
# The full run takes long on a small CPU (depth 8192 is a prefill of 8192 tokens per model). Keep the machine
# otherwise idle: on a shared 2-core box quote medians and ratios from one run, never one absolute time.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
out=""
build=build-release
threads=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --out) out=$2; shift ;;
        --build) build=$2; shift ;;
        --threads) threads=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

[ -n "$out" ] || out="$build/bench-results/cpu-$(date -u +%Y%m%dT%H%M%SZ)"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target rwkv-bench rwkv-streaming-read rwkv-bench-schema-check
bench="$build/bin/rwkv-bench"
mkdir -p "$out"
echo "results: $out"

# The sizes of each table: full, or --quick.
if [ "$quick" = 1 ]; then
    reps=3; pp01=64; tg01=16; depth01=0,256; ppdt=64; tgdt=16; tgb=8; batches=1,4,16; ppvs=64; tgvs=16
    pp15=16; tg15=4; depth15=0,64; reps15=2
else
    reps=5; pp01=128,512; tg01=128; depth01=0,8192; ppdt=512; tgdt=128; tgb=32; batches=1,8,64; ppvs=128,512; tgvs=64
    pp15=512; tg15=128; depth15=0,8192; reps15=3
fi
thread_list=1
[ "$threads" -gt 1 ] && thread_list="1,$threads"

# One table: its markdown on stdout and in NAME.md, its JSON in NAME.json, checked against the schema.
table() {
    local name=$1; shift
    echo
    echo "== $name: rwkv-bench $*"
    "$bench" --backend cpu "$@" --json-file "$out/$name.json" | tee "$out/$name.md"
    "$build/bin/rwkv-bench-schema-check" bench/schema.json "$out/$name.json" >/dev/null
}

echo
echo "== streaming read (the % peak denominator)"
"$build/bin/rwkv-streaming-read" -t "$threads" | tee "$out/streaming_read.txt"

# Table 1. 0.1b bf16: prefill and decode, 1 and N threads, decode at depth 0 and 8192 (constant speed).
table t1_0.1b_bf16 --synthetic 0.1b --dtype bf16 -p "$pp01" -n "$tg01" -d "$depth01" -t "$thread_list" -r "$reps"
# Table 2. 0.1b by weight dtype (N threads, depth 0).
table t2_0.1b_dtypes --synthetic 0.1b --dtype f32,f16,bf16 -p "$ppdt" -n "$tgdt" -d 0 -t "$threads" -r "$reps"
# Table 3. 0.1b batched decode: B sequences per step (rwkv_decode_batch), aggregate t/s.
table t3_0.1b_batched --synthetic 0.1b -p 0 -n "$tgb" -b "$batches" -d 0 -t "$threads" -r "$reps"
# Table 4. 0.1b with trained-like FFN sparsity 0.9: decode GB/s counted at 90% skipped FFN value rows.
table t4_0.1b_sparse --synthetic 0.1b --ffn-sparsity 0.9 -p 0 -n "$tgdt" -d 0 -t "$threads" -r "$reps"
# Table 5. 1.5b bf16: prefill and decode, depth 0 and 8192.
table t5_1.5b_bf16 --synthetic 1.5b -p "$pp15" -n "$tg15" -d "$depth15" -t "$threads" -r "$reps15"
# Table 6. The librwkv half of docs/performance.md's comparison with llama.cpp: 0.1b and 0.4b in f16 and bf16,
# pp128, pp512, tg64 (llama-bench's own run uses the same sizes: -t N -p 128,512 -n 64 -r 5).
table t6_vs_llama --synthetic 0.1b,0.4b --dtype f16,bf16 -p "$ppvs" -n "$tgvs" -d 0 -t "$threads" -r "$reps"

echo
echo "done: $out"
