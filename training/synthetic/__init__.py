"""Synthetic firm universe in the format of DATA_CONTRACT.md.

``generate_universe`` draws firms (:mod:`training.synthetic.firms`), their yearly
financials (:mod:`training.synthetic.trajectories`), their IP rights
(:mod:`training.synthetic.patents`) and the certification lists year by year
(:mod:`training.synthetic.selection`), and returns the four contract tables plus
``truth``: one row per certification event with the channel that produced it (``merit``
or a non-merit channel) and the true probabilities behind it (``true_p_selected``,
``true_p_non_merit``: the chance it would not have happened on merit alone; NaN for
revocations); and ``truth_candidates``: every firm eligible for a new title of a tier in a
year with its true probability of selection (``true_p_selected``; equal to truth's for
the firms selected), the oracle the selection models are measured against (firms absent
from it had no chance of that list), and ``true_p_no_province``, that probability had its
province not pushed it (what a province's true effect is measured against). ``mechanism`` chooses how the non-merit channels act: ``additive`` (favours
add to one committee score, the default) or ``separate`` (a favour channel fills part of
each list independently of merit); see :mod:`training.synthetic.selection`.
``write_universe`` writes them to a folder.

Sizes are calibrated to published counts at 500,000 firms and scale with ``n_firms``.
The same seed gives identical tables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.atomic import move_folder_into_place
from training.synthetic.firms import BOARDS, Firms, Reference, draw_firms, load_reference
from training.synthetic.patents import Patents, arrow_columns, simulate_patents
from training.synthetic.selection import (
    CHANNELS,
    EVENTS,
    MECHANISMS,
    TIERS,
    Candidates,
    Events,
    run_selection,
)
from training.synthetic.trajectories import Panel, add_high_tech, add_subsidies, simulate_panel

CONTRACT_TABLES = ("firms", "financials", "patents", "certifications")
TRUTH_TABLES = ("truth", "truth_candidates")  # the generator's answers; no loader reads them
RD_INSTITUTIONS = np.array(["none", "city", "provincial", "national"])
# Columns that are integers in the contract but held as float64 so they can be missing.
CSV_INTEGER_COLUMNS = {"parent_employees", "rd_staff", "domestic_rank", "global_rank", "batch"}

Progress = Callable[[str], None] | None


STAGES = ("firms", "financials", "patents", "certificates", "selection", "subsidies")


def stage_seed(seed: int, stage: str) -> np.random.SeedSequence:
    """Independent random stream of one generation stage (re-creatable for checks)."""
    return np.random.SeedSequence(seed).spawn(len(STAGES))[STAGES.index(stage)]


@dataclass
class Simulation:
    """Internal state of a generated universe (arrays indexed by firm number)."""

    ref: Reference
    firms: Firms
    panel: Panel
    patents: Patents
    events: Events


def simulate(n_firms: int, seed: int, first_year: int, last_year: int,
             progress: Progress = None, mechanism: str = "additive") -> Simulation:
    """Run every stage of the generator and keep the internal arrays."""
    if n_firms < 1:
        raise ValueError(f"n_firms must be positive, got {n_firms}")
    if not 1990 <= first_year < last_year:
        raise ValueError(f"need 1990 <= first_year < last_year, got {first_year}..{last_year}")
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    report = progress or (lambda stage: None)
    ref = load_reference()

    def rng(stage):
        return np.random.default_rng(stage_seed(seed, stage))

    report("firms")
    firms = draw_firms(rng("firms"), n_firms, ref, last_year)
    report("financials")
    panel = simulate_panel(rng("financials"), firms, ref, first_year, last_year)
    _size_groups(firms, panel)
    report("patents")
    T = len(panel.years)
    exit_year = first_year + np.where(panel.alive[:, -1], T + 5,
                                      T - np.argmax(panel.alive[:, ::-1], axis=1))
    patents = simulate_patents(stage_seed(seed, "patents"), firms, panel, ref, exit_year)
    add_high_tech(rng("certificates"), panel, patents.valid_ip)
    report("selection")
    events = run_selection(stage_seed(seed, "selection"), firms, panel, patents.valid_inv,
                           patents.valid_ip, *selection_constants(ref), mechanism=mechanism)
    favoured = (firms.connections > 0) | firms.group_backing
    add_subsidies(rng("subsidies"), panel, firms, favoured, events.title)
    return Simulation(ref=ref, firms=firms, panel=panel, patents=patents, events=events)


def selection_constants(ref: Reference) -> tuple[np.ndarray, int]:
    """(province interference 0..1 by province index, index of Guangdong)."""
    provinces = ref.provinces
    return (provinces["interference"].to_numpy(np.float32),
            int(np.flatnonzero(provinces["province"].to_numpy() == "44")[0]))


def generate_universe(n_firms: int = 20_000, seed: int = 7, first_year: int = 2013,
                      last_year: int = 2025, progress: Progress = None,
                      mechanism: str = "additive") -> dict[str, pd.DataFrame]:
    """Generate the universe; returns {"firms", "financials", "patents", "certifications",
    "truth", "truth_candidates"} DataFrames with the column names and dtypes of the normalised contract tables.

    ``progress`` (optional) is called with the name of each stage as it starts;
    ``mechanism`` ("additive" or "separate") is how non-merit channels fill the lists.
    """
    sim = simulate(n_firms, seed, first_year, last_year, progress, mechanism)
    if progress:
        progress("tables")
    firm_ids = pa.array(sim.firms.firm_id)
    tables = {"firms": _firms_frame(sim.firms, sim.ref),
              "financials": _financials_frame(sim.panel, firm_ids)}
    sim.panel = None
    tables["patents"] = pa.table(arrow_columns(sim.patents, firm_ids)).to_pandas()
    sim.patents = None
    tables["certifications"], tables["truth"] = _event_frames(sim.events, firm_ids)
    tables["truth_candidates"] = _candidate_frame(sim.events.candidates, firm_ids)
    return tables


def _size_groups(firms: Firms, panel: Panel) -> None:
    """A parent group is at least as big as the units it controls (x1.2 for the rest).

    Like a registry extract, the firms table is one snapshot, so the floor uses each unit's
    largest reported size."""
    sub = firms.group >= 0
    if not sub.any():
        return
    n_groups = int(firms.group.max()) + 1
    peak = {"emp": np.nanmax(np.where(panel.obs, panel.employees, 0), axis=1),
            "rev": np.nanmax(np.where(panel.obs, panel.revenue, 0), axis=1)}
    for key, col in (("emp", "group_employees"), ("rev", "group_revenue")):
        total = np.bincount(firms.group[sub], weights=peak[key][sub], minlength=n_groups)
        values = getattr(firms, col)
        floor = np.round(1.2 * total[firms.group[sub]], 0 if key == "emp" else -3)
        values[sub] = np.where(np.isnan(values[sub]), np.nan, np.maximum(values[sub], floor))


def _str(values: np.ndarray | pa.Array) -> pd.Series:
    """pandas ``str`` column kept in Arrow memory (no Python string objects)."""
    array = values if isinstance(values, pa.Array) else pa.array(values)
    return pa.table({"x": array}).to_pandas()["x"]


def _firms_frame(firms: Firms, ref: Reference) -> pd.DataFrame:
    width = max(6, len(str(max(int(firms.group.max()), 0))))
    parent = np.where(firms.group >= 0,
                      np.strings.add("G", np.strings.zfill(firms.group.astype(str), width)), "")
    return pd.DataFrame({
        "firm_id": _str(firms.firm_id),
        "name": _str(firms.name),
        "province": _str(ref.provinces["province"].to_numpy().astype(str)[firms.province]),
        "industry_code": _str(ref.sectors["industry_code"].to_numpy().astype(str)[firms.sector]),
        "founded_year": firms.founded.astype(np.int64),
        "niche_entry_year": firms.niche_entry.astype(np.int64),
        "parent_id": _str(pa.array(parent, mask=firms.group < 0)),
        "parent_employees": firms.group_employees.astype(np.float64),
        "parent_revenue": firms.group_revenue.astype(np.float64),
        "state_share": firms.state_share.astype(np.float64).round(4),
        "listed_board": _str(BOARDS[firms.board]),
    })


def _money(a: np.ndarray) -> np.ndarray:
    return np.round(a.astype(np.float64))


def _boolean(code: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(code > 0, code < 0)


def _financials_frame(panel: Panel, firm_ids: pa.Array) -> pd.DataFrame:
    """One row per observed firm-year, ordered by firm then year."""
    rows, cols = np.nonzero(panel.obs)
    at = (rows, cols)
    revenue = _money(panel.revenue[at])
    return pd.DataFrame({
        "firm_id": _str(firm_ids.take(pa.array(rows.astype(np.int32)))),
        "year": panel.years[cols].astype(np.int64),
        "revenue": revenue,
        "main_revenue": np.minimum(np.round(revenue * panel.main_share[at]), revenue),
        "net_profit": _money(panel.net_profit[at]),
        "total_assets": _money(panel.assets[at]),
        "total_liabilities": _money(panel.liabilities[at]),
        "rd_expense": _money(panel.rd[at]),
        "employees": panel.employees[at].astype(np.int64),
        "rd_staff": panel.rd_staff[at].astype(np.float64),
        "export_revenue": np.minimum(_money(panel.export[at]), revenue),
        "equity_raised": _money(panel.equity[at]),
        "subsidies": _money(panel.subsidies[at]),
        "domestic_rank": panel.dom_rank[at].astype(np.float64),
        "domestic_share": np.round(panel.dom_share[at].astype(np.float64), 4),
        "global_rank": panel.glob_rank[at].astype(np.float64),
        "rd_institution": _str(RD_INSTITUTIONS[panel.rd_inst[at]]),
        "high_tech": _boolean(panel.high_tech[at]),
        "quality_cert": _boolean(panel.quality_cert[at]),
        "own_brand": _boolean(panel.own_brand[at]),
    })


def _event_frames(events: Events, firm_ids: pa.Array) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = _str(firm_ids.take(pa.array(events.firm.astype(np.int32))))
    tier = _str(TIERS[events.tier])
    year = events.year.astype(np.int64)
    event = _str(EVENTS[events.event])
    certifications = pd.DataFrame({"firm_id": ids, "tier": tier, "year": year,
                                   "batch": events.batch.astype(np.float64), "event": event})
    truth = pd.DataFrame({"firm_id": ids.copy(), "tier": tier.copy(), "year": year.copy(),
                          "event": event.copy(), "channel": _str(CHANNELS[events.channel]),
                          "true_p_selected": events.p_selected,
                          "true_p_non_merit": events.p_non_merit})
    return certifications, truth


def _candidate_frame(candidates: Candidates, firm_ids: pa.Array) -> pd.DataFrame:
    return pd.DataFrame({
        "firm_id": _str(firm_ids.take(pa.array(candidates.firm.astype(np.int32)))),
        "tier": _str(TIERS[candidates.tier]), "year": candidates.year.astype(np.int64),
        "true_p_selected": candidates.p_selected,
        "true_p_no_province": candidates.p_no_province})


def _csv_table(df: pd.DataFrame) -> pa.Table:
    """Arrow table for CSV: dates as YYYY-MM-DD, integer columns without '.0'."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if pa.types.is_timestamp(col.type):
            table = table.set_column(i, name, col.cast(pa.date32()))
        elif name in CSV_INTEGER_COLUMNS:
            table = table.set_column(i, name, col.cast(pa.int64()))
    return table


