"""The agreement statistics against the reference implementations (scikit-learn, SciPy,
krippendorff, statsmodels) on generated data, to 3 decimals; and the bootstrap behind the
intervals (each resample is the statistic of the resampled data; seeded, so stable)."""

import krippendorff
import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as reference_fleiss

from assessments.agreement.bootstrap import Resampler
from assessments.agreement.statistics import (
    Pairs,
    band,
    fleiss_kappa,
    kappa_from_confusion,
    krippendorff_alpha,
    label_agreement,
    number_agreement,
)


def noisy_labels(rng, n, k, agree):
    a = rng.integers(0, k, n)
    return a, np.where(rng.random(n) < agree, a, rng.integers(0, k, n))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("k, agree", [(2, 0.8), (3, 0.6), (6, 0.3)])
def test_cohen_kappa_and_weighted_kappa_match_scikit_learn(seed, k, agree):
    rng = np.random.default_rng(seed)
    a, b = noisy_labels(rng, 300, k, agree)
    pairs = Pairs(np.arange(300), a, b)
    nominal = label_agreement(pairs, k, ordinal=False)
    ordinal = label_agreement(pairs, k, ordinal=True)
    assert nominal["cohen_kappa"].value == pytest.approx(cohen_kappa_score(a, b), abs=1e-3)
    assert ordinal["weighted_kappa"].value == pytest.approx(
        cohen_kappa_score(a, b, weights="quadratic", labels=list(range(k))), abs=1e-3
    )
    assert nominal["percent_agreement"].value == pytest.approx(np.mean(a == b), abs=1e-9)


def test_weighted_kappa_counts_unobserved_levels_by_their_distance():
    # Levels 0..4 with 1 and 3 never used: the distance between 0 and 4 is 4, not 2.
    rng = np.random.default_rng(7)
    a = rng.choice([0, 2, 4], 200)
    b = np.where(rng.random(200) < 0.5, a, rng.choice([0, 2, 4], 200))
    ours = label_agreement(Pairs(np.arange(200), a, b), 5, ordinal=True)["weighted_kappa"].value
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights="quadratic", labels=[0, 1, 2, 3, 4]), abs=1e-3)


def test_a_single_category_has_no_kappa():
    a = b = np.zeros(50, dtype=int)
    result = label_agreement(Pairs(np.arange(50), a, b), 2, ordinal=False)
    with pytest.warns(UserWarning):
        assert np.isnan(cohen_kappa_score(a, b, labels=[0, 1]))
    assert result["cohen_kappa"].value is None and result["cohen_kappa"].ci95 is None
    assert result["percent_agreement"].value == 1.0


@pytest.mark.parametrize("seed", [4, 5])
def test_numbers_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=400)
    y = x + rng.normal(scale=0.8, size=400)
    x[:80] = np.round(x[:80])  # ties within each series, and some equal pairs
    y[:40] = x[:40]
    result = number_agreement(Pairs(np.arange(400), x, y))
    assert result["pearson"].value == pytest.approx(pearsonr(x, y)[0], abs=1e-3)
    assert result["spearman"].value == pytest.approx(spearmanr(x, y)[0], abs=1e-3)
    assert result["mae"].value == pytest.approx(np.mean(np.abs(x - y)), abs=1e-3)
    assert result["percent_agreement"].value == pytest.approx(np.mean(x == y))


def test_a_constant_series_has_no_correlation():
    x = np.ones(30)
    y = np.arange(30.0)
    result = number_agreement(Pairs(np.arange(30), x, y))
    assert result["pearson"].value is None and result["spearman"].value is None
    assert result["mae"].value == pytest.approx(np.mean(np.abs(x - y)))


def test_several_pairs_per_trace_count_every_pair():
    rng = np.random.default_rng(9)
    a, b = noisy_labels(rng, 500, 3, 0.7)
    traces = rng.integers(0, 150, 500)
    traces = np.unique(traces, return_inverse=True)[1]
    result = label_agreement(Pairs(traces, a, b), 3, ordinal=False)
    assert result["cohen_kappa"].value == pytest.approx(cohen_kappa_score(a, b), abs=1e-3)
    x = rng.normal(size=500)
    y = x + rng.normal(size=500)
    numbers = number_agreement(Pairs(traces, np.round(x, 1), np.round(y, 1)))
    assert numbers["spearman"].value == pytest.approx(spearmanr(np.round(x, 1), np.round(y, 1))[0], abs=1e-3)


