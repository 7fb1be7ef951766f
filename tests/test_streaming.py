"""The streaming (non-temporal store) kernel for big out-of-place calls.

Out-of-place calls on contiguous arrays whose output has at least
``_kernels.get_stream_bytes()`` bytes use a kernel with non-temporal stores on the AVX-512
path (cdrop_kernels.h, "Streaming out-of-place apply").  It writes the same bits as every other
kernel, and is checked here where it differs from them:

* the destination may start at any element past a 64-byte boundary (NumPy aligns to 16 bytes),
  which the kernel handles with masked first and last vectors and a carry in between: every
  element offset 0..15 (float32) and 0..7 (float64) is tried, with guard elements on both sides
  that must stay untouched;
* ties are settled before the store (general thresholds) or need no settling (p = k/256);
* the threshold: which calls stream, and its setter and environment variable.

Every test in the suite that takes the ``kernel_path`` fixture also runs as "avx512-nt", the
AVX-512 path with the threshold at 0, so the streaming kernel meets the whole oracle suite too.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import cdrop
import reference
from cdrop import _kernels
from helpers import assert_bits_equal


@pytest.fixture
def avx512_streaming():
    if _kernels.set_path("avx512") != "avx512":
        pytest.skip("this CPU has no AVX-512: the streaming kernel is not used")
    old = _kernels.set_stream_bytes(0)
    try:
        yield
    finally:
        _kernels.set_stream_bytes(old)
        _kernels.set_path("auto")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.5, 0.1, 0.5 + 2.0**-32, 1 - 2.0**-40])
def test_every_destination_alignment(dtype, p, avx512_streaming):
    """out= at each element offset from a 64-byte boundary; guards stay zero."""
    per_line = 64 // np.dtype(dtype).itemsize
    n, offset = 3 * 2**14 + 777, 5  # head, whole steps over 4 blocks, tail
    x = np.random.default_rng(3).standard_normal(n).astype(dtype)
    ref = reference.dropout_ref(x, p, 11, offset)
    for shift in range(per_line):
        raw = np.zeros(n + 2 * per_line + 64, dtype=dtype)
        # index of the first element of `raw` that sits on a 64-byte boundary
        base = (-raw.ctypes.data % 64) // raw.itemsize
        start = base + per_line + shift
        out = raw[start:start + n]
        assert (out.ctypes.data % 64) // raw.itemsize == shift
        got = cdrop.dropout(x, p, seed=11, offset=offset, out=out)
        assert got is out
        assert_bits_equal(out, ref, f"shift {shift}")
        assert not raw[:start].any() and not raw[start + n:].any(), f"guard written, shift {shift}"


@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, 2**16 + 3])
def test_small_and_threaded_calls(n, num_threads, avx512_streaming):
    """Calls shorter than a step, a vector or a block, and threaded chunks."""
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(n).standard_normal(n).astype(dtype)
        for p in (0.5, 0.3):
            assert_bits_equal(cdrop.dropout(x, p, seed=4, offset=n, num_threads=num_threads),
                              reference.dropout_ref(x, p, 4, n), f"{dtype} p={p}")


def test_default_threshold_streams_big_outputs_only():
    """With the default threshold, an output of at least that many bytes takes the streaming
    kernel and a smaller one does not: both give the oracle's bits (which kernel ran is not
    observable from Python; the two cases pin the comparison on both sides of the cut)."""
    cut = _kernels.get_stream_bytes()
    assert cut >= 4 << 20
    n = cut // 4
    x = np.random.default_rng(0).standard_normal(n + 1).astype(np.float32)
    for m in (n - 1, n, n + 1):
        assert_bits_equal(cdrop.dropout(x[:m], 0.1, seed=9), reference.dropout_ref(x[:m], 0.1, 9),
                          f"{m} elements")


def test_in_place_and_overlap_never_stream():
    """In place (src is dst) and an out= that is another view of the same memory give the
    oracle's bits at threshold 0: the kernel is chosen only for disjoint memory."""
    old = _kernels.set_stream_bytes(0)
    try:
        x0 = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
        ref = reference.dropout_ref(x0, 0.5, 2)
        x = x0.copy()
        cdrop.dropout(x, 0.5, seed=2, inplace=True)
        assert_bits_equal(x, ref)
        x = x0.copy()
        cdrop.dropout(x, 0.5, seed=2, out=x.view())
        assert_bits_equal(x, ref)
    finally:
        _kernels.set_stream_bytes(old)


def test_set_stream_bytes():
    old = _kernels.get_stream_bytes()
    try:
        assert _kernels.set_stream_bytes(123) == old
        assert _kernels.get_stream_bytes() == 123 == cdrop.show_config()["nt_store_bytes"]
        with pytest.raises(ValueError, match="stream threshold"):
            _kernels.set_stream_bytes(-1)
        assert _kernels.get_stream_bytes() == 123
    finally:
        _kernels.set_stream_bytes(old)


@pytest.mark.parametrize("value, expected", [("12345", "12345"), ("0", "0")])
def test_environment_variable(value, expected, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import cdrop; print(cdrop.show_config()['nt_store_bytes'])"],
        cwd=tmp_path, env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                           "CDROP_STREAM_BYTES": value},
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


@pytest.mark.parametrize("value", ["lots", "-5", "1e9"])
def test_bad_environment_variable_warns(value, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import cdrop; print(cdrop.show_config()['nt_store_bytes'])"],
        cwd=tmp_path, env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                           "CDROP_STREAM_BYTES": value},
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CDROP_STREAM_BYTES ignored" in proc.stderr
    assert int(proc.stdout.strip()) >= 4 << 20
