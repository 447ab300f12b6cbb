"""The ablation's statistics against scipy and against cases worked by hand."""

import math

import pytest

from scitune.experiment.stats import mcnemar_exact, mean_interval, paired_bootstrap, t_cdf, t_quantile

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy comes with the ingest extra (make venv installs it)")


@pytest.mark.parametrize("df", [1, 2, 4, 9, 30])
def test_t_quantile_matches_scipy(df):
    for p in (0.9, 0.975, 0.995):
        assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-5)
    assert t_cdf(-1.3, df) == pytest.approx(scipy_stats.t.cdf(-1.3, df), abs=1e-7)


def test_mean_interval_matches_scipy():
    values = [39.33, 42.67, 45.1, 40.0]
    interval = mean_interval(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=scipy_stats.sem(values))
    assert (interval.low, interval.high) == (pytest.approx(low, rel=1e-6), pytest.approx(high, rel=1e-6))
    assert interval.mean == pytest.approx(41.775)


def test_one_value_has_no_interval():
    interval = mean_interval([40.0])
    assert (interval.mean, interval.low, interval.high, interval.n) == (40.0, None, None, 1)


def test_mcnemar_known_case_and_scipy():
    # b = 1 right only with stage 1, c = 9 right only without: p = 2 (C(10,0) + C(10,1)) / 2^10
    with_right = [True] * 1 + [False] * 9 + [True] * 5 + [False] * 5
    without_right = [False] * 1 + [True] * 9 + [True] * 5 + [False] * 5
    result = mcnemar_exact(with_right, without_right)
    assert (result["only_with"], result["only_without"]) == (1, 9)
    assert result["p_value"] == pytest.approx(2 * 11 / 1024)
    assert result["p_value"] == pytest.approx(scipy_stats.binomtest(1, 10, 0.5).pvalue)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0  # no discordant pair


def test_paired_bootstrap_sees_a_clear_difference_and_none_where_there_is_none():
    with_right = [1] * 80 + [0] * 20
    without_right = [1] * 50 + [0] * 50

    def difference(seeds, indices):
        indices = list(indices)
        return 100 * (sum(with_right[i] for i in indices) - sum(without_right[i] for i in indices)) / len(indices)

    clear = paired_bootstrap(100, difference, resamples=1000)
    assert clear.difference == pytest.approx(30.0)
    assert clear.supported and clear.low > 15 and clear.p_value <= 0.002
    # the percentile interval of a paired mean difference is close to the normal-theory one
    d = [a - b for a, b in zip(with_right, without_right)]
    sd = math.sqrt(sum((x - 0.3) ** 2 for x in d) / 99) * 100
    assert clear.high - clear.low == pytest.approx(2 * 1.96 * sd / 10, rel=0.15)
    same = paired_bootstrap(100, lambda seeds, idx: 0.0 * len(list(idx)), resamples=200)
    assert (same.difference, same.p_value, same.supported) == (0.0, 1.0, False)


def test_seed_to_seed_spread_widens_the_paired_interval():
    # per seed, the difference is +20 or -20 points on every item: items alone look certain,
    # seeds say otherwise
    per_seed = [20.0, -20.0, 20.0]

    def difference(seeds, indices):
        return sum(per_seed[s] for s in seeds) / len(seeds)

    items_only = paired_bootstrap(50, difference, seeds=1, resamples=500)
    with_seeds = paired_bootstrap(50, difference, seeds=3, resamples=500)
    assert items_only.low == items_only.high == 20.0
    assert with_seeds.low < 0 < with_seeds.high and not with_seeds.supported


def test_interval_is_cut_to_the_metric_range():
    interval = mean_interval([10.0, 90.0], bounds=(0.0, 100.0))
    assert (interval.low, interval.high) == (0.0, 100.0) and interval.mean == 50.0
