"""Shared setup of cdrop's test suite.

* ``tests/`` goes on sys.path so that ``import reference`` (the pure-NumPy oracle) works.
* The suite must test the INSTALLED package: if ``cdrop`` resolves to the source folder of this
  repository (which has no compiled extension, or a stale one), the session fails at once.
* ``kernel_path``: a fixture parametrised over the "avx512", "avx512-nt" (AVX-512 with the
  streaming threshold at 0), "avx2", "avx2-nt", "portable" and "scalar" kernel paths (a path
  this CPU or build lacks is skipped, with the reason).
"""
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SOURCE_PACKAGE = REPO_ROOT / "cdrop"

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

# When any Hypothesis test fails, Hypothesis's pytest plugin imports hypothesis.extra._patching
# (and with it libcst, whose import emits a DeprecationWarning from mypy_extensions here).
# pyproject's filterwarnings=error turns that warning into an INTERNALERROR that ends the whole
# session instead of reporting the failure.  Importing the module once, now, with that warning
# ignored makes the plugin's later import a no-op.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # pragma: no cover - no libcst: the plugin then skips the patch
        pass


def _import_installed_cdrop():
    import importlib.util

    spec = importlib.util.find_spec("cdrop")
    if spec is not None and spec.origin is not None:
        if Path(spec.origin).resolve().parent == SOURCE_PACKAGE.resolve():
            pytest.exit(
                f"cdrop resolves to the source tree ({SOURCE_PACKAGE}), not to an installed "
                "copy. Install the package (pip install --no-build-isolation .) and run the "
                "`pytest` console script (not `python -m pytest`, which puts the current "
                "directory first on sys.path).",
                returncode=4,
            )
    try:
        import cdrop
    except ImportError as exc:  # pragma: no cover - only on a broken install
        pytest.exit(
            f"cannot import cdrop ({exc}); install it first: cd {REPO_ROOT} && "
            "pip install --no-build-isolation .",
            returncode=4,
        )
    here = Path(cdrop.__file__).resolve().parent
    if here == SOURCE_PACKAGE.resolve():
        pytest.exit(
            f"cdrop was imported from the source tree ({here}), not from an installed copy. "
            "Install the package (pip install .) and run the `pytest` console script "
            "(not `python -m pytest`, which puts the current directory first on sys.path).",
            returncode=4,
        )
    return cdrop


def pytest_configure(config):
    cdrop = _import_installed_cdrop()
    config._cdrop_location = str(Path(cdrop.__file__).resolve().parent)
    # Hypothesis keeps caches in ./.hypothesis; keep them out of the repository.
    config._cdrop_hypothesis_home = None
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # pragma: no cover
        return
    home = tempfile.mkdtemp(prefix="cdrop-tests-hypothesis-")
    set_hypothesis_home_dir(home)
    config._cdrop_hypothesis_home = home


def pytest_unconfigure(config):
    home = getattr(config, "_cdrop_hypothesis_home", None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


def pytest_report_header(config):
    import cdrop

    return [f"cdrop {cdrop.__version__} from {config._cdrop_location}",
            f"cdrop config: {cdrop.show_config()}"]


# ---------------------------------------------------------------------------------------------
# Fixtures.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(params=["avx512", "avx512-nt", "avx2", "avx2-nt", "portable", "scalar"])
def kernel_path(request):
    """Select a kernel path for the test (AVX-512, AVX-512 with streaming stores, AVX2, AVX2
    with streaming stores, portable, scalar); the path in use before (the session's: "auto",
    or the one CDROP_KERNEL forced) and the streaming threshold are restored afterwards.

    "avx512-nt" and "avx2-nt" are those paths with the streaming threshold at 0 bytes, so that
    every out-of-place call on contiguous arrays, however small, goes through the
    non-temporal-store kernel that only big arrays reach by default."""
    from cdrop import _kernels

    want = request.param
    path = want.split("-")[0]
    old_stream, old_path = _kernels.get_stream_bytes(), _kernels.get_path()
    try:
        got = _kernels.set_path(path)
        if got != path:
            pytest.skip(f"kernel path {path!r} is not available here (got {got!r})")
        if want.endswith("-nt"):
            _kernels.set_stream_bytes(0)
        yield want
    finally:
        _kernels.set_path(old_path)
        _kernels.set_stream_bytes(old_stream)


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Every test starts and ends with the default thread count, the session's kernel path and
    the default streaming threshold.  The session's path, not "auto": under CDROP_KERNEL=scalar
    (or portable, avx2) the whole suite must run on that path, not only its first test."""
    import cdrop
    from cdrop import _kernels

    stream, path = _kernels.get_stream_bytes(), _kernels.get_path()
    yield
    cdrop.set_num_threads(None)
    _kernels.set_path(path)
    _kernels.set_stream_bytes(stream)
