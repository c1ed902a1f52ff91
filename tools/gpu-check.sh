#!/usr/bin/env bash
# The GPU check, one command on a machine with an NVIDIA GPU: tests, compute-sanitizer, benchmarks, one report.
#
#   tools/gpu-check.sh [--bundle DIR | --build DIR] [--report FILE] [--quick] [--no-bench] [--no-sanitizer]
#
# Where the binaries come from:
#   --bundle DIR   a bundle made by tools/gpu-bundle.sh (the default when this script sits inside one: DIR/bin)
#   --build DIR    a CMake build directory; configured and built here (Release, this GPU's architecture) when it
#                  holds no build yet. Needs the Debian build dependencies (tools/install_deps.sh) and nvcc.
# Steps (each one's output goes into the report, a Markdown file, default ./gpu-report.md):
#   1. the machine: nvidia-smi, the driver, librwkv's system info
#   2. the GPU tests: ctest -L gpu (a build) or the bundle's test_cuda_* binaries (the same executables)
#   3. compute-sanitizer (memcheck, then racecheck and initcheck on the decode) on rwkv-cli logits in sequence
#      and one-token modes and a short rwkv-cli generate, on a committed fixture, --backend cuda
#   4. rwkv-bench sweeps on synthetic models, --backend cuda: decode tg128 at batch 1 for 0.1b, 1.5b, 7.2b with
#      --ffn-sparsity 0.9 and with the natural (~0.5) sparsity; batched decode -b 1,8,64 (1.5b); prefill pp512
#      (0.1b, 1.5b, 7.2b). --quick: 0.1b only.
# Exit status: 0 when every test and sanitizer run passed, 1 otherwise (the benchmarks never fail the check).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle="" build="" report="$PWD/gpu-report.md" quick=0 bench=1 sanitize=1
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) bundle="$(cd "$2" && pwd)"; shift 2 ;;
        --build) build="$2"; shift 2 ;;
        --report) report="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --no-bench) bench=0; shift ;;
        --no-sanitizer) sanitize=0; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu-check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$bundle" ] && [ -z "$build" ]; then
    if [ -x "$here/bin/rwkv-cli" ]; then bundle="$here"; else build="$(cd "$here/.." && pwd)/build-gpu"; fi
fi
case "$report" in /*) ;; *) report="$PWD/$report" ;; esac

failures=0
log() { printf '%s\n' "$*" | tee -a "$report"; }
# Runs a command, its output into the report in a code block; counts a failure when `counts` is 1.
section() {
    local title="$1" counts="$2"; shift 2
    log ""; log "### $title"; log ""; log '```'; log "\$ $*"
    local t0=$SECONDS
    "$@" >>"$report" 2>&1
    local rc=$?
    log "(exit $rc, $((SECONDS - t0)) s)"; log '```'
    if [ "$rc" -ne 0 ] && [ "$counts" = 1 ]; then failures=$((failures + 1)); log "**FAILED: $title**"; fi
    return $rc
}

: >"$report"
log "# librwkv GPU check"
log ""
log "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "- host: $(uname -srm)"

# ---- binaries
if [ -n "$bundle" ]; then
    bin="$bundle/bin"
    fixtures="$bundle/fixtures"
    log "- binaries: bundle $bundle ($(cat "$bundle/BUNDLE_INFO" 2>/dev/null | head -1))"
    # The bundle's programs link libcublas dynamically (it is too big to carry, docs/cuda.md): find the machine's.
    if ! ldd "$bin/rwkv-cli" | grep -q "libcublas.so.*=> /"; then
        for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
                 $(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null) \
                 $(ls -d /usr/local/lib/python3*/dist-packages/nvidia/cu*/lib /opt/*/.venv/lib/python3*/site-packages/nvidia/cu*/lib 2>/dev/null); do
            if ls "$d"/libcublas.so.* >/dev/null 2>&1; then export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; break; fi
        done
    fi
    export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # The tests open the fixtures at the absolute path of the machine that built them: make it exist.
    built_at="$(cat "$bundle/FIXTURES_PATH" 2>/dev/null)"
    if [ -n "$built_at" ] && [ ! -e "$built_at" ]; then
        mkdir -p "$(dirname "$built_at")" && ln -s "$fixtures" "$built_at" || log "- warning: cannot link $built_at"
    fi
    section "shared libraries of rwkv-cli" 1 ldd "$bin/rwkv-cli"
