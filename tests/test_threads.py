"""Threads: concurrent Python callers, the package seed stream, thread-count settings, fork."""
import hashlib
import multiprocessing
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal

N = 2**20


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Concurrent callers
# ---------------------------------------------------------------------------------------------
def test_concurrent_calls_from_python_threads():
    n_workers, n_calls = 8, 20
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(N).astype(np.float32 if w % 2 else np.float64)
              for w in range(n_workers)]
    seeds = [[1000 * w + c for c in range(n_calls)] for w in range(n_workers)]
    # serial results, one thread each
    serial = [[_digest(cdrop.dropout(inputs[w], 0.5, seed=s, num_threads=1)) for s in seeds[w]]
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
            got.append(_digest(y))
        return got

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        results = list(pool.map(work, range(n_workers)))
    assert results == serial
    # the serial digests are all different (distinct seeds), so the comparison has teeth
    assert len({d for row in serial for d in row}) == n_workers * n_calls


def test_concurrent_masks_from_python_threads():
    def work(w):
        return [cdrop.dropout_mask(N + 3, 0.3, seed=w, offset=c, packed=bool(c % 2),
                                   num_threads=2).tobytes() for c in range(6)]

    expected = [[cdrop.dropout_mask(N + 3, 0.3, seed=w, offset=c, packed=bool(c % 2),
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


# ---------------------------------------------------------------------------------------------
# Thread-count settings
# ---------------------------------------------------------------------------------------------
def test_set_get_num_threads_round_trip():
    default = cdrop.get_num_threads()
    assert isinstance(default, int) and default >= 1
    for n in (1, 2, 3, 16):
        assert cdrop.set_num_threads(n) is None
        assert cdrop.get_num_threads() == n
        assert cdrop.show_config()["max_threads"] == n
    cdrop.set_num_threads(np.int64(2))
    assert cdrop.get_num_threads() == 2
    cdrop.set_num_threads(None)
    assert cdrop.get_num_threads() == default


def test_default_is_capped_by_cpu_count_without_omp_env():
    if "OMP_NUM_THREADS" in os.environ:
        pytest.skip("OMP_NUM_THREADS is set in this environment")
    n = cdrop.get_num_threads()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= n <= cpus


def _run_python(code, tmp_path, **env_changes):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # nothing may put the source tree on the path
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("omp", ["1", "2"])
def test_get_num_threads_honours_omp_num_threads(tmp_path, omp):
    out = _run_python("""
        import numpy as np, cdrop, hashlib
        y = cdrop.dropout(np.arange(3 * 2**20, dtype=np.float32), 0.5, seed=5)
        print(cdrop.get_num_threads(), cdrop.__file__, hashlib.sha256(y.tobytes()).hexdigest())
    """, tmp_path, OMP_NUM_THREADS=omp)
    nthreads, where, digest = out.split()
    # A build without OpenMP runs serially whatever the environment says.
    expected = int(omp) if cdrop.show_config()["openmp"] else 1
    assert int(nthreads) == expected
    assert os.path.realpath(where) == os.path.realpath(cdrop.__file__)
    y = cdrop.dropout(np.arange(3 * 2**20, dtype=np.float32), 0.5, seed=5)
    assert digest == _digest(y)


# ---------------------------------------------------------------------------------------------
# fork()
# ---------------------------------------------------------------------------------------------
BIG = 2**21


def _child_job():
    x = np.arange(BIG, dtype=np.float32)
    y = cdrop.dropout(x, 0.5, seed=3, num_threads=2)
    m = cdrop.dropout_mask(BIG, 0.5, seed=3, num_threads=2, packed=True)
    return _digest(y), _digest(m), bool(cdrop.show_config()["serial_only"])


def _child_process_main(conn):
    try:
        conn.send(_child_job())
    finally:
        conn.close()


def _parent_uses_openmp():
    x = np.arange(BIG, dtype=np.float32)
    y = cdrop.dropout(x, 0.5, seed=3, num_threads=2)  # a parallel region in the parent
    m = cdrop.dropout_mask(BIG, 0.5, seed=3, num_threads=2, packed=True)
    return _digest(y), _digest(m)


def _fork_ctx():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method on this platform")
    return multiprocessing.get_context("fork")


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_child_does_not_hang_process():
    ctx = _fork_ctx()
    expected = _parent_uses_openmp()
    assert cdrop.show_config()["serial_only"] is False
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_process_main, args=(child_conn,))
    proc.start()
    child_conn.close()
    try:
        assert parent_conn.poll(60), "the forked child did not answer within 60 s (hang?)"
        y_digest, m_digest, serial_only = parent_conn.recv()
        proc.join(60)
        assert not proc.is_alive(), "the forked child did not exit"
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    assert proc.exitcode == 0
    assert (y_digest, m_digest) == expected
    assert serial_only is True
    # the parent is still parallel and still right
    assert cdrop.show_config()["serial_only"] is False
    assert _parent_uses_openmp() == expected


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_pool_workers_do_not_hang():
    ctx = _fork_ctx()
    expected = _parent_uses_openmp()
    pool = ctx.Pool(2)
    try:
        results = [pool.apply_async(_child_job) for _ in range(4)]
        got = [r.get(timeout=60) for r in results]
    finally:
        pool.terminate()
        pool.join()
    for y_digest, m_digest, serial_only in got:
        assert (y_digest, m_digest) == expected
        assert serial_only is True
    assert cdrop.show_config()["serial_only"] is False


def test_results_identical_across_processes_with_different_thread_counts(tmp_path):
    out = _run_python("""
        import numpy as np, cdrop, hashlib
        x = np.linspace(-1, 1, 3 * 2**20 + 7)
        y = cdrop.dropout(x, 0.3, seed=9, offset=11)
        print(hashlib.sha256(y.tobytes()).hexdigest())
    """, tmp_path, OMP_NUM_THREADS="1")
    x = np.linspace(-1, 1, 3 * 2**20 + 7)
    assert out == _digest(cdrop.dropout(x, 0.3, seed=9, offset=11, num_threads=2))
    assert_bits_equal(cdrop.dropout(x, 0.3, seed=9, offset=11, num_threads=2),
                      cdrop.dropout(x, 0.3, seed=9, offset=11, num_threads=1))


@pytest.mark.parametrize("path", ["portable", "auto"])
def test_cdrop_kernel_environment_variable(tmp_path, path):
    out = _run_python("""
        import cdrop
        print(cdrop.show_config()["simd"])
    """, tmp_path, CDROP_KERNEL=path)
    expected = "portable" if path == "portable" else cdrop._kernels.set_path("auto")
    assert out == expected
