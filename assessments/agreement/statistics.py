"""Agreement statistics in numpy, each with its cluster-bootstrap interval (bootstrap.py).

Between two series (A and B, matched pairs clustered by trace):
- nominal labels (booleans, categories): percent agreement, Cohen's κ;
- ordinal labels (integer scales): percent agreement, quadratic-weighted κ (weights by the
  distance between levels, so the codes must be the levels' offsets from the lowest one);
- numbers: percent agreement (equal values), Pearson's r, Spearman's ρ (average ranks for
  ties), mean absolute error.
Between several raters (ratings clustered by item): Krippendorff's α (nominal, ordinal or
interval), Fleiss' κ (every item with the same number of ratings).

Each statistic is written once, over *weights*: how often a resample holds each distinct pair
(an "atom") or each item pattern. The data itself is the resample that holds everything once,
so the value and its interval come from the same code. The reference implementations
(scikit-learn, SciPy, krippendorff, statsmodels) are checked against these in the tests.
Undefined values (a single category on both sides, a constant series) are NaN here and None
in the results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bootstrap import Resampler, bootstrap, patterns_of

# Plain-language bands for κ and α (Landis & Koch and Krippendorff, simplified).
BANDS = ((0.7, "good"), (0.4, "moderate"), (float("-inf"), "poor"))


def band(value: float | None) -> str | None:
    """poor (< 0.4), moderate (0.4–0.7) or good (≥ 0.7); None for an undefined value."""
    if value is None:
        return None
    return next(label for threshold, label in BANDS if value >= threshold)


@dataclass(frozen=True)
class Estimate:
    """A statistic's value with its 95% bootstrap interval (either may be None)."""

    value: float | None
    ci95: tuple[float, float] | None

    @property
    def band(self) -> str | None:
        return band(self.value)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is (numerically) zero."""
    safe = np.abs(denominator) > 1e-12
    return np.where(safe, numerator / np.where(safe, denominator, 1.0), np.nan)


# --- pairs -------------------------------------------------------------------------------------


class Pairs:
    """Matched (a, b) pairs, clustered by trace, reduced to distinct pairs ("atoms").

    `cluster` numbers the traces 0 … N-1; `a` and `b` are label codes or numbers.
    """

    def __init__(self, cluster: np.ndarray, a: np.ndarray, b: np.ndarray):
        cluster = np.asarray(cluster, dtype=np.int64)
        values = np.column_stack([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)])
        self.size = len(cluster)
        if self.size == 0:
            self.a = self.b = np.zeros(0)
            self.resampler = Resampler(np.zeros(0, dtype=np.int64))
            self._entries = None
            return
        # Distinct (a, b) pairs, found through integer codes (np.unique on rows is much slower).
        distinct_a, code_a = np.unique(values[:, 0], return_inverse=True)
        distinct_b, code_b = np.unique(values[:, 1], return_inverse=True)
        atom_codes, atom_of_pair = np.unique(
            code_a.reshape(-1) * len(distinct_b) + code_b.reshape(-1), return_inverse=True
        )
        atom_of_pair = atom_of_pair.reshape(-1)
        self.a, self.b = distinct_a[atom_codes // len(distinct_b)], distinct_b[atom_codes % len(distinct_b)]
        n_atoms = len(atom_codes)
        clusters = int(cluster.max()) + 1
        # (cluster, atom, multiplicity) for every distinct pair of every trace
        entry, multiplicity = np.unique(cluster * n_atoms + atom_of_pair, return_counts=True)
        entry_cluster, entry_atom = entry // n_atoms, entry % n_atoms
        per_cluster = np.bincount(entry_cluster, minlength=clusters)
        if (per_cluster == 1).all() and (multiplicity == 1).all():
            # One pair per trace: a trace's pattern is its atom (the usual case, and the fast one).
            pattern_of_cluster = np.empty(clusters, dtype=np.int64)
            pattern_of_cluster[entry_cluster] = entry_atom
            self._entries = None
        else:
            pattern_of_cluster, pattern_entries = _multiset_patterns(
                clusters, entry_cluster, entry_atom, multiplicity, n_atoms
            )
            order = np.argsort(pattern_entries[:, 1], kind="stable")
            pattern_entries = pattern_entries[order]
            self._entries = pattern_entries
            self._atom_starts = np.searchsorted(pattern_entries[:, 1], np.arange(n_atoms))
        self.resampler = Resampler(pattern_of_cluster)

    def pattern_features(self, atom_features: np.ndarray) -> np.ndarray:
        """Per pattern, the sum of its atoms' features (atoms × m), each as often as it holds
        the atom: so that `counts @ pattern_features == atom_weights(counts) @ atom_features`."""
        if self._entries is None:
            return atom_features
        pattern, atom, multiplicity = self._entries.T
        result = np.zeros((self.resampler.patterns, atom_features.shape[1]))
        np.add.at(result, pattern, atom_features[atom] * multiplicity[:, None])
        return result

    def atom_weights(self, counts: np.ndarray) -> np.ndarray:
        """How often each atom occurs in each resample (rows of pattern counts)."""
        if self._entries is None:
            return counts
        pattern, _, multiplicity = self._entries.T
        return np.add.reduceat(counts[:, pattern] * multiplicity, self._atom_starts, axis=1)


def _multiset_patterns(clusters, entry_cluster, entry_atom, multiplicity, n_atoms):
    """Patterns for traces holding several pairs: traces with the same multiset of atoms share
    one. Returns (pattern of each trace, rows of (pattern, atom, multiplicity))."""
    single = np.bincount(entry_cluster, minlength=clusters) == 1
    key = np.full(clusters, -1, dtype=np.int64)
    is_single_entry = single[entry_cluster]
    top = int(multiplicity.max()) + 1
    key[entry_cluster[is_single_entry]] = entry_atom[is_single_entry] * top + multiplicity[is_single_entry]
    offset = n_atoms * top
    contents_of: dict[int, tuple] = {}
    starts = np.flatnonzero(np.r_[True, entry_cluster[1:] != entry_cluster[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(entry_cluster)], strict=True):
        trace = entry_cluster[start]
        if not single[trace]:
            contents_of[trace] = tuple(
                zip(entry_atom[start:stop].tolist(), multiplicity[start:stop].tolist(), strict=True)
            )
    # Multisets numbered in sorted order: patterns depend on the data, not on the traces' order.
    number = {contents: position for position, contents in enumerate(sorted(set(contents_of.values())))}
    for trace, contents in contents_of.items():
        key[trace] = offset + number[contents]
    pattern_of_cluster, representative = patterns_of(key)
    entries = []
    first_entry = np.searchsorted(entry_cluster, representative)
    last_entry = np.searchsorted(entry_cluster, representative, side="right")
    for pattern, (start, stop) in enumerate(zip(first_entry, last_entry, strict=True)):
        for atom, count in zip(entry_atom[start:stop], multiplicity[start:stop], strict=True):
            entries.append((pattern, atom, count))
    return pattern_of_cluster, np.array(entries, dtype=np.int64)


def kappa_from_confusion(table: np.ndarray, *, quadratic: bool = False) -> np.ndarray:
    """Cohen's κ (or the quadratic-weighted κ) of each (k, k) confusion matrix in `table`."""
    k = table.shape[-1]
    levels = np.arange(k)
    weights = (levels[:, None] - levels[None, :]) ** 2 if quadratic else (levels[:, None] != levels[None, :])
    total = table.sum(axis=(-1, -2))
    expected = table.sum(axis=-1)[..., :, None] * table.sum(axis=-2)[..., None, :]
    observed_disagreement = (table * weights).sum(axis=(-1, -2))
    expected_disagreement = _divide((expected * weights).sum(axis=(-1, -2)), total)
    return 1.0 - _divide(observed_disagreement, expected_disagreement)


