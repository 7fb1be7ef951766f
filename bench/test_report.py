"""bench/report.py writes the committed results (bench/results/) only from a full default run.

Quick, --check and other ad-hoc runs must not overwrite them by accident (issue 9).  These
tests check where each command line would write, without measuring anything.
"""
import numpy as np
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


# --- issue 12: the p, kernel-path, cold-cache and layout rows, from made-up medians ----------


def _block(**medians):
    return {name: {"median_s": v} for name, v in medians.items()}


def test_p_targets_read_the_worst_p_against_p_half_with_the_in_cache_limit_at_256ki():
    p_results = {}
    for n in report.P_SCHEDULE:
        med = {f"p={p:g}": 1.0 for p in report.ISSUE12_P}
        med["p=0.1"] = 1.15  # within 1.2x in cache, not within 1.1x at 4M and 16M
        med[report.FLOOR] = 0.9
        p_results[(n, 1)] = _block(**med)
    rows = report.p_targets(p_results, [1])
    assert [(value, status) for _, value, status in rows] == [
        ("worst 1.15x (p = 0.1)", "PASS"), ("worst 1.15x (p = 0.1)", "MISS"),
        ("worst 1.15x (p = 0.1)", "MISS")]
    table = report.p_table(p_results)
    assert any(line.startswith("| 262,144 | 1 | 1.11x | 1.00x | 1.15x |") for line in table)


def test_cold_ratios_subtract_the_copy_and_use_the_openmp_floor_with_threads():
    one = _block(**{report.COPY: 2.0, report.CDROP_INPLACE: 3.2, report.FLOOR: 3.0})
    assert report.cold_ratios(one) == pytest.approx((1.2, 1.0, report.FLOOR))
    two = _block(**{report.COPY: 2.0, report.CDROP_INPLACE: 2.5, report.FLOOR: 3.0,
                    report.OMP_FLOOR: 2.6})
    assert report.cold_ratios(two) == pytest.approx((0.5, 0.6, report.OMP_FLOOR))
    for block in (one, two):  # the table's minima-based column reads min_s the same way
        for name in block:
            block[name]["min_s"] = block[name]["median_s"] / 2
    assert report.cold_ratios(one, "min_s") == pytest.approx((0.6, 0.5, report.FLOOR))
    table = report.cold_table({(4_194_304, 1): one}, {})
    assert table[-2] == ("| 4,194,304 | 1 | 2.00 s | 1.20 s | 1.00 s (np.multiply(out=x)) | 1.20x "
                         "| 1.20x |  |")


def test_cold_targets_need_both_the_cold_and_the_warm_ratio_within():
    n = 4_194_304
    cold = {(n, 1): _block(**{report.COPY: 2.0, report.CDROP_INPLACE: 3.05,
                              report.FLOOR: 3.0})}
    warm = {(n, 1): _block(**{report.CDROP_INPLACE: 1.0, report.FLOOR: 1.0})}
    row = report.cold_targets(cold, warm, [1])[0]
    assert row[1:] == ("cold 1.05x, warm 1.00x", "PASS")
    warm[(n, 1)][report.CDROP_INPLACE]["median_s"] = 1.2
    assert report.cold_targets(cold, warm, [1])[0][1:] == ("cold 1.05x, warm 1.20x", "MISS")
    cold[(n, 1)][report.CDROP_INPLACE]["median_s"] = 3.2
    warm[(n, 1)][report.CDROP_INPLACE]["median_s"] = 1.0
    assert report.cold_targets(cold, warm, [1])[0][2] == "MISS"
    assert report.cold_targets(cold, {}, [1])[0][1:] == ("cold 1.20x, warm not measured",
                                                         "MISS")


def test_paths_targets_avx2_against_the_floor_and_portable_against_avx2():
    path_results = {(n, p): _block(**{report.FLOOR: 1.0, "avx512": 1.0, "avx2": 1.2,
                                      "portable": 1.7})
                    for n in report.PATH_SCHEDULE for p in report.PATH_P}
    rows = report.paths_targets(path_results)

    def row(start):
        return next((value, status) for desc, value, status in rows if desc.startswith(start))

    assert row("avx2 path, p = 0.5 in place, 262,144") == ("1.20x", "PASS")  # <= 1.3x in cache
    assert row("avx2 path, p = 0.5 in place, 4,194,304") == ("1.20x", "MISS")  # <= 1.1x at 4M+
    assert row("portable path, p = 0.1 in place, 262,144") == ("1.42x", "PASS")
    lines = report.paths_table(path_results, ["avx512", "avx2", "portable"])
    assert "portable / avx2" in lines[4] and lines[-2].endswith("| 1.42x |")
    assert all(status == "n/a" for _, _, status in report.paths_targets({}))
    # each path against the floor of its own run, when the block has one
    for block in path_results.values():
        block[report.path_floor("avx2")] = {"median_s": 1.0}
        block[report.path_floor("portable")] = {"median_s": 1.7 / 1.5}
    assert row("avx2 path, p = 0.5 in place, 262,144") == ("1.20x", "PASS")
    rows = report.paths_targets(path_results)
    assert row("portable path, p = 0.1 in place, 262,144") == ("1.25x", "PASS")


def test_kernel_paths_lists_distinct_paths_and_leaves_the_path_in_use():
    from cdrop import _kernels

    before = _kernels.get_path()
    paths = report.kernel_paths()
    assert _kernels.get_path() == before
    # the lowest path is "portable", or "scalar" in a build that has no portable SIMD path
    assert len(paths) == len(set(paths)) and {"portable", "scalar"} & set(paths)


