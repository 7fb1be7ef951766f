"""Is the GIL released?  Two Python threads, each running one large single-threaded dropout.

    pytest bench/test_gil.py                     # timings (the 4M and 16M sizes are `large`)
    pytest bench/test_gil.py --benchmark-disable # run each case once, untimed (CI smoke test)

One benchmark group per size, four cases side by side:

    1 call                  one thread makes one call                   (the unit of work)
    2 calls, 1 thread       one thread makes two calls back to back     (2x the work, serially)
    2 calls, 2 threads      two threads make one call each, at the same time
    2 calls, 1 thread, OMP  as "2 calls, 1 thread", but each call on 2 OpenMP threads

The first three calls have ``num_threads=1``, so OpenMP adds no parallelism of its own: any
speed-up of "2 threads" over "1 thread" comes from the two Python threads running the kernels
at once, which they can only do if the GIL is released.  With the GIL held, "2 calls,
2 threads" would take as long as "2 calls, 1 thread"; fully released, on two idle cores with
enough memory bandwidth, as long as "1 call".  The last case is the reference for what two
cores give this work without any Python threads (and so without the GIL): memory bandwidth
shared by the cores (each call reads and writes 8 bytes per element), or other processes on a
shared machine, limit both parallel cases alike, and "2 calls, 2 threads" close to "OMP"
means the GIL costs nothing on top.  (Where other processes hold the cores, OpenMP's
busy-waiting team can make "OMP" much slower than serial: ~12 ms per two-thread call of any
size was seen on the shared development machine, against ~1 ms for a 4M call on one thread.)

Harness: the same two persistent worker threads run every case, started and stopped by a pair
of barriers, so all cases pay the same dispatch overhead (the idle worker of the
single-thread cases just passes the barriers).  The calls write into a preallocated ``out=``
from stable inputs, so no round sees data that an earlier round changed, and nothing is
allocated inside the timed region.  No assertion on time: this is a benchmark, not a test.
The handoff (two barrier crossings, 50-100 us on the development machine) is larger than a
262,144-element call (~30 us), so that size is there for the untimed CI smoke run; the 4M and
16M sizes are the measurement.  tests/test_concurrency.py checks the same property without a
clock (another Python thread runs while a kernel is half-way through its array).
"""
import threading

import numpy as np
import pytest

import cdrop

SIZES = [
    262_144,
    pytest.param(4_194_304, marks=pytest.mark.large),
    pytest.param(16_777_216, marks=pytest.mark.large),
]
# case -> (jobs of worker 0, jobs of worker 1); a job is (input index, num_threads)
CASES = {
    "1 call": (((0, 1),), ()),
    "2 calls, 1 thread": (((0, 1), (1, 1)), ()),
    "2 calls, 2 threads": (((0, 1),), ((1, 1),)),
    "2 calls, 1 thread, OMP": (((0, 2), (1, 2)), ()),
}
TIMEOUT = 120  # seconds; a guard against a hang, not a time limit


class _WorkerPair:
    """Two threads that run ``jobs[0]`` and ``jobs[1]`` (lists of callables) once per round."""

    def __init__(self):
        self.jobs = ((), ())
        self._start = threading.Barrier(3)
        self._end = threading.Barrier(3)
        self._stop = False
        self._errors = []
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True)
                         for i in range(2)]
        for t in self._threads:
            t.start()

    def _loop(self, i):
        while True:
            self._start.wait(TIMEOUT)
            if self._stop:
                return
            try:
                for job in self.jobs[i]:
                    job()
            except Exception as exc:  # reported by the main thread after the round
                self._errors.append(exc)
            finally:
                self._end.wait(TIMEOUT)

    def run_round(self):
        self._start.wait(TIMEOUT)
        self._end.wait(TIMEOUT)
        if self._errors:
            raise self._errors[0]

    def close(self):
        self._stop = True
        self._start.wait(TIMEOUT)
        for t in self._threads:
            t.join(TIMEOUT)


@pytest.fixture(scope="module")
def workers():
    pair = _WorkerPair()
    yield pair
    pair.close()


def _rounds(size):
    # as in test_bench.py: a stable median without making the 16M cases take minutes
    return int(max(7, min(300, 3e7 / size)))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"n={n}")
def test_gil_release(benchmark, workers, size, case):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(size).astype(np.float32) for _ in range(2)]
    outs = [np.empty_like(x) for x in xs]

    def call(i, nt):
        return lambda: cdrop.dropout(xs[i], 0.5, seed=100 + i, out=outs[i], num_threads=nt)

    first, second = CASES[case]
    workers.jobs = ([call(*job) for job in first], [call(*job) for job in second])
    n_calls = len(first) + len(second)
    benchmark.group = f"GIL float32 n={size}"
    benchmark.name = case
    benchmark.extra_info.update(size=size, calls=n_calls, python_threads=1 + bool(second),
                                omp_threads=first[0][1], bytes_moved=n_calls * 2 * size * 4)
    benchmark.pedantic(workers.run_round, rounds=_rounds(size), iterations=1, warmup_rounds=1)
    # the calls did their work (a result check, not a timing one)
    for i, _ in first + second:
        expected = cdrop.dropout(xs[i], 0.5, seed=100 + i, num_threads=1)
        assert np.array_equal(outs[i].view(np.uint32), expected.view(np.uint32))
