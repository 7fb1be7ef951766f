"""The layers of the dropout family behave as cdrop.Dropout does: the call counter and
derive(seed, call), Monte-Carlo calls (training=None/True/False), a backward that recomputes
the mask or noise (checked by finite differences), pickling, threads, repr."""
import copy
import pickle
import threading

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal

S = 21  # the layers' seed


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# name -> (make layer, input shape, the function a training call with seed s computes)
SPECS = {
    "Dropout": (lambda: cdrop.Dropout(0.3, seed=S), (4, 6),
                lambda x, s: cdrop.dropout(x, 0.3, seed=s)),
    "Dropout1d": (lambda: cdrop.Dropout1d(0.3, seed=S), (2, 3, 5),
                  lambda x, s: cdrop.dropout(x, 0.3, seed=s, noise_shape=(None, None, 1))),
    "Dropout2d": (lambda: cdrop.Dropout2d(0.3, seed=S), (2, 3, 2, 2),
                  lambda x, s: cdrop.dropout(x, 0.3, seed=s, noise_shape=(2, 3, 1, 1))),
    "Dropout3d": (lambda: cdrop.Dropout3d(0.3, seed=S), (3, 2, 1, 2),
                  lambda x, s: cdrop.dropout(x, 0.3, seed=s, noise_shape=(3, 1, 1, 1))),
    "DropPath": (lambda: cdrop.DropPath(0.3, seed=S), (6, 4),
                 lambda x, s: cdrop.drop_path(x, 0.3, seed=s)),
    "DropPath-noscale": (lambda: cdrop.DropPath(0.3, scale_by_keep=False, seed=S), (6, 4),
                         lambda x, s: cdrop.drop_path(x, 0.3, seed=s, scale_by_keep=False)),
    "AlphaDropout": (lambda: cdrop.AlphaDropout(0.3, seed=S), (4, 6),
                     lambda x, s: cdrop.alpha_dropout(x, 0.3, seed=s)),
    "FeatureAlphaDropout": (lambda: cdrop.FeatureAlphaDropout(0.3, seed=S), (3, 4, 2),
                            lambda x, s: reference.alpha_ref(x, 0.3, s, 0, (3, 4, 1))),
    "GaussianDropout": (lambda: cdrop.GaussianDropout(0.3, seed=S), (4, 6),
                        lambda x, s: cdrop.gaussian_dropout(x, 0.3, seed=s)),
    "GaussianNoise": (lambda: cdrop.GaussianNoise(0.3, seed=S), (4, 6),
                      lambda x, s: cdrop.gaussian_noise(x, 0.3, seed=s)),
}
NAMES = list(SPECS)


@pytest.mark.parametrize("name", NAMES)
def test_calls_use_derive_of_the_layer_seed_and_the_call_number(name):
    make, shape, fn = SPECS[name]
    layer = make()
    x = _x(shape)
    for k in range(3):
        assert_bits_equal(layer(x), fn(x, reference.derive(S, k)), f"call {k}")
    layer.eval()
    assert layer(x) is x and layer._calls == 3  # evaluation takes no call number


@pytest.mark.parametrize("name", NAMES)
def test_monte_carlo_calls_override_the_mode_and_backward_follows_them(name):
    make, shape, fn = SPECS[name]
    x, g = _x(shape), _x(shape, 1)
    layer = make().eval()
    assert layer(x) is x
    assert layer.backward(g) is g
    y = layer(x, training=True)  # Monte-Carlo dropout: on at inference
    assert_bits_equal(y, fn(x, reference.derive(S, 0)))
    assert layer._calls == 1 and layer.training is False
    assert_bits_equal(layer.backward(g), _bw(make, x, g))
    assert layer.forward(x, np.bool_(True)) is not x and layer._calls == 2
    layer.train()
    assert layer(x, training=False) is x and layer._calls == 2
    assert layer.backward(g) is g  # follows the evaluation-mode call
    assert layer(x, training=None) is not x and layer._calls == 3  # None: the layer's mode
    with pytest.raises(TypeError, match="training must be a bool"):
        layer(x, training=1)
    assert layer._calls == 3


def _bw(make, x, g):
    """backward of a fresh layer's first training call."""
    layer = make()
    layer(x)
    return layer.backward(g)


@pytest.mark.parametrize("name", NAMES)
def test_backward_is_the_gradient_of_forward(name):
    """Central differences of L(x) = sum(w * forward(x)), the call seed held fixed (each
    evaluation is the first call of a fresh layer)."""
    make, shape, _ = SPECS[name]
    x, w = _x(shape), _x(shape, 1)
    layer = make()
    layer(x)
    g = layer.backward(w)
    h = 1e-6
    num = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(shape)
        num[i] = (np.sum(w * make()(x + e)) - np.sum(w * make()(x - e))) / (2 * h)
    np.testing.assert_allclose(g.ravel(), num, rtol=1e-6, atol=1e-6)
    assert np.any(g != w) or name == "GaussianNoise"  # the check can see a wrong backward


