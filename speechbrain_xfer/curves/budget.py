"""How many labels does a method need for a target accuracy? A learning curve fitted to the grid's points.

Each method's test scores against the number of labelled examples per class ``n`` are fitted with the inverse
power law of learning curves,

    acc(n) = a - b * n^(-c),        0 <= a <= 100, b >= 0, 0.01 <= c <= 3,

used to predict the training-set size a classifier needs (Figueroa et al., "Predicting sample size required for
classification performance", BMC Medical Informatics and Decision Making 12:8, 2012); ``a`` is the accuracy the
curve levels off at. Solving ``acc(n) = target`` gives the clips per class needed, ``(b / (a - target))^(1/c)``.
The central estimate fits every seed's points together; the range fits each seed alone. An error rate (CER,
lower is better) is fitted as ``100 - error``.

The estimate is refused rather than guessed when the grid cannot support it: fewer than three shot counts (three
parameters), a fitted plateau below the target, or a size more than :data:`MAX_EXTRAPOLATION` times the largest
measured one (the curve has not flattened enough to say).
"""

import math
import statistics
import warnings
from collections import defaultdict

import numpy as np

MAX_EXTRAPOLATION = 10
"""An estimate beyond this many times the largest measured shot count is not given."""
MIN_SHOT_COUNTS = 3


def power_law(n, a, b, c):
    """``a - b * n^(-c)``."""
    return a - b * np.power(n, -c)


