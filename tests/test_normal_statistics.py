"""The counter-based normals of gaussian_dropout and gaussian_noise (docs/rng.md, "Normal numbers").

Three families, as for the masks:

* exactness: the compiled kernel (``_kernels.apply_variant`` with OP_GADD on zeros, c0 = 1, which
  returns the normals themselves) equals ``reference.normals`` on every kernel path, for offsets
  that start mid-block and mid-pair, odd lengths and any split of a range; the C header alone,
  built for the baseline, AVX2 and AVX-512, equals ``reference.normals_from_words`` on the
  extreme words;
* accuracy: the float32 transform against float64 Box-Muller on the same words (a few ulps
  everywhere, the extreme words included), its largest value, the exact tail probabilities of
  its output against the normal law up to 6.5 sigma, and no lattice (the radius strictly
  decreases near both ends of the word range);
* statistics on fixed seeds: Kolmogorov-Smirnov against N(0, 1), moments, tail frequencies
  beyond 3, 4 and 5 sigma, distinct values near 0 and in the tails, uniform angle and
  uncorrelated values within pairs, independence across seeds, offsets and blocks.

Statistical thresholds: each check is a test at false-alarm rate ALPHA = 1e-6 for independent
N(0, 1) values (binomial counts with the Chernoff bound, z-scores with |z| <= 4.89, p-values
of SciPy's KS and chi-square tests >= ALPHA); all seeds are fixed, so the file is deterministic.
"""
import functools
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import reference
from cdrop import _kernels

ALPHA = 1e-6
Z_CRIT = 4.8916  # two-sided N(0, 1) quantile: erfc(4.8916 / sqrt 2) = 1.0e-6
# Normals per statistical sample.  2^20 (8 MiB as float64), not more: arrays of tens of MiB
# freed by this module raise glibc's mmap threshold and leave the process holding the memory,
# which hides the 16 KiB-per-call leak that tests/test_resources.py's teeth test makes.
N = 1 << 20
REPO = Path(__file__).resolve().parent.parent
ULPS = 6  # float32 transform vs float64 Box-Muller; 4.64 is the largest seen on 2e7 words
R_MAX = math.sqrt(66 * math.log(2))  # r at a = 0: u = 2^-33, -2 ln u = 66 ln 2


def normals(seed, offset, n, num_threads=1):
    """The kernel's normals: OP_GADD computes 0 + 1 * z, which is z exactly (z is never 0)."""
    x = np.zeros(n, dtype=np.float32)
    out = np.empty_like(x)
    assert _kernels.apply_variant(_kernels.OP_GADD, x, out, seed, offset, 0.5, num_threads,
                                  c0=1.0)
    return out


def _bits(z):
    return np.asarray(z, dtype=np.float32).view(np.uint32)


def extreme_words():
    """Radius and angle words near every edge: 0, 1, 2, ..., 2^32 - 1 and below, powers of two
    and their neighbours, the octant edges k 2^29 and their neighbours, the octant middles."""
    s = set(range(512)) | {2**32 - 1 - k for k in range(512)}
    s |= {(1 << e) + d for e in range(32) for d in (-2, -1, 0, 1, 2)}
    s |= {(o << 29) + d for o in range(1, 8) for d in range(-3, 4)}
    s |= {(o << 29) | (1 << 28) | d for o in range(8) for d in range(4)}
    s |= {(o << 29) | 0x1FFFFFFF for o in range(8)}
    return np.array(sorted(v for v in s if 0 <= v < 2**32), dtype=np.uint32)


SMALL = np.array([0, 1, 2, 3, 2**16, 2**24 - 1, 2**24, 2**31 - 1, 2**31, 2**31 + 1]
                 + [(o << 29) + d for o in range(8) for d in (-1, 0, 1) if (o << 29) + d >= 0]
                 + [(o << 29) | 0x1FFFFFFF for o in range(8)]
                 + [2**32 - 3, 2**32 - 2, 2**32 - 1], dtype=np.uint32)


@functools.lru_cache(maxsize=1)
def word_pairs():
    """Every extreme word as radius word with a few extreme angle words (SMALL), and the other
    way round, then 2^19 random words: interleaved (a, b) words, ~0.9 million in all."""
    e = extreme_words()
    a = np.concatenate([np.repeat(e, SMALL.size), np.repeat(SMALL, e.size)])
    b = np.concatenate([np.tile(SMALL, e.size), np.tile(e, SMALL.size)])
    rnd = np.random.default_rng(11).integers(0, 2**32, size=2**19, dtype=np.uint32)
    w = np.empty(2 * a.size, dtype=np.uint32)
    w[0::2], w[1::2] = a, b
    w = np.concatenate([w, rnd])
    w.setflags(write=False)
    return w