def test_each_resample_is_the_statistic_of_the_resampled_traces():
    """The bootstrap weights traces; a resample's κ and ρ equal the references on the data
    with each trace's pairs repeated as often as it was drawn."""
    rng = np.random.default_rng(11)
    traces = np.unique(rng.integers(0, 60, 200), return_inverse=True)[1]
    a, b = noisy_labels(rng, 200, 3, 0.6)
    pairs = Pairs(traces, a, b)
    drawn = rng.integers(0, traces.max() + 1, traces.max() + 1)
    times = np.bincount(drawn, minlength=traces.max() + 1)
    repeat = np.repeat(np.arange(200), times[traces])
    counts = np.bincount(pairs.resampler.pattern_of_cluster, weights=times, minlength=pairs.resampler.patterns)
    weights = pairs.atom_weights(counts[np.newaxis, :])
    table = np.zeros((1, 9))
    table[:, pairs.a.astype(int) * 3 + pairs.b.astype(int)] = weights
    ours = kappa_from_confusion(table.reshape(1, 3, 3))[0]
    assert ours == pytest.approx(cohen_kappa_score(a[repeat], b[repeat]), abs=1e-9)


def test_intervals_are_seeded_and_hold_the_value():
    rng = np.random.default_rng(12)
    a, b = noisy_labels(rng, 300, 2, 0.8)
    first = label_agreement(Pairs(np.arange(300), a, b), 2, ordinal=False)["cohen_kappa"]
    again = label_agreement(Pairs(np.arange(300), a, b), 2, ordinal=False)["cohen_kappa"]
    assert first == again
    low, high = first.ci95
    assert low < first.value < high and high - low < 0.3


def test_interval_matches_a_plain_bootstrap_loop():
    """The pattern-multinomial bootstrap draws what a loop over resampled traces draws: the
    intervals agree within Monte Carlo error."""
    rng = np.random.default_rng(13)
    a, b = noisy_labels(rng, 400, 3, 0.6)
    ours = label_agreement(Pairs(np.arange(400), a, b), 3, ordinal=False)["cohen_kappa"].ci95
    loop_rng = np.random.default_rng(99)
    draws = []
    for _ in range(1000):
        index = loop_rng.integers(0, 400, 400)
        # Cohen's κ written out (scikit-learn's, checked above, takes ~1 ms a call)
        table = np.bincount(a[index] * 3 + b[index], minlength=9).reshape(3, 3) / 400
        chance = table.sum(axis=1) @ table.sum(axis=0)
        draws.append((np.trace(table) - chance) / (1 - chance))
    reference = np.percentile(draws, [2.5, 97.5])
    assert ours == pytest.approx(tuple(reference), abs=0.02)


def test_continuous_numbers_use_index_draws():
    rng = np.random.default_rng(14)
    x = rng.normal(size=5000)
    y = x + rng.normal(size=5000)
    pairs = Pairs(np.arange(5000), x, y)
    assert pairs.resampler.patterns == 5000  # every trace is its own pattern
    result = number_agreement(pairs)
    assert result["pearson"].ci95[0] < pearsonr(x, y)[0] < result["pearson"].ci95[1]


def ratings(rng, items, raters, k, agree, missing):
    """A (raters × items) reliability matrix with NaN for missing ratings."""
    truth = rng.integers(0, k, items)
    data = np.array(
        [np.where(rng.random(items) < agree, truth, rng.integers(0, k, items)) for _ in range(raters)], dtype=float
    )
    data[rng.random(data.shape) < missing] = np.nan
    return data


def long_form(data):
    item, rater = np.nonzero(~np.isnan(data.T))
    return item, data.T[item, rater]


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed, raters, missing", [(1, 2, 0.0), (2, 3, 0.3), (3, 5, 0.5)])
def test_krippendorff_alpha_matches_the_krippendorff_package(level, seed, raters, missing):
    rng = np.random.default_rng(seed)
    data = ratings(rng, 120, raters, 5, 0.6, missing)
    item, values = long_form(data)
    ours, pairable = krippendorff_alpha(item, values.astype(int) if level != "interval" else values, level, 5)
    reference = krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2, 3, 4])
    assert ours.value == pytest.approx(reference, abs=1e-3)
    assert pairable == int(((~np.isnan(data)).sum(axis=0) >= 2).sum())
    assert ours.ci95[0] <= ours.value <= ours.ci95[1]


def test_krippendorff_interval_on_real_numbers():
    rng = np.random.default_rng(21)
    truth = rng.normal(size=80)
    data = np.array([truth + rng.normal(scale=0.5, size=80) for _ in range(3)])
    data[rng.random(data.shape) < 0.2] = np.nan
    item, values = long_form(data)
    ours, _ = krippendorff_alpha(item, values, "interval")
    assert ours.value == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="interval"), abs=1e-3
    )


def test_krippendorff_single_category_is_undefined():
    data = np.zeros((3, 20))
    item, values = long_form(data)
    ours, _ = krippendorff_alpha(item, values.astype(int), "nominal", 2)
    assert ours.value is None


