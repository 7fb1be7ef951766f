"""Build variants chosen by environment variables (setup.py): CDROP_NO_OPENMP, CDROP_DEBUG,
CDROP_SANITIZE.  A variant must be what gets built, also in a tree that was built before: the
CONTRIBUTING workflow re-runs ``pip install --no-build-isolation .`` in the same checkout, and
pip builds in the tree's build/ folder, through setuptools' build_ext, as this test does.

Slow (two builds of the extension in a copy of the sources, about 30 s on 2 cores).
"""
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cdrop
from helpers import child_env

REPO = Path(__file__).resolve().parent.parent
FILES = ["setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "CHANGELOG.md"]


def _build(tree, env):
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext"], cwd=tree,
                          env=child_env(env), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (so,) = glob.glob(os.path.join(tree, "build", "lib*", "cdrop", "_kernels*.so"))
    with open(so, "rb") as f:
        # the Cython prange compiled with -fopenmp calls libgomp's GOMP_parallel; a serial build
        # has no reference to libgomp at all
        return b"GOMP_parallel" in f.read()


@pytest.mark.slow
def test_a_variant_is_rebuilt_in_a_tree_built_before(tmp_path):
    """Each build compiles what its variables ask for, also in a tree built before: setuptools'
    up-to-date check and cythonize() see no change of CDROP_NO_OPENMP, CDROP_DEBUG or
    CDROP_SANITIZE, so setup.py forces both.  Checked the other way round from the usual
    mistake: a serial debug build, then the default one, which must use OpenMP.  (.ci/run builds
    each variant from a fresh sdist, which would hide a failure.)"""
    for name in FILES:
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "cdrop", tmp_path / "cdrop",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    for name in (REPO / "cdrop" / "_src").glob("*.c"):  # the C sources (not Cython's output)
        shutil.copy2(name, tmp_path / "cdrop" / "_src" / name.name)
    try:
        import Cython  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError:  # pragma: no cover
        pytest.skip("building needs setuptools and Cython in this environment")
    if not cdrop.show_config()["openmp"]:  # pragma: no cover
        pytest.skip("the installed cdrop has no OpenMP: this compiler may have none")
    serial = _build(tmp_path, {"CDROP_NO_OPENMP": "1", "CDROP_DEBUG": "1"})
    assert not serial, "CDROP_NO_OPENMP=1 built with OpenMP"
    default = _build(tmp_path, {"CDROP_NO_OPENMP": None, "CDROP_DEBUG": None})
    assert default, "the default build after a CDROP_NO_OPENMP=1 build has no OpenMP"
