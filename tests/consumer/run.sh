#!/usr/bin/env bash
# The consumer test: what someone linking librwkv into their own program goes through, for the shared and the
# static library.
#
#   tests/consumer/run.sh [--source DIR] [--build DIR] [--model FILE] [--cmake CMAKE] [--generator GEN]
#                         [--build-type TYPE] [--cc CC] [--cxx CXX]
#
# For the given build tree (default: build/) and then for a second configuration of the other kind (shared if the
# build is static, static if it is shared; library and tools only, CUDA off, kept in <build>/consumer-<kind> so that
# a re-run is incremental):
#   1. cmake --install into a temporary prefix; check the layout (headers with the generated rwkv/version.h,
#      library, rwkvConfig.cmake + version file, rwkv.pc, rwkv-cli, the vocabulary when the build has it), the
#      SONAME, and that a shared librwkv exports the rwkv_* API and nothing else;
#   2. build each example of docs/examples out of tree with find_package(rwkv), and again with pkg-config alone,
#      with -Wall -Wextra -Werror;
#   3. run them on a fixture model (tests/fixtures/tiny-bf16.pth, V = 256) with a byte-level vocabulary (ids
#      1..256 = bytes 0..255) so that text goes in and out; both builds of an example must print the same; run the
#      installed rwkv-cli; with the World vocabulary installed, run the simple example on it too.
# Environment: RWKV_CONSUMER_ONE_KIND=1 skips the second configuration; RWKV_CONSUMER_EXAMPLES="simple state"
# runs a subset of the examples. Exit status 0 when everything passed, 1 on the first failure (with its output).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build_dir=$source_dir/build
model=$source_dir/tests/fixtures/tiny-bf16.pth
cmake=cmake
generator=Ninja
build_type=RelWithDebInfo
cc=cc
cxx=c++
while [[ $# -gt 0 ]]; do
    case $1 in
        --source) source_dir=$2 ;;
        --build) build_dir=$2 ;;
        --model) model=$2 ;;
        --cmake) cmake=$2 ;;
        --generator) generator=$2 ;;
        --build-type) build_type=$2 ;;
        --cc) cc=$2 ;;
        --cxx) cxx=$2 ;;
        *)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
            exit 2
            ;;
    esac
    shift 2
done
[[ -n $build_type ]] || build_type=RelWithDebInfo
build_dir=$(cd "$build_dir" && pwd)
read -r -a examples <<<"${RWKV_CONSUMER_EXAMPLES:-simple batched state}"
readonly vocab_name=rwkv_vocab_v20230424.txt

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rwkv-consumer-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
t_start=$SECONDS

say() { echo "consumer: $*"; }
fail() {
    echo "consumer: FAILED: $*" >&2
    exit 1
}
# Runs a command, showing its output only when it fails.
quiet() {
    local log=$tmp/last.log
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "$*"
    fi
}

# The byte-level vocabulary: every byte is a token (as the tokenizer requires), ids 1..256.
byte_vocab=$tmp/bytes.txt
for ((b = 0; b < 256; b++)); do printf "%d b'\\\\x%02x' 1\n" $((b + 1)) $b; done >"$byte_vocab"

kind_of() {  # shared or static, from the build's cache
    if grep -Eq '^BUILD_SHARED_LIBS:BOOL=(ON|1|TRUE|YES)$' "$1/CMakeCache.txt"; then echo shared; else echo static; fi
}

