"""An outsider's review of blocks of a larger array (issue 13 item 1: global_shape=, start=).

tests/test_blocks.py compares blocks of arrays that exist (the oracle draws the stream over the
whole span of the block's counters).  These add what only a virtual global array reaches:
global shapes of up to 2**64 elements (only the block is allocated), offsets that put the last
counter at 2**64 - 1, counter strides of 2**32 .. 2**63, 32- to 64-dimensional blocks (length-1
axes everywhere, a last axis of length 1 that gets the walk's virtual axis); every layout of the
block embedded in a guarded buffer; index-like entries; thread counts and a thread with a small
stack; and the variants.  The expected values come from tests/reference.py's stream, drawn only
over the stream blocks that the block's counters touch (never the whole span of a virtual
array), and for the variants from 1-D calls per row (a row of a block is a run of consecutive
counters that starts at the row's first counter).
"""
import math

import numpy as np
import pytest

import cdrop
import reference as ref
from helpers import assert_bits_equal, run_python

try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - the test extra installs it
    BF16 = None

U64 = 1 << 64
DTYPES = [np.float32, np.float64, np.float16] + ([BF16] if BF16 is not None else [])

# (global shape, start, block shape, offset): virtual global arrays at the edges of the index
# space and of the block walk (rows of 1 element, 1023/1024/1025, more than a stream block or a
# piece of 2**16 columns; counter strides up to 2**63; 40 and 64 axes).
CASES = [
    ((1 << 32, 1 << 32), (2**32 - 3, 2**32 - 5000), (3, 5000), 0),     # last counter 2**64 - 1
    ((1 << 32, 1 << 32), (2**32 - 300, 2**32 - 50), (300, 50), 0),     # narrow rows at the end
    ((2, 1 << 63), (0, 2**63 - 10), (2, 10), 0),                       # counter stride 2**63
    ((1 << 63, 2), (2**63 - 40000, 1), (40000, 1), 0),                 # the virtual last axis
    ((1 << 62, 2, 2), (2**62 - 5000, 0, 1), (5000, 2, 1), 0),
    ((1, 1 << 32, 1 << 32), (0, 2**32 - 3, 2**32 - 1025), (1, 3, 1025), 0),  # stride 2**64
    ((U64,), (U64 - 70000,), (70000,), 0),                             # one run of 2**64
    ((3, 2**62 - 1), (0, 2**62 - 70001), (3, 70000), U64 - 3 * (2**62 - 1)),  # 2 pieces a row
    ((2**20, 17000), (100, 1), (40, 16384), U64 - 2**20 * 17000),       # a stream block a row
    ((10, 2**60), (3, 2**60 - 2048), (7, 2048), 0),                    # fused rows: 2048 ...
    ((10, 2**60), (3, 2**60 - 2047), (7, 2047), 0),                    # ... and windows: 2047
    ((10, 2**60), (3, 2**60 - 1024), (7, 1024), 0),                    # (1024: fused before)
    ((2**16,) * 4, (2**16 - 2,) * 4, (2,) * 4, 0),
    ((3,) * 40, (1,) * 40, (2,) * 10 + (1,) * 30, U64 - 3**40),
    ((2,) * 64, (0,) * 32 + (1,) * 32, (1, 2) * 8 + (1,) * 48, 0),      # 64 axes, last one 1
    ((2,) * 64, (1,) + (0,) * 63, (1,) * 50 + (2,) * 14, 0),            # 64 axes, a run
    ((1,) * 64, (0,) * 64, (1,) * 64, U64 - 1),
]

# Rows that share stream blocks (small counter strides): the walk gets their keep bytes in one
# window per stream block and joins rows that follow each other in memory into one run.
JOINED = [
    ((1000, 1000), (10, 10), (500, 10), 0),
    ((50, 60, 70), (5, 6, 7), (20, 30, 40), U64 - 50 * 60 * 70),
    ((50000, 3), (1, 1), (20000, 1), 0),
    ((300, 4096), (7, 5), (40, 2047), 0),
]


def _gstrides(gshape):
    g = [1] * len(gshape)
    for d in range(len(gshape) - 2, -1, -1):
        g[d] = g[d + 1] * gshape[d + 1]
    return g


def _rows(shape, gshape, start, offset):
    """(index of the row, counter of its element 0) for each row of the block (Python ints)."""
    gs = _gstrides(gshape)
    for idx in np.ndindex(*shape[:-1]):
        yield idx, offset + sum((start[d] + i) * gs[d] for d, i in enumerate(idx)) + start[-1]


