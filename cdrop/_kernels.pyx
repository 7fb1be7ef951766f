"""Private compiled core of cdrop: OpenMP loops over blocks around the C kernels.

Nothing here validates user input: cdrop/_checks.py does that before calling, so that a failing
call never reaches code that writes.  ``apply`` and ``keep_mask`` only check that the buffers they
receive agree with each other (_check_pair, _check_mask).  The functions below trust that
  * arrays are NumPy arrays of float32/float64 (``apply``) or 1-byte items (``keep_mask``),
    in native byte order, with ``dst`` writeable and of ``src``'s shape;
  * ``0 < p < 1``, ``num_threads >= 1`` and ``offset + size <= 2**64``.

Design: an array is cut into chunks that are whole blocks of the random stream (see
cdrop/_src/cdrop_rng.h), and a ``prange(schedule='static')`` hands chunks to threads.  Since a
chunk's random numbers depend only on its block index, the thread count cannot change a result.
The GIL is released for the whole kernel.
"""
import os

from cpython.buffer cimport PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

__all__ = [
    "apply",
    "build_info",
    "derive",
    "get_path",
    "get_stream_bytes",
    "hash64",
    "keep_mask",
    "max_threads",
    "set_path",
    "set_serial_only",
    "set_stream_bytes",
    "scale_inplace",
    "BLOCK",
]

# Declarations of cdrop/_src/cdrop_kernels.h and cdrop_rng.h; keep in sync with the headers.
cdef extern from "cdrop_kernels.h" nogil:
    const uint64_t CDROP_BLOCK
    const int CDROP_PATH_PORTABLE
    const int CDROP_PATH_AVX2
    const int CDROP_PATH_AVX512
    const int CDROP_HAVE_AVX2_KERNELS
    const int64_t CDROP_MIN_PARALLEL
    const int64_t CDROP_MIN_PER_THREAD

    ctypedef void (*cdrop_apply_f32_fn)(const float *, float *, int64_t, uint64_t, uint64_t,
                                        uint32_t, float)
    ctypedef void (*cdrop_apply_f64_fn)(const double *, double *, int64_t, uint64_t, uint64_t,
                                        uint32_t, double)
    ctypedef void (*cdrop_keep_u8_fn)(uint8_t *, int64_t, uint64_t, uint64_t, uint32_t)
    # keep_bits(bits, lo, hi, key, g0, thr): bits of local [lo, hi), lo a multiple of 8, bits
    # zero there on entry
    ctypedef void (*cdrop_keep_bits_fn)(uint8_t *, int64_t, int64_t, uint64_t, uint64_t,
                                        uint32_t)
    ctypedef struct cdrop_kernel_table:
        int path
        cdrop_apply_f32_fn apply_f32
        cdrop_apply_f64_fn apply_f64
        cdrop_keep_u8_fn keep_u8
        cdrop_keep_bits_fn keep_bits
        cdrop_apply_f32_fn apply_f32_stream
        cdrop_apply_f64_fn apply_f64_stream

    uint64_t cdrop_hash64(uint64_t x)
    uint64_t cdrop_key(uint64_t seed)
    uint64_t cdrop_derive(uint64_t a, uint64_t b)
    uint32_t cdrop_threshold(double p)
    int cdrop_have_openmp()
    int cdrop_cpu_has_avx2()
    int cdrop_cpu_has_avx512()
    int omp_get_max_threads()
    int64_t cdrop_chunk_start(uint64_t g0, int64_t n, int64_t c)
    int64_t cdrop_chunk_count(uint64_t g0, int64_t n)
    cdrop_kernel_table cdrop_kernels_for(int path)
    void cdrop_scale_f32(float *x, int64_t n, float c)
    void cdrop_apply_strided_f32(const cdrop_kernel_table *kt, int ndim, const int64_t *shape,
                                 const char *src, const int64_t *sstr, char *dst,
                                 const int64_t *dstr, int64_t lo, int64_t hi, uint64_t key,
                                 uint64_t g0, uint32_t thr, float scale)
    void cdrop_apply_strided_f64(const cdrop_kernel_table *kt, int ndim, const int64_t *shape,
                                 const char *src, const int64_t *sstr, char *dst,
                                 const int64_t *dstr, int64_t lo, int64_t hi, uint64_t key,
                                 uint64_t g0, uint32_t thr, double scale)
    int64_t cdrop_band_count(int ndim, const int64_t *shape)
    int cdrop_use_bands(int ndim, const int64_t *sstr, const int64_t *dstr)
    void cdrop_apply_bands_f32(const cdrop_kernel_table *kt, int ndim, const int64_t *shape,
                               const char *src, const int64_t *sstr, char *dst,
                               const int64_t *dstr, int64_t band_lo, int64_t band_hi,
                               uint64_t key, uint64_t g0, uint32_t thr, float scale)
    void cdrop_apply_bands_f64(const cdrop_kernel_table *kt, int ndim, const int64_t *shape,
                               const char *src, const int64_t *sstr, char *dst,
                               const int64_t *dstr, int64_t band_lo, int64_t band_hi,
                               uint64_t key, uint64_t g0, uint32_t thr, double scale)

