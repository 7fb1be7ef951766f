"""cdrop.dask (issue 13): dropout of dask arrays is bit-identical to the in-memory result, for
any chunking, dtype and ndim, on the threaded and synchronous schedulers and on a real
multi-process ``distributed.LocalCluster``; recomputation (also of the chunks of a killed
worker) gives the same bits; graph keys are deterministic; errors come from the graph-building
call.  Skipped where dask is not installed (``pip install ".[dask]"``)."""
import doctest
import math
import os
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdrop
from helpers import run_python

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
cdask = pytest.importorskip("cdrop.dask")

DTYPES = ["float16", "bfloat16", "float32", "float64"]


def _dtype(name):
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


def _data(shape, dtype, seed=0):
    """Values of both signs, with an Inf and a NaN where there is room (dropped: +0.0)."""
    x = np.random.default_rng(seed).standard_normal(shape) * 100
    if x.size > 2:
        x.flat[1], x.flat[2] = np.inf, np.nan
    return np.asarray(x.astype(np.float32).astype(_dtype(dtype)))


def assert_same_bits(got, want):
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


# (id, shape, chunks or a function of the dask array) for the chunkings of the issue
CHUNKINGS = [
    ("0d", (), ()),
    ("1d-regular", (100,), 7),
    ("1d-irregular", (100,), ((10, 1, 49, 40),)),
    ("2d-regular", (37, 23), (8, 5)),
    ("2d-irregular", (37, 23), ((1, 30, 6), (20, 1, 2))),
    ("2d-rechunked", (37, 23), lambda d: d.rechunk((5, 7)).rechunk(((9, 28), (11, 12)))),
    ("2d-empty", (0, 5), (4, 2)),
    ("3d", (6, 7, 8), (4, 3, 5)),
    ("4d", (3, 4, 5, 6), (2, 3, 2, 4)),
]


def _dask(x, chunks):
    if callable(chunks):
        return chunks(da.from_array(x, chunks=max(1, min(x.shape, default=1))))
    return da.from_array(x, chunks=chunks)


@pytest.fixture(scope="module")
def cluster_client(tmp_path_factory):
    """A LocalCluster of two worker processes (one thread each) talking over the loopback,
    closed at the end of the module, also when a test failed."""
    distributed = pytest.importorskip("distributed")
    # dashboard_address=None does not do it: the scheduler's HTTP server (metrics) still takes
    # port 8787, and warns (an error here) when another cluster on the machine has it; port 0
    # lets the OS choose.  Everything on the loopback.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                  local_directory=tmp_path_factory.mktemp("dask")) as cluster:
        # not the default scheduler: the other tests compute with the one they name
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture(params=["threads", "sync", "cluster"])
def compute(request):
    """compute(*arrays) -> tuple of ndarrays, on the scheduler named by the parameter."""
    if request.param == "cluster":
        client = request.getfixturevalue("cluster_client")
        return lambda *arrays: tuple(client.compute(list(arrays), sync=True))
    return lambda *arrays: dask.compute(*arrays, scheduler=request.param)


# ---------------------------------------------------------------------------------------------
# Bit identity with the in-memory result
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CHUNKINGS, ids=[c[0] for c in CHUNKINGS])
def test_equals_in_memory_dropout_for_any_chunking(compute, case, dtype):
    _, shape, chunks = case
    x = _data(shape, dtype)
    dx = _dask(x, chunks)
    y = cdask.dropout(dx, 0.3, seed=1234, offset=5)
    assert y.chunks == dx.chunks and y.dtype == x.dtype
    (got,) = compute(y)
    assert_same_bits(got, cdrop.dropout(x, 0.3, seed=1234, offset=5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ns", [(None, None, 1), (1, 6, 1), (4, 1, 5), (1, 1, 1), (4, 6, 5)])
def test_noise_shape_equals_in_memory(compute, ns, dtype):
    x = _data((4, 6, 5), dtype, seed=1)
    dx = da.from_array(x, chunks=((3, 1), (2, 4), (2, 2, 1)))
    y = cdask.dropout(dx, 0.5, seed=7, offset=3, noise_shape=ns)
    (got,) = compute(y)
    assert_same_bits(got, cdrop.dropout(x, 0.5, seed=7, offset=3, noise_shape=ns))


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.1, 0.5, 0.999, 1.0])
def test_every_p_equals_in_memory(compute, p):
    x = _data((40, 30), "float32", seed=2)
    dx = da.from_array(x, chunks=(13, 7))
    (got,) = compute(cdask.dropout(dx, p, seed=99))
    assert_same_bits(got, cdrop.dropout(x, p, seed=99))


