"""LogME: the log maximum evidence of a linear model on frozen features (You et al., ICML 2021).

You, Liu, Wang, Long: "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021.

For features :math:`F \\in R^{n \\times d}` and each class :math:`k`, the one-hot target column
:math:`y_k` is modelled as :math:`y_k = F w + \\epsilon` with the prior :math:`w \\sim N(0, \\alpha^{-1} I)`
and the noise :math:`\\epsilon \\sim N(0, \\beta^{-1} I)`. The evidence (marginal likelihood)

.. math::

    \\log p(y_k | F, \\alpha, \\beta) = \\frac{n}{2} \\log \\beta + \\frac{d}{2} \\log \\alpha
        - \\frac{n}{2} \\log 2\\pi - \\frac{\\beta}{2} \\|F m - y_k\\|^2 - \\frac{\\alpha}{2} \\|m\\|^2
        - \\frac{1}{2} \\log |\\alpha I + \\beta F^T F|,
    \\qquad m = \\beta (\\alpha I + \\beta F^T F)^{-1} F^T y_k,

is maximized over :math:`\\alpha, \\beta` by MacKay's fixed-point updates
:math:`\\gamma = \\sum_i \\beta \\sigma_i / (\\alpha + \\beta \\sigma_i)`, :math:`\\alpha = \\gamma / \\|m\\|^2`,
:math:`\\beta = (n - \\gamma) / \\|F m - y_k\\|^2` (:math:`\\sigma_i`: the eigenvalues of :math:`F^T F`).
LogME is the maximum evidence divided by :math:`n`, averaged over the classes: higher means the features
explain the labels better with a linear head. It is invariant to a rotation of the features.
"""

import numpy as np


def logme(features, labels, max_iterations=100, tolerance=1e-3):
    """The LogME score of ``features`` for ``labels`` (higher is better).

    Arguments
    ---------
    features : array of shape (n, d)
        One feature vector per item (pooled over time).
    labels : array of shape (n,)
        Integer class of each item.
    max_iterations : int
        Fixed-point updates per class at most.
    tolerance : float
        Relative change of :math:`\\alpha / \\beta` at which the updates stop.

    Returns
    -------
    float

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(3), 20)
    >>> separable = np.eye(3)[labels] * 5 + rng.normal(size=(60, 3)) * 0.1
    >>> logme(separable, labels) > logme(separable, rng.permutation(labels))
    True
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    n, d = features.shape
    if len(labels) != n:
        raise ValueError(f"{n} feature vectors for {len(labels)} labels")
    # Eigen-decomposition of F^T F once for all classes: sigma (eigenvalues), v (eigenvectors).
    sigma, v = np.linalg.eigh(features.T @ features)
    sigma = np.clip(sigma, 0.0, None)
    evidences = []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)
        projected = v.T @ (features.T @ y)  # V^T F^T y
        alpha, beta = 1.0, 1.0
        for _ in range(max_iterations):
            gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
            m = v @ (beta * projected / (alpha + beta * sigma))
            m_norm = float(m @ m)
            residual = float(np.sum((features @ m - y) ** 2))
            # Floored: features that explain nothing (all zero, say) drive alpha to 0, where the limit is the
            # evidence of the noise model alone (the d log(alpha) terms cancel), not 0 / 0.
            new_alpha = max(gamma / (m_norm + 1e-12), 1e-12)
            new_beta = max((n - gamma) / (residual + 1e-12), 1e-12)
            converged = abs(new_alpha / new_beta - alpha / beta) <= tolerance * alpha / beta
            alpha, beta = new_alpha, new_beta
            if converged:
                break
        m = v @ (beta * projected / (alpha + beta * sigma))
        residual, m_norm = float(np.sum((features @ m - y) ** 2)), float(m @ m)
        evidence = (
            n / 2 * np.log(beta)
            + d / 2 * np.log(alpha)
            - n / 2 * np.log(2 * np.pi)
            - beta / 2 * residual
            - alpha / 2 * m_norm
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))
