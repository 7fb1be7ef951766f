#!/bin/sh
# The C-level kernel check (tests/native/check_kernels.c) built for aarch64 and run under
# qemu-user: the portable path (the one every ARM CPU gets) against the digests made on x86.
#
#   tests/native/run_aarch64.sh [DIGESTS]      (default tests/native/digests.txt)
#
# Installs the cross compiler and qemu-user from the Debian archive when they are missing
# (needs root and apt-get, as in CI; elsewhere it says what is missing and exits with 2).
# libc6-dev-arm64-cross is named explicitly: gcc-aarch64-linux-gnu only *recommends* it, so
# --no-install-recommends would leave a compiler without libc headers.  The binary is static, so
# qemu needs no aarch64 sysroot (-L).  Exit status: the check's (0 all equal, 1 a case differs,
# 2 a usage or file error, or the tools are missing and cannot be installed), or the build's.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
digests=${1:-$root/tests/native/digests.txt}
out=${CDROP_NATIVE_OUT:-$root/build/native}/check_kernels-aarch64
now() { date +%s.%N; }
t0=$(now)
missing() {
    m=""
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || m="$m aarch64-linux-gnu-gcc"
    command -v qemu-aarch64 >/dev/null 2>&1 || m="$m qemu-aarch64"
    [ -e /usr/aarch64-linux-gnu/lib/libc.a ] || m="$m /usr/aarch64-linux-gnu/lib/libc.a"
    echo "$m"
}
need=$(missing)
if [ -n "$need" ]; then
    pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
    # apt-get's own failure (not root, no network) is not one of the statuses above: say what
    # is missing instead, and exit with 2
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run_aarch64: missing$need: installing $pkgs"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086 # pkgs is a list of words
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; } \
            || true
        need=$(missing)
    fi
    if [ -n "$need" ]; then
        echo "run_aarch64: missing$need; install the Debian packages $pkgs (as root)" >&2
        exit 2
    fi
fi
t1=$(now)
"$root/tests/native/build.sh" "$out" aarch64-linux-gnu-gcc -static
t2=$(now)
echo "run_aarch64: $(qemu-aarch64 --version | head -n 1), $(aarch64-linux-gnu-gcc --version | head -n 1)"
status=0
qemu-aarch64 "$out" "$digests" || status=$?
t3=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { printf "run_aarch64: %.1f s (packages %.1f, build %.1f, run under qemu %.1f)\n", d - a, b - a, c - b, d - c }'
exit "$status"
