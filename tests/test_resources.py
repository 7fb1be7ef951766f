"""Resources: no memory, reference or thread leaks, and clean behaviour under KeyboardInterrupt.

Leaks (``test_no_leak``)
    Every entry point, including calls that raise (bad p, dtype, out, seed, offset, num_threads,
    shape; read-only targets; Dropout misuse; manual_seed / set_num_threads errors), is called in
    a loop on small arrays while tracemalloc runs.  After a warm-up of 500 calls the loop is
    cut into 10 equal segments, and after each one the traced Python memory and the resident set
    size (RSS, /proc/self/statm) are sampled.

    Why the MEDIAN segment growth, not the total: CPython 3.11 interns the keys of dicts that C
    code fills with PyDict_SetItemString (NumPy's ``__array_interface__`` does, and cdrop's
    ``out=`` same-view check reads it); those strings die and leave dummy slots, so every ~10,000
    such calls the interpreter reallocates its table of interned strings, one block of ~1 MiB
    in a bare interpreter and ~1.9 MiB in this test process (found with gdb:
    PyUnicode_InternInPlace -> dictresize; seen here in ``dropout_out_is_x``).  That is a step,
    not growth per call: it lands in one segment, while a leak of b bytes per call grows EVERY
    segment by b * calls_per_segment.  A fixed total bound of a few hundred KiB would fail on
    that step, or have to be so loose that it misses a small per-call leak.

    Thresholds.  Segments hold 1,000 calls (10,000 calls, the default run) or 10,000 (100,000
    calls, the slow run).
    * Traced memory (every allocation through Python's allocators, and NumPy's array data,
      which NumPy reports to tracemalloc): median growth <= 2 KiB per segment, so a leak of
      more than 2.05 bytes per call fails (0.2 in the slow run).  The smallest object that can
      leak takes 16 bytes (the smallest pymalloc block; an int takes 28), so one leaked object
      per call is >= 8x over the bound; a leaked array or exception (hundreds of bytes) far
      more (test_traced_leak_check_has_teeth: one int per call fails).  Measured here: the
      median was <= 131 bytes for every entry point; the sampling itself adds 64 bytes per
      segment (two ints appended to the sample lists); the first segment of the error paths
      grows ~10 KiB once.
    * RSS (/proc/self/statm): the backstop for memory that tracemalloc cannot see (raw malloc
      in C code or in the OpenMP runtime; cdrop's own C code calls no malloc at all).  Median
      growth <= 8 KiB (two 4 KiB pages) per segment.  RSS only moves once a leak has used up the
      free memory the process already holds: measured in this file, 10,000 leaked malloc blocks
      of 16 to 256 bytes left RSS flat, 1 KiB blocks showed after ~3 MiB.  So it catches large
      raw leaks (test_rss_leak_check_has_teeth: 16 KiB per call), not small ones; measured
      noise: 0 in every segment of every entry point, except the one-off table step.
    * The total over all segments stays under 4 MiB (room for the table step), to catch a leak
      that comes in bursts; open file descriptors are the same after the loop.

    Run time: 10,000 calls per entry point take ~18 s here with tracemalloc on (errors cost
    15-70 us per call under tracing on this shared machine), so the 100,000-call version
    (several minutes) is marked slow; the default run makes 10,000 calls per entry point.

References (``test_reference_counts_*``)
    sys.getrefcount of every argument object (x, out, the seed Generator, p, seed, offset and
    num_threads objects, shapes, grads) is unchanged by 50 successful and 50 failing calls
    (a leaked reference per call would show as +50); inputs of failing calls are freed as soon
    as the caller drops them (weakref), and results carry no hidden references.  No call leaves
    reference cycles behind for the garbage collector.

Threads (``test_short_lived_python_threads_leave_no_os_threads``)
    OpenMP keeps a thread pool per calling thread; when the Python thread ends, the pool must go.

KeyboardInterrupt (``test_keyboard_interrupt_during_a_long_call``)
    A helper thread waits until the kernel has written an early element of the output and
    then interrupts the main thread (os.kill, signal.pthread_kill or _thread.interrupt_main)
    while the main thread is inside a large dropout with the GIL released.  The call must
    either return the correct result and the KeyboardInterrupt must arrive right after (not be
    lost), or raise it with the input untouched and every output element either unwritten or
    correct; afterwards the package still gives correct results.  That the signal really came
    while the kernel was running is checked, not assumed: after raising it, the helper sees the
    LAST element still unwritten (up to 5 tries; the interrupt is not always that quick).

    The default run uses 2**25 float32 (128 MiB, ~10 ms per call) on one OpenMP thread; on a
    loaded 2-core machine the helper landed in the middle of such a call at the first try every
    time.  With two OpenMP threads on two cores the helper must wait for a core while the call
    runs: at 2**24 elements under a load average of 8 it missed the call in most tries, so the
    two-thread case runs only in the slow variant (``..._2_27``), on 2**27 elements (512 MiB;
    ~50 ms per call), where it landed at the first try; that variant covers all three ways of
    interrupting on one and on two OpenMP threads.  Seen here: the KeyboardInterrupt is raised
    from the first bytecode after the kernel returns, inside cdrop.dropout (so the call never
    returns a value, and the output is complete).
"""
import _thread
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
import weakref
from fractions import Fraction

