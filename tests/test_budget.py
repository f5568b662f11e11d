import pytest

from minitron.budget import format_count, parse_budget, parse_budget_range
from minitron.errors import MinitronError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4B", 4_000_000_000),
        ("4.5B", 4_500_000_000),
        ("4.5b", 4_500_000_000),
        ("70M", 70_000_000),
        ("900k", 900_000),
        ("900K", 900_000),
        ("4500000000", 4_500_000_000),
        ("4_500_000", 4_500_000),
        ("4,500,000", 4_500_000),
        (" 70M ", 70_000_000),
        ("1.25G", 1_250_000_000),
        ("0.5T", 500_000_000_000),
        (".5M", 500_000),
        ("4.5e9", 4_500_000_000),
        ("1E6", 1_000_000),
    ],
)
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "4X", "-5M", "0", "0M", "4.5.1B", "inf", "nan", "1e-9", "M", "e9", "4 MB", "4 B B"]
)
def test_parse_budget_rejects(text):
    with pytest.raises(MinitronError, match="budget"):
        parse_budget(text)


def test_format_count():
    assert format_count(134_515_008) == "134.5M"
    assert format_count(4_512_746_496) == "4.513B"
    assert format_count(70_000_000) == "70M"
    assert format_count(900_000) == "900k"
    assert format_count(12) == "12"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50M:110M", (50_000_000, 110_000_000)),
        ("70M", (70_000_000, 70_000_000)),
        (" 1B : 2B ", (10**9, 2 * 10**9)),
    ],
)
def test_parse_budget_range(text, expected):
    assert parse_budget_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("110M:50M", "runs backwards"),
        ("50M:", "needs both ends"),
        (":50M", "needs both ends"),
        ("a:5M", "budget"),
    ],
)
def test_parse_budget_range_rejects(text, message):
    with pytest.raises(MinitronError, match=message):
        parse_budget_range(text)
