"""cdrop for PyTorch: dropout of CPU tensors, with the same bits as :func:`cdrop.dropout`.

``import cdrop`` never imports this module (nor torch): ``import cdrop.torch`` does.

Design:

* ``cdrop::dropout`` (out of place) and ``cdrop::dropout_`` (in place) are custom operators
  (``torch.library.custom_op``) that run cdrop's kernels on the tensors' own memory, through a
  zero-copy NumPy view.  The out-of-place one has an autograd formula whose backward is the
  same operator applied to the gradient with the same (key, offset, p): no mask and no tensor
  is saved for backward, only the 0-d key tensor kept as a context attribute (8 bytes).
* The key is a 0-d int64 tensor, so that ``torch.compile`` carries it as a graph input and
  ``seed=None`` draws it in the graph from torch's generator (a Python int would be a constant
  of the graph).  Keys and offsets in [2**63, 2**64) travel as their int64 two's complement.
* ``seed=None`` and int seeds become the key through small operators of their own
  (``cdrop::draw_key``, ``cdrop::int_key``, ``cdrop::derived_key``), so that a compiled graph
  draws and derives keys as eager mode does.
* Eager calls with no tracing and no torch-function mode involved skip the dispatcher (it
  costs more than the kernel at 1,000 elements: 60 us against 14 us with autograd) and run
  the kernels directly, with autograd through an equivalent ``torch.autograd.Function``.
"""
from __future__ import annotations

import math
import os
import threading
import warnings
from typing import Union

import numpy as np

try:
    import torch
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cdrop.torch needs PyTorch: install it with the torch extra (pip install \".[torch]\" "
        f"from a source checkout) or pip install torch. Original error: {_exc}"
    ) from _exc
import torch.autograd.forward_ad as _fwad
from torch import Tensor, nn

from . import _kernels, _variants
from ._checks import (
    U64,
    as_flag,
    as_int,
    check_noise_shape,
    check_nonneg_real,
    check_offset,
    check_p,
)
from ._threads import MIN_PARALLEL

__all__ = [
    "AlphaDropout",
    "DropPath",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "DropoutAdd",
    "FeatureAlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "alpha_dropout",
    "drop_path",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "dropout_add",
    "feature_alpha_dropout",
    "gaussian_dropout",
    "gaussian_noise",
    "replace_dropout",
]

Seed = Union[int, torch.Generator, None]

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_TOP = 1 << 63
_apply = _kernels.apply
_is_compiling = torch.compiler.is_compiling
_grad_enabled = torch.is_grad_enabled
_dispatch_modes = torch._C._len_torch_dispatch_stack
_function_modes = torch._C._is_torch_function_mode_enabled
_tracing = torch._C._get_tracing_state  # torch.jit.trace: None when not tracing
_inference_mode = torch.is_inference_mode_enabled
_increment_version = torch.autograd.graph.increment_version
_graph_task = torch._C._current_graph_task_id  # -1 outside a backward pass
_ZERO = 0
# Every tensor cdrop.torch makes (keys, counts) is on the CPU, named: a default-device context
# (``with torch.device("meta")``, used to initialise models) would otherwise move a key, and the
# operator would run the meta kernel, leaving a CPU result unwritten.
_CPU = torch.device("cpu")


def _signed(v):
    """A uint64 as the int64 with the same bits (custom-op schemas have no unsigned ints)."""
    return v - U64 if v >= _TOP else v


def _view(t):
    """A NumPy array over tensor `t`'s memory (no copy), and whether it holds bfloat16."""
    t = t.detach()
    try:
        if t.dtype is torch.bfloat16:
            return t.view(torch.int16).numpy(), True
        return t.numpy(), False
    except RuntimeError:
        if _functorch_wrapped(t):  # vmap, jvp: a wrapper with no memory of its own
            raise TypeError("input is a tensor of a torch.func transform (vmap); cdrop.torch "
                            "supports torch.func.jvp only (docs/torch.md)") from None
        raise


_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


_BIG = 1 << 22  # NumPy asks for transparent huge pages from 4 MiB (its madvise threshold)


def _empty_like(t):
    """``torch.empty_like(t)`` (preserve_format).  A large contiguous one is allocated by NumPy,
    which asks the kernel for huge pages where torch's allocator does not: the page faults of a
    fresh 64 MiB tensor cost more than dropout itself (16M float32: 27 ms vs 11 ms to allocate
    and fill, median of 7, 1 thread)."""
    if t.numel() * t.element_size() < _BIG or not t.is_contiguous():
        return torch.empty_like(t)
    if t.dtype is torch.bfloat16:
        return torch.from_numpy(np.empty(tuple(t.shape), np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.empty(tuple(t.shape), _NUMPY[t.dtype]))


_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


def _fill(src, dst, key, offset, p):
    """dst = dropout(src) with the uint64 `key` and `offset` (dst may be src); CPU tensors."""
    if p == 1.0:
        dst.detach().zero_()  # +0.0 everywhere, also where src is NaN, as cdrop.dropout
        return
    if p == 0.0:
        if dst is not src:
            dst.detach().copy_(src.detach())
        return
    if src.is_neg():
        # a view with torch's negative bit (z.conj().imag): its memory holds -value, which
        # NumPy cannot see through; dropout of the values, written back through the view
        values = src.detach().resolve_neg()
        _fill(values, values, key, offset, p)
        dst.detach().copy_(values)
        return
    n = src.numel()
    # torch's intra-op thread count (set_num_threads) is the default; small calls use one
    threads = torch.get_num_threads() if n >= MIN_PARALLEL else 1
    s, bf16 = _view(src)
    d = s if dst is src else _view(dst)[0]
    if not _apply(s, d, key, offset, p, threads, dst is not src, bf16):
        # misaligned memory (a tensor over a byte buffer): through an aligned temporary
        tmp = s.copy()
        _apply(tmp, tmp, key, offset, p, threads, False, bf16)
        np.copyto(d, tmp)


@torch.library.custom_op("cdrop::dropout", mutates_args=(), device_types="cpu")
def _dropout_op(input: Tensor, key: Tensor, offset: int, p: float) -> Tensor:
    out = _empty_like(input)  # preserve_format: the memory format of input
    _fill(input, out, int(key) % U64, offset % U64, p)
    return out


@_dropout_op.register_fake
def _(input, key, offset, p):
    return torch.empty_like(input)


def _setup_context(ctx, inputs, output):
    # Python numbers and the 0-d key as attributes: save_for_backward is not used, so that
    # nothing per element is kept between forward and backward.
    _, ctx.key, ctx.offset, ctx.p = inputs


def _backward(ctx, grad):
    # d/dx of x * mask * scale is the same mask and scale, recomputed from the key
    return _dropout_op(grad, ctx.key, ctx.offset, ctx.p), None, None, None


_dropout_op.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("cdrop::dropout_", mutates_args=("input",), device_types="cpu")
def _dropout_inplace_op(input: Tensor, key: Tensor, offset: int, p: float) -> None:
    _fill(input, input, int(key) % U64, offset % U64, p)


@_dropout_inplace_op.register_fake
def _(input, key, offset, p):
    return None


def _check_input(input):
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if input.device.type != "cpu":
        raise ValueError(
            f"input is on device {str(input.device)!r}; cdrop runs on CPU tensors "
            "(move it with input.cpu(), or use torch.nn.functional.dropout there)"
        )
    dt = input.dtype
    if dt not in _FLOATS:
        raise TypeError(
            f"input has unsupported dtype {dt}; cdrop supports float32, float64, float16 and "
            "bfloat16 tensors"
        )


def _check_seed(seed, name="seed"):
    """None, a CPU torch.Generator, or what cdrop.dropout accepts (an int in [0, 2**64))."""
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError(f"{name} is a generator on device {str(seed.device)!r}; "
                             "cdrop needs a CPU generator")
        return seed
    if seed is None or type(seed) is int and 0 <= seed < U64:
        return seed
    what = "an int in [0, 2**64), a torch.Generator or None"
    if isinstance(seed, np.random.Generator):
        raise TypeError(f"{name} must be {what}, not a numpy.random.Generator")
    seed = as_int(seed, name, what)  # (cdrop.dropout's check would name numpy Generators)
    if not 0 <= seed < U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return seed


def _draw_key(generator=None):
    """A 64-bit key (0-d int64 tensor) from a torch generator (None: the default one)."""
    return torch.empty((), dtype=torch.int64, device=_CPU).random_(-_TOP, None, generator=generator)


# The draw of seed=None as an operator of its own, so that torch.compile calls it as it is and
# draws the same key from torch's default generator as eager does (Dynamo cannot trace random_,
# and Inductor would replace torch.randint by its own generator).  Its argument, a fresh
# torch.empty per call (which the graph's common-subexpression pass never merges), keeps two
# draws from being merged into one; the tag keeps the partitioner from recomputing a draw.
@torch.library.custom_op("cdrop::draw_key", mutates_args=(),
                         tags=(torch.Tag.nondeterministic_seeded,))
def _draw_op(unique: Tensor) -> Tensor:
    return _draw_key()


@_draw_op.register_fake
def _(unique):
    return torch.empty((), dtype=torch.int64, device=_CPU)


def _draw(generator):
    if generator is None:
        return _draw_op(torch.empty(0, device=_CPU)) if _is_compiling() else _draw_key()
    return _draw_key(generator)


# An int seed as the key tensor, under torch.compile: Dynamo makes an int that changes between
# calls a symbol, and Inductor's kernels hold symbols as int64, which seeds from 2**63 overflow.
# The halves are computed by the graph's Python wrapper, which calls this operator.
@torch.library.custom_op("cdrop::int_key", mutates_args=())
def _int_key_op(high: int, low: int) -> Tensor:
    return torch.tensor(_signed(high << 32 | low), dtype=torch.int64, device=_CPU)


@_int_key_op.register_fake
def _(high, low):
    return torch.empty((), dtype=torch.int64, device=_CPU)


@torch.library.custom_op("cdrop::derived_key", mutates_args=())
def _derived_key_op(high: int, low: int, calls: Tensor) -> Tensor:
    key = _kernels.derive(high << 32 | low, int(calls) % U64)
    return torch.tensor(_signed(key), dtype=torch.int64, device=_CPU)


@_derived_key_op.register_fake
def _(high, low, calls):
    return torch.empty((), dtype=torch.int64, device=_CPU)


def _int_key(seed):
    if _is_compiling():
        return _int_key_op(seed >> 32, seed & 0xFFFFFFFF)
    return torch.tensor(_signed(seed), dtype=torch.int64, device=_CPU)


_local = threading.local()


def _eager_key():
    """The key of seed=None as an int, drawn into a per-thread scratch tensor (allocating a
    0-d tensor costs more than the draw)."""
    try:
        scratch = _local.key
    except AttributeError:
        # a normal tensor even when the first call runs in inference mode: an inference tensor
        # could not be written outside it
        with torch.inference_mode(False):
            scratch = _local.key = torch.empty((), dtype=torch.int64, device=_CPU)
    return int(scratch.random_(-_TOP, None)) % U64


class _EagerDropout(torch.autograd.Function):
    """Eager autograd without the dispatcher: the values, gradients and version counters of
    ``cdrop::dropout``, for a quarter of its cost at 1,000 elements.  Nothing is saved for
    backward but three numbers."""

    @staticmethod
    def forward(ctx, input, key, offset, p):
        out = _empty_like(input)
        _fill(input, out, key, offset, p)
        ctx.key, ctx.offset, ctx.p = key, offset, p
        return out

    @staticmethod
    def backward(ctx, grad):
        return _EagerDropout.apply(grad, ctx.key, ctx.offset, ctx.p), None, None, None


def _refuse_leaf():
    raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                       "operation.")  # torch's own message for F.dropout(leaf, inplace=True)


