"""TEMPORARY (wip-torch): a pure-NumPy stand-in for ``_kernels.apply_variant`` (issue 11's
contract, section 1) until the lead's kernel lands on main.  Deleted when main is merged.

The masks are the real ones (``_kernels.keep_mask``); the normals of OP_GMUL/OP_GADD are a
placeholder (splitmix64 + float64 Box-Muller per global index), not wip-normal's transform.
"""
import math

import numpy as np

from . import _kernels

OP_DROP, OP_ALPHA, OP_ADD, OP_GMUL, OP_GADD = range(5)
_U16 = np.dtype(np.uint16)


def _keep(shape, seed, offset, p):
    n = math.prod(shape)
    m = np.zeros(n, dtype=bool)
    if n:
        _kernels.keep_mask(m, n, seed, offset, p, 1, False)
    return m.reshape(shape)


def _splitmix(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _normals(shape, seed, offset):
    n = math.prod(shape)
    with np.errstate(over="ignore"):
        g = np.arange(n, dtype=np.uint64) + np.uint64(offset)
        w = _splitmix(g ^ _splitmix(np.uint64(seed)))
    u1 = ((w >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
    u2 = (w & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32
    z = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    return z.astype(np.float32).reshape(shape)


def _widen(a, bf16):
    if bf16:
        return (a.view(_U16).astype(np.uint32) << np.uint32(16)).view(np.float32)
    return a.astype(np.float32)


def _narrow(v, bf16):
    v = np.asarray(v, dtype=np.float32)
    if not bf16:
        return v.astype(np.float16)
    b = v.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(v)
    r[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def apply_variant(op, src, dst, seed, offset, p, num_threads, keep=None, residual=None,
                  bias=None, c0=0.0, c1=0.0, c2=0.0, bf16=False):
    if src.shape != dst.shape or src.itemsize != dst.itemsize:
        raise ValueError("src and dst disagree")
    half = src.itemsize == 2
    wt = np.float64 if src.itemsize == 8 else np.float32
    C0, C1, C2 = wt(c0), wt(c1), wt(c2)
    x = _widen(src, bf16) if half else src
    shape = src.shape
    if op in (OP_DROP, OP_ALPHA, OP_ADD):
        k = _keep(shape, seed, offset, p) if keep is None else np.asarray(keep, dtype=bool)
    with np.errstate(all="ignore"):
        if op == OP_DROP:
            y = np.where(k, x * C0, wt(0))
        elif op == OP_ALPHA:
            y = np.where(k, x * C0 + C1, C2)
        elif op == OP_GMUL:
            y = x * (wt(1) + C0 * _normals(shape, seed, offset).astype(wt))
        elif op == OP_GADD:
            y = x + C0 * _normals(shape, seed, offset).astype(wt)
        elif op == OP_ADD:
            r = _widen(residual, bf16) if half else residual
            if half:
                t = x if bias is None else _widen(_narrow(x + _widen(bias, bf16), bf16), bf16)
                d = _widen(_narrow(np.where(k, t * C0, wt(0)), bf16), bf16)
                y = r + d
            else:
                t = x if bias is None else x + bias
                y = r + np.where(k, t * C0, wt(0))
        else:
            raise ValueError(f"bad op {op}")
        y = np.asarray(y, dtype=wt)
    if half:
        np.copyto(dst.view(_U16), _narrow(y, bf16).view(_U16))
    else:
        np.copyto(dst, y)
    return True