BLOCK = CDROP_BLOCK

# The kernel table in use: the best path the CPU has (AVX-512, then AVX2, then portable), chosen
# once here; set_path changes it.
cdef cdrop_kernel_table _kt = cdrop_kernels_for(CDROP_PATH_AVX512)
# Set in a fork()ed child: libgomp can hang there in a parallel region, so run serially.
cdef bint _serial_only = False

_PATHS = {"portable": CDROP_PATH_PORTABLE, "avx2": CDROP_PATH_AVX2, "avx512": CDROP_PATH_AVX512,
          "auto": CDROP_PATH_AVX512}
_PATH_NAMES = {CDROP_PATH_PORTABLE: "portable", CDROP_PATH_AVX2: "avx2",
               CDROP_PATH_AVX512: "avx512"}


def set_path(str name):
    """Select the kernel path: "auto" (best available), "avx512", "avx2" or "portable".

    Returns the name of the path now in use: a path the CPU or the compiler lacks falls back
    silently to the next one down (avx512 -> avx2 -> portable).  All paths give identical bits.
    For tests and benchmarks; not thread-safe against calls running at the same time.
    """
    global _kt
    if name not in _PATHS:
        raise ValueError(
            f"kernel path must be 'auto', 'avx512', 'avx2' or 'portable', got {name!r}")
    _kt = cdrop_kernels_for(_PATHS[name])
    return get_path()


def get_path():
    """Name of the kernel path in use: "avx512", "avx2" or "portable"."""
    return _PATH_NAMES[_kt.path]


def _cache_bytes():
    """Size of the last-level (L3) cache in bytes, or 0 when it cannot be read.

    Linux's sysfs first: in virtual machines sysconf can report the host's total (320 MiB on
    the 2-vCPU guest cdrop is developed on, whose L3 is 32 MiB)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip()
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(0, int(os.sysconf("SC_LEVEL3_CACHE_SIZE")))
    except (AttributeError, OSError, ValueError):
        return 0


# Out-of-place contiguous calls whose output has at least this many bytes use the streaming
# (non-temporal store) kernel where the path has one: half the L3 (unknown L3: 16 MiB), never
# below 4 MiB.  Measured on the 32 MiB-L3 Zen 4 guest, float32, 1 thread, medians of 15-31
# interleaved calls: calls repeated back to back on the same arrays (output still in L3) gained
# nothing at 4M elements (16 MiB of output: 0.83 ms both ways) and lost below it (2M: 0.24 ->
# 0.34 ms, 1M: 0.10 -> 0.17 ms); with the NumPy reference dropout run between the calls, 4M
# went from 1.00-1.22 to 0.66-0.83 ms (bench/report.py's own loop: 1.20-1.22 to 0.88-0.92),
# and `out=` at 16M from 5.2 to 4.4 ms back to back.  (glibc's memcpy switches at a quarter
# of the L3.)
# CDROP_STREAM_BYTES overrides it (read by cdrop/__init__.py).
cdef int64_t _stream_bytes = max(4 << 20, (_cache_bytes() // 2) or (16 << 20))


# ... except into a just-allocated output of 32 MiB or more: glibc's malloc serves those with
# fresh mmap()ed pages (32 MiB is its largest dynamic mmap threshold on 64-bit), every call,
# and the page fault that zeroes each page leaves its lines in cache, so there is no read to
# save and the non-temporal stores only cost: measured, float32 out of place at 16M elements
# (64 MiB), 12.2 ms streamed against 10.4 ms for the allocating np.multiply(x, c) and 10.5 ms
# without streaming.  Smaller outputs come back from the heap already mapped (4M elements:
# 0.88-0.92 ms streamed against 1.20-1.22 ms, report.py's loop).
cdef int64_t _FRESH_STREAM_MAX = 32 << 20


def set_stream_bytes(int64_t nbytes):
    """Output size (bytes) from which out-of-place calls use non-temporal stores; returns the
    previous value.  0 streams every out-of-place call (the tests use it to reach the streaming
    kernel with small arrays); a huge value turns streaming off."""
    global _stream_bytes
    if nbytes < 0:
        raise ValueError(f"stream threshold must be >= 0 bytes, got {nbytes}")
    old = _stream_bytes
    _stream_bytes = nbytes
    return old


def get_stream_bytes():
    """The current streaming threshold in bytes (see set_stream_bytes)."""
    return _stream_bytes


def set_serial_only(bint flag):
    """Force every call onto one thread (used in fork()ed children)."""
    global _serial_only
    _serial_only = flag


def max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl; 1 without OpenMP."""
    return omp_get_max_threads()


