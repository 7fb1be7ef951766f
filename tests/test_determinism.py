"""The reproducibility contract: results depend only on (seed, p, logical index + offset).

Not on the thread count, the memory layout, in place vs out of place vs out=, the kernel path,
or how an array is cut into chunks.  Plus: seeds (ints, Generators, the package stream) and
golden digests that pin stream v1.
"""
import hashlib
import math
import os

import numpy as np
import pytest

import cdrop
import reference
from cdrop import _kernels
from helpers import assert_bits_equal

BIG = 3 * 2**20 + 5  # threaded (>= 65536 elements), several blocks, ragged end
THREADS = [1, 2, 3, 4, 7]


@pytest.fixture(scope="module")
def big32():
    rng = np.random.default_rng(2024)
    return rng.standard_normal(BIG).astype(np.float32)


@pytest.fixture(scope="module")
def big64():
    rng = np.random.default_rng(2025)
    return rng.standard_normal(BIG)


# ---------------------------------------------------------------------------------------------
# Thread counts
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [0, 12345])
@pytest.mark.parametrize("which", ["big32", "big64"])
def test_same_result_for_any_thread_count(which, offset, request, kernel_path):
    x = request.getfixturevalue(which)
    ref = cdrop.dropout(x, 0.4, seed=17, offset=offset, num_threads=1)
    # the serial result is the oracle's (on a 10^6-element window, to keep the oracle fast)
    lo = 2**20 - 777
    assert_bits_equal(ref[lo:lo + 10**6],
                      reference.dropout_ref(x[lo:lo + 10**6], 0.4, 17, offset=offset + lo))
    for nt in THREADS[1:]:
        assert_bits_equal(cdrop.dropout(x, 0.4, seed=17, offset=offset, num_threads=nt), ref,
                          f"num_threads={nt}")
        out = np.empty_like(x)
        cdrop.dropout(x, 0.4, seed=17, offset=offset, num_threads=nt, out=out)
        assert_bits_equal(out, ref, f"out=, num_threads={nt}")
        y = x.copy()
        cdrop.dropout(y, 0.4, seed=17, offset=offset, num_threads=nt, inplace=True)
        assert_bits_equal(y, ref, f"in place, num_threads={nt}")


