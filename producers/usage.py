"""Token usage, finish reason and response text from LLM client responses, without vendor SDKs.

Accepted shapes, through attribute access and dict access alike (pydantic models, SimpleNamespace
and parsed JSON all work):
- OpenAI-compatible (OpenAI, vLLM, TGI, Together...): `usage.prompt_tokens / completion_tokens /
  total_tokens`, `choices[0].finish_reason`, `choices[0].message.content` or `choices[0].text`;
- Anthropic-style: `usage.input_tokens / output_tokens`, `stop_reason`, `content` text blocks;
- a streamed response as a list or tuple of chunks (OpenAI chunks, Anthropic events, str). Only
  sequences are read: iterating a generator here would consume the caller's stream;
- a plain str, for the text.

These helpers run in the request path of the embedding service, so they never raise: an unknown
shape gives None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class TokenUsage(NamedTuple):
    input_tokens: int
    output_tokens: int
    total_tokens: int


# Field names per provider style, first match wins. Anthropic's input_tokens leaves out prompt-cache
# reads and writes (reported in fields of their own); it is taken as reported.
_INPUT_FIELDS = ("prompt_tokens", "input_tokens")
_OUTPUT_FIELDS = ("completion_tokens", "output_tokens")
_TOTAL_FIELDS = ("total_tokens",)

# Anthropic stop reasons mapped onto the schema's vocabulary (stop, length, content_filter,
# tool_calls) so that dashboards compare providers; other values pass through unchanged.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:  # a property of an unknown object may raise anything
        return None


def _count(value: Any) -> int | None:
    """A token count, or None: bools, fractions and negative numbers are not counts."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return value
    return None


def _is_stream(response: Any) -> bool:
    return isinstance(response, (list, tuple))


def _choice0(obj: Any) -> Any:
    """The choice with index 0: with n > 1 a stream chunk may carry another choice first."""
    choices = _get(obj, "choices")
    if not isinstance(choices, (list, tuple)):
        return None
    for choice in choices:
        if _get(choice, "index") in (0, None):
            return choice
    return None


def _last_count(usages: list, fields: tuple[str, ...]) -> int | None:
    found = None
    for usage in usages:
        for field in fields:
            count = _count(_get(usage, field))
            if count is not None:
                found = count
                break
    return found


def extract_usage(response: Any) -> TokenUsage | None:
    """Token counts of a response or a list of stream chunks; None when they are not reported.

    In a stream each field comes from the last chunk that reports it: OpenAI sends them all in the
    final chunk (stream_options include_usage), Anthropic sends input in message_start (as
    `message.usage`) and the final output count in message_delta. total_tokens is input + output
    when the response does not give it.
    """
    try:
        parts = response if _is_stream(response) else [response]
        usages = [_get(p, "usage") or _get(_get(p, "message"), "usage") for p in parts]
        input_tokens = _last_count(usages, _INPUT_FIELDS)
        output_tokens = _last_count(usages, _OUTPUT_FIELDS)
        if input_tokens is None or output_tokens is None:
            return None
        total_tokens = _last_count(usages, _TOTAL_FIELDS)
        return TokenUsage(input_tokens, output_tokens,
                          input_tokens + output_tokens if total_tokens is None else total_tokens)
    except Exception:
        return None


def _finish_reason_of(obj: Any) -> str | None:
    # choices[0].finish_reason (OpenAI), stop_reason (Anthropic message), delta.stop_reason
    # (Anthropic message_delta event).
    for reason in (_get(_choice0(obj), "finish_reason"), _get(obj, "stop_reason"),
                   _get(_get(obj, "delta"), "stop_reason")):
        if isinstance(reason, str):
            return _FINISH_REASONS.get(reason, reason)
    return None


def extract_finish_reason(response: Any) -> str | None:
    """Why generation stopped, in the schema's vocabulary where known; the last one in a stream."""
    try:
        if not _is_stream(response):
            return _finish_reason_of(response)
        reason = None
        for chunk in response:
            reason = _finish_reason_of(chunk) or reason
        return reason
    except Exception:
        return None


def _content_text(content: Any) -> str | None:
    """A str, or the text blocks of a content list ({"type": "text", "text": ...}) joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, (list, tuple)):
        return None
    texts = [_get(block, "text") for block in content if _get(block, "type") == "text"]
    texts = [t for t in texts if isinstance(t, str)]
    return "".join(texts) if texts else None


def _chunk_text(chunk: Any) -> str | None:
    # A str chunk (text streamed by the service itself); OpenAI chat chunk: choices[0].delta.content;
    # completions chunk: choices[0].text; Anthropic content_block_delta event: delta.text.
    if isinstance(chunk, str):
        return chunk
    choice = _choice0(chunk)
    for text in (_get(_get(choice, "delta"), "content"), _get(choice, "text"),
                 _get(_get(chunk, "delta"), "text")):
        if isinstance(text, str):
            return text
    return None


def extract_text(response: Any) -> str | None:
    """The generated text (choice 0), for character counts; None when there is none (tool calls)."""
    try:
        if isinstance(response, str):
            return response
        if _is_stream(response):
            pieces = [t for t in map(_chunk_text, response) if t is not None]
            return "".join(pieces) if pieces else None
        choice = _choice0(response)
        text = _content_text(_get(_get(choice, "message"), "content"))
        if text is None and isinstance(_get(choice, "text"), str):
            text = _get(choice, "text")
        return text if text is not None else _content_text(_get(response, "content"))
    except Exception:
        return None
