"""Runs the Faust app as a worker process and records where its web server listens."""

from __future__ import annotations

import asyncio
import os

import uvloop

from inferwatch.net import free_port
from inferwatch.processes import register_process
from inferwatch.settings import Settings

WORKER_PROCESS = "worker"


def run_worker(settings: Settings) -> None:
    from faust.worker import Worker

    from inferwatch.processors.app import create_app

    if settings.worker_web_port == 0:
        settings = settings.model_copy(update={"worker_web_port": free_port(settings.worker_web_host)})
    # uvloop cuts Faust's per-message overhead; the policy must be set before the loop exists.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_app(settings)
    register_process(
        settings, WORKER_PROCESS, os.getpid(),
        web_url=f"http://{settings.worker_web_host}:{settings.worker_web_port}",
    )
    Worker(app, loglevel="INFO", logfile=None).execute_from_commandline()
