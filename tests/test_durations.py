import pytest

from inferwatch.durations import parse_duration


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604_800), (" 2h ", 7200)])
def test_durations_in_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1", "1.5h", "-1h", "1w", "1H", "1h30m"])
def test_bad_durations_are_clear_errors(text):
    with pytest.raises(ValueError, match=r"duration .*: expected a number and s, m, h or d"):
        parse_duration(text)


def test_the_units_can_be_narrowed():
    assert parse_duration("5m", units="smh") == 300
    with pytest.raises(ValueError, match="expected a number and s, m or h"):
        parse_duration("1d", units="smh")
