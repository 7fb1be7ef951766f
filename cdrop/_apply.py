"""The compiled entry of the dropout family (``_kernels.apply_variant``) as the Python layer
calls it: operation codes, bfloat16 views and the aligned copies that a misaligned operand
needs (made before the seed is drawn, so that a call that cannot finish consumes nothing).

Until the lead's ``_kernels.apply_variant`` lands (issue 11, contract section 1), a pure-NumPy
stand-in with the contract's semantics takes its place.  TEMPORARY: delete ``_standin_variant``
and its helpers once ``_kernels`` has ``apply_variant``.
"""
from __future__ import annotations

import numpy as np

from . import _kernels

_U16 = np.dtype(np.uint16)
_ndarray = np.ndarray


def kernel_aligned(a):
    """True if the C kernels can read `a` as typed elements: its data address and every stride
    are multiples of the item size (NumPy's ``aligned`` flag ignores the strides of length-1
    axes, which the kernels do not)."""
    size = a.itemsize
    if a.__array_interface__["data"][0] % size:
        return False
    return all(s % size == 0 for s in a.strides)


def aligned(a):
    """`a` itself if the kernels can read it, else an aligned copy of the same layout (the
    caller makes it before drawing the seed: it allocates)."""
    if a is None or kernel_aligned(a):
        return a
    c = np.empty_like(a)
    np.copyto(c, a)
    return c


# ---------------------------------------------------------------------------------------------
# TEMPORARY stand-in for _kernels.apply_variant (contract section 1), pure NumPy.
# ---------------------------------------------------------------------------------------------
_S_DROP, _S_ALPHA, _S_ADD, _S_GMUL, _S_GADD = range(5)
_MASK64 = (1 << 64) - 1


def _standin_normals(seed, offset, n):  # pragma: no cover - replaced by the kernel
    """Counter-based float32 standard normals of global indices offset .. offset + n - 1.

    NOT docs/rng.md's normal stream (which wip-normal specifies): a placeholder with the right
    shape of dependence (seed, global index), so that offsets and layouts behave as the kernel's.
    """
    g = np.uint64(offset) + np.arange(n, dtype=np.uint64)
    key = np.uint64(_kernels.hash64(_kernels.hash64(seed) ^ 0xBB67AE8584CAA73B))

    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    with np.errstate(over="ignore"):
        h = mix(mix(g ^ key) + np.uint64(0x9E3779B97F4A7C15))
    u1 = ((h >> np.uint64(40)).astype(np.float64) + 0.5) / float(1 << 24)
    u2 = ((h & np.uint64(0xFFFFFF)).astype(np.float64)) / float(1 << 24)
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)


def _standin_variant(op, src, dst, seed, offset, p, num_threads, keep=None, residual=None,
                     bias=None, c0=0.0, c1=0.0, c2=0.0, bf16=False):  # pragma: no cover
    for name, a in (("dst", dst), ("residual", residual), ("bias", bias), ("keep", keep)):
        if a is not None and (a.ndim != src.ndim or a.shape != src.shape):
            raise ValueError(f"apply_variant: {name} and src differ in shape")
    if src.itemsize not in (2, 4, 8) or dst.itemsize != src.itemsize:
        raise ValueError("apply_variant: item sizes")
    if not dst.flags.writeable:
        raise ValueError("apply_variant: dst is read-only")
    if not all(kernel_aligned(a) for a in (src, dst, residual, bias) if a is not None):
        return False
    half = src.itemsize == 2
    if half:
        import ml_dtypes

        hdt = ml_dtypes.bfloat16 if bf16 else np.float16
        src, dst, residual, bias = (None if a is None else a.view(hdt)
                                    for a in (src, dst, residual, bias))
    wt = np.float64 if src.itemsize == 8 else np.float32
    C0, C1, C2 = wt(c0), wt(c1), wt(c2)
    x = src.astype(wt)
    n = src.size
    if op in (_S_GMUL, _S_GADD):
        z = _standin_normals(seed, offset, n).reshape(src.shape).astype(wt)
    elif keep is None:
        k = np.zeros(n, dtype=bool)
        _kernels.keep_mask(k, n, seed, offset, p, 1, False)
        k = k.reshape(src.shape)
    else:
        k = np.asarray(keep, dtype=bool)
    with np.errstate(all="ignore"):
        if op == _S_DROP:
            y = np.where(k, x * C0, wt(0))
        elif op == _S_ALPHA:
            y = np.where(k, x * C0 + C1, C2)
        elif op == _S_GMUL:
            y = x * (wt(1) + C0 * z)
        elif op == _S_GADD:
            y = x + C0 * z
        else:  # _S_ADD: each step rounded to x's type (for half: to the half type)
            ht = src.dtype
            t = src if bias is None else (x + bias.astype(wt)).astype(ht)
            d = np.where(k, (t.astype(wt) * C0).astype(ht), ht.type(0))
            y = residual.astype(wt) + d.astype(wt)
        np.copyto(dst, y.astype(dst.dtype))
    return True


if hasattr(_kernels, "apply_variant"):
    _variant = _kernels.apply_variant
    OP_DROP, OP_ALPHA, OP_ADD = _kernels.OP_DROP, _kernels.OP_ALPHA, _kernels.OP_ADD
    OP_GMUL, OP_GADD = _kernels.OP_GMUL, _kernels.OP_GADD
else:  # pragma: no cover - until the kernel lands
    _variant = _standin_variant
    OP_DROP, OP_ALPHA, OP_ADD, OP_GMUL, OP_GADD = _S_DROP, _S_ALPHA, _S_ADD, _S_GMUL, _S_GADD


def run(op, src, dst, seed, offset, p, n_threads, keep=None, residual=None, bias=None,
        c0=0.0, c1=0.0, c2=0.0):
    """``_kernels.apply_variant`` on operands the caller made kernel-aligned (:func:`aligned`);
    ml_dtypes.bfloat16 arrays go in as uint16 views (they cannot export a buffer)."""
    bf16 = False
    if src.dtype.kind == "V":  # bfloat16, the one such dtype that gets here (check_dtype)
        src, dst, bf16 = src.view(_U16), dst.view(_U16), True
        residual = None if residual is None else residual.view(_U16)
        bias = None if bias is None else bias.view(_U16)
    if not _variant(op, src, dst, seed, offset, p, n_threads, keep, residual, bias,
                    c0, c1, c2, bf16):
        # cannot happen: kernel_aligned is the kernel's own rule
        raise RuntimeError("cdrop internal error: apply_variant refused aligned operands")
