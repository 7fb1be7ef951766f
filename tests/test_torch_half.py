"""cdrop.torch on float16 and bfloat16 tensors: the mask of float32, kept elements
``(x.float() * float32(scale))`` rounded to nearest even, dropped ones +0.0."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import cdrop  # noqa: E402
import cdrop.torch as ct  # noqa: E402

HALF = [torch.float16, torch.bfloat16]


def half_rule(t, p, seed, offset=0):
    """The issue's rule, computed by torch's own conversions (round to nearest even)."""
    keep = cdrop.dropout_mask(tuple(t.shape), p, seed=seed, offset=offset)
    scale = torch.tensor(1 / (1 - p), dtype=torch.float32)  # float64, rounded to float32
    kept = (t.float() * scale).to(t.dtype)
    return torch.where(torch.from_numpy(keep), kept, torch.zeros((), dtype=t.dtype))


def as_ints(t):
    return t.contiguous().view(torch.int16)


def assert_same_bits(a, b):
    """Bit for bit, except that a NaN may have any payload: torch's vectorised float32 ->
    bfloat16 conversion gives 0xFFFF for NaN, cdrop's (as ml_dtypes's) a quiet NaN of x's
    sign."""
    nan = torch.isnan(a)
    assert torch.equal(nan, torch.isnan(b))
    assert torch.equal(as_ints(a)[~nan], as_ints(b)[~nan])


def samples(dtype):
    g = torch.Generator().manual_seed(1)
    base = (torch.randn(64, 300, generator=g) * 100).to(dtype)
    special = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 65504.0,
                            1e-7, -3.0], dtype=dtype)
    return {
        "contiguous": base,
        "transposed": base.t(),
        "strided": base[1::3, ::2],
        "channels_last": torch.randn(2, 3, 5, 7).to(dtype, memory_format=torch.channels_last),
        "special": special,
        "large": torch.randn(300_000).to(dtype),
        "huge": torch.randn(3, 800_000).to(dtype),  # >= 4 MiB: a result allocated by NumPy
    }


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", list(samples(torch.float32)))
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_half_tensors_follow_the_half_rule(dtype, name, p):
    t = samples(dtype)[name]
    for seed, offset in [(3, 0), (2**64 - 5, 1000)]:
        y = ct.dropout(t, p, seed=seed, offset=offset)
        assert y.dtype == dtype and y.stride() == torch.empty_like(t).stride()
        assert_same_bits(y, half_rule(t, p, seed, offset))
        u = t.clone()
        ct.dropout(u, p, inplace=True, seed=seed, offset=offset)
        assert torch.equal(as_ints(u), as_ints(y))


def test_float16_tensors_give_cdrop_dropouts_bits():
    t = samples(torch.float16)["strided"]
    y = ct.dropout(t, 0.3, seed=8)
    assert np.array_equal(y.numpy().view(np.uint16),
                          cdrop.dropout(t.numpy(), 0.3, seed=8).view(np.uint16))


@pytest.mark.parametrize("dtype", HALF)
def test_half_backward_applies_the_forward_mask(dtype):
    x = torch.randn(500).to(dtype).requires_grad_()
    for offset in (0, 4):  # the eager fast path and the operator
        x.grad = None
        y = ct.dropout(x, 0.4, seed=6, offset=offset)
        y.backward(torch.ones_like(y))
        assert torch.equal(as_ints(x.grad), as_ints(half_rule(torch.ones_like(x), 0.4, 6, offset)))


@pytest.mark.parametrize("dtype", HALF)
def test_half_layer_under_autocast(dtype):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), ct.Dropout(0.5, seed=1))
    with torch.autocast("cpu", dtype=dtype):
        y = model(torch.randn(4, 8))
    assert y.dtype == dtype and (y == 0).any()
