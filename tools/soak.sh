#!/usr/bin/env bash
# The soak benchmark: 100,000 greedy decode steps on a synthetic model, checking that the state stays finite,
# the time per token stays flat and the resident memory stays constant (bench/soak.cpp says what is printed).
#
#   tools/soak.sh [rwkv-soak arguments]        e.g. tools/soak.sh --tokens 100000 --preset tiny --vocab 65472
#
# Builds the library (Release, CPU only) into build-soak and compiles bench/soak.cpp against its public header and
# static library; the program uses the public C API only. Environment: RWKV_SOAK_BUILD (default build-soak),
# CXX (default c++), RWKV_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${RWKV_SOAK_BUILD:-build-soak}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=OFF -DBUILD_SHARED_LIBS=OFF \
    -DRWKV_BUILD_TESTS=OFF -DRWKV_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" -j "${RWKV_JOBS:-2}" --target rwkv
"${CXX:-c++}" -std=c++20 -O2 -Wall -Wextra -o "$build/rwkv-soak" bench/soak.cpp -Iinclude -I"$build/include" \
    "$build/lib/librwkv.a" -pthread
# The tiny preset's own vocabulary is 256; a World-sized head (65472 rows, a multiple of 64) makes each step do
# the logits work of a real chat model.
if [ $# -eq 0 ]; then set -- --tokens 100000 --preset tiny --vocab 65472; fi
exec "$build/rwkv-soak" "$@"
