"""Several Python threads calling cdrop at once, with OpenMP threads inside each call.

Results, the package seed stream, layers shared or created by threads, the thread-count setting
changed mid-flight and the GIL's release (one caller at a time: test_threads.py).

* ``test_concurrent_calls_from_python_threads``, ``test_concurrent_masks_from_python_threads``:
  a thread pool of dropout / dropout_mask calls, each bit-identical to the same call on one
  thread; ``test_seed_none_from_several_threads_gives_distinct_seeds`` and
  ``test_layers_created_concurrently_get_distinct_seeds``: seed=None and new layers, in threads.
* ``test_threads_sharing_a_layer_get_distinct_call_numbers``: one layer called from 4 threads
  uses each call number once.
* ``test_overlapping_calls_match_serial``: 8 Python threads meet at a ``threading.Barrier``
  before EVERY call, so the calls really start together, and each call asks for 2 OpenMP threads
  on an array large enough that OpenMP really runs 2 (up to 16 OS threads in the kernels at
  once).  Every entry point is covered: dropout out of place / in place / ``out=`` / strided view
  / offset, dropout_mask bool and packed, Dropout forward + backward.  Every result must be
  bit-identical to the same call made serially on one thread.
* ``test_seed_stream_with_concurrent_callers``: after ``manual_seed(s)``, 8 threads each make K
  calls with seed=None through six different entry points, mixed with calls that must NOT take
  a seed (failing calls, training=False, eval-mode layers).  Every mask is traced back to the
  index j of the seed ``derive(s, j)`` it was drawn with: the multiset of indices must be
  {0, ..., 8K-1}, each once (no seed handed out twice, none skipped), as in a serial run, and the
  next call must get index 8K.
* ``test_set_num_threads_while_calls_are_in_flight``: one thread keeps changing the default
  thread count while others call with num_threads=None: no crash, same results.
* ``test_thread_pool_mixed_tasks``: a concurrent.futures pool running a random (seeded) mix of
  entry points, dtypes and memory layouts (F order, transposed, reversed, stepped, misaligned),
  so the contiguous, strided, banded and copy paths all run concurrently.
* ``test_gil_is_released_during_the_kernel``: without any clock, a second Python thread must be
  able to run while the kernel is writing, which it cannot if the GIL is held.

There is no statistics here: everything is compared bit for bit, so there is no false-alarm rate
except in the GIL test, whose (scheduling) false-alarm rate is discussed there.
"""
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import pytest

import cdrop
import reference
from cdrop import _kernels
from helpers import assert_bits_equal, digest

N_WORKERS = 8
# Over CDROP_MIN_PARALLEL (65,536) and at least 2 * CDROP_MIN_PER_THREAD (32,768): every call
# below with num_threads=2 really runs two OpenMP threads (checked in _assert_parallel_size).
N = 3 * 2**16 + 5
TIMEOUT = 120  # seconds; only so that a deadlock fails the test instead of hanging CI


def _assert_parallel_size(n):
    cfg = cdrop.show_config()
    assert n >= cfg["min_parallel"] and n >= 2 * cfg["min_per_thread"], (
        "the arrays of this test are too small for the kernels to use 2 OpenMP threads; "
        f"raise N (config: {cfg})"
    )


def _assert_same(got, expected, msg):
    """Bit-exact equality of float results, exact equality (and dtype) of masks."""
    if np.asarray(expected).dtype.kind == "f":
        assert_bits_equal(got, expected, msg)
    else:
        assert got.dtype == expected.dtype and got.shape == expected.shape, msg
        assert np.array_equal(got, expected), msg


def _packed_keep(y):
    """The keep mask of an array of nonzero inputs after dropout, as packed bytes."""
    return np.packbits(np.asarray(y).ravel() != 0, bitorder="little").tobytes()


