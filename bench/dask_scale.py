"""cdrop.dask at scale: an array larger than the machine's memory, streamed through a LocalCluster.

    python bench/dask_scale.py [--gib 32] [--chunk-mib 128] [--repeats 3] [--p 0.5 0.1]
                               [--layout blocks|rows] [--impl auto|module|standin]
                               [--out DIR] [--quick]

Issue 13, item 4.  A float32 dask array of --gib GiB (default 32, more than this 24 GiB machine
holds) is made lazily, chunk by chunk, on a `distributed.LocalCluster(n_workers=2,
threads_per_worker=1, processes=True)`, and reduced with `.mean()` through these pipelines:

  * source:    `x.mean()`                  what making the chunks costs (for the reader)
  * floor:     `(x * 2).mean()`            the bandwidth floor of the pipeline
  * textbook:  `(x * (da.random.random(x.shape, chunks=x.chunks) < keep) / keep).mean()`
  * cdrop:     `cdrop.dask.dropout(x, p, seed=1).mean()`, for each --p

Run it from the repository root with the `python` command, so that `import cdrop` finds the
INSTALLED package (bench/, not the root, is then first on sys.path).  Needs dask[array],
distributed and psutil (`pip install "cdrop[dask]" psutil`).

How it measures:
  * The pipelines run INTERLEAVED (source, floor, textbook, cdrop p=..., then again), --repeats
    times; the tables give medians.  Wall time is `dask.compute` on the cluster's client, graph
    optimisation and submission included (the same for every pipeline).
  * Throughput is bytes of x / wall time (GB = 1e9 bytes), whatever the pipeline does inside.
  * Peak RSS: a thread samples, every 50 ms, the resident memory of this process (client,
    scheduler and nannies live here) and of all its descendants (the worker processes); it
    reports the peak of the sum and the peak of the largest single process.
  * Spilling and deaths: after each run the workers report how many keys they hold on disk, and
    the run records whether the set of worker processes changed; a failed compute is recorded
    with its error instead of a time.
  * Contention: for each run, the CPU seconds that processes outside the cluster took
    (/proc/stat busy time less the cluster's own CPU time), and the hypervisor's steal.

Why the chunks are what they are: 128 MiB by default (32 Mi float32 elements), so that
  * a 32 GiB array is 256 chunks: the scheduler (which shares the 2 cores with the workers)
    spends a few ms per task, well under 5% of the tens of ms one chunk takes to stream;
  * every chunk is far larger than any cache, so each pipeline streams from DRAM, as a real
    array of this size would;
  * a task's memory stays bounded: the textbook pipeline's float64 uniform draw alone is twice
    the chunk (256 MiB), its temporaries about 5 chunks; with one thread per worker that is
    well under a GiB per worker (chunks of 1 GiB would make it ~5 GiB and leave an uneven tail
    of 1 chunk per worker at the end).
With --layout blocks (default), the chunks split both axes, (4096, 8192) blocks of a
(N, 65536) array, so that the block walk of `global_shape=`/`start=` is measured, not only
runs of C-order indices; --layout rows splits the first axis only.

The source is `da.ones` copied into a writeable C-ordered chunk: `da.ones` alone hands every
task a read-only, zero-strided broadcast of one value (dask's broadcast trick), which would
measure a pipeline that never reads memory.  `x.mean()` shows what this costs.

--impl auto (default) runs `cdrop.dask.dropout` when cdrop has it and `cdrop.dropout` has the
block API (`global_shape=`, `start=`); otherwise a stand-in here that does what the module does
(`map_blocks` calling `cdrop.dropout(block, p, seed=seed, global_shape=..., start=...,
num_threads=1)`), and on a cdrop without `global_shape` passes `offset=` the block's first
global index instead (the same cost, not the same bits).  --impl module|standin forces one.
The JSON and the table say which one ran.

Where it writes: --out DIR (default bench/results/ for a full run, build/dask-scale-quick/
with --quick) gets dask_scale.json and dask_scale.md.  --quick is a smoke run: 64 MiB in 8 MiB
chunks, 1 repeat, a few seconds.  This is a report: nothing here asserts a time.
"""
import argparse
import inspect
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COLS = 65536                 # 256 KiB float32 rows: the array is (N, 65536)
BLOCK_COLS = 8192            # --layout blocks: 8 column blocks, so every chunk is strided globally
TARGET_VS_TEXTBOOK = 5.0     # issue 13: cdrop >= 5x the textbook throughput
TARGET_VS_FLOOR = 1.5        # issue 13: cdrop time <= 1.5x the floor time


