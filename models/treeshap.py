"""Exact path-dependent TreeSHAP for LightGBM boosters, many times faster than `pred_contrib`.

    tables = ShapTables.from_booster(model.booster_)      # once per model (None: unsupported)
    phi = tables.contributions(feature_matrix(frame))      # (n_rows, n_features + 1)

The values are LightGBM's own `predict(pred_contrib=True)`: the same algorithm (Lundberg's
path-dependent TreeSHAP with the node counts as cover), the same decisions (categorical
bitsets, ``default_left``, missing types None / Zero / NaN) and the same arithmetic per leaf,
so they agree to rounding (about 1e-14 on the demo's models; the tests hold them to 1e-6).

Why hand-written: LightGBM walks every tree's recursion (every leaf, an O(depth^2) path
update at each) for every row. Our trees are small (8 leaves, 7 split nodes), so a row's
contributions from one tree depend only on which way it goes at those 7 nodes: 2^7 = 128
patterns. `from_booster` runs LightGBM's recursion once per tree and pattern and keeps the
result; a row then costs 7 comparisons and a handful of additions per tree instead of a
walk through every leaf. The libraries that precompute like this (WOODELF, FastTreeSHAP) refuse
categorical splits or do not install with numpy 2, and ours split on size class, sector,
province, region and board in most trees. Models with larger trees (more than
MAX_TABLE_NODES split nodes in a tree) get None here and keep LightGBM's engine.

This module reads the booster into flat arrays and holds them; the compiled loops that fill
the tables and look rows up are models.treeshap_kernels.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.treeshap_kernels import CATEGORICAL, add_contributions, build_tables

# A tree with more split nodes than this would need 2^nodes patterns: the table grows past
# what its speed is worth, so such models keep LightGBM's own pred_contrib.
MAX_TABLE_NODES = 10
# Rows per thread below which one thread is faster than starting more.
MIN_ROWS_PER_THREAD = 2_000


def _parse_model(text: str) -> tuple[dict, list[dict]]:
    """LightGBM's text model (Booster.model_to_string): header fields (a bare flag such as
    ``average_output`` maps to "") and one dict of fields per tree."""
    header: dict = {}
    trees: list[dict] = []
    for line in text.splitlines():
        if line == "end of trees":
            break
        key, _, value = line.partition("=")
        if key == "Tree":
            trees.append({})
        elif line:
            (trees[-1] if trees else header)[key] = value
    return header, trees


def _numbers(text: str | None, dtype) -> np.ndarray:
    return np.array(text.split(), dtype=dtype) if text else np.empty(0, dtype)


@dataclass(frozen=True)
class ShapTables:
    """A booster's trees and per-pattern contributions, ready for `contributions`.

    Node arrays (all trees' split nodes, tree t's in node_offset[t]:node_offset[t+1]):
    feature, threshold, decision (LightGBM's decision_type), cat_start / cat_len (the node's
    bitset in cat_bits). Tree t's features are slot_feature[slot_offset[t]:slot_offset[t+1]];
    its table starts at table_offset[t], one row of n_slots values per pattern. bias: the
    sum of the trees' expected values (LightGBM's last contribution column).
    """

    n_features: int
    bias: float
    node_offset: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    decision: np.ndarray
    cat_start: np.ndarray
    cat_len: np.ndarray
    cat_bits: np.ndarray
    table_offset: np.ndarray
    slot_offset: np.ndarray
    slot_feature: np.ndarray
    table: np.ndarray

    @classmethod
    def from_booster(cls, booster) -> ShapTables | None:
        """Tables of a fitted lightgbm.Booster (the iterations `predict` uses by default), or
        None where they do not apply: multiclass or averaged (random forest) models, linear
        trees, or a tree with more than MAX_TABLE_NODES split nodes."""
        header, trees = _parse_model(booster.model_to_string())
        if int(header.get("num_tree_per_iteration", 1)) != 1 or "average_output" in header:
            return None
        n_features = int(header["max_feature_idx"]) + 1
        arrays = _TreeArrays(trees)
        if arrays.unsupported:
            return None
        table = np.zeros(arrays.table_offset[-1])
        build_tables(arrays.tree_nodes, arrays.leaf_offset, arrays.path_offset,
                     arrays.path_node, arrays.path_left, arrays.path_ratio, arrays.path_feature,
                     arrays.leaf_value, arrays.table_offset, arrays.slot_offset,
                     arrays.slot_feature, table)
        return cls(n_features, arrays.bias, arrays.node_offset, arrays.feature, arrays.threshold,
                   arrays.decision, arrays.cat_start, arrays.cat_len, arrays.cat_bits,
                   arrays.table_offset, arrays.slot_offset, arrays.slot_feature, table)

    def contributions(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """(n_rows, n_features + 1) SHAP values on the raw margin, last column the bias, for
        the (n_rows, n_features) float64 matrix X (see `feature_matrix`). threads: rows are
        split among this many threads (None = the machine's cores)."""
        X = np.asfortranarray(X, dtype=np.float64)  # each feature's rows contiguous
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} feature columns, "
                             f"got shape {X.shape}")
        out = np.zeros((self.n_features + 1, len(X)))  # transposed back on return
        threads = max(1, min(threads or os.cpu_count() or 1,
                             len(X) // MIN_ROWS_PER_THREAD))
        bounds = np.linspace(0, len(X), threads + 1).astype(np.int64)
        if threads == 1:
            self._rows(X, out, 0, len(X))
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda k: self._rows(X, out, bounds[k], bounds[k + 1]),
                              range(threads)))
        return out.T

    def _rows(self, X: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
        add_contributions(X, out, int(start), int(stop), self.node_offset, self.feature,
                          self.threshold, self.decision, self.cat_start, self.cat_len,
                          self.cat_bits, self.table_offset, self.slot_offset,
                          self.slot_feature, self.table, self.bias)


class _TreeArrays:
    """The flat arrays the kernels (models.treeshap_kernels) read, from parsed trees."""

    def __init__(self, trees: list[dict]):
        self.unsupported = False
        node_offset, leaf_offset, path_offset, slot_offset, table_offset = [0], [0], [0], [0], [0]
        nodes = {k: [] for k in ("feature", "threshold", "decision", "cat_start", "cat_len")}
        paths = {k: [] for k in ("node", "left", "ratio", "feature")}
        tree_nodes, slot_feature, leaf_value, cat_bits = [], [], [], []
        bias = 0.0
        for tree in trees:
            n_leaves = int(tree["num_leaves"])
            values = _numbers(tree.get("leaf_value"), np.float64)
            if int(tree.get("is_linear", 0)) or n_leaves - 1 > MAX_TABLE_NODES:
                self.unsupported = True
                return
            if n_leaves == 1:
                bias += float(values[0])
                tree_nodes.append(0)
                node_offset.append(node_offset[-1])
                leaf_offset.append(leaf_offset[-1])
                slot_offset.append(slot_offset[-1])
                table_offset.append(table_offset[-1])
                continue
            feature = _numbers(tree["split_feature"], np.int64)
            decision = _numbers(tree["decision_type"], np.int64)
            threshold = _numbers(tree["threshold"], np.float64)
            left = _numbers(tree["left_child"], np.int64)
            right = _numbers(tree["right_child"], np.int64)
            leaf_count = _numbers(tree["leaf_count"], np.float64)
            internal_count = _numbers(tree["internal_count"], np.float64)
            bounds = _numbers(tree.get("cat_boundaries"), np.int64)
            bits = _numbers(tree.get("cat_threshold"), np.int64)
            # ExpectedValue(): leaves weighted by their share of the root's count.
            bias += float(sum((leaf_count[i] / internal_count[0]) * values[i]
                              for i in range(n_leaves)))
            for j in range(n_leaves - 1):
                nodes["feature"].append(feature[j])
                nodes["threshold"].append(threshold[j])
                nodes["decision"].append(decision[j])
                if decision[j] & CATEGORICAL:
                    k = int(threshold[j])
                    nodes["cat_start"].append(len(cat_bits) + bounds[k])
                    nodes["cat_len"].append(bounds[k + 1] - bounds[k])
                else:
                    nodes["cat_start"].append(0)
                    nodes["cat_len"].append(0)
            cat_bits.extend(bits.tolist())
            slots = list(dict.fromkeys(feature.tolist()))
            # Root-to-leaf paths: (split node, went left, child count / node count, feature).
            leaf_paths: dict[int, list] = {}
            stack = [(0, [])]
            while stack:
                node, path = stack.pop()
                for child, went_left in ((left[node], 1), (right[node], 0)):
                    count = leaf_count[~child] if child < 0 else internal_count[child]
                    step = path + [(node, went_left, count / internal_count[node], feature[node])]
                    if child < 0:
                        leaf_paths[~child] = step
                    else:
                        stack.append((child, step))
            for leaf in range(n_leaves):
                for node, went_left, ratio, feat in leaf_paths[leaf]:
                    paths["node"].append(node)
                    paths["left"].append(went_left)
                    paths["ratio"].append(ratio)
                    paths["feature"].append(feat)
                path_offset.append(len(paths["node"]))
                leaf_value.append(values[leaf])
            tree_nodes.append(n_leaves - 1)
            node_offset.append(node_offset[-1] + n_leaves - 1)
            leaf_offset.append(leaf_offset[-1] + n_leaves)
            slot_feature.extend(slots)
            slot_offset.append(len(slot_feature))
            table_offset.append(table_offset[-1] + (1 << (n_leaves - 1)) * len(slots))
        as_int = {"dtype": np.int64}
        self.bias = bias
        self.tree_nodes = np.array(tree_nodes, **as_int)
        self.node_offset = np.array(node_offset, **as_int)
        self.leaf_offset = np.array(leaf_offset, **as_int)
        self.path_offset = np.array(path_offset, **as_int)
        self.slot_offset = np.array(slot_offset, **as_int)
        self.table_offset = np.array(table_offset, **as_int)
        self.slot_feature = np.array(slot_feature, **as_int)
        self.leaf_value = np.array(leaf_value, dtype=np.float64)
        self.feature = np.array(nodes["feature"], **as_int)
        self.threshold = np.array(nodes["threshold"], dtype=np.float64)
        self.decision = np.array(nodes["decision"], **as_int)
        self.cat_start = np.array(nodes["cat_start"], **as_int)
        self.cat_len = np.array(nodes["cat_len"], **as_int)
        self.cat_bits = np.array(cat_bits, dtype=np.uint32).astype(np.int64)
        self.path_node = np.array(paths["node"], **as_int)
        self.path_left = np.array(paths["left"], **as_int)
        self.path_ratio = np.array(paths["ratio"], dtype=np.float64)
        self.path_feature = np.array(paths["feature"], **as_int)


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """(n_rows, n_columns) float64 matrix of a model frame as LightGBM reads a DataFrame:
    categorical columns as their codes (missing = NaN), others as numbers (missing = NaN).
    The frame's categories must be the model's (TierModel.prepare aligns them)."""
    out = np.empty(frame.shape, dtype=np.float64, order="F")  # what `contributions` reads
    categorical = np.array([isinstance(d, pd.CategoricalDtype) for d in frame.dtypes], dtype=bool)
    # The numeric columns in one conversion (one block copy), not 130 column lookups:
    # a fixed cost that dominated scoring a few rows.
    numeric = np.flatnonzero(~categorical)
    if len(numeric):
        out[:, numeric] = frame.iloc[:, numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    for j in np.flatnonzero(categorical):
        codes = frame.iloc[:, j].array.codes  # the Categorical's own codes: no accessor
        out[:, j] = np.where(codes < 0, np.nan, codes)
    return out
