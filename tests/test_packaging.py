"""Packaging and typing: SPDX license metadata, a test extra that runs every test, an sdist that
ships the whole test tree, and annotations that ``mypy --strict`` accepts in a user's script."""
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _pyproject():
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads TOML")
    if not PYPROJECT.is_file():
        pytest.skip("no pyproject.toml beside tests/")
    return tomllib.loads(PYPROJECT.read_text())


def test_license_is_an_spdx_expression_with_its_file():
    meta = _pyproject()
    assert meta["project"]["license"] == "BSD-3-Clause"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in meta["project"].get("classifiers", []))
    # SPDX strings need setuptools >= 77 at build time
    assert "setuptools>=77" in meta["build-system"]["requires"]


def test_test_extra_has_what_the_tests_import():
    extra = _pyproject()["project"]["optional-dependencies"]["test"]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip() for req in extra}
    assert {"pytest", "hypothesis", "mypy", "scipy"} <= names  # scipy: test_statistics.py


def test_manifest_grafts_the_whole_test_tree():
    manifest = ROOT / "MANIFEST.in"
    if not manifest.is_file():
        pytest.skip("no MANIFEST.in beside tests/")
    assert "graft tests" in manifest.read_text().split("\n")


@pytest.mark.slow
def test_sdist_ships_the_whole_test_tree(tmp_path):
    pytest.importorskip("build")
    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path),
                           str(ROOT)], check=False, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (sdist,) = tmp_path.glob("cdrop-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for need in ("tests/conftest.py", "tests/reference.py", "tests/helpers.py",
                 "tests/tools/mask_stream.py", "tests/test_errors.py", "pyproject.toml"):
        assert need in names, need
    # C sources ship (cdrop/_src/, tests/native/, tests/tools/); the C that Cython generates
    # (cdrop/_kernels.c) and build products do not
    assert not any("__pycache__" in n or n.endswith((".pyc", ".so")) for n in names)
    assert not any(re.fullmatch(r"cdrop/[^/]+\.c", n) for n in names)
    assert "cdrop/_src/kernels.c" in names


def test_mypy_strict_accepts_a_user_script(tmp_path):
    pytest.importorskip("mypy")
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(
        """
        import numpy as np

        import cdrop

        x = np.ones((4, 8), dtype=np.float32)
        y = cdrop.dropout(x, 0.5, seed=1)
        z = cdrop.dropout(x, p=0.25, training=False, inplace=True, seed=np.random.default_rng(0))
        w = cdrop.dropout([1.0, 2.0], 0.5, out=np.empty(2), offset=3, num_threads=2)
        m = cdrop.dropout_mask((4, 8), 0.5, seed=1, packed=True)
        m2 = cdrop.dropout_mask(10, seed=None)
        layer = cdrop.Dropout(0.5, inplace=False, seed=3)
        layer.p = 0.3
        out = layer(x) + layer.forward(x)
        g = layer.backward(np.ones_like(x))
        same: cdrop.Dropout = layer.train().eval().train(False)
        cdrop.manual_seed(0)
        cdrop.set_num_threads(2)
        cdrop.set_num_threads(None)
        n: int = cdrop.get_num_threads()
        cfg = cdrop.show_config()
        print(y.shape, z.shape, w.shape, m.shape, m2.shape, out.shape, g, n, cfg, same.p)
        """))
    # run from tmp_path, so that the installed cdrop (with its annotations) is what mypy reads
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           str(script)], check=False, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ,
                                            "MYPY_CACHE_DIR": str(tmp_path / ".mypy_cache")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
