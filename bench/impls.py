"""The implementations that cdrop's benchmarks compare, each as `make(x, p, threads) -> callable`.

Shared by the pytest-benchmark suite (bench/test_bench.py) and the report (bench/report.py), so
that both time exactly the same code.  Every factory gets the input array `x` (float32 or
float64, C-contiguous), the drop probability `p` and a thread count, allocates what the
implementation keeps between calls (outputs, scratch buffers) up front, and returns a
zero-argument callable that performs one dropout.

In-place implementations modify `x`: callers must give them a scratch copy and restore it
between rounds (see `IN_PLACE`).  Implementations whose peer library is missing raise
`Unavailable` from their factory.
"""
import numpy as np

import cdrop
from cdrop._bench import textbook_dropout


class Unavailable(Exception):
    """The implementation's library is not installed."""


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise Unavailable(f"torch is not installed ({exc})") from None
    return torch


# --- cdrop --------------------------------------------------------------------------------


def cdrop_inplace(x, p, threads):
    return lambda: cdrop.dropout(x, p, inplace=True, seed=1, num_threads=threads)


def cdrop_out_of_place(x, p, threads):
    return lambda: cdrop.dropout(x, p, seed=1, num_threads=threads)


def cdrop_out(x, p, threads):
    out = np.empty_like(x)
    return lambda: cdrop.dropout(x, p, out=out, seed=1, num_threads=threads)


def cdrop_mask_packed(x, p, threads):
    """Mask generation alone: 1 bit per element."""
    return lambda: cdrop.dropout_mask(x.shape, p, seed=1, packed=True, num_threads=threads)


def cdrop_backward(x, p, threads):
    """Dropout.backward: the mask recomputed from the seed and applied to a gradient."""
    cdrop.set_num_threads(threads)  # the layer has no per-call thread argument
    layer = cdrop.Dropout(p, seed=1)
    layer(x)
    grad = x
    return lambda: layer.backward(grad)


def half_array(size, dtype):
    """A standard-normal array of `size` elements in `dtype`: "float32", "float16", or
    "bfloat16" (ml_dtypes', the benchmark's only use of that package)."""
    src = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise Unavailable(f"ml_dtypes is not installed ({exc})") from None
        return src.astype(ml_dtypes.bfloat16)
    return src.astype(dtype)


# Half precision (issue 10): cdrop in place on 1 thread, float16 and bfloat16 beside float32 of
# the same element count.  The target reads time per element: a half call moves half the bytes.
HALF_DTYPES = ("float32", "float16", "bfloat16")


# --- NumPy ----------------------------------------------------------------------------------


def numpy_reference(x, p, threads):
    """The textbook NumPy dropout, as tutorials write it (float64 uniforms, bool mask, two
    multiplications' worth of temporaries): `cdrop._bench.textbook_dropout`, which the `cdrop`
    command compares with too.  NumPy runs on one thread whatever `threads` is."""
    return lambda: textbook_dropout(x, p)


def numpy_fast(x, p, threads):
    """The fastest honest pure-NumPy dropout we found: float32 uniforms from a Generator into a
    reused buffer, the keep mask as a float multiplier built in place, one multiplication into a
    reused output.  (`np.copyto(out, 0, where=mask)` was 17 ms of 27 at 4M floats.)  Like
    PyTorch's CPU dropout it multiplies, so a dropped NaN or Inf gives NaN."""
    rng = np.random.default_rng(1)
    u = np.empty(x.shape, dtype=np.float32)
    mult = np.empty_like(x)
    out = np.empty_like(x)
    threshold = np.float32(p)
    scale = x.dtype.type(1.0 / (1.0 - p))

    def run():
        rng.random(dtype=np.float32, out=u)
        np.greater_equal(u, threshold, out=mult)  # 1.0 where kept, 0.0 where dropped
        np.multiply(mult, scale, out=mult)
        np.multiply(x, mult, out=out)
        return out

    return run


# --- PyTorch --------------------------------------------------------------------------------


def torch_dropout(x, p, threads):
    """torch.nn.functional.dropout on a CPU tensor sharing memory with `x`, out of place."""
    torch = _torch()
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    f = torch.nn.functional.dropout
    return lambda: f(t, p, training=True)


def torch_dropout_inplace(x, p, threads):
    torch = _torch()
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    f = torch.nn.functional.dropout
    return lambda: f(t, p, training=True, inplace=True)


# --- floors ---------------------------------------------------------------------------------


def floor_scale(x, p, threads):
    """np.multiply(x, c, out=x): one read and one write of every element (NumPy: 1 thread)."""
    c = x.dtype.type(1.0)  # a multiplication by 1 keeps the data stable over rounds
    return lambda: np.multiply(x, c, out=x)


