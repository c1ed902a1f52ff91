#!/usr/bin/env bash
# Installs the RWKV World vocabulary, rwkv_vocab_v20230424.txt, into DEST_DIR (default: build/share/rwkv
# under the repository root, where the tests and the CLI look for it).
#
#   tools/setup_vocab.sh [DEST_DIR]
#
# Does nothing (silently) when DEST_DIR already holds the file with the right md5. Otherwise it takes the
# file from the official pip package rwkv==0.8.32 (downloaded with `python3 -m pip download`, nothing is
# installed), converts its CRLF line ends to LF, checks the md5 and installs it. Works without a terminal
# (CI=true, no stdin). If pip is missing it tries `python3 -m ensurepip`, then `apt-get install -y
# python3-pip` (as root, or through passwordless sudo).
#
# Environment: PYTHON (default python3); RWKV_VOCAB_SOURCE, a local copy to use instead of PyPI (either the
# .txt or the rwkv-0.8.32 wheel).
# Exit status: 0 when the file is in place, 1 on any failure (md5 mismatch included), 2 on bad usage.
set -euo pipefail

readonly VOCAB=rwkv_vocab_v20230424.txt
readonly MD5=dd1946a66e1721abeac49f9c75a1e844  # of the file with LF line ends, as in rwkv7.md §4
readonly PACKAGE=rwkv==0.8.32
PYTHON=${PYTHON:-python3}

die() {
    echo "setup_vocab.sh: $*" >&2
    exit 1
}

if [[ $# -gt 1 || ${1:-} == -h || ${1:-} == --help ]]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
fi
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest_dir=${1:-$repo_root/build/share/rwkv}
dest=$dest_dir/$VOCAB

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    else
        "$PYTHON" -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
    fi
}

if [[ -f $dest && $(md5_of "$dest") == "$MD5" ]]; then
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON to a Python 3 interpreter)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rwkv-vocab-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A Python that can run `-m pip`: $PYTHON itself, after ensurepip, or the system one after apt-get.
find_pip_python() {
    local py
    for py in "$PYTHON" /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -m pip --version >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

download_wheel() {
    local py
    if ! py=$(find_pip_python); then
        "$PYTHON" -m ensurepip --upgrade >/dev/null 2>&1 || true
        if ! py=$(find_pip_python); then
            echo "setup_vocab.sh: pip not found, trying apt-get install -y python3-pip" >&2
            local sudo=()
            if [[ $(id -u) -ne 0 ]]; then
                command -v sudo >/dev/null 2>&1 || die "pip is missing and installing it needs root"
                sudo=(sudo -n)
            fi
            export DEBIAN_FRONTEND=noninteractive
            "${sudo[@]}" apt-get update -qq </dev/null >/dev/null || true
            "${sudo[@]}" apt-get install -y -qq python3-pip </dev/null >/dev/null ||
                die "could not install python3-pip with apt-get"
            py=$(find_pip_python) || die "pip still not available after installing python3-pip"
        fi
    fi
    PIP_REQUIRE_VIRTUALENV=false "$py" -m pip download "$PACKAGE" --no-deps --only-binary=:all: -d "$tmp" \
        -q --disable-pip-version-check --no-input </dev/null >&2 ||
        die "pip download $PACKAGE failed (is PyPI reachable? a local copy can be given in RWKV_VOCAB_SOURCE)"
    local wheels=("$tmp"/rwkv-*.whl)
    [[ -f ${wheels[0]} ]] || die "pip download produced no rwkv wheel in $tmp"
    echo "${wheels[0]}"
}

source_file=${RWKV_VOCAB_SOURCE:-}
if [[ -z $source_file ]]; then
    source_file=$(download_wheel)
fi
[[ -f $source_file ]] || die "$source_file: no such file"

# Take the vocabulary out of the wheel (or the .txt as is), with LF line ends.
"$PYTHON" - "$source_file" "$tmp/$VOCAB" "$VOCAB" <<'EOF' || die "could not extract $VOCAB from $source_file"
import sys, zipfile
src, out, name = sys.argv[1:4]
if zipfile.is_zipfile(src):
    with zipfile.ZipFile(src) as z:
        data = z.read("rwkv/" + name)
else:
    with open(src, "rb") as f:
        data = f.read()
with open(out, "wb") as f:
    f.write(data.replace(b"\r\n", b"\n"))
EOF

got=$(md5_of "$tmp/$VOCAB")
[[ $got == "$MD5" ]] || die "md5 mismatch for $VOCAB from $source_file: expected $MD5, found $got"

mkdir -p "$dest_dir"
cp "$tmp/$VOCAB" "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
echo "setup_vocab.sh: installed $dest" >&2
