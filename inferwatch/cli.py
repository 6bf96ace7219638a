"""The `inferwatch` command. Every subcommand reads the same Settings (env vars, config file)."""

from __future__ import annotations

import functools
import importlib.util
import sys
import time
from pathlib import Path

import click

# Module level: only what a plain `pip install inferwatch` (the SDK, no extra) has, so that `--help`,
# `scenarios` and `simulate` work there. Every other command imports its modules inside itself.
from inferwatch.producers.scenarios import SCENARIOS
from inferwatch.producers.traffic_model import FLEET
from inferwatch.settings import Settings, StackNotRunning

# The import names of the `worker` extra's requirements (pyproject.toml); tests/test_packaging.py
# checks that every requirement of the extra has one here.
WORKER_MODULES = frozenset({
    "faust", "aiokafka", "yarl", "cramjam", "redis", "hiredis", "clickhouse_connect", "chdb", "pandas", "river",
    "pyarrow", "uvloop",
})
WORKER_EXTRA_MESSAGE = "this command needs the worker extra: pip install 'inferwatch[worker]'"


def _worker_extra_missing(exc: ImportError) -> bool:
    return isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] in WORKER_MODULES


def _needs_worker(command):
    """For a command that needs the worker extra: say so, instead of a traceback, in an SDK-only
    install. Checked before the command starts (`up` must not start half the stack first), and
    again for an import that fails on the way."""

    @functools.wraps(command)
    def checked(*args, **kwargs):
        absent = sorted(name for name in WORKER_MODULES if importlib.util.find_spec(name) is None)
        if absent:
            raise click.ClickException(f"{WORKER_EXTRA_MESSAGE} (not installed: {', '.join(absent)})")
        try:
            return command(*args, **kwargs)
        except ImportError as exc:
            if _worker_extra_missing(exc):
                raise click.ClickException(f"{WORKER_EXTRA_MESSAGE} ({exc})") from exc
            raise

    return checked


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the local stack's state and logs [env INFERWATCH_STATE_DIR; default .inferwatch].",
)
@click.pass_context
def main(ctx: click.Context, state_dir: str | None) -> None:
    """Streaming monitoring for LLM inference: Kafka -> Faust -> Redis + ClickHouse.

    Settings come from INFERWATCH_* environment variables and the TOML file named by
    INFERWATCH_CONFIG (default ./inferwatch.toml); see docs/configuration.md.
    """
    ctx.obj = Settings(**({"state_dir": state_dir} if state_dir else {}))


@main.command()
@click.pass_context
@_needs_worker
def up(ctx: click.Context) -> None:
    """Start the local Kafka broker (KRaft) and redis-server on free loopback ports."""
    from inferwatch.deploy import local_stack

    endpoints = local_stack.up(_settings(ctx), progress=click.echo)
    click.echo(f"kafka  {endpoints['kafka_bootstrap']}\nredis  {endpoints['redis_url']}")


@main.command()
@click.pass_context
@_needs_worker
def down(ctx: click.Context) -> None:
    """Stop what `up` (and a worker the demo started) started, by PID, and nothing else."""
    from inferwatch.deploy import local_stack

    local_stack.down(_settings(ctx), progress=click.echo)


@main.command()
@click.option("--windows", is_flag=True, help="Also list the live windows held in Redis.")
@click.option("--drift", is_flag=True, help="Also list the drift scores of the latest closed model panes.")
@click.option("--keyset", default=None, metavar="NAME",
              help="With --windows: only this key set's windows (see the window_keys setting).")
@click.pass_context
@_needs_worker
def status(ctx: click.Context, windows: bool, drift: bool, keyset: str | None) -> None:
    """Say what runs where, the pipeline's counters and ClickHouse backlog (and, with --windows,
    the latest window metrics; with --drift, the latest drift scores)."""
    import redis

    from inferwatch.deploy import local_stack
    from inferwatch.sinks.redis.live_state import COUNTERS, SINK_STATS, read_windows
    from inferwatch.tables import format_drift, format_windows

    settings = _settings(ctx)
    click.echo(local_stack.format_status(local_stack.status(settings)))
    try:
        client = redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=2)
        counters, sink_stats = client.hgetall(COUNTERS), client.hgetall(SINK_STATS)
    except (StackNotRunning, redis.ConnectionError):
        return
    for title, values in (("pipeline", counters), ("clickhouse sink", sink_stats)):
        if values:
            click.echo(f"{title}: " + ", ".join(f"{k.decode()}={v.decode()}" for k, v in sorted(values.items())))
    if windows:
        click.echo(format_windows([w for w in read_windows(client) if keyset in (None, w["keyset"])]))
    if drift:
        click.echo(format_drift(read_windows(client)))


