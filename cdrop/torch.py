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

import os
import threading
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

from . import _kernels
from ._checks import U64, as_flag, as_int, check_offset, check_p
from ._threads import MIN_PARALLEL

__all__ = ["Dropout", "dropout", "replace_dropout"]

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
            seed: Seed = None, offset: int = 0) -> Tensor:
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
        seed = self.seed
        if type(seed) is int and self.training:
            if _is_compiling() and self.p != 0.0:
                # the derivation inside the graph (Dynamo cannot trace the compiled derive)
                _check_input(input)
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


def replace_dropout(module: nn.Module) -> nn.Module:
    """Replace every ``torch.nn.Dropout`` inside `module` by a :class:`Dropout` of cdrop.

    Each replacement keeps `p`, `inplace` and the training mode of the module it replaces; a
    module held in two places (shared layers) is replaced by one cdrop module.
    Only modules whose type is exactly ``torch.nn.Dropout`` are replaced (a subclass may
    change its behaviour); ``torch.nn.functional.dropout`` calls inside other modules (e.g.
    ``nn.MultiheadAttention``'s) are not reached.

    Parameters
    ----------
    module : torch.nn.Module
        Changed in place.

    Returns
    -------
    torch.nn.Module
        `module`; if `module` is itself a ``torch.nn.Dropout``, which cannot be replaced in
        place, the new cdrop module instead.

    Examples
    --------
    >>> import torch, cdrop.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
    >>> cdrop.torch.replace_dropout(net) is net
    True
    >>> net[1]
    Dropout(p=0.1, inplace=False)
    >>> type(net[1]).__module__
    'cdrop.torch'
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")

    new = {}  # id of a torch module -> its replacement: a module held twice stays one module

    def convert(m):
        if id(m) not in new:
            new[id(m)] = Dropout(m.p, m.inplace).train(m.training)
        return new[id(m)]

    if type(module) is nn.Dropout:
        return convert(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, convert(child))
    return module
