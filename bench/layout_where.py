"""Where the layouts stand: cdrop on non-contiguous arrays against NumPy's multiply on the same
array (issue 12, item 3).

Each row is one layout; the columns are cdrop in place and out of place, each as a ratio to
``np.multiply`` on the same array (``out=a`` for in place, a new array for out of place), on 1
and 2 threads.  Timings are medians of interleaved rounds (cdrop, NumPy, cdrop, NumPy, ...), so
that the load of a shared machine hits both alike; the ratios are the result, not the times.
Standalone on purpose (bench/report.py has its own layout rows).

    python bench/layout_where.py [--rounds N] [--quick] [--only SUBSTRING]
"""

import argparse
import statistics
import time

import numpy as np

import cdrop

P = 0.5
C = np.float32(2.0)


def layouts(quick):
    """(name, factory) pairs; a factory returns a fresh array of the layout."""
    out = []
    sizes = (2048,) if quick else (2048, 4096)
    for n in sizes:
        for dt in (np.float32, np.float64):
            tag = f"{n}x{n} {np.dtype(dt).name}"
            out.append((f"F {tag}", lambda n=n, dt=dt: np.asfortranarray(np.ones((n, n), dt))))
            out.append((f"C.T[::2] {tag}",
                        lambda n=n, dt=dt: np.ones((n, 2 * n), dt).T[::2]))
            out.append((f"C[:, ::2] {tag}",
                        lambda n=n, dt=dt: np.ones((n, 2 * n), dt)[:, ::2]))
    m = 256 if quick else 512
    for dt in (np.float32, np.float64):
        tag = np.dtype(dt).name
        out.append((f"3-D ({m},{m},16).transpose(2,1,0) {tag}",
                    lambda dt=dt: np.ones((m, m, 16), dt).transpose(2, 1, 0)))
        out.append((f"3-D F ({m},{m},16) {tag}",
                    lambda dt=dt: np.asfortranarray(np.ones((m, m, 16), dt))))
    out.append(("(16, 2**20) F float32",
                lambda: np.asfortranarray(np.ones((16, 2**20), np.float32))))
    out.append(("(2**20, 8, 2).T(0,2,1) float32",
                lambda: np.ones((2**20, 8, 2), np.float32).transpose(0, 2, 1)))
    out.append(("(2**19, 2, 16).T(0,2,1) float32",
                lambda: np.ones((2**19, 2, 16), np.float32).transpose(0, 2, 1)))
    out.append(("(2**18, 8, 8).T(0,2,1) float32",
                lambda: np.ones((2**18, 8, 8), np.float32).transpose(0, 2, 1)))
    out.append(("(2**18, 8, 8).T(0,2,1) float64",
                lambda: np.ones((2**18, 8, 8), np.float64).transpose(0, 2, 1)))
    return out


def medians(funcs, rounds):
    """Median seconds of each zero-argument callable, over interleaved rounds."""
    times = [[] for _ in funcs]
    for f in funcs:
        f()  # warm up: page faults, first-touch
    for _ in range(rounds):
        for i, f in enumerate(funcs):
            t = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="2048 only, smaller 3-D arrays")
    ap.add_argument("--only", default="", help="rows whose name contains this")
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"cdrop {cdrop.__version__}, kernel {cdrop.show_config()['simd']}, p={P}")
    head = "".join(f"  in/np {t}t  out/np {t}t" for t in threads)
    print(f"{'layout':44s}{head}")
    for name, make in layouts(args.quick):
        if args.only not in name:
            continue
        a = make()
        row = []
        for t in threads:
            def cd_in(a=a, t=t):
                cdrop.dropout(a, P, inplace=True, seed=1, num_threads=t)

            def cd_out(a=a, t=t):
                cdrop.dropout(a, P, seed=1, num_threads=t)

            def np_in(a=a):
                np.multiply(a, C, out=a)

            def np_out(a=a):
                np.multiply(a, C)

            ci, ni, co, no = medians([cd_in, np_in, cd_out, np_out], args.rounds)
            row.append(f"  {ci / ni:8.2f}  {co / no:9.2f}")
            a[...] = 1  # in place dropout and multiply leave zeros and powers of two
        print(f"{name:44s}{''.join(row)}", flush=True)


if __name__ == "__main__":
    main()
