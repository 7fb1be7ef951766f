"""cdrop.torch under autograd and torch.compile: the custom operators, the backward pass that
recomputes the mask (nothing saved), in-place semantics, no_grad, opcheck."""
import pytest

torch = pytest.importorskip("torch")
import cdrop.torch as ct  # noqa: E402

F = torch.nn.functional


def test_backward_is_the_same_mask_and_scale():
    x = torch.randn(40, 50, requires_grad=True)
    y = ct.dropout(x, 0.3, seed=8, offset=5)
    g = torch.randn(40, 50)
    y.backward(g)
    assert torch.equal(x.grad, ct.dropout(g, 0.3, seed=8, offset=5))
    assert torch.equal(y.detach(), ct.dropout(x.detach(), 0.3, seed=8, offset=5))


def test_gradcheck_and_gradgradcheck_in_float64():
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    fn = lambda t: ct.dropout(t, 0.4, seed=123)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_backward_saves_no_tensor_unlike_torch_dropout():
    x = torch.randn(1000, 64, requires_grad=True)

    def saved(fn):
        packed = []

        def pack(t):
            packed.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x * 1).sum().backward()
        return packed

    assert saved(lambda h: ct.dropout(h, 0.5)) == []
    assert saved(ct.Dropout(0.5)) == []
    theirs = saved(torch.nn.Dropout(0.5))
    assert sum(theirs) >= x.numel()  # a mask of at least one byte per element


def test_no_grad_and_inference_mode_give_the_same_values():
    x = torch.randn(100, requires_grad=True)
    expected = ct.dropout(x, 0.5, seed=2)
    with torch.no_grad():
        y = ct.dropout(x, 0.5, seed=2)
    assert not y.requires_grad and torch.equal(y, expected)
    with torch.inference_mode():
        assert torch.equal(ct.dropout(x.detach(), 0.5, seed=2), expected)


def test_inplace_on_a_leaf_that_requires_grad_is_refused_as_by_torch():
    x = torch.randn(10, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.dropout(x, 0.5, inplace=True)
    state = torch.get_rng_state()
    for offset in (0, 3):  # the eager fast path and the operators
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            ct.dropout(x, 0.5, inplace=True, offset=offset)
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn


def test_inplace_on_an_intermediate_backpropagates_through_the_mask():
    x = torch.randn(30, requires_grad=True)
    h = x * 3
    version = h._version
    y = ct.dropout(h, 0.5, True, True, seed=4)
    assert y is h and h._version > version
    y.sum().backward()
    assert torch.equal(x.grad, ct.dropout(torch.full((30,), 3.0), 0.5, seed=4))


def test_inplace_after_the_input_was_saved_is_caught_by_the_version_counter():
    x = torch.randn(10, requires_grad=True)
    h = x * 1
    s = h.sin()  # saves h
    ct.dropout(h, 0.5, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.sum().backward()


def test_opcheck_passes():
    x = torch.randn(8, 9)
    key = torch.tensor(-5, dtype=torch.int64)
    for args in [(x, key, 3, 0.3), (x.t(), key, 0, 0.7)]:
        torch.library.opcheck(torch.ops.cdrop.dropout.default, args)
        torch.library.opcheck(torch.ops.cdrop.dropout.default,
                              (args[0].clone().requires_grad_(), *args[1:]))
        torch.library.opcheck(torch.ops.cdrop.dropout_.default, (args[0].clone(), *args[1:]))


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), ct.Dropout(0.5), torch.nn.ReLU(),
                               torch.nn.Linear(32, 4), ct.Dropout(0.2))


# Inductor imports torch.jit, which warns that it is deprecated (pyproject: warnings are errors)
compile_warnings = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@compile_warnings
def test_compile_fullgraph_gives_the_eager_values_and_gradients_for_the_same_seeds():
    torch._dynamo.reset()
    model = _mlp()
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(8, 16)
    results = []
    for fn in (model, compiled):
        torch.manual_seed(7)
        outs, grads = [], []
        for _ in range(2):  # two steps: the keys must differ from step to step in both
            model.zero_grad()
            y = fn(x)
            y.sum().backward()
            outs.append(y.detach())
            grads.append(model[0].weight.grad.clone())
        results.append((outs, grads))
    (eo, eg), (co, cg) = results
    assert not torch.equal(eo[0], eo[1])
    for a, b in zip(eo + eg, co + cg):
        assert torch.equal(a, b)


@compile_warnings
def test_compile_with_int_seeds_offsets_and_inplace():
    torch._dynamo.reset()

    def f(t, seed):
        u = t * 2
        ct.dropout(u, 0.3, inplace=True, seed=seed, offset=11)
        return ct.dropout(t, 0.6, seed=seed) + u

    compiled = torch.compile(f, fullgraph=True)
    x = torch.randn(33, 17)
    for seed in (1, 2, 2**62, 2**63 + 5, 2**64 - 1):  # a changing int becomes a symbol
        assert torch.equal(f(x, seed), compiled(x, seed))


@compile_warnings
def test_compile_of_a_layer_with_an_int_seed_makes_one_graph_and_the_eager_masks():
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    x = torch.randn(10, 8)
    eager, traced = ct.Dropout(0.5, seed=3), ct.Dropout(0.5, seed=3)
    compiled = torch.compile(traced, fullgraph=True)
    for _ in range(10):  # more calls than torch.compile's recompile limit (8)
        assert torch.equal(compiled(x), eager(x))
    assert traced.calls == eager.calls == 10
    assert counters["stats"]["unique_graphs"] == 1