def write_universe(tables: dict[str, pd.DataFrame], out_dir: str | os.PathLike,
                   fmt: str = "parquet") -> Path:
    """Write the four contract tables as ``NAME.<fmt>`` (parquet or csv) and
    the truth tables present (``truth.parquet``, ``truth_candidates.parquet``) into
    ``out_dir``; returns the folder.

    Files are written into a temporary folder next to ``out_dir`` and then moved in (the
    whole folder at once when it is new), so a crash never leaves a half-written dataset.
    Tables of the other format left from an earlier run are removed, since Parquet would
    otherwise shadow a fresh CSV.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        names = []
        for name in CONTRACT_TABLES:
            path = tmp / f"{name}.{fmt}"
            if fmt == "parquet":
                pq.write_table(pa.Table.from_pandas(tables[name], preserve_index=False), path)
            else:
                pacsv.write_csv(_csv_table(tables[name]), path)
            names.append(path.name)
        for name in TRUTH_TABLES:
            if name in tables:
                pq.write_table(pa.Table.from_pandas(tables[name], preserve_index=False),
                               tmp / f"{name}.parquet")
                names.append(f"{name}.parquet")
        move_folder_into_place(tmp, out, names)
        other = "csv" if fmt == "parquet" else "parquet"
        for name in CONTRACT_TABLES:
            (out / f"{name}.{other}").unlink(missing_ok=True)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