def build_info():
    """Facts fixed at build and import time, for cdrop.show_config()."""
    return {
        "openmp": bool(cdrop_have_openmp()),
        "avx2_compiled": bool(CDROP_HAVE_AVX2_KERNELS),
        "cpu_avx2": bool(cdrop_cpu_has_avx2()),
        "cpu_avx512": bool(cdrop_cpu_has_avx512()),
        "block": CDROP_BLOCK,
        "min_parallel": CDROP_MIN_PARALLEL,
        "min_per_thread": CDROP_MIN_PER_THREAD,
        "serial_only": bool(_serial_only),
    }


def hash64(uint64_t x):
    """splitmix64 hash of a 64-bit word (docs/rng.md, section 1)."""
    return cdrop_hash64(x)


def derive(uint64_t a, uint64_t b):
    """``hash64(a ^ hash64(b))``: a derived seed (docs/rng.md, section 7)."""
    return cdrop_derive(a, b)


cdef inline int _threads_for(int64_t n, Py_ssize_t requested) noexcept nogil:
    # One thread below CDROP_MIN_PARALLEL elements, and at least CDROP_MIN_PER_THREAD each
    # (which also bounds any huge request, e.g. set_num_threads(2**40), to what n can use).
    cdef int64_t cap
    if _serial_only or requested <= 1 or n < CDROP_MIN_PARALLEL:
        return 1
    cap = n // CDROP_MIN_PER_THREAD
    if cap > requested:
        cap = requested
    return <int>(cap if cap < 65536 else 65536)


cdef int _merge_dims(Py_buffer *sv, Py_buffer *dv, int64_t *shape, int64_t *sstr,
                     int64_t *dstr) noexcept:
    # Copy the shape and both stride vectors, dropping length-1 axes and merging neighbours that
    # are laid out as one (stride[i] == stride[i+1] * shape[i+1] for both arrays).  A C-contiguous
    # pair of arrays ends as a single axis, which the contiguous kernels then take.
    cdef int nd = 0
    cdef int d
    for d in range(sv.ndim):
        if sv.shape[d] == 1:
            continue
        if (nd > 0 and sstr[nd - 1] == sv.strides[d] * sv.shape[d]
                and dstr[nd - 1] == dv.strides[d] * sv.shape[d]):
            shape[nd - 1] *= sv.shape[d]
            sstr[nd - 1] = sv.strides[d]
            dstr[nd - 1] = dv.strides[d]
            continue
        shape[nd] = sv.shape[d]
        sstr[nd] = sv.strides[d]
        dstr[nd] = dv.strides[d]
        nd += 1
    return nd


