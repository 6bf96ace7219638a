"""A reference profile: what one feature looked like when the model was known to be good, and how
much windows of it vary on their own. Pure logic.

Numeric features are binned on the reference's quantiles (`bins`, default 10: each bin holds
about a tenth of the reference; discrete features with ties get fewer bins), each edge moved up
to the end of the sketch bucket it falls in (LatencySketch.upper_bound, at most 1 % up), so that
a window's counts come exactly from its pane sketches, which merge across panes, restarts and
workers; a value equal to an edge is in the bin below it. Categorical features are binned by
their most frequent categories plus an "other" bin. Windows are compared to the reference proportions
with the statistics of statistics.py.

Thresholds are calibrated, not the textbook bands: real traffic is not i.i.d. (on the Azure
conversation trace, consecutive 5-minute windows of input tokens reach PSI 0.3 against their own
hour), so a threshold is the mean plus `sigmas` standard deviations of the statistic over the
reference's own windows of the size that will be judged (NannyML's rule over reference chunks).
Each reference window is compared with the rest of the reference, not with the whole of it: a
window is part of the whole, which pulls the whole towards it (by a factor (k + 1) / (k - 1) in
expected divergence for k windows, 5/3 for four), and thresholds from a short reference would
sit under what an ordinary later window scores.
A window with fewer than `min_events` is not judged: its statistic is mostly sampling noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from inferwatch.processors.drift.statistics import STATISTICS, proportions, wasserstein
from inferwatch.processors.sketches.latency_sketch import DEFAULT_RELATIVE_ACCURACY, LatencySketch

OTHER = "__other__"
PROFILE_VERSION = 1

# What a window holds of a drift feature (its aggregator's `drift_sample`): a sketch of a numeric
# feature, or the counts per category of a categorical one. Both merge exactly.
Sample = LatencySketch | dict[str, int]


def sample_size(sample: Sample) -> int:
    return sample.count if isinstance(sample, LatencySketch) else sum(sample.values())


def merged_samples(samples: list[Sample]) -> Sample:
    if isinstance(samples[0], LatencySketch):
        total = LatencySketch(samples[0].relative_accuracy)
        for sketch in samples:
            total.merge(sketch)
        return total
    counts: dict[str, int] = {}
    for sample in samples:
        for name, n in sample.items():
            counts[name] = counts.get(name, 0) + n
    return counts


@dataclass(frozen=True)
class Threshold:
    statistic: str
    window_seconds: int
    windows: int  # reference windows it was calibrated on
    mean: float
    std: float
    value: float  # mean + sigmas * std
    min_events: int
    events: float = 0.0  # mean events of the windows it was calibrated on (0: not recorded)

    def for_events(self, events: int) -> float:
        """The threshold for a window of `events`: a window smaller than those calibrated on (a
        group within a model) varies more by chance alone, JS as 1/sqrt(n), PSI and KL as 1/n,
        so its threshold is raised by that much; never lowered."""
        if not self.events or events >= self.events:
            return self.value
        ratio = self.events / events
        return self.value * (math.sqrt(ratio) if self.statistic == "js" else ratio)


@dataclass(frozen=True)
class FeatureProfile:
    feature: str
    kind: str  # "numeric" or "categorical"
    proportions: tuple[float, ...]  # per bin
    edges: tuple[float, ...] = ()  # numeric: interior bin edges, ascending (bins = len(edges) + 1)
    values: tuple[float, ...] = ()  # numeric: the reference's mean in each bin (Wasserstein)
    std: float = 0.0  # numeric: the reference's standard deviation
    categories: tuple[str, ...] = ()  # categorical: one bin each, then OTHER
    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY  # numeric: of the sketch buckets the edges end
    thresholds: tuple[Threshold, ...] = field(default=())
    source: str = ""  # what the reference was, for people: a time range, or the panes it was learned from
    provisional: bool = False  # learned from a series' first panes, until a built profile replaces it
    built_at_ms: int = 0  # when it was built or learned: with its scope, the version's name

    @classmethod
    def numeric(cls, feature: str, values: np.ndarray, bins: int = 10,
                relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY, source: str = "",
                built_at_ms: int = 0) -> FeatureProfile:
        values = np.asarray(values, dtype=np.float64)
        if values.size < bins:
            raise ValueError(f"{feature}: {values.size} reference values, need at least {bins}")
        sketch = LatencySketch(relative_accuracy)
        edges = np.unique([sketch.upper_bound(q) for q in np.quantile(values, np.arange(1, bins) / bins)])
        return cls._binned(feature, edges, values, np.ones(values.size), relative_accuracy, source, built_at_ms)

    @classmethod
    def from_sketch(cls, feature: str, sketch: LatencySketch, bins: int = 10, source: str = "") -> FeatureProfile:
        """The profile of the values a sketch holds: its quantiles' buckets are the bin edges
        (the same edges `numeric` gives the values themselves, to the sketch's accuracy), bin
        means and the standard deviation from its buckets' representatives."""
        if sketch.count < bins:
            raise ValueError(f"{feature}: {sketch.count} reference values, need at least {bins}")
        edges = np.unique([sketch.upper_bound(q) for q in sketch.quantiles(tuple(np.arange(1, bins) / bins))])
        values, counts = sketch.histogram()
        return cls._binned(feature, edges, values, counts, sketch.relative_accuracy, source)

    @classmethod
    def _binned(cls, feature: str, edges: np.ndarray, values: np.ndarray, weights: np.ndarray,
                relative_accuracy: float, source: str, built_at_ms: int = 0) -> FeatureProfile:
        index = np.searchsorted(edges, values, side="left")
        counts = np.bincount(index, weights=weights, minlength=edges.size + 1)
        sums = np.bincount(index, weights=weights * values, minlength=edges.size + 1)
        mean = sums.sum() / weights.sum()
        std = float(np.sqrt(np.sum(weights * (values - mean) ** 2) / weights.sum()))
        return cls(feature, "numeric", tuple(proportions(counts)), tuple(edges.tolist()),
                   tuple((sums / np.maximum(counts, 1)).tolist()), std, relative_accuracy=relative_accuracy,
                   source=source, built_at_ms=built_at_ms)

    @classmethod
    def categorical(cls, feature: str, values, max_categories: int = 20, source: str = "",
                    built_at_ms: int = 0) -> FeatureProfile:
        names, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
        profile = cls.from_category_counts(feature, dict(zip(names.tolist(), counts.tolist())), max_categories, source)
        return FeatureProfile(**{**profile.__dict__, "built_at_ms": built_at_ms})

    @classmethod
    def from_category_counts(cls, feature: str, counts: dict[str, int], max_categories: int = 20,
                             source: str = "") -> FeatureProfile:
        """The profile of a reference's events per category: its `max_categories` most frequent
        (ties by name), the rest in OTHER."""
        if not counts:
            raise ValueError(f"{feature}: no reference values")
        top = sorted(sorted(counts, key=lambda name: (-counts[name], name))[:max_categories])
        profile = cls(feature, "categorical", (), categories=tuple(top), source=source)
        return profile.with_proportions(proportions(profile.category_counts(counts)))

    @classmethod
    def from_sample(cls, feature: str, sample: Sample, bins: int = 10, source: str = "") -> FeatureProfile:
        """The profile of what windows hold of a feature: a sketch (numeric) or counts per category."""
        if isinstance(sample, LatencySketch):
            return cls.from_sketch(feature, sample, bins, source)
        return cls.from_category_counts(feature, sample, source=source)

    def with_proportions(self, values) -> FeatureProfile:
        return FeatureProfile(**{**self.__dict__, "proportions": tuple(float(v) for v in values)})

    def counts(self, values) -> np.ndarray:
        """A window's events per bin of this profile."""
        if self.kind == "numeric":
            index = np.searchsorted(np.asarray(self.edges), np.asarray(values, dtype=np.float64), side="left")
            return np.bincount(index, minlength=len(self.edges) + 1)
        position = {name: i for i, name in enumerate(self.categories)}
        other = len(self.categories)
        index = np.fromiter((position.get(v, other) for v in values), dtype=np.int64)
        return np.bincount(index, minlength=other + 1)

    def category_counts(self, counts: dict[str, int]) -> np.ndarray:
        """A window's events per bin, from its counts per category."""
        position = {name: i for i, name in enumerate(self.categories)}
        binned = np.zeros(len(self.categories) + 1, dtype=np.int64)
        for name, n in counts.items():
            binned[position.get(name, len(self.categories))] += n
        return binned

    def sample_counts(self, sample: Sample) -> np.ndarray:
        """A window's events per bin, from what it holds of this feature (exact either way)."""
        if self.kind == "numeric":
            return self.sketch_counts(sample)
        return self.category_counts(sample)

    def sketch_counts(self, sketch: LatencySketch) -> np.ndarray:
        """A window's events per bin, from its sketch of this feature (exact: see the module doc)."""
        if sketch.relative_accuracy != self.relative_accuracy:
            raise ValueError(f"{self.feature}: a sketch of accuracy {sketch.relative_accuracy}, the profile's "
                             f"edges are on buckets of {self.relative_accuracy}")
        return sketch.counts_at_most(self.edges)

    def statistic(self, name: str, counts, reference=None) -> float:
        """One statistic of a window's bin counts against the reference (or other `reference`
        proportions in the same bins): psi, js, kl (statistics.STATISTICS) or, for a numeric
        feature, wasserstein."""
        reference = self.proportions if reference is None else reference
        if name == "wasserstein" and self.kind == "numeric":
            return wasserstein(reference, counts, self.values, self.std)
        return STATISTICS[name](reference, counts)

    def calibrated(self, windows: list, window_seconds: int, statistics=("psi", "js"), sigmas: float = 3.0,
                   min_events: int = 100) -> FeatureProfile:
        """This profile with thresholds from the reference's own windows (their values, each a
        window of `window_seconds`); windows under `min_events` are left out, as they will be."""
        return self.calibrated_on_counts([self.counts(w) for w in windows], window_seconds, statistics, sigmas,
                                         min_events)

    def calibrated_on_counts(self, window_counts: list[np.ndarray], window_seconds: int, statistics=("psi", "js"),
                             sigmas: float = 3.0, min_events: int = 100) -> FeatureProfile:
        """`calibrated`, from each reference window's counts in this profile's bins (all the
        reference's windows: together they are the reference)."""
        total = np.sum(window_counts, axis=0)
        judged = [counts for counts in window_counts if counts.sum() >= min_events]
        if len(judged) < 3:
            raise ValueError(f"{self.feature}: {len(judged)} reference windows of {window_seconds}s with "
                             f">= {min_events} events: too few to calibrate on (need 3)")
        thresholds = []
        for name in statistics:
            values = np.array([self.statistic(name, counts, proportions(total - counts)) for counts in judged])
            thresholds.append(Threshold(name, window_seconds, len(judged), float(values.mean()), float(values.std()),
                                        float(values.mean() + sigmas * values.std()), min_events,
                                        float(np.mean([counts.sum() for counts in judged]))))
        kept = [t for t in self.thresholds if t.window_seconds != window_seconds]
        return FeatureProfile(**{**self.__dict__, "thresholds": tuple(kept + thresholds)})

    def threshold(self, statistic: str, window_seconds: int) -> Threshold | None:
        return next((t for t in self.thresholds
                     if t.statistic == statistic and t.window_seconds == window_seconds), None)

    def to_dict(self) -> dict:
        return {**asdict(self), "version": PROFILE_VERSION}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureProfile:
        if data.get("version") != PROFILE_VERSION:
            raise ValueError(f"profile of {data.get('feature')!r}: version {data.get('version')!r}, "
                             f"this inferwatch reads {PROFILE_VERSION}")
        fields = {k: v for k, v in data.items() if k != "version"}
        return cls(**{**fields, **{k: tuple(fields[k]) for k in ("proportions", "edges", "values", "categories")},
                      "thresholds": tuple(Threshold(**t) for t in fields["thresholds"])})


def split_windows(ts_ms: np.ndarray, values: np.ndarray, window_seconds: int) -> list[np.ndarray]:
    """The values of each tumbling window of `window_seconds` (aligned on the epoch) that holds any."""
    window = np.asarray(ts_ms, dtype=np.int64) // (window_seconds * 1000)
    order = np.argsort(window, kind="stable")
    window, values = window[order], np.asarray(values)[order]
    return np.split(values, np.flatnonzero(np.diff(window)) + 1)
