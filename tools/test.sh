#!/usr/bin/env bash
# The test command: installs what is missing, configures, builds (the CUDA sources too when nvcc is on PATH)
# and runs every test with ctest; then builds build-asan and runs the unit and model tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer (tools/sanitize.sh address: CPU only, any report fails).
# Usage: tools/test.sh [extra ctest arguments]   (RWKV_SKIP_SANITIZE=1 skips the sanitizer step)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install_deps.sh
build=${RWKV_BUILD_DIR:-build}
# nvcc usually lives outside PATH in /usr/local/cuda/bin.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
tools/setup_vocab.sh "$build/share/rwkv" || echo "test.sh: vocabulary not installed; tokenizer tests will use ../shared or skip"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
if [ "${RWKV_SKIP_SANITIZE:-0}" != 1 ]; then tools/sanitize.sh address; fi
