"""Statistical quality of cdrop's keep masks: a seeded, deterministic battery.

What is checked (docs/rng.md defines the stream; q = reference.threshold(p) / 2**32 is the exact
keep probability of every element):

* kept fraction for p in {1e-4, 0.01, 0.1, 0.5, 0.9, 0.999}, through ``dropout_mask`` (bool and
  packed) and ``dropout`` on both kernel paths, against Binomial(n, q);
* kept counts by position inside the RNG block (position j of 16384, lane, byte of the lane's
  output, step, position in a step, bit of a packed byte), at an aligned and a misaligned offset;
  near block edges against the rest; around the seams of a two-thread call;
* serial correlation at lags 1, 2, 3, 4, 8, 16, 63, 64, 65, 256, 2**14 - 1, 2**14, 2**14 + 1 and
  between the same position of neighbouring blocks (and the last step of a block against the
  first step of the next one);
* independence of masks from consecutive ``Dropout`` calls, consecutive ``seed=None`` calls,
  adjacent seeds 0, 1, 2, ..., and offsets o / o + 1 / o + 2**14;
* the length distribution of runs of kept and of dropped elements against the geometric law.

How thresholds are chosen.  Every check is a hypothesis test with false-alarm rate at most
ALPHA = 1e-6 for a generator that produces independent Bernoulli(q) decisions:

* counts: Binomial(n, q) with the Chernoff bound P(K >= k) <= exp(-n D(k/n || q)) (D the binary
  Kullback-Leibler divergence), and the same for the lower tail.  The check fails when
  n D(k/n || q) > ln(2 / ALPHA), so each tail has false-alarm rate <= ALPHA / 2 *rigorously*,
  without a normal approximation (this matters for p = 1e-4 and p = 0.999, where the rarer outcome
  has only a few hundred expected occurrences).  For q = 1/2 the bound is about 5.4 sigma.
* chi-square statistics: the upper tail of the chi-square law, evaluated with the regularized
  incomplete gamma function implemented below (no SciPy dependency; ``test_chi2_sf_*`` checks it
  against closed forms, and against SciPy when SciPy happens to be installed).  Every cell has
  at least MIN_EXPECTED = 50 expected occurrences of the rarer outcome, where the chi-square law
  is an accurate approximation of the cell-count statistic.  Fail when the p-value < ALPHA.
  Alongside, the worst single cell gets the Chernoff test at level ALPHA / #cells (Bonferroni),
  which is more sensitive to one biased lane or position than the chi-square.
* correlations: with c_i = x_i - q (x_i the 0/1 decision), S = sum_i c_i c'_i over n pairs has
  mean 0 and variance exactly n (q(1-q))**2 under independence, also for overlapping pairs
  (x_i x_{i+L}), because the products are uncorrelated; S is a martingale sum, so
  z = S / (sqrt(n) q (1 - q)) is asymptotically N(0, 1).  For 0/1 variables with known marginals
  this is the same test as a 2x2 contingency table.  Fail when the two-sided normal p-value
  erfc(|z| / sqrt 2) < ALPHA, i.e. |z| > 4.89.

The file makes about 550 such checks, so a correct generator run on fresh random seeds would fail
some check with probability below 550 * 1e-6 < 6e-4.  All seeds are fixed, so the suite is
deterministic anyway: the bounds guard against generator, threshold, seeding and chunking bugs,
not against bad luck.  Sizes keep the whole file well under a minute on a 2-core machine.
"""
import math

import numpy as np
import pytest

import cdrop
import reference

ALPHA = 1e-6
Z_CRIT = 4.8916  # two-sided N(0, 1) quantile: erfc(4.8916 / sqrt 2) = 1.0e-6
MIN_EXPECTED = 50
BLOCK = 2**14
LANES = 16
GROUP = 64  # elements per lane step: 4 bytes of each of the 16 lane outputs

PS_ALL = [1e-4, 0.01, 0.1, 0.5, 0.9, 0.999]


def _q(p):
    """Exact keep probability of one element (docs/rng.md section 6)."""
    return reference.threshold(p) / 2**32


