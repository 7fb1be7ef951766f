"""An outside review of the dropout family (issue 11): the attacks that found a bug.

Each test is one reproducer.  The ones whose fix was small and local pass (the fix is in the
same commit); the others are ``xfail(strict=True)`` with the reason, so that the fix turns them
into failures to un-mark.  The attacks that held (hostile subclasses against the kernels, odd
layouts and overlaps, noise_shape forms, p/stddev/seed/offset/num_threads edges, the issue's
oracle equalities for every dtype with NaN/Inf/-0.0/subnormals, layer modes, pickling, small
thread stacks) are not repeated here: tests/test_variants*.py already hold them.
"""
import warnings

import numpy as np
import pytest

import cdrop

# ---------------------------------------------------------------------------------------------
# DropoutAdd.backward's grad_bias
# ---------------------------------------------------------------------------------------------


class _LyingShape(np.ndarray):
    """Reports the shape it is told to through Python (what np.shape reads), whatever its
    memory is."""

    @property
    def shape(self):
        return self.__dict__.get("claimed", np.ndarray.shape.__get__(self))


def test_grad_bias_has_the_shape_of_the_bias_the_forward_read_not_a_subclass_claim():
    # The forward reads the bias through the base class (3 elements, broadcast along axis 0);
    # grad_bias must be the gradient of that bias: the column sums, shape (3,).  It took
    # the shape from np.shape(bias), which a subclass can make (1,): grad_bias was then the
    # sum of everything, silently, or a NumPy reshape error for a claim of (5,).
    x = np.ones((4, 3), np.float32)
    r = np.zeros((4, 3), np.float32)
    layer = cdrop.DropoutAdd(0.5, seed=1)
    for claimed in [(1,), (5,)]:
        b = np.ones(3, np.float32).view(_LyingShape)
        b.claimed = claimed
        layer(x, r, bias=b)
        g = np.ones((4, 3), np.float32)
        gx, _, gb = layer.backward(g)
        np.testing.assert_array_equal(gb, gx.sum(axis=0))
        assert gb.shape == (3,)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_grad_bias_overflowing_to_inf_gives_no_numpy_warning(dtype, training):
    # The family returns IEEE results silently (the kernels never warn; dropout_add's NumPy
    # paths suppress the warnings on purpose), but backward's bias sum warned "overflow
    # encountered in reduce/cast", an error under -W error (this suite's setting).
    big = np.finfo(dtype).max
    x = np.full((4, 3), big, dtype)
    r = np.zeros((4, 3), dtype)
    b = np.zeros(3, dtype)
    layer = cdrop.DropoutAdd(0.0, seed=1).train(training)  # p = 0: grad_x is grad
    layer(x, r, bias=b)
    g = np.full((4, 3), big, dtype)
    g[0, 0] = -np.inf  # and inf - inf: "invalid value"
    g[1, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, gb = layer.backward(g)
    assert np.isnan(gb[0]) and np.isposinf(gb[1]) and np.isposinf(gb[2])


def test_eval_mode_backward_refuses_a_grad_of_another_shape_for_grad_bias():
    # Training mode checks grad against the forward's output shape; evaluation mode (the layer
    # in eval(), or a training=False call) did not, yet still summed grad into grad_bias: a
    # (5, 3) grad for a (4, 3) forward gave a grad_bias of 5s without a word, a (4, 4) grad
    # NumPy's "cannot reshape array of size 4 into shape (3,)", which names nothing.
    x = np.ones((4, 3), np.float32)
    r = np.zeros((4, 3), np.float32)
    b = np.zeros(3, np.float32)
    for layer in [cdrop.DropoutAdd(0.5, seed=1).eval(), cdrop.DropoutAdd(0.5, seed=1)]:
        layer(x, r, False, bias=b) if layer.training else layer(x, r, bias=b)
        for shape in [(5, 3), (4, 4)]:
            with pytest.raises(ValueError, match="grad has shape"):
                layer.backward(np.ones(shape, np.float32))
        gx, gr, gb = layer.backward(np.ones((4, 3), np.float32))  # the right shape still runs
        np.testing.assert_array_equal(gb, [4, 4, 4])


# ---------------------------------------------------------------------------------------------
# dropout_add and masked arrays
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_a_masked_residual_element_stays_masked(training):
    x = np.ones(4, np.float32)
    r = np.ma.masked_array(np.array([1, 2, 1e30, 4], np.float32), mask=[0, 0, 1, 0])
    y = cdrop.dropout_add(x, r, 0.5, training, seed=1)
    expected = r + cdrop.dropout(x, 0.5, training, seed=1)  # NumPy: masked where r is
    assert isinstance(y, np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getmaskarray(y), np.ma.getmaskarray(expected))
    np.testing.assert_array_equal(y.compressed(), expected.compressed())


def test_a_masked_bias_masks_its_column():
    x = np.ones((3, 4), np.float32)
    b = np.ma.masked_array(np.zeros(4, np.float32), mask=[0, 1, 0, 0])
    y = cdrop.dropout_add(x, x, 0.5, bias=b, seed=1)
    assert isinstance(y, np.ma.MaskedArray)
    assert np.ma.getmaskarray(y)[:, 1].all() and not np.ma.getmaskarray(y)[:, [0, 2, 3]].any()
