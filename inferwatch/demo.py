"""`inferwatch demo`: the whole pipeline on the local stack, in about a minute and a half.

Starts Kafka and Redis, a worker process, then publishes modelled traffic with event time
compressed (default 10x: ten 1-minute windows in a minute of wall time); half-way through, one
model's latency regresses, and from 60 % on another model's prompts get twice as long. Drift
is measured against provisional reference profiles the worker learns from each model's first
DEMO_REFERENCE_PANES panes (the run is ten minutes of event time; the default,
drift_reference_panes, is 10). Live window numbers are printed from Redis while it runs; at the
end the drift scores, the alerts and an analyst query over ClickHouse are printed and everything
is stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import redis

from inferwatch.deploy import local_stack
from inferwatch.polling import wait_for
from inferwatch.processes import read_process, stop_process
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.processors.worker import WORKER_PROCESS
from inferwatch.producers.scenarios import Change
from inferwatch.producers.simulate import SimulationProgress, simulate
from inferwatch.query import QueryError, run_query
from inferwatch.settings import Settings
from inferwatch.sinks.redis.live_state import DRIFT_DETECTIONS, read_alerts, read_windows
from inferwatch.tables import format_result, format_windows

REGRESSED_MODEL = "llama-3.1-8b-chat-ft"
REGRESSION_FACTOR = 4.0
DRIFTED_MODEL = "mistral-7b-support-ft"
DRIFT_FACTOR = 2.0  # 4x longer prompts lift that model's p99 over the latency rule too (prefill time)
DRIFT_AT = 0.6
DEMO_REFERENCE_PANES = 5
WAIT_TIMEOUT_S = 120
POLL_S = 0.5

ANALYST_QUERY = """
SELECT toStartOfMinute(ts) AS minute, model, count() AS requests,
       round(quantile(0.50)(latency_ms)) AS p50_ms,
       round(quantile(0.95)(latency_ms)) AS p95_ms,
       round(quantile(0.99)(latency_ms)) AS p99_ms,
       round(100 * countIf(status != 'OK') / count(), 2) AS error_rate_pct
