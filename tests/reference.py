"""Pure-NumPy reference implementation of cdrop's random stream ("stream v1").

This module is the executable twin of ``docs/rng.md``: every function below follows one
section of that document, written from the text alone and not from the C sources, so that a
disagreement with the compiled kernels points either at a kernel bug or at an imprecise
sentence in the spec.

It is deliberately slow and simple.  There are no tricks beyond vectorising over blocks and
lanes, because the value of a reference
lies in being easy to check against the document line by line.  It depends on NumPy only.
(The 256 steps of a block are a plain Python loop.)  The one concession to speed is that
``draws`` remembers its last few results (it is a pure function of its arguments), so that the
test suite's many comparisons against the same stream segment cost one run of the loop.

Public API::

    mix64(z) -> int                         # section 1, Python ints
    hash64(x) -> int                        # section 1, Python ints
    derive(a, b) -> int                     # section 1, Python ints
    hash64_array(arr) -> ndarray[uint64]    # section 1, element-wise on a uint64 array
    draws(seed, offset, n) -> ndarray[uint32]
    threshold(p) -> int                     # section 6
    keep_mask(shape, p, seed, offset=0) -> ndarray[bool]
    dropout_ref(x, p, seed, offset=0) -> ndarray   # also float16 and ml_dtypes.bfloat16
    packed_mask(shape, p, seed, offset=0) -> ndarray[uint8]
    normal_key(key) -> int                  # "Normal numbers": the normal stream's key
    normal_words(seed, offset, n) -> ndarray[uint32]
    normals_from_words(w) -> ndarray[float32]   # the float32 transform, bit for bit
    normals(seed, offset, n) -> ndarray[float32]
    normals_from_words_f64(w) -> ndarray[float64]   # float64 Box-Muller, for self-checks only
"""

import functools
import math
import operator
from fractions import Fraction

import numpy as np

__all__ = [
    "mix64",
    "hash64",
    "derive",
    "hash64_array",
    "draws",
    "threshold",
    "keep_mask",
    "dropout_ref",
    "packed_mask",
    "normal_key",
    "normal_words",
    "normals_from_words",
    "normals",
    "normals_from_words_f64",
]

# --------------------------------------------------------------------------------------------
# Constants of the spec.
# --------------------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64 increment (section 1)
MIX_C1 = 0xBF58476D1CE4E5B9  # Stafford Mix13 multipliers (section 1)
MIX_C2 = 0x94D049BB133111EB

BLOCK_BITS = 14
BLOCK = 1 << BLOCK_BITS  # 16384 elements per block (section 3)
LANES = 16
GROUP = 4 * LANES  # 64 elements per step: 4 bytes of each of the 16 lane outputs (section 5)
STEPS = BLOCK // GROUP  # 256 outputs per lane and block
TIE_DOMAIN = 0x6A09E667F3BCC909  # section 5: the tie hash's domain constant

# NumPy-typed copies of the constants.  Mixing a uint64 array with a numpy uint64 scalar keeps
# every operation in uint64 whatever NumPy's promotion rules are, and array arithmetic wraps
# modulo 2^64 silently (only numpy *scalar* arithmetic warns about overflow).
_U64_GOLDEN = np.uint64(GOLDEN)
_U64_C1 = np.uint64(MIX_C1)
_U64_C2 = np.uint64(MIX_C2)
_U64_MASK32 = np.uint64(MASK32)


def _u64(k):
    return np.uint64(k)


def _u32(k):
    return np.uint32(k)


# --------------------------------------------------------------------------------------------
# Section 1: hashes.
# --------------------------------------------------------------------------------------------


