"""Half precision in place on one thread, per kernel path: float16 and bfloat16 beside float32.

    python bench/half_paths.py          # needs ml_dtypes; about 20 s

Prints a Markdown table of medians of interleaved rounds: every round times each (path, dtype)
once, after an untimed call on the same restored array, so that all cells share the machine's
state of the moment.  docs/performance.md quotes it; `bench/report.py` measures the `auto` path
only.  A report, not a test: nothing here asserts a time.
"""
import statistics
import time

import ml_dtypes
import numpy as np

import cdrop
from cdrop import _kernels

PATHS = ("avx512", "avx2", "portable", "scalar")
DTYPES = ("float32", "float16", "bfloat16")
SIZES = (1 << 22, 1 << 24)
ROUNDS = 15


def main():
    times = {}
    for n in SIZES:
        src = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        pristine = {"float32": src, "float16": src.astype(np.float16),
                    "bfloat16": src.astype(ml_dtypes.bfloat16)}
        arrays = {d: a.copy() for d, a in pristine.items()}
        for _ in range(ROUNDS):
            for path in PATHS:
                _kernels.set_path(path)  # a path the CPU lacks falls back (see the header)
                for d, x in arrays.items():
                    for timed in (False, True):
                        np.copyto(x, pristine[d])
                        t = time.perf_counter()
                        cdrop.dropout(x, 0.5, seed=1, inplace=True, num_threads=1)
                        if timed:
                            times.setdefault((path, n, d), []).append(time.perf_counter() - t)
    _kernels.set_path("auto")
    print("| path | elements | float32 | float16 | bfloat16 | float16 / float32 "
          "| bfloat16 / float32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in PATHS:
        _kernels.set_path(path)
        name = _kernels.get_path() + ("" if _kernels.get_path() == path else f" (for {path})")
        for n in SIZES:
            m = {d: statistics.median(times[(path, n, d)]) for d in DTYPES}
            print(f"| {name} | {n:,} | " + " | ".join(f"{m[d] * 1e3:.2f} ms" for d in DTYPES)
                  + f" | {m['float16'] / m['float32']:.2f}x"
                  + f" | {m['bfloat16'] / m['float32']:.2f}x |")
    _kernels.set_path("auto")


if __name__ == "__main__":
    main()