# ---------------------------------------------------------------------------------------------
# Distribution functions (self-contained: SciPy is not a test dependency).
# ---------------------------------------------------------------------------------------------
def _kl(x, q):
    """Binary Kullback-Leibler divergence D(x || q), 0 < q < 1, 0 <= x <= 1."""
    d = 0.0
    if x > 0:
        d += x * math.log(x / q)
    if x < 1:
        d += (1 - x) * math.log((1 - x) / (1 - q))
    return d


def _gammq(a, x):
    """Regularized upper incomplete gamma function Q(a, x) (Numerical Recipes' gammq).

    Series for P(a, x) when x < a + 1, Lentz's continued fraction for Q otherwise; both
    converge in O(sqrt(a)) terms for x near a, which is fine for a up to ~10**4.
    """
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(100000):
            ap += 1
            term *= x / ap
            total += term
            if term < total * 1e-17:
                return max(0.0, 1.0 - total * math.exp(log_front))
        raise ArithmeticError("gammq series did not converge")
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = d if abs(d) > tiny else tiny
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            return math.exp(log_front) * h
    raise ArithmeticError("gammq continued fraction did not converge")


def chi2_sf(x, df):
    """P(X >= x) for X ~ chi-square with `df` degrees of freedom."""
    return _gammq(df / 2, x / 2)


# ---------------------------------------------------------------------------------------------
# The three kinds of checks.
# ---------------------------------------------------------------------------------------------
def check_binomial(k, n, q, what):
    """K ~ Binomial(n, q): two-sided Chernoff test, false-alarm rate <= ALPHA (rigorous)."""
    k, n = int(k), int(n)
    assert 0 < n and 0 < q < 1
    stat = n * _kl(k / n, q)
    limit = math.log(2 / ALPHA)
    sd = math.sqrt(n * q * (1 - q))
    assert stat <= limit, (f"{what}: {k} of {n}, expected {n * q:.1f} (sd {sd:.1f}); "
                           f"n*KL = {stat:.2f} > {limit:.2f}")


def check_cells(counts, trials, q, what):
    """Independent cells, count_i ~ Binomial(trials_i, q): two tests, each with false-alarm
    rate <= ALPHA.

    * the worst cell: the Chernoff test of check_binomial on every cell at level ALPHA / #cells
      (Bonferroni, rigorous), which is the most sensitive to one biased cell (a lane, a position);
    * chi-square with df = #cells, the most sensitive to a bias spread over many cells; it
      fails when the p-value < ALPHA.  Each cell must expect >= MIN_EXPECTED of both outcomes,
      so that the chi-square law is accurate; that is a design check on the test itself.
    """
    counts = np.asarray(counts, dtype=np.float64).ravel()
    trials = np.broadcast_to(np.asarray(trials, dtype=np.float64), counts.shape)
    smallest = float(trials.min()) * min(q, 1 - q)
    assert smallest >= MIN_EXPECTED, f"{what}: test too small ({smallest:.1f} expected per cell)"
    x = counts / trials
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (np.where(x > 0, x * np.log(x / q), 0.0)
              + np.where(x < 1, (1 - x) * np.log((1 - x) / (1 - q)), 0.0))
    stat = trials * kl
    worst = int(np.argmax(stat))
    limit = math.log(2 * counts.size / ALPHA)
    assert stat[worst] <= limit, (f"{what}: cell {worst} kept {counts[worst]:.0f} of "
                                  f"{trials[worst]:.0f}, expected {trials[worst] * q:.1f}; "
                                  f"n*KL = {stat[worst]:.2f} > {limit:.2f}")
    x2 = float(np.sum((counts - trials * q) ** 2 / (trials * q * (1 - q))))
    df = counts.size
    pval = chi2_sf(x2, df)
    assert pval >= ALPHA, f"{what}: chi2 = {x2:.1f} with {df} df, p = {pval:.2e} < {ALPHA}"


def check_multinomial(counts, probs, what):
    """Multinomial counts (total fixed) against cell probabilities: chi-square, df = cells - 1."""
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    total = counts.sum()
    expected = total * probs
    assert expected.min() >= MIN_EXPECTED, f"{what}: test too small ({expected.min():.1f})"
    x2 = float(np.sum((counts - expected) ** 2 / expected))
    df = counts.size - 1
    pval = chi2_sf(x2, df)
    assert pval >= ALPHA, (f"{what}: chi2 = {x2:.1f} with {df} df, p = {pval:.2e} < {ALPHA}; "
                           f"counts {counts.astype(int).tolist()} expected "
                           f"{np.round(expected).astype(int).tolist()}")


