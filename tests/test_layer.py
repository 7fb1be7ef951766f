"""cdrop.Dropout in one thread: modes, the per-call seeds, backward (recomputed mask), pickling.

Layers shared by several Python threads are in test_concurrency.py, a layer across fork() in
test_threads.py.
"""
import pickle

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal


def _x(shape=(64, 33), dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[x == 0] = 1.0  # no zeros: y != 0 is then exactly the keep mask
    return x


def test_construction_and_modes():
    layer = cdrop.Dropout(0.3, seed=1)
    assert layer.training is True
    assert layer.p == 0.3 and layer.inplace is False
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False) is layer and layer.training is False
    assert layer.train(True) is layer and layer.training is True
    assert cdrop.Dropout().p == 0.5


def test_repr():
    r = repr(cdrop.Dropout(0.25, inplace=True, seed=1))
    assert r.startswith("Dropout(")
    assert "p=0.25" in r and "inplace=True" in r
    r = repr(cdrop.Dropout(0.5, seed=1))
    assert "p=0.5" in r and "inplace=False" in r


@pytest.mark.parametrize(
    "p,exc",
    [(1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError), ("a", TypeError),
     (None, TypeError), (True, TypeError)],
    ids=repr,
)
def test_p_validated(p, exc):
    with pytest.raises(exc, match=r"\bp\b"):
        cdrop.Dropout(p, seed=1)
    layer = cdrop.Dropout(0.2, seed=1)
    with pytest.raises(exc, match=r"\bp\b"):
        layer.p = p
    assert layer.p == 0.2  # unchanged by the failed assignment


def test_seed_validated():
    with pytest.raises(ValueError, match="seed"):
        cdrop.Dropout(0.5, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        cdrop.Dropout(0.5, seed="a")


def test_eval_forward_returns_x_itself():
    layer = cdrop.Dropout(0.5, seed=1).eval()
    x = _x()
    before = x.copy()
    assert layer(x) is x
    assert layer.forward(x) is x
    assert_bits_equal(x, before)
    inplace_layer = cdrop.Dropout(0.5, inplace=True, seed=1).eval()
    assert inplace_layer(x) is x
    assert_bits_equal(x, before)


def test_forward_seed_is_derived_from_layer_seed_and_call_number():
    s, p = 12345, 0.4
    layer = cdrop.Dropout(p, seed=s)
    x = _x()
    outs = [layer(x) for _ in range(4)]
    for c, y in enumerate(outs):
        assert_bits_equal(y, cdrop.dropout(x, p, seed=reference.derive(s, c)), f"call {c}")
        assert_bits_equal(y, reference.dropout_ref(x, p, reference.derive(s, c)), f"call {c}")
    # consecutive calls draw different masks
    for a, b in zip(outs, outs[1:]):
        assert not np.array_equal(a != 0, b != 0)


def test_two_layers_same_seed_same_sequence_and_eval_calls_do_not_count():
    x = _x()
    a, b = cdrop.Dropout(0.5, seed=7), cdrop.Dropout(0.5, seed=7)
    ya = [a(x)]
    a.eval()
    a(x)
    a.train()
    ya.append(a(x))
    yb = [b(x), b(x)]
    for u, v in zip(ya, yb):
        assert_bits_equal(u, v)
    c = cdrop.Dropout(0.5, seed=8)
    assert not np.array_equal(c(x), ya[0])


def test_layer_seed_none_uses_package_stream():
    cdrop.manual_seed(2024)
    layer = cdrop.Dropout(0.5)
    x = _x()
    y = layer(x)
    layer_seed = reference.derive(2024, 0)
    assert_bits_equal(y, cdrop.dropout(x, 0.5, seed=reference.derive(layer_seed, 0)))
    cdrop.manual_seed(2024)
    assert_bits_equal(cdrop.Dropout(0.5)(x), y)


def test_layer_generator_seed():
    x = _x()
    y1 = cdrop.Dropout(0.5, seed=np.random.default_rng(9))(x)
    y2 = cdrop.Dropout(0.5, seed=np.random.default_rng(9))(x)
    assert_bits_equal(y1, y2)
    s = int(np.random.default_rng(9).integers(0, 2**64, dtype=np.uint64))
    assert_bits_equal(y1, cdrop.dropout(x, 0.5, seed=reference.derive(s, 0)))


def test_p_setter_takes_effect():
    layer = cdrop.Dropout(0.5, seed=3)
    x = _x()
    layer(x)
    layer.p = 0.2
    y = layer(x)
    assert_bits_equal(y, cdrop.dropout(x, 0.2, seed=reference.derive(3, 1)))
    assert_bits_equal(layer.backward(np.ones_like(x)),
                      cdrop.dropout(np.ones_like(x), 0.2, seed=reference.derive(3, 1)))


def test_call_uses_a_subclass_forward():
    class Twice(cdrop.Dropout):
        def forward(self, x):
            return super().forward(x) * 2

    layer = Twice(0.0, seed=0)
    assert np.array_equal(layer(np.ones(3)), np.full(3, 2.0))


# ---------------------------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_backward_same_mask_and_scale(p, dtype):
    s = 99
    layer = cdrop.Dropout(p, seed=s)
    x = _x(dtype=dtype)
    layer(x)
    y = layer(x)  # the second call: backward must follow the LAST forward
    grad = _x(dtype=dtype, seed=1)
    grad_before = grad.copy()
    g = layer.backward(grad)
    assert g is not grad and g.shape == grad.shape and g.dtype == grad.dtype
    assert_bits_equal(grad, grad_before, "backward modified grad")
    assert_bits_equal(g, cdrop.dropout(grad, p, seed=reference.derive(s, 1)))
    scale = dtype(1.0 / (1.0 - p))
    assert_bits_equal(g, np.where(y != 0, grad * scale, dtype(0)))
    # backward is repeatable (no state consumed)
    assert_bits_equal(layer.backward(grad), g)


def test_backward_before_forward():
    layer = cdrop.Dropout(0.5, seed=1)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones(3))


