#!/usr/bin/env bash
# The classes of the public C++ wrapper (include/rwkv/rwkv.hpp) are defined inline in every program that includes
# it; a library class of the same name in namespace rwkv would give two definitions of, say, rwkv::State::~State()
# and the linker would keep one of them for both (a program linking the static library then ran the wrapper's
# destructor on the library's object). This checks that the library's objects define no member of those classes.
# Usage: header_names.sh NM LIBRARY HEADER
set -euo pipefail
nm=$1 lib=$2 header=$3
classes=$(sed -n 's/^class \([A-Za-z_]*\) .*/\1/p' "$header" | sort -u)
[ -n "$classes" ] || { echo "no classes found in $header"; exit 1; }
pattern="rwkv::($(echo $classes | tr ' ' '|'))::"
if clashes=$("$nm" -C --defined-only "$lib" 2>/dev/null | grep -E " $pattern" | sort -u | head -20) && [ -n "$clashes" ]; then
    echo "the library defines members of classes that rwkv.hpp also defines ($pattern):"
    echo "$clashes"
    exit 1
fi
echo "ok: no member of $(echo $classes) is defined by $lib"
