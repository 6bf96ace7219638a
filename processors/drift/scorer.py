"""Scores closed panes against the reference profiles: per model series, per drift feature (the
window sketches that name one: aggregators/quantiles.py) and statistic. Pure logic.

A pane is judged when its (service, model) has a profile (or there is a global one, scope
("", "")) with a threshold calibrated for the pane's size, and it holds at least that
threshold's `min_events`. It is in alarm when the statistic exceeds the threshold in
`persistence` consecutive judged panes of that series (profile.py says why). A (service, model)
with neither learns a provisional profile from its first panes, when given a learner
(learner.py); `take_learned` hands what was learned to be stored.
"""

from __future__ import annotations

from inferwatch.processors.drift.learner import ProfileLearner
from inferwatch.processors.drift.profile import FeatureProfile, sample_size
from inferwatch.processors.windows.aggregate import WindowAggregate

STATISTICS = ("js", "psi")
DETECTOR = "reference_bins"
GLOBAL_SCOPE = ("", "")

# A closed pane's snapshot carries its scores and alarms as maps "<feature>:<statistic>" -> value
# (Redis hash fields "drift:<feature>:<statistic>", "drift_alarm:<feature>:<statistic>").
REDIS_MAP_FIELDS = {"drift": "drift:{}", "drift_alarms": "drift_alarm:{}"}

Profiles = dict[tuple[str, str], dict[str, FeatureProfile]]  # (service, model) -> feature -> profile


class DriftScorer:
    def __init__(self, keyset: str, persistence: int = 2, learner: ProfileLearner | None = None,
                 group_keysets: tuple[str, ...] = ()):
        self.keyset = keyset  # the model series' key set: service and model among its fields
        # Key sets of groups within a model (service and model among their fields, e.g. a
        # language attribute): their panes are judged against their model's profile too.
        self.keysets = {keyset, *group_keysets}
        self.persistence = persistence
        self.learner = learner
        self.profiles: Profiles = {}
        self._learned: Profiles = {}  # learned here: kept for scopes the stored profiles lack
        self._to_store: Profiles = {}  # learned, not yet handed over to be stored
        self._runs: dict[tuple, int] = {}  # (series, feature, statistic) -> consecutive panes over

    def set_profiles(self, profiles: Profiles) -> None:
        """The stored profiles; those learned here and not yet stored are kept."""
        self.profiles = {**profiles, **{scope: p for scope, p in self._learned.items() if scope not in profiles}}

    def take_learned(self) -> Profiles:
        learned, self._to_store = self._to_store, {}
        return learned

    def pane_key(self, pane: WindowAggregate) -> tuple | None:
        """What `pane_fields` files a pane's scores under; None for panes it never scores."""
        if pane.series.keyset not in self.keysets or pane.source_partition is not None:
            return None
        return pane.series.keyset, pane.series.label, pane.window_start_ms

    @staticmethod
    def pane_fields(rows: list[dict]) -> dict[tuple, dict]:
        """`score`'s rows as the snapshot fields of their panes (REDIS_MAP_FIELDS), by pane_key."""
        fields: dict[tuple, dict] = {}
        for row in rows:
            pane = fields.setdefault((row["keyset"], row["series"], row["window_start"]),
                                     {"drift": {}, "drift_alarms": {}})
            name = f"{row['feature']}:{row['statistic']}"
            pane["drift"][name] = row["value"]
            if row["drifted"]:
                pane["drift_alarms"][name] = row["threshold"]
        return fields

    def score(self, panes: list[WindowAggregate], now_ms: int) -> list[dict]:
        """One row per (pane, feature, statistic) judged: a drift_metrics row, `drifted` its alarm."""
        rows = []
        for pane in sorted(panes, key=lambda p: p.window_start_ms):
            if self.pane_key(pane) is None:
                continue
            labels = pane.series.as_dict()
            scope = (labels["service"], labels["model"])
            features = self.profiles.get(scope) or self.profiles.get(GLOBAL_SCOPE)
            if features is None:
                if pane.series.keyset == self.keyset:  # a model's reference: from its model panes only
                    self._learn(scope, pane)
                continue
            if any(p.provisional and pane.window_start_ms < p.built_at_ms for p in features.values()):
                continue  # a group's pane of the minutes its model's reference was learned from
            for metric in pane.metrics.values():
                profile = features.get(getattr(metric, "drift_feature", None) or "")
                if profile is None:
                    continue
                events = sample_size(metric.drift_sample)
                for statistic in STATISTICS:
                    threshold = profile.threshold(statistic, pane.window_seconds)
                    if threshold is None or events < threshold.min_events:
                        continue
                    value = profile.statistic(statistic, profile.sample_counts(metric.drift_sample))
                    limit = threshold.for_events(events)
                    key = (pane.series, profile.feature, statistic)
                    self._runs[key] = self._runs.get(key, 0) + 1 if value > limit else 0
                    rows.append({
                        "ts": now_ms, "window_start": pane.window_start_ms, "window_seconds": pane.window_seconds,
                        "service": labels["service"], "model": labels["model"],
                        "model_version": labels.get("model_version", ""), "keyset": pane.series.keyset,
                        "series": pane.series.label,
                        "feature": profile.feature, "detector": DETECTOR, "statistic": statistic,
                        "value": value, "threshold": limit, "reference": float("nan"),
                        "events": events, "reference_events": 0,
                        "drifted": self._runs[key] >= self.persistence,
                        "alarm_started": self._runs[key] == self.persistence,  # a detection (detections.py)
                    })
        return rows

    def _learn(self, scope: tuple[str, str], pane: WindowAggregate) -> None:
        if self.learner is None:
            return
        samples = {m.drift_feature: m.drift_sample for m in pane.metrics.values() if getattr(m, "drift_feature", None)}
        learned = self.learner.observe(scope, pane.window_seconds, pane.window_start_ms, samples)
        if learned is not None:
            self.profiles[scope] = self._learned[scope] = self._to_store[scope] = learned
