"""Self-checks of tests/reference.py (the NumPy twin of docs/rng.md).

These tests need only NumPy: they check the reference against published known answers and
against tiny scalar re-implementations written here with plain Python ints, so that the
reference can be trusted before the compiled kernels are compared with it.
"""

import math

import numpy as np
import pytest

from reference import (
    _block_states,
    _lane_outputs,
    derive,
    draws,
    dropout_ref,
    hash64,
    hash64_array,
    keep_mask,
    mix64,
    normal_words,
    normals,
    normals_from_words,
    normals_from_words_f64,
    packed_mask,
    threshold,
)

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
GOLDEN = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------------------------------------
# Second, scalar implementations (plain Python ints), written straight from the spec.
# ---------------------------------------------------------------------------------------------


def s_mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % (1 << 64)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % (1 << 64)
    return z ^ (z >> 31)


def s_hash64(x):
    return s_mix64((x + GOLDEN) % (1 << 64))


def s_rotl32(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class ScalarXoshiro128pp:
    """xoshiro128++, the generator of the spec, pinned to published vectors below."""

    def __init__(self, s0, s1, s2, s3):
        self.s = [s0, s1, s2, s3]

    def output(self, s0, s3):
        return (s_rotl32((s0 + s3) & M32, 7) + s0) & M32

    def next(self):
        s0, s1, s2, s3 = self.s
        out = self.output(s0, s3)
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s_rotl32(s3, 11)
        self.s = [s0, s1, s2, s3]
        return out


class ScalarXoshiro128p(ScalarXoshiro128pp):
    """xoshiro128+ (the same transition, output s0 + s3): only to check the '+' option."""

    def output(self, s0, s3):
        return (s0 + s3) & M32


def s_lane_state(seed, b, lane):
    key = s_hash64(seed)
    w_a = s_hash64(key ^ s_hash64(32 * b + 2 * lane))
    w_b = s_hash64(key ^ s_hash64(32 * b + 2 * lane + 1))
    s = [w_a & M32, w_a >> 32, w_b & M32, w_b >> 32]
    if s == [0, 0, 0, 0]:
        s[0] = 1
    return s


TIE_DOMAIN = 0x6A09E667F3BCC909


def s_draw(seed, g):
    """u(g) computed the slow obvious way (docs/rng.md, sections 3-5): seed the lane, step it
    `step` times, take the element's byte, append the 24 tie bits."""
    b, j = g >> 14, g & 16383
    step, k = j // 64, j % 64
    lane, byte = k // 4, k % 4
    rng = ScalarXoshiro128pp(*s_lane_state(seed, b, lane))
    for _ in range(step):
        rng.next()
    hi8 = (rng.next() >> (8 * byte)) & 0xFF
    key = s_hash64(seed)
    tie = s_hash64(key ^ TIE_DOMAIN ^ s_hash64(g)) >> 40
    return (hi8 << 24) | tie


def s_block_draws(seed, b):
    """All 16384 draws of block b, the 64 bytes of each step in lane-major order."""
    lanes = [ScalarXoshiro128pp(*s_lane_state(seed, b, lane)) for lane in range(16)]
    key = s_hash64(seed)
    out = []
    for _t in range(256):
        for lane in lanes:
            word = lane.next()
            for byte in range(4):
                out.append((word >> (8 * byte)) & 0xFF)
    ties = [s_hash64(key ^ TIE_DOMAIN ^ s_hash64(b * 16384 + j)) >> 40 for j in range(16384)]
    return np.array([(h << 24) | t for h, t in zip(out, ties)], dtype=np.uint32)


# ---------------------------------------------------------------------------------------------
# (1) Hashes.
# ---------------------------------------------------------------------------------------------

EDGE_VALUES = [0, 1, 2, 3, 0xFFFFFFFF, 1 << 32, 1 << 63, M64 - GOLDEN, M64 - GOLDEN + 1, M64 - 1,
               M64]


def test_hash64_published_first_splitmix64_output():
    # splitmix64 seeded with 0: first output is 0xE220A8397B1DCDAF (widely published).
    assert hash64(0) == 0xE220A8397B1DCDAF == 16294208416658607535


def test_hash64_known_answers_scalar_twin():
    # Hard-coded values computed once with s_hash64; the loop re-derives them independently.
    assert hash64(0) == 16294208416658607535
    assert hash64(1) == 10451216379200822465
    assert hash64(2**64 - 1) == 16490336266968443936
    for x in EDGE_VALUES + [12345, 2**50 + 17, 0xDEADBEEFCAFEBABE]:
        h = hash64(x)
        assert isinstance(h, int) and 0 <= h <= M64
        assert h == s_hash64(x)
        assert mix64(x) == s_mix64(x)


def test_splitmix64_published_sequence():
    # splitmix64.c seeded with state 1234567: state += GOLDEN, then output mix64(state).
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423]
    got_mix = [mix64((1234567 + k * GOLDEN) & M64) for k in (1, 2, 3)]
    assert got_mix == expected
    # hash64(x) is "the first output of splitmix64 seeded with x".
    got_hash = [hash64((1234567 + k * GOLDEN) & M64) for k in (0, 1, 2)]
    assert got_hash == expected
    arr = np.array([(1234567 + k * GOLDEN) & M64 for k in (0, 1, 2)], dtype=np.uint64)
    assert hash64_array(arr).tolist() == expected


