"""How a list is filled: a merit channel and a non-merit channel, and for each selection the
probability that it would not have happened on merit alone.

Two structures, both fitted by maximum likelihood:

- ``separate``: two channels fill the list independently,
  ``P(selected) = 1 - (1 - m(x)) (1 - c(z))``; fitted by EM over the latent channel (the
  E-step gives each selection its posterior share of each channel, the M-step refits each
  channel on those soft labels). ``p_non_merit = (1 - m) c / P``: the posterior that the
  merit channel did not select the firm.
- ``additive``: one committee whose log-odds add a non-merit bonus,
  ``logit a = m(x) + c(z)``, and, with ``unexplained_share`` > 0, favours no column of ``z``
  shows (personal ties, a province's chosen few) that carry a firm whatever its merit:
  ``P = 1 - (1 - a) (1 - u)``, ``u`` set so that they make ``unexplained_share`` of the
  selections (fitted by EM over that latent route). The bonus is measured from the
  least-favoured candidates' (the 5th percentile of the bonus, ``c_ref_``), and
  ``p_non_merit = 1 - sigmoid(m + c_ref) / P`` (0 for a bonus below the reference): the
  share of the firm's chance that favours add, i.e. the probability that without them the
  firm would not have been selected. Without the unexplained route a selection far below
  the merit line and with no visible favour would get p_non_merit 0: the likelihood alone
  cannot tell how many such favours there are (it prefers none), so their share is given.

``x`` holds only the published criteria and the firm's own performance, ``z`` only
ownership, parent group, state share, listing, subsidies and province. Each part is a
ridge-penalised logistic GLM with sign constraints where the direction is known
(models.channel_glm).

``structure="auto"`` fits both on all but the last group (year) and keeps the one with the
better held-out log-likelihood (``heldout_loglik_``), then refits it on every row.

The two structures are not nested, and on a few thousand candidates their held-out
likelihoods can differ by less than chance: ``vuong_z`` (Vuong's test for non-nested models)
says whether the data tell them apart (``DECISIVE_Z``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.base import BaseEstimator

from models.channel_glm import ChannelGLM, as_frame

STRUCTURES = ("separate", "additive")
EPS = 1e-12
# The additive bonus is counted from the least-favoured candidates (the 5th percentile of
# the bonus): favours only add, so a firm with none is the natural "merit alone" reference.
REFERENCE_QUANTILE = 0.05
# The held-out likelihood tells the structures apart only beyond chance: Vuong's statistic
# past the two-sided 5% level of the normal distribution.
DECISIVE_Z = 1.96


class TwoChannelSelection(BaseEstimator):
    """Merit and non-merit channels of a selection list.

    Parameters
    ----------
    structure : "separate", "additive" or "auto" (choose by held-out log-likelihood).
    merit_signs, channel_signs : {column: +1 / -1}, the known direction of a numeric column
        of X (merit) or Z (non-merit); the coefficient is bounded to that sign.
    alpha : ridge penalty on the standardised coefficients, against the summed (weighted)
        log-loss.
    unexplained_share : share of the selections made by favours no column of Z shows
        (additive structure only; 0 = none).
    max_iter, tol : EM iterations and the tolerance on the mean log-likelihood change.

    Fitted attributes
    -----------------
    structure_ : the structure kept; heldout_loglik_ : {structure: mean held-out
    log-likelihood per row} (only with "auto" and at least two groups);
    merit_coef_, channel_coef_ : pd.Series of GLM coefficients (index = design columns,
    "intercept" first); c_ref_ : the additive structure's reference bonus (5th
    percentile over the training rows); unexplained_ : the probability ``u`` that an
    unexplained favour carries a candidate (additive structure; 0 otherwise); loglik_ : mean
    training log-likelihood; n_iter_ : EM iterations.
    """

    def __init__(self, structure: str = "auto", merit_signs: dict | None = None,
                 channel_signs: dict | None = None, alpha: float = 1.0, max_iter: int = 200,
                 tol: float = 1e-7, unexplained_share: float = 0.0):
        self.structure = structure
        self.merit_signs = merit_signs
        self.channel_signs = channel_signs
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.unexplained_share = unexplained_share

    def fit(self, X, Z, y, offset=None, sample_weight=None, groups=None, init=None):
        """X: (n, p) merit features; Z: (n, q) non-merit features; y: (n,) 0/1 selected;
        offset: (n,) log-odds added to every channel (e.g. the logit of the year's selection
        rate; default 0); sample_weight: (n,) row weights (e.g. inverse sampling rates);
        groups: (n,) e.g. years, the last of which is held out when structure="auto";
        init: a fitted TwoChannelSelection of the same structure and columns to start from
        (warm start, e.g. for bootstrap refits). Returns self."""
        if self.structure not in (*STRUCTURES, "auto"):
            raise ValueError(f"structure must be one of {STRUCTURES} or 'auto', "
                             f"got {self.structure!r}")
        X, Z = as_frame(X), as_frame(Z)
        y = np.asarray(y, dtype=float)
        n = len(y)
        offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
        weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        structure = self.structure
        self.heldout_loglik_ = {}
        if structure == "auto":
            structure = "separate"
            if groups is not None and len(np.unique(groups)) >= 2:
                groups = np.asarray(groups)
                held = groups == np.max(groups)
                for candidate in STRUCTURES:
                    part = self._fit_one(candidate, X[~held], Z[~held], y[~held],
                                         offset[~held], weight[~held])
                    p = part._p_selected(X[held], Z[held], offset[held])
                    self.heldout_loglik_[candidate] = _loglik(y[held], p, weight[held])
                structure = max(self.heldout_loglik_, key=self.heldout_loglik_.get)
        fitted = self._fit_one(structure, X, Z, y, offset, weight, init)
        self.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")
                              and k != "heldout_loglik_"})
        return self

    def _fit_one(self, structure, X, Z, y, offset, weight, init=None) -> TwoChannelSelection:
        model = TwoChannelSelection(structure, self.merit_signs, self.channel_signs,
                                    self.alpha, self.max_iter, self.tol,
                                    self.unexplained_share)
        merit = ChannelGLM(X, self.merit_signs or {}, self.alpha,
                      None if init is None else init.merit_part_.design)
        channel = ChannelGLM(Z, self.channel_signs or {}, self.alpha,
                        None if init is None else init.channel_part_.design)
        DX, DZ = merit.matrix(X), channel.matrix(Z)
        rate = np.clip(np.average(y, weights=weight), 1e-6, 1 - 1e-6)
        merit.coef[0] = np.log(rate / (1 - rate)) - np.average(offset, weights=weight)
        if init is not None:
            merit.coef = init.merit_part_.coef.copy()
            channel.coef = init.channel_part_.coef.copy()
        if structure == "additive":
            # One logistic GLM over both designs; the merit part holds the intercept.
            D = np.column_stack([DX, DZ[:, 1:]])
            joint = ChannelGLM.joint([merit, channel], self.alpha)
            unexplained, n_iter = _fit_committee(joint, D, y, weight, offset,
                                                 self.unexplained_share, self.max_iter,
                                                 self.tol)
            merit.coef = joint.coef[:DX.shape[1]]
            channel.coef = np.r_[0.0, joint.coef[DX.shape[1]:]]
        else:
            unexplained = 0.0
            # Start the non-merit channel small: most selections are on merit.
            if init is None:
                channel.coef[0] = merit.coef[0] - 2.0
            previous, n_iter = -np.inf, 0
            for n_iter in range(1, self.max_iter + 1):
                m = expit(offset + merit.eta(DX))
                c = expit(offset + channel.eta(DZ))
                p = 1 - (1 - m) * (1 - c)
                current = _loglik(y, p, weight)
                if current - previous < self.tol:
                    break
                previous = current
                # E-step: each selection's posterior that each channel chose it.
                merit.fit(DX, y * m / np.maximum(p, EPS), weight, offset)
                channel.fit(DZ, y * c / np.maximum(p, EPS), weight, offset)
        model.structure_ = structure
        model.merit_part_, model.channel_part_ = merit, channel
        model.merit_coef_ = pd.Series(merit.coef, index=["intercept", *merit.names])
        model.channel_coef_ = pd.Series(channel.coef, index=["intercept", *channel.names])
        model.c_ref_ = float(np.quantile(channel.eta(DZ), REFERENCE_QUANTILE)) \
            if structure == "additive" else 0.0
        model.unexplained_ = unexplained
        model.n_iter_ = n_iter
        model.loglik_ = _loglik(y, model._p_selected(X, Z, offset), weight)
        return model

    def _etas(self, X, Z, offset):
        X, Z = as_frame(X), as_frame(Z)
        offset = np.zeros(len(X)) if offset is None else np.asarray(offset, dtype=float)
        return (offset + self.merit_part_.eta(self.merit_part_.matrix(X)),
                self.channel_part_.eta(self.channel_part_.matrix(Z)), offset)

    def _p_selected(self, X, Z, offset=None) -> np.ndarray:
        eta_m, eta_c, offset = self._etas(X, Z, offset)
        if self.structure_ == "additive":
            return _with_unexplained(expit(eta_m + eta_c), self.unexplained_)
        return 1 - (1 - expit(eta_m)) * (1 - expit(offset + eta_c))

    def channel_probabilities(self, X, Z, offset=None) -> pd.DataFrame:
        """(n, 3) frame: p_merit (the merit channel alone: m, or sigmoid(m + c_ref) for the
        additive structure), p_channel (c, or the bonus in log-odds for the additive
        structure) and p_selected."""
        eta_m, eta_c, offset = self._etas(X, Z, offset)
        if self.structure_ == "additive":
            return pd.DataFrame({"p_merit": expit(eta_m + self.c_ref_),
                                 "p_channel": eta_c - self.c_ref_,
                                 "p_selected": _with_unexplained(expit(eta_m + eta_c),
                                                                 self.unexplained_)})
        m, c = expit(eta_m), expit(offset + eta_c)
        return pd.DataFrame({"p_merit": m, "p_channel": c, "p_selected": 1 - (1 - m) * (1 - c)})

    def predict_proba(self, X, Z, offset=None) -> np.ndarray:
        """(n, 2): probabilities of not selected / selected."""
        p = self._p_selected(X, Z, offset)
        return np.column_stack([1 - p, p])

    def p_non_merit(self, X, Z, offset=None) -> np.ndarray:
        """(n,) probability that a selection would not have happened on merit alone
        (meaningful for selected rows)."""
        probs = self.channel_probabilities(X, Z, offset)
        if self.structure_ == "additive":
            return np.clip(1 - probs["p_merit"] / probs["p_selected"], 0.0, 1.0).to_numpy()
        return ((1 - probs["p_merit"]) * probs["p_channel"] / np.maximum(
            probs["p_selected"], EPS)).to_numpy()

    def score(self, X, Z, y, offset=None, sample_weight=None) -> float:
        """Mean log-likelihood per row (higher is better)."""
        weight = None if sample_weight is None else np.asarray(sample_weight, float)
        return _loglik(np.asarray(y, float), self._p_selected(X, Z, offset), weight)

    def excess(self, X, Z, Z_counterfactual, by, offset=None,
               sample_weight=None) -> pd.DataFrame:
        """Selections expected per group of ``by`` (n,) against those expected with the
        non-merit features replaced by ``Z_counterfactual`` (n, q) (e.g. the province left
        unknown): columns group, candidates (rows), expected, counterfactual (weighted sums
        of probabilities), excess (expected / counterfactual - 1)."""
        weight = np.ones(len(by)) if sample_weight is None else np.asarray(sample_weight)
        p = self._p_selected(X, Z, offset) * weight
        p0 = self._p_selected(X, Z_counterfactual, offset) * weight
        table = pd.DataFrame({"group": np.asarray(by), "p": p, "p0": p0}).groupby(
            "group").agg(candidates=("p", "size"), expected=("p", "sum"),
                         counterfactual=("p0", "sum")).reset_index()
        table["excess"] = table["expected"] / table["counterfactual"] - 1
        return table


def _with_unexplained(a: np.ndarray, u: float) -> np.ndarray:
    """P(selected): by the committee (a) or, failing it, by an unexplained favour (u)."""
    return 1 - (1 - a) * (1 - u)


def _fit_committee(joint: ChannelGLM, D: np.ndarray, y: np.ndarray, weight: np.ndarray,
                   offset: np.ndarray, share: float, max_iter: int, tol: float
                   ) -> tuple[float, int]:
    """Fit the additive committee's GLM (``joint``, in place) and the probability ``u`` of an
    unexplained favour, such that unexplained favours make ``share`` of the selections:
    EM over the latent route (the E-step's posterior that the committee chose a selection
    is its soft label). Returns (u, iterations)."""
    if share <= 0:
        joint.fit(D, y, weight, offset)
        return 0.0, 1
    selected = y == 1
    previous, u = -np.inf, 0.0
    for n_iter in range(1, max_iter + 1):
        a = expit(offset + joint.eta(D))

        def excess(v, chosen=a[selected]):  # the share the unexplained route takes at u = v
            route = (1 - chosen) * v / _with_unexplained(chosen, v)
            return np.average(route, weights=weight[selected]) - share

        u = brentq(excess, 0.0, 1.0) if excess(1.0) > 0 else 1.0
        p = _with_unexplained(a, u)
        current = _loglik(y, p, weight)
        # Not a plain EM (u is held to the share), so the likelihood may settle from above.
        if abs(current - previous) < tol:
            break
        previous = current
        joint.fit(D, y * a / np.maximum(p, EPS), weight, offset)
    return u, n_iter


def loglik_rows(y, p) -> np.ndarray:
    """(n,) log-likelihood of each 0/1 outcome ``y`` (n,) under probabilities ``p`` (n,)."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    y = np.asarray(y, dtype=float)
    return y * np.log(p) + (1 - y) * np.log1p(-p)