cdef void _apply_contig(bint f64, const char *s, char *d, int64_t n, uint64_t key, uint64_t g0,
                        uint32_t thr, double scale, int nt, bint stream) noexcept nogil:
    # stream: use the non-temporal-store kernels (chosen in `apply`)
    cdef int64_t nch = cdrop_chunk_count(g0, n)
    cdef int64_t c, lo, hi
    cdef cdrop_apply_f32_fn f32 = _kt.apply_f32_stream if stream else _kt.apply_f32
    cdef cdrop_apply_f64_fn f64fn = _kt.apply_f64_stream if stream else _kt.apply_f64
    if nt == 1:
        # The kernels walk any range of blocks themselves; skipping the OpenMP region saves
        # about 0.3 us, a third of a 1000-element call.
        if f64:
            f64fn(<const double *>s, <double *>d, n, key, g0, thr, scale)
        else:
            f32(<const float *>s, <float *>d, n, key, g0, thr, <float>scale)
        return
    for c in prange(nch, schedule="static", num_threads=nt):
        lo = cdrop_chunk_start(g0, n, c)
        hi = cdrop_chunk_start(g0, n, c + 1)
        if f64:
            f64fn(<const double *>s + lo, <double *>d + lo, hi - lo, key, g0 + <uint64_t>lo,
                  thr, scale)
        else:
            f32(<const float *>s + lo, <float *>d + lo, hi - lo, key, g0 + <uint64_t>lo,
                thr, <float>scale)


cdef void _apply_strided(bint f64, int nd, const int64_t *shape, const char *s,
                         const int64_t *sstr, char *d, const int64_t *dstr, int64_t n,
                         uint64_t key, uint64_t g0, uint32_t thr, double scale,
                         int nt) noexcept nogil:
    cdef int64_t nch = cdrop_chunk_count(g0, n)
    cdef int64_t c, lo, hi
    if nt == 1:  # no OpenMP region at all (see _apply_contig)
        if f64:
            cdrop_apply_strided_f64(&_kt, nd, shape, s, sstr, d, dstr, 0, n, key, g0, thr, scale)
        else:
            cdrop_apply_strided_f32(&_kt, nd, shape, s, sstr, d, dstr, 0, n, key, g0, thr,
                                    <float>scale)
        return
    for c in prange(nch, schedule="static", num_threads=nt):
        lo = cdrop_chunk_start(g0, n, c)
        hi = cdrop_chunk_start(g0, n, c + 1)
        if f64:
            cdrop_apply_strided_f64(&_kt, nd, shape, s, sstr, d, dstr, lo, hi, key, g0, thr, scale)
        else:
            cdrop_apply_strided_f32(&_kt, nd, shape, s, sstr, d, dstr, lo, hi, key, g0, thr,
                                    <float>scale)


cdef inline bint _aligned(const Py_buffer *v) noexcept:
    # The C kernels dereference typed pointers: data and strides must be multiples of the item
    # size (a float32 view one byte into a uint8 buffer is not).
    cdef int d
    if (<size_t>v.buf) % <size_t>v.itemsize:
        return False
    for d in range(v.ndim):
        if v.strides[d] % v.itemsize:
            return False
    return True


cdef void _apply_bands(bint f64, int nd, const int64_t *shape, const char *s,
                       const int64_t *sstr, char *d, const int64_t *dstr, uint64_t key,
                       uint64_t g0, uint32_t thr, double scale, int nt) noexcept nogil:
    # Layouts whose rows are closer in memory than their columns (see cdrop_apply_bands_*):
    # threads share out bands of rows instead of blocks.
    cdef int64_t nb = cdrop_band_count(nd, shape)
    cdef int64_t b
    if nt == 1:
        if f64:
            cdrop_apply_bands_f64(&_kt, nd, shape, s, sstr, d, dstr, 0, nb, key, g0, thr, scale)
        else:
            cdrop_apply_bands_f32(&_kt, nd, shape, s, sstr, d, dstr, 0, nb, key, g0, thr,
                                  <float>scale)
        return
    for b in prange(nb, schedule="static", num_threads=nt):
        if f64:
            cdrop_apply_bands_f64(&_kt, nd, shape, s, sstr, d, dstr, b, b + 1, key, g0, thr,
                                  scale)
        else:
            cdrop_apply_bands_f32(&_kt, nd, shape, s, sstr, d, dstr, b, b + 1, key, g0, thr,
                                  <float>scale)


