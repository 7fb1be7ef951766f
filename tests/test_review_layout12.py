"""An outsider's review of the tile walk (cdrop/_src/walk_layout.c, issue 12 item 3).

tests/test_layouts.py compares hand-picked views with their C-ordered copies.  These add what a
wrong index in the walk would do without changing the compared elements: a view embedded in a
larger buffer of random bytes must leave every byte outside its elements as it was (in place, out
of place, and through ``out=`` that is itself embedded), over random layouts of 2-D .. 6-D
arrays (transposes, padded rows, steps, reversed axes, length-1 and length-0 axes) and every
dtype; the shapes on either side of the walk's tile limits; and strides of gigabytes (a sparse
file mapping), where the byte offsets of a tile no longer fit 32 bits.
"""
import mmap

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import cdrop
from helpers import assert_bits_equal

try:
    import ml_dtypes
except ImportError:  # optional: the bfloat16 cases skip
    ml_dtypes = None

DTYPES = [np.float32, np.float64, np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes else [])
GUARD = 4096  # random bytes on either side of an embedded array
SIZES = (2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511,
         512, 513, 1000, 1024, 4096, 4097)


def _embed(rng, shape, dt, order, pad):
    """(buffer, view): a view of `shape` whose axes lie in memory in the order `order`
    (outermost first), the innermost one padded by `pad` items, GUARD random bytes around."""
    it = np.dtype(dt).itemsize
    mshape = [shape[i] for i in order]
    pm = list(mshape)
    if pad and 0 not in mshape:
        pm[-1] += pad
    count = int(np.prod(pm))
    buf = np.frombuffer(rng.bytes(count * it + 2 * GUARD), np.uint8).copy()
    base = buf[GUARD:GUARD + count * it].view(dt).reshape(pm)
    base[...] = rng.standard_normal(pm).astype(np.float32).astype(dt)
    return buf, base[tuple(slice(0, m) for m in mshape)].transpose(np.argsort(order))