else
    export PATH="/usr/local/cuda/bin:$PATH"
    src="$(cd "$here/.." && pwd)"
    fixtures="$src/tests/fixtures"
    if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
        section "configure" 1 cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_CUDA_ARCHITECTURES=native -DRWKV_CUDA=ON || { log "configure failed"; exit 1; }
    fi
    section "build" 1 cmake --build "$build" -j "$(nproc)" || { log "build failed"; exit 1; }
    bin="$build/bin"
    [ -f "$build/share/rwkv/rwkv_vocab_v20230424.txt" ] || "$src/tools/setup_vocab.sh" "$build/share/rwkv" >/dev/null 2>&1
    log "- binaries: build $build"
fi

section "nvidia-smi" 0 nvidia-smi
section "librwkv" 1 "$bin/rwkv-cli" info -m "$fixtures/tiny-bf16.pth" --backend cuda

# ---- 2. tests
log ""; log "## Tests"
if [ -n "$bundle" ]; then
    for t in "$bin"/test_cuda_*; do
        [ -x "$t" ] && section "$(basename "$t")" 1 "$t" --gtest_color=no
    done
else
    section "ctest -L gpu" 1 ctest --test-dir "$build" -L gpu --output-on-failure
fi

# ---- 3. compute-sanitizer
if [ "$sanitize" = 1 ]; then
    log ""; log "## compute-sanitizer"
    cs="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
    if [ -z "$cs" ]; then
        log "compute-sanitizer not found: skipped"
    else
        toks="1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20"
        tmp="$(mktemp -d)"
        for mode in seq rnn; do
            section "memcheck: logits --mode $mode" 1 "$cs" --tool memcheck --error-exitcode 99 --leak-check full \
                "$bin/rwkv-cli" logits -m "$fixtures/tiny-bf16.pth" --backend cuda --tokens "$toks" --mode "$mode" \
                --out "$tmp/l-$mode.npy"
        done
        section "memcheck: generate" 1 "$cs" --tool memcheck --error-exitcode 99 \
            "$bin/rwkv-cli" generate -m "$fixtures/tiny-bf16.pth" --backend cuda --tokens "$toks" -n 16 --ids
        section "racecheck: logits --mode rnn" 1 "$cs" --tool racecheck --error-exitcode 99 \
            "$bin/rwkv-cli" logits -m "$fixtures/tiny-bf16.pth" --backend cuda --tokens 1,2,3,4 --mode rnn \
            --out "$tmp/r.npy"
        section "initcheck: logits --mode seq" 1 "$cs" --tool initcheck --error-exitcode 99 \
            "$bin/rwkv-cli" logits -m "$fixtures/tiny-bf16.pth" --backend cuda --tokens "$toks" --mode seq \
            --out "$tmp/i.npy"
        rm -rf "$tmp"
    fi
fi

# ---- 4. benchmarks
if [ "$bench" = 1 ]; then
    log ""; log "## Benchmarks (synthetic weights; rwkv-bench --backend cuda)"
    b="$bin/rwkv-bench"
    if [ "$quick" = 1 ]; then decode="0.1b" prefill="0.1b" batched="0.1b"; else decode="0.1b,1.5b,7.2b" prefill="0.1b,1.5b,7.2b" batched="1.5b"; fi
    section "decode tg128 b1, FFN sparsity 0.9" 0 "$b" --backend cuda --synthetic "$decode" -p 0 -n 128 -b 1 -d 0 -r 5 --ffn-sparsity 0.9
    section "decode tg128 b1, natural FFN sparsity" 0 "$b" --backend cuda --synthetic "$decode" -p 0 -n 128 -b 1 -d 0 -r 5
    section "batched decode tg64 b1,8,64, FFN sparsity 0.9" 0 "$b" --backend cuda --synthetic "$batched" -p 0 -n 64 -b 1,8,64 -d 0 -r 3 --ffn-sparsity 0.9
    section "prefill pp512" 0 "$b" --backend cuda --synthetic "$prefill" -p 512 -n 0 -d 0 -r 5
    section "decode at depth 8192 (constant speed)" 0 "$b" --backend cuda --synthetic 0.1b -p 0 -n 64 -b 1 -d 0,8192 -r 3
fi

log ""
if [ "$failures" -eq 0 ]; then log "**GPU check passed.** Report: $report"; else log "**GPU check: $failures step(s) failed.** Report: $report"; fi
[ "$failures" -eq 0 ]
