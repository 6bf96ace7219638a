"""How often a drift threshold pages on real, stationary traffic, and how fast it sees a real
shift: textbook bands against thresholds calibrated on the reference's own windows
(processors/drift/profile.py), on the Azure LLM inference trace (conversation, one hour).

Offline, pure computation over the shipped trace (no stack): it evaluates the statistics and
their calibration, not the pipeline. Features: input and output tokens per request.
1. The issue's observation: PSI of consecutive 500-request windows against the whole hour
   (10 reference-quantile bins), in arrival order and shuffled.
2. Reference = the first half hour; judged = the 1-minute and 5-minute windows of the second
   half, stationary: windows over the textbook band (PSI 0.25; JS 0.1) and over the calibrated
   threshold (mean + 3 sigma of the reference's own windows), as false alarms per series per day.
   An alarm needs `persistence` consecutive windows over the threshold (1 and 2 are shown).
3. A +1 sigma shift of the feature (the reference's standard deviation added to every request)
   from a start minute on, for every start minute of the second half: events from the shift's
   start to the end of the first window over the threshold (detection delay), and misses.

Prints a table and, last, one JSON line with the headline figures and the textbook baseline.
Usage: python bench/drift_calibration.py
"""

from __future__ import annotations

import json

import numpy as np

from inferwatch.processors.drift.profile import FeatureProfile, split_windows
from inferwatch.producers.replay import AZURE_TRACE, load_trace

TEXTBOOK = {"psi": 0.25, "js": 0.1}
PERSISTENCE = (1, 2)  # consecutive windows over the threshold before an alarm
DEFAULT = ("js", 60, 2)  # (statistic, window seconds, persistence) of the headline
DAY_S = 86_400


def alarms(over: list[bool], persistence: int) -> list[int]:
    """Indices of the windows in alarm: over the threshold, and the `persistence`-th or a later
    one of consecutive windows over it (each counts: a window in alarm is one a user is paged for)."""
    raised, run = [], 0
    for i, is_over in enumerate(over):
        run = run + 1 if is_over else 0
        if run >= persistence:
            raised.append(i)
    return raised


def windows_over(profile: FeatureProfile, windows: list[np.ndarray], statistic: str, threshold: float,
                 min_events: int, persistence: int = 1) -> tuple[int, int]:
    judged = [w for w in windows if len(w) >= min_events]
    over = [profile.statistic(statistic, profile.counts(w)) > threshold for w in judged]
    return len(alarms(over, persistence)), len(judged)


def first_detection(profile, ts, values, shift_start_ms, window_s, statistic, threshold, min_events, persistence):
    """Events from the shift's start to the end of the window that raises; None: missed."""
    shifted = np.where(ts >= shift_start_ms, values + profile.std, values)
    window = ts // (window_s * 1000)
    judged = [w for w in np.unique(window[ts >= shift_start_ms]) if (window == w).sum() >= min_events]
    over = [profile.statistic(statistic, profile.counts(shifted[window == w])) > threshold for w in judged]
    raised = alarms(over, persistence)
    return int(((ts >= shift_start_ms) & (window <= judged[raised[0]])).sum()) if raised else None


