"""cdrop.torch's dropout family (issue 11): values bit for bit against cdrop's NumPy functions
for every layout, half precision by the rule, torch's shape rules, errors before any draw or
write, in-place semantics, the modules (seeds, repr, copies) and replace_dropout."""
import copy
import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import cdrop  # noqa: E402
import cdrop.torch as ct  # noqa: E402

F = torch.nn.functional
ALPHA_P = -1.7580993408473766


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    ints = {8: torch.int64, 4: torch.int32, 2: torch.int16}[a.element_size()]
    assert torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))


def np_of(t):
    """t's values as a NumPy array (bfloat16 as ml_dtypes.bfloat16), a copy."""
    if t.dtype is torch.bfloat16:
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return t.contiguous().numpy().copy()


def torch_of(a):
    a = np.array(a, order="C")  # (np.ascontiguousarray makes a 0-d array 1-d)
    if a.dtype.kind == "V":  # ml_dtypes.bfloat16
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def alpha_ref(a, p, keep):
    """The issue's alpha formula for the keep mask `keep` (broadcast): in a's precision, or for
    half precision in float32, rounded once."""
    ca = ((1 - p) * (1 + p * ALPHA_P**2)) ** -0.5
    cb = -ca * ALPHA_P * p
    w = a.astype(np.float32) if a.itemsize == 2 else a
    t = w.dtype.type
    return np.where(keep, w * t(ca) + t(cb), t(ca * ALPHA_P + cb)).astype(a.dtype)


def feature_ns(shape):
    return tuple(shape[:2]) + (1,) * (len(shape) - 2)


# name -> (cdrop.torch call, NumPy oracle, ranks it is tested on); calls take (t, seed, offset)
P = 0.3
CASES = {
    "dropout(noise_shape)": (
        lambda t, s, o: ct.dropout(t, P, seed=s, offset=o,
                                   noise_shape=(None, 1) + tuple(t.shape[2:])),
        lambda a, s, o: cdrop.dropout(a, P, seed=s, offset=o, noise_shape=(None, 1) + a.shape[2:]),
        (2, 3, 4)),
    "dropout1d": (
        lambda t, s, o: ct.dropout1d(t, P, seed=s, offset=o),
        lambda a, s, o: cdrop.dropout(a, P, seed=s, offset=o, noise_shape=a.shape[:-1] + (1,)),
        (2, 3)),
    "dropout2d": (
        lambda t, s, o: ct.dropout2d(t, P, seed=s, offset=o),
        lambda a, s, o: cdrop.dropout(a, P, seed=s, offset=o, noise_shape=feature_ns(a.shape)),
        (4,)),
    "dropout3d": (
        lambda t, s, o: ct.dropout3d(t, P, seed=s, offset=o),
        lambda a, s, o: cdrop.dropout(
            a, P, seed=s, offset=o,
            noise_shape=feature_ns(a.shape) if a.ndim == 5 else a.shape[:1] + (1,) * 3),
        (4, 5)),
    "alpha_dropout": (
        lambda t, s, o: ct.alpha_dropout(t, P, True, seed=s, offset=o),
        lambda a, s, o: cdrop.alpha_dropout(a, P, seed=s, offset=o),
        (0, 1, 2, 4)),
    "feature_alpha_dropout": (
        lambda t, s, o: ct.feature_alpha_dropout(t, P, True, seed=s, offset=o),
        lambda a, s, o: alpha_ref(a, P, np.broadcast_to(
            cdrop.dropout_mask(feature_ns(a.shape), P, seed=s, offset=o), a.shape)),
        (2, 3, 4)),
    "drop_path": (
        lambda t, s, o: ct.drop_path(t, P, seed=s, offset=o),
        lambda a, s, o: cdrop.drop_path(a, P, seed=s, offset=o),
        (1, 2, 4)),
    "drop_path(scale_by_keep=False)": (
        lambda t, s, o: ct.drop_path(t, P, seed=s, offset=o, scale_by_keep=False),
        lambda a, s, o: cdrop.drop_path(a, P, seed=s, offset=o, scale_by_keep=False),
        (2,)),
    "gaussian_dropout": (
        lambda t, s, o: ct.gaussian_dropout(t, P, seed=s, offset=o),
        lambda a, s, o: cdrop.gaussian_dropout(a, P, seed=s, offset=o),
        (0, 1, 2, 4)),
    "gaussian_noise": (
        lambda t, s, o: ct.gaussian_noise(t, 0.7, seed=s, offset=o),
        lambda a, s, o: cdrop.gaussian_noise(a, 0.7, seed=s, offset=o),
        (0, 1, 2, 4)),
    "dropout_add": (
        lambda t, s, o: ct.dropout_add(t, residual_of(t), P, seed=s, offset=o, bias=bias_of(t)),
        lambda a, s, o: cdrop.dropout_add(a, np_of(residual_of(torch_of(a))), P, seed=s,
                                          offset=o, bias=np_of(bias_of(torch_of(a)))),
        (1, 2, 4)),
}


