"""H-score: how much of the features' variance the class means explain (Bao et al., ICIP 2019).

Bao, Li, Huang, Zheng, Tong: "An Information-Theoretic Approach to Transferability in Task Transfer Learning",
ICIP 2019. For features :math:`f` and labels :math:`y`,

.. math::

    H(f) = \\mathrm{tr}\\left(\\mathrm{cov}(f)^{-1}\\, \\mathrm{cov}(E[f \\mid y])\\right),

where :math:`E[f | y]` replaces each feature vector by the mean of its class. With few items per class the
covariance is singular, so its inverse is the pseudo-inverse of a shrunk covariance
:math:`(1 - \\lambda) \\mathrm{cov}(f) + \\lambda \\frac{\\mathrm{tr}\\,\\mathrm{cov}(f)}{d} I` (Ledoit-Wolf
style shrinkage, as Ibrahim et al. 2022 propose for H-score; :math:`\\lambda` = ``shrinkage``). Higher is
better; it is invariant to a rotation of the features.
"""

import numpy as np


def hscore(features, labels, shrinkage=0.1):
    """The (shrunk) H-score of ``features`` for ``labels`` (higher is better).

    Arguments
    ---------
    features : array of shape (n, d)
        One feature vector per item (pooled over time).
    labels : array of shape (n,)
        Integer class of each item.
    shrinkage : float
        Weight of the scaled identity mixed into the covariance, in [0, 1).

    Returns
    -------
    float

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(3), 20)
    >>> separable = np.eye(3)[labels] * 5 + rng.normal(size=(60, 3)) * 0.1
    >>> hscore(separable, labels) > hscore(separable, rng.permutation(labels))
    True
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature vectors for {len(labels)} labels")
    centered = features - features.mean(axis=0)
    covariance = centered.T @ centered / len(features)
    d = covariance.shape[0]
    shrunk = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / d * np.eye(d)
    class_means = np.zeros_like(centered)
    for k in np.unique(labels):
        class_means[labels == k] = centered[labels == k].mean(axis=0)
    between = class_means.T @ class_means / len(features)
    return float(np.trace(np.linalg.pinv(shrunk, rcond=1e-10, hermitian=True) @ between))
