"""cdrop against NumPy and PyTorch: a Markdown report, a JSON file of medians and a plot.

    python bench/report.py [--quick] [--check] [--rounds N] [--out DIR] [--dtype float32] [--p 0.5]

Run it from the repository root with the `python` command: Python then puts bench/ (the script's
folder), not the repository root, first on sys.path, so `import cdrop` finds the INSTALLED package
(`pip install .`) and not the uncompiled cdrop/ folder.  Needs matplotlib for the plot (the
`bench` extra); torch is optional (its rows are left out when it is missing).

Where it writes (report.md, report.json, throughput.png): the full default run, with none of
--quick, --rounds, --dtype, --p, rewrites the committed results in bench/results/; any other run
writes to build/bench-report/<what differs>/ (for example build/bench-report/quick/), so that
a quick or ad-hoc run cannot overwrite them.  --out DIR writes to DIR whatever the run (CI passes
one; `--out bench/results` commits an ad-hoc run on purpose).  The folder is printed first.
`--check` measures only what the speed targets need, with fewer rounds, and prints the tables
and the target checklist without writing anything (a few minutes on a quiet machine, most of it
issue 12's layout rows while those layouts are slow; with --quick, the sizes up to 262,144
only, and no family, cold-cache or layout rows).

What it measures: every implementation of bench/impls.py (the ones bench/test_bench.py times with
pytest-benchmark), plus cdrop's OpenMP `x *= c` ("floor OpenMP x*=c", float32 only), at
sizes 1,000 to 16,777,216 elements, with 1 thread and with all the cores of the affinity mask.
For each (size, threads) the implementations run INTERLEAVED: round r calls A, B, C, ... once
each, then round r+1 does the same, so that a slow phase of the machine (another process, a
frequency change) hits all of them alike.  The reported time is the median over the rounds.
The timer is `cdrop._bench.interleaved_samples`, which the `cdrop` command uses too.
With float32, also issue 12's rows (one interleaved run per case, the target checklist reads
them): every p in {0.05, ..., 0.9} in place against p = 0.5 at 256Ki, 4M and 16M elements; every
kernel path this CPU has (avx512, avx2, portable, and scalar when the build has it) against the
floor, 1 thread, p = 0.5 and 0.1, forced with cdrop._kernels.set_path and restored afterwards;
and, not with --quick (their sizes are above its), the cold-cache harness (the array restored
INSIDE the timed region, the restore's own median subtracted, no priming call; in place, p = 0.5,
4M and 16M elements) beside the warm figure of the main tables, and the layouts (Fortran, x.T,
x[:, ::2], 3-D transposes, float32 and float64, 2048**2 and 4096**2 elements, and the
small-trailing-axes views) against NumPy on the same array, with a bit-identity spot check.
With float32 and without --quick, also the dropout family of issue 11 (bench/impls.py, FAMILY:
Dropout2d, drop_path, alpha_dropout, dropout_add, gaussian_dropout, gaussian_noise, each beside
its floor and its PyTorch or NumPy peer) at 4M and 16M elements, one interleaved run per (size,
threads), and the issue's targets for it.

  * Timing: time.perf_counter around the call.  At 1,000 and 16,384 elements a call takes about
    a microsecond, so one timing covers a batch of calls and is divided by the batch size.  At
    the larger sizes each timed call follows one untimed call of the same implementation, so
    that it finds its buffers in cache and its threads awake as in a loop of calls, not as the
    previous implementation left them (torch or the NumPy reference, which sweep the caches,
    made the next implementation 1.5-2x slower at 262,144 elements).
  * In-place implementations (cdrop in place, torch inplace, the floors) get their array restored
    from a pristine copy with np.copyto before every timed call, outside the timed region, so no
    call measures an array that earlier calls turned into zeros or infinities.  In a batch
    (small sizes only) every call of the batch has its own fresh copy, all restored before the
    batch; the batches are kept small (512 KiB to 1 MiB of copies) so that the copies are still
    in the L2 cache, as the output of a previous layer would be.
  * Out-of-place implementations are timed with the allocation (and release) of their result,
    which is part of what they cost.
  * The floor is `np.multiply(x, c, out=x)`: one read and one write of every element.  NumPy
    runs on one thread, so for more than one thread the table also gives the ratio to cdrop's
    OpenMP `x *= c` over the same chunks.
  * "GB/s moved" counts 2 x itemsize bytes per element (one read, one write) for every
    implementation, however many passes it really makes; for the packed mask, n/8 bytes written.

A median of interleaved rounds on a shared 2-vCPU VM is still a noisy number: compare ratios
within one run, and look at the header, which says how much CPU time other processes and the
hypervisor took during the run (another busy process on a 2-core machine halves what 2 threads
can do).  This is a report: nothing here asserts a time.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

import cdrop
from cdrop._bench import interleaved_samples, positive_int
from impls import (
    FAMILY,
    FAMILY_SIZES,
    FAMILY_TORCH_TARGETS,
    HALF_DTYPES,
    IMPLEMENTATIONS,
    TORCH_CALL,
    TORCH_DTYPES,
    TORCH_FWD_BWD,
    Unavailable,
    cdrop_inplace,
    family_implementations,
    family_shape,
    floor_openmp,
    floor_scale,
    half_array,
    omp_floor,
)

BENCH_DIR = Path(__file__).resolve().parent
SIZES = (1_000, 16_384, 262_144, 4_194_304, 16_777_216)
QUICK_SIZES = SIZES[:3]
# size -> (rounds, calls per timing); odd round counts give an exact median
SCHEDULE = {
    1_000: (61, 128),
    16_384: (61, 8),
    262_144: (201, 1),
    4_194_304: (41, 1),
    16_777_216: (21, 1),  # one round is ~0.7 s there (torch dropout alone ~0.25 s)
}
QUICK_SCHEDULE = {1_000: (41, 128), 16_384: (41, 8), 262_144: (101, 1)}
# --check: the sizes that the targets read, fewer rounds
CHECK_SCHEDULE = {1_000: (31, 128), 262_144: (61, 1), 4_194_304: (21, 1), 16_777_216: (15, 1)}
RESULTS_DIR = BENCH_DIR / "results"  # the committed results: only a full default run writes here
# PyTorch in a training step's form (forward plus backward), float32 and bfloat16: size ->
# (rounds, calls per timing).  16M: torch's forward plus backward is ~0.3 s.
TORCH_SCHEDULE = {16_384: (41, 1), 1_048_576: (21, 1), 16_777_216: (9, 1)}
TORCH_QUICK_SCHEDULE = {16_384: (21, 1)}
TORCH_CHECK_SCHEDULE = {16_777_216: (7, 1)}
TORCH_CALL_SCHEDULE = (61, 128)  # the 1,000-element call
# Half precision: cdrop in place on 1 thread, float16 and bfloat16 beside float32
HALF_SCHEDULE = {4_194_304: (21, 1), 16_777_216: (11, 1)}
HALF_CHECK_SCHEDULE = {4_194_304: (11, 1), 16_777_216: (7, 1)}
# The dropout family (issue 11): float32, 4M and 16M, every thread count; size -> rounds.  A
# 4M round is ~0.5 s (NumPy's float64 normals are most of it), a 16M round ~2 s.
FAMILY_SCHEDULE = {4_194_304: 21, 16_777_216: 11}
FAMILY_CHECK_SCHEDULE = {4_194_304: 11, 16_777_216: 7}

FLOOR = "floor np.multiply(out=x)"
FLOOR_NEW = "floor np.multiply(x, c)"
OMP_FLOOR = "floor OpenMP x*=c"
CDROP_OOP = "cdrop out of place"
CDROP_INPLACE = "cdrop in place"
MASK = "cdrop mask packed"
PEERS = ("NumPy reference", "NumPy fastest", "torch dropout")  # speed-up columns
# --check measures what targets() reads: these at every size, and the PEERS at 4M only (the
# only size whose targets read them; they are most of a round's time).
CHECK_NAMES = (CDROP_INPLACE, CDROP_OOP, MASK, FLOOR, FLOOR_NEW, OMP_FLOOR)


def check_names(n):
    return set(CHECK_NAMES) | (set(PEERS) if n == 4_194_304 else set())
ALL_CORES = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else (os.cpu_count() or 1))


def implementations(dtype, names=None):
    """{name: (factory, in place)} of every implementation measured for `dtype` (or of those
    in `names`), and the set of in-place names."""
    impls = dict(IMPLEMENTATIONS)
    if np.dtype(dtype) == np.float32:
        impls[OMP_FLOOR] = (floor_openmp, True)
    if names is not None:
        impls = {name: v for name, v in impls.items() if name in names}
    return impls, {name for name, (_, inplace) in impls.items() if inplace}


# --- measurement ----------------------------------------------------------------------------


def measure(n, threads, dtype, p, rounds, batch, names=None):
    """Median seconds per call of every available implementation at one (size, threads)."""
    impls, in_place = implementations(dtype, names)
    pristine = np.random.default_rng(0).standard_normal(n).astype(dtype)
    # The in-place implementations' arrays, restored from `pristine` before every timing: one
    # array when a timing is one call, else one fresh copy per call of the batch (rows of
    # `work`), so that no call sees an array that earlier calls turned into zeros or Inf.
    work = np.empty((batch, n), dtype=dtype)
    runs, skipped = {}, {}
    for name, (factory, _) in impls.items():
        try:
            if name in in_place:
                calls = [factory(row, p, threads) for row in work]
            else:
                calls = [factory(pristine, p, threads)] * batch
        except Unavailable as exc:
            skipped[name] = str(exc)
        else:
            runs[name] = calls
    # Round 0 is a warm-up.  When a timing is one call (batch 1), it follows one untimed call
    # of the same implementation (prime), so that it finds its buffers, code and threads as a
    # loop of calls does, not as the previous implementation left them.
    samples = interleaved_samples(list(runs.values()), rounds,
                                  setups=[partial(np.copyto, work, pristine) if name in in_place
                                          else None for name in runs],
                                  warmup=1, prime=batch == 1)
    cdrop.set_num_threads(None)  # Dropout.backward's factory sets the package default
    out = {}
    for name, ts in zip(runs, samples):
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        out[name] = {"median_s": statistics.median(ts), "min_s": min(ts), "q1_s": q[0],
                     "q3_s": q[2]}
    return out, skipped


def measure_torch(schedule, threads_list, p):
    """cdrop.torch against torch, forward plus backward, and the 1,000-element call.

    Returns ({(dtype, n, threads): {name: stats}}, {name: why skipped}); the call is keyed
    ("float32", 1000, 1).  Each (dtype, size, threads) is an interleaved run of its own, with
    every timing after an untimed call of the same implementation (prime)."""
    results, skipped = {}, {}

    def stats(ts):
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        return {"median_s": statistics.median(ts), "min_s": min(ts), "q1_s": q[0],
                "q3_s": q[2]}

    cases = [(TORCH_FWD_BWD, dtype, n, threads, *schedule[n]) for dtype in TORCH_DTYPES
             for n in schedule for threads in threads_list]
    cases.append((TORCH_CALL, "float32", 1_000, 1, *TORCH_CALL_SCHEDULE))
    for impls, dtype, n, threads, rounds, batch in cases:
        runs = {}
        for name, factory in impls.items():
            try:
                runs[name] = [factory(n, dtype, p, threads)] * batch
            except Unavailable as exc:
                skipped[name] = str(exc)
        if len(runs) < len(impls):
            continue
        samples = interleaved_samples(list(runs.values()), rounds, warmup=1, prime=batch == 1)
        results[(dtype, n, threads)] = {name: stats(ts) for name, ts in zip(runs, samples)}
    try:
        import torch

        torch.set_num_threads(ALL_CORES)
    except ImportError:
        pass
    return results, skipped


def torch_table(results):
    """Markdown lines of the PyTorch comparison."""
    lines = ["## PyTorch: cdrop.torch against torch", "",
             "Forward plus backward: `layer(x)` on a tensor that requires grad, then "
             "`torch.autograd.grad` of that layer alone (torch.nn.Dropout keeps a mask for "
             "backward, cdrop.torch.Dropout recomputes it).  The last row is one "
             "`F.dropout` / `cdrop.torch.dropout` call of 1,000 float32 elements, no autograd, "
             "seed drawn from torch's generator.", "",
             "`floor` is two `np.copy` into new arrays: what reading the input and writing a "
             "new forward output, then the same for the gradient, costs without any dropout.",
             "",
             "| what | dtype | elements | threads | torch | cdrop | floor | cdrop faster by "
             "| cdrop / floor |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (dtype, n, threads), block in results.items():
        t, c, *floor = (v["median_s"] for v in block.values())
        what = "1 call" if n == 1_000 else "fwd+bwd"
        f = floor[0] if floor else None
        lines.append(f"| {what} | {dtype} | {n:,} | {threads} | {fmt_time(t)} | {fmt_time(c)} "
                     f"| {fmt_time(f) if f else ''} | {fmt_ratio(t / c)} "
                     f"| {fmt_ratio(c / f) if f else ''} |")
    return lines + [""]


def torch_targets(results):
    """The issue's PyTorch targets (16M, 1 thread; the 1,000-element call)."""
    rows = []
    for dtype, goal in (("float32", 30), ("bfloat16", 10)):
        block = results.get((dtype, 16_777_216, 1))
        desc = (f"cdrop.torch.Dropout forward+backward, 16,777,216 {dtype}, 1 thread: "
                f">= {goal}x faster than torch.nn.Dropout")
        if block is None:
            rows.append((desc, "not measured", "n/a"))
            continue
        r = (block["torch nn.Dropout fwd+bwd"]["median_s"]
             / block["cdrop.torch.Dropout fwd+bwd"]["median_s"])
        floor = block.get("floor 2 x np.copy, new arrays", {}).get("median_s")
        t_torch = block["torch nn.Dropout fwd+bwd"]["median_s"]
        ceiling = f"; the floor allows {t_torch / floor:.1f}x" if floor else ""
        rows.append((desc, f"{r:.1f}x{ceiling}", "PASS" if r >= goal else "MISS"))
    block = results.get(("float32", 1_000, 1))
    desc = "cdrop.torch.dropout, 1,000 float32 elements: <= torch F.dropout's time"
    if block is None:
        rows.append((desc, "not measured", "n/a"))
    else:
        t, c = block["torch F.dropout call"]["median_s"], block["cdrop.torch.dropout call"][
            "median_s"]
        rows.append((desc, f"{c / t:.2f}x ({c * 1e6:.2f} us vs {t * 1e6:.2f} us)",
                     "PASS" if c <= t else "MISS"))
    return rows