def radius(a):
    """r(a) of the float32 transform: with angle word 0, z0 = r * cos(pi 2^-32), and that
    cosine polynomial is exactly 1.0 in float32, so z0 is r itself.  In pieces of 2^17 words,
    to keep the temporaries small (see N)."""
    a = np.asarray(a, dtype=np.uint32)
    out = np.empty(a.size, dtype=np.float64)
    for i in range(0, a.size, 1 << 17):
        piece = a[i:i + (1 << 17)]
        w = np.zeros(2 * piece.size, dtype=np.uint32)
        w[0::2] = piece
        out[i:i + piece.size] = reference.normals_from_words(w)[0::2]
    return out


def check_count(k, n, q, what):
    """K ~ Binomial(n, q): two-sided Chernoff test at false-alarm rate ALPHA (rigorous)."""
    x = k / n
    d = (x * math.log(x / q) if x > 0 else 0.0) + (
        (1 - x) * math.log((1 - x) / (1 - q)) if x < 1 else 0.0)
    assert n * d <= math.log(2 / ALPHA), f"{what}: {k} of {n}, expected {n * q:.1f}"


def check_z(z, what):
    assert abs(z) <= Z_CRIT, f"{what}: z = {z:.2f}, |z| > {Z_CRIT}"


def corr_z(x, y):
    """sqrt(n) * sample correlation of two standardised samples: N(0, 1) when independent."""
    x = (x - x.mean()) / x.std()
    y = (y - y.mean()) / y.std()
    return float(np.dot(x, y) / math.sqrt(x.size))


@functools.lru_cache(maxsize=1)
def reference_of_pairs():
    z = reference.normals_from_words(word_pairs())
    z.setflags(write=False)
    return z


# ---------------------------------------------------------------------------------------------
# Exactness: kernel == reference == C header on every instruction set.
# ---------------------------------------------------------------------------------------------
CASES = [
    (0, 0, 1), (0, 0, 2), (0, 1, 1), (0, 1, 2), (1, 0, 4096), (1, 7, 4095), (2, 4095, 3),
    (3, 4096 * 5 + 17, 8193), (4, 2**40 + 4094, 10001), (5, 2**64 - 4099, 4099),
    (2**64 - 1, 123456789, 65537),
]


@pytest.mark.parametrize("seed,offset,n", CASES)
def test_kernel_normals_equal_reference_on_every_path(kernel_path, seed, offset, n):
    """Offsets mid-block and mid-pair (odd), odd lengths, the end of the index space."""
    want = reference.normals(seed, offset, n)
    np.testing.assert_array_equal(_bits(normals(seed, offset, n)), _bits(want))
    if n > 4096:
        np.testing.assert_array_equal(_bits(normals(seed, offset, n, num_threads=2)),
                                      _bits(want))


def test_any_split_of_a_range_gives_the_same_bits(kernel_path):
    seed, offset, n = 9, 3 * 4096 - 5, 3 * 4096 + 7
    whole = _bits(normals(seed, offset, n))
    np.testing.assert_array_equal(whole, _bits(reference.normals(seed, offset, n)))
    for cut in (1, 2, 3, 5, 16, 17, 4096, 4101, n - 1):
        parts = np.concatenate([normals(seed, offset, cut), normals(seed, offset + cut, n - cut)])
        np.testing.assert_array_equal(_bits(parts), whole, err_msg=f"cut at {cut}")


def test_normal_stream_is_not_the_mask_stream():
    """keyN = hash64(key ^ 0xBB67AE8584CAA73B): the words are not the lanes of the mask key."""
    key = reference.hash64(5)
    assert reference.normal_key(key) == reference.hash64(key ^ 0xBB67AE8584CAA73B)
    s = reference._block_states(key, np.array([0], dtype=np.uint64))
    mask_words = reference._lane_outputs(*s, 1)[0, 0]
    assert not np.array_equal(reference.normal_words(5, 0, 16), mask_words)


