"""Before any stage: every input the run depends on is checked and loaded, and only then is the run
directory written. A bad teacher, corpus, benchmark asset or cluster costs seconds and leaves
nothing behind.

`preflight` checks the benchmark data and llama.cpp (a resumed run may have moved to a machine
without them), attaches to a Ray cluster when one is named, loads the teacher (only its tokenizer
when a resumed run's teacher work is all on disk), checks that it is the teacher the space
describes, tokenizes the run's data (drawing the teacher's samples of a mix when they are not
cached), checks the corpus is large enough, creates the run directory with its `config.json` (a
new run) and packs the validation and test sequences every stage shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from minitron import codec
from minitron.budget import format_budget
from minitron.data.tokens import TokenizedCorpus, pack
from minitron.eval.benchmarks import check_data
from minitron.export.llamacpp import require as require_llama_cpp
from minitron.model.teacher import Teacher, load_teacher, load_tokenizer
from minitron.runtime import release_accelerator_memory
from search.outputs.rundir import RunDir, create_run_dir
from search.plan.corpus import check_corpus
from search.plan.space import check_teacher_matches
from search.plan.spec import RunSpec
from search.run.data import run_tokens


@dataclass
class Inputs:
    """What the stages start from: the run's data, its shared validation and test sequences, and
    the teacher while teacher work is left (released once the teacher's stages are done)."""

    tokens: TokenizedCorpus
    validation: torch.Tensor
    """The validation sequences of the zero-shot, probe and final losses."""
    test: torch.Tensor
    """The test sequences behind the teacher's test loss."""
    teacher: Teacher | None
    """Loaded on the trials' kind of device, in its dtype there; None when a resumed run's teacher
    work is all on disk, or once it is released."""

    def release_teacher(self) -> None:
        """Drop the teacher (trials and winners load their own copy) and hand its memory back."""
        self.teacher = None
        release_accelerator_memory()


def teacher_work_left(run: RunDir) -> bool:
    """Whether a stage still needs the teacher's weights (its record, importance or targets)."""
    done = (run.teacher, run.importance / "importance.json", run.targets / "targets.json")
    return not all(path.exists() for path in done)


def preflight(spec: RunSpec, run: RunDir, resume: bool, overwrite: bool) -> Inputs:
    """Check and load every input, then write the run directory (a new run); see the module."""
    settings = spec.settings
    if settings.eval.tasks:
        check_data(settings.eval.tasks)
    if settings.plan.latency_runtime.is_llama_cpp:  # a resumed run on a machine without llama.cpp
        require_llama_cpp()
    if settings.resources.address:  # attach first: an unreachable cluster fails before the teacher loads
        from search.run.ray_runtime import start_ray

        start_ray(settings.resources)
    teacher: Teacher | None = None
    config: Any
    if resume and not teacher_work_left(run):
        tokenizer, config = load_tokenizer(settings.teacher, settings.trust_remote_code)
    else:
        # on the trials' kind of device, in its dtype there (bf16 on a GPU): see `teacher_dtype`
        teacher = load_teacher(settings.teacher, **settings.teacher_options(), **settings.teacher_placement())
        tokenizer, config = teacher.tokenizer, teacher.model.config
    check_teacher_matches(spec.space, settings.teacher, config)
    # the teacher's samples of a mix, when not cached: drawn by the teacher (loaded for them on resume)
    place = {**settings.teacher_options(), **settings.teacher_placement()}
    loaded = teacher
    model = (lambda: loaded.model) if loaded else (lambda: load_teacher(settings.teacher, **place).model)
    tokens = run_tokens(settings, tokenizer, model)
    check_corpus(tokens, settings)
    if not resume:
        create_run_dir(run, codec.encode(spec.config()), overwrite)
    print(
        f"[search] run directory {run.root}; {len(spec.candidates)} feasible candidates at "
        f"{format_budget(*settings.bounds)} ±{spec.space.band:.0%}",
        flush=True,
    )
    validation = pack(tokens.validation, settings.seq_len, settings.plan.validation_sequences)
    test = pack(tokens.test, settings.seq_len, settings.retrain.test_sequences)
    return Inputs(tokens, validation, test, teacher)