def residual_of(t):
    """A residual for t: a fixed function of its shape (another layout than t's)."""
    g = torch.Generator().manual_seed(9)
    return torch.randn(tuple(reversed(t.shape)), generator=g).to(t.dtype).permute(
        *reversed(range(t.dim())))


def bias_of(t):
    g = torch.Generator().manual_seed(10)
    return torch.randn(t.shape[-1:], generator=g).to(t.dtype)


SHAPES = {0: (), 1: (37,), 2: (6, 50), 3: (4, 6, 21), 4: (4, 6, 5, 7), 5: (3, 4, 2, 3, 5)}


def layouts(dtype, nd):
    g = torch.Generator().manual_seed(0)
    shape = SHAPES[nd]
    out = {"contiguous": torch.randn(shape, generator=g).to(dtype)}
    if nd >= 2:
        out["permuted"] = torch.randn(tuple(reversed(shape)), generator=g).to(dtype).permute(
            *reversed(range(nd)))
        out["strided"] = torch.randn(tuple(2 * s for s in shape), generator=g).to(dtype)[
            (slice(None, None, 2),) * nd]
        out["empty"] = torch.empty((0,) + shape[1:], dtype=dtype)
    if nd == 4:
        out["channels_last"] = out["contiguous"].to(memory_format=torch.channels_last)
    big = {1: (140_000,), 2: (70, 2000), 3: (8, 16, 1100), 4: (8, 16, 33, 33),
           5: (2, 8, 8, 33, 33)}.get(nd)
    if big:
        out["large"] = torch.randn(big, generator=g).to(dtype)  # threads
    return out


def cases_and_layouts():
    for name, (_, _, ranks) in CASES.items():
        for nd in ranks:
            for layout in layouts(torch.float32, nd):
                yield pytest.param(name, nd, layout, id=f"{name}-{nd}d-{layout}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, nd, layout", list(cases_and_layouts()))