def main() -> None:
    trace = load_trace(AZURE_TRACE)
    ts = trace.offset_ms
    half = ts < ts[-1] // 2
    rows, headline = [], {}
    print(f"Azure conversation trace: {ts.size:,} requests over {ts[-1] / 60_000:.0f} min; reference = "
          f"first half ({half.sum():,}), judged = second half ({(~half).sum():,})\n")

    for feature, values in (("input_tokens", trace.input_tokens), ("output_tokens", trace.output_tokens)):
        whole = FeatureProfile.numeric(feature, values)
        chunks = [values[i:i + 500] for i in range(0, values.size - 499, 500)]
        ordered = [whole.statistic("psi", whole.counts(c)) for c in chunks]
        rng = np.random.default_rng(0)
        shuffled = [whole.statistic("psi", whole.counts(c)) for c in np.array_split(rng.permutation(values), len(chunks))]
        print(f"{feature}: PSI of {len(chunks)} consecutive 500-request windows against the hour: "
              f"{min(ordered):.2f}-{max(ordered):.2f}, {sum(p > 0.25 for p in ordered)} over 0.25; "
              f"shuffled: max {max(shuffled):.3f}")

        for window_s, min_events in ((60, 100), (300, 300)):
            reference = FeatureProfile.numeric(feature, values[half]).calibrated(
                split_windows(ts[half], values[half], window_s), window_s, min_events=min_events)
            judged = split_windows(ts[~half], values[~half], window_s)
            for statistic in ("psi", "js"):
                calibrated = reference.threshold(statistic, window_s)
                text_alarms, n = windows_over(reference, judged, statistic, TEXTBOOK[statistic], min_events)
                starts = [t for t in range(int(ts[~half][0]), int(ts[-1]) - 5 * window_s * 1000, 60_000)]
                for persistence in PERSISTENCE:
                    cal_alarms, _ = windows_over(reference, judged, statistic, calibrated.value, min_events, persistence)
                    delays = [first_detection(reference, ts, values, s, window_s, statistic, calibrated.value,
                                              min_events, persistence) for s in starts]
                    found = [d for d in delays if d is not None]
                    rows.append({"feature": feature, "window_s": window_s, "statistic": statistic,
                                 "textbook": TEXTBOOK[statistic], "calibrated": calibrated.value,
                                 "persistence": persistence, "judged_windows": n,
                                 "textbook_alarms_per_day": text_alarms / n * DAY_S / window_s,
                                 "calibrated_alarms_per_day": cal_alarms / n * DAY_S / window_s,
                                 "shifts": len(delays), "missed": len(delays) - len(found),
                                 "delay_median": float(np.median(found)) if found else None,
                                 "delay_p95": float(np.quantile(found, 0.95)) if found else None})

    print(f"\n{'feature':14} {'window':>6} {'stat':>4} {'textbook':>8} {'calibrated':>10} {'persist':>7} {'windows':>7} "
          f"{'alarms/day textbook':>19} {'calibrated':>10} {'+1σ shift: delay median':>23} {'p95':>6} {'missed':>9}")
    for r in rows:
        delay = f"{r['delay_median']:,.0f}" if r["delay_median"] is not None else "-"
        p95 = f"{r['delay_p95']:,.0f}" if r["delay_p95"] is not None else "-"
        print(f"{r['feature']:14} {r['window_s']:>5}s {r['statistic']:>4} {r['textbook']:>8.2f} {r['calibrated']:>10.3f} "
              f"{r['persistence']:>7} {r['judged_windows']:>7} {r['textbook_alarms_per_day']:>19,.0f} {r['calibrated_alarms_per_day']:>10,.0f} "
              f"{delay:>23} {p95:>6} {r['missed']:>4}/{r['shifts']}")
    # The headline: the configuration that pages least for the delay it costs here (JS on
    # 1-minute windows, two in a row); the baseline: the textbook band on the same windows.
    best = [r for r in rows if (r["statistic"], r["window_s"], r["persistence"]) == DEFAULT]
    judged = sum(r["judged_windows"] for r in best)
    headline = {
        "bench": "drift_calibration", "statistic": DEFAULT[0], "window_s": DEFAULT[1], "persistence": DEFAULT[2],
        "false_alarms_per_series_per_day": max(r["calibrated_alarms_per_day"] for r in best),
        # No alarm in `judged` windows bounds the rate only to below one per that many windows.
        "resolution_alarms_per_day": DAY_S / DEFAULT[1] / (judged / len(best)),
        "delay_median_events": max(r["delay_median"] for r in best),
        "delay_p95_events": max(r["delay_p95"] for r in best),
        "miss_rate": sum(r["missed"] for r in best) / sum(r["shifts"] for r in best),
        "baseline_textbook_false_alarms_per_series_per_day": max(
            r["textbook_alarms_per_day"] for r in rows if (r["statistic"], r["window_s"]) == DEFAULT[:2]),
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
