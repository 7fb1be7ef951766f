"""``cdrop`` or ``python -m cdrop``: print the build configuration and a short speed comparison.

The comparison runs cdrop and the textbook NumPy dropout alternately on the same float32 data
(a few sizes, p = 0.5, median of interleaved rounds) and prints times and the speed-up.  It
takes a few seconds.  ``cdrop --config`` prints only the configuration.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import cdrop


def textbook_dropout(x, p):
    """Dropout as tutorials write it: a float64 uniform mask, a multiply and a divide."""
    keep_prob = 1.0 - p
    mask = np.random.rand(*x.shape) < keep_prob
    out = x * mask
    out /= keep_prob
    return out


def _median_times(funcs, rounds, setups=None):
    """Median time of each of `funcs`, interleaved; setups[i] (if any) runs untimed before funcs[i]."""
    times = [[] for _ in funcs]
    setups = setups or [None] * len(funcs)
    for _ in range(rounds):
        for f, setup, acc in zip(funcs, setups, times):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def compare(sizes=(16_384, 1_048_576, 16_777_216), p=0.5, budget=3.0, file=sys.stdout):
    """Print a table comparing cdrop with the textbook NumPy dropout."""
    print(f"{'elements':>12s} {'numpy textbook':>15s} {'cdrop':>10s} {'cdrop in place':>15s} "
          f"{'speed-up':>9s}", file=file)
    per_size = budget / len(sizes)
    for n in sizes:
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        work = x.copy()
        funcs = [
            lambda: textbook_dropout(x, p),
            lambda: cdrop.dropout(x, p),
            # in place on a scratch array, restored (untimed) before every call so that no
            # call sees an array that earlier calls zeroed
            lambda: cdrop.dropout(work, p, inplace=True),
        ]
        setups = [None, None, lambda: np.copyto(work, x)]
        t0 = time.perf_counter()
        _median_times(funcs, 1, setups)
        one = time.perf_counter() - t0
        rounds = int(max(3, min(200, per_size / max(one, 1e-9))))
        tn, tc, ti = _median_times(funcs, rounds, setups)
        print(f"{n:>12,d} {tn * 1e3:>12.3f} ms {tc * 1e3:>7.3f} ms {ti * 1e3:>12.3f} ms "
              f"{tn / tc:>8.1f}x", file=file)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="cdrop", description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="store_true", help="print the configuration only")
    args = ap.parse_args(argv)
    print("cdrop configuration:")
    for key, value in cdrop.show_config().items():
        print(f"  {key:15s} {value}")
    if args.config:
        return 0
    print()
    print("float32, p = 0.5, median of interleaved rounds (speed-up: textbook / cdrop out of place)")
    compare()
    return 0


if __name__ == "__main__":
    sys.exit(main())
