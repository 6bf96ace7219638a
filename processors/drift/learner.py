"""Provisional reference profiles, learned from each model series' first closed panes, so that
drift is watched from the start, before anyone runs `inferwatch baseline build`. Pure logic.

A (service, model) without a profile collects the drift samples (sketches, category counts) of
its first `panes` closed panes that hold at least `min_events` events; their merged samples give
the profile's bins (FeatureProfile.from_sample) and the panes themselves calibrate its thresholds, as a built
profile's reference windows do. Such a profile is marked provisional: the first minutes of a
series are not always its good behaviour, and `inferwatch baseline build` over a range the team
trusts replaces it. The panes collected so far are held in memory: a worker restarted while
learning starts over.
"""

from __future__ import annotations

from datetime import datetime, timezone

from inferwatch.processors.drift.profile import FeatureProfile, Sample, merged_samples, sample_size

Scope = tuple[str, str]  # (service, model)


class ProfileLearner:
    def __init__(self, panes: int, min_events: int, bins: int = 10):
        if panes < 3:
            raise ValueError(f"a profile is calibrated on at least 3 panes, not {panes}")
        self.panes, self.min_events, self.bins = panes, min_events, bins
        self._collected: dict[Scope, list[tuple[int, dict[str, Sample]]]] = {}  # (start ms, samples)

    def observe(self, scope: Scope, window_seconds: int, window_start_ms: int,
                samples: dict[str, Sample]) -> dict[str, FeatureProfile] | None:
        """A closed pane of `scope` (its drift samples by feature); the scope's profiles once
        this pane completes its reference, else None. A feature is profiled if all the reference
        panes hold `min_events` of it (time to first token exists for streamed responses only)."""
        copies = {feature: _copy(sample) for feature, sample in samples.items()
                  if sample_size(sample) >= self.min_events}
        if not copies:
            return None
        collected = self._collected.setdefault(scope, [])
        collected.append((window_start_ms, copies))
        if len(collected) < self.panes:
            return None
        del self._collected[scope]
        return self._profiles(collected, window_seconds)

    def _profiles(self, collected: list, window_seconds: int) -> dict[str, FeatureProfile]:
        first, last = min(start for start, _ in collected), max(start for start, _ in collected)
        source = (f"learned from its first {len(collected)} panes of {window_seconds}s with >= {self.min_events} "
                  f"events, {_iso(first)} to {_iso(last + window_seconds * 1000)}")
        profiles = {}
        for feature in sorted(set.intersection(*(set(samples) for _, samples in collected))):
            profile = FeatureProfile.from_sample(feature, merged_samples([s[feature] for _, s in collected]),
                                                 self.bins, source)
            profiles[feature] = FeatureProfile(**{
                **profile.calibrated_on_counts([profile.sample_counts(s[feature]) for _, s in collected],
                                               window_seconds, min_events=self.min_events).__dict__,
                "provisional": True, "built_at_ms": last + window_seconds * 1000})
        return profiles


def _copy(sample: Sample) -> Sample:
    return merged_samples([sample])  # a new sketch or dict: the pane's may be merged into later


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
