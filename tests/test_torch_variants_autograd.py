"""cdrop.torch's dropout family under autograd and torch.compile: backward recomputes the mask
or the normals from the key (nothing saved), gradcheck/gradgradcheck in float64, dropout_add's
three gradients, forward-mode AD, opcheck of cdrop::variant/variant_, compiled == eager."""
import pytest

torch = pytest.importorskip("torch")
import cdrop  # noqa: E402
import cdrop.torch as ct  # noqa: E402

# name -> f(t, seed) with one tensor argument (dropout_add: residual and bias fixed)
FUNCS = {
    "dropout(noise_shape)": lambda t, s=7: ct.dropout(t, 0.4, seed=s, noise_shape=(None, 1, 5)),
    "dropout1d": lambda t, s=7: ct.dropout1d(t, 0.4, seed=s),
    "dropout2d": lambda t, s=7: ct.dropout2d(t.unsqueeze(-1), 0.4, seed=s),
    "dropout3d": lambda t, s=7: ct.dropout3d(t.unsqueeze(-1), 0.4, seed=s),
    "alpha_dropout": lambda t, s=7: ct.alpha_dropout(t, 0.4, True, seed=s),
    "feature_alpha_dropout": lambda t, s=7: ct.feature_alpha_dropout(t, 0.4, True, seed=s),
    "drop_path": lambda t, s=7: ct.drop_path(t, 0.4, seed=s),
    "gaussian_dropout": lambda t, s=7: ct.gaussian_dropout(t, 0.4, seed=s),
    "gaussian_noise": lambda t, s=7: ct.gaussian_noise(t, 0.4, seed=s),
    "dropout_add": lambda t, s=7: ct.dropout_add(t, torch.ones_like(t), 0.4, seed=s,
                                                 bias=torch.ones(t.shape[-1], dtype=t.dtype)),
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_gradcheck_and_gradgradcheck_in_float64(name):
    x = torch.randn(4, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(FUNCS[name], (x,))
    assert torch.autograd.gradgradcheck(FUNCS[name], (x,))


def saved_bytes(fn, x):
    packed = []

    def pack(t):
        packed.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x * 1).sum().backward()
    return packed


@pytest.mark.parametrize("name", list(FUNCS))
def test_backward_saves_no_tensor(name):
    x = torch.randn(64, 6, 5, requires_grad=True)
    assert saved_bytes(lambda h: FUNCS[name](h, None), x) == []


@pytest.mark.parametrize("layer", [ct.Dropout1d(0.5), ct.Dropout2d(0.5), ct.AlphaDropout(0.5),
                                   ct.FeatureAlphaDropout(0.5), ct.DropPath(0.5),
                                   ct.GaussianDropout(0.5), ct.GaussianNoise(0.5),
                                   ct.Dropout3d(0.5, seed=3)], ids=repr)
def test_modules_save_no_tensor_unlike_torch_s(layer):
    x = torch.randn(8, 6, 5, 5, requires_grad=True)
    if isinstance(layer, ct.Dropout1d):
        x = torch.randn(8, 6, 25, requires_grad=True)
    assert saved_bytes(layer, x) == []
    twin = getattr(torch.nn, type(layer).__name__, None)
    if twin is not None:  # torch's saves its mask (channel-sized for the channel ones)
        assert saved_bytes(twin(0.5), x) != []


def test_backward_is_the_recomputed_mask_times_the_scale():
    x = torch.randn(8, 6, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(8, 6, 5, dtype=torch.float64)
    keep = torch.from_numpy(cdrop.dropout_mask((8, 6, 1), 0.3, seed=2, offset=4))
    ct.dropout1d(x, 0.3, seed=2, offset=4).backward(g)
    assert torch.equal(x.grad, torch.where(keep, g * (1 / 0.7), 0.0))
    x.grad = None
    a = ((1 - 0.3) * (1 + 0.3 * 1.7580993408473766**2)) ** -0.5
    keep = torch.from_numpy(cdrop.dropout_mask((8, 6, 5), 0.3, seed=2))
    ct.alpha_dropout(x, 0.3, True, seed=2).backward(g)
    assert torch.equal(x.grad, torch.where(keep, g * a, 0.0))
    x.grad = None
    y = ct.gaussian_dropout(x, 0.3, seed=2)
    y.backward(g)
    assert torch.equal(x.grad, ct.gaussian_dropout(g, 0.3, seed=2))  # g * (1 + s * z)
    x.grad = None
    ct.gaussian_noise(x, 0.3, seed=2).backward(g)
    assert torch.equal(x.grad, g)


def test_dropout_add_gradients_of_input_residual_and_broadcast_bias():
    x = torch.randn(3, 4, 5, requires_grad=True)
    r = torch.randn(3, 4, 5, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    g = torch.randn(3, 4, 5)
    ct.dropout_add(x, r, 0.3, bias=b, seed=9, offset=1).backward(g)
    gx = ct.dropout(g, 0.3, seed=9, offset=1)
    assert torch.equal(x.grad, gx) and torch.equal(r.grad, g)
    torch.testing.assert_close(b.grad, gx.sum((0, 1)))
    r.grad = None
    x.requires_grad_(False)
    ct.dropout_add(x, r, 0.3, seed=9).backward(g)  # the residual's gradient alone
    assert torch.equal(r.grad, g)
    r64 = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    b64 = torch.randn(4, 1, dtype=torch.float64, requires_grad=True)  # any broadcast shape
    x64 = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    fn = lambda a, c, d: ct.dropout_add(a, c, 0.3, bias=d, seed=9)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x64, r64, b64))
    assert torch.autograd.gradgradcheck(fn, (x64, r64, b64))


def test_inplace_on_an_intermediate_backpropagates_through_the_mask():
    x = torch.randn(4, 6, 5, requires_grad=True)
    h = x * 3
    assert ct.dropout1d(h, 0.5, True, True, seed=4) is h
    h.sum().backward()
    assert torch.equal(x.grad, ct.dropout1d(torch.full((4, 6, 5), 3.0), 0.5, seed=4))


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")
@pytest.mark.parametrize("name", ["dropout1d", "alpha_dropout", "gaussian_dropout",
                                  "gaussian_noise", "dropout_add"])
def test_forward_mode_ad_carries_the_tangent(name):
    import torch.autograd.forward_ad as fwAD

    x = torch.randn(4, 6, 5, dtype=torch.float64)
    v = torch.randn(4, 6, 5, dtype=torch.float64)
    with fwAD.dual_level():
        y = FUNCS[name](fwAD.make_dual(x, v))
        primal, tangent = fwAD.unpack_dual(y)
    assert torch.equal(primal, FUNCS[name](x))
    x.requires_grad_()
    jac_v = torch.autograd.functional.jvp(FUNCS[name], x, v)[1]
    torch.testing.assert_close(tangent, jac_v)


def test_opcheck_passes():
    x = torch.randn(4, 3, 6, 5)
    key = torch.tensor(-5, dtype=torch.int64)
    ops = cdrop._kernels
    for args in [(x, key, 3, 0.3, ops.OP_DROP, 1 / 0.7, 0.0, 0.0, [4, 3, 1, 1], None, None),
                 (x.transpose(1, 3), key, 0, 0.3, ops.OP_ALPHA, 1.3, 0.2, -0.9, None, None,
                  None),
                 (x, key, 1, 0.3, ops.OP_ADD, 1 / 0.7, 0.0, 0.0, None, x.clone(),
                  torch.randn(5)),
                 (x, key, 7, 0.0, ops.OP_GMUL, 0.5, 0.0, 0.0, None, None, None),
                 (x, key, 7, 0.0, ops.OP_GADD, 0.5, 0.0, 0.0, None, None, None)]:
        torch.library.opcheck(torch.ops.cdrop.variant.default, args)
        grad_args = (args[0].clone().requires_grad_(),) + args[1:]
        torch.library.opcheck(torch.ops.cdrop.variant.default, grad_args)
        if args[9] is None:
            torch.library.opcheck(torch.ops.cdrop.variant_.default, (args[0].clone(),) + args[1:])


# Inductor imports torch.jit, which warns that it is deprecated (pyproject: warnings are errors)
compile_warnings = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@compile_warnings
def test_compile_fullgraph_gives_the_eager_values_and_gradients():
    torch._dynamo.reset()

    def f(t, r, b, seed):
        u = t * 2
        ct.dropout2d(u, 0.3, inplace=True, seed=seed, offset=3)
        ct.gaussian_noise(u, 0.3, inplace=True)
        return (ct.alpha_dropout(t, 0.2, True, seed=seed) + ct.dropout_add(t, r, 0.4, bias=b)
                + u + ct.drop_path(t, 0.5) + ct.feature_alpha_dropout(t, 0.3, True)
                + ct.gaussian_dropout(t, 0.2, seed=seed + 1)
                + ct.dropout(t, 0.5, noise_shape=(None, 1, 8, 1))
                + ct.dropout3d(t, 0.5, seed=seed) + ct.dropout1d(t[0], 0.5).unsqueeze(0))

    compiled = torch.compile(f, fullgraph=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8, 8, generator=g)
    r, b = torch.randn(4, 3, 8, 8, generator=g), torch.randn(8, generator=g)
    for seed in (1, 2**63 + 5):
        results = []
        for fn in (f, compiled):
            torch.manual_seed(7)
            xs = [t.clone().requires_grad_() for t in (x, r, b)]
            y = fn(*xs, seed)
            y.sum().backward()
            results.append([y.detach()] + [t.grad for t in xs])
        (y, gx, gr, gb), (cy, cgx, cgr, cgb) = results
        assert torch.equal(y, cy) and torch.equal(gx, cgx) and torch.equal(gr, cgr)
        torch.testing.assert_close(gb, cgb)  # a sum over 128 rows, in Inductor's own order


@compile_warnings
def test_compiled_layers_with_int_seeds_make_one_graph_and_the_eager_masks():
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()

    def net():
        return torch.nn.Sequential(ct.Dropout2d(0.5, seed=3), ct.AlphaDropout(0.2, seed=4),
                                   ct.DropPath(0.3, seed=5), ct.GaussianNoise(0.1, seed=6),
                                   ct.FeatureAlphaDropout(0.3, seed=7))

    eager, traced = net(), net()
    compiled = torch.compile(traced, fullgraph=True)
    x = torch.randn(4, 3, 5, 5)
    for _ in range(10):  # more calls than torch.compile's recompile limit (8)
        assert torch.equal(compiled(x), eager(x))
    assert all(m.calls == 10 for m in traced) and all(m.calls == 10 for m in eager)
    assert counters["stats"]["unique_graphs"] == 1
    add_eager, add_traced = ct.DropoutAdd(0.3, seed=1), ct.DropoutAdd(0.3, seed=1)
    add_compiled = torch.compile(add_traced, fullgraph=True)
    for _ in range(2):
        assert torch.equal(add_compiled(x, x, x[0, 0, 0]), add_eager(x, x, x[0, 0, 0]))


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_of_a_seeded_variant_layer_is_an_error_and_seed_none_recomputes(
        use_reentrant):
    from torch.utils.checkpoint import checkpoint

    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    layer = ct.Dropout2d(0.5, seed=1)
    with pytest.raises(RuntimeError, match="Dropout2d\\(seed=int\\) cannot be recomputed"):
        checkpoint(lambda t: layer(t * 1).pow(2), x, use_reentrant=use_reentrant).sum().backward()
    grads = []
    for wrap in (False, True):
        layer = ct.Dropout2d(0.5)
        f = lambda t, layer=layer: layer(t * 1).pow(2)  # noqa: E731 - pow saves its input
        torch.manual_seed(0)
        (checkpoint(f, x, use_reentrant=use_reentrant) if wrap else f(x)).sum().backward()
        grads.append(x.grad)
        x.grad = None
    assert torch.equal(*grads) and grads[0].abs().sum() > 0


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_traced_functions_compute_the_family_of_their_new_input():
    x = torch.randn(4, 3, 5, 5)
    for fn in (lambda t: ct.dropout2d(t, 0.5, seed=3),
               lambda t: ct.dropout_add(t, t * 2, 0.5, seed=3, bias=t[0, 0, 0]),
               lambda t: ct.gaussian_noise(t, 0.5, seed=3),
               lambda t: ct.dropout(t, 0.5, seed=3, noise_shape=(None, 1, 5, 1))):
        traced = torch.jit.trace(fn, (x,), check_trace=False)
        y = torch.randn(4, 3, 5, 5)
        assert torch.equal(traced(y), fn(y))
    traced = torch.jit.trace(lambda t: ct.alpha_dropout(t, 0.5, True), (x,), check_trace=False)
    assert not torch.equal(traced(x), traced(x))  # seed=None: a key drawn per run


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")
@pytest.mark.parametrize("name", list(FUNCS))
def test_torch_func_jvp_is_the_tangent_through_the_linear_part(name):
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    v = torch.randn(4, 6, 5, dtype=torch.float64)
    y, tangent = torch.func.jvp(FUNCS[name], (x,), (v,))
    assert torch.equal(y, FUNCS[name](x))
    x.requires_grad_()
    torch.testing.assert_close(tangent, torch.autograd.functional.jvp(FUNCS[name], x, v)[1])


def test_dropout_add_forward_ad_with_tangents_on_residual_and_bias():
    import torch.autograd.forward_ad as fwAD

    x, r = torch.randn(2, 3, 4, dtype=torch.float64).unbind()
    b, tb = torch.randn(2, 4, dtype=torch.float64).unbind()
    tr = torch.randn(3, 4, dtype=torch.float64)
    with fwAD.dual_level():
        y = ct.dropout_add(x, fwAD.make_dual(r, tr), 0.5, bias=fwAD.make_dual(b, tb), seed=3)
        tangent = fwAD.unpack_dual(y).tangent
    assert torch.equal(tangent, tr + ct.dropout(tb.expand(3, 4), 0.5, seed=3))


def test_torch_func_vmap_and_grad_are_clear_errors():
    x = torch.randn(4, 3, 5)
    with pytest.raises(TypeError, match="torch.func transform"):
        torch.func.vmap(lambda t: ct.dropout1d(t, 0.5, seed=1))(x)
    with pytest.raises(RuntimeError, match="setup_context"):
        torch.func.grad(lambda t: ct.alpha_dropout(t, 0.5, True, seed=1).sum())(x)
