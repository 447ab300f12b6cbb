import math

import pytest

from scitune.eval.chance import guessing_distribution, p_value_above_chance


def test_equal_chances_give_the_binomial():
    dist = guessing_distribution([0.25] * 10)
    for k in range(11):
        assert dist[k] == pytest.approx(math.comb(10, k) * 0.25**k * 0.75 ** (10 - k))
    assert sum(dist) == pytest.approx(1.0)


def test_mixed_chances_and_p_values():
    chances = [0.5, 0.25, 1 / 3]
    dist = guessing_distribution(chances)
    assert dist[3] == pytest.approx(0.5 * 0.25 / 3) and dist[0] == pytest.approx(0.5 * 0.75 * 2 / 3)
    assert p_value_above_chance(0, chances) == pytest.approx(1.0)
    assert p_value_above_chance(3, chances) == pytest.approx(dist[3])
    # 60 of 100 four-option questions right is far beyond guessing; 25 of 100 is not
    assert p_value_above_chance(60, [0.25] * 100) < 1e-12
    assert p_value_above_chance(25, [0.25] * 100) > 0.4
    with pytest.raises(ValueError):
        p_value_above_chance(4, chances)
    with pytest.raises(ValueError):
        guessing_distribution([1.5])
