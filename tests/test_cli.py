"""The ``cdrop`` command (``cdrop.__main__``) and the timer it shares with bench/
(``cdrop._bench``).

The command runs as a user runs it: the installed ``cdrop`` console script (and once
``python -m cdrop``), in a fresh process, from a directory that is not the repository root (from
the root, ``python -m cdrop`` would import the uncompiled source folder).  Every run uses tiny
sizes and a small --budget, so that each test takes well under 2 s.  Nothing here asserts a time.
"""
import doctest
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cdrop
from cdrop import _bench
from cdrop.__main__ import parse_sizes

SCRIPT = Path(sys.executable).with_name("cdrop")
# one size whose timing takes about 0.5 s, long after the first lines are out
PIPED = ["--sizes", "1M", "--budget", "0.5"]


def _command(how):
    if how == "script":
        if not SCRIPT.exists():  # pragma: no cover - pip always installs the entry point
            pytest.skip(f"no cdrop console script next to {sys.executable}")
        return [str(SCRIPT)]
    return [sys.executable, "-m", "cdrop"]


def _run(args, tmp_path, how="script"):
    return subprocess.run(_command(how) + list(args), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("how", ["script", "module"])
def test_help_is_plain_text_and_lists_the_options(tmp_path, how):
    proc = _run(["--help"], tmp_path, how)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: cdrop ")
    for option in ("--version", "--config", "--sizes", "--dtype", "--p", "--threads",
                   "--budget"):
        assert option in proc.stdout
    # no reST markup: ``literal``, :func:`name`, :class:`name`, ...
    assert "``" not in proc.stdout
    assert not re.search(r":[a-z]+:`", proc.stdout), proc.stdout


def test_version(tmp_path):
    proc = _run(["--version"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"cdrop {cdrop.__version__}\n"


def test_config_prints_the_configuration_only(tmp_path):
    proc = _run(["--config"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "cdrop configuration:"
    assert {line.split()[0] for line in lines[1:]} == set(cdrop.show_config())
    assert "speed-up" not in proc.stdout


@pytest.mark.parametrize("how", ["script", "module"])
def test_comparison_with_every_option(tmp_path, how):
    proc = _run(["--sizes", "1000,2k", "--dtype", "float64", "--p", "0.25", "--threads", "1",
                 "--budget", "0.1"], tmp_path, how)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "float64, p = 0.25, cdrop on 1 thread;" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()
            if re.match(r"\s+[\d,]+ ", line)]
    assert [row[0] for row in rows] == ["1,000", "2,048"]
    assert all(row[-1].endswith("x") for row in rows)


def test_sizes_as_a_space_separated_list(tmp_path):
    proc = _run(["--sizes", "1000", "1k", "--budget", "0.05"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^\s+1,000 .*\n\s+1,024 ", proc.stdout, re.MULTILINE), proc.stdout
    assert "cdrop on " in proc.stdout and "(the default)" in proc.stdout


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # The reader takes the first line and goes away, as `cdrop | head -1` does, while the
    # command is still timing (about 0.5 s at 1M elements): its next row then meets a closed
    # pipe.  Exit 141 (the status of a process that SIGPIPE ended) shows that it did, and did
    # not finish first.
    with subprocess.Popen(_command("script") + PIPED, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        try:
            assert proc.stdout.readline() == b"cdrop configuration:\n"
            proc.stdout.close()
            stderr = proc.stderr.read()
            returncode = proc.wait(timeout=60)
        finally:
            proc.kill()
    assert b"Traceback" not in stderr
    assert stderr == b""
    assert returncode == 141


def test_a_closed_pipe_through_the_shell(tmp_path):
    proc = subprocess.run(["sh", "-c", f"'{SCRIPT}' {' '.join(PIPED)} | head -1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.stdout == "cdrop configuration:\n"
    assert proc.stderr == ""


@pytest.mark.parametrize("option, value", [
    ("--threads", "0"),
    ("--threads", "two"),
    ("--sizes", "0"),
    ("--sizes", "16Q"),
    ("--sizes", "1000,,2000"),
    ("--p", "1.5"),
    ("--p", "1"),
    ("--p", "nan"),
    ("--dtype", "int8"),
    ("--budget", "0"),
])
def test_bad_values_are_usage_errors_naming_the_option(tmp_path, option, value):
    proc = _run([option, value, "--budget", "0.05"] if option != "--budget" else [option, value],
                tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"cdrop: error: argument {option}: " in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_option_is_a_usage_error(tmp_path):
    proc = _run(["--seed", "1"], tmp_path)
    assert proc.returncode == 2
    assert "unrecognized arguments: --seed" in proc.stderr


def test_an_impossible_size_fails_without_a_traceback(tmp_path):
    # 2**50 elements: more bytes than a 48-bit address space, so the allocation fails at once
    # whatever the kernel's overcommit policy (it never touches a page)
    proc = _run(["--sizes", "1073741824M", "--budget", "0.05"], tmp_path)
    assert proc.returncode in (1, 2)
    assert "cdrop: error:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("text, sizes", [
    ("16384,1M,16M", [16_384, 1_048_576, 16_777_216]),
    ("1000", [1000]),
    ("16_384, 64k", [16_384, 65_536]),
    ("1K,2m,1.5M", [1024, 2_097_152, 1_572_864]),
])
def test_parse_sizes(text, sizes):
    assert parse_sizes(text) == sizes


# --- cdrop._bench: the timer and the textbook dropout ----------------------------------------


def test_interleaved_samples_order_of_calls():
    log = []

    def call(name):
        return lambda: log.append(name)

    samples = _bench.interleaved_samples(
        [call("a"), [call("b1"), call("b2")]], 2, setups=[call("setup a"), None], warmup=1,
        prime=True)
    assert [len(s) for s in samples] == [2, 2]
    assert all(t >= 0 for s in samples for t in s)
    one_round = ["setup a", "a", "setup a", "a", "b1", "b1", "b2"]  # prime, then the timing
    assert log == one_round * 3  # the warm-up round and the 2 recorded ones, interleaved


def test_interleaved_samples_divides_a_batch_by_its_length():
    ticks = iter(range(0, 1000, 10))  # each clock reading 10 s after the last
    samples = _bench.interleaved_samples([[int] * 5, int], 3, clock=lambda: next(ticks))
    assert samples == [[2.0] * 3, [10.0] * 3]


def test_interleaved_samples_refuses_an_empty_batch_and_mismatched_setups():
    with pytest.raises(ValueError, match="funcs"):
        _bench.interleaved_samples([[]], 1)
    with pytest.raises(ValueError, match="setups"):
        _bench.interleaved_samples([int, int], 1, setups=[None])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_textbook_dropout(dtype):
    np.random.seed(0)
    x = np.arange(1, 10_001, dtype=dtype)
    y = _bench.textbook_dropout(x, 0.2)
    assert y.dtype == dtype and y.shape == x.shape
    assert np.array_equal(x, np.arange(1, 10_001, dtype=dtype))  # input untouched
    kept = y != 0
    assert np.allclose(y[kept], x[kept] / dtype(0.8))
    assert 0.75 < kept.mean() < 0.85


def test_bench_docstring_examples():
    assert doctest.testmod(_bench).failed == 0


def test_the_command_runs_in_process(capsys, monkeypatch):
    # main() returns its status instead of exiting, so embedders (and this test) can call it.
    from cdrop.__main__ import main

    monkeypatch.setattr(sys, "argv", ["cdrop"])
    default = cdrop.get_num_threads()
    assert main(["--sizes", "1000", "--budget", "0.02", "--threads", "3"]) == 0
    assert "cdrop on 3 threads;" in capsys.readouterr().out
    assert cdrop.get_num_threads() == default  # --threads is per call, not the package default
