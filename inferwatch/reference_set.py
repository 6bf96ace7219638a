"""A fine-tuning or evaluation set as a drift reference: prompts and responses from a JSONL file.

Each line is a JSON object, either {"prompt": ..., "response": ...} ("completion" is taken for
"response") or a chat record {"messages": [{"role": ..., "content": ...}, ...]}, whose prompt is
its last user message and whose response is the last assistant message after it: pass the SDK
the same text as `prompt` (monitor.track(prompt=...)) for the two sides to be measured alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


class ReferenceSetError(ValueError):
    """A file that is not a reference set; str() names the file, the line and what is wrong."""


def read_pairs(path: str | Path, progress: Callable[[int], None] | None = None) -> list[tuple[str, str]]:
    """(prompt, response) of every record of a JSONL file; ReferenceSetError at the first bad line."""
    pairs = []
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    pairs.append(_pair(json.loads(line)))
                except (json.JSONDecodeError, ValueError) as exc:
                    raise ReferenceSetError(f"{path}: line {number}: {exc}") from exc
                if progress and len(pairs) % 10_000 == 0:
                    progress(len(pairs))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceSetError(f"{path}: cannot read: {exc}") from exc
    if not pairs:
        raise ReferenceSetError(f"{path}: no records")
    return pairs


def _pair(record) -> tuple[str, str]:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("'messages' must be a list of objects with 'role' and 'content'")
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if not users:
            raise ValueError("no user message in 'messages'")
        answers = [m for m in messages[users[-1] + 1:] if m.get("role") == "assistant"]
        prompt, response = messages[users[-1]].get("content"), answers[-1].get("content") if answers else ""
    else:
        prompt, response = record.get("prompt"), record.get("response", record.get("completion"))
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise ValueError("needs a string prompt and response ('prompt' and 'response' or 'completion', "
                         "or chat 'messages')")
    return prompt, response