def test_backward_shape_mismatch():
    layer = cdrop.Dropout(0.5, seed=1)
    layer(np.ones((4, 5)))
    for shape in [(5, 4), (20,), (4, 5, 1), ()]:
        with pytest.raises(ValueError, match="shape"):
            layer.backward(np.ones(shape))


def test_backward_after_eval_forward_is_identity():
    layer = cdrop.Dropout(0.5, seed=1)
    x = _x()
    layer(x)
    layer.eval()
    layer(x)
    grad = _x(seed=2)
    g = layer.backward(grad)
    assert_bits_equal(g, grad)


def test_backward_follows_the_mode_of_its_forward_not_the_current_mode():
    # issue 11: "backward follows the mode of the forward it belongs to" (as autograd does):
    # switching to eval() between a training forward and its backward keeps the mask
    layer = cdrop.Dropout(0.5, seed=0)
    y = layer(np.ones(64))
    layer.eval()
    grad = np.ones(64)
    g = layer.backward(grad)
    assert g is not grad and np.array_equal(g, y)  # the training mask and scale
    layer(np.ones(64))  # an eval-mode forward: its backward is the identity in any mode
    layer.train()
    assert layer.backward(grad) is grad


def test_backward_in_eval_mode_before_any_forward():
    grad = np.ones(3)
    assert cdrop.Dropout(0.5, seed=0).eval().backward(grad) is grad


def test_backward_uses_the_p_of_its_forward():
    layer = cdrop.Dropout(0.5, seed=0)
    y = layer(np.ones(4096))
    layer.p = 0.25  # e.g. a dropout schedule, between forward and backward
    g = layer.backward(np.ones(4096))
    assert np.array_equal(g, y)


def test_backward_of_inplace_layer():
    s, p = 5, 0.3
    layer = cdrop.Dropout(p, inplace=True, seed=s)
    x = _x()
    x0 = x.copy()
    y = layer(x)
    assert y is x
    assert_bits_equal(x, cdrop.dropout(x0, p, seed=reference.derive(s, 0)))
    grad = np.ones_like(x)
    g = layer.backward(grad)
    assert g is not grad and (grad == 1).all()
    assert np.array_equal(g != 0, x != 0)


