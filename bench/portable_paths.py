"""The portable path against AVX2 (and the scalar reference path), one thread, per dtype.

    python bench/portable_paths.py                 # float32; about 10 s
    python bench/portable_paths.py float64 --paths portable,scalar

For each size (262,144 and 4,194,304 elements), in place and out of place, p = 0.5 (the exact
keep test) and p = 0.1 (ties settled by the hash): every round times each path once, then the
floor (``np.multiply(x, c, out=x)``, or ``out=y`` out of place), each timing the mean of a few
calls after an untimed one; prints the medians as ratios to the floor's median, and the first
path's time over the second's.  Issue 12's target: portable at most 1.5x AVX2's time.  A
report, not a test: nothing here asserts a time.
"""
import argparse
import statistics
import time

import numpy as np

import cdrop
from cdrop import _kernels


def timed(f, reps):
    f()
    t = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dtype", nargs="?", default="float32",
                    help="float32, float64, float16 or bfloat16 (needs ml_dtypes)")
    ap.add_argument("--paths", default="portable,avx2,scalar",
                    help="comma-separated kernel paths (a path the CPU lacks falls back)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    if args.dtype == "bfloat16":
        import ml_dtypes

        dt = np.dtype(ml_dtypes.bfloat16)
    else:
        dt = np.dtype(args.dtype)
    paths = args.paths.split(",")
    for n in (1 << 18, 1 << 22):
        x, y = np.ones(n, dt), np.empty(n, dt)
        c = dt.type(1.0)
        reps = max(1, 4_000_000 // n)  # values grow by 1/(1-p) per call: 15 calls stay finite
        for inplace in (True, False):
            out = x if inplace else y
            for p in (0.5, 0.1):
                res = {k: [] for k in paths + ["floor"]}
                for _ in range(args.rounds):
                    for path in paths:
                        _kernels.set_path(path)
                        x[:] = 1.0
                        res[path].append(timed(
                            lambda x=x, p=p, out=out: cdrop.dropout(x, p, seed=1, out=out,
                                                                    num_threads=1), reps))
                    res["floor"].append(timed(lambda x=x, c=c, out=out: np.multiply(x, c, out=out),
                                              reps))
                _kernels.set_path("auto")
                med = {k: statistics.median(v) for k, v in res.items()}
                cells = " ".join(f"{k} {med[k] / med['floor']:.2f}x" for k in paths)
                first = f"; {paths[0]}/{paths[1]} {med[paths[0]] / med[paths[1]]:.2f}" \
                    if len(paths) > 1 else ""
                mode = "in place" if inplace else "out of place"
                print(f"{dt.name} {n:,} {mode} p={p}: {cells}{first}", flush=True)


if __name__ == "__main__":
    main()
