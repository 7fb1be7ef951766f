"""The .pyi stub of the compiled module must match it (mypy's stubtest, as pykdtree does)."""
import os
import subprocess
import sys


def test_stub_matches_compiled_module(tmp_path):
    # Run from an empty directory so that the installed package, not the source tree, is
    # checked; stubtest reads the stub that was installed next to the extension.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "cdrop._kernels"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPY_CACHE_DIR": str(tmp_path / ".mypy_cache")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