def _refuse_inference():
    # torch's own message: NumPy would write an inference tensor that torch keeps read-only
    # outside inference mode
    raise RuntimeError("input: Inplace update to inference tensor outside InferenceMode is not "
                       "allowed. You can make a clone to get a normal tensor before doing "
                       "inplace update.")


def _check_inplace(input, p):
    """What in-place dropout of `input` refuses (its dtype, device and `p` checked), before a
    key is drawn or a layer's call number taken."""
    # (not under torch.compile, where Dynamo cannot trace the check)
    if not _is_compiling() and torch._debug_has_internal_overlap(input) == 1:
        # an expanded tensor: several elements are one memory location (torch refuses it too)
        raise ValueError("input has overlapping elements (a zero stride); clone() it first")
    if p == 0.0:
        return  # input is returned as it is, as torch does
    if input.requires_grad and _grad_enabled() and input.is_leaf:
        _refuse_leaf()
    if not _is_compiling() and input.is_inference() and not _inference_mode():
        _refuse_inference()  # (not under torch.compile: Dynamo cannot trace is_inference)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            seed: Seed = None, offset: int = 0, noise_shape=None) -> Tensor:
    """Inverted dropout of a CPU tensor: zero each element with probability `p`, scale the
    rest by 1/(1-p).  A drop-in for ``torch.nn.functional.dropout`` (same positional
    arguments), with autograd, ``torch.compile`` and no mask saved for backward.

    Parameters
    ----------
    input : torch.Tensor
        float32, float64, float16 or bfloat16, on the CPU, any shape and layout.
    p : float, default 0.5
        Probability of dropping an element, in [0, 1].
    training : bool, default True
        If False, return `input` itself, as torch does.
    inplace : bool, default False
        Write the result into `input` and return it (its version counter is bumped, so
        autograd refuses what it refuses for torch's in-place operations).
    seed : int, torch.Generator or None
        None (the default) draws a 64-bit key from torch's default CPU generator, so
        ``torch.manual_seed`` makes a run reproducible; a ``torch.Generator`` is drawn from
        instead; an int in [0, 2**64) is the key itself, as in :func:`cdrop.dropout`.
    offset : int, default 0
        Added to every element's C-order index, as in :func:`cdrop.dropout`.
    noise_shape : sequence of int or None, optional
        Keras' `noise_shape`: one entry per axis of `input`, each its size there (or None) or
        1, which shares one decision along that axis.  The mask is
        ``cdrop.dropout_mask(noise_shape, p, seed=seed, offset=offset)``, broadcast.

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor with `input`'s
        memory format.  For float32 and float64 the values are those of
        ``cdrop.dropout(input.numpy(), p, seed=seed, offset=offset)``, bit for bit; for
        float16 and bfloat16, kept elements are ``(x.float() * float32(scale))`` rounded to
        the dtype, on the same mask.

    Raises
    ------
    TypeError
        `input` not a tensor, or of an integer, bool or complex dtype; bad types of `p`,
        `training`, `inplace`, `seed` or `offset`.
    ValueError
        `input` (or a `seed` generator) not on the CPU; `p` outside [0, 1]; `seed` outside
        [0, 2**64); `offset` < 0 or past 2**64 - numel.

    Examples
    --------
    >>> import torch, cdrop, cdrop.torch
    >>> x = torch.ones(8)
    >>> y = cdrop.torch.dropout(x, 0.5, seed=42)
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> torch.equal(y, torch.from_numpy(cdrop.dropout(x.numpy(), 0.5, seed=42)))
    True
    >>> cdrop.torch.dropout(x, 0.5, training=False) is x
    True
    """
    # The common call, with no tracing or torch-function mode involved: the kernels run
    # directly, without the dispatcher (which costs more than the kernel at 1,000 elements),
    # and autograd, if needed, through _EagerDropout.  The values are those of the operators.
    if noise_shape is not None:
        seed = _check_seed(seed)
        return _execute(_plan_noise(input, p, training, inplace, offset, noise_shape), seed)
    if (training is True and type(p) is float and 0.0 < p < 1.0 and offset is _ZERO
            and type(input) is Tensor and input.is_cpu and input.dtype in _FLOATS
            and (seed is None or type(seed) is int and 0 <= seed < U64)
            and (inplace is False or inplace is True and input.is_contiguous())
            and not _is_compiling() and not _dispatch_modes() and not _function_modes()
            and _tracing() is None and _fwad._current_level < 0):
        grad = input.requires_grad and _grad_enabled()
        if inplace:  # before the draw: a call that raises draws nothing
            if grad and input.is_leaf:
                _refuse_leaf()
            if input.is_inference() and not _inference_mode():
                _refuse_inference()
        key = seed if seed is not None else _eager_key()
        if grad:
            out = _EagerDropout.apply(input, key, 0, p)
            # copy_: the version counter, and torch's refusal of a leaf that requires grad
            return input.copy_(out) if inplace else out
        if inplace:
            _fill(input, input, key, 0, p)
            _increment_version(input)
            return input
        out = _empty_like(input)
        _fill(input, out, key, 0, p)
        return out

    _check_input(input)
    p = check_p(p)
    training = as_flag(training, "training")
    inplace = as_flag(inplace, "inplace")
    seed = _check_seed(seed)
    n = input.numel()
    if isinstance(n, Tensor):  # torch.jit.trace makes numel() a tensor
        n = int(n)
    offset = check_offset(offset, n)
    if inplace and training:
        _check_inplace(input, p)
    if not training or p == 0.0:
        return input  # what torch.nn.functional.dropout returns there
    if _fwad._current_level >= 0 and not _is_compiling():
        primal, tangent = _fwad.unpack_dual(input)
        if tangent is not None:
            # forward-mode AD (the custom operators have no forward formula, and would drop
            # the tangent): the tangent goes through the same mask and scale as the primal
            if seed is None or isinstance(seed, torch.Generator):
                seed = int(_draw_key(seed)) % U64  # last: nothing can fail any more
            out = _fwad.make_dual(dropout(primal, p, seed=seed, offset=offset),
                                  dropout(tangent, p, seed=seed, offset=offset))
            return input.copy_(out) if inplace else out
    if seed is None or isinstance(seed, torch.Generator):
        key = _draw(seed)  # last: nothing can fail any more
    else:
        key = _int_key(seed)
    return _run_op(input, key, _signed(offset), p, inplace)


