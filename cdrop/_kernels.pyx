"""Private compiled core of cdrop: hands the C kernels' pieces to OpenMP threads.

Nothing here validates user input: cdrop/_checks.py does that before calling, so that a failing
call never reaches code that writes.  ``apply`` and ``keep_mask`` only check that the buffers they
receive agree with each other (_check_pair, _check_mask), which memory safety needs.  The
functions below trust that arrays are in native byte order, ``0 < p < 1``,
``num_threads >= 1`` and ``offset + size <= 2**64``.

Design: a call becomes one ``cdrop_job`` (cdrop/_src/kernels.h): the kernel of its operation,
the walk its layout needs (contiguous, strided, bands, slabs or a block of a larger array) and
its arguments.  The job is cut into pieces (whole blocks of the random stream, bands of rows,
pieces of slabs) and a ``prange(schedule='static')``
hands pieces to threads.  Since a piece's random numbers depend only on its block indices, the
thread count cannot change a result.  The GIL is released for the whole kernel.
"""
from cpython.buffer cimport PyBUF_STRIDES, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

__all__ = [
    "apply",
    "apply_variant",
    "build_info",
    "derive",
    "get_path",
    "get_stream_bytes",
    "hash64",
    "keep_mask",
    "max_threads",
    "set_path",
    "set_default_threads",
    "set_serial_only",
    "set_stream_bytes",
    "BLOCK",
    "OP_DROP",
    "OP_ALPHA",
    "OP_ADD",
    "OP_GMUL",
    "OP_GADD",
]

# Declarations of cdrop/_src/kernels.h and cdrop_rng.h; keep in sync with the headers.
cdef extern from "kernels.h" nogil:
    const uint64_t CDROP_BLOCK
    const int CDROP_PATH_SCALAR, CDROP_PATH_PORTABLE, CDROP_PATH_AVX2, CDROP_PATH_AVX512
    const int CDROP_HAVE_X86_SIMD
    const int64_t CDROP_MIN_PARALLEL, CDROP_MIN_PER_THREAD, CDROP_SCRATCH_BYTES
    const int CDROP_MAX_DIMS
    enum:
        CDROP_OP_F32, CDROP_OP_F64, CDROP_OP_U8, CDROP_OP_BITS, CDROP_OP_F32_NT, CDROP_OP_F64_NT,
        CDROP_OP_F16, CDROP_OP_BF16, CDROP_OP_ALPHA_F32, CDROP_OP_ALPHA_F64, CDROP_OP_ADD_F32,
        CDROP_OP_ADD_F64, CDROP_OP_ADDF_F32, CDROP_OP_ADDF_F64
    enum:
        CDROP_WALK_CONTIG, CDROP_WALK_STRIDED, CDROP_WALK_BANDS, CDROP_WALK_BLOCK, CDROP_WALK_SLABS

    ctypedef struct cdrop_args:
        const void *src
        void *dst
        double scale
        uint64_t key
        uint64_t g0
        uint32_t thr
        const void *res
        const void *bias
        int64_t bias_n
        double c1, c2
    ctypedef void (*cdrop_kernel_fn)(const cdrop_args *, int64_t, int64_t)
    enum:
        CDROP_VOP_DROP, CDROP_VOP_ALPHA, CDROP_VOP_ADD, CDROP_VOP_GMUL, CDROP_VOP_GADD,
        CDROP_VOP_ADD_NB
    enum:
        CDROP_DT_F32, CDROP_DT_F64, CDROP_DT_F16, CDROP_DT_BF16
    enum:
        CDROP_SRC_KEEP_STREAM, CDROP_SRC_KEEP_ARRAY, CDROP_SRC_NORMAL
    ctypedef struct cdrop_vconst:
        double c0, c1, c2
    ctypedef void (*cdrop_vrun_fn)(const cdrop_vconst *, const void *, int64_t)
    ctypedef void (*cdrop_normal_fn)(uint64_t, uint64_t, int64_t, float *)
    ctypedef void (*cdrop_resume_fn)(const cdrop_args *, int64_t, int64_t, uint8_t *, uint64_t *)
    ctypedef void (*cdrop_bits_run_fn)(const char *, char *, const uint64_t *, int64_t, double)
    ctypedef void (*cdrop_bits_t_fn)(const uint8_t *, int64_t, int64_t, int64_t, int64_t,
                                     uint64_t *)
    ctypedef struct cdrop_kernel_table:
        int path
        cdrop_kernel_fn op[14]  # CDROP_N_OPS
        cdrop_resume_fn resume
        cdrop_bits_run_fn bits_run[2]
        cdrop_bits_t_fn bits_t
        cdrop_vrun_fn vrun[6][4]  # [CDROP_N_VOPS][CDROP_N_DT]
        cdrop_normal_fn normals
    ctypedef struct cdrop_vjob:
        int src
        cdrop_vrun_fn run
        cdrop_kernel_fn keep
        cdrop_normal_fn normals
        cdrop_vconst c
        uint64_t key, g0
        uint32_t thr
        const char *x
        const char *r
        const char *b
        const char *k
        char *y
        int64_t n
        int ndim
        int64_t shape[64]
        int64_t sx[64]
        int64_t sy[64]
        int64_t sr[64]
        int64_t sb[64]
        int64_t sk[64]
    ctypedef struct cdrop_job:
        cdrop_kernel_fn fn
        cdrop_kernel_fn keep
        cdrop_resume_fn resume
        cdrop_args args
        int64_t n
        int64_t gran
        int walk
        int op
        int ndim
        int64_t shape[64]
        int64_t sstr[64]
        int64_t dstr[64]
        uint64_t gstr[64]
        cdrop_vrun_fn drop_run
        cdrop_kernel_fn bits
        cdrop_bits_run_fn bits_run
        cdrop_bits_t_fn bits_t

    uint64_t cdrop_hash64(uint64_t x)
    uint64_t cdrop_key(uint64_t seed)
    uint64_t cdrop_derive(uint64_t a, uint64_t b)
    uint32_t cdrop_threshold(double p)
    int cdrop_have_openmp()
    int cdrop_cpu_has_avx2()
    int cdrop_cpu_has_avx512()
    int omp_get_max_threads()
    cdrop_kernel_table cdrop_kernels_for(int path)
    int cdrop_layout_walk(const cdrop_job *job)
    int64_t cdrop_job_pieces(const cdrop_job *job)
    void cdrop_job_run(const cdrop_job *job, int64_t c0, int64_t c1, uint8_t *scratch)
    void cdrop_scale_f32(float *x, int64_t n, float c)
    int64_t cdrop_vjob_pieces(const cdrop_vjob *job)
    void cdrop_vjob_run(const cdrop_vjob *job, int64_t c0, int64_t c1, uint8_t *scratch)