def corr_z(a, b, q):
    """z of sum (a_i - q)(b_i - q) for 0/1 arrays of equal length, N(0, 1) under independence.

    Computed from integer counts, sum (a-q)(b-q) = N11 - q (Na + Nb) + n q**2, which is exact
    in binary64 at these sizes and much faster than float arrays."""
    a = np.asarray(a, dtype=bool).ravel()
    b = np.asarray(b, dtype=bool).ravel()
    n = a.size
    assert b.size == n and n > 0
    n11 = np.count_nonzero(a & b)
    s = n11 - q * (np.count_nonzero(a) + np.count_nonzero(b)) + n * q * q
    return float(s) / (math.sqrt(n) * q * (1 - q))


def check_independent(a, b, q, what):
    z = corr_z(a, b, q)
    assert abs(z) <= Z_CRIT, f"{what}: correlation z = {z:.2f}, |z| > {Z_CRIT}"


def _mask(n, p, seed, offset=0, num_threads=None):
    return cdrop.dropout_mask(n, p, seed=seed, offset=offset, num_threads=num_threads)


# ---------------------------------------------------------------------------------------------
# Self-checks of the distribution functions.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [0.0, 0.5, 2.0, 10.0, 50.0, 120.0])
def test_chi2_sf_closed_forms(x):
    # df = 2: P(X >= x) = exp(-x/2); df = 1: erfc(sqrt(x/2)); df = 4: (1 + x/2) exp(-x/2).
    assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-12, abs=1e-300)
    assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-10, abs=1e-300)
    assert chi2_sf(x, 4) == pytest.approx((1 + x / 2) * math.exp(-x / 2), rel=1e-12, abs=1e-300)


def test_chi2_sf_large_df_normal_limit():
    # For df = 16384 the chi-square law is within a few percent of its Wilson-Hilferty normal
    # approximation even in the 1e-6 tail; a gross error of _gammq would show up here.
    df = 16384
    for z in (-3.0, 0.0, 2.0, 4.75):
        x = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
        expected = 0.5 * math.erfc(z / math.sqrt(2))
        assert chi2_sf(x, df) == pytest.approx(expected, rel=0.05)


def test_chi2_sf_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 15, 63, 255, 16384):
        for quantile in (0.5, 1e-3, 1e-6, 1e-9):
            x = float(stats.chi2.isf(quantile, df))
            assert chi2_sf(x, df) == pytest.approx(quantile, rel=1e-7)


def test_binomial_check_rejects_a_biased_count():
    # The Chernoff check must not be vacuous: 5.5 sigma off at q = 1/2 fails, 5.0 sigma passes.
    n, q = 10**6, 0.5
    sd = math.sqrt(n * q * (1 - q))
    check_binomial(round(n * q + 5.0 * sd), n, q, "5 sigma")
    with pytest.raises(AssertionError):
        check_binomial(round(n * q + 5.5 * sd), n, q, "5.5 sigma")


