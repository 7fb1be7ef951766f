"""LeakSanitizer check of cdrop's extension (CI step 4; see .ci/run).

    LD_PRELOAD="$(gcc -print-file-name=libasan.so) ..." python .ci/lsan_check.py [--self-test]

Runs every public entry point (and the error paths that raise) a few hundred times in a child
interpreter with leak detection on, then reads the sanitizer reports: the check fails on any
AddressSanitizer or UBSan error, and on any leaked block allocated with a frame of cdrop's
extension on its stack.

Why a filter instead of "no leaks at all": CPython does not free everything at exit (interned
strings, static types, NumPy's caches), so an un-instrumented interpreter always "leaks" a few
KiB; those blocks have no cdrop frame.  The child runs with PYTHONMALLOC=malloc (every object is a
malloc block that LeakSanitizer sees) and fast_unwind_on_malloc=0 (full DWARF unwinding through
the interpreter's frames, which have no frame pointers); the full unwinding is slow, hence few
calls.

What it can see: memory allocated under the extension's frames that nothing points to any more,
e.g. an object without GC tracking (int, float, bytes, a dict of scalars, a buffer) that the
extension's C code keeps one reference too many to.  What it cannot see: GC-tracked containers
leaked the same way (the interpreter's GC lists still point to them, so they count as
reachable), and extra references to objects that stay alive anyway.  Those are covered by the
reference-count and tracemalloc tests of tests/test_resources.py.
`--self-test` leaks on purpose a dict that the extension allocated (one reference too many,
taken with ctypes) and checks that the filter reports it, with the build_info frame.
"""
import os
import re
import subprocess
import sys
import tempfile

WORKLOAD = r"""
import numpy as np
import cdrop

def expect_error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError):
        return
    raise AssertionError("expected an error")

x32 = np.linspace(-1, 1, 70_000, dtype=np.float32)   # > one block and > the threading cut-off
x64 = np.linspace(-1, 1, 5_000, dtype=np.float64)
xf = np.asfortranarray(np.ones((130, 70), np.float32))
out = np.empty_like(x32)
layer = cdrop.Dropout(0.3, seed=5)
for i in range(150):
    cdrop.dropout(x32, 0.5, seed=i)
    cdrop.dropout(x64[::3], 0.1, seed=i, num_threads=2)
    cdrop.dropout(x32.copy(), 0.5, seed=i, inplace=True)
    cdrop.dropout(x32, 0.5, seed=np.random.default_rng(i), out=out)
    cdrop.dropout(xf, 0.5, seed=i)
    cdrop.dropout(x32, 0.5, training=False)
    cdrop.dropout_mask((300, 7), 0.2, seed=i)
    cdrop.dropout_mask(1001, 0.2, seed=i, packed=True, offset=2**40)
    y = layer(x64)
    layer.backward(np.ones_like(y))
    layer.eval(); layer(x64); layer.train()
    cdrop.manual_seed(i)
    cdrop.set_num_threads(1 + i % 2); cdrop.get_num_threads()
    cdrop.show_config()
    expect_error(cdrop.dropout, x32, 1.5)
    expect_error(cdrop.dropout, x32.astype(np.int32), 0.5)
    expect_error(cdrop.dropout, x32, 0.5, out=np.empty(3, np.float32))
    expect_error(cdrop.dropout, x32, 0.5, seed=-1)
    expect_error(cdrop.dropout, np.broadcast_to(x32, (2, x32.size)), 0.5, inplace=True)
    expect_error(cdrop.dropout_mask, -1, seed=1)
    expect_error(cdrop.set_num_threads, 0)
    # the dropout family: fused and generic kernels, keep arrays, normals (scratch per thread)
    x4 = x32[:69_632].reshape(17, 16, 16, 16)
    cdrop.dropout(x4, 0.3, seed=i, noise_shape=(None, None, 1, 1), num_threads=2)
    cdrop.drop_path(x4, 0.2, seed=i)
    cdrop.alpha_dropout(x32, 0.2, seed=i, num_threads=2)
    cdrop.alpha_dropout(xf, 0.2, seed=i)
    cdrop.gaussian_dropout(x64, 0.2, seed=i)
    cdrop.gaussian_noise(x32, 0.5, seed=i, num_threads=2)
    cdrop.dropout_add(x32, out, 0.1, bias=x32[:10].repeat(7_000), seed=i, out=out)
    cdrop.dropout_add(xf, xf, 0.1, bias=np.ones(70, np.float32), seed=i)
    fam = cdrop.DropoutAdd(0.1, seed=i)
    z = fam(x64, x64, bias=x64[:5_000])
    fam.backward(np.ones_like(z))
    expect_error(cdrop.dropout_add, x32, x64, 0.1)
    expect_error(cdrop.dropout, x4, 0.1, noise_shape=(2, 1, 1, 1))
"""

SELF_TEST = r"""
import ctypes
import cdrop._kernels as k
# The bug this check exists for: an object made by the extension whose reference is never
# dropped.  build_info() returns a dict allocated in the extension's frames; one extra
# reference, then no pointer to it anywhere: unreachable, so LeakSanitizer reports it.
for _ in range(3):
    d = k.build_info()
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(d))
    del d
"""


def run(code):
    """Run `code` in a child interpreter with leak detection; return the sanitizer reports."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["PYTHONMALLOC"] = "malloc"
        # abort_on_error: a memory error in the workload must fail it even where the caller did
        # not set it (LSAN_OPTIONS' exitcode also applies to ASan's own errors)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":abort_on_error=1:detect_leaks=1"
                               f":fast_unwind_on_malloc=0:log_path={tmp}/lsan")
        env["LSAN_OPTIONS"] = "exitcode=0"  # leaks are judged below, by their stacks
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp)
        reports = "".join(open(os.path.join(tmp, f)).read() for f in sorted(os.listdir(tmp)))
    if proc.returncode != 0 or re.search(r"ERROR: AddressSanitizer|runtime error:", reports):
        print(reports)
        sys.exit(f"lsan_check: the workload failed (exit code {proc.returncode}); reports above")
    return reports


# A frame of cdrop's extension: Cython's functions, the C kernels, or the module's file.
CDROP_FRAME = re.compile(r"__pyx_|\bcdrop_|/cdrop/_kernels\.")


def cdrop_leaks(reports):
    """The leak records (one per allocation stack) that have a cdrop frame."""
    records = re.split(r"\n(?=(?:Direct|Indirect) leak of)", reports)
    return [r for r in records if re.match(r"(Direct|Indirect) leak of", r)
            and CDROP_FRAME.search(r)]


def main():
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        sys.exit("lsan_check: preload the ASan runtime (see .ci/run)")
    self_test = "--self-test" in sys.argv
    reports = run(SELF_TEST if self_test else WORKLOAD)
    leaks = cdrop_leaks(reports)
    total = len(re.findall(r"(?:Direct|Indirect) leak of", reports))
    print(f"lsan_check: {total} leak records in all, {len(leaks)} with a cdrop frame")
    if self_test:
        if not any("build_info" in r for r in leaks):
            sys.exit("lsan_check --self-test: the planted leak was NOT found; the filter is broken")
        print("lsan_check --self-test: the planted leak was found")
        return
    if leaks:
        print("\n\n".join(leaks))
        sys.exit("lsan_check: cdrop leaks memory (records above)")


if __name__ == "__main__":
    main()
