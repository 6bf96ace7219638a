"""Live window state and alerts in Redis, for dashboards and the alert engine.

The key layout (every key, its type, content and expiry) is documented in docs/redis-keys.md:
keep that page in step with the key names and the writes below.

All writes of one update go out in one pipeline: one round trip per batch, never per event.
Several workers may share one Redis: a window is finalised by the first worker that closes it
(``<window key>:final``, see claim_closed / mark_written; a claim left unwritten by a worker whose
heartbeat ``iw:worker:<id>`` expired is taken over) and a closed window is never overwritten by an
open partial (_WRITE_IF_OPEN).
"""

from __future__ import annotations

import json
import logging
import time

import redis

from inferwatch.processes import worker_id
from inferwatch.processors.aggregators import outputs as aggregator_outputs
from inferwatch.processors.drift.profile import FeatureProfile
from inferwatch.processors.drift.scorer import REDIS_MAP_FIELDS as DRIFT_MAP_FIELDS, Profiles
from inferwatch.processors.windows.feedback import REDIS_MAP_FIELDS as FEEDBACK_MAP_FIELDS

log = logging.getLogger(__name__)

WINDOW_PREFIX = "iw:window"
WINDOW_INDEX = "iw:windows"
ALERT_STREAM = "iw:alerts"
COUNTERS = "iw:counters"
LATE_EVENTS = "iw:late"
SINK_STATS = "iw:sink"
HANDOFF_PREFIX = "iw:handoff"
WORKER_PREFIX = "iw:worker"
DRIFT_PROFILES = "iw:drift:profiles"
DRIFT_PROFILE_VERSIONS = "iw:drift:profile_versions"
DRIFT_DETECTIONS = "iw:drift:detections"
ALERT_STREAM_MAXLEN = 10_000


# A snapshot's per-name maps -> hash fields, the name in place of {}: the aggregators' map
# outputs, the feedback windows' and a closed pane's drift scores.
_NESTED_FIELDS = ({o.name: o.redis_fields for o in aggregator_outputs() if o.is_map} | FEEDBACK_MAP_FIELDS
                  | DRIFT_MAP_FIELDS)


def _redis_fields(snapshot: dict) -> dict:
    """A window snapshot as flat hash fields: nested counts get prefixed names, absent values none."""
    fields = {k: v for k, v in snapshot.items() if v is not None and not isinstance(v, dict)}
    for nested, pattern in _NESTED_FIELDS.items():
        for name, value in snapshot.get(nested, {}).items():
            fields[pattern.format(name)] = value
    return fields


def window_key(snapshot: dict) -> str:
    hop = f"/{snapshot['hop_seconds']}" if snapshot["hop_seconds"] else ""
    part = f":p{snapshot['source_partition']}" if snapshot["source_partition"] >= 0 else ""
    return (f"{WINDOW_PREFIX}:{snapshot['keyset']}:{snapshot['window_seconds']}{hop}:{snapshot['series']}:"
            f"{snapshot['window_start_ms']}{part}")


# Writes an open window's fields unless the window is already closed: after a rebalance, a worker
# re-reading a message that spans two windows must not overwrite the closed one with a partial.
# The fields come as one JSON object of strings: one argument to pack per window instead of ~130,
# which was most of a live update's time on the worker's event loop. HSET takes at most 500 pairs at
# a time: error type and quality names come from producers, and unpack() fails past Lua's stack
# limit (~8000 values).
_WRITE_IF_OPEN = """
if redis.call('HGET', KEYS[1], 'state') == 'closed' then return 0 end
local flat = {}
local function flush()
  redis.call('HSET', KEYS[1], unpack(flat))
  flat = {}
end
for name, value in pairs(cjson.decode(ARGV[2])) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
  if #flat == 1000 then flush() end
end
if #flat > 0 then flush() end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


# Claims a closed window for the worker ARGV[1] (returns 1) if nobody holds it, we do already (a
# retried update), or its holder left it unwritten to ClickHouse and is gone (its heartbeat,
# ARGV[3] .. holder, expired: it died between claiming and inserting the rollup). Otherwise 0 if
# it is written, 2 if a live worker holds it (and will write it, or die and leave it to us).
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == 'written' then return 0 end
if holder == false or holder == ARGV[1] or redis.call('EXISTS', ARGV[3] .. holder) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 2
"""