def _random_view(rng):
    nd = int(rng.integers(2, 7))
    dt = DTYPES[rng.integers(len(DTYPES))]
    shape = [1 if r < 0.08 else 0 if r < 0.1 else int(rng.choice(SIZES))
             for r in rng.random(nd)]
    budget = int(rng.choice([200, 5000, 70000, 400000]))
    while np.prod([max(s, 1) for s in shape]) > budget:
        j = int(np.argmax(shape))
        shape[j] = max(1, shape[j] // 2 + int(rng.random() < 0.5))
    buf, v = _embed(rng, shape, dt, list(rng.permutation(nd)), int(rng.choice([0, 0, 1, 3, 64])))
    steps = []
    for s, r in zip(v.shape, rng.random(nd)):
        if r < 0.15 and s > 2:
            steps.append(slice(None, None, -1))
        elif r < 0.25 and s > 3:
            steps.append(slice(1, None, int(rng.integers(2, 4))))
        elif r < 0.3 and s > 3:
            steps.append(slice(s - 1, 0, -2))
        else:
            steps.append(slice(None))
    return buf, v[tuple(steps)]


def _restore(buf, before, a):
    # write back a's elements from the snapshot `before` of its buffer
    off = a.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    a[...] = as_strided(before[off:off + a.itemsize].view(a.dtype), a.shape, a.strides)


@pytest.mark.parametrize("seed", range(4))
def test_random_layouts_change_only_their_own_elements(seed):
    rng = np.random.default_rng(seed)
    for case in range(60):
        buf, v = _random_view(rng)
        n = v.size
        p = float(rng.choice([0.3, 0.5, 0.25, 0.1, 0.9]))  # tie and exact paths
        offset = [0, 12345, 255, 256, 2**64 - n, 2**64 - n - 255, 2**32 - 7][rng.integers(7)]
        offset = max(0, offset)
        nt = int(rng.integers(1, 5))
        x = np.array(v, order="C", copy=True)
        expected = cdrop.dropout(x, p, seed=7, offset=offset)
        what = f"case {case}: shape {v.shape} strides {v.strides} {v.dtype} p={p} t={nt}"
        before = buf.copy()
        mode = case % 3
        if mode == 0:
            cdrop.dropout(v, p, seed=7, offset=offset, num_threads=nt, inplace=True)
            assert_bits_equal(v, expected, what + " in place")
            v[...] = x
        elif mode == 1:
            got = cdrop.dropout(v, p, seed=7, offset=offset, num_threads=nt)
            assert_bits_equal(got, expected, what + " out of place")
        else:
            obuf, o = _embed(rng, list(v.shape), v.dtype, list(rng.permutation(v.ndim)), 2)
            if rng.random() < 0.3:
                o = o[(slice(None, None, -1),) * o.ndim]
            obefore = obuf.copy()
            cdrop.dropout(v, p, seed=7, offset=offset, num_threads=nt, out=o)
            assert_bits_equal(o, expected, what + f" out= strides {o.strides}")
            _restore(obuf, obefore, o)
            assert obuf.tobytes() == obefore.tobytes(), what + ": bytes around out changed"
        assert buf.tobytes() == before.tobytes(), what + ": bytes around x changed"


FILL = 458752  # CDROP_TILE_FILL: keep bytes per tile
EDGE_SHAPES = (
    # Fortran (R, C): whole matrix / whole rows (C * 32 <= FILL) / rows cut by columns
    [("F", (r, c)) for c in (14335, 14336, 14337, 896, 897, 1024)
     for r in (31, 32, 33, FILL // c, FILL // c + 1)]
    + [("F", (r, m // r)) for m in (FILL - 1, FILL, FILL + 1) for r in (2, 7, 512)]
    # 3-D with the matrix index closest in memory: tiles of 16 matrices
    + [(k, s) for s in [(16, 32, 896), (16, 33, 897), (17, 28, 1024), (15, 64, 448),
                        (16, 179, 160), (16, 2, 14336), (31, 16, 512), (40, 3, 9558)]
       for k in ("F", "T021")]
)


@pytest.mark.parametrize("kind,shape", EDGE_SHAPES, ids=str)
def test_shapes_at_the_tile_limits_give_the_bits_of_the_c_ordered_copy(kind, shape):
    rng = np.random.default_rng(1)
    for dt in (np.float32, np.float16):
        x = rng.standard_normal(shape, dtype=np.float32).astype(dt)
        v = np.asfortranarray(x) if kind == "F" else x.transpose(0, 2, 1)
        for offset in (0, 12345):
            expected = cdrop.dropout(np.ascontiguousarray(v), 0.3, seed=3, offset=offset)
            for nt in (1, 3):
                got = cdrop.dropout(v, 0.3, seed=3, offset=offset, num_threads=nt)
                assert_bits_equal(got, expected, f"{kind} {shape} {dt} t={nt}")


def test_strides_of_gigabytes_give_the_bits_of_the_c_ordered_copy(tmp_path):
    # a sparse file: 64 GiB of address space, a few pages of disk
    size = 2**36
    with open(tmp_path / "sparse", "w+b") as fh:
        try:
            fh.truncate(size)
            mm = mmap.mmap(fh.fileno(), size, flags=mmap.MAP_SHARED)
        except (OSError, ValueError, OverflowError) as e:
            pytest.skip(f"no sparse mapping of 64 GiB here: {e}")
    base = np.frombuffer(mm, np.uint8)
    st = size // 4
    try:
        for shape, strides, start in [((33, 3), (4, st), 0), ((3, 70, 17), (st, 4, st // 64), 0),
                                      ((9, 40), (-4, st // 16), 32)]:
            v = as_strided(base[start:start + 4].view(np.float32), shape, strides)
            v[...] = np.arange(1, v.size + 1, dtype=np.float32).reshape(shape)
            c = v.copy()
            expected = cdrop.dropout(c, 0.4, seed=2)
            for nt in (1, 2):
                got = cdrop.dropout(v, 0.4, seed=2, num_threads=nt)
                assert_bits_equal(got, expected, f"{shape} {strides} t={nt}")
            o = as_strided(base[4096:4100].view(np.float32), shape[::-1],
                           tuple(abs(s) for s in strides)[::-1]).T
            cdrop.dropout(c, 0.4, seed=2, num_threads=2, out=o)
            assert_bits_equal(o, expected, f"{shape} out=")
            cdrop.dropout(v, 0.4, seed=2, num_threads=2, inplace=True)
            assert_bits_equal(v, expected, f"{shape} in place")
            del v, o
    finally:
        del base
        mm.close()
