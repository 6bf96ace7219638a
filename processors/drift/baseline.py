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


# The features a set of texts gives (aggregators/text_lengths.py): what the SDK counts on the
# text it sees, so both sides are measured alike.
TEXT_FEATURES = ("prompt_chars", "response_chars")


def text_profiles(pairs: list[tuple[str, str]], window_seconds: int, window_events: int, bins: int = 10,
                  min_events: int = 100, source: str = "", built_at_ms: int = 0) -> dict[str, FeatureProfile]:
    """Profiles of prompt and response length of (prompt, response) pairs, e.g. a fine-tuning set.
    A set has no time: its thresholds are calibrated on consecutive chunks of `window_events`
    pairs, standing in for panes of `window_seconds` (a pane smaller than that gets a higher
    threshold: profile.Threshold.for_events). ValueError if there are too few for 3 chunks."""
    lengths = np.array([(len(prompt), len(response)) for prompt, response in pairs], dtype=np.float64).T
    chunks = np.arange(lengths.shape[1]) // window_events
    profiles = {}
    for feature, values in zip(TEXT_FEATURES, lengths):
        profile = FeatureProfile.numeric(feature, values, bins, source=source, built_at_ms=built_at_ms)
        windows = [values[chunks == c] for c in range(chunks[-1] + 1)]
        profiles[feature] = profile.calibrated(windows, window_seconds, min_events=min(min_events, window_events))
    return profiles