class LiveStateWriter:
    def __init__(self, redis_url: str, window_ttl_seconds: int, state_ttl_seconds: int,
                 heartbeat_seconds: float = 15.0):
        # Timeouts: an unreachable Redis fails a write in seconds, it never hangs the caller.
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.window_ttl_seconds = window_ttl_seconds
        self.state_ttl_seconds = state_ttl_seconds
        self.heartbeat_ms = max(1, int(heartbeat_seconds * 1000))
        self._write_if_open = self.client.register_script(_WRITE_IF_OPEN)
        self._claim = self.client.register_script(_CLAIM)
        self.worker_id = worker_id()

    def claim_closed(self, closed_windows: list[dict]) -> tuple[list[dict], list[dict]]:
        """(the closed windows this worker finalises, those a live worker holds unwritten).

        Each window is finalised once, by the first worker to close it, whatever rebalances
        happened meanwhile (or, if that worker died before its rollup reached ClickHouse, by the
        next one: see _CLAIM and mark_written). Windows in neither list are written already."""
        if not closed_windows:
            return [], []
        pipe = self.client.pipeline(transaction=False)
        pipe.set(f"{WORKER_PREFIX}:{self.worker_id}", 1, px=self.heartbeat_ms)  # alive while claiming
        for snapshot in closed_windows:
            self._claim(keys=[f"{window_key(snapshot)}:final"],
                        args=[self.worker_id, self.window_ttl_seconds, f"{WORKER_PREFIX}:"], client=pipe)
        claims = pipe.execute()[1:]
        return ([w for w, claim in zip(closed_windows, claims) if claim == 1],
                [w for w, claim in zip(closed_windows, claims) if claim == 2])

    def mark_written(self, windows: list[dict]) -> None:
        """These claimed windows' rollups are in ClickHouse: nobody takes their claims over."""
        if not windows:
            return
        pipe = self.client.pipeline(transaction=False)
        for snapshot in windows:
            pipe.set(f"{window_key(snapshot)}:final", "written", xx=True, keepttl=True)
        pipe.execute()

    def write(
        self,
        open_windows: list[dict],
        closed_windows: list[dict],
        alerts: list[dict],
        counters: dict[str, int],
        late_by_series: dict[str, int],
        learned_profiles: Profiles | None = None,
        detections: list[dict] = (),
    ) -> None:
        """`closed_windows` must be ones this worker claimed (claim_closed). `learned_profiles`
        are stored where their scope has none yet: a built profile, or another worker's, wins."""
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(f"{WORKER_PREFIX}:{self.worker_id}", 1, px=self.heartbeat_ms)  # every tick: see _CLAIM
        for snapshot in open_windows:
            key = window_key(snapshot)
            # str() of a number is what redis-py would send for it (repr for floats: exact).
            fields = {name: str(value) for name, value in _redis_fields(snapshot).items()}
            fields.update(state="open", updated_at_ms=str(now_ms))
            self._write_if_open(keys=[key], args=[self.window_ttl_seconds, json.dumps(fields)], client=pipe)
            pipe.zadd(WINDOW_INDEX, {key: snapshot["window_start_ms"]})
        for snapshot in closed_windows:
            key = window_key(snapshot)
            pipe.hset(key, mapping={**_redis_fields(snapshot), "state": "closed", "updated_at_ms": now_ms})
            pipe.expire(key, self.window_ttl_seconds)
            if "state" in snapshot:  # a pane: the longer windows merge it from here
                pipe.set(f"{key}:state", json.dumps(snapshot["state"]), ex=self.state_ttl_seconds)
            pipe.zadd(WINDOW_INDEX, {key: snapshot["window_start_ms"]})
        if open_windows or closed_windows:
            # Keys in the index expire with their hashes; trim the index on the same horizon.
            pipe.zremrangebyscore(WINDOW_INDEX, "-inf", now_ms - self.window_ttl_seconds * 1000)
        for alert in alerts:  # the labels are fields of their own (Alert.as_dict)
            pipe.xadd(ALERT_STREAM, {k: v for k, v in alert.items() if k != "labels"}, maxlen=ALERT_STREAM_MAXLEN, approximate=True)
        for hash_name, increments in ((COUNTERS, counters), (LATE_EVENTS, late_by_series)):
            for name, increment in increments.items():
                if increment:
                    pipe.hincrby(hash_name, name, increment)
        for detection in detections:  # ADWIN's changes (processors/drift/adwin.py detection_row)
            pipe.xadd(DRIFT_DETECTIONS, {k: str(v) for k, v in detection.items()}, maxlen=ALERT_STREAM_MAXLEN,
                      approximate=True)
        for scope, features in (learned_profiles or {}).items():
            pipe.hsetnx(DRIFT_PROFILES, *_profile_field(scope, features))
            pipe.hset(DRIFT_PROFILE_VERSIONS, *_version_field(scope, features))
        if any(late_by_series.values()):
            # Series names come from producers: the late counts expire once no series is late for a while.
            pipe.expire(LATE_EVENTS, self.window_ttl_seconds)
        pipe.execute()


    def write_handoffs(self, name: str, handoffs: dict[int, dict]) -> None:
        """Per partition, what its next owner needs (WindowPipeline.handoff), under
        ``iw:handoff:<name>:<partition>``; kept as long as the pane states it refers to."""
        pipe = self.client.pipeline(transaction=False)
        for partition, handoff in handoffs.items():
            pipe.set(f"{HANDOFF_PREFIX}:{name}:{partition}", json.dumps(handoff), ex=self.state_ttl_seconds)
        pipe.execute()

    def read_handoff(self, name: str, partition: int) -> dict | None:
        raw = self.client.get(f"{HANDOFF_PREFIX}:{name}:{partition}")
        return None if raw is None else json.loads(raw)

    def read_profiles(self) -> Profiles:
        return read_profiles(self.client)

    def read_states(self, windows: list[dict]) -> list[dict | None]:
        """The finalised states of these panes (identified like snapshots); None where there is none."""
        if not windows:
            return []
        raw = self.client.mget([f"{window_key(w)}:state" for w in windows])
        return [None if value is None else json.loads(value) for value in raw]


