"""Cheap per-request text statistics: length, an approximate token count and the OOV rate.

The tokenizer is approximate on purpose, since it runs on every request in the service: tokens
are runs of letters and digits (an apostrophe inside a word, as in "don't", stays in it);
whitespace and punctuation only separate. Its counts are words, not model tokens (models' BPE
tokenizers give ~1.3 tokens per English word), and scripts written without spaces (Chinese,
Japanese, Thai) come out as one token per run. Use the same `tokenize` to build the reference
vocabulary, so that both sides agree on what a word is.

The OOV rate is the share of tokens, lowercased, outside a reference vocabulary (for instance the
fine-tuning set): a rising rate means prompts are drifting away from what the model was tuned on.
Tokens made only of digits count as known: numbers are not vocabulary drift.
"""

from __future__ import annotations

import os
import re
from collections.abc import Set
from typing import NamedTuple

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


class TextStats(NamedTuple):
    chars: int
    tokens: int
    oov_rate: float | None  # None without a vocabulary, or for a text without tokens


def tokenize(text: str) -> list[str]:
    """Word tokens of `text`, as they appear (not lowercased)."""
    return _TOKEN.findall(text)


def text_stats(text: str, vocabulary: Set[str] | None = None) -> TextStats:
    tokens = tokenize(text)
    if vocabulary is None or not tokens:
        return TextStats(len(text), len(tokens), None)
    unknown = sum(1 for t in tokens if not t.isdigit() and t.lower() not in vocabulary)
    return TextStats(len(text), len(tokens), unknown / len(tokens))


def load_vocabulary(path: str | os.PathLike) -> frozenset[str]:
    """Words from a UTF-8 file, one per line, lowercased; blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        return frozenset(word for line in f if (word := line.strip().lower()))