def test_dropout_add_layer_forward_backward_and_gradients():
    x, r, b, w = _x((4, 5)), _x((4, 5), 1), _x(5, 2), _x((4, 5), 3)
    layer = cdrop.DropoutAdd(0.4, seed=S)
    y = layer(x, r, bias=b)
    assert_bits_equal(y, cdrop.dropout_add(x, r, 0.4, bias=b, seed=reference.derive(S, 0)))
    gx, gr, gb = layer.backward(w)
    assert gr is w  # the identity: grad itself
    assert_bits_equal(gx, cdrop.dropout(w, 0.4, seed=reference.derive(S, 0)))
    assert_bits_equal(gb, gx.sum(axis=0))
    # finite differences in x, residual and bias
    h = 1e-6

    def loss(xx, rr, bb):
        return np.sum(w * cdrop.DropoutAdd(0.4, seed=S)(xx, rr, bias=bb))

    for arr, got in ((x, gx), (r, gr), (b, gb)):
        num = np.empty(arr.size)
        for i in range(arr.size):
            e = np.zeros(arr.size)
            e[i] = h
            e = e.reshape(arr.shape)
            args_p = [a + e if a is arr else a for a in (x, r, b)]
            args_m = [a - e if a is arr else a for a in (x, r, b)]
            num[i] = (loss(*args_p) - loss(*args_m)) / (2 * h)
        np.testing.assert_allclose(got.ravel(), num, rtol=1e-6, atol=1e-6)
    # no bias: grad_bias is None; Monte-Carlo and evaluation calls as the other layers
    layer(x, r)
    assert layer.backward(w)[2] is None
    layer.eval()
    assert_bits_equal(layer(x, r, bias=b), r + (x + b))
    gx, gr, gb = layer.backward(w)
    assert gx is w and gr is w and gb.shape == (5,)
    y = layer(x, r, training=True)
    assert not np.array_equal(y, r + x)
    assert_bits_equal(layer.backward(w)[0], cdrop.dropout(w, 0.4, seed=reference.derive(S, 2)))
    assert repr(layer) == "DropoutAdd(p=0.4)"


def test_grad_bias_of_a_broadcast_bias_in_half_precision():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for dt in (np.float16, ml_dtypes.bfloat16):
        x = np.ones((3, 4, 2), dt)
        layer = cdrop.DropoutAdd(0.5, seed=1)
        layer(x, np.zeros_like(x), bias=np.zeros((4, 1), dt))
        gx, _, gb = layer.backward(np.ones_like(x))
        assert gb.shape == (4, 1) and gb.dtype == dt
        assert_bits_equal(gb, gx.astype(np.float32).sum(axis=(0, 2)).reshape(4, 1).astype(dt))


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward_and_of_another_shape(name):
    make, shape, _ = SPECS[name]
    layer = make()
    with pytest.raises(RuntimeError, match="before any forward"):
        layer.backward(np.ones(shape))
    assert layer.eval().backward(g := np.ones(shape)) is g
    layer.train()(np.ones(shape))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.ones((7,)))


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_deepcopy_keep_the_position(name):
    make, shape, _ = SPECS[name]
    x = _x(shape)
    layer = make()
    layer(x)
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert repr(clone) == repr(layer)
        assert_bits_equal(clone.backward(x), layer.backward(x))
        assert_bits_equal(clone(x), _second(make, x))
    assert_bits_equal(layer(x), _second(make, x))


def _second(make, x):
    layer = make()
    layer(x)
    return layer(x)


@pytest.mark.parametrize("name", NAMES)
def test_threads_sharing_a_layer_take_distinct_call_numbers(name):
    make, shape, fn = SPECS[name]
    x = _x(shape)
    layer = make()
    results = []
    lock = threading.Lock()

    def work():
        for _ in range(5):
            y = layer(x)
            with lock:
                results.append(y.tobytes())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = sorted(fn(x, reference.derive(S, k)).tobytes() for k in range(20))
    assert sorted(results) == expected


def test_reprs():
    assert repr(cdrop.Dropout2d(0.25, inplace=True)) == "Dropout2d(p=0.25, inplace=True)"
    assert repr(cdrop.DropPath(0.1)) == "DropPath(p=0.1, scale_by_keep=True)"
    assert repr(cdrop.FeatureAlphaDropout(0.2)) == "FeatureAlphaDropout(p=0.2, inplace=False)"
    assert repr(cdrop.GaussianNoise(2)) == "GaussianNoise(stddev=2.0)"
    assert repr(cdrop.GaussianDropout(0.5)) == "GaussianDropout(p=0.5)"


def test_inplace_layers_write_into_x():
    for layer in (cdrop.Dropout2d(0.5, inplace=True, seed=1),
                  cdrop.AlphaDropout(0.5, inplace=True, seed=1)):
        x = _x((2, 3, 2, 2))
        x0 = x.copy()
        assert layer(x) is x
        assert not np.array_equal(x, x0)


def test_a_dropout_pickled_by_cdrop_0_1_still_runs_backward():
    layer = cdrop.Dropout(0.5, seed=S)
    x = _x((3, 4))
    y = layer(x)
    state = layer.__getstate__()
    state["_last"] = state["_last"][:3]  # cdrop 0.1 kept (seed, p, shape)
    old = cdrop.Dropout.__new__(cdrop.Dropout)
    old.__setstate__(state)
    assert_bits_equal(old.backward(np.ones_like(x)), cdrop.dropout(np.ones_like(x), 0.5,
                                                                   seed=reference.derive(S, 0)))
    assert np.array_equal(old.backward(x), y)
    state["_last"] = "eval"
    old.__setstate__(state)
    g = np.ones(3)
    assert old.backward(g) is g