@st.composite
def _chunked_cases(draw):
    """(shape, chunks, dtype, p, offset, noise_shape): 0-d to 4-d, each axis cut at random
    (empty chunks and empty axes included)."""
    shape = tuple(draw(st.lists(st.integers(0, 9), max_size=4)))
    chunks = []
    for n in shape:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        chunks.append(tuple(b - a for a, b in zip([0, *cuts], [*cuts, n])))
    ns = tuple(draw(st.sampled_from([None, 1])) for _ in shape)
    ns = draw(st.sampled_from([None, ns]))
    size = math.prod(shape if ns is None else [1 if d == 1 else n for d, n in zip(ns, shape)])
    offset = draw(st.sampled_from([0, 1, 255, 2**32 + 7, 2**64 - size]))
    p = draw(st.sampled_from([0.0, 0.1, 0.5, 0.75, 1.0]))
    return shape, tuple(chunks), draw(st.sampled_from(DTYPES)), p, offset, ns


@settings(derandomize=True, database=None, deadline=None, max_examples=80,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=_chunked_cases())
def test_random_chunkings_equal_in_memory_dropout(case):
    shape, chunks, dtype, p, offset, ns = case
    x = _data(shape, dtype, seed=len(shape))
    y = cdask.dropout(da.from_array(x, chunks=chunks), p, seed=77, offset=offset, noise_shape=ns)
    assert_same_bits(y.compute(scheduler="sync"),
                     cdrop.dropout(x, p, seed=77, offset=offset, noise_shape=ns))


def test_offsets_up_to_the_end_of_the_index_space():
    x = _data((6, 10), "float64", seed=3)
    dx = da.from_array(x, chunks=(4, 3))
    for offset in (1, 2**40 + 3, 2**64 - x.size):
        got = cdask.dropout(dx, 0.5, seed=5, offset=offset).compute(scheduler="sync")
        assert_same_bits(got, cdrop.dropout(x, 0.5, seed=5, offset=offset))


def test_seeds_from_the_package_stream_and_from_generators_match_in_memory():
    x = _data((20, 9), "float32", seed=4)
    dx = da.from_array(x, chunks=(6, 4))
    cdrop.manual_seed(11)
    y = cdask.dropout(dx, 0.5)  # draws the stream's next seed, as cdrop.dropout does
    cdrop.manual_seed(11)
    assert_same_bits(y.compute(scheduler="threads"), cdrop.dropout(x, 0.5))
    y = cdask.dropout(dx, 0.5, seed=np.random.default_rng(3))
    assert_same_bits(y.compute(scheduler="threads"),
                     cdrop.dropout(x, 0.5, seed=np.random.default_rng(3)))


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_input_chunks_are_never_written(scheduler):
    # dask shares chunks between tasks, with later computations of the same graph, and (for
    # from_array) with the caller's array: a task that wrote into its input would change them
    x = _data((30, 20), "float32", seed=5)
    before = x.copy()
    dx = da.from_array(x, chunks=(7, 6))
    y = cdask.dropout(dx, 0.5, seed=1)
    want = cdrop.dropout(x, 0.5, seed=1)
    for _ in range(2):
        got, same = dask.compute(y, dx, scheduler=scheduler)
        assert_same_bits(got, want)
        assert_same_bits(same, before)
    assert_same_bits(x, before)


def test_the_thread_count_changes_nothing():
    x = _data((300, 200), "float32", seed=6)
    dx = da.from_array(x, chunks=(150, 120))
    want = cdrop.dropout(x, 0.5, seed=3)
    for n in (1, 2, 4):
        assert_same_bits(cdask.dropout(dx, 0.5, seed=3, num_threads=n).compute(), want)