def test_same_bits_as_the_numpy_functions_for_any_layout(name, nd, layout, dtype):
    fn, oracle, _ = CASES[name]
    t = layouts(dtype, nd)[layout]
    for seed, offset in [(0, 0), (2**64 - 1, 2**40 + 3)]:
        y = fn(t, seed, offset)
        assert_same_bits(y, torch_of(oracle(np_of(t), seed, offset)))
        assert y.stride() == torch.empty_like(t).stride()  # the input's memory format


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(CASES))
def test_half_precision_equals_the_numpy_functions(name, dtype):
    fn, oracle, ranks = CASES[name]
    t = layouts(dtype, max(ranks))["strided" if max(ranks) >= 2 else "contiguous"]
    y = fn(t, 5, 11)
    expected = torch_of(oracle(np_of(t), 5, 11))
    nan = torch.isnan(y)
    assert torch.equal(nan, torch.isnan(expected))
    assert torch.equal(y.contiguous().view(torch.int16)[~nan],
                       expected.contiguous().view(torch.int16)[~nan])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_alpha_is_the_float32_formula_rounded_once(dtype):
    t = (torch.randn(64, 70, generator=torch.Generator().manual_seed(2)) * 30).to(dtype)
    keep = torch.from_numpy(cdrop.dropout_mask(tuple(t.shape), 0.4, seed=3))
    a = ((1 - 0.4) * (1 + 0.4 * ALPHA_P**2)) ** -0.5
    b = -a * ALPHA_P * 0.4
    f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731 - binary64 rounded once
    expected = torch.where(keep, t.float() * f32(a) + f32(b), f32(a * ALPHA_P + b)).to(dtype)
    assert torch.equal(ct.alpha_dropout(t, 0.4, True, seed=3), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dropout_add_rounds_after_each_step(dtype):
    g = torch.Generator().manual_seed(4)
    x, r = (torch.randn(2, 64, 70, generator=g) * 50).to(dtype).unbind()
    b = torch.randn(70, generator=g).to(dtype)
    keep = torch.from_numpy(cdrop.dropout_mask(tuple(x.shape), 0.25, seed=6))
    t = x + b  # torch's half add: in float32, rounded to the dtype
    d = torch.where(keep, (t.float() * torch.tensor(1 / 0.75, dtype=torch.float32)).to(dtype),
                    torch.zeros((), dtype=dtype))
    assert torch.equal(ct.dropout_add(x, r, 0.25, bias=b, seed=6), r + d)


def test_negative_bit_views_are_their_values():
    z = torch.randn(6, 5, 8, dtype=torch.complex64)
    t = z.conj().imag  # memory holds -value
    assert t.is_neg()
    values = t.resolve_neg()
    assert torch.equal(ct.dropout1d(t, 0.5, seed=3), ct.dropout1d(values, 0.5, seed=3))
    r = torch.randn(6, 5, 8)
    assert torch.equal(ct.dropout_add(r, t, 0.5, seed=3), ct.dropout_add(r, values, 0.5, seed=3))
    y = t.clone()
    expected = ct.alpha_dropout(values, 0.5, True, seed=3)
    w = z.clone().conj().imag
    ct.alpha_dropout(w, 0.5, True, True, seed=3)
    assert torch.equal(w, expected) and y.shape == w.shape


# --- torch's shape rules ------------------------------------------------------------------------
def test_channel_dropouts_share_one_decision_per_sample_and_channel():
    x = torch.ones(8, 16, 3, 4)
    y = ct.dropout2d(x, 0.5, seed=1)
    per = y.flatten(2)
    assert ((per == 0).all(-1) | (per == 2).all(-1)).all() and (per == 0).any()
    unbatched = ct.dropout1d(torch.ones(16, 9), 0.5, seed=2)
    assert ((unbatched == 0).all(-1) | (unbatched == 2).all(-1)).all()
    assert torch.equal(ct.dropout3d(torch.ones(16, 2, 2, 2), 0.5, seed=2).flatten(1)[:, 0],
                       ct.dropout1d(torch.ones(16, 9), 0.5, seed=2)[:, 0])


def test_dropout2d_of_a_3d_input_is_torch_s_n_c_l_with_its_warning():
    x = torch.randn(4, 6, 10)
    with pytest.warns(UserWarning, match="interpreted as shape \\(N, C, L\\)"):
        y = ct.dropout2d(x, 0.5, seed=3)
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        F.dropout2d(x, 0.5)
    assert torch.equal(y, ct.dropout1d(x, 0.5, seed=3))


def test_ranks_torch_deprecates_warn_and_ranks_it_refuses_raise():
    with pytest.warns(UserWarning, match="5-D input to dropout2d"):
        ct.dropout2d(torch.ones(2, 3, 2, 2, 2), 0.5, seed=1)
    with pytest.warns(UserWarning, match="3-D input to dropout3d"):
        y = ct.dropout3d(torch.ones(5, 4, 3), 0.5, seed=1)  # unbatched, as torch unsqueezes
    assert ((y == 0).all((1, 2)) | (y == 2).all((1, 2))).all()
    for bad in (torch.ones(3), torch.ones(2, 3, 4, 5)):
        with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
            F.dropout1d(bad, 0.5)
        with pytest.raises(ValueError, match="input must be 2-D \\(C, L\\) or 3-D"):
            ct.dropout1d(bad, 0.5)
    with pytest.raises(ValueError, match="at least 2 dimensions for feature_alpha_dropout"):
        ct.feature_alpha_dropout(torch.ones(5), 0.5, True)
    with pytest.raises(ValueError, match="at least 1 dimension for drop_path"):
        ct.drop_path(torch.tensor(1.0), 0.5)


def test_eval_mode_and_p_zero_return_the_input_as_torch_does():
    for fn in (ct.dropout1d, ct.dropout2d, ct.dropout3d, ct.alpha_dropout,
               ct.feature_alpha_dropout):
        name = fn.__name__
        t = {"dropout1d": torch.randn(4, 3, 2), "dropout3d": torch.randn(4, 3, 2, 2, 2)}.get(
            name, torch.randn(4, 3, 2, 2))  # (torch's unbatched forms return views)
        theirs = getattr(F, name)
        assert theirs(t, 0.5, False) is t and fn(t, 0.5, False) is t, name
        assert theirs(t, 0.0, True) is t and fn(t, 0.0, True) is t, name
    t = torch.randn(4, 3, 2, 2)
    assert ct.drop_path(t, 0.5, False) is t and ct.drop_path(t) is t  # timm's default p = 0
    assert ct.gaussian_dropout(t, 0.5, False) is t and ct.gaussian_dropout(t, 0.0) is t
    assert ct.gaussian_noise(t, 0.5, False) is t and ct.gaussian_noise(t, 0.0) is t


def test_alpha_dropout_defaults_to_evaluation_mode_as_torch():
    t = torch.randn(10)
    assert ct.alpha_dropout(t) is t and F.alpha_dropout(t) is t
    v = t.view(2, 5)
    assert ct.feature_alpha_dropout(v) is v and F.feature_alpha_dropout(v) is v


def test_p_one_gives_positive_zeros_and_dropout_add_the_residual_plus_zero():
    t = torch.tensor([[1.0, float("nan"), -float("inf"), -2.0]])
    zeros = torch.zeros(1, 4).view(torch.int32)
    for y in (ct.dropout1d(t, 1.0), ct.alpha_dropout(t, 1.0, True), ct.drop_path(t, 1.0),
              ct.feature_alpha_dropout(t, 1.0, True)):
        assert torch.equal(y.view(torch.int32), zeros)
    r = torch.tensor([[-0.0, 1.0, -3.0, 5.0]])
    assert_same_bits(ct.dropout_add(t, r, 1.0), r + 0.0)  # -0.0 + 0.0 is +0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dropout_add_is_residual_plus_dropout_of_the_sum_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(3)
    x, r = torch.randn(2, 300, 70, generator=g).to(dtype).unbind()
    b = torch.randn(70, generator=g).to(dtype)
    assert_same_bits(ct.dropout_add(x, r, 0.3, bias=b, seed=4, offset=9),
                     r + ct.dropout(x + b, 0.3, seed=4, offset=9))
    assert_same_bits(ct.dropout_add(x.t(), r.t(), 0.3, seed=4),
                     r.t() + ct.dropout(x.t(), 0.3, seed=4))


def test_dropout_add_in_evaluation_mode_and_p_zero_is_the_plain_sum():
    g = torch.Generator().manual_seed(1)
    x, r, b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g), torch.randn(8)
    state = torch.get_rng_state()
    assert_same_bits(ct.dropout_add(x, r, 0.5, False, bias=b), r + (x + b))
    assert_same_bits(ct.dropout_add(x, r, 0.0, bias=b), r + (x + b))
    assert torch.equal(torch.get_rng_state(), state)  # no key drawn