def _cpu_flags():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # pragma: no cover
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_c_header_equals_reference_on_extreme_words(isa, tmp_path):
    """cdrop/_src/normal.h built alone (tests/tools/normal_harness.c) with -O3
    -ffp-contract=off -fno-math-errno for each instruction set gives the reference's bits."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:  # pragma: no cover
        pytest.skip("no C compiler")
    need, flags = {"baseline": (set(), []), "avx2": ({"avx2", "fma"}, ["-mavx2", "-mfma"]),
                   "avx512": ({"avx512f", "avx512bw"}, ["-mavx512f", "-mavx512bw"])}[isa]
    if not need <= _cpu_flags():
        pytest.skip(f"this CPU has no {isa}")
    exe = tmp_path / "harness"
    src = REPO / "tests" / "tools" / "normal_harness.c"
    subprocess.run([cc, "-O3", "-ffp-contract=off", "-fno-math-errno", *flags,
                    f"-I{REPO / 'cdrop' / '_src'}", str(src), "-o", str(exe)], check=True)
    w = word_pairs()
    got = subprocess.run([str(exe), "transform"], input=w.tobytes(), capture_output=True,
                         check=True).stdout
    np.testing.assert_array_equal(np.frombuffer(got, dtype=np.uint32), _bits(reference_of_pairs()))


# ---------------------------------------------------------------------------------------------
# Accuracy of the transform.
# ---------------------------------------------------------------------------------------------
def test_transform_is_within_a_few_ulps_of_float64_box_muller():
    """On every pair of extreme words and 2^20 random pairs: the tail to its end, values near 0
    (angles near the axes), u near 1 (radius near 0), the octant edges."""
    w = word_pairs()
    z32 = reference_of_pairs().astype(np.float64)
    z64 = reference.normals_from_words_f64(w)
    ulp = np.spacing(np.abs(z64).astype(np.float32)).astype(np.float64)
    err = np.abs(z32 - z64) / ulp
    worst = int(np.argmax(err))
    assert err[worst] <= ULPS, (err[worst], w[worst & ~1], w[worst | 1], z32[worst], z64[worst])


def test_largest_value_is_the_radius_of_word_zero():
    z = np.abs(reference_of_pairs())
    r0 = radius([0])[0]
    assert z.max() == r0
    assert abs(r0 - R_MAX) <= 2 * np.spacing(np.float32(R_MAX))
    assert 6.76 < r0 < 6.77


def test_radius_has_no_lattice_at_either_end():
    """r strictly decreases in a over the 2^16 words at each end: in the tail (small a, where
    u is exact) and near r = 0 (u near 1, where 1 - u is taken from ~a, not from the float u,
    which would repeat each value 256 times and give r = 0 for the last 128 words)."""
    lo = radius(np.arange(2**16, dtype=np.uint32))
    hi = radius((2**32 - 2**16 + np.arange(2**16, dtype=np.uint64)).astype(np.uint32))
    assert np.all(np.diff(lo) < 0) and np.all(np.diff(hi) < 0)
    assert hi[-1] == np.float32(2.0**-16)  # a = 2^32 - 1: 1 - u = 2^-33, r = sqrt(2^-32)


@pytest.mark.parametrize("t", [3.0, 4.0, 5.0, 5.5, 6.0, 6.5])
def test_tail_probabilities_are_the_normal_law(t):
    """Exact, not sampled: P(r > t) counts the words a with r(a) > t (r does not increase in
    a), against exp(-t^2/2); P(z > t) sums, over those a, the share of angle words b with
    r cos(theta_b) > t, against the normal tail.  A 32-bit u moves each probability by up to
    one word in `count`, hence the tolerance 1/count (plus 1e-5 for float32 rounding)."""
    expected = 2**32 * math.exp(-t * t / 2)
    a0 = int(expected)
    window = np.arange(max(0, a0 - 2000), a0 + 2000, dtype=np.uint64).astype(np.uint32)
    r = radius(window)
    assert np.all(np.diff(r) <= 0)
    assert r[0] > t >= r[-1]
    count = int(window[0]) + int(np.count_nonzero(r > t))
    assert abs(count / expected - 1) <= 1 / count + 1e-5, (count, expected)
    if count > 2_000_000:
        return  # 3 sigma: the angle sum would take seconds; the sample tests cover it
    rr = radius(np.arange(count, dtype=np.uint32))
    half = np.floor(2**32 * np.arccos(t / rr) / (2 * np.pi) + 0.5)  # b on one side of 0
    p_z = 2 * half.sum() / 2**64
    p_true = 0.5 * math.erfc(t / math.sqrt(2))
    assert abs(p_z / p_true - 1) <= 1 / count + 1e-5, (p_z, p_true)


# ---------------------------------------------------------------------------------------------
# Statistics of the kernel's stream (fixed seeds).
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample():
    return normals(2026, 12345, N).astype(np.float64)


def test_kolmogorov_smirnov(sample):
    stats = pytest.importorskip("scipy.stats")
    for part, what in ((sample, "all"), (sample[0::2], "first of pairs"),
                       (sample[1::2], "second of pairs")):
        p = stats.kstest(part, "norm").pvalue
        assert p >= ALPHA, f"{what}: KS p-value {p:.2e}"


def test_moments(sample):
    n = sample.size
    m = sample.mean()
    c = sample - m
    var = np.mean(c**2)
    skew = np.mean(c**3) / var**1.5
    kurt = np.mean(c**4) / var**2 - 3
    check_z(m * math.sqrt(n), "mean")
    check_z((var - 1) / math.sqrt(2 / n), "variance")
    check_z(skew / math.sqrt(6 / n), "skewness")
    check_z(kurt / math.sqrt(24 / n), "excess kurtosis")


def test_tail_frequencies():
    """|z| beyond 3, 4 and 5 sigma in 2^26 normals against erfc(k / sqrt 2) (about 181,000,
    4,250 and 38 expected)."""
    n, counts = 0, {3: 0, 4: 0, 5: 0}
    for chunk in range(64):
        z = np.abs(normals(77, chunk * N, N))
        n += z.size
        for k in counts:
            counts[k] += int(np.count_nonzero(z > k))
    for k, c in counts.items():
        check_count(c, n, math.erfc(k / math.sqrt(2)), f"|z| > {k}")


def test_distinct_values_near_zero_and_in_the_tails(sample):
    """A lattice (too few distinct radii or angles) would repeat values."""
    assert np.count_nonzero(sample == 0) == 0
    for sel, what in ((np.abs(sample) < 4e-3, "near 0"), (np.abs(sample) > 3, "tails")):
        v = sample[sel]
        assert v.size > 1000, what
        assert np.unique(v).size >= v.size - 2, f"{what}: {v.size - np.unique(v).size} repeats"


def test_angle_uniform_and_radius_exponential(sample):
    stats = pytest.importorskip("scipy.stats")
    z0, z1 = sample[0::2], sample[1::2]
    angle = np.arctan2(z1, z0)
    counts = np.histogram(angle, bins=256, range=(-np.pi, np.pi))[0]
    assert stats.chisquare(counts).pvalue >= ALPHA
    r2 = z0 * z0 + z1 * z1
    assert stats.kstest(r2, "expon", args=(0, 2)).pvalue >= ALPHA


def test_values_of_a_pair_are_independent(sample):
    stats = pytest.importorskip("scipy.stats")
    z0, z1 = sample[0::2], sample[1::2]
    check_z(corr_z(z0, z1), "corr(z0, z1)")
    check_z(corr_z(z0 * z0, z1 * z1), "corr(z0^2, z1^2)")
    check_z(corr_z(np.abs(z0), np.abs(z1)), "corr(|z0|, |z1|)")
    # the joint law on a 16 x 16 grid of equiprobable cells
    cells = np.minimum((stats.norm.cdf(np.stack([z0, z1])) * 16).astype(np.int64), 15)
    counts = np.bincount(cells[0] * 16 + cells[1], minlength=256)
    assert stats.chisquare(counts).pvalue >= ALPHA


@pytest.mark.parametrize("lag", [1, 2, 3, 16, 17, 4095, 4096, 4097])
def test_no_serial_correlation(sample, lag):
    """Neighbours, the same lane one step on (16), the next block (4096)."""
    check_z(corr_z(sample[:-lag], sample[lag:]), f"lag {lag}")
    check_z(corr_z(sample[:-lag] ** 2, sample[lag:] ** 2), f"lag {lag}, squares")


@pytest.mark.parametrize("other", [(2027, 12345), (2025, 12345), (2026, 12346),
                                   (2026, 12345 + 2**40), (2026, 12345 + N)])
def test_independent_across_seeds_and_offsets(sample, other):
    seed, offset = other
    z = normals(seed, offset, N).astype(np.float64)
    check_z(corr_z(sample, z), f"seed {seed}, offset {offset}")
    check_z(corr_z(sample**2, z**2), f"seed {seed}, offset {offset}, squares")


def test_normals_differ_from_the_mask_bytes_of_the_same_seed():
    """The normal stream is keyed apart from the mask stream: |corr| of z with the mask's
    draws is at noise level."""
    z = normals(3, 0, N).astype(np.float64)
    u = reference.draws(3, 0, N).astype(np.float64)
    check_z(corr_z(z, u), "z vs mask draws")
