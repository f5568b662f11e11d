"""Parameter budgets as people write them: `4B`, `4.5B`, `70M`, `900k`, `4500000000`, `4.5e9`."""

import math
import re

from minitron.errors import MinitronError

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_PATTERN = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+)(?:e\+?\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_budget(text: str) -> int:
    """Parse a parameter count such as `4.5B` into an integer (4_500_000_000).

    Accepted suffixes (case-insensitive): k (thousand), M (million), B or G (billion), T (trillion).
    Underscores and commas between digits are ignored (`4_500_000`, `4,500,000`); an exponent is
    accepted (`4.5e9`).
    """
    cleaned = re.sub(r"(?<=\d)[_,](?=\d)", "", str(text))
    match = _PATTERN.match(cleaned)
    if not match:
        raise MinitronError(
            f"budget {text!r} is not a parameter count; write it like 70M, 4.5B, 900k or 4500000000"
        )
    number, suffix = match.groups()
    value = float(number) * _SUFFIX[suffix.lower()]
    if not math.isfinite(value) or value < 1:
        raise MinitronError(f"budget {text!r} must be a positive parameter count, e.g. 70M or 4.5B")
    return round(value)


def format_count(n: int) -> str:
    """Render a parameter count compactly: 134515008 -> '134.5M', 4512746496 -> '4.513B'."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    return str(n)