def test_alpha_dropout_matches_torch_s_formula_for_the_same_mask():
    x = torch.randn(200, 300, dtype=torch.float64)
    p = 0.35
    noise = torch.from_numpy(cdrop.dropout_mask(tuple(x.shape), p, seed=8)).double()
    # at::native's _dropout_impl for alpha dropout, with our mask as its noise
    alpha = 1.7580993408473766
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    b = noise.add(-1).mul_(alpha * a).add_(alpha * a * p)
    theirs = x * (noise * a) + b
    torch.testing.assert_close(ct.alpha_dropout(x, p, True, seed=8), theirs, rtol=1e-14,
                               atol=1e-14)


def test_alpha_dropout_keeps_mean_zero_and_variance_one():
    n = 1 << 20
    x = torch.randn(n, generator=torch.Generator().manual_seed(3))
    y = ct.alpha_dropout(x, 0.2, True, seed=4).double()
    # mean and variance of n samples with variance ~1 (fourth moment < 9): 6 sigma bounds
    assert abs(float(y.mean())) < 6 / math.sqrt(n)
    assert abs(float(y.var()) - 1) < 6 * math.sqrt(9 / n) + 0.01  # + the input's own spread


# --- errors: checked before anything is drawn or written --------------------------------------
@pytest.mark.parametrize("call, kind, match", [
    (lambda t: ct.dropout2d(t, 1.5, inplace=True), ValueError, "p must be a probability"),
    (lambda t: ct.dropout1d(t.flatten(2), "0.5", inplace=True), TypeError, "p must be a real"),
    (lambda t: ct.dropout3d(t, 0.5, 1, True), TypeError, "training must be a bool"),
    (lambda t: ct.drop_path(t, 0.5, scale_by_keep=1, inplace=True), TypeError,
     "scale_by_keep must be a bool"),
    (lambda t: ct.alpha_dropout(t, 0.5, True, True, seed=-1), ValueError, "seed must be in"),
    (lambda t: ct.feature_alpha_dropout(t, 0.5, True, True, offset=2**64 - 4), ValueError,
     "offset \\+ size"),
    (lambda t: ct.gaussian_dropout(t, 1.0, inplace=True), ValueError, "p must be in \\[0, 1\\)"),
    (lambda t: ct.gaussian_noise(t, -1.0, inplace=True), ValueError, "stddev must be finite"),
    (lambda t: ct.gaussian_noise(t, "1", inplace=True), TypeError, "stddev must be a real"),
    (lambda t: ct.dropout(t, 0.5, inplace=True, noise_shape=(2, 3)), ValueError,
     "noise_shape must have one entry per axis"),
    (lambda t: ct.dropout(t, 0.5, inplace=True, noise_shape=(2, 2, 1, 1)), ValueError,
     "does not fit"),
    (lambda t: ct.dropout(t, 0.5, inplace=True, noise_shape=3), TypeError,
     "noise_shape must be a tuple"),
    (lambda t: ct.dropout_add(t, t.clone().double(), 0.5), TypeError, "residual has dtype"),
    (lambda t: ct.dropout_add(t, t[:1].clone(), 0.5), ValueError, "residual must have"),
    (lambda t: ct.dropout_add(t, t.clone(), 0.5, bias=torch.ones(3)), ValueError,
     "does not broadcast"),
    (lambda t: ct.dropout_add(t, t.clone(), 0.5, bias=torch.ones(4, dtype=torch.float16)),
     TypeError, "bias has dtype"),
    (lambda t: ct.dropout_add(t, t.numpy(), 0.5), TypeError, "residual must be a torch.Tensor"),
    (lambda t: ct.dropout_add(t, torch.ones(2, 3, 4, 4, device="meta"), 0.5), ValueError,
     "residual is on device 'meta'"),
    (lambda t: ct.dropout2d(t.to(torch.int32), 0.5), TypeError, "unsupported dtype"),
    (lambda t: ct.alpha_dropout(t.to("meta"), 0.5, True), ValueError, "device 'meta'"),
])
def test_bad_arguments_raise_before_anything_is_drawn_or_written(call, kind, match):
    t = torch.ones(2, 3, 4, 4)
    state = torch.get_rng_state()
    with pytest.raises(kind, match=match):
        call(t)
    assert torch.equal(t, torch.ones(2, 3, 4, 4)) and torch.equal(torch.get_rng_state(), state)