def measure_half(schedule, p):
    """cdrop in place on 1 thread: float16 and bfloat16 beside float32 of the same size.

    Returns ({n: {dtype: stats}}, {dtype: why skipped}).  Each size is one interleaved run;
    every timing restores the array first (untimed) and follows an untimed call (prime)."""
    results, skipped = {}, {}
    for n, (rounds, _) in schedule.items():
        funcs, setups, names = [], [], []
        for dtype in HALF_DTYPES:
            try:
                src = half_array(n, dtype)
            except Unavailable as exc:
                skipped[f"cdrop in place {dtype}"] = str(exc)
                continue
            x = src.copy()
            funcs.append(cdrop_inplace(x, p, 1))
            setups.append(partial(np.copyto, x, src))
            names.append(dtype)
        samples = interleaved_samples(funcs, rounds, setups=setups, warmup=1, prime=True)
        results[n] = {name: {"median_s": statistics.median(ts), "min_s": min(ts)}
                      for name, ts in zip(names, samples)}
    return results, skipped


def half_table(results):
    """Markdown lines of the half-precision comparison."""
    lines = ["## Half precision: float16 and bfloat16 against float32", "",
             "cdrop in place, 1 thread, the same element count in each dtype.  A half call "
             "moves half the bytes of a float32 call: the target is at most 0.6x float32's "
             "time (1.2x its time per byte).", "",
             "| elements | float32 | float16 | bfloat16 | float16 / float32 "
             "| bfloat16 / float32 |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, block in results.items():
        t = {d: block[d]["median_s"] if d in block else None for d in HALF_DTYPES}
        cells = [fmt_time(v) if v else "" for v in t.values()]
        ratios = [f"{t[d] / t['float32']:.2f}x" if t[d] and t["float32"] else ""
                  for d in HALF_DTYPES[1:]]
        lines.append(f"| {n:,} | " + " | ".join(cells + ratios) + " |")
    return lines + [""]


def half_targets(results):
    """The issue's half-precision target: in place at 4M and 16M, <= 0.6x float32's time."""
    rows = []
    for n, block in results.items():
        for dtype in HALF_DTYPES[1:]:
            desc = (f"cdrop in place, {n:,} {dtype}, 1 thread: <= 0.6x the float32 call's "
                    "time (1.2x per byte)")
            if dtype not in block or "float32" not in block:
                rows.append((desc, "not measured", "n/a"))
                continue
            r = block[dtype]["median_s"] / block["float32"]["median_s"]
            rows.append((desc, f"{r:.2f}x", "PASS" if r <= 0.6 else "MISS"))
    return rows


# --- the dropout family (issue 11) ----------------------------------------------------------


def family_check_names(n):
    """--check: what family_targets() reads: cdrop and the floors at every size, and the torch
    peers that the targets name at 4M."""
    names = {name for name, _, _ in family_implementations()
             if name.endswith(": cdrop") or name.startswith("floor ")}
    if n == 4_194_304:
        names |= {f"{v}: {peer}" for v, peer in FAMILY_TORCH_TARGETS.items()}
    return names


PEER_RUN = " (peer run)"  # suffix of cdrop's rows in the run with the peers


def _family_run(rows, rounds, wx, wr, px, pr, p, threads):
    """One interleaved run of `rows` ([(name, factory, in place)]): {name: stats}, skipped."""

    def restore():
        np.copyto(wx, px)
        np.copyto(wr, pr)

    runs, setups, skipped = {}, [], {}
    for name, factory, inplace in rows:
        try:
            runs[name] = factory(wx, wr, p, threads) if inplace else factory(px, pr, p, threads)
        except Unavailable as exc:
            skipped[name] = str(exc)
            continue
        setups.append(restore if inplace else None)
    out = {}
    if runs:
        samples = interleaved_samples(list(runs.values()), rounds, setups=setups, warmup=1,
                                      prime=True)
        for name, ts in zip(runs, samples):
            q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
            out[name] = {"median_s": statistics.median(ts), "min_s": min(ts), "q1_s": q[0],
                         "q3_s": q[2]}
    return out, skipped


def measure_family(n, threads, p, rounds, names=None):
    """Median seconds per call of every family case (bench/impls.py, FAMILY) at one (size,
    threads), in two interleaved runs: cdrop's cases with the floors (what the floor targets
    read), then cdrop's cases with the peers (what the speed-ups read; cdrop's rows of this run
    are named "<variant>: cdrop (peer run)").  Separate runs, because a peer that allocates and
    frees tens of MiB per call (torch's alpha_dropout, NumPy's normals) slowed the call after it
    by up to 1.5x even after an untimed priming call (dropout_add at 4M: 1.05-1.18x np.add
    without torch's alpha_dropout in the run, 1.53-1.58x with it, np.add unchanged).

    In-place rows write into a shared pair (x, residual), restored from pristine copies before
    every timing and every priming call (untimed); out-of-place rows read the pristine arrays.
    Returns ({row name: stats}, {row name: why skipped})."""
    shape = family_shape(n)
    gen = np.random.default_rng(0)
    px = gen.standard_normal(shape, dtype=np.float32)
    pr = gen.standard_normal(shape, dtype=np.float32)
    wx, wr = px.copy(), pr.copy()
    rows = [row for row in family_implementations() if names is None or row[0] in names]
    own = [row for row in rows if row[0].endswith(": cdrop") or row[0].startswith("floor ")]
    peers = [row for row in rows if row not in own]
    out, skipped = _family_run(own, rounds, wx, wr, px, pr, p, threads)
    if peers:
        variants = {name.split(": ")[0] for name, _, _ in peers}
        beside = [(f"{v}: cdrop{PEER_RUN}", FAMILY[v][0], True) for v in FAMILY if v in variants]
        more, skip = _family_run(beside + peers, rounds, wx, wr, px, pr, p, threads)
        out.update(more)
        skipped.update(skip)
    cdrop.set_num_threads(None)  # the Dropout2d case sets the package default
    try:
        import torch

        torch.set_num_threads(ALL_CORES)
    except ImportError:
        pass
    return out, skipped


def family_floor(variant, threads, block):
    """(floor row name, its label) of `variant` at `threads`: its NumPy floor on one thread; for
    more, cdrop's OpenMP x *= c (dropout_add: still np.add on 1 thread)."""
    floor = FAMILY[variant][1]
    if threads > 1 and floor == "np.multiply" and "floor OpenMP x*=c" in block:
        return "floor OpenMP x*=c", "OpenMP x*=c"
    if floor == "np.add" and threads > 1:
        return "floor np.add", "np.add (1 thread)"
    return f"floor {floor}", floor


def family_table(block, n, threads):
    """Markdown lines of the family cases at one (size, threads)."""
    med = {name: v["median_s"] for name, v in block.items()}
    shape = family_shape(n)
    lines = [f"### {n:,} elements {shape}, {threads} thread{'s' if threads > 1 else ''}", "",
             "| variant | cdrop | floor | cdrop / floor | target | peers: time (cdrop faster by) |",
             "| --- | ---: | --- | ---: | ---: | --- |"]
    for variant, (_, _, goal, peers) in FAMILY.items():
        c = med.get(f"{variant}: cdrop")
        if c is None:
            continue
        fname, flabel = family_floor(variant, threads, med)
        f = med.get(fname)
        if variant.startswith("gaussian") and n != 4_194_304:
            goal_text = f"({goal:g}x at 4M)"
        else:
            goal_text = f"<= {goal:g}x"
        cp = med.get(f"{variant}: cdrop{PEER_RUN}", c)  # cdrop beside its peers
        cells = [f"{peer} {fmt_time(med[f'{variant}: {peer}'])} "
                 f"({fmt_ratio(med[f'{variant}: {peer}'] / cp)})"
                 for peer, _ in peers if f"{variant}: {peer}" in med]
        lines.append(f"| {variant} | {fmt_time(c)} | {flabel} {fmt_time(f) if f else ''} "
                     f"| {fmt_ratio(c / f) if f else ''} | {goal_text} | {'; '.join(cells)} |")
    floors = [f"{name[6:]} {fmt_time(t)}" for name, t in med.items() if name.startswith("floor ")]
    return lines + ["", "Floors: " + ", ".join(floors) + ".", ""]


def family_targets(results, threads_list):
    """The issue's speed targets of the dropout family: [(description, value, status)]."""
    rows = []

    def med(n, threads, name):
        return results.get((n, threads), {}).get(name, {}).get("median_s")

    for variant, (_, floor, goal, _) in FAMILY.items():
        sizes = (4_194_304,) if variant.startswith("gaussian") else FAMILY_SIZES
        for n in sizes:
            for threads in threads_list:
                block = results.get((n, threads), {})
                fname, flabel = family_floor(variant, threads, block)
                desc = (f"{variant}, {n:,} {family_shape(n)}, {threads} thread(s): <= {goal:g}x "
                        f"{flabel} floor")
                c, f = med(n, threads, f"{variant}: cdrop"), med(n, threads, fname)
                if c is None or f is None:
                    rows.append((desc, "not measured", "n/a"))
                    continue
                extra = ""
                if threads > 1 and fname != f"floor {floor}":
                    f1 = med(n, threads, f"floor {floor}")
                    extra = f" (vs {floor} on 1 thread: {c / f1:.2f}x)" if f1 else ""
                rows.append((desc, f"{c / f:.2f}x{extra}", "PASS" if c / f <= goal else "MISS"))
    n = 4_194_304
    for variant, peer in FAMILY_TORCH_TARGETS.items():
        for threads in threads_list:
            desc = (f"{variant}, {n:,}, {threads} thread(s): >= 10x faster than {peer} "
                    "(same threads)")
            c, t = med(n, threads, f"{variant}: cdrop{PEER_RUN}"), med(n, threads,
                                                                   f"{variant}: {peer}")
            if c is None or t is None:
                rows.append((desc, "not measured", "n/a"))
                continue
            # what no in-place implementation can beat: the peer's time over the floor's
            f = med(n, threads, family_floor(variant, threads, results.get((n, threads), {}))[0])
            ceiling = f"; the floor allows {t / f:.1f}x" if f else ""
            rows.append((desc, f"{t / c:.1f}x{ceiling}", "PASS" if t / c >= 10 else "MISS"))
    return rows


# --- issue 12: the cold-cache harness, every p, the kernel paths, the layouts ---------------
#
# Each table below is one interleaved run per case (A, B, C, ... then again), medians, every
# in-place case restored from a pristine copy before its timing, as in measure().  The ratios
# are read within one run only.

ISSUE12_P = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
# size -> rounds.  A 16M round of the p rows is 8 cases x (restore, prime, call) ~ 0.3 s.
P_SCHEDULE = {262_144: 101, 4_194_304: 21, 16_777_216: 11}
P_CHECK_SCHEDULE = {262_144: 41, 4_194_304: 11, 16_777_216: 9}
P_QUICK_SCHEDULE = {262_144: 41}
COLD_SCHEDULE = {4_194_304: 41, 16_777_216: 21}
COLD_CHECK_SCHEDULE = {4_194_304: 21, 16_777_216: 11}
PATH_P = (0.5, 0.1)
# the portable path took ~6.6x the floor at 4M on main: a 16M round is ~0.3 s
PATH_SCHEDULE = {262_144: 101, 4_194_304: 15, 16_777_216: 9}
PATH_CHECK_SCHEDULE = {262_144: 41, 4_194_304: 11, 16_777_216: 9}
PATH_QUICK_SCHEDULE = {262_144: 41}
# side -> rounds.  On main a 4096x4096 float64 Fortran round took ~1 s (two cdrop calls of
# ~0.13 s, each primed, plus the restores).
LAYOUT_SCHEDULE = {2048: 7, 4096: 5}
LAYOUT_CHECK_SCHEDULE = {2048: 3, 4096: 3}
LAYOUTS = ("Fortran", "x.T", "x[:, ::2]", "3-D (1, 0, 2)", "3-D (0, 2, 1)")
# (2**20, 8, 2).transpose(0, 2, 1) and the like: 16M float32 elements, ~0.3 s a call on main
TRAILING_SHAPES = ((2**20, 8, 2), (2**19, 2, 16), (2**18, 8, 8))
TRAILING_ROUNDS, TRAILING_CHECK_ROUNDS = 5, 3
LAYOUT_NAMES = ("cdrop in place", "np.multiply(a, c, out=a)", "cdrop out of place",
                "np.multiply(a, c)")
COPY = "np.copyto alone"


def _stats(ts):
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    return {"median_s": statistics.median(ts), "min_s": min(ts), "q1_s": q[0], "q3_s": q[2]}


def _interleaved(cases, rounds, prime=True, warmup=1):
    """{name: stats} of [(name, call, setup or None)], one interleaved run."""
    samples = interleaved_samples([c for _, c, _ in cases], rounds,
                                  setups=[s for _, _, s in cases], warmup=warmup, prime=prime)
    return {name: _stats(ts) for (name, _, _), ts in zip(cases, samples)}


def measure_cold(n, threads, rounds):
    """The cold-cache harness of issue 12 (item 5): in place, float32, p = 0.5.

    Every timing restores the array with np.copyto from a pristine copy INSIDE the timed region
    and then calls; "np.copyto alone" is the restore timed the same way, in the same rounds, and
    its median is subtracted from the others' in cold_ratios().  No priming call: each call finds
    the array as the restore left it (partly in cache) and the threads as the previous case left
    them, which is what a call in a real program meets more often than a loop of the same call.
    """
    pristine = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    x = pristine.copy()
    c = np.float32(1.0)
    scale = omp_floor()

    def copy():
        np.copyto(x, pristine)

    def copy_cdrop():
        np.copyto(x, pristine)
        cdrop.dropout(x, 0.5, inplace=True, seed=1, num_threads=threads)

    def copy_floor():
        np.copyto(x, pristine)
        np.multiply(x, c, out=x)

    def copy_omp():
        np.copyto(x, pristine)
        scale(x, 1.0, threads)

    cases = [(COPY, copy, None), (CDROP_INPLACE, copy_cdrop, None), (FLOOR, copy_floor, None)]
    if threads > 1:
        cases.append((OMP_FLOOR, copy_omp, None))
    return _interleaved(cases, rounds, prime=False)


def cold_ratios(block, stat="median_s"):
    """(cdrop's cold time, the floor's, its name) with the copy's median (or `stat`) subtracted:
    the floor is np.multiply's on 1 thread, cdrop's OpenMP x *= c with more (as targets()
    reads)."""
    med = {k: v[stat] for k, v in block.items()}
    floor = OMP_FLOOR if OMP_FLOOR in med else FLOOR
    return med[CDROP_INPLACE] - med[COPY], med[floor] - med[COPY], floor


def cold_table(cold, warm):
    lines = ["## Cold cache: the array restored inside the timed region (issue 12, item 5)", "",
             "In place, float32, p = 0.5.  Each timing is `np.copyto(x, pristine)` then the call; "
             "`np.copyto alone` is timed the same way in the same rounds and subtracted.  No "
             "priming call.  `warm` is the same ratio from the main tables above (restore "
             "untimed, each timed call after an untimed one).  `from the minima`: the same "
             "subtraction with each case's fastest round: on a busy machine a time slice lost "
             "to another process (~4 ms) lands in many copy-plus-call timings and makes their "
             "medians bimodal.", "",
             "| elements | threads | copy | cdrop (cold) | floor (cold) | cold ratio "
             "| from the minima | warm ratio |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (n, threads), block in cold.items():
        c, f, fname = cold_ratios(block)
        cm, fm, _ = cold_ratios(block, "min_s")
        w = _warm_ratio(warm, n, threads)
        lines.append(f"| {n:,} | {threads} | {fmt_time(block[COPY]['median_s'])} | "
                     f"{fmt_time(c)} | {fmt_time(f)} ({fname[6:]}) | {fmt_ratio(c / f)} | "
                     f"{fmt_ratio(cm / fm)} | {fmt_ratio(w) if w else ''} |")
    return lines + [""]


def _warm_ratio(results, n, threads):
    block = {k: v["median_s"] for k, v in results.get((n, threads), {}).items()}
    floor = OMP_FLOOR if threads > 1 and OMP_FLOOR in block else FLOOR
    if CDROP_INPLACE not in block or floor not in block:
        return None
    return block[CDROP_INPLACE] / block[floor]


def cold_targets(cold, results, threads_list):
    rows = []
    for n in COLD_SCHEDULE:
        for threads in threads_list:
            desc = (f"p = 0.5 in place, {n:,}, {threads} thread(s), cold-cache harness: <= 1.1x "
                    "floor (and warm <= 1.1x)")
            block, w = cold.get((n, threads)), _warm_ratio(results, n, threads)
            if block is None:
                rows.append((desc, "not measured", "n/a"))
                continue
            c, f, fname = cold_ratios(block)
            ok = c / f <= 1.1 and w is not None and w <= 1.1
            warm = f"warm {w:.2f}x" if w else "warm not measured"
            extra = ""
            if fname != FLOOR:  # the OpenMP floor wakes its threads too: NumPy's beside it
                np_floor = block[FLOOR]["median_s"] - block[COPY]["median_s"]
                extra = f" (cold vs np.multiply: {c / np_floor:.2f}x)"
            rows.append((desc, f"cold {c / f:.2f}x{extra}, {warm}", "PASS" if ok else "MISS"))
    return rows


def measure_p(n, threads, rounds):
    """In place, float32, every p of ISSUE12_P and the floor: one interleaved run."""
    pristine = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    x = pristine.copy()
    restore = partial(np.copyto, x, pristine)
    cases = [(f"p={p:g}", cdrop_inplace(x, p, threads), restore) for p in ISSUE12_P]
    cases.append((FLOOR, floor_scale(x, 0.5, threads), restore))
    return _interleaved(cases, rounds)


def p_table(p_results):
    lines = ["## Every p: time over p = 0.5's (issue 12, item 4)", "",
             "cdrop in place, float32, one interleaved run per row.  p = 0.5 skips the tie "
             "hashes (docs/rng.md, section 6); the others settle 1 element in 256 with them.", "",
             "| elements | threads | p = 0.5 x floor | "
             + " | ".join(f"p = {p:g}" for p in ISSUE12_P) + " |",
             "| ---: | ---: | ---: |" + " ---: |" * len(ISSUE12_P)]
    for (n, threads), block in p_results.items():
        half = block["p=0.5"]["median_s"]
        cells = [fmt_ratio(block[f"p={p:g}"]["median_s"] / half) for p in ISSUE12_P]
        lines.append(f"| {n:,} | {threads} | {fmt_ratio(half / block[FLOOR]['median_s'])} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def p_targets(p_results, threads_list):
    rows = []
    for n in P_SCHEDULE:
        goal = 1.2 if n < 1_000_000 else 1.1
        for threads in threads_list:
            desc = (f"every p in {{{', '.join(f'{p:g}' for p in ISSUE12_P)}}}, in place, {n:,}, "
                    f"{threads} thread(s): <= {goal:g}x p = 0.5's time")
            block = p_results.get((n, threads))
            if block is None:
                rows.append((desc, "not measured", "n/a"))
                continue
            half = block["p=0.5"]["median_s"]
            worst = max(ISSUE12_P, key=lambda p: block[f"p={p:g}"]["median_s"])
            r = block[f"p={worst:g}"]["median_s"] / half
            rows.append((desc, f"worst {r:.2f}x (p = {worst:g})", "PASS" if r <= goal else "MISS"))
    return rows


def kernel_paths():
    """[(name asked, name in use)] of the distinct kernel paths this CPU and build can run;
    "scalar" when the build has it.  Leaves the path in use unchanged."""
    from cdrop import _kernels

    before, seen, paths = _kernels.get_path(), set(), []
    try:
        for name in ("avx512", "avx2", "portable", "scalar"):
            try:
                got = _kernels.set_path(name)
            except ValueError:  # a build without that path ("scalar" before issue 12)
                continue
            if got not in seen:  # a path the CPU lacks falls back to the next one down
                seen.add(got)
                paths.append(got)
    finally:
        _kernels.set_path(before)
    return paths


def path_floor(path):
    """The key of `path`'s own floor in a block of measure_paths."""
    return f"{FLOOR} [{path}]"


def path_ratio(block, path):
    """`path`'s time over the floor measured in the same interleaved run (a block of
    measure_paths; blocks without per-path floors fall back to FLOOR)."""
    floor = block[path_floor(path)] if path_floor(path) in block else block[FLOOR]
    return block[path]["median_s"] / floor["median_s"]


def measure_paths(n, p, rounds, paths):
    """cdrop in place, float32, 1 thread, on every kernel path of `paths`: one interleaved run
    per path against its own floor, block[path] and block[path_floor(path)].  The path is
    selected once, before its run (as CDROP_KERNEL= selects it for a process), and every
    timing's untimed setup restores the array.  Not selected per timing: set_path runs CPUID, a
    VM exit here, and switching the path between timings moved both sides (at 262,144, AVX2
    1.42-1.44x a floor of 26.2 us when the floor's setup selected avx512, 1.32-1.33x one of
    29.7 us when it selected avx2; 1.27-1.30x with the path set once, and 1.29-1.35x with NumPy
    itself limited to AVX2, NPY_DISABLE_CPU_FEATURES=X86_V4, as on an AVX2-only CPU).  The path
    in use before is restored afterwards, whatever happens."""
    from cdrop import _kernels

    pristine = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    x = pristine.copy()
    restore = partial(np.copyto, x, pristine)
    before = _kernels.get_path()
    block = {}
    try:
        for path in paths:
            _kernels.set_path(path)
            got = _interleaved([(path, cdrop_inplace(x, p, 1), restore),
                                (FLOOR, floor_scale(x, p, 1), restore)], rounds, warmup=2)
            block[path], block[path_floor(path)] = got[path], got[FLOOR]
    finally:
        _kernels.set_path(before)
    return block


def paths_table(path_results, paths):
    lines = ["## Kernel paths (issue 12, items 1 and 6)", "",
             "cdrop in place, float32, 1 thread, the path forced with `cdrop._kernels.set_path` "
             "(as `CDROP_KERNEL=` does) once before its own interleaved run; time over the floor "
             "`np.multiply(x, c, out=x)` of that run (the floor column: the first path's run); "
             "portable / avx2 is the ratio of the two paths' ratios.", "",
             "| elements | p | floor | " + " | ".join(paths)
             + (" | portable / avx2" if {"portable", "avx2"} <= set(paths) else "") + " |",
             "| ---: | ---: | ---: |" + " ---: |" * (len(paths) + ({"portable", "avx2"}
                                                                  <= set(paths)))]
    for (n, p), block in path_results.items():
        f = block[path_floor(paths[0]) if path_floor(paths[0]) in block else FLOOR]["median_s"]
        cells = [f"{fmt_time(block[k]['median_s'])} ({fmt_ratio(path_ratio(block, k))})"
                 for k in paths]
        if {"portable", "avx2"} <= set(paths):
            cells.append(fmt_ratio(path_ratio(block, "portable") / path_ratio(block, "avx2")))
        lines.append(f"| {n:,} | {p:g} | {fmt_time(f)} | " + " | ".join(cells) + " |")
    return lines + [""]


def paths_targets(path_results):
    rows = []
    for n in PATH_SCHEDULE:
        goal = 1.3 if n < 1_000_000 else 1.1
        desc = f"avx2 path, p = 0.5 in place, {n:,}, 1 thread: <= {goal:g}x floor"
        block = path_results.get((n, 0.5), {})
        if "avx2" not in block:
            rows.append((desc, "not measured", "n/a"))
        else:
            r = path_ratio(block, "avx2")
            rows.append((desc, f"{r:.2f}x", "PASS" if r <= goal else "MISS"))
    for n in (262_144, 4_194_304):
        for p in PATH_P:
            desc = f"portable path, p = {p:g} in place, {n:,}, 1 thread: <= 1.5x the avx2 path"
            block = path_results.get((n, p), {})
            if "avx2" not in block or "portable" not in block:
                rows.append((desc, "not measured", "n/a"))
                continue
            r = path_ratio(block, "portable") / path_ratio(block, "avx2")
            rows.append((desc, f"{r:.2f}x", "PASS" if r <= 1.5 else "MISS"))
    return rows


def layout_view(kind, base):
    """The view of `kind` (LAYOUTS, or a trailing shape's transpose) into `base`, an array that
    make_layout allocated for it."""
    if kind == "Fortran":
        return base  # allocated in Fortran order
    if kind == "x.T":
        return base.T
    if kind == "x[:, ::2]":
        return base[:, ::2]
    if kind == "3-D (1, 0, 2)":
        return base.transpose(1, 0, 2)
    return base.transpose(0, 2, 1)  # "3-D (0, 2, 1)" and the small trailing axes


def layout_base_shape(kind, side):
    """Shape of the array whose view layout_view takes: side x side elements in the view."""
    if kind == "x[:, ::2]":
        return (side, 2 * side)
    if kind.startswith("3-D"):
        return (256, side // 16, side // 16)  # 2048: (256, 128, 128); 4096: 256**3
    return (side, side)


def make_layout(kind, shape, dtype, seed=0):
    """(base, view) of standard normals: `kind`'s view into a new array of `shape`."""
    data = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    base = np.asfortranarray(data, dtype) if kind == "Fortran" else data.astype(dtype)
    return base, layout_view(kind, base)


def measure_layout(kind, shape, dtype, threads, rounds, p):
    """cdrop in place and out of place against NumPy on the same view: one interleaved run.
    The in-place cases write into one view, restored from a pristine view (untimed)."""
    _, a = make_layout(kind, shape, dtype)
    _, pristine = make_layout(kind, shape, dtype)
    restore = partial(np.copyto, a, pristine)
    c = a.dtype.type(1.0)
    cases = [
        (LAYOUT_NAMES[0], lambda: cdrop.dropout(a, p, inplace=True, seed=1, num_threads=threads),
         restore),
        (LAYOUT_NAMES[1], lambda: np.multiply(a, c, out=a), restore),
        (LAYOUT_NAMES[2], lambda: cdrop.dropout(pristine, p, seed=1, num_threads=threads), None),
        (LAYOUT_NAMES[3], lambda: np.multiply(pristine, c), None),
    ]
    # No warm-up round: every timing already follows an untimed priming call, and a round of
    # the slow layouts (on main) is most of a second.
    return _interleaved(cases, rounds, warmup=0)


def layout_identity(kind, shape, dtype, p=0.1):
    """cdrop on the view == cdrop on its C-ordered copy, bit for bit, out of place and in place
    (p = 0.1 takes the tie path)."""
    _, a = make_layout(kind, shape, dtype)
    c = np.ascontiguousarray(a)
    want = cdrop.dropout(c, p, seed=7).tobytes()
    same = np.ascontiguousarray(cdrop.dropout(a, p, seed=7)).tobytes() == want
    cdrop.dropout(a, p, seed=7, inplace=True)
    return same and np.ascontiguousarray(a).tobytes() == want


def layout_cases(args_check, threads_list):
    """[(kind, base shape, dtype, threads, rounds)] of the layout rows."""
    schedule = LAYOUT_CHECK_SCHEDULE if args_check else LAYOUT_SCHEDULE
    cases = [(kind, layout_base_shape(kind, side), dtype, threads, rounds)
             for side, rounds in schedule.items() for dtype in ("float32", "float64")
             for kind in LAYOUTS for threads in threads_list]
    rounds = TRAILING_CHECK_ROUNDS if args_check else TRAILING_ROUNDS
    cases += [(f"{shape}.transpose(0, 2, 1)", shape, "float32", threads, rounds)
              for shape in TRAILING_SHAPES for threads in threads_list]
    return cases


def layout_table(layout_results, identity):
    lines = ["## Layouts: cdrop against NumPy on the same array (issue 12, item 3)", "",
             "Out of place: `cdrop.dropout(a, p)` against `np.multiply(a, c)`; in place: against "
             "`np.multiply(a, c, out=a)` (NumPy on 1 thread).  Strided: a view into an array "
             "twice as wide; 3-D: (256, side/16, side/16) transposed.  Target <= 1.3x.", "",
             "| layout | dtype | view shape | threads | in place | NumPy | ratio | out of place "
             "| NumPy | ratio |", "| --- | --- | --- | ---: |" + " ---: |" * 6]
    for (kind, shape, dtype, threads), block in layout_results.items():
        t = [block[k]["median_s"] for k in LAYOUT_NAMES]
        view = layout_view(kind, np.empty(shape, np.int8) if kind != "Fortran"
                           else np.empty(shape, np.int8, order="F")).shape
        lines.append(f"| {kind} | {dtype} | {view} | {threads} | {fmt_time(t[0])} | "
                     f"{fmt_time(t[1])} | {fmt_ratio(t[0] / t[1])} | {fmt_time(t[2])} | "
                     f"{fmt_time(t[3])} | {fmt_ratio(t[2] / t[3])} |")
    if identity:
        lines += ["", "Bit identity, cdrop on the view == cdrop on its C-ordered copy (p = 0.1, "
                  "out of place and in place): " + "; ".join(
                      f"{k}: {'same' if ok else 'DIFFERENT'}" for k, ok in identity.items())
                  + "."]
    return lines + [""]


def layout_targets(layout_results):
    """One row per (layout, in/out of place): the worst ratio over dtypes, sizes and threads."""
    rows = []
    kinds = list(dict.fromkeys(k for k, _, _, _ in layout_results)) or list(LAYOUTS)
    for kind in kinds:
        for mode, (mine, numpy_name) in (("in place", LAYOUT_NAMES[:2]),
                                         ("out of place", LAYOUT_NAMES[2:])):
            desc = f"{kind}, {mode}: <= 1.3x {numpy_name} on the same array"
            ratios = {key: b[mine]["median_s"] / b[numpy_name]["median_s"]
                      for key, b in layout_results.items() if key[0] == kind}
            if not ratios:
                rows.append((desc, "not measured", "n/a"))
                continue
            (_, shape, dtype, threads), r = max(ratios.items(), key=lambda kv: kv[1])
            ok = sum(v <= 1.3 for v in ratios.values())
            rows.append((desc, f"worst {r:.2f}x ({dtype}, base {shape}, {threads} thread(s)); "
                         f"{ok} of {len(ratios)} cases within", "PASS" if r <= 1.3 else "MISS"))
    return rows


def view_size(kind, shape):
    """Elements of `kind`'s view into an array of `shape` (layout_view)."""
    return math.prod(shape) // (2 if kind == "x[:, ::2]" else 1)


def readme_table(p_results, path_results, cold, layout_results, paths):
    """The README's compact speed table: 1 thread, each cell a ratio from one interleaved run
    (blank where this run did not measure it).  The 4M and 16M columns hold the 2048x2048 and
    4096x4096 layouts, which have the same element counts."""
    sizes = (262_144, 4_194_304, 16_777_216)

    def path_cell(path, p, n):
        block = path_results.get((n, p), {})
        return path_ratio(block, path) if path in block else None

    def worst_p(n):
        block = p_results.get((n, 1))
        if block is None:
            return None
        half = block["p=0.5"]["median_s"]
        return max(block[f"p={p:g}"]["median_s"] for p in ISSUE12_P) / half

    def cold_cell(n):
        if (n, 1) not in cold:
            return None
        c, f, _ = cold_ratios(cold[(n, 1)])
        return c / f

    def layout_cell(trailing, names, n):
        ratios = [b[names[0]]["median_s"] / b[names[1]]["median_s"]
                  for (kind, shape, _, th), b in layout_results.items()
                  if th == 1 and kind.startswith("(") == trailing
                  and view_size(kind, shape) == n]
        return max(ratios) if ratios else None

    auto = paths[0] if paths else "auto"
    rows = [(f"C order, p = 0.5 ({auto}), x floor", [path_cell(auto, 0.5, n) for n in sizes]),
            (f"C order, p = 0.1 ({auto}), x floor", [path_cell(auto, 0.1, n) for n in sizes]),
            ("worst p of 0.05 ... 0.9, x p = 0.5", [worst_p(n) for n in sizes])]
    rows += [(f"`CDROP_KERNEL={path}`, p = 0.5, x floor",
              [path_cell(path, 0.5, n) for n in sizes]) for path in paths[1:]]
    rows.append(("cold cache (restored before each call), p = 0.5, x floor",
                 [None] + [cold_cell(n) for n in sizes[1:]]))
    rows += [("Fortran, x.T, strided, 3-D transposes (worst), in place, x NumPy",
              [None] + [layout_cell(False, LAYOUT_NAMES[:2], n) for n in sizes[1:]]),
             ("the same, out of place, x NumPy",
              [None] + [layout_cell(False, LAYOUT_NAMES[2:], n) for n in sizes[1:]]),
             ("small trailing axes, e.g. (2**20, 8, 2).transpose(0, 2, 1) (worst), in place",
              [None, None, layout_cell(True, LAYOUT_NAMES[:2], sizes[2])])]
    lines = ["## Compact table (for the README)", "",
             "1 thread, float32 (layouts: the worse of float32 and float64); time over the "
             "floor `np.multiply(x, c, out=x)` (layouts: over NumPy on the same array).", "",
             "| case | 256Ki | 4Mi (2048x2048) | 16Mi (4096x4096) |",
             "| --- | ---: | ---: | ---: |"]
    for label, cells in rows:
        lines.append(f"| {label} | " + " | ".join(fmt_ratio(c) if c else "" for c in cells)
                     + " |")
    return lines + [""]


def run_issue12(args, threads_list, results):
    """Measure issue 12's rows (float32 runs): returns (markdown lines, target rows, JSON)."""
    quick, check = args.quick, args.check
    lines, rows, js = [], [], {}

    def step(label, t0):
        print(f"[{label}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)

    def rounds_of(r):
        return args.rounds if args.rounds is not None else r

    t0 = time.perf_counter()
    schedule = P_QUICK_SCHEDULE if quick else P_CHECK_SCHEDULE if check else P_SCHEDULE
    p_results = {(n, th): measure_p(n, th, rounds_of(r)) for n, r in schedule.items()
                 for th in threads_list}
    md = p_table(p_results)
    print("\n".join(md), flush=True)
    lines += md
    rows += p_targets(p_results, threads_list)
    js["p_values"] = [{"size": n, "threads": th, "impl": k, **s}
                      for (n, th), b in p_results.items() for k, s in b.items()]
    step("every p", t0)

    t0 = time.perf_counter()
    paths = kernel_paths()
    schedule = PATH_QUICK_SCHEDULE if quick else PATH_CHECK_SCHEDULE if check else PATH_SCHEDULE
    path_results = {(n, p): measure_paths(n, p, rounds_of(r), paths)
                    for n, r in schedule.items() for p in PATH_P}
    md = paths_table(path_results, paths)
    print("\n".join(md), flush=True)
    lines += md
    rows += paths_targets(path_results)
    js["kernel_paths"] = [{"size": n, "threads": 1, "p": p, "impl": k, **s}
                          for (n, p), b in path_results.items() for k, s in b.items()]
    step("kernel paths", t0)
    cold, layout_results = {}, {}
    if quick:  # the sizes below are all above --quick's
        md = readme_table(p_results, path_results, cold, layout_results, paths)
        print("\n".join(md), flush=True)
        return lines + md, rows, js

    t0 = time.perf_counter()
    schedule = COLD_CHECK_SCHEDULE if check else COLD_SCHEDULE
    cold = {(n, th): measure_cold(n, th, rounds_of(r)) for n, r in schedule.items()
            for th in threads_list}
    md = cold_table(cold, results)
    print("\n".join(md), flush=True)
    lines += md
    rows += cold_targets(cold, results, threads_list)
    js["cold_cache"] = [{"size": n, "threads": th, "impl": k, "p": 0.5, **s}
                        for (n, th), b in cold.items() for k, s in b.items()]
    step("cold cache", t0)

    t0 = time.perf_counter()
    for kind, shape, dtype, th, r in layout_cases(check, threads_list):
        layout_results[(kind, shape, dtype, th)] = measure_layout(kind, shape, dtype, th,
                                                                  rounds_of(r), args.p)
    identity = {}
    for kind in LAYOUTS:
        identity[kind] = layout_identity(kind, layout_base_shape(kind, 2048), np.float32)
    for shape in TRAILING_SHAPES:
        identity[f"{shape}.transpose(0, 2, 1)"] = layout_identity("trailing", shape, np.float32)
    md = layout_table(layout_results, identity)
    print("\n".join(md), flush=True)
    lines += md
    rows += layout_targets(layout_results)
    js["layouts"] = [{"layout": kind, "base_shape": list(shape), "dtype": dtype, "threads": th,
                      "p": args.p, "impl": k, **s}
                     for (kind, shape, dtype, th), b in layout_results.items()
                     for k, s in b.items()]
    js["layout_bit_identity"] = identity
    step("layouts", t0)
    md = readme_table(p_results, path_results, cold, layout_results, paths)
    print("\n".join(md), flush=True)
    return lines + md, rows, js


# --- formatting -----------------------------------------------------------------------------


def fmt_time(s):
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(x):
    if x is None:
        return ""
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def bytes_moved(name, n, itemsize):
    return n / 8 if name == MASK else 2 * n * itemsize


def table(block, n, threads, itemsize):
    """Markdown lines for one (size, threads)."""
    med = {name: v["median_s"] for name, v in block.items()}
    floor = med.get(FLOOR)
    omp = med.get(OMP_FLOOR) if threads > 1 else None
    head = ["implementation", "median time", "G elem/s", "GB/s moved", "x floor"]
    if omp is not None:
        head.append("x OpenMP floor")
    peers = [peer for peer in PEERS if peer in med]
    head += [f"faster than {peer}" for peer in peers]
    lines = [f"### {n:,} elements, {threads} thread{'s' if threads > 1 else ''}", "",
             "| " + " | ".join(head) + " |",
             "| --- |" + " ---: |" * (len(head) - 1)]
    for name, t in med.items():
        row = [f"**{name}**" if name == CDROP_OOP else name, fmt_time(t), f"{n / t / 1e9:.3g}",
               f"{bytes_moved(name, n, itemsize) / t / 1e9:.3g}",
               fmt_ratio(t / floor) if floor else ""]
        if omp is not None:
            row.append(fmt_ratio(t / omp))
        row += [fmt_ratio(med[peer] / t) for peer in peers]
        lines.append("| " + " | ".join(row) + " |")
    if CDROP_OOP in med and peers:
        lines += ["", "cdrop out of place is " + ", ".join(
            f"{fmt_ratio(med[peer] / med[CDROP_OOP])} faster than {peer}" for peer in peers) + "."]
    return lines + [""]


# --- targets (the issue's "Speed targets"; float32, p = 0.5) --------------------------------


def targets(results, threads_list):
    """[(description, measured value text, PASS/MISS/n/a)] computed from one run's medians."""
    many = max(threads_list)

    def med(n, threads, name):
        return results.get((n, threads), {}).get(name, {}).get("median_s")

    def check(desc, value, ok, fmt="{:.2f}x"):
        if value is None:
            return (desc, "not measured", "n/a")
        return (desc, fmt.format(value) if isinstance(fmt, str) else fmt(value),
                "PASS" if ok(value) else "MISS")

    def ratio(a, b):
        return None if a is None or b is None else a / b

    def floor_of(n, threads):  # the OpenMP floor for many threads (float32 only), else NumPy's
        if threads > 1 and med(n, threads, OMP_FLOOR) is not None:
            return OMP_FLOOR
        return FLOOR

    rows = []
    for n in (4_194_304, 16_777_216):
        for threads in threads_list:
            floor_name = floor_of(n, threads)
            r = ratio(med(n, threads, CDROP_INPLACE), med(n, threads, floor_name))
            extra = ""
            if floor_name != FLOOR:
                r_np = ratio(med(n, threads, CDROP_INPLACE), med(n, threads, FLOOR))
                extra = f" (vs np.multiply: {r_np:.2f}x)" if r_np else ""
            rows.append(check(f"in place, {n:,}, {threads} thread(s): <= 1.2x "
                              f"{'np.multiply' if floor_name == FLOOR else 'OpenMP x*=c'} floor",
                              r, lambda v: v <= 1.2, lambda v, e=extra: f"{v:.2f}x{e}"))
    n = 4_194_304
    for threads in threads_list:
        oop = med(n, threads, CDROP_OOP)
        ref = med(n, threads, "NumPy reference")
        # The reference allocates its result, so the like-for-like comparison is cdrop out of
        # place.  Printed beside it: cdrop in place, and the allocating np.multiply(x, c), the
        # out-of-place floor on one thread: when the reference runs fast, even that floor is
        # near 20x (single-threaded NumPy, so with more threads it is not a bound for cdrop).
        ceiling, inplace = ratio(ref, med(n, threads, FLOOR_NEW)), ratio(ref, med(n, threads,
                                                                                CDROP_INPLACE))
        note = "".join([f"; in place {inplace:.1f}x" if inplace else "",
                        f"; np.multiply(x, c) {ceiling:.1f}x" if ceiling else ""])
        rows.append(check(f"4,194,304, {threads} thread(s): cdrop out of place >= 20x faster "
                          "than NumPy reference",
                          ratio(ref, oop), lambda v: v >= 20,
                          lambda v, e=note: f"{v:.1f}x{e}"))
        rows.append(check(f"4,194,304, {threads} thread(s): cdrop out of place >= 4x faster "
                          "than NumPy fastest",
                          ratio(med(n, threads, "NumPy fastest"), oop), lambda v: v >= 4,
                          "{:.1f}x"))
        rows.append(check(f"4,194,304, {threads} thread(s): cdrop out of place >= 4x faster "
                          "than torch dropout (same threads)",
                          ratio(med(n, threads, "torch dropout"), oop), lambda v: v >= 4,
                          "{:.1f}x"))
    rows.append(check("262,144, 1 thread: in place <= 1.6x np.multiply floor",
                      ratio(med(262_144, 1, CDROP_INPLACE), med(262_144, 1, FLOOR)),
                      lambda v: v <= 1.6))
    t_small, t_floor = med(1_000, 1, CDROP_INPLACE), med(1_000, 1, FLOOR)
    rows.append(check("1,000 elements, 1 thread: in-place call <= 2.5x np.multiply(out=x)",
                      ratio(t_small, t_floor), lambda v: v <= 2.5,
                      lambda v: f"{v:.2f}x ({t_small * 1e6:.2f} us vs {t_floor * 1e6:.2f} us)"))
    n = 16_777_216
    for threads in threads_list:
        t = med(n, threads, MASK)
        rate = None if t is None else n / t / 1e9 / threads
        rows.append(check(f"dropout_mask(packed=True), 16,777,216, {threads} thread(s): "
                          ">= 8 G mask bits/s per core", rate, lambda v: v >= 8,
                          "{:.1f} G bits/s/core"))
    if many > 1:
        t1, tm = med(n, 1, CDROP_INPLACE), med(n, many, CDROP_INPLACE)
        speedup = ratio(t1, tm)
        f1, fm = ratio(t1, med(n, 1, FLOOR)), ratio(tm, med(n, many, floor_of(n, many)))
        omp_scaling = ratio(med(n, 1, OMP_FLOOR), med(n, many, OMP_FLOOR))
        scaling = (f"; the OpenMP floor itself scales {omp_scaling:.2f}x" if omp_scaling
                   else "")
        desc = f"16,777,216 in place: {many} threads vs 1 >= 1.6x, or both at the floor (<= 1.2x)"
        if speedup is None or f1 is None or fm is None:
            rows.append((desc, "not measured", "n/a"))
        else:
            at_floor = f1 <= 1.2 and fm <= 1.2
            text = (f"{speedup:.2f}x (1 thread {f1:.2f}x floor, {many} threads {fm:.2f}x "
                    f"{'OpenMP ' if floor_of(n, many) == OMP_FLOOR else ''}floor{scaling})")
            rows.append((desc, text, "PASS" if speedup >= 1.6 or at_floor else "MISS"))
    return rows


# --- machine description ---------------------------------------------------------------------


def cpu_times():
    """(busy s of all CPUs, steal s, this process's CPU s): to tell what others used meanwhile."""
    own = sum(os.times()[:2])
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None, None, own
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick, own


def contention(start, end, elapsed):
    """CPU seconds that other processes (and the hypervisor: steal) took during the run."""
    (busy0, steal0, own0), (busy1, steal1, own1) = start, end
    if busy0 is None:
        return None
    other = max(0.0, (busy1 - busy0) - (own1 - own0))
    return {"other_processes_cpu_s": round(other, 2), "steal_s": round(steal1 - steal0, 2),
            "own_cpu_s": round(own1 - own0, 2), "elapsed_s": round(elapsed, 1)}




def machine():
    info = {"cpu_model": platform.processor() or platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                info["cpu_model"] = value
            elif key in ("cpu family", "model", "stepping") and key not in info:
                info[key.replace(" ", "_")] = value
            elif key == "flags" and "hypervisor" in value.split():
                info["virtualised"] = True
            if line == "" and "cpu_family" in info:
                break
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                               check=False).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Hypervisor vendor", "L2 cache", "L3 cache"):
                info[key.strip().lower().replace(" ", "_")] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["logical_cpus"] = os.cpu_count()
    info["cores_in_affinity_mask"] = ALL_CORES
    return info


def versions():
    v = {"python": platform.python_version(), "numpy": np.__version__,
         "cdrop": cdrop.__version__ if hasattr(cdrop, "__version__")
         else cdrop.show_config()["version"]}
    try:
        import torch
        v["torch"] = torch.__version__
    except ImportError:
        v["torch"] = None
    try:
        import matplotlib
        v["matplotlib"] = matplotlib.__version__
    except ImportError:
        v["matplotlib"] = None
    return v


def header(meta):
    m, v, cfg = meta["machine"], meta["versions"], meta["cdrop_config"]
    cpu = m["cpu_model"]
    if "cpu_family" in m:
        cpu += f" (family {m['cpu_family']}, model {m.get('model', '?')})"
    virt = m.get("hypervisor_vendor") or ("virtualised" if m.get("virtualised") else "")
    caches = ", ".join(f"{k.upper().replace('_CACHE', '')} {m[k]}"
                       for k in ("l2_cache", "l3_cache") if k in m)
    la0, c = meta["loadavg_start"], meta["contention"]
    busy = c is not None and (c["other_processes_cpu_s"] + c["steal_s"]
                              > 0.02 * c["elapsed_s"] * m["cores_in_affinity_mask"])
    lines = [
        "# cdrop benchmark report", "",
        f"* Command: `{meta['command']}`",
        f"* Date: {meta['date']} ({meta['elapsed_s']:.0f} s)",
        f"* CPU: {cpu}; {m['cores_in_affinity_mask']} cores in the affinity mask "
        f"({m['logical_cpus']} logical CPUs)" + (f"; {virt}" if virt else "")
        + (f"; {caches}" if caches else "")
        + (f"; {m['memory_gib']} GiB RAM" if "memory_gib" in m else ""),
        (f"* Versions: Python {v['python']}, NumPy {v['numpy']}, cdrop {v['cdrop']}, "
         f"torch {v['torch'] or 'not installed'}"),
        (f"* cdrop kernel path: simd={cfg['simd']}, openmp={cfg['openmp']}, "
         f"max_threads={cfg['max_threads']}"),
        (f"* Threads: {', '.join(map(str, meta['threads']))}; dtype {meta['dtype']}, "
         f"p = {meta['p']}"),
        f"* Load average (1 min) before the run: {la0:.2f}" + (
            f"; during the run other processes used {c['other_processes_cpu_s']:.1f} CPU s and "
            f"the hypervisor stole {c['steal_s']:.1f} s, against {c['own_cpu_s']:.1f} CPU s "
            f"of this run" if c else "")
        + (" -- the machine was busy: times with all cores are suspect" if busy else ""),
        ("* Method: interleaved rounds (A, B, C, ... then again), median per implementation; "
        "in-place implementations restored from a pristine copy before every timed call "
        "(at the two smallest sizes, timed in batches, every call of a batch has its own "
        "fresh copy), outside the timed region.  "
        "At the sizes timed one call at a time, each timed call follows an untimed call of "
        "the same implementation.  Out-of-place rows include allocating the result, which from "
        "4M elements on is page faults whose cost depends on the kernel's state (huge pages) "
        "and varies from run to run; `cdrop out=` shows the kernel without it.  "
        "GB/s counts one read and one write per element (the packed mask: n/8 bytes).  "
        "`x floor` is the time over `np.multiply(x, c, out=x)`'s; `faster than P` is P's time "
        "over this row's."),
        "",
    ]
    if meta["skipped"]:
        lines += ["Not measured: " + "; ".join(f"{k} ({v})" for k, v in meta["skipped"].items()),
                  ""]
    return lines


# --- plot -----------------------------------------------------------------------------------


def plot(results, sizes, threads_list, names, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fixed = {  # name -> color; the cdrop family in strong colours, the floors in black/grey
        "cdrop in place": "tab:blue", "cdrop out of place": "tab:orange",
        "cdrop out=": "tab:green", "cdrop mask packed": "tab:purple",
        "cdrop Dropout.backward": "tab:cyan", "NumPy reference": "tab:brown",
        "NumPy fastest": "tab:pink", "torch dropout": "tab:red", "torch dropout inplace": "gold",
    }
    spare = iter(plt.get_cmap("Dark2").colors)
    style = {}
    for name in names:
        if name == FLOOR:
            style[name] = {"color": "black", "lw": 2.2, "marker": "s"}
        elif name == OMP_FLOOR:
            style[name] = {"color": "0.35", "lw": 2.0, "marker": "s", "ls": ":"}
        elif name == "floor np.copyto":
            style[name] = {"color": "0.55", "lw": 1.5, "marker": "s", "ls": "--"}
        elif name == FLOOR_NEW:
            style[name] = {"color": "0.2", "lw": 1.5, "marker": "s", "ls": "-."}
        else:
            cd = name.startswith("cdrop")
            style[name] = {"color": fixed.get(name) or next(spare), "lw": 2.4 if cd else 1.6,
                           "marker": "o" if cd else "^"}
            if name.endswith("inplace"):
                style[name]["ls"] = "--"
    fig, axes = plt.subplots(1, len(threads_list), figsize=(6.5 * len(threads_list) + 3, 6),
                             sharey=True, squeeze=False)
    axes = axes[0]
    for ax, threads in zip(axes, threads_list):
        floor_pts = [(n, n / results[(n, threads)][FLOOR]["median_s"] / 1e9) for n in sizes
                     if FLOOR in results.get((n, threads), {})]
        if floor_pts:
            xs, ys = zip(*floor_pts)
            ax.fill_between(xs, 1e-4, ys, color="0.9", alpha=0.7, lw=0,
                            label="below the np.multiply floor")
        for name in names:
            pts = [(n, n / results[(n, threads)][name]["median_s"] / 1e9) for n in sizes
                   if name in results.get((n, threads), {})]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=name, ms=5, **style[name])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{threads} thread{'s' if threads > 1 else ''}", fontsize=12)
        ax.set_xlabel("array size (elements)", fontsize=11)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.12)
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{n:,}" if n < 10**6 else f"{n / 2**20:.0f}M" for n in sizes],
                           fontsize=9)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0].set_ylabel("throughput (G elements/s, log)", fontsize=11)
    all_y = [n / v["median_s"] / 1e9 for (n, _), block in results.items()
             for v in block.values()]
    axes[0].set_ylim(min(all_y) / 1.6, max(all_y) * 1.6)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # names present only with many threads
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.995, 0.5), fontsize=9,
               frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# --- main -----------------------------------------------------------------------------------


def _tie_free(p):
    """True when p's keep threshold (docs/rng.md, section 6) has its low 24 bits zero."""
    if not 0.0 < p < 1.0:
        return False
    thr = min(math.floor((1.0 - p) * 4294967296.0 + 0.5), 2**32 - 1)
    return thr & 0xFFFFFF == 0


def ad_hoc_labels(args):
    """What makes this run differ from the full default run: [] for that run only."""
    return [label for label, differs in (
        ("quick", args.quick), (f"rounds{args.rounds}", args.rounds is not None),
        (args.dtype, args.dtype != "float32"), (f"p{args.p:g}", args.p != 0.5)) if differs]


def output_folder(args):
    """Where the report goes: --out if given; else bench/results (the committed results) for
    the full default run, and build/bench-report/<what differs> for any other run, so that a
    quick or ad-hoc run never overwrites the committed results by accident."""
    if args.out is not None:
        return args.out
    labels = ad_hoc_labels(args)
    if not labels:
        return RESULTS_DIR
    return BENCH_DIR.parent / "build" / "bench-report" / "-".join(labels)


def parser():
    """The command line's argparse parser."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="sizes up to 262,144 only, fewer rounds (about 15 s)")
    ap.add_argument("--check", action="store_true",
                    help="only what the speed targets need (cdrop in place, out of place and "
                         "packed mask, the floors, and the peers at 4M; the dropout family "
                         "and its torch peers at 4M), fewer rounds: print the tables and the "
                         "target checklist, write no file (a few minutes: issue 12's layouts "
                         "are most of it while they are slow)")
    ap.add_argument("--rounds", type=positive_int, default=None,
                    help="rounds at every size (default: 61 up to 16,384, 201 at 262,144, "
                         "41 at 4M, 21 at 16M; --quick: 41/41/101; --check: 31/61/21/15)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: bench/results for a run with no other "
                         "option, which rewrites the committed results; "
                         "build/bench-report/<options> for any other run)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--p", type=float, default=0.5, help="drop probability (default 0.5)")
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    if not 0.0 <= args.p <= 1.0:
        ap.error(f"argument --p: must be a probability in [0, 1], got {args.p}")
    if args.check and args.out is not None:
        ap.error("argument --out: not allowed with --check, which writes no file")

    here = Path(cdrop.__file__).resolve().parent
    if here == BENCH_DIR.parent / "cdrop":
        sys.exit("cdrop was imported from the source tree; install it (pip install .) and run "
                 "`python bench/report.py` from the repository root")

    if args.check:
        schedule = CHECK_SCHEDULE
        sizes = tuple(n for n in CHECK_SCHEDULE if n in QUICK_SIZES or not args.quick)
    else:
        schedule = QUICK_SCHEDULE if args.quick else SCHEDULE
        sizes = QUICK_SIZES if args.quick else SIZES
    threads_list = sorted({1, ALL_CORES})
    dtype = np.dtype(args.dtype)
    names, _ = implementations(dtype)
    out_dir = None if args.check else output_folder(args)
    command = "python " + shlex.join(sys.argv if argv is None else [__file__, *argv])
    loadavg_start = os.getloadavg()[0]
    cpu_start = cpu_times()
    start = time.perf_counter()

    results, skipped, lines = {}, {}, []
    cfg = cdrop.show_config()
    print(f"cdrop {cfg['version']} ({cdrop.__file__}), kernel path {cfg['simd']}; {args.dtype}, "
          f"p = {args.p}, threads {threads_list}, sizes {', '.join(f'{n:,}' for n in sizes)}",
          flush=True)
    if out_dir is None:
        print("--check: the tables and the target checklist only; no file is written",
              flush=True)
    else:
        print(f"The report goes to {out_dir}" + (
            "" if out_dir != RESULTS_DIR or args.out is not None
            else " (the committed results: a run with other options writes to build/)"),
            flush=True)
    for n in sizes:
        rounds, batch = schedule[n]
        if args.rounds is not None:
            rounds = args.rounds
        for threads in threads_list:
            t0 = time.perf_counter()
            block, skip = measure(n, threads, dtype, args.p, rounds, batch,
                                  check_names(n) if args.check else None)
            skipped.update(skip)
            results[(n, threads)] = block
            md = table(block, n, threads, dtype.itemsize)
            md.insert(1, f"({rounds} rounds" + (f", {batch} calls per timing" if batch > 1
                                                 else "") + ")")
            lines += md
            print("\n".join(md), flush=True)
            print(f"[{n:,} elements, {threads} thread(s): {time.perf_counter() - t0:.1f} s]",
                  file=sys.stderr, flush=True)

    torch_results = {}
    if dtype == np.float32:  # the PyTorch comparison has its own dtypes: run it once
        t0 = time.perf_counter()
        torch_schedule = (TORCH_CHECK_SCHEDULE if args.check and not args.quick
                          else {} if args.check
                          else TORCH_QUICK_SCHEDULE if args.quick else TORCH_SCHEDULE)
        if args.rounds is not None:
            torch_schedule = {n: (args.rounds, b) for n, (_, b) in torch_schedule.items()}
        # --check: 1 thread only, the targets' case (16M forward plus backward is ~0.4 s)
        torch_results, skip = measure_torch(torch_schedule, [1] if args.check else threads_list,
                                            args.p)
        skipped.update(skip)
        if torch_results:
            md = torch_table(torch_results)
            lines += md
            print("\n".join(md), flush=True)
        print(f"[PyTorch comparison: {time.perf_counter() - t0:.1f} s]", file=sys.stderr,
              flush=True)

    half_results = {}
    if dtype == np.float32 and not args.quick:  # 4M and 16M: not a --quick size
        t0 = time.perf_counter()
        half_schedule = HALF_CHECK_SCHEDULE if args.check else HALF_SCHEDULE
        if args.rounds is not None:
            half_schedule = {n: (args.rounds, b) for n, (_, b) in half_schedule.items()}
        half_results, skip = measure_half(half_schedule, args.p)
        skipped.update(skip)
        md = half_table(half_results)
        lines += md
        print("\n".join(md), flush=True)
        print(f"[half precision: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)

    family_results = {}
    if dtype == np.float32 and not args.quick:  # 4M and 16M: not a --quick size
        t0 = time.perf_counter()
        family_schedule = FAMILY_CHECK_SCHEDULE if args.check else FAMILY_SCHEDULE
        md = ["## The dropout family (issue 11)", "",
              f"float32, p = {args.p:g} (gaussian_noise: stddev 0.1), in place (dropout_add: "
              "`out=residual`, rows of 1,024 with a bias along them); every case is restored "
              "before its timed call.  `floor` is `np.multiply(x, c, out=x)` (dropout_add: "
              "`np.add(x, r, out=r)`, the same three memory streams); with more than one thread, "
              "cdrop's OpenMP `x *= c` (dropout_add: still `np.add` on 1 thread, since no "
              "three-stream OpenMP floor exists).  Peers: PyTorch's function at the same thread "
              "count, or NumPy's textbook form where torch has none (1 thread).", ""]
        for n, rounds in family_schedule.items():
            if args.rounds is not None:
                rounds = args.rounds
            for threads in threads_list:
                block, skip = measure_family(n, threads, args.p, rounds,
                                             family_check_names(n) if args.check else None)
                skipped.update(skip)
                family_results[(n, threads)] = block
                tab = family_table(block, n, threads)
                tab.insert(1, f"({rounds} rounds)")
                md += tab
                print("\n".join(tab), flush=True)
        lines += md
        print(f"[dropout family: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)

    issue12_rows, issue12_json = [], {}
    if dtype == np.float32:  # the p, kernel-path and cold rows are float32; layouts do both
        md, issue12_rows, issue12_json = run_issue12(args, threads_list, results)
        lines += md

    target_rows = (targets(results, threads_list)
                   + (torch_targets(torch_results) if torch_results else [])
                   + half_targets(half_results)
                   + (family_targets(family_results, threads_list) if family_results else [])
                   + issue12_rows)
    target_lines = ["## Targets", ""]
    if dtype != np.float32 or args.p != 0.5:
        target_lines += [("(The targets are defined for float32, p = 0.5; this run is "
                          f"{args.dtype}, p = {args.p}.)"), ""]
    if _tie_free(args.p):
        # Say so next to the checklist: the kernels skip the tie hashes at such p, and a reader
        # comparing with, say, p = 0.1 should know which loop these numbers measure.
        target_lines += [(f"(At p = {args.p} the keep threshold's low 24 bits are 0, so no tie "
                          "of the byte comparison is kept and the kernels skip the tie hashes "
                          "(docs/rng.md, section 6). Other p, such as 0.1, hash 1 element in "
                          "256: run `python bench/report.py --p 0.1` to measure that path.)"),
                         ""]
    target_lines += [f"- [{'x' if status == 'PASS' else ' '}] {status}: {desc}: {value}"
                     for desc, value, status in target_rows] + [""]

    elapsed = time.perf_counter() - start
    contended = contention(cpu_start, cpu_times(), elapsed)
    if out_dir is None:
        print("\n".join(target_lines))
        print(f"Measured in {elapsed:.0f} s; no file written (--check).")
    else:
        meta = {
            "command": command,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "elapsed_s": elapsed,
            "machine": machine(),
            "versions": versions(),
            "cdrop_config": cdrop.show_config(),
            "threads": threads_list,
            "dtype": args.dtype,
            "p": args.p,
            "quick": args.quick,
            "loadavg_start": loadavg_start,
            "contention": contended,
            "skipped": skipped,
        }
        written = write_report(out_dir, meta, lines, target_lines, target_rows, results,
                               schedule, args.rounds, list(sizes), threads_list, list(names),
                               torch_results, half_results, family_results, issue12_json)
        print("\n".join(target_lines))
        print(f"Wrote {written} in {elapsed:.0f} s.")
    if contended:
        print("Other processes used {other_processes_cpu_s} CPU s, steal {steal_s} s, this run "
              "{own_cpu_s} CPU s.".format(**contended))
    return 0


def write_report(out_dir, meta, lines, target_lines, target_rows, results, schedule, rounds,
                 sizes, threads_list, names, torch_results=None, half_results=None,
                 family_results=None, issue12=None):
    """Write report.md, report.json and throughput.png into `out_dir`; say what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = header(meta) + ["## Results", ""] + lines + target_lines
    (out_dir / "report.md").write_text("\n".join(report))
    json_results = [
        {"size": n, "threads": threads, "impl": name, "dtype": meta["dtype"], "p": meta["p"],
         "rounds": rounds if rounds is not None else schedule[n][0],
         "calls_per_timing": schedule[n][1], **stats}
        for (n, threads), block in results.items() for name, stats in block.items()]
    json_torch = [{"size": n, "threads": threads, "impl": name, "dtype": dtype, "p": meta["p"],
                   **stats}
                  for (dtype, n, threads), block in (torch_results or {}).items()
                  for name, stats in block.items()]
    (out_dir / "report.json").write_text(json.dumps(
        {"meta": meta, "results": json_results, "torch_training": json_torch,
         "half_precision": [{"size": n, "threads": 1, "impl": "cdrop in place", "dtype": d,
                             "p": meta["p"], **stats}
                            for n, block in (half_results or {}).items()
                            for d, stats in block.items()],
         "dropout_family": [{"size": n, "threads": threads, "impl": name, "dtype": "float32",
                             "p": meta["p"], "shape": list(family_shape(n)), **stats}
                            for (n, threads), block in (family_results or {}).items()
                            for name, stats in block.items()],
         "issue12": issue12 or {},
         "targets": [{"target": d, "measured": v, "status": s} for d, v, s in target_rows]},
        indent=1) + "\n")
    try:
        plot(results, sizes, threads_list, names, out_dir / "throughput.png",
             f"cdrop dropout throughput, {meta['dtype']}, p = {meta['p']} "
             f"({meta['machine']['cpu_model']}, {ALL_CORES} cores)")
        plotted = f", {out_dir / 'throughput.png'}"
    except ImportError as exc:
        plotted = f" (no plot: {exc}; pip install matplotlib)"
    return f"{out_dir / 'report.md'}, {out_dir / 'report.json'}{plotted}"


if __name__ == "__main__":
    sys.exit(main())
