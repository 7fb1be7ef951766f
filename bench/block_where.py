"""Where a block of a larger array costs more than an ordinary call (issue 13, item 1).

A block (``global_shape=``, ``start=``) is walked row by row (cdrop/_src/walk_block.c): rows of
2048 elements or more go through the contiguous kernel one at a time, shorter ones get their
keep bytes by stream block and are applied in joined runs.  This script times, in place,
float32, 1 thread, interleaved rounds (medians):

* rows of 256 ... 4096 elements of a C-contiguous chunk of an array 4x as wide, as a ratio to
  ``np.multiply(x, c, out=x)`` on the chunk (the floor);
* a few chunk shapes both as the view ``big[block]`` (against NumPy on the same view, and
  against cdrop's ordinary strided call on it) and as a C-contiguous copy (against the floor).

Run: ``python bench/block_where.py [--rounds 5]``.  Numbers on a shared VM move between runs:
compare the columns of one run.
"""
import argparse
import statistics
import time

import numpy as np

import cdrop


def median_time(f, reps=11):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def interleaved(cases, rounds):
    """{name: median over rounds of each case's median time}, the cases run in turn."""
    res = {name: [] for name in cases}
    for _ in range(rounds):
        for name, f in cases.items():
            res[name].append(median_time(f))
    return {name: statistics.median(v) for name, v in res.items()}


def row_cases(w, c):
    """Rows of w elements of a C-contiguous chunk of an array 4x as wide: floor and block."""
    rows = (1 << 22) // w
    g, s = (rows, 4 * w), (0, w + 3)
    x = np.ones((rows, w), np.float32)
    return {
        "floor": lambda: np.multiply(x, c, out=x),
        "block": lambda: cdrop.dropout(x, 0.3, seed=1, inplace=True, global_shape=g, start=s,
                                       num_threads=1),
    }


def shape_cases(g, s, shp, c):
    """The block of shape shp at s in g: as a view (NumPy, cdrop's strided call, the block
    call) and as a C-contiguous copy (floor, block call)."""
    big = np.ones(g, np.float32)
    v = big[tuple(slice(a, a + n) for a, n in zip(s, shp))]
    xc = np.ascontiguousarray(v)
    return {
        "np_view": lambda: np.multiply(v, c, out=v),
        "plain_view": lambda: cdrop.dropout(v, 0.3, seed=1, inplace=True, num_threads=1),
        "block_view": lambda: cdrop.dropout(v, 0.3, seed=1, inplace=True, global_shape=g,
                                            start=s, num_threads=1),
        "floor": lambda: np.multiply(xc, c, out=xc),
        "block": lambda: cdrop.dropout(xc, 0.3, seed=1, inplace=True, global_shape=g, start=s,
                                       num_threads=1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    c = np.float32(1 / 0.7)
    print("rows of a C-contiguous chunk, global array 4x as wide: block / floor")
    for w in (256, 512, 1024, 2048, 4096):
        m = interleaved(row_cases(w, c), args.rounds)
        print(f"  {w:5d} columns: {m['block'] / m['floor']:.2f}x")
    print("chunk shapes: view (cdrop strided / NumPy, block / NumPy); contiguous copy: block / "
          "floor")
    for g, s, shp in [((8192, 8192), (100, 1000), (4096, 4096)),
                      ((65536, 1024), (0, 512), (16384, 256)),
                      ((2048, 2048, 64), (0, 0, 0), (2048, 1024, 32)),
                      ((1 << 20, 100), (0, 0), (1 << 18, 16))]:
        m = interleaved(shape_cases(g, s, shp, c), args.rounds)
        print(f"  {shp} of {g}: view {m['plain_view'] / m['np_view']:.2f}x / "
              f"{m['block_view'] / m['np_view']:.2f}x; copy {m['block'] / m['floor']:.2f}x")


if __name__ == "__main__":
    main()