# --- the pipelines -------------------------------------------------------------------------


def _materialise(block):
    # da.ones gives a read-only, zero-strided broadcast; a real input is a writeable C array
    return np.array(block, order="C", copy=True)


def make_source(shape, chunks):
    import dask.array as da

    x = da.ones(shape, chunks=chunks, dtype=np.float32)
    return x.map_blocks(_materialise, dtype=np.float32,
                        meta=np.empty((0,) * len(shape), np.float32))


def textbook(x, p):
    import dask.array as da

    keep = 1.0 - p
    return x * (da.random.random(x.shape, chunks=x.chunks) < keep) / keep


def cdrop_dropout(x, p, seed, impl="auto"):
    """(lazy dropout of x, which implementation ran).

    impl "module" is cdrop.dask.dropout; "standin" is this file's map_blocks stand-in; "auto"
    takes the module when it is installed AND cdrop.dropout has the block API (without it,
    cdrop.dask falls back to a slow pure-NumPy path that is correct but not what is measured).
    """
    from dask.base import tokenize

    import cdrop

    has_block_api = "global_shape" in inspect.signature(cdrop.dropout).parameters
    if impl in ("auto", "module"):
        try:
            import cdrop.dask as cdask
        except ImportError:
            if impl == "module":
                raise
        else:
            if impl == "module" or has_block_api:
                return cdask.dropout(x, p, seed=seed), "cdrop.dask.dropout" + (
                    "" if has_block_api else " (its NumPy fallback: no block API in cdrop)")

    def block_dropout(block, block_info=None):
        info = block_info[0]
        start = [a for a, _ in info["array-location"]]
        if has_block_api:
            return cdrop.dropout(block, p, seed=seed, global_shape=info["shape"], start=start,
                                 num_threads=1)
        # not the same bits as the block API (the block's global indices are strided), the
        # same work: one counter-based pass over the block
        first = int(np.ravel_multi_index(start, info["shape"])) if block.size else 0
        return cdrop.dropout(block, p, seed=seed, offset=first, num_threads=1)

    name = "cdrop-dropout-standin-" + tokenize(x, p, seed)
    out = x.map_blocks(block_dropout, dtype=x.dtype, name=name,
                       meta=np.empty((0,) * x.ndim, x.dtype))
    what = "stand-in: map_blocks + cdrop.dropout(" + (
        "global_shape=, start=)" if has_block_api else "offset=first index) [not the same bits]")
    return out, what


def pipelines(x, ps, impl="auto"):
    """[(name, lazy 0-d result, expected mean of the ones source, implementation note)]."""
    out = [("source", x.mean(), 1.0, "x.mean()"),
           ("floor", (x * 2).mean(), 2.0, "(x * 2).mean()"),
           ("textbook", textbook(x, ps[0]).mean(), 1.0,
            f"(x * (da.random.random(...) < {1 - ps[0]:g}) / {1 - ps[0]:g}).mean()")]
    for p in ps:
        y, what = cdrop_dropout(x, p, seed=1, impl=impl)
        out.append((f"cdrop p={p:g}", y.mean(), 1.0, what))
    return out


