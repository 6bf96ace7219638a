"""Each query of the analyst's pack against exact computations over the rows inserted (chdb)."""

import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.sinks.clickhouse import query_pack
from inferwatch.sinks.clickhouse.rows import event_columns
from inferwatch.sinks.clickhouse.tables import ClickHouseTables

pytestmark = pytest.mark.integration  # embedded chdb (ClickHouse) engine: not in `make unit`

N = 3000


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    sink = ClickHouseTables(f"chdb://{tmp_path_factory.mktemp('pack')}")
    sink.ensure_schema()
    now_ms = int(time.time() * 1000)
    old = TrafficModel(seed=8).events(np.full(50, now_ms - 3 * 3600_000))  # outside a 1h look-back
    recent = TrafficModel(seed=9).events(np.sort(now_ms - np.random.default_rng(9).integers(60_000, 1800_000, N)))
    for i, event in enumerate(recent):
        event["request_id"] = f"r{i}"
    sink.insert_events(event_columns(old + recent))
    sink.insert_events(event_columns(recent[:500]))  # redelivered: must not count twice
    yield sink, recent
    sink.close()


def run(sink, name, **kwargs):
    result = sink.query(query_pack.query_text(name), query_pack.parameters(**kwargs))
    return [dict(zip(result.column_names, row)) for row in result.rows]


def test_latency_by_model_minute(loaded):
    sink, events = loaded
    groups = defaultdict(list)
    for e in events:
        groups[(e["ts"] // 60_000 * 60_000, e["model"])].append(e)
    rows = run(sink, "latency_by_model_minute", since="1h")
    assert len(rows) == len(groups)
    for row in rows:
        group = groups[(int(row["minute"].timestamp() * 1000), row["model"])]
        latency = np.array([e["latency_ms"] for e in group])
        assert row["requests"] == len(group)
        # ClickHouse's quantileExact: the value at rank floor(q * n) of the sorted values.
        assert row["p95_ms"] == np.sort(latency)[min(int(0.95 * len(latency)), len(latency) - 1)]
        assert row["error_rate"] == pytest.approx(sum(e["status"] != "OK" for e in group) / len(group))


def test_errors_by_type(loaded):
    sink, events = loaded
    failures = Counter((e["model"], e["status"], e["error_type"]) for e in events if e["status"] != "OK")
    per_model = Counter(e["model"] for e in events)
    rows = run(sink, "errors_by_type", since="1h")
    assert {(r["model"], r["status"], r["error_type"]): r["failures"] for r in rows} == failures
    for r in rows:
        assert r["share_of_requests"] == pytest.approx(r["failures"] / per_model[r["model"]])


def test_cost_by_tenant_day_and_tokens_by_model(loaded):
    sink, events = loaded
    cost = defaultdict(float)
    for e in events:
        cost[e["tenant_id"]] += e["cost_usd"] or 0.0
    rows = run(sink, "cost_by_tenant_day", since="1h")
    by_tenant = defaultdict(float)
    for r in rows:
        by_tenant[r["tenant_id"]] += r["total_cost_usd"]
    assert by_tenant.keys() == cost.keys()
    assert all(by_tenant[t] == pytest.approx(cost[t]) for t in cost)
    model = events[0]["model"]
    (tokens,) = run(sink, "tokens_by_model", since="1h", model=model)
    mine = [e for e in events if e["model"] == model]
    assert (tokens["requests"], tokens["total_input_tokens"]) == (len(mine), sum(e["input_tokens"] for e in mine))


def test_slowest_requests_and_look_back(loaded):
    sink, events = loaded
    rows = run(sink, "slowest_requests", since="1h", limit=5)
    expected = sorted(events, key=lambda e: -e["latency_ms"])[:5]
    assert [r["request_id"] for r in rows] == [e["request_id"] for e in expected]
    assert sum(r["requests"] for r in run(sink, "tokens_by_model", since="1h")) == N
    assert sum(r["requests"] for r in run(sink, "tokens_by_model", since="4h")) == N + 50


def test_bad_names_and_durations_are_clear_errors():
    with pytest.raises(ValueError, match="no query named"):
        query_pack.query_text("nope")
    with pytest.raises(ValueError, match="duration"):
        query_pack.parameters(since="yesterday")


def test_model_version_comparison_finds_a_slower_canary(loaded):
    from scipy import stats

    from inferwatch.producers.scenarios import Scenario

    sink, _ = loaded
    model = "llama-3.1-8b-chat-ft"
    canary = Scenario("new-model-version", model, from_ts_ms=0)
    # 5 hours back and renamed: outside the other tests' look-backs and models.
    events = [e for e in TrafficModel(seed=3).events(np.full(4000, int(time.time() * 1000) - 5 * 3600_000), [canary])
              if e["model"] == model]
    for e in events:
        e["model"] = "canary-test-model"
    sink.insert_events(event_columns(events))
    (row,) = run(sink, "model_version_comparison", since="6h", model="canary-test-model")
    by_version = defaultdict(list)
    for e in events:
        by_version[e["model_version"]].append(e["latency_ms"])
    a, b = sorted(by_version, key=lambda v: (-len(by_version[v]), v))
    assert (row["version_a"], row["version_b"]) == (a, b)
    assert (row["requests_a"], row["requests_b"]) == (len(by_version[a]), len(by_version[b]))
    assert row["latency_difference_ms"] == pytest.approx(np.mean(by_version[b]) - np.mean(by_version[a]))
    expected_p = stats.ttest_ind(by_version[a], by_version[b], equal_var=False).pvalue
    assert row["latency_p_value"] == pytest.approx(expected_p, rel=1e-6, abs=1e-12)
    assert row["significant"] == (expected_p < 0.05)


def test_drift_timeline(loaded):
    sink, _ = loaded
    now_ms = int(time.time() * 1000)
    rows = [{"ts": now_ms - i * 60_000, "window_start": (now_ms - i * 60_000) // 60_000 * 60_000,
             "window_seconds": 60, "service": "chat-api", "model": model, "model_version": "v1",
             "keyset": "model", "series": f"chat-api|{model}|v1", "feature": "prompt_chars", "detector": "psi", "statistic": "psi", "value": i / 10,
             "threshold": 0.2, "reference": float("nan"), "events": 500, "reference_events": 0,
             "drifted": i / 10 > 0.2}
            for model in ("drift-a", "drift-b") for i in range(6)]
    rows.append({**rows[0], "ts": now_ms - 3 * 3600_000, "window_start": now_ms - 3 * 3600_000})  # too old
    sink.insert_drift_metrics(rows)
    timeline = run(sink, "drift_timeline", since="1h", model="drift-a")
    expected = sorted(rows[:6], key=lambda r: r["window_start"])
    assert [(int(t["window_start"].timestamp() * 1000), t["value"], t["drifted"]) for t in timeline] == [
        (r["window_start"], r["value"], r["drifted"]) for r in expected]
    assert len(run(sink, "drift_timeline", since="1h")) == 12
