"""One channel of models.selection_channels: a ridge-penalised logistic GLM with sign bounds,
on an imputed, standardised design.

    part = ChannelGLM(frame, signs={"rd_intensity": +1}, alpha=1.0)
    D = part.matrix(frame)                       # (n, 1 + design columns), intercept first
    part.fit(D, target, weight, offset)          # soft targets in [0, 1]
    eta = part.eta(D)                            # (n,) log-odds without the offset

Categorical columns are one-hot encoded; where a column's direction is known (``signs``:
+1 / -1) its coefficient is bounded to that sign, and a missing value counts as its
least-favoured value plus a flag bounded to the same sign, so no value, known or missing,
ranks below the least-favoured one. Hand-written on scipy's bounded optimiser because the
separate structure needs soft labels and both structures need an offset and bounded
coefficients, none of which sklearn's LogisticRegression offers.

`as_frame` cleans X or Z once (text columns as strings, numbers as floats); it and
`ChannelGLM.matrix` remember their last few results, because the bootstrap refits and
scores the same frames with the same design dozens of times.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _design(frame: pd.DataFrame, signs: dict[str, int]) -> ColumnTransformer:
    """Scaler for numeric columns, one-hot for the rest. A missing value of a column with a
    known direction (``signs``) is filled with the column's least-favoured value (its
    minimum for +1, maximum for -1) and flagged by an indicator bounded to the same sign
    (``ChannelGLM``): a missing value counts at least as little as the least-favoured one
    and can never reverse the direction (no typical value is imputed, which with a free
    indicator could make the least-favoured value, e.g. "no parent", raise the chance).
    Other numeric columns: median and a free missing indicator."""
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                   or isinstance(frame[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in frame.columns if c not in categorical]
    signed = [c for c in numeric if signs.get(c, 0) != 0]

    def least_favoured(column: str) -> float:
        values = frame[column].dropna()
        return 0.0 if values.empty else float(
            values.min() if signs[column] > 0 else values.max())

    return ColumnTransformer([
        *((f"signed_{column}", make_pipeline(
            SimpleImputer(strategy="constant", fill_value=least_favoured(column),
                          add_indicator=True, keep_empty_features=True), StandardScaler()),
           [column]) for column in signed),
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                            keep_empty_features=True), StandardScaler()),
         [c for c in numeric if c not in signed]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
    ], verbose_feature_names_out=False)


_RECENT: OrderedDict = OrderedDict()


def _recent(objects: tuple, compute):
    """compute() for these exact objects, remembered for the last few calls: the bootstrap
    refits and scores the same frames with the same design dozens of times. The objects
    are kept with the result, so their ids cannot be reused while it is remembered."""
    key = tuple(id(o) for o in objects)
    hit = _RECENT.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], objects)):
        _RECENT.move_to_end(key)
        return hit[1]
    value = compute()
    _RECENT[key] = (objects, value)
    while len(_RECENT) > 12:
        _RECENT.popitem(last=False)
    return value


def as_frame(values) -> pd.DataFrame:
    return _recent((values,), lambda: _clean_frame(values))


def _clean_frame(values) -> pd.DataFrame:
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values))
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or \
                isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "unknown") \
                .astype(str)
        else:
            frame[column] = frame[column].astype(float)
    return frame


class ChannelGLM:
    """One channel: a design and the coefficients (intercept first) of a logistic GLM."""

    def __init__(self, frame: pd.DataFrame, signs: dict[str, int], alpha: float,
                 design: ColumnTransformer | None = None):
        # A refit on the same rows (bootstrap weights) keeps the design it was given: the
        # imputer and scaler are fitted unweighted, so they would come out the same.
        self.design = design if design is not None else _design(frame, signs).fit(frame)
        self.names = list(self.design.get_feature_names_out())
        self.alpha = alpha
        # A sign applies to the column's own standardised value, to its missing flag (the
        # value is filled with the least-favoured one, _design), and to every level of a
        # categorical column (against the least-favoured level).
        levels = dict(zip(self.design.named_transformers_["cat"].feature_names_in_,
                          self.design.named_transformers_["cat"].categories_)) \
            if hasattr(self.design.named_transformers_["cat"], "categories_") else {}
        signs = {**signs, **{f"{column}_{level}": signs[column]
                             for column, values in levels.items() if column in signs
                             for level in values},
                 **{f"missingindicator_{column}": sign for column, sign in signs.items()}}
        self.bounds = [(None, None)] + [
            {1: (0.0, None), -1: (None, 0.0)}.get(signs.get(n, 0), (None, None))
            for n in self.names]
        self.coef = np.zeros(len(self.names) + 1)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 1 + columns) design of ``frame``, intercept first."""
        return _recent((self.design, frame), lambda: np.column_stack([
            np.ones(len(frame)), np.asarray(self.design.transform(frame), dtype=float)]))

    def fit(self, D: np.ndarray, target: np.ndarray, weight: np.ndarray,
            offset: np.ndarray) -> None:
        """Weighted logistic fit on soft targets in [0, 1] with an offset (warm start)."""
        total = weight.sum()
        # alpha is per fit, not per row (as sklearn's C = 1 / alpha): a rare outcome gives a
        # small mean loss, which a per-row penalty would swamp.
        penalty = np.r_[0.0, np.full(D.shape[1] - 1, self.alpha / total)]

        def loss(beta):
            eta = offset + D @ beta
            value = -(weight * (target * log_expit(eta) + (1 - target) * log_expit(-eta))).sum()
            grad = D.T @ (weight * (expit(eta) - target))
            return (value / total + 0.5 * (penalty * beta ** 2).sum(),
                    grad / total + penalty * beta)

        # TNC: bounded truncated Newton; several times faster than L-BFGS-B on these
        # small designs, to the same optimum.
        result = minimize(loss, self.coef, jac=True, method="TNC", bounds=self.bounds,
                          options={"maxfun": 500})
        self.coef = result.x

    def eta(self, D: np.ndarray) -> np.ndarray:
        return D @ self.coef

    @classmethod
    def joint(cls, parts: list[ChannelGLM], alpha: float) -> ChannelGLM:
        """One GLM over the designs of `parts` side by side (the first keeps its intercept,
        the others' are dropped): their bounds and coefficients, no design of its own."""
        joint = cls.__new__(cls)
        joint.alpha = alpha
        joint.bounds = parts[0].bounds + [b for part in parts[1:] for b in part.bounds[1:]]
        joint.coef = np.concatenate([parts[0].coef, *(part.coef[1:] for part in parts[1:])])
        return joint