def _counters(shape, gshape, start, offset):
    """The counter of each element of the block, as uint64 (every partial sum is at most the
    last counter, so nothing wraps; an axis of global length 1 adds nothing, and its stride
    may be 2**64)."""
    g = np.full(shape, offset, dtype=np.uint64)
    for d, (n, a, gs) in enumerate(zip(shape, start, _gstrides(gshape))):
        if gshape[d] > 1:
            idx = np.arange(a, a + n, dtype=np.uint64).reshape((n,) + (1,) * (len(shape) - d - 1))
            g += idx * np.uint64(gs)
    return g


def _oracle_mask(shape, p, seed, gshape, start, offset):
    """The block's keep mask from tests/reference.py, one stretch of the stream per stream
    block that the block's counters touch (never the whole span of a virtual array)."""
    g = _counters(shape, gshape, start, offset).ravel()
    keep = np.zeros(g.size, bool)
    blocks = g >> np.uint64(14)  # 2**14 counters per stream block (docs/rng.md)
    for b in np.unique(blocks):
        sel = np.flatnonzero(blocks == b)
        lo, hi = int(g[sel].min()), int(g[sel].max())
        span = ref.keep_mask(hi - lo + 1, p, seed, lo)
        keep[sel] = span[(g[sel] - np.uint64(lo)).astype(np.int64)]
    return keep.reshape(shape)


def _oracle_dropout(x, p, seed, gshape, start, offset):
    """tests/reference.py's dropout recipe (dropout_ref) with the block's keep mask."""
    xc = np.array(x, order="C", copy=True)
    mask = _oracle_mask(x.shape, p, seed, gshape, start, offset)
    out = np.zeros(x.shape, x.dtype)
    if x.dtype == np.float16 or x.dtype.name == "bfloat16":
        scale32 = np.float32(np.float64(1.0) / np.float64(1.0 - p))
        out[mask] = (xc[mask].astype(np.float32) * scale32).astype(x.dtype)
    else:
        out[mask] = xc[mask] * np.array(np.float64(1.0) / np.float64(1.0 - p), x.dtype)
    return out


def _layouts(a, rng):
    """The block in C, Fortran, reversed, strided and permuted layouts (same values)."""
    out = [np.array(a, order="C", copy=True), np.array(a, order="F", copy=True)]
    if a.ndim == 0:
        return out
    b = np.empty_like(a)[(slice(None, None, -1),) * a.ndim]
    b[...] = a
    out.append(b)
    step = tuple(slice(None, None, 2) if n > 1 else slice(None) for n in a.shape)
    b = np.empty(tuple(2 * n if n > 1 else n for n in a.shape), a.dtype)[step]
    b[...] = a
    out.append(b)
    perm = rng.permutation(a.ndim)
    b = np.empty([a.shape[i] for i in perm], a.dtype).transpose(np.argsort(perm))
    b[...] = a
    out.append(b)
    return out


def _case_id(case):
    gshape, _, shape, offset = case
    return f"{len(gshape)}d-{math.prod(gshape).bit_length()}bit-{shape[-1]}-off{offset > 0:d}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_block_of_a_virtual_array_at_the_edge_of_the_index_space(kernel_path, case):
    gshape, start, shape, offset = case
    assert math.prod(gshape) + offset <= U64 and all(
        s + n <= g for s, n, g in zip(start, shape, gshape))
    rng = np.random.default_rng(len(gshape))
    dtype = DTYPES[len(gshape) % len(DTYPES)]
    x0 = rng.standard_normal(shape).astype(dtype)
    want = _oracle_dropout(x0, 0.4, 77, gshape, start, offset)
    for k, x in enumerate(_layouts(x0, rng)):
        for nt in (1, 3):
            got = cdrop.dropout(x, 0.4, seed=77, offset=offset, global_shape=gshape,
                                start=start, num_threads=nt)
            assert_bits_equal(got, want, f"layout {k}, {nt} threads")
    mask = cdrop.dropout_mask(shape, 0.4, seed=77, offset=offset, global_shape=gshape,
                              start=start)
    want_mask = _oracle_mask(shape, 0.4, 77, gshape, start, offset)
    assert mask.dtype == bool and np.array_equal(mask, want_mask)
    packed = cdrop.dropout_mask(shape, 0.4, seed=77, offset=offset, global_shape=gshape,
                                start=start, packed=True)
    assert np.array_equal(packed, np.packbits(want_mask.ravel(), bitorder="little"))


