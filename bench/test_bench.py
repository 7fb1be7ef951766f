"""cdrop against NumPy and PyTorch, side by side, with pytest-benchmark.

    pytest bench/                          # everything (about 10 minutes on 2 cores)
    pytest bench/ -m "not large"           # without the 4M and 16M element sizes
    pytest bench/ --benchmark-disable      # run each case once, no timing (CI smoke test)

One benchmark group per (dtype, size, threads); inside a group, every implementation of
bench/impls.py at p = 0.1 and 0.5, the floors included.  Implementations whose library is not
installed (torch) are skipped with the reason.  In-place implementations get a fresh copy of the
same data before every round (`benchmark.pedantic` with a `setup`), so no round measures an
array that earlier rounds turned into zeros or infinities; the copy is outside the timed call.
`python bench/report.py` runs the same comparison with interleaved rounds and writes a table and
a plot.
"""
import numpy as np
import pytest
from conftest import ALL_CORES

from impls import IMPLEMENTATIONS, IN_PLACE, Unavailable

SIZES = [
    1_000,
    16_384,
    262_144,
    pytest.param(4_194_304, marks=pytest.mark.large),
    pytest.param(16_777_216, marks=pytest.mark.large),
]
THREADS = sorted({1, ALL_CORES})


def _rounds(size):
    # enough rounds for a stable median without making the 16M cases take minutes
    return int(max(7, min(300, 3e7 / size)))


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"threads={t}")
@pytest.mark.parametrize("p", [0.1, 0.5], ids=lambda p: f"p={p}")
@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
def test_dropout(benchmark, impl, dtype, size, p, threads):
    factory, _ = IMPLEMENTATIONS[impl]
    src = np.random.default_rng(0).standard_normal(size).astype(dtype)
    x = src.copy()
    try:
        run = factory(x, p, threads)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.group = f"{dtype} n={size} threads={threads}"
    benchmark.name = f"{impl} p={p}"
    benchmark.extra_info.update(impl=impl, dtype=dtype, size=size, p=p, threads=threads,
                                bytes_moved=2 * size * np.dtype(dtype).itemsize)
    if impl in IN_PLACE:
        benchmark.pedantic(run, setup=lambda: np.copyto(x, src), rounds=_rounds(size),
                           iterations=1, warmup_rounds=1)
    else:
        result = benchmark(run)
        assert result is None or result.shape in (x.shape, ((size + 7) // 8,))
