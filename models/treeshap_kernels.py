"""The compiled loops behind models.treeshap: LightGBM's TreeSHAP path bookkeeping, the
per-pattern tables it fills, and the row lookup that sums them.

`build_tables` replays LightGBM's recursion (tree.cpp) once per tree and decision pattern;
`add_contributions` walks rows through each tree's split nodes to their pattern and adds
that pattern's precomputed values. They read the flat arrays models.treeshap lays out
(ShapTables), in LightGBM's encodings: decision_type bits, missing types, categorical
bitsets. numba compiles them (cached on disk); they release the GIL, so threads share rows.
"""

from __future__ import annotations

import numba
import numpy as np

# Rows scored tree by tree together (a tree's table stays in cache across the block; each
# node reads, and each slot writes, one contiguous run of 512 doubles).
ROW_BLOCK = 512
# LightGBM's kZeroThreshold (a float 1e-35) as the double it compares with.
ZERO_THRESHOLD = float(np.float32(1e-35))
# LightGBM's decision_type: bit 0 categorical, bit 1 default left, bits 2-3 the missing type.
CATEGORICAL, DEFAULT_LEFT = 1, 2
MISSING_ZERO, MISSING_NAN = 1, 2


# ---------------------------------------------------------------------------------------
# LightGBM's path bookkeeping (tree.cpp ExtendPath / UnwindPath / UnwoundPathSum), on
# parallel arrays: feature index, zero fraction, one fraction, permutation weight.

