"""Counts as people write them: budgets `4B`, `4.5B`, `70M`, `900k`, `4500000000`, `4.5e9`; tokens `16k`."""

import math
import re

from minitron.errors import MinitronError

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_PATTERN = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e\+?\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_count(text: str, what: str = "budget", kind: str = "parameter count") -> int:
    """Parse a count such as `4.5B` into an integer (4_500_000_000); `what` names the input in errors.

    Accepted suffixes (case-insensitive): k (thousand), M (million), B or G (billion), T (trillion).
    Underscores and commas between digits are ignored (`4_500_000`, `4,500,000`); an exponent is
    accepted (`4.5e9`).
    """
    examples = ("70M, 4.5B, 900k or 4500000000", "70M or 4.5B")
    if kind != "parameter count":
        examples = ("16k, 2M or 200000", "16k or 2M")
    cleaned = re.sub(r"(?<=\d)[_,](?=\d)", "", str(text))
    match = _PATTERN.match(cleaned)
    if not match:
        raise MinitronError(f"{what} {text!r} is not a {kind}; write it like {examples[0]}")
    number, suffix = match.groups()
    value = float(number) * _SUFFIX[suffix.lower()]
    if not math.isfinite(value) or value < 1:
        raise MinitronError(f"{what} {text!r} must be a positive {kind}, e.g. {examples[1]}")
    return round(value)


def parse_budget(text: str) -> int:
    """A parameter budget such as `4.5B` (see `parse_count`)."""
    return parse_count(text)


def parse_budget_range(text: str) -> tuple[int, int]:
    """A budget or a budget range: `70M` -> (70M, 70M); `50M:110M` -> (50M, 110M), low end first."""
    low_text, sep, high_text = str(text).partition(":")
    if not sep:
        budget = parse_budget(text)
        return budget, budget
    if not low_text.strip() or not high_text.strip():
        raise MinitronError(f"budget range {text!r} needs both ends, e.g. 50M:110M")
    low, high = parse_budget(low_text), parse_budget(high_text)
    if low > high:
        raise MinitronError(
            f"budget range {text!r} runs backwards; write the smaller end first, e.g. "
            f"{format_count(high)}:{format_count(low)}"
        )
    return low, high


def format_budget(low: int, high: int) -> str:
    """`70M` for one budget, `50M–110M` for a range."""
    return format_count(high) if low == high else f"{format_count(low)}–{format_count(high)}"


def parse_tokens(text: str, option: str) -> int:
    """A token count given to `option`, such as `16k` (see `parse_count`)."""
    return parse_count(text, option, "token count")


def format_count(n: int) -> str:
    """Render a parameter count compactly: 134515008 -> '134.5M', 4512746496 -> '4.513B'."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    return str(n)