def _run_op(input, key, offset, p, inplace):
    """Dropout through the operators, with the key as a tensor and the offset as an int64."""
    if not inplace:
        return _dropout_op(input, key, offset, p)
    if input.requires_grad and _grad_enabled() or not _is_compiling() and input.is_neg():
        # autograd through the out-of-place operator; copy_ bumps the version counter and
        # refuses a leaf that requires grad, as torch's in-place dropout does.  (torch's
        # fallback for the negative bit cannot run a mutating custom operator: copy_ can.)
        return input.copy_(_dropout_op(input, key, offset, p))
    _dropout_inplace_op(input, key, offset, p)
    return input


# ---------------------------------------------------------------------------------------------
# The dropout family (issue 11): every variant runs through one pair of operators,
# cdrop::variant and cdrop::variant_, whose `op` says which formula of _kernels.apply_variant
# runs (contract: OP_DROP, OP_ALPHA, OP_ADD, OP_GMUL, OP_GADD) with the constants c0, c1, c2.
# A channel-wise mask is drawn inside the operator at the noise shape's size from the same
# (key, offset) and broadcast, so that backward recomputes it too and nothing is saved.
# ---------------------------------------------------------------------------------------------
_apply_variant = _kernels.apply_variant
_OP_DROP, _OP_ALPHA, _OP_ADD, _OP_GMUL, _OP_GADD = (
    _kernels.OP_DROP, _kernels.OP_ALPHA, _kernels.OP_ADD, _kernels.OP_GMUL, _kernels.OP_GADD)

_alpha_constants = _variants.alpha_constants  # PyTorch's (a, b, a * alpha' + b)


def _keep_array(shape, ns, key, offset, p):
    """The keep flags for apply_variant: None (the kernel draws them element by element) or a
    bool array broadcast to `shape` (a mask at noise shape `ns`, or a constant for p 0 or 1)."""
    if ns is None and 0.0 < p < 1.0:
        return None
    if p == 0.0 or p == 1.0:
        return np.broadcast_to(np.bool_(p == 0.0), shape)
    n = math.prod(ns)
    mask = np.zeros(n, dtype=np.bool_)
    _kernels.keep_mask(mask, n, key, offset, p, torch.get_num_threads() if n >= MIN_PARALLEL
                       else 1, False)
    # the broadcast view by hand: np.broadcast_to costs 3 us, more than the kernel at 1,000
    strides, step = [], 1
    for size in reversed(ns):
        strides.append(step if size != 1 else 0)
        step *= size
    return np.ndarray(shape, np.bool_, buffer=mask, strides=strides[::-1])


def _values(t):
    """A tensor with torch's negative bit as the values it shows (a copy); others as they are."""
    return t.detach().resolve_neg() if t.is_neg() else t


def _variant_fill(src, dst, spec, residual, bias):
    """dst = variant(src) for spec = (key, offset, p, op, c0, c1, c2, noise_shape), key and
    offset uint64 ints (dst may be src); CPU tensors of one dtype."""
    if src.is_neg():
        values = src.detach().resolve_neg()
        _variant_fill(values, values, spec, residual, bias)
        dst.detach().copy_(values)
        return
    n = src.numel()
    if n == 0:
        return
    key, offset, p, op, c0, c1, c2, ns = spec
    if ns is not None and -1 in ns:  # a traced call's axes that follow the input: see _Plan
        ns = [size if k == -1 else k for k, size in zip(ns, src.shape)]
    threads = torch.get_num_threads() if n >= MIN_PARALLEL else 1
    s, bf16 = _view(src)
    d = s if dst is src else _view(dst)[0]
    masked = op in (_OP_DROP, _OP_ALPHA, _OP_ADD)
    keep = _keep_array(s.shape, ns, key, offset, p) if masked else None
    r = None if residual is None else _view(_values(residual))[0]
    b = None if bias is None else _view(_values(bias).expand(src.shape))[0]
    if not _apply_variant(op, s, d, key, offset, p, threads, keep, r, b, c0, c1, c2, bf16):
        # misaligned memory (a tensor over a byte buffer): through aligned copies
        tmp = s.copy()
        _apply_variant(op, tmp, tmp, key, offset, p, threads, keep,
                       None if r is None else r.copy(), None if b is None else b.copy(),
                       c0, c1, c2, bf16)
        np.copyto(d, tmp)


def _grads(grad, spec, bias_shape, run, needs=(True, True, True)):
    """(grad_input, grad_residual, grad_bias) of a variant, with run(t, spec) applying an
    operator spec to t: the mask (or the normals) recomputed from the key, nothing saved.
    `needs`: which of the three autograd asks for (_OP_ADD skips the pass it does not need)."""
    key, offset, p, op, c0, c1, c2, ns = spec
    if op == _OP_GADD:
        return grad, None, None  # y = x + c0 * z
    if op == _OP_GMUL:
        return run(grad, spec), None, None  # y = x * (1 + c0 * z)
    if op == _OP_ADD and not (needs[0] or needs[2] and bias_shape is not None):
        return None, grad, None  # only the residual's: no pass over the data
    # _OP_DROP, _OP_ALPHA (a kept element is a * x + b: d/dx is a = c0) and _OP_ADD's input
    gi = run(grad, (key, offset, p, _OP_DROP, c0, 0.0, 0.0, ns))
    if op != _OP_ADD:
        return gi, None, None
    return gi, grad, None if bias_shape is None else gi.sum_to_size(bias_shape)


@torch.library.custom_op("cdrop::variant", mutates_args=(), device_types="cpu")
def _variant_op(input: Tensor, key: Tensor, offset: int, p: float, op: int, c0: float,
                c1: float, c2: float, noise_shape: list[int] | None,
                residual: Tensor | None, bias: Tensor | None) -> Tensor:
    out = _empty_like(input)
    spec = (int(key) % U64, offset % U64, p, op, c0, c1, c2, noise_shape)
    _variant_fill(input, out, spec, residual, bias)
    return out


@_variant_op.register_fake
def _(input, key, offset, p, op, c0, c1, c2, noise_shape, residual, bias):
    return torch.empty_like(input)


def _run_variant_op(t, spec):
    return _variant_op(t, *spec, None, None)


def _variant_setup_context(ctx, inputs, output):
    # Python numbers and the 0-d key as attributes, as for cdrop::dropout: nothing saved
    input, key, offset, p, op, c0, c1, c2, ns, residual, bias = inputs
    ctx.spec = (key, offset, p, op, c0, c1, c2, ns)
    ctx.bias_shape = None if bias is None else bias.shape


def _variant_backward(ctx, grad):
    needs = ctx.needs_input_grad
    gi, gr, gb = _grads(grad, ctx.spec, ctx.bias_shape, _run_variant_op,
                        (needs[0], needs[9], needs[10]))
    return (gi,) + (None,) * 8 + (gr, gb)


_variant_op.register_autograd(_variant_backward, setup_context=_variant_setup_context)


@torch.library.custom_op("cdrop::variant_", mutates_args=("input",), device_types="cpu")
def _variant_inplace_op(input: Tensor, key: Tensor, offset: int, p: float, op: int, c0: float,
                        c1: float, c2: float, noise_shape: list[int] | None,
                        residual: Tensor | None, bias: Tensor | None) -> None:
    spec = (int(key) % U64, offset % U64, p, op, c0, c1, c2, noise_shape)
    _variant_fill(input, input, spec, residual, bias)


@_variant_inplace_op.register_fake
def _(input, key, offset, p, op, c0, c1, c2, noise_shape, residual, bias):
    return None


