"""The worker's Faust transport: Faust's aiokafka driver, with a fetch wait we choose.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms`` fixed at 1500 ms. aiokafka keeps one
fetch in flight per broker and leaves out of it the partitions whose fetched records are still
buffered. So each time records arrive for the partitions that have traffic, the next fetch asks
for the idle partitions only and the broker holds it for up to that wait; the busy partitions'
next fetch can only go out after it. Measured with bench/pipeline_throughput.py: reading stalled
for ~1.3 s every few seconds, the largest part of the lag from publish to the window in Redis.

Faust hands a transport nothing but its broker URLs, so the wait rides on them
(``inferwatch://host:port?fetch_max_wait_ms=100``, built by `broker_urls`). The ``inferwatch``
scheme is registered through Faust's own plugin namespace ``faust.transports`` (pyproject.toml).
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka
from yarl import URL

SCHEME = "inferwatch"
_WAIT_PARAMETER = "fetch_max_wait_ms"


def broker_urls(bootstrap: str, fetch_max_wait_ms: int) -> str:
    """Faust's `broker` setting for this transport: one URL per bootstrap server."""
    return ";".join(f"{SCHEME}://{server.strip()}?{_WAIT_PARAMETER}={fetch_max_wait_ms}"
                    for server in bootstrap.split(","))


def fetch_max_wait_ms(urls: list[URL]) -> int:
    try:
        return int(urls[0].query[_WAIT_PARAMETER])
    except (IndexError, KeyError, ValueError):
        raise ValueError(f"broker URL {urls[:1]} has no integer {_WAIT_PARAMETER}: build it with broker_urls()") from None


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport):
        wait_ms = fetch_max_wait_ms(transport.url)
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the constructor's value here and builds its fetcher from it in start(),
        # which has not run yet. Fail loudly rather than silently keep 1500 ms if that changes.
        if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
            raise RuntimeError("this aiokafka version keeps no _fetch_max_wait_ms: update processors/kafka_transport.py")
        consumer._fetch_max_wait_ms = wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