import numpy as np
import pytest

import cdrop
import reference
from helpers import mem_available_gib

TIMEOUT = 60  # seconds; only a guard against hangs


# ---------------------------------------------------------------------------------------------
# The calls
# ---------------------------------------------------------------------------------------------
def _raises(exc, fn, *args, **kwargs):
    """Call fn and swallow the expected exception; anything else, or no exception, fails.

    A plain try/except (not pytest.raises, whose ExceptionInfo keeps the traceback and with it
    the frames and arguments alive) so the loops measure cdrop and nothing else.
    """
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


def _misaligned(n):
    return np.frombuffer(bytearray(8 * n + 1), dtype=np.uint8)[1:].view(np.float64)


def _calls():
    """name -> zero-argument callable, over every entry point and error path.

    Arrays are small (100 elements) so the loops measure per-call overheads, not memory
    traffic.
    """
    n = 100
    x = np.linspace(-1.0, 1.0, n)
    x32 = x.astype(np.float32)
    out = np.empty_like(x)
    z = x.copy()
    view2d = np.linspace(-1.0, 1.0, 200).reshape(10, 20)[:, ::2]
    raw = _misaligned(n)
    read_only = x.copy()
    read_only.flags.writeable = False
    gen = np.random.default_rng(0)
    ints = np.arange(n)
    swapped = x.astype(">f8")
    short = np.empty(n - 1)
    out32 = np.empty(n, np.float32)
    lst = x.tolist()[:16]
    grad = np.ones(n)
    grad_bad = np.ones(n + 1)
    layer = cdrop.Dropout(0.3, seed=1)
    layer(x)  # so that backward() has a forward to refer to
    fresh = cdrop.Dropout(0.3, seed=1)  # never called forward: backward() raises
    evaluating = cdrop.Dropout(0.3, seed=1).eval()

    def forward_backward():
        layer(x)
        layer.backward(grad)

    def set_get_threads():
        cdrop.set_num_threads(2)
        cdrop.get_num_threads()
        cdrop.set_num_threads(None)

    return {
        # successful calls
        "dropout": lambda: cdrop.dropout(x, 0.3, seed=5),
        "dropout_float32": lambda: cdrop.dropout(x32, 0.3, seed=5),
        "dropout_inplace": lambda: cdrop.dropout(z, 0.3, seed=5, inplace=True),
        "dropout_out": lambda: cdrop.dropout(x, 0.3, seed=5, out=out),
        "dropout_out_is_x": lambda: cdrop.dropout(z, 0.3, seed=5, out=z[:]),
        "dropout_training_false": lambda: cdrop.dropout(x, 0.3, training=False),
        "dropout_training_false_out": lambda: cdrop.dropout(x, 0.3, False, out=out, seed=3),
        "dropout_seed_none": lambda: cdrop.dropout(x, 0.3),
        "dropout_seed_generator": lambda: cdrop.dropout(x, 0.3, seed=gen),
        "dropout_p0_p1": lambda: (cdrop.dropout(x, 0.0, seed=1), cdrop.dropout(x, 1.0, seed=1)),
        "dropout_strided": lambda: cdrop.dropout(view2d, 0.3, seed=5, offset=9),
        "dropout_misaligned": lambda: cdrop.dropout(raw, 0.3, seed=5, inplace=True),
        "dropout_array_like": lambda: cdrop.dropout(lst, 0.3, seed=5),
        "dropout_num_threads": lambda: cdrop.dropout(x, 0.3, seed=5, num_threads=np.int64(2)),
        "mask_bool": lambda: cdrop.dropout_mask((10, 10), 0.3, seed=5),
        "mask_packed": lambda: cdrop.dropout_mask(n, 0.3, seed=5, packed=True, offset=3),
        "mask_seed_none": lambda: cdrop.dropout_mask(n, 0.3, seed=None),
        "layer_forward_backward": forward_backward,
        "layer_eval": lambda: (evaluating(x), evaluating.backward(grad)),
        "layer_new_seed_none": lambda: cdrop.Dropout(0.5),
        "manual_seed": lambda: cdrop.manual_seed(12345),
        "set_get_num_threads": set_get_threads,
        "show_config": cdrop.show_config,
        # calls that raise
        "error_p_value": lambda: _raises(ValueError, cdrop.dropout, x, 1.5, seed=1),
        "error_p_type": lambda: _raises(TypeError, cdrop.dropout, x, "0.5", seed=1),
        "error_p_huge_int": lambda: _raises(ValueError, cdrop.dropout, x, 10**400, seed=1),
        "error_dtype": lambda: _raises(TypeError, cdrop.dropout, ints, 0.5, seed=1),
        "error_byte_order": lambda: _raises(TypeError, cdrop.dropout, swapped, 0.5, seed=1),
        "error_out_shape": lambda: _raises(ValueError, cdrop.dropout, x, 0.5, seed=1, out=short),
        "error_out_dtype": lambda: _raises(TypeError, cdrop.dropout, x, 0.5, seed=1, out=out32),
        "error_out_type": lambda: _raises(TypeError, cdrop.dropout, x, 0.5, seed=1, out=lst),
        "error_out_overlap": lambda: _raises(ValueError, cdrop.dropout, z[1:], 0.5, seed=1,
                                             out=z[:-1]),
        "error_out_read_only": lambda: _raises(ValueError, cdrop.dropout, x, 0.5, seed=1,
                                               out=read_only),
        "error_inplace_and_out": lambda: _raises(ValueError, cdrop.dropout, z, 0.5, seed=1,
                                                 inplace=True, out=out),
        "error_seed_value": lambda: _raises(ValueError, cdrop.dropout, x, 0.5, seed=-1),
        "error_seed_type": lambda: _raises(TypeError, cdrop.dropout, x, 0.5, seed="1"),
        "error_read_only_inplace": lambda: _raises(ValueError, cdrop.dropout, read_only, 0.5,
                                                   seed=1, inplace=True),
        "error_offset": lambda: _raises(ValueError, cdrop.dropout, x, 0.5, seed=1, offset=-1),
        "error_num_threads": lambda: _raises(ValueError, cdrop.dropout, x, 0.5, seed=1,
                                             num_threads=0),
        "error_inplace_array_like": lambda: _raises(TypeError, cdrop.dropout, lst, 0.5, seed=1,
                                                    inplace=True),
        "error_mask_shape": lambda: _raises(ValueError, cdrop.dropout_mask, (3, -1), seed=1),
        "error_mask_seed": lambda: _raises(TypeError, cdrop.dropout_mask, 8, seed=1.5),
        "error_layer_p": lambda: _raises(ValueError, cdrop.Dropout, 2.0),
        "error_layer_backward_first": lambda: _raises(RuntimeError, fresh.backward, grad),
        "error_layer_backward_shape": lambda: _raises(ValueError, layer.backward, grad_bad),
        "error_manual_seed": lambda: _raises(TypeError, cdrop.manual_seed, gen),
        "error_set_num_threads": lambda: _raises(ValueError, cdrop.set_num_threads, 0),
    }


