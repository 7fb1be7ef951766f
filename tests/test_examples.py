"""The examples in examples/ run as a user runs them, with few steps, and give real outputs.

Each example runs as a subprocess (`python examples/<name>.py --steps N --out tmp_path`) from
a temporary directory, so it imports the installed cdrop.  The checks read what the example
printed and wrote: a PNG file, numbers that parse, accuracy above chance, and for the torch
examples that autograd holds fewer bytes with cdrop's dropout than with torch's (an exact
tally, not a timing).  Examples whose libraries are missing (scikit-learn, matplotlib, torch:
the `examples` extra) are skipped.
"""
import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NUMBER = re.compile(r"^([A-Za-z_0-9]+(?:\[[a-z]+\])?): (-?[0-9.]+)$", re.M)


def needs(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (the "
                              "`examples` extra)")


def run_example(name, tmp_path, *args):
    """Run examples/<name>.py; {printed name: value} and the plot's path."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(out),
                           *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    numbers = {k: float(v) for k, v in NUMBER.findall(proc.stdout)}
    png = out / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC, f"{png} is not a PNG"
    assert f"plot: {png}" in proc.stdout
    assert all(math.isfinite(v) for v in numbers.values()), proc.stdout
    return numbers


@needs("sklearn", "matplotlib")
def test_numpy_mlp_learns_digits_and_times_both_dropouts(tmp_path):
    n = run_example("numpy_mlp", tmp_path, "--steps", "40")
    for kind in ("none", "cdrop", "textbook"):
        assert n[f"val_accuracy[{kind}]"] > 0.5  # chance is 0.1
    assert n["dropout_ms_per_step[cdrop]"] > 0 and n["dropout_ms_per_step[textbook]"] > 0
    assert n["dropout_speedup"] > 0


@needs("sklearn", "matplotlib", "torch")
def test_torch_mlp_learns_digits_and_autograd_holds_no_dropout_mask(tmp_path):
    hidden, batch = 512, 128
    n = run_example("torch_mlp", tmp_path, "--steps", "40", "--hidden", str(hidden),
                    "--batch", str(batch))
    for v in ("torch", "cdrop"):
        assert n[f"val_accuracy[{v}]"] > 0.5  # chance is 0.1
        assert n[f"step_ms[{v}]"] > 0
    # torch keeps a mask of batch x hidden elements per dropout, at least a byte each (on the
    # CPU, torch 2.13 keeps a float32 one); cdrop keeps nothing
    masks_kib = 2 * batch * hidden / 1024
    assert n["autograd_saved_KiB[torch]"] - n["autograd_saved_KiB[cdrop]"] >= masks_kib


@needs("matplotlib", "torch")
def test_torch_transformer_trains_and_autograd_holds_no_dropout_mask(tmp_path):
    n = run_example("torch_transformer", tmp_path, "--steps", "3", "--context", "128")
    vocab = len(set((EXAMPLES / "data" / "garden.txt").read_text()))
    for v in ("torch", "cdrop"):
        assert 0 < n[f"val_loss[{v}]"] < math.log(vocab)  # below a uniform guess
        assert n[f"steps_per_s[{v}]"] > 0
        assert n[f"peak_rss_growth_MiB[{v}]"] > 0
    assert n["autograd_saved_MiB[cdrop]"] < n["autograd_saved_MiB[torch]"]


def test_the_shipped_text_is_what_its_grammar_generates():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "data" / "make_text.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 200_000 < (EXAMPLES / "data" / "garden.txt").stat().st_size < 1_000_000
