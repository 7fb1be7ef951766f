#!/bin/sh
# Build tests/native/check_kernels.c from cdrop's own C sources (cdrop/_src/*.c), without Python
# and without OpenMP (the kernels run serially).
#
#   tests/native/build.sh OUT [CC [FLAGS...]]     e.g. tests/native/build.sh build/ck
#   tests/native/build.sh build/ck-arm64 aarch64-linux-gnu-gcc -static
#
# The floating-point flags are setup.py's and part of the contract: -ffp-contract=off keeps
# a * b + c two roundings on every instruction set (aarch64's GCC would otherwise fuse them into
# FMAs, as the AVX2/AVX-512 files could), -fno-math-errno lets sqrtf vectorise.  -O2 (setup.py
# uses -O3): the bits must not depend on the optimisation level either.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
cc=${2:-${CC:-cc}}
[ $# -ge 2 ] && shift 2 || shift $#
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086 # CFLAGS is a list of words
"$cc" -O2 -std=gnu11 -ffp-contract=off -fno-math-errno -fno-strict-aliasing \
    -Wno-unknown-pragmas -Wno-unused-function ${CFLAGS:-} "$@" -I"$root/cdrop/_src" \
    "$root"/cdrop/_src/*.c "$root/tests/native/check_kernels.c" -o "$out" -lm
