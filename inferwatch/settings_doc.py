"""The settings reference of docs/configuration.md, generated from `inferwatch.settings.Settings`.

`settings_markdown()` renders every field of the class, section by section (the ``# --- name ---``
comments of settings.py), as: name, environment variable, type with its bounds, default and
description: a block of docs/configuration.md (inferwatch/doc_blocks.py regenerates and checks it).
"""

from __future__ import annotations

import inspect
import json
import re
import typing

from pydantic.fields import FieldInfo

from inferwatch.settings import Settings

ENV_PREFIX = "INFERWATCH_"

_SECTION = re.compile(r"^\s*# -+ (.+?) -*$")
_FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*)\s*:")
_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def settings_markdown() -> str:
    """Every setting, one table per section of settings.py, in the class's order."""
    out: list[str] = []
    for section, names in _sections():
        if out:
            out.append("")
        out += [f"### {section[0].upper()}{section[1:]}", "",
                "| setting | environment variable | type | default | meaning |",
                "| --- | --- | --- | --- | --- |"]
        for name in names:
            field = Settings.model_fields[name]
            out.append(f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | {_type(field)} | {_default(field)} "
                       f"| {_cell(field.description or '')} |")
    return "\n".join(out)


def _sections() -> list[tuple[str, list[str]]]:
    """(section title, field names) in the class's order; fields before any title: "general"."""
    sections: list[tuple[str, list[str]]] = []
    title = "general"
    for line in inspect.getsource(Settings).splitlines():
        match = _SECTION.match(line)
        if match:
            title = match[1].strip()
            continue
        match = _FIELD.match(line)
        if match and match[1] in Settings.model_fields:
            if not sections or sections[-1][0] != title:
                sections.append((title, []))
            sections[-1][1].append(match[1])
    listed = [name for _, names in sections for name in names]
    missing = [name for name in Settings.model_fields if name not in listed]
    if missing:  # declared in a way the source scan does not see: still documented, at the end
        sections.append(("other", missing))
    return sections


def _type(field: FieldInfo) -> str:
    text = _type_name(field.annotation)
    bounds = [f"{symbol} {_number(getattr(m, attr))}" for m in field.metadata
              for attr, symbol in _BOUNDS if getattr(m, attr, None) is not None]
    return f"`{text}`" + (f", {', '.join(bounds)}" if bounds else "")


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{typing.get_origin(annotation).__name__}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value in ("", {}, []):
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"  # as an environment variable gives it: JSON
    if isinstance(value, float):
        return f"`{_number(value)}`"
    return f"`{value}`"


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e6:
        return str(int(value))
    return str(value)


def _cell(text: str) -> str:
    """A description as one table cell: pipes escaped, and `<` / `>` outside code spans too (else
    `<state_dir>` would read as an HTML tag and vanish)."""
    parts = text.replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")