@main.command()
@click.pass_context
@_needs_worker
def worker(ctx: click.Context) -> None:
    """Run the stream processor (Faust worker) in the foreground."""
    from inferwatch.processors.worker import run_worker

    run_worker(_settings(ctx))


@main.command()
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=500.0, show_default=True,
              help="Events per wall-clock second.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Wall-clock seconds to run.")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Event time runs this many times faster than the wall clock.")
@click.option("--scenario", type=click.Choice(list(SCENARIOS)), default="steady", show_default=True,
              help="What changes half-way (see `inferwatch scenarios`).")
@click.option("--model", "scenario_model", default=FLEET[0].model, show_default=True,
              help="The model the scenario changes.")
@click.option("--factor", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True,
              help="Size of the change (meaning per scenario).")
@click.option("--at", "scenario_at", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Fraction of the run after which the scenario applies.")
@click.option("--seed", type=int, default=None, help="Random seed for reproducible traffic.")
@click.pass_context
def simulate(ctx, rate, duration, time_scale, scenario, scenario_model, factor, scenario_at, seed) -> None:
    """Publish modelled traffic (several services and models) to the events topic."""
    from inferwatch.producers.scenarios import Change
    from inferwatch.producers.simulate import simulate as run

    publisher = run(
        _settings(ctx), rate, duration, time_scale, [Change(scenario, scenario_model, factor, scenario_at)], seed=seed,
        on_progress=lambda p: click.echo(f"{p.elapsed_s:5.0f}s  {p.events:>9,} events sent", err=True),
    )
    click.echo(f"sent {publisher.stats.events_sent:,} events in {publisher.stats.messages_sent:,} batch messages")


@main.command()
@click.argument("trace", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Replay this many times faster than recorded.")
@click.option("--service", default=None, help="Serve the whole trace as this service (default: the modelled fleet).")
@click.option("--model", default=None, help="Serve the whole trace with this model (default: the modelled fleet).")
@click.option("--seed", type=int, default=None, help="Random seed of the serving model.")
@click.pass_context
@_needs_worker
def replay(ctx, trace: str | None, speed: float, service: str | None, model: str | None, seed: int | None) -> None:
    """Replay a real trace (arrival times, token counts); latency/status/cost are modelled.

    TRACE is a CSV with TIMESTAMP, ContextTokens, GeneratedTokens; default: the Azure LLM
    inference trace 2023 shipped in producers/data (CC-BY 4.0, Patel et al., ISCA 2024).
    """
    from inferwatch.producers.replay import AZURE_TRACE, load_trace, replay as run

    try:
        loaded = load_trace(trace or AZURE_TRACE)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"replaying {len(loaded):,} requests spanning {loaded.offset_ms[-1] / 1000:,.0f}s at x{speed:g}", err=True)
    publisher = run(_settings(ctx), loaded, speed, service, model, seed,
                    on_progress=lambda done, total: click.echo(f"{done:>9,} / {total:,} requests", err=True))
    click.echo(f"sent {publisher.stats.events_sent:,} events in {publisher.stats.messages_sent:,} batch messages")


@main.group()
def baseline() -> None:
    """Reference profiles that drift is measured against (docs/drift.md)."""


@baseline.command("build")
@click.option("--since", default="1h", show_default=True, help="Start of the reference range, before now: 90s, 15m, 1h, 7d.")
@click.option("--until", default="0s", show_default=True, help="End of the reference range, before now.")
@click.option("--bins", type=click.IntRange(min=2, max=100), default=10, show_default=True,
              help="Bins of each numeric feature (reference quantiles).")
@click.option("--min-events", type=click.IntRange(min=10), default=None,
              help="Events a pane needs to be judged (and a reference window to calibrate on) "
                   "[default: the drift_min_events setting, 100].")
@click.option("--max-events", type=click.IntRange(min=1000), default=200_000, show_default=True,
              help="Reference events read per (service, model), the first ones of the range.")
@click.option("--from-jsonl", "reference_set", type=click.Path(dir_okay=False), default=None,
              help="Build prompt and response length profiles from a fine-tuning or evaluation set instead "
                   "(JSONL: prompt/response or chat messages; needs --service and --model).")
@click.option("--service", default=None, help="With --from-jsonl: the service whose model was tuned on it.")
@click.option("--model", default=None, help="With --from-jsonl: the model tuned on it.")
@click.option("--window-events", type=click.IntRange(min=10), default=500, show_default=True,
              help="With --from-jsonl: records per chunk that thresholds are calibrated on (a set has no time).")
@click.pass_context
@_needs_worker
def baseline_build(ctx, since: str, until: str, bins: int, min_events: int | None, max_events: int,
                   reference_set: str | None, service: str | None, model: str | None, window_events: int) -> None:
    """Build the reference profile of every (service, model) from its events in ClickHouse over a
    time range, calibrated on the range's own panes, and make it the one the worker measures
    drift against (Redis iw:drift:profiles; the worker reads it within drift_profile_refresh_seconds).
    With --from-jsonl, the prompt and response length profiles of one (service, model) from the set
    its model was tuned on, added to that scope's profile."""
    import redis

    if reference_set is not None:
        _build_from_set(_settings(ctx), reference_set, service, model, bins, min_events, window_events)
        return
    from inferwatch.durations import parse_duration
    from inferwatch.processors.drift.baseline import COLUMNS, build_profiles
    from inferwatch.query import run_query
    from inferwatch.sinks.redis.live_state import write_profiles

    settings = _settings(ctx)
    try:
        since_s, until_s = parse_duration(since), parse_duration(until)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if until_s >= since_s:
        raise click.BadParameter(f"--until {until} must be before --since {since} (both count back from now)")
    click.echo(f"reading the events of the last {since} up to {until} ago from ClickHouse ...", err=True)
    try:
        _, rows = run_query(settings, (
            f"SELECT {', '.join(COLUMNS[:2])}, toUnixTimestamp64Milli(ts) AS ts_ms, {', '.join(COLUMNS[3:])} "
            "FROM inference_events FINAL WHERE ts >= now64(3) - toIntervalSecond({since:UInt32}) "
            "AND ts < now64(3) - toIntervalSecond({until:UInt32}) ORDER BY service, model, ts "
            "LIMIT {max_events:UInt32} BY service, model"),
            {"since": since_s, "until": until_s, "max_events": max_events})
    except Exception as exc:
        raise click.ClickException(f"reading the reference events: {exc}") from exc
    built_at_ms = int(time.time() * 1000)
    source = f"built from the events of {since} ago to {until} ago, at {_iso_minute(built_at_ms)}"
    profiles, skipped = build_profiles(rows, settings.window_seconds, bins, min_events or settings.drift_min_events,
                                       source, built_at_ms)
    for (service, model), reason in skipped.items():
        click.echo(f"  {service}/{model}: left out: {reason}", err=True)
    if not profiles:
        raise click.ClickException(f"no profile built from {len(rows):,} events: see above")
    for (service, model), features in profiles.items():
        thresholds = ", ".join(f"{f} JS>{p.threshold('js', settings.window_seconds).value:.3f}"
                               for f, p in features.items())
        click.echo(f"  {service}/{model}: {thresholds}")
    try:
        write_profiles(redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=5), profiles)
    except (StackNotRunning, redis.RedisError) as exc:
        raise click.ClickException(f"storing the profiles in Redis: {exc}") from exc
    click.echo(f"{len(profiles)} reference profile(s) from {len(rows):,} events stored")