BLOCK = CDROP_BLOCK
# The operations of apply_variant (cdrop/_src/variant.h)
OP_DROP = CDROP_VOP_DROP
OP_ALPHA = CDROP_VOP_ALPHA
OP_ADD = CDROP_VOP_ADD
OP_GMUL = CDROP_VOP_GMUL
OP_GADD = CDROP_VOP_GADD

# The kernel table in use: the best path the CPU has (AVX-512, then AVX2, then portable, then
# scalar where the compiler had no vector extensions), chosen
# once here; set_path changes it.
cdef cdrop_kernel_table _kt = cdrop_kernels_for(CDROP_PATH_AVX512)
# Set in a fork()ed child: libgomp can hang there in a parallel region, so run serially.
cdef bint _serial_only = False
# Out-of-place contiguous outputs of at least this many bytes use the streaming kernels (set at
# import by cdrop/__init__.py from the cache size; see cdrop/_hardware.py for the policy) ...
cdef int64_t _stream_bytes = 16 << 20
# ... except into a just-allocated output of 32 MiB or more: glibc serves those with fresh
# mmap()ed pages every call, and the page fault that zeroes each page leaves its lines in
# cache, so there is no read to save (measured, float32 out of place at 16M elements: 12.2 ms
# streamed against 10.4 ms for the allocating np.multiply(x, c) and 10.5 ms without streaming).
cdef int64_t _FRESH_STREAM_MAX = 32 << 20

_PATHS = {"scalar": CDROP_PATH_SCALAR, "portable": CDROP_PATH_PORTABLE,
          "avx2": CDROP_PATH_AVX2, "avx512": CDROP_PATH_AVX512, "auto": CDROP_PATH_AVX512}
_PATH_NAMES = {CDROP_PATH_SCALAR: "scalar", CDROP_PATH_PORTABLE: "portable",
               CDROP_PATH_AVX2: "avx2", CDROP_PATH_AVX512: "avx512"}


def set_path(str name):
    """Select the kernel path: "auto" (best available), "avx512", "avx2", "portable" or
    "scalar" (the reference: plain C).

    Returns the name of the path now in use: a path the CPU or the compiler lacks falls back
    silently to the next one down (avx512 -> avx2 -> portable -> scalar; portable needs GCC's
    or Clang's vector extensions, which MSVC lacks).  All paths give identical bits.
    For tests and benchmarks; not thread-safe against calls running at the same time.
    """
    global _kt
    if name not in _PATHS:
        raise ValueError(
            "kernel path must be 'auto', 'avx512', 'avx2', 'portable' or 'scalar', "
            f"got {name!r}")
    _kt = cdrop_kernels_for(_PATHS[name])
    return get_path()


def get_path():
    """Name of the kernel path in use: "avx512", "avx2", "portable" or "scalar"."""
    return _PATH_NAMES[_kt.path]


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


# The default thread count, cdrop._threads.get_num_threads (set at import), which the entry
# points ask for when given num_threads=0, and only for arrays big enough to use threads: the
# common 1,000-element call then spends nothing on it.
cdef object _default_threads = None