class _EagerVariant(torch.autograd.Function):
    """Eager autograd without the dispatcher: the values and gradients of ``cdrop::variant``
    (the spec holds the key as an int).  Nothing is saved for backward but numbers."""

    @staticmethod
    def forward(ctx, input, residual, bias, spec):
        out = _empty_like(input)
        _variant_fill(input, out, spec, residual, bias)
        ctx.spec = spec
        ctx.bias_shape = None if bias is None else bias.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        return (*_grads(grad, ctx.spec, ctx.bias_shape, _run_eager, ctx.needs_input_grad[:3]),
                None)


def _run_eager(t, spec):
    return _EagerVariant.apply(t, None, None, spec)


class _Plan:
    """A checked call of a variant, ready to run once its key is known."""

    __slots__ = ("input", "op", "p", "c0", "c1", "c2", "ns", "inplace", "offset", "residual",
                 "bias", "follow")

    def __init__(self, input, op, p, c0, c1=0.0, c2=0.0, ns=None, inplace=False, offset=0,
                 residual=None, bias=None, follow=None):
        self.input, self.op, self.p, self.c0, self.c1, self.c2 = input, op, p, c0, c1, c2
        # follow: per axis of ns, whether it is the input's size by rule (the batch and channel
        # axes of dropout2d, Keras' None) rather than by coincidence.  torch.jit.trace keeps the
        # operator's arguments as constants: there those axes go to the operator as -1 (the
        # input's size, read when it runs), so that a trace made with batch 1 draws one decision
        # per sample of a larger batch.
        self.follow = follow
        # a noise shape equal to the input's is the element-wise mask (same bits, no array);
        # not in a trace unless every axis follows the input (a (N, C, 1, 1) input there would
        # make every later input's dropout2d element-wise)
        self.ns = (None if ns is None or tuple(ns) == _shape(input) and (
            _tracing() is None or follow is not None and all(follow)) else list(ns))
        self.inplace, self.offset, self.residual, self.bias = inplace, offset, residual, bias


def _plain(t):
    """Whether `t` is a plain tensor (or a Parameter), whose memory the kernels may read
    directly.  A subclass (torch's __torch_dispatch__ wrappers, e.g. DTensor) goes through the
    operators, which its dispatch handles, as it does for cdrop::dropout."""
    cls = type(t)
    return cls is Tensor or cls is nn.Parameter


def _execute(plan, seed, key=None, via_op=False):
    """Run a checked plan with `seed` (None, a torch.Generator or an int, checked), or with
    `key`, a 0-d int64 tensor (a compiled layer's derived key).  A tensor instead of a plan
    (nothing to do: eval mode, p == 0) is returned as it is.  via_op: through the operators
    even in eager mode (torch.func's wrapped tensors have no memory of their own; the
    dispatcher unwraps them)."""
    if not isinstance(plan, _Plan):
        return plan
    input, residual, bias = plan.input, plan.residual, plan.bias
    random = plan.op in (_OP_GMUL, _OP_GADD) or 0.0 < plan.p < 1.0
    if not random and key is None:
        seed = 0  # p == 0 or 1: no key is needed, none is drawn
    if _fwad._current_level >= 0 and key is None and not _is_compiling():
        out = _dual(plan, seed)
        if out is not None:
            return out
    if (key is None and not via_op and not _is_compiling() and not _dispatch_modes()
            and not _function_modes() and _tracing() is None and _plain(input)
            and (residual is None or _plain(residual)) and (bias is None or _plain(bias))):
        # eager: the kernels directly, autograd through _EagerVariant
        if type(seed) is int:
            k = seed
        elif seed is None:
            k = _eager_key()
        else:
            k = int(_draw_key(seed)) % U64
        spec = (k, plan.offset, plan.p, plan.op, plan.c0, plan.c1, plan.c2, plan.ns)
        tensors = [t for t in (input, residual, bias) if t is not None]
        if _grad_enabled() and any(t.requires_grad for t in tensors):
            out = _EagerVariant.apply(input, residual, bias, spec)
            return input.copy_(out) if plan.inplace else out
        if plan.inplace:
            _variant_fill(input, input, spec, None, None)
            _increment_version(input)
            return input
        out = _empty_like(input)
        _variant_fill(input, out, spec, residual, bias)
        return out
    if key is None:
        key = _draw(seed) if seed is None or isinstance(seed, torch.Generator) else _int_key(seed)
    ns = plan.ns
    if ns is not None and plan.follow is not None and _tracing() is not None:
        ns = [-1 if f else n for f, n in zip(plan.follow, ns)]  # see _Plan
    args = (key, _signed(plan.offset), plan.p, plan.op, plan.c0, plan.c1, plan.c2, ns,
            residual, bias)
    if not plan.inplace:
        return _variant_op(input, *args)
    if input.requires_grad and _grad_enabled() or not _is_compiling() and input.is_neg():
        return input.copy_(_variant_op(input, *args))  # as _run_op: autograd, version counter
    _variant_inplace_op(input, *args)
    return input


def _dual(plan, seed):
    """Forward-mode AD (torch.autograd.forward_ad, torch.func.jvp), which the operators have no
    formula for: the primals through the plan and the tangents through its linear part, with
    one key.  None when no operand carries a tangent."""
    duals = [None if t is None else _fwad.unpack_dual(t)
             for t in (plan.input, plan.residual, plan.bias)]
    ti, tr, tb = (None if d is None else d.tangent for d in duals)
    if ti is None and tr is None and tb is None:
        return None
    if type(seed) is not int:
        seed = int(_draw_key(seed)) % U64  # last: nothing can fail any more
    primal = _Plan(duals[0].primal, plan.op, plan.p, plan.c0, plan.c1, plan.c2, plan.ns,
                   False, plan.offset, None if duals[1] is None else duals[1].primal,
                   None if duals[2] is None else duals[2].primal)
    y = _execute(primal, seed, via_op=True)
    op, shape = plan.op, tuple(y.shape)
    if op == _OP_ADD and tb is not None:
        ti = tb.expand(shape) if ti is None else ti + tb
    if ti is None:
        ty = None
    elif op == _OP_GADD:
        ty = ti  # y = x + c0 * z
    else:  # the same mask and scale (alpha: a), or the same normals (y = x * (1 + c0 * z))
        linear = _Plan(ti, _OP_GMUL if op == _OP_GMUL else _OP_DROP, plan.p, plan.c0,
                       offset=plan.offset)
        linear.ns = plan.ns
        ty = _execute(linear, seed, via_op=True)
    if op == _OP_ADD and tr is not None:
        ty = tr if ty is None else ty + tr
    out = _fwad.make_dual(y, torch.zeros_like(y) if ty is None else ty)
    return plan.input.copy_(out) if plan.inplace else out


def _start(input, p, training, inplace):
    """The checks every variant makes first, as dropout makes them."""
    _check_input(input)
    return check_p(p), as_flag(training, "training"), as_flag(inplace, "inplace")


def _shape(t):
    """t's shape as a tuple (of ints under torch.jit.trace, which makes sizes tensors)."""
    if _tracing() is not None:
        return tuple(int(n) for n in t.shape)
    return tuple(t.shape)


def _numel(input):
    n = input.numel()
    return int(n) if isinstance(n, Tensor) else n  # torch.jit.trace makes numel() a tensor


def _drop_plan(input, p, training, inplace, offset, ns, follow=None):
    """Dropout with the mask drawn at noise shape `ns` (checked against input); `follow` as
    in _Plan."""
    offset = check_offset(offset, math.prod(ns))
    if inplace and training:
        _check_inplace(input, p)
    if not training or p == 0.0:
        return input
    return _Plan(input, _OP_DROP, p, 1 / (1 - p) if p < 1.0 else 0.0, ns=ns, inplace=inplace,
                 offset=offset, follow=follow)


def _plan_noise(input, p, training, inplace, offset, noise_shape):
    p, training, inplace = _start(input, p, training, inplace)
    ns = check_noise_shape(noise_shape, _shape(input))
    follow = tuple(d is None for d in noise_shape)  # Keras' None: the input's size
    return _drop_plan(input, p, training, inplace, offset, ns, follow)


def _warn(msg):
    if not _is_compiling():
        warnings.warn(msg, UserWarning, stacklevel=4)


def _feature_noise(shape, what):
    """(N, C, 1, ...): torch's feature dropout (one decision per sample and channel)."""
    if len(shape) < 2:
        raise ValueError(f"input must have at least 2 dimensions for {what} (N, C, ...), got "
                         f"{len(shape)}")
    return tuple(shape[:2]) + (1,) * (len(shape) - 2)


