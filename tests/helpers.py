"""Small helpers shared by the test modules (bit-exact comparisons)."""
import numpy as np


def bits(a):
    """An integer view of a float array (or scalar) for bit-exact comparisons."""
    a = np.asarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits_equal(actual, expected, msg=""):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype, msg)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, msg)
    a, e = bits(np.ascontiguousarray(actual)), bits(np.ascontiguousarray(expected))
    if not np.array_equal(a, e):
        bad = np.flatnonzero(a.ravel() != e.ravel())
        i = bad[0]
        raise AssertionError(
            f"{msg}: {bad.size} of {a.size} elements differ; first at flat index {i}: "
            f"got {actual.ravel()[i]!r}, expected {expected.ravel()[i]!r}"
        )


def mem_available_gib():
    """MemAvailable from /proc/meminfo in GiB, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None
