"""What the ``cdrop`` command and the benchmarks in bench/ share: the textbook NumPy dropout and
the one timer.  Private: no part of the API, and free to change with the benchmarks.

It lives in the package, not in bench/, because the ``cdrop`` command ships with the package and
bench/ does not (bench/impls.py and bench/report.py import it from here).  pytest-benchmark
(bench/test_bench.py) keeps its own timing loop: timing is that plugin's job.

The timer runs the implementations INTERLEAVED: round r times A, B, C, ... once each, then round
r + 1 does the same, so that a slow phase of a shared machine (another process, a frequency
change) hits all of them alike, and each implementation's result is the median over the rounds.
A median of interleaved rounds is still a noisy number: compare ratios within one run.
"""
import argparse
import time

import numpy as np

__all__ = ["interleaved_samples", "positive_int", "textbook_dropout"]


def textbook_dropout(x, p):
    """Dropout as tutorials write it in NumPy: the baseline that cdrop is compared with.

    A float64 uniform draw per element from the legacy global generator, a bool mask, a
    multiplication that allocates the result and an in-place division: several passes over
    memory and two temporaries.

    Parameters
    ----------
    x : numpy.ndarray
        The input (float32 or float64); not modified.
    p : float
        Drop probability, 0 <= p < 1.

    Returns
    -------
    numpy.ndarray
        A new array of x's shape and dtype: dropped elements 0, kept ones divided by 1 - p.
    """
    keep_prob = 1.0 - p
    mask = np.random.rand(*x.shape) < keep_prob
    out = x * mask
    out /= keep_prob
    return out


def interleaved_samples(funcs, rounds, *, setups=None, warmup=0, prime=False,
                        clock=time.perf_counter):
    """Time several implementations in interleaved rounds; the seconds per call of each.

    Parameters
    ----------
    funcs : sequence
        One entry per implementation: a zero-argument callable, or a non-empty sequence of them
        (a batch) that one timing runs back to back, its time divided by the batch's length.
        Batches time calls of about a microsecond, which one clock reading per call would
        swamp; give each call of a batch its own input if calls change their input.
    rounds : int
        Rounds to record, >= 1.
    setups : sequence, optional
        ``setups[i]``, a zero-argument callable or None, runs untimed before every timing (and
        every priming call) of ``funcs[i]``: for example an ``np.copyto`` that restores an
        in-place implementation's input, so that no call sees an array that earlier calls
        turned into zeros or infinities.
    warmup : int, optional
        Rounds to run first without recording them (default 0).
    prime : bool, optional
        If True, every timing follows one untimed call of the same entry's first callable, so
        that the timed call finds its buffers in cache and its threads awake as in a loop of
        calls, not as the previous implementation left them (one that sweeps the caches can
        make the next one 1.5-2x slower at 262,144 elements).
    clock : callable, optional
        The clock, ``time.perf_counter`` by default.

    Returns
    -------
    list of list of float
        ``samples[i][r]``: seconds per call of ``funcs[i]`` in recorded round ``r``; take
        ``statistics.median`` of each list.

    Examples
    --------
    >>> import statistics
    >>> from cdrop._bench import interleaved_samples
    >>> samples = interleaved_samples([lambda: sum(range(100)), [dict, dict]], 5)
    >>> [len(s) for s in samples]
    [5, 5]
    >>> statistics.median(samples[0]) > 0
    True
    """
    batches = [list(f) if not callable(f) else [f] for f in funcs]
    if any(not batch for batch in batches):
        raise ValueError("funcs: every batch needs at least one callable")
    setups = list(setups) if setups is not None else [None] * len(batches)
    if len(setups) != len(batches):
        raise ValueError(f"setups: {len(setups)} entries for {len(batches)} funcs")
    samples = [[] for _ in batches]
    for r in range(warmup + rounds):
        for batch, setup, acc in zip(batches, setups, samples):
            if prime:
                if setup is not None:
                    setup()
                batch[0]()
            if setup is not None:
                setup()
            t0 = clock()
            for call in batch:
                call()
            t = clock() - t0
            if r >= warmup:
                acc.append(t / len(batch))
    return samples


def positive_int(text):
    """argparse type of the command's and bench/report.py's counts: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value