def _channel_noise(name, shape):
    """The noise shape of dropout1d/2d/3d, with torch 2.13's shape rules."""
    nd = len(shape)
    if name == "dropout1d":
        if nd not in (2, 3):
            raise ValueError(f"input must be 2-D (C, L) or 3-D (N, C, L) for dropout1d, got "
                             f"{nd}-D")
        return (shape[0], 1) if nd == 2 else (shape[0], shape[1], 1)
    if name == "dropout2d":
        if nd not in (3, 4):
            _warn(f"dropout2d: Received a {nd}-D input to dropout2d, which torch deprecates; "
                  "dropout2d is for 3-D or 4-D inputs")
        elif nd == 3:
            # torch 2.13's rule, kept for a drop-in replacement: (N, C, L), not (C, H, W)
            _warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                  "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                  "as torch.nn.functional.dropout2d does; use dropout1d for that")
        return _feature_noise(shape, "dropout2d")
    if nd not in (4, 5):
        _warn(f"dropout3d: Received a {nd}-D input to dropout3d, which torch deprecates; "
              "dropout3d is for 4-D or 5-D inputs")
    if nd == 5:
        return _feature_noise(shape, "dropout3d")
    if nd == 0:
        raise ValueError("input must have at least 1 dimension for dropout3d, got 0")
    return (shape[0],) + (1,) * (nd - 1)  # unbatched: torch unsqueezes a batch axis


def _leading(ns, k):
    """`follow` (see _Plan) of a noise shape whose first k axes are the input's (N, C)."""
    return (True,) * k + (False,) * (len(ns) - k)


def _plan_channels(name, input, p, training, inplace, offset):
    p, training, inplace = _start(input, p, training, inplace)
    ns = _channel_noise(name, _shape(input))
    # the (N, C) or (C) axes: dropout1d's all but the last, dropout3d's 1 unless batched
    k = (len(ns) - 1 if name == "dropout1d" else 1 if name == "dropout3d" and len(ns) != 5
         else 2)
    return _drop_plan(input, p, training, inplace, offset, ns, _leading(ns, k))


def _plan_alpha(input, p, training, inplace, offset, feature):
    p, training, inplace = _start(input, p, training, inplace)
    shape = _shape(input)
    ns = _feature_noise(shape, "feature_alpha_dropout") if feature else shape
    follow = _leading(ns, 2 if feature else len(ns))
    if p == 1.0:  # no finite constants: every element dropped, +0.0
        return _drop_plan(input, p, training, inplace, offset, ns, follow)
    offset = check_offset(offset, math.prod(ns))
    if inplace and training:
        _check_inplace(input, p)
    if not training or p == 0.0:
        return input
    a, b, c2 = _alpha_constants(p)
    return _Plan(input, _OP_ALPHA, p, a, b, c2, ns=ns, inplace=inplace, offset=offset,
                 follow=follow)


def _plan_drop_path(input, p, training, scale_by_keep, inplace, offset):
    p, training, inplace = _start(input, p, training, inplace)
    scale_by_keep = as_flag(scale_by_keep, "scale_by_keep")
    shape = _shape(input)
    if not shape:
        raise ValueError("input must have at least 1 dimension for drop_path (axis 0: the "
                         "samples), got 0")
    ns = (shape[0],) + (1,) * (len(shape) - 1)
    plan = _drop_plan(input, p, training, inplace, offset, ns, _leading(ns, 1))
    if isinstance(plan, _Plan) and not scale_by_keep:
        plan.c0 = 1.0  # timm: kept samples are not scaled
    return plan


_check_gaussian_p = _variants.gaussian_p  # [0, 1): the variance p/(1-p) is infinite at 1


def _plan_gaussian_dropout(input, p, training, inplace, offset):
    _check_input(input)
    p = _check_gaussian_p(p)
    training, inplace = as_flag(training, "training"), as_flag(inplace, "inplace")
    offset = check_offset(offset, _numel(input))
    if inplace and training:
        _check_inplace(input, p)
    if not training or p == 0.0:
        return input
    return _Plan(input, _OP_GMUL, p, math.sqrt(p / (1 - p)), inplace=inplace, offset=offset)


def _check_stddev(stddev):
    return check_nonneg_real(stddev, "stddev")


def _plan_gaussian_noise(input, stddev, training, inplace, offset):
    _check_input(input)
    stddev = _check_stddev(stddev)
    training, inplace = as_flag(training, "training"), as_flag(inplace, "inplace")
    offset = check_offset(offset, _numel(input))
    if inplace and training:
        _check_inplace(input, 0.5 if stddev else 0.0)
    if not training or stddev == 0.0:
        return input
    return _Plan(input, _OP_GADD, 0.5, stddev, inplace=inplace, offset=offset)


def _check_operand(t, name, input):
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on device {str(t.device)!r}; cdrop runs on CPU tensors")
    if t.dtype != input.dtype:
        raise TypeError(f"{name} has dtype {t.dtype}, input has {input.dtype}: they must be "
                        "the same")


