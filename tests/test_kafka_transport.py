"""The worker's Faust transport gives aiokafka the configured fetch wait (kafka_transport.py)."""

import asyncio

import faust
import pytest

from inferwatch.processors.kafka_transport import Transport, broker_urls


@pytest.mark.integration
def test_worker_consumer_fetches_with_the_configured_wait(stack):
    app = faust.App("iw-transport-test", broker=broker_urls(stack.resolved_kafka_bootstrap, 137), web_enabled=False)
    assert isinstance(app.transport, Transport)

    async def fetch_wait_ms() -> int:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.start()  # against the real broker: the fetcher is built here
        try:
            return consumer._fetcher._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(fetch_wait_ms()) == 137  # Faust's own driver would give 1500


def test_broker_urls_carry_the_wait_to_every_server():
    urls = broker_urls("127.0.0.1:9092, 127.0.0.1:9093", 100).split(";")
    assert urls == ["inferwatch://127.0.0.1:9092?fetch_max_wait_ms=100", "inferwatch://127.0.0.1:9093?fetch_max_wait_ms=100"]


def test_a_broker_url_without_the_wait_is_a_clear_error():
    app = faust.App("iw-transport-test", broker="inferwatch://127.0.0.1:9092", web_enabled=False)
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        app.consumer._thread._create_worker_consumer(app.transport)
