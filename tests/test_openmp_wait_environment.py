"""The OpenMP wait default of cdrop/_hardware.py, checked by its effect on libgomp.

cdrop's import loads libgomp with GOMP_SPINCOUNT=10000 "unless the user set a wait variable or
libgomp was already loaded", and "restores the environment".  test_threads.py checks that
against ``os.environ`` and ``show_config()``; the tests here ask libgomp itself what it uses
(``OMP_DISPLAY_ENV=VERBOSE`` makes it print its settings on stderr when it starts, which is
during ``import cdrop``), and look at the C environment, which is what libgomp and child
processes read.  Each runs a fresh interpreter.  (Without either trap below, the same probe
reads GOMP_SPINCOUNT = '10000': it does see the value cdrop sets.)
"""
import json
import re

import pytest

from helpers import run_python

_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _libgomp_spincount(stderr):
    """GOMP_SPINCOUNT as libgomp's OMP_DISPLAY_ENV report gives it, or None (no libgomp)."""
    m = re.search(r"GOMP_SPINCOUNT = '(\d+)'", stderr)
    return int(m.group(1)) if m else None


def _run(code, tmp_path):
    env = {k: None for k in _WAIT_VARIABLES}
    env["OMP_DISPLAY_ENV"] = "VERBOSE"
    proc = run_python(code, tmp_path, env=env, check=True)
    spin = _libgomp_spincount(proc.stderr)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if spin is None or not got["openmp"]:
        pytest.skip("no libgomp in this build (serial, or another OpenMP runtime)")
    return spin, got


def test_a_wait_setting_made_with_os_putenv_is_respected_and_kept(tmp_path):
    """A wait setting made in the C environment after start-up (``os.putenv``, or ``setenv`` in
    an extension imported before cdrop), which ``os.environ`` does not see, is the user's: libgomp
    keeps it, it stays in the C environment, and show_config() says "from the environment"."""
    code = """
        import ctypes, json, os
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_char_p
        os.putenv("GOMP_SPINCOUNT", "123")   # the C environment only (as setenv() in C)
        import cdrop
        value = libc.getenv(b"GOMP_SPINCOUNT")
        print(json.dumps({"openmp": cdrop.show_config()["openmp"],
                          "state": cdrop.show_config()["openmp_wait"],
                          "c_env": value.decode() if value is not None else None}))
    """
    spin, got = _run(code, tmp_path)
    assert (spin, got["c_env"], got["state"]) == (123, "123", "from the environment")


def test_a_path_that_merely_contains_libgomp_does_not_count_as_libgomp(tmp_path):
    """Only a mapped shared object named libgomp*.so* counts as libgomp being loaded, not any
    mapped path that contains the word (a project checked out as ~/libgomp-study, a venv under
    it): cdrop's default then applies."""
    folder = tmp_path / "libgomp-study"
    folder.mkdir()
    data = folder / "weights.bin"
    data.write_bytes(b"\0" * 4096)
    code = f"""
        import json, mmap
        f = open({str(data)!r}, "rb")
        keep = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # now in /proc/self/maps
        import cdrop
        print(json.dumps({{"openmp": cdrop.show_config()["openmp"],
                           "state": cdrop.show_config()["openmp_wait"]}}))
    """
    spin, got = _run(code, tmp_path)
    assert (spin, got["state"]) == (10000, "GOMP_SPINCOUNT=10000 (cdrop's default)")