def floor_scale_new(x, p, threads):
    """np.multiply(x, c): the out-of-place floor, one read of x and one write of a NEW array, as
    every out-of-place dropout (the NumPy reference, cdrop out of place) must allocate."""
    c = x.dtype.type(2.0)
    return lambda: np.multiply(x, c)


def floor_copy(x, p, threads):
    """np.copyto: memcpy, read x and write another array."""
    out = np.empty_like(x)
    return lambda: np.copyto(out, x)


def omp_floor():
    """cdrop's OpenMP `x *= c` over the chunks its kernels use: `f(x, c, num_threads)` for a
    C-contiguous float32 `x`.  NumPy runs on one thread, so this is the bandwidth floor for
    more than one."""
    from cdrop import _kernels

    return _kernels._scale_inplace


def floor_openmp(x, p, threads):
    """cdrop's OpenMP `x *= c` (float32 only, so not in IMPLEMENTATIONS: bench/report.py adds
    it for float32 runs)."""
    scale = omp_floor()
    c = 1.0  # a multiplication by 1 keeps the data stable over rounds
    return lambda: scale(x, c, threads)


# name -> (factory, modifies x in place)
IMPLEMENTATIONS = {
    "cdrop in place": (cdrop_inplace, True),
    "cdrop out of place": (cdrop_out_of_place, False),
    "cdrop out=": (cdrop_out, False),
    "cdrop mask packed": (cdrop_mask_packed, False),
    "cdrop Dropout.backward": (cdrop_backward, False),
    "NumPy reference": (numpy_reference, False),
    "NumPy fastest": (numpy_fast, False),
    "torch dropout": (torch_dropout, False),
    "torch dropout inplace": (torch_dropout_inplace, True),
    "floor np.multiply(out=x)": (floor_scale, True),
    "floor np.multiply(x, c)": (floor_scale_new, False),
    "floor np.copyto": (floor_copy, False),
}
IN_PLACE = {name for name, (_, inplace) in IMPLEMENTATIONS.items() if inplace}


# --- PyTorch training: forward plus backward ---------------------------------------------------
#
# What a training step pays for a dropout layer: the forward call on a leaf tensor that requires
# grad, then the backward pass of that layer alone (torch.autograd.grad, so no .grad
# accumulates between rounds).  torch.nn.Dropout keeps a mask for backward; cdrop.torch.Dropout
# recomputes it from its seed.  Factories here take (n, dtype, p, threads), dtype "float32" or
# "bfloat16", build their tensors themselves (NumPy has no bfloat16) and set torch's intra-op
# threads, which cdrop.torch follows; they return a zero-argument callable.


def _cdrop_torch():
    _torch()
    try:
        import cdrop.torch as ct
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise Unavailable(f"cdrop.torch is not available ({exc})") from None
    return ct


def _training_tensors(torch, n, dtype, threads):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=gen).to(getattr(torch, dtype)).requires_grad_()
    grad = torch.randn(n, generator=gen).to(x.dtype)
    return x, grad


def _fwd_bwd(torch, layer, x, grad):
    def run():
        y = layer(x)
        (g,) = torch.autograd.grad(y, x, grad)
        return g

    return run


def torch_module_fwd_bwd(n, dtype, p, threads):
    """torch.nn.Dropout(p), forward and backward."""
    torch = _torch()
    x, grad = _training_tensors(torch, n, dtype, threads)
    return _fwd_bwd(torch, torch.nn.Dropout(p), x, grad)


def cdrop_module_fwd_bwd(n, dtype, p, threads):
    """cdrop.torch.Dropout(p), forward and backward (the mask recomputed, none saved)."""
    ct = _cdrop_torch()
    torch = _torch()
    x, grad = _training_tensors(torch, n, dtype, threads)
    return _fwd_bwd(torch, ct.Dropout(p, seed=1), x, grad)


def torch_floor_fwd_bwd(n, dtype, p, threads):
    """The floor of an out-of-place forward plus backward: two np.copy into new arrays (read n
    elements, write n new ones, twice; no autograd, no random numbers), over integer views of
    the tensors' memory, since NumPy has no bfloat16.  From about 1M elements on, a new array's
    pages are fresh from the kernel, and filling them costs more than any arithmetic; NumPy's
    allocation gets huge pages where torch's CPU allocator does not, so this floor is lower
    than two torch.mul into new tensors."""
    torch = _torch()
    x, grad = _training_tensors(torch, n, dtype, threads)
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
    a, g = x.detach().view(as_int).numpy(), grad.view(as_int).numpy()
    return lambda: (np.copy(a), np.copy(g))[1]


def torch_functional_call(n, dtype, p, threads):
    """One torch.nn.functional.dropout call, no autograd (a small call's fixed cost)."""
    torch = _torch()
    x, _ = _training_tensors(torch, n, dtype, threads)
    x = x.detach()
    f = torch.nn.functional.dropout
    return lambda: f(x, p, True)