def test_hash64_array_matches_scalar_and_wraps_silently():
    rng = np.random.default_rng(1)
    vals = rng.integers(0, 2**64, size=1000, dtype=np.uint64)
    vals[: len(EDGE_VALUES)] = np.array(EDGE_VALUES, dtype=np.uint64)
    got = hash64_array(vals)  # runs under -W error: any overflow warning fails the test
    assert got.dtype == np.uint64 and got.shape == vals.shape
    assert got.tolist() == [s_hash64(int(v)) for v in vals]
    # any shape, including 0-d and 2-d
    assert hash64_array(np.uint64(M64)).tolist() == s_hash64(M64)
    assert hash64_array(np.array(M64, dtype=np.uint64)).shape == ()
    two_d = vals[:12].reshape(3, 4)
    assert hash64_array(two_d).tolist() == [[s_hash64(int(v)) for v in row] for row in two_d]


def test_derive():
    for a, b in [(0, 0), (1, 2), (M64, M64), (0xDEADBEEF, 7), (2**63, 2**40)]:
        assert derive(a, b) == s_hash64(a ^ s_hash64(b))
    assert derive(1, 2) != derive(2, 1)


# ---------------------------------------------------------------------------------------------
# (2) xoshiro128++ and block/lane layout.
# ---------------------------------------------------------------------------------------------

# First outputs of Blackman & Vigna's xoshiro128plusplus.c from state {1, 2, 3, 4}
# (the same vector is used by the rand_xoshiro crate's tests).
XOSHIRO_1234 = [641, 1573767, 3222811527, 3517856514, 836907274, 4247214768,
                3867114732, 1355841295, 495546011, 621204420]


def test_scalar_twin_matches_published_xoshiro128pp():
    rng = ScalarXoshiro128pp(1, 2, 3, 4)
    assert [rng.next() for _ in range(10)] == XOSHIRO_1234
    # Output number 102400 from state {1, 2, 3, 4}: bytes fa 3c 87 2c (little endian), a value
    # used by PHP's test suite for a user-land xoshiro128++ engine.
    rng = ScalarXoshiro128pp(1, 2, 3, 4)
    for _ in range(102400):
        rng.next()
    assert rng.next() == 0x2C873CFA