# --- Buffer checks (issue 9, item 10) ------------------------------------------------------
# The compiled entry points check the buffers they actually received against each other, before
# any write: an ndarray subclass can report one shape to Python (an overridden `shape`, an
# `__array_function__` that makes np.empty_like return one element) and export another buffer.
# The Python layer passes base-class arrays; these checks make a mismatch a ValueError instead of
# a write past the end of a buffer, whoever the caller is.
cdef int _check_pair(const Py_buffer *sv, const Py_buffer *dv) except -1:
    # apply: src and dst (dv may be sv) have one ndim (<= 64, the size of apply's arrays), one
    # shape, one item size of 4 or 8 bytes, and dst is writeable.
    cdef int d
    if sv.itemsize != 4 and sv.itemsize != 8:
        raise ValueError(f"apply: src has items of {sv.itemsize} bytes; expected 4 or 8")
    if dv.itemsize != sv.itemsize:
        raise ValueError(
            f"apply: dst has items of {dv.itemsize} bytes, src of {sv.itemsize}")
    if sv.ndim != dv.ndim or sv.ndim > 64 or sv.ndim < 0:
        raise ValueError(f"apply: src has {sv.ndim} dimensions, dst {dv.ndim} (at most 64)")
    if sv.ndim > 0 and (sv.shape == NULL or dv.shape == NULL or sv.strides == NULL
                        or dv.strides == NULL):
        raise ValueError("apply: a buffer without shape or strides")
    for d in range(sv.ndim):
        if sv.shape[d] != dv.shape[d]:
            raise ValueError(
                f"apply: src and dst differ in dimension {d}: {sv.shape[d]} != {dv.shape[d]}")
    if dv.readonly:
        raise ValueError("apply: dst is read-only")
    return 0


cdef int _check_mask(const Py_buffer *ov, int64_t n, bint packed) except -1:
    # keep_mask: `out` is writeable and holds exactly the bytes of n elements (1 byte each, or
    # 1 bit each when packed).
    cdef int64_t need = n // 8 + (n % 8 != 0) if packed else n
    if ov.itemsize != 1:
        raise ValueError(f"keep_mask: out has items of {ov.itemsize} bytes; expected 1")
    if ov.len != need:
        raise ValueError(f"keep_mask: out has {ov.len} bytes; {n} elements need {need}")
    if ov.readonly:
        raise ValueError("keep_mask: out is read-only")
    return 0
# --- end of buffer checks -------------------------------------------------------------------


def apply(src, dst, uint64_t seed, uint64_t offset, double p, Py_ssize_t num_threads,
          bint fresh=False):
    """Dropout of ``src`` into ``dst`` (which may be ``src``) for 0 < p < 1.

    ``fresh``: ``dst`` was just allocated for this call (see _FRESH_STREAM_MAX).
    Returns False, having written nothing, if either array is not aligned for its dtype;
    the caller then works on an aligned copy.  Raises ValueError, having written nothing, if
    the two buffers disagree (ndim, shape, item size) or dst is read-only; everything else was
    validated by the caller.
    """
    cdef Py_buffer sv, dv
    cdef Py_buffer *dp = &sv
    cdef int64_t shape[64]
    cdef int64_t sstr[64]
    cdef int64_t dstr[64]
    cdef int64_t n = 1
    cdef int nd, nt, d
    cdef int64_t nbytes
    cdef bint f64, stream, same = src is dst
    cdef uint64_t key = cdrop_key(seed)
    cdef uint32_t thr = cdrop_threshold(p)
    cdef double scale = 1.0 / (1.0 - p)

    # One buffer request when dst is src: the fixed cost of a small call is mostly these.
    PyObject_GetBuffer(src, &sv, PyBUF_STRIDES | (PyBUF_WRITABLE if same else 0))
    try:
        if not same:
            PyObject_GetBuffer(dst, &dv, PyBUF_STRIDES | PyBUF_WRITABLE)
            dp = &dv
        try:
            _check_pair(&sv, dp)  # buffer checks (see _check_pair)
            if not (_aligned(&sv) and _aligned(dp)):
                return False
            f64 = sv.itemsize == 8
            for d in range(sv.ndim):
                n *= sv.shape[d]
            if n == 0:
                return True
            nd = _merge_dims(&sv, dp, shape, sstr, dstr)
            nt = _threads_for(n, num_threads)
            if nd == 0 or (nd == 1 and sstr[0] == sv.itemsize and dstr[0] == sv.itemsize):
                nbytes = n * sv.itemsize
                # streaming stores only into memory that the source does not share
                stream = (not same and nbytes >= _stream_bytes
                          and (not fresh or nbytes < _FRESH_STREAM_MAX)
                          and (<const char *>dp.buf + nbytes <= <const char *>sv.buf
                               or <const char *>sv.buf + nbytes <= <const char *>dp.buf))
                with nogil:
                    _apply_contig(f64, <const char *>sv.buf, <char *>dp.buf, n, key, offset,
                                  thr, scale, nt, stream)
            elif cdrop_use_bands(nd, sstr, dstr):
                with nogil:
                    _apply_bands(f64, nd, shape, <const char *>sv.buf, sstr, <char *>dp.buf,
                                 dstr, key, offset, thr, scale, nt)
            else:
                with nogil:
                    _apply_strided(f64, nd, shape, <const char *>sv.buf, sstr, <char *>dp.buf,
                                   dstr, n, key, offset, thr, scale, nt)
            return True
        finally:
            if not same:
                PyBuffer_Release(&dv)
    finally:
        PyBuffer_Release(&sv)