def _loglik(y, p, weight=None) -> float:
    return float(np.average(loglik_rows(y, p), weights=weight))


def vuong_z(loglik_a: np.ndarray, loglik_b: np.ndarray) -> float:
    """Vuong's statistic for two non-nested models from their held-out log-likelihoods of
    the same rows ((n,) each): the summed differences over their standard error, positive
    when model a fits better (told_apart says whether it tells the models apart); 0 when the
    rows cannot say (fewer than two, or no difference at all), infinite when every row
    differs by the same amount."""
    difference = np.asarray(loglik_a, dtype=float) - np.asarray(loglik_b, dtype=float)
    if len(difference) < 2:
        return 0.0
    spread = difference.std(ddof=1)
    if not spread > 0:  # the same difference on every row: no chance in it
        return float(np.sign(difference.sum()) * np.inf) if difference.any() else 0.0
    return float(difference.sum() / (spread * np.sqrt(len(difference))))


def told_apart(z: float) -> bool:
    """Whether Vuong's statistic ``z`` (vuong_z) tells two structures apart."""
    return abs(z) >= DECISIVE_Z


def posterior_given_choice(posteriors: dict[str, np.ndarray], better: str,
                           z: float) -> np.ndarray:
    """(n,) p_non_merit from each structure's posterior ({structure: (n,)}): the ``better``
    structure's where the held-out likelihood tells them apart (told_apart(z)), else the
    mean of all: neither is preferred on evidence within chance."""
    if told_apart(z):
        return posteriors[better]
    return np.mean(list(posteriors.values()), axis=0)


