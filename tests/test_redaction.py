"""What redact() must remove, what it must leave alone, and that it stays linear on long texts."""

import time

import pytest

from inferwatch.producers.redaction import redact


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _with_check_digit(prefix: str) -> str:
    return next(prefix + str(d) for d in range(10) if _luhn_ok(prefix + str(d)))


CARD_19 = _with_check_digit("622126000000000000")

# (text, placeholder that must appear, sensitive part that must be gone)
MUST_REDACT = [
    # emails
    ("contact jane.doe@example.com today", "[EMAIL]", "jane.doe@example.com"),
    ("first.last+tag@sub.example.co.uk", "[EMAIL]", "first.last+tag"),
    ("MAILTO:ADMIN@EXAMPLE.ORG", "[EMAIL]", "ADMIN@EXAMPLE.ORG"),
    ("<bob_smith99@mail-server.io>", "[EMAIL]", "bob_smith99"),
    # phones
    ("call +1 415 555 2671 now", "[PHONE]", "555 2671"),
    ("+44 20 7946 0958", "[PHONE]", "7946 0958"),
    ("+44 (0)20 7946 0958", "[PHONE]", "7946 0958"),
    ("+33 1 42 68 53 00", "[PHONE]", "42 68 53"),
    ("+49-30-901820", "[PHONE]", "901820"),
    ("+14155552671", "[PHONE]", "4155552671"),
    ("+91 98765 43210", "[PHONE]", "98765"),
    ("+1 (415) 555-2671", "[PHONE]", "555-2671"),
    ("+91 98765 43210 (415) 555-2671", "[PHONE] [PHONE]", "43210"),
    ("+44 20 7946 0958 ext 1234 or +44 20 7946 0959 1234", "[PHONE]", "0959"),
    ("(415) 555-2671", "[PHONE]", "555-2671"),
    ("tel: 415-555-2671.", "[PHONE]", "555-2671"),
    ("415.555.2671", "[PHONE]", "555.2671"),
    ("415 555 2671", "[PHONE]", "555 2671"),
    ("call 1-800-555-0199 now", "[PHONE]", "555-0199"),
    # cards (Luhn-valid)
    ("card 4111 1111 1111 1111 exp 12/27", "[CARD]", "1111 1111"),
    ("4111-1111-1111-1111", "[CARD]", "1111-1111"),
    ("4111111111111111", "[CARD]", "4111111111111111"),
    ("mc 5555555555554444.", "[CARD]", "5555555555554444"),
    ("amex 3782 822463 10005", "[CARD]", "822463"),
    ("378282246310005", "[CARD]", "378282246310005"),
    ("discover 6011111111111117", "[CARD]", "6011111111111117"),
    ("diners 30569309025904", "[CARD]", "30569309025904"),
    ("visa13 4222222222222", "[CARD]", "4222222222222"),
    (f"unionpay {CARD_19}", "[CARD]", CARD_19),
    # IPv4
    ("host 192.168.1.10 is down", "[IP]", "192.168.1.10"),
    ("connect to 10.0.0.1:8080", "[IP]", "10.0.0.1"),
    ("dns is 8.8.8.8.", "[IP]", "8.8.8.8"),
    ("allow 172.16.254.1/24", "[IP]", "172.16.254.1"),
    # IPv6
    ("addr 2001:db8::1 up", "[IP]", "2001:db8::1"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]", "85a3"),
    ("ping ::1", "[IP]", "::1"),
    ("fe80::1ff:fe23:4567:890a", "[IP]", "fe23"),
    ("mapped ::ffff:192.0.2.128", "[IP]", "192.0.2.128"),
    ("url http://[2001:db8::2]:443/", "[IP]", "db8::2"),
    # secrets
    ("key sk-proj-Ab3dEf6hIj9kLmNoPqRsTuVwXyZ012345", "[SECRET]", "Ab3dEf6hIj9k"),
    ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "[SECRET]", "AbCdEfGh"),
    ("aws AKIAIOSFODNN7EXAMPLE", "[SECRET]", "AKIAIOSFODNN7EXAMPLE"),
    ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "[SECRET]", "a1B2c3D4"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[SECRET]", "11ABCDEFG"),
    ("xoxb-123456789012-abcdefghij", "[SECRET]", "123456789012"),
    ("AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "[SECRET]", "SyA1b2C3"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[SECRET]", "4eC39HqLyj"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "[SECRET]", "dozjgNry"),
    ("Authorization: Bearer abc123def456", "[SECRET]", "abc123def456"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", "[SECRET]", "dXNlcjpw"),
    ("curl -H 'Authorization: Token 0123456789abcdef'", "[SECRET]", "0123456789abcdef"),
    ("use Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0 here", "[SECRET]", "9f8e7d6c"),
    ("api_key=abc123", "[SECRET]", "abc123"),
    ("export OPENAI_API_KEY=whatever-1", "[SECRET]", "whatever-1"),
    ('{"password": "hunter2"}', "[SECRET]", "hunter2"),
    ("password: hunter2", "[SECRET]", "hunter2"),
    ("client_secret = 's3cr3t!'", "[SECRET]", "s3cr3t!"),
    ("PASSWORD    = aligned", "[SECRET]", "aligned"),
    ("GET /cb?token=abcdef&x=1", "[SECRET]", "abcdef"),
    ("X-Api-Key: 12345abcde", "[SECRET]", "12345abcde"),
    ("db_password=pa55word", "[SECRET]", "pa55word"),
    ("postgres://admin:s3cret@db.internal:5432/app", "[SECRET]", "s3cret"),
]