def cdrop_functional_call(n, dtype, p, threads):
    """One cdrop.torch.dropout call, no autograd, seed=None (drawn from torch's generator,
    as a training loop would)."""
    ct = _cdrop_torch()
    torch = _torch()
    x, _ = _training_tensors(torch, n, dtype, threads)
    x = x.detach()
    f = ct.dropout
    return lambda: f(x, p, True)


# name -> factory: torch's, cdrop's (and the floor), in the order report.py's table reads them
TORCH_FWD_BWD = {
    "torch nn.Dropout fwd+bwd": torch_module_fwd_bwd,
    "cdrop.torch.Dropout fwd+bwd": cdrop_module_fwd_bwd,
    "floor 2 x np.copy, new arrays": torch_floor_fwd_bwd,
}
TORCH_CALL = {
    "torch F.dropout call": torch_functional_call,
    "cdrop.torch.dropout call": cdrop_functional_call,
}
TORCH_DTYPES = ("float32", "bfloat16")


# --- the dropout family (issue 11) ------------------------------------------------------------
#
# Every variant of issue 11 beside its floor and its peer (PyTorch's equivalent, or NumPy's
# textbook form where torch has none), float32, at the sizes of the targets.  The input
# is an (N, C, H, W) array with H * W = 1024 (`family_shape`): Dropout2d draws N * C numbers for
# N * C * 1024 elements, drop_path N.  dropout_add sees the same memory as rows of 1024 with a
# bias along them (a transformer block's `residual + dropout(x + bias)`).  A factory takes
# (x, residual, p, threads), x and residual C-contiguous float32 arrays of one family shape,
# allocates what it keeps between calls and returns a zero-argument callable.  Implementations
# marked in place write into x (or, for dropout_add and its floor, into residual): the caller
# restores both from pristine copies before every timed call, outside the timed region.

FAMILY_ROW = 1024  # H * W, and dropout_add's bias length
FAMILY_SIGMA = 0.1  # gaussian_noise's stddev (gaussian_dropout's p is the run's p)


