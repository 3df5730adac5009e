"""The cluster bootstrap behind every interval of the agreement pages, vectorised with numpy.

A statistic is computed from data grouped in clusters (the pairs of one trace, the ratings of
one item). A bootstrap resample draws as many clusters as there are, with replacement; what a
resample contains is then fully described by how often it drew each cluster. Clusters with
identical contents are interchangeable, so they are merged into *patterns* first: drawing N
clusters uniformly is drawing the pattern counts from Multinomial(N, frequency / N), which is
exact and costs O(patterns) per resample instead of O(clusters). Typical agreement data has a
handful of patterns (a 2×2 confusion matrix has four); continuous numbers have nearly as many
patterns as traces, and then the draws go through integer indexes and a bincount instead.

Each resample is a row of pattern counts; the statistics turn a block of rows (resamples ×
patterns) into one value per row, so 1,000 resamples are a few matrix operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

RESAMPLES = 1000
# The seed of every interval: the same data always gives the same interval, so pages are stable.
SEED = 15
# Multinomial draws cost one binomial per pattern, index draws one integer per cluster (and a
# gather and a bincount, about four times as much each): the former while patterns are fewer
# than a quarter of the clusters.
_INDEX_DRAW_COST = 4
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
        self.frequency = np.bincount(self.pattern_of_cluster).astype(np.float64)
        self.patterns = len(self.frequency)

    def original(self) -> np.ndarray:
        """The data itself as one row of pattern counts."""
        return self.frequency[np.newaxis, :]

    def blocks(self, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
        """Rows of pattern counts (float64), `resamples` rows in all, in blocks."""
        rng = np.random.default_rng(seed)
        multinomial = self.patterns * _INDEX_DRAW_COST <= self.n
        width = self.patterns if multinomial else max(self.patterns, self.n)
        block = max(1, min(resamples, _BLOCK_CELLS // max(width, 1)))
        done = 0
        while done < resamples:
            rows = min(block, resamples - done)
            if multinomial:
                yield rng.multinomial(self.n, self.frequency / self.n, size=rows).astype(np.float64)
            else:
                drawn = self.pattern_of_cluster[rng.integers(0, self.n, size=(rows, self.n), dtype=np.int32)]
                drawn += (np.arange(rows) * self.patterns)[:, np.newaxis]
                counts = np.bincount(drawn.reshape(-1), minlength=rows * self.patterns)
                yield counts.reshape(rows, self.patterns).astype(np.float64)
            done += rows


def bootstrap(
    resampler: Resampler,
    statistics: Callable[[np.ndarray], dict[str, np.ndarray]],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, tuple[float | None, tuple[float, float] | None]]:
    """{name: (value on the data, 95% percentile interval)} for each statistic that
    `statistics(pattern_counts)` returns (one value per row; NaN where undefined).

    The interval is None when the value is undefined or when fewer than half of the resamples
    define the statistic (e.g. most resamples hold a single category)."""
    if resampler.n == 0:
        return {}
    values = {name: float(column[0]) for name, column in statistics(resampler.original()).items()}
    collected: dict[str, list[np.ndarray]] = {name: [] for name in values}
    for block in resampler.blocks(resamples, seed):
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