def _build_from_set(settings: Settings, path: str, service: str | None, model: str | None, bins: int,
                    min_events: int | None, window_events: int) -> None:
    import redis

    from inferwatch.processors.drift.baseline import text_profiles
    from inferwatch.reference_set import ReferenceSetError, read_pairs
    from inferwatch.sinks.redis.live_state import read_profiles, write_profiles

    if not service or not model:
        raise click.UsageError("--from-jsonl needs --service and --model: the scope whose model was tuned on the set")
    try:
        pairs = read_pairs(path, progress=lambda n: click.echo(f"  {n:,} records read", err=True))
    except ReferenceSetError as exc:
        raise click.ClickException(str(exc)) from exc
    built_at_ms = int(time.time() * 1000)
    try:
        features = text_profiles(pairs, settings.window_seconds, window_events, bins, min_events or settings.drift_min_events,
                                 f"built from {len(pairs):,} records of {Path(path).name}, at {_iso_minute(built_at_ms)}",
                                 built_at_ms)
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc} (fewer records, or a smaller --window-events?)") from exc
    try:
        client = redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=5)
        # Added to the scope's profile: its features from traffic (learned or built) stay. A scope
        # without one is refused: holding the set's features only, it would not learn the others.
        existing = read_profiles(client).get((service, model))
        if existing is None:
            raise click.ClickException(
                f"no reference profile of {service}/{model} yet: let the worker learn one from its first panes, or "
                f"run `inferwatch baseline build --since ...` over its traffic, then add the set's")
        write_profiles(client, {(service, model): {**existing, **features}})
    except (StackNotRunning, redis.RedisError) as exc:
        raise click.ClickException(f"storing the profiles in Redis: {exc}") from exc
    thresholds = ", ".join(f"{f} JS>{p.threshold('js', settings.window_seconds).value:.3f}" for f, p in features.items())
    click.echo(f"{service}/{model}: {thresholds}, from {len(pairs):,} records stored")


