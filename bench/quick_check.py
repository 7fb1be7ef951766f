"""Quick check of the core issue's speed targets, as ratios measured in one process.

    python bench/quick_check.py [--rounds 15]

Each case times cdrop and its yardstick alternately (A B A B ...), takes the median of each, and
prints the ratio; absolute times on a shared machine mean little.  Yardsticks:
  * in place: ``np.multiply(x, c, out=x)``, one read and one write of every element, the
    memory-bandwidth floor.  NumPy runs on one thread, so for 2 threads the floor is
    ``cdrop._kernels._scale_inplace`` (``x *= c`` in an OpenMP loop over the same chunks);
  * out of place: ``np.multiply(x, c)``, which allocates its result like cdrop does.
The in-place arrays are reset from a pristine copy between rounds (outside the timed region), so
no round measures an array that repeated dropout has turned into zeros or infinities.
This is a measurement script, not a test: nothing here asserts a time.
"""
import argparse
import statistics
import time
import numpy as np

import cdrop
from cdrop._kernels import _scale_inplace as scale_inplace


def median_pair(fa, fb, rounds, reset=None):
    ta, tb = [], []
    for _ in range(rounds):
        for f, acc in ((fa, ta), (fb, tb)):
            if reset is not None:
                reset()
            t0 = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def small_call(rounds):
    # A 1000-element call is ~1 us: time batches of calls, each on its own fresh copy (512 KiB
    # of copies, restored before every batch: still in L2), so that no call sees an array that
    # earlier calls turned into zeros or infinities.
    batch = 128
    copies = np.ones((batch, 1000), dtype=np.float32)
    rows = list(copies)  # the views made once, outside the timed loops

    def a():
        for row in rows:
            cdrop.dropout(row, 0.5, seed=1, inplace=True)

    def b():
        for row in rows:
            np.multiply(row, 1.0, out=row)

    ta, tb = median_pair(a, b, rounds, reset=lambda: copies.fill(1.0))
    return ta / batch, tb / batch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    cfg = cdrop.show_config()
    print(f"cdrop {cfg['version']}  simd={cfg['simd']}  openmp={cfg['openmp']}  "
          f"max_threads={cfg['max_threads']}")
    rows = []
    for n in (262_144, 4_194_304, 16_777_216):
        src = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        x = src.copy()
        reset = lambda: np.copyto(x, src)  # noqa: E731
        for threads in (1, 2):
            def drop():
                cdrop.dropout(x, 0.5, seed=3, inplace=True, num_threads=threads)

            if threads == 1:
                def floor():
                    np.multiply(x, 2.0, out=x)
                what = "np.multiply(out=x)"
            else:
                def floor():
                    scale_inplace(x, 2.0, threads)
                what = "OpenMP x *= c"
            ta, tb = median_pair(drop, floor, args.rounds, reset)
            rows.append((f"in place f32 n={n:>10,} threads={threads}", ta, tb, what))
        ta, tb = median_pair(lambda: cdrop.dropout(src, 0.5, seed=3, num_threads=1),
                             lambda: np.multiply(src, 2.0), args.rounds)
        rows.append((f"out of place f32 n={n:>10,} threads=1", ta, tb, "np.multiply(x, c)"))
    ta, tb = small_call(args.rounds)
    rows.append(("in place f32 n=     1,000 (whole call)", ta, tb, "np.multiply(out=x)"))
    print(f"{'case':45s} {'cdrop':>10s} {'yardstick':>10s} {'ratio':>6s}")
    for name, ta, tb, what in rows:
        print(f"{name:45s} {ta * 1e6:8.1f}us {tb * 1e6:8.1f}us {ta / tb:6.2f}  vs {what}")


if __name__ == "__main__":
    main()