def _mix64_int(z):
    """splitmix64 output function on a Python int; `& MASK64` emulates 64-bit wrap-around."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX_C1) & MASK64
    z = ((z ^ (z >> 27)) * MIX_C2) & MASK64
    return z ^ (z >> 31)


def mix64(z):
    """splitmix64 output function (Stafford Mix13) on a Python int, result in [0, 2^64)."""
    return _mix64_int(operator.index(z))


def hash64(x):
    """hash64(x) = mix64(x + 0x9E3779B97F4A7C15) on Python ints, result in [0, 2^64)."""
    return _mix64_int((operator.index(x) + GOLDEN) & MASK64)


def derive(a, b):
    """derive(a, b) = hash64(a ^ hash64(b)) on Python ints."""
    return hash64((operator.index(a) & MASK64) ^ hash64(b))


def _mix64_array(z):
    # z is a 1-d uint64 array (never 0-d: a 0-d result would become a numpy scalar and numpy
    # scalar arithmetic warns on overflow, whereas array arithmetic wraps silently).
    z = (z ^ (z >> _u64(30))) * _U64_C1
    z = (z ^ (z >> _u64(27))) * _U64_C2
    return z ^ (z >> _u64(31))


def hash64_array(arr):
    """Element-wise hash64 of a uint64 array (any shape); returns a new uint64 array."""
    a = np.asarray(arr)
    if a.dtype != np.uint64:
        # Accept non-negative integer arrays of other dtypes, but refuse silent sign tricks.
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"hash64_array needs an integer array, got {a.dtype}")
        if a.size and np.issubdtype(a.dtype, np.signedinteger) and a.min() < 0:
            raise ValueError("hash64_array needs non-negative values")
        a = a.astype(np.uint64)
    shape = a.shape
    flat = a.reshape(-1)  # 1-d so that every operation stays an array operation
    return _mix64_array(flat + _U64_GOLDEN).reshape(shape)


# --------------------------------------------------------------------------------------------
# Section 5: xoshiro128++ on arrays of independent lanes.
# --------------------------------------------------------------------------------------------


def _rotl32(x, k):
    # uint32 array shifts: bits shifted out on the left are discarded, as in C.
    return (x << _u32(k)) | (x >> _u32(32 - k))


def _lane_outputs(s0, s1, s2, s3, n, skip=0, scrambler="++"):
    """Outputs number skip .. n-1 of independent xoshiro128++ lanes (the spec's generator).

    ``scrambler="+"`` gives xoshiro128+ instead (the same state transition, output s0 + s3);
    only the self-check uses it.

    s0..s3 are uint32 arrays of one common shape S (one entry per lane); the inputs are not
    modified.  Returns a uint32 array of shape (n - skip,) + S whose [t] entry is output number
    skip + t of every lane.  Outputs 0 .. skip-1 are computed and thrown away: that is what the
    spec means by a misaligned offset "discarding" lane steps.
    """
    s0 = np.array(s0, dtype=np.uint32, ndmin=1)
    s1 = np.array(s1, dtype=np.uint32, ndmin=1)
    s2 = np.array(s2, dtype=np.uint32, ndmin=1)
    s3 = np.array(s3, dtype=np.uint32, ndmin=1)
    shape = np.broadcast_shapes(s0.shape, s1.shape, s2.shape, s3.shape)
    s0, s1, s2, s3 = (np.broadcast_to(s, shape).copy() for s in (s0, s1, s2, s3))
    n = operator.index(n)
    skip = operator.index(skip)
    if not 0 <= skip <= n:
        raise ValueError("need 0 <= skip <= n")
    out = np.empty((n - skip,) + shape, dtype=np.uint32)
    for step in range(n):
        if step >= skip:
            # out = s0 + s3   (uint32 array addition wraps mod 2^32)
            if scrambler == "+":
                out[step - skip] = s0 + s3
            else:
                out[step - skip] = _rotl32(s0 + s3, 7) + s0
        t = s1 << _u32(9)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl32(s3, 11)
    return out


# --------------------------------------------------------------------------------------------
# Sections 2-4: key and per-block lane states.
# --------------------------------------------------------------------------------------------


def _key(seed):
    seed = operator.index(seed)
    if not 0 <= seed <= MASK64:
        raise ValueError("seed must satisfy 0 <= seed < 2**64")
    return hash64(seed)


def _block_states(key, blocks):
    """Lane states of the given blocks (section 4).

    blocks: 1-d uint64 array of block indices.  Returns (s0, s1, s2, s3), each a uint32 array
    of shape (len(blocks), 16): entry [i, l] belongs to lane l of block blocks[i].
    """
    blocks = np.asarray(blocks, dtype=np.uint64).reshape(-1)
    # w(k) = hash64(key ^ hash64(32*b + k)), k = 0..31; b < 2^50 so 32*b + k cannot wrap.
    k = np.arange(2 * LANES, dtype=np.uint64)
    idx = blocks[:, None] * _u64(2 * LANES) + k[None, :]
    w = hash64_array(np.uint64(key) ^ hash64_array(idx))  # shape (nb, 32)
    w_even = w[:, 0::2]  # w(2l)
    w_odd = w[:, 1::2]  # w(2l + 1)
    s0 = (w_even & _U64_MASK32).astype(np.uint32)  # low 32 bits of w(2l)
    s1 = (w_even >> _u64(32)).astype(np.uint32)  # high 32 bits of w(2l)
    s2 = (w_odd & _U64_MASK32).astype(np.uint32)  # low 32 bits of w(2l+1)
    s3 = (w_odd >> _u64(32)).astype(np.uint32)  # high 32 bits of w(2l+1)
    # All-zero guard: xoshiro's all-zero state is a fixed point.
    zero = (s0 == 0) & (s1 == 0) & (s2 == 0) & (s3 == 0)
    s0[zero] = 1
    return s0, s1, s2, s3


# --------------------------------------------------------------------------------------------
# Sections 3 and 5: the draws u(g).
# --------------------------------------------------------------------------------------------


def _tie24(key, g):
    """Low 24 bits of the draws of the global indices g (uint64 array): section 5."""
    return (hash64_array(np.uint64(key ^ TIE_DOMAIN) ^ hash64_array(g)) >> _u64(40)).astype(
        np.uint32)


def draws(seed, offset, n):
    """uint32 array of the draws u(g) for g = offset .. offset + n - 1.

    u(g) = (byte(g) << 24) | tie24(g).  The bytes are vectorised over every block touched and
    its 16 lanes; the lane steps run as a Python loop, only up to the last step needed (and only
    from the first needed step is anything stored).  The reference computes tie24 for every
    element, which the kernels only do on ties: the keep decision is the same.

    The result is a new array that the caller may modify; the last few results are kept in a
    cache (see ``_draws_cached``).
    """
    offset = operator.index(offset)
    n = operator.index(n)
    if offset < 0 or n < 0 or offset + n > (1 << 64):
        raise ValueError("need 0 <= offset, 0 <= n, offset + n <= 2**64")
    seed = operator.index(seed)
    _key(seed)  # validate before the cache sees the seed
    return _draws_cached(seed, offset, n).copy()


# The arguments are Python ints (hashable, and equal values give equal keys whatever type the
# caller passed), checked by draws().  The cached array is read-only and draws() hands out
# copies, so no caller can change what a later call gets.  48 entries: enough for the oracle
# segments one test module reuses, small enough for the few large ones.
@functools.lru_cache(maxsize=48)
def _draws_cached(seed, offset, n):
    key = _key(seed)
    if n == 0:
        result = np.empty(0, dtype=np.uint32)
        result.setflags(write=False)
        return result
    first, last = offset, offset + n - 1
    b_first, b_last = first >> BLOCK_BITS, last >> BLOCK_BITS
    # Steps to run: with one block only the steps holding [first, last]; with several blocks
    # the first block needs steps up to 255 and the last one from step 0, so run them all.
    if b_first == b_last:
        step_lo = (first & (BLOCK - 1)) // GROUP
        step_hi = (last & (BLOCK - 1)) // GROUP
    else:
        step_lo, step_hi = 0, STEPS - 1
    blocks = np.arange(b_first, b_last + 1, dtype=np.uint64)
    s0, s1, s2, s3 = _block_states(key, blocks)
    out = _lane_outputs(s0, s1, s2, s3, step_hi + 1, skip=step_lo)  # (steps, nb, 16) uint32
    # Byte k of a step is byte k % 4 (little-endian) of lane k // 4's output: order the outputs
    # as (block, step, lane) and split each into its 4 bytes, least significant first.
    words = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(-1)
    shifts = np.arange(4, dtype=np.uint32) * np.uint32(8)
    flat = ((words[:, None] >> shifts[None, :]) & np.uint32(0xFF)).astype(np.uint32).reshape(-1)
    # flat[0] is the byte of global index b_first * BLOCK + GROUP * step_lo.
    start = first - (b_first * BLOCK + GROUP * step_lo)
    hi8 = flat[start:start + n]
    g = np.uint64(offset) + np.arange(n, dtype=np.uint64)  # offset + n <= 2^64: no wrap
    result = (hi8 << np.uint32(24)) | _tie24(key, g)
    assert result.shape == (n,) and result.dtype == np.uint32
    result.setflags(write=False)
    return result


# --------------------------------------------------------------------------------------------
# Section 6: keep or drop.
# --------------------------------------------------------------------------------------------


def _check_p(p):
    p = float(p)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"p must satisfy 0 <= p <= 1, got {p!r}")
    return p


def threshold(p):
    """thr = min(floor(keep * 2^32 + 0.5), 2^32 - 1) with keep = 1.0 - p in binary64."""
    p = _check_p(p)
    if not 0.0 < p < 1.0:
        raise ValueError("threshold is defined for 0 < p < 1 only")
    keep = 1.0 - p  # binary64 subtraction, round to nearest (Python floats are binary64)
    # The spec says the expression is exact in binary64; evaluating it with exact rationals
    # gives that exact value without trusting float rounding at all.
    thr = math.floor(Fraction(keep) * (1 << 32) + Fraction(1, 2))
    return min(thr, MASK32)


def _shape_tuple(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(operator.index(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape!r}")
    return shape


def keep_mask(shape, p, seed, offset=0):
    """Boolean keep mask (True = kept) of the given shape, logical C order."""
    shape = _shape_tuple(shape)
    p = _check_p(p)
    n = math.prod(shape)
    offset = operator.index(offset)
    if offset < 0 or offset + n > (1 << 64):
        raise ValueError("need 0 <= offset and offset + n <= 2**64")
    _key(seed)  # validate the seed even when no number is drawn
    if p == 0.0:
        return np.ones(shape, dtype=bool)  # keeps everything, draws nothing
    if p == 1.0:
        return np.zeros(shape, dtype=bool)  # drops everything, draws nothing
    thr = threshold(p)
    # keep <=> (u ^ 0x80000000) < thr, unsigned.  Compare as uint64 so thr (<= 2^32 - 1) is
    # representable whatever the promotion rules.
    u = (draws(seed, offset, n) ^ np.uint32(0x80000000)).astype(np.uint64)
    return (u < np.uint64(thr)).reshape(shape)


def dropout_ref(x, p, seed, offset=0):
    """Expected output of cdrop dropout of x: a new C-ordered array of x's shape and dtype."""
    x = np.asarray(x)
    # ml_dtypes.bfloat16 is not a NumPy floating type (kind "V"): named, not imported
    half = x.dtype == np.float16 or x.dtype.name == "bfloat16"
    if not (half or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"dropout_ref needs a floating-point array, got {x.dtype}")
    p = _check_p(p)
    # order="C" copy: the mask follows logical C-order indices, the memory layout plays no role.
    # (np.array rather than np.ascontiguousarray, which would turn a 0-d array into 1-d.)
    xc = np.array(x, dtype=x.dtype, order="C", copy=True)
    if p == 0.0:
        keep_mask(x.shape, p, seed, offset)  # argument validation only
        return xc  # exact copy, NaN payloads and -0.0 included
    mask = keep_mask(x.shape, p, seed, offset)
    out = np.zeros(x.shape, dtype=x.dtype)  # +0.0 everywhere: dropped elements, NaN/Inf too
    if p == 1.0:
        return out
    keep = 1.0 - p
    # scale = 1/keep in binary64, then rounded to x's dtype; the product is in x's dtype.
    # Overflow to inf (tiny keep, or huge x) and inf*0 -> NaN are legitimate results of that
    # recipe, so silence the corresponding warnings instead of letting them escape.
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        kept = xc[mask]
        if half:
            # Half precision (docs/rng.md): the scale rounded to float32, the product in
            # float32, the store rounded to nearest even by NumPy's / ml_dtypes' astype.
            scale32 = np.float32(np.float64(1.0) / np.float64(keep))
            out[mask] = (kept.astype(np.float32) * scale32).astype(x.dtype)
            return out
        scale = x.dtype.type(np.float64(1.0) / np.float64(keep))
        out[mask] = kept * np.array(scale, dtype=x.dtype)
    return out


# --------------------------------------------------------------------------------------------
# Section 8: packed masks.
# --------------------------------------------------------------------------------------------


def packed_mask(shape, p, seed, offset=0):
    """np.packbits of the flattened keep mask, little bit order (bit i%8 of byte i//8)."""
    return np.packbits(keep_mask(shape, p, seed, offset).ravel(), bitorder="little")


# --------------------------------------------------------------------------------------------
# Issue 11: the dropout family, from the equalities and the contract's rounding rules
# (cdrop's /work/briefs/contract11.md, section 1; docs/rng.md, "Half precision").  Each oracle
# returns a new C-ordered array of x's shape and dtype.  Half precision (float16 and
# ml_dtypes.bfloat16) computes in float32 and rounds once (RNE, by astype), except
# dropout_add_ref, which rounds after each step because it is defined as a composition.
# --------------------------------------------------------------------------------------------
__all__ += [  # noqa: PLE0605 - extended, not rebuilt, so that the sections merge cleanly
    "ALPHA_P",
    "noise_dropout_ref",
    "drop_path_ref",
    "alpha_ref",
    "gaussian_dropout_ref",
    "gaussian_noise_ref",
    "dropout_add_ref",
    "full_noise_shape",
]

ALPHA_P = -1.7580993408473766  # the (PyTorch's) alpha_p


def _is_half(dtype):
    return dtype == np.float16 or dtype.name == "bfloat16"


def _work(dtype):
    """The working type: float64 for float64, float32 for everything else."""
    return np.float64 if dtype == np.float64 else np.float32


def full_noise_shape(noise_shape, shape):
    """Keras: None entries of `noise_shape` are x's size on that axis."""
    return tuple(n if d is None else int(d) for d, n in zip(noise_shape, shape))


def _select_scale(x, keep, c0):
    """keep ? x * c0 : +0.0, c0 (binary64) rounded once to the working type."""
    x = np.array(x, order="C", copy=True)
    wt = _work(x.dtype)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        kept = x.astype(wt) * wt(c0)
        y = np.where(keep, kept, wt(0)).astype(x.dtype)
    return y


def noise_dropout_ref(x, p, seed, offset=0, noise_shape=None):
    """The issue's oracle for cdrop.dropout(x, p, seed=seed, offset=offset,
    noise_shape=noise_shape): the mask at noise-shape size, broadcast; p == 0 copies x,
    p == 1 gives zeros."""
    x = np.asarray(x)
    ns = x.shape if noise_shape is None else full_noise_shape(noise_shape, x.shape)
    if p == 0.0:
        return np.array(x, order="C", copy=True)
    if p == 1.0:
        return np.zeros(x.shape, x.dtype)
    keep = np.broadcast_to(keep_mask(ns, p, seed, offset), x.shape)
    return _select_scale(x, keep, np.float64(1.0) / np.float64(1.0 - p))


def drop_path_ref(x, p, seed, offset=0, scale_by_keep=True):
    """timm's drop_path with the mask dropout_mask((N, 1, ..., 1), p, seed, offset)."""
    x = np.asarray(x)
    ns = (x.shape[0],) + (1,) * (x.ndim - 1)
    if p == 0.0:
        return np.array(x, order="C", copy=True)
    if p == 1.0:
        return np.zeros(x.shape, x.dtype)
    keep = np.broadcast_to(keep_mask(ns, p, seed, offset), x.shape)
    return _select_scale(x, keep, 1.0 / (1.0 - p) if scale_by_keep else 1.0)


def alpha_ref(x, p, seed, offset=0, noise_shape=None):
    """keep ? x * a + b : a * alpha_p + b with the issue's constants (binary64, rounded once
    to the working type; the product and the sum each rounded in it); p == 0 copies x, p == 1
    gives zeros (PyTorch's)."""
    x = np.asarray(x)
    if p == 0.0:
        return np.array(x, order="C", copy=True)
    if p == 1.0:
        return np.zeros(x.shape, x.dtype)
    ns = x.shape if noise_shape is None else full_noise_shape(noise_shape, x.shape)
    keep = np.broadcast_to(keep_mask(ns, p, seed, offset), x.shape)
    a = ((1 - p) * (1 + p * ALPHA_P**2)) ** -0.5
    b = -a * ALPHA_P * p
    wt = _work(x.dtype)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        kept = x.astype(wt) * wt(a) + wt(b)
        y = np.where(keep, kept, wt(a * ALPHA_P + b))
    return y.astype(x.dtype)


def _normals(seed, offset, n):
    fn = globals().get("normals")  # wip-normal's oracle of docs/rng.md, "Normal numbers"
    if fn is None:
        raise NotImplementedError("reference.normals (the normal stream) is not written yet")
    return np.asarray(fn(seed, offset, n), dtype=np.float32)


def gaussian_dropout_ref(x, p, seed, offset=0):
    """x * (1 + sqrt(p/(1-p)) * z), rounded after each operation in the working type."""
    x = np.asarray(x)
    if p == 0.0:
        return np.array(x, order="C", copy=True)
    wt = _work(x.dtype)
    z = _normals(seed, offset, x.size).reshape(x.shape).astype(wt)
    c0 = wt(np.sqrt(np.float64(p) / np.float64(1.0 - p)))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return (x.astype(wt) * (wt(1) + c0 * z)).astype(x.dtype)


def gaussian_noise_ref(x, stddev, seed, offset=0):
    """x + stddev * z in the working type (stddev == 0 copies x)."""
    x = np.asarray(x)
    if stddev == 0.0:
        return np.array(x, order="C", copy=True)
    wt = _work(x.dtype)
    z = _normals(seed, offset, x.size).reshape(x.shape).astype(wt)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return (x.astype(wt) + wt(stddev) * z).astype(x.dtype)


def dropout_add_ref(x, residual, p, seed, offset=0, bias=None):
    """The issue's equality, literally: residual + dropout(x + bias) in x's precision."""
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        t = x if bias is None else np.add(x, np.asarray(bias, x.dtype))
    d = dropout_ref(t, p, seed, offset)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.add(np.asarray(residual, x.dtype), d).astype(x.dtype)


# --------------------------------------------------------------------------------------------
# "Normal numbers (gaussian_dropout, gaussian_noise)": the counter-based normal stream.
# --------------------------------------------------------------------------------------------

NORMAL_DOMAIN = 0xBB67AE8584CAA73B  # second word of SHA-512's initial value
NORMAL_BLOCK_BITS = 12
NORMAL_BLOCK = 1 << NORMAL_BLOCK_BITS  # 4096 elements: 256 steps of 16 lanes, a word each


def normal_key(key):
    """keyN = hash64(key ^ 0xBB67AE8584CAA73B) for a stream key (not a seed)."""
    return hash64(operator.index(key) ^ NORMAL_DOMAIN)


def normal_words(seed, offset, n):
    """uint32 words word(g) of the normal stream for g = offset .. offset + n - 1.

    word(g) is output number (g & 4095) >> 4 of lane g & 15 of normal block g >> 12, the lanes
    seeded as in section 4 with keyN instead of key.
    """
    offset = operator.index(offset)
    n = operator.index(n)
    if offset < 0 or n < 0 or offset + n > (1 << 64):
        raise ValueError("need 0 <= offset, 0 <= n, offset + n <= 2**64")
    keyn = normal_key(_key(seed))
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    first, last = offset, offset + n - 1
    b_first, b_last = first >> NORMAL_BLOCK_BITS, last >> NORMAL_BLOCK_BITS
    if b_first == b_last:
        step_lo = (first & (NORMAL_BLOCK - 1)) // LANES
        step_hi = (last & (NORMAL_BLOCK - 1)) // LANES
    else:
        step_lo, step_hi = 0, NORMAL_BLOCK // LANES - 1
    blocks = np.arange(b_first, b_last + 1, dtype=np.uint64)
    s0, s1, s2, s3 = _block_states(keyn, blocks)
    out = _lane_outputs(s0, s1, s2, s3, step_hi + 1, skip=step_lo)  # (steps, nb, 16)
    words = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(-1)  # (block, step, lane)
    start = first - (b_first * NORMAL_BLOCK + LANES * step_lo)
    return words[start:start + n].copy()


_F = np.float32


def _h(text):
    """A float32 constant from its hexadecimal spelling in the spec (exact: <= 24 bits)."""
    value = float.fromhex(text)
    assert float(np.float32(value)) == value, text
    return np.float32(value)


def _odd_float(w):
    """float32(2w + 1) rounded to nearest even, through two exact int32 conversions."""
    hi = (w >> np.uint32(16)).astype(np.int32).astype(_F)
    lo = (((w & np.uint32(0xFFFF)) << np.uint32(1)) | np.uint32(1)).astype(np.int32).astype(_F)
    return hi * _F(2.0**17) + lo


def _select(cond, x, y):
    # the C code selects on bits; on values np.where is the same thing
    return np.where(cond, x, y).astype(_F)


def normals_from_words(w):
    """The float32 Box-Muller transform of the spec: z[2m], z[2m+1] from w[2m], w[2m+1].

    Every operation below is one float32 operation of the spec, in its order; NumPy rounds each
    to nearest and never fuses a multiply with an add.
    """
    w = np.asarray(w, dtype=np.uint32).reshape(-1)
    if w.size % 2:
        raise ValueError("normals_from_words needs an even number of words")
    a, b = w[0::2], w[1::2]
    # Underflow happens (w = z * z for u within about 2^-30 of 1) and is harmless: see normal.h.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        # Radius: r^2 = -2 ln u, u = (a + 1/2) 2^-32, v = 1 - u, fdlibm's logf.
        u = _odd_float(a) * _F(2.0**-33)
        # 1 - u where k == 0 (a > 2^31: ~a converts as a non-negative int32); unused elsewhere
        v = (~a).astype(np.int32).astype(_F) * _F(2.0**-32) + _F(2.0**-33)
        ix = u.view(np.uint32) + np.uint32(0x3F800000 - 0x3F3504F3)
        k = (ix >> np.uint32(23)).astype(np.int32) - np.int32(127)
        ix = (ix & np.uint32(0x007FFFFF)) + np.uint32(0x3F3504F3)
        f = _select(k == 0, -v, ix.view(_F) - _F(1.0))
        s = f / (_F(2.0) + f)
        dk = k.astype(_F)
        z = s * s
        ww = z * z
        t1 = ww * (_h("0x1.999c26p-2") + ww * _h("0x1.f13c4cp-3"))
        t2 = z * (_h("0x1.555554p-1") + ww * _h("0x1.23d3dcp-2"))
        R = t2 + t1
        hfsq = _F(0.5) * f * f
        ln = dk * _h("0x1.62e3p-1") - (
            (hfsq - (s * (hfsq + R) + dk * _h("0x1.2fefa2p-17"))) - f)
        r = np.sqrt(_F(-2.0) * ln)
        # Angle: octant o, psi = pi (2t + 1) 2^-32 in (0, pi/4), t mirrored in odd octants.
        o = b >> np.uint32(29)
        t = (b & np.uint32(0x1FFFFFFF)) ^ (np.uint32(0) - (o & np.uint32(1))) & np.uint32(
            0x1FFFFFFF)
        psi = (np.uint32(2) * t + np.uint32(1)).astype(np.int32).astype(_F) * _h(
            "0x1.921fb6p-31")
        p2 = psi * psi
        sn = psi + psi * p2 * (_h("-0x1.555546p-3") + p2 * (
            _h("0x1.11073ep-7") + p2 * _h("-0x1.994522p-13")))
        cs = _F(1.0) + p2 * (_F(-0.5) + p2 * (_h("0x1.55553cp-5") + p2 * (
            _h("-0x1.6c07f6p-10") + p2 * _h("0x1.99177ap-16"))))
    swap = (((o + np.uint32(1)) >> np.uint32(1)) & np.uint32(1)) == 1
    cneg = (((o + np.uint32(2)) >> np.uint32(2)) & np.uint32(1)) << np.uint32(31)
    sneg = (o >> np.uint32(2)) << np.uint32(31)
    c = _select(swap, sn, cs)
    s_ = _select(swap, cs, sn)
    out = np.empty(w.size, dtype=_F)
    out[0::2] = r * (c.view(np.uint32) ^ cneg).view(_F)
    out[1::2] = r * (s_.view(np.uint32) ^ sneg).view(_F)
    return out


def normals(seed, offset, n):
    """float32 standard normals z(g) for g = offset .. offset + n - 1 (any offset, any n).

    The pairs are (even g, g + 1): the words are taken from the even index at or below offset
    to the pair that holds offset + n - 1, transformed, and cut to the n asked for.
    """
    offset = operator.index(offset)
    n = operator.index(n)
    if offset < 0 or n < 0 or offset + n > (1 << 64):
        raise ValueError("need 0 <= offset, 0 <= n, offset + n <= 2**64")
    if n == 0:
        _key(seed)
        return np.empty(0, dtype=_F)
    lo = offset & ~1
    hi = (offset + n + 1) & ~1  # <= 2^64: the last pair of the index space is whole
    z = normals_from_words(normal_words(seed, lo, hi - lo))
    return z[offset - lo:offset - lo + n]


def normals_from_words_f64(w):
    """Box-Muller in float64 from the same words, with NumPy's log, cos and sin.

    Independent of the float32 transform (no octants, no polynomials): r = sqrt(-2 ln u) with
    u = (a + 1/2) 2^-32 exact in float64 (log1p(-v) near u = 1), and the angle reduced to its
    quadrant q = b >> 30 exactly before cos and sin, so that values near 0 are accurate.
    """
    w = np.asarray(w, dtype=np.uint32).reshape(-1)
    a = w[0::2].astype(np.float64)
    b = w[1::2].astype(np.uint64)
    u = (a + 0.5) * 2.0**-32
    ln = np.where(u > 0.5, np.log1p(-(2.0**32 - a - 0.5) * 2.0**-32), np.log(u))
    r = np.sqrt(-2.0 * ln)
    q = b >> np.uint64(30)
    phi = ((b & np.uint64(0x3FFFFFFF)).astype(np.float64) + 0.5) * (2 * np.pi * 2.0**-32)
    c, s = np.cos(phi), np.sin(phi)
    # theta = q pi/2 + phi: rotate (cos phi, sin phi) by q quarter turns
    cos_t = np.choose(q.astype(np.intp), [c, -s, -c, s])
    sin_t = np.choose(q.astype(np.intp), [s, c, -s, -c])
    out = np.empty(w.size, dtype=np.float64)
    out[0::2] = r * cos_t
    out[1::2] = r * sin_t
    return out


# --------------------------------------------------------------------------------------------
# Issue 13: blocks of a larger array (docs/rng.md, "Blocks of a larger array").  An element's
# counter is its C-order index in the global array plus the offset: the oracle draws the
# stream over the range of counters the block touches and picks them out.
# --------------------------------------------------------------------------------------------
__all__ += ["block_counters", "block_keep_mask", "block_dropout_ref"]  # noqa: PLE0605


def block_counters(shape, global_shape, start, offset=0):
    """The counter of each element of the block (int64 array of `shape`; Python ints summed,
    then checked to fit)."""
    shape, global_shape = _shape_tuple(shape), _shape_tuple(global_shape)
    start = tuple(operator.index(s) for s in start)
    if not len(shape) == len(global_shape) == len(start):
        raise ValueError("shape, global_shape and start need one entry per axis")
    if any(s < 0 or s + n > g for s, n, g in zip(start, shape, global_shape)):
        raise ValueError("the block lies outside global_shape")
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype=object)
    if not shape:  # 0-d: the one element of a 0-d global array
        return np.full((), offset, dtype=object)
    idx = np.indices(shape, dtype=np.int64).reshape(len(shape), -1)
    flat = np.ravel_multi_index(tuple(idx[d] + start[d] for d in range(len(shape))), global_shape)
    return (flat.astype(object) + offset).reshape(shape)