def _run_workers(n, work):
    """Run work(w) for w in range(n) in n threads at once; return the results in order."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(work, w) for w in range(n)]
        return [f.result(timeout=TIMEOUT) for f in futures]


# ---------------------------------------------------------------------------------------------
# A thread pool of plain calls; seeds and layers from several threads
# ---------------------------------------------------------------------------------------------
N_POOL = 2**20


def test_concurrent_calls_from_python_threads():
    n_workers, n_calls = 8, 20
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(N_POOL).astype(np.float32 if w % 2 else np.float64)
              for w in range(n_workers)]
    seeds = [[1000 * w + c for c in range(n_calls)] for w in range(n_workers)]
    # serial results, one thread each
    serial = [[digest(cdrop.dropout(inputs[w], 0.5, seed=s, num_threads=1)) for s in seeds[w]]
              for w in range(n_workers)]

    def work(w):
        got = []
        for c, s in enumerate(seeds[w]):
            mode = c % 3
            if mode == 0:
                y = cdrop.dropout(inputs[w], 0.5, seed=s, num_threads=2)
            elif mode == 1:
                y = np.empty_like(inputs[w])
                cdrop.dropout(inputs[w], 0.5, seed=s, num_threads=2, out=y)
            else:
                y = inputs[w].copy()
                cdrop.dropout(y, 0.5, seed=s, num_threads=2, inplace=True)
            got.append(digest(y))
        return got

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        results = list(pool.map(work, range(n_workers)))
    assert results == serial
    # the serial digests are all different (distinct seeds), so the comparison has teeth
    assert len({d for row in serial for d in row}) == n_workers * n_calls


def test_concurrent_masks_from_python_threads():
    def work(w):
        return [cdrop.dropout_mask(N_POOL + 3, 0.3, seed=w, offset=c, packed=bool(c % 2),
                                   num_threads=2).tobytes() for c in range(6)]

    expected = [[cdrop.dropout_mask(N_POOL + 3, 0.3, seed=w, offset=c, packed=bool(c % 2),
                                    num_threads=1).tobytes() for c in range(6)]
                for w in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(work, range(6))) == expected


def test_seed_none_from_several_threads_gives_distinct_seeds():
    base, n_workers, n_calls, n = 777, 8, 40, 256
    cdrop.manual_seed(base)

    def work(_):
        return [cdrop.dropout_mask(n, 0.5, seed=None, packed=True).tobytes()
                for _ in range(n_calls)]

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        masks = [m for row in pool.map(work, range(n_workers)) for m in row]
    total = n_workers * n_calls
    assert len(set(masks)) == total, "two calls received the same seed"
    # and they are exactly the seeds derive(base, 0 .. total-1), each used once
    expected = {cdrop.dropout_mask(n, 0.5, seed=reference.derive(base, i), packed=True).tobytes()
                for i in range(total)}
    assert set(masks) == expected


def test_layers_created_concurrently_get_distinct_seeds():
    cdrop.manual_seed(31)
    x = np.ones(4096)

    def work(_):
        return [cdrop.Dropout(0.5)(x).tobytes() for _ in range(25)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        outs = [o for row in pool.map(work, range(4)) for o in row]
    assert len(set(outs)) == 100


def test_threads_sharing_a_layer_get_distinct_call_numbers():
    # With the call number read before the kernel and incremented after it, threads sharing a
    # layer reused call numbers (186 distinct masks of 200).
    seed, threads, calls = 99, 4, 50
    layer = cdrop.Dropout(0.5, seed=seed)
    x = np.ones(2**17, np.float32)  # long enough for the calls to overlap without the lock
    seen = []
    barrier = threading.Barrier(threads)

    def work():
        barrier.wait()
        for _ in range(calls):
            y = layer(x)
            seen.append((y != 0).tobytes())

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    expected = {cdrop.dropout_mask(x.size, 0.5, seed=_kernels.derive(seed, k)).tobytes()
                for k in range(threads * calls)}
    assert len(seen) == threads * calls
    assert set(seen) == expected  # each call number 0 .. 199 used exactly once


# ---------------------------------------------------------------------------------------------
# Every entry point, 8 threads in lock step, OpenMP inside
# ---------------------------------------------------------------------------------------------
def _operations(w, r):
    """The calls thread w makes in round r, as (name, fn(num_threads) -> result) pairs.

    Inputs are built from (w, r) alone, so the serial run and the concurrent run see the same
    data; the in-place calls copy their input inside fn (each run writes its own copy).
    """
    rng = np.random.default_rng([w, r])
    x32 = rng.standard_normal(N).astype(np.float32)
    x64 = rng.standard_normal(N)
    x2d = rng.standard_normal((N // 300, 600)).astype(np.float32)  # 393,000 elements
    s = 10_000 * r + 100 * w  # distinct seeds for every (w, r, call)

    def out_of_place(nt):
        return cdrop.dropout(x32, 0.3, seed=s + 1, num_threads=nt)

    def inplace(nt):
        z = x64.copy()
        assert cdrop.dropout(z, 0.6, seed=s + 2, inplace=True, num_threads=nt) is z
        return z

    def out_arg(nt):
        out = np.full_like(x64, np.nan)
        assert cdrop.dropout(x64, 0.5, seed=s + 3, out=out, num_threads=nt) is out
        return out

    def strided_view(nt):
        # rows closer than columns (a transpose) and a stepped slice: the banded and strided
        # kernels, not the contiguous one
        return cdrop.dropout(x2d.T[::2], 0.5, seed=s + 4, offset=7, num_threads=nt)

    def strided_inplace(nt):
        z = np.asfortranarray(x2d)
        cdrop.dropout(z[:, 1:], 0.25, seed=s + 5, inplace=True, num_threads=nt)
        return z

    def mask_bool(nt):
        return cdrop.dropout_mask((N // 5, 5), 0.4, seed=s + 6, offset=3, num_threads=nt)

    def mask_packed(nt):
        return cdrop.dropout_mask(N + 3, 0.4, seed=s + 7, packed=True, num_threads=nt)

    def layer(nt):
        # Dropout has no num_threads argument: it uses the default, which the test sets to 1
        # for the serial run and 2 for the concurrent one.  Forward, backward, forward again
        # (a new mask), backward.
        lay = cdrop.Dropout(0.5, seed=s + 8)
        y1 = lay(x32)
        g1 = lay.backward(x32[::-1])
        y2 = lay(x32)
        g2 = lay.backward(np.ones_like(x32))
        return np.stack([y1, g1, y2, g2])

    return [("out_of_place", out_of_place), ("inplace", inplace), ("out", out_arg),
            ("strided_view", strided_view), ("strided_inplace", strided_inplace),
            ("mask_bool", mask_bool), ("mask_packed", mask_packed), ("layer", layer)]


def test_overlapping_calls_match_serial():
    _assert_parallel_size(N)
    rounds = 2

    # Serial: one Python thread, one OpenMP thread (the layer takes the default thread count).
    cdrop.set_num_threads(1)
    serial = [[[fn(1) for _, fn in _operations(w, r)] for r in range(rounds)]
              for w in range(N_WORKERS)]
    cdrop.set_num_threads(2)

    barrier = threading.Barrier(N_WORKERS)

    def work(w):
        got = []
        for r in range(rounds):
            row = []
            for _, fn in _operations(w, r):
                barrier.wait(timeout=TIMEOUT)  # all 8 threads enter this call together
                row.append(fn(2))
            got.append(row)
        return got

    concurrent = _run_workers(N_WORKERS, work)

    names = [name for name, _ in _operations(0, 0)]
    for w in range(N_WORKERS):
        for r in range(rounds):
            for name, got, expected in zip(names, concurrent[w][r], serial[w][r]):
                _assert_same(got, expected, f"thread {w}, round {r}, {name}")
    # Teeth: the calls of different threads and rounds give different results (distinct seeds
    # and inputs), so a mix-up between threads could not go unnoticed.
    for i, name in enumerate(names):
        digests = {serial[w][r][i].tobytes() for w in range(N_WORKERS) for r in range(rounds)}
        assert len(digests) == N_WORKERS * rounds, name


# ---------------------------------------------------------------------------------------------
# The package seed stream (seed=None) under concurrent callers
# ---------------------------------------------------------------------------------------------
P_STREAM = 0.5


def _seed_none_call(kind, ones32, ones64):
    """One call that takes its seed from the package stream; returns (family, packed keep mask).

    The inputs are all ones, so ``y != 0`` is exactly the keep mask.  "fn": the mask of the seed
    handed out; "layer": a Dropout(seed=None) layer, whose first mask is drawn with
    ``derive(layer_seed, 0)`` (docs/rng.md, section 7).
    """
    if kind == 0:
        return "fn", _packed_keep(cdrop.dropout(ones32, P_STREAM, num_threads=2))
    if kind == 1:
        out = np.empty_like(ones64)
        cdrop.dropout(ones64, P_STREAM, out=out, num_threads=2)
        return "fn", _packed_keep(out)
    if kind == 2:
        z = ones32.copy()
        cdrop.dropout(z, P_STREAM, inplace=True, num_threads=2)
        return "fn", _packed_keep(z)
    if kind == 3:
        return "fn", _packed_keep(cdrop.dropout_mask(N, P_STREAM, seed=None, num_threads=2))
    if kind == 4:
        return "fn", cdrop.dropout_mask(N, P_STREAM, seed=None, packed=True,
                                        num_threads=2).tobytes()
    layer = cdrop.Dropout(P_STREAM)  # takes one seed
    return "layer", _packed_keep(layer(ones32))


def _calls_that_take_no_seed(ones32):
    """Calls with seed=None that must not take a seed from the stream (docs: validation comes
    first; training=False and evaluation mode consume no seed)."""
    with pytest.raises(ValueError):
        cdrop.dropout(ones32, 1.5)
    with pytest.raises(TypeError):
        cdrop.dropout(ones32.astype(np.int32))
    with pytest.raises(ValueError):
        cdrop.dropout(ones32, 0.5, out=np.empty(3, np.float32))
    with pytest.raises(ValueError):
        cdrop.dropout_mask(-1, 0.5, seed=None)
    with pytest.raises(ValueError):
        cdrop.dropout_mask(N, 0.5, seed=None, num_threads=0)
    with pytest.raises(ValueError):
        cdrop.Dropout(2.0)
    assert cdrop.dropout(ones32, 0.5, training=False) is ones32
    cdrop.Dropout(0.5, seed=3).eval()(ones32)


def test_seed_stream_with_concurrent_callers():
    _assert_parallel_size(N)
    base, k_calls = 20240613, 12
    total = N_WORKERS * k_calls
    ones32 = np.ones(N, np.float32)
    ones64 = np.ones(N, np.float64)

    # Which seed index j made a given mask: derive(base, j) for the functions, and
    # derive(derive(base, j), 0) for the first forward of a layer that took seed j.
    index = {}
    for j in range(total + 1):
        seed_j = reference.derive(base, j)
        fn_mask = cdrop.dropout_mask(N, P_STREAM, seed=seed_j, packed=True).tobytes()
        layer_mask = cdrop.dropout_mask(N, P_STREAM, seed=reference.derive(seed_j, 0),
                                        packed=True).tobytes()
        index[("fn", fn_mask)] = j
        index[("layer", layer_mask)] = j
    assert len(index) == 2 * (total + 1)  # all different: the lookup is unambiguous

    def kinds(w):
        return [(w + c) % 6 for c in range(k_calls)]  # every thread uses every entry point

    def lookup(result):
        assert result in index, "a mask that no seed derive(base, 0 .. total) gives"
        return index[result]

    # Serial run: the seeds are handed out in call order, each once.
    cdrop.manual_seed(base)
    serial = []
    for w in range(N_WORKERS):
        for kind in kinds(w):
            _calls_that_take_no_seed(ones32)
            serial.append(lookup(_seed_none_call(kind, ones32, ones64)))
    assert serial == list(range(total))

    # Concurrent run: the same calls from 8 threads that start every call together.
    cdrop.manual_seed(base)
    barrier = threading.Barrier(N_WORKERS)

    def work(w):
        got = []
        for kind in kinds(w):
            barrier.wait(timeout=TIMEOUT)
            _calls_that_take_no_seed(ones32)
            got.append(lookup(_seed_none_call(kind, ones32, ones64)))
        return got

    per_thread = _run_workers(N_WORKERS, work)
    got = [j for row in per_thread for j in row]
    # The multiset of seed indices equals the serial run's: each of 0 .. total-1 exactly once.
    duplicated = sorted(j for j, c in Counter(got).items() if c > 1)
    missing = sorted(set(range(total)) - set(got))
    assert Counter(got) == Counter(serial), f"handed out twice: {duplicated}; skipped: {missing}"
    # Each thread saw its seeds in increasing order (the stream is a counter under a lock).
    for row in per_thread:
        assert row == sorted(row)
    # ... and the stream continues at exactly `total`: nothing was consumed on the side.
    nxt = cdrop.dropout_mask(N, P_STREAM, seed=None, packed=True).tobytes()
    assert index[("fn", nxt)] == total


# ---------------------------------------------------------------------------------------------
# set_num_threads while calls are running
# ---------------------------------------------------------------------------------------------
def test_set_num_threads_while_calls_are_in_flight():
    _assert_parallel_size(N)
    n_callers, n_calls = 4, 24
    default = cdrop.get_num_threads()
    settings = [1, 2, 3, 8, None, 2**20]
    allowed = {1, 2, 3, 8, default, cdrop._threads.MAX_THREADS}
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal(N).astype(np.float32) for _ in range(n_callers)]

    def call(w, c, nt):
        if c % 2:
            return cdrop.dropout_mask(N, 0.3, seed=w * 1000 + c, packed=bool(c % 4 == 1),
                                      num_threads=nt)
        return cdrop.dropout(xs[w], 0.3, seed=w * 1000 + c, num_threads=nt)

    serial = [[call(w, c, 1) for c in range(n_calls)] for w in range(n_callers)]

    stop = threading.Event()
    seen = set()  # every value get_num_threads() returned, in any thread

    def mutator():
        i = 0
        while not stop.is_set():
            cdrop.set_num_threads(settings[i % len(settings)])
            seen.add(cdrop.get_num_threads())
            i += 1
        return i

    barrier = threading.Barrier(n_callers)

    def caller(w):
        barrier.wait(timeout=TIMEOUT)
        got = []
        for c in range(n_calls):
            got.append(call(w, c, None))  # the default, which the mutator keeps changing
            seen.add(cdrop.get_num_threads())
        return got

    with ThreadPoolExecutor(max_workers=n_callers + 1) as pool:
        mut = pool.submit(mutator)
        callers = [pool.submit(caller, w) for w in range(n_callers)]
        try:
            results = [f.result(timeout=TIMEOUT) for f in callers]
        finally:
            stop.set()
        assert mut.result(timeout=TIMEOUT) > 0

    for w in range(n_callers):
        for c in range(n_calls):
            _assert_same(results[w][c], serial[w][c], f"caller {w}, call {c}")
    # get_num_threads only ever reported a value some setting gives (never a torn or 0 value)
    assert seen <= allowed, seen - allowed


# ---------------------------------------------------------------------------------------------
# A thread pool running a random mix of tasks
# ---------------------------------------------------------------------------------------------
def _misaligned(a):
    """A copy of `a` whose data starts one byte past an aligned address (the copy path)."""
    raw = np.frombuffer(bytearray(a.nbytes + 1), dtype=np.uint8)[1:].view(a.dtype)
    raw = raw.reshape(a.shape)
    raw[...] = a
    assert not raw.flags.aligned
    return raw


LAYOUTS = {
    "C": lambda c: c,
    "F": np.asfortranarray,
    "T": lambda c: c.T,
    "reversed": lambda c: c[::-1, ::-1],
    "stepped": lambda c: c[:, ::3],
    "misaligned": _misaligned,
}


def _task(spec):
    kind, dtype, layout, p, seed, offset, nt = spec
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((513, 1021)).astype(dtype)  # 523,773 elements: threaded
    x = LAYOUTS[layout](c)
    if kind == "dropout":
        return cdrop.dropout(x, p, seed=seed, offset=offset, num_threads=nt)
    if kind == "inplace":
        z = LAYOUTS[layout](c.copy())
        cdrop.dropout(z, p, seed=seed, offset=offset, inplace=True, num_threads=nt)
        return z
    if kind == "out":
        out = LAYOUTS[layout](np.zeros_like(c))
        cdrop.dropout(x, p, seed=seed, offset=offset, out=out, num_threads=nt)
        return out
    return cdrop.dropout_mask(x.shape, p, seed=seed, offset=offset, packed=kind == "packed",
                              num_threads=nt)


def test_thread_pool_mixed_tasks():
    rng = np.random.default_rng(2024)
    specs = []
    for i in range(48):
        specs.append((
            str(rng.choice(["dropout", "inplace", "out", "mask", "packed"])),
            (np.float32, np.float64)[i % 2],
            str(rng.choice(list(LAYOUTS))),
            float(rng.choice([0.1, 0.5, 0.9])),
            1000 + i,
            int(rng.integers(0, 2**40)),
            2,
        ))
    expected = [_task(spec[:-1] + (1,)) for spec in specs]

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {pool.submit(_task, spec): i for i, spec in enumerate(specs)}
        done = 0
        for fut in as_completed(futures, timeout=TIMEOUT):
            i = futures[fut]
            _assert_same(fut.result(), expected[i], f"task {i}: {specs[i]}")
            done += 1
    assert done == len(specs)
    # every layout and every kind was drawn at least once
    assert {s[0] for s in specs} == {"dropout", "inplace", "out", "mask", "packed"}
    assert {s[2] for s in specs} == set(LAYOUTS)


# ---------------------------------------------------------------------------------------------
# The GIL is released while the kernel runs (no clock involved)
# ---------------------------------------------------------------------------------------------
def _watch(out, early, sentinel, started, done, saw):
    """Spin until out[early] is written, then record whether out[-1] is still unwritten."""
    started.wait(TIMEOUT)
    while out[early] == sentinel and not done.is_set():
        pass
    saw.append(bool(out[-1] == sentinel))


@pytest.mark.parametrize("mode", ["out", "inplace"])
def test_gil_is_released_during_the_kernel(mode):
    """A watcher thread spins on an early element of the output; once it changes, it reads the
    LAST element, which the kernel writes at the end of its walk.  If the watcher ever sees the
    early element written and the last one not yet, Python code ran in another thread while
    the kernel was working: the GIL was released.  With the GIL held, the watcher cannot run
    during the kernel and only ever sees "nothing written" or "all written".

    The kernel runs on one OpenMP thread (the same ``with nogil`` block as the threaded path):
    with two OpenMP threads on a 2-core machine the watcher seldom gets a core during the call
    (it saw the middle of the call in only 4-9 of 20 calls in a trial, against 20 of 20 with one
    thread), which would make this a test of the scheduler.

    False alarms: the watcher has to be scheduled during the ~10 ms the kernel spends on the
    other 63/64 of the array; on a busy machine it may miss that, so the test tries 10 times
    and fails only if it never saw the middle of a call.  Measured on this 2-core machine with
    a load average of 7.5 (other jobs running): 79 of 80 tries saw the middle of the call.  Even
    a miss rate of 1 in 4 per try would give a false alarm rate below 1e-6.
    """
    num_threads = 1
    n = 2**25  # 128 MiB of float32
    sentinel = np.float32(1.0)  # inputs are 1.0 and p=0.5: outputs are 0.0 or 2.0, never 1.0
    early = n // 64
    x = np.ones(n, np.float32)
    expected = cdrop.dropout(x, 0.5, seed=99, num_threads=2)
    observed_mid_call = False
    out = np.empty(n, np.float32)
    for _ in range(10):
        out.fill(sentinel)
        target = out if mode == "inplace" else x
        started, done = threading.Event(), threading.Event()
        saw = []
        watcher = threading.Thread(target=_watch, args=(out, early, sentinel, started, done, saw),
                                   daemon=True)
        watcher.start()
        started.set()
        try:
            if mode == "inplace":
                r = cdrop.dropout(target, 0.5, seed=99, inplace=True, num_threads=num_threads)
            else:
                r = cdrop.dropout(target, 0.5, seed=99, out=out, num_threads=num_threads)
        finally:
            done.set()
        assert r is out
        watcher.join(TIMEOUT)
        assert not watcher.is_alive()
        if saw[0]:
            observed_mid_call = True
            break
    assert observed_mid_call, "another Python thread never ran while the kernel was running"
    assert_bits_equal(out, expected, "result of the watched call")
