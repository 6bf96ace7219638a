"""The parts of docs/ generated from the code, so they cannot drift from it: each between the
markers ``<!-- <name>: ... -->`` and ``<!-- end <name> -->`` of its page. tests/test_doc_blocks.py
checks every one. After changing settings, event limits or aggregators, regenerate them:

    .venv/bin/python -m inferwatch.doc_blocks --write     # rewrites the blocks that changed
    .venv/bin/python -m inferwatch.doc_blocks             # says which are out of date
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _settings() -> str:
    from inferwatch.settings_doc import settings_markdown

    return settings_markdown()


def _valid_event_rules() -> str:
    from inferwatch.schemas.validation import rules_markdown
    from inferwatch.settings import Settings

    return rules_markdown(Settings(_env_file=None).event_limits)


def _window_metrics() -> str:
    from inferwatch.processors.aggregators import metrics_markdown

    return metrics_markdown()


# name -> (page, what goes between its markers)
BLOCKS: dict[str, tuple[Path, Callable[[], str]]] = {
    "settings": (DOCS / "configuration.md", _settings),
    "valid-event-rules": (DOCS / "architecture.md", _valid_event_rules),
    "window-metrics": (DOCS / "redis-keys.md", _window_metrics),
}


def _bounds(text: str, name: str) -> tuple[int, int]:
    start = text.index("\n", text.index(f"<!-- {name}:")) + 1
    return start, text.index(f"<!-- end {name} -->")


def current(name: str) -> str:
    """What the page holds between the block's markers."""
    page, _ = BLOCKS[name]
    text = page.read_text()
    start, end = _bounds(text, name)
    return text[start:end].strip()


def generated(name: str) -> str:
    return BLOCKS[name][1]().strip()


def write(name: str) -> bool:
    """Rewrite the block in its page; True if it changed."""
    page, _ = BLOCKS[name]
    text = page.read_text()
    start, end = _bounds(text, name)
    new = text[:start] + generated(name) + "\n" + text[end:]
    if new != text:
        page.write_text(new)
    return new != text


def main(argv: list[str]) -> int:
    if argv not in ([], ["--write"]):
        print("usage: python -m inferwatch.doc_blocks [--write]", file=sys.stderr)
        return 2
    stale = [name for name in BLOCKS if current(name) != generated(name)]
    for name in stale:
        if argv:
            write(name)
        print(f"{BLOCKS[name][0]}: {name} {'rewritten' if argv else 'out of date'}", file=sys.stderr)
    return 1 if stale and not argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
