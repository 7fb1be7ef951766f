"""cdrop: fast, reproducible dropout for NumPy arrays on the CPU.

One pass over memory, on all cores, with a counter-based random stream, so that results are
bit-identical for any thread count, memory layout or chunking.  See ``help(cdrop.dropout)``.
"""
__version__ = "0.1.0"

from . import _hardware

try:
    # a short OpenMP spin-wait unless the user chose one (cdrop/_hardware.py says why); the
    # runtime is loaded by the import and initialised by max_threads()
    with _hardware.openmp_wait_defaults():
        from . import _kernels

        _kernels.max_threads()
    if not _kernels.build_info()["openmp"]:
        _hardware.openmp_wait_defaults.state = "no OpenMP (serial build)"
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        "cdrop's compiled extension (cdrop._kernels) could not be imported. If you are running "
        "from a source checkout, install the package instead (`pip install .`) and run from "
        f"another directory. Original error: {exc}"
    ) from exc

import os as _os
from typing import Any as _Any

from ._dropout import dropout, dropout_mask
from ._layer import (
    AlphaDropout,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    DropoutAdd,
    DropPath,
    FeatureAlphaDropout,
    GaussianDropout,
    GaussianNoise,
)
from ._seed import manual_seed
from ._threads import get_num_threads, set_num_threads
from ._variants import alpha_dropout, drop_path, dropout_add, gaussian_dropout, gaussian_noise

__all__ = [
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "DropoutAdd",
    "DropPath",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "alpha_dropout",
    "drop_path",
    "dropout",
    "dropout_add",
    "dropout_mask",
    "gaussian_dropout",
    "gaussian_noise",
    "get_num_threads",
    "manual_seed",
    "set_num_threads",
    "show_config",
    "__version__",
]


# CDROP_KERNEL=scalar|portable|avx2|avx512|auto picks the kernel path for the whole process (the
# paths give identical results; this lets a CI job exercise the portable and scalar ones on a
# SIMD machine).
if _os.environ.get("CDROP_KERNEL"):
    try:
        _kernels.set_path(_os.environ["CDROP_KERNEL"])
    except ValueError as _exc:
        import warnings as _warnings

        _warnings.warn(f"CDROP_KERNEL ignored: {_exc}", RuntimeWarning, stacklevel=2)

_kernels.set_stream_bytes(_hardware.stream_bytes())
# CDROP_STREAM_BYTES=N: out-of-place calls with outputs of at least N bytes use non-temporal
# stores where the kernel path has them (default: half the L3 cache, at least 4 MiB).  A value
# beyond the kernels' int64 means "never", as any value above the largest array does.
if _os.environ.get("CDROP_STREAM_BYTES"):
    try:
        _kernels.set_stream_bytes(min(int(_os.environ["CDROP_STREAM_BYTES"]), (1 << 63) - 1))
    except (ValueError, OverflowError) as _exc:
        import warnings as _warnings

        _warnings.warn(f"CDROP_STREAM_BYTES ignored: {_exc}", RuntimeWarning, stacklevel=2)


def show_config() -> dict[str, _Any]:
    """Describe this build of cdrop and the machine it runs on.

    Returns
    -------
    dict
        ``version``; ``openmp`` (bool: built with OpenMP); ``simd`` (the kernel path in use:
        ``"avx512"``, ``"avx2"``, ``"portable"``, or ``"scalar"`` where the compiler had no
        vector extensions, e.g. MSVC); ``avx2_compiled`` (the x86 SIMD kernels,
        AVX2 and AVX-512, are in this build), ``cpu_avx2`` and ``cpu_avx512`` (this CPU has
        AVX2, resp. AVX-512F with AVX-512BW, and the OS enables them); ``max_threads``
        (the default thread count, :func:`get_num_threads`); ``serial_only`` (True in a
        fork()ed child); ``block`` (elements per RNG block) and the thread cut-offs
        ``min_parallel`` and ``min_per_thread``; ``nt_store_bytes`` (out-of-place calls on
        contiguous arrays whose output has at least this many bytes write it with non-temporal
        stores, on the AVX-512 and AVX2 paths; ``CDROP_STREAM_BYTES`` sets it); ``stream``
        (the random stream version); ``openmp_wait`` (how long idle OpenMP threads spin:
        cdrop's short default, the environment's ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT``/
        ``KMP_BLOCKTIME``, or unchanged when another library loaded the OpenMP runtime first).

    Examples
    --------
    >>> import cdrop
    >>> cfg = cdrop.show_config()
    >>> cfg["simd"] in ("avx512", "avx2", "portable", "scalar") and isinstance(cfg["openmp"], bool)
    True
    """
    info = _kernels.build_info()
    return {
        "version": __version__,
        "openmp": info["openmp"],
        "simd": _kernels.get_path(),
        "avx2_compiled": info["avx2_compiled"],
        "cpu_avx2": info["cpu_avx2"],
        "cpu_avx512": info["cpu_avx512"],
        "max_threads": get_num_threads(),
        "serial_only": info["serial_only"],
        "block": info["block"],
        "min_parallel": info["min_parallel"],
        "min_per_thread": info["min_per_thread"],
        "nt_store_bytes": _kernels.get_stream_bytes(),
        "stream": "v1",
        "openmp_wait": _hardware.openmp_wait_defaults.state,
    }