def test_checks_pass_numpy_bits_and_catch_defects():
    """Controls for the checks themselves, on NumPy's PCG64 (an unrelated generator, fixed
    seed): its Bernoulli(1/2) bits pass; small, known defects injected into them fail."""
    rng = np.random.Generator(np.random.PCG64(20240601))
    n, q = 2**21, 0.5
    a = rng.random(n) < q
    b = rng.random(n) < q
    check_independent(a, b, q, "PCG64 vs PCG64")
    check_independent(a[:-1], a[1:], q, "PCG64 lag 1")
    # b agreeing with a 2% more often than chance: z = 0.04 sqrt(n) / ... ~ 29 sigma.
    leak = np.where(rng.random(n) < 0.04, a, b)
    with pytest.raises(AssertionError):
        check_independent(a, leak, q, "leaky copy")
    # Per-position cells: one position of 64 kept 60% of the time instead of 50%.
    grid = (rng.random((2**14, 64)) < q)
    check_cells(grid.sum(axis=0), 2**14, q, "PCG64 positions")
    grid[:, 5] = rng.random(2**14) < 0.6
    with pytest.raises(AssertionError):
        check_cells(grid.sum(axis=0), 2**14, q, "biased position")
    # One cell of 16384 off by 8 sigma: invisible to the chi-square (it adds ~64 to a statistic
    # with mean 16384 and sd 181), caught by the worst-cell test.
    cells = rng.binomial(1024, q, size=2**14).astype(np.float64)
    check_cells(cells, 1024, q, "PCG64 cells")
    cells[123] = 512 + 8 * 16
    with pytest.raises(AssertionError, match="cell 123"):
        check_cells(cells, 1024, q, "one bad cell")
    # Runs: forbid runs of ones longer than 12 (1 in 4096 runs); the chi-square sees the tail.
    lengths, values = _run_lengths(a)
    runs = lengths[values]
    probs = [0.5 ** k for k in range(1, 12)] + [0.5 ** 11]
    check_multinomial(np.bincount(np.minimum(runs, 12), minlength=13)[1:], probs, "PCG64 runs")
    capped = np.minimum(runs, 11)
    with pytest.raises(AssertionError):
        check_multinomial(np.bincount(capped, minlength=13)[1:], probs, "capped runs")


# ---------------------------------------------------------------------------------------------
# 1. Kept fraction.
# ---------------------------------------------------------------------------------------------
N_FRACTION = 2**22


@pytest.mark.parametrize("p", PS_ALL)
@pytest.mark.parametrize("seed", [0, 1, 2**63 + 5])
def test_kept_fraction(p, seed, kernel_path):
    """Kept count ~ Binomial(n, q) for the bool mask, the packed mask and dropout's output."""
    q = _q(p)
    n = N_FRACTION
    m = cdrop.dropout_mask(n, p, seed=seed)
    check_binomial(np.count_nonzero(m), n, q, f"mask p={p}")
    # An odd length and offset: the packed path's partial first and last bytes are counted.
    n_odd, off = n - 3, 2**40 + 5
    bits = cdrop.dropout_mask(n_odd, p, seed=seed, offset=off, packed=True)
    check_binomial(int(np.unpackbits(bits).sum()), n_odd, q, f"packed p={p}")
    y = cdrop.dropout(np.ones(n, dtype=np.float32), p, seed=seed + 1)
    check_binomial(np.count_nonzero(y), n, q, f"dropout p={p}")