def bit_identical(ps, impl):
    """{p: whether the cdrop pipeline, computed on the cluster, equals in-memory cdrop.dropout}.

    On a small random (60, 90) array in irregular 2-D chunks: the stand-in without the block
    API is expected to differ (it only costs the same).
    """
    import dask
    import dask.array as da

    import cdrop

    big = np.random.default_rng(7).standard_normal((60, 90)).astype(np.float32)
    x = da.from_array(big, chunks=((16, 30, 14), (40, 7, 43)))
    out = {}
    for p in ps:
        y, _ = cdrop_dropout(x, p, seed=1, impl=impl)
        (got,) = dask.compute(y)
        out[f"{p:g}"] = bool(np.array_equal(got.view(np.uint32),
                                            cdrop.dropout(big, p, seed=1).view(np.uint32)))
    return out


# --- memory and CPU sampling ---------------------------------------------------------------


class RssSampler:
    """Peak RSS of this process and all its descendants, sampled every `interval` s."""

    def __init__(self, interval=0.05, refresh=1.0):
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self.interval, self.refresh = interval, refresh
        self._procs, self._listed = [], 0.0
        self._stop = threading.Event()
        self._thread = None
        self.reset()

    def reset(self):
        self.peak_sum = 0
        self.peak_single = 0
        self.samples = 0

    def _tree(self):
        # listing children scans /proc: do it once a second, not at every sample
        now = time.monotonic()
        if now - self._listed > self.refresh:
            try:
                self._procs = [self._me, *self._me.children(recursive=True)]
            except self._psutil.Error:
                pass
            self._listed = now
        return self._procs

    def sample(self):
        total = biggest = 0
        for proc in self._tree():
            try:
                rss = proc.memory_info().rss
            except self._psutil.Error:
                continue
            total += rss
            biggest = max(biggest, rss)
        self.peak_sum = max(self.peak_sum, total)
        self.peak_single = max(self.peak_single, biggest)
        self.samples += 1

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def tree_cpu_s(self):
        """CPU seconds (user + system) of this process and its live descendants."""
        total = 0.0
        try:
            procs = [self._me, *self._me.children(recursive=True)]
        except self._psutil.Error:
            procs = [self._me]
        for proc in procs:
            try:
                t = proc.cpu_times()
            except self._psutil.Error:
                continue
            total += t.user + t.system
        return total


