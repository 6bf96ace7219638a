"""Feedback windows: per-partition parts that add up to an exact computation over the feedback."""

import pytest

from exact import exact_feedback_windows, make_feedback
from inferwatch.processors.windows.feedback import FeedbackWindows

T0 = 1_700_000_040_000  # a window boundary


def test_partitioned_feedback_windows_add_up_to_the_exact_counts():
    records = make_feedback(3000, T0, 4 * 60_000)
    windows = FeedbackWindows(60, allowed_lateness_seconds=1, partition_idle_seconds=5, partitions=(0, 1))
    closed = []
    for i in range(0, len(records), 100):  # keyed by request_id: any record, any partition
        batch = records[i:i + 100]
        windows.add(batch[::2], 0, wall_ms=i)
        windows.add(batch[1::2], 1, wall_ms=i)
        closed += windows.close_due(wall_ms=i)
    closed += windows.close_due(wall_ms=10 * 60_000)  # the stream went quiet: everything closes
    assert windows.open == {}
    totals = {}
    for w in closed:
        snap = w.snapshot()
        total = totals.setdefault((snap["service"], snap["model"], snap["window_start_ms"]), {
            "feedback": 0, "thumbs_up": 0, "thumbs_down": 0, "rating_sum": 0.0, "ratings": 0, "hallucinations": 0,
            "judged": 0, "faithfulness_sum": 0.0, "faithfulness_count": 0, "parts": set()})
        for name in ("feedback", "thumbs_up", "thumbs_down", "rating_sum", "ratings", "hallucinations", "judged"):
            total[name] += snap[name]
        total["faithfulness_sum"] += snap["eval_sums"].get("faithfulness", 0.0)
        total["faithfulness_count"] += snap["eval_counts"].get("faithfulness", 0)
        total["parts"].add(snap["source_partition"])
        thumbs = snap["thumbs_up"] + snap["thumbs_down"]
        assert snap["positive_ratio"] == (snap["thumbs_up"] / thumbs if thumbs else None)
    expected = exact_feedback_windows(records)
    assert totals.keys() == expected.keys()
    for key, exp in expected.items():
        got = totals[key]
        assert (got["feedback"], got["thumbs_up"], got["thumbs_down"]) == (exp["feedback"], exp["thumbs_up"], exp["thumbs_down"])
        assert (got["hallucinations"], got["judged"], got["ratings"]) == (exp["hallucinations"], exp["judged"], len(exp["ratings"]))
        assert got["rating_sum"] == pytest.approx(sum(exp["ratings"]))
        assert got["faithfulness_count"] == len(exp["faithfulness"])
        assert got["faithfulness_sum"] == pytest.approx(sum(exp["faithfulness"]))
    assert any(len(t["parts"]) == 2 for t in totals.values())


def test_feedback_for_a_closed_window_is_late_and_counted():
    records = make_feedback(200, T0, 2 * 60_000)
    windows = FeedbackWindows(60, allowed_lateness_seconds=0, partition_idle_seconds=60)
    windows.add([r for r in records if r["ts"] >= T0 + 60_000], 0, wall_ms=0)
    assert windows.close_due(wall_ms=0) == []  # the first minute had nothing yet
    late, closed_by = windows.add([r for r in records if r["ts"] < T0 + 60_000], 0, wall_ms=1)
    assert late == sum(r["ts"] < T0 + 60_000 for r in records) and closed_by == 0
