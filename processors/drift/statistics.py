"""Distances between a window's distribution and the reference's, over the same bins. Pure numpy.

Inputs are counts (or proportions) per bin, the reference first. Empty bins: PSI and KL take
log(p/q), undefined at 0, so both proportions are floored at EPSILON (1e-4, as Evidently does)
before they are compared; Jensen-Shannon needs no floor. JS is the distance (the square root of
the divergence) in base 2, in [0, 1], as NannyML and scipy report it. Wasserstein is over the
bins' representative values (the reference's mean in each bin), divided by the reference's
standard deviation, so that 1 means "moved by one reference sigma".
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-4


def proportions(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("no events to compare")
    return counts / total


def _floored(reference, current) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(proportions(reference), EPSILON), np.maximum(proportions(current), EPSILON)


def psi(reference, current) -> float:
    """Population stability index: sum (c - r) ln(c / r). Bands: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major."""
    r, c = _floored(reference, current)
    return float(np.sum((c - r) * np.log(c / r)))


def kl(reference, current) -> float:
    """Kullback-Leibler divergence of the window from the reference, KL(current || reference), nats."""
    r, c = _floored(reference, current)
    return float(np.sum(c * np.log(c / r)))


def jensen_shannon(reference, current) -> float:
    """Jensen-Shannon distance, base 2: 0 identical, 1 disjoint."""
    r, c = proportions(reference), proportions(current)
    m = (r + c) / 2

    def divergence(p):
        nonzero = p > 0
        return np.sum(p[nonzero] * np.log2(p[nonzero] / m[nonzero]))

    return float(np.sqrt(max((divergence(r) + divergence(c)) / 2, 0.0)))


def wasserstein(reference, current, values, reference_std: float) -> float:
    """Earth mover's distance between the two histograms placed at `values` (ascending), over the
    reference's standard deviation."""
    if reference_std <= 0:
        return 0.0
    r, c = proportions(reference), proportions(current)
    values = np.asarray(values, dtype=np.float64)
    # W1 on a line: the integral of |CDF difference|, piecewise constant between the values.
    return float(np.sum(np.abs(np.cumsum(r - c)[:-1]) * np.diff(values)) / reference_std)


STATISTICS = {"psi": psi, "js": jensen_shannon, "kl": kl}
