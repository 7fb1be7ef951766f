"""Small helpers shared by the test modules.

* ``bits``, ``assert_bits_equal``: bit-exact comparisons of float arrays; ``digest``: a short
  fingerprint of an array's bytes, for comparing many large results.
* ``mode_kwargs``: the keyword arguments of one way of calling ``cdrop.dropout``.
* ``child_env``, ``run_python``: a fresh Python interpreter that imports the installed cdrop.
* ``mem_available_gib``: available memory, for the tests that need a lot of it.
"""
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np


def bits(a):
    """An integer view of a float array (or scalar) for bit-exact comparisons."""
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits_equal(actual, expected, msg=""):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype, msg)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, msg)
    a, e = bits(np.ascontiguousarray(actual)), bits(np.ascontiguousarray(expected))
    if not np.array_equal(a, e):
        bad = np.flatnonzero(a.ravel() != e.ravel())
        i = bad[0]
        raise AssertionError(
            f"{msg}: {bad.size} of {a.size} elements differ; first at flat index {i}: "
            f"got {actual.ravel()[i]!r}, expected {expected.ravel()[i]!r}"
        )


def digest(a):
    """sha256 (hex) of an array's bytes in logical C order."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# The ways of calling cdrop.dropout(x, ...) that mode_kwargs knows.
MODES = ("out_of_place", "inplace", "out", "eval")


def mode_kwargs(mode, x):
    """Keyword arguments that make ``cdrop.dropout(x, ...)`` run in `mode`.

    "out_of_place": none; "inplace": ``inplace=True``; "out": ``out=`` a new C-ordered array
    of x's shape and dtype, filled with 3.0; "eval": ``training=False``.
    """
    if mode == "out_of_place":
        return {}
    if mode == "inplace":
        return {"inplace": True}
    if mode == "out":
        return {"out": np.full(np.shape(x), 3.0, dtype=x.dtype)}
    if mode == "eval":
        return {"training": False}
    raise ValueError(f"unknown mode {mode!r}; one of {MODES}")


def child_env(changes=None):
    """os.environ without PYTHONPATH, with `changes` applied (name -> value, None removes it).

    Nothing may put the source tree on a child's path: it must import the installed cdrop.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for name, value in (changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_python(code_or_args, cwd, *, env=None, text=True, timeout=120, check=False):
    """Run a fresh Python interpreter in `cwd`; return its CompletedProcess (output captured).

    code_or_args: a str is run as ``python -c`` (dedented first); a list is the interpreter's
    arguments (a script and its options, or ``["-m", module, ...]``).
    cwd: run from an empty directory (``tmp_path``), so that the child imports the installed
    cdrop, as a user's program would, and not the source tree.
    env: changes to the environment, as for :func:`child_env`.
    text: decode stdout and stderr (False gives bytes).
    timeout: seconds, so that a hanging child fails the test instead of hanging CI (None: no
    limit).
    check: assert that the child exited with 0 (its stderr is the assertion's message).
    """
    if isinstance(code_or_args, str):
        args = ["-c", textwrap.dedent(code_or_args)]
    else:
        args = [str(a) for a in code_or_args]
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=child_env(env),
                          capture_output=True, text=text, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def mem_available_gib():
    """MemAvailable from /proc/meminfo in GiB, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None