cdef void _keep_bytes(uint8_t *out, int64_t n, uint64_t key, uint64_t g0, uint32_t thr,
                      int nt) noexcept nogil:
    cdef int64_t nch = cdrop_chunk_count(g0, n)
    cdef int64_t c, lo, hi
    if nt == 1:  # no OpenMP region at all (see _apply_contig)
        _kt.keep_u8(out, n, key, g0, thr)
        return
    for c in prange(nch, schedule="static", num_threads=nt):
        lo = cdrop_chunk_start(g0, n, c)
        hi = cdrop_chunk_start(g0, n, c + 1)
        _kt.keep_u8(out + lo, hi - lo, key, g0 + <uint64_t>lo, thr)


cdef void _keep_bits(uint8_t *out, int64_t n, uint64_t key, uint64_t g0, uint32_t thr,
                     int nt) noexcept nogil:
    # Chunk starts are rounded up to a multiple of 8 elements so that no output byte is written
    # by two threads; a chunk then reaches at most 7 elements into the next block.
    cdef int64_t nch = cdrop_chunk_count(g0, n)
    cdef int64_t c, lo, hi
    if nt == 1:  # no OpenMP region at all (see _apply_contig)
        _kt.keep_bits(out, 0, n, key, g0, thr)
        return
    for c in prange(nch, schedule="static", num_threads=nt):
        lo = (cdrop_chunk_start(g0, n, c) + 7) & ~(<int64_t>7)
        hi = (cdrop_chunk_start(g0, n, c + 1) + 7) & ~(<int64_t>7)
        if hi > n:
            hi = n
        if lo < hi:
            _kt.keep_bits(out, lo, hi, key, g0, thr)


def keep_mask(out, int64_t n, uint64_t seed, uint64_t offset, double p, Py_ssize_t num_threads,
              bint packed):
    """Write the keep mask of ``n`` elements into the contiguous byte array ``out``.

    ``packed=False``: one byte 0/1 per element (``out`` has n bytes, e.g. a bool array);
    ``packed=True``: little-endian bit order, ``out`` has ceil(n/8) bytes.  Raises ValueError,
    having written nothing, if ``out`` has another size or is read-only.
    """
    cdef Py_buffer ov
    cdef uint64_t key = cdrop_key(seed)
    cdef uint32_t thr = cdrop_threshold(p)
    cdef int nt = _threads_for(n, num_threads)
    if n <= 0:
        return
    PyObject_GetBuffer(out, &ov, PyBUF_WRITABLE)  # PyBUF_SIMPLE: contiguous bytes
    try:
        _check_mask(&ov, n, packed)  # buffer checks (see _check_pair)
        with nogil:
            if packed:
                _keep_bits(<uint8_t *>ov.buf, n, key, offset, thr, nt)
            else:
                _keep_bytes(<uint8_t *>ov.buf, n, key, offset, thr, nt)
    finally:
        PyBuffer_Release(&ov)


def scale_inplace(float[::1] x, float c, int num_threads):
    """``x *= c`` on a contiguous float32 array with ``num_threads`` OpenMP threads.

    Not part of dropout: it is the benchmarks' memory-bandwidth floor for more than one thread
    (one read and one write of every element, the same static schedule over the same chunks as
    the dropout kernels), which NumPy cannot give since its ufuncs run on one thread.
    """
    cdef int64_t n = x.shape[0]
    cdef int64_t nch = cdrop_chunk_count(0, n)
    cdef int64_t c_, lo, hi
    cdef float *p
    if n == 0:
        return
    p = &x[0]
    with nogil:
        for c_ in prange(nch, schedule="static", num_threads=num_threads):
            lo = cdrop_chunk_start(0, n, c_)
            hi = cdrop_chunk_start(0, n, c_ + 1)
            cdrop_scale_f32(p + lo, hi - lo, c)