@pytest.mark.parametrize("seed, raters", [(1, 2), (2, 3), (3, 6)])
def test_fleiss_kappa_matches_statsmodels(seed, raters):
    rng = np.random.default_rng(seed)
    data = ratings(rng, 100, raters, 4, 0.5, 0.0).astype(int)
    item, values = long_form(data.astype(float))
    table = np.stack([np.bincount(data[:, column], minlength=4) for column in range(100)])
    ours, note = fleiss_kappa(item, values.astype(int), 4)
    assert note is None
    assert ours.value == pytest.approx(reference_fleiss(table), abs=1e-3)


def test_fleiss_kappa_needs_the_same_number_of_ratings():
    rng = np.random.default_rng(4)
    data = ratings(rng, 50, 3, 3, 0.5, 0.3)
    item, values = long_form(data)
    ours, note = fleiss_kappa(item, values.astype(int), 3)
    assert ours is None and "same number" in note


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), (-0.2, "poor"), (0.39, "poor"), (0.4, "moderate"), (0.69, "moderate"), (0.7, "good")],
)
def test_bands(value, expected):
    assert band(value) == expected


@pytest.mark.parametrize("patterns, clusters", [(4, 1000), (300, 6000), (2000, 2400)])
def test_resamples_draw_exactly_as_many_clusters_with_multinomial_counts(patterns, clusters):
    """Each row holds exactly N clusters and its counts have the multinomial's moments, on the
    Poisson path (few patterns) and on the single-draw path (about one cluster per pattern)."""
    rng = np.random.default_rng(16)
    pattern = np.r_[np.arange(patterns), rng.integers(0, patterns, clusters - patterns)]
    resampler = Resampler(pattern)
    rows = np.concatenate(list(resampler.blocks(4000)))
    assert rows.shape == (4000, patterns) and (rows.sum(axis=1) == clusters).all()
    share = resampler.frequency / clusters
    mean, variance = rows.mean(axis=0), rows.var(axis=0)
    assert np.abs(mean - clusters * share).max() < 5 * np.sqrt(clusters * share.max() / 4000)
    expected = clusters * share * (1 - share)
    assert np.abs(variance / expected - 1).mean() < 0.05
    if patterns == 4:  # two patterns' counts covary as the multinomial's: −N p_i p_j
        covariance = np.cov(rows[:, 0], rows[:, 1])[0, 1]
        assert covariance == pytest.approx(-clusters * share[0] * share[1], rel=0.2)


def test_sums_are_the_counts_times_the_features_and_the_order_of_clusters_does_not_matter():
    rng = np.random.default_rng(17)
    for patterns, clusters in ((5, 800), (900, 1000)):
        pattern = np.r_[np.arange(patterns), rng.integers(0, patterns, clusters - patterns)]
        features = rng.random((patterns, 3))
        counts = np.concatenate(list(Resampler(pattern).blocks()))
        sums = np.concatenate(list(Resampler(pattern).sums(features)))
        assert sums == pytest.approx(counts @ features)
        shuffled = np.concatenate(list(Resampler(rng.permutation(pattern)).blocks()))
        assert (shuffled == counts).all()


def test_intervals_do_not_depend_on_the_order_of_the_traces():
    rng = np.random.default_rng(18)
    traces = np.unique(rng.integers(0, 150, 500), return_inverse=True)[1]
    a, b = noisy_labels(rng, 500, 3, 0.7)
    x = np.round(rng.normal(size=500), 1)
    y = np.round(x + rng.normal(size=500), 1)
    order = rng.permutation(500)
    renamed = rng.permutation(traces.max() + 1)[traces]  # the same traces under other numbers
    for compute, (first, second) in (
        (lambda t, p, q: label_agreement(Pairs(t, p, q), 3, ordinal=False), (a, b)),
        (lambda t, p, q: number_agreement(Pairs(t, p, q)), (x, y)),
    ):
        assert compute(traces, first, second) == compute(renamed[order], first[order], second[order])


def test_pearson_alone_equals_pearson_with_spearman():
    rng = np.random.default_rng(19)
    x = np.round(rng.normal(size=3000), 1)
    y = np.round(x + rng.normal(size=3000), 1)
    traces = np.unique(rng.integers(0, 1000, 3000), return_inverse=True)[1]
    full = number_agreement(Pairs(traces, x, y))
    alone = number_agreement(Pairs(traces, x, y), spearman=False)
    assert alone["spearman"] is None
    for name in ("pearson", "mae", "percent_agreement"):
        assert alone[name].value == pytest.approx(full[name].value)
        assert alone[name].ci95 == pytest.approx(full[name].ci95)


def test_no_pairs_give_no_statistics():
    empty = np.zeros(0)
    assert label_agreement(Pairs(empty, empty, empty), 2, ordinal=False)["cohen_kappa"] is None
    for spearman in (True, False):
        result = number_agreement(Pairs(empty, empty, empty), spearman=spearman)
        assert result["n"] == 0 and result["pearson"] is None