@pytest.mark.parametrize("p", [0.01, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_of_ones_is_one(p, dtype):
    n = 10**6
    y = cdrop.dropout(np.ones(n, dtype=dtype), p, seed=77)
    scale = float(dtype(1 / (1 - p)))
    q = _q(p)
    # The mean is scale * K / n with K ~ Binomial(n, q): the same Chernoff test on K, recovered
    # from the sum (every kept value is exactly `scale`).
    k = float(np.sum(y, dtype=np.float64)) / scale
    assert abs(k - round(k)) < 1e-3  # the sum of K copies of `scale`, up to summation rounding
    check_binomial(round(k), n, q, f"mean of ones, p={p}")
    # and scale * q is within 2**-32 * scale of 1 (threshold rounding)
    assert abs(scale * q - 1) <= 2**-31 * scale + 1e-6


def test_tiny_p_drops_almost_nothing_but_drops():
    # p = 1e-9 is clamped to a drop probability of 2**-32 per element: over 2**24 elements the
    # number of drops is ~Poisson(1/256); P(more than 5) < 1e-14.
    m = cdrop.dropout_mask(2**24, 1e-9, seed=5)
    assert int(np.count_nonzero(~m)) <= 5


# ---------------------------------------------------------------------------------------------
# 2. No positional bias inside the RNG block, at block edges, at thread-chunk seams.
# ---------------------------------------------------------------------------------------------
N_BLOCKS = 4096
# Ways to cut a block position j (0..16383) into classes, as functions of j (docs/rng.md s. 3).
CLASSINGS = {
    "position in block": (lambda j: j, BLOCK),
    "lane": (lambda j: (j & 63) >> 2, LANES),
    "byte of the lane output": (lambda j: j & 3, 4),
    "step": (lambda j: j >> 6, BLOCK // GROUP),
    "position in step": (lambda j: j & 63, GROUP),
    "bit of a packed byte": (lambda j: j & 7, 8),
}


@pytest.mark.parametrize("offset", [0, 3 * BLOCK + 7777])
@pytest.mark.parametrize("p", PS_ALL)
def test_no_bias_by_position_in_block(p, offset):
    """Per-class kept counts are independent Binomial(trials, q): chi-square over the classes.

    The classes follow the global index g = offset + i (not i), so with a misaligned offset the
    array starts in the middle of a block and the classes are still the stream's.  A classing is
    used only where every class expects >= MIN_EXPECTED of the rarer outcome (the per-position
    one needs 0.1 <= p <= 0.9 with 4096 blocks).
    """
    q = _q(p)
    n = N_BLOCKS * BLOCK
    m = _mask(n, p, seed=2024, offset=offset)
    # Lay the mask out by (block, position) so that a column is one position of the block.
    start = offset % BLOCK
    grid = np.zeros((N_BLOCKS + 1) * BLOCK, dtype=bool)
    grid[start:start + n] = m
    per_position = grid.reshape(-1, BLOCK).sum(axis=0)
    trials_per_position = np.full(BLOCK, N_BLOCKS)  # each position once per block
    checked = 0
    for name, (cls, ncls) in CLASSINGS.items():
        classes = cls(np.arange(BLOCK))
        counts = np.bincount(classes, weights=per_position, minlength=ncls)
        trials = np.bincount(classes, weights=trials_per_position, minlength=ncls)
        if trials.min() * min(q, 1 - q) < MIN_EXPECTED:
            continue
        check_cells(counts, trials, q, f"{name}, p={p}, offset={offset}")
        checked += 1
    assert checked >= 3  # even p = 1e-4 / 0.999 get lane, byte, position in step, packed bit


@pytest.mark.parametrize("p", [0.5, 0.1, 0.01])
def test_block_edges_like_the_rest(p):
    """The first and last step (64 elements each) of every block, where the lanes are freshly
    seeded and where the next block's seeding starts, keep like the rest: one binomial check
    for the edges, one for the rest."""
    q = _q(p)
    n = N_BLOCKS * BLOCK
    m = _mask(n, p, seed=99).reshape(N_BLOCKS, BLOCK)
    edge = np.concatenate([m[:, :GROUP], m[:, -GROUP:]], axis=1)
    check_binomial(np.count_nonzero(edge), edge.size, q, f"block edges, p={p}")
    check_binomial(np.count_nonzero(m[:, GROUP:-GROUP]), N_BLOCKS * (BLOCK - 2 * GROUP), q,
                   f"block interiors, p={p}")


@pytest.mark.parametrize("kind", ["mask", "packed", "dropout"])
@pytest.mark.parametrize("p", [0.5, 0.1])
def test_thread_chunk_seams(kind, p):
    """A two-thread call on an array that starts mid-block and mid-byte: the chunks are whole
    blocks handed out statically, so there are 256 chunk seams, one of which is where thread 0
    stops and thread 1 starts (the packed path also moves each seam up to 7 elements, to a byte
    boundary).  Checks: the kept count in a window of +-256 elements around every seam (pooled),
    the whole array, and correlation of each element with its neighbour inside those windows."""
    q = _q(p)
    offset = 5 * BLOCK + 12345  # not a multiple of 8 either
    n = 256 * BLOCK - 1000
    seed = 31337
    if kind == "mask":
        m = _mask(n, p, seed, offset=offset, num_threads=2)
    elif kind == "packed":
        bits = cdrop.dropout_mask(n, p, seed=seed, offset=offset, packed=True, num_threads=2)
        m = np.unpackbits(bits, count=n, bitorder="little").astype(bool)
    else:
        m = cdrop.dropout(np.ones(n, dtype=np.float64), p, seed=seed, offset=offset,
                          num_threads=2) != 0
    check_binomial(np.count_nonzero(m), n, q, f"{kind}: whole array")
    seams = np.arange(BLOCK - (offset % BLOCK), n, BLOCK)  # local indices of block starts
    assert len(seams) == 256
    w = 256
    window = (seams[:, None] + np.arange(-w, w)[None, :]).ravel()
    window = window[(window >= 0) & (window < n)]
    check_binomial(np.count_nonzero(m[window]), window.size, q, f"{kind}: seam windows")
    inner = window[window + 1 < n]
    check_independent(m[inner], m[inner + 1], q, f"{kind}: neighbours at seams")
    # Element j of a block against element j of the next block, across every seam.
    rows = m[seams[0]:seams[0] + 254 * BLOCK].reshape(254, BLOCK)
    check_independent(rows[:-1], rows[1:], q, f"{kind}: same position, consecutive blocks")


# ---------------------------------------------------------------------------------------------
# 3. Serial correlation.
# ---------------------------------------------------------------------------------------------
LAGS = [1, 2, 3, 4, 8, 16, 63, 64, 65, 256, BLOCK - 1, BLOCK, BLOCK + 1]


@pytest.mark.parametrize("p", [0.5, 0.1, 0.9])
@pytest.mark.parametrize("offset", [0, 2**50 + 3 * BLOCK + 101])
def test_serial_correlation(p, offset):
    """x_i against x_{i+L} for the lags in LAGS: 1 (neighbours, bytes of one lane output),
    4 (same byte of neighbouring lanes), 64 (same lane byte, next step), 2**14 (same position,
    next block), and their neighbours."""
    q = _q(p)
    n = 2**25
    m = _mask(n, p, seed=8, offset=offset)
    for lag in LAGS:
        check_independent(m[:-lag], m[lag:], q, f"lag {lag}, p={p}, offset={offset}")


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_neighbouring_blocks(p):
    """Element j of block b against element j of block b + 1 (the block seeds are hashes of
    consecutive counters), and the last step of block b against the first step of block b + 1."""
    q = _q(p)
    m = _mask(N_BLOCKS * BLOCK, p, seed=77).reshape(N_BLOCKS, BLOCK)
    check_independent(m[:-1], m[1:], q, "same position, next block")
    check_independent(m[:-1, -GROUP:], m[1:, :GROUP], q, "last step vs next block's first step")
    # The boundary pair itself: (last of block b, first of block b + 1), over 16383 boundaries,
    # so that the number of pairs is big enough for the normal approximation; each pair is a
    # two-element mask straddling the boundary.
    pairs = np.array([_mask(2, p, seed=78, offset=b * BLOCK - 1) for b in range(1, 2**14)])
    check_independent(pairs[:, 0], pairs[:, 1], q, "last element vs next block's first")


# ---------------------------------------------------------------------------------------------
# 4. Independence of masks that should be unrelated.
# ---------------------------------------------------------------------------------------------
N_PAIR = 2**23
SHIFTS = [0, 1, -1, 64, BLOCK]  # also catch "the same stream, shifted by a little"


def _check_pair(a, b, q, what):
    for s in SHIFTS:
        if s >= 0:
            check_independent(a[:a.size - s], b[s:], q, f"{what}, shift {s}")
        else:
            check_independent(a[-s:], b[:b.size + s], q, f"{what}, shift {s}")


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_consecutive_layer_calls(p):
    """Dropout(seed=None): the layer seed comes from the package stream and call c uses
    derive(seed, c).  Consecutive forward calls, and first calls of two consecutive layers, must
    give unrelated masks."""
    q = _q(p)
    x = np.ones(N_PAIR, dtype=np.float32)
    cdrop.manual_seed(12345)
    layer = cdrop.Dropout(p)
    masks = [layer(x) != 0 for _ in range(4)]
    for c in range(3):
        _check_pair(masks[c], masks[c + 1], q, f"layer calls {c} and {c + 1}")
    other = cdrop.Dropout(p)
    _check_pair(masks[0], other(x) != 0, q, "first calls of two layers")


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_consecutive_seed_none_calls(p):
    q = _q(p)
    cdrop.manual_seed(0)
    masks = [cdrop.dropout_mask(N_PAIR, p, seed=None) for _ in range(4)]
    for c in range(3):
        _check_pair(masks[c], masks[c + 1], q, f"seed=None calls {c} and {c + 1}")


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_adjacent_seeds(p):
    q = _q(p)
    seeds = [0, 1, 2, 3, 4, 2**32 - 1, 2**32, 2**64 - 2, 2**64 - 1]
    masks = {s: _mask(N_PAIR, p, s) for s in seeds}
    for a, b in zip(seeds, seeds[1:]):
        _check_pair(masks[a], masks[b], q, f"seeds {a} and {b}")


@pytest.mark.parametrize("p", [0.5, 0.1])
@pytest.mark.parametrize("base", [0, 1000, 2**40 + 16383])
def test_offsets(p, base):
    """mask(offset=o) against mask(offset=o + d), elementwise: these are the stream at lags d,
    so they must be uncorrelated too (d = 1, 2, 64, 2**14)."""
    q = _q(p)
    a = _mask(N_PAIR, p, seed=6, offset=base)
    for d in (1, 2, 64, BLOCK):
        check_independent(a, _mask(N_PAIR, p, seed=6, offset=base + d), q,
                          f"offsets {base} and {base} + {d}")


# ---------------------------------------------------------------------------------------------
# 5. Run lengths.
# ---------------------------------------------------------------------------------------------
def _run_lengths(m):
    """Lengths of the maximal runs of equal values, and each run's value; the first and last
    run are dropped (they are cut by the array's ends, so they are not geometric)."""
    change = np.flatnonzero(m[1:] != m[:-1]) + 1
    starts = change[:-1]
    lengths = np.diff(change)
    return lengths, m[starts]


@pytest.mark.parametrize("p", [0.5, 0.1, 0.9])
def test_run_lengths_are_geometric(p):
    """For independent Bernoulli(q) decisions the runs of kept elements have length k with
    probability q**(k-1) (1-q) (geometric), the runs of dropped ones (1-q)**(k-1) q.  Chi-square
    over lengths 1 .. K-1 and a pooled tail >= K, with K the largest length whose bin (and tail)
    still expects >= MIN_EXPECTED runs.  (Treating the run lengths as a multinomial sample ignores
    that they must sum to the array length, an O(1/runs) effect.)"""
    q = _q(p)
    m = _mask(2**25, p, seed=4242)
    lengths, values = _run_lengths(m)
    for kept, stay in ((True, q), (False, 1 - q)):
        runs = lengths[values == kept]
        total = runs.size
        kmax = 1
        while total * stay ** kmax * (1 - stay) >= MIN_EXPECTED and \
                total * stay ** (kmax + 1) >= MIN_EXPECTED:
            kmax += 1
        # bins 1 .. kmax, then the tail > kmax
        probs = [stay ** (k - 1) * (1 - stay) for k in range(1, kmax + 1)]
        probs.append(stay ** kmax)
        counts = np.bincount(np.minimum(runs, kmax + 1), minlength=kmax + 2)[1:]
        assert counts.sum() == total
        assert kmax >= 3  # a real test: at least three length bins and the tail
        check_multinomial(counts, probs, f"{'kept' if kept else 'dropped'} runs, p={p}")


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_number_of_changes(p):
    """Adjacent decisions differ with probability r = 2q(1-q).  For i.i.d. decisions the count
    of changes over the n - 1 neighbour pairs has mean (n-1) r and variance
    (n-1) r (1-r) + 2 (n-2) (P(change at i and at i+1) - r**2), where two consecutive changes are
    the patterns 1-0-1 and 0-1-0, of total probability q(1-q).  It is a sum of 1-dependent
    terms, so a normal bound at Z_CRIT has false-alarm rate ~ALPHA."""
    q = _q(p)
    n = 2**22
    m = _mask(n, p, seed=4243)
    changes = int(np.count_nonzero(m[1:] != m[:-1]))
    r = 2 * q * (1 - q)
    both = q * (1 - q)
    var = (n - 1) * r * (1 - r) + 2 * (n - 2) * (both - r * r)
    z = (changes - (n - 1) * r) / math.sqrt(var)
    assert abs(z) <= Z_CRIT, f"changes {changes}, expected {(n - 1) * r:.0f}, z = {z:.2f}"
