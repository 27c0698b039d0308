"""Property: a reason's words never contradict the evaluation beside it.

Over every candidate of every tier of a generated universe, scored by the registered models
as of 2026 (when the rulebooks in force differ from the models' 2022 lens): for every reason
that names a criterion, the outcome its words state (read back from the text alone) is that
criterion's on-data status in the same row's assessment, the one behind the eligibility
and failed-criteria columns; the verdict reason states the row's eligibility and lists only
criteria that fail and that no other reason of the firm names; no firm's reasons tell one
fact twice; and the reasons users read are exactly these.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.domain import TIERS
from features.pipeline import build_features
from features.rules import resolve_rulebooks
from features.rules.engine import FAIL, PASS, UNKNOWN
from models.reason_text import criterion_homes, criterion_name, template
from models.reasons import reason_table
from models.scoring import score_tier
from serving.score import score_firms
from tests.conftest import tracking_env
from tests.serving.test_score import trained_store

YEAR = 2026
STATUS = {"met": PASS, "not met": FAIL, "undecided on its data": UNKNOWN}
RELATION = re.compile(r": (above|at|below|under|within|outside|not at) the ")
# The words for clearing (or not) a bar, a ceiling or a top N, by the leaf's comparison.
CLEARS = {">=": {"above": PASS, "at": PASS, "below": FAIL},
          ">": {"above": PASS, "at": PASS, "below": FAIL},
          "<=": {"under": PASS, "at": PASS, "above": FAIL, "within": PASS, "outside": FAIL},
          "<": {"under": PASS, "at": PASS, "above": FAIL, "within": PASS, "outside": FAIL}}


@pytest.fixture(scope="module")
def scored(small_universe, tmp_path_factory):
    from features.contract import load_dataset
    from serving.score import load_models

    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        models = load_models()
        dataset = load_dataset(small_universe)
        frame, _ = score_firms(dataset, YEAR, models=models, chunk_size=100_000)
        X = build_features(dataset, YEAR, firm_ids=frame["firm_id"])
        yield models, X, frame.set_index("firm_id")


def _stated(text: str, kind: str, criterion, measure: str) -> int | None:
    """The criterion outcome a reason's words state, read from the text alone (None: the
    words state none)."""
    name = criterion_name(criterion)
    if text.startswith(name + ": "):
        word = re.match(r"(met|not met|undecided on its data)(?: \(|$)", text[len(name) + 2:])
        assert word, text
        return STATUS[word.group(1)]
    assert kind == "measure", f"a criterion's reason must state its outcome: {text!r}"
    if text.endswith("not reported"):
        return UNKNOWN
    spec = template(measure)
    if spec["format"] == "flag":
        leaf = criterion_homes_leaf(criterion, measure)
        yes, no = (spec.get(k, "").split("{")[0] for k in ("yes", "no"))
        value = 1.0 if text.startswith(yes) and not text.startswith(no) else 0.0
        hit = {"==": value == leaf.threshold, "!=": value != leaf.threshold}[leaf.op]
        return PASS if hit else FAIL
    found = RELATION.search(text)
    if found is None:
        return None
    op = criterion_homes_leaf(criterion, measure).op
    return CLEARS[op][found.group(1)]


def criterion_homes_leaf(criterion, measure: str):
    return next(leaf for leaf in criterion.leaves if leaf.features == (measure,))


@pytest.mark.parametrize("tier", TIERS)
def test_reason_words_agree_with_the_criteria_evaluation(scored, tier):
    models, X, frame = scored
    rulebook = resolve_rulebooks(None, YEAR)[tier]
    model = getattr(models[tier], "model", models[tier])
    score = score_tier(X.loc[frame.index], YEAR, tier, model, rulebook, reasons=0)
    Xt = X.loc[frame.index].iloc[score.rows]
    table = reason_table(Xt, score.contributions, 3, score.assessment, cohort=Xt)
    on_data = score.assessment.result.criteria_on_data
    criteria = {c.id: c for c in rulebook.criteria}
    eligible = score.assessment.eligible.astype(str).to_numpy()
    checked = {"criterion": 0, "verdict": 0}
    for row, reasons in table.groupby("row"):
        # One fact once: no group twice, no text twice.
        assert reasons["group"].is_unique and reasons["text"].is_unique, reasons["text"].tolist()
        named = set()
        for r in reasons.itertuples():
            if not r.criterion:
                assert r.kind != "criterion"
                assert not RELATION.search(r.text), f"a bar without a criterion: {r.text!r}"
                continue
            c = criteria[r.criterion]
            stated = _stated(r.text, r.kind, c, r.group)
            if stated is None:
                continue
            actual = on_data[r.criterion].cat.codes.iloc[row]
            assert stated == actual, (f"{tier} row {row}: {r.text!r} states "
                                      f"{stated}, the evaluation says {actual}")
            named.add(r.criterion)
            checked["criterion"] += 1
        for text in reasons.loc[reasons["kind"] == "verdict", "text"]:
            checked["verdict"] += 1
            if text.startswith("meets every criterion"):
                assert eligible[row] == "pass", text
            elif text.startswith("fails the"):
                assert eligible[row] == "fail", text
                listed = text.split(": ", 1)[1] if ": " in text else ""
                for c in criteria.values():
                    if criterion_name(c) in listed:
                        assert on_data[c.id].iloc[row] == "fail", (text, c.id)
                        assert c.id not in named, f"told twice: {c.id} in {reasons.text.tolist()}"
            else:
                assert text.endswith("undecided on its data") and eligible[row] == "unknown"
    assert checked["criterion"] > 50 and checked["verdict"] > 10, checked
    # The reasons users read are these, in this order.
    for side in ("for", "against"):
        joined = (table[table["side"] == side].sort_values(["row", "order"])
                  .groupby("row")["text"].agg("; ".join))
        shown = frame[f"reasons_{tier}_{side}"].iloc[score.rows].fillna("").to_numpy()
        expected = np.full(len(score.rows), "", dtype=object)
        expected[joined.index.to_numpy()] = joined.to_numpy()
        assert (shown == expected).all()


def test_measures_quote_bars_only_through_their_criterion():
    """A measure's home is the criterion that reads it; its bar words are that criterion's."""
    rulebook = resolve_rulebooks(None, YEAR)["little_giant"]
    homes = criterion_homes(rulebook)
    assert homes["main_share"].criterion.id == "lg26_main_share" and homes["main_share"].single
    assert not homes["domestic_share"].single  # share or rank: one criterion, two measures
    assert pd.Series([h.criterion.id for h in homes.values()]).str.startswith("lg26_").all()
