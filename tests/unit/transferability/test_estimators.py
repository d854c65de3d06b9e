import numpy as np
import pytest

from speechbrain_xfer.transferability import ESTIMATORS, logme


def _classes(rng, n_per_class=10, classes=4, dim=16, spread=3.0):
    labels = np.repeat(np.arange(classes), n_per_class)
    means = rng.normal(size=(classes, dim)) * spread
    return means[labels] + rng.normal(size=(len(labels), dim)), labels


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_separable_features_score_above_the_same_features_with_shuffled_labels(name):
    rng = np.random.default_rng(1)
    features, labels = _classes(rng)
    estimator = ESTIMATORS[name]
    shuffled = [estimator(features, rng.permutation(labels)) for _ in range(5)]
    assert estimator(features, labels) > max(shuffled)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_the_score_does_not_change_under_a_rotation_of_the_features(name):
    rng = np.random.default_rng(2)
    features, labels = _classes(rng, dim=24)  # more dimensions than items per class: the singular case
    rotation, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    before, after = ESTIMATORS[name](features, labels), ESTIMATORS[name](features @ rotation, labels)
    assert after == pytest.approx(before, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_more_separable_features_score_higher(name):
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(40, 8))
    labels = np.repeat(np.arange(4), 10)
    means = rng.normal(size=(4, 8))
    scores = [ESTIMATORS[name](means[labels] * spread + noise, labels) for spread in (0.5, 2.0, 8.0)]
    assert scores[0] < scores[1] < scores[2]


def _log_evidence(features, y, alpha, beta):
    """log N(y; 0, F F^T / alpha + I / beta): the marginal likelihood of the linear model, computed directly."""
    n = len(y)
    covariance = features @ features.T / alpha + np.eye(n) / beta
    _, logdet = np.linalg.slogdet(covariance)
    return -0.5 * (y @ np.linalg.solve(covariance, y) + logdet + n * np.log(2 * np.pi))


def test_logme_is_the_mean_over_classes_of_the_maximum_evidence_over_alpha_and_beta():
    rng = np.random.default_rng(4)
    features, labels = _classes(rng, n_per_class=8, classes=3, dim=5)
    grid = np.logspace(-4, 4, 41)
    best = []
    for k in range(3):
        y = (labels == k).astype(np.float64)
        best.append(max(_log_evidence(features, y, a, b) for a in grid for b in grid) / len(y))
    score = logme(features, labels)
    assert score >= np.mean(best) - 1e-6  # no point of the grid beats the fixed point
    assert score - np.mean(best) < 0.01  # and the grid comes close to it
