"""One typed settings object for every inferwatch process.

Values come, highest priority first, from: keyword arguments, environment variables
(``INFERWATCH_<FIELD>``, e.g. ``INFERWATCH_WINDOW_SECONDS=30``), the TOML file named by
``INFERWATCH_CONFIG`` (default ``inferwatch.toml`` in the working directory, if it exists), and the
defaults below. docs/configuration.md lists every field, generated from this class by
inferwatch/settings_doc.py; tests/test_settings.py keeps the two in step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from inferwatch.processors.windows.longer import WindowSpec
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.schemas.validation import EventLimits

CONFIG_FILE_ENV = "INFERWATCH_CONFIG"
DEFAULT_CONFIG_FILE = "inferwatch.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFERWATCH_", extra="forbid")

    # --- local stack -------------------------------------------------------------------------
    state_dir: Path = Field(
        Path(".inferwatch"),
        description="Folder for the local stack's data, logs, PID files and the chdb database.",
    )
    kafka_heap_mb: int = Field(512, ge=128, description="Heap of the local Kafka broker (MiB).")
    kafka_partitions: int = Field(4, ge=1, description="Partitions of the topics `up` creates.")
    kafka_message_max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Broker and topic limit on one message (bytes)."
    )
    kafka_retention_hours: int = Field(24, ge=1, description="Retention of the local broker's topics.")

    # --- connections (empty = the local stack started by `inferwatch up`) -------------------
    kafka_bootstrap: str = Field(
        "", description="Kafka bootstrap servers; empty = the local broker recorded by `inferwatch up`."
    )
    kafka_client_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings (SASL/SSL, ...) passed straight to confluent-kafka.",
    )
    redis_url: str = Field("", description="Redis URL; empty = the local redis-server from `up`.")
    clickhouse_dsn: str = Field(
        "",
        description="`chdb:///path` (embedded) or `http(s)://user:pass@host:8123/db` (server); "
        "empty = chdb at <state_dir>/clickhouse.",
    )
    schema_registry_url: str = Field(
        "", description="Confluent Schema Registry URL; empty = the local, stable schema-id map."
    )

    # --- topics ------------------------------------------------------------------------------
    events_topic: str = Field("llm.inference.v1", description="Topic of inference events.")
    dlq_topic: str = Field("llm.inference.dlq", description="Dead-letter topic for bad messages.")
    feedback_topic: str = Field("llm.feedback.v1", description="Topic of feedback and evaluation events.")
    drift_topic: str = Field("llm.drift.v1", description="Topic the worker publishes drift detections on "
                             "(schemas/drift_event.avsc).")

    # --- producer ----------------------------------------------------------------------------
    producer_batch_events: int = Field(
        500, ge=1, description="Events per batch message before it is sent."
    )
    producer_linger_ms: int = Field(
        50, ge=0, description="Longest an event waits in a partly filled batch (ms)."
    )

    producer_delivery_timeout_ms: int = Field(
        120_000, ge=1000,
        description="How long librdkafka retries a batch before it is spooled (ms); retries within it never duplicate.",
    )
    producer_max_queued_messages: int = Field(
        1_000, ge=1, description="Batch messages librdkafka may hold in memory; beyond it they are spooled."
    )
    producer_queue_events: int = Field(
        100_000, ge=1, description="Events the SDK buffers in memory before its thread batches them; beyond it events are dropped and counted."
    )
    producer_spool_dir: str = Field(
        "", description="Folder of the SDK's on-disk spool; empty = <state_dir>/spool/<service>."
    )
    producer_spool_max_mb: int = Field(
        256, ge=16, description="Size cap of the spool (MiB); beyond it the oldest spooled events are dropped and counted."
    )


    # --- SDK: privacy, cost ------------------------------------------------------------------
    capture_text: bool = Field(
        False, description="Send redacted prompt/response text of sampled requests (off: text never leaves the process)."
    )
    text_sample_rate: float = Field(
        0.01, ge=0, le=1, description="Share of requests per (model, route) whose text is captured, when enabled."
    )
    low_confidence_threshold: float = Field(
        0.3, ge=0, le=1, description="Requests with confidence below this always have their text captured, when enabled."
    )
    user_id_salt: str = Field(
        "", description="Salt for hashing user ids at the source; empty = user ids are not sent at all."
    )
    reference_vocabulary: str = Field(
        "", description="Word list (one per line) for the prompt OOV rate, e.g. from the fine-tuning set; empty = no OOV rate."
    )
    price_table: str = Field(
        "", description="JSON/TOML file of model prices merged over the shipped producers/prices.json."
    )

    # --- what a valid event is (schemas/validation.py); invalid events are dead-lettered --------
    max_event_age_seconds: float = Field(
        7 * 24 * 3600, gt=0,
        description="Oldest `ts` accepted, before the Kafka message's timestamp (s): covers a producer's spool replayed after an outage.",
    )
    max_clock_skew_seconds: float = Field(
        10.0, ge=0,
        description="Newest `ts` accepted, after the Kafka message's timestamp (s): an event from the future moves its partition's event time and makes others late.",
    )
    max_latency_ms: float = Field(
        24 * 3600 * 1000, gt=0, description="Largest latency_ms and ttft_ms accepted (ms)."
    )
    max_tokens: int = Field(10_000_000, ge=1, description="Largest input_tokens / output_tokens accepted.")
    max_label_chars: int = Field(
        256, ge=1,
        description="Longest service, model, route, model_version, tenant_id, ids, error_type, finish_reason, topic, map names and attribute values (characters).",
    )
    max_text_chars: int = Field(200_000, ge=1, description="Longest prompt_text / response_text (characters).")
    max_map_entries: int = Field(64, ge=0, description="Most entries in quality_scores and in attributes.")
    max_events_per_message: int = Field(
        10_000, ge=1, description="Most events in one batch message; a larger one is dead-lettered whole, before decoding."
    )
    max_series_per_keyset: int = Field(
        10_000, ge=1,
        description="Most series of one key set with open windows at once; events of further series are counted in the `__other__` series.",
    )

    # --- processor ---------------------------------------------------------------------------
    app_id: str = Field("inferwatch", description="Faust app id (= Kafka consumer group).")
    window_seconds: int = Field(
        60, ge=1, description="Tumbling window length (event time, s); also the pane the longer windows merge."
    )
    longer_windows: list[str] = Field(
        default_factory=lambda: ["5m/1m", "1h"],
        description="Longer windows merged from panes: `<size>/<hop>` hopping or `<size>` tumbling (s, m, h).",
    )
    window_keys: list[str] = Field(
        default_factory=lambda: ["model=service,model,model_version", "tenant=tenant_id,model", "route=route"],
        description="Key sets windows are computed per, `<name>=<field>,...`; alerts watch the first.",
    )
    allowed_lateness_seconds: float = Field(
        5.0, ge=0, description="How long after its end a window still accepts events (s)."
    )
    partition_idle_seconds: float = Field(
        5.0, gt=0, description="A partition with no event for this long no longer holds event time back (s)."
    )
    decode_processes: int = Field(
        2, ge=0, description="Processes that decode the events' Avro for the worker, using other cores; 0 = in the worker."
    )
    take_max_messages: int = Field(
        32, ge=1, description="Kafka messages handed to the agent at once (`stream.take`)."
    )
    take_within_seconds: float = Field(
        0.1, gt=0, description="Longest wait to fill a `stream.take` batch (s); part of the publish-to-Redis lag."
    )
    worker_fetch_max_wait_ms: int = Field(
        100, ge=1, le=1500,
        description="Longest the broker holds the worker's fetch when it has no new data (ms); Faust's own 1500 delays busy partitions behind idle ones.",
    )
    live_update_seconds: float = Field(
        0.25, gt=0, description="How often open windows are written to Redis and closed (s); part of the publish-to-Redis lag."
    )
    redis_window_ttl_seconds: int = Field(
        3600, ge=60, description="TTL of window hashes in Redis (s)."
    )
    worker_session_timeout_seconds: float = Field(
        30.0, ge=6, description="How long a silent worker keeps its partitions before another takes them over (s)."
    )
    worker_web_host: str = Field("127.0.0.1", description="Bind address of the worker's web server.")
    worker_web_port: int = Field(
        0, ge=0, description="Port of the worker's web server; 0 = a free port, recorded in state_dir."
    )

    clickhouse_batch_rows: int = Field(
        50_000, ge=1, description="Rows the ClickHouse sink gathers from Kafka before an insert."
    )
    clickhouse_batch_seconds: float = Field(
        1.0, gt=0, description="Longest a message waits in the ClickHouse sink before an insert (s)."
    )
    clickhouse_retry_max_seconds: float = Field(
        30.0, gt=0, description="Longest back-off between retries of a failed ClickHouse insert (s)."
    )
    clickhouse_max_pending_rows: int = Field(
        200_000, ge=1,
        description="Closed windows and alerts the worker queues for ClickHouse while it is slow or down; past it the oldest are dropped (they stay in Redis) and counted.",
    )
    clickhouse_thread_nice: int = Field(
        10, ge=0, le=19,
        description="Nice value (Linux) of the worker's ClickHouse thread and the embedded engine's threads: busy cores serve windows and alerts first; 0 = normal priority.",
    )
    clickhouse_events_ttl_days: int = Field(
        0, ge=0, description="Days inference_events rows are kept (by event time); 0 = forever. Applied at start-up."
    )

    # --- alerts ------------------------------------------------------------------------------
    alert_p99_latency_ms: float = Field(
        10_000.0, gt=0, description="Alert when a window's p99 latency of a model exceeds this (ms)."
    )
    alert_min_events: int = Field(
        50, ge=1, description="Events a window needs before its p99 can raise an alert."
    )

    # --- drift -------------------------------------------------------------------------------
    drift_persistence: int = Field(
        2, ge=1, description="Consecutive panes over a calibrated drift threshold before a series is in drift "
        "(docs/drift.md: one pane alone pages on ordinary traffic).",
    )
    drift_profile_refresh_seconds: float = Field(
        30.0, gt=0, description="How often the worker reads the reference profiles `inferwatch baseline build` "
        "stores in Redis (s).",
    )
    drift_reference_panes: int = Field(
        10, ge=0, description="A (service, model) without a reference profile gets a provisional one, learned "
        "from its first this many panes with drift_min_events events; 0: drift is scored against built profiles "
        "only. At least 3 (the thresholds are calibrated on these panes).",
    )
    drift_min_events: int = Field(
        100, ge=10, description="Events a pane needs to be judged for drift, or to be a reference pane: fewer "
        "make the statistic mostly sampling noise. `baseline build --min-events` defaults to it.",
    )

    adwin_delta: float = Field(
        0.002, ge=0, lt=1, description="Confidence of the ADWIN change detectors on each model series' latency, "
        "answer length and error indicator (river's default; smaller: fewer, later detections); 0: no ADWIN.",
    )

    @field_validator("drift_reference_panes")
    @classmethod
    def _check_reference_panes(cls, panes: int) -> int:
        if 0 < panes < 3:
            raise ValueError("0 (no learning) or at least 3: thresholds are calibrated on these panes")
        return panes

    @field_validator("window_keys")
    @classmethod
    def _check_window_keys(cls, texts: list[str]) -> list[str]:
        parse_keysets(texts)  # a clear error at start-up, not in the worker's first batch
        return texts

    @model_validator(mode="after")
    def _check_longer_windows(self) -> Settings:
        self.longer_window_specs  # noqa: B018 -- parsed for its error: at start-up, not in the worker
        return self

    @property
    def longer_window_specs(self) -> list[WindowSpec]:
        """`longer_windows` parsed: sizes and hops, multiples of the pane (window_seconds)."""
        return [WindowSpec.parse(text, self.window_seconds) for text in self.longer_windows]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE)
        if config_file != DEFAULT_CONFIG_FILE and not Path(config_file).is_file():
            raise FileNotFoundError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file),
        )

    # --- derived paths -----------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """PID files and the address of every process the local stack started."""
        return self.state_dir / "run"

    @property
    def clickhouse_sink_group(self) -> str:
        """Consumer group of the ClickHouse sink: its offsets are independent of the agent's."""
        return f"{self.app_id}-clickhouse-sink"

    @property
    def resolved_clickhouse_dsn(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.state_dir / 'clickhouse').resolve()}"

    @property
    def stack_file(self) -> Path:
        """Written by `inferwatch up`: where the local broker and Redis listen."""
        return self.run_dir / "stack.json"

    @property
    def resolved_kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap or self._local_stack_endpoint("kafka_bootstrap")

    @property
    def resolved_redis_url(self) -> str:
        return self.redis_url or self._local_stack_endpoint("redis_url")

    def _local_stack_endpoint(self, name: str) -> str:
        try:
            endpoints = json.loads(self.stack_file.read_text())
        except FileNotFoundError:
            raise StackNotRunning(
                f"{name} is not set and no local stack runs under {self.state_dir}: "
                f"run `inferwatch up` or set INFERWATCH_{name.upper()}"
            ) from None
        return endpoints[name]

    @property
    def event_limits(self) -> EventLimits:
        return EventLimits(**{name: getattr(self, name) for name in EventLimits.__dataclass_fields__})

    def kafka_config(self, **overrides: object) -> dict[str, object]:
        """librdkafka configuration: bootstrap + the user's pass-through settings + overrides."""
        return {"bootstrap.servers": self.resolved_kafka_bootstrap, **self.kafka_client_config, **overrides}


class StackNotRunning(RuntimeError):
    """A command needs the local stack (or explicit endpoints) and neither is there."""