def test_backward_is_the_gradient_of_forward():
    """Finite differences of L(x) = sum(w * forward(x)) with the mask held fixed."""
    p, s = 0.4, 77
    layer = cdrop.Dropout(p, seed=s)
    x = _x(shape=(40,), seed=3)
    w = _x(shape=(40,), seed=4)
    layer(x)
    call_seed = reference.derive(s, 0)
    g = layer.backward(w)

    def loss(v):
        return float(np.sum(w * cdrop.dropout(v, p, seed=call_seed)))

    kept = cdrop.dropout_mask(40, p, seed=call_seed)
    idx = list(np.flatnonzero(kept)[:4]) + list(np.flatnonzero(~kept)[:3])
    assert len(idx) == 7
    h = 1e-5
    for i in idx:
        e = np.zeros_like(x)
        e[i] = h
        fd = (loss(x + e) - loss(x - e)) / (2 * h)
        assert abs(fd - g[i]) <= 1e-6 * max(abs(g[i]), 1e-3), (i, fd, g[i])
    # the gradient really is w * scale on kept elements, 0 elsewhere
    assert np.allclose(g[kept], w[kept] / (1 - p), rtol=1e-15)
    assert not g[~kept].any()


# ---------------------------------------------------------------------------------------------
# State: pickling, memory
# ---------------------------------------------------------------------------------------------
def _holds_array(obj, depth=0):
    if isinstance(obj, np.ndarray):
        return True
    if depth > 3:
        return False
    if isinstance(obj, (tuple, list, set, frozenset)):
        return any(_holds_array(o, depth + 1) for o in obj)
    if isinstance(obj, dict):
        return any(_holds_array(o, depth + 1) for o in obj.values())
    return False


@pytest.mark.parametrize("inplace", [False, True])
def test_pickle_round_trip(inplace):
    layer = cdrop.Dropout(0.35, inplace=inplace, seed=11)
    for _ in range(3):
        layer(_x())
    clone = pickle.loads(pickle.dumps(layer))
    assert clone is not layer
    assert clone.p == 0.35 and clone.inplace == inplace and clone.training is True
    # the same RNG position: the next forwards agree
    a, b = _x(), _x()
    assert_bits_equal(clone(a), layer(b))
    assert_bits_equal(clone(a), layer(b))
    assert_bits_equal(clone.backward(np.ones_like(a)), layer.backward(np.ones_like(b)))
    # eval mode survives too
    layer.eval()
    clone2 = pickle.loads(pickle.dumps(layer))
    assert clone2.training is False
    x = _x()
    assert clone2(x) is x


def test_pickle_before_forward_and_after_backward_state():
    layer = cdrop.Dropout(0.5, seed=4)
    clone = pickle.loads(pickle.dumps(layer))
    x = _x()
    assert_bits_equal(clone(x), layer(x))
    with pytest.raises(RuntimeError):
        pickle.loads(pickle.dumps(cdrop.Dropout(0.5, seed=4))).backward(x)


def test_layer_holds_no_array_after_forward():
    for inplace in (False, True):
        layer = cdrop.Dropout(0.5, inplace=inplace, seed=1)
        x = _x(shape=(300, 300))
        layer(x)
        layer.backward(np.ones_like(x))
        for name, value in vars(layer).items():
            assert not _holds_array(value), f"layer.{name} holds an array"
        assert len(pickle.dumps(layer)) < 1000  # O(1) state, not O(n)


def test_layer_survives_pickle_and_deepcopy():
    import copy

    layer = cdrop.Dropout(0.3, seed=5)
    layer(np.ones(100))
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        g = np.ones(100)
        assert_bits_equal(clone.backward(g), layer.backward(g), "backward of the clone")
        assert_bits_equal(clone(np.ones(100)), copy.deepcopy(layer)(np.ones(100)), "next call")


def test_train_mode_flag_is_checked():
    layer = cdrop.Dropout(0.5, seed=1)
    with pytest.raises(TypeError, match="mode"):
        layer.train(np.array([1, 0]))
    assert layer.training  # unchanged