@baseline.command("show")
@click.pass_context
@_needs_worker
def baseline_show(ctx) -> None:
    """List the reference profiles in Redis: scope, feature, bins and calibrated thresholds."""
    import redis

    from inferwatch.sinks.redis.live_state import read_profiles
    from inferwatch.tables import format_table

    settings = _settings(ctx)
    try:
        profiles = read_profiles(redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=5))
    except (StackNotRunning, redis.RedisError) as exc:
        raise click.ClickException(f"reading the profiles from Redis: {exc}") from exc
    rows = [[f"{service}/{model}", "provisional" if p.provisional else "built", name, len(p.proportions),
             t.statistic, f"{t.window_seconds}s", t.windows, t.value, t.min_events]
            for (service, model), features in sorted(profiles.items()) for name, p in features.items()
            for t in p.thresholds]
    click.echo(format_table(["scope", "profile", "feature", "bins", "statistic", "window", "calibrated on",
                             "threshold", "min events"], rows))
    for (service, model), features in sorted(profiles.items()):
        sources = sorted({p.source for p in features.values() if p.source})
        click.echo(f"{service}/{model}: {'; '.join(sources) or 'no source recorded'}")


@baseline.command("list")
@click.pass_context
@_needs_worker
def baseline_list(ctx) -> None:
    """List every kept version of the reference profiles, newest first: built (`baseline build`)
    or provisional (learned by the worker), and which is active."""
    import redis

    from inferwatch.sinks.redis.live_state import read_profile_versions, read_profiles
    from inferwatch.tables import format_table

    settings = _settings(ctx)
    try:
        client = redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=5)
        versions, active = read_profile_versions(client), read_profiles(client)
    except (StackNotRunning, redis.RedisError) as exc:
        raise click.ClickException(f"reading the profiles from Redis: {exc}") from exc
    rows = []
    for (service, model, built_at), features in sorted(versions.items(), key=lambda v: (v[0][:2], -v[0][2])):
        now_active = {p.built_at_ms for p in active.get((service, model), {}).values()} == {built_at}
        some = next(iter(features.values()))
        rows.append([f"{service}/{model}", built_at, _iso_minute(built_at), "provisional" if some.provisional else "built",
                     ", ".join(sorted(features)), "active" if now_active else "", some.source])
    click.echo(format_table(["scope", "version", "built at", "profile", "features", "", "source"], rows))