def set_default_threads(f):
    """Set the callable that ``num_threads=0`` asks for the default thread count."""
    global _default_threads
    _default_threads = f


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
        "avx2_compiled": bool(CDROP_HAVE_X86_SIMD),
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


cdef int _threads_for(int64_t n, Py_ssize_t requested) except -1:
    # One thread below CDROP_MIN_PARALLEL elements, and at least CDROP_MIN_PER_THREAD each
    # (which also bounds any huge request to what n can use); requested == 0: the default.
    cdef int64_t cap
    if _serial_only or n < CDROP_MIN_PARALLEL:
        return 1
    if requested == 0:
        requested = _default_threads()
    if requested <= 1:
        return 1
    cap = n // CDROP_MIN_PER_THREAD
    return <int>(cap if cap < requested else requested)


cdef int _run(const cdrop_job *job, int nt) except -1:
    # The one loop of the module: the job's pieces, serially or shared out to nt threads, each
    # thread with its own scratch (the strided and band walks need CDROP_SCRATCH_BYTES; they
    # must not take that from the thread's stack, which may be small).
    cdef int64_t npieces = cdrop_job_pieces(job)
    cdef int64_t t, share, extra
    cdef uint8_t *scratch = NULL
    # never more threads than pieces (the thread count never changes a result)
    nt = <int>min(<int64_t>nt, npieces) if npieces > 0 else 1
    if job.walk != CDROP_WALK_CONTIG:
        # 1 MiB per thread; a request for thousands of threads must not turn into gigabytes
        nt = min(nt, 256)
        scratch = <uint8_t *>malloc(<size_t>(nt * CDROP_SCRATCH_BYTES))
        if scratch == NULL:
            raise MemoryError()
    # Thread t runs pieces [t * share + min(t, extra), ...): one call over a contiguous range,
    # as one thread's call is over all of them, so that a block's tie records are settled
    # during the next block's steps (walk.inc.h).  A call per piece (prange over the pieces)
    # settled them after each block with the memory system idle: on 2 threads every p other
    # than the exact ones took 1.07-1.17x p = 0.5's time at 4M and 16M elements.
    share = npieces // nt
    extra = npieces % nt
    try:
        with nogil:
            if nt == 1:  # no OpenMP region at all: it costs ~0.3 us, a third of a small call
                cdrop_job_run(job, 0, npieces, scratch)
            else:
                for t in prange(nt, schedule="static", num_threads=nt):
                    cdrop_job_run(job, t * share + min(t, extra),
                                  (t + 1) * share + min(t + 1, extra),
                                  scratch + t * CDROP_SCRATCH_BYTES if scratch else NULL)
    finally:
        free(scratch)
    return 0


cdef int _layout(cdrop_job *job, const Py_buffer *sv, const Py_buffer *dv) noexcept:
    # The shape and both stride vectors into the job, dropping length-1 axes and merging
    # neighbours that are laid out as one (stride[i] == stride[i+1] * shape[i+1] for both
    # arrays); then the walk.  A C-contiguous pair ends as one axis of unit stride: CONTIG.
    cdef int nd = 0
    cdef int d
    for d in range(sv.ndim):
        if sv.shape[d] == 1:
            continue
        if (nd > 0 and job.sstr[nd - 1] == sv.strides[d] * sv.shape[d]
                and job.dstr[nd - 1] == dv.strides[d] * sv.shape[d]):
            job.shape[nd - 1] *= sv.shape[d]
            job.sstr[nd - 1] = sv.strides[d]
            job.dstr[nd - 1] = dv.strides[d]
            continue
        job.shape[nd] = sv.shape[d]
        job.sstr[nd] = sv.strides[d]
        job.dstr[nd] = dv.strides[d]
        nd += 1
    job.ndim = nd
    if nd == 0 or (nd == 1 and job.sstr[0] == sv.itemsize and job.dstr[0] == sv.itemsize):
        return CDROP_WALK_CONTIG
    return cdrop_layout_walk(job)


cdef int _block_layout(cdrop_job *job, const Py_buffer *sv, const Py_buffer *dv,
                       istrides) except -1:
    # The block walk's layout (walk_block.c): as _layout, with each axis's counter stride
    # (istrides, elements, one per axis of dv), merging neighbours only where the counters
    # merge too; the last axis must have counter stride 1, so a block whose last axis was
    # dropped (length 1) gets a virtual one.  sv NULL: a keep mask (nothing is read).
    cdef int nd = 0
    cdef int d
    cdef int64_t ss
    cdef uint64_t gs
    if len(istrides) != dv.ndim:
        raise ValueError(f"block: {len(istrides)} counter strides for {dv.ndim} axes")
    for d in range(dv.ndim):
        if dv.shape[d] == 1:
            continue
        ss = sv.strides[d] if sv != NULL else 0
        gs = istrides[d]
        if (nd > 0 and job.sstr[nd - 1] == ss * dv.shape[d]
                and job.dstr[nd - 1] == dv.strides[d] * dv.shape[d]
                and job.gstr[nd - 1] == gs * <uint64_t>dv.shape[d]):
            job.shape[nd - 1] *= dv.shape[d]
            job.sstr[nd - 1] = ss
            job.dstr[nd - 1] = dv.strides[d]
            job.gstr[nd - 1] = gs
            continue
        job.shape[nd] = dv.shape[d]
        job.sstr[nd] = ss
        job.dstr[nd] = dv.strides[d]
        job.gstr[nd] = gs
        nd += 1
    if nd == 0 or job.gstr[nd - 1] != 1:
        if nd == 64:
            raise ValueError("block: 64 axes of strided counters")
        job.shape[nd] = 1
        job.sstr[nd] = 0
        job.dstr[nd] = 0
        job.gstr[nd] = 1
        nd += 1
    job.ndim = nd
    return 0


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


