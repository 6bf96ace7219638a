"""Plain-text tables for the terminal, and the csv/json forms of query results."""

from __future__ import annotations

import csv
import io
import json
import time

from inferwatch.processors.aggregators import outputs as aggregator_outputs


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        # Cents and rates read best with 2 decimals; per-request costs need 6 to be seen at all.
        return f"{value:,.2f}" if abs(value) >= 0.01 else f"{value:.6f}"
    return str(value)


def format_table(columns: list[str], rows: list[list]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows if row[i] is not None) for i in range(len(columns))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def format_result(columns: list[str], rows: list[list], output_format: str) -> str:
    if output_format == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], default=str, indent=1)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    return format_table(columns, rows)


# The request windows' metrics shown: events, then the outputs the aggregators mark `shown`.
WINDOW_COLUMNS = ("window", "size", "state", "keyset", "series", "events",
                  *(o.name for o in aggregator_outputs() if o.shown))


FEEDBACK_COLUMNS = ("window", "size", "state", "keyset", "series", "feedback", "thumbs_up", "thumbs_down",
                    "positive_ratio", "rating_mean")


def format_windows(windows: list[dict]) -> str:
    """Live windows as read from Redis (values are strings): request windows, then feedback
    windows if any. A series that spans partitions shows one row per partition (`series@p<n>`),
    with no percentiles (processors/windows/keys.py)."""
    def number(w: dict, name: str) -> float | None:
        return float(w[name]) if name in w else None

    def row(w: dict, metrics: tuple[str, ...]) -> list:
        start = time.strftime("%H:%M:%S", time.gmtime(int(w["window_start_ms"]) / 1000))
        size = w["window_seconds"] + "s" + (f"/{w['hop_seconds']}s" if w["hop_seconds"] != "0" else "")
        series = w["series"] + (f"@p{w['source_partition']}" if w["source_partition"] != "-1" else "")
        return [start, size, w["state"], w["keyset"], series, *(number(w, name) for name in metrics)]

    ordered = sorted(windows, key=lambda w: (w["keyset"], w["series"], int(w["window_seconds"]), int(w["hop_seconds"]),
                                             int(w["window_start_ms"]), int(w["source_partition"])))
    requests = [row(w, WINDOW_COLUMNS[5:]) for w in ordered if "events" in w]
    feedback = [row(w, FEEDBACK_COLUMNS[5:]) for w in ordered if "feedback" in w]
    out = format_table(list(WINDOW_COLUMNS), requests)
    return out + ("\n\n" + format_table(list(FEEDBACK_COLUMNS), feedback) if feedback else "")


def format_drift(windows: list[dict]) -> str:
    """The drift scores of the closed model panes read from Redis (fields drift:<feature>:<statistic>,
    drift_alarm:...), newest first; `alarm` marks a score in its series' alarm."""
    rows = []
    for w in windows:
        for field, value in w.items():
            if field.startswith("drift:"):
                name = field[len("drift:"):]
                start = time.strftime("%H:%M:%S", time.gmtime(int(w["window_start_ms"]) / 1000))
                rows.append([start, w["series"], *name.rsplit(":", 1), float(value),
                             "alarm" if f"drift_alarm:{name}" in w else ""])
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]), reverse=True)
    return format_table(["window", "series", "feature", "statistic", "value", "state"], rows)