@pytest.mark.parametrize("case", CASES[:10], ids=[_case_id(c) for c in CASES[:10]])
def test_variants_of_a_block_of_a_virtual_array(case):
    gshape, start, shape, offset = case
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(shape).astype(np.float32)
    r0 = rng.standard_normal(shape).astype(np.float32)
    kw = dict(seed=5, offset=offset, global_shape=gshape, start=start)
    # each row of the block is a run of counters: 1-D calls with the row's first counter
    want, want_add = np.empty_like(x0), np.empty_like(x0)
    for idx, g in _rows(shape, gshape, start, offset):
        row, res = np.ascontiguousarray(x0[idx]), np.ascontiguousarray(r0[idx])
        want[idx] = cdrop.alpha_dropout(row, 0.3, seed=5, offset=g)
        want_add[idx] = cdrop.dropout_add(row, res, 0.3, seed=5, offset=g)
    assert_bits_equal(cdrop.alpha_dropout(np.asfortranarray(x0), 0.3, **kw), want, "alpha")
    assert_bits_equal(cdrop.dropout_add(x0, np.asfortranarray(r0), 0.3, **kw), want_add,
                      "dropout_add")
    # one decision per sample: sample i of the block is sample start[0] + i
    want = np.concatenate([
        cdrop.drop_path(x0[i:i + 1], 0.3, seed=5, offset=offset + start[0] + i)
        for i in range(shape[0])])
    assert_bits_equal(cdrop.drop_path(x0, 0.3, **kw), want, "drop_path")
    ns = (None,) + (1,) * (len(shape) - 1)
    assert_bits_equal(cdrop.dropout(x0, 0.3, noise_shape=ns, **kw),
                      cdrop.drop_path(x0, 0.3, **kw), "noise_shape")


@pytest.mark.parametrize("seed", range(4))
def test_an_embedded_block_writes_its_elements_and_nothing_else(seed):
    # A block as a view into a larger buffer (steps of 1..3 either way, axes permuted) inside a
    # border of sentinel values, or C-contiguous inside a flat one: in place and through out=,
    # only the view's elements change.
    rng = np.random.default_rng(seed)
    for gshape, start, shape, offset in CASES[:12] + JOINED:
        nd = len(shape)
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]
        x0 = rng.standard_normal(shape).astype(dtype)
        want = _oracle_dropout(x0, 0.6, 3, gshape, start, offset)
        steps = [int(rng.choice([1, 2, 3])) * int(rng.choice([1, -1])) for _ in range(nd)]
        perm = rng.permutation(nd)
        for target in ("inplace", "out"):
            buf = np.full([shape[i] * abs(steps[i]) + 2 for i in perm], 7, dtype)
            view = buf[(slice(1, -1),) * nd].transpose(np.argsort(perm))
            view = view[tuple(slice(None, None, s) for s in steps)]
            view = view[tuple(slice(0, n) for n in shape)]
            outside = np.ones(buf.shape, bool)
            ov = outside[(slice(1, -1),) * nd].transpose(np.argsort(perm))
            ov = ov[tuple(slice(None, None, s) for s in steps)]
            ov[tuple(slice(0, n) for n in shape)] = False
            kw = dict(seed=3, offset=offset, global_shape=gshape, start=start,
                      num_threads=int(rng.integers(1, 5)))
            if target == "inplace":
                view[...] = x0
                got = cdrop.dropout(view, 0.6, inplace=True, **kw)
            else:
                got = cdrop.dropout(x0, 0.6, out=view, **kw)
            assert got is view
            assert_bits_equal(got, want, f"{target} {shape}")
            assert_bits_equal(buf[outside], np.full(int(outside.sum()), 7, dtype), target)
        # C-contiguous in the middle of a flat buffer: rows that follow each other in memory
        # (the walk joins them into one run per stream block) must end where the block ends
        pad = 64
        for target in ("inplace", "out"):
            flat = np.full(x0.size + 2 * pad, 7, dtype)
            view = flat[pad:pad + x0.size].reshape(shape)
            kw = dict(seed=3, offset=offset, global_shape=gshape, start=start)
            if target == "inplace":
                view[...] = x0
                got = cdrop.dropout(view, 0.6, inplace=True, **kw)
            else:
                got = cdrop.dropout(x0, 0.6, out=view, **kw)
            assert_bits_equal(got, want, f"contiguous {target} {shape}")
            assert_bits_equal(np.concatenate([flat[:pad], flat[pad + x0.size:]]),
                              np.full(2 * pad, 7, dtype), f"contiguous {target}")


def test_block_entries_are_read_as_indices():
    x = np.ones((4, 5), np.float32)
    want = cdrop.dropout(np.ones((9, 8), np.float32), 0.5, seed=2)[3:7, 2:7]
    ok = [
        dict(global_shape=(np.int64(9), np.uint64(8)), start=(np.int8(3), np.uint16(2))),
        dict(global_shape=(np.array(9), np.array(8)), start=(np.array(3), 2)),  # 0-d arrays
        dict(global_shape=[9, 8], start=[3, 2]),
        dict(global_shape=np.array([9, 8], np.uint64), start=np.array([3, 2])),
        dict(global_shape=range(9, 7, -1), start=range(3, 1, -1)),
    ]
    for kw in ok:
        assert np.array_equal(cdrop.dropout(x, 0.5, seed=2, **kw), want), kw
        assert np.array_equal(cdrop.dropout_mask(x.shape, 0.5, seed=2, **kw), want != 0), kw