cdef void _init_args(cdrop_job *job, uint64_t seed, uint64_t offset, double p) noexcept:
    job.args.key = cdrop_key(seed)
    job.args.g0 = offset
    job.args.thr = cdrop_threshold(p)
    job.args.scale = 1.0 / (1.0 - p)
    job.gran = 1
    job.resume = NULL
    job.bits = NULL  # the tile walk's tall tiles (keep bits): apply sets them
    job.bits_run = NULL
    job.bits_t = NULL


# --- Buffer checks (issue 9, item 10) ------------------------------------------------------
# The compiled entry points check the buffers they actually received against each other, before
# any write: an ndarray subclass can report one shape to Python (an overridden `shape`, an
# `__array_function__` that makes np.empty_like return one element) and export another buffer.
# The Python layer passes base-class arrays; these checks make a mismatch a ValueError instead of
# a write past the end of a buffer, whoever the caller is.
cdef int _check_pair(const Py_buffer *sv, const Py_buffer *dv) except -1:
    # apply: src and dst (dv may be sv) have one ndim (<= 64, the size of apply's arrays), one
    # shape, one item size of 2, 4 or 8 bytes, and dst is writeable.
    cdef int d
    if sv.itemsize != 2 and sv.itemsize != 4 and sv.itemsize != 8:
        raise ValueError(f"apply: src has items of {sv.itemsize} bytes; expected 2, 4 or 8")
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
          bint fresh=False, bint bf16=False, istrides=None):
    """Dropout of ``src`` into ``dst`` (which may be ``src``) for 0 < p < 1.

    The item size says the dtype: 8 bytes float64, 4 float32, 2 float16, or bfloat16 bit
    patterns when ``bf16`` is True (the format is not read: pass uint16, int16 or float16
    buffers, e.g. ``x.view(np.uint16)`` of an ml_dtypes.bfloat16 array, which cannot export a
    buffer itself).  Half precision follows the rule of docs/rng.md ("Half precision").
    ``fresh``: ``dst`` was just allocated for this call (see _FRESH_STREAM_MAX).
    ``istrides``: src is a block of a larger C-ordered array; its element ``i`` has the
    counter ``offset + sum(i[d] * istrides[d])`` (the caller folds the block's start into
    ``offset``; the last axis's stride is 1).  None: the counter is offset + the C-order index.
    Returns False, having written nothing, if either array is not aligned for its dtype;
    the caller then works on an aligned copy.  Raises ValueError, having written nothing, if
    the two buffers disagree (ndim, shape, item size) or dst is read-only; everything else was
    validated by the caller.
    """
    cdef Py_buffer sv, dv
    cdef Py_buffer *dp = &sv
    cdef cdrop_job job
    cdef int64_t n = 1, nbytes
    cdef int d
    cdef bint same = src is dst, stream

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
            for d in range(sv.ndim):
                n *= sv.shape[d]
            if n == 0:
                return True
            _init_args(&job, seed, offset, p)
            job.args.src = sv.buf
            job.args.dst = dp.buf
            job.n = n
            if sv.itemsize == 2:
                job.op = CDROP_OP_BF16 if bf16 else CDROP_OP_F16
            else:
                job.op = CDROP_OP_F64 if sv.itemsize == 8 else CDROP_OP_F32
            # the walks that apply runs of keep bytes (strided, bands, slabs, block) do it with
            # the instruction set's own select-and-scale (set first: the walk choice reads them)
            job.drop_run = _kt.vrun[CDROP_VOP_DROP][
                CDROP_DT_F64 if job.op == CDROP_OP_F64 else CDROP_DT_F32
                if job.op == CDROP_OP_F32 else CDROP_DT_BF16 if bf16 else CDROP_DT_F16]
            job.fn = _kt.op[job.op]
            job.keep = _kt.op[CDROP_OP_U8]
            job.resume = _kt.resume
            job.bits = _kt.op[CDROP_OP_BITS]
            job.bits_t = _kt.bits_t
            job.bits_run = (_kt.bits_run[1] if job.op == CDROP_OP_F64 else _kt.bits_run[0]
                            if job.op == CDROP_OP_F32 else NULL)
            if istrides is None:
                job.walk = _layout(&job, &sv, dp)
            else:
                _block_layout(&job, &sv, dp, istrides)
                job.walk = CDROP_WALK_BLOCK
            if job.walk == CDROP_WALK_CONTIG:
                nbytes = n * sv.itemsize
                # streaming stores only into memory that the source does not share (float32
                # and float64: the half dtypes have no streaming kernels)
                stream = (not same and sv.itemsize != 2 and nbytes >= _stream_bytes
                          and (not fresh or nbytes < _FRESH_STREAM_MAX)
                          and (<const char *>dp.buf + nbytes <= <const char *>sv.buf
                               or <const char *>sv.buf + nbytes <= <const char *>dp.buf))
                if stream:
                    job.fn = _kt.op[CDROP_OP_F64_NT if job.op == CDROP_OP_F64 else CDROP_OP_F32_NT]
            _run(&job, _threads_for(n, num_threads))
            return True
        finally:
            if not same:
                PyBuffer_Release(&dv)
    finally:
        PyBuffer_Release(&sv)


