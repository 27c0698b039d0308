"""A Cohort's place of a value among candidates equals a brute-force count, for every value."""

import pickle

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from models.cohort import Cohort
from models.reason_text import MIN_COHORT, cohort_ranks


def brute_force(known: np.ndarray, v: float) -> tuple[bool, int]:
    below, above = int((known < v).sum()), int((known > v).sum())
    higher = below >= above
    return higher, (100 * (below if higher else above)) // len(known)


# Few distinct values (many ties), NaNs, sizes around MIN_COHORT and a few larger ones.
values = st.lists(st.one_of(st.integers(-3, 3).map(float), st.just(np.nan),
                            st.floats(-1e6, 1e6, allow_nan=False)),
                  min_size=1, max_size=3 * MIN_COHORT)


@settings(max_examples=300, deadline=None)
@given(column=values, seed=st.integers(0, 2**16))
def test_place_equals_a_brute_force_count(column, seed):
    frame = pd.DataFrame({"m": column, "label": "x"})
    cohort = Cohort.from_frame(frame)
    assert "label" not in cohort.measures, "only numeric columns are summarised"
    known = np.array([v for v in column if not np.isnan(v)])
    assert cohort.n("m") == len(known)
    if not len(known):
        return
    rng = np.random.default_rng(seed)
    # Every known value, a value between each pair of neighbours, and values outside.
    distinct = np.unique(known)
    probes = np.concatenate([distinct, (distinct[:-1] + distinct[1:]) / 2,
                             [distinct[0] - 1, distinct[-1] + 1], rng.uniform(-5, 5, 10)])
    higher, percent = cohort.place("m", probes)
    expected = [brute_force(known, v) for v in probes]
    assert higher.tolist() == [h for h, _ in expected]
    assert percent.tolist() == [p for _, p in expected]


def test_the_percent_is_exact_where_a_float_floor_is_not():
    # 29 of 100 below and 29 above: "higher than 29%"; a float floor of 29 / 100 * 100
    # (28.999999999999996) printed 28%.
    known = np.repeat([0.0, 1.0, 2.0], [29, 42, 29])
    cohort = Cohort.from_values({"m": [known[:40], known[40:]]})  # per-chunk arrays
    assert np.floor(29 / 100 * 100) == 28
    words = cohort_ranks(cohort, "m", np.array([1.0, 0.5, 1.5, 3.0]))
    assert words.tolist() == [", higher than 29% of candidates", ", lower than 71% of candidates",
                              ", higher than 71% of candidates", ", higher than 100% of candidates"]


def test_a_frame_and_its_cohort_give_the_same_words_and_the_cohort_pickles():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"rd_intensity": rng.choice([0.01, 0.02, 0.03, np.nan], 200)})
    cohort = pickle.loads(pickle.dumps(Cohort.from_frame(frame)))
    probe = np.array([0.0, 0.01, 0.02, 0.025, 0.03, 0.04, np.nan])
    words = cohort_ranks(cohort, "rd_intensity", probe)
    assert (words == cohort_ranks(frame, "rd_intensity", probe)).all()
    assert words[-1] == "" and words[0] == ", lower than " + words[0].split(" than ")[1]
    few = Cohort.from_frame(frame.head(MIN_COHORT - 1))
    assert (cohort_ranks(few, "rd_intensity", probe) == "").all(), "too few to place among"