def label_agreement(pairs: Pairs, k: int, *, ordinal: bool) -> dict:
    """Percent agreement and Cohen's κ (ordinal: quadratic-weighted κ) of label codes 0 … k-1.

    Computed from the atoms and the marginals, never a (resamples, k, k) table, so a category
    with 200 options costs no more memory than a boolean."""
    statistic = "weighted_kappa" if ordinal else "cohen_kappa"
    a, b = pairs.a.astype(np.int64), pairs.b.astype(np.int64)
    levels = np.arange(k)
    penalty = (levels[:, None] - levels[None, :]) ** 2 if ordinal else (levels[:, None] != levels[None, :]) * 1.0
    # per atom: 1, A's label (one-hot), B's label (one-hot), agreement, penalty
    features = np.zeros((len(a), 2 * k + 3))
    features[:, 0] = 1.0
    features[np.arange(len(a)), 1 + a] = 1.0
    features[np.arange(len(b)), 1 + k + b] = 1.0
    features[:, -2] = a == b
    features[:, -1] = penalty[a, b] if len(a) else 0.0

    def statistics(sums):
        total, rows, columns = sums[:, 0], sums[:, 1 : 1 + k], sums[:, 1 + k : 1 + 2 * k]
        expected = np.einsum("ri,ij,rj->r", rows, penalty, columns)
        return {
            "percent_agreement": _divide(sums[:, -2], total),
            statistic: 1.0 - _divide(sums[:, -1], _divide(expected, total)),
        }

    estimates = _estimates(bootstrap(pairs.resampler, statistics, features=pairs.pattern_features(features)))
    return {
        "n": pairs.size,
        "percent_agreement": estimates.get("percent_agreement"),
        statistic: estimates.get(statistic),
    }