def keep_mask(out, int64_t n, uint64_t seed, uint64_t offset, double p, Py_ssize_t num_threads,
              bint packed):
    """Write the keep mask of ``n`` elements into the contiguous byte array ``out``.

    ``packed=False``: one byte 0/1 per element (``out`` has n bytes, e.g. a bool array);
    ``packed=True``: little-endian bit order, ``out`` has ceil(n/8) bytes, zero on entry.
    Raises ValueError, having written nothing, if ``out`` has another size or is read-only.
    """
    cdef Py_buffer ov
    cdef cdrop_job job
    if n <= 0:
        return
    PyObject_GetBuffer(out, &ov, PyBUF_WRITABLE)  # PyBUF_SIMPLE: contiguous bytes
    try:
        _check_mask(&ov, n, packed)  # buffer checks (see _check_pair)
        _init_args(&job, seed, offset, p)
        job.args.src = NULL
        job.args.dst = ov.buf
        job.n = n
        job.walk = CDROP_WALK_CONTIG
        job.fn = _kt.op[CDROP_OP_BITS if packed else CDROP_OP_U8]
        # packed: chunk starts on whole bytes, so that no byte is written by two threads
        job.gran = 8 if packed else 1
        _run(&job, _threads_for(n, num_threads))
    finally:
        PyBuffer_Release(&ov)


def keep_mask_block(out, uint64_t seed, uint64_t offset, double p, Py_ssize_t num_threads,
                    istrides):
    """The keep mask of a block of a larger C-ordered array into ``out``, a writeable 1-byte
    array of the block's shape (any strides): element ``i`` gets the keep flag (0/1) of counter
    ``offset + sum(i[d] * istrides[d])`` (see :func:`apply`).  Needs 0 < p < 1.
    Raises ValueError, having written nothing, if ``out`` is read-only, has items of another
    size, or ``istrides`` has another length than ``out.ndim``.
    """
    cdef Py_buffer ov
    cdef cdrop_job job
    cdef int64_t n = 1
    cdef int d
    PyObject_GetBuffer(out, &ov, PyBUF_STRIDES | PyBUF_WRITABLE)
    try:
        if ov.itemsize != 1:
            raise ValueError(f"keep_mask_block: out has items of {ov.itemsize} bytes; expected 1")
        if ov.ndim > 64:
            raise ValueError(f"keep_mask_block: out has {ov.ndim} dimensions (at most 64)")
        for d in range(ov.ndim):
            n *= ov.shape[d]
        _init_args(&job, seed, offset, p)
        _block_layout(&job, NULL, &ov, istrides)
        if n == 0:
            return
        job.args.src = NULL
        job.args.dst = ov.buf
        job.n = n
        job.walk = CDROP_WALK_BLOCK
        job.drop_run = NULL
        job.op = CDROP_OP_U8
        job.fn = job.keep = _kt.op[CDROP_OP_U8]
        _run(&job, _threads_for(n, num_threads))
    finally:
        PyBuffer_Release(&ov)


# --- The dropout family (issue 11): apply_variant --------------------------------------------
cdef int _vrun(const cdrop_vjob *job, int nt) except -1:
    # As _run: the job's pieces, serially or shared out to nt threads, each thread with its own
    # scratch for the piece's keep bytes or normals (none for a keep array).
    cdef int64_t npieces = cdrop_vjob_pieces(job)
    cdef int64_t c
    cdef uint8_t *scratch = NULL
    if job.src != CDROP_SRC_KEEP_ARRAY:
        nt = min(nt, 256)
        scratch = <uint8_t *>malloc(<size_t>(nt * CDROP_SCRATCH_BYTES))
        if scratch == NULL:
            raise MemoryError()
    try:
        with nogil:
            if nt == 1:
                cdrop_vjob_run(job, 0, npieces, scratch)
            else:
                for c in prange(npieces, schedule="static", num_threads=nt):
                    cdrop_vjob_run(job, c, c + 1,
                                   scratch + threadid() * CDROP_SCRATCH_BYTES if scratch else NULL)
    finally:
        free(scratch)
    return 0