def fit_power_law(shots, scores):
    """``(a, b, c)`` of :func:`power_law` fitted to the points by least squares, or None.

    Arguments
    ---------
    shots : sequence of float
        Examples per class of each point (at least :data:`MIN_SHOT_COUNTS` different values).
    scores : sequence of float
        Accuracy in %, one per point.

    Example
    -------
    >>> n = [1, 3, 10, 30]
    >>> a, b, c = fit_power_law(n, [power_law(k, 90.0, 60.0, 0.7) for k in n])
    >>> round(a, 2), round(b, 2), round(c, 2)
    (90.0, 60.0, 0.7)
    >>> fit_power_law([1, 3], [40.0, 60.0]) is None
    True
    """
    from scipy.optimize import curve_fit

    x, y = np.asarray(shots, dtype=float), np.asarray(scores, dtype=float)
    if len(set(x.tolist())) < MIN_SHOT_COUNTS:
        return None
    a0 = min(100.0, float(y.max()) + 5.0)
    start = (a0, max(a0 - float(y.min()), 1.0), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a covariance that cannot be estimated: the fit itself is fine
            params, _ = curve_fit(power_law, x, y, p0=start, bounds=([0.0, 0.0, 0.01], [100.0, np.inf, 3.0]))
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def clips_needed(params, target):
    """Examples per class at which the fitted curve reaches ``target`` (%), or ``math.inf`` if it never does.

    Example
    -------
    >>> round(clips_needed((90.0, 60.0, 0.5), 80.0), 1)
    36.0
    >>> clips_needed((75.0, 60.0, 0.5), 80.0)
    inf
    """
    a, b, c = params
    if a <= target:
        return math.inf
    if b <= 0:
        return 1.0
    return max(1.0, (b / (a - target)) ** (1.0 / c))


def _as_accuracy(value, metric):
    """A score in % where higher is better: accuracy (a fraction) in %, an error rate in % as ``100 - error``."""
    return 100.0 * float(value) if metric == "accuracy" else 100.0 - float(value)


def _points(rows):
    """``{(task, metric, method): {seed: [(shots, score %)]}}`` of the numeric shot counts."""
    from speechbrain_xfer.curves.report import method_label

    points = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if str(row["shots"]).isdigit():
            key = (row["task"], row["metric"], method_label(row))
            points[key][row["seed"]].append((int(row["shots"]), _as_accuracy(row["value"], row["metric"])))
    return points


def estimate(by_seed, target):
    """The label budget of one method: ``{"needed", "low", "high", "params", "says"}``.

    ``by_seed`` is ``{seed: [(shots, score %)]}``; ``target`` is in the same % (higher is better). ``says``
    is the verdict in words; ``needed``, ``low`` and ``high`` are clips per class (``low``/``high`` from the
    seeds fitted one by one), or None where the grid cannot say.
    """
    all_points = [p for points in by_seed.values() for p in points]
    measured = sorted({n for n, _ in all_points})
    means = {n: statistics.fmean(s for k, s in all_points if k == n) for n in measured}
    limit = MAX_EXTRAPOLATION * measured[-1]
    result = {"needed": None, "low": None, "high": None, "params": None}
    reached = [n for n in measured if means[n] >= target]
    if len(measured) < MIN_SHOT_COUNTS:
        return {**result, "says": f"needs {MIN_SHOT_COUNTS} or more shot counts to fit a curve ({len(measured)} run)"}
    params = fit_power_law(*zip(*all_points))
    if params is None:
        return {**result, "says": "the curve could not be fitted"}
    result["params"] = params
    seeds = [fit_power_law(*zip(*points)) for points in by_seed.values()]
    per_seed = [clips_needed(p, target) if p is not None else math.inf for p in seeds]
    needed = clips_needed(params, target)
    if reached:
        result.update(needed=needed, low=min(per_seed), high=max(per_seed))
        return {**result, "says": f"reached at {reached[0]} measured (mean {means[reached[0]]:.1f} %)"}
    if needed == math.inf:
        return {**result, "says": f"not reached: the curve levels off at {params[0]:.1f} %"}
    if needed > limit:
        return {
            **result,
            "says": f"more than {limit} (10x the largest measured): the curve has not flattened enough to say",
        }
    result.update(needed=needed, low=min(per_seed), high=max(per_seed))
    spread = "" if len(per_seed) < 2 else f"; seeds {_count(result['low'], limit)}-{_count(result['high'], limit)}"
    # A plateau at the bound means the points show no levelling off yet: the estimate leans on the bound.
    caveat = "; no plateau in sight yet (a at the 100 % bound): a rough extrapolation" if params[0] >= 99.9 else ""
    return {**result, "says": f"about {needed:.0f}{spread}{caveat}"}


def _count(n, limit):
    return f">{limit}" if n > limit else f"{n:.0f}"


def budget_rows(rows, target):
    """One row per (task, method): the clips per class needed for ``target`` (% accuracy, or % error for an
    error rate), with the fit and the verdict."""
    out = []
    for (task, metric, method), by_seed in sorted(_points(rows).items()):
        result = estimate(by_seed, target)  # the points of an error rate are 100 - error already
        a, b, c = result["params"] or (None, None, None)
        out.append(
            {"task": task, "metric": metric, "method": method, "target": target, **result, "a": a, "b": b, "c": c}
        )
    return out


def markdown(budget, target):
    """The label-budget section of curves.md."""
    lines = [
        f"### Labels needed for {target:g} % (clips per class)",
        "",
        "Fitted per method: acc(n) = a - b * n^-c over every seed's points (the range: each seed alone); "
        "a is where the curve levels off.",
        "",
        "| task | method | clips per class | fit: a, b, c |",
        "|---|---|---|---|",
    ]
    for row in budget:
        fit = "" if row["a"] is None else f"{row['a']:.1f}, {row['b']:.1f}, {row['c']:.2f}"
        lines.append(f"| {row['task']} | {row['method']} | {row['says']} | {fit} |")
    return "\n".join(lines) + "\n"


def section(rows, target):
    """The label-budget section of curves.md for the curves' ``rows`` (:func:`budget_rows` as :func:`markdown`)."""
    return markdown(budget_rows(rows, target), target)


def holdout_rows(rows):
    """Checks the fit on the grid itself: for each (task, method) with four or more shot counts, the curve fitted
    to every shot count but the largest predicts the largest; returns one row per method with the error."""
    out = []
    for (task, _, method), by_seed in sorted(_points(rows).items()):
        all_points = [p for points in by_seed.values() for p in points]
        measured = sorted({n for n, _ in all_points})
        if len(measured) < MIN_SHOT_COUNTS + 1:
            continue
        largest = measured[-1]
        params = fit_power_law(*zip(*[(n, s) for n, s in all_points if n != largest]))
        actual = statistics.fmean(s for n, s in all_points if n == largest)
        predicted = None if params is None else float(power_law(largest, *params))
        out.append(
            {
                "task": task,
                "method": method,
                "fitted_on": ",".join(str(n) for n in measured[:-1]),
                "predicted_shots": largest,
                "predicted": predicted,
                "measured": actual,
                "error": None if predicted is None else predicted - actual,
            }
        )
    return out


def holdout_markdown(holdout):
    """The hold-out check as a Markdown table, with the mean absolute error."""
    lines = [
        "| task | method | fitted on | predicted at | predicted % | measured % | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in holdout:
        predicted = "no fit" if row["predicted"] is None else f"{row['predicted']:.1f}"
        error = "" if row["error"] is None else f"{row['error']:+.1f}"
        lines.append(
            f"| {row['task']} | {row['method']} | {row['fitted_on']} | {row['predicted_shots']} | {predicted} | "
            f"{row['measured']:.1f} | {error} |"
        )
    errors = [abs(row["error"]) for row in holdout if row["error"] is not None]
    if errors:
        lines += ["", f"Mean absolute error: {statistics.fmean(errors):.1f} points over {len(errors)} curves; "
                  f"largest {max(errors):.1f}."]  # fmt: skip
    return "\n".join(lines) + "\n"
