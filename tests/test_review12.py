"""Review of issue 12's new surface (the scalar and portable paths, CDROP_KERNEL, streaming
stores on AVX2, the C-level check and its aarch64 script): the defects found, each with the
test that showed it."""
import os
import subprocess
from pathlib import Path

import pytest

from cdrop import _kernels
from helpers import child_env, run_python

TESTS = Path(__file__).resolve().parent
PROBE = "CDROP_REVIEW12_PROBE"  # set only in the child pytest of the test below


# ---- CDROP_KERNEL=PATH pytest runs the whole suite on PATH --------------------------------
# The two probes run (in this order) only in the child session started below: the first
# switches the path, as many tests do; the second must find the session's path again.
def test_probe_a_switches_the_kernel_path():
    if not os.environ.get(PROBE):
        pytest.skip("a probe of test_cdrop_kernel_session_keeps_its_path_between_tests")
    _kernels.set_path("avx2" if os.environ["CDROP_KERNEL"] != "avx2" else "portable")


def test_probe_b_finds_the_session_path():
    if not os.environ.get(PROBE):
        pytest.skip("a probe of test_cdrop_kernel_session_keeps_its_path_between_tests")
    assert _kernels.get_path() == os.environ["CDROP_KERNEL"]


def test_cdrop_kernel_session_keeps_its_path_between_tests(tmp_path):
    """`CDROP_KERNEL=scalar pytest` is how a CI job exercises the scalar path on a SIMD
    machine (cdrop/__init__.py); conftest's per-test restore set "auto" after the first test,
    so every later test ran on AVX-512 (or the best path) instead."""
    proc = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                       f"{TESTS / 'test_review12.py'}::test_probe_a_switches_the_kernel_path",
                       f"{TESTS / 'test_review12.py'}::test_probe_b_finds_the_session_path"],
                      tmp_path, env={PROBE: "1", "CDROP_KERNEL": "scalar"}, timeout=300)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout + proc.stderr


# ---- tests/native/run_aarch64.sh without qemu-user and without root -----------------------
def test_aarch64_script_without_qemu_and_without_root_says_what_is_missing(tmp_path):
    """The script installed the packages with apt-get whenever one tool was missing; as a
    non-root user (or without apt-get) that ended with apt's own error and status 100 (or
    127), neither of the statuses it documents, and nothing saying what was missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a PATH with the usual tools but no qemu-aarch64, and an apt-get that fails as for a
    # non-root user
    for d in ("/usr/bin", "/bin"):
        for f in Path(d).iterdir():
            link = bin_dir / f.name
            if f.name not in ("qemu-aarch64", "apt-get") and not os.path.lexists(link):
                link.symlink_to(f)
    fake_apt = bin_dir / "apt-get"
    fake_apt.write_text("#!/bin/sh\necho 'E: Could not open lock file' >&2\nexit 100\n")
    fake_apt.chmod(0o755)
    env = child_env({"PATH": str(bin_dir), "CDROP_NATIVE_OUT": str(tmp_path / "out")})
    proc = subprocess.run([str(bin_dir / "sh"), str(TESTS / "native" / "run_aarch64.sh")],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "qemu-aarch64" in out, out


# ---- the C sources with clang --------------------------------------------------------------
def _clang():
    import shutil

    for name in ["clang"] + [f"clang-{v}" for v in range(30, 10, -1)]:
        if shutil.which(name):
            return name
    return None


def test_c_sources_build_and_pass_the_kernel_check_with_clang(tmp_path):
    """With clang 14 on x86-64 cdrop did not compile: __builtin_cpu_supports("f16c") (platform.h)
    is an invalid feature string there, and _mm512_rol_epi32 in an always_inline function
    (isa_avx512.c) needs its count to be a constant in the call itself.  The README says gcc or
    clang."""
    cc = _clang()
    if cc is None:
        pytest.skip("no clang on PATH")
    exe = tmp_path / "check_kernels"
    build = subprocess.run(["sh", str(TESTS / "native" / "build.sh"), str(exe), cc],
                           capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(exe), str(TESTS / "native" / "digests.txt")], capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_c_sources_build_without_gnu_extensions_and_give_the_same_bits(tmp_path):
    """MSVC has none of GCC's and Clang's extensions (vector types, __builtin_*, __attribute__):
    there the portable path is the scalar one (issue 12).  Simulated with clang told it is not
    GNU-compatible (__GNUC__ and __clang__ undefined) and every GNU builtin the sources used
    poisoned, so that a use outside the compiler guards is an error: the build must succeed, offer
    the scalar path only, and give the digests of every other path."""
    cc = _clang()
    if cc is None:
        pytest.skip("no clang on PATH")
    poison = ["ctzll", "prefetch", "sqrtf", "shufflevector", "cpu_init", "cpu_supports",
              "expect", "popcountll", "clzll"]
    flags = ["-U__GNUC__", "-U__GNUC_MINOR__", "-U__GNUC_PATCHLEVEL__", "-U__clang__",
             "-Werror=implicit-function-declaration"]
    flags += [f"-D__builtin_{b}=cdrop_poisoned_{b}" for b in poison]
    exe = tmp_path / "check_kernels"
    build = subprocess.run(["sh", str(TESTS / "native" / "build.sh"), str(exe), cc],
                           env={**os.environ, "CFLAGS": " ".join(flags)},
                           capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(exe), str(TESTS / "native" / "digests.txt")], capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 paths (scalar)" in run.stdout, run.stdout


# ---- the exact loop's threshold edges on every path ---------------------------------------
# The exact loop (thresholds whose low 24 bits are 0) tests byte >= top; the portable path does
# it as byte > top - 1, which does not exist for thr = 0 (top = -128): that threshold must take
# the loop with ties.  thr = 2**24 is the smallest top there, 0xFF000000 the largest.
@pytest.mark.parametrize("p, thr", [(1 - 1e-12, 0), (1 - 2.0**-8, 2**24), (2.0**-8, 0xFF000000),
                                    (0.5, 2**31)])
def test_exact_threshold_edges_give_the_reference_bits_on_every_path(kernel_path, p, thr):
    import numpy as np

    import cdrop
    import reference
    from helpers import assert_bits_equal

    assert reference.threshold(p) == thr
    offset = 5  # a partial head step, whole steps, a partial tail, over 3 blocks
    x = np.arange(1, 40001, dtype=np.float32)
    assert_bits_equal(cdrop.dropout(x, p, seed=12, offset=offset),
                      reference.dropout_ref(x, p, 12, offset))
    y = x.copy()
    cdrop.dropout(y, p, seed=12, offset=offset, out=y)
    assert_bits_equal(y, reference.dropout_ref(x, p, 12, offset))
    assert np.array_equal(cdrop.dropout_mask(40000, p, seed=12, offset=offset),
                          reference.keep_mask(40000, p, 12, offset))
    assert np.array_equal(cdrop.dropout_mask(40000, p, seed=12, offset=offset, packed=True),
                          reference.packed_mask(40000, p, 12, offset))
