"""Review of the dropout family's compiled core (issue 11, reviewer B): the cases the review
found or pinned, against the oracle of tests/test_variant_kernels.py, on every kernel path."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_variant_kernels import BF16, DTYPES, PATHS, bits, oracle, run

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


# --- every path against the oracle on random layouts (hypothesis) ---------------------------
KOPS = {"drop": K.OP_DROP, "alpha": K.OP_ALPHA, "add": K.OP_ADD, "add_bias": K.OP_ADD,
        "gmul": K.OP_GMUL, "gadd": K.OP_GADD}
# exact (0.5) and tie-settling thresholds, the extreme ones included (thr 0xFFFFFFFF and 1)
P_VALUES = [2.0**-32, 1 - 2.0**-32, 0.5, 1 / 3, 0.3]


def _kview(a):
    return None if a is None else (a.view(np.uint16) if a.dtype == BF16 else a)


@st.composite
def _operand(draw, shape, dt, may_broadcast):
    """A builder of an array of `shape`: C order, a transposed/reversed/stepped view of a larger
    array, or (read-only operands) a broadcast of a smaller one; fresh data on each call."""
    nd = len(shape)
    kind = draw(st.sampled_from(["c", "view", "bcast"] if may_broadcast else ["c", "view"]))
    sd = draw(st.integers(0, 2**32 - 1))
    sub = tuple(n if draw(st.booleans()) else 1 for n in shape)
    perm = draw(st.permutations(range(nd)))
    steps = [draw(st.sampled_from([1, -1, 2, -3])) for _ in range(nd)]

    def build():
        rng = np.random.default_rng(sd)
        if kind == "c" or nd == 0:
            return np.array(rng.standard_normal(shape).astype(dt))
        if kind == "bcast":
            return np.broadcast_to(rng.standard_normal(sub).astype(dt), shape)
        pshape = [shape[d] for d in perm]
        big = rng.standard_normal([max(1, abs(s) * n) for s, n in zip(steps, pshape)]).astype(dt)
        v = big[tuple(slice(None, None, s) for s in steps)][tuple(slice(0, n) for n in pshape)]
        return v.transpose(np.argsort(perm))
    return build


@st.composite
def _cases(draw):
    dt = draw(st.sampled_from(DTYPES))
    op = draw(st.sampled_from(list(KOPS)))
    nd = draw(st.integers(0, 3))
    dims = [draw(st.integers(1, 7)) for _ in range(nd)]
    if nd and draw(st.booleans()):  # over a stream block (and a thread chunk) now and then
        dims[draw(st.integers(0, nd - 1))] = draw(st.integers(500, 17_000))
    shape = tuple(dims)
    n = int(np.prod(shape))
    out = draw(st.sampled_from(["new", "inplace", "residual"] if op.startswith("add")
                               else ["new", "inplace"]))
    x = draw(_operand(shape, dt, out != "inplace"))
    r = draw(_operand(shape, dt, out != "residual")) if op.startswith("add") else None
    b = None
    if op == "add_bias" and nd == 0:
        op = "add"
    if op == "add_bias":
        if draw(st.booleans()):  # a row along the last axis: the fused kernel's bias
            rng = np.random.default_rng(draw(st.integers(0, 99)))
            row = rng.standard_normal(shape[-1]).astype(dt)
            if nd > 1 and draw(st.booleans()):  # the 1-D row itself (apply_variant's row form)
                step = draw(st.sampled_from([1, -1, 2]))
                full = np.repeat(row, abs(step))[::step][: shape[-1]] if step != 1 else row
                b = lambda full=full: full  # noqa: E731
            else:
                b = lambda row=row: np.broadcast_to(row, shape)  # noqa: E731
        else:
            b = draw(_operand(shape, dt, True))
    keep = None
    if op not in ("gmul", "gadd") and draw(st.booleans()):  # noise shapes; bytes other than 0/1
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        sub = tuple(m if draw(st.booleans()) else 1 for m in shape)
        k = (rng.integers(1, 256, sub) * (rng.random(sub) < 0.6)).astype(np.uint8)
        keep = np.broadcast_to(k, shape)
        if nd and draw(st.booleans()):
            keep = np.array(keep)[(slice(None, None, -1),) * nd]
    top = min(2**64 - n, 2**64 - 1)
    offset = draw(st.one_of(st.integers(0, 70_000), st.integers(0, 2**63),
                            st.integers(max(0, top - 70_000), top), st.just(top)))
    return dict(op=op, dt=dt, x=x, r=r, b=b, keep=keep, out=out, offset=offset,
                p=draw(st.sampled_from(P_VALUES)), seed=draw(st.integers(0, 2**64 - 1)),
                nt=draw(st.sampled_from([1, 2])), dst_rev=draw(st.booleans()))


@settings(derandomize=True, database=None, deadline=None, max_examples=80,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=_cases())
def test_every_path_matches_the_oracle_on_random_layouts(case):
    op = case["op"]
    x0 = case["x"]()
    r0 = None if case["r"] is None else case["r"]()
    b = None if case["b"] is None else case["b"]()
    want = oracle(op, np.array(x0), case["seed"], case["offset"], case["p"],
                  None if case["keep"] is None else np.array(case["keep"]),
                  None if r0 is None else np.array(r0),
                  None if b is None else np.array(np.broadcast_to(b, x0.shape)),
                  1.25, 0.5, -0.75)
    old = K.get_path()
    try:
        for kpath in PATHS:
            if K.set_path(kpath) != kpath:
                continue
            x = case["x"]()
            r = None if case["r"] is None else case["r"]()
            if case["out"] == "new":
                dst = np.full(x.shape, 7, x.dtype)
                if case["dst_rev"] and x.ndim:
                    dst = dst[(slice(None, None, -1),) * x.ndim]
            else:
                dst = x if case["out"] == "inplace" else r
            assert K.apply_variant(KOPS[op], _kview(x), _kview(dst), case["seed"],
                                   case["offset"], case["p"], case["nt"], keep=case["keep"],
                                   residual=_kview(r), bias=_kview(b), c0=1.25, c1=0.5,
                                   c2=-0.75, bf16=x.dtype == BF16)
            np.testing.assert_array_equal(bits(dst), bits(want), err_msg=kpath)
    finally:
        K.set_path(old)