def _plan_dropout_add(input, residual, p, training, bias, offset):
    _check_input(input)
    _check_operand(residual, "residual", input)
    if residual.shape != input.shape:
        raise ValueError(f"residual must have input's shape {tuple(input.shape)}, got "
                         f"{tuple(residual.shape)}")
    if bias is not None:
        _check_operand(bias, "bias", input)
        # (torch.broadcast_shapes costs 30 us: more than the kernel at 1,000 elements)
        bs, xs = _shape(bias), _shape(input)
        if len(bs) > len(xs) or any(b != 1 and b != n for b, n in zip(bs[::-1], xs[::-1])):
            raise ValueError(f"bias of shape {tuple(bias.shape)} does not broadcast to input's "
                             f"shape {tuple(input.shape)}")
    p = check_p(p)
    training = as_flag(training, "training")
    offset = check_offset(offset, _numel(input))
    if not training:
        p = 0.0  # residual + (input + bias): every element kept, no key drawn
    return _Plan(input, _OP_ADD, p, 1 / (1 - p) if p < 1.0 else 0.0, offset=offset,
                 residual=residual, bias=bias)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              seed: Seed = None, offset: int = 0) -> Tensor:
    """Channel dropout of (N, C, L) or (C, L) tensors: ``torch.nn.functional.dropout1d``.

    One decision per (n, c), or per c unbatched: :func:`dropout` with ``noise_shape``
    ``(N, C, 1)`` or ``(C, 1)``.

    Parameters
    ----------
    input : torch.Tensor
        2-D or 3-D, float32, float64, float16 or bfloat16, on the CPU.
    p, training, inplace, seed, offset
        As in :func:`dropout` (`offset` counts in the noise shape).

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor.

    Raises
    ------
    ValueError
        `input` not 2-D or 3-D (torch raises a RuntimeError); otherwise as :func:`dropout`.
    TypeError
        As :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.dropout1d(torch.ones(2, 3, 4), 0.5, seed=1)
    >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_channels("dropout1d", input, p, training, inplace, offset), seed)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              seed: Seed = None, offset: int = 0) -> Tensor:
    """Channel dropout of (N, C, H, W) tensors: ``torch.nn.functional.dropout2d``.

    One decision per (n, c): :func:`dropout` with ``noise_shape`` ``(N, C, 1, 1)``.  torch
    2.13's shape rules: a 3-D input is (N, C, L) (not (C, H, W)), with torch's warning; other
    ranks from 2 up are dropped per (axis 0, axis 1) with a warning, as torch does.

    Parameters
    ----------
    input : torch.Tensor
        4-D (or 3-D), float32, float64, float16 or bfloat16, on the CPU.
    p, training, inplace, seed, offset
        As in :func:`dropout` (`offset` counts in the noise shape).

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor.

    Raises
    ------
    ValueError
        `input` with fewer than 2 dimensions; otherwise as :func:`dropout`.
    TypeError
        As :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.dropout2d(torch.ones(2, 3, 4, 4), 0.5, seed=1)
    >>> bool(((y == 0).all((2, 3)) | (y == 2).all((2, 3))).all())
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_channels("dropout2d", input, p, training, inplace, offset), seed)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              seed: Seed = None, offset: int = 0) -> Tensor:
    """Channel dropout of (N, C, D, H, W) or (C, D, H, W) tensors:
    ``torch.nn.functional.dropout3d``.

    One decision per (n, c), or per c unbatched (any rank but 5 is unbatched, with torch's
    warning for ranks other than 4).

    Parameters
    ----------
    input : torch.Tensor
        5-D or 4-D, float32, float64, float16 or bfloat16, on the CPU.
    p, training, inplace, seed, offset
        As in :func:`dropout` (`offset` counts in the noise shape).

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor.

    Raises
    ------
    ValueError
        A 0-d `input`; otherwise as :func:`dropout`.
    TypeError
        As :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.dropout3d(torch.ones(3, 2, 2, 2), 0.5, seed=1)
    >>> bool(((y == 0).all((1, 2, 3)) | (y == 2).all((1, 2, 3))).all())
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_channels("dropout3d", input, p, training, inplace, offset), seed)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False,
                  *, seed: Seed = None, offset: int = 0) -> Tensor:
    """Alpha dropout (self-normalising networks): ``torch.nn.functional.alpha_dropout``.

    ``a * (x if kept else alpha') + b`` with PyTorch's constants ``alpha' =
    -1.7580993408473766``, ``a = ((1 - p) * (1 + p * alpha'**2)) ** -0.5`` and
    ``b = -a * alpha' * p``; the keep mask is :func:`dropout`'s for the same seed and offset.
    Note torch's default ``training=False``.

    Parameters
    ----------
    input : torch.Tensor
        float32, float64, float16 or bfloat16, on the CPU, any shape and layout.
    p : float, default 0.5
        Probability of dropping an element, in [0, 1] (1: every element becomes +0.0).
    training : bool, default False
        As torch's: False returns `input` itself.
    inplace, seed, offset
        As in :func:`dropout`.

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor.  float32 and
        float64: ``x * a + b`` rounded after each operation, a dropped element ``a * alpha' +
        b`` rounded once; float16/bfloat16: computed in float32, rounded once.

    Raises
    ------
    TypeError, ValueError
        As :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.alpha_dropout(torch.zeros(1000), 0.2, True, seed=3)
    >>> len(set(y.tolist()))
    2
    """
    seed = _check_seed(seed)
    return _execute(_plan_alpha(input, p, training, inplace, offset, False), seed)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *, seed: Seed = None,
                          offset: int = 0) -> Tensor:
    """Channel-wise alpha dropout: ``torch.nn.functional.feature_alpha_dropout``.

    :func:`alpha_dropout` with one decision per (axis 0, axis 1), as torch's (a mask of noise
    shape ``(N, C, 1, ...)``).

    Parameters
    ----------
    input : torch.Tensor
        At least 2-D, float32, float64, float16 or bfloat16, on the CPU.
    p, training, inplace, seed, offset
        As in :func:`alpha_dropout` (`offset` counts in the noise shape).

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor.

    Raises
    ------
    ValueError
        `input` with fewer than 2 dimensions (torch raises a RuntimeError); as :func:`dropout`.
    TypeError
        As :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.feature_alpha_dropout(torch.zeros(4, 5, 6), 0.5, True, seed=3)
    >>> bool((y == y[:, :, :1]).all())
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_alpha(input, p, training, inplace, offset, True), seed)


def drop_path(input: Tensor, p: float = 0.0, training: bool = True, *, scale_by_keep=True,
              inplace: bool = False, seed: Seed = None, offset: int = 0) -> Tensor:
    """Stochastic depth: drop whole samples (axis 0), as timm's ``drop_path``.

    :func:`dropout` with ``noise_shape`` ``(N, 1, ..., 1)``; with ``scale_by_keep=False`` the
    kept samples are not scaled.

    Parameters
    ----------
    input : torch.Tensor
        At least 1-D, float32, float64, float16 or bfloat16, on the CPU.
    p : float, default 0.0
        Probability of dropping a sample (timm's `drop_prob`), in [0, 1].
    training : bool, default True
        False returns `input` itself.
    scale_by_keep : bool, default True
        Scale the kept samples by 1/(1-p).
    inplace, seed, offset
        As in :func:`dropout` (`offset` counts samples).

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor.

    Raises
    ------
    ValueError
        A 0-d `input`; otherwise as :func:`dropout`.
    TypeError
        As :func:`dropout`, and `scale_by_keep` not a bool.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.drop_path(torch.ones(6, 3), 0.5, seed=2, scale_by_keep=False)
    >>> bool(((y == 0).all(1) | (y == 1).all(1)).all())
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_drop_path(input, p, training, scale_by_keep, inplace, offset), seed)


def gaussian_dropout(input: Tensor, p: float = 0.5, training: bool = True, *,
                     inplace: bool = False, seed: Seed = None, offset: int = 0) -> Tensor:
    """Multiplicative Gaussian noise, as Keras' ``GaussianDropout``: ``x * (1 + s * z)`` with
    ``s = sqrt(p / (1 - p))`` and ``z`` cdrop's counter-based standard normal.

    Parameters
    ----------
    input : torch.Tensor
        float32, float64, float16 or bfloat16, on the CPU, any shape and layout.
    p : float, default 0.5
        Keras' `rate`, in [0, 1).
    training, inplace, seed, offset
        As in :func:`dropout`.

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``p == 0``) or a new tensor; the values of
        ``cdrop.gaussian_dropout`` for the same seed and offset.

    Raises
    ------
    ValueError
        ``p == 1``; otherwise as :func:`dropout`.
    TypeError
        As :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.gaussian_dropout(torch.ones(10000), 0.2, seed=5)
    >>> abs(float(y.mean()) - 1) < 0.02
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_gaussian_dropout(input, p, training, inplace, offset), seed)


def gaussian_noise(input: Tensor, stddev: float, training: bool = True, *,
                   inplace: bool = False, seed: Seed = None, offset: int = 0) -> Tensor:
    """Additive Gaussian noise, as Keras' ``GaussianNoise``: ``x + stddev * z``.

    Parameters
    ----------
    input : torch.Tensor
        float32, float64, float16 or bfloat16, on the CPU, any shape and layout.
    stddev : float
        Standard deviation of the noise, finite and >= 0.
    training, inplace, seed, offset
        As in :func:`dropout`.

    Returns
    -------
    torch.Tensor
        `input` (in place, ``training=False`` or ``stddev == 0``) or a new tensor; the values
        of ``cdrop.gaussian_noise`` for the same seed and offset.

    Raises
    ------
    TypeError
        `stddev` not a real number; otherwise as :func:`dropout`.
    ValueError
        `stddev` negative, infinite or NaN; otherwise as :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> y = cdrop.torch.gaussian_noise(torch.zeros(10000), 0.5, seed=5)
    >>> abs(float(y.std()) - 0.5) < 0.02
    True
    """
    seed = _check_seed(seed)
    return _execute(_plan_gaussian_noise(input, stddev, training, inplace, offset), seed)


def dropout_add(input: Tensor, residual: Tensor, p: float = 0.5, training: bool = True, *,
                bias: Tensor | None = None, seed: Seed = None, offset: int = 0) -> Tensor:
    """``residual + dropout(input + bias)`` in one pass (a transformer block's residual add).

    Parameters
    ----------
    input : torch.Tensor
        float32, float64, float16 or bfloat16, on the CPU, any shape and layout.
    residual : torch.Tensor
        input's dtype and shape.
    p : float, default 0.5
        Probability of dropping an element of ``input + bias``, in [0, 1].
    training : bool, default True
        False: ``residual + (input + bias)``, no dropout.
    bias : torch.Tensor, optional
        input's dtype, broadcast to input's shape (typically 1-D along the last axis).
    seed, offset
        As in :func:`dropout`: the mask is dropout's for input's shape.

    Returns
    -------
    torch.Tensor
        A new tensor: float32/float64 bit for bit ``residual + dropout(input + bias)`` in
        input's precision; float16/bfloat16 rounded after each step.  Autograd gives
        ``grad_input`` (the mask, recomputed), ``grad_residual`` and ``grad_bias`` (summed over
        the broadcast axes).

    Raises
    ------
    TypeError
        `residual` or `bias` not a tensor, or of another dtype; otherwise as :func:`dropout`.
    ValueError
        `residual` of another shape, `bias` that does not broadcast, a tensor not on the CPU;
        otherwise as :func:`dropout`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> x, r = torch.ones(2, 4), torch.full((2, 4), 10.0)
    >>> y = cdrop.torch.dropout_add(x, r, 0.5, bias=torch.ones(4), seed=1)
    >>> sorted(set(y.flatten().tolist()))
    [10.0, 14.0]
    """
    seed = _check_seed(seed)
    return _execute(_plan_dropout_add(input, residual, p, training, bias, offset), seed)


# Taken around reading and advancing a layer's call count, so that Python threads sharing a
# Dropout(seed=int) take distinct call numbers (as threads sharing a cdrop.Dropout do).  One lock
# for all layers: the section is a few hundred nanoseconds, and a module holds no lock that
# pickle, deepcopy or torch.save would have to skip.
_calls_lock = threading.Lock()


def _new_lock_after_fork():
    global _calls_lock
    _calls_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def _new_count():
    # a normal tensor even when made in inference mode: an inference tensor could not be
    # updated outside it, and the layer would fail on its first training call there
    with torch.inference_mode(False):
        return torch.zeros((), dtype=torch.int64, device=_CPU)


_Proxy = torch.fx.Proxy