cdef int _check_operand(const Py_buffer *sv, const Py_buffer *ov, str name,
                        Py_ssize_t itemsize) except -1:
    # apply_variant: operand `name` has src's ndim and shape and items of `itemsize` bytes.
    cdef int d
    if ov.itemsize != itemsize:
        raise ValueError(
            f"apply_variant: {name} has items of {ov.itemsize} bytes; expected {itemsize}")
    if ov.ndim != sv.ndim:
        raise ValueError(f"apply_variant: {name} has {ov.ndim} dimensions, src {sv.ndim}")
    if ov.ndim > 0 and (ov.shape == NULL or ov.strides == NULL):
        raise ValueError(f"apply_variant: {name} has no shape or strides")
    for d in range(sv.ndim):
        if ov.shape[d] != sv.shape[d]:
            raise ValueError(
                f"apply_variant: {name} and src differ in dimension {d}: "
                f"{ov.shape[d]} != {sv.shape[d]}")
    return 0


cdef inline Py_ssize_t _bias_stride(const Py_buffer *bv, int ndim, int d) noexcept:
    # A bias of x's ndim has its own strides; a 1-D row of x's last length (dropout_add's
    # common bias, passed without a broadcast view: NumPy takes microseconds to make one and
    # to export its buffer) is broadcast along the leading axes.
    if bv.ndim == ndim:
        return bv.strides[d]
    return bv.strides[0] if d == ndim - 1 else 0


cdef int _check_row(const Py_buffer *sv, const Py_buffer *bv, Py_ssize_t itemsize) except -1:
    # apply_variant: a 1-D bias is a row of src's last length, with src's item size.
    if bv.itemsize != itemsize:
        raise ValueError(
            f"apply_variant: bias has items of {bv.itemsize} bytes; expected {itemsize}")
    if bv.shape == NULL or bv.strides == NULL or bv.shape[0] != sv.shape[sv.ndim - 1]:
        raise ValueError("apply_variant: a 1-D bias must have src's last length")
    return 0


cdef void _vlayout(cdrop_vjob *job, const Py_buffer *sv, const Py_buffer *dv,
                   const Py_buffer *rv, const Py_buffer *bv, const Py_buffer *kv) noexcept:
    # The shape and the five stride vectors into the job, dropping length-1 axes and merging
    # neighbours that are laid out as one in every operand (an absent operand follows x; keep
    # bytes made from the stream are in C order, which always merges).
    cdef int nd = 0
    cdef int d
    cdef Py_ssize_t n, x, y, r, b, k
    for d in range(sv.ndim):
        n = sv.shape[d]
        if n == 1:
            continue
        x = sv.strides[d]
        y = dv.strides[d]
        r = rv.strides[d] if rv != NULL else x
        b = _bias_stride(bv, sv.ndim, d) if bv != NULL else x
        k = kv.strides[d] if kv != NULL else 0
        if (nd > 0 and job.sx[nd - 1] == x * n and job.sy[nd - 1] == y * n
                and job.sr[nd - 1] == r * n and job.sb[nd - 1] == b * n
                and job.sk[nd - 1] == k * n):
            job.shape[nd - 1] *= n
            job.sx[nd - 1] = x
            job.sy[nd - 1] = y
            job.sr[nd - 1] = r
            job.sb[nd - 1] = b
            job.sk[nd - 1] = k
            continue
        job.shape[nd] = n
        job.sx[nd] = x
        job.sy[nd] = y
        job.sr[nd] = r
        job.sb[nd] = b
        job.sk[nd] = k
        nd += 1
    if nd == 0:  # a 0-d array, or every axis of length 1: one element
        job.shape[0] = 1
        job.sx[0] = job.sy[0] = job.sr[0] = job.sb[0] = job.sk[0] = 0
        nd = 1
    job.ndim = nd


cdef bint _c_order(const Py_buffer *v) noexcept:
    # C-contiguous: strides of the C-ordered array of this shape (length-1 axes: any stride)
    cdef Py_ssize_t want = v.itemsize
    cdef int d
    for d in range(v.ndim - 1, -1, -1):
        if v.shape[d] != 1 and v.strides[d] != want:
            return False
        want *= v.shape[d]
    return True


cdef bint _fused(const Py_buffer *sv, const Py_buffer *dv, const Py_buffer *rv,
                 const Py_buffer *bv) noexcept:
    # The fused kernels (consumer_family.inc.h) take C-contiguous x, y and residual, where
    # logical index = memory index, and a bias that is one contiguous row repeated along the
    # leading axes (np.broadcast_to of a 1-D array).
    cdef int d, last = sv.ndim - 1
    if not (_c_order(sv) and _c_order(dv) and (rv == NULL or _c_order(rv))):
        return False
    if bv != NULL and last >= 0:
        for d in range(last):
            if sv.shape[d] != 1 and _bias_stride(bv, sv.ndim, d) != 0:
                return False
        if sv.shape[last] != 1 and _bias_stride(bv, sv.ndim, last) != bv.itemsize:
            return False
    return True


