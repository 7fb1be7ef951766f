"""Review of the dropout family's compiled core (issue 11, reviewer B): the cases the review
found or pinned, against the oracle of tests/test_variant_kernels.py, on every kernel path."""
import numpy as np
import pytest
from test_variant_kernels import PATHS, bits, oracle, run

from cdrop import _kernels as K


@pytest.fixture(params=PATHS)
def path(request):
    old = K.get_path()
    got = K.set_path(request.param)
    if got != request.param:
        K.set_path(old)
        pytest.skip(f"no {request.param} kernels on this CPU")
    yield got
    K.set_path(old)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("D", [1, 2, 5, 7, 48, 63, 64, 65, 127, 128])
def test_fused_add_with_rows_near_a_step_long_matches_the_oracle(path, dt, D):
    # The fused dropout_add repeats rows of at most 64 biases from a copy made per block and
    # advances its row index by 64 % D per step; longer rows cross their end once per row.
    # Offsets that are not multiples of 64 put the rows' starts anywhere in a step (D == 64
    # included), and blocks start mid-row; ties (p = 0.3) are settled after the steps.
    rng = np.random.default_rng(D)
    rows = max(2, 40_000 // D)
    x = rng.standard_normal((rows, D)).astype(dt)
    r = rng.standard_normal((rows, D)).astype(dt)
    b = rng.standard_normal(D).astype(dt)
    for offset, nt in [(0, 1), (37, 1), (16_384 - 5, 2), (2**64 - x.size, 2)]:
        want = oracle("add_bias", x, 11, offset, 0.3, None, r, b, 1.25, 0, 0)
        y = np.empty_like(x)
        assert run("add_bias", x, y, 11, offset, 0.3, nt, r=r, b=b)
        np.testing.assert_array_equal(bits(y), bits(want), err_msg=f"offset {offset}")
        ri = r.copy()  # into the residual: the final-mask kernel
        assert run("add_bias", x, ri, 11, offset, 0.3, nt, r=ri, b=b)
        np.testing.assert_array_equal(bits(ri), bits(want), err_msg=f"offset {offset} into r")


@pytest.mark.parametrize("p", [float("nan"), 2.0, -1.0, 1e300])
def test_a_keep_array_call_ignores_p_whatever_it_is(p):
    # With a keep array, p is unused (contract11.md, section 1).  apply_variant still turned it
    # into the stream's threshold, a conversion of (1 - p) * 2**32 to uint32 that is undefined
    # behaviour in C for NaN and values out of range (-fsanitize=float-cast-overflow reports it;
    # x86 happens to give a harmless value).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 33)).astype(np.float32)
    keep = np.broadcast_to(rng.random((70, 1)) < 0.5, x.shape)
    r = rng.standard_normal(x.shape).astype(np.float32)
    for op, kw in [(K.OP_DROP, {}), (K.OP_ALPHA, {}), (K.OP_ADD, {"residual": r})]:
        want = np.empty_like(x)
        assert K.apply_variant(op, x, want, 5, 0, 0.5, 1, keep=keep, c0=2.0, c1=0.5, c2=-1.0,
                               **kw)
        y = np.empty_like(x)
        assert K.apply_variant(op, x, y, 5, 0, p, 1, keep=keep, c0=2.0, c1=0.5, c2=-1.0, **kw)
        np.testing.assert_array_equal(bits(y), bits(want))
