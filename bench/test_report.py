"""bench/report.py writes the committed results (bench/results/) only from a full default run.

Quick, --check and other ad-hoc runs must not overwrite them by accident (issue 9).  These
tests check where each command line would write, without measuring anything.
"""
import pytest
import report


def folder(*argv):
    return report.output_folder(report.parser().parse_args(list(argv)))


def test_only_the_full_default_run_writes_the_committed_results():
    assert folder() == report.RESULTS_DIR == report.BENCH_DIR / "results"


@pytest.mark.parametrize("argv, name", [
    (["--quick"], "quick"),
    (["--rounds", "5"], "rounds5"),
    (["--dtype", "float64"], "float64"),
    (["--p", "0.1"], "p0.1"),
    (["--quick", "--dtype", "float64", "--p", "0.25"], "quick-float64-p0.25"),
])
def test_ad_hoc_runs_write_under_build(argv, name):
    assert folder(*argv) == report.BENCH_DIR.parent / "build" / "bench-report" / name


def test_out_wins(tmp_path):
    assert folder("--quick", "--out", str(tmp_path)) == tmp_path  # what CI passes
    assert folder("--quick", "--out", str(report.RESULTS_DIR)) == report.RESULTS_DIR


@pytest.mark.parametrize("argv, message", [
    (["--check", "--out", "x"], "--out: not allowed with --check"),
    (["--rounds", "0"], "--rounds: must be an integer >= 1"),
    (["--p", "1.5"], "--p: must be a probability"),
])
def test_bad_command_lines(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        report.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# --- the dropout family (issue 11): its table, targets and JSON key, from made-up medians ----

FAMILY_FLOOR_S = {"floor np.multiply": 1.0, "floor np.add": 1.5, "floor OpenMP x*=c": 0.8}


def family_results(cdrop_ratio, torch_ratio, threads_list=(1, 2), sizes=report.FAMILY_SIZES,
                   names=None):
    """{(n, threads): {row: stats}} where every cdrop row takes `cdrop_ratio` times its floor
    and every peer `torch_ratio` times cdrop's time."""
    results = {}
    for n in sizes:
        for threads in threads_list:
            med = dict(FAMILY_FLOOR_S)
            for variant in report.FAMILY:
                floor, _ = report.family_floor(variant, threads, med)
                c = cdrop_ratio * med[floor]
                med[f"{variant}: cdrop"] = c
                for peer, _ in report.FAMILY[variant][3]:
                    med[f"{variant}: {peer}"] = torch_ratio * c
            if names is not None:
                med = {k: v for k, v in med.items() if k in names(n)}
            for variant in report.FAMILY:  # cdrop again in the peers' run, as measure_family
                if any(k.startswith(f"{variant}: ") and not k.endswith(": cdrop") for k in med):
                    med[f"{variant}: cdrop{report.PEER_RUN}"] = med[f"{variant}: cdrop"]
            results[(n, threads)] = {k: {"median_s": v} for k, v in med.items()}
    return results


def test_family_targets_pass_at_the_floor_and_miss_above_it():
    rows = report.family_targets(family_results(1.0, 20.0), [1, 2])
    assert rows and all(status == "PASS" for _, _, status in rows)
    # 2 x 2 rows per floor target (gaussian: 4M only) and 2 per torch target
    assert len(rows) == 4 * 4 + 2 * 2 + 3 * 2
    rows = report.family_targets(family_results(2.5, 5.0), [1, 2])
    assert all(status == "MISS" for _, _, status in rows)


def test_family_targets_state_the_ratio_and_the_floor_they_read():
    rows = report.family_targets(family_results(1.1, 12.0), [1, 2])
    by_desc = {desc: (value, status) for desc, value, status in rows}
    # Dropout2d's limit is 1.1x: 1.1 passes (the boundary is inclusive); alpha's is 1.2x
    d2 = next(v for d, v in by_desc.items() if d.startswith("Dropout2d, 4,194,304")
              and "1 thread" in d)
    assert d2 == ("1.10x", "PASS")
    # with 2 threads: the OpenMP floor, and the ratio to NumPy's 1-thread floor beside it
    d2_2 = next((d, v) for d, v in by_desc.items() if d.startswith("Dropout2d, 16,777,216")
                and "2 thread" in d)
    assert "OpenMP x*=c floor" in d2_2[0] and "vs np.multiply on 1 thread: 0.88x" in d2_2[1][0]
    add_2 = next(d for d in by_desc if d.startswith("dropout_add, 4,194,304") and "2 thread" in d)
    assert "np.add (1 thread) floor" in add_2
    torch_rows = [(d, v) for d, v in by_desc.items() if ">= 10x faster" in d]
    assert len(torch_rows) == 6 and all(v[0].startswith("12.0x; the floor allows ")
                                        and v[1] == "PASS" for _, v in torch_rows)
    # 1 thread: the NumPy floors, which cdrop takes 1.1x of, so torch's time is 13.2x theirs
    assert by_desc["Dropout2d, 4,194,304, 1 thread(s): >= 10x faster than torch F.dropout2d "
                   "(same threads)"][0] == "12.0x; the floor allows 13.2x"


def test_family_targets_say_not_measured_for_missing_rows():
    rows = report.family_targets({}, [1])
    assert rows and all(value == "not measured" and status == "n/a" for _, value, status in rows)


def test_check_measures_everything_the_family_targets_read():
    rows = report.family_targets(family_results(1.0, 20.0, names=report.family_check_names),
                                 [1, 2])
    assert all(value != "not measured" for _, value, _ in rows)


def test_family_table_has_a_row_per_variant_with_ratio_target_and_peers():
    block = family_results(1.5, 10.0, threads_list=(1,), sizes=(4_194_304,))[(4_194_304, 1)]
    lines = report.family_table(block, 4_194_304, 1)
    assert lines[0] == "### 4,194,304 elements (64, 64, 32, 32), 1 thread"
    rows = [line for line in lines if line.startswith("| ")][2:]  # after the head and rule
    assert [row.split(" | ")[0][2:] for row in rows] == list(report.FAMILY)
    dropout2d = rows[0].split(" | ")
    assert dropout2d[3] == "1.50x" and dropout2d[4] == "<= 1.1x"
    assert "torch F.dropout2d 15.00 s (10.0x)" in dropout2d[5]
    # the speed-up over a peer reads cdrop's time from the peers' own run
    block["Dropout2d: cdrop" + report.PEER_RUN] = {"median_s": 3.0}
    dropout2d = [line for line in report.family_table(block, 4_194_304, 1)
                 if line.startswith("| Dropout2d |")][0].split(" | ")
    assert dropout2d[3] == "1.50x" and "torch F.dropout2d 15.00 s (5.00x)" in dropout2d[5]


def test_the_report_json_has_the_family_medians(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "plot", lambda *args, **kwargs: None)
    family = family_results(1.0, 20.0, threads_list=(1,), sizes=(4_194_304,))
    meta = {"dtype": "float32", "p": 0.5, "machine": {"cpu_model": "test", "logical_cpus": 2,
                                                      "cores_in_affinity_mask": 2}}
    report.write_report(tmp_path, {**meta, **HEADER_META}, [], [], [], {}, {}, None, [], [1],
                        [], family_results=family)
    import json

    data = json.loads((tmp_path / "report.json").read_text())
    rows = {row["impl"]: row for row in data["dropout_family"]}
    assert set(rows) == set(family[(4_194_304, 1)])
    row = rows["Dropout2d: cdrop"]
    assert (row["size"], row["threads"], row["shape"], row["median_s"]) == (
        4_194_304, 1, [64, 64, 32, 32], 1.0)


HEADER_META = {
    "command": "python bench/report.py", "date": "2026-01-01T00:00:00+00:00", "elapsed_s": 1.0,
    "versions": {"python": "3", "numpy": "2", "cdrop": "0", "torch": None},
    "cdrop_config": {"simd": "avx512", "openmp": True, "max_threads": 2},
    "threads": [1], "loadavg_start": 0.0, "contention": None, "skipped": {},
}
