import math

import pytest

from speechbrain_xfer.curves.budget import (
    MAX_EXTRAPOLATION,
    budget_rows,
    estimate,
    fit_power_law,
    holdout_rows,
    markdown,
    power_law,
)

SHOTS = (1, 3, 10, 30)


def curve(a, b, c, shots=SHOTS, noise=0.0):
    return [(n, float(power_law(n, a, b, c)) + noise) for n in shots]


def test_the_fit_finds_a_curve_that_levels_off():
    a, b, c = fit_power_law(*zip(*curve(80.0, 50.0, 0.8)))
    assert a == pytest.approx(80.0, abs=1e-3) and b == pytest.approx(50.0, abs=1e-3) and c == pytest.approx(0.8)


def test_the_estimate_solves_the_curve_and_ranges_over_the_seeds():
    by_seed = {"1": curve(95.0, 60.0, 0.5, noise=-1.0), "2": curve(95.0, 60.0, 0.5, noise=1.0)}
    result = estimate(by_seed, 90.0)
    # Both seeds together: the noise cancels, and (60 / 5)^(1/0.5) = 144 clips per class.
    assert result["needed"] == pytest.approx(144.0, rel=1e-3)
    assert result["low"] < result["needed"] < result["high"]
    assert result["says"].startswith("about 144; seeds ")


def test_a_target_above_the_plateau_is_not_reached():
    result = estimate({"1": curve(70.0, 40.0, 0.7)}, 90.0)
    assert result["needed"] is None
    assert result["says"] == "not reached: the curve levels off at 70.0 %"


def test_a_target_far_beyond_the_measured_shots_is_not_guessed():
    result = estimate({"1": curve(99.0, 80.0, 0.3)}, 95.0)
    assert result["needed"] is None
    assert result["says"].startswith(f"more than {MAX_EXTRAPOLATION * 30} (10x the largest measured)")


def test_a_curve_with_no_plateau_in_sight_says_so():
    # Still rising steeply at 30 shots: the plateau the fit finds is the 100 % bound.
    points = [(1, 20.0), (3, 35.0), (10, 55.0), (30, 70.0)]
    result = estimate({"1": points}, 80.0)
    assert "no plateau in sight yet" in result["says"], result


def test_a_measured_point_at_the_target_is_reported_as_reached():
    result = estimate({"1": curve(95.0, 60.0, 0.9)}, 90.0)
    assert result["says"].startswith("reached at 30 measured")


def test_two_shot_counts_are_too_few():
    result = estimate({"1": [(1, 40.0), (10, 70.0)]}, 90.0)
    assert result["params"] is None and result["says"].startswith("needs 3 or more shot counts")


def rows(task, metric, method, points, seed="1", to_value=lambda y: y / 100):
    return [
        {"task": task, "metric": metric, "method": method, "shots": str(n), "seed": seed, "value": to_value(y)}
        for n, y in points
    ]


def test_error_rates_are_fitted_as_100_minus_the_error():
    cer = rows("asr", "CER", "finetune", curve(95.0, 60.0, 0.5), to_value=lambda y: 100.0 - y)
    accuracy = rows("kws", "accuracy", "finetune", curve(95.0, 60.0, 0.5))
    by_task = {row["task"]: row for row in budget_rows(cer + accuracy, 90.0)}
    assert by_task["asr"]["needed"] == pytest.approx(by_task["kws"]["needed"], rel=1e-6)
    assert "| asr | finetune | about 144" in markdown(budget_rows(cer, 90.0), 90.0)


def test_the_holdout_predicts_the_largest_shot_count_from_the_others():
    points = curve(90.0, 60.0, 0.6)
    (check,) = holdout_rows(rows("kws", "accuracy", "l2sp", points))
    assert check["fitted_on"] == "1,3,10" and check["predicted_shots"] == 30
    assert check["error"] == pytest.approx(0.0, abs=1e-3)
    assert holdout_rows(rows("kws", "accuracy", "l2sp", points[:3])) == []  # three points leave nothing to check
    assert not math.isnan(check["measured"])
