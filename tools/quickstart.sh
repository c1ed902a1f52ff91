#!/usr/bin/env bash
# The main job: installs what is missing, builds Release, then shows what librwkv does on a committed model.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install_deps.sh
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j "$(nproc)"
tools/setup_vocab.sh build-release/share/rwkv || true

cli=build-release/bin/rwkv-cli
model=tests/fixtures/tiny-bf16.pth
echo "== $cli info -m $model"
"$cli" info -m "$model"
echo
echo "== $cli logits -m $model --tokens 1,2,3,4 --out /tmp/rwkv-quickstart-logits.npy"
"$cli" logits -m "$model" --tokens 1,2,3,4 --out /tmp/rwkv-quickstart-logits.npy
echo
# The main job: rwkv-bench's default run (the 0.1B synthetic model of the released shape, pp128 and tg64, on the
# best available backend).
echo "== build-release/bin/rwkv-bench"
build-release/bin/rwkv-bench
