"""Plain-text tables for the terminal, and the csv/json forms of query results."""

from __future__ import annotations

import csv
import io
import json
import time


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


WINDOW_COLUMNS = ("window", "state", "service", "model", "model_version", "events", "errors", "timeouts",
                  "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "cost_usd")


def format_windows(windows: list[dict]) -> str:
    """Live windows as read from Redis (values are strings)."""
    rows = []
    for w in sorted(windows, key=lambda w: (w["service"], w["model"], w["model_version"], int(w["window_start_ms"]))):
        start = time.strftime("%H:%M:%S", time.gmtime(int(w["window_start_ms"]) / 1000))
        rows.append([start, w["state"], w["service"], w["model"], w["model_version"], int(w["events"]),
                     int(w["errors"]), int(w["timeouts"]), float(w["latency_p50_ms"]),
                     float(w["latency_p95_ms"]), float(w["latency_p99_ms"]), float(w["cost_usd"])])
    return format_table(list(WINDOW_COLUMNS), rows)
