"""The SDK's decorator and context manager, on plain objects: what each call records."""

import asyncio
from types import SimpleNamespace as NS

import pytest

from inferwatch.producers import Monitor
from inferwatch.settings import Settings


@pytest.fixture
def monitor(tmp_path):
    # No broker is contacted: records are captured where the background thread would take them.
    m = Monitor("chat-api", Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", kafka_client_config={"log_level": "0"}),
                capture_text=True, text_sample_rate=1.0, user_id_salt="salt")
    m.captured = []
    m._publisher.submit = m.captured.append
    yield m
    m._publisher.close(0)


def openai_response(text="Sure: write to bob@example.com", prompt_tokens=12, completion_tokens=30):
    return NS(usage=NS(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                       total_tokens=prompt_tokens + completion_tokens),
              choices=[NS(finish_reason="stop", message=NS(content=text))])


def test_sync_decorator_records_usage_cost_and_redacted_text(monitor):
    @monitor.instrument(model="gpt-4o-mini", route="/v1/chat", tenant_id="acme")
    def answer(prompt):
        return openai_response()

    assert answer("call me at +1 415 555 0100").usage.prompt_tokens == 12
    event = monitor._build_event(monitor.captured[0])
    assert event["status"] == "OK" and event["latency_ms"] >= 0 and event["ttft_ms"] is None
    assert (event["input_tokens"], event["output_tokens"]) == (12, 30)
    price = monitor.prices.price("gpt-4o-mini")
    assert event["cost_usd"] == pytest.approx((12 * price.usd_per_1m_input + 30 * price.usd_per_1m_output) / 1e6)
    assert event["finish_reason"] == "stop"
    assert "415" not in event["prompt_text"] and "bob@example.com" not in event["response_text"]
    assert event["prompt_chars"] == len("call me at +1 415 555 0100")
    assert event["service"] == "chat-api" and event["tenant_id"] == "acme"


def test_exception_is_reraised_unchanged_and_recorded(monitor):
    class UpstreamError(Exception):
        pass

    error = UpstreamError("boom")

    @monitor.instrument(model="gpt-4o-mini")
    def failing(prompt):
        raise error

    with pytest.raises(UpstreamError) as raised:
        failing("x")
    assert raised.value is error
    event = monitor._build_event(monitor.captured[0])
    assert (event["status"], event["error_type"]) == ("ERROR", "UpstreamError")


def test_async_timeout_is_recorded_as_timeout(monitor):
    @monitor.instrument(model="gpt-4o-mini")
    async def slow(prompt):
        await asyncio.sleep(0)
        raise asyncio.TimeoutError()

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(slow("x"))
    assert monitor._build_event(monitor.captured[0])["status"] == "TIMEOUT"


def test_streaming_generators_record_ttft_and_text(monitor):
    @monitor.instrument(model="gpt-4o-mini")
    def stream(prompt):
        yield "Hello "
        yield "world"

    @monitor.instrument(model="gpt-4o-mini")
    async def astream(prompt):
        for chunk in ("Hi ", "there"):
            yield chunk

    assert "".join(stream("p")) == "Hello world"

    async def consume():
        return [c async for c in astream("p")]

    assert asyncio.run(consume()) == ["Hi ", "there"]
    sync_event, async_event = (monitor._build_event(r) for r in monitor.captured)
    for event, text in ((sync_event, "Hello world"), (async_event, "Hi there")):
        assert 0 <= event["ttft_ms"] <= event["latency_ms"]
        assert event["response_chars"] == len(text)


def test_context_manager_and_unknown_model(monitor, caplog):
    with monitor.track(model="my-own-model", route="/r", user_id="u-42") as call:
        call.set_usage(100, 20)
        call.set(confidence=0.9, topic="billing")
    with monitor.track(model="my-own-model") as call:
        call.set_usage(1, 1)
    first, second = (monitor._build_event(r) for r in monitor.captured)
    assert first["cost_usd"] is None and first["topic"] == "billing"
    assert first["user_id"] != "u-42" and len(first["user_id"]) == 64
    assert sum("my-own-model" in r.message for r in caplog.records) == 1  # warned once


def test_user_ids_are_not_sent_without_a_salt(tmp_path):
    m = Monitor("svc", Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", kafka_client_config={"log_level": "0"}))
    try:
        record = m.track(model="gpt-4o-mini", user_id="alice")._record
        assert m._build_event({**record, "ts": 0, "latency_ms": 1.0})["user_id"] is None
    finally:
        m._publisher.close(0)


def test_text_is_not_captured_by_default(tmp_path):
    m = Monitor("svc", Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", kafka_client_config={"log_level": "0"}))
    try:
        record = {**m.track(model="gpt-4o-mini", prompt="secret plans")._record, "ts": 0, "latency_ms": 1.0}
        event = m._build_event(record)
        assert event["prompt_text"] is None and event["prompt_chars"] == len("secret plans")
    finally:
        m._publisher.close(0)
