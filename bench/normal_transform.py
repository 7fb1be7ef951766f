"""Where gaussian_noise's time goes: the normal transform alone, per instruction set.

Builds tests/tools/normal_harness.c (cdrop/_src/normal.h alone) for the baseline, AVX2 and
AVX-512 with the extension's flags (-O3 -ffp-contract=off -fno-math-errno), times the transform
on 4096 words in L1 (ns per normal, median of 15 runs inside each harness run), and in the same
interleaved rounds times ``np.multiply(x, c, out=x)`` (the memory floor of the issue) and the
kernel's OP_GADD in place (what gaussian_noise runs) on 4M float32 per kernel path, 1 and 2
threads.  Prints medians over the rounds and ratios to the floor; writes nothing.

    python bench/normal_transform.py [--rounds 5]

Compare ratios within one run: the machine may be shared.
"""
import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from cdrop import _kernels

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"portable": [], "avx2": ["-mavx2", "-mfma", "-mf16c"],
           "avx512": ["-mavx512f", "-mavx512bw"]}
N = 4 << 20


def build(tmp):
    cc = shutil.which("cc") or shutil.which("gcc")
    exes = {}
    for name, flags in TARGETS.items():
        exe = Path(tmp) / f"normal_{name}"
        subprocess.run([cc, "-O3", "-ffp-contract=off", "-fno-math-errno", *flags,
                        f"-I{REPO / 'cdrop' / '_src'}",
                        str(REPO / "tests" / "tools" / "normal_harness.c"), "-o", str(exe)],
                       check=True)
        exes[name] = exe
    return exes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    x = np.ones(N, dtype=np.float32)
    c = np.float32(1.0)
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        exes = build(tmp)
        for _ in range(args.rounds):
            for name, exe in exes.items():
                out = subprocess.run([str(exe), "bench", "4096", "500"], capture_output=True,
                                     text=True, check=True).stdout
                times.setdefault(f"transform alone, {name}", []).append(float(out))
            for _ in range(5):
                t = time.perf_counter()
                np.multiply(x, c, out=x)
                ns = (time.perf_counter() - t) / N * 1e9
                times.setdefault("floor np.multiply", []).append(ns)
                for path in TARGETS:
                    if _kernels.set_path(path) != path:
                        continue
                    for threads in (1, 2):
                        t = time.perf_counter()
                        _kernels.apply_variant(_kernels.OP_GADD, x, x, 1, 0, 0.5, threads, c0=0.0)
                        ns = (time.perf_counter() - t) / N * 1e9
                        times.setdefault(f"OP_GADD 4M, {path}, {threads} thr", []).append(ns)
                _kernels.set_path("auto")
    floor = float(np.median(times["floor np.multiply"]))
    print(f"{'what':34s} {'ns/elt':>8s} {'x floor':>8s}")
    for what, ts in times.items():
        med = float(np.median(ts))
        print(f"{what:34s} {med:8.3f} {med / floor:8.2f}")


if __name__ == "__main__":
    main()