MUST_SURVIVE = [
    # numbers that are not cards or phones
    "Order 4111111111111112 shipped",  # Luhn-invalid
    "order number 1234567890123456",
    "tracking 9400111899223397628470",  # too long for a card
    "invoice 10045521, customer id 1234567890, raw 4155552671",  # bare digit runs are ids
    "12345678901234567890123",
    "ORD-4111111111111111",  # part of a dashed id
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
    "score 3-2, then 100-200-3000",
    "pi is 3.14159 and e is 2.71828",
    "revenue 1,234,567.89 ($49.99 each, 100%)",
    "+5 degrees, temperature +3.5C, +3.14159, +1.5 million, +1-800-FLOWERS",
    "ISBN 978-3-16-148410-0",
    # dates and times
    "2024-01-15",
    "15/01/2024 and 01/15/2024",
    "2024-01-15T10:30:00Z",
    "Jan 5, 2024 at 12:30:45",
    "ratio 16:9 at 10:30",
    # versions and dotted numbers
    "v1.2.3 and version 2.0.1",
    "python3.11, numpy 1.26.4",
    "v1.2.3.4",
    "1.2.3.4.5",
    "192.168.1 is a prefix",
    "999.1.1.1",
    # code and identifiers
    "a@b",
    "ssh user@localhost",
    "@dataclass\nclass A:\n    x: int = 5",
    "npm i @types/node",
    "x = y @ z",
    "std::vector<int> v; Foo::bar(); a::b",
    "dead::beef",
    "mac 00:1a:2b:3c:4d:5e",
    "def f(a: int = 5) -> dict:",
    "max_tokens=512, temperature=0.7",
    "token = self.token; password=get_password(); pwd=pwd; secret: str; api_key=os.environ['API_KEY']",
    "if token == 0x00: password = None",
    'password: "" and token: null',
    '{"max_tokens": 512, "input_tokens": 20}',
    "tokens: 512",
    "Key points: first, second",
    "Question: what is the capital of France?",
    "disk-usage-monitoring-dashboard-v2",
    "task-abcdefghijklmnopqrstuvwxyz",
    "the bearer of this letter; bearer bonds",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "https://docs.example.org/config?page=2",
    "Le rendez-vous est confirmé pour le 12 mars à 14h30.",
    "",
]


