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
