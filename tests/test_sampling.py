"""Text sampling: rate within binomial tolerance, strata independent and never starved,
low-confidence always captured; user id hashing."""

import hashlib
import hmac
import math
import threading
from collections import Counter

import pytest

from inferwatch.producers.sampling import TextSampler, hash_user_id


def _tolerance(n: int, p: float, sigmas: float = 4.0) -> float:
    return sigmas * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("rate", [0.001, 0.01, 0.05, 0.3, 0.77])
def test_random_rate_within_binomial_tolerance(rate):
    sampler = TextSampler(rate, low_confidence_threshold=None, seed=1)
    n = 100_000
    hits = sum(sampler.decide("m", "/r") == "random" for _ in range(n))
    assert abs(hits - n * rate) <= _tolerance(n, rate)


def test_every_position_is_equally_likely():
    # Exactly one sample per block of 1/rate requests, at a uniformly random position: no position
    # in the block is favoured, so the sampler cannot lock onto periodic traffic.
    rate, n = 0.1, 100_000
    sampler = TextSampler(rate, None, seed=2)
    positions = Counter(i % 10 for i in range(n) if sampler.decide("m", "/r") == "random")
    assert sum(positions.values()) == n * rate
    for count in positions.values():
        assert abs(count - n * rate / 10) <= _tolerance(n // 10, rate)


def test_periodic_traffic_is_sampled_across_its_period():
    # Requests cycle through 10 prompt kinds in a fixed order within one stratum: every kind
    # must be sampled about equally, which an every-10th counter would fail.
    sampler = TextSampler(0.1, None, seed=3)
    kinds = Counter(i % 10 for i in range(50_000) if sampler.decide("m", "/r"))
    assert len(kinds) == 10
    assert max(kinds.values()) < 2 * min(kinds.values())


def test_strata_get_their_share_independently():
    rate = 0.01
    sampler = TextSampler(rate, None, seed=4)
    counts, hits = Counter(), Counter()
    # One busy stratum, one quiet one (1 request in 500), two models on the same route.
    for i in range(200_000):
        if i % 500 == 0:
            stratum = ("m-small", "/rare")
        elif i % 2:
            stratum = ("m-big", "/chat")
        else:
            stratum = ("m-other", "/chat")
        counts[stratum] += 1
        hits[stratum] += sampler.decide(*stratum) == "random"
    for stratum, n in counts.items():
        # Never more than one away from rate x requests, however small the stratum.
        assert abs(hits[stratum] - n * rate) < 1, (stratum, n, hits[stratum])
    assert hits[("m-small", "/rare")] == 4  # 400 requests at 1%


def test_small_stratum_is_not_starved_whatever_the_seed():
    # Independent coin flips would give 200 requests at 1% no sample 13% of the time.
    for seed in range(200):
        sampler = TextSampler(0.01, None, seed=seed)
        assert sum(bool(sampler.decide("m", "/quiet")) for _ in range(200)) == 2


def test_low_confidence_is_always_sampled():
    sampler = TextSampler(0.0, low_confidence_threshold=0.4, seed=5)
    assert all(sampler.decide("m", "/r", confidence=c) == "low_confidence" for c in (0.0, 0.1, 0.39999))
    assert sampler.decide("m", "/r", confidence=0.4) is None  # strictly below the threshold
    assert sampler.decide("m", "/r", confidence=0.9) is None
    assert sampler.decide("m", "/r", confidence=None) is None
    assert sampler.decide("m", "/r", confidence=float("nan")) is None


def test_low_confidence_sampling_needs_a_threshold():
    sampler = TextSampler(0.0, low_confidence_threshold=None)
    assert sampler.decide("m", "/r", confidence=0.0) is None


def test_random_sample_stays_unbiased_with_low_confidence_traffic():
    # "random" is decided first for every request, so it marks rate x low-confidence requests
    # too, and low-confidence requests outside it are still all captured.
    rate, n = 0.1, 100_000
    sampler = TextSampler(rate, low_confidence_threshold=0.5, seed=6)
    reasons = Counter(sampler.decide("m", "/r", confidence=0.2 if i % 2 else 0.9) for i in range(n))
    assert abs(reasons["random"] - n * rate) <= 1
    assert reasons["random"] + reasons["low_confidence"] + reasons[None] == n
    assert reasons[None] == pytest.approx(n / 2 * (1 - rate), abs=_tolerance(n // 2, rate))
    assert reasons["low_confidence"] == pytest.approx(n / 2 * (1 - rate), abs=_tolerance(n // 2, rate))


def test_rate_one_and_zero():
    always, never = TextSampler(1.0, None, seed=7), TextSampler(0.0, None, seed=7)
    assert all(always.decide("m", "/r") == "random" for _ in range(1000))
    assert not any(never.decide("m", "/r") for _ in range(1000))


def test_seed_makes_decisions_reproducible():
    def run(seed):
        sampler = TextSampler(0.05, 0.3, seed=seed)
        return [sampler.decide(f"m{i % 3}", "/r", confidence=(i % 7) / 7) for i in range(5000)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_thread_safe_counts():
    rate, threads, per_thread = 0.01, 8, 25_000
    sampler = TextSampler(rate, None, seed=8)
    hits = []

    def work():
        hits.append(sum(sampler.decide("m", "/r") == "random" for _ in range(per_thread)))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert abs(sum(hits) - threads * per_thread * rate) < 1


@pytest.mark.parametrize("rate, threshold", [(-0.1, None), (1.5, None), (float("nan"), None), (0.1, 1.5), (0.1, -1)])
def test_invalid_parameters(rate, threshold):
    with pytest.raises(ValueError):
        TextSampler(rate, threshold)


def test_hash_user_id_is_hmac_sha256():
    # The well-known HMAC-SHA256 test vector (key "key").
    assert hash_user_id("The quick brown fox jumps over the lazy dog", "key") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    assert hash_user_id("user-42", b"salt") == hash_user_id("user-42", "salt")
    assert hash_user_id("user-42", "salt") == hmac.new(b"salt", b"user-42", hashlib.sha256).hexdigest()


def test_hash_user_id_is_stable_and_salt_dependent():
    first = hash_user_id("user-42", "s1")
    assert first == hash_user_id("user-42", "s1")
    assert len(first) == 64 and int(first, 16) >= 0
    assert first != hash_user_id("user-42", "s2")
    assert first != hash_user_id("user-43", "s1")
    assert "user-42" not in first


@pytest.mark.parametrize("salt", ["", b""])
def test_hash_user_id_requires_a_salt(salt):
    with pytest.raises(ValueError, match="salt"):
        hash_user_id("user-42", salt)
