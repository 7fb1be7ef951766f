"""tests/tools/mask_stream.py writes exactly cdrop's packed p = 0.5 mask, and ends cleanly.

The script feeds external RNG batteries (docs/rng.md, "Testing the stream with external
batteries"), so what they test must be the real mask: its output is compared byte for byte with
``dropout_mask(..., packed=True)`` over several chunks, a partial last chunk and a nonzero
offset.  It runs in a fresh interpreter from an empty directory, as a user would run it, so it
imports the installed cdrop.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np

import cdrop
from helpers import child_env, run_python

SCRIPT = Path(__file__).resolve().parent / "tools" / "mask_stream.py"


def _run(args, tmp_path):
    return run_python([SCRIPT, *args], tmp_path, text=False)


def test_mask_stream_is_the_packed_mask(tmp_path):
    nbytes, seed = 100003, 17
    # chunk of 4096 bytes: 24 full chunks and a partial one; the offsets must follow on.
    proc = _run(["--seed", str(seed), "--bytes", str(nbytes), "--chunk-bytes", "4096"], tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    expected = cdrop.dropout_mask(8 * nbytes, 0.5, seed=seed, packed=True)
    assert len(proc.stdout) == nbytes
    assert np.array_equal(np.frombuffer(proc.stdout, dtype=np.uint8), expected)


def test_mask_stream_offset_and_default_chunks(tmp_path):
    nbytes, seed, offset = 5000, 2**64 - 1, 2**40 + 3
    proc = _run(["--seed", str(seed), "--offset", str(offset), "--bytes", str(nbytes)], tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    expected = cdrop.dropout_mask(8 * nbytes, 0.5, seed=seed, offset=offset, packed=True)
    assert np.array_equal(np.frombuffer(proc.stdout, dtype=np.uint8), expected)


def test_mask_stream_stops_quietly_when_the_reader_leaves(tmp_path):
    # Endless mode: the reader takes 1 MiB and closes the pipe, as a battery does when it is
    # done.  The script must exit 0 without a traceback (BrokenPipeError handled).
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--seed", "3",
                             "--chunk-bytes", "65536"],
                            cwd=tmp_path, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = proc.stdout.read(1 << 20)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0, err.decode()
    assert err == b""
    expected = cdrop.dropout_mask(8 << 20, 0.5, seed=3, packed=True)
    assert np.array_equal(np.frombuffer(head, dtype=np.uint8), expected)


def test_mask_stream_rejects_bad_arguments(tmp_path):
    for args in (["--bytes", "10"], ["--seed", "-1"], ["--seed", str(2**64)],
                 ["--seed", "1", "--chunk-bytes", "0"]):
        proc = _run(args, tmp_path)
        assert proc.returncode == 2, args  # argparse's usage error
        assert proc.stdout == b""
