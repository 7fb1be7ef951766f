"""Seeded fuzz of the layout walks (tall bit tiles, slabs, strided) against the C-ordered copy.

Usage: python tests/tools/fuzz_layout15.py SECONDS [MASTER_SEED] [PATHS] [FAMILIES]
  PATHS: comma list of kernel paths (default avx512,avx2,portable,scalar)
  FAMILIES: comma list of tall,slab,any (default all)
Each case is reproducible from (MASTER_SEED, i): `--case MASTER_SEED I` reruns one case.
Every case compares cdrop.dropout(view) with cdrop.dropout(np.ascontiguousarray(view)) bit for
bit (and, for small cases, tests/reference.py), in place / out of place / out= of another
layout, and checks that no byte of the guard-padded buffers outside the view's elements changed.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cdrop  # noqa: E402
import reference  # noqa: E402
from cdrop import _kernels  # noqa: E402

try:
    import ml_dtypes
except ImportError:  # pragma: no cover
    ml_dtypes = None

DTYPES = [np.float32, np.float64, np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes else [])
THREADS = (1, 2, 3, 7, 64, 1000)
BLOCK = 16384
GUARD = 192
MAXN = 3_000_000
WALKS = {}


def embed(rng, mshape, dt):
    """(buf, mem): a C-ordered array of shape mshape in a random byte buffer with guards."""
    it = np.dtype(dt).itemsize
    nb = int(np.prod(mshape)) * it
    buf = np.frombuffer(rng.bytes(nb + 2 * GUARD), np.uint8).copy()
    mem = buf[GUARD:GUARD + nb].view(dt).reshape(mshape)
    return buf, mem


def fill(rng, v):
    v[...] = rng.standard_normal(v.shape).astype(np.float32).astype(v.dtype)


def outside(buf, v):
    start = v.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    idx = np.full(v.shape, start, np.int64)
    for ax in range(v.ndim):
        sh = [1] * v.ndim
        sh[ax] = v.shape[ax]
        idx = idx + (np.arange(v.shape[ax]) * v.strides[ax]).reshape(sh)
    m = np.ones(buf.size, bool)
    m[(idx.ravel()[:, None] + np.arange(v.itemsize)).ravel()] = False
    return m


def tall_rows(dt, C):
    """walk_tall.c's cdrop_tall_rows for an unlimited R (before `nr > R`)."""
    isz = np.dtype(dt).itemsize
    nr = min(4096 // isz, 1024)
    if nr * C > 512 * 1024 * 8:
        nr = (512 * 1024 * 8 // C) & ~63
    return nr


def make_tall(rng, dt):
    """A 2-D view with rows closer in memory than columns, around the tall limits."""
    nr_full = min(4096 // np.dtype(dt).itemsize, 1024)
    k = rng.integers(5)
    if k == 0:  # widths making the band's bits near 512 KiB
        C = int(rng.choice([4096, 4097, 4095, 4160, 8191, 8192, 8193, 32768, 32769, 65536,
                            65535, 65537, 2**22 // 960, 2**22 // 64]))
        C += int(rng.integers(-1, 2))
    elif k == 1:  # widths near the tile fill (C * nr > 458752)
        C = 458752 // nr_full + int(rng.integers(-3, 4))
    elif k == 2:
        C = int(rng.choice([1, 2, 63, 64, 65, 511, 512, 513, 1000, 3000]))
    else:
        C = int(rng.integers(300, 20000))
    C = max(1, C)
    nr = max(64, tall_rows(dt, C))
    R = int(rng.choice([1, 2, 63, 64, 65, 127, 128, 129, nr - 1, nr, nr + 1, 2 * nr - 1,
                        2 * nr + 1, 3 * nr + 63, 512, 1024, 1023, 1025, 2048 + 7,
                        int(rng.integers(60, 3000))]))
    R = max(1, R + int(rng.integers(-1, 2)) * (rng.random() < 0.2))
    while R * C > MAXN and R > 1:
        R = max(1, R // 2 if R > 2 * nr else R - int(rng.integers(1, 64)))
    while R * C > MAXN:
        C //= 2
    kr = int(rng.choice([1, 1, 1, 1, 2, 3]))  # row stride in items
    kc = int(rng.choice([1, 1, 1, 2]))  # column step
    pad = int(rng.choice([0, 0, 1, 5, 64]))
    Rm = R * kr + pad
    buf, mem = embed(rng, (C * kc, Rm), dt)
    fill(rng, mem)
    v = mem[::kc, :R * kr:kr].T
    if rng.random() < 0.25:
        v = v[::-1]
    if rng.random() < 0.25:
        v = v[:, ::-1]
    return buf, v


def make_slab(rng, dt):
    """(B, A, C).transpose(1, 0, 2)-like views, optional outer axis."""
    isz = np.dtype(dt).itemsize
    cmax = 16384 // isz
    k = rng.integers(4)
    if k == 0:
        C = int(rng.choice([1, 2, 3, 5, 16, 63, 64, 65, 127, 129, 255, 257, 511, 512, 513]))
    elif k == 1:
        C = int(rng.choice([cmax, cmax - 1, cmax + 1, cmax // 2 + 1, 1024, 1000, 2048]))
    else:
        C = int(rng.integers(1, cmax + 2))
    A = int(rng.choice([1, 2, 3, 5, 7, 63, 64, 65, 127, 255, 256, 257, 511, 513,
                        int(rng.integers(1, 600))]))
    bmin = max(1, -(-BLOCK // C))
    B = int(rng.choice([bmin, bmin + 1, bmin - 1, 2 * bmin + 3, bmin * int(rng.integers(1, 6)),
                        int(rng.integers(1, 3 * bmin + 2))]))
    B = max(1, B)
    U = int(rng.choice([1, 1, 1, 2, 3]))
    while U * A * B * C > MAXN:
        if A > 2 and rng.random() < 0.5:
            A = max(1, A // 2)
        elif B > bmin:
            B = max(bmin, B // 2)
        elif U > 1:
            U -= 1
        elif A > 1:
            A = max(1, A // 2)
        else:
            C = max(1, C // 2)
    ka = int(rng.choice([1, 1, 1, 2]))
    pc = int(rng.choice([0, 0, 0, 1, 3]))
    buf, mem = embed(rng, (U, B, A * ka, C + pc), dt)
    fill(rng, mem)
    v = mem[:, :, ::ka, :C].transpose(0, 2, 1, 3)
    if U == 1 and rng.random() < 0.7:
        v = v[0]
    for ax in range(v.ndim - 1):
        if rng.random() < 0.2:
            v = np.flip(v, ax)
    return buf, v


def make_any(rng, dt):
    """A random n-D view: random memory shape, axis permutation, steps and flips."""
    nd = int(rng.integers(1, 5))
    shape = [int(rng.choice([1, 2, 3, 7, 16, 63, 64, 65, 129, 300, 1025]))
             for _ in range(nd)]
    while np.prod(shape) > MAXN / 2:
        i = int(np.argmax(shape))
        shape[i] //= 2
    steps = [int(rng.choice([1, 1, 1, 2, 3, -1, -2])) for _ in range(nd)]
    mshape = [s * abs(k) for s, k in zip(shape, steps)]
    buf, mem = embed(rng, mshape, dt)
    fill(rng, mem)
    v = mem[tuple(slice(None, None, k) for k in steps)]
    v = v.transpose(rng.permutation(nd))
    return buf, v


def make_small(rng, dt):
    """Small trailing axes: (N, a, b) transposed, slices of 2 .. 64 keep bytes (pshufb)."""
    a = int(rng.choice([1, 2, 3, 4, 5, 8, 16, 32, 64]))
    b = int(rng.choice([1, 2, 3, 4, 8, 16, 32]))
    N = int(rng.integers(1, 3 * BLOCK))
    while N * a * b > MAXN:
        N //= 2
    steps = [int(rng.choice([1, 1, 1, 2, -1])) for _ in range(3)]
    buf, mem = embed(rng, (N * abs(steps[0]), a * abs(steps[1]), b * abs(steps[2])), dt)
    fill(rng, mem)
    v = mem[tuple(slice(None, None, k) for k in steps)]
    perm = [(0, 2, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2), (2, 0, 1), (1, 2, 0)][rng.integers(6)]
    return buf, v.transpose(perm)


def make_out(rng, v, dt, family):
    """An out= array of v's shape, of some layout, in its own guarded buffer."""
    k = rng.integers(4)
    if k == 0:  # C order
        ob, o = embed(rng, v.shape, dt)
    elif k == 1:  # reversed memory order (Fortran-like)
        ob, m = embed(rng, v.shape[::-1], dt)
        o = m.T
    elif k == 2 and v.ndim >= 3:  # the slab layout
        sh = list(v.shape)
        sh[-3], sh[-2] = sh[-2], sh[-3]
        ob, m = embed(rng, sh, dt)
        o = np.swapaxes(m, -3, -2)
    else:  # random axes flipped
        ob, m = embed(rng, v.shape[::-1], dt)
        o = m.T
        for ax in range(o.ndim):
            if rng.random() < 0.3:
                o = np.flip(o, ax)
    return ob, o


def pick_offset(rng, v):
    n = v.size
    r = rng.random()
    C = v.shape[-1] if v.ndim else 1
    if r < 0.2:
        off = 2**64 - n - int(rng.integers(0, 3))
    elif r < 0.5:
        off = int(rng.integers(1, 8)) * BLOCK - int(rng.choice([0, 1, 63, 64, 65, C, 3 * C,
                                                                C * 64, C * 1024]))
    elif r < 0.6:
        off = int(rng.integers(0, 2**64 - n + 1, dtype=np.uint64))
    else:
        off = int(rng.integers(0, 2**40))
    return max(0, min(off, 2**64 - n))


def pick_p(rng):
    return float(rng.choice([0.0, 5e-324, 0.1, 0.5, 0.3, 0.9, 1 - 1e-16, 1.0, 2.0**-33,
                             rng.random()]))


def run_case(master, i, paths, families, verbose=False):
    rng = np.random.default_rng([master, i])
    path = paths[int(rng.integers(len(paths)))]
    fam = families[int(rng.integers(len(families)))]
    dt = DTYPES[int(rng.integers(len(DTYPES)))]
    buf, v = {"tall": make_tall, "slab": make_slab, "any": make_any,
                               "small": make_small}[fam](rng, dt)
    p = pick_p(rng)
    off = pick_offset(rng, v)
    nt = int(rng.choice(THREADS))
    mode = ("inplace", "copy", "out")[int(rng.integers(3))]
    seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    what = (f"case ({master}, {i}) {fam} path={path} {np.dtype(dt).name} shape={v.shape} "
            f"strides={v.strides} p={p!r} seed={seed} offset={off} nt={nt} {mode}")
    if verbose:
        print(what, flush=True)
    _kernels.set_path(path)
    got_path = _kernels.get_path()
    expected = cdrop.dropout(np.ascontiguousarray(v), p, seed=seed, offset=off, num_threads=1)
    if v.size <= 20000:
        ref = reference.dropout_ref(np.ascontiguousarray(v), p, seed, off)
        if not np.array_equal(bits(ref), bits(expected)):
            return f"contig != reference: {what}"
    before = buf.copy()
    if mode != "out":
        WALKS[walk_of(v)] = WALKS.get(walk_of(v), 0) + 1
    if mode == "inplace":
        got = cdrop.dropout(v, p, seed=seed, offset=off, num_threads=nt, inplace=True)
        if got is not v and not np.shares_memory(got, v):
            return f"inplace returned a copy: {what}"
        m = outside(buf, v)
        if not np.array_equal(buf[m], before[m]):
            return f"wrote outside the view: {what}"
    elif mode == "copy":
        got = cdrop.dropout(v, p, seed=seed, offset=off, num_threads=nt)
        if not np.array_equal(buf, before):
            return f"wrote to x: {what}"
    else:
        ob, o = make_out(rng, v, dt, fam)
        what += f" out.strides={o.strides}"
        WALKS[walk_of(v, o)] = WALKS.get(walk_of(v, o), 0) + 1
        ob0 = ob.copy()
        got = cdrop.dropout(v, p, seed=seed, offset=off, num_threads=nt, out=o)
        if got is not o:
            return f"out= not returned: {what}"
        m = outside(ob, o)
        if not np.array_equal(ob[m], ob0[m]):
            return f"wrote outside out: {what}"
        if not np.array_equal(buf, before):
            return f"wrote to x: {what}"
    a, e = bits(np.ascontiguousarray(got)), bits(expected)
    if not np.array_equal(a, e):
        bad = np.flatnonzero(a.ravel() != e.ravel())
        return (f"MISMATCH {bad.size}/{a.size} first flat {bad[0]} "
                f"(index {np.unravel_index(bad[0], v.shape)}) [{got_path}]: {what}")
    return None


def bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def main():
    args = sys.argv[1:]
    if args and args[0] == "--case":
        master, i = int(args[1]), int(args[2])
        paths = args[3].split(",") if len(args) > 3 else ["avx512", "avx2", "portable", "scalar"]
        fams = args[4].split(",") if len(args) > 4 else ["tall", "slab", "any"]
        print(run_case(master, i, paths, fams, verbose=True))
        return
    secs = float(args[0])
    master = int(args[1]) if len(args) > 1 else 15
    paths = args[2].split(",") if len(args) > 2 else ["avx512", "avx2", "portable", "scalar"]
    fams = args[3].split(",") if len(args) > 3 else ["tall", "slab", "any"]
    t0 = time.time()
    i = nfail = 0
    while time.time() - t0 < secs:
        err = run_case(master, i, paths, fams)
        if err:
            nfail += 1
            print(err, flush=True)
        i += 1
    print(f"master={master} cases={i} failures={nfail} paths={paths} families={fams} "
          f"walks={WALKS}", flush=True)



def walk_of(v, o=None):
    """The walk that _kernels.apply picks for view v into o (a mirror of _layout,
    cdrop_layout_walk, cdrop_tile_geom's tall test and cdrop_slab_layout)."""
    o = v if o is None else o
    isz = v.itemsize
    shape, ss, ds = [], [], []
    for d in range(v.ndim):
        if v.shape[d] == 1:
            continue
        if shape and ss[-1] == v.strides[d] * v.shape[d] and ds[-1] == o.strides[d] * v.shape[d]:
            shape[-1] *= v.shape[d]
            ss[-1], ds[-1] = v.strides[d], o.strides[d]
            continue
        shape.append(v.shape[d])
        ss.append(v.strides[d])
        ds.append(o.strides[d])
    nd = len(shape)
    if nd == 0 or (nd == 1 and ss[0] == isz and ds[0] == isz):
        return "contig"
    if nd < 2:
        return "strided"
    if abs(ss[-2]) < abs(ss[-1]) and abs(ds[-2]) < abs(ds[-1]):
        if nd == 2:
            R, C = shape
            nr = min(tall_rows(v.dtype, C), R)
            if nr >= 64 and C * nr > 458752:
                return "tall-unit" if (ss[0] == isz and ds[0] == isz and isz >= 4) else "tall-keep"
        return "tiles"
    inplace = o is v or o.__array_interface__["data"][0] == v.__array_interface__["data"][0]
    if (nd >= 3 and ss[-1] == isz and ds[-1] == isz and shape[-1] * isz <= 16384
            and not (inplace and shape[-1] * isz >= 1024)
            and abs(ss[-3]) < abs(ss[-2]) and abs(ds[-3]) < abs(ds[-2])
            and shape[-2] * shape[-1] >= BLOCK):
        return "slabs"
    return "strided"


if __name__ == "__main__":
    main()
