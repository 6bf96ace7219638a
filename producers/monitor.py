"""The SDK an inference service embeds: time each LLM call and publish one event for it.

    from inferwatch.producers import Monitor

    monitor = Monitor(service="chat-api")           # settings from INFERWATCH_* / inferwatch.toml

    @monitor.instrument(model="gpt-4o-mini", route="/v1/chat")
    def answer(prompt: str) -> dict: ...             # sync, async, generator or async generator

    with monitor.track(model="gpt-4o-mini", prompt=prompt) as call:
        response = client.chat.completions.create(...)
        call.record_response(response)               # usage, finish reason, response text

In the request path the SDK only reads clocks and appends a record to a queue; a background
thread (background.py) computes text statistics, samples and redacts text, hashes user ids,
prices the call and publishes batches. An exception in the wrapped call is recorded (status
ERROR, or TIMEOUT for timeouts, error_type = its class) and re-raised unchanged. Nothing in the
SDK raises into the caller.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import logging
import time
import uuid
from pathlib import Path

from inferwatch.producers.background import BackgroundPublisher
from inferwatch.producers.pricing import PriceTable
from inferwatch.producers.redaction import redact
from inferwatch.producers.sampling import TextSampler, hash_user_id
from inferwatch.producers.text_stats import load_vocabulary, text_stats
from inferwatch.producers.usage import extract_finish_reason, extract_text, extract_usage
from inferwatch.settings import Settings

log = logging.getLogger(__name__)

_TIMEOUT_ERRORS = (TimeoutError, asyncio.TimeoutError)


class Call:
    """One tracked LLM call; what the caller learns during the call goes in here."""

    __slots__ = ("_monitor", "_record", "_started", "_first_chunk_at", "_chunks")

    def __init__(self, monitor: Monitor, record: dict):
        self._monitor = monitor
        self._record = record
        self._started = 0.0
        self._first_chunk_at: float | None = None
        self._chunks: list | None = None

    # -- what the caller can tell us ------------------------------------------------------------
    def record_response(self, response) -> None:
        """Take usage, finish reason and text from an OpenAI/Anthropic-style response or dict."""
        self._record["_response_obj"] = response

    def set_usage(self, input_tokens: int, output_tokens: int) -> None:
        self._record["input_tokens"], self._record["output_tokens"] = input_tokens, output_tokens

    def set(self, **fields) -> None:
        """Any event field: confidence, topic, quality_scores, attributes, request_id, ..."""
        self._record.update(fields)

    def observe_chunk(self, chunk) -> None:
        """Call for each streamed chunk: the first one sets TTFT; all are kept for usage/text."""
        if self._first_chunk_at is None:
            self._first_chunk_at = time.perf_counter()
            self._chunks = []
        self._chunks.append(chunk)

    def stream(self, chunks):
        """Wrap a sync stream of chunks, observing each as it passes through."""
        for chunk in chunks:
            self.observe_chunk(chunk)
            yield chunk

    async def astream(self, chunks):
        async for chunk in chunks:
            self.observe_chunk(chunk)
            yield chunk

    # -- context manager (sync and async) -------------------------------------------------------
    def __enter__(self) -> Call:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._finish(exc)
        return False  # never swallow the caller's exception

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def _finish(self, exc: BaseException | None) -> None:
        ended = time.perf_counter()
        record = self._record
        record["ts"] = int((time.time() - (ended - self._started)) * 1000)
        record["latency_ms"] = (ended - self._started) * 1000
        if self._first_chunk_at is not None:
            record["ttft_ms"] = (self._first_chunk_at - self._started) * 1000
            chunks = self._chunks
            # Plain text chunks are the text; provider chunk objects are read by extract_*().
            record.setdefault("_response_obj", "".join(chunks) if all(isinstance(c, str) for c in chunks) else chunks)
        if exc is not None:
            record["status"] = "TIMEOUT" if isinstance(exc, _TIMEOUT_ERRORS) else "ERROR"
            record["error_type"] = type(exc).__name__
        self._monitor._publisher.submit(record)


class Monitor:
    def __init__(self, service: str, settings: Settings | None = None, **overrides):
        """`overrides` are Settings fields (e.g. capture_text=True) over env and config file."""
        if not service:
            raise ValueError("service must name the service that serves the requests")
        self.service = service
        self.settings = settings or Settings(**overrides)
        if settings is not None and overrides:
            self.settings = settings.model_copy(update=overrides)
        s = self.settings
        self.prices = PriceTable.load(s.price_table or None)
        self.sampler = TextSampler(s.text_sample_rate, s.low_confidence_threshold)
        self.vocabulary = load_vocabulary(s.reference_vocabulary) if s.reference_vocabulary else None
        spool_dir = Path(s.producer_spool_dir) if s.producer_spool_dir else s.state_dir / "spool" / service
        self._publisher = BackgroundPublisher(s, spool_dir, self._build_event)
        self._warned_no_salt = False
        atexit.register(self.close)

    # -- in the request path --------------------------------------------------------------------
    def track(self, model: str, route: str = "", model_version: str = "", tenant_id: str = "",
              user_id: str | None = None, request_id: str | None = None, prompt: str | None = None,
              **fields) -> Call:
        """A context manager (`with` or `async with`) that times the call and publishes its event."""
        record = {
            "model": model, "route": route, "model_version": model_version, "tenant_id": tenant_id,
            "user_id": user_id, "request_id": request_id, "_prompt": prompt, **fields,
        }
        return Call(self, record)

    def instrument(self, model: str, route: str = "", model_version: str = "", tenant_id: str = "",
                   prompt_arg: str | None = "prompt", **fields):
        """Decorate a sync/async function or (async) generator; its return value (or its chunks)
        is taken as the response. `prompt_arg` names the argument holding the prompt text."""

        def decorate(fn):
            signature = inspect.signature(fn)

            def start(args, kwargs) -> Call:
                prompt = None
                if prompt_arg and prompt_arg in signature.parameters:
                    prompt = signature.bind_partial(*args, **kwargs).arguments.get(prompt_arg)
                return self.track(model, route, model_version, tenant_id,
                                  prompt=prompt if isinstance(prompt, str) else None, **fields)

            if inspect.isasyncgenfunction(fn):
                @functools.wraps(fn)
                async def async_gen_wrapper(*args, **kwargs):
                    async with start(args, kwargs) as call:
                        async for chunk in call.astream(fn(*args, **kwargs)):
                            yield chunk
                return async_gen_wrapper
            if inspect.isgeneratorfunction(fn):
                @functools.wraps(fn)
                def gen_wrapper(*args, **kwargs):
                    with start(args, kwargs) as call:
                        yield from call.stream(fn(*args, **kwargs))
                return gen_wrapper
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*args, **kwargs):
                    async with start(args, kwargs) as call:
                        result = await fn(*args, **kwargs)
                        call.record_response(result)
                        return result
                return async_wrapper

            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with start(args, kwargs) as call:
                    result = fn(*args, **kwargs)
                    call.record_response(result)
                    return result
            return wrapper

        return decorate

    def record_feedback(self, request_id: str, *, thumbs: int | None = None, rating: float | None = None,
                        eval_scores: dict[str, float] | None = None, hallucination: bool | None = None,
                        judge: str | None = None, comment: str | None = None, model: str | None = None,
                        source: str = "USER", user_id: str | None = None,
                        attributes: dict[str, str] | None = None) -> None:
        """Publish user feedback or evaluation scores for an earlier request (joined by request_id)."""
        if thumbs not in (None, 1, -1):
            log.warning("inferwatch: thumbs must be +1 or -1, got %r: ignored", thumbs)
            thumbs = None
        self._publisher.submit_feedback({
            "feedback_id": str(uuid.uuid4()), "ts": int(time.time() * 1000), "request_id": str(request_id),
            "service": self.service, "model": model, "source": source, "thumbs": thumbs, "rating": rating,
            "eval_scores": dict(eval_scores or {}), "hallucination": hallucination, "judge": judge,
            "comment": redact(comment) if comment else None, "user_id": self._hash_user(user_id),
            "attributes": dict(attributes or {}),
        })

    # -- in the background thread ---------------------------------------------------------------
    def _hash_user(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        if not self.settings.user_id_salt:
            if not self._warned_no_salt:
                self._warned_no_salt = True
                log.warning("inferwatch: user ids are not sent: set INFERWATCH_USER_ID_SALT to send them hashed")
            return None
        return hash_user_id(str(user_id), self.settings.user_id_salt)

    def _build_event(self, record: dict) -> dict:
        """A submitted record -> a complete InferenceEvent (runs in the publishing thread)."""
        prompt = record.pop("_prompt", None)
        response = record.pop("_response_obj", None)
        response_text = extract_text(response) if response is not None else None
        usage = extract_usage(response) if response is not None else None
        model, route = record["model"], record["route"]
        prompt_stats = text_stats(prompt, self.vocabulary) if prompt else None
        input_tokens = record.get("input_tokens", usage.input_tokens if usage else (prompt_stats.tokens if prompt_stats else 0))
        output_tokens = record.get("output_tokens", usage.output_tokens if usage else 0)
        capture = self.settings.capture_text and self.sampler.decide(model, route, record.get("confidence"))
        event = {
            "event_id": str(uuid.uuid4()),
            "service": self.service,
            "status": "OK",
            "error_type": None,
            "ttft_ms": None,
            "trace_id": None,
            "span_id": None,
            "topic": None,
            "confidence": None,
            "resources": None,
            "quality_scores": {},
            "attributes": {},
            **record,
            "user_id": self._hash_user(record.get("user_id")),
            "input_tokens": int(input_tokens),
            "output_tokens": int(output_tokens),
            "cost_usd": self.prices.cost_usd(model, int(input_tokens), int(output_tokens)),
            "finish_reason": record.get("finish_reason") or (extract_finish_reason(response) if response is not None else None),
            "prompt_chars": prompt_stats.chars if prompt_stats else record.get("prompt_chars", 0),
            "response_chars": len(response_text) if response_text else record.get("response_chars", 0),
            "prompt_oov_rate": prompt_stats.oov_rate if prompt_stats else None,
            "prompt_text": redact(prompt) if capture and prompt else None,
            "response_text": redact(response_text) if capture and response_text else None,
        }
        if capture:
            event["attributes"] = {**event["attributes"], "text_sampled": capture}
        return event

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def dropped_events(self) -> int:
        """Events dropped and counted, never raised: the in-memory queue or the spool full
        (the documented policy), an event that could not be built or encoded, and what a full
        disk kept out of the spool; feedback included."""
        return (self._publisher.dropped_events + self._publisher.events.spool.dropped_events
                + self._publisher.feedback.spool.dropped_events)

    def flush(self, timeout: float = 10.0) -> bool:
        return self._publisher.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (spooling the rest); registered to run at interpreter exit."""
        self._publisher.close(timeout)
        atexit.unregister(self.close)