def family_shape(n):
    """(N, C, 32, 32) of `n` elements (a multiple of 64 * 1024), N = 64."""
    if n % (64 * FAMILY_ROW):
        raise ValueError(f"the family cases need a multiple of {64 * FAMILY_ROW} elements")
    return (64, n // (64 * FAMILY_ROW), 32, 32)


def _rows(a):
    return a.reshape(-1, FAMILY_ROW)


def _bias(x):
    return np.random.default_rng(2).standard_normal(FAMILY_ROW).astype(x.dtype)


def fam_cdrop_dropout2d(x, r, p, threads):
    """cdrop.Dropout2d(p, inplace=True): one decision per (n, c), on `threads` threads (the
    layer follows the package default, set before each call)."""
    layer = cdrop.Dropout2d(p, inplace=True, seed=1)

    def run():
        cdrop.set_num_threads(threads)
        return layer(x)

    return run


def fam_cdrop_drop_path(x, r, p, threads):
    return lambda: cdrop.drop_path(x, p, inplace=True, seed=1, num_threads=threads)


def fam_cdrop_alpha(x, r, p, threads):
    return lambda: cdrop.alpha_dropout(x, p, inplace=True, seed=1, num_threads=threads)


def fam_cdrop_dropout_add(x, r, p, threads):
    """cdrop.dropout_add(x, r, p, bias=b, out=r): residual + dropout(x + b) into the residual."""
    xr, rr, b = _rows(x), _rows(r), _bias(x)
    return lambda: cdrop.dropout_add(xr, rr, p, bias=b, out=rr, seed=1, num_threads=threads)


def fam_cdrop_gaussian_dropout(x, r, p, threads):
    return lambda: cdrop.gaussian_dropout(x, p, inplace=True, seed=1, num_threads=threads)


def fam_cdrop_gaussian_noise(x, r, p, threads):
    return lambda: cdrop.gaussian_noise(x, FAMILY_SIGMA, inplace=True, seed=1,
                                        num_threads=threads)


def fam_torch_dropout2d(x, r, p, threads):
    """torch.nn.functional.dropout2d, out of place (nn.Dropout2d's default)."""
    torch = _torch()
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    f = torch.nn.functional.dropout2d
    return lambda: f(t, p, True)


def fam_torch_dropout2d_inplace(x, r, p, threads):
    torch = _torch()
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    f = torch.nn.functional.dropout2d
    return lambda: f(t, p, True, inplace=True)


def fam_torch_alpha(x, r, p, threads):
    """torch.nn.functional.alpha_dropout, out of place (nn.AlphaDropout's default)."""
    torch = _torch()
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    f = torch.nn.functional.alpha_dropout
    return lambda: f(t, p, True)


def fam_torch_dropout_add(x, r, p, threads):
    """F.dropout(x + b) + r: three torch operations, two temporaries."""
    torch = _torch()
    torch.set_num_threads(threads)
    xt, rt, bt = (torch.from_numpy(a) for a in (_rows(x), _rows(r), _bias(x)))
    f = torch.nn.functional.dropout
    return lambda: f(xt + bt, p, True) + rt


def fam_numpy_drop_path(x, r, p, threads):
    """timm's drop_path in NumPy: x * (rng.random((N, 1, 1, 1)) >= p) / keep (1 thread)."""
    rng = np.random.default_rng(1)
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return lambda: x * (rng.random(shape) >= p) / keep


def fam_numpy_gaussian_dropout(x, r, p, threads):
    """Keras' GaussianDropout in NumPy: x * rng.normal(1, sigma, x.shape), sigma =
    sqrt(p / (1 - p)) (float64 normals, as it is usually written; 1 thread)."""
    rng = np.random.default_rng(1)
    sigma = (p / (1.0 - p)) ** 0.5
    return lambda: x * rng.normal(1.0, sigma, x.shape)


def fam_numpy_gaussian_noise(x, r, p, threads):
    """Keras' GaussianNoise in NumPy: x + rng.normal(0, stddev, x.shape) (1 thread)."""
    rng = np.random.default_rng(1)
    return lambda: x + rng.normal(0.0, FAMILY_SIGMA, x.shape)


def fam_floor_scale(x, r, p, threads):
    """np.multiply(x, c, out=x): one read, one write per element (NumPy, 1 thread)."""
    c = x.dtype.type(1.0)
    return lambda: np.multiply(x, c, out=x)


def fam_floor_add(x, r, p, threads):
    """np.add(x, r, out=r): two reads and a write per element, dropout_add's three streams
    (NumPy, 1 thread whatever `threads` is: there is no three-stream OpenMP floor, and NumPy
    split over Python threads was slower than one thread here)."""
    return lambda: np.add(x, r, out=r)


def fam_floor_openmp(x, r, p, threads):
    """cdrop's OpenMP x *= c over its kernels' chunks (the floor for more than one thread)."""
    scale = omp_floor()
    flat = x.reshape(-1)
    return lambda: scale(flat, 1.0, threads)


# variant -> (cdrop factory, floor name, target (x floor), [(peer name, factory)]); the peers'
# names say what they run.  Target: the "at most k x the floor".
FAMILY = {
    "Dropout2d": (fam_cdrop_dropout2d, "np.multiply", 1.1,
                  [("torch F.dropout2d", fam_torch_dropout2d),
                   ("torch F.dropout2d inplace", fam_torch_dropout2d_inplace)]),
    "drop_path": (fam_cdrop_drop_path, "np.multiply", 1.2,
                  [("NumPy x * (u >= p) / keep", fam_numpy_drop_path)]),
    "alpha_dropout": (fam_cdrop_alpha, "np.multiply", 1.2,
                      [("torch F.alpha_dropout", fam_torch_alpha)]),
    "dropout_add": (fam_cdrop_dropout_add, "np.add", 1.15,
                    [("torch F.dropout(x + b) + r", fam_torch_dropout_add)]),
    "gaussian_dropout": (fam_cdrop_gaussian_dropout, "np.multiply", 2.0,
                         [("NumPy x * rng.normal(1, s)", fam_numpy_gaussian_dropout)]),
    "gaussian_noise": (fam_cdrop_gaussian_noise, "np.multiply", 2.0,
                       [("NumPy x + rng.normal(0, s)", fam_numpy_gaussian_noise)]),
}
# floor name -> (factory, in place); the OpenMP floor stands for np.multiply with > 1 thread
FAMILY_FLOORS = {
    "np.multiply": (fam_floor_scale, True),
    "np.add": (fam_floor_add, True),
    "OpenMP x*=c": (fam_floor_openmp, True),
}
FAMILY_SIZES = (4_194_304, 16_777_216)
# the ">= 10x faster than torch at 4M": variant -> the peer it names
FAMILY_TORCH_TARGETS = {"Dropout2d": "torch F.dropout2d", "alpha_dropout": "torch F.alpha_dropout",
                        "dropout_add": "torch F.dropout(x + b) + r"}


def family_implementations():
    """[(row name, factory, in place)]: every family case, in table order, then the floors.
    Row names: "<variant>: cdrop", "<variant>: <peer>", "floor <floor>"."""
    rows = []
    for variant, (cd, _floor, _goal, peers) in FAMILY.items():
        rows.append((f"{variant}: cdrop", cd, True))
        rows += [(f"{variant}: {peer}", f, "inplace" in peer) for peer, f in peers]
    rows += [(f"floor {name}", f, inplace) for name, (f, inplace) in FAMILY_FLOORS.items()]
    return rows