def test_default_thread_count_changes_nothing(big32):
    ref = cdrop.dropout(big32, 0.5, seed=3, num_threads=1)
    for n in (1, 2, 5):
        cdrop.set_num_threads(n)
        assert_bits_equal(cdrop.dropout(big32, 0.5, seed=3), ref, f"set_num_threads({n})")
    cdrop.set_num_threads(None)
    assert_bits_equal(cdrop.dropout(big32, 0.5, seed=3), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_threaded_same_for_any_thread_count(dtype):
    rng = np.random.default_rng(4)
    parent = rng.standard_normal((1100, 1300)).astype(dtype)
    x = parent[::-1, 1::2]  # 1100 x 650 = 715000 elements, strided path, threaded
    ref = cdrop.dropout(x, 0.3, seed=5, offset=3, num_threads=1)
    assert_bits_equal(ref, reference.dropout_ref(x, 0.3, 5, offset=3))
    for nt in THREADS[1:]:
        assert_bits_equal(cdrop.dropout(x, 0.3, seed=5, offset=3, num_threads=nt), ref)
        p2 = parent.copy()
        cdrop.dropout(p2[::-1, 1::2], 0.3, seed=5, offset=3, num_threads=nt, inplace=True)
        assert_bits_equal(p2[::-1, 1::2], ref)
        assert_bits_equal(p2[:, 0::2], parent[:, 0::2])  # the other columns untouched


@pytest.mark.parametrize("packed", [False, True])
def test_mask_same_for_any_thread_count(packed):
    for offset in (0, 1, 3, 5, 16384 + 3, 2**35 + 7):
        ref = cdrop.dropout_mask(BIG, 0.5, seed=21, offset=offset, packed=packed, num_threads=1)
        for nt in (2, 3, 4):
            m = cdrop.dropout_mask(BIG, 0.5, seed=21, offset=offset, packed=packed,
                                   num_threads=nt)
            assert np.array_equal(m, ref), (offset, nt)


@pytest.mark.parametrize("offset", [1, 3, 5, 7, 9, 16384 + 3])
def test_packed_mask_odd_offsets(offset):
    assert offset % 8 != 0
    unpacked = cdrop.dropout_mask(BIG, 0.5, seed=8, offset=offset, num_threads=2)
    packed1 = cdrop.dropout_mask(BIG, 0.5, seed=8, offset=offset, packed=True, num_threads=1)
    packed2 = cdrop.dropout_mask(BIG, 0.5, seed=8, offset=offset, packed=True, num_threads=2)
    assert np.array_equal(packed1, packed2)
    assert np.array_equal(packed2, np.packbits(unpacked, bitorder="little"))
    assert packed2[-1] >> (BIG % 8) == 0  # padding bits are zero
    window = slice(2**20 - 8, 2**20 - 8 + 800000)  # byte-aligned element window
    assert np.array_equal(unpacked[window],
                          reference.keep_mask(800000, 0.5, 8, offset + window.start))


# ---------------------------------------------------------------------------------------------
# Chunking and offsets
# ---------------------------------------------------------------------------------------------
CUTS = [(0, 1), (0, 16384), (1, 16385), (5, 37), (16383, 16385), (16380, 50000), (15, 16),
        (12345, 99999), (99990, 100000), (33, 33), (16384, 32768), (32767, 98304 + 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_calls_1d(dtype, kernel_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(100000).astype(dtype)
    full = cdrop.dropout(x, 0.5, seed=44)
    assert_bits_equal(full, reference.dropout_ref(x, 0.5, 44))
    mask = cdrop.dropout_mask(100000, 0.5, seed=44)
    for a, b in CUTS:
        assert_bits_equal(cdrop.dropout(x[a:b], 0.5, seed=44, offset=a), full[a:b], (a, b))
        assert np.array_equal(cdrop.dropout_mask(b - a, 0.5, seed=44, offset=a), mask[a:b])
        part = x[a:b].copy()
        cdrop.dropout(part, 0.5, seed=44, offset=a, inplace=True)
        assert_bits_equal(part, full[a:b], (a, b, "in place"))


def test_chunked_calls_big_threaded(big32):
    full = cdrop.dropout(big32, 0.25, seed=45, num_threads=2)
    for a, b in [(7, 2**20 + 13), (2**20 + 13, BIG), (0, 2**21 + 1), (2**21 + 1, BIG)]:
        assert_bits_equal(cdrop.dropout(big32[a:b], 0.25, seed=45, offset=a, num_threads=2),
                          full[a:b], (a, b))


def test_chunked_rows_2d():
    rng = np.random.default_rng(7)
    nrows, ncols = 50, 3001
    x = rng.standard_normal((nrows, ncols))
    full = cdrop.dropout(x, 0.3, seed=46)
    for a, b in [(0, 1), (0, 6), (6, 7), (7, 29), (29, 50), (49, 50)]:
        part = cdrop.dropout(x[a:b], 0.3, seed=46, offset=a * ncols)
        assert_bits_equal(part, full[a:b], (a, b))


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layout_independence_large(dtype, kernel_path):
    rng = np.random.default_rng(8)
    c = rng.standard_normal((1200, 1100)).astype(dtype)  # 1.32M elements: threaded
    views = {
        "F": np.asfortranarray(c),
        "T of C": c.T,
        "reversed": c[::-1],
        "both reversed": c[::-1, ::-1],
        "step": np.repeat(c, 2, axis=1)[:, ::2],
        "3d": c.reshape(1200, 55, 20)[:, ::-1].transpose(0, 2, 1),
    }
    for name, v in views.items():
        expected = cdrop.dropout(np.ascontiguousarray(v), 0.5, seed=47, offset=1)
        for nt in (1, 2):
            assert_bits_equal(cdrop.dropout(v, 0.5, seed=47, offset=1, num_threads=nt),
                              expected, name)
            w = v.copy(order="K")
            cdrop.dropout(w, 0.5, seed=47, offset=1, num_threads=nt, inplace=True)
            assert_bits_equal(w, expected, name + " in place")


# ---------------------------------------------------------------------------------------------
# Kernel paths
# ---------------------------------------------------------------------------------------------
def _all_paths(fn):
    """fn() on every kernel path this CPU has, as {path: result}; skips with one path only."""
    got = {}
    for want in ("avx512", "avx512-nt", "avx2", "avx2-nt", "portable", "scalar"):
        path = want.split("-")[0]
        active = _kernels.set_path(path)
        old_stream = _kernels.set_stream_bytes(0 if want.endswith("-nt") else
                                               _kernels.get_stream_bytes())
        try:
            if active == path:
                got[want] = fn()
        finally:
            _kernels.set_path("auto")
            _kernels.set_stream_bytes(old_stream)
    if len(got) < 2:
        pytest.skip("this build has only one kernel path")
    return got


@pytest.mark.parametrize("offset", [0, 1, 7, 13, 16383, 2**33 + 12345])
@pytest.mark.parametrize("which", ["big32", "big64"])
def test_every_path_equals_the_scalar_reference_path(which, offset, request):
    x = request.getfixturevalue(which)
    cases = [
        ("contiguous", lambda: cdrop.dropout(x, 0.5, seed=48, offset=offset)),
        ("strided", lambda: cdrop.dropout(x[::3], 0.1, seed=48, offset=offset)),
        ("bool mask", lambda: cdrop.dropout_mask(BIG, 0.7, seed=48, offset=offset)),
        ("packed mask", lambda: cdrop.dropout_mask(BIG, 0.7, seed=48, offset=offset,
                                                   packed=True)),
    ]
    for name, fn in cases:
        got = _all_paths(fn)
        for path, value in got.items():
            if value.dtype.kind == "f":
                assert_bits_equal(value, got["scalar"], f"{name}: {path} vs scalar")
            else:
                assert np.array_equal(value, got["scalar"]), f"{name}: {path} vs scalar"


def test_auto_picks_the_best_path_the_cpu_has():
    cfg = cdrop.show_config()
    portable = _kernels.set_path("portable")  # "scalar" in a build without vector extensions
    assert portable in ("portable", "scalar")
    if not cfg["avx2_compiled"]:
        expected = portable
    elif cfg["cpu_avx512"]:
        expected = "avx512"
    elif cfg["cpu_avx2"]:
        expected = "avx2"
    else:
        expected = portable
    assert _kernels.set_path("auto") == expected
    # under a forced CDROP_KERNEL, show_config names the forced path
    if os.environ.get("CDROP_KERNEL", "auto") in ("", "auto"):
        assert cfg["simd"] == expected


# ---------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------
def _agreement_bound(n):
    # two independent fair masks agree on Binomial(n, 1/2) elements: 6 sigma
    return 6 * math.sqrt(0.25 / n)


@pytest.mark.parametrize("s", [0, 1, 2, 2**32 - 1, 2**63, 2**64 - 2])
def test_adjacent_seeds_unrelated(s):
    n = 10**6
    a = cdrop.dropout_mask(n, 0.5, seed=s)
    b = cdrop.dropout_mask(n, 0.5, seed=s + 1)
    agree = np.count_nonzero(a == b) / n
    assert abs(agree - 0.5) <= _agreement_bound(n), agree
    # and not a shifted copy of each other (a lag-k coincidence would also be a relation)
    for k in (1, 16, 16384):
        agree_k = np.count_nonzero(a[k:] == b[:-k]) / (n - k)
        assert abs(agree_k - 0.5) <= _agreement_bound(n - k), (k, agree_k)


def test_offsets_unrelated():
    n = 10**6
    a = cdrop.dropout_mask(n, 0.5, seed=3)
    b = cdrop.dropout_mask(n, 0.5, seed=3, offset=2**40)
    assert abs(np.count_nonzero(a == b) / n - 0.5) <= _agreement_bound(n)


def test_generator_seed():
    x = np.ones(100000, dtype=np.float32)
    y1 = cdrop.dropout(x, 0.5, seed=np.random.default_rng(123))
    y2 = cdrop.dropout(x, 0.5, seed=np.random.default_rng(123))
    assert_bits_equal(y1, y2)
    # docs/rng.md section 7: the seed is int(gen.integers(0, 2**64, dtype=uint64))
    key = int(np.random.default_rng(123).integers(0, 2**64, dtype=np.uint64))
    assert_bits_equal(y1, cdrop.dropout(x, 0.5, seed=key))
    # the generator advances: a second call with the same Generator gives another mask
    g = np.random.default_rng(123)
    a = cdrop.dropout(x, 0.5, seed=g)
    b = cdrop.dropout(x, 0.5, seed=g)
    assert_bits_equal(a, y1)
    assert not np.array_equal(a, b)
    # dropout_mask too
    assert np.array_equal(cdrop.dropout_mask(100000, 0.5, seed=np.random.default_rng(123)),
                          y1 != 0)


def test_numpy_integer_seeds():
    x = np.ones(5000)
    ref = cdrop.dropout(x, 0.5, seed=2**64 - 1)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=np.uint64(2**64 - 1)), ref)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=np.int64(7)), cdrop.dropout(x, 0.5, seed=7))


