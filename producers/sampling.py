"""Which requests may have their (redacted) text captured, and user id pseudonymisation.

Random sampling is stratified per (model, route) and systematic within each stratum: a stratum
earns `rate` of a sample per request, and within every block of 1/rate requests exactly one is
taken, at a uniformly random position. So each request is sampled with probability `rate`, yet a
stratum's count never strays more than one from rate x requests: a quiet route gets its share on
schedule instead of waiting for luck (a 200-request stratum at 1% gets 2, where independent coin
flips give none 13% of the time), and a busy route cannot crowd it out. The random position
keeps the choice from locking onto periodic traffic, which a plain every-k-th counter would.

A request whose confidence is below the threshold is always captured: those are the ones worth
reading. The random decision is still made first for every request, so that reason "random"
marks an unbiased sample of all traffic, low-confidence requests included.

Strata are kept in memory for the life of the sampler: (model, route) must have low cardinality.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading


class _Stratum:
    __slots__ = ("credit", "threshold")

    def __init__(self, threshold: float):
        self.credit = 0.0
        self.threshold = threshold


class TextSampler:
    def __init__(self, rate: float, low_confidence_threshold: float | None, seed: int | None = None):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        if low_confidence_threshold is not None and not 0.0 <= low_confidence_threshold <= 1.0:
            raise ValueError(f"low_confidence_threshold must be in [0, 1] or None, got {low_confidence_threshold}")
        self.rate = rate
        self.low_confidence_threshold = low_confidence_threshold
        self._rng = random.Random(seed)
        self._strata: dict[tuple[str, str], _Stratum] = {}
        self._lock = threading.Lock()  # services call from many threads; the state is per stratum

    def _random(self, model: str, route: str) -> bool:
        with self._lock:
            stratum = self._strata.get((model, route))
            if stratum is None:
                stratum = self._strata[(model, route)] = _Stratum(self._rng.random())
            # Sample when the credit passes this block's random threshold, then start the next
            # block: credit stays within (-1, 1], so it never loses float precision.
            stratum.credit += self.rate
            if stratum.credit > stratum.threshold:
                stratum.credit -= 1.0
                stratum.threshold = self._rng.random()
                return True
            return False

    def decide(self, model: str, route: str, confidence: float | None = None) -> str | None:
        """"random", "low_confidence" or None (do not capture the text)."""
        if self._random(model, route):
            return "random"
        if (confidence is not None and self.low_confidence_threshold is not None
                and confidence < self.low_confidence_threshold):
            return "low_confidence"
        return None


def hash_user_id(user_id: str, salt: str | bytes) -> str:
    """HMAC-SHA256 of the user id keyed by the salt, hex: stable per user, not reversible without it."""
    key = salt.encode() if isinstance(salt, str) else salt
    if not key:
        raise ValueError("salt must be non-empty: an unsalted hash of a user id is reversible by lookup")
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()
