"""The local stack without Docker: a real Kafka broker (KRaft) and Debian's redis-server.

`up` resolves the broker's jars with Maven (deploy/kafka/pom.xml, cached in
~/.cache/inferwatch/kafka-<version>/libs), formats KRaft storage on first run, starts both servers
on free 127.0.0.1 ports, waits until they answer and creates the topics. Every process we start
is recorded in <state_dir>/run/<name>.json (PID, its start time, a command-line marker, address;
see inferwatch/processes.py); `down` stops those and nothing else: a recorded PID whose start time
or command line no longer matches (the process ended and the PID was reused) is left alone.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from string import Template

from inferwatch.net import free_port, port_free
from inferwatch.polling import wait_for
from inferwatch.processes import (
    Progress,
    read_process,
    read_record,
    register_process,
    stop_process,
)
from inferwatch.settings import Settings

KAFKA_DIR = Path(__file__).parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
START_TIMEOUT_S = 90  # ~2 s alone; far longer on 2 cores busy with a test suite
STACK_PROCESSES = ("kafka", "redis")


# --- starting ------------------------------------------------------------------------------

def _start(settings: Settings, name: str, argv: list[str], marker: str, **info) -> subprocess.Popen:
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.out").open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    register_process(settings, name, process.pid, marker=marker, **info)
    return process


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Kafka -----------------------------------------------------------------------------------

def kafka_version() -> str:
    return re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text()).group(1)


def kafka_libs_dir() -> Path:
    return Path.home() / ".cache" / "inferwatch" / f"kafka-{kafka_version()}" / "libs"


def ensure_kafka_jars(progress: Progress = print) -> Path:
    """Resolve the broker's runtime classpath with Maven once; later calls reuse the cache."""
    libs = kafka_libs_dir()
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is not installed: run `make install` or `apt-get install maven`")
    progress(f"resolving Kafka {kafka_version()} jars with Maven into {libs} (once, ~15 s)")
    # Download into a folder of our own and rename it into place: only a complete download counts
    # as cached, and two installs running at once (two checkouts) cannot mix their files.
    partial = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-Dkafka.libs={partial}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"Maven could not resolve the Kafka broker:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    try:
        partial.rename(libs)
    except OSError:  # another install finished first (a complete libs folder is not empty)
        shutil.rmtree(partial, ignore_errors=True)
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java is not installed: run `make install` or `apt-get install openjdk-17-jre-headless`")
    return java


def _kafka_config_path(settings: Settings) -> Path:
    return (settings.state_dir / "kafka" / "server.properties").resolve()


