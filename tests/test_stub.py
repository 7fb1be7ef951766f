"""The .pyi stub of the compiled module must match it (mypy's stubtest, as pykdtree does)."""
from helpers import run_python


def test_stub_matches_compiled_module(tmp_path):
    # Run from an empty directory so that the installed package, not the source tree, is
    # checked; stubtest reads the stub that was installed next to the extension.
    proc = run_python(["-m", "mypy.stubtest", "cdrop._kernels"], tmp_path, timeout=None,
                      env={"MYPY_CACHE_DIR": str(tmp_path / ".mypy_cache")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
