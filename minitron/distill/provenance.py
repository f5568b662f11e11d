"""`provenance.json`: everything about how a retrained model was made, written last into its folder
(so a folder with it is a finished model) and read back by whoever needs any of it.

The caller of a retraining adds what only it knows (`Origin`: the search run, rank and trial of a
winner, the layers it kept; or, for `python -m minitron distill`, the student's source and how it was
pruned); the file keeps those fields at its top level, beside the retraining's own, as it always has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from minitron import codec
from minitron.distill.history import Validation
from minitron.errors import MinitronError


@dataclass(frozen=True)
class ContinuedFrom:
    """The probe a retraining continued from (`minitron.distill.continuation.adopt`)."""

    architecture: str | None = None
    trial_id: str | None = None
    step: int = 0
    tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class WinnerOrigin:
    """A search's winner: which run, rank and trial chose it, and how it was cut."""

    search_run: str
    """The search that chose it (its run directory's name)."""
    rank: int
    """Its rank among the search's winners."""
    trial_id: str
    importance: dict[str, Any] | None
    """The calibration behind the importance it was cut by."""
    depth_method: str
    layer_block: int
    """Which measured block of layers it dropped (0: the least removal loss)."""
    kept_layers: list[int]
    """The teacher layers it kept."""


@dataclass(frozen=True)
class DistillOrigin:
    """A student retrained by `python -m minitron distill` (`minitron.api.distill`)."""

    student_source: str
    """The checkpoint it started from."""
    teacher_name: str
    corpus: str
    pruning: dict[str, Any] | None
    """How `python -m minitron prune` cut it, when it did."""


Origin = WinnerOrigin | DistillOrigin


@dataclass(frozen=True)
class Provenance:
    """One `provenance.json`."""

    JSON_OMIT: ClassVar[tuple[str, ...]] = ("workers",)
    origin: Origin | None
    """What the caller says of the model's origin (its fields lie at the top level of the file)."""
    job: str
    """The job's identity (a hash of its config, student, teacher and data)."""
    teacher: str
    """`<spec>:<fingerprint>` of the teacher ("" without one)."""
    targets: dict[str, Any] | None
    """The cached targets' metadata, when it trained on them; None: the teacher ran online."""
    architecture: dict[str, int]
    params: int
    retrain: dict[str, Any]
    """The `RetrainConfig` it ran with, plus the precision and device actually used."""
    data: str
    """The tokenized data's key."""
    tokens_trained: int
    continued_from: ContinuedFrom | None
    not_continued_because: str | None
    history: list[Validation]
    final_val_loss: float
    test_loss: float
    test_losses: dict[str, float]
    test_tokens: int
    train_seconds: float
    wall_seconds_this_session: float
    resumed_at_step: int | None
    versions: dict[str, str]
    workers: int | None = None
    """Processes that trained it together (sharded retraining)."""

    @property
    def probe_tokens_kept(self) -> int:
        """Tokens of its training that its probe trained (0: it started afresh)."""
        return self.continued_from.tokens if self.continued_from is not None else 0

    def to_json(self) -> dict[str, Any]:
        data = codec.encode_fields(self)
        return {**(data.pop("origin") or {}), **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        mine = {f for f in cls.__dataclass_fields__ if f != "origin"}
        values = {k: v for k, v in data.items() if k in mine}
        rest = {k: v for k, v in data.items() if k not in mine}
        kinds: tuple[type[WinnerOrigin] | type[DistillOrigin], ...] = (WinnerOrigin, DistillOrigin)
        kind = next((k for k in kinds if set(rest) == set(k.__dataclass_fields__)), None)
        if rest and kind is None:
            raise MinitronError(f"provenance.json: unknown keys {', '.join(sorted(rest))}")
        origin = codec.decode(kind, rest, "provenance.json") if kind is not None else None
        return codec.decode_fields(cls, {**values, "origin": None}, "provenance.json").with_origin(origin)

    def with_origin(self, origin: Origin | None) -> Provenance:
        import dataclasses

        return dataclasses.replace(self, origin=origin)

    @classmethod
    def load(cls, folder: Path) -> Provenance:
        """The provenance in a model folder."""
        return codec.load(cls, Path(folder) / "provenance.json")
