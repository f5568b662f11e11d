"""The run's data (its corpus or mix, tokenized) and the teacher's record of losses on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from minitron.data.generated import teacher_identity
from minitron.data.mix import load_tokens
from minitron.data.tokens import TokenizedCorpus
from minitron.eval.loss import cached_validation_loss, domain_test_sets
from minitron.model.teacher import Teacher
from search.outputs.outcomes import TeacherRecord
from search.plan.settings import SearchSettings


def run_tokens(settings: SearchSettings, tokenizer: Any, model: Callable[[], Any] | None) -> TokenizedCorpus:
    """The tokenized `--data`; a mix with the teacher's samples draws them with `model()` when the
    cache lacks them (`None`: only read them, as a winner's job does)."""
    return load_tokens(
        settings.data,
        tokenizer,
        teacher_identity(settings.teacher),
        model=model,
        offline=model is None,
        generation=settings.generation,
    )


def measure_teacher(
    teacher: Teacher,
    validation: torch.Tensor,
    test: torch.Tensor,
    tokens: TokenizedCorpus,
    test_sequences: int,
) -> TeacherRecord:
    """The teacher's record: its shape and its losses on the validation, test and each part's test
    sequences (as many as a winner's test loss reads for `test_sequences`; each cached per model
    and sequences). Its speed is measured by the search stage, where trials run (their device,
    their threads)."""
    model = teacher.model
    first = next(model.parameters())
    return TeacherRecord(
        name=teacher.name,
        architecture=teacher.architecture.as_dict(),
        params=sum(p.numel() for p in model.parameters()),
        stage_device=str(first.device),
        stage_dtype=str(first.dtype).replace("torch.", ""),
        zero_shot_loss=cached_validation_loss(model, validation, desc="teacher loss").loss,
        test_loss=cached_validation_loss(model, test, desc="teacher test loss").loss,
        test_losses={
            name: cached_validation_loss(model, seqs, desc=f"teacher test loss {name}").loss
            for name, seqs in domain_test_sets(tokens, int(test.shape[1]), test_sequences).items()
        },
    )
