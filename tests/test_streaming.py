"""The streaming (non-temporal store) kernel for big out-of-place calls.

Out-of-place calls on contiguous arrays whose output has at least
``_kernels.get_stream_bytes()`` bytes use a kernel with non-temporal stores on the AVX-512
and AVX2 paths (cdrop/_src/consumer_stream.inc.h); the tests here run on both.  It writes the
same bits as every other kernel, and is checked here where it differs from them:

* the destination may start at any element past a 64-byte boundary (NumPy aligns to 16 bytes;
  AVX2's vectors are 32 bytes, so both halves of a line are covered),
  which the kernel handles with masked first and last vectors and a carry in between: every
  element offset 0..15 (float32) and 0..7 (float64) is tried, with guard elements on both sides
  that must stay untouched;
* ties are settled before the store (general thresholds) or need no settling (p = k/256);
* the threshold's setter and environment variable (which kernel ran is not observable from
  Python, so the choice of kernel itself is covered by running everything through both).

Every test in the suite that takes the ``kernel_path`` fixture also runs as "avx512-nt" and
"avx2-nt", those paths with the threshold at 0, so the streaming kernels meet the whole oracle
suite too.
"""
import numpy as np
import pytest

import cdrop
import reference
from cdrop import _kernels
from helpers import assert_bits_equal, run_python


@pytest.fixture(params=["avx512", "avx2"])
def streaming(request):
    """A path with streaming kernels, with the threshold at 0 bytes."""
    if _kernels.set_path(request.param) != request.param:
        pytest.skip(f"this CPU has no {request.param}: its streaming kernel is not used")
    old = _kernels.set_stream_bytes(0)
    try:
        yield
    finally:
        _kernels.set_stream_bytes(old)
        _kernels.set_path("auto")


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.5, 0.1, 0.5 + 2.0**-32, 1 - 2.0**-40])
@pytest.mark.parametrize("n, offset", [
    (3 * 2**14 + 777, 5),  # partial head and tail steps: the scalar code writes the ends
    (3 * 2**14, 0),        # whole steps only: the kernel's own first and last stores are the
    (2**14 + 64, 2**14 - 64),  # ends of the array (and a block of one step, then a full one)
    (128, 64),
])
def test_every_destination_alignment(dtype, p, n, offset, streaming):
    """out= at each element offset from a 64-byte boundary; the guard elements on both sides
    hold a NaN payload no dropout can produce (+0.0 or x * scale of a finite x), compared
    bit for bit, so a stray store of any value is seen."""
    per_line = 64 // np.dtype(dtype).itemsize
    x = np.random.default_rng(3).standard_normal(n).astype(dtype)
    ref = reference.dropout_ref(x, p, 11, offset)
    sentinel = np.array([0x7FC0DEAD if dtype == np.float32 else 0x7FF8DEADBEEF0001],
                        dtype=np.uint32 if dtype == np.float32 else np.uint64).view(dtype)[0]
    for shift in range(per_line):
        raw = np.full(n + 2 * per_line + 64, sentinel, dtype=dtype)
        # index of the first element of `raw` that sits on a 64-byte boundary
        base = (-raw.ctypes.data % 64) // raw.itemsize
        start = base + per_line + shift
        out = raw[start:start + n]
        assert (out.ctypes.data % 64) // raw.itemsize == shift
        got = cdrop.dropout(x, p, seed=11, offset=offset, out=out)
        assert got is out
        assert_bits_equal(out, ref, f"shift {shift}")
        guards = np.concatenate([raw[:start], raw[start + n:]])
        assert (_bits(guards) == _bits(np.array([sentinel], dtype=dtype))[0]).all(), (
            f"guard written, shift {shift}")


@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize("n", [64, 1000, 2**16 + 3])
def test_threaded_and_short_calls(n, num_threads, streaming):
    """One whole step, a few steps with a tail, and a call cut into two threads' chunks."""
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(n).standard_normal(n).astype(dtype)
        for p in (0.5, 0.3):
            assert_bits_equal(cdrop.dropout(x, p, seed=4, offset=n, num_threads=num_threads),
                              reference.dropout_ref(x, p, 4, n), f"{dtype} p={p}")


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


def _threshold_in_child(value, cwd):
    """A fresh interpreter's show_config()["nt_store_bytes"] with CDROP_STREAM_BYTES=value."""
    proc = run_python("import cdrop; print(cdrop.show_config()['nt_store_bytes'])", cwd,
                      env={"CDROP_STREAM_BYTES": value}, check=True)
    return int(proc.stdout.strip()), proc.stderr


@pytest.mark.parametrize("value", [12345, 0])
def test_environment_variable(value, tmp_path):
    assert _threshold_in_child(str(value), tmp_path) == (value, "")


@pytest.mark.parametrize("value", ["lots", "-5", "1e9"])
def test_bad_environment_variable_warns(value, tmp_path):
    got, stderr = _threshold_in_child(value, tmp_path)
    assert "CDROP_STREAM_BYTES ignored" in stderr
    assert got >= 4 << 20