def test_tasks_run_cdrop_on_one_thread_by_default(monkeypatch):
    seen = []
    original = cdask._cdrop_dropout

    def spy(*args, **kwargs):
        seen.append(kwargs["num_threads"])
        return original(*args, **kwargs)

    monkeypatch.setattr(cdask, "_cdrop_dropout", spy)
    dx = da.ones((8, 8), chunks=4, dtype=np.float32)
    cdask.dropout(dx, 0.5, seed=1).compute(scheduler="sync")
    cdask.dropout(dx, 0.5, seed=1, num_threads=3).compute(scheduler="sync")
    assert seen == [1] * 4 + [3] * 4


# ---------------------------------------------------------------------------------------------
# Determinism: recomputation and graph keys
# ---------------------------------------------------------------------------------------------
def test_recomputing_gives_the_same_bits_also_with_seed_none(compute):
    x = _data((25, 16), "float32", seed=7)
    dx = da.from_array(x, chunks=(10, 5))
    y = cdask.dropout(dx, 0.5)  # the key is drawn once, now
    a, b = compute(y, y.rechunk((5, 16)))
    (c,) = compute(y)
    assert_same_bits(a, b)
    assert_same_bits(a, c)
    assert not np.array_equal(a, x, equal_nan=True)  # dropout did something


def test_graph_keys_are_a_function_of_input_p_seed_offset_and_noise_shape():
    dx = da.ones((6, 4), chunks=3, dtype=np.float32)
    y = cdask.dropout(dx, 0.5, seed=1)
    assert y.name.startswith("cdrop-dropout-")
    assert cdask.dropout(dx, 0.5, seed=1).name == y.name
    assert cdask.dropout(da.ones((6, 4), chunks=3, dtype=np.float32), 0.5, seed=1).name == y.name
    # the thread count does not change the values, so it does not change the key
    assert cdask.dropout(dx, 0.5, seed=1, num_threads=2).name == y.name
    others = [
        cdask.dropout(dx, 0.25, seed=1),
        cdask.dropout(dx, 0.5, seed=2),
        cdask.dropout(dx, 0.5, seed=1, offset=1),
        cdask.dropout(dx, 0.5, seed=1, noise_shape=(6, 1)),
        cdask.dropout(dx + 1, 0.5, seed=1),
        cdask.dropout(dx.astype(np.float64), 0.5, seed=1),
        cdask.dropout(dx, 0.5),  # seed=None: a fresh key each call
        cdask.dropout(dx, 0.5),
    ]
    names = [y.name] + [o.name for o in others]
    assert len(set(names)) == len(names)
    # one task per chunk, nothing else: no mask travels, only the key
    assert len(y.__dask_graph__()) - len(dx.__dask_graph__()) == dx.npartitions


# ---------------------------------------------------------------------------------------------
# training=False, validation
# ---------------------------------------------------------------------------------------------
def test_evaluation_mode_returns_x_itself_and_draws_no_seed():
    dx = da.ones((4, 4), chunks=2)
    x = np.ones((4, 4))
    cdrop.manual_seed(3)
    assert cdask.dropout(dx, 0.5, training=False) is dx
    assert_same_bits(cdask.dropout(dx, 0.5).compute(), (cdrop.manual_seed(3),
                                                          cdrop.dropout(x, 0.5))[1])


@pytest.mark.parametrize("call, error, match", [
    (lambda dx: cdask.dropout(np.ones(4), 0.5), TypeError, "x must be a dask array"),
    (lambda dx: cdask.dropout(dx.astype(np.int32), 0.5), TypeError, "x has unsupported dtype"),
    (lambda dx: cdask.dropout(dx, 1.5), ValueError, "p must be"),
    (lambda dx: cdask.dropout(dx, "0.5"), TypeError, "p must be"),
    (lambda dx: cdask.dropout(dx, 0.5, 1), TypeError, "training"),
    (lambda dx: cdask.dropout(dx, 0.5, seed=-1), ValueError, "seed must be in"),
    (lambda dx: cdask.dropout(dx, 0.5, seed=2**64), ValueError, "seed must be in"),
    (lambda dx: cdask.dropout(dx, 0.5, seed=1.5), TypeError, "seed"),
    (lambda dx: cdask.dropout(dx, 0.5, offset=-1), ValueError, "offset must be >= 0"),
    (lambda dx: cdask.dropout(dx, 0.5, offset=2**64 - 23), ValueError, "offset \\+ size"),
    (lambda dx: cdask.dropout(dx, 0.5, noise_shape=(6,)), ValueError, "one entry per axis"),
    (lambda dx: cdask.dropout(dx, 0.5, noise_shape=(6, 2)), ValueError, "does not fit"),
    (lambda dx: cdask.dropout(dx, 0.5, noise_shape="ab"), TypeError, "noise_shape"),
    (lambda dx: cdask.dropout(dx, 0.5, num_threads=0), ValueError, "num_threads must be >= 1"),
    (lambda dx: cdask.dropout(dx[dx > 0], 0.5), ValueError, "unknown chunk sizes"),
])
def test_errors_are_raised_when_the_graph_is_built_and_draw_no_seed(call, error, match):
    dx = da.ones((6, 4), chunks=3, dtype=np.float32)
    cdrop.manual_seed(8)
    with pytest.raises(error, match=match):
        call(dx)
    # the failing call took no seed from the package stream
    got = cdask.dropout(dx, 0.5).compute(scheduler="sync")
    cdrop.manual_seed(8)
    assert_same_bits(got, cdrop.dropout(np.ones((6, 4), np.float32), 0.5))


