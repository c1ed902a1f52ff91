#!/usr/bin/env bash
# Installs the Debian packages librwkv builds with, only those missing. Idempotent; silent when all are present.
set -euo pipefail

# clang + its runtime libraries: the sanitizer build (tools/sanitize.sh) and the fuzzers (tools/fuzz.sh).
packages=(cmake ninja-build g++ pkg-config python3 libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev clang
    libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