def bootstrap_excess(model: TwoChannelSelection, X, Z, y, counterfactuals: dict,
                     offset=None, sample_weight=None, n_boot: int = 50, level: float = 0.9,
                     seed: int = 0) -> dict[str, pd.DataFrame]:
    """``model.excess`` for each ``{name: (Z_counterfactual, by)}``, with a ``level``
    interval from ``n_boot`` refits of its structure on Poisson-bootstrap row weights (the
    uncertainty of the fitted channels; each refit's excess is counted over the same rows).
    Returns {name: frame with columns group, candidates, excess, low, high}."""
    points = {name: model.excess(X, Z, Z_cf, by, offset, sample_weight)
              for name, (Z_cf, by) in counterfactuals.items()}
    rng = np.random.default_rng(seed)
    base = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    draws = {name: [] for name in counterfactuals}
    for _ in range(n_boot):
        refit = TwoChannelSelection(model.structure_, model.merit_signs, model.channel_signs,
                                    model.alpha, model.max_iter, model.tol,
                                    model.unexplained_share)
        refit.fit(X, Z, y, offset, base * rng.poisson(1.0, len(base)), init=model)
        for name, (Z_cf, by) in counterfactuals.items():
            draws[name].append(refit.excess(X, Z, Z_cf, by, offset, sample_weight)
                               .set_index("group")["excess"])
    tail = (1 - level) / 2
    out = {}
    for name, point in points.items():
        table = pd.concat(draws[name], axis=1).reindex(point["group"])
        point["low"] = table.quantile(tail, axis=1).to_numpy()
        point["high"] = table.quantile(1 - tail, axis=1).to_numpy()
        out[name] = point[["group", "candidates", "excess", "low", "high"]]
    return out