# "No bias" for the fused dropout_add: a row of -0.0, the additive identity (x + -0.0 is x,
# -0.0 included), so that one kernel serves both.
cdef float _NO_BIAS_F32[64]
cdef double _NO_BIAS_F64[64]


cdef void _init_no_bias() noexcept:
    cdef int i
    for i in range(64):
        _NO_BIAS_F32[i] = -0.0
        _NO_BIAS_F64[i] = -0.0


_init_no_bias()


cdef int _run_fused(int op, const Py_buffer *sv, const Py_buffer *dv, const Py_buffer *rv,
                    const Py_buffer *bv, int64_t n, uint64_t seed, uint64_t offset, double p,
                    double c0, double c1, double c2, int nt) except -1:
    # alpha_dropout / dropout_add on contiguous float32/float64: the mask producer's loop with
    # the family's consumer inlined (one pass, no keep bytes stored).
    cdef cdrop_job job
    cdef bint f64 = sv.itemsize == 8
    _init_args(&job, seed, offset, p)
    job.args.scale = c0
    job.args.c1 = c1
    job.args.c2 = c2
    job.args.src = sv.buf
    job.args.dst = dv.buf
    job.args.res = rv.buf if rv != NULL else NULL
    if bv != NULL:
        job.args.bias = bv.buf
        job.args.bias_n = sv.shape[sv.ndim - 1] if sv.ndim > 0 else 1
    else:
        if f64:
            job.args.bias = <const void *>&_NO_BIAS_F64[0]
        else:
            job.args.bias = <const void *>&_NO_BIAS_F32[0]
        job.args.bias_n = 64
    if op == CDROP_VOP_ALPHA:
        job.op = CDROP_OP_ALPHA_F64 if f64 else CDROP_OP_ALPHA_F32
    elif dv.buf == rv.buf:  # into the residual: a lost tie could not be undone, so final masks
        job.op = CDROP_OP_ADDF_F64 if f64 else CDROP_OP_ADDF_F32
    else:
        job.op = CDROP_OP_ADD_F64 if f64 else CDROP_OP_ADD_F32
    job.fn = _kt.op[job.op]
    job.keep = _kt.op[CDROP_OP_U8]
    job.n = n
    job.walk = CDROP_WALK_CONTIG
    job.ndim = 1
    _run(&job, nt)
    return 0


