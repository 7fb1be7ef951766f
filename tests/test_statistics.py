"""Kept fraction and mean within binomial bounds.

Every check is |k - n q| <= 6 sigma with sigma = sqrt(n q (1 - q)), q = thr / 2**32 the exact keep
probability (docs/rng.md section 6).  For a correct generator a single check fails with
probability about 2e-9 (two-sided normal tail at 6 sigma), so the ~150 checks below give a false
alarm rate below 1e-6.  Seeds are fixed, so the suite is deterministic anyway: the bound guards
against a generator or threshold bug, not against bad luck.
"""
import math

import numpy as np
import pytest

import cdrop
import reference

N = 10**6
PS = [0.01, 0.1, 0.5, 0.9]
SIGMAS = 6


def _q(p):
    return reference.threshold(p) / 2**32


def _check_count(k, n, q, what):
    sigma = math.sqrt(n * q * (1 - q))
    assert abs(k - n * q) <= SIGMAS * sigma, f"{what}: kept {k} of {n}, expected {n * q:.1f} " \
                                              f"+- {SIGMAS} * {sigma:.1f}"


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("seed", [0, 1, 2**63 + 5])
def test_kept_fraction(p, seed, kernel_path):
    q = _q(p)
    m = cdrop.dropout_mask(N, p, seed=seed)
    _check_count(int(np.count_nonzero(m)), N, q, f"mask p={p}")
    y = cdrop.dropout(np.ones(N, dtype=np.float32), p, seed=seed)
    _check_count(int(np.count_nonzero(y)), N, q, f"dropout p={p}")


@pytest.mark.parametrize("p", PS)
def test_kept_fraction_in_blocks_and_lanes(p):
    """No position in a block and no lane is biased: the counts per lane (16 classes) and per
    block quarter (4 classes) each stay within the bound."""
    q = _q(p)
    n = 2**20  # 64 whole blocks
    m = cdrop.dropout_mask(n, p, seed=123)
    per_lane = m.reshape(-1, 16).sum(axis=0)
    for lane, k in enumerate(per_lane):
        _check_count(int(k), n // 16, q, f"lane {lane}")
    # 64 positions in a step (lane k // 4, byte k % 4 of its output)
    per_position = m.reshape(-1, 64).sum(axis=0)
    for k, c in enumerate(per_position):
        _check_count(int(c), n // 64, q, f"step position {k}")
    per_quarter = m.reshape(-1, 4, 4096).sum(axis=(0, 2))
    for quarter, k in enumerate(per_quarter):
        _check_count(int(k), n // 4, q, f"block quarter {quarter}")


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_of_ones_is_one(p, dtype):
    y = cdrop.dropout(np.ones(N, dtype=dtype), p, seed=77)
    scale = float(dtype(1 / (1 - p)))
    q = _q(p)
    # mean = scale * k / n with k ~ Binomial(n, q): its 6-sigma band around scale * q
    sigma_mean = scale * math.sqrt(q * (1 - q) / N)
    mean = float(np.mean(y, dtype=np.float64))
    assert abs(mean - scale * q) <= SIGMAS * sigma_mean
    # and scale * q is within 2**-32 * scale of 1 (threshold rounding)
    assert abs(scale * q - 1) <= 2**-31 * scale + 1e-6


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_runs_of_equal_decisions(p):
    """Adjacent decisions are independent: the number of changes between consecutive mask
    elements is Binomial(n-1, 2q(1-q))."""
    m = cdrop.dropout_mask(N, p, seed=4242)
    changes = int(np.count_nonzero(m[1:] != m[:-1]))
    q = _q(p)
    _check_count(changes, N - 1, 2 * q * (1 - q), "changes")


def test_tiny_p_drops_almost_nothing_but_drops():
    # p = 1e-9 is clamped to a drop probability of 2**-32 per element: over 2**24 elements the
    # expected number of drops is 1/256; seeing more than 5 has probability < 1e-14.
    m = cdrop.dropout_mask(2**24, 1e-9, seed=5)
    assert int(np.count_nonzero(~m)) <= 5
    # p = 1e-4 (threshold not clamped): binomial bound on the number dropped
    n = 2**22
    m = cdrop.dropout_mask(n, 1e-4, seed=6)
    _check_count(int(np.count_nonzero(~m)), n, 1 - _q(1e-4), "drops at p=1e-4")
