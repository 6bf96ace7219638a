"""What inference services embed (Monitor) and the tools that publish traffic (simulate, replay)."""

from inferwatch.producers.monitor import Monitor

__all__ = ["Monitor"]