def _fx_call(module, *args):
    """torch.fx.symbolic_trace of a model holding `module`: one call_module node, as FX records
    torch's own dropout modules (its leaves), so that a model still traces after
    replace_dropout (torchvision's feature extraction, FX quantization).  Tracing the forward
    instead would hand a Proxy to the input checks."""
    tracer = args[0].tracer
    return tracer.create_proxy("call_module", tracer.path_of_module(module), args, {})


class Dropout(nn.Module):
    """Drop-in replacement for ``torch.nn.Dropout``, running cdrop's kernels.

    Parameters
    ----------
    p : float, default 0.5
        Probability of dropping an element, in [0, 1].
    inplace : bool, default False
        Apply dropout in place.
    seed : int, torch.Generator or None
        None (the default): every call draws its key from torch's default generator
        (``torch.manual_seed`` makes runs reproducible).  A ``torch.Generator``: drawn from
        instead.  An int: call k (counting training-mode calls) uses the same mask as call k
        of ``cdrop.Dropout(seed=seed)``; a call that raises takes no call number, threads
        sharing the layer take distinct ones, and ``torch.utils.checkpoint`` cannot recompute
        such a layer (a RuntimeError: use None there).

    Raises
    ------
    TypeError
        `p` not a real number, `inplace` not a bool, or `seed` of another type.
    ValueError
        `p` outside [0, 1], or `seed` outside [0, 2**64).  A call checks its input as
        :func:`dropout` does (float32, float64, float16 or bfloat16 on the CPU).

    Notes
    -----
    Like ``torch.nn.Dropout`` it is in training mode after construction, follows
    ``.train()``/``.eval()`` and has no parameters and no buffers, so a ``state_dict`` is empty
    and copies, pickles and ``torch.save`` keep it as it is.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> layer = cdrop.torch.Dropout(0.2)
    >>> layer
    Dropout(p=0.2, inplace=False)
    >>> layer(torch.ones(3, 4)).shape
    torch.Size([3, 4])
    >>> torch.equal(layer.eval()(torch.ones(3)), torch.ones(3))
    True
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, seed: Seed = None) -> None:
        super().__init__()
        self.p = check_p(p)
        self.inplace = as_flag(inplace, "inplace")
        self.seed = _check_seed(seed)
        # Training-mode calls with an int seed, the position in its stream: a 0-d tensor (not
        # a buffer), because torch.compile recompiles a graph for every value of an int
        # attribute, and carries a tensor's in-place update.
        self._calls = _new_count()

    @property
    def calls(self) -> int:
        """Training-mode forward calls made so far with an int `seed` (the next call uses
        ``derive(seed, calls)``, as ``cdrop.Dropout`` does)."""
        return int(self._calls)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input: Tensor) -> Tensor:
        """Dropout of `input` in training mode, the identity in evaluation mode."""
        if isinstance(input, _Proxy):
            return _fx_call(self, input)
        seed = self.seed
        if type(seed) is int and self.training:
            if _is_compiling():
                # the derivation inside the graph (Dynamo cannot trace the compiled derive)
                _check_input(input)
                if self.p == 0.0:
                    # input itself, taking a call number as in eager mode (the eager branch
                    # below reads the graph task id, which Dynamo cannot trace)
                    self._calls.add_(1)
                    return input
                key = _derived_key_op(seed >> 32, seed & 0xFFFFFFFF, self._calls)
                self._calls.add_(1)
                return _run_op(input, key, 0, self.p, self.inplace)
            if _graph_task() != -1:
                # A forward run during a backward pass: torch.utils.checkpoint recomputing it.
                # The recomputation would take the next call number, whose mask differs from
                # the forward's, and give wrong gradients silently.
                raise RuntimeError(
                    "Dropout(seed=int) cannot be recomputed by torch.utils.checkpoint (the "
                    "recomputation would use another mask); use seed=None, whose draws from "
                    "torch's generator checkpoint replays"
                )
            # what dropout would refuse, refused before a call number is taken (a call that
            # raises takes none, as in cdrop.Dropout)
            _check_input(input)
            p, inplace = check_p(self.p), as_flag(self.inplace, "inplace")
            if inplace:
                _check_inplace(input, p)
            with _calls_lock:
                calls = self._calls
                n = int(calls)
                try:
                    calls.add_(1)
                except RuntimeError:
                    # an inference tensor outside inference mode (the layer was loaded or
                    # copied in it), which torch refuses after writing: a normal tensor
                    self._calls = torch.tensor(n + 1, device=_CPU)
            seed = _kernels.derive(seed, n)  # as cdrop.Dropout's call `n`
        return dropout(input, self.p, self.training, self.inplace, seed=seed)


class _SeededLayer(nn.Module):
    """What every cdrop.torch variant layer shares with :class:`Dropout`: the seed rules and
    the call count of an int seed (training-mode calls; call k uses ``derive(seed, k)``)."""

    def __init__(self, seed):
        super().__init__()
        self.seed = _check_seed(seed)
        self._calls = _new_count()  # a 0-d tensor, not a buffer: see Dropout.__init__

    @property
    def calls(self) -> int:
        """Training-mode forward calls made so far with an int `seed` (the next call uses
        ``derive(seed, calls)``, as cdrop's NumPy layers do)."""
        return int(self._calls)

    def _run(self, plan):
        """Run a checked plan (or return the tensor that stands for one) with this layer's
        seed: checked first, so a call that raises takes no call number."""
        seed = self.seed
        if type(seed) is not int or not self.training:
            return _execute(plan, seed)
        if _is_compiling():
            # the derivation inside the graph (Dynamo cannot trace the compiled derive)
            key = _derived_key_op(seed >> 32, seed & 0xFFFFFFFF, self._calls)
            self._calls.add_(1)
            return _execute(plan, None, key)
        if _graph_task() != -1:
            raise RuntimeError(
                f"{type(self).__name__}(seed=int) cannot be recomputed by "
                "torch.utils.checkpoint (the recomputation would use another mask); use "
                "seed=None, whose draws from torch's generator checkpoint replays"
            )
        with _calls_lock:
            calls = self._calls
            n = int(calls)
            try:
                calls.add_(1)
            except RuntimeError:  # an inference tensor outside inference mode: see Dropout
                self._calls = torch.tensor(n + 1, device=_CPU)
        return _execute(plan, _kernels.derive(seed, n))


class _ChannelDropout(_SeededLayer):
    _name = ""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, seed: Seed = None) -> None:
        super().__init__(seed)
        self.p = check_p(p)
        self.inplace = as_flag(inplace, "inplace")

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input: Tensor) -> Tensor:
        """Channel dropout of `input` in training mode, the identity in evaluation mode."""
        if isinstance(input, _Proxy):
            return _fx_call(self, input)
        return self._run(_plan_channels(self._name, input, self.p, self.training, self.inplace,
                                        0))


_LAYER_DOC = """Drop-in replacement for ``torch.nn.{torch}``, running cdrop's kernels: :func:`{fn}`
    in training mode, the identity in evaluation mode.

    Parameters
    ----------
    p : float, default {p}
        Probability of dropping {what}, in [0, 1].
    inplace : bool, default False
        Apply it in place.
    seed : int, torch.Generator or None
        As :class:`Dropout`'s: None draws from torch's default generator each call; an int
        gives call k the key ``derive(seed, k)`` (cdrop's NumPy layers' call k).

    Raises
    ------
    TypeError, ValueError
        Bad `p`, `inplace` or `seed`, as :class:`Dropout`; a call checks its input as
        :func:`{fn}` does.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> layer = cdrop.torch.{name}(0.2)
    >>> layer
    {name}(p=0.2, inplace=False)
    >>> layer(torch.ones({shape})).shape
    torch.Size([{size}])
    """


class Dropout1d(_ChannelDropout):
    __doc__ = _LAYER_DOC.format(torch="Dropout1d", fn="dropout1d", p="0.5", what="a channel",
                                name="Dropout1d", shape="2, 3, 4", size="2, 3, 4")
    _name = "dropout1d"


class Dropout2d(_ChannelDropout):
    __doc__ = _LAYER_DOC.format(torch="Dropout2d", fn="dropout2d", p="0.5", what="a channel",
                                name="Dropout2d", shape="2, 3, 4, 4", size="2, 3, 4, 4")
    _name = "dropout2d"


class Dropout3d(_ChannelDropout):
    __doc__ = _LAYER_DOC.format(torch="Dropout3d", fn="dropout3d", p="0.5", what="a channel",
                                name="Dropout3d", shape="2, 3, 2, 2, 2", size="2, 3, 2, 2, 2")
    _name = "dropout3d"