def test_manual_seed_makes_seed_none_reproducible():
    x = np.ones(50000)
    cdrop.manual_seed(99)
    a = [cdrop.dropout(x), cdrop.dropout(x, 0.3), cdrop.dropout_mask(50000, seed=None)]
    cdrop.manual_seed(99)
    b = [cdrop.dropout(x), cdrop.dropout(x, 0.3), cdrop.dropout_mask(50000, seed=None)]
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0] != 0, a[2])  # consecutive calls use fresh seeds
    # docs/rng.md section 7: draw i after manual_seed(base) is derive(base, i)
    for i, y in enumerate(a[:2]):
        p = (0.5, 0.3)[i]
        assert_bits_equal(y, cdrop.dropout(x, p, seed=reference.derive(99, i)))
    assert np.array_equal(a[2], reference.keep_mask(50000, 0.5, reference.derive(99, 2)))
    cdrop.manual_seed(100)
    assert not np.array_equal(cdrop.dropout(x), a[0])


def test_manual_seed_extremes():
    x = np.ones(1000)
    for base in (0, 2**64 - 1):
        cdrop.manual_seed(base)
        y = cdrop.dropout(x)
        assert_bits_equal(y, cdrop.dropout(x, seed=reference.derive(base, 0)))


def test_derive_and_hash_match_reference():
    for a, b in [(0, 0), (1, 2), (2**64 - 1, 2**64 - 1), (0xDEADBEEF, 7)]:
        assert _kernels.derive(a, b) == reference.derive(a, b)
        assert _kernels.hash64(a) == reference.hash64(a)


