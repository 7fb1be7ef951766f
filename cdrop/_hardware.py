"""Hardware probing at import, outside the compiled hot path: the cache size behind the default
streaming threshold.

Out-of-place calls on contiguous arrays whose output has at least ``stream_bytes()`` bytes use
the non-temporal-store kernels where the path has them (AVX-512): half the L3, never below
4 MiB, 16 MiB when the L3 size is unknown.  Measured on the 32 MiB-L3 Zen 4 guest, float32, 1
thread, medians of 15-31 interleaved calls: calls repeated back to back on the same arrays
(output still in L3) gained nothing at 4M elements (16 MiB of output: 0.83 ms both ways) and
lost below it (2M: 0.24 -> 0.34 ms, 1M: 0.10 -> 0.17 ms); with the NumPy reference dropout run
between the calls, 4M went from 1.00-1.22 to 0.66-0.83 ms, and ``out=`` at 16M from 5.2 to
4.4 ms back to back.  (glibc's memcpy switches at a quarter of the L3.)
"""
import os

_MIN_STREAM_BYTES = 4 << 20
_UNKNOWN_L3_STREAM_BYTES = 16 << 20


def cache_bytes():
    """Size of the last-level (L3) cache in bytes, or 0 when it cannot be read.

    Linux's sysfs first: in virtual machines sysconf can report the host's total (320 MiB on
    the 2-vCPU guest cdrop is developed on, whose L3 is 32 MiB).
    """
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip()
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except (OSError, ValueError):
        pass
    try:
        return max(0, int(os.sysconf("SC_LEVEL3_CACHE_SIZE")))
    except (AttributeError, OSError, ValueError):
        return 0


def stream_bytes():
    """The default streaming threshold in bytes (see the module docstring)."""
    return max(_MIN_STREAM_BYTES, (cache_bytes() // 2) or _UNKNOWN_L3_STREAM_BYTES)
