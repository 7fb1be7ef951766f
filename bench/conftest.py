"""pytest-benchmark suite of cdrop (run with `pytest bench/`; see bench/test_bench.py)."""
import os
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))


def pytest_configure(config):
    import cdrop

    here = Path(cdrop.__file__).resolve().parent
    if here == BENCH_DIR.parent / "cdrop":
        pytest.exit("cdrop was imported from the source tree; install it (pip install .) and run "
                    "the `pytest` command, not `python -m pytest`", returncode=4)


@pytest.fixture(autouse=True)
def _restore_cdrop_threads():
    yield
    import cdrop

    cdrop.set_num_threads(None)


ALL_CORES = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else (os.cpu_count() or 1))