class _Ranks:
    """Average ranks of points under resampling weights (ties share their mean rank), kept per
    distinct value: a rank belongs to a value, so sums over points weighted by a function of
    their rank are sums over the (few) distinct values."""

    def __init__(self, values: np.ndarray):
        distinct, group = np.unique(values, return_inverse=True)
        self.group = group.reshape(-1)
        self.order = np.argsort(self.group, kind="stable")
        # Points (atoms) come sorted by A's value, then B's: for A no reordering is needed.
        self.in_order = bool((self.order == np.arange(len(self.order))).all())
        self.starts = np.searchsorted(self.group[self.order], np.arange(len(distinct)))
        self.all_distinct = len(distinct) == len(values)

    def per_value(self, weights: np.ndarray) -> np.ndarray:
        """Rows of weights over the points summed per distinct value (rows × values)."""
        ordered = weights if self.in_order else np.take(weights, self.order, axis=1)
        return ordered if self.all_distinct else np.add.reduceat(ordered, self.starts, axis=1)

    @staticmethod
    def centred(per_value: np.ndarray) -> np.ndarray:
        """The rank of each distinct value in each resample (rows of weights per value), minus
        the mean rank (n + 1) / 2."""
        rank = np.cumsum(per_value, axis=1)
        rank -= (per_value - 1.0) / 2.0
        rank -= ((per_value.sum(axis=1) + 1.0) / 2.0)[:, None]
        return rank


def number_agreement(pairs: Pairs, *, spearman: bool = True) -> dict:
    """Percent agreement (equal values), Pearson, Spearman (unless `spearman` is False: it is
    most of the cost) and the mean absolute error.

    Per block of resamples: one matrix product gives the sums behind Pearson, MAE and percent
    agreement; Spearman is Pearson's r of the average ranks, whose sums of squares run over the
    distinct values and whose cross term is one gather and two sums over the atoms."""
    a = pairs.a - pairs.a.mean() if pairs.size else pairs.a
    b = pairs.b - pairs.b.mean() if pairs.size else pairs.b
    features = np.column_stack(
        [np.ones_like(a), a, b, a * a, b * b, a * b, np.abs(pairs.a - pairs.b), (pairs.a == pairs.b) * 1.0]
    )
    ranks_a, ranks_b = (_Ranks(pairs.a), _Ranks(pairs.b)) if spearman else (None, None)

    def statistics(rows):
        # rows: pattern counts, or (without Spearman) already their sums of the features
        weights = pairs.atom_weights(rows) if spearman else None
        total, sx, sy, sxx, syy, sxy, distance, equal = (weights @ features if spearman else rows).T
        covariance = sxy - _divide(sx * sy, total)
        var_x = np.clip(sxx - _divide(sx * sx, total), 0, None)
        var_y = np.clip(syy - _divide(sy * sy, total), 0, None)
        result = {
            "percent_agreement": _divide(equal, total),
            "pearson": np.clip(_divide(covariance, np.sqrt(var_x * var_y)), -1.0, 1.0),
            "mae": _divide(distance, total),
        }
        if spearman:
            per_a, per_b = ranks_a.per_value(weights), ranks_b.per_value(weights)
            rank_a, rank_b = _Ranks.centred(per_a), _Ranks.centred(per_b)
            cross = np.einsum("ij,ij->i", ranks_a.per_value(weights * np.take(rank_b, ranks_b.group, axis=1)), rank_a)
            squares_a = np.einsum("ij,ij,ij->i", per_a, rank_a, rank_a)
            squares_b = np.einsum("ij,ij,ij->i", per_b, rank_b, rank_b)
            result["spearman"] = np.clip(_divide(cross, np.sqrt(squares_a * squares_b)), -1.0, 1.0)
        return result

    summed = None if spearman else pairs.pattern_features(features)
    estimates = _estimates(bootstrap(pairs.resampler, statistics, features=summed))
    return {
        "n": pairs.size,
        **{name: estimates.get(name) for name in ("percent_agreement", "pearson", "spearman", "mae")},
    }


def _estimates(results: dict) -> dict[str, Estimate]:
    return {name: Estimate(value, ci95) for name, (value, ci95) in results.items()}


# --- several raters ----------------------------------------------------------------------------


