"""Bad input to ``accelsim plot``: one line naming the file or column, exit 2, no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helper import cli_in_process


def _one_line_error(done, *needles: str) -> None:
    assert done.returncode == 2, done
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "text.csv").write_text("level,tensor,bytes\ndram,a,lots\n")
    (tmp_path / "ok.csv").write_text("level,tensor,bytes\ndram,a,5\nsram,a,7\n")
    (tmp_path / "bad.yaml").write_text("rows: [1,\n")
    (tmp_path / "bad.json").write_text('{"a": ')
    return {p.name: p for p in tmp_path.iterdir()} | {"missing.csv": tmp_path / "missing.csv", "root": tmp_path}


def test_pareto_missing_csv(files):
    _one_line_error(cli_in_process("plot", "pareto", str(files["missing.csv"]), "--x", "a", "--y", "b"),
                    "missing.csv", "file not found")


def test_pareto_directory_named_csv(files):
    _one_line_error(cli_in_process("plot", "pareto", str(files["dir.csv"]), "--x", "a", "--y", "b"),
                    "dir.csv", "directory")


def test_pareto_text_column(files):
    _one_line_error(cli_in_process("plot", "pareto", str(files["text.csv"]), "--x", "level", "--y", "bytes"),
                    "'level'", "not numeric")


def test_traffic_empty_csv(files):
    _one_line_error(cli_in_process("plot", "traffic", str(files["empty.csv"])), "empty.csv", "empty")


def test_traffic_text_in_numeric_column_names_column(files):
    _one_line_error(cli_in_process("plot", "traffic", str(files["text.csv"])), "bytes", "'lots'")


def test_compare_text_in_metric_column(files):
    _one_line_error(cli_in_process("plot", "compare", str(files["text.csv"]), "--metrics", "bytes", "--by", "level"),
                    "bytes", "number")


@pytest.mark.parametrize("name, what", [("bad.yaml", "malformed YAML at line 2"), ("bad.json", "malformed JSON")])
def test_malformed_yaml_json_is_one_line(files, name, what):
    _one_line_error(cli_in_process("plot", "timeline", str(files[name])), name, what)


def test_unwritable_out_path(files):
    _one_line_error(cli_in_process("plot", "traffic", str(files["ok.csv"]), "--out", "/proc/forbidden/x"),
                    "/proc/forbidden", "--out")


def test_good_csv_still_plots(files):
    stem = files["root"] / "fig" / "traffic"
    done = cli_in_process("plot", "traffic", str(files["ok.csv"]), "--out", str(stem))
    assert done.returncode == 0, done.stderr
    assert stem.with_suffix(".png").stat().st_size > 0


def test_normalizing_to_a_zero_baseline_is_an_error():
    from accelsim import plots
    from accelsim.errors import AccelsimError

    rows = [{"mapping": "base", "bytes": 0, "s": 1.0}, {"mapping": "other", "bytes": 5, "s": 2.0}]
    with pytest.raises(AccelsimError, match="is 0 in"):
        plots.mapping_comparison_plot(rows, ["bytes", "s"], normalize_to="base")