def apply_variant(int op, src, dst, uint64_t seed, uint64_t offset, double p,
                  Py_ssize_t num_threads, keep=None, residual=None, bias=None,
                  double c0=0.0, double c1=0.0, double c2=0.0, bint bf16=False):
    """One operation of the dropout family (cdrop/_src/variant.h) from ``src`` into ``dst``.

    ``op``: OP_DROP ``k ? x*c0 : +0``, OP_ALPHA ``k ? x*c0 + c1 : c2``, OP_ADD
    ``residual + (k ? (x + bias)*c0 : +0)``, OP_GMUL ``x * (1 + c0*z)``, OP_GADD ``x + c0*z``,
    in the dtype's precision (float32 for float16/bfloat16, whose results are rounded once, or
    at each step for OP_ADD).  The keep flag k: ``keep``, a bool/uint8 array of src's shape
    (any strides, 0 included: a broadcast noise-shape mask), or None for the stream's mask of
    (seed, offset, p), which then needs 0 < p < 1.  z: the float32 normal of (seed, global
    index).  The item size says the dtype, as for :func:`apply` (``bf16``).  ``residual``
    (OP_ADD only, required) and ``bias`` (OP_ADD only: a broadcast view of src's shape, or a
    1-D row of src's last length, broadcast along the other axes) have src's dtype.  ``dst``
    may be ``src`` or, for OP_ADD, ``residual``, element for element (the caller checks
    overlaps).

    Returns False, having written nothing, if an operand is not aligned for its dtype.  Raises
    ValueError, having written nothing, if the operands disagree (ndim, shape, item size), an
    operand is missing or not allowed for ``op``, or ``dst`` is read-only.
    """
    cdef Py_buffer bufs[5]
    cdef int nbuf = 0
    cdef Py_buffer *sv
    cdef Py_buffer *dv
    cdef Py_buffer *rv = NULL
    cdef Py_buffer *bv = NULL
    cdef Py_buffer *kv = NULL
    cdef cdrop_vjob job
    cdef int64_t n = 1
    cdef int d, dt, vop = op
    cdef Py_ssize_t isz
    if op < CDROP_VOP_DROP or op > CDROP_VOP_GADD:
        raise ValueError(f"apply_variant: unknown operation {op}")
    if (residual is None) != (op != CDROP_VOP_ADD) or (bias is not None and op != CDROP_VOP_ADD):
        raise ValueError("apply_variant: OP_ADD takes a residual (and a bias); the others neither")
    if keep is not None and (op == CDROP_VOP_GMUL or op == CDROP_VOP_GADD):
        raise ValueError("apply_variant: OP_GMUL and OP_GADD take no keep array")
    try:
        PyObject_GetBuffer(src, &bufs[0], PyBUF_STRIDES | (PyBUF_WRITABLE if dst is src else 0))
        nbuf = 1
        sv = &bufs[0]
        dv = sv
        if dst is not src:
            PyObject_GetBuffer(dst, &bufs[nbuf], PyBUF_STRIDES | PyBUF_WRITABLE)
            dv = &bufs[nbuf]
            nbuf += 1
        if residual is not None:
            PyObject_GetBuffer(residual, &bufs[nbuf], PyBUF_STRIDES)
            rv = &bufs[nbuf]
            nbuf += 1
        if bias is not None:
            PyObject_GetBuffer(bias, &bufs[nbuf], PyBUF_STRIDES)
            bv = &bufs[nbuf]
            nbuf += 1
        if keep is not None:
            PyObject_GetBuffer(keep, &bufs[nbuf], PyBUF_STRIDES)
            kv = &bufs[nbuf]
            nbuf += 1
        _check_pair(sv, dv)  # ndim <= 64, shapes, item sizes, dst writeable
        isz = sv.itemsize
        if rv != NULL:
            _check_operand(sv, rv, "residual", isz)
        if bv != NULL:
            if bv.ndim == 1 and sv.ndim > 1:  # a row along the last axis (_bias_stride)
                _check_row(sv, bv, isz)
            else:
                _check_operand(sv, bv, "bias", isz)
        if kv != NULL:
            _check_operand(sv, kv, "keep", 1)
        if not (_aligned(sv) and _aligned(dv) and (rv == NULL or _aligned(rv))
                and (bv == NULL or _aligned(bv))):
            return False
        for d in range(sv.ndim):
            n *= sv.shape[d]
        if n == 0:
            return True
        if isz == 2:
            dt = CDROP_DT_BF16 if bf16 else CDROP_DT_F16
        else:
            dt = CDROP_DT_F64 if isz == 8 else CDROP_DT_F32
        if op == CDROP_VOP_ADD and bv == NULL:
            vop = CDROP_VOP_ADD_NB
        if (kv == NULL and (op == CDROP_VOP_ALPHA or op == CDROP_VOP_ADD) and isz != 2
                and _fused(sv, dv, rv, bv)):
            _run_fused(op, sv, dv, rv, bv, n, seed, offset, p, c0, c1, c2,
                       _threads_for(n, num_threads))
            return True
        job.key = cdrop_key(seed)
        job.g0 = offset
        # the threshold only where the stream's mask is drawn: with a keep array (or normals) p
        # is unused and may be anything, and converting NaN or an out-of-range (1 - p) * 2**32
        # to uint32 is undefined behaviour in C
        job.thr = 0
        if kv == NULL and op != CDROP_VOP_GMUL and op != CDROP_VOP_GADD:
            job.thr = cdrop_threshold(p)
        job.c.c0 = c0
        job.c.c1 = c1
        job.c.c2 = c2
        job.n = n
        job.run = _kt.vrun[vop][dt]
        job.keep = _kt.op[CDROP_OP_U8]
        job.normals = _kt.normals
        if op == CDROP_VOP_GMUL or op == CDROP_VOP_GADD:
            job.src = CDROP_SRC_NORMAL
        elif kv != NULL:
            job.src = CDROP_SRC_KEEP_ARRAY
        else:
            job.src = CDROP_SRC_KEEP_STREAM
        job.x = <const char *>sv.buf
        job.y = <char *>dv.buf
        job.r = <const char *>(rv.buf if rv != NULL else sv.buf)
        job.b = <const char *>(bv.buf if bv != NULL else sv.buf)
        job.k = <const char *>(kv.buf if kv != NULL else NULL)
        _vlayout(&job, sv, dv, rv, bv, kv)
        _vrun(&job, _threads_for(n, num_threads))
        return True
    finally:
        for d in range(nbuf):
            PyBuffer_Release(&bufs[d])


def _scale_inplace(float[::1] x, float c, int num_threads):
    """``x *= c`` on a contiguous float32 array with ``num_threads`` OpenMP threads.

    Not part of dropout: it is the benchmarks' memory-bandwidth floor for more than one thread
    (one read and one write of every element, the same static schedule over the same blocks as
    the dropout kernels), which NumPy cannot give since its ufuncs run on one thread.
    """
    cdef int64_t n = x.shape[0]
    cdef int64_t c_, lo, hi
    cdef float *ptr
    if n == 0:
        return
    ptr = &x[0]
    with nogil:
        for c_ in prange((n + CDROP_BLOCK - 1) // CDROP_BLOCK, schedule="static",
                         num_threads=num_threads):
            lo = c_ * <int64_t>CDROP_BLOCK
            hi = lo + <int64_t>CDROP_BLOCK if lo + <int64_t>CDROP_BLOCK < n else n
            cdrop_scale_f32(ptr + lo, hi - lo, c)
