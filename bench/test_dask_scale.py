"""Smoke test of bench/dask_scale.py: its --quick run (64 MiB, a real LocalCluster, seconds).

Skipped when dask, distributed or psutil is missing.  It checks that every pipeline ran on the
cluster without failing, spilling or losing a worker, that each mean is the one its pipeline must
give, and that both report files are written; it asserts no time.
"""
import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cdrop

SCRIPT = Path(__file__).resolve().parent / "dask_scale.py"
MISSING = [m for m in ("dask", "distributed", "psutil") if importlib.util.find_spec(m) is None]
HAS_BLOCK_API = "global_shape" in inspect.signature(cdrop.dropout).parameters


@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (the dask extra)")
def test_quick_run_streams_every_pipeline_through_the_cluster(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((tmp_path / "dask_scale.json").read_text())
    assert (tmp_path / "dask_scale.md").read_text().startswith("# cdrop.dask at scale")
    rows = {r["pipeline"]: r for r in result["rows"]}
    if HAS_BLOCK_API:  # the cdrop pipeline is the real thing, not the offset= stand-in
        assert result["bit_identical"] == {"0.5": True, "0.1": True}
    assert list(rows) == ["source", "floor", "textbook", "cdrop p=0.5", "cdrop p=0.1"]
    for name, row in rows.items():
        assert row["failed"] == 0, (name, result["runs"][name])
        assert not row["spilled"] and not row["workers_changed"], name
        assert row["value_ok"], (name, row["mean_value"])
        assert row["peak_rss_sum_gib"] > 0 and row["peak_rss_single_gib"] > 0, name
    assert rows["floor"]["mean_value"] == 2.0
    assert result["config"]["nbytes"] == 64 * 2**20
    # the checklist has a line per target and per pipeline, each PASS or MISS
    assert {s for _, _, s in result["checklist"]} <= {"PASS", "MISS"}
    assert len(result["checklist"]) == 2 * 2 + len(rows) + 2