def test_lane_outputs_published_vector():
    # The lanes are xoshiro128++, checked against the published vector ...
    out = _lane_outputs(np.uint32(1), np.uint32(2), np.uint32(3), np.uint32(4), 10)
    assert out.dtype == np.uint32
    assert out.reshape(-1).tolist() == XOSHIRO_1234
    # skip discards the first outputs
    out = _lane_outputs(np.uint32(1), np.uint32(2), np.uint32(3), np.uint32(4), 10, skip=4)
    assert out.reshape(-1).tolist() == XOSHIRO_1234[4:]
    # ... and the '+' variant (not used by the spec) is s0 + s3 of the same states: 1 + 4 first.
    out = _lane_outputs(np.uint32(1), np.uint32(2), np.uint32(3), np.uint32(4), 10,
                        scrambler="+")
    rng = ScalarXoshiro128p(1, 2, 3, 4)
    assert out.reshape(-1).tolist() == [rng.next() for _ in range(10)]
    assert int(out[0, 0]) == 5


def test_lane_outputs_vectorised_against_scalar():
    rng = np.random.default_rng(7)
    states = rng.integers(0, 2**32, size=(4, 3, 5), dtype=np.uint32)
    states[:, 0, 0] = [1, 2, 3, 4]
    states[:, 0, 1] = [M32, M32, M32, M32]
    states[:, 0, 2] = [1, 0, 0, 0]
    n = 300
    out = _lane_outputs(states[0], states[1], states[2], states[3], n)
    assert out.shape == (n, 3, 5)
    for i in range(3):
        for j in range(5):
            r = ScalarXoshiro128pp(*(int(states[k, i, j]) for k in range(4)))
            assert out[:, i, j].tolist() == [r.next() for _ in range(n)]
    # inputs untouched
    assert states[:, 0, 0].tolist() == [1, 2, 3, 4]


def test_block_states_follow_seeding_formula():
    seed = 987654321
    key = s_hash64(seed)
    blocks = np.array([0, 1, 5, 2**50 - 1], dtype=np.uint64)
    s0, s1, s2, s3 = _block_states(key, blocks)
    assert s0.shape == (4, 16) and s0.dtype == np.uint32
    for i, b in enumerate(blocks.tolist()):
        for lane in range(16):
            assert [int(s0[i, lane]), int(s1[i, lane]), int(s2[i, lane]), int(s3[i, lane])] \
                == s_lane_state(seed, b, lane)


@pytest.mark.parametrize("seed,b", [(0, 0), (42, 3), (M64, 1)])
def test_whole_block_against_scalar(seed, b):
    assert np.array_equal(draws(seed, b * 16384, 16384), s_block_draws(seed, b))


def test_individual_draws_against_scalar():
    seed = 2024
    for g in [0, 1, 15, 16, 17, 63, 64, 16383, 16384, 16384 + 64 * 255 + 63, 5 * 16384 + 777,
              2**64 - 1, 2**64 - 16384, 2**63 + 12345]:
        assert int(draws(seed, g, 1)[0]) == s_draw(seed, g), g
    # a range ending exactly at 2^64
    got = draws(seed, 2**64 - 40, 40)
    assert got.tolist() == [s_draw(seed, g) for g in range(2**64 - 40, 2**64)]


# ---------------------------------------------------------------------------------------------
# (3) Chunk consistency.
# ---------------------------------------------------------------------------------------------


def test_draws_chunk_consistency():
    s = 123456789
    full = draws(s, 0, 40000)
    assert full.dtype == np.uint32 and full.shape == (40000,)
    ranges = [(0, 1), (0, 40000), (5, 21), (15, 17), (100, 16384), (16383, 16385), (16000, 17000),
              (1, 32768), (16384, 32768), (16385, 32769), (777, 39999), (32767, 40000),
              (39999, 40000), (20000, 20000)]
    for a, b in ranges:
        part = draws(s, a, b - a)
        assert part.dtype == np.uint32 and part.shape == (b - a,)
        assert np.array_equal(full[a:b], part), (a, b)


def test_draws_depend_on_seed():
    assert not np.array_equal(draws(0, 0, 64), draws(1, 0, 64))