CALL_NAMES = list(_calls())


# ---------------------------------------------------------------------------------------------
# Memory: tracemalloc and RSS stay flat
# ---------------------------------------------------------------------------------------------
SEGMENTS = 10
WARMUP = 500
TRACED_SEGMENT_LIMIT = 2 * 1024  # bytes per segment (median); see the module docstring
RSS_SEGMENT_LIMIT = 8 * 1024  # bytes per segment (median): two 4 KiB pages
TOTAL_LIMIT = 4 * 1024 * 1024  # bytes over the whole loop: room for one interned-table step
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# Under AddressSanitizer (.ci/run step 4 preloads its runtime) freed memory waits in a
# quarantine of up to 256 MiB before reuse, so RSS grows by design; the RSS check is then left
# out and tracemalloc's stays.
_UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def _rss():
    """Resident set size in bytes, or None where /proc/self/statm does not exist or means
    nothing (under AddressSanitizer)."""
    if _UNDER_ASAN:
        return None
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return None


def _open_fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _median(values):
    return sorted(values)[len(values) // 2]


def _check_flat(name, calls, traced, rss, fds_before, fds_after):
    per_segment = calls // SEGMENTS
    traced_steps = [b - a for a, b in zip(traced, traced[1:])]
    assert _median(traced_steps) <= TRACED_SEGMENT_LIMIT, (
        f"{name}: traced Python memory grows by a median {_median(traced_steps)} bytes per "
        f"{per_segment} calls (steps: {traced_steps})"
    )
    assert traced[-1] - traced[0] <= TOTAL_LIMIT, (name, traced_steps)
    if None not in rss:
        rss_steps = [b - a for a, b in zip(rss, rss[1:])]
        assert _median(rss_steps) <= RSS_SEGMENT_LIMIT, (
            f"{name}: RSS grows by a median {_median(rss_steps)} bytes per {per_segment} calls "
            f"(steps: {rss_steps})"
        )
        assert rss[-1] - rss[0] <= TOTAL_LIMIT, (name, rss_steps)
    assert fds_after == fds_before, f"{name}: open file descriptors {fds_before} -> {fds_after}"


def _measure(fn, calls_per_segment, warmup=0):
    """Traced memory and RSS before and after each of SEGMENTS runs of calls_per_segment calls."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        for _ in range(warmup):
            fn()
        traced, rss = [tracemalloc.get_traced_memory()[0]], [_rss()]
        for _ in range(SEGMENTS):
            for _ in range(calls_per_segment):
                fn()
            traced.append(tracemalloc.get_traced_memory()[0])
            rss.append(_rss())
    finally:
        if started_here:
            tracemalloc.stop()
    return traced, rss


def _leak_loop(name, calls):
    fn = _calls()[name]
    fds_before = _open_fds()
    traced, rss = _measure(fn, calls // SEGMENTS, WARMUP)
    _check_flat(name, calls, traced, rss, fds_before, _open_fds())


@pytest.mark.parametrize("name", CALL_NAMES)
def test_no_leak(name):
    _leak_loop(name, 10_000)


@pytest.mark.slow
@pytest.mark.parametrize("name", CALL_NAMES)
def test_no_leak_100k(name):
    _leak_loop(name, 100_000)


def test_traced_leak_check_has_teeth():
    """A leak of one int per call (28 bytes, plus 8 for the list slot) fails the traced check."""
    kept = []
    traced, _ = _measure(lambda: kept.append(10**6 + len(kept)), 1_000)
    with pytest.raises(AssertionError, match="traced Python memory grows"):
        _check_flat("leaky", 10 * 1_000, traced, [None], 0, 0)


def test_rss_leak_check_has_teeth():
    """A raw malloc() leak, which tracemalloc cannot see, fails the RSS check.

    16 KiB per call: the RSS check only sees a leak once it has used up the free memory the
    process already holds (measured here: leaks of 16 to 256 bytes per call over 10,000 calls
    left RSS unchanged, 1 KiB per call showed after ~3 MiB), and a test process that freed big
    arrays can hold tens of MiB.  16 MiB per segment keeps this demonstration clear of that.
    """
    if _rss() is None:
        pytest.skip("no /proc/self/statm on this platform, or RSS is meaningless (ASan)")
    ctypes = pytest.importorskip("ctypes")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, blocks = 16 * 1024, []

    def leaky():
        ptr = libc.malloc(size)
        ctypes.memset(ptr, 1, size)  # touch the pages: only touched pages are resident
        blocks.append(ptr)

    try:
        _, rss = _measure(leaky, 1_000)
    finally:
        for ptr in blocks:
            libc.free(ptr)
    with pytest.raises(AssertionError, match="RSS grows"):
        _check_flat("leaky", 10 * 1_000, [0] * (SEGMENTS + 1), rss, 0, 0)


@pytest.mark.parametrize("name", CALL_NAMES)
def test_no_reference_cycles(name):
    """No call leaves cyclic garbage behind (it would keep arrays alive until a full gc)."""
    fn = _calls()[name]
    fn()
    was_enabled = gc.isenabled()
    gc.disable()
    # gc.freeze() parks every existing object in a generation that collect() skips, so the
    # collection below looks at the objects made by these calls only (and takes microseconds,
    # not the ~100 ms of a full collection of the test process).
    gc.freeze()
    try:
        for _ in range(100):
            fn()
        assert gc.collect() == 0, f"{name} leaves reference cycles for the garbage collector"
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------------------------------
# Reference counts
# ---------------------------------------------------------------------------------------------
REPEAT = 50


def _refcounts(objs):
    return {k: sys.getrefcount(v) for k, v in objs.items()}


def _assert_refcounts_unchanged(fn, objs, what):
    fn()  # first call outside the count: caches (e.g. an interned string) may take a reference
    before = _refcounts(objs)
    for _ in range(REPEAT):
        fn()
    after = _refcounts(objs)
    changed = {k: (before[k], after[k]) for k in objs if before[k] != after[k]}
    assert not changed, f"{what}: reference counts changed over {REPEAT} calls: {changed}"


def _arguments():
    """Argument objects that no cache of the interpreter shares (fresh arrays, big ints...)."""
    n = 1000
    return {
        "x": np.linspace(-1.0, 1.0, n),
        "x32": np.linspace(-1.0, 1.0, n, dtype=np.float32),
        "out": np.empty(n),
        "gen": np.random.default_rng(1),
        "p": float("0.3"),
        "p_np": np.float64(0.3),
        "seed": 2**63 + 12345,  # a big int: not one of the small ints the interpreter shares
        "seed_np": np.uint64(2**63 + 7),
        "offset": 2**40 + 3,
        "num_threads": np.int64(2),
        "shape": (10, 100),
        "grad": np.ones(n),
        "bad_p": Fraction(3, 2),
        "bad_p_str": repr(0.5),  # built at run time: not a constant of this module
        "bad_seed": -(2**70),
        "bad_seed_type": 1.5 + 2**-30,
        "bad_offset": -(2**65),
        "bad_out": np.empty(n - 1),
        "bad_x": np.arange(1000),
        "read_only": np.linspace(-1.0, 1.0, n),
        "list": [0.5] * 8,
    }


def _refcount_calls(a):
    a["read_only"].flags.writeable = False
    layer = cdrop.Dropout(a["p"], seed=a["seed"])
    layer(a["x"])  # backward() needs a forward call to refer to
    a["layer"] = layer

    def layer_calls():
        layer(a["x"])
        layer.backward(a["grad"])
        layer.eval()
        layer(a["x"])
        layer.backward(a["grad"])
        layer.train()

    ok = {
        "dropout": lambda: cdrop.dropout(a["x"], a["p"], seed=a["seed"], offset=a["offset"],
                                         num_threads=a["num_threads"]),
        "dropout_out": lambda: cdrop.dropout(a["x32"], a["p_np"], seed=a["seed_np"],
                                             out=np.empty_like(a["x32"])),
        "dropout_out_given": lambda: cdrop.dropout(a["x"], a["p"], seed=a["gen"], out=a["out"]),
        "dropout_inplace": lambda: cdrop.dropout(a["out"], a["p"], seed=a["seed"],
                                                 inplace=True),
        "dropout_training_false": lambda: cdrop.dropout(a["x"], a["p"], False, out=a["out"],
                                                        seed=a["gen"]),
        "dropout_array_like": lambda: cdrop.dropout(a["list"], a["p"], seed=a["seed"]),
        "mask": lambda: cdrop.dropout_mask(a["shape"], a["p"], seed=a["seed"],
                                           offset=a["offset"]),
        "mask_packed": lambda: cdrop.dropout_mask(a["shape"], a["p_np"], seed=a["gen"],
                                                  packed=True, num_threads=a["num_threads"]),
        "layer": layer_calls,
        "manual_seed": lambda: cdrop.manual_seed(a["seed"]),
        "set_num_threads": lambda: cdrop.set_num_threads(a["num_threads"]),
    }
    failing = {
        "bad_p": (ValueError, lambda: cdrop.dropout(a["x"], a["bad_p"], seed=a["seed"])),
        "bad_p_type": (TypeError, lambda: cdrop.dropout(a["x"], a["bad_p_str"], seed=a["gen"])),
        "bad_dtype": (TypeError, lambda: cdrop.dropout(a["bad_x"], a["p"], seed=a["seed"],
                                                       out=a["out"])),
        "bad_out": (ValueError, lambda: cdrop.dropout(a["x"], a["p"], seed=a["seed"],
                                                      out=a["bad_out"])),
        "bad_seed": (ValueError, lambda: cdrop.dropout(a["x"], a["p"], seed=a["bad_seed"])),
        "bad_seed_type": (TypeError, lambda: cdrop.dropout(a["x"], a["p"],
                                                           seed=a["bad_seed_type"])),
        "bad_offset": (ValueError, lambda: cdrop.dropout(a["x"], a["p"], seed=a["gen"],
                                                         offset=a["bad_offset"])),
        "read_only": (ValueError, lambda: cdrop.dropout(a["read_only"], a["p"], seed=a["seed"],
                                                        inplace=True)),
        "inplace_list": (TypeError, lambda: cdrop.dropout(a["list"], a["p"], seed=a["seed"],
                                                          inplace=True)),
        "mask_bad_p": (ValueError, lambda: cdrop.dropout_mask(a["shape"], a["bad_p"],
                                                              seed=a["gen"])),
        "mask_bad_seed": (ValueError, lambda: cdrop.dropout_mask(a["shape"], a["p"],
                                                                 seed=a["bad_seed"])),
        "layer_bad_shape": (ValueError, lambda: layer.backward(a["bad_out"])),
        "layer_bad_p": (ValueError, lambda: cdrop.Dropout(a["bad_p"], seed=a["gen"])),
        "manual_seed_generator": (TypeError, lambda: cdrop.manual_seed(a["gen"])),
        "manual_seed_bad": (ValueError, lambda: cdrop.manual_seed(a["bad_seed"])),
        "set_num_threads_bad": (TypeError, lambda: cdrop.set_num_threads(a["bad_seed_type"])),
    }
    return ok, failing


_OK_NAMES, _FAILING_NAMES = (list(d) for d in _refcount_calls(_arguments()))


@pytest.mark.parametrize("name", _OK_NAMES)
def test_reference_counts_successful_calls(name):
    a = _arguments()
    ok, _ = _refcount_calls(a)
    _assert_refcounts_unchanged(ok[name], a, name)


@pytest.mark.parametrize("name", _FAILING_NAMES)
def test_reference_counts_failing_calls(name):
    a = _arguments()
    _, failing = _refcount_calls(a)
    exc, fn = failing[name]
    _assert_refcounts_unchanged(lambda: _raises(exc, fn), a, name)


def test_reference_check_has_teeth():
    """A call that keeps a reference to its argument is caught by the same check."""
    a = _arguments()
    kept = []
    with pytest.raises(AssertionError, match="reference counts changed"):
        _assert_refcounts_unchanged(lambda: kept.append(a["x"]), a, "keeps x")


@pytest.mark.parametrize("mode", ["out_of_place", "out", "inplace", "mask", "packed"])
def test_results_hold_no_hidden_references(mode):
    """A result is referenced by the caller only: the same count as a fresh np.empty array."""
    x = np.linspace(-1.0, 1.0, 300_000)  # large enough to take the threaded kernels
    control = np.empty_like(x)
    if mode == "out_of_place":
        y = cdrop.dropout(x, 0.5, seed=1, num_threads=2)
    elif mode == "out":
        y = cdrop.dropout(x, 0.5, seed=1, out=np.empty_like(x), num_threads=2)
    elif mode == "inplace":
        y = cdrop.dropout(np.array(x), 0.5, seed=1, inplace=True, num_threads=2)
    else:
        y = cdrop.dropout_mask(x.shape, 0.5, seed=1, packed=mode == "packed", num_threads=2)
    assert sys.getrefcount(y) == sys.getrefcount(control)
    assert sys.getrefcount(x) == sys.getrefcount(control)
    ref = weakref.ref(y)
    del y
    assert ref() is None


@pytest.mark.parametrize("name", _FAILING_NAMES)
def test_failing_call_frees_its_arguments(name):
    """Arrays (and the layer) passed to a failing call die as soon as the caller drops them: no
    reference is kept by a traceback, a cache or the kernel.  (A Generator supports no weak
    references; its count is checked in test_reference_counts_failing_calls.)"""
    a = _arguments()
    ok, failing = _refcount_calls(a)
    exc, fn = failing[name]
    _raises(exc, fn)
    del ok, failing, fn  # the closures refer to the argument dict (and the layer)
    refs = {k: weakref.ref(v) for k, v in a.items()
            if isinstance(v, (np.ndarray, cdrop.Dropout))}
    a.clear()
    alive = [k for k, r in refs.items() if r() is not None]
    assert not alive, f"still alive after a failing {name} call: {alive}"


# ---------------------------------------------------------------------------------------------
# OS threads
# ---------------------------------------------------------------------------------------------
def _os_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def test_short_lived_python_threads_leave_no_os_threads():
    if _os_threads() is None:
        pytest.skip("no /proc/self/task on this platform")
    x = np.linspace(-1.0, 1.0, 2**17)
    expected = cdrop.dropout(x, 0.5, seed=3, num_threads=1)
    results = []

    def work():
        # a parallel region from a new thread: OpenMP builds this thread a pool of workers
        results.append(cdrop.dropout(x, 0.5, seed=3, num_threads=2).tobytes())

    work()  # the main thread's own pool exists from here on, and stays
    baseline = _os_threads()
    for _ in range(5):
        batch = [threading.Thread(target=work) for _ in range(8)]
        for t in batch:
            t.start()
        for t in batch:
            t.join(TIMEOUT)
    assert len(results) == 41 and set(results) == {expected.tobytes()}
    # Pool workers of finished threads exit asynchronously; wait (bounded) for them to go.
    deadline = time.monotonic() + TIMEOUT
    while _os_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _os_threads() <= baseline, (
        f"{_os_threads() - baseline} OS threads left behind by 40 finished Python threads"
    )


# ---------------------------------------------------------------------------------------------
# KeyboardInterrupt during a long call
# ---------------------------------------------------------------------------------------------
SIGNAL_SEED = 77
SENTINEL = np.float32(1.0)  # inputs are ones and p = 0.5: outputs are 0.0 or 2.0, never 1.0


def _interrupt(how):
    if how == "os.kill":
        os.kill(os.getpid(), signal.SIGINT)
    elif how == "pthread_kill":
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    else:
        _thread.interrupt_main()


class _Big:
    """Input (ones), expected output and an output buffer of n float32, made once per size."""

    def __init__(self, n):
        avail = mem_available_gib()
        need = 3 * 4 * n / 2**30 + 0.5
        if avail is not None and avail < need:
            pytest.skip(f"needs {need:.1f} GiB of available memory, {avail:.1f} GiB available")
        self.n = n
        self.x = np.ones(n, np.float32)
        self.expected = cdrop.dropout(self.x, 0.5, seed=SIGNAL_SEED, num_threads=2)
        self.out = np.empty(n, np.float32)
        # the expected output is the oracle's at both ends (and then, by the determinism tests,
        # everywhere): a wrong "expected" cannot make a broken call pass
        k = 4096
        for start in (0, n - k):
            ref = reference.dropout_ref(np.ones(k, np.float32), 0.5, SIGNAL_SEED, offset=start)
            assert np.array_equal(self.expected[start:start + k].view(np.uint32),
                                  ref.view(np.uint32))


@pytest.fixture(scope="module")
def big_25():
    return _Big(2**25)  # 128 MiB per array; ~10 ms per single-threaded call


def _chunked_all(predicate, got, expected, chunk=1 << 20):
    """predicate(got_bits, expected_bits) on every chunk (no array-sized temporaries, whose
    first-touch page faults cost more than the comparisons)."""
    g, e = got.view(np.uint32), expected.view(np.uint32)
    return all(predicate(g[i:i + chunk], e[i:i + chunk]) for i in range(0, g.size, chunk))


def _interrupted_call(big, how, num_threads):
    """One attempt; returns (landed_mid_call, returned)."""
    n, out = big.n, big.out
    out.fill(SENTINEL)
    early = n // 64
    started, done, fired = threading.Event(), threading.Event(), threading.Event()
    landed_mid = []

    def helper():
        started.wait(TIMEOUT)
        while out[early] == SENTINEL:  # until the kernel is running (the GIL is released)
            if done.is_set():
                return
        _interrupt(how)
        landed_mid.append(bool(out[-1] == SENTINEL))  # the kernel has not finished yet
        fired.set()

    interrupted = returned = False
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    th = threading.Thread(target=helper, daemon=True)
    try:
        th.start()
        try:
            started.set()
            r = cdrop.dropout(big.x, 0.5, seed=SIGNAL_SEED, out=out, num_threads=num_threads)
            returned = True
            assert r is out
            # The interrupt must not be lost: the handler runs at the main thread's next check
            # for pending signals (sleep is one).  Bounded, as a guard, not as a time limit.
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                time.sleep(0.001)
        except KeyboardInterrupt:
            interrupted = True
    finally:
        done.set()
        th.join(TIMEOUT)
        signal.signal(signal.SIGINT, previous)
    assert fired.is_set(), "the helper never saw the kernel start"
    assert interrupted, f"the interrupt ({how}) was lost"

    assert big.x.min() == 1 and big.x.max() == 1, "the input was modified"
    unwritten = SENTINEL.view(np.uint32)
    if returned:
        assert _chunked_all(np.array_equal, out, big.expected), "the call returned a wrong result"
    else:
        # raised from inside the call: every element is unwritten or correct, never garbage
        assert _chunked_all(lambda g, e: np.all((g == e) | (g == unwritten)), out, big.expected)
    return landed_mid[0], returned


def _check_interrupt(big, how, num_threads):
    for _ in range(5):
        landed_mid, _ = _interrupted_call(big, how, num_threads)
        if landed_mid:
            break
    else:
        pytest.fail("in 5 attempts the interrupt never came while the kernel was running")
    # The package still works, with the same result, on every thread count.
    for nt in (1, 2):
        big.out.fill(SENTINEL)
        cdrop.dropout(big.x, 0.5, seed=SIGNAL_SEED, out=big.out, num_threads=nt)
        assert _chunked_all(np.array_equal, big.out, big.expected)
    small = np.linspace(-1, 1, 1000, dtype=np.float32)
    assert np.array_equal(cdrop.dropout(small, 0.3, seed=5).view(np.uint32),
                          reference.dropout_ref(small, 0.3, 5).view(np.uint32))


@pytest.mark.parametrize("how", ["os.kill", "pthread_kill", "interrupt_main"])
def test_keyboard_interrupt_during_a_long_call(big_25, how):
    _check_interrupt(big_25, how, 1)


@pytest.fixture(scope="module")
def big_27():
    # 512 MiB per array: slow because allocating and first-touching three such arrays takes
    # seconds here; a single-threaded call takes ~40 ms
    return _Big(2**27)


@pytest.mark.slow
@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize("how", ["os.kill", "pthread_kill", "interrupt_main"])
def test_keyboard_interrupt_during_a_long_call_2_27(big_27, how, num_threads):
    _check_interrupt(big_27, how, num_threads)
