"""Hardware probing at import, outside the compiled hot path: the cache size behind the default
streaming threshold.

Out-of-place calls on contiguous arrays whose output has at least ``stream_bytes()`` bytes use
the non-temporal-store kernels where the path has them (AVX-512, AVX2): half the L3, never below
4 MiB, 16 MiB when the L3 size is unknown.  Measured on the 32 MiB-L3 Zen 4 guest, float32, 1
thread, medians of 15-31 interleaved calls: calls repeated back to back on the same arrays
(output still in L3) gained nothing at 4M elements (16 MiB of output: 0.83 ms both ways) and
lost below it (2M: 0.24 -> 0.34 ms, 1M: 0.10 -> 0.17 ms); with the NumPy reference dropout run
between the calls, 4M went from 1.00-1.22 to 0.66-0.83 ms, and ``out=`` at 16M from 5.2 to
4.4 ms back to back.  (glibc's memcpy switches at a quarter of the L3.)
"""
import ctypes
import os
import re

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


# How long OpenMP threads spin for work before they sleep.  libgomp's default (no
# OMP_WAIT_POLICY) is 300,000 spins, about 10 ms here, and LLVM's libomp spins for 200 ms
# (KMP_BLOCKTIME).  On a busy machine the spinning workers of one call compete for the cores
# with everything else and the next call waits for a time slice.  Measured on the 2-vCPU
# development VM with a busy loop on each core, in place, default 2 threads, median of calls
# separated by 1 ms of other work: libgomp's default 11-16 ms at 262,144 to 4M elements (the
# textbook NumPy dropout took 14.9 ms at 1M, cdrop 16.3), GOMP_SPINCOUNT=100000 8.9-9.2 ms at
# 1M-4M, OMP_WAIT_POLICY=passive 0.08-0.84 ms but 0.18 ms at 1M on a quiet machine, where the
# wake-up of a sleeping thread costs ~0.1 ms per call (2 threads then gain nothing below 4M),
# and GOMP_SPINCOUNT=10000 0.06-0.45 ms loaded and 0.06-0.41 ms quiet (1 thread: 0.03-0.74).
# So cdrop's libgomp spins 10,000 times, about 0.3 ms, unless the user says otherwise.  (LLVM's
# libomp, used by clang builds, is left as it is: nothing was measured with it.)
SPIN_COUNT = 10_000
_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _libgomp_loaded():
    """Whether libgomp is mapped into this process (Linux; False where that cannot be read).
    Only a shared object whose file name starts with libgomp counts, not any path that
    contains the word."""
    try:
        with open("/proc/self/maps") as f:
            return re.search(r"/libgomp[^/\s]*\.so", f.read()) is not None
    except OSError:
        return False


def _c_getenv(name):
    """The C environment's value of `name` (what libgomp and child processes read), which
    ``os.environ``, a copy taken at start-up, misses when it was set with os.putenv or by an
    extension's setenv; ``os.environ.get`` where the C library cannot be reached."""
    try:
        libc = ctypes.CDLL(None)
        getenv = libc.getenv
    except (OSError, AttributeError, TypeError):  # e.g. Windows: no CDLL(None)
        return os.environ.get(name)
    getenv.restype = ctypes.c_char_p
    getenv.argtypes = [ctypes.c_char_p]
    value = getenv(name.encode())
    return None if value is None else value.decode(errors="replace")


class openmp_wait_defaults:
    """Context for the first import of the compiled module.  libgomp reads GOMP_SPINCOUNT once,
    when it is loaded: the import loads it with SPIN_COUNT in the environment, unless the user
    set any wait variable or libgomp was already loaded (then nothing changes), and the
    environment is restored afterwards.  ``state`` says what happened, for show_config()."""

    state = "not set"

    def __enter__(self):
        self._set = False
        if any(v in os.environ or _c_getenv(v) is not None for v in _WAIT_VARIABLES):
            type(self).state = "from the environment"
        elif _libgomp_loaded():
            type(self).state = "libgomp's default (libgomp was loaded before cdrop)"
        else:
            os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
            self._set = True
        return self

    def __exit__(self, *exc):
        if self._set:
            del os.environ["GOMP_SPINCOUNT"]
            type(self).state = (
                f"GOMP_SPINCOUNT={SPIN_COUNT} (cdrop's default)"
                if _libgomp_loaded()
                else "the runtime's default (not libgomp)"
            )
        return False