check_install() {  # build kind prefix
    local build=$1 kind=$2 prefix=$3
    quiet "$cmake" --install "$build" --prefix "$prefix"
    local f
    local files=(include/rwkv/rwkv.h include/rwkv/rwkv.hpp include/rwkv/error.hpp include/rwkv/version.h)
    grep -q '^RWKV_BUILD_TOOLS:BOOL=ON$' "$build/CMakeCache.txt" && files+=(bin/rwkv-cli)
    if [[ -f $build/share/rwkv/$vocab_name ]]; then files+=(share/rwkv/$vocab_name); fi
    for f in "${files[@]}"; do
        [[ -f $prefix/$f ]] || fail "$kind: $f not installed"
    done
    config=$(find "$prefix" -name rwkvConfig.cmake | head -n1)
    [[ -n $config && -f $(dirname "$config")/rwkvConfigVersion.cmake && -f $(dirname "$config")/rwkvTargets.cmake ]] ||
        fail "$kind: rwkvConfig.cmake, rwkvConfigVersion.cmake or rwkvTargets.cmake not installed"
    pc=$(find "$prefix" -name rwkv.pc | head -n1)
    [[ -n $pc ]] || fail "$kind: rwkv.pc not installed"
    libdir=$(dirname "$(dirname "$pc")")
    if [[ $kind == shared ]]; then
        [[ ! -e $libdir/librwkv.a ]] || fail "shared: librwkv.a installed too"
        local so
        so=$(readlink -f "$libdir/librwkv.so") || fail "shared: no librwkv.so in $libdir"
        local soname
        soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
        [[ $soname == librwkv.so.* && -e $libdir/$soname ]] || fail "shared: SONAME '$soname' missing or not installed"
        # Exported functions and objects: the API only (no C++ internals, no inline template instances).
        local leaked
        leaked=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ && $3 !~ /^rwkv_/ && $3 !~ /^_(init|fini|edata|end|_bss_start)$/ { print $3 }')
        [[ -z $leaked ]] || fail "shared: symbols exported beyond the rwkv_* API: $(echo "$leaked" | head -n 10 | tr '\n' ' ')"
        say "shared: $soname, $(nm -D --defined-only "$so" | awk '$3 ~ /^rwkv_/' | wc -l) exported rwkv_* symbols, nothing else"
    else
        [[ -f $libdir/librwkv.a ]] || fail "static: librwkv.a not installed in $libdir"
        [[ ! -e $libdir/librwkv.so ]] || fail "static: librwkv.so installed too"
    fi
}

build_examples() {  # kind prefix out
    local kind=$1 prefix=$2 out=$3 ex
    mkdir -p "$out/cmake" "$out/pkgconfig"
    for ex in "${examples[@]}"; do
        # find_package(rwkv)
        quiet "$cmake" -S "$source_dir/docs/examples/$ex" -B "$tmp/$kind/cmake-$ex" -G "$generator" \
            -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
            -DCMAKE_CXX_COMPILER="$cxx" "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror" \
            "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror"
        quiet "$cmake" --build "$tmp/$kind/cmake-$ex"
        cp "$tmp/$kind/cmake-$ex/$ex" "$out/cmake/$ex"
        # pkg-config only
        local src compiler std
        src=$(ls "$source_dir/docs/examples/$ex/$ex".c* 2>/dev/null | head -n1)
        if [[ $src == *.cpp ]]; then compiler=$cxx std=-std=c++17; else compiler=$cc std=-std=c99; fi
        local rpath=()
        [[ $kind == shared ]] && rpath=("-Wl,-rpath,$libdir")
        # shellcheck disable=SC2046
        quiet "$compiler" $std -O2 -Wall -Wextra -Werror -o "$out/pkgconfig/$ex" "$src" \
            $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs rwkv) "${rpath[@]}"
    done
    local version
    version=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --modversion rwkv)
    say "$kind: built ${examples[*]} with find_package(rwkv) and with pkg-config (rwkv $version)"
}

run_example() {  # kind how bin example: runs it, output in $out/<example>.<how>.txt
    local kind=$1 how=$2 bin=$3/$4 ex=$4 log=$out/$4.$2.txt
    case $ex in
        simple) "$bin" "$model" "User: Hello!"$'\n\n'"Assistant:" ;;
        batched) "$bin" "$model" ;;
        state) rm -rf "$out/state" && mkdir -p "$out/state" && "$bin" "$model" "$out/state" ;;  # same path: same output
        *) fail "no way to run the example $ex" ;;
    esac >"$log" 2>&1 || { cat "$log" >&2; fail "$kind/$how: $ex failed"; }
    case $ex in
        batched) grep -q -- '--- conversation 2' "$log" || fail "$kind/$how: batched printed no third conversation" ;;
        state)
            [[ -s $out/state/conversation.state ]] || fail "$kind/$how: state wrote no conversation.state"
            grep -q '^\[fork B\]' "$log" || fail "$kind/$how: state printed no fork B"
            ;;
    esac
}