class AlphaDropout(_ChannelDropout):
    __doc__ = _LAYER_DOC.format(torch="AlphaDropout", fn="alpha_dropout", p="0.5",
                                what="an element", name="AlphaDropout", shape="3, 4",
                                size="3, 4")
    _feature = False

    def forward(self, input: Tensor) -> Tensor:
        """Alpha dropout of `input` in training mode, the identity in evaluation mode."""
        if isinstance(input, _Proxy):
            return _fx_call(self, input)
        return self._run(_plan_alpha(input, self.p, self.training, self.inplace, 0,
                                     self._feature))


class FeatureAlphaDropout(AlphaDropout):
    __doc__ = _LAYER_DOC.format(torch="FeatureAlphaDropout", fn="feature_alpha_dropout",
                                p="0.5", what="a channel", name="FeatureAlphaDropout",
                                shape="3, 4, 5", size="3, 4, 5")
    _feature = True


class DropPath(_SeededLayer):
    """Stochastic depth, as timm's ``DropPath``: :func:`drop_path` in training mode (one
    decision per sample, axis 0), the identity in evaluation mode.

    Parameters
    ----------
    p : float, default 0.0
        Probability of dropping a sample (timm's `drop_prob`), in [0, 1].
    scale_by_keep : bool, default True
        Scale the kept samples by 1/(1-p).
    seed : int, torch.Generator or None
        As :class:`Dropout`'s.

    Raises
    ------
    TypeError, ValueError
        Bad `p`, `scale_by_keep` or `seed`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> layer = cdrop.torch.DropPath(0.1)
    >>> layer
    DropPath(p=0.1, scale_by_keep=True)
    >>> layer(torch.ones(8, 3)).shape
    torch.Size([8, 3])
    """

    def __init__(self, p: float = 0.0, *, scale_by_keep: bool = True, seed: Seed = None) -> None:
        super().__init__(seed)
        self.p = check_p(p)
        self.scale_by_keep = as_flag(scale_by_keep, "scale_by_keep")

    def extra_repr(self) -> str:
        return f"p={self.p}, scale_by_keep={self.scale_by_keep}"

    def forward(self, input: Tensor) -> Tensor:
        """Drop path of `input` in training mode, the identity in evaluation mode."""
        if isinstance(input, _Proxy):
            return _fx_call(self, input)
        return self._run(_plan_drop_path(input, self.p, self.training, self.scale_by_keep,
                                         False, 0))


class GaussianDropout(_SeededLayer):
    """Keras' ``GaussianDropout``: :func:`gaussian_dropout` in training mode, the identity in
    evaluation mode.

    Parameters
    ----------
    p : float
        Keras' `rate`, in [0, 1): the noise is N(1, p/(1-p)).
    seed : int, torch.Generator or None
        As :class:`Dropout`'s.

    Raises
    ------
    TypeError, ValueError
        Bad `p` (1 included) or `seed`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> layer = cdrop.torch.GaussianDropout(0.1)
    >>> layer
    GaussianDropout(p=0.1)
    >>> layer(torch.ones(8, 3)).shape
    torch.Size([8, 3])
    """

    def __init__(self, p: float, *, seed: Seed = None) -> None:
        super().__init__(seed)
        self.p = _check_gaussian_p(p)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, input: Tensor) -> Tensor:
        """Gaussian dropout of `input` in training mode, the identity in evaluation mode."""
        if isinstance(input, _Proxy):
            return _fx_call(self, input)
        return self._run(_plan_gaussian_dropout(input, self.p, self.training, False, 0))


class GaussianNoise(_SeededLayer):
    """Keras' ``GaussianNoise``: :func:`gaussian_noise` in training mode, the identity in
    evaluation mode.

    Parameters
    ----------
    stddev : float
        Standard deviation of the additive noise, finite and >= 0.
    seed : int, torch.Generator or None
        As :class:`Dropout`'s.

    Raises
    ------
    TypeError, ValueError
        Bad `stddev` or `seed`.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> layer = cdrop.torch.GaussianNoise(0.1)
    >>> layer
    GaussianNoise(stddev=0.1)
    >>> layer(torch.ones(8, 3)).shape
    torch.Size([8, 3])
    """

    def __init__(self, stddev: float, *, seed: Seed = None) -> None:
        super().__init__(seed)
        self.stddev = _check_stddev(stddev)

    def extra_repr(self) -> str:
        return f"stddev={self.stddev}"

    def forward(self, input: Tensor) -> Tensor:
        """Gaussian noise added to `input` in training mode, the identity in evaluation mode."""
        if isinstance(input, _Proxy):
            return _fx_call(self, input)
        return self._run(_plan_gaussian_noise(input, self.stddev, self.training, False, 0))


class DropoutAdd(_SeededLayer):
    """``residual + dropout(input + bias)`` in one pass: :func:`dropout_add` (in evaluation
    mode ``residual + (input + bias)``).

    Parameters
    ----------
    p : float, default 0.5
        Probability of dropping an element of ``input + bias``, in [0, 1].
    seed : int, torch.Generator or None
        As :class:`Dropout`'s.

    Raises
    ------
    TypeError, ValueError
        Bad `p` or `seed`; a call checks its tensors as :func:`dropout_add` does.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> layer = cdrop.torch.DropoutAdd(0.1)
    >>> layer
    DropoutAdd(p=0.1)
    >>> layer(torch.ones(2, 3), torch.ones(2, 3), torch.zeros(3)).shape
    torch.Size([2, 3])
    """

    def __init__(self, p: float = 0.5, *, seed: Seed = None) -> None:
        super().__init__(seed)
        self.p = check_p(p)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, input: Tensor, residual: Tensor, bias: Tensor | None = None) -> Tensor:
        """``residual + dropout(input + bias)`` in training mode, ``residual + (input + bias)``
        in evaluation mode."""
        if isinstance(input, _Proxy) or isinstance(residual, _Proxy):
            return _fx_call(self, input, residual, bias)
        return self._run(_plan_dropout_add(input, residual, self.p, self.training, bias, 0))


def _is_timm_drop_path(m):
    """timm's DropPath, recognised without importing timm (its module and attributes)."""
    cls = type(m)
    return (cls.__name__ == "DropPath" and cls.__module__.split(".")[0] == "timm"
            and hasattr(m, "drop_prob"))


def _replacement(m):
    """The cdrop module for torch module `m` (None: not one cdrop replaces)."""
    cls = type(m)
    if cls in _REPLACED:
        return _REPLACED[cls](m.p, m.inplace).train(m.training)
    if _is_timm_drop_path(m):
        return DropPath(float(m.drop_prob), scale_by_keep=bool(getattr(m, "scale_by_keep", True))
                        ).train(m.training)
    return None


_REPLACED = {nn.Dropout: Dropout, nn.Dropout1d: Dropout1d, nn.Dropout2d: Dropout2d,
             nn.Dropout3d: Dropout3d, nn.AlphaDropout: AlphaDropout,
             nn.FeatureAlphaDropout: FeatureAlphaDropout}


def replace_dropout(module: nn.Module) -> nn.Module:
    """Replace every dropout module of torch inside `module` by cdrop's.

    ``torch.nn.Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``, ``AlphaDropout`` and
    ``FeatureAlphaDropout`` become :class:`Dropout`, :class:`Dropout1d`, ... of cdrop, keeping
    `p`, `inplace` and the training mode; timm's ``DropPath`` (recognised by its class name and
    module, without importing timm) becomes :class:`DropPath` with its `drop_prob` and
    `scale_by_keep`.  A module held in two places (shared layers) is replaced by one cdrop
    module.  Only modules of exactly those types are replaced (a subclass may change its
    behaviour); ``torch.nn.functional.dropout`` calls inside other modules (e.g.
    ``nn.MultiheadAttention``'s) are not reached.

    Parameters
    ----------
    module : torch.nn.Module
        Changed in place.

    Returns
    -------
    torch.nn.Module
        `module`; if `module` is itself one of those modules, which cannot be replaced in
        place, the new cdrop module instead.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1),
    ...                           torch.nn.Dropout2d(0.2))
    >>> cdrop.torch.replace_dropout(net) is net
    True
    >>> net[1], net[2]
    (Dropout(p=0.1, inplace=False), Dropout2d(p=0.2, inplace=False))
    >>> type(net[2]).__module__
    'cdrop.torch'
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")

    new = {}  # id of a torch module -> its replacement: a module held twice stays one module

    def convert(m):
        if id(m) not in new:
            new[id(m)] = _replacement(m)
        return new[id(m)]

    if convert(module) is not None:
        return new[id(module)]
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if convert(child) is not None:
                setattr(parent, name, new[id(child)])
    return module
