"""Run-time configuration: CDROP_STREAM_BYTES beyond the kernels' int64 means "never stream",
and the thread-count docs say that threadpoolctl's limits are per calling thread."""
import os

import pytest

import cdrop
from helpers import run_python


def _child(code, **env):
    # -W error: a warning at import fails the child
    return run_python(["-W", "error", "-c", code], os.path.dirname(os.path.abspath(__file__)),
                      env={"CDROP_STREAM_BYTES": None, **env})


@pytest.mark.parametrize("value", [str(2**63), str(2**64), str(10**30)])
def test_huge_stream_bytes_means_never(value):
    proc = _child("import cdrop; print(cdrop.show_config()['nt_store_bytes'])",
                  CDROP_STREAM_BYTES=value)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == 2**63 - 1


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_bad_stream_bytes_still_warns(value):
    proc = _child("import warnings; warnings.simplefilter('default'); import cdrop",
                  CDROP_STREAM_BYTES=value)
    assert "CDROP_STREAM_BYTES ignored" in proc.stderr


def test_get_num_threads_says_threadpoolctl_limits_are_per_thread():
    doc = " ".join(cdrop.get_num_threads.__doc__.split())
    assert "threadpoolctl" in doc and "per calling thread" in doc