# ---------------------------------------------------------------------------------------------
# Golden values: stream v1 frozen
# ---------------------------------------------------------------------------------------------
# Stream v1 as specified in docs/rng.md (xoshiro128++ lanes giving one byte per element, 24 tie
# bits from a hash, keep iff (u ^ 2**31) < thr).  A deliberate change of the stream must bump
# its version and regenerate these digests from the ORACLE:
#     hashlib.sha256(reference.packed_mask(100000, p, seed, offset).tobytes()).hexdigest()
# sha256 of the packed keep mask of 100000 elements, keyed by (seed, offset, p).
GOLDEN_MASKS = {
    (0, 0, 0.5): "7a9be13e8c488f2abe842be46562c5861ce6fb096c65599039f3b57e3d36d73d",
    (0, 0, 0.1): "0891f3d47260e1ba540034b851d1cc13f70b0cb9fd2f324415456b68b199e7fd",
    (0, 123456789, 0.5): "ce3e57bc5fa6bb71ae0e04eacab3a4c975bae3bf89816203d7a270130e25fad8",
    (0, 123456789, 0.1): "5b53cf279b9473c6b66e4f1793c2457ac9a0384bb2e34902009feb4d8b69865d",
    (2**64 - 1, 0, 0.5): "c21a50faeef8919a1802398beaa24f49c445ebb49e82b7267599af18f7b257ef",
    (2**64 - 1, 0, 0.1): "56b598e4d8fb3e8ae75700f83bf857b865efbe418717149acbd4bacdf2b301db",
    (2**64 - 1, 123456789, 0.5): "c217f871304848b3748b6a0c2fbf079652d473c3888879c61218276c64ad296f",
    (2**64 - 1, 123456789, 0.1): "9b67061f467163172aebcaefe812c2707f0d6ca44f208ac35b56d4b3edc92338",
}

# sha256 of the little-endian bytes of dropout(linspace(-4, 4, 50001), 0.3, seed=42, offset=7)
GOLDEN_VALUES = {
    "float32": "5c5c5c1a2476cad2df715c86eb208992821453d22223907057d6316400bfe355",
    "float64": "82ea9adeaf57634868528a92c129031a02f2888a083b0407ee9c07341fd3c509",
}


def _sha(a):
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


@pytest.mark.parametrize("key", list(GOLDEN_MASKS), ids=str)
def test_golden_masks(key, kernel_path):
    seed, offset, p = key
    oracle = reference.packed_mask(100000, p, seed, offset)
    compiled = cdrop.dropout_mask(100000, p, seed=seed, offset=offset, packed=True)
    assert np.array_equal(compiled, oracle)
    assert _sha(oracle) == GOLDEN_MASKS[key], "the oracle no longer produces stream v1"
    assert _sha(compiled) == GOLDEN_MASKS[key], "cdrop no longer produces stream v1"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_golden_values(dtype, kernel_path):
    x = np.linspace(-4, 4, 50001, dtype=dtype)
    oracle = reference.dropout_ref(x, 0.3, 42, 7)
    compiled = cdrop.dropout(x, 0.3, seed=42, offset=7)
    assert_bits_equal(compiled, oracle)
    assert _sha(oracle) == GOLDEN_VALUES[dtype]
    assert _sha(compiled) == GOLDEN_VALUES[dtype]