@pytest.mark.parametrize("kw, match", [
    (dict(global_shape=(9, 8), start=(True, 2)), "start must be a tuple of ints, got bool"),
    (dict(global_shape=(9, 8), start=np.array([3, 2], bool)), "start must be a tuple of ints"),
    (dict(global_shape=(9, 8), start=(3.0, 2)), "start must be a tuple of ints, got float"),
    (dict(global_shape=np.array([9.0, 8.0]), start=(3, 2)), "global_shape must be a tuple"),
    (dict(global_shape=(g for g in (9, 8)), start=(3, 2)), "global_shape .* got generator"),
    (dict(global_shape={9, 8}, start=(3, 2)), "global_shape .* got set"),
    (dict(global_shape=np.array([[9, 8]]), start=(3, 2)), "global_shape .* got ndarray"),
    (dict(global_shape=(9, None), start=(3, 2)), "global_shape .* got NoneType"),
    (dict(global_shape=(9, 8), start="32"), "start must be a tuple of ints, got str"),
])
def test_block_entries_that_are_not_indices_raise_type_error_and_draw_nothing(kw, match):
    x = np.ones((4, 5), np.float32)
    g = np.random.default_rng(0)
    with pytest.raises(TypeError, match=match):
        cdrop.dropout(x, 0.5, inplace=True, seed=g, **kw)
    assert (x == 1).all()
    assert g.bit_generator.state == np.random.default_rng(0).bit_generator.state


@pytest.mark.parametrize("kw, match", [
    (dict(global_shape=(2**70, 8), start=(0, 0)), "2\\*\\*64"),          # too many counters
    (dict(global_shape=(2**63, 5), start=(0, 0)), "2\\*\\*64"),
    (dict(global_shape=(2**32, 2**32), start=(0, 0), offset=1), "2\\*\\*64"),  # 2**64 + 1
    (dict(global_shape=(9, 8), start=(2**70, 0)), "outside global_shape on axis 0"),
])
def test_global_arrays_beyond_the_index_space_raise_value_error(kw, match):
    x = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match=match):
        cdrop.dropout(x, 0.5, seed=1, **kw)
    with pytest.raises(ValueError, match=match):
        cdrop.dropout_mask(x.shape, 0.5, seed=1, **kw)


def test_thread_counts_and_a_thread_with_a_small_stack_give_the_same_bits(tmp_path):
    # Blocks big enough for threads (2**16 elements and more), narrow rows and long rows, from
    # the main thread with 1..8 OpenMP threads and from Python threads with 64 KiB stacks.
    code = """
        import threading
        import numpy as np
        import cdrop

        CASES = [((1 << 40, 1 << 20), (5, 1000), (200, 1500)),   # fused rows
                 ((1 << 40, 1 << 20), (5, 1000), (30000, 7)),    # windows of narrow rows
                 ((1 << 62, 2), (9, 1), (70000, 1))]              # the virtual last axis
        def calls(nt):
            return [cdrop.dropout(np.ones(s, np.float32), 0.3, seed=4, global_shape=g, start=a,
                                  num_threads=nt) for g, a, s in CASES]
        want = calls(1)
        for nt in range(2, 9):
            assert all(np.array_equal(w, y) for w, y in zip(want, calls(nt))), nt
        threading.stack_size(64 * 1024)
        errors = []
        def run():
            try:
                for nt in (1, 4):
                    assert all(np.array_equal(w, y) for w, y in zip(want, calls(nt)))
            except BaseException as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        print("ok")
    """
    proc = run_python(code, str(tmp_path), timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("fn", [cdrop.alpha_dropout, cdrop.drop_path])
def test_variants_take_an_empty_block_at_the_end_of_the_index_space(fn):
    # x = big[0:1, 1:1] of big with shape (1, 1): no element, start[1] = 1 = global_shape[1];
    # dropout, dropout_add and dropout_mask return an empty result there.
    x = np.zeros((1, 0), np.float32)
    kw = dict(seed=1, offset=U64 - 1, global_shape=(1, 1), start=(0, 1))
    assert cdrop.dropout(x, 0.5, **kw).shape == (1, 0)
    assert cdrop.dropout_add(x, x, 0.5, **kw).shape == (1, 0)
    assert cdrop.dropout_mask((1, 0), 0.5, **kw).shape == (1, 0)
    assert fn(x, 0.5, **kw).shape == (1, 0)
