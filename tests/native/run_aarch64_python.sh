#!/bin/sh
# The whole extension built for aarch64 and imported by Debian's arm64 Python under qemu-user:
# tests/native/aarch64_smoke.py checks, through the Python API, that the aarch64 build gives
# the same bits as tests/reference.py on the x86 host (dropout in every layout, dtype and
# thread count, dropout_mask, the dropout family).  tests/native/run_aarch64.sh is the
# required C-level check; this one adds the Cython layer, OpenMP and the Python package.
#
#   tests/native/run_aarch64_python.sh [OUTDIR]        (default build/aarch64-python)
#
# Steps:
#  1. sysroot: Debian's arm64 python3, python3-numpy, libgomp1 and their dependencies (and the
#     Python headers, libpython3.X-dev alone), downloaded with apt-get into a PRIVATE apt state
#     (OUTDIR/apt: its own sources, lists, status and archives; nothing is installed, the host's
#     dpkg and apt state are never touched, no root needed) and unpacked with dpkg-deb -x into
#     OUTDIR/sysroot.  Kept as a cache: delete OUTDIR/sysroot to rebuild it.
#  2. cdrop/_kernels.pyx -> C with the host's Cython (setup.py's directives), then the same
#     sources as setup.py, compiled with aarch64-linux-gnu-gcc and setup.py's flags, -fopenmp,
#     into OUTDIR/pkg/cdrop/_kernels<arm64 EXT_SUFFIX> next to a copy of cdrop/*.py.
#  3. the expected digests, on the host: aarch64_smoke.py expect (tests/reference.py, plus the
#     host's cdrop when one is importable).
#  4. qemu-aarch64 -L sysroot sysroot/usr/bin/python3.X aarch64_smoke.py check.
#  5. a part of the test suite under the same Python: CDROP_ARM64_PYTEST, a list of files in
#     tests/ (default below; "none" skips the step), against OUTDIR/pkg, with pytest and
#     ml_dtypes for aarch64 from PyPI (pip install --target OUTDIR/pylib, kept as a cache; the
#     Debian NumPy stays the one in use).  Tests that start a Python subprocess cannot run here
#     (no binfmt_misc: the guest cannot exec an aarch64 binary), nor 33-64-d arrays
#     (Debian's NumPy 1.24 allows 32 dimensions), hence the list.
#
# The host Python (PYTHON, default python3) needs NumPy and Cython (>= 3.1); when it lacks
# them the script makes a venv in OUTDIR/host with them from PyPI.  Debian suite and mirror:
# CDROP_ARM64_SUITE (default bookworm), CDROP_ARM64_MIRROR (default http://deb.debian.org).
# CFLAGS is appended to the compiler's flags: CFLAGS=-ffp-contract=fast (FMA contraction, which
# the floating-point contract forbids) makes the dropout family's cases fail, as they should.
#
# Exit status: 0 all equal; 1 a case differs, a test fails or a build fails; 2 a usage error;
# 77 skipped: a tool is missing (aarch64-linux-gnu-gcc, qemu-aarch64, apt-get, dpkg-deb) or
# the network or the Debian archive or PyPI cannot be reached (the message says which).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -le 1 ] || { echo "usage: $0 [OUTDIR]" >&2; exit 2; }
out=${1:-$root/build/aarch64-python}
mkdir -p "$out"
out=$(cd "$out" && pwd)
suite=${CDROP_ARM64_SUITE:-bookworm}
mirror=${CDROP_ARM64_MIRROR:-http://deb.debian.org}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
sys=$out/sysroot
py=${PYTHON:-python3}
now() { date +%s.%N; }
say() { echo "run_aarch64_python: $*"; }
skip() { echo "run_aarch64_python: SKIPPED: $*" >&2; exit 77; }
t0=$(now)

for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 \
        || skip "no $tool (tests/native/run_aarch64.sh installs the cross compiler and qemu-user)"
done
for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || skip "no $tool to fetch Debian's arm64 Python"
done
[ -r "$keyring" ] || skip "no $keyring (Debian's debian-archive-keyring) to verify the archive"

# ---- 1. the arm64 sysroot, from a private apt state
if [ ! -e "$sys/.complete" ]; then
    rm -rf "$sys" "$out/apt"
    apt=$out/apt
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc/apt.conf.d" \
        "$apt/etc/preferences.d" "$apt/etc/sources.list.d" "$sys"
    : >"$apt/status"
    for s in "$suite" "$suite-updates"; do
        echo "deb [arch=arm64 signed-by=$keyring] $mirror/debian $s main"
    done >"$apt/etc/sources.list"
    echo "deb [arch=arm64 signed-by=$keyring] $mirror/debian-security $suite-security main" \
        >>"$apt/etc/sources.list"
    # Every Dir of apt's points into $apt, the host's apt.conf.d included (its hooks, e.g.
    # docker-clean's, act on the host's cache), and the only architecture is arm64: with an
    # empty status file, `install --download-only` resolves the complete dependency closure.
    # http_proxy from the environment still applies.
    cat >"$apt/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
APT::Get::Assume-Yes "true";
APT::Sandbox::User "root";
Acquire::Languages "none";
Debug::NoLocking "true";
Dir::State "$apt";
Dir::State::lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
Dir::Cache::archives "$apt/archives";
Dir::Etc "$apt/etc";
Dir::Etc::SourceList "$apt/etc/sources.list";
Dir::Etc::SourceParts "$apt/etc/sources.list.d";
Dir::Etc::Parts "$apt/etc/apt.conf.d";
Dir::Etc::Preferences "$apt/etc/preferences";
Dir::Etc::PreferencesParts "$apt/etc/preferences.d";
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d";
Dir::Log "$apt/log";
EOF
    export APT_CONFIG="$apt/apt.conf"
    apt-get -q update >"$apt/update.log" 2>&1 && ! grep -q '^[WE]:' "$apt/update.log" \
        || { tail -n 5 "$apt/update.log" >&2; skip "apt-get update of $mirror ($suite) failed"; }
    # the headers alone (libpython3.X-dev), without the libc6-dev & co. it depends on: the
    # cross compiler brings its own libc headers
    # libstdc++6: for ml_dtypes' extension (step 5)
    { apt-get -q install --download-only python3 python3-numpy libgomp1 libstdc++6 \
        && minimal=$(cd "$apt/archives" && ls python3.*-minimal_*.deb) \
        && (cd "$apt/archives" && apt-get -q download "lib${minimal%%-minimal_*}-dev"); } \
        >"$apt/install.log" 2>&1 \
        || { tail -n 5 "$apt/install.log" >&2; skip "apt-get could not download the packages"; }
    unset APT_CONFIG
    n=0
    for deb in "$apt"/archives/*.deb; do
        dpkg-deb -x "$deb" "$sys"
        n=$((n + 1))
    done
    # What maintainer scripts would do: the BLAS/LAPACK alternatives (NumPy links libblas.so.3,
    # which update-alternatives points at blas/libblas.so.3), and absolute symlinks made
    # relative, so that they resolve inside the sysroot and not on the host.
    for lib in "$sys"/usr/lib/aarch64-linux-gnu/blas/lib*.so.3 \
        "$sys"/usr/lib/aarch64-linux-gnu/lapack/lib*.so.3; do
        [ -e "$lib" ] || continue
        ln -sf "$(basename "$(dirname "$lib")")/$(basename "$lib")" \
            "$sys/usr/lib/aarch64-linux-gnu/$(basename "$lib")"
    done
    find "$sys" -type l | while read -r link; do
        target=$(readlink "$link")
        case $target in
        /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$sys$target")" "$link" ;;
        esac
    done
    size=$(du -sh "$apt/archives" | cut -f 1)
    say "sysroot: $n arm64 packages ($size) from $mirror $suite"
    rm -rf "$apt/archives"  # the unpacked sysroot is the cache
    touch "$sys/.complete"
fi
guest_py=$(cd "$sys/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | head -n 1)
[ -n "$guest_py" ] || { echo "run_aarch64_python: no python3.X in $sys/usr/bin" >&2; exit 1; }
# the guest sees only its own environment: no host PYTHONPATH, PYTHONHOME or OMP_* settings
guest() {
    env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp \
        qemu-aarch64 -L "$sys" "$sys/usr/bin/$guest_py" "$@"
}
ext_suffix=$(guest -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
# the guest's Python finds its prefix from its own path: the sysroot's include folder
inc=$(guest -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
t1=$(now)

# ---- the host Python: NumPy for the oracle, Cython for the C
if ! "$py" -c 'import numpy, Cython, sys
sys.exit(tuple(map(int, Cython.__version__.split(".")[:2])) < (3, 1))' 2>/dev/null; then
    if [ ! -x "$out/host/bin/python" ]; then
        say "$py lacks NumPy or Cython >= 3.1: making $out/host with them from PyPI"
        "$py" -m venv "$out/host"
        "$out/host/bin/pip" install -q --disable-pip-version-check numpy "Cython>=3.1" \
            || { rm -rf "$out/host"; skip "pip could not install numpy and Cython from PyPI"; }
    fi
    py=$out/host/bin/python
fi

# ---- 2. cross-compile the extension: setup.py's sources, directives and flags
bld=$out/build
pkg=$out/pkg
rm -rf "$bld" "$pkg"
mkdir -p "$bld" "$pkg/cdrop"
directives=$("$py" - "$root/setup.py" <<'EOF'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
node = next(n for n in tree.body if isinstance(n, ast.Assign)
            and getattr(n.targets[0], "id", None) == "DIRECTIVES")
d = eval(compile(ast.Expression(node.value), "setup.py", "eval"), {"DEBUG": False})
print(",".join(f"{k}={v}" for k, v in d.items() if k != "language_level"))
EOF
)
"$py" -m cython -3 -X "$directives" "$root/cdrop/_kernels.pyx" -o "$bld/_kernels.c"
cp "$root"/cdrop/*.py "$root"/cdrop/*.pyi "$root/cdrop/py.typed" "$pkg/cdrop/"
t2=$(now)
# setup.py's flags (BuildExt: -O3 and the floating-point contract, -fopenmp), plus
# sysconfig's -DNDEBUG -fwrapv; the cross compiler's own libc headers come first, the
# sysroot's (for the multiarch pyconfig.h) after them.  Two at a time: the machine has 2 cores.
for src in "$bld/_kernels.c" "$root"/cdrop/_src/*.c; do echo "$src"; done \
    | xargs -P 2 -I{} sh -c 'o="$1/$(basename "$2" .c).o"
        aarch64-linux-gnu-gcc -c -fPIC -O3 -fno-strict-aliasing -Wno-unknown-pragmas \
            -ffp-contract=off -fno-math-errno -fopenmp -DNDEBUG -fwrapv $CFLAGS \
            -I"$3/cdrop/_src" -I"$4" -idirafter "$5/usr/include" "$2" -o "$o"' \
        sh "$bld" {} "$root" "$inc" "$sys"
so=$pkg/cdrop/_kernels$ext_suffix
aarch64-linux-gnu-gcc -shared -fopenmp "$bld"/*.o -o "$so"
[ -e "$sys/usr/lib/aarch64-linux-gnu/libgomp.so.1" ] \
    || { echo "run_aarch64_python: no arm64 libgomp.so.1 in the sysroot" >&2; exit 1; }
t3=$(now)

# ---- 3. expected digests on the host (x86), 4. the check under qemu
"$py" "$root/tests/native/aarch64_smoke.py" expect "$out/expected.json"
t4=$(now)
say "$(qemu-aarch64 --version | head -n 1); $(aarch64-linux-gnu-gcc --version | head -n 1)"
status=0
guest "$root/tests/native/aarch64_smoke.py" check "$out/expected.json" --pkg "$pkg" || status=$?
t5=$(now)

# ---- 5. part of the test suite (the tests that neither exec a Python nor need > 32 dimensions)
tests=${CDROP_ARM64_PYTEST:-test_blocks.py test_determinism.py test_fast_path.py \
test_out_over_x.py test_layer.py test_errors.py test_variants.py test_variant_kernels.py}
if [ "$tests" != none ]; then
    lib=$out/pylib
    if [ ! -e "$lib/.complete" ]; then
        rm -rf "$lib"
        ver=${guest_py#python}
        # pure-Python pytest with its dependencies; ml_dtypes alone (its NumPy dependency would
        # shadow Debian's), both for the guest's Python and machine
        pipt() {
            "$py" -m pip install -q --disable-pip-version-check --target "$lib" \
                --only-binary=:all: --platform manylinux2014_aarch64 --python-version "$ver" \
                --implementation cp "$@"
        }
        if pipt pytest && pipt --no-deps "ml_dtypes>=0.4"; then
            touch "$lib/.complete"
        else
            say "pip could not fetch pytest and ml_dtypes for aarch64: step 5 is SKIPPED"
        fi
    fi
    if [ -e "$lib/.complete" ]; then
        # from $out, not the checkout, so that the source folder cdrop/ cannot shadow the build
        set --
        for t in $tests; do set -- "$@" "$root/tests/$t"; done
        (cd "$out" && guest -c 'import sys; sys.path[:0] = sys.argv[1:3]; import pytest
sys.exit(pytest.main(sys.argv[3:]))' "$pkg" "$lib" --rootdir "$root" -c "$root/pyproject.toml" \
            -p no:cacheprovider -q -rfE -m "not slow" "$@") || status=1
    fi
fi
t6=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v g="$t6" 'BEGIN {
    printf "run_aarch64_python: %.1f s (sysroot %.1f, cython %.1f, cross-compile %.1f, ", g - a,
        b - a, c - b, d - c
    printf "x86 digests %.1f, check under qemu %.1f, tests under qemu %.1f)\n", e - d, f - e,
        g - f }'
exit "$status"
