#!/usr/bin/env bash
# Builds librwkv here (Release, CUDA for sm_90 unless --archs says otherwise) and assembles a self-contained bundle to
# carry to a GPU machine that has no network and none of the Debian build dependencies:
#
#   tools/gpu-bundle.sh [--out DIR] [--build DIR] [--archs "90"]
#
#   DIR/bin/        rwkv-cli, rwkv-bench, the GPU test executables (test_cuda_*)
#   DIR/lib/        the shared libraries they need that a bare CUDA machine lacks (spdlog, fmt, ...); NOT libcublas
#   DIR/share/rwkv/ the World vocabulary (from build/share/rwkv, else the build's own share/rwkv)
#   DIR/fixtures/   tests/fixtures (the tiny models the tests and the sanitizer runs use)
#   DIR/gpu-check.sh, BUNDLE_INFO (commit, toolkit, archs, sizes), FIXTURES_PATH (where the tests look for them)
#
# cudart is linked statically. cuBLAS is linked dynamically and not bundled: libcublas.so.13 (52 MiB) plus
# libcublasLt.so.13 (517 MiB) would not fit the 64 MiB a device run can carry, and there is no static cuBLAS in
# this toolkit install; the target needs a CUDA 13 cuBLAS (the toolkit, or the nvidia-cublas pip wheel, which
# gpu-check.sh finds). Default DIR: .gpu-bundle (added to .git/info/exclude, so it travels only when carried).
# Then, on the GPU machine:  .gpu-bundle/gpu-check.sh --report gpu-report.md
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# sm_90 (H100/H200, the GPU this project is lent) by default: every binary carries the device code of every
# architecture built, and four binaries with all five architectures come to ~120 MiB stripped, twice what a device
# run may carry. Give --archs "80;86;89;90;120" (or the one you need) for another GPU.
out="$src/.gpu-bundle" build="$src/build-bundle" archs="90"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --build) build="$2"; shift 2 ;;
        --archs) archs="$2"; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "gpu-bundle.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
command -v nvcc >/dev/null || { echo "gpu-bundle.sh: nvcc not found: a GPU bundle needs the CUDA toolkit" >&2; exit 1; }

jobs="${JOBS:-2}"
echo "== configure + build ($build, Release, archs $archs, -j$jobs)"
nice -n 10 cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$archs" -DBUILD_SHARED_LIBS=OFF -DRWKV_BUILD_TESTS=ON >/dev/null
nice -n 10 cmake --build "$build" -j "$jobs"

echo "== assemble $out"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/share/rwkv" "$out/fixtures"
cp "$build/bin/rwkv-cli" "$build/bin/rwkv-bench" "$out/bin/"
for t in "$build"/bin/test_cuda_*; do [ -x "$t" ] && cp "$t" "$out/bin/"; done
strip --strip-debug "$out"/bin/* 2>/dev/null || true  # host debug info only; the device code keeps -lineinfo
vocab=""
for d in "$src/build/share/rwkv" "$build/share/rwkv"; do
    [ -f "$d/rwkv_vocab_v20230424.txt" ] && { vocab="$d/rwkv_vocab_v20230424.txt"; break; }
done
if [ -n "$vocab" ]; then cp "$vocab" "$out/share/rwkv/"; else echo "warning: no vocabulary found (tools/setup_vocab.sh)"; fi
cp -r "$src/tests/fixtures/." "$out/fixtures/"
cp "$src/tools/gpu-check.sh" "$out/"
echo "$src/tests/fixtures" >"$out/FIXTURES_PATH"

# Shared libraries outside the base system (glibc, libstdc++, libgcc) and the driver/cuBLAS, which the target has.
for f in "$out"/bin/*; do
    ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
        libcuda.so*|libcublas.so*|libcublasLt.so*|libcudart.so*) ;;
        *) cp -L "$lib" "$out/lib/" ;;
    esac
done

{
    echo "librwkv GPU bundle, commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$src" diff --quiet 2>/dev/null || echo -dirty), built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "CUDA toolkit: $(nvcc --version | tail -1); archs: $archs; cudart static; cuBLAS dynamic (not bundled)"
    echo "host: $(uname -srm); $(ldd --version | head -1)"
    echo "needs on the target: an NVIDIA driver for CUDA 13, libcublas.so.13 + libcublasLt.so.13"
    echo "files:"
    (cd "$out" && find . -type f -printf '%s %p\n' | sort -k2)
} >"$out/BUNDLE_INFO"

grep -qx "/$(basename "$out")/" "$src/.git/info/exclude" 2>/dev/null || \
    { [ "$(dirname "$out")" = "$src" ] && echo "/$(basename "$out")/" >>"$src/.git/info/exclude"; } || true
size=$(du -sm "$out" | cut -f1)
echo "== bundle: $out, ${size} MiB"
[ "$size" -lt 60 ] || echo "warning: the bundle is ${size} MiB, over the 60 MiB budget (a device run carries 64 MiB)"
