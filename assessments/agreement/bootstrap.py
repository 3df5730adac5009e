"""The cluster bootstrap behind every interval of the agreement pages, vectorised with numpy.

A statistic is computed from data grouped in clusters (the pairs of one trace, the ratings of
one item). A bootstrap resample draws as many clusters as there are, with replacement; what a
resample contains is then fully described by how often it drew each cluster. Clusters with
identical contents are interchangeable, so they are merged into *patterns* first: drawing N
clusters uniformly is drawing the pattern counts from Multinomial(N, frequency / N).

That multinomial is drawn exactly, in two parts: independent Poisson counts per pattern with a
total mean a little below N (3 standard deviations), then the clusters still missing drawn one
by one. Poisson counts whose total is s are Multinomial(s, frequency / N); adding N − s single
draws makes them Multinomial(N, frequency / N) whatever s was, so a row whose Poisson total
exceeds N (about one in 700) is simply drawn again. numpy's own multinomial draws one binomial
per pattern, about three times the cost of a Poisson draw; with a handful of patterns (a 2×2
confusion matrix has four) either is instant, with thousands (numbers with two decimals) the
Poisson part takes a third of the time. With more than an eighth as many patterns as clusters
(continuous numbers have nearly one per trace) every cluster is drawn one by one instead (an
integer, a gather and a bincount each), as the Poisson part would cost more.

Patterns are numbered by their contents and single draws pick from the clusters sorted by
pattern, so the draws depend on the data and the seed only, not on the order rows came in.

Each resample is a row of pattern counts; the statistics turn a block of rows (resamples ×
patterns) into one value per row, so 1,000 resamples are a few matrix operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

RESAMPLES = 1000
# The seed of every interval: the same data always gives the same interval, so pages are stable.
SEED = 15
# A Poisson draw per pattern costs about eight single draws of a cluster (an integer, a gather
# and a bincount; measured with numbers of two decimals, 20,000–100,000 traces): the Poisson part
# pays while patterns are fewer than an eighth of the clusters.
_POISSON_DRAW_COST = 8
# The Poisson part's total mean lies this many standard deviations below the number of clusters.
_POISSON_MARGIN = 3.0
# Up to this many features, sums over single draws are gathered per feature (see Resampler.sums).
_GATHERED_FEATURES = 8
# Cells per block of resamples (resamples × patterns or clusters): about 32 MB of float64.
_BLOCK_CELLS = 4_000_000


def patterns_of(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group clusters whose contents are identical: `keys` has one row (or value) per cluster.
    Returns (pattern index of each cluster, index of one representative cluster per pattern)."""
    if keys.ndim == 1:
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


class Resampler:
    """Draws bootstrap resamples of `n` clusters, each given by its pattern (0 … P-1)."""

    def __init__(self, pattern_of_cluster: np.ndarray):
        self.pattern_of_cluster = np.asarray(pattern_of_cluster, dtype=np.int64)
        self.n = len(self.pattern_of_cluster)
        counts = np.bincount(self.pattern_of_cluster)
        self.frequency = counts.astype(np.float64)
        self.patterns = len(self.frequency)
        # Every cluster's pattern, sorted: a single draw picks one of these.
        self._sorted = np.repeat(np.arange(self.patterns), counts)

    def original(self) -> np.ndarray:
        """The data itself as one row of pattern counts."""
        return self.frequency[np.newaxis, :]

    def _draws(self, resamples: int, seed: int) -> Iterator[tuple[np.ndarray | None, np.ndarray, np.ndarray]]:
        """Per block of rows: the Poisson counts (rows × patterns; None when every cluster is drawn
        singly), how many single draws each row has, and their patterns (row by row)."""
        rng = np.random.default_rng(seed)
        n, patterns = self.n, self.patterns
        mean = 0.0
        if patterns * _POISSON_DRAW_COST <= n:
            mean = max(0.0, n - _POISSON_MARGIN * np.sqrt(n))
        rate = self.frequency * (mean / n)
        singles = n - mean + _POISSON_MARGIN * np.sqrt(mean)  # single draws per row, about
        block = max(1, min(resamples, _BLOCK_CELLS // max(patterns, int(singles), 1)))
        done = 0
        while done < resamples:
            rows = min(block, resamples - done)
            counts = None
            missing = np.full(rows, n)
            if mean:
                counts = rng.poisson(rate, size=(rows, patterns))
                over = np.flatnonzero(counts.sum(axis=1) > n)
                while len(over):
                    counts[over] = rng.poisson(rate, size=(len(over), patterns))
                    over = over[counts[over].sum(axis=1) > n]
                missing = n - counts.sum(axis=1)
            drawn = rng.integers(0, n, size=int(missing.sum()))
            yield counts, missing, drawn if self.patterns == n else self._sorted[drawn]
            done += rows

    def blocks(self, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
        """Rows of pattern counts (float64), `resamples` rows in all, in blocks."""
        for counts, missing, drawn in self._draws(resamples, seed):
            rows, patterns = len(missing), self.patterns
            single = np.bincount(drawn + np.repeat(np.arange(rows) * patterns, missing), minlength=rows * patterns)
            single = single.reshape(rows, patterns)
            yield (single if counts is None else counts + single).astype(np.float64)

    def sums(self, features: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
        """Rows of `pattern counts @ features` (features: patterns × m), the same resamples as
        blocks(). With every cluster drawn singly and few features, the sums are gathered from
        the draws directly: about twice as fast as counting the draws per pattern first."""
        if self.patterns * _POISSON_DRAW_COST <= self.n or features.shape[1] > _GATHERED_FEATURES:
            for block in self.blocks(resamples, seed):
                yield block @ features
            return
        columns = np.ascontiguousarray(features.T)
        for _, missing, drawn in self._draws(resamples, seed):
            drawn = drawn.reshape(len(missing), self.n)
            yield np.column_stack([np.take(column, drawn).sum(axis=1) for column in columns])


def bootstrap(
    resampler: Resampler,
    statistics: Callable[[np.ndarray], dict[str, np.ndarray]],
    *,
    features: np.ndarray | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, tuple[float | None, tuple[float, float] | None]]:
    """{name: (value on the data, 95% percentile interval)} for each statistic that
    `statistics(rows)` returns (one value per row; NaN where undefined). The rows are pattern
    counts, or with `features` (patterns × m) their sums `counts @ features`: statistics that
    need only such sums are cheaper to resample that way.

    The interval is None when the value is undefined or when fewer than half of the resamples
    define the statistic (e.g. most resamples hold a single category)."""
    if resampler.n == 0:
        return {}
    original = resampler.original() if features is None else resampler.original() @ features
    values = {name: float(column[0]) for name, column in statistics(original).items()}
    collected: dict[str, list[np.ndarray]] = {name: [] for name in values}
    blocks = resampler.blocks(resamples, seed) if features is None else resampler.sums(features, resamples, seed)
    for block in blocks:
        for name, column in statistics(block).items():
            collected[name].append(column)
    result = {}
    for name, value in values.items():
        draws = np.concatenate(collected[name])
        finite = draws[np.isfinite(draws)]
        if not np.isfinite(value):
            result[name] = (None, None)
        elif len(finite) * 2 < len(draws):
            result[name] = (value, None)
        else:
            low, high = np.percentile(finite, [2.5, 97.5])
            result[name] = (value, (float(low), float(high)))
    return result