@baseline.command("activate")
@click.argument("scope")
@click.argument("version", type=int)
@click.pass_context
@_needs_worker
def baseline_activate(ctx, scope: str, version: int) -> None:
    """Make VERSION (from `baseline list`) the reference profile of SCOPE (service/model) again;
    the worker reads it within drift_profile_refresh_seconds."""
    import redis

    from inferwatch.sinks.redis.live_state import activate_profile_version

    service, slash, model = scope.partition("/")
    if not slash:
        raise click.BadParameter(f"{scope!r}: give the scope as service/model, as `baseline list` shows it")
    settings = _settings(ctx)
    try:
        activate_profile_version(redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=5),
                                 service, model, version)
    except KeyError as exc:
        raise click.ClickException(f"{exc.args[0]} (see `inferwatch baseline list`)") from exc
    except (StackNotRunning, redis.RedisError) as exc:
        raise click.ClickException(f"activating the profile in Redis: {exc}") from exc
    click.echo(f"{scope}: version {version} ({_iso_minute(version)}) is the reference profile")


def _iso_minute(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms / 1000))


@main.command("cluster-ddl")
@click.option("--cluster", default="{cluster}", show_default=True, help="Cluster name (default: the macro).")
@_needs_worker
def cluster_ddl(cluster: str) -> None:
    """Print the cluster variant of the tables (Replicated*MergeTree + Distributed, ON CLUSTER)."""
    from inferwatch.sinks.clickhouse.cluster import cluster_ddl as ddl

    click.echo(ddl(cluster))


@main.command()
def scenarios() -> None:
    """List the traffic scenarios of `simulate --scenario`."""
    for name, change in SCENARIOS.items():
        click.echo(f"{name:20} {change}")


@main.command()
@click.argument("query")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.pass_context
@_needs_worker
def sql(ctx, query: str, output_format: str, as_json: bool) -> None:
    """Run SQL on ClickHouse: through the running worker when it owns the embedded database."""
    from inferwatch.tables import format_result
    from inferwatch.query import run_query

    try:
        columns, rows = run_query(_settings(ctx), query)
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(format_result(columns, rows, "json" if as_json else output_format))


@main.command()
@click.argument("name", required=False)
@click.option("--since", default="1h", show_default=True, help="Look-back: 90s, 15m, 1h, 7d.")
@click.option("--model", default="", help="Only this model (default: all).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Rows of ranked lists.")
@click.option("--json", "as_json", is_flag=True, help="JSON rows instead of a table (for scripts).")
@click.pass_context
@_needs_worker
def query(ctx, name: str | None, since: str, model: str, limit: int, as_json: bool) -> None:
    """Run a named query of the analyst's pack (no NAME: list them).

    Each query is a .sql file in sinks/clickhouse/queries/ an analyst can read and adapt.
    """
    from inferwatch.query import run_query
    from inferwatch.sinks.clickhouse import query_pack
    from inferwatch.tables import format_result

    if name is None:
        for known in query_pack.query_names():
            click.echo(f"{known:26} {query_pack.description(known)}")
        return
    try:
        columns, rows = run_query(_settings(ctx), query_pack.query_text(name), query_pack.parameters(since, model, limit))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(format_result(columns, rows, "json" if as_json else "table"))


@main.command()
@click.option("--rate", type=float, default=1000.0, show_default=True, help="Events per second.")
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds of traffic.")
@click.option("--time-scale", type=float, default=10.0, show_default=True,
              help="Event time per wall second (10 = ten 1-minute windows in a minute).")
@click.pass_context
@_needs_worker
def demo(ctx, rate: float, duration: float, time_scale: float) -> None:
    """Start the stack, run the pipeline on modelled traffic with a latency regression and a prompt
    drift, query it."""
    from inferwatch.demo import run_demo

    sys.exit(run_demo(_settings(ctx), rate, duration, time_scale))


def run() -> None:
    try:
        main(standalone_mode=True)
    except StackNotRunning as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ImportError as exc:
        if not _worker_extra_missing(exc):
            raise
        click.echo(f"error: {WORKER_EXTRA_MESSAGE} ({exc})", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