run_examples() {  # kind prefix out
    local kind=$1 prefix=$2 out=$3 how ex
    for how in cmake pkgconfig; do
        export RWKV_VOCAB=$byte_vocab
        for ex in "${examples[@]}"; do run_example "$kind" "$how" "$out/$how" "$ex"; done
        # Errors come back as a status and a message naming the file, not a crash.
        if [[ " ${examples[*]} " == *" simple "* ]]; then
            if "$out/$how/simple" "$tmp/no-such-model.pth" >"$out/err.txt" 2>&1; then
                fail "$kind/$how: simple accepted a missing model"
            fi
            grep -q 'no-such-model.pth' "$out/err.txt" || fail "$kind/$how: the error message does not name the file"
        fi
        unset RWKV_VOCAB
    done
    for ex in "${examples[@]}"; do
        cmp -s "$out/$ex.cmake.txt" "$out/$ex.pkgconfig.txt" ||
            fail "$kind: $ex prints differently when built with CMake and with pkg-config"
    done
    if [[ -x $prefix/bin/rwkv-cli ]]; then
        "$prefix/bin/rwkv-cli" info -m "$model" >"$out/cli.txt" 2>&1 ||
            { cat "$out/cli.txt" >&2; fail "$kind: the installed rwkv-cli failed"; }
    fi
    local world=$prefix/share/rwkv/$vocab_name
    if [[ -f $world && " ${examples[*]} " == *" simple "* ]]; then
        RWKV_VOCAB=$world "$out/cmake/simple" "$model" "A" >"$out/world.txt" 2>&1 ||
            { cat "$out/world.txt" >&2; fail "$kind: simple with the installed World vocabulary failed"; }
        say "$kind: ran ${examples[*]} (CMake and pkg-config builds) and rwkv-cli; simple also on the World vocabulary"
    else
        say "$kind: ran ${examples[*]} (CMake and pkg-config builds) and rwkv-cli"
    fi
}

test_kind() {  # build
    local build=$1 kind t0=$SECONDS
    kind=$(kind_of "$build")
    local prefix=$tmp/$kind/prefix out=$tmp/$kind/out
    check_install "$build" "$kind" "$prefix"
    build_examples "$kind" "$prefix" "$out"
    run_examples "$kind" "$prefix" "$out"
    say "$kind: passed in $((SECONDS - t0)) s"
}

# The README shows docs/examples/simple/simple.c verbatim (the first C block after "## Library").
readme_example=$(awk '/^## Library/ { lib = 1 } lib && /^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' \
    "$source_dir/README.md")
[[ $readme_example == "$(cat "$source_dir/docs/examples/simple/simple.c")" ]] ||
    fail "README.md's example differs from docs/examples/simple/simple.c: copy it over"

test_kind "$build_dir"

if [[ ${RWKV_CONSUMER_ONE_KIND:-0} != 1 ]]; then
    if [[ $(kind_of "$build_dir") == static ]]; then other=shared shared=ON; else other=static shared=OFF; fi
    other_build=$build_dir/consumer-$other
    t0=$SECONDS
    say "configuring and building the $other library in $other_build (CUDA off, no tests)"
    quiet "$cmake" -S "$source_dir" -B "$other_build" -G "$generator" -DCMAKE_BUILD_TYPE="$build_type" \
        -DBUILD_SHARED_LIBS=$shared -DRWKV_CUDA=OFF -DRWKV_BUILD_TESTS=OFF -DRWKV_BUILD_TOOLS=ON -DRWKV_INSTALL=ON \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx"
    quiet "$cmake" --build "$other_build" -j "$(nproc)"
    if [[ -f $build_dir/share/rwkv/$vocab_name ]]; then
        mkdir -p "$other_build/share/rwkv"
        cp "$build_dir/share/rwkv/$vocab_name" "$other_build/share/rwkv/"
    fi
    say "$other: library built in $((SECONDS - t0)) s"
    test_kind "$other_build"
fi
say "all passed in $((SECONDS - t_start)) s"
