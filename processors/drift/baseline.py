"""Reference profiles of each (service, model) from its events over a time range. Pure logic:
`inferwatch baseline build` reads the events from ClickHouse and stores what this returns."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.drift.profile import FeatureProfile, split_windows
from inferwatch.processors.drift.scorer import Profiles

# The event columns profiled: each is the drift feature of a window sketch (aggregators/).
FEATURES = ("input_tokens", "output_tokens", "latency_ms")
COLUMNS = ("service", "model", "ts_ms", *FEATURES)


def build_profiles(rows: list, window_seconds: int, bins: int = 10, min_events: int = 100,
                   source: str = "") -> tuple[Profiles, dict[tuple[str, str], str]]:
    """`rows`: (service, model, ts_ms, *FEATURES) tuples. Returns the profiles, calibrated for
    panes of `window_seconds`, and why each (service, model) left out was (too few events or windows)."""
    by_scope: dict[tuple[str, str], list] = {}
    for row in rows:
        by_scope.setdefault((row[0], row[1]), []).append(row[2:])
    profiles, skipped = {}, {}
    for scope, scope_rows in sorted(by_scope.items()):
        columns = np.array(scope_rows, dtype=np.float64).T
        ts = columns[0].astype(np.int64)
        try:
            profiles[scope] = {
                feature: FeatureProfile.numeric(feature, values, bins, source=source).calibrated(
                    split_windows(ts, values, window_seconds), window_seconds, min_events=min_events)
                for feature, values in zip(FEATURES, columns[1:])}
        except ValueError as exc:
            skipped[scope] = str(exc)
    return profiles, skipped