def test_offset_limit_counts_the_noise_shape_not_the_array():
    dx = da.ones((6, 4), chunks=3, dtype=np.float32)
    ok = cdask.dropout(dx, 0.5, seed=1, offset=2**64 - 6, noise_shape=(6, 1))
    assert_same_bits(ok.compute(), cdrop.dropout(np.ones((6, 4), np.float32), 0.5, seed=1,
                                                 offset=2**64 - 6, noise_shape=(6, 1)))
    with pytest.raises(ValueError, match="offset"):
        cdask.dropout(dx, 0.5, seed=1, offset=2**64 - 6)


# ---------------------------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------------------------
def test_layer_forward_and_backward_equal_cdrop_dropout_layer(compute):
    x = _data((12, 10), "float32", seed=9)
    g = _data((12, 10), "float32", seed=10)
    dx = da.from_array(x, chunks=(5, 4))
    dg = da.from_array(g, chunks=(12, 3))  # other chunks than the forward's
    layer, ref = cdask.Dropout(0.4, seed=21), cdrop.Dropout(0.4, seed=21)
    for _ in range(2):  # a fresh key per call, the same sequence as cdrop.Dropout's
        y, gx = layer(dx), layer.backward(dg)
        got_y, got_gx = compute(y, gx)
        assert_same_bits(got_y, ref(x))
        assert_same_bits(got_gx, ref.backward(g))


def test_layer_modes_follow_cdrop_dropout():
    dx = da.ones((8, 8), chunks=4, dtype=np.float32)
    layer = cdask.Dropout(0.5, seed=2)
    with pytest.raises(RuntimeError, match="before any forward"):
        layer.backward(dx)
    layer.eval()
    assert not layer.training and layer.backward(dx) is dx
    assert layer(dx) is dx and layer.backward(dx) is dx  # backward follows its forward's mode
    y = layer(dx, training=True)  # Monte-Carlo dropout: the override, and its backward
    ref = cdrop.Dropout(0.5, seed=2)
    assert_same_bits(y.compute(), ref(np.ones((8, 8), np.float32)))
    assert_same_bits(layer.backward(dx).compute(), ref.backward(np.ones((8, 8), np.float32)))
    layer.train()
    y = layer(dx)
    layer.eval()  # backward still belongs to the training-mode forward
    assert_same_bits(layer.backward(dx).compute(), (ref(np.ones((8, 8), np.float32)),
                                                    ref.backward(np.ones((8, 8), np.float32)))[1])
    assert repr(layer) == "Dropout(p=0.5)"


def test_layer_errors_name_grad_and_a_failing_forward_takes_no_call():
    layer = cdask.Dropout(0.5, seed=4)
    dx = da.ones((8, 8), chunks=4, dtype=np.float32)
    with pytest.raises(TypeError, match="x must be a dask array"):
        layer(np.ones((8, 8)))
    layer(dx)
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(da.ones((8, 4), chunks=4))
    with pytest.raises(TypeError, match="grad must be a dask array"):
        layer.backward(np.ones((8, 8)))
    with pytest.raises(TypeError, match="grad has unsupported dtype"):
        layer.backward(da.ones((8, 8), chunks=4, dtype=np.int64))
    with pytest.raises(ValueError, match="p must be"):
        cdask.Dropout(2.0)
    with pytest.raises(ValueError, match="num_threads"):
        cdask.Dropout(0.5, num_threads=0)
    ref = cdrop.Dropout(0.5, seed=4)
    ref(np.ones((8, 8), np.float32))  # one call, as the layer made one that succeeded
    assert_same_bits(layer(dx).compute(), ref(np.ones((8, 8), np.float32)))