def _start_kafka(settings: Settings, progress: Progress, ports: dict | None) -> subprocess.Popen:
    libs = ensure_kafka_jars(progress)
    kafka_dir = (settings.state_dir / "kafka").resolve()
    data_dir = kafka_dir / "data"
    config = _kafka_config_path(settings)
    if ports and port_free(ports["kafka_port"]) and port_free(ports["controller_port"]):
        port, controller_port = ports["kafka_port"], ports["controller_port"]
    else:
        port, controller_port = free_port(), free_port()
    kafka_dir.mkdir(parents=True, exist_ok=True)
    config.write_text(Template((KAFKA_DIR / "server.properties.template").read_text()).substitute(
        port=port, controller_port=controller_port, data_dir=data_dir,
        partitions=settings.kafka_partitions, message_max_bytes=settings.kafka_message_max_bytes,
        retention_hours=settings.kafka_retention_hours,
    ))
    logs = (settings.state_dir / "logs").resolve()
    java_args = [_java(), "-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
                 f"-Dkafka.logs.dir={logs}"]
    if not (data_dir / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        progress(f"formatting KRaft storage in {data_dir}")
        # "--cluster-id=<id>": a base64url id may start with "-", which argparse would take for an option.
        result = subprocess.run([*java_args, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                 f"--config={config}"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    heap = f"{settings.kafka_heap_mb}m"
    process = _start(
        settings, "kafka",
        [java_args[0], f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
         "-Djava.awt.headless=true", *java_args[1:], "kafka.Kafka", str(config)],
        marker=str(config), address=f"127.0.0.1:{port}", kafka_port=port, controller_port=controller_port,
    )
    progress(f"started Kafka {kafka_version()} (pid {process.pid}) on 127.0.0.1:{port}")
    return process


def _exited(settings: Settings, name: str, process: subprocess.Popen | None) -> bool:
    """Has the process died? One we just started is asked directly: its command line may not carry
    the marker yet (redis-server rewrites its process title only once it runs)."""
    return process.poll() is not None if process else read_process(settings, name) is None


def _wait_for_kafka(settings: Settings, bootstrap: str, process: subprocess.Popen | None) -> None:
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)

    def answers() -> bool:
        if _exited(settings, "kafka", process):
            raise RuntimeError(f"Kafka exited during start-up:\n{_log_tail(settings.state_dir / 'logs' / 'kafka.out')}")
        # A plain TCP probe first: librdkafka would log every refused connection while the JVM starts.
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        try:
            return bool(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).brokers)
        except Exception:  # KafkaException while the broker finishes starting
            return False

    try:
        wait_for(f"Kafka to answer on {bootstrap}", answers, START_TIMEOUT_S, 0.3)
    except TimeoutError:
        logs = settings.state_dir / "logs"
        server_log = logs / "server.log"
        raise RuntimeError(f"Kafka did not answer on {bootstrap} within {START_TIMEOUT_S}s "
                           f"(pid {read_record(settings, 'kafka')['pid']}, still running; `down` stops it):\n"
                           f"{_log_tail(server_log if server_log.exists() else logs / 'kafka.out')}") from None


def create_topics(settings: Settings, bootstrap: str, progress: Progress = print) -> None:
    """Create the events, dead-letter, feedback and drift topics if they do not exist (idempotent)."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    # LogAppendTime: a message's timestamp is the broker's clock, the reference an event's ts is
    # checked against by the worker and by ClickHouse alike (schemas/validation.py).
    config = {"max.message.bytes": str(settings.kafka_message_max_bytes), "message.timestamp.type": "LogAppendTime"}
    topics = [NewTopic(name, settings.kafka_partitions, 1, config=config)
              for name in (settings.events_topic, settings.dlq_topic, settings.feedback_topic, settings.drift_topic)]
    for name, future in admin.create_topics(topics, operation_timeout=30).items():
        try:
            future.result()
            progress(f"created topic {name} ({settings.kafka_partitions} partitions)")
        except Exception as exc:
            if exc.args and getattr(exc.args[0], "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise


# --- Redis -----------------------------------------------------------------------------------

def _redis_server() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if found is None:
        raise RuntimeError("redis-server is not installed: run `make install` or `apt-get install redis-server`")
    return found


def _start_redis(settings: Settings, progress: Progress, ports: dict | None) -> subprocess.Popen:
    port = ports["redis_port"] if ports and port_free(ports["redis_port"]) else free_port()
    logs = (settings.state_dir / "logs").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / "redis.log"
    process = _start(
        settings, "redis",
        [_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--logfile", str(log_file), "--daemonize", "no"],
        # redis-server rewrites its command line to "redis-server <bind>:<port>": match on that.
        marker=f"redis-server 127.0.0.1:{port}", address=f"127.0.0.1:{port}", redis_port=port,
    )
    progress(f"started redis-server (pid {process.pid}) on 127.0.0.1:{port}")
    return process


def _wait_for_redis(settings: Settings, url: str, process: subprocess.Popen | None) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)

    def answers() -> bool:
        if _exited(settings, "redis", process):
            logs = settings.state_dir / "logs"  # redis.log once it runs; bad arguments go to redis.out
            raise RuntimeError(f"redis-server exited during start-up:\n{_log_tail(logs / 'redis.log')}\n"
                               f"{_log_tail(logs / 'redis.out', 10)}")
        try:
            return client.ping()
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    try:
        wait_for(f"redis-server to answer on {url}", answers, START_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(f"redis-server did not answer on {url} within {START_TIMEOUT_S}s") from None


# --- up / down / status ----------------------------------------------------------------------

def _previous_stack(settings: Settings) -> dict | None:
    try:
        return json.loads(settings.stack_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def up(settings: Settings, progress: Progress = print) -> dict:
    """Start what is not running yet; return the endpoints (also written to settings.stack_file)."""
    previous = _previous_stack(settings)
    kafka_process = None if read_process(settings, "kafka") else _start_kafka(settings, progress, previous)
    redis_process = None if read_process(settings, "redis") else _start_redis(settings, progress, previous)
    kafka, redis_record = read_record(settings, "kafka"), read_record(settings, "redis")
    bootstrap, redis_url = kafka["address"], f"redis://{redis_record['address']}/0"
    _wait_for_kafka(settings, bootstrap, kafka_process)
    _wait_for_redis(settings, redis_url, redis_process)
    create_topics(settings, bootstrap, progress)
    stack = {
        "kafka_bootstrap": bootstrap, "redis_url": redis_url,
        "kafka_port": kafka["kafka_port"], "controller_port": kafka["controller_port"],
        "redis_port": redis_record["redis_port"],
    }
    settings.stack_file.write_text(json.dumps(stack, indent=1))
    return stack


def down(settings: Settings, progress: Progress = print) -> None:
    """Stop every process recorded under run_dir (worker first, then Redis and Kafka)."""
    names = [p.stem for p in settings.run_dir.glob("*.json") if p.stem not in (*STACK_PROCESSES, "stack")]
    for name in [*names, "redis", "kafka"]:
        stop_process(settings, name, progress)
    settings.stack_file.unlink(missing_ok=True)


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def status(settings: Settings) -> list[dict]:
    names = sorted({p.stem for p in settings.run_dir.glob("*.json") if p.stem != "stack"} | set(STACK_PROCESSES))
    rows = []
    for name in names:
        record = read_process(settings, name)
        rows.append({
            "component": name,
            "running": record is not None,
            "pid": record["pid"] if record else None,
            "address": (record.get("address") or record.get("web_url")) if record else None,
            "rss_mib": _rss_mib(record["pid"]) if record else None,
        })
    return rows


def format_status(rows: list[dict]) -> str:
    lines = [f"{'component':10} {'state':8} {'pid':>8} {'rss MiB':>8}  address"]
    for row in rows:
        rss = f"{row['rss_mib']:.0f}" if row["rss_mib"] is not None else "-"
        lines.append(f"{row['component']:10} {'running' if row['running'] else 'stopped':8} "
                     f"{row['pid'] or '-':>8} {rss:>8}  {row['address'] or '-'}")
    return "\n".join(lines)