def test_inplace_writes_the_tensors_own_memory_with_the_same_bits():
    for fn in (lambda t, i: ct.dropout2d(t, 0.4, True, i, seed=2),
               lambda t, i: ct.alpha_dropout(t, 0.4, True, i, seed=2),
               lambda t, i: ct.drop_path(t, 0.4, inplace=i, seed=2),
               lambda t, i: ct.gaussian_noise(t, 0.4, inplace=i, seed=2),
               lambda t, i: ct.gaussian_dropout(t, 0.4, inplace=i, seed=2)):
        t = torch.randn(3, 4, 5, 6)[:, ::2]
        expected = fn(t, False)
        ptr, version = t.data_ptr(), t._version
        assert fn(t, True) is t
        assert t.data_ptr() == ptr and t._version > version
        assert_same_bits(t, expected)


def test_inplace_refusals_are_torch_s():
    leaf = torch.randn(2, 3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        ct.dropout1d(leaf, 0.5, True, True)
    with pytest.raises(ValueError, match="overlapping elements"):
        ct.alpha_dropout(torch.ones(1, 3).expand(4, 3), 0.5, True, True)
    with torch.inference_mode():
        inf = torch.ones(2, 3, 4)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        ct.gaussian_noise(inf, 0.5, inplace=True, seed=1)
    assert torch.equal(inf, torch.ones(2, 3, 4))


def test_seed_none_follows_torch_manual_seed_and_generators_leave_it_alone():
    t = torch.ones(4, 8, 3)
    for fn in (ct.dropout1d, lambda x, **k: ct.gaussian_noise(x, 1.0, **k),
               lambda x, **k: ct.dropout_add(x, x, **k)):
        torch.manual_seed(3)
        a, b = fn(t), fn(t)
        torch.manual_seed(3)
        assert torch.equal(a, fn(t)) and not torch.equal(a, b)
        state = torch.get_rng_state()
        assert torch.equal(fn(t, seed=torch.Generator().manual_seed(5)),
                           fn(t, seed=torch.Generator().manual_seed(5)))
        assert torch.equal(torch.get_rng_state(), state)


# --- modules ------------------------------------------------------------------------------------
TORCH_TWINS = ["Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


@pytest.mark.parametrize("name", TORCH_TWINS)
def test_modules_match_torch_s_interface(name):
    ours, theirs = getattr(ct, name)(0.25, True), getattr(torch.nn, name)(0.25, True)
    assert repr(ours) == repr(theirs)
    assert list(ours.parameters()) == [] and list(ours.buffers()) == [] and ours.state_dict() == {}
    t = torch.randn(2, 3, 4) if name == "Dropout1d" else torch.randn(2, 3, 4, 5)
    assert ours.training and ours.eval()(t) is t and theirs.eval()(t) is t


def test_module_signatures_and_reprs():
    assert repr(ct.DropPath(0.1)) == "DropPath(p=0.1, scale_by_keep=True)"
    assert repr(ct.GaussianDropout(0.2)) == "GaussianDropout(p=0.2)"
    assert repr(ct.GaussianNoise(0.3)) == "GaussianNoise(stddev=0.3)"
    assert repr(ct.DropoutAdd()) == "DropoutAdd(p=0.5)"
    assert ct.DropPath().p == 0.0
    with pytest.raises(TypeError):
        ct.DropPath(0.1, True)  # scale_by_keep is keyword-only
    with pytest.raises(ValueError, match="p must be in \\[0, 1\\)"):
        ct.GaussianDropout(1.0)
    with pytest.raises(ValueError, match="stddev must be finite"):
        ct.GaussianNoise(float("inf"))
    with pytest.raises(ValueError, match="seed must be in"):
        ct.Dropout2d(seed=2**64)


# cdrop.torch layer -> (cdrop NumPy layer, input shape)
SEEDED = {
    "Dropout1d": (lambda s: ct.Dropout1d(0.4, seed=s), lambda s: cdrop.Dropout1d(0.4, seed=s),
                  (4, 6, 9)),
    "Dropout2d": (lambda s: ct.Dropout2d(0.4, seed=s), lambda s: cdrop.Dropout2d(0.4, seed=s),
                  (4, 6, 3, 3)),
    "Dropout3d": (lambda s: ct.Dropout3d(0.4, seed=s), lambda s: cdrop.Dropout3d(0.4, seed=s),
                  (6, 2, 3, 3)),
    "AlphaDropout": (lambda s: ct.AlphaDropout(0.4, seed=s),
                     lambda s: cdrop.AlphaDropout(0.4, seed=s), (5, 40)),
    "FeatureAlphaDropout": (lambda s: ct.FeatureAlphaDropout(0.4, seed=s),
                            lambda s: cdrop.FeatureAlphaDropout(0.4, seed=s), (5, 8, 3)),
    "DropPath": (lambda s: ct.DropPath(0.4, seed=s), lambda s: cdrop.DropPath(0.4, seed=s),
                 (16, 5)),
    "GaussianDropout": (lambda s: ct.GaussianDropout(0.4, seed=s),
                        lambda s: cdrop.GaussianDropout(0.4, seed=s), (5, 40)),
    "GaussianNoise": (lambda s: ct.GaussianNoise(0.4, seed=s),
                      lambda s: cdrop.GaussianNoise(0.4, seed=s), (5, 40)),
}


@pytest.mark.parametrize("name", list(SEEDED))
def test_module_with_int_seed_repeats_the_numpy_layers_call_by_call(name):
    make, make_np, shape = SEEDED[name]
    ours, theirs = make(11), make_np(11)
    x = np.linspace(-2, 2, math.prod(shape), dtype=np.float32).reshape(shape)
    for _ in range(3):
        assert_same_bits(ours(torch.from_numpy(x)), torch.from_numpy(theirs(x)))
    assert ours.calls == 3
    ours.eval()
    assert ours(torch.from_numpy(x)) is not None and ours.calls == 3  # eval calls not counted


def test_dropout_add_module_repeats_the_numpy_layer_and_its_eval_mode():
    g = torch.Generator().manual_seed(2)
    x, r, b = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g), torch.randn(10)
    ours, theirs = ct.DropoutAdd(0.3, seed=5), cdrop.DropoutAdd(0.3, seed=5)
    for _ in range(2):
        assert_same_bits(ours(x, r, b), torch.from_numpy(theirs(x.numpy(), r.numpy(),
                                                               bias=b.numpy())))
    assert_same_bits(ours.eval()(x, r, b), r + (x + b))


def test_failed_module_call_takes_no_call_number():
    layer = ct.Dropout2d(0.5, seed=1)
    with pytest.raises(TypeError):
        layer(torch.ones(2, 3, 4, 4, dtype=torch.int32))
    assert layer.calls == 0


def test_module_state_survives_deepcopy_and_torch_save():
    net = torch.nn.Sequential(ct.Dropout2d(0.3, seed=4), ct.DropPath(0.2, seed=5),
                              ct.GaussianNoise(0.1, seed=6))
    x = torch.ones(4, 3, 2, 2)
    net(x)
    clone = copy.deepcopy(net)
    assert torch.equal(clone(x), copy.deepcopy(net)(x)) and clone[0].calls == 2
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    with torch.serialization.safe_globals([ct.Dropout2d, ct.DropPath, ct.GaussianNoise,
                                           torch.nn.Sequential]):
        whole = torch.load(buf)
    assert whole[0].calls == 1 and torch.equal(whole(x), copy.deepcopy(net)(x))
    assert net.state_dict() == {}


# --- replace_dropout ----------------------------------------------------------------------------
def test_replace_dropout_swaps_every_torch_dropout_keeping_p_inplace_and_mode():
    net = torch.nn.Sequential(*(getattr(torch.nn, n)(0.1 * (i + 1), inplace=i % 2 == 0)
                                for i, n in enumerate(["Dropout"] + TORCH_TWINS)))
    net[3].eval()
    assert ct.replace_dropout(net) is net
    for i, (name, m) in enumerate(zip(["Dropout"] + TORCH_TWINS, net)):
        assert type(m) is getattr(ct, name)
        assert (m.p, m.inplace, m.training) == (0.1 * (i + 1), i % 2 == 0, i != 3)
    single = ct.replace_dropout(torch.nn.AlphaDropout(0.3))
    assert type(single) is ct.AlphaDropout and single.p == 0.3


def test_replace_dropout_leaves_subclasses_alone():
    class Mine(torch.nn.Dropout2d):
        pass

    net = torch.nn.Sequential(Mine(0.2))
    ct.replace_dropout(net)
    assert type(net[0]) is Mine


def test_replace_dropout_recognises_timm_s_drop_path_without_importing_timm():
    class DropPath(torch.nn.Module):  # what timm.layers.drop.DropPath holds
        def __init__(self, drop_prob=0.0, scale_by_keep=True):
            super().__init__()
            self.drop_prob, self.scale_by_keep = drop_prob, scale_by_keep

    DropPath.__module__ = "timm.layers.drop"
    net = torch.nn.Sequential(DropPath(0.2, False), torch.nn.Linear(2, 2))
    ct.replace_dropout(net)
    assert type(net[0]) is ct.DropPath and (net[0].p, net[0].scale_by_keep) == (0.2, False)

    class Other(DropPath):
        pass

    Other.__name__ = "DropPath"
    Other.__module__ = "mymodels"
    net = torch.nn.Sequential(Other(0.2))
    ct.replace_dropout(net)
    assert type(net[0]) is Other


def test_thread_count_never_changes_a_result():
    x = torch.randn(8, 16, 40, 40, generator=torch.Generator().manual_seed(1))  # 204,800
    calls = [lambda t: ct.dropout2d(t, 0.3, seed=1), lambda t: ct.alpha_dropout(t, 0.3, True,
                                                                                 seed=1),
             lambda t: ct.gaussian_noise(t, 0.3, seed=1),
             lambda t: ct.dropout_add(t, t, 0.3, seed=1, bias=t[0, 0, 0])]
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append([f(x) for f in calls])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert_same_bits(a, b)