def test_layer_pickles_with_its_position():
    layer = cdask.Dropout(0.3, seed=6)
    dx = da.ones((8, 8), chunks=4, dtype=np.float32)
    layer(dx)
    clone = pickle.loads(pickle.dumps(layer))
    assert_same_bits(clone(dx).compute(), layer(dx).compute())


# ---------------------------------------------------------------------------------------------
# The module
# ---------------------------------------------------------------------------------------------
def test_import_cdrop_imports_neither_cdrop_dask_nor_dask(tmp_path):
    proc = run_python(
        "import sys, cdrop, numpy as np; cdrop.dropout(np.ones(3), 0.5);"
        "print(sorted(m for m in sys.modules if m in ('dask', 'distributed', 'cdrop.dask')"
        " or m.startswith(('dask.', 'distributed.'))))",
        tmp_path, check=True)
    assert proc.stdout.strip() == "[]"
    # and the check can see it: importing cdrop.dask does import dask
    proc = run_python("import sys, cdrop.dask; print('dask' in sys.modules)", tmp_path,
                      check=True)
    assert proc.stdout.strip() == "True"


def test_docstring_examples_of_cdrop_dask():
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert doctest.testmod(cdask, optionflags=flags).failed == 0
    names = cdask.__all__ + [f"Dropout.{m}" for m in ("forward", "backward")]
    for name in names:
        obj = cdask
        for part in name.split("."):
            obj = getattr(obj, part)
        assert "Examples" in obj.__doc__, name


def test_readme_and_docs_dask_examples_run():
    """The ```python dask blocks of README.md and docs/dask.md (test_docs.py runs the plain
    ```python ones, which must not need dask)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    blocks = []
    for page in (root / "README.md", root / "docs" / "dask.md"):
        if page.is_file():
            blocks += re.findall(r"```python dask\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, "dask example", "exec"), {})


# ---------------------------------------------------------------------------------------------
# A worker killed during a computation (keep this last: the cluster restarts a worker)
# ---------------------------------------------------------------------------------------------
def test_chunks_of_a_killed_worker_are_recomputed_with_the_same_bits(cluster_client, tmp_path):
    client = cluster_client
    x = _data((64, 48), "float32", seed=12)
    dx = da.from_array(x, chunks=(16, 12))  # 16 chunks
    y = cdask.dropout(dx, 0.3, seed=2026)
    runs, flag = tmp_path / "runs", tmp_path / "killed"

    def die_once_midway(block, block_info=None):
        # Runs on a worker after the dropout of its chunk.  The 8th run of the computation
        # kills its own worker process (once: the flag file), which by then holds finished
        # chunks; the nanny starts a new worker, and the scheduler recomputes what was lost.
        with open(runs, "a") as f:
            f.write(f"{block_info[0]['chunk-location']}\n")
        if len(runs.read_text().splitlines()) >= 8:
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os._exit(1)
        return block

    z = y.map_blocks(die_once_midway, dtype=y.dtype, meta=y._meta)
    before = set(client.scheduler_info()["workers"])
    # not fused with the dropout's tasks, so that the scheduler sees (and logs) those
    got = client.compute(z, sync=True, optimize_graph=False)
    assert_same_bits(got, cdrop.dropout(x, 0.3, seed=2026))

    # it did happen: a worker died and was replaced ...
    assert flag.exists()
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != before
    # ... and dropout tasks ran again: some chunk of y went processing -> memory twice
    def finished_runs(dask_scheduler, name=y.name):
        counts = {}
        for t in dask_scheduler.transition_log:
            if (isinstance(t.key, tuple) and t.key[0] == name and t.start == "processing"
                    and t.finish == "memory"):
                counts[t.key] = counts.get(t.key, 0) + 1
        return counts

    counts = client.run_on_scheduler(finished_runs)
    assert len(counts) == dx.npartitions
    assert max(counts.values()) >= 2, counts
    assert len(runs.read_text().splitlines()) > dx.npartitions  # the map_blocks tasks reran