def _unit_counts(unit: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """(units, k) how many ratings of each label each unit has."""
    units = int(unit.max()) + 1
    return np.bincount(unit * k + codes, minlength=units * k).reshape(units, k).astype(np.float64)


def krippendorff_alpha(unit: np.ndarray, values: np.ndarray, level: str, k: int | None = None) -> tuple[Estimate, int]:
    """Krippendorff's α of ratings (`unit` numbers the items 0 … U-1) at `level` nominal, ordinal
    (values are label codes 0 … k-1, ordered) or interval (numbers), with its interval; and the
    number of pairable items (with two ratings or more), the only ones α counts."""
    unit = np.asarray(unit, dtype=np.int64)
    if len(unit) == 0:
        return Estimate(None, None), 0
    if level == "interval":
        return _alpha_interval(unit, np.asarray(values, dtype=np.float64))
    counts = _unit_counts(unit, np.asarray(values, dtype=np.int64), k)
    counts = counts[counts.sum(axis=1) >= 2]
    if len(counts) == 0:
        return Estimate(None, None), 0
    pattern_of_unit, representative = patterns_of(counts)
    patterns = counts[representative]
    m = patterns.sum(axis=1)
    # Each item's coincidences: n_c n_k − [c = k] n_c, over m − 1 (Krippendorff 2011).
    coincidences = (patterns[:, :, None] * patterns[:, None, :] - patterns[:, :, None] * np.eye(k)) / (m - 1)[
        :, None, None
    ]
    features = coincidences.reshape(len(patterns), k * k)

    def statistics(sums):
        observed = sums.reshape(-1, k, k)
        marginal = observed.sum(axis=2)
        n = marginal.sum(axis=1)
        if level == "nominal":
            delta = np.broadcast_to(1.0 - np.eye(k), observed.shape)
        else:
            cumulative = np.cumsum(marginal, axis=1)
            low = np.minimum.outer(np.arange(k), np.arange(k))
            high = np.maximum.outer(np.arange(k), np.arange(k))
            between = cumulative[:, high] - cumulative[:, low] + marginal[:, low]
            delta = (between - (marginal[:, :, None] + marginal[:, None, :]) / 2.0) ** 2
        expected = (marginal[:, :, None] * marginal[:, None, :] * delta).sum(axis=(1, 2))
        return {"alpha": 1.0 - _divide((n - 1.0) * (observed * delta).sum(axis=(1, 2)), expected)}

    value, ci95 = bootstrap(Resampler(pattern_of_unit), statistics, features=features)["alpha"]
    return Estimate(value, ci95), len(counts)


def _alpha_interval(unit: np.ndarray, values: np.ndarray) -> tuple[Estimate, int]:
    values = values - values.mean()
    units = int(unit.max()) + 1
    m = np.bincount(unit, minlength=units).astype(np.float64)
    s1 = np.bincount(unit, weights=values, minlength=units)
    s2 = np.bincount(unit, weights=values * values, minlength=units)
    keep = m >= 2
    m, s1, s2 = m[keep], s1[keep], s2[keep]
    if len(m) == 0:
        return Estimate(None, None), 0
    # Σ over ordered pairs of one item of (x_i − x_j)², over m − 1: the item's observed disagreement.
    disagreement = (2.0 * m * s2 - 2.0 * s1 * s1) / (m - 1.0)
    features = np.column_stack([m, s1, s2, disagreement])
    pattern_of_unit, representative = patterns_of(features)
    features = features[representative]

    def statistics(sums):
        n, total, squares, observed = sums.T
        expected = 2.0 * n * squares - 2.0 * total * total
        return {"alpha": 1.0 - _divide((n - 1.0) * observed, expected)}

    value, ci95 = bootstrap(Resampler(pattern_of_unit), statistics, features=features)["alpha"]
    return Estimate(value, ci95), len(m)


def fleiss_kappa(unit: np.ndarray, codes: np.ndarray, k: int) -> tuple[Estimate | None, str | None]:
    """Fleiss' κ over the items with two ratings or more, when they all have the same number of
    ratings; otherwise (None, the reason)."""
    unit = np.asarray(unit, dtype=np.int64)
    if len(unit) == 0:
        return None, "no ratings"
    counts = _unit_counts(unit, np.asarray(codes, dtype=np.int64), k)
    counts = counts[counts.sum(axis=1) >= 2]
    if len(counts) == 0:
        return None, "no item has two ratings"
    sizes = np.unique(counts.sum(axis=1))
    if len(sizes) > 1:
        return None, f"items have between {int(sizes[0])} and {int(sizes[-1])} ratings; Fleiss' κ needs the same number"
    m = float(sizes[0])
    agreement = ((counts * counts).sum(axis=1) - m) / (m * (m - 1.0))
    features = np.column_stack([counts, agreement, np.ones(len(counts))])
    pattern_of_unit, representative = patterns_of(features)
    features = features[representative]

    def statistics(totals):
        items = totals[:, k + 1]
        shares = totals[:, :k] / (items * m)[:, None]
        chance = (shares * shares).sum(axis=1)
        return {"kappa": _divide(totals[:, k] / items - chance, 1.0 - chance)}

    value, ci95 = bootstrap(Resampler(pattern_of_unit), statistics, features=features)["kappa"]
    return Estimate(value, ci95), None
