"""The command line as a user meets it: real processes, exit codes, messages, files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.features.contract_fixtures import contract_tables, write_tables

GIANTWATCH = Path(sys.executable).parent / "giantwatch"
COMMANDS = ("generate", "validate", "check", "train", "audit", "score", "explain", "serve",
            "bench")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GIANTWATCH), *args], check=False, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert f"Usage: giantwatch {command}" in result.stdout
    assert "--help" in result.stdout and "Options" in result.stdout


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
