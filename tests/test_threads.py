"""The thread count: its API and environment, results that do not depend on it, and fork().

Calls come from one Python thread at a time (several at once: test_concurrency.py; the same
result for any thread count on every kernel path, within one process: test_determinism.py).
"""
import ctypes.util
import json
import multiprocessing
import os
import signal
import warnings

import numpy as np
import pytest

import cdrop
from helpers import assert_bits_equal, digest, run_python


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


@pytest.mark.parametrize("omp", ["1", "2"])
def test_get_num_threads_honours_omp_num_threads(tmp_path, omp):
    proc = run_python("""
        import numpy as np, cdrop, hashlib
        y = cdrop.dropout(np.arange(3 * 2**20, dtype=np.float32), 0.5, seed=5)
        print(cdrop.get_num_threads(), cdrop.__file__, hashlib.sha256(y.tobytes()).hexdigest())
    """, tmp_path, env={"OMP_NUM_THREADS": omp}, check=True)
    nthreads, where, child_digest = proc.stdout.split()
    # A build without OpenMP runs serially whatever the environment says.
    expected = int(omp) if cdrop.show_config()["openmp"] else 1
    assert int(nthreads) == expected
    assert os.path.realpath(where) == os.path.realpath(cdrop.__file__)
    y = cdrop.dropout(np.arange(3 * 2**20, dtype=np.float32), 0.5, seed=5)
    assert child_digest == digest(y)


def test_results_identical_across_processes_with_different_thread_counts(tmp_path):
    proc = run_python("""
        import numpy as np, cdrop, hashlib
        x = np.linspace(-1, 1, 3 * 2**20 + 7)
        y = cdrop.dropout(x, 0.3, seed=9, offset=11)
        print(hashlib.sha256(y.tobytes()).hexdigest())
    """, tmp_path, env={"OMP_NUM_THREADS": "1"}, check=True)
    x = np.linspace(-1, 1, 3 * 2**20 + 7)
    assert proc.stdout.strip() == digest(cdrop.dropout(x, 0.3, seed=9, offset=11, num_threads=2))
    assert_bits_equal(cdrop.dropout(x, 0.3, seed=9, offset=11, num_threads=2),
                      cdrop.dropout(x, 0.3, seed=9, offset=11, num_threads=1))


# ---------------------------------------------------------------------------------------------
# fork()
# ---------------------------------------------------------------------------------------------
BIG = 2**21


def _child_job():
    x = np.arange(BIG, dtype=np.float32)
    y = cdrop.dropout(x, 0.5, seed=3, num_threads=2)
    m = cdrop.dropout_mask(BIG, 0.5, seed=3, num_threads=2, packed=True)
    return digest(y), digest(m), bool(cdrop.show_config()["serial_only"])


def _child_process_main(conn):
    try:
        conn.send(_child_job())
    finally:
        conn.close()


def _parent_uses_openmp():
    x = np.arange(BIG, dtype=np.float32)
    y = cdrop.dropout(x, 0.5, seed=3, num_threads=2)  # a parallel region in the parent
    m = cdrop.dropout_mask(BIG, 0.5, seed=3, num_threads=2, packed=True)
    return digest(y), digest(m)


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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_reports_one_thread():
    r, w = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork() with threads running
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report and leave without running the parent's cleanup
        os.close(r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            msg = f"{cdrop.get_num_threads()} {cdrop.show_config()['max_threads']}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert data == "1 1"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_can_use_a_layer_whose_lock_a_parent_thread_held():
    # A thread inside forward() at fork time must not leave the child's copy of the layer's
    # lock held forever (the child's first forward() would hang).
    layer = cdrop.Dropout(0.5, seed=3)
    layer._lock.acquire()  # as if another thread were inside forward() when the process forks
    try:
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork() with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # child: must not hang; exit code 0 only if the call works
            code = 1
            try:
                signal.alarm(20)
                y = layer(np.ones(8))
                code = 0 if y.shape == (8,) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        layer._lock.release()


# The OpenMP wait default (cdrop/_hardware.py): a short libgomp spin unless the user chose one.
_WAIT_PROBE = """
import json, os
import cdrop
print(json.dumps({"state": cdrop.show_config()["openmp_wait"],
                  "env": os.environ.get("GOMP_SPINCOUNT"),
                  "openmp": cdrop.show_config()["openmp"]}))
"""


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "GOMP_SPINCOUNT=10000 (cdrop's default)"),
        ({"OMP_WAIT_POLICY": "passive"}, "from the environment"),
        ({"GOMP_SPINCOUNT": "5"}, "from the environment"),
        ({"KMP_BLOCKTIME": "0"}, "from the environment"),
    ],
)
def test_openmp_wait_default_and_environment_restored(tmp_path, env, expected):
    unset = {k: None for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    proc = run_python(_WAIT_PROBE, tmp_path, env={**unset, **env}, check=True)
    got = json.loads(proc.stdout)
    if not got["openmp"]:
        pytest.skip("serial build: no OpenMP runtime")
    assert got["state"] == expected
    # the user's environment is as it was: cdrop's setting lives only in libgomp
    assert got["env"] == env.get("GOMP_SPINCOUNT")


def test_openmp_wait_left_alone_when_libgomp_was_loaded_first(tmp_path):
    name = ctypes.util.find_library("gomp")
    if name is None:
        pytest.skip("no libgomp to load first")
    code = f"import ctypes; ctypes.CDLL({name!r})\n" + _WAIT_PROBE
    unset = {k: None for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    proc = run_python(code, tmp_path, env=unset, check=True)
    got = json.loads(proc.stdout)
    if not got["openmp"]:
        pytest.skip("serial build: no OpenMP runtime")
    assert got["state"] == "libgomp's default (libgomp was loaded before cdrop)"
    assert got["env"] is None


def test_num_threads_zero_asks_the_default_only_for_arrays_that_can_use_threads():
    """The fast paths pass num_threads=0 to the kernels: the default thread count is then asked
    of cdrop._threads.get_num_threads (registered at import), and only for big arrays."""
    from cdrop import _kernels, _threads

    asked = []

    def default():
        asked.append(1)
        return 2

    small = np.ones(1000, np.float32)
    big = np.ones(_threads.MIN_PARALLEL, np.float32)
    _kernels.set_default_threads(default)
    try:
        _kernels.apply(small, small, 1, 0, 0.5, 0)
        assert asked == []
        _kernels.apply(big, big, 1, 0, 0.5, 0)
        assert asked == [1]
    finally:
        _kernels.set_default_threads(_threads.get_num_threads)
    # and the common call, which passes 0, gives what an explicit thread count gives
    x = np.random.default_rng(0).standard_normal(3 * _threads.MIN_PARALLEL).astype(np.float32)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=3), cdrop.dropout(x, 0.5, seed=3, num_threads=1))
