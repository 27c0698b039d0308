"""The output rows of scored chunks: the columns, their Arrow schema, and the texts of the
rules' verdicts (eligibility, failed criteria, gaps) and of the reasons, per firm.

Texts are written once per distinct value and moved to every firm by Arrow (`take`,
`binary_join`), so a national run builds no Python string per firm; ``structured=True`` (the
API's JSON answers) keeps failed criteria as lists and gaps as dicts instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from features.domain import TIERS
from features.identity import IDENTITY_COLUMNS
from models.scoring import ScoredFrame
from models.values import join_per_row, str_array

GAP_SEPARATOR = " | "
CRITERIA_SEPARATOR = "; "


def output_columns_of(scored: ScoredFrame, tiers: tuple[str, ...], structured: bool = False,
                      identity: pd.DataFrame | None = None) -> dict[str, object]:
    """The output rows of a ScoredFrame as columns: name -> one value per firm, in the
    order of `output_columns` (a frame of them is a scoring run's output; a one-firm answer
    reads its values from here: a frame of one row costs more to build and read than its
    values). `identity`: features.identity.firm_identity of the same firms, in order."""
    n = len(scored.index)
    columns: dict[str, object] = {"firm_id": str_array(scored.index.to_numpy(dtype=object))}
    for column in IDENTITY_COLUMNS:
        values = identity[column].to_numpy(dtype=object) if identity is not None \
            else np.full(n, None, dtype=object)
        columns[column] = values if structured else str_array(values)
    columns["year"] = np.full(n, scored.year, dtype=np.int64)
    for tier in tiers:
        tier_score = scored.tiers[tier]
        columns[f"p_{tier}"] = tier_score.probability
        columns[f"rank_{tier}"] = candidate_ranks(tier_score.probability)
        texts: dict[str, object] = dict.fromkeys(tier_text_columns(tier))
        verdict = tier_score.assessment
        if verdict is not None:
            texts.update(assessment_columns(tier, verdict, structured, arrow=not structured))
        if tier_score.reasons is not None:
            for side in ("for", "against"):
                texts[f"reasons_{tier}_{side}"] = tier_score.reasons[f"reasons_{side}"]
        columns.update({c: _spread(v, tier_score.rows, n, structured) for c, v in texts.items()})
    for tier, review in scored.reviews.items():
        columns[f"p_renewal_{tier}"] = review.probability
        for side in ("for", "against"):
            values = review.reasons[f"reasons_{side}"] if review.reasons is not None else None
            columns[f"reasons_renewal_{tier}_{side}"] = _spread(values, review.rows, n,
                                                                structured)
    return {name: columns[name] for name in output_columns(tiers, tuple(scored.reviews))}


def _spread(values, rows: np.ndarray, n: int, structured: bool):
    """A text column of n firms from the `values` of the firms at `rows` (None: no values),
    empty elsewhere: an object array when `structured` (values may be lists and dicts),
    else a pandas str column moved by Arrow, without a Python str per firm."""
    if structured:
        out = np.full(n, None, dtype=object)
        if values is not None:
            out[rows] = np.asarray(values, dtype=object)
        return out
    if values is None:
        return str_array(np.full(n, None, dtype=object))
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.large_string(), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):  # a pandas str column's Arrow data
        values = values.combine_chunks()
    spread = _spread_offsets(values, rows, n) if values.null_count == 0 else None
    if spread is None:
        source = np.full(n, -1, dtype=np.int64)
        source[rows] = np.arange(len(rows))
        spread = values.take(pa.array(source, mask=source < 0))
    return pd.array(pa.chunked_array([spread]), dtype="str")


def _spread_offsets(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array | None:
    """`values` (large_string, no nulls) at the ascending `rows` of n, null elsewhere, as new
    offsets over the same character buffer: no text is copied (None: not that layout)."""
    if values.type != pa.large_string() or (len(rows) > 1 and (np.diff(rows) <= 0).any()):
        return None
    _, offsets, data = values.buffers()
    if data is None:
        data = pa.py_buffer(b"")
    starts = np.frombuffer(offsets, dtype=np.int64)[values.offset:values.offset + len(rows) + 1]
    lengths = np.zeros(n, dtype=np.int64)
    lengths[rows] = np.diff(starts)
    spread = np.empty(n + 1, dtype=np.int64)
    spread[0] = starts[0] if len(starts) else 0
    np.cumsum(lengths, out=spread[1:])
    spread[1:] += spread[0]
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(spread), data,
                                            pa.array(valid).buffers()[1],
                                            null_count=n - len(rows))


def candidate_ranks(probability: np.ndarray) -> pd.arrays.IntegerArray:
    """Rank of each probability among the candidates' (1 = the highest; ties share the
    best rank); <NA> where the firm is not a candidate (NaN)."""
    if len(probability) == 1:  # a one-firm answer: first, or no candidate
        return pd.array([None if np.isnan(probability[0]) else 1], dtype="Int64")
    ranks = pd.Series(probability).rank(ascending=False, method="min")
    return pd.array(ranks.to_numpy(), dtype="Int64")


def assessment_columns(tier: str, verdict, structured: bool = False,
                       arrow: bool = False) -> dict[str, np.ndarray]:
    """The eligibility columns of one tier's assessment (features.rules.Assessment), one
    value per assessed row: ``rulebook_<tier>``, ``eligible_<tier>`` (on the firm's data),
    ``failed_<tier>`` ("; "-joined ids, or lists when `structured`) and ``gaps_<tier>``
    ("id: text", " | "-joined, or dicts). `score`, `check` and the API all write these.
    Object arrays, or Arrow large_string arrays with `arrow` (not with `structured`)."""
    n = len(verdict.eligible)
    if structured:
        failed = np.asarray(verdict.failed + [None], dtype=object)[:-1]
        gaps = np.asarray(verdict.gaps + [None], dtype=object)[:-1]
    elif arrow:
        eligible, text = verdict.eligible.array, pa.large_string()
        distinct, inverse = _failure_patterns(verdict)
        return {
            f"rulebook_{tier}": pa.array([verdict.rulebook.id], text).take(np.zeros(n, int)),
            f"eligible_{tier}": pa.array(np.asarray(eligible.categories, dtype=object),
                                         text).take(eligible.codes),
            f"failed_{tier}": pa.array(distinct, text).take(inverse),
            f"gaps_{tier}": gap_texts(verdict),
        }
    else:
        failed = failed_texts(verdict)
        gaps = gap_texts(verdict).to_numpy(zero_copy_only=False)
    return {
        f"rulebook_{tier}": np.full(n, verdict.rulebook.id, dtype=object),
        f"eligible_{tier}": verdict.eligible.astype(str).to_numpy(dtype=object),
        f"failed_{tier}": failed,
        f"gaps_{tier}": gaps,
    }


def failed_texts(verdict) -> np.ndarray:
    """Per assessed row, the ids of its failed criteria "; "-joined (the order of
    `verdict.failed`), object array of str."""
    distinct, inverse = _failure_patterns(verdict)
    return distinct[inverse]


def _failure_patterns(verdict) -> tuple[np.ndarray, np.ndarray]:
    """(the "; "-joined failed ids of each distinct failure pattern, object array; each
    row's pattern): firms fail in a few typical ways, so ids are joined once per pattern."""
    mask, ids = verdict.failed_mask, verdict.failed_ids
    if mask.shape[1] == 0:
        return np.array([""], dtype=object), np.zeros(len(mask), dtype=np.intp)
    if mask.shape[1] < 63:  # each row's bits as one integer: a 1-d unique is fast
        _, first, inverse = np.unique(mask.astype(np.int64) @ (1 << np.arange(mask.shape[1])),
                                      return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(mask, axis=0, return_index=True, return_inverse=True)
    distinct = np.array([CRITERIA_SEPARATOR.join(ids[mask[row]]) for row in first] + [None],
                        dtype=object)[:-1]
    return distinct, inverse.reshape(-1)


def gap_texts(verdict) -> pa.Array:
    """Per assessed row, "id: gap text" of each failed criterion " | "-joined in rulebook
    order (the order of `verdict.gaps`), "" where none (large_string array). Gap texts are
    written once per distinct rounded value, so a criterion's column holds few distinct
    texts: each is prefixed and converted to Arrow once, then the rows are joined by Arrow."""
    n = len(verdict.eligible)
    rows, texts = [np.zeros(0, dtype=np.int64)], [pa.array([], type=pa.large_string())]
    for criterion, column in verdict.gap_columns.items():
        at = np.flatnonzero(np.not_equal(column, None))
        codes, distinct = pd.factorize(column[at])
        rows.append(at)
        texts.append(pa.array(f"{criterion}: " + distinct, type=pa.large_string()).take(codes))
    # Each row's criteria in rulebook order: the order of the columns concatenated.
    return join_per_row(np.concatenate(rows), pa.concat_arrays(texts), n, GAP_SEPARATOR)


def tier_text_columns(tier: str) -> list[str]:
    return [f"rulebook_{tier}", f"eligible_{tier}", f"failed_{tier}", f"gaps_{tier}",
            f"reasons_{tier}_for", f"reasons_{tier}_against"]


def output_columns(tiers: tuple[str, ...] = TIERS,
                   reviews: tuple[str, ...] = TIERS) -> list[str]:
    """The output columns for the selection models of ``tiers`` and the re-review models
    of ``reviews`` (default: every tier of both)."""
    return (["firm_id", *IDENTITY_COLUMNS, "year"] + [f"p_{t}" for t in tiers]
            + [f"rank_{t}" for t in tiers] + [c for t in tiers for c in tier_text_columns(t)]
            + [f"p_renewal_{t}" for t in reviews]
            + [f"reasons_renewal_{t}_{side}" for t in reviews for side in ("for", "against")])


def output_schema(tiers: tuple[str, ...] = TIERS, reviews: tuple[str, ...] = ()) -> pa.Schema:
    """Arrow schema of the output file: fixed, so every chunk writes the same columns."""
    types = {"firm_id": pa.string(), "year": pa.int64(), **{f"p_{t}": pa.float64() for t in tiers},
             **{f"rank_{t}": pa.int64() for t in tiers},
             **{f"p_renewal_{t}": pa.float64() for t in reviews}}
    return pa.schema([(c, types.get(c, pa.string())) for c in output_columns(tiers, reviews)])
