"""Character and token counts, OOV rate against a reference vocabulary, vocabulary files."""

import pytest

from inferwatch.producers.text_stats import TextStats, load_vocabulary, text_stats, tokenize


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("", []),
        ("   \n\t ", []),
        ("Hello, world!", ["Hello", "world"]),
        ("Don't panic: it's fine.", ["Don't", "panic", "it's", "fine"]),
        ("l’été arrive", ["l’été", "arrive"]),
        ("max_tokens=512; temperature=0.7", ["max", "tokens", "512", "temperature", "0", "7"]),
        ("foo.bar(baz) -> qux[0]", ["foo", "bar", "baz", "qux", "0"]),
        ("état naïve Straße", ["état", "naïve", "Straße"]),
        ("Привет мир", ["Привет", "мир"]),
        ("日本語のテキスト", ["日本語のテキスト"]),  # no spaces: one token per run (approximate)
        ("rock'n'roll 'quoted'", ["rock'n'roll", "quoted"]),
        ("emoji 🙂 here", ["emoji", "here"]),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_counts_without_vocabulary():
    assert text_stats("Hello, world! 🙂") == TextStats(chars=15, tokens=2, oov_rate=None)
    assert text_stats("") == TextStats(0, 0, None)


def test_chars_are_code_points():
    assert text_stats("naïve 🙂").chars == 7


def test_oov_rate_is_case_insensitive_and_numbers_are_known():
    vocabulary = frozenset({"the", "refund", "for", "order"})
    stats = text_stats("The REFUND for order 88231 is LATE", vocabulary)
    # tokens: The REFUND for order 88231 is LATE -> unknown: is, late
    assert stats == TextStats(chars=34, tokens=7, oov_rate=pytest.approx(2 / 7))


def test_oov_rate_bounds():
    vocabulary = {"a", "b"}
    assert text_stats("a b a", vocabulary).oov_rate == 0.0
    assert text_stats("x y", vocabulary).oov_rate == 1.0
    assert text_stats("...", vocabulary).oov_rate is None  # no tokens, no rate


def test_vocabulary_built_with_tokenize_covers_its_corpus():
    corpus = "Reset my password, please. I can't log in since 3 days!"
    vocabulary = {t.lower() for t in tokenize(corpus)}
    assert text_stats(corpus, vocabulary).oov_rate == 0.0
    assert text_stats("Reset my router", vocabulary).oov_rate == pytest.approx(1 / 3)


def test_load_vocabulary(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("Hello\n  world  \n\nÉTÉ\ncan't\r\n", encoding="utf-8")
    vocabulary = load_vocabulary(path)
    assert vocabulary == frozenset({"hello", "world", "été", "can't"})
    assert text_stats("hello été can't WORLD", vocabulary).oov_rate == 0.0
    assert load_vocabulary(str(path)) == vocabulary


def test_load_vocabulary_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert load_vocabulary(path) == frozenset()
    assert text_stats("anything", load_vocabulary(path)).oov_rate == 1.0