def test_draws_argument_checks():
    with pytest.raises(ValueError):
        draws(0, 2**64 - 1, 2)
    with pytest.raises(ValueError):
        draws(-1, 0, 1)
    with pytest.raises(ValueError):
        draws(2**64, 0, 1)
    assert draws(0, 2**64, 0).shape == (0,)
    # draws() caches its results: the checks still come first, and a seed that is no integer
    # is refused, not truncated into a cache key
    with pytest.raises(TypeError):
        draws(1.5, 0, 1)
    with pytest.raises(TypeError):
        draws(0, 0.0, 1)


def test_draws_cache_hands_out_independent_copies():
    a = draws(7, 100, 300)
    expected = a.copy()
    a[:] = 0  # the caller owns its result ...
    b = draws(7, 100, 300)  # ... and the cache is not changed by what it does with it
    assert b is not a and b.flags.writeable
    assert np.array_equal(b, expected) and expected.any()
    assert np.array_equal(draws(np.uint64(7), np.int64(100), 300), expected)  # same key


# ---------------------------------------------------------------------------------------------
# (4) Threshold and kept fraction.
# ---------------------------------------------------------------------------------------------


def test_threshold():
    assert threshold(0.5) == 2**31
    assert threshold(0.25) == 3 * 2**30
    assert threshold(1e-12) == 2**32 - 1  # clamped
    assert threshold(2.0**-34) == 2**32 - 1
    assert threshold(1 - 2.0**-53) == 0  # keep = 2^-53: rounds to 0
    # keep * 2^32 with an exact fractional part: round half up, exactly
    assert threshold(1 - 1000.25 * 2.0**-32) == 1000
    assert threshold(1 - 1000.5 * 2.0**-32) == 1001
    assert threshold(1 - 1000.75 * 2.0**-32) == 1001
    assert threshold(0.1) == 3865470566  # 0.9 * 2^32 = 3865470566.4
    for p in [0.3, 0.1, 0.7, 0.999, 1e-9, 0.123456789, 2.0**-33, 1 - 1e-10]:
        keep = 1.0 - p
        # plain binary64 evaluation, which the spec says is exact
        expect = min(math.floor(keep * 4294967296.0 + 0.5), 2**32 - 1)
        assert threshold(p) == expect, p
        assert abs(threshold(p) / 2**32 - (1 - p)) <= 2.0**-33 + 1e-16 or p < 2.0**-33


def test_kept_fraction_binomial():
    n, p = 200000, 0.3
    mask = keep_mask((400, 500), p, seed=31337)
    assert mask.dtype == np.bool_ and mask.shape == (400, 500)
    q = threshold(p) / 2**32
    sigma = math.sqrt(n * q * (1 - q))
    assert abs(int(mask.sum()) - n * q) < 5 * sigma


def test_keep_mask_matches_draws_and_offset():
    p, seed = 0.4, 99
    thr = threshold(p)
    m = keep_mask((7, 11, 13), p, seed, offset=16380)
    u = (draws(seed, 16380, 7 * 11 * 13) ^ np.uint32(0x80000000)).astype(np.int64)
    assert np.array_equal(m.ravel(), u < thr)
    # offset shifts the stream
    big = keep_mask(5000, p, seed)
    assert np.array_equal(keep_mask(100, p, seed, offset=1234), big[1234:1334])


def test_keep_mask_extremes():
    assert keep_mask((3, 4), 0.0, 5).all()
    assert not keep_mask((3, 4), 1.0, 5).any()
    assert keep_mask((3, 4), 0.0, 5).shape == (3, 4)
    assert keep_mask((0, 4), 0.5, 5).shape == (0, 4)
    assert keep_mask((), 0.5, 5).shape == ()