# p whose threshold has its low 24 bits zero (p = k/256, and p so close to 1 that thr == 0):
# a tie can never be kept, and the SIMD kernels take a loop without tie records.  Their
# neighbours take the general loop: 2**-32 away (threshold low bits 0xFFFFFF, where nearly every
# tie is kept, or 1, where nearly none is) and 1/512 away (0x800000: about half of them).  All
# must give the oracle's bits, ties included (the test checks that the range has some).
_EXACT_P = [0.5, 0.25, 0.75, 1 / 256, 255 / 256, 1 - 2.0**-40]
_NEAR_P = [0.5 - 2.0**-32, 0.5 + 2.0**-32, 1 / 256 + 2.0**-32, 0.5 - 1 / 512, 0.5 + 1 / 512]


@pytest.mark.parametrize("p", _EXACT_P + _NEAR_P)
def test_thresholds_without_low_bits_match_oracle(p, kernel_path):
    n, offset, seed = 3 * 2**14 + 100, 37, 2024  # head, whole steps, 4 blocks, tail
    thr = reference.threshold(p)
    assert ((thr & 0xFFFFFF) == 0) == (p in _EXACT_P)
    u = reference.draws(seed, offset, n)
    ties = int(np.count_nonzero((u >> 24) == (thr >> 24) ^ 0x80))
    assert ties > 50  # about n / 256 = 192: the tie code is exercised
    keep = reference.keep_mask(n, p, seed, offset)
    assert np.array_equal(cdrop.dropout_mask(n, p, seed=seed, offset=offset), keep)
    assert np.array_equal(cdrop.dropout_mask(n, p, seed=seed, offset=offset, packed=True),
                          reference.packed_mask(n, p, seed, offset))
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(1).standard_normal(n).astype(dtype)
        ref = reference.dropout_ref(x, p, seed, offset)
        assert_bits_equal(cdrop.dropout(x, p, seed=seed, offset=offset), ref, str(dtype))


@pytest.mark.parametrize("n", [2**16 - 1, 2**16, 2**16 + 16385, 5 * 2**15 + 7])
@pytest.mark.parametrize("offset", [0, 9])
def test_sizes_near_the_threading_cut_off(n, offset):
    """Around the size where calls start using threads (2**16 elements, 2**15 per thread) the
    oracle and every thread count still agree, on both bool masks and dropout."""
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    ref = reference.dropout_ref(x, 0.5, 99, offset)
    for nt in (1, 2, 3, 5):
        assert_bits_equal(cdrop.dropout(x, 0.5, seed=99, offset=offset, num_threads=nt), ref,
                          f"n={n} num_threads={nt}")
        assert np.array_equal(
            cdrop.dropout_mask(n, 0.5, seed=99, offset=offset, packed=True, num_threads=nt),
            reference.packed_mask(n, 0.5, 99, offset))


@pytest.mark.parametrize("shape", [
    (5000, 3),        # short rows: many rows per band, one keep_u8 call per band
    (70, 4096),       # pitch a multiple of 4 KiB: per-row calls with a padded pitch
    (40, 9000),       # long rows: bands cut into column tiles
    (3, 33, 4100),    # outer axis, ragged last band
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_band_walk_for_rows_closer_than_columns(shape, dtype, kernel_path):
    """Layouts whose rows are closer in memory than their columns (Fortran order, swapped
    axes) go through the band walk; its values are the oracle's for any thread count."""
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    f = np.asfortranarray(x)
    swapped = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, -1, -2)), -1, -2)
    ref = reference.dropout_ref(x, 0.3, 1234, 77)
    for view in (f, swapped):
        for nt in (1, 2, 3):
            assert_bits_equal(cdrop.dropout(view, 0.3, seed=1234, offset=77, num_threads=nt),
                              ref, f"{shape} strides={view.strides} num_threads={nt}")
            y = view.copy(order="K")
            cdrop.dropout(y, 0.3, seed=1234, offset=77, num_threads=nt, inplace=True)
            assert_bits_equal(y, ref, f"in place {shape} num_threads={nt}")