def test_survive_table_numbers_are_not_luhn_valid():
    assert not _luhn_ok("4111111111111112") and not _luhn_ok("1234567890123456")
    assert _luhn_ok(CARD_19) and len(CARD_19) == 19


@pytest.mark.parametrize("text, placeholder, sensitive", MUST_REDACT)
def test_must_redact(text, placeholder, sensitive):
    redacted = redact(text)
    assert placeholder in redacted, redacted
    assert sensitive not in redacted, redacted


@pytest.mark.parametrize("text", MUST_SURVIVE)
def test_must_survive(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Authorization: Bearer abc123def456", "Authorization: Bearer [SECRET]"),
        ("OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLmNoPqRsTuVwXyZ012345", "OPENAI_API_KEY=[SECRET]"),
        ('{"password": "hunter2", "user": "bob"}', '{"password": "[SECRET]", "user": "bob"}'),
        ("postgres://admin:s3cret@db.internal:5432/app", "postgres://[SECRET]@db.internal:5432/app"),
        ("SECRET_KEY = 'correct horse battery staple'", "SECRET_KEY = '[SECRET]'"),
        ('password: "it\'s a secret", user: bob', 'password: "[SECRET]", user: bob'),
        ("token='unterminated value\nnext line", "token='[SECRET]\nnext line"),
        ("Mail a@example.com or call (415) 555-2671 from 10.0.0.1 with card 4111 1111 1111 1111.",
         "Mail [EMAIL] or call [PHONE] from [IP] with card [CARD]."),
    ],
)
def test_context_around_placeholders_is_kept(text, expected):
    assert redact(text) == expected


def test_idempotent():
    text = " ".join(t for t, _, _ in MUST_REDACT)
    once = redact(text)
    assert redact(once) == once


def test_long_text_in_blocks_matches_line_by_line():
    # Long texts are processed in newline-aligned blocks: the result must not depend on where
    # block edges fall, so it must equal redacting each line on its own.
    lines = [f"line {i}: mail user{i}@example.com, card 4111 1111 1111 1111, ip 10.0.{i % 256}.1, "
             f"phone +44 20 7946 {i % 10000:04d}, api_key=k{i}, version 1.{i}.3\n" for i in range(2000)]
    text = "".join(lines)
    assert len(text) > 50 * 4096
    assert redact(text) == "".join(redact(line) for line in lines)


def test_long_line_without_newlines():
    text = "word " * 5000 + "jane@example.com " + "word " * 5000
    assert redact(text) == "word " * 5000 + "[EMAIL] " + "word " * 5000


@pytest.mark.parametrize(
    "text",
    ["1" * 200_000, "a" * 200_000, ":" * 200_000, "a@" * 100_000, "1." * 100_000, "1:" * 100_000,
     "+1 " * 70_000, "+1" + " 2345" * 40_000 + "x", "+1" + "2" * 200_000 + "x", "a-" * 100_000,
     "password=" * 20_000, "f" * 200_000 + "::", "a." * 100_000 + "@", "x@" + "a." * 100_000 + "1"],
)
def test_adversarial_inputs_stay_linear(text):
    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 2.0


def test_throughput_on_mixed_text():
    paragraph = (
        "Hi, I ordered the premium plan on 2024-03-15 (order #A-88231) and was charged twice, $49.99 each. "
        "Reach me at jane.doe@example.com or (415) 555-2671.\n"
        "def load(path: str) -> dict:\n    return json.load(open(path))  # v2.3.1, max_tokens=512\n"
        "The server at 10.0.12.7 returned 502 between 12:30:45 and 12:31:10 UTC; retries=3.\n"
        "Summary: revenue grew 12.5% to 4.2M, churn fell from 3.1% to 2.4%, five engineers to hire.\n\n"
    )
    text = paragraph * (1_000_000 // len(paragraph))
    start = time.perf_counter()
    redact(text)
    elapsed = time.perf_counter() - start
    # ~10 MB/s on a laptop core; the bound only catches a pathological slowdown.
    assert len(text) / elapsed > 1_000_000
