"""A call that raises consumes no seed, whatever raised: the package stream (``seed=None``) and a
``numpy.random.Generator`` passed as the seed are where they were, so that a run after
``manual_seed`` stays reproducible.  The seed is drawn last, after everything that can fail,
including allocating the result (MemoryError) and a shape NumPy cannot allocate.
"""
import numpy as np
import pytest

import cdrop
from helpers import assert_bits_equal

# 2**47 float64 elements: 1 PiB, more than any machine (or the 47-bit address space) gives
HUGE = 2**47


def _huge_x():
    return np.broadcast_to(np.ones(1), (HUGE,))  # a read-only view: no memory of its own


def _failing_calls():
    """(label, call(seed)) pairs that raise after every argument was found valid."""
    return [
        ("dropout: no memory for the result", lambda s: cdrop.dropout(_huge_x(), 0.5, seed=s)),
        ("dropout p=0: no memory for the copy", lambda s: cdrop.dropout(_huge_x(), 0.0, seed=s)),
        ("dropout p=1: no memory for the zeros", lambda s: cdrop.dropout(_huge_x(), 1.0, seed=s)),
        ("dropout_mask: no memory", lambda s: cdrop.dropout_mask((HUGE, 8), 0.5, seed=s)),
        ("dropout_mask packed: no memory", lambda s: cdrop.dropout_mask(2**62, 0.5, seed=s,
                                                                       packed=True)),
        ("dropout_mask: a dimension NumPy refuses",
         lambda s: cdrop.dropout_mask((2**63,), 0.5, seed=s)),
        ("dropout_mask: more axes than NumPy has", lambda s: cdrop.dropout_mask((1,) * 65, 0.5,
                                                                               seed=s)),
    ]


FAILING = _failing_calls()


@pytest.mark.parametrize("label,call", FAILING, ids=[label for label, _ in FAILING])
def test_failing_call_leaves_the_package_stream_alone(label, call):
    x = np.ones(4096, np.float32)
    cdrop.manual_seed(11)
    expected = cdrop.dropout(x, 0.5)  # the good call alone
    cdrop.manual_seed(11)
    with pytest.raises((MemoryError, ValueError)):
        call(None)
    assert_bits_equal(cdrop.dropout(x, 0.5), expected, f"{label}: the stream moved")


@pytest.mark.parametrize("label,call", FAILING, ids=[label for label, _ in FAILING])
def test_failing_call_draws_nothing_from_a_generator(label, call):
    g, twin = np.random.default_rng(21), np.random.default_rng(21)
    with pytest.raises((MemoryError, ValueError)):
        call(g)
    assert g.bit_generator.state == twin.bit_generator.state, f"{label}: the Generator moved"
    x = np.ones(4096, np.float32)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=g), cdrop.dropout(x, 0.5, seed=twin))


def test_layer_forward_that_runs_out_of_memory_takes_no_call_number():
    layer, twin = cdrop.Dropout(0.5, seed=5), cdrop.Dropout(0.5, seed=5)
    x = np.ones(4096, np.float32)
    layer(x), twin(x)
    with pytest.raises(MemoryError):
        layer(_huge_x())
    assert_bits_equal(layer(x), twin(x))
    assert_bits_equal(layer.backward(x), twin.backward(x))
