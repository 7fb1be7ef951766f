"""The compiled entry of the dropout family (``_kernels.apply_variant``) as the Python layer
calls it: operation codes, bfloat16 views and the aligned copies that a misaligned operand
needs (made before the seed is drawn, so that a call that cannot finish consumes nothing).
"""
from __future__ import annotations

import numpy as np

from . import _kernels

_U16 = np.dtype(np.uint16)
_ndarray = np.ndarray


def kernel_aligned(a):
    """True if the C kernels can read `a` as typed elements: its data address and every stride
    are multiples of the item size.

    NumPy's ``aligned`` flag checks the address and the strides of the axes longer than 1
    (against the dtype's alignment, which is the item size for cdrop's dtypes); the kernels
    check every stride, so those are looked at too.  (The flag first: reading the address
    through ``__array_interface__`` costs 3 us, a third of a small call.)"""
    size = a.itemsize
    if a.flags.aligned and a.dtype.alignment == size and a.size:  # (empty: NumPy says aligned)
        for s in a.strides:
            if s % size:
                return False
        return True
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


def broadcast_view(a, shape):
    """``np.broadcast_to(a, shape)`` for a C-contiguous `a`, built as ``np.ndarray(buffer=a)``:
    NumPy takes ~5 us to export the buffer of a broadcast_to view (this one: ~0.3 us), which is
    most of a small call.  Zero strides on the broadcast axes; writeable like `a`, but only
    ever read."""
    lead = len(shape) - a.ndim
    strides = [0] * lead + [0 if n == 1 else s for n, s in zip(a.shape, a.strides)]
    if a.dtype.kind == "V":  # bfloat16 cannot export a buffer: its bits through uint16
        return np.ndarray(shape, a.dtype, a.view(_U16), 0, strides)
    return np.ndarray(shape, a.dtype, a, 0, strides)


_variant = _kernels.apply_variant
OP_DROP, OP_ALPHA, OP_ADD = _kernels.OP_DROP, _kernels.OP_ALPHA, _kernels.OP_ADD
OP_GMUL, OP_GADD = _kernels.OP_GMUL, _kernels.OP_GADD


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
