"""`Choice`: an enum whose members are their names, for values chosen from a fixed set.

A member reads and writes as its plain name wherever a string is expected (JSON, f-strings,
argparse choices, file formats), and `parse` turns a user's string into a member or a one-line error.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from minitron.errors import MinitronError

C = TypeVar("C", bound="Choice")


class Choice(str, enum.Enum):
    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(str(member.value) for member in cls)

    @classmethod
    def parse(cls: type[C], name: str | C, what: str) -> C:
        try:
            return cls(name)
        except ValueError:
            raise MinitronError(
                f"{what} {name!r} is unknown; choose one of {', '.join(cls.names())}"
            ) from None
