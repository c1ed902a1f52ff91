#!/usr/bin/env bash
# The soak benchmark: 100,000 greedy decode steps on a synthetic model, checking that the state stays finite,
# the time per token stays flat and the resident memory stays constant (bench/soak.cpp says what is printed).
#
#   tools/soak.sh [rwkv-soak arguments]        default: --tokens 100000 --preset tiny --vocab 65536
#
# Builds rwkv-soak (bench/CMakeLists.txt; Release, CPU only) into build-soak and runs it. The tiny preset's own
# vocabulary is 256; a World-sized head (65536 rows) makes each step do the logits work of a chat model.
# Environment: RWKV_SOAK_BUILD (default build-soak), RWKV_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install_deps.sh
build=${RWKV_SOAK_BUILD:-build-soak}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=OFF -DRWKV_BUILD_TESTS=OFF \
    -DRWKV_BUILD_TOOLS=ON >/dev/null
cmake --build "$build" -j "${RWKV_JOBS:-2}" --target rwkv-soak
if [ $# -eq 0 ]; then set -- --tokens 100000 --preset tiny --vocab 65536; fi
exec "$build/bin/rwkv-soak" "$@"
