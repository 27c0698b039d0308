"""The command line as a user meets it: real processes, exit codes, messages, files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.features.contract_fixtures import contract_tables, write_tables

GIANTWATCH = Path(sys.executable).parent / "giantwatch"
COMMANDS = ("generate", "validate", "check", "train", "audit", "score", "explain", "whatif",
            "serve", "bench")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GIANTWATCH), *args], check=False, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert f"Usage: giantwatch {command}" in result.stdout
    assert "--help" in result.stdout and "Options" in result.stdout
    assert "--verbose" in result.stdout and "--quiet" in result.stdout


def test_bad_input_gives_one_message_exit_2_and_no_traceback(tmp_path):
    tables = contract_tables()
    tables["financials"].loc[2, "revenue"] = -5.0
    data = write_tables(tables, tmp_path / "bad", fmt="csv")
    result = run("validate", "--data", str(data))
    assert result.returncode == 2
    assert "financials" in result.stderr and "revenue" in result.stderr
    assert "row 3" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (data / "rejects.csv").exists()


def test_check_writes_eligibility_and_gaps_and_refuses_bad_suffix(small_universe, tmp_path):
    out = tmp_path / "check.csv"
    result = run("check", "--data", str(small_universe), "--year", "2024", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert {"firm_id", "year", "rulebook_little_giant", "eligible_little_giant",
            "eligible_strict_little_giant", "gaps_little_giant",
            "points_specialized"} <= set(table.columns)
    assert set(table["rulebook_little_giant"]) == {"little_giant_2022"}
    assert set(table["eligible_little_giant"].unique()) <= {"pass", "fail", "unknown"}
    assert table["gaps_little_giant"].fillna("").str.contains("more R&D|< ").any()
    # The printed counts are the CSV's eligible_<tier> column.
    for tier in ("specialized", "little_giant", "champion"):
        counts = table[f"eligible_{tier}"].value_counts()
        printed = next(line for line in result.stdout.splitlines()
                       if line.strip().startswith(f"{tier}:"))
        for status, count in counts.items():
            assert f"{status} {count:,}" in printed
    bad = run("check", "--data", str(small_universe), "--year", "2024",
              "--out", str(tmp_path / "check.txt"))
    assert bad.returncode == 2 and "must end in .csv or .parquet" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_generate_refuses_unknown_format(tmp_path):
    result = run("generate", "--out", str(tmp_path / "x"), "--firms", "200", "--format", "xlsx")
    assert result.returncode == 2
    assert "--format must be parquet or csv" in result.stderr
    assert not (tmp_path / "x").exists()


def test_train_logs_progress_lines_and_prints_tables_and_absolute_commands(small_universe,
                                                                           tmp_path):
    """Outside a terminal, `train` says what it does as timestamped lines while it works,
    without MLflow's CloudPickle warning, and ends with readable tables and commands that work
    from any folder."""
    import os
    import re

    from training.synthetic import generate_universe, write_universe

    # A universe of 1,500 firms: enough labelled years for the Single Champion folds.
    data = tmp_path / "tiny"
    write_universe(generate_universe(n_firms=1_500, seed=5), data, fmt="parquet")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    result = subprocess.run([str(GIANTWATCH), "train", "--data", str(data), "--tiers",
                             "champion", "--experiment", "cli-test"], cwd=tmp_path, env=env,
                            check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    progress = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO training\.train: (.*)$",
                          result.stderr, re.MULTILINE)
    assert progress[0] == "Loading and validating the dataset"
    assert "champion: registering the model" in progress
    assert "CloudPickle" not in result.stderr + result.stdout
    assert "Walk-forward folds (LightGBM)" in result.stdout
    # PR AUC and ROC AUC with three decimals, precision@k as a percentage
    assert re.search(r"│ champion\s+│ LightGBM\s+│ [01]\.\d{3}\s+│ [01]\.\d{3}\s+│ \d+\.\d% ",
                     result.stdout)
    assert "experiment 'cli-test'" in result.stdout
    # The gate's verdict in plain words, against both baselines on the same folds.
    assert re.search(r"champion v1 (is production|stays out of production): PR-AUC \d\.\d{3} "
                     r"(vs|does not beat) ", result.stdout)
    assert re.search(r"vs logistic \d\.\d{3}, rulebook \d\.\d{3}", result.stdout)
    command = re.search(r"Open the MLflow UI with: (\S+) ui --backend-store-uri (\S+)",
                        result.stdout)
    assert command and Path(command.group(1)).is_absolute() and Path(command.group(1)).exists()
    assert command.group(2) == env["MLFLOW_TRACKING_URI"]
    assert re.search(r"http://127\.0\.0\.1:5000/#/experiments/\d+/runs\?workflowType="
                     r"machine_learning", result.stdout)
    # Champions are rare (one or two a year here): such folds are called out.
    assert re.search(r"│ champion\s+│ \d{4}\s+│ \d{4}-\d{4}\s+│ [\d,]+\s+│ \d ", result.stdout)
    assert "had fewer than 10 selections" in result.stderr

    quiet = subprocess.run([str(GIANTWATCH), "validate", "--data", str(small_universe),
                            "--quiet"], cwd=tmp_path, check=False, capture_output=True,
                           text=True, timeout=600)
    assert quiet.returncode == 0 and " INFO " not in quiet.stderr
    # A bad setting stops any command at once, naming the variable.
    bad = subprocess.run([str(GIANTWATCH), "validate", "--data", str(small_universe)],
                         env={**env, "GIANTWATCH_WORKERS": "many"}, cwd=tmp_path, check=False,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "GIANTWATCH_WORKERS='many'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_printed_tables_say_n_a_for_a_missing_figure_not_nan():
    from serving.cli_base import cell

    assert cell(float("nan")) == "n/a"
    assert cell(0.5712) == "0.5712" and cell(1234567.0) == "1.235e+06" and cell(3) == "3"
