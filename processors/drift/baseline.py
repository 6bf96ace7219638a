"""Reference profiles of each (service, model) from its events over a time range. Pure logic:
`inferwatch baseline build` reads the events from ClickHouse and stores what this returns."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.drift.profile import FeatureProfile, split_windows
from inferwatch.processors.drift.scorer import Profiles

# The event columns profiled: each is the drift feature of a window metric (aggregators/): numeric
# ones of a sketch, categorical ones of counts per category.
NUMERIC = ("input_tokens", "output_tokens", "latency_ms")
CATEGORICAL = ("topic", "finish_reason")
FEATURES = NUMERIC + CATEGORICAL
COLUMNS = ("service", "model", "ts_ms", *FEATURES)


def build_profiles(rows: list, window_seconds: int, bins: int = 10, min_events: int = 100, source: str = "",
                   built_at_ms: int = 0) -> tuple[Profiles, dict[tuple[str, str], str]]:
    """`rows`: (service, model, ts_ms, *FEATURES) tuples. Returns the profiles, calibrated for
    panes of `window_seconds`, and why each (service, model) left out was (too few events or
    windows). A categorical feature that its producers do not send (None), or too rarely to
    calibrate on, is left out of the scope's profile, the scope is not."""
    by_scope: dict[tuple[str, str], list] = {}
    for row in rows:
        by_scope.setdefault((row[0], row[1]), []).append(row[2:])
    profiles, skipped = {}, {}
    for scope, scope_rows in sorted(by_scope.items()):
        numeric = np.array([row[:1 + len(NUMERIC)] for row in scope_rows], dtype=np.float64).T
        ts = numeric[0].astype(np.int64)
        try:
            profiles[scope] = {
                feature: FeatureProfile.numeric(feature, values, bins, source=source, built_at_ms=built_at_ms).calibrated(
                    split_windows(ts, values, window_seconds), window_seconds, min_events=min_events)
                for feature, values in zip(NUMERIC, numeric[1:])}
        except ValueError as exc:
            skipped[scope] = str(exc)
            continue
        for i, feature in enumerate(CATEGORICAL, start=1 + len(NUMERIC)):
            present = [(row[0], row[i]) for row in scope_rows if row[i] is not None]
            if not present:
                continue
            values = np.array([value for _, value in present], dtype=object)
            try:
                profiles[scope][feature] = FeatureProfile.categorical(
                    feature, values, source=source, built_at_ms=built_at_ms).calibrated(
                    split_windows(np.array([t for t, _ in present]), values, window_seconds), window_seconds,
                    min_events=min_events)
            except ValueError:  # too few windows with this feature: the numeric ones go on
                continue
    return profiles, skipped