@numba.njit(cache=True, nogil=True)
def _extend(feat, zero, one, weight, depth, zero_fraction, one_fraction, feature):
    feat[depth] = feature
    zero[depth] = zero_fraction
    one[depth] = one_fraction
    weight[depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        weight[i + 1] += one_fraction * weight[i] * (i + 1) / (depth + 1)
        weight[i] = zero_fraction * weight[i] * (depth - i) / (depth + 1)


@numba.njit(cache=True, nogil=True)
def _unwind(feat, zero, one, weight, depth, index):
    one_fraction, zero_fraction = one[index], zero[index]
    next_one = weight[depth]
    for i in range(depth - 1, -1, -1):
        if one_fraction != 0:
            tmp = weight[i]
            weight[i] = next_one * (depth + 1) / ((i + 1) * one_fraction)
            next_one = tmp - weight[i] * zero_fraction * (depth - i) / (depth + 1)
        else:
            weight[i] = (weight[i] * (depth + 1)) / (zero_fraction * (depth - i))
    for i in range(index, depth):
        feat[i] = feat[i + 1]
        zero[i] = zero[i + 1]
        one[i] = one[i + 1]


@numba.njit(cache=True, nogil=True)
def _unwound_sum(zero, one, weight, depth, index):
    one_fraction, zero_fraction = one[index], zero[index]
    next_one = weight[depth]
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one_fraction != 0:
            tmp = next_one * (depth + 1) / ((i + 1) * one_fraction)
            total += tmp
            next_one = weight[i] - tmp * zero_fraction * ((depth - i) / (depth + 1))
        else:
            total += (weight[i] / zero_fraction) / ((depth - i) / (depth + 1))
    return total


@numba.njit(cache=True, nogil=True)
def build_tables(tree_nodes, leaf_offset, path_offset, path_node, path_left, path_ratio,
                 path_feature, leaf_value, table_offset, slot_offset, slot_feature, table):
    """Fill `table`: per tree t and pattern p (bit j set = the row goes left at split node
    j), the tree's SHAP value of each of its features (slot order), as LightGBM's recursion
    computes it for a row with those decisions. Each leaf's root-to-leaf path is replayed
    with the same extend / unwind steps the recursion takes on the way down."""
    max_depth = 1
    for p in range(len(path_offset) - 1):
        max_depth = max(max_depth, path_offset[p + 1] - path_offset[p])
    feat = np.empty(max_depth + 2, np.int64)
    zero = np.empty(max_depth + 2)
    one = np.empty(max_depth + 2)
    weight = np.empty(max_depth + 2)
    for t in range(len(tree_nodes)):
        n_slots = slot_offset[t + 1] - slot_offset[t]
        if tree_nodes[t] == 0:
            continue
        for pattern in range(1 << tree_nodes[t]):
            base = table_offset[t] + pattern * n_slots
            for leaf in range(leaf_offset[t], leaf_offset[t + 1]):
                depth = 0
                _extend(feat, zero, one, weight, 0, 1.0, 1.0, -1)
                for q in range(path_offset[leaf], path_offset[leaf + 1]):
                    feature = path_feature[q]
                    incoming_zero, incoming_one = 1.0, 1.0
                    for index in range(depth + 1):
                        if feat[index] == feature:
                            incoming_zero, incoming_one = zero[index], one[index]
                            _unwind(feat, zero, one, weight, depth, index)
                            depth -= 1
                            break
                    hot = ((pattern >> path_node[q]) & 1) == path_left[q]
                    depth += 1
                    _extend(feat, zero, one, weight, depth, path_ratio[q] * incoming_zero,
                            incoming_one if hot else 0.0, feature)
                value = leaf_value[leaf]
                for i in range(1, depth + 1):
                    w = _unwound_sum(zero, one, weight, depth, i)
                    for s in range(n_slots):
                        if slot_feature[slot_offset[t] + s] == feat[i]:
                            table[base + s] += w * (one[i] - zero[i]) * value
                            break


@numba.njit(cache=True, nogil=True)
def add_contributions(X, out, start, stop, node_offset, feature, threshold, decision,
                      cat_start, cat_len, cat_bits, table_offset, slot_offset, slot_feature,
                      table, bias):
    """Rows start..stop of `out` (features x rows, zeros on entry): per tree, the pattern of
    each row's decisions indexes that tree's precomputed contributions.

    Rows go in blocks of ROW_BLOCK, tree by tree within a block (a tree's table stays in
    cache across the block), and within a tree node by node and slot by slot over the
    block's rows: X is column-major and `out` feature-major, so each inner loop reads and
    writes one contiguous run of the block (row by row, every row would touch a cache line
    per feature of X and of `out`). The decision is LightGBM's Tree::Decision (tree.h),
    with the node's kind chosen once per node rather than per row. Each (row, feature)
    still adds the trees' values in tree order, so the sums are the row-major ones."""
    n_features = X.shape[1]
    pattern = np.zeros(ROW_BLOCK, np.int64)
    for block in range(start, stop, ROW_BLOCK):
        m = min(block + ROW_BLOCK, stop) - block
        for t in range(len(node_offset) - 1):
            first = node_offset[t]
            n_nodes = node_offset[t + 1] - first
            s0 = slot_offset[t]
            n_slots = slot_offset[t + 1] - s0
            if n_nodes == 0:
                continue
            pattern[:m] = 0
            for j in range(n_nodes):
                node = first + j
                column = X[block:block + m, feature[node]]
                kind = decision[node]
                bit = 1 << j
                if kind & CATEGORICAL:
                    # NaN, negative and huge values go right (C++'s cast to int makes them
                    # negative); otherwise left when the code's bit is set.
                    for r in range(m):
                        value = column[r]
                        if value > -1.0 and value < 2147483648.0:
                            code = int(value)
                            word = code >> 5
                            if word < cat_len[node] and \
                                    (cat_bits[cat_start[node] + word] >> (code & 31)) & 1:
                                pattern[r] |= bit
                    continue
                missing = (kind >> 2) & 3
                default_left = (kind & DEFAULT_LEFT) != 0
                cut = threshold[node]
                if missing == MISSING_NAN:
                    for r in range(m):
                        value = column[r]
                        if np.isnan(value):
                            if default_left:
                                pattern[r] |= bit
                        elif value <= cut:
                            pattern[r] |= bit
                elif missing == MISSING_ZERO:
                    for r in range(m):
                        value = column[r]
                        if np.isnan(value):
                            value = 0.0
                        if -ZERO_THRESHOLD <= value <= ZERO_THRESHOLD:
                            if default_left:
                                pattern[r] |= bit
                        elif value <= cut:
                            pattern[r] |= bit
                else:
                    for r in range(m):
                        value = column[r]
                        if np.isnan(value):
                            value = 0.0
                        if value <= cut:
                            pattern[r] |= bit
            base = table_offset[t]
            for s in range(n_slots):
                target = out[slot_feature[s0 + s], block:block + m]
                for r in range(m):
                    target[r] += table[base + pattern[r] * n_slots + s]
    out[n_features, start:stop] += bias