def read_windows(client: redis.Redis, limit: int = 200) -> list[dict]:
    """The most recent windows (newest first) as dicts of str -> str."""
    keys = client.zrevrange(WINDOW_INDEX, 0, limit - 1)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    rows = []
    for raw in pipe.execute():
        if raw:
            rows.append({k.decode(): v.decode() for k, v in raw.items()})
    return rows


def write_profiles(client: redis.Redis, profiles: Profiles) -> None:
    """Make these the reference profiles of their scopes (the others stay): one field per
    "<service>|<model>" of ``iw:drift:profiles``, JSON of feature -> profile; each is kept as a
    version too (``iw:drift:profile_versions``), to be listed and activated again."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(DRIFT_PROFILES, mapping=dict(_profile_field(scope, features) for scope, features in profiles.items()))
    pipe.hset(DRIFT_PROFILE_VERSIONS, mapping=dict(_version_field(scope, f) for scope, f in profiles.items()))
    pipe.execute()


def _profile_field(scope: tuple[str, str], features: dict[str, FeatureProfile]) -> tuple[str, str]:
    return "|".join(scope), json.dumps({name: p.to_dict() for name, p in features.items()})


def _version_field(scope: tuple[str, str], features: dict[str, FeatureProfile]) -> tuple[str, str]:
    name, value = _profile_field(scope, features)
    return f"{name}|{max(p.built_at_ms for p in features.values())}", value


def read_profile_versions(client: redis.Redis) -> dict[tuple[str, str, int], dict[str, FeatureProfile]]:
    """Every version kept, by (service, model, built_at_ms); one that does not parse is left out, logged."""
    versions = {}
    for field, raw in client.hgetall(DRIFT_PROFILE_VERSIONS).items():
        try:
            scope, built_at = field.decode().rsplit("|", 1)
            service, model = scope.split("|", 1)
            versions[service, model, int(built_at)] = {
                name: FeatureProfile.from_dict(d) for name, d in json.loads(raw).items()}
        except (ValueError, TypeError, KeyError) as exc:
            log.error("reference profile version %r in %s left out: %s", field, DRIFT_PROFILE_VERSIONS, exc)
    return versions


def activate_profile_version(client: redis.Redis, service: str, model: str, built_at_ms: int) -> None:
    """Make a kept version the scope's reference profile again; KeyError if there is no such version."""
    raw = client.hget(DRIFT_PROFILE_VERSIONS, f"{service}|{model}|{built_at_ms}")
    if raw is None:
        raise KeyError(f"no version {built_at_ms} of the reference profile of {service}/{model}")
    client.hset(DRIFT_PROFILES, f"{service}|{model}", raw)


def read_profiles(client: redis.Redis) -> Profiles:
    """The reference profiles by (service, model); a field that does not parse is left out, logged."""
    profiles = {}
    for field, raw in client.hgetall(DRIFT_PROFILES).items():
        scope = field.decode()
        try:
            service, model = scope.split("|", 1)
            profiles[service, model] = {name: FeatureProfile.from_dict(d) for name, d in json.loads(raw).items()}
        except (ValueError, TypeError, KeyError) as exc:
            log.error("reference profile %r in %s left out: %s", scope, DRIFT_PROFILES, exc)
    return profiles


def read_alerts(client: redis.Redis, count: int = 100) -> list[dict]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _id, fields in client.xrevrange(ALERT_STREAM, count=count)
    ]
