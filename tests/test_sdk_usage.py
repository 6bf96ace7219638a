"""Usage, finish reason and text extraction over the response shapes services hand us."""

from types import SimpleNamespace as NS
from unittest.mock import MagicMock

import pydantic
import pytest

from inferwatch.producers.usage import TokenUsage, extract_finish_reason, extract_text, extract_usage

OPENAI_DICT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}

ANTHROPIC_DICT = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Let me check. "},
        {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}},
        {"type": "text", "text": "Done."},
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 0},
}


# Minimal stand-ins for the vendor SDKs' pydantic models, with the same field names.
class _Usage(pydantic.BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class _Message(pydantic.BaseModel):
    role: str
    content: str | None


class _Choice(pydantic.BaseModel):
    index: int
    message: _Message
    finish_reason: str | None


class _ChatCompletion(pydantic.BaseModel):
    choices: list[_Choice]
    usage: _Usage | None = None


def test_openai_dict():
    assert extract_usage(OPENAI_DICT) == TokenUsage(12, 3, 15)
    assert extract_finish_reason(OPENAI_DICT) == "stop"
    assert extract_text(OPENAI_DICT) == "Hello there!"


def test_openai_pydantic_model():
    response = _ChatCompletion.model_validate(OPENAI_DICT)
    assert extract_usage(response) == TokenUsage(12, 3, 15)
    assert extract_finish_reason(response) == "stop"
    assert extract_text(response) == "Hello there!"


def test_openai_simple_namespace():
    response = NS(
        choices=[NS(index=0, message=NS(content="Hi"), finish_reason="length")],
        usage=NS(prompt_tokens=5, completion_tokens=100, total_tokens=105),
    )
    assert extract_usage(response) == TokenUsage(5, 100, 105)
    assert extract_finish_reason(response) == "length"
    assert extract_text(response) == "Hi"


def test_total_is_computed_when_missing():
    assert extract_usage({"usage": {"prompt_tokens": 4, "completion_tokens": 6}}) == TokenUsage(4, 6, 10)


def test_anthropic_message():
    assert extract_usage(ANTHROPIC_DICT) == TokenUsage(20, 7, 27)
    assert extract_finish_reason(ANTHROPIC_DICT) == "stop"  # end_turn in the schema's vocabulary
    assert extract_text(ANTHROPIC_DICT) == "Let me check. Done."  # text blocks only


@pytest.mark.parametrize(
    "stop_reason, expected",
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("pause_turn", "pause_turn")],
)
def test_anthropic_stop_reasons(stop_reason, expected):
    assert extract_finish_reason(NS(stop_reason=stop_reason, usage=None)) == expected


def test_completions_api_text():
    response = {"choices": [{"index": 0, "text": "four", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    assert extract_text(response) == "four"
    assert extract_usage(response) == TokenUsage(3, 1, 4)


def test_content_parts_list():
    response = {"choices": [{"index": 0, "message": {"content": [{"type": "text", "text": "a"},
                                                                 {"type": "image_url", "image_url": {}},
                                                                 {"type": "text", "text": "b"}]}}]}
    assert extract_text(response) == "ab"


def test_tool_call_response_has_no_text():
    response = {"choices": [{"index": 0, "message": {"content": None, "tool_calls": [{"id": "c1"}]},
                             "finish_reason": "tool_calls"}]}
    assert extract_text(response) is None
    assert extract_finish_reason(response) == "tool_calls"


def test_plain_string():
    assert extract_text("just text") == "just text"
    assert extract_usage("just text") is None
    assert extract_finish_reason("just text") is None


def _openai_chunk(content=None, finish_reason=None, usage=None, index=0):
    choices = [] if usage is not None else [NS(index=index, delta=NS(content=content), finish_reason=finish_reason)]
    return NS(choices=choices, usage=usage)


def test_openai_stream_last_chunk_carries_usage():
    chunks = [
        _openai_chunk("Hel"),
        _openai_chunk("lo"),
        _openai_chunk(None, finish_reason="stop"),
        _openai_chunk(usage=NS(prompt_tokens=9, completion_tokens=2, total_tokens=11)),
    ]
    assert extract_usage(chunks) == TokenUsage(9, 2, 11)
    assert extract_finish_reason(chunks) == "stop"
    assert extract_text(chunks) == "Hello"


def test_openai_stream_without_usage():
    chunks = [_openai_chunk("Hi"), _openai_chunk(None, finish_reason="stop")]
    assert extract_usage(chunks) is None
    assert extract_text(chunks) == "Hi"


def test_stream_with_several_choices_reads_choice_zero():
    chunks = [_openai_chunk("B", index=1), _openai_chunk("A", index=0), _openai_chunk("b", index=1),
              _openai_chunk("a", index=0, finish_reason="length"), _openai_chunk(None, index=1, finish_reason="stop")]
    assert extract_text(chunks) == "Aa"
    assert extract_finish_reason(chunks) == "length"


def test_anthropic_stream_events():
    events = [
        {"type": "message_start", "message": {"content": [], "usage": {"input_tokens": 25, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 15}},
        {"type": "message_stop"},
    ]
    assert extract_usage(events) == TokenUsage(25, 15, 40)
    assert extract_finish_reason(events) == "length"
    assert extract_text(events) == "Bonjour"


def test_stream_of_plain_text_chunks():
    assert extract_text(["Hel", "lo"]) == "Hello"
    assert extract_usage(["Hel", "lo"]) is None


def test_generator_is_not_consumed():
    chunks = (c for c in [_openai_chunk("x")])
    assert extract_usage(chunks) is None
    assert extract_text(chunks) is None
    assert len(list(chunks)) == 1


class _Exploding:
    @property
    def usage(self):
        raise RuntimeError("lazy attribute failed")

    @property
    def choices(self):
        raise KeyError("boom")


@pytest.mark.parametrize(
    "response",
    [None, 42, 3.5, b"bytes", {}, [], (), object(), {"usage": None}, {"usage": {}}, {"usage": "12 tokens"},
     {"choices": "nope"}, {"choices": [None]}, {"content": 5}, MagicMock(), _Exploding(), [None, 1, b"x"]],
)
def test_unknown_shapes_give_none_and_never_raise(response):
    assert extract_usage(response) is None
    assert extract_finish_reason(response) is None
    assert extract_text(response) is None


@pytest.mark.parametrize(
    "usage, expected",
    [
        ({"prompt_tokens": 12.0, "completion_tokens": 3}, TokenUsage(12, 3, 15)),  # JSON numbers as floats
        ({"prompt_tokens": True, "completion_tokens": 3}, None),
        ({"prompt_tokens": -1, "completion_tokens": 3}, None),
        ({"prompt_tokens": 1.5, "completion_tokens": 3}, None),
        ({"prompt_tokens": "12", "completion_tokens": 3}, None),
        ({"prompt_tokens": 7, "total_tokens": 7}, None),  # embeddings: no output count
    ],
)
def test_counts_must_be_non_negative_integers(usage, expected):
    assert extract_usage({"usage": usage}) == expected
