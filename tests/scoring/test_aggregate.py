import numpy as np
import pytest

from rewardkit.scoring.aggregate import check_aggregate, combine, member_std

# 3 members, 2 rows (already standardized per member):
#   row 0: 1, 2, 3  -> mean 2, std sqrt(((1)^2 + 0 + 1^2) / 3) = sqrt(2/3) = 0.81650, min 1
#   row 1: 0, 0, 3  -> mean 1, std sqrt((1 + 1 + 4) / 3) = sqrt(2) = 1.41421, min 0
# uwo with lambda 0.5: row 0: 2 - 0.40825 = 1.59175; row 1: 1 - 0.70711 = 0.29289
MEMBERS = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 3.0]])


def test_mean_uwo_wco_hand_worked() -> None:
    np.testing.assert_allclose(combine(MEMBERS, "mean"), [2.0, 1.0])
    np.testing.assert_allclose(member_std(MEMBERS), [np.sqrt(2 / 3), np.sqrt(2)])
    np.testing.assert_allclose(combine(MEMBERS, "uwo", 0.5), [1.591752, 0.292893], atol=1e-6)
    np.testing.assert_allclose(combine(MEMBERS, "wco"), [1.0, 0.0])
    np.testing.assert_allclose(combine(MEMBERS, "uwo", 0.0), combine(MEMBERS, "mean"))


def test_single_member_all_equal_the_score() -> None:
    one = np.array([[0.3, -1.2]])
    for agg in ("mean", "uwo", "wco"):
        np.testing.assert_allclose(combine(one, agg, 1.0), [0.3, -1.2])


def test_order_wco_le_uwo_le_mean() -> None:
    scores = np.random.default_rng(0).normal(size=(5, 50))
    wco, uwo, mean = combine(scores, "wco"), combine(scores, "uwo", 0.5), combine(scores, "mean")
    assert np.all(uwo <= mean) and np.all(wco <= mean)


@pytest.mark.parametrize(
    ("aggregate", "lam", "message"),
    [("median", 0.5, "aggregate must be one of mean, uwo, wco"), ("uwo", -1.0, "uwo_lambda"), ("uwo", np.nan, "uwo")],
)
def test_bad_options_named(aggregate: str, lam: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_aggregate(aggregate, lam)


def test_bad_shape_named() -> None:
    with pytest.raises(ValueError, match="members, rows"):
        combine(np.array([1.0, 2.0]))
