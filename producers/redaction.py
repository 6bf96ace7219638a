"""Redaction of personal data and credentials from prompt and response text before it is published.

`redact(text)` replaces what it finds with typed placeholders: [EMAIL], [PHONE], [CARD], [IP],
[SECRET]. It is pattern based, so best effort: it aims at the common written forms and leans
towards keeping ordinary text (numbers, dates, versions, code) intact:
- cards: 13-19 digits, contiguous or grouped as printed on cards (4-4-4-4[-3], 4-6-5, 4-6-4)
  with one kind of separator, first digit 2-6 (the card networks' ranges) and a valid Luhn check
  digit, so that order numbers and other long digit runs survive;
- phones: international numbers written with "+" (8 digits or more) and North
  American numbers written with separators ((415) 555-2671, 415-555-2671, 415.555.2671). A bare
  run of digits is not taken for a phone: it is far more often an id;
- IPv4, and IPv6 candidates confirmed by the ipaddress module (which rejects times like 12:30:45
  and MAC addresses);
- secrets: well-known key shapes (OpenAI/Anthropic sk-..., AWS AKIA/ASIA, GitHub, Slack, Google,
  Stripe, JWTs), bearer tokens, passwords in URLs, and values after names such as api_key=,
  password: or "token": (the name is kept, for context).

Passes run in that order of specificity: secrets first (their values hold digits and @ that later
passes would split), then emails, cards, IPs, phones.

Speed (~10 MB/s on mixed prose, code and logs): Python's re engine tries a pattern at every
position, ~25 ns per character, unless the pattern starts with a literal or a character class, in
which case it skips ahead to candidate characters. So the digit- and literal-led patterns put
their boundary check after their first character, and every other pass has a cheap "hint"
pattern that any match must contain; long texts are cut into blocks at newlines (no pattern spans
a newline, and a block edge looks to the lookarounds like one) so that such a pass runs only on
the blocks where its hint is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

EMAIL, PHONE, CARD, IP, SECRET = "[EMAIL]", "[PHONE]", "[CARD]", "[IP]", "[SECRET]"

_BLOCK_CHARS = 4096

# A password in a URL (scheme://user:password@host): before emails, which would take pass@host.
_URL_CREDENTIALS = re.compile(r"(://)[^\s/:@]+:[^\s/@]+@")

# Authorization: Bearer|Basic|Token <credentials>
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization[ \t]*:[ \t]*(?:bearer|basic|token)[ \t]+)[^\s\"']+", re.ASCII)
# "Bearer <token>" anywhere; 16+ token characters so that prose ("bearer bonds") survives.
_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)[A-Za-z0-9\-._~+/]{16,}=*", re.ASCII)
# name=value, name: value, "name": "value"; the name may end a longer one (OPENAI_API_KEY=).
# A quoted value is taken up to its closing quote (or the end of the line). A bare value is not
# taken when it is code rather than a secret: None/null/true..., a type annotation (token: str),
# the name itself (pwd=pwd, "password: password to use"), an attribute of self/cls, a call or a
# subscript (password=get_password(), token = auth[2]); nor is a comparison (token == x).
_NAMED_SECRET = re.compile(
    r"(?i)((?<![A-Za-z0-9])(?P<name>api[_-]?key|secret[_-]?key|client[_-]?secret|private[_-]?key"
    r"|(?:access|auth|refresh)[_-]?token|password|passwd|pwd|token|secret)"
    r"[\"']?[ \t]*[:=](?!=)[ \t]*)"
    r"(?:(?P<quote>[\"'])(?:(?!(?P=quote)).)++"
    r"|(?!(?:none|null|nil|true|false|undefined|str|bytes|int|bool|(?P=name))\b|self\.|cls\.)"
    r"[^\s\"'`,;&<>()\[\]{}]++(?![(\[]))",
    re.ASCII,
)
# Anchored on the separator: one of the names' endings right before it, or after one quote or
# blank, or two quotes/blanks (which stand for any longer gap).
_NAMED_SECRET_HINT = re.compile(
    r"[:=](?:(?<=(?i:key|ken|ret|ord|swd|pwd)[:=])|(?<=(?i:key|ken|ret|ord|swd|pwd)[\"' \t][:=])"
    r"|(?<=[\"' \t][ \t][:=]))"
)

_KEY_PREFIXES = (
    "sk-", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AIza",
    "sk_live_", "sk_test_", "rk_live_", "rk_test_", "eyJ",
)
_KEY = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"sk-[A-Za-z0-9_\-]{20,}"  # OpenAI sk-..., sk-proj-...; Anthropic sk-ant-...
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_\-]{35}"  # Google API keys
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWT
    r")(?![A-Za-z0-9_\-])"
)

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9\-])"
)

# Patterns led by a digit or a literal put their boundary check right after the first character,
# `[2-6](?<![\w./-].)` rather than `(?<![\w./-])[2-6]`: re skips ahead to the characters a pattern
# can start with only if it starts with a character class or a literal, not an assertion (~4x).
_CARD = re.compile(
    r"[2-6](?<![\w./-].)(?:"
    r"[0-9]{12,18}"
    r"|[0-9]{3}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{4}(?:\1[0-9]{3})?"
    r"|(?<=3)[0-9]{3}([ -])[0-9]{6}\2[0-9]{4,5}"  # Amex 4-6-5, Diners 4-6-4
    r")(?!\w|[./-][0-9])",  # nor inside decimals (0.3571428571428571), paths, dashed ids
    re.ASCII,
)

# Candidates, validated by _ipv4 (octets up to 255, no leading zeros); not inside a longer dotted
# run (1.2.3.4.5) nor right after a letter (v1.2.3.4).
_IPV4 = re.compile(r"[0-9](?<![\w.].)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\.?\w)", re.ASCII)

# Candidates only (colon-separated hex groups, maybe ending in dotted IPv4); _ipv6 validates them.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"
    r"(?![\w:]|\.[0-9A-Za-z])",
    re.ASCII,
)
# A compressed address holds "::", a full one three inner groups in a row (a time has two).
_IPV6_HINT = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")

# "+", country code, then digit groups split by single separators; one parenthesised group such as
# "(0)" or "(415)" may follow the country code. Possessive quantifiers (*+, ++): without them a
# failing (?!\w) would make re retry every shorter split of the digit groups.
_PHONE_INTERNATIONAL = re.compile(
    r"\+(?<![\w+].)[1-9][0-9]*+(?:[ .-]?\([0-9]{1,4}\)[ .-]?[0-9]++)?(?:[ .-][0-9]++)*+(?!\w)", re.ASCII
)
# North American numbering, area code and exchange starting with 2-9: (415) 555-2671 and
# 415-555-2671 / 415.555.2671 / 415 555 2671. A "1" trunk prefix without "+" is left in place.
_PHONE_US_PARENTHESES = re.compile(r"\([2-9][0-9]{2}\)[ .-]?[2-9][0-9]{2}[ .-][0-9]{4}(?![\w-]|\.[0-9])", re.ASCII)
_PHONE_US = re.compile(r"[2-9](?<![\w+].)[0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}(?![\w-]|\.[0-9])", re.ASCII)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match) -> str:
    digits = m.group(0).replace(" ", "").replace("-", "")
    return CARD if _luhn_ok(digits) else m.group(0)


def _ipv4(m: re.Match) -> str:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return m.group(0)
    return IP


def _ipv6(m: re.Match) -> str:
    candidate = m.group(0)
    if not any(c.isdigit() for c in candidate):  # hex words only (dead::beef, a:b:c) are not IPs
        return candidate
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return candidate
    return IP


def _named_secret(m: re.Match) -> str:
    return f"{m.group(1)}{m.group('quote') or ''}{SECRET}"  # the closing quote is left in place


def _international_phone(m: re.Match) -> str:
    # Fewer than 8 digits, or a single "." as the only separator, is a signed number (+5,
    # +35236450.6). More than E.164's 15 digits stays redacted: it is two numbers run together,
    # or one with an extension, far more often than anything else.
    text = m.group(0)
    digits = sum(c.isdigit() for c in text)
    if digits < 8 or len(text) - digits == 2 and "." in text:
        return text
    return PHONE


# (hint, pattern, replacement): the pass runs on a block only if its hint is found there; no hint
# for the patterns that start with a literal or a character class, which are as fast as a hint.
_PASSES: tuple[tuple[re.Pattern | None, re.Pattern, str | Callable[[re.Match], str]], ...] = (
    (None, _URL_CREDENTIALS, rf"\1{SECRET}@"),
    (re.compile("(?i)authorization", re.ASCII), _AUTHORIZATION, rf"\1{SECRET}"),
    (re.compile("(?i)bearer", re.ASCII), _BEARER, rf"\1{SECRET}"),
    (_NAMED_SECRET_HINT, _NAMED_SECRET, _named_secret),
    (re.compile("|".join(map(re.escape, _KEY_PREFIXES))), _KEY, SECRET),
    (re.compile("@"), _EMAIL, EMAIL),
    (None, _CARD, _card),
    (_IPV6_HINT, _IPV6, _ipv6),  # before IPv4, which would split ::ffff:192.0.2.1
    (None, _IPV4, _ipv4),
    (None, _PHONE_INTERNATIONAL, _international_phone),
    (None, _PHONE_US_PARENTHESES, PHONE),
    (None, _PHONE_US, PHONE),
)


def _redact_block(text: str) -> str:
    for hint, pattern, replacement in _PASSES:
        if hint is None or hint.search(text):
            text = pattern.sub(replacement, text)
    return text


def redact(text: str) -> str:
    """`text` with emails, phones, cards, IPs and secrets replaced by typed placeholders."""
    if len(text) <= _BLOCK_CHARS:
        return _redact_block(text)
    blocks = []
    start = 0
    while start < len(text):
        end = text.find("\n", start + _BLOCK_CHARS)
        end = len(text) if end < 0 else end + 1
        blocks.append(_redact_block(text[start:end]))
        start = end
    return "".join(blocks)