def machine_busy():
    """(busy CPU s of all CPUs, steal s) from /proc/stat, or (None, None) elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None, None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


# --- one run -------------------------------------------------------------------------------


def _worker_disk_keys(dask_worker):
    # SpillBuffer keeps spilled keys in .slow; a plain dict (no spilling configured) has none
    slow = getattr(dask_worker.data, "slow", None)
    return len(slow) if slow is not None else 0


def run_one(client, sampler, expr):
    """Compute one pipeline; returns a dict of wall s, peaks, spill and contention."""
    import dask

    workers_before = set(client.scheduler_info()["workers"])
    busy0, steal0 = machine_busy()
    cpu0 = sampler.tree_cpu_s()
    sampler.reset()
    sampler.sample()
    t0 = time.perf_counter()
    error = None
    try:
        (value,) = dask.compute(expr)
        value = float(value)
    except Exception as exc:  # a dead worker or a memory error is a result to report
        value, error = None, f"{type(exc).__name__}: {exc}"[:300]
    wall = time.perf_counter() - t0
    sampler.sample()
    cpu1 = sampler.tree_cpu_s()
    busy1, steal1 = machine_busy()
    try:
        spilled = sum(client.run(_worker_disk_keys).values())
    except Exception:
        spilled = None
    workers_after = set(client.scheduler_info()["workers"])
    rec = {"wall_s": wall, "value": value, "error": error,
           "peak_rss_sum_bytes": sampler.peak_sum, "peak_rss_single_bytes": sampler.peak_single,
           "rss_samples": sampler.samples, "keys_on_disk_after": spilled,
           "workers_changed": workers_before != workers_after,
           "cluster_cpu_s": round(cpu1 - cpu0, 2)}
    if busy0 is not None:
        rec["other_cpu_s"] = round(max(0.0, (busy1 - busy0) - (cpu1 - cpu0)), 2)
        rec["steal_s"] = round(steal1 - steal0, 2)
    return rec


# --- report --------------------------------------------------------------------------------


def summarise(name, runs, nbytes, expected, what):
    ok = [r for r in runs if r["error"] is None]
    row = {"pipeline": name, "implementation": what, "runs": len(runs),
           "failed": len(runs) - len(ok),
           "spilled": any(r["keys_on_disk_after"] for r in runs),
           "workers_changed": any(r["workers_changed"] for r in runs)}
    if ok:
        wall = statistics.median(r["wall_s"] for r in ok)
        row.update(
            wall_s=wall, gb_per_s=nbytes / wall / 1e9,
            peak_rss_sum_gib=max(r["peak_rss_sum_bytes"] for r in ok) / 2**30,
            peak_rss_single_gib=max(r["peak_rss_single_bytes"] for r in ok) / 2**30,
            mean_value=ok[0]["value"],
            value_ok=all(abs(r["value"] - expected) < 1e-3 for r in ok),
            other_cpu_s=max((r.get("other_cpu_s", 0.0) for r in ok), default=0.0))
    return row


def checklist(rows):
    by = {r["pipeline"]: r for r in rows}
    out = []
    floor, book = by.get("floor", {}), by.get("textbook", {})
    for r in rows:
        if not r["pipeline"].startswith("cdrop") or "wall_s" not in r:
            continue
        if "wall_s" in book:
            ratio = book["wall_s"] / r["wall_s"]
            out.append((f"{r['pipeline']}: throughput >= {TARGET_VS_TEXTBOOK:g}x textbook",
                        f"{ratio:.2f}x", "PASS" if ratio >= TARGET_VS_TEXTBOOK else "MISS"))
        if "wall_s" in floor:
            ratio = r["wall_s"] / floor["wall_s"]
            out.append((f"{r['pipeline']}: time <= {TARGET_VS_FLOOR:g}x floor",
                        f"{ratio:.2f}x", "PASS" if ratio <= TARGET_VS_FLOOR else "MISS"))
    for r in rows:
        bad = []
        if r["failed"]:
            bad.append(f"{r['failed']} failed")
        if r["spilled"]:
            bad.append("spilled to disk")
        if r["workers_changed"]:
            bad.append("a worker was replaced")
        if "value_ok" in r and not r["value_ok"]:
            bad.append(f"mean {r['mean_value']!r} is off")
        out.append((f"{r['pipeline']}: ran in memory, no spill, no death, right mean",
                    "; ".join(bad) or "yes", "MISS" if bad else "PASS"))
    return out


def markdown(result):
    cfg = result["config"]
    lines = [
        "# cdrop.dask at scale",
        "",
        f"`{result['command']}`, {result['date']}",
        "",
        f"float32 array {tuple(cfg['shape'])} = {cfg['nbytes'] / 2**30:g} GiB "
        f"(machine: {result['machine']['mem_gib']:.1f} GiB RAM, {result['machine']['cpus']} CPUs), "
        f"chunks {tuple(cfg['chunks'])} = {cfg['chunk_mib']:g} MiB ({cfg['nchunks']} chunks, "
        f"layout {cfg['layout']}); LocalCluster(n_workers=2, threads_per_worker=1, "
        f"processes=True), worker memory limit {cfg['worker_memory_limit_gib']:.1f} GiB; "
        f"medians of {cfg['repeats']} interleaved repeats; dask {result['versions']['dask']}, "
        f"distributed {result['versions']['distributed']}, cdrop {result['versions']['cdrop']}.",
        "",
        "| pipeline | wall s | GB/s | vs floor (time) | peak RSS, cluster | peak RSS, one process "
        "| other CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    floor = next((r for r in result["rows"] if r["pipeline"] == "floor"), {})
    for r in result["rows"]:
        if "wall_s" not in r:
            lines.append(f"| {r['pipeline']} | failed ({r['failed']}/{r['runs']}) | | | | | |")
            continue
        vs = f"{r['wall_s'] / floor['wall_s']:.2f}x" if "wall_s" in floor else ""
        lines.append(f"| {r['pipeline']} | {r['wall_s']:.2f} | {r['gb_per_s']:.2f} | {vs} | "
                     f"{r['peak_rss_sum_gib']:.2f} GiB | {r['peak_rss_single_gib']:.2f} GiB | "
                     f"{r['other_cpu_s']:.1f} |")
    lines += ["", "| target | measured | |", "| --- | ---: | --- |"]
    lines += [f"| {d} | {m} | {s} |" for d, m, s in result["checklist"]]
    paired = result.get("paired", {})
    if paired:
        lines += ["", "Per repeat (paired: the same repeat's runs; other CPU s of the cdrop run):"]
        for name, reps in paired.items():
            lines.append(f"* {name}: " + ", ".join(
                f"{r['vs_floor']:.2f}x floor / {r['textbook_vs']:.1f}x faster than textbook "
                f"({r['other_cpu_s']:.0f} s)" for r in reps))
    impl = {r["pipeline"]: r["implementation"] for r in result["rows"]}
    lines += ["", "Implementations: " + "; ".join(f"{k}: `{v}`" for k, v in impl.items()) + ".",
              "", "Peak RSS: the sum over this process (client, scheduler, nannies) and the worker "
              "processes, sampled every 50 ms; the largest single process beside it.  Other CPU s: "
              "CPU time taken by processes outside the cluster during the run (max over repeats)."]
    c = result["contention"]
    if c:
        lines.append(f"Whole run: other processes {c['other_cpu_s']:.1f} CPU s, steal "
                     f"{c['steal_s']:.1f} s, the cluster {c['cluster_cpu_s']:.1f} CPU s, "
                     f"{c['elapsed_s']:.0f} s elapsed.")
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------------


def parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=32.0, help="size of x in GiB (default 32)")
    ap.add_argument("--chunk-mib", type=float, default=128.0, help="chunk size (default 128)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    ap.add_argument("--p", type=float, nargs="+", default=[0.5, 0.1],
                    help="dropout rates for cdrop (default 0.5 0.1; the first one for textbook)")
    ap.add_argument("--layout", choices=["blocks", "rows"], default="blocks",
                    help="chunks split both axes (default) or the first axis only")
    ap.add_argument("--impl", choices=["auto", "module", "standin"], default="auto",
                    help="cdrop.dask.dropout (module), this file's stand-in, or auto (the module "
                         "when cdrop has global_shape=, else the stand-in)")
    ap.add_argument("--no-source", action="store_true", help="leave out the x.mean() row")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for dask_scale.{json,md} (default bench/results, or "
                         "build/dask-scale-quick with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 64 MiB in 8 MiB chunks, 1 repeat")
    return ap


def geometry(gib, chunk_mib, layout):
    """(shape, chunks) of a float32 (N, COLS) array of about `gib` GiB."""
    n = int(gib * 2**30) // 4
    rows = max(1, math.ceil(n / COLS))
    chunk_elems = max(1, int(chunk_mib * 2**20) // 4)
    if layout == "rows":
        return (rows, COLS), (max(1, chunk_elems // COLS), COLS)
    return (rows, COLS), (max(1, chunk_elems // BLOCK_COLS), BLOCK_COLS)


def main(argv=None):
    args = parser().parse_args(argv)
    if args.quick:
        args.gib, args.chunk_mib, args.repeats = 1 / 16, 8.0, 1
    out = args.out or (ROOT / ("build/dask-scale-quick" if args.quick else "bench/results"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"writing to {out}", flush=True)

    import dask
    import distributed
    import psutil
    from distributed import Client, LocalCluster

    import cdrop

    shape, chunks = geometry(args.gib, args.chunk_mib, args.layout)
    x = make_source(shape, chunks)
    nbytes = x.nbytes
    todo = pipelines(x, args.p, args.impl)
    if args.no_source:
        todo = todo[1:]

    busy0, steal0 = machine_busy()
    t_start = time.perf_counter()
    runs = {name: [] for name, *_ in todo}
    with RssSampler() as sampler:
        cpu_start = sampler.tree_cpu_s()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            limits = [w["memory_limit"] for w in client.scheduler_info()["workers"].values()]
            # every pipeline once, untimed, on a 2-chunk array: the workers import dask,
            # numpy and cdrop and deserialise the functions here, not in the first timed run
            small = make_source((2 * chunks[0], chunks[1]), chunks)
            dask.compute(*[expr for _, expr, _, _ in pipelines(small, args.p, args.impl)])
            identical = bit_identical(args.p, args.impl)
            for rep in range(args.repeats):
                for name, expr, _, _ in todo:
                    rec = run_one(client, sampler, expr)
                    runs[name].append(rec)
                    status = (f"{rec['wall_s']:.2f} s, {nbytes / rec['wall_s'] / 1e9:.2f} GB/s"
                              if rec["error"] is None else rec["error"])
                    print(f"[{rep + 1}/{args.repeats}] {name:<14} {status}; peak RSS "
                          f"{rec['peak_rss_sum_bytes'] / 2**30:.2f} GiB (one process "
                          f"{rec['peak_rss_single_bytes'] / 2**30:.2f}); other CPU "
                          f"{rec.get('other_cpu_s', '?')} s", flush=True)
            cluster_cpu = sampler.tree_cpu_s() - cpu_start
    elapsed = time.perf_counter() - t_start
    busy1, steal1 = machine_busy()

    rows = [summarise(name, runs[name], nbytes, expected, what)
            for name, _, expected, what in todo]
    contention = None
    if busy0 is not None:
        contention = {"other_cpu_s": round(max(0.0, (busy1 - busy0) - cluster_cpu), 1),
                      "steal_s": round(steal1 - steal0, 1), "cluster_cpu_s": round(cluster_cpu, 1),
                      "elapsed_s": round(elapsed, 1)}
    result = {
        "command": "python bench/dask_scale.py " + " ".join(sys.argv[1:] if argv is None
                                                          else argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "mem_gib": psutil.virtual_memory().total / 2**30,
                    "platform": platform.platform()},
        "versions": {"dask": dask.__version__, "distributed": distributed.__version__,
                     "numpy": np.__version__, "cdrop": getattr(cdrop, "__version__", "?"),
                     "python": platform.python_version()},
        "config": {"shape": list(shape), "chunks": list(chunks), "layout": args.layout,
                   "nbytes": nbytes, "chunk_mib": np.prod(chunks) * 4 / 2**20,
                   "nchunks": int(np.prod(x.numblocks)), "repeats": args.repeats, "p": args.p,
                   "impl": args.impl,
                   "worker_memory_limit_gib": min(limits) / 2**30 if limits else None},
        "rows": rows,
        "runs": runs,
        "contention": contention,
        "bit_identical": identical,
    }
    # ratios within one repeat: a busy phase of the machine hits the runs of one repeat alike
    paired = {}
    for name in runs:
        if name.startswith("cdrop") and "floor" in runs and "textbook" in runs:
            paired[name] = [
                {"vs_floor": c["wall_s"] / f["wall_s"], "textbook_vs": t["wall_s"] / c["wall_s"],
                 "other_cpu_s": c.get("other_cpu_s", 0.0)}
                for c, f, t in zip(runs[name], runs["floor"], runs["textbook"])
                if c["error"] is None and f["error"] is None and t["error"] is None]
    result["paired"] = paired
    result["checklist"] = checklist(rows) + [
        (f"cdrop p={p}: on the cluster == in-memory cdrop.dropout, (60, 90) in irregular chunks",
         "bit-identical" if same else "differs", "PASS" if same else "MISS")
        for p, same in identical.items()]
    (out / "dask_scale.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (out / "dask_scale.md").write_text(markdown(result))
    print()
    print(markdown(result))
    print("Checklist:")
    for desc, measured, status in result["checklist"]:
        print(f"  [{status}] {desc}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
