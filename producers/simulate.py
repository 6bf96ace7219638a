"""`inferwatch simulate`: drive modelled traffic (see traffic_model) into the events topic."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.scenarios import Change
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.settings import Settings

TICK_SECONDS = 0.05


@dataclass
class SimulationProgress:
    elapsed_s: float
    events: int
    event_time_ms: int


def simulate(
    settings: Settings,
    rate: float,
    duration_s: float,
    time_scale: float = 1.0,
    changes: Sequence[Change] = (),
    seed: int | None = None,
    on_progress: Callable[[SimulationProgress], None] | None = None,
    start_ms: int | None = None,
    run_id: str = "",
) -> EventPublisher:
    """Publish ~rate events per wall second for duration_s seconds.

    Event time runs `time_scale` times faster than the wall clock from `start_ms` (default: now
    minus the simulated span, so the compressed run ends at about the present). The named
    `scenario` (producers/scenarios.py) hits `scenario_model` from the fraction `scenario_at` of
    the simulated span on. With a `run_id`, every event carries it as attribute
    `simulation_run`, so a run's events can be told from earlier ones in the same time range.
    """
    if rate <= 0 or duration_s <= 0 or time_scale <= 0:
        raise ValueError("rate, duration and time scale must be positive")
    span_ms = duration_s * time_scale * 1000
    if start_ms is None:
        start_ms = int(time.time() * 1000 - span_ms)
    scenarios = [change.starting(start_ms, span_ms) for change in changes]
    model = TrafficModel(seed)
    publisher = EventPublisher(settings)
    started = time.monotonic()
    next_report = 1.0
    elapsed = 0.0
    while elapsed < duration_s:
        tick_start = elapsed
        time.sleep(TICK_SECONDS)  # pacing the generator against the wall clock, not synchronisation
        elapsed = min(time.monotonic() - started, duration_s)
        n = model.rng.poisson(rate * (elapsed - tick_start))
        ts = np.sort(start_ms + model.rng.uniform(tick_start, elapsed, n) * time_scale * 1000).astype(np.int64)
        for event in model.events(ts, scenarios):
            if run_id:
                event["attributes"] = {"simulation_run": run_id}
            publisher.publish(event)
        publisher.poll()
        if on_progress and elapsed >= next_report:
            next_report += 1.0
            on_progress(SimulationProgress(elapsed, publisher.stats.events_sent, int(start_ms + elapsed * time_scale * 1000)))
    undelivered = publisher.flush()
    if undelivered or publisher.stats.events_failed:
        raise RuntimeError(
            f"{publisher.stats.events_failed} events failed and {undelivered} messages are "
            f"undelivered: {publisher.stats.last_error}"
        )
    return publisher