def test_packed_mask():
    shape, p, seed = (3, 7), 0.5, 11
    m = keep_mask(shape, p, seed).ravel()
    packed = packed_mask(shape, p, seed)
    assert packed.dtype == np.uint8 and packed.shape == (3,)
    for i in range(m.size):
        assert bool((packed[i // 8] >> (i % 8)) & 1) == bool(m[i])
    # padding bits are zero
    assert packed[2] >> 5 == 0


# ---------------------------------------------------------------------------------------------
# (5) dropout_ref semantics.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_ref_values(dtype):
    p, seed = 0.3, 4242
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 53)).astype(dtype)
    y = dropout_ref(x, p, seed)
    assert y.dtype == dtype and y.shape == x.shape and y.flags.c_contiguous
    m = keep_mask(x.shape, p, seed)
    scale = dtype(np.float64(1.0) / np.float64(1.0 - p))
    assert np.array_equal(y[m], x[m] * scale)
    assert np.all(y[~m] == 0) and not np.signbit(y[~m]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_ref_nan_inf_dropped_to_positive_zero(dtype):
    p, seed = 0.5, 77
    n = 4096
    x = np.empty(n, dtype=dtype)
    x[0::4] = np.nan
    x[1::4] = np.inf
    x[2::4] = -np.inf
    x[3::4] = -0.0
    y = dropout_ref(x, p, seed)
    m = keep_mask(n, p, seed)
    assert (~m).any() and m.any()
    dropped = y[~m]
    assert np.all(dropped == 0) and not np.signbit(dropped).any()
    kept_x, kept_y = x[m], y[m]
    assert np.array_equal(np.isnan(kept_y), np.isnan(kept_x))
    fin = ~np.isnan(kept_x)
    assert np.array_equal(kept_y[fin], kept_x[fin])  # inf*scale = inf, -0.0*scale = -0.0
    assert np.array_equal(np.signbit(kept_y[fin]), np.signbit(kept_x[fin]))


def test_dropout_ref_layout_independent():
    p, seed = 0.25, 5
    x = np.arange(6 * 7, dtype=np.float64).reshape(6, 7) + 1
    xf = np.asfortranarray(x)
    xs = np.arange(6 * 14, dtype=np.float64).reshape(6, 14)[:, ::2] + 1  # strided view
    y = dropout_ref(x, p, seed)
    assert np.array_equal(dropout_ref(xf, p, seed), y)
    assert dropout_ref(xf, p, seed).flags.c_contiguous
    assert np.array_equal(dropout_ref(xs, p, seed) == 0, y == 0)
    # transposed view: mask follows the logical C order of the view, not memory order
    xt = x.T
    assert np.array_equal(dropout_ref(xt, p, seed) == 0, ~keep_mask(xt.shape, p, seed))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_ref_p0_copy_p1_zeros(dtype):
    x = np.array([[1.5, -0.0, np.nan], [np.inf, -np.inf, 3.0]], dtype=dtype)
    x = np.asfortranarray(x)
    y0 = dropout_ref(x, 0.0, 1)
    assert y0.dtype == dtype and y0.flags.c_contiguous
    assert y0.tobytes() == np.ascontiguousarray(x).tobytes()  # bit-exact copy
    assert y0 is not x and not np.shares_memory(y0, x)
    y1 = dropout_ref(x, 1.0, 1)
    assert y1.dtype == dtype and y1.shape == x.shape
    assert np.all(y1 == 0) and not np.signbit(y1).any()


def test_dropout_ref_does_not_modify_input_and_handles_0d():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    dropout_ref(x, 0.5, 3)
    assert np.array_equal(x, before)
    y = dropout_ref(np.array(2.0, dtype=np.float32), 0.5, 3)
    assert y.shape == () and y.dtype == np.float32
    assert float(y) in (0.0, 4.0)


def test_dropout_ref_overflow_is_silent():
    # huge x times scale overflows to inf in the array's dtype: a legitimate result, no warning
    x = np.full(64, np.finfo(np.float32).max, dtype=np.float32)
    y = dropout_ref(x, 0.5, 1)
    m = keep_mask(64, 0.5, 1)
    assert np.all(np.isposinf(y[m])) and np.all(y[~m] == 0)
    # keep = 2^-53 (p = 1 - 2^-53): threshold 0, so everything is dropped although p < 1
    p = 1 - 2.0**-53
    assert p < 1.0 and threshold(p) == 0
    y = dropout_ref(np.ones(64, dtype=np.float32), p, 1)
    assert np.all(y == 0) and not np.signbit(y).any()


# ---------------------------------------------------------------------------------------------
# The normal stream ("Normal numbers"): words from scalar lanes, the float32 transform against
# float64 Box-Muller from the same words.
# ---------------------------------------------------------------------------------------------
NORMAL_DOMAIN = 0xBB67AE8584CAA73B


def s_normal_word(seed, g):
    """word(g): output (g & 4095) >> 4 of lane g & 15 of block g >> 12, lanes keyed by keyN."""
    keyn = s_hash64(s_hash64(seed) ^ NORMAL_DOMAIN)
    b, j = g >> 12, g & 4095
    lane = j & 15
    w_a = s_hash64(keyn ^ s_hash64(32 * b + 2 * lane))
    w_b = s_hash64(keyn ^ s_hash64(32 * b + 2 * lane + 1))
    state = [w_a & M32, w_a >> 32, w_b & M32, w_b >> 32]
    if not any(state):
        state[0] = 1
    rng = ScalarXoshiro128pp(*state)
    for _ in range(j >> 4):
        rng.next()
    return rng.next()


@pytest.mark.parametrize("seed", [0, 7, M64])
def test_normal_words_match_scalar_lanes(seed):
    gs = [0, 1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096 + 2000, 2**40 + 5, M64 - 1, M64]
    for g in gs:
        assert normal_words(seed, g, 1)[0] == s_normal_word(seed, g), g
    assert normal_words(seed, 4090, 12).tolist() == [s_normal_word(seed, g)
                                                     for g in range(4090, 4102)]


def test_normals_pair_even_and_odd_indices_whatever_the_offset():
    """normals(seed, o, n) is the transform of the words of the pairs (2m, 2m + 1) that hold
    o .. o + n - 1, cut to n: an odd offset starts with the second value of a pair."""
    whole = normals_from_words(normal_words(4, 4094, 12))
    for o in range(4094, 4106):
        for n in range(0, 4106 - o):
            np.testing.assert_array_equal(normals(4, o, n).view(np.uint32),
                                          whole[o - 4094:o - 4094 + n].view(np.uint32))


def test_float32_transform_agrees_with_float64_box_muller():
    """A few float32 ulps (measured: at most 4.64 over 2e7 words, extreme words included),
    relative to each value, so also for values near 0 and in the tail."""
    rng = np.random.default_rng(5)
    edge = np.array([0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1, 2**29, 2**29 - 1,
                     3 * 2**29, 3 * 2**29 + 1], dtype=np.uint32)
    a, b = np.meshgrid(edge, edge, indexing="ij")
    w = np.concatenate([np.stack([a.ravel(), b.ravel()], 1).ravel(),
                        rng.integers(0, 2**32, size=2**18, dtype=np.uint32)])
    z32 = normals_from_words(w).astype(np.float64)
    z64 = normals_from_words_f64(w)
    ulp = np.spacing(np.abs(z64).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(z32 - z64) / ulp) <= 6
    # the float64 twin itself: r^2 = -2 ln u and the angle, recomputed with Python's math
    for i in range(0, 40, 2):
        u = (int(w[i]) + 0.5) / 2**32
        theta = 2 * math.pi * (int(w[i + 1]) + 0.5) / 2**32
        r = math.sqrt(-2 * math.log(u))
        assert z64[i] == pytest.approx(r * math.cos(theta), rel=1e-9, abs=1e-9)
        assert z64[i + 1] == pytest.approx(r * math.sin(theta), rel=1e-9, abs=1e-9)