def block_keep_mask(shape, p, seed, global_shape, start, offset=0):
    """The keep mask of a block: the stream over [min counter, max counter], picked out."""
    g = block_counters(shape, global_shape, start, offset)
    if g.size == 0:
        return np.ones(g.shape, dtype=bool)
    lo, hi = int(g.min()), int(g.max())
    span = keep_mask(hi - lo + 1, p, seed, lo)
    return span[np.asarray(g - lo).astype(np.int64)].reshape(g.shape)


def block_dropout_ref(x, p, seed, global_shape, start, offset=0):
    """Expected output of dropout of the block x (a new C-ordered array)."""
    x = np.asarray(x)
    xc = np.array(x, dtype=x.dtype, order="C", copy=True)
    if p == 0.0:
        return xc
    out = np.zeros(x.shape, dtype=x.dtype)
    if p == 1.0:
        return out
    mask = block_keep_mask(x.shape, p, seed, global_shape, start, offset)
    half = x.dtype == np.float16 or x.dtype.name == "bfloat16"
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if half:
            scale32 = np.float32(np.float64(1.0) / np.float64(1.0 - p))
            out[mask] = (xc[mask].astype(np.float32) * scale32).astype(x.dtype)
        else:
            scale = x.dtype.type(np.float64(1.0) / np.float64(1.0 - p))
            out[mask] = xc[mask] * np.array(scale, dtype=x.dtype)
    return out
