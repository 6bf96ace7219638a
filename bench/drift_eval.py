"""How well drift is detected on the real stack: false alarms on stationary traffic, and the delay
and misses of injected shifts, next to river's ADWIN run directly on the same series.

Traffic: the Azure conversation trace shipped in producers/data (one hour, 19,366 requests: their
arrival times and token counts; latency, TTFT, status, topic and cost from the serving model of
producers/traffic_model.py, so *modelled*), replayed as several model series at once, each a copy
served with its own seed: `--stationary` copies unchanged, and `--seeds` copies of each shift
kind, the shift injected from a minute drawn in [25, 45) of the hour:

  input_length    input tokens + 1 σ (of the trace's input tokens)
  output_length   output tokens + 1 σ
  latency         latency and TTFT x 1.5 (a slower serving stack)
  topic_mix       a quarter of the requests move to the 'technical' topic
  error_rate      errors from 0.5 % to 5 % of requests

A stack of its own is started (Kafka, Redis, a worker with embedded ClickHouse, defaults but for
the timing below). The events are produced in event-time order, as batch messages of one series
and ten seconds of event time each, all at once (the hour's event time is in the past). The
worker learns each series' provisional reference from its first `drift_reference_panes` (10)
one-minute panes and judges the rest; ADWIN watches every request. When every series' last
judged pane is in `drift_metrics`, we read:

- false alarms: windowed alarms (a series entering alarm on any feature: what the drift alert
  rule pages on) and ADWIN changes, over the stationary series and the other series before
  their shift, per series per day of stream;
- each shift's delay: requests of that series from the shift's start to its first detection on
  the shifted feature (windowed: the end of the first pane in alarm; ADWIN: the request it
  fired at), by the worker, and by river's ADWIN run in this process over the same values; a
  shift not detected within 5,000 requests is a miss.

Prints a table and, last, one JSON line with the headline figures and the baseline.
Usage: python bench/drift_eval.py [--seeds 3] [--stationary 3] [--reference-panes 10] [--persistence 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
from confluent_kafka import Producer
from river.drift import ADWIN

from inferwatch.deploy import local_stack
from inferwatch.polling import wait_for
from inferwatch.processes import read_process, stop_process
from inferwatch.processors.drift.statistics import jensen_shannon
from inferwatch.processors.worker import WORKER_PROCESS
from inferwatch.producers.replay import AZURE_TRACE, load_trace
from inferwatch.producers.traffic_model import FLEET, TOPIC_MIX, TOPICS, TrafficArrays, TrafficModel
from inferwatch.query import QueryError, query_worker
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from pipeline_throughput import start_stack

SERVICE = "drift-eval"
WINDOW_S = 60
SLICE_MS = 10_000  # event time per batch message
MISS_AFTER_EVENTS = 5_000
DAY_S = 86_400
# shift kind -> (the windowed feature it moves, the ADWIN feature, or None when ADWIN watches none)
KINDS = {
    "input_length": ("input_tokens", None),
    "output_length": ("output_tokens", "output_tokens"),
    "latency": ("latency_ms", "latency_ms"),
    "topic_mix": ("topic", None),
    "error_rate": ("finish_reason", "error"),
}
WORKER_SETTINGS = {"window_seconds": WINDOW_S, "allowed_lateness_seconds": 30, "partition_idle_seconds": 2,
                   "live_update_seconds": 0.5, "longer_windows": "[]"}


@dataclass(frozen=True)
class Shift:
    kind: str
    from_ts_ms: int
    input_sigma: float
    output_sigma: float

    def apply(self, model: TrafficModel, t: TrafficArrays) -> None:
        hit = t.ts_ms >= self.from_ts_ms
        if self.kind == "input_length":
            t.input_tokens[hit] += round(self.input_sigma)
        elif self.kind == "output_length":
            t.output_tokens[hit] += round(self.output_sigma)
        elif self.kind == "latency":
            t.latency_factor[hit] *= 1.5
        elif self.kind == "topic_mix":
            moved = hit & (model.rng.random(t.ts_ms.size) < 0.25)
            t.topic[moved] = "technical"
        elif self.kind == "error_rate":
            t.error_rate[hit] = 0.05


@dataclass
class Series:
    model: str
    kind: str  # "stationary" or a shift kind
    shift: Shift | None
    events: list[dict]

    @property
    def label(self) -> str:
        return f"{SERVICE}|{self.model}|{FLEET[0].model_version}"


def build_series(trace, start_ms: int, seeds: int, stationary: int) -> list[Series]:
    ts = start_ms + trace.offset_ms
    sigmas = float(trace.input_tokens.std()), float(trace.output_tokens.std())
    rng = np.random.default_rng(0)
    plans = [("stationary", None)] * stationary + [(k, int(rng.integers(25, 45))) for k in KINDS for _ in range(seeds)]
    series = []
    for index, (kind, minute) in enumerate(plans):
        model = f"eval-{kind.replace('_', '-')}-{index}"
        fleet = (replace(FLEET[0], service=SERVICE, model=model, weight=1.0),)
        shift = None if minute is None else Shift(kind, start_ms + minute * 60_000, *sigmas)
        events = TrafficModel(seed=100 + index, fleet=fleet).events(
            ts, [] if shift is None else [shift], input_tokens=trace.input_tokens, output_tokens=trace.output_tokens)
        series.append(Series(model, kind, shift, events))
    return series


def messages(series: list[Series]) -> list[tuple[bytes, bytes]]:
    """Batch messages of one series and SLICE_MS of event time each (~55 requests), in event-time order."""
    codec = EventCodec(local_schema_ids())
    out = []
    for s in series:
        slices = np.array([e["ts"] for e in s.events]) // SLICE_MS
        bounds = np.flatnonzero(np.r_[True, np.diff(slices) != 0, True])
        for first, end in zip(bounds[:-1], bounds[1:]):
            out.append((int(slices[first]), f"{SERVICE}|{s.model}".encode(), codec.encode_batch(s.events[first:end])))
    return [(key, value) for _, key, value in sorted(out, key=lambda m: m[0])]


def run_worker(settings, series: list[Series]) -> list:
    """Produce every series through a worker of its own (`settings`' drift settings); the
    drift_metrics rows it wrote."""
    drift = {name: getattr(settings, name) for name in ("drift_reference_panes", "drift_persistence")}
    env = {**os.environ, **{f"INFERWATCH_{k.upper()}": str(v) for k, v in {**WORKER_SETTINGS, **drift}.items()}}
    log = (settings.state_dir / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(settings.state_dir),
                               "worker"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for("the worker's process record",
                 lambda: (read_process(settings, WORKER_PROCESS) or {}).get("pid") == worker.pid, 120, 0.05)
        url = read_process(settings, WORKER_PROCESS)["web_url"]

        def sql(query: str) -> list:
            return query_worker(url, query)[1]

        def answers() -> bool:
            try:
                return bool(sql("SELECT 1"))
            except (OSError, QueryError):
                return False

        wait_for("the worker's web server", answers, 120, 0.05)
        producer = Producer(settings.kafka_config(**{"linger.ms": 5, "compression.type": "lz4"}))
        for key, value in messages(series):
            while True:
                try:
                    producer.produce(settings.events_topic, value=value, key=key)
                    break
                except BufferError:
                    producer.poll(0.05)
        assert producer.flush(120) == 0
        # The last pane each series has judged: its minute with >= drift_min_events requests.
        last_judged = {}
        for s in series:
            minutes, counts = np.unique(np.array([e["ts"] for e in s.events]) // 60_000, return_counts=True)
            last_judged[s.model] = int(minutes[counts >= settings.drift_min_events][-1]) * 60_000

        def all_judged() -> bool:
            rows = sql("SELECT model, max(toUnixTimestamp(window_start)) * 1000 FROM drift_metrics "
                       "WHERE detector = 'reference_bins' GROUP BY model")
            done = {model: start for model, start in rows}
            return all(done.get(model, 0) >= start for model, start in last_judged.items())

        wait_for("every series' last judged pane in drift_metrics", all_judged, 600, 0.5)
        # window_start is a DateTime: ADWIN's request time to the second.
        return sql("SELECT model, detector, feature, toUnixTimestamp(window_start) * 1000, drifted "
                   "FROM drift_metrics ORDER BY model, window_start")
    finally:
        stop_process(settings, WORKER_PROCESS)
        worker.wait(60)


def alarm_starts(panes: dict[int, bool]) -> list[int]:
    """Pane starts at which a series enters alarm (in alarm, the pane before not)."""
    starts, before = [], False
    for start in sorted(panes):
        if panes[start] and not before:
            starts.append(start)
        before = panes[start]
    return starts


def adwin_direct(values: np.ndarray) -> list[int]:
    """Indices at which river's ADWIN, run directly, finds a change."""
    detector, found = ADWIN(), []
    for i, value in enumerate(values.tolist()):
        detector.update(value)
        if detector.drift_detected:
            found.append(i)
    return found


def feature_values(events: list[dict], feature: str) -> np.ndarray:
    if feature == "error":
        return np.array([float(e["status"] != "OK") for e in events])
    return np.array([float(e[feature]) for e in events])


def evaluate(series: list[Series], rows: list, first_judged_ms: int, end_ms: int) -> dict:
    """False alarms over stationary stretches, and per shift its delays."""
    panes: dict[str, dict[int, bool]] = {}  # model -> pane start -> any feature in alarm
    windowed: dict[tuple[str, str], list[int]] = {}  # (model, feature) -> pane starts in alarm
    adwin: dict[str, list[tuple[str, int]]] = {}  # model -> (feature, ts ms) of each change
    for model, detector, feature, start, drifted in rows:
        if detector == "adwin":
            adwin.setdefault(model, []).append((feature, start))
        else:
            panes.setdefault(model, {})
            panes[model][start] = panes[model].get(start, False) or bool(drifted)
            if drifted:
                windowed.setdefault((model, feature), []).append(start)
    false_windowed = false_adwin = false_direct = 0
    stationary_ms = 0
    delays = []
    for s in series:
        quiet_until = end_ms if s.shift is None else s.shift.from_ts_ms
        stationary_ms += max(0, quiet_until - first_judged_ms)
        false_windowed += sum(first_judged_ms <= t and t + WINDOW_S * 1000 <= quiet_until
                              for t in alarm_starts(panes.get(s.model, {})))
        false_adwin += sum(first_judged_ms <= t < quiet_until for _, t in adwin.get(s.model, []))
        ts = np.array([e["ts"] for e in s.events])
        for feature in ("latency_ms", "output_tokens", "error"):  # ADWIN run directly, over the same values
            found = adwin_direct(feature_values(s.events, feature))
            false_direct += sum(first_judged_ms <= ts[i] < quiet_until for i in found)
        if s.shift is None:
            continue
        pane_feature, adwin_feature = KINDS[s.kind]
        shift_ms = s.shift.from_ts_ms

        def events_until(t_ms: float) -> int:
            return int(((ts >= shift_ms) & (ts < t_ms)).sum())

        pane_ends = [t + WINDOW_S * 1000 for t in windowed.get((s.model, pane_feature), []) if t >= shift_ms]
        found = {"windowed": events_until(pane_ends[0]) if pane_ends else None}
        if adwin_feature is not None:
            stack = [t for f, t in adwin.get(s.model, []) if f == adwin_feature and t >= shift_ms // 1000 * 1000]
            found["adwin"] = events_until(stack[0] + 1000) if stack else None
            after = [i for i in adwin_direct(feature_values(s.events, adwin_feature)) if ts[i] >= shift_ms]
            found["adwin_direct"] = events_until(ts[after[0]] + 1) if after else None
        # What inferwatch reports first, by either of its detectors.
        ours = [d for d in (found["windowed"], found.get("adwin")) if d is not None]
        found["inferwatch"] = min(ours) if ours else None
        delays.append({"model": s.model, "kind": s.kind, **found})
    days = stationary_ms / 1000 / DAY_S
    return {"delays": delays, "stationary_series_days": days,
            "false_windowed_per_day": false_windowed / days, "false_adwin_per_day": false_adwin / days,
            "false_adwin_direct_per_day": false_direct / days,
            "false_windowed": false_windowed, "false_adwin": false_adwin, "false_adwin_direct": false_direct}


def summary(delays: list, key: str) -> tuple[float | None, float | None, float]:
    """(median, p95, miss rate) of one detector's delays; a miss: none within MISS_AFTER_EVENTS."""
    found = [d[key] for d in delays if d.get(key) is not None and d[key] <= MISS_AFTER_EVENTS]
    judged = [d for d in delays if key in d]
    miss = 1 - len(found) / len(judged) if judged else math.nan
    if not found:
        return None, None, miss
    return float(np.median(found)), float(np.quantile(found, 0.95)), miss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="Series per shift kind.")
    parser.add_argument("--stationary", type=int, default=3, help="Series without a shift.")
    parser.add_argument("--reference-panes", type=int, default=None, help="drift_reference_panes (default: the setting's).")
    parser.add_argument("--persistence", type=int, default=None, help="drift_persistence (default: the setting's).")
    args = parser.parse_args()
    trace = load_trace(AZURE_TRACE)
    start_ms = (int(time.time() * 1000) - 75 * 60_000) // 60_000 * 60_000
    series = build_series(trace, start_ms, args.seeds, args.stationary)
    topic_js = jensen_shannon(np.array(TOPIC_MIX), np.array(TOPIC_MIX) * 0.75 + 0.25 * (np.array(TOPICS) == "technical"))
    settings = start_stack("iw-bench-drift-")
    settings = settings.model_copy(update={k: v for k, v in (("drift_reference_panes", args.reference_panes),
                                                               ("drift_persistence", args.persistence)) if v})
    try:
        local_stack.create_topics(settings, settings.resolved_kafka_bootstrap, progress=lambda line: None)
        started = time.perf_counter()
        rows = run_worker(settings, series)
        elapsed = time.perf_counter() - started
    finally:
        local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))
    first_judged_ms = start_ms + settings.drift_reference_panes * WINDOW_S * 1000
    end_ms = start_ms + int(trace.offset_ms[-1]) // 60_000 * 60_000
    result = evaluate(series, rows, first_judged_ms, end_ms)

    n_events = sum(len(s.events) for s in series)
    print(f"\n{len(series)} series x {len(trace):,} requests of the Azure trace ({n_events:,} events) through one "
          f"worker in {elapsed:.0f} s; references learned from each series' first {settings.drift_reference_panes} "
          f"panes, alarms after {settings.drift_persistence} in a row; topic_mix shift: JS {topic_js:.3f} from the "
          f"reference mix")
    print(f"\nfalse alarms over {result['stationary_series_days'] * 24:.1f} series-hours of stationary stream "
          f"(per series per day):")
    print(f"  windowed (alarms entered, any feature)   {result['false_windowed']:>4}   {result['false_windowed_per_day']:8.1f}")
    print(f"  ADWIN in the worker (any feature)        {result['false_adwin']:>4}   {result['false_adwin_per_day']:8.1f}")
    print(f"  baseline: river ADWIN run directly       {result['false_adwin_direct']:>4}   "
          f"{result['false_adwin_direct_per_day']:8.1f}")
    print(f"\ndelay of each shift in requests after it starts (- = none within {MISS_AFTER_EVENTS:,}):")
    print(f"{'series':28} {'shift':14} {'windowed':>9} {'ADWIN':>7} {'first':>7} {'river ADWIN direct':>19}")

    def cell(value) -> str:
        return "-" if value is None or value > MISS_AFTER_EVENTS else f"{value:,}"

    for d in result["delays"]:
        print(f"{d['model']:28} {d['kind']:14} {cell(d['windowed']):>9} {cell(d.get('adwin', 'n/a')) if 'adwin' in d else 'n/a':>7} "
              f"{cell(d['inferwatch']):>7} {cell(d['adwin_direct']) if 'adwin_direct' in d else 'n/a':>19}")
    median, p95, miss = summary(result["delays"], "inferwatch")
    direct_median, direct_p95, direct_miss = summary(result["delays"], "adwin_direct")
    windowed_median, windowed_p95, windowed_miss = summary(result["delays"], "windowed")
    print(f"\n{'detector':34} {'median':>8} {'p95':>8} {'missed':>7}")
    for name, (m, p, x) in (("inferwatch (first of both)", (median, p95, miss)),
                            ("windowed alone", (windowed_median, windowed_p95, windowed_miss)),
                            ("baseline: river ADWIN direct", (direct_median, direct_p95, direct_miss))):
        print(f"{name:34} {'-' if m is None else f'{m:,.0f}':>8} {'-' if p is None else f'{p:,.0f}':>8} {x:>7.0%}")
    print(json.dumps({
        "bench": "drift_eval", "series": len(series), "events": n_events,
        "reference_panes": settings.drift_reference_panes, "persistence": settings.drift_persistence,
        "false_alarms_per_series_per_day": round(result["false_windowed_per_day"], 2),
        "adwin_false_detections_per_series_per_day": round(result["false_adwin_per_day"], 2),
        "delay_median_events": median, "delay_p95_events": p95 and round(p95), "miss_rate": round(miss, 3),
        "windowed_delay_median_events": windowed_median,
        "adwin_direct_delay_median_events": direct_median,
        "adwin_direct_false_detections_per_series_per_day": round(result["false_adwin_direct_per_day"], 2),
        "targets": {"false_alarms_per_series_per_day": 1, "delay_median_events": 200, "delay_p95_events": 1000,
                    "miss_rate": 0.05},
    }))


if __name__ == "__main__":
    main()
