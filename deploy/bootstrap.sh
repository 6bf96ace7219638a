#!/usr/bin/env bash
# Installs what inferwatch needs on a fresh Debian machine, idempotently: Debian packages
# (redis-server; Java 17 and Maven when missing), the venv with the project, and the Kafka
# broker's jars (through Maven). `make demo` and `make test` run it first; a warm run takes ~1 s.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '[install] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

python=$(command -v python3.11 || command -v python3 || true)

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ -n "$python" ] || missing+=(python3 python3-venv)
# Debian's own python3 creates venvs only with python3-venv installed.
if [ ! -x .venv/bin/python ] && [ -n "$python" ] && ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  # No prompts (CI has no stdin); passed through env because sudo drops the caller's environment.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  python=${python:-$(command -v python3)}
else
  step "Debian packages present (redis-server, java, mvn)"
fi

if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $python"
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  # dev = the worker extra (Faust, Redis, ClickHouse, ...) + the test tools: everything `make test`
  # and `make demo` need. A plain `pip install inferwatch` is the producer SDK only (pyproject.toml).
  step "pip install -e '.[dev]' (first run: a few minutes; log in .venv/pip-install.log)"
  # setuptools' build warnings would bury the output; the log is shown if the install fails.
  if ! .venv/bin/python -m pip install -e '.[dev]' > .venv/pip-install.log 2>&1; then
    tail -n 60 .venv/pip-install.log
    exit 1
  fi
  touch .venv/.installed
else
  step "Python packages up to date"
fi

step "Kafka broker jars"
.venv/bin/python -c 'from inferwatch.deploy.local_stack import ensure_kafka_jars; print("[install]  ", ensure_kafka_jars())'
