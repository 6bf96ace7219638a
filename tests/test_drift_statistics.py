"""Drift statistics and reference profiles against independent computations (numpy and scipy
over the same values and bins), to 1e-9."""

import json

import numpy as np
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from inferwatch.processors.drift.profile import OTHER, FeatureProfile, split_windows
from inferwatch.processors.sketches.latency_sketch import LatencySketch
from inferwatch.processors.drift.statistics import EPSILON, jensen_shannon, kl, psi, wasserstein

counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@hypothesis_settings(max_examples=200, deadline=None)
@given(reference=counts, current=counts)
def test_statistics_equal_their_textbook_formulas(reference, current):
    n = min(len(reference), len(current))
    reference, current = np.array(reference[:n], float), np.array(current[:n], float)
    if reference.sum() == 0 or current.sum() == 0:
        with pytest.raises(ValueError):
            psi(reference, current)
        return
    r, c = reference / reference.sum(), current / current.sum()
    rf, cf = np.maximum(r, EPSILON), np.maximum(c, EPSILON)  # the documented floor for empty bins
    assert psi(reference, current) == pytest.approx(((cf - rf) * np.log(cf / rf)).sum(), abs=1e-9)
    assert kl(reference, current) == pytest.approx((cf * np.log(cf / rf)).sum(), abs=1e-9)
    assert jensen_shannon(reference, current) == pytest.approx(jensenshannon(r, c, base=2), abs=1e-9)


def test_wasserstein_equals_scipy_over_the_bins_values():
    rng = np.random.default_rng(3)
    values = np.sort(rng.uniform(0, 100, 8))
    reference, current = rng.integers(1, 50, 8), rng.integers(0, 50, 8)
    expected = wasserstein_distance(values, values, reference, current) / 7.5
    assert wasserstein(reference, current, values, 7.5) == pytest.approx(expected, abs=1e-9)


def test_numeric_profile_bins_hold_the_reference_quantiles_and_count_like_numpy():
    rng = np.random.default_rng(4)
    reference = rng.lognormal(5, 1, 10_000)
    profile = FeatureProfile.numeric("input_tokens", reference)
    # Deciles moved up to their sketch bucket's end (at most 1 %): each bin still about a tenth.
    assert profile.proportions == pytest.approx([0.1] * 10, abs=0.01)
    window = rng.lognormal(5.5, 1, 777)
    edges = np.asarray(profile.edges)
    # A value equal to an edge is in the bin below it: bins (e[i-1], e[i]].
    expected = [(window <= edges[0]).sum()] + [((window > a) & (window <= b)).sum() for a, b in zip(edges, edges[1:])] \
        + [(window > edges[-1]).sum()]
    assert profile.counts(window).tolist() == expected
    assert profile.statistic("psi", profile.counts(window)) > profile.statistic("psi", profile.counts(reference[:777]))


@hypothesis_settings(max_examples=100, deadline=None)
@given(reference=st.lists(st.integers(0, 100_000), min_size=20, max_size=300),
       window=st.lists(st.integers(0, 100_000) | st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=300),
       split=st.integers(0, 300))
def test_a_windows_counts_from_its_merged_pane_sketches_equal_the_counts_of_its_values(reference, window, split):
    """The windows' sketches are what the worker keeps; the profile's edges end sketch buckets."""
    profile = FeatureProfile.numeric("output_tokens", np.array(reference, float))
    first, second = LatencySketch(), LatencySketch()
    first.add_many(np.array(window[:split], float))
    second.add_many(np.array(window[split:], float))
    first.merge(second)
    assert profile.sketch_counts(first).tolist() == profile.counts(window).tolist()


def test_categorical_profile_keeps_the_most_frequent_categories_and_an_other_bin():
    reference = ["stop"] * 70 + ["length"] * 20 + ["content_filter"] * 9 + ["tool_calls"]
    profile = FeatureProfile.categorical("finish_reason", reference, max_categories=2)
    assert profile.categories == ("length", "stop")
    assert profile.proportions == pytest.approx([0.2, 0.7, 0.1])
    assert profile.counts(["stop", "stop", "refusal", "length"]).tolist() == [1, 2, 1]
    assert OTHER not in profile.categories


def test_thresholds_come_from_the_reference_windows_and_the_profile_survives_json():
    rng = np.random.default_rng(5)
    ts = np.arange(20_000) * 30  # an event every 30 ms: 2,000 a minute, 10 minutes
    values = rng.normal(100, 10, ts.size)
    profile = FeatureProfile.numeric("latency_ms", values)
    windows = split_windows(ts, values, 60)
    calibrated = profile.calibrated(windows, 60, sigmas=3.0, min_events=100)
    # Each window against the rest of the reference (the whole would include it).
    psis = np.array([psi(profile.counts(np.concatenate(windows[:i] + windows[i + 1:])) / (values.size - len(w)),
                         profile.counts(w)) for i, w in enumerate(windows) if len(w) >= 100])
    threshold = calibrated.threshold("psi", 60)
    assert (threshold.windows, threshold.mean, threshold.std) == (psis.size, pytest.approx(psis.mean()),
                                                                  pytest.approx(psis.std()))
    assert threshold.value == pytest.approx(psis.mean() + 3 * psis.std())
    assert FeatureProfile.from_dict(json.loads(json.dumps(calibrated.to_dict()))) == calibrated
    with pytest.raises(ValueError, match="version"):
        FeatureProfile.from_dict({**calibrated.to_dict(), "version": 99})
    with pytest.raises(ValueError, match="too few"):
        profile.calibrated(windows[:2], 60)