def test_measure_paths_restores_the_path_in_use_even_when_a_call_fails(monkeypatch):
    from cdrop import _kernels

    before = _kernels.get_path()

    def boom(*args, **kwargs):
        raise RuntimeError("planted")

    monkeypatch.setattr(report, "_interleaved", boom)
    with pytest.raises(RuntimeError, match="planted"):
        report.measure_paths(1_000, 0.5, 1, ["portable"])
    assert _kernels.get_path() == before
    monkeypatch.undo()
    block = report.measure_paths(4_096, 0.1, 1, ["portable"])
    assert set(block) == {"portable", report.path_floor("portable")}
    assert _kernels.get_path() == before


@pytest.mark.parametrize("kind, side, shape, contiguous", [
    ("Fortran", 64, (64, 64), "F"), ("x.T", 64, (64, 64), "F"), ("x[:, ::2]", 64, (64, 64), ""),
    ("3-D (1, 0, 2)", 64, (4, 256, 4), ""), ("3-D (0, 2, 1)", 64, (256, 4, 4), ""),
])
def test_layout_views_have_the_side_squared_elements_and_their_layout(kind, side, shape,
                                                                      contiguous):
    _, view = report.make_layout(kind, report.layout_base_shape(kind, side), "float32")
    assert view.shape == shape and view.size == side * side
    assert view.flags.f_contiguous == (contiguous == "F") and not view.flags.c_contiguous


def test_layout_identity_compares_the_view_with_its_c_copy(monkeypatch):
    assert report.layout_identity("x.T", (64, 48), np.float32)
    assert report.layout_identity("trailing", (64, 8, 2), np.float64)
    # a cdrop that ignored the layout (the view's memory order) must be caught
    real = report.cdrop.dropout

    def memory_order(x, p, **kw):
        flat = np.ravel(x, order="K")
        out = real(flat, p, **{k: v for k, v in kw.items() if k != "inplace"})
        if kw.get("inplace"):
            x[...] = out.reshape(x.shape, order="F")
            return x
        return out.reshape(x.shape, order="F")

    monkeypatch.setattr(report.cdrop, "dropout", memory_order)
    assert not report.layout_identity("x.T", (64, 48), np.float32)


def test_layout_targets_report_the_worst_case_per_layout_and_mode():
    names = report.LAYOUT_NAMES
    res = {("x.T", (2048, 2048), "float32", 1): _block(**dict(zip(names, (1.2, 1.0, 2.0, 1.0)))),
           ("x.T", (4096, 4096), "float64", 2): _block(**dict(zip(names, (1.4, 1.0, 1.0, 1.0))))}
    rows = report.layout_targets(res)
    assert [(v, s) for _, v, s in rows] == [
        ("worst 1.40x (float64, base (4096, 4096), 2 thread(s)); 1 of 2 cases within", "MISS"),
        ("worst 2.00x (float32, base (2048, 2048), 1 thread(s)); 1 of 2 cases within", "MISS")]
    table = report.layout_table(res, {"x.T": True})
    assert "| x.T | float32 | (2048, 2048) | 1 | 1.20 s | 1.00 s | 1.20x |" in table[6]
    assert table[-2].endswith("x.T: same.")


def test_layout_cases_cover_both_sides_dtypes_layouts_threads_and_trailing_views():
    cases = report.layout_cases(True, [1, 2])
    assert len(cases) == 2 * 2 * len(report.LAYOUTS) * 2 + len(report.TRAILING_SHAPES) * 2
    assert {c[2] for c in cases} == {"float32", "float64"}


def test_the_report_json_has_the_issue12_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "plot", lambda *args, **kwargs: None)
    meta = {"dtype": "float32", "p": 0.5, "machine": {"cpu_model": "test", "logical_cpus": 2,
                                                      "cores_in_affinity_mask": 2}}
    issue12 = {"p_values": [{"size": 262_144, "threads": 1, "impl": "p=0.1", "median_s": 1.0}],
               "layout_bit_identity": {"x.T": True}}
    report.write_report(tmp_path, {**meta, **HEADER_META}, [], [], [], {}, {}, None, [], [1],
                        [], issue12=issue12)
    import json

    assert json.loads((tmp_path / "report.json").read_text())["issue12"] == issue12


def test_readme_table_reads_one_thread_ratios_and_leaves_unmeasured_cells_blank():
    path_results = {(n, p): _block(**{report.FLOOR: 1.0, "avx512": 1.1, "avx2": 1.3,
                                      "portable": 2.0})
                    for n in (262_144, 4_194_304) for p in report.PATH_P}
    p_results = {(262_144, 1): _block(**{f"p={p:g}": 1.25 if p == 0.1 else 1.0
                                         for p in report.ISSUE12_P})}
    names = report.LAYOUT_NAMES
    layouts = {("x[:, ::2]", (2048, 4096), "float64", 1): _block(**dict(zip(names,
                                                                         (1.5, 1.0, 1.0, 1.0)))),
               ("x.T", (2048, 2048), "float32", 2): _block(**dict(zip(names, (9.0, 1.0, 1.0,
                                                                             1.0))))}
    lines = report.readme_table(p_results, path_results, {}, layouts, ["avx512", "avx2",
                                                                      "portable"])
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines
            if line.startswith("| ") and not line.startswith("| case")}
    assert rows["C order, p = 0.5 (avx512), x floor"] == ["1.10x", "1.10x", " |"]
    assert rows["worst p of 0.05 ... 0.9, x p = 0.5"] == ["1.25x", "", " |"]
    assert rows["`CDROP_KERNEL=portable`, p = 0.5, x floor"][:2] == ["2.00x", "2.00x"]
    # the strided float64 view of 2048x2048 elements, on 1 thread (the 2-thread x.T is not read)
    layout = rows["Fortran, x.T, strided, 3-D transposes (worst), in place, x NumPy"]
    assert layout == ["", "1.50x", " |"]