FROM inference_events
WHERE attributes['simulation_run'] = '{run_id}'
GROUP BY minute, model
ORDER BY model, minute
"""


def _start_worker(settings: Settings) -> subprocess.Popen:
    log_path = settings.state_dir / "logs" / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "inferwatch.cli", "--state-dir", str(settings.state_dir), "worker"],
        stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "INFERWATCH_DRIFT_REFERENCE_PANES": str(DEMO_REFERENCE_PANES)},
    )
    print(f"worker: pid {worker.pid}, log {log_path}")

    def ready():
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode}; see {log_path}")
        if read_process(settings, WORKER_PROCESS) is None:
            return False
        try:
            return run_query(settings, "SELECT 1")
        except (OSError, QueryError):
            return False

    wait_for("the worker's web server", ready, WAIT_TIMEOUT_S, POLL_S)
    return worker


def run_demo(settings: Settings, rate: float, duration_s: float, time_scale: float) -> int:
    started = time.monotonic()
    local_stack.up(settings, progress=print)
    worker = _start_worker(settings)
    try:
        return _drive(settings, rate, duration_s, time_scale)
    finally:
        stop_process(settings, WORKER_PROCESS, progress=print)
        worker.wait(timeout=60)
        local_stack.down(settings, progress=print)
        print(f"demo finished in {time.monotonic() - started:.0f}s")


def _tenant_costs(windows: list[dict]) -> tuple[list[str], list[list]]:
    """Requests, tokens and cost per (tenant, model), summed over windows and their partition parts."""
    totals: dict[tuple[str, str], list] = {}
    for w in windows:
        total = totals.setdefault((w["tenant_id"], w.get("model", "")), [0, 0, 0.0])
        total[0] += int(w["events"])
        total[1] += int(w["input_tokens"]) + int(w["output_tokens"])
        total[2] += float(w["cost_usd"])
    rows = [[tenant, model, *total] for (tenant, model), total in sorted(totals.items())]
    return ["tenant_id", "model", "requests", "tokens", "cost_usd"], rows


def _drive(settings: Settings, rate: float, duration_s: float, time_scale: float) -> int:
    window_ms = settings.window_seconds * 1000
    span_ms = duration_s * time_scale * 1000
    # Start on a window boundary so the run fills whole windows and the last one closes promptly.
    start_ms = int((time.time() * 1000 - span_ms) // window_ms * window_ms)
    client = redis.Redis.from_url(settings.resolved_redis_url)
    model_keyset = parse_keysets(settings.window_keys)[0].name  # the series alerts watch

    def run_panes() -> list[dict]:
        """This run's 1-minute windows per model (the hopping and hourly ones outlast the demo)."""
        return [w for w in read_windows(client, limit=1000) if int(w["window_start_ms"]) >= start_ms
                and w["window_seconds"] == str(settings.window_seconds) and w["hop_seconds"] == "0"
                and w["keyset"] == model_keyset]
    print(f"\ntraffic: {rate:.0f} events/s for {duration_s:.0f}s, event time x{time_scale:g}; "
          f"{REGRESSED_MODEL} latency x{REGRESSION_FACTOR:g} from half-way; {DRIFTED_MODEL} prompts "
          f"x{DRIFT_FACTOR:g} longer from {DRIFT_AT:.0%}; drift references learned from each model's first "
          f"{DEMO_REFERENCE_PANES} minutes\n")

    def show_live(progress: SimulationProgress) -> None:
        if int(progress.elapsed_s) % 10:
            return
        windows = run_panes()
        latest = max((int(w["window_start_ms"]) for w in windows), default=None)
        print(f"--- {progress.elapsed_s:.0f}s: {progress.events:,} events sent; latest windows (Redis) ---")
        print(format_windows([w for w in windows if int(w["window_start_ms"]) == latest]))

    run_id = uuid.uuid4().hex[:12]
    changes = [Change("latency-regression", REGRESSED_MODEL, REGRESSION_FACTOR, 0.5),
               Change("prompt-drift", DRIFTED_MODEL, DRIFT_FACTOR, DRIFT_AT)]
    publisher = simulate(settings, rate, duration_s, time_scale, changes, on_progress=show_live, start_ms=start_ms,
                         run_id=run_id)
    sent = publisher.stats.events_sent
    print(f"\nsent {sent:,} events in {publisher.stats.messages_sent:,} batch messages; waiting for the pipeline")

    count_sql = f"SELECT count() FROM inference_events WHERE attributes['simulation_run'] = '{run_id}'"
    # Every event is in ClickHouse, so every window of the run exists in Redis: wait for all to close.
    wait_for(f"{sent:,} rows in ClickHouse", lambda: run_query(settings, count_sql)[1][0][0] >= sent,
             WAIT_TIMEOUT_S, POLL_S)

    def all_closed():
        windows = run_panes()
        return windows and all(w["state"] == "closed" for w in windows)

    wait_for("the last windows to close", all_closed, WAIT_TIMEOUT_S, POLL_S)
    print("\n=== closed windows (Redis) ===")
    print(format_windows(run_panes()))

    tenant_panes = [w for w in read_windows(client, limit=5000) if int(w["window_start_ms"]) >= start_ms
                    and w["window_seconds"] == str(settings.window_seconds) and w["hop_seconds"] == "0"
                    and w["state"] == "closed" and "tenant_id" in w and "events" in w]
    if tenant_panes:
        print("\n=== cost per tenant and model over the run (Redis: tenant windows, per-partition parts added up) ===")
        print(format_result(*_tenant_costs(tenant_panes), "table"))

    print("\n=== drift of each model's panes against its learned reference: JS distance, * = alarm (Redis) ===")
    print(format_result(*_drift_table(run_panes()), "table"))

    print("\n=== changes ADWIN found, request by request (Redis stream iw:drift:detections) ===")
    print(format_result(*_adwin_table(client, start_ms), "table"))

    alerts = [a for a in read_alerts(client) if int(a["window_start_ms"]) >= start_ms]
    print("\n=== alerts (Redis stream iw:alerts) ===")
    for alert in reversed(alerts):
        print(f"  {alert['message']}")
    if not alerts:
        print("  (none)")

    print("\n=== analyst query: latency percentiles and error rate per model per minute (ClickHouse) ===")
    columns, rows = run_query(settings, ANALYST_QUERY.format(run_id=run_id))
    print(format_result(columns, rows, "table"))

    latency_alerted = {a["model"] for a in alerts if a["rule"] == "p99_latency"}
    prompt_drift_alerted = {a["model"] for a in alerts if a["rule"] == "drift" and "input_tokens" in a["message"]}
    if latency_alerted != {REGRESSED_MODEL}:
        print(f"\nunexpected: p99 alerts fired for {sorted(latency_alerted) or 'no model'}, expected {REGRESSED_MODEL} only")
        return 1
    if DRIFTED_MODEL not in prompt_drift_alerted:
        print(f"\nunexpected: no prompt-length drift alert for {DRIFTED_MODEL}")
        return 1
    print(f"\nas expected: the p99 alert fired for {REGRESSED_MODEL} only, and prompt-length drift was "
          f"alerted for {DRIFTED_MODEL}")
    return 0


def _adwin_table(client: redis.Redis, start_ms: int) -> tuple[list[str], list[list]]:
    rows = []
    for _, fields in client.xrange(DRIFT_DETECTIONS, count=10_000):
        d = {k.decode(): v.decode() for k, v in fields.items()}
        if int(d["window_start"]) >= start_ms:
            at = time.strftime("%H:%M:%S", time.gmtime(int(d["window_start"]) / 1000))
            rows.append([at, d["model"], d["feature"], f"{float(d['reference']):,.3f}", int(d["reference_events"]),
                         f"{float(d['value']):,.3f}", int(d["events"])])
    return ["at (event time)", "model", "feature", "mean before", "requests", "mean after", "requests"], sorted(rows)


def _drift_table(panes: list[dict]) -> tuple[list[str], list[list]]:
    """Per closed model pane: the JS distance of each feature to the reference, '*' when in alarm."""
    features = ("input_tokens", "output_tokens", "latency_ms", "topic")
    rows = []
    for pane in sorted(panes, key=lambda w: (w["model"], int(w["window_start_ms"]))):
        minute = time.strftime("%H:%M", time.gmtime(int(pane["window_start_ms"]) / 1000))
        scores = [f"{float(pane[f'drift:{f}:js']):.3f}{'*' if f'drift_alarm:{f}:js' in pane else ''}"
                  if f"drift:{f}:js" in pane else "learning" for f in features]
        rows.append([minute, pane["model"], *scores])
    return ["window", "model", *features], rows
