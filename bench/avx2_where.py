"""Where the AVX2 path leaves the floor at DRAM sizes (issue 12, item 6): AVX2, AVX-512 and the
floor, in place, float32 (or float64), interleaved, over sizes in Mi elements.

    python bench/avx2_where.py                          # 2 .. 64 Mi, p = 0.5 and 0.1, 1 thread
    python bench/avx2_where.py --sizes 16 --threads 2 --harness ones

Every round times each case once (avx2, avx512, the floor ``np.multiply(x, c, out=x)``; with 2
threads also cdrop's OpenMP ``x *= c``).  Harnesses:
  report  as bench/report.py: restore x from a pristine standard-normal copy, one untimed call,
          restore again, the timed call;
  ones    as bench/portable_paths.py: x[:] = 1.0, one untimed call, the timed call (no
          restore in between).
The path is selected outside the timed region (set_path takes ~40 us in this guest).
Prints, per size and p, each case's median time over the floor's (1 thread: np.multiply; the
spread is the 25th-75th percentile of the per-round ratios) and the floor's GB/s (one read and
one write per element); --rows adds every round.  A report, not a test: nothing here asserts a time.
"""
import argparse
import statistics
import time

import numpy as np

import cdrop
from cdrop import _kernels


def quartiles(v):
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], q[2]


def run(n, p, threads, rounds, harness, paths, dtype):
    pristine = np.random.default_rng(0).standard_normal(n, dtype=dtype)
    x = pristine.copy()
    c = x.dtype.type(1.0)
    scale = _kernels._scale_inplace
    before = _kernels.get_path()

    def restore():
        if harness == "report":
            np.copyto(x, pristine)
        else:
            x[:] = 1.0

    def call():
        cdrop.dropout(x, p, inplace=True, seed=1, num_threads=threads)

    # (name, call, path); set_path is untimed: it takes ~40 us here (CPUID in a VM)
    cases = [(path, call, path) for path in paths]
    cases.append(("floor", lambda: np.multiply(x, c, out=x), before))
    if threads > 1 and x.dtype == np.float32:  # the OpenMP floor is float32 only
        cases.append(("omp", lambda: scale(x, 1.0, threads), before))
    res = {k: [] for k, _, _ in cases}
    try:
        for r in range(rounds + 1):
            for name, f, path in cases:
                _kernels.set_path(path)
                restore()
                f()
                if harness == "report":
                    restore()
                t0 = time.perf_counter()
                f()
                t = time.perf_counter() - t0
                if r:  # round 0 is a warm-up
                    res[name].append(t)
    finally:
        _kernels.set_path(before)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2,4,8,16,32,64",
                    help="Mi elements (2**20), comma-separated; 0.25 is 262,144")
    ap.add_argument("--p", default="0.5,0.1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--harness", default="report", choices=("report", "ones"))
    ap.add_argument("--paths", default="avx2,avx512")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--rows", action="store_true",
                    help="also print every round: the floor's GB/s and each case's ratio")
    args = ap.parse_args()
    paths = args.paths.split(",")
    print(f"# harness={args.harness} threads={args.threads} rounds={args.rounds} {args.dtype} "
          f"paths={paths}; median x floor [25-75% of per-round ratios]", flush=True)
    for mi in (float(s) for s in args.sizes.split(",")):
        n = int(mi * (1 << 20))
        for p in (float(s) for s in args.p.split(",")):
            res = run(n, p, args.threads, args.rounds, args.harness, paths, np.dtype(args.dtype))
            fl = statistics.median(res["floor"])
            cells = []
            for k, v in res.items():
                if k == "floor":
                    continue
                lo, hi = quartiles([a / b for a, b in zip(v, res["floor"])])
                cells.append(f"{k} {statistics.median(v) / fl:.2f}x [{lo:.2f}-{hi:.2f}]")
            moved = 2 * np.dtype(args.dtype).itemsize * n  # bytes: one read, one write
            if args.rows:
                for r, f in enumerate(res["floor"]):
                    print(f"  round {r}: floor {moved / f / 1e9:5.1f} GB/s; " + "; ".join(
                        f"{k} {v[r] / f:.2f}x" for k, v in res.items() if k != "floor"))
            gbs = moved / fl / 1e9
            print(f"{mi:5g}Mi p={p:g} t={args.threads}: floor {fl * 1e3:7.3f} ms "
                  f"({gbs:5.1f} GB/s); " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
