import numpy as np
import pytest

from inferwatch.processors.sketches.latency_sketch import LatencySketch

QS = (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


@pytest.mark.parametrize("accuracy", [0.01, 0.02, 0.05])
def test_quantiles_within_relative_bound_of_exact_element(accuracy):
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.lognormal(6, 1.2, 50_000), rng.uniform(0.5, 5, 1_000)])
    sketch = LatencySketch(accuracy)
    for chunk in np.array_split(values, 37):
        sketch.add_many(chunk)
    for q in QS:
        exact = np.quantile(values, q, method="lower")
        assert sketch.quantile(q) == pytest.approx(exact, rel=accuracy), q
    assert sketch.count == values.size
    assert sketch.max == values.max()


def test_merge_equals_single_sketch_over_all_values():
    rng = np.random.default_rng(3)
    parts = [rng.lognormal(5, 1, n) for n in (10, 1000, 5000)]
    merged = LatencySketch()
    for part in parts:
        one = LatencySketch()
        one.add_many(part)
        merged.merge(one)
    whole = LatencySketch()
    whole.add_many(np.concatenate(parts))
    assert merged.buckets == whole.buckets
    assert [merged.quantile(q) for q in QS] == [whole.quantile(q) for q in QS]


def test_zero_latencies_and_empty_sketch():
    sketch = LatencySketch()
    assert np.isnan(sketch.quantile(0.5))
    sketch.add_many(np.array([0.0, 0.0, 0.0, 100.0]))
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(100.0, rel=0.01)


def test_rejects_bad_values():
    sketch = LatencySketch()
    with pytest.raises(ValueError):
        sketch.add_many(np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        sketch.add_many(np.array([-1.0]))
    with pytest.raises(ValueError):
        LatencySketch(0)
    with pytest.raises(ValueError):
        LatencySketch().merge(LatencySketch(0.05))
